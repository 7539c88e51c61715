"""What a `--model` reference loads: a hub id, a local folder, a GGUF file (or a packaged one like
`smollm2`, see `backend.gguf`), or a named tiny test model.

Every engine resolves its reference here (`resolve_model_ref`), so a named model means the same
thing to vllm, transformers and upstream. The tiny models are built by `backend.testing`, which a
source checkout has and the wheel does not ship.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from backend.settings import Settings

logger = logging.getLogger(__name__)

#: `--model` shortcuts for the tiny local test models -> their folder under the models cache.
TINY_MODELS = {"tiny": "tiny-llama3", "tiny-fim": "tiny-qwen-fim"}


def resolve_model_ref(settings: Settings, engine_name: str) -> str:
    """The local path or hub id to load: builds (once, cached) a tiny test model for 'tiny';
    converts (once, cached) a GGUF file to a safetensors folder."""
    from backend.gguf import ensure_converted, gguf_for

    model = settings.model_or_default(engine_name)
    if model not in TINY_MODELS:
        gguf_file = gguf_for(model)
        if gguf_file is not None:
            return str(ensure_converted(gguf_file, progress=lambda msg: logger.info("GGUF: %s", msg)))
        return model
    try:
        from backend.testing.tiny_models import TINY_MODELS as BUILDERS
        from backend.testing.tiny_models import ensure_tiny_model
    except ImportError as exc:
        raise ValueError(
            f"--model {model} needs the tiny model builder (backend/testing), which only a source "
            "checkout has: run from the repository (pip install -e .)"
        ) from exc
    which = next(key for key, folder in BUILDERS.items() if folder == TINY_MODELS[model])
    return str(ensure_tiny_model(which, progress=lambda msg: logger.info("tiny model: %s", msg)))
