"""Is a re-execution the committed book? The checks `make test` applies to a fresh run of every page.

- On the machine kind that produced the committed results (same CPU, kernels, threads and library
  versions; `advfair.provenance.machine_kind`) CPU training is bit-reproducible, so the fresh results must equal the
  committed ones exactly (timings, cache hits and the environment record aside).
- On any other machine the floats differ and the trained models follow. The fresh key numbers must then
  lie within the tolerances that the chapter's seed-stability file derives from its spread over training
  seeds and kernel sets (`stability.tolerances`), and every claim whose verdict is the same in all its runs
  must keep it.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .. import pages
from . import CHAPTERS
from .stability import TOLERANCE_FLOOR, stable_claims, tolerances

VOLATILE_KEYS = frozenset({"seconds", "environment", "from_cache"})


@dataclass(frozen=True)
class Page:
    """What the checks need of a page: its key numbers and (for a chapter) its verdicts."""

    key_numbers: Callable[[dict], dict[str, float]]
    verdicts: Callable[[dict], list] | None = None
    floor: float = TOLERANCE_FLOOR


def stable_part(obj: Any) -> Any:
    """The results without what legitimately changes between identical runs."""
    if isinstance(obj, dict):
        return {k: stable_part(v) for k, v in obj.items() if k not in VOLATILE_KEYS}
    if isinstance(obj, list):
        return [stable_part(v) for v in obj]
    return obj


def differences(a: Any, b: Any, path: str = "", limit: int = 10) -> list[str]:
    """Paths where two JSON values differ (at most `limit`)."""
    out: list[str] = []
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b)):
            if key not in a or key not in b:
                out.append(f"{path}/{key}: only in {'the fresh run' if key in a else 'the committed results'}")
            else:
                out += differences(a[key], b[key], f"{path}/{key}", limit - len(out))
            if len(out) >= limit:
                break
    elif isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (u, v) in enumerate(zip(a, b)):
            out += differences(u, v, f"{path}[{i}]", limit - len(out))
            if len(out) >= limit:
                break
    elif not (a == b or (isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b))):
        out.append(f"{path}: fresh {str(a)[:80]} vs committed {str(b)[:80]}")
    return out[:limit]


def same_machine_kind(fresh: dict, committed: dict) -> bool:
    return fresh["environment"]["machine_kind"] == committed["environment"]["machine_kind"]


def check(page: Page, fresh: dict, committed: dict, stability: dict | None) -> list[str]:
    """Problems of a fresh run against the committed results (empty: it reproduces the book)."""
    if same_machine_kind(fresh, committed):
        return [f"exact: {d}" for d in differences(stable_part(fresh), stable_part(committed))]
    problems = []
    if stability is not None and stability["config_hash"] != committed.get("config_hash"):
        return [f"the stability file is stale: made for config {stability['config_hash']}, the committed results are "
                f"for {committed.get('config_hash')} (rerun `python -m advfair stability ... --into-book`)"]
    tol = tolerances(stability) if stability is not None else {}
    fresh_numbers, committed_numbers = page.key_numbers(fresh), page.key_numbers(committed)
    for key, value in committed_numbers.items():
        other = fresh_numbers.get(key)
        limit = tol.get(key, page.floor)
        if other is None:
            # A number some stability runs lack (a verdict part that exists for one outcome only) may be missing.
            if stability is None or key in tol:
                problems.append(f"{key}: missing from the fresh run")
        elif not (math.isfinite(value) and math.isfinite(other)):
            if math.isfinite(value) != math.isfinite(other):
                problems.append(f"{key}: fresh {other} vs committed {value}")
        elif abs(other - value) > limit:
            problems.append(f"{key}: fresh {other:.4f} vs committed {value:.4f}, beyond the tolerance {limit:.4f}")
    if page.verdicts is not None and stability is not None:
        fresh_outcomes = {v.claim: v.outcome for v in page.verdicts(fresh)}
        for claim, outcome in stable_claims(stability).items():
            if fresh_outcomes.get(claim) != outcome:
                problems.append(f"{claim}: stable across seeds as '{outcome}', the fresh run says "
                                f"'{fresh_outcomes.get(claim)}'")
    return problems


def report_key_numbers(report: dict) -> dict[str, float]:
    """The overall accuracy under each attack of an `advfair evaluate` report."""
    return {attack: entry["overall"] for attack, entry in report["reports"]["all"]["attacks"].items()}


# Every executed page of the book, by its results file name (book/results/<name>.json), and the stability
# file its tolerances come from. The evaluate page has no seeds of its own: it gets a wider floor.
# The pages of the registry's CHECKED list (the summary page is checked by the replay only).
_TOOLS = {"evaluate": Page(report_key_numbers, floor=0.05)}
PAGES: dict[str, tuple[Page, str | None]] = {
    f"{name}_cpu": (Page(CHAPTERS[name].key_numbers, CHAPTERS[name].verdicts), name) if name in CHAPTERS
    else (_TOOLS[name], None) for name in pages.CHECKED}
SUMMARY_PAGE = pages.SUMMARY
