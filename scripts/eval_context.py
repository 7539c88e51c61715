"""Context recall on real code no one here wrote.

Downloads a few open-source packages at run time (PyPI wheels via ``pip download --no-deps``,
npm tarballs via ``npm pack``) into ``${TEAMPILOT_CACHE:-~/.cache/teampilot}/eval-packages``,
indexes each package's source tree as a workspace, and at call sites whose callee is defined in
another file (or in the same file outside the prefix/suffix windows) blanks the rest of the line
after the call's opening parenthesis, builds the completion context exactly as the language server
does (``build_completion_context`` with the default budget and deadline, called directly), and
checks whether the callee's definition header reached the prompt.

Categories: "cross-file" (callee in another file), "same-above" (same file, above the prefix
window), "same-below" (same file, below the suffix window). Call sites whose callee is visible in
the windows are not counted.

The callee ("the answer") is resolved by an oracle that never feeds the retrieval: a bare name
defined once in the workspace, or in the same file, or imported from a module that defines it;
``self.x``/``this.x`` in the enclosing class; ``module.f(`` where ``module`` is an imported module
defining ``f``; ``obj.m(`` only when ``m`` is the workspace's single definition of that name and a
method (so ``rows.map(`` is not taken for a workspace function ``map``). Call sites it cannot
resolve are counted as "ambiguous" and skipped. The blanked line's text after the cursor is gone
from the document the context is built from, and the index entries of the file itself are not
used for it, so nothing can peek at the answer.

Also times, per keystroke on ~5,000-line files, the incremental edit + reparse and the context
build (``--no-bench`` skips it).

Usage: python scripts/eval_context.py [--max-sites N] [--seed S] [--verbose] [--no-bench]
"""

from __future__ import annotations

import argparse
import functools
import os
import random
import re
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tree_sitter import Node, QueryCursor

from lsp.context.extract import build_completion_context
from lsp.context.index import Definition, WorkspaceIndex, iter_source_files
from lsp.documents import Document

PYPI = ("requests", "rich", "click")
NPM = ("zod", "@tanstack/query-core", "@trpc/server")
CALLABLE = {"function", "method", "class"}


def cache_dir() -> Path:
    """Where downloaded packages live (not in the repo)."""
    root = Path(os.environ.get("TEAMPILOT_CACHE", Path.home() / ".cache" / "teampilot"))
    path = root / "eval-packages"
    path.mkdir(parents=True, exist_ok=True)
    return path


def fetch_pypi(name: str) -> Path:
    """Download and unpack a wheel; returns the unpacked folder."""
    dest = cache_dir() / "pypi" / name
    if dest.is_dir() and any(dest.iterdir()):
        return dest
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:",
                        "-q", "-d", tmp, name], check=True)
        wheel = next(Path(tmp).glob("*.whl"))
        dest.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(wheel) as archive:
            archive.extractall(dest)
    return dest


def fetch_npm(name: str) -> Path:
    """``npm pack`` a package and unpack it; returns its source folder (``src`` when shipped)."""
    dest = cache_dir() / "npm" / name.replace("/", "__")
    if not (dest / "package").is_dir():
        with tempfile.TemporaryDirectory() as tmp:
            subprocess.run(["npm", "pack", name, "--silent", "--pack-destination", tmp], check=True,
                           stdout=subprocess.DEVNULL)
            tarball = next(Path(tmp).glob("*.tgz"))
            dest.mkdir(parents=True, exist_ok=True)
            with tarfile.open(tarball) as archive:
                archive.extractall(dest, filter="data")
    src = dest / "package" / "src"
    return src if src.is_dir() else dest / "package"


@dataclass
class Site:
    """One call site: where the cursor goes and which definition is the answer."""

    path: Path
    cursor_byte: int
    name: str
    target: Definition | None   # None: the oracle cannot tell which same-named definition is meant
    same_file: bool


def _import_modules(text: str, name: str) -> list[str]:
    """Module specifiers a bare name is imported from (Python ``from m import name``, ES ``import {name} from 'm'``)."""
    out: list[str] = []
    for m in re.finditer(r"from\s+([.\w]+)\s+import\s+\(?([^)\n]*(?:\n[^)]*)?)\)?", text):
        names = {part.strip().split(" as ")[-1] for part in m.group(2).replace("\n", " ").split(",")}
        if name in names:
            out.append(m.group(1))
    for m in re.finditer(r"import\s+(?:type\s+)?\{([^}]*)\}\s*from\s*[\"']([^\"']+)[\"']", text):
        names = {part.strip().split(" as ")[-1].replace("type ", "").strip() for part in m.group(1).split(",")}
        if name in names:
            out.append(m.group(2))
    return out


@functools.cache
def _file_lines(path: str) -> list[str]:
    return Path(path).read_text("utf-8", errors="replace").split("\n")


def _nested_function(definition: Definition) -> bool:
    """A Python function defined inside another function: a local, not what a call elsewhere means."""
    if definition.kind != "function" or not definition.path.endswith(".py"):
        return False
    lines = _file_lines(definition.path)
    line = lines[definition.start_line] if definition.start_line < len(lines) else ""
    return line[:1].isspace()


def _module_aliases(text: str, alias: str) -> list[str]:
    """Module specifiers an identifier names (``import a.b as alias``, ``from p import alias``, ``import * as alias``)."""
    out: list[str] = []
    a = re.escape(alias)
    for m in re.finditer(rf"^\s*import\s+([.\w]+)\s+as\s+{a}\s*$", text, re.MULTILINE):
        out.append(m.group(1))
    for m in re.finditer(rf"^\s*import\s+((?:[\w]+\.)*{a})\s*$", text, re.MULTILINE):
        out.append(m.group(1))
    for m in re.finditer(rf"^\s*from\s+([.\w]+)\s+import\s+[^\n]*\b{a}\b", text, re.MULTILINE):
        base = m.group(1)
        out.append(base + alias if base.endswith(".") else f"{base}.{alias}")
    for m in re.finditer(rf"import\s+\*\s+as\s+{a}\s+from\s+[\"']([^\"']+)[\"']", text):
        out.append(m.group(1))
    return out


def _module_matches(module: str, def_path: Path, importer: Path) -> bool:
    if module.startswith("."):
        if "/" in module or module in {".", ".."}:  # ES relative path
            base = (importer.parent / module).resolve()
            candidates = {base.with_suffix(ext) for ext in (".ts", ".tsx", ".js")} | {
                base / f"index{ext}" for ext in (".ts", ".tsx", ".js")}
            return def_path in candidates or def_path.with_suffix("") == base
        level = len(module) - len(module.lstrip("."))
        base = importer.parent
        for _ in range(level - 1):
            base = base.parent
        rest = module.lstrip(".")
        target = base.joinpath(*rest.split(".")) if rest else base
        return def_path in {target.with_suffix(".py"), target / "__init__.py"}
    parts = module.split(".")
    return def_path.with_suffix("").parts[-len(parts):] == tuple(parts) or (
        def_path.name == "__init__.py" and def_path.parent.parts[-len(parts):] == tuple(parts))


def resolve(index: WorkspaceIndex, doc_text: str, path: Path, name: str, receiver: str,
            enclosing_class: str) -> Definition | None:
    """The oracle: which definition a call refers to, or None when it cannot tell."""
    defs = [d for d in index.lookup(name) if d.name == name and d.kind in CALLABLE and not _nested_function(d)]
    if not defs:
        return None
    if receiver in {"self", "this", "cls"}:
        own = [d for d in defs if d.path == str(path) and d.qualified_name == f"{enclosing_class}.{name}"]
        if len(own) == 1:
            return own[0]
        methods = [d for d in defs if d.kind == "method"]
        return methods[0] if len(methods) == 1 and len(defs) == 1 else None
    if receiver:
        # `module.func(`: the receiver must be an imported module that defines the function;
        # `obj.method(`: only a unique method counts (a same-named function is not what
        # `rows.map(` or `headers.set(` call)
        for module in _module_aliases(doc_text, receiver):
            matches = [d for d in defs if d.kind != "method" and _module_matches(module, Path(d.path), path)]
            if len(matches) == 1:
                return matches[0]
        methods = [d for d in defs if d.kind == "method"]
        return methods[0] if len(methods) == 1 and len(defs) == 1 else None
    defs = [d for d in defs if d.kind != "method"]  # a bare `set(` is not `self.set(`
    if len(defs) == 1:
        return defs[0]
    local = [d for d in defs if d.path == str(path) and d.qualified_name == name]
    if len(local) == 1:
        return local[0]
    for module in _import_modules(doc_text, name):
        matches = [d for d in defs if d.qualified_name == name and _module_matches(module, Path(d.path), path)]
        if len(matches) == 1:
            return matches[0]
    return None


def _enclosing_class(node: Node) -> str:
    parent = node.parent
    while parent is not None:
        if parent.type in {"class_definition", "class_declaration", "abstract_class_declaration"}:
            name = parent.child_by_field_name("name")
            return name.text.decode() if name is not None and name.text else ""
        parent = parent.parent
    return ""


def call_sites(index: WorkspaceIndex, path: Path, language_id: str) -> tuple[list[Site], int]:
    """Call sites of one file (ambiguous ones with no target), and how many were ambiguous."""
    text = path.read_text("utf-8", errors="replace")
    doc = Document(path.as_uri(), language_id, 1, text)
    if doc.tree is None or doc.language is None:
        return [], 0
    cursor = QueryCursor(doc.language.queries["calls"])
    sites: list[Site] = []
    ambiguous = 0
    for node in cursor.captures(doc.tree.root_node).get("call", []):
        call = node.parent
        receiver = ""
        if call is not None and call.type in {"attribute", "member_expression"}:
            obj = call.child_by_field_name("object")
            receiver = doc.node_text(obj) if obj is not None else ""
            call = call.parent
        if call is None or call.type not in {"call", "call_expression", "new_expression"}:
            continue
        args = call.child_by_field_name("arguments")
        if args is None or doc.source[args.start_byte:args.start_byte + 1] != b"(":
            continue
        name = doc.node_text(node)
        if not index.lookup(name):
            continue  # not defined in the workspace (builtins, dependencies)
        target = resolve(index, text, path, name, receiver.split(".")[-1] if receiver else "",
                         _enclosing_class(node))
        if target is None:
            ambiguous += 1
        sites.append(Site(path, args.start_byte + 1, name, target, target is not None and target.path == str(path)))
    return sites, ambiguous


def evaluate(package: str, root: Path, language_ids: dict[str, str], max_sites: int, rng: random.Random,
             verbose: bool) -> dict[str, dict[str, float]]:
    """Recall per category for one package."""
    root = root.resolve()
    index = WorkspaceIndex([root])
    index.build_sync()
    all_sites: list[Site] = []
    ambiguous = 0
    for path in iter_source_files(root):
        if path.name.endswith(".d.ts") or path.suffix not in language_ids:
            continue
        sites, amb = call_sites(index, path, language_ids[path.suffix])
        all_sites.extend(sites)
        ambiguous += amb
    rng.shuffle(all_sites)
    results: dict[str, list[bool]] = defaultdict(list)
    timings: list[float] = []
    in_window = 0
    for site in all_sites:
        category = "cross-file" if site.target is not None else "ambiguous*"
        if site.same_file and site.target is not None:
            cursor_line = site.path.read_bytes()[: site.cursor_byte].count(b"\n")
            category = "same-above" if site.target.start_line < cursor_line else "same-below"
        if len(results[category]) >= max_sites:
            continue
        original = site.path.read_bytes()
        line_end = original.find(b"\n", site.cursor_byte)
        line_end = len(original) if line_end < 0 else line_end
        blanked = (original[: site.cursor_byte] + original[line_end:]).decode("utf-8", errors="replace")
        cursor_offset = len(original[: site.cursor_byte].decode("utf-8", errors="replace"))
        doc = Document(site.path.as_uri(), language_ids[site.path.suffix], 1, blanked)
        start = time.perf_counter()
        ctx = build_completion_context(doc, cursor_offset, index)
        timings.append(time.perf_counter() - start)
        if site.target is None:
            # weaker check where the oracle cannot decide: some callable of that name reached the prompt
            headers = {d.header.split("\n", 1)[0].strip() for d in index.lookup(site.name)
                       if d.name == site.name and d.kind in CALLABLE}
            if any(h in ctx.prefix or h in ctx.suffix for h in headers):
                in_window += 1
                continue
            prompt = ctx.prompt()
            results[category].append(any(h in prompt for h in headers))
            continue
        header = site.target.header.split("\n", 1)[0].strip()
        if site.same_file and (header in ctx.prefix or header in ctx.suffix):
            in_window += 1
            continue  # visible in the windows: not what this measures
        hit = header in ctx.prompt()
        results[category].append(hit)
        if verbose and not hit:
            line_start = blanked.rfind("\n", 0, cursor_offset) + 1
            print(f"  MISS {category} {site.path.relative_to(root)}: {blanked[line_start:cursor_offset].strip()!r}"
                  f" -> {Path(site.target.path).relative_to(root)}:{site.target.start_line + 1} {header!r}")
    out: dict[str, dict[str, float]] = {}
    for category, hits in sorted(results.items()):
        out[category] = {"sites": len(hits), "hits": sum(hits), "recall": sum(hits) / len(hits) if hits else 0.0}
    out["_meta"] = {"ambiguous": ambiguous, "in_window": in_window, "files": index.file_count,
                    "p50_ms": statistics.median(timings) * 1e3 if timings else 0.0,
                    "p95_ms": sorted(timings)[int(len(timings) * 0.95)] * 1e3 if timings else 0.0}
    return out


def _percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return ordered[len(ordered) // 2] * 1e3, ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))] * 1e3


def bench_typing(label: str, root: Path, path: Path, language_id: str, lines: int = 5000) -> None:
    """Per keystroke on a ~5,000-line file: incremental edit + reparse, then the context build."""
    from lsprotocol import types

    from lsp.documents import DocumentStore

    index = WorkspaceIndex([root.resolve()])
    index.build_sync()
    text = path.read_text("utf-8")
    while text.count("\n") < lines:
        text += "\n" + text
    text = "\n".join(text.split("\n")[:lines]) + "\n"
    store = DocumentStore()
    uri = path.resolve().as_uri()
    doc = store.open(uri, language_id, 1, text)
    index.update_document(doc)
    # type inside a function around the middle of the file
    middle = doc.line_start(lines // 2)
    body_line = text.index("return ", middle)
    offset = text.index("\n", body_line)
    typed = "\n    result = compute_value(item, 42) + helper(x)"
    edit_times: list[float] = []
    context_times: list[float] = []
    for version, char in enumerate(typed * 3, start=2):
        position = doc.position_at(offset)
        change = types.TextDocumentContentChangePartial(range=types.Range(start=position, end=position), text=char)
        t0 = time.perf_counter()
        store.change(uri, version, [change], "utf-16")
        t1 = time.perf_counter()
        offset += 1
        build_completion_context(doc, offset, index, recent=store.recent())
        t2 = time.perf_counter()
        edit_times.append(t1 - t0)
        context_times.append(t2 - t1)
    totals = [a + b for a, b in zip(edit_times, context_times, strict=True)]
    update_times: list[float] = []
    for version in range(1000, 1020):  # what the server's debounced index update costs on the loop
        doc.version = version
        t0 = time.perf_counter()
        index.update_document(doc)
        update_times.append(time.perf_counter() - t0)
    for name, samples in (("edit+reparse", edit_times), ("context build", context_times), ("both", totals),
                          ("index update", update_times)):
        p50, p95 = _percentiles(samples)
        print(f"{label:<34}{name:<15} n={len(samples):<4} p50 {p50:6.2f} ms   p95 {p95:6.2f} ms")


def main() -> None:
    """Fetch, evaluate, print a table per language."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--max-sites", type=int, default=150, help="call sites per category and package")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--verbose", action="store_true", help="print every miss")
    parser.add_argument("--no-bench", dest="bench", action="store_false",
                        help="skip the per-keystroke timing on 5,000-line files")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    jobs: list[tuple[str, str, Path, dict[str, str]]] = []
    for name in PYPI:
        jobs.append(("python", name, fetch_pypi(name), {".py": "python"}))
    for name in NPM:
        jobs.append(("typescript", name, fetch_npm(name), {".ts": "typescript", ".tsx": "typescriptreact"}))
    totals: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    print(f"{'language':<11}{'package':<22}{'category':<12}{'sites':>6}{'hits':>6}{'recall':>8}"
          f"{'ambig':>7}{'p50 ms':>8}{'p95 ms':>8}")
    for language, name, root, ids in jobs:
        if args.verbose:
            print(f"== {name} ({root})")
        result = evaluate(name, root, ids, args.max_sites, rng, args.verbose)
        meta = result.pop("_meta")
        for category, row in result.items():
            totals[(language, category)][0] += int(row["sites"])
            totals[(language, category)][1] += int(row["hits"])
            print(f"{language:<11}{name:<22}{category:<12}{int(row['sites']):>6}{int(row['hits']):>6}"
                  f"{row['recall']:>8.1%}{int(meta['ambiguous']):>7}{meta['p50_ms']:>8.2f}{meta['p95_ms']:>8.2f}")
    print()
    targets = {"cross-file": 0.90, "same-above": 0.95, "same-below": 0.95}
    if args.bench:
        zod = fetch_npm("zod")
        bench_typing("zod v3/types.ts (5,000 lines)", zod, zod / "v3" / "types.ts", "typescript")
        click = fetch_pypi("click")
        bench_typing("click core.py (5,000 lines)", click, click / "click" / "core.py", "python")
        print()
    for (language, category), (sites, hits) in sorted(totals.items()):
        recall = hits / sites if sites else 0.0
        if category not in targets:
            print(f"{language:<11}{category:<12} {hits}/{sites} = {recall:.1%} (no target: a same-named callable reached the prompt)")
            continue
        verdict = "ok" if recall >= targets[category] else "BELOW TARGET"
        print(f"{language:<11}{category:<12} {hits}/{sites} = {recall:.1%} (target {targets[category]:.0%}) {verdict}")


if __name__ == "__main__":
    main()
