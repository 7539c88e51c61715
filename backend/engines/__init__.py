"""Engines behind one protocol (`backend.engines.base.Engine`), chosen by `create_engine`."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, cast

if TYPE_CHECKING:
    from backend.engines.base import Engine
    from backend.settings import Settings

ENGINE_NAMES = ("vllm", "transformers", "upstream")


def resolve_engine_name(engine: str) -> str:
    """Map "auto" to "vllm" when CUDA is present, else "transformers"; keep explicit names."""
    if engine != "auto":
        if engine not in ENGINE_NAMES:
            raise ValueError(f"unknown engine {engine!r}; choose auto or one of {ENGINE_NAMES}")
        return engine
    try:
        import torch
    except ImportError:  # the API-only install has no torch: nothing local can run but upstream
        return "transformers"
    return "vllm" if torch.cuda.is_available() else "transformers"


def create_engine(settings: Settings) -> Engine:
    """Build (not start) the engine named by settings.engine, importing only its module."""
    name = resolve_engine_name(settings.engine)
    module = importlib.import_module(f"backend.engines.{name}")
    return cast("Engine", module.create(settings))
