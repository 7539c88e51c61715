"""`python -m lsp`: run the language server (stdio by default, `--tcp PORT` for debugging).

Subcommands:
  check [--backend URL] [--api-key K]   one-screen diagnosis of the backend connection
  check --explain-exclusion FILE        whether a file is excluded from prompts, by which rule, and
                                        which secrets in it would be masked
  setup ...                             editor setup (see `python -m lsp setup --help`)
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import os
import sys
import time
from collections import Counter
from collections.abc import Sequence

from lsp.client import BackendClient, BackendError, BackendUnauthorized
from lsp.settings import SettingsSources

SWITCH_INTERVAL_S = 0.0005  # bench_lsp.py part 4: the keystroke after a pause, p50 about 21 -> 13 ms


def _configure_logging(level: str) -> None:
    # stdout is the LSP channel: logs go to stderr only
    logging.basicConfig(level=getattr(logging, level.upper(), logging.WARNING), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # pygls logs every message body at INFO (prompts and completions): keep it quiet unless debugging
    if level.upper() != "DEBUG":
        logging.getLogger("pygls").setLevel(logging.WARNING)


def _serve(args: argparse.Namespace) -> int:
    from lsp.server import create_server

    _configure_logging(args.log_level)
    server = create_server()
    # Everything imported so far lives as long as the process: keep it out of the collector's
    # reach, else each full collection walks it all (about 50 ms on the event loop, mid-keystroke).
    gc.collect()
    gc.freeze()
    # After each pause in typing a worker thread updates the index and the outline facts (50-80 ms on
    # a large file); a keystroke then shares the interpreter with it, and at Python's default 5 ms
    # interval every await of its request (the message, each chunk of the backend's answer) waits a slice.
    sys.setswitchinterval(SWITCH_INTERVAL_S)
    if args.tcp is not None:
        server.start_tcp(args.host, args.tcp)
    else:
        server.start_io()
    return 0


async def _check(url: str, api_key: str, model: str, timeout_s: float) -> int:
    """Print whether the backend is reachable, the key accepted, and which model answers."""
    client = BackendClient(url, api_key, model, timeout_s=timeout_s)
    ok = True
    print(f"teampilot check: backend {url}  (API key: {'set' if api_key else 'none'})")
    try:
        try:
            status, body = await client.health()
            state = body.get("status") if isinstance(body, dict) else body
            print(f"  [{'ok' if status == 200 else '!!'}] reachable: /health answered {status} {state or ''}".rstrip())
        except BackendError as exc:
            print(f"  [!!] reachable: no: {exc}")
            print("       Is the backend running? Start it with: python -m backend serve")
            return 1
        try:
            names = await client.models()
            print(f"  [ok] key accepted: /models lists {len(names)} model(s): {', '.join(names[:5])}")
        except BackendUnauthorized as exc:
            print(f"  [!!] key accepted: no ({exc})")
            print("       Set the key with --api-key or TEAMPILOT_API_KEY (or backend.apiKey in your editor).")
            return 1
        except BackendError as exc:
            print(f"  [!!] models: {exc}")
            return 1
        if model and model not in names:
            print(f"  [!!] configured model {model!r} is not served")
            ok = False
        chosen = await client.resolve_model()
        started = time.perf_counter()
        pieces: list[str] = []
        try:
            async for piece in client.stream_completion("def add(a, b):\n    return", "\n", max_tokens=8):
                pieces.append(piece)
            elapsed = (time.perf_counter() - started) * 1000
            print(f"  [ok] model answers: {chosen} ({len(''.join(pieces))} chars in {elapsed:.0f} ms)")
        except BackendError as exc:
            print(f"  [!!] model answers: {chosen}: {exc}")
            return 1
    finally:
        await client.aclose()
    print("All good." if ok else "Some checks failed.")
    return 0 if ok else 1


def _workspace_root(path: str) -> str:
    """The nearest folder above ``path`` holding ``.git``; else the current folder if it holds the file."""
    folder = os.path.dirname(path)
    while True:
        if os.path.exists(os.path.join(folder, ".git")):
            return folder
        parent = os.path.dirname(folder)
        if parent == folder:
            break
        folder = parent
    cwd = os.getcwd()
    return cwd if path.startswith(cwd + os.sep) else os.path.dirname(path)


def _explain_exclusion(file: str, root: str | None, patterns: Sequence[str]) -> int:
    """Print whether ``file`` may be sent (and by which rule), and the secrets masking would hide."""
    from lsp.exclusion import ExclusionRules, SecretMasker

    path = os.path.abspath(file)
    root = os.path.abspath(root) if root else _workspace_root(path)
    rules = ExclusionRules([root], patterns)
    print(f"teampilot: workspace root {root}")
    print(f"  {rules.explain(path)}")
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            text = handle.read()
    except OSError as exc:
        print(f"  (could not read the file: {exc.strerror})")
        return 0
    secrets = SecretMasker().mask(text).secrets
    if secrets:
        kinds = ", ".join(f"{kind} x{count}" for kind, count in sorted(Counter(s.kind for s in secrets).items()))
        print(f"  secrets masked in anything sent from it: {kinds}")
    else:
        print("  no secrets found to mask")
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m lsp", description="teampilot language server")
    parser.add_argument("--stdio", action="store_true", help="talk LSP over stdin/stdout (the default)")
    parser.add_argument("--tcp", type=int, metavar="PORT", help="listen on a TCP port instead (debugging)")
    parser.add_argument("--host", default="127.0.0.1", help="host for --tcp (default 127.0.0.1)")
    parser.add_argument("--log-level", default=os.environ.get("TEAMPILOT_LOG_LEVEL", "WARNING"),
                        help="stderr log level (DEBUG logs message bodies)")
    sub = parser.add_subparsers(dest="command")
    check = sub.add_parser("check", help="diagnose the connection to the backend")
    check.add_argument("--backend", help="backend URL (default: env TEAMPILOT_BACKEND_URL or http://127.0.0.1:8000/v1)")
    check.add_argument("--api-key", help="API key (default: env TEAMPILOT_API_KEY)")
    check.add_argument("--model", help="model id (default: env TEAMPILOT_MODEL, else the first listed)")
    check.add_argument("--timeout", type=float, default=10.0, help="seconds per call")
    check.add_argument("--explain-exclusion", metavar="FILE",
                       help="say whether FILE is excluded from prompts and by which rule (no backend needed)")
    check.add_argument("--root", help="workspace root for --explain-exclusion (default: the git work tree)")
    check.add_argument("--exclude", action="append", default=[], metavar="GLOB",
                       help="an `exclude` setting glob for --explain-exclusion (repeatable)")
    sub.add_parser("setup", help="write or print the editor setup (python -m lsp setup --help)", add_help=False)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `python -m lsp` and the `teampilot-lsp` script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "setup":
        from lsp import setup_cmd  # imported only when asked for

        return int(setup_cmd.main(argv[1:]) or 0)
    args = _parser().parse_args(argv)
    if args.command == "check" and args.explain_exclusion:
        return _explain_exclusion(args.explain_exclusion, args.root, args.exclude)
    if args.command == "check":
        settings, _ = SettingsSources().resolve()
        url = args.backend or settings.backend.url
        key = args.api_key if args.api_key is not None else settings.backend.api_key
        model = args.model if args.model is not None else settings.backend.model
        return asyncio.run(_check(url, key, model, args.timeout))
    return _serve(args)


if __name__ == "__main__":
    sys.exit(main())
