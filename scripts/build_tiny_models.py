"""Build the tiny local test models once (cached): a thin CLI over `backend.testing.tiny_models`.

    python scripts/build_tiny_models.py [--which llama3|qwen-fim|all] [--force]

Models go to ${TEAMPILOT_CACHE:-~/.cache/teampilot}/models/{tiny-llama3,tiny-qwen-fim}; the paths
are printed, one per line, on stdout (progress goes to stderr).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a file: make the repo root importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from backend.testing.tiny_models import TINY_MODELS, ensure_tiny_model, read_stamp

__all__ = ["TINY_MODELS", "ensure_tiny_model", "main"]


def main(argv: list[str] | None = None) -> int:
    """Build (or find cached) the requested tiny models and print their folders."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--which", choices=[*TINY_MODELS, "all"], default="all")
    parser.add_argument("--force", action="store_true", help="rebuild even if a current build is cached")
    args = parser.parse_args(argv)
    names = list(TINY_MODELS) if args.which == "all" else [args.which]
    for which in names:
        started = time.monotonic()
        path = ensure_tiny_model(which, force=args.force, progress=lambda msg: print(msg, file=sys.stderr, flush=True))
        stamp = read_stamp(path) or {}
        extra = f" eot_rate={stamp['eot_rate']:.0%}" if "eot_rate" in stamp else ""
        print(f"{which}: ready in {time.monotonic() - started:.1f} s (built in {stamp.get('build_s')} s){extra}", file=sys.stderr)
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
