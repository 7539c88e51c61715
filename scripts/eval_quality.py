"""Completion quality with a real model: next-line exact match and edit similarity on real packages.

    python scripts/eval_quality.py [--model smollm2] [--sites 210] [--budget-tokens 384] [--max-tokens 16]

Real packages are fetched at run time (``scripts/eval_packages.py``: PyPI wheels of requests, rich,
click; npm tarballs of zod, @tanstack/query-core, @trpc/server; Go's net/http, log/slog,
encoding/json). Sites are call lines (``scripts/eval_oracle.py``), sampled evenly per language, in
whole-line mode: the whole line is blanked and the cursor sits at its indentation (the developer
has not typed anything of it yet). Each site is completed through the real backend
(``python -m backend serve``, HTTP, ``/v1/completions`` with ``prompt`` + ``suffix``, greedy) in
three setups:

1. ``prefix-suffix``: the prefix and suffix windows only, as llm-ls and tabby-agent send;
2. ``ours``: the language server's full context (``build_completion_context``: related
   definitions, imports... as comment snippets, then the prefix) with the same suffix;
3. ``ours-switched``: the same request to a backend whose hole-filling mode is switched
   (``--hole-filling``: "chat" <-> "continue"; the default is what `HOLE_MODES` chose).

The answer is post-processed as the language server does (`lsp.postprocess`) and its first line
is compared with the true line: exact match (whitespace-trimmed) and edit similarity
(1 - Levenshtein distance / longer length). 95% intervals: Wilson for a rate, normal for a mean,
and a paired bootstrap for the difference of each setup against ``prefix-suffix``.

What the code under test never sees: the blanked line (it is gone from the document the context
is built from and from the request). The index holds the other files as they are on disk.
A 135 M model is weak: read the numbers as differences between setups, not as absolute quality.
Prompts are capped at ``--budget-tokens`` (estimated) and answers at ``--max-tokens`` to keep a
CPU run within an hour; a line longer than that cannot match exactly in any setup.
"""

from __future__ import annotations

import argparse
import math
import random
import statistics
import sys
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx

from lsp.context.extract import build_completion_context
from lsp.context.index import WorkspaceIndex, iter_source_files
from lsp.context.model import CodeContext
from lsp.documents import Document
from lsp.indentation import indent_unit
from lsp.postprocess import PostprocessInput, postprocess
from scripts.eval_oracle import Site, call_sites
from scripts.eval_packages import fetch_go_std, fetch_npm, fetch_pypi
from tests.backend_process import RunningServer, start_backend

PYPI = ("requests", "rich", "click")
NPM = ("zod", "@tanstack/query-core", "@trpc/server")
GO_STD = ("net/http", "log/slog", "encoding/json")
SETUPS = ("prefix-suffix", "ours", "ours-switched")


@dataclass(frozen=True)
class Case:
    """One site ready to request: the windows, the full prompt, and the true line."""

    language: str
    label: str
    ctx: CodeContext
    doc_prefix: str
    doc_suffix: str
    truth: str
    brace_language: bool


@dataclass
class Result:
    """One setup's answer at one site."""

    exact: bool
    similarity: float
    seconds: float


def levenshtein(a: str, b: str) -> int:
    """Edit distance (insert, delete, substitute), two rows."""
    if len(a) < len(b):
        a, b = b, a
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


def similarity(a: str, b: str) -> float:
    """1 - Levenshtein distance / longer length (1.0 for two empty strings)."""
    longest = max(len(a), len(b))
    return 1.0 if longest == 0 else 1.0 - levenshtein(a, b) / longest


def wilson(hits: int, n: int) -> tuple[float, float]:
    """95% Wilson interval of a rate."""
    if n == 0:
        return 0.0, 0.0
    z = 1.96
    p = hits / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


def mean_interval(values: list[float]) -> tuple[float, float, float]:
    """(mean, low, high): a normal 95% interval of the mean."""
    mean = statistics.fmean(values) if values else 0.0
    if len(values) < 2:
        return mean, mean, mean
    half = 1.96 * statistics.stdev(values) / math.sqrt(len(values))
    return mean, mean - half, mean + half


def paired_bootstrap(a: list[float], b: list[float], rng: random.Random, rounds: int = 2000) -> tuple[float, float, float]:
    """(mean of b - a, 95% low, high) by resampling sites."""
    diffs = [y - x for x, y in zip(a, b, strict=True)]
    n = len(diffs)
    means = sorted(statistics.fmean(rng.choices(diffs, k=n)) for _ in range(rounds))
    return statistics.fmean(diffs), means[int(0.025 * rounds)], means[int(0.975 * rounds) - 1]


def _blank_line(site: Site) -> tuple[str, int, str]:
    """The document with the site's line blanked from its indentation, the cursor offset, the line."""
    original = site.path.read_bytes()
    line_end = original.find(b"\n", site.cursor_byte)
    line_end = len(original) if line_end < 0 else line_end
    line_start = original.rfind(b"\n", 0, site.cursor_byte) + 1
    line = original[line_start:line_end]
    cut = line_start + len(line) - len(line.lstrip())
    blanked = (original[:cut] + original[line_end:]).decode("utf-8", errors="replace")
    gone = original[cut:line_end].decode("utf-8", errors="replace")
    return blanked, len(original[:cut].decode("utf-8", errors="replace")), gone.rstrip()


def collect_cases(per_language: int, budget_tokens: int, rng: random.Random) -> list[Case]:
    """Sites sampled evenly from each language's packages, with their contexts built."""
    jobs: list[tuple[str, Path, dict[str, str]]] = []
    jobs += [("python", fetch_pypi(name), {".py": "python"}) for name in PYPI]
    jobs += [("typescript", fetch_npm(name), {".ts": "typescript"}) for name in NPM]
    jobs += [("go", fetch_go_std(name), {".go": "go"}) for name in GO_STD]
    by_language: dict[str, list[Case]] = defaultdict(list)
    for language, root, ids in jobs:
        root = root.resolve()
        index = WorkspaceIndex([root])
        index.build_sync()
        sites: list[Site] = []
        for path in iter_source_files(root):
            if path.name.endswith(".d.ts") or path.suffix not in ids:
                continue
            sites.extend(call_sites(index, path, ids[path.suffix])[0])
        rng.shuffle(sites)
        taken = 0
        for site in sites:
            if taken >= per_language // len(PYPI) + 1:
                break
            blanked, offset, truth = _blank_line(site)
            if len(truth) < 4:
                continue
            doc = Document(site.path.as_uri(), ids[site.path.suffix], 1, blanked)
            ctx = build_completion_context(doc, offset, index, budget_tokens=budget_tokens, deadline_s=1.0)
            label = f"{root.name}/{site.path.relative_to(root)}:{blanked[:offset].count(chr(10)) + 1}"
            brace = not doc.language.indent_blocks if doc.language is not None else ctx.line_comment == "//"
            by_language[language].append(Case(language, label, ctx, blanked[:offset], blanked[offset:], truth, brace))
            taken += 1
    cases: list[Case] = []
    for language_cases in by_language.values():
        cases += language_cases[:per_language]
    return cases


def complete(client: httpx.Client, server: RunningServer, model: str, prompt: str, suffix: str,
             max_tokens: int) -> tuple[str, float]:
    """(text, seconds) of one greedy completion through the backend."""
    started = time.perf_counter()
    response = client.post(
        f"{server.url}/completions",
        json={"model": model, "prompt": prompt, "suffix": suffix, "max_tokens": max_tokens, "temperature": 0},
        headers={"Authorization": f"Bearer {server.api_key}"},
    )
    response.raise_for_status()
    return str(response.json()["choices"][0]["text"]), time.perf_counter() - started


def score(case: Case, raw: str, seconds: float) -> Result:
    """Post-process as the language server does and compare the first line with the truth."""
    ctx = case.ctx
    settings = PostprocessInput(prefix=case.doc_prefix, suffix=case.doc_suffix, multiline=ctx.multiline,
                                brace_language=case.brace_language, indent_unit=indent_unit(ctx.prompt()[-4000:]))
    text = postprocess(raw, settings) or ""
    first = text.split("\n", 1)[0].strip()
    return Result(first == case.truth.strip(), similarity(first, case.truth.strip()), seconds)


def run_setups(cases: list[Case], server: RunningServer, setups: tuple[str, ...], max_tokens: int,
               results: dict[str, list[Result]], verbose: bool) -> None:
    """Request every case in the given setups (all through `server`), appending to results."""
    with httpx.Client(timeout=600) as client:
        model = client.get(f"{server.url}/models", headers={"Authorization": f"Bearer {server.api_key}"}).json()["data"][0]["id"]
        for number, case in enumerate(cases, 1):
            for setup in setups:
                prompt = case.ctx.prefix if setup == "prefix-suffix" else case.ctx.prompt()
                raw, seconds = complete(client, server, model, prompt, case.ctx.suffix, max_tokens)
                result = score(case, raw, seconds)
                results[setup].append(result)
                if verbose:
                    print(f"  {setup:<14}{'=' if result.exact else ' '} {case.label}: {case.truth!r} <- {raw!r}")
            if number % 20 == 0:
                print(f"  {number}/{len(cases)} sites ({', '.join(setups)})", flush=True)


def report(cases: list[Case], results: dict[str, list[Result]], modes: dict[str, str], rng: random.Random) -> None:
    """The table per language and setup, then the paired differences."""
    print(f"\n{'language':<12}{'setup':<28}{'sites':>6}{'exact match (95% CI)':>26}"
          f"{'edit similarity (95% CI)':>28}{'s/suggestion p50':>18}")
    languages = [*sorted({c.language for c in cases}), "all"]
    for language in languages:
        picked = [i for i, c in enumerate(cases) if language in ("all", c.language)]
        for setup in SETUPS:
            rows = [results[setup][i] for i in picked]
            hits = sum(r.exact for r in rows)
            low, high = wilson(hits, len(rows))
            mean, s_low, s_high = mean_interval([r.similarity for r in rows])
            seconds = statistics.median(r.seconds for r in rows)
            name = f"{setup} ({modes[setup]})"
            print(f"{language:<12}{name:<28}{len(rows):>6}{hits / len(rows):>8.1%} [{low:.1%}, {high:.1%}]"
                  f"{mean:>10.3f} [{s_low:.3f}, {s_high:.3f}]{seconds:>12.2f}")
    print("\npaired differences against prefix-suffix, all sites (bootstrap 95% CI):")
    base = results["prefix-suffix"]
    for setup in SETUPS[1:]:
        em = paired_bootstrap([float(r.exact) for r in base], [float(r.exact) for r in results[setup]], rng)
        es = paired_bootstrap([r.similarity for r in base], [r.similarity for r in results[setup]], rng)
        print(f"  {setup:<14} exact match {em[0]:+.1%} [{em[1]:+.1%}, {em[2]:+.1%}]   "
              f"edit similarity {es[0]:+.3f} [{es[1]:+.3f}, {es[2]:+.3f}]")
    em = paired_bootstrap([float(r.exact) for r in results["ours"]], [float(r.exact) for r in results["ours-switched"]], rng)
    es = paired_bootstrap([r.similarity for r in results["ours"]], [r.similarity for r in results["ours-switched"]], rng)
    print(f"  ours-switched vs ours: exact match {em[0]:+.1%} [{em[1]:+.1%}, {em[2]:+.1%}]   "
          f"edit similarity {es[0]:+.3f} [{es[1]:+.3f}, {es[2]:+.3f}]")


def main() -> None:
    """Fetch, build contexts, run the three setups through real backends, print the table."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--model", default="smollm2")
    parser.add_argument("--engine", default="transformers", choices=("transformers", "vllm"))
    parser.add_argument("--sites", type=int, default=210, help="sites in all, split evenly over the 3 languages")
    parser.add_argument("--budget-tokens", type=int, default=384, help="the language server's prompt budget")
    parser.add_argument("--torch-threads", type=int, default=1, help="transformers engine threads (1: a shared CPU)")
    parser.add_argument("--max-tokens", type=int, default=16)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--verbose", action="store_true", help="print every answer")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    started = time.perf_counter()
    cases = collect_cases(args.sites // 3, args.budget_tokens, rng)
    print(f"{len(cases)} sites ({', '.join(f'{k} {v}' for k, v in sorted(_count(cases).items()))}); "
          f"contexts built in {time.perf_counter() - started:.0f} s")
    results: dict[str, list[Result]] = defaultdict(list)
    modes: dict[str, str] = {}
    for hole_mode, setups in (("auto", ("prefix-suffix", "ours")), ("switched", ("ours-switched",))):
        extra = ["--torch-threads", str(args.torch_threads)] if args.engine == "transformers" else []
        if hole_mode == "switched":
            extra += ["--hole-filling", "chat" if modes["ours"] == "continue" else "continue"]
        server = start_backend(args.engine, args.model, ("eval-key",), extra)
        try:
            mode = _hole_mode(server)
            for setup in setups:
                modes[setup] = mode
            print(f"backend {args.engine} {args.model}, hole filling {mode}: {', '.join(setups)}", flush=True)
            run_setups(cases, server, setups, args.max_tokens, results, args.verbose)
        finally:
            server.stop()
    report(cases, results, modes, rng)
    print(f"\n{time.perf_counter() - started:.0f} s in all")


def _count(cases: list[Case]) -> dict[str, int]:
    counts: dict[str, int] = defaultdict(int)
    for case in cases:
        counts[case.language] += 1
    return counts


def _hole_mode(server: RunningServer) -> str:
    """The hole-filling mode the server logged when the model became ready."""
    log = server.log()
    marker = "hole filling "
    at = log.rfind(marker)
    return log[at + len(marker):].split(")", 1)[0] if at >= 0 else "?"


if __name__ == "__main__":
    main()
