"""Benchmark the code actions: listing latency at a function in a 5,000-line file, per language, and
whether a generated pytest file (from a scripted model reply) is collected without import errors.

    python scripts/bench_actions.py [--lines 5000] [--requests 400]

Listing runs the real server's feature object (``create_server().actions.code_actions``) on a
document opened in its real document store, so the number is the server's own work per
``textDocument/codeAction`` (JSON-RPC framing excluded).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import random
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

from lsprotocol import types
from pygls.uris import from_fs_path

TEMPLATES = {
    "python": ("py", "def func_{i}(a, b):\n    \"\"\"Add.\"\"\"\n    total = a + b\n    return total * {i}\n\n\n"),
    "typescript": ("ts", "export function func{i}(a: number, b: number): number {{\n  const t = a + b;\n  return t * {i};\n}}\n\n"),
    "go": ("go", "func Func{i}(a, b int) int {{\n\tt := a + b\n\treturn t * {i}\n}}\n\n"),
    "java": ("java", "    int func{i}(int a, int b) {{\n        int t = a + b;\n        return t * {i};\n    }}\n\n"),
}


def big_file(language: str, lines: int) -> str:
    """A file of about ``lines`` lines made of small functions."""
    _, template = TEMPLATES[language]
    parts = ["package m\n\n"] if language == "go" else ["class Big {\n"] if language == "java" else []
    i = 0
    while sum(p.count("\n") for p in parts) < lines:
        parts.append(template.format(i=i))
        i += 1
    if language == "java":
        parts.append("}\n")
    return "".join(parts)


def bench_listing(language: str, lines: int, requests: int) -> list[float]:
    """Milliseconds per code action listing at random function bodies."""
    from lsp.server import create_server

    server = create_server()
    text = big_file(language, lines)
    uri = f"file:///bench/big.{TEMPLATES[language][0]}"
    doc = server.documents.open(uri, language, 1, text)
    marker = "return"
    offsets = [i for i in range(len(text)) if text.startswith(marker, i)]
    rng = random.Random(7)
    times: list[float] = []
    for n in range(requests):
        offset = rng.choice(offsets)
        pos = doc.position_at(offset, "utf-16")
        params = types.CodeActionParams(text_document=types.TextDocumentIdentifier(uri=uri),
                                        range=types.Range(start=pos, end=pos),
                                        context=types.CodeActionContext(diagnostics=[]))
        start = time.perf_counter()
        actions = server.actions.code_actions(params)
        elapsed = (time.perf_counter() - start) * 1000
        if n >= 10:  # warm-up excluded
            times.append(elapsed)
        assert actions, "no actions listed"
    return times


async def bench_stdio(language: str, lines: int, requests: int) -> list[float]:
    """Milliseconds per textDocument/codeAction round trip to a real `python -m lsp` over stdio."""
    from pygls.lsp.client import LanguageClient

    client = LanguageClient("bench-actions", "1")
    await client.start_io(sys.executable, "-m", "lsp")
    caps = types.ClientCapabilities(text_document=types.TextDocumentClientCapabilities(
        code_action=types.CodeActionClientCapabilities(
            code_action_literal_support=types.ClientCodeActionLiteralOptions(
                code_action_kind=types.ClientCodeActionKindOptions(value_set=["", "quickfix", "refactor"])),
            resolve_support=types.ClientCodeActionResolveOptions(properties=["edit"]), data_support=True)))
    await client.initialize_async(types.InitializeParams(capabilities=caps, process_id=None, root_uri=None))
    client.initialized(types.InitializedParams())
    text = big_file(language, lines)
    uri = f"file:///bench/big.{TEMPLATES[language][0]}"
    client.text_document_did_open(types.DidOpenTextDocumentParams(
        text_document=types.TextDocumentItem(uri=uri, language_id=language, version=1, text=text)))
    offsets = [i for i in range(len(text)) if text.startswith("return", i)]
    rng = random.Random(11)
    times: list[float] = []
    for n in range(requests):
        offset = rng.choice(offsets)
        line = text.count("\n", 0, offset)
        pos = types.Position(line=line, character=offset - (text.rfind("\n", 0, offset) + 1))
        params = types.CodeActionParams(text_document=types.TextDocumentIdentifier(uri=uri),
                                        range=types.Range(start=pos, end=pos),
                                        context=types.CodeActionContext(diagnostics=[]))
        start = time.perf_counter()
        result = await client.text_document_code_action_async(params)
        elapsed = (time.perf_counter() - start) * 1000
        assert result, "no actions listed"
        if n >= 10:
            times.append(elapsed)
    await client.shutdown_async(None)
    client.exit(None)
    await client.stop()  # type: ignore[no-untyped-call]  # pygls leaves it unannotated
    return times


def _summary(times: list[float]) -> tuple[float, float, float]:
    ordered = sorted(times)
    return statistics.median(ordered), ordered[max(0, int(len(ordered) * 0.95) - 1)], ordered[-1]


PROJECT = {
    "pyproject.toml": "[project]\nname = \"geometry\"\nversion = \"0.1\"\n\n[tool.pytest.ini_options]\ntestpaths = [\"tests\"]\n",
    "geometry/__init__.py": "",
    "geometry/shapes.py": "import math\n\n\ndef scale(value: float, factor: float) -> float:\n    return value * factor\n",
    "tests/__init__.py": "",
}
REPLY = textwrap.dedent('''
    Here are tests:

    ```python
    import pytest
    from shapes import scale


    def test_scale():
        assert scale(2.0, 3.0) == 6.0


    @pytest.mark.parametrize("factor", [0, 1])
    def test_scale_identity(factor):
        assert scale(1.0, factor) == factor
    ```
''')


def bench_collect() -> tuple[bool, str]:
    """Generate a pytest file from a scripted reply through the real action code and run --collect-only."""
    from lsp.actions.base import Edit
    from lsp.server import create_server

    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        for name, text in PROJECT.items():
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            (root / name).write_text(text)
        from lsp.context.index import WorkspaceIndex

        server = create_server()
        server.index = WorkspaceIndex([str(root)])  # what initialize sets up for the workspace folder
        source = root / "geometry/shapes.py"
        uri = from_fs_path(str(source)) or str(source)
        doc = server.documents.open(uri, "python", 1, source.read_text())
        feature = server.actions
        action = feature.actions["tests"]
        offset = doc.text.index("return")
        pos = doc.position_at(offset, "utf-16")
        data = {"action": "tests", "uri": uri, "version": 1,
                "range": {"start": {"line": pos.line, "character": pos.character},
                          "end": {"line": pos.line, "character": pos.character}}, "args": {}}
        target = feature.target(doc, action, data, {})
        outcome = action.outcome(REPLY, target, {}, feature._files())
        assert isinstance(outcome, Edit)
        changes = outcome.edit.document_changes or []
        created = next(c for c in changes if isinstance(c, types.CreateFile))
        first = next(c for c in changes if isinstance(c, types.TextDocumentEdit)).edits[0]
        content = first.new_text if isinstance(first, types.TextEdit) else ""
        test_path = Path(created.uri.removeprefix("file://"))
        test_path.write_text(content)
        run = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider"],
                             cwd=root, capture_output=True, text=True, timeout=120, check=False)
        summary = (run.stdout.strip().splitlines() or ["(no output)"])[-1]
        rel = test_path.relative_to(root)
        return run.returncode == 0, f"{rel}: {summary}\n--- generated file ---\n{content}"


def main() -> None:
    """Run the benchmarks and print the numbers."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--lines", type=int, default=5000)
    parser.add_argument("--requests", type=int, default=400)
    args = parser.parse_args()
    logging.getLogger("pygls").setLevel(logging.ERROR)  # the client ignores the server's notifications
    print(f"code action listing at a function in a {args.lines}-line file ({args.requests} requests, in-process)")
    worst = 0.0
    for language in TEMPLATES:
        times = sorted(bench_listing(language, args.lines, args.requests))
        p50 = statistics.median(times)
        p95 = times[int(len(times) * 0.95) - 1]
        worst = max(worst, p95)
        print(f"  {language:<11} p50 {p50:6.3f} ms   p95 {p95:6.3f} ms   max {times[-1]:6.3f} ms")
    print(f"  target p95 <= 10 ms: {'PASS' if worst <= 10 else 'FAIL'} (worst p95 {worst:.3f} ms)")
    print(f"code action round trip over stdio to `python -m lsp` ({args.requests} requests, client parsing included)")
    worst_rt = 0.0
    for language in ("python", "typescript"):
        p50, p95, top = _summary(asyncio.run(bench_stdio(language, args.lines, args.requests)))
        worst_rt = max(worst_rt, p95)
        print(f"  {language:<11} p50 {p50:6.3f} ms   p95 {p95:6.3f} ms   max {top:6.3f} ms")
    print(f"  target p95 <= 10 ms: {'PASS' if worst_rt <= 10 else 'FAIL'} (worst p95 {worst_rt:.3f} ms)")
    ok, report = bench_collect()
    print(f"generated pytest file collected without import errors: {'PASS' if ok else 'FAIL'}")
    print(textwrap.indent(report, "  "))


if __name__ == "__main__":
    main()
