"""CLI: `python -m backend serve [options]`; every option is generated from `backend.settings.Settings`."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import types
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic.fields import FieldInfo

from backend.privacy import apply_privacy_env
from backend.settings import Settings


def build_parser() -> argparse.ArgumentParser:
    """The argument parser: `serve` with one flag per settings field."""
    parser = argparse.ArgumentParser(
        prog="python -m backend",
        description="teampilot backend: one OpenAI-compatible server (/v1/completions, /v1/chat/completions, "
        "/v1/models, /health, /metrics) that owns the model's prompting, FIM and stop tokens.",
        epilog="Run 'python -m backend serve --help' for the server's options.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    serve = commands.add_parser(
        "serve",
        help="start the server",
        description="Start the OpenAI-compatible server. Every option can also be set with the environment "
        "variable shown (TEAMPILOT_*); flags win over the environment.",
    )
    for name, info in Settings.model_fields.items():
        _add_field(serve, name, info)
    usage = commands.add_parser(
        "usage",
        help="print the usage report (shown, accepted, acceptance rate, lines accepted, chat requests, tokens)",
        description="Print the usage report from the usage database the server writes (see serve --usage-db).",
    )
    usage.add_argument("--since", default="7d", help="window: 'all', N followed by m/h/d/w, or YYYY-MM-DD (default 7d)")
    usage.add_argument("--by", choices=["user", "language", "day"], default="user", help="one row per (default user)")
    usage.add_argument("--format", choices=["table", "csv", "json"], default="table", dest="fmt",
                       help="output format (default table)")
    usage.add_argument("--usage-db", type=Path, metavar="FILE", default=None,
                       help="the usage database (default: the server's default, env TEAMPILOT_USAGE_DB)")
    return parser


def usage_report(args: argparse.Namespace) -> int:
    """`python -m backend usage`: print the report; exit 2 on a bad --since or a missing database."""
    from backend.usage import default_usage_db
    from backend.usage_report import parse_since, render, report

    path = args.usage_db or Path(os.environ.get("TEAMPILOT_USAGE_DB") or default_usage_db())
    if not path.is_file():
        print(f"python -m backend usage: no usage database at {path} (is the server started with --usage-db?)",
              file=sys.stderr)
        return 2
    try:
        since = parse_since(args.since)
    except ValueError as exc:
        print(f"python -m backend usage: {exc}", file=sys.stderr)
        return 2
    print(render(report(path, since, args.by), args.by, args.fmt))
    return 0


def _add_field(parser: argparse.ArgumentParser, name: str, info: FieldInfo) -> None:
    """One flag for one settings field, with its description, bounds and env variable in the help."""
    flag = "--" + name.replace("_", "-")
    help_text = (info.description or "").replace("%", "%%")
    bounds = [f"{label} {getattr(m, attr)}" for m in info.metadata for attr, label in
              (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<")) if getattr(m, attr, None) is not None]
    if bounds:
        help_text += f" [{', '.join(bounds)}]"
    default = info.get_default(call_default_factory=True)
    shown = "" if default in ("", None, []) else f"default {default}; "
    help_text += f" ({shown}env TEAMPILOT_{name.upper()})"
    annotation = info.annotation
    kwargs: dict[str, Any] = {"dest": name, "default": argparse.SUPPRESS, "help": help_text}
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if annotation is bool:
        parser.add_argument(flag, action=argparse.BooleanOptionalAction, **kwargs)
        return
    if origin is typing.Annotated:
        annotation = args[0]
        origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is list:
        parser.add_argument(flag, action="append", metavar=name.upper().removesuffix("S"), **kwargs)
        return
    if origin in (typing.Union, types.UnionType):  # X | None
        annotation = next(a for a in args if a is not type(None))
        origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Literal:
        parser.add_argument(flag, choices=list(args), **kwargs)
    elif annotation is int:
        parser.add_argument(flag, type=int, metavar="N", **kwargs)
    elif annotation is float:
        parser.add_argument(flag, type=float, metavar="X", **kwargs)
    elif annotation is Path:
        parser.add_argument(flag, type=Path, metavar="FILE", **kwargs)
    else:
        parser.add_argument(flag, metavar=name.upper(), **kwargs)


def settings_from_args(argv: Sequence[str]) -> Settings:
    """Settings from flags (winning) and TEAMPILOT_* env variables."""
    namespace = build_parser().parse_args(["serve", *argv])
    values = {k: v for k, v in vars(namespace).items() if k != "command"}
    return Settings(**values)


def check_gguf_ref(model: str) -> None:
    """Exit with one line when a GGUF reference cannot be served (e.g. smollm2 not installed)."""
    from backend.gguf import GgufError, gguf_for

    try:
        gguf_for(model)
    except GgufError as exc:
        raise SystemExit(f"python -m backend serve: {exc}") from None


def serve(settings: Settings) -> int:
    """Run the server until interrupted; the engine loads in the background. Returns an exit code."""
    import uvicorn

    from backend.app import create_app
    from backend.engines import create_engine, resolve_engine_name
    from backend.security import KeyRing, check_bind_allowed

    keys = KeyRing.from_settings(settings)
    check_bind_allowed(settings, keys)
    engine_name = resolve_engine_name(settings.engine)
    if engine_name != "upstream":
        check_gguf_ref(settings.model_or_default(engine_name))
    logging.getLogger(__name__).info(
        "starting engine %s, model %s; API keys %s", engine_name,
        settings.model_or_default(engine_name), "required" if keys.enabled else "not required (anonymous)",
    )
    engine = create_engine(settings.model_copy(update={"engine": engine_name}))
    app = create_app(engine, settings, keys=keys)
    config = uvicorn.Config(
        app, host=settings.host, port=settings.port, log_level=settings.log_level,
        access_log=settings.log_level == "debug", timeout_graceful_shutdown=5,
    )
    server = uvicorn.Server(config)
    failed: list[str] = []

    def on_failure(message: str) -> None:
        """The engine could not start: stop serving and exit 1."""
        failed.append(message)
        server.should_exit = True

    app.state.serving.on_failure = on_failure
    server.run()
    return 1 if failed else 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `python -m backend` and `teampilot-backend`."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    if argv and argv[0] == "usage":
        return usage_report(parser.parse_args(argv))
    if not argv or argv[0] != "serve":
        parser.parse_args(argv or ["--help"])
        return 2
    try:
        settings = settings_from_args(argv[1:])
    except ValueError as exc:  # pydantic validation: bounds, bad values
        parser.exit(2, f"python -m backend serve: {exc}\n")
    apply_privacy_env()
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    try:
        return serve(settings)
    except SystemExit as exc:
        if isinstance(exc.code, str):
            print(exc.code, file=sys.stderr)
            return 2
        raise


if __name__ == "__main__":
    sys.exit(main())
