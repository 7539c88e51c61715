"""Private by default: the environment that keeps vLLM, Hugging Face and friends from phoning home."""

from __future__ import annotations

import os

#: Set before vLLM or transformers is imported.
PRIVACY_ENV = {
    "VLLM_NO_USAGE_STATS": "1",
    "VLLM_DO_NOT_TRACK": "1",
    "DO_NOT_TRACK": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
}


def apply_privacy_env() -> None:
    """Turn every usage report and telemetry off in this process (and the ones it starts)."""
    os.environ.update(PRIVACY_ENV)
