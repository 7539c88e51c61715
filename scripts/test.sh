#!/usr/bin/env bash
# Set up everything the tests need, then lint, type-check and run the whole suite.
# Extra arguments go to pytest (e.g. scripts/test.sh -k completion -x).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --test
bash scripts/install_test_clients.sh
# shellcheck disable=SC1091
. .venv/bin/activate
export VLLM_NO_USAGE_STATS=1 DO_NOT_TRACK=1 HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
# vLLM CPU build: 1 GiB of KV cache (unset, it takes a share of all RAM) for the in-process test engine
export VLLM_CPU_KVCACHE_SPACE="${VLLM_CPU_KVCACHE_SPACE:-1}"
echo "==> ruff"
ruff check lsp backend tests scripts
echo "==> mypy"
mypy
echo "==> pytest"
python scripts/build_tiny_models.py --which all
pytest -q -p no:cacheprovider "$@"
