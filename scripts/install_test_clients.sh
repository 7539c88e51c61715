#!/usr/bin/env bash
# Install the real editors and clients the end-to-end tests drive (Neovim, Emacs + eglot, Continue's CLI,
# the VS Code extension's npm packages). Anything that cannot be installed is reported; its tests skip.
set -uo pipefail
cd "$(dirname "$0")/.."
echo "==> real clients for end-to-end tests"
