"""Fit the outline ranking's weights on whole-line call sites, and check them on other sites.

    python scripts/fit_outline_ranking.py [--max-sites 40] [--fit-seed 7] [--check-seed 11]

The sites are ``scripts/eval_context.py``'s whole-line sites (real packages, the line blanked, the
cursor at its indentation), drawn with two seeds: one to fit, one to check. For each site the
outline facts and the outline's query and share are exactly those of a completion there
(``outline_plan``). A weight vector's worth is the mean, over language x category, of the share of
sites whose callee's header fits in the outline's share.

Fitting is coordinate ascent on a fast approximation (each signal's value per item is
``score_outline`` with that one weight set to 1; packing by each header's cost); the table
it prints comes from the real ``rank_outline`` + ``outline_snippets`` for both weight sets on both
seeds. Definitions shown in full (not outline) are left out here; the eval counts them.
"""

from __future__ import annotations

import argparse
import dataclasses
import random
import sys
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from lsp.context.extract import outline_plan
from lsp.context.index import WorkspaceIndex, iter_source_files
from lsp.context.outline import (
    WEIGHTS,
    OutlineFacts,
    OutlineQuery,
    RankWeights,
    item_tokens,
    outline_snippets,
    rank_outline,
    score_outline,
)
from lsp.context.window_index import WindowIndex
from scripts.eval_context import _blank, _category, _jobs, blanked_document
from scripts.eval_oracle import call_sites

SIGNALS = tuple(f.name for f in dataclasses.fields(RankWeights))
STEPS = (-2.0, -1.0, -0.5, 0.5, 1.0, 2.0)


@dataclass
class Case:
    """One whole-line site: what the outline ranks from and which item is the answer."""

    cell: tuple[str, str]       # language, category
    facts: OutlineFacts
    query: OutlineQuery
    cap: int
    target: tuple[str, int]     # (path, line) of the callee
    comment: str
    indent: str


def cases(seed: int, max_sites: int) -> list[Case]:
    """The whole-line sites of every package, as ``eval_context.py`` draws them with ``seed``."""
    rng = random.Random(seed)
    out: list[Case] = []
    for language, _name, root, ids in _jobs():
        root = root.resolve()
        windows = WindowIndex()
        index = WorkspaceIndex([root], windows=windows)
        index.build_sync()
        sites = []
        for path in iter_source_files(root):
            if not path.name.endswith(".d.ts") and path.suffix in ids:
                sites += call_sites(index, path, ids[path.suffix])[0]
        rng.shuffle(sites)
        counted: dict[str, int] = defaultdict(int)
        for site in sites:
            category = _category(site)
            if site.target is None or counted[category] >= max_sites:
                continue
            blanked, offset, _ = _blank(site, "whole-line")
            doc = blanked_document(site, ids[site.path.suffix], blanked, index)
            windows.update_document(doc.path, doc.version, doc.text)  # as eval_context.py: the open document's windows
            facts = doc.context.outline
            query, cap = outline_plan(doc, offset, index)
            windows.update_document(doc.path, 2, site.path.read_text("utf-8", errors="replace"))
            if facts is None or (site.same_file and query.visible[0] <= site.target.start_line <= query.visible[1]):
                continue  # shown in the windows: not what this measures
            counted[category] += 1
            assert doc.language is not None
            out.append(Case((language, category), facts, query, cap, (site.target.path, site.target.start_line),
                            doc.language.line_comment, "    " if language == "python" else "  "))
    return out


def _unit(name: str) -> RankWeights:
    return RankWeights(**{field: float(field == name) for field in SIGNALS})


def _matrix(case: Case) -> tuple[np.ndarray, np.ndarray, int | None]:
    """Each candidate item's signal values, its cost in estimated tokens, and the answer's row."""
    columns = [score_outline(case.facts, case.query, weights=_unit(name)) for name in SIGNALS]
    items = [item for _, item in columns[0]]
    values = np.array([[column[row][0] for column in columns] for row in range(len(items))]).reshape(-1, len(SIGNALS))
    costs = np.array([item_tokens(item.header, case.comment, case.indent if item.container else "")
                      for item in items], dtype=float)
    target = next((row for row, item in enumerate(items) if (item.path, item.line) == case.target), None)
    return values, costs, target


def _approximate(data: list[tuple[tuple[str, str], np.ndarray, np.ndarray, int | None, int]], w: np.ndarray) -> float:
    cells: dict[tuple[str, str], list[bool]] = defaultdict(list)
    for cell, values, costs, target, cap in data:
        hit = False
        if target is not None:
            scores = values @ w
            above = (scores > scores[target]) | ((scores == scores[target]) & (np.arange(len(scores)) < target))
            hit = costs[above].sum() + costs[target] <= cap * 0.92  # block and class lines take the rest
        cells[cell].append(hit)
    return float(np.mean([np.mean(hits) for hits in cells.values()]))


def recall(sample: list[Case], weights: RankWeights) -> dict[tuple[str, str], float]:
    """Per language x category: the share of sites whose callee's header is in the rendered outline."""
    cells: dict[tuple[str, str], list[bool]] = defaultdict(list)
    for case in sample:
        ranked = rank_outline(case.facts, case.query, weights=weights)
        chosen = [i for s in outline_snippets(ranked, case.cap, case.comment, lambda p: p, case.indent)
                  for i in ranked if s.path == i.path and i.header in s.text]
        cells[case.cell].append(any((i.path, i.line) == case.target for i in chosen))
    return {cell: float(np.mean(hits)) for cell, hits in sorted(cells.items())}


def fit(sample: list[Case], start: RankWeights, rounds: int = 4) -> RankWeights:
    """Coordinate ascent from ``start`` on the approximate objective."""
    data = [(case.cell, *_matrix(case), case.cap) for case in sample]
    w = np.array([getattr(start, name) for name in SIGNALS])
    best = _approximate(data, w)
    for round_number in range(rounds):
        improved = False
        for j in range(len(w)):
            for step in STEPS:
                trial = w.copy()
                trial[j] += step
                value = _approximate(data, trial)
                if value > best + 1e-9:
                    best, w, improved = value, trial, True
        print(f"round {round_number + 1}: approximate mean recall {best:.3f}", flush=True)
        if not improved:
            break
    return RankWeights(**{name: float(value) for name, value in zip(SIGNALS, w, strict=True)})


def main() -> None:
    """Draw both samples, fit on one, print both weight sets' recall on both."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--max-sites", type=int, default=40, help="sites per category and package")
    parser.add_argument("--fit-seed", type=int, default=7)
    parser.add_argument("--check-seed", type=int, default=11)
    args = parser.parse_args()
    fit_sample, check_sample = cases(args.fit_seed, args.max_sites), cases(args.check_seed, args.max_sites)
    print(f"{len(fit_sample)} sites to fit, {len(check_sample)} to check")
    fitted = fit(fit_sample, WEIGHTS)
    print("fitted:", ", ".join(f"{name}={getattr(fitted, name):g}" for name in SIGNALS))
    print(f"{'language':<11}{'category':<12}{'shipped fit':>12}{'new fit':>9}{'shipped check':>15}{'new check':>11}")
    table = [recall(fit_sample, WEIGHTS), recall(fit_sample, fitted), recall(check_sample, WEIGHTS),
             recall(check_sample, fitted)]
    for cell in table[0]:
        print(f"{cell[0]:<11}{cell[1]:<12}" + "".join(f"{t.get(cell, 0):>{n}.1%}" for t, n in zip(table, (12, 9, 15, 11),
                                                                                                  strict=True)))
    print(f"{'mean':<23}" + "".join(f"{np.mean(list(t.values())):>{n}.1%}" for t, n in zip(table, (12, 9, 15, 11),
                                                                                         strict=True)))


if __name__ == "__main__":
    main()
