"""What training noise does to a chapter's verdicts, read from its stability file (no run): each estimate per
seed beside one run's interval (`seed_spread`, `seed_spread_text`), and the decisions the book would reach with
fewer seeds (`pooled_over`). The chapters' exercises on noise use them."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from ..tables import with_ci
from ..validation import fail
from ..verdicts import Part, Verdict, pool


def _claims(record: dict | None) -> list[str]:
    if record is None:
        fail("stability file", "none for this profile", "a committed one: `python -m advfair stability CHAPTER "
             "--profile PROFILE --seeds 0 1 2 --into-book` writes it")
    return list(record["per_seed"][str(record["seeds"][0])]["verdicts"])


def _runs(record: dict, claim: str, seeds: Sequence[int]) -> list[Verdict]:
    missing = [s for s in seeds if s not in record["seeds"]]
    if missing or not seeds:
        fail("seeds", list(seeds), f"some of the stability file's training seeds {record['seeds']}")
    return [Verdict.from_json(record["per_seed"][str(s)]["verdicts"][claim]["verdict"]) for s in seeds]


def seed_spread(record: dict) -> pd.DataFrame:
    """Each claim's primary parts in every training seed of a stability record: the run's outcome, estimate and
    interval, then the SD of the estimates over the seeds beside the runs' mean interval half-width (in the part's
    display units). Seed noise the size of a run's interval or larger is what one run cannot count."""
    rows = []
    for claim in _claims(record):
        runs = _runs(record, claim, record["seeds"])
        for i, part in enumerate(runs[0].parts):
            if not part.primary or part.gate or part.estimate is None:
                continue
            parts = [run.parts[i] for run in runs]
            values = np.array([p.scale * p.estimate.value for p in parts])
            halves = np.array([p.scale * (p.estimate.ci[1] - p.estimate.ci[0]) / 2 for p in parts])
            row = {"claim": claim, "part": part.label}
            row |= {f"seed {s}": _part_text(p) for s, p in zip(record["seeds"], parts)}
            row |= {"SD over seeds": f"{values.std(ddof=1):.{part.digits}f}",
                    "mean half-width": f"{halves.mean():.{part.digits}f}"}
            rows.append(row)
    return pd.DataFrame(rows)


def pooled_over(record: dict, subsets: Sequence[Sequence[int]]) -> pd.DataFrame:
    """Each claim's decision pooled (`advfair.verdicts.pool`) over each subset of a stability record's training
    seeds: what the book would decide with fewer runs (one run leaves a training comparison inconclusive)."""
    def column(seeds: Sequence[int]) -> str:
        return f"seeds {', '.join(map(str, seeds))}" if len(seeds) > 1 else f"seed {seeds[0]}"

    return pd.DataFrame([{"claim": claim, **{column(seeds): pool(_runs(record, claim, seeds)).outcome
                                             for seeds in subsets}} for claim in _claims(record)])


def _part_text(part: Part) -> str:
    e = part.estimate
    return f"{part.outcome}: {with_ci(e.value, e.ci, scale=part.scale, digits=part.digits)}"


def seed_spread_text(table: pd.DataFrame) -> str:
    """Which parts of a `seed_spread` table move between seeds by more than one run's interval half-width."""
    noisy = table[table["SD over seeds"].astype(float) > table["mean half-width"].astype(float)]
    names = "; ".join(f"{c} ({p})" for c, p in zip(noisy["claim"], noisy["part"]))
    if noisy.empty:
        return (f"In none of the {len(table)} parts does the estimate move between seeds by more than one run's "
                "interval half-width: here the test points, which one run's interval counts, dominate the noise.")
    return (f"In {len(noisy)} of {len(table)} parts the estimate moves between seeds by more than one run's "
            f"interval half-width: {names}. One run's interval, which counts only the test points, would "
            "understate their uncertainty; the pooled interval adds the spread over seeds.")


def pooled_over_text(table: pd.DataFrame) -> str:
    """Which decisions of a `pooled_over` table (its first column the full pool) change with fewer seeds."""
    full, fewer = table.columns[1], table.columns[2:]
    changes = []
    for _, row in table.iterrows():
        moved = [f"{row[c]} with {c}" for c in fewer if row[c] != row[full]]
        if moved:
            changes.append(f"{row['claim']} ({row[full]} → {', '.join(moved)})")
    if not changes:
        return f"No decision of the full pool ({full}) changes with fewer seeds."
    return (f"{len(changes)} of {len(table)} decisions of the full pool ({full}) change with fewer seeds: "
            f"{'; '.join(changes)}. "
            "One seed cannot decide a comparison between trained models (it counts no training noise); a claim "
            "about attacks on one model can be decided on one run.")
