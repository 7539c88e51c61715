#!/usr/bin/env bash
# Set up teampilot (scripts/setup.sh) and start the backend. Arguments go to `python -m backend serve`,
# e.g. scripts/serve.sh --model tiny, or scripts/serve.sh --host 0.0.0.0 --api-keys-file keys.txt
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# shellcheck disable=SC1091
. .venv/bin/activate
exec python -m backend serve "$@"
