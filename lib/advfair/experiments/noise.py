"""What training noise does to a chapter's verdicts, read from its stability file (no run): each estimate per
seed beside one run's standard error (`seed_spread`, `seed_spread_text`), and the decisions the book would reach
with fewer seeds (`pooled_over`, `pooled_over_text`). The chapters' exercises on noise use them."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from ..tables import part_with_ci
from ..validation import fail
from ..verdicts import Part, Verdict, pool

SD_COLUMN, SE_COLUMN = "SD over seeds", "a run's standard error (mean)"


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


def _aligned_parts(runs: list[Verdict]) -> list[tuple[str, tuple[Part, ...]]]:
    """(label, the runs' parts) position by position, as `pool` aligns them. A label that differs between seeds
    (e.g. a temperature picked per seed) shows every seed's label; a claim whose runs have different numbers of
    parts has no row."""
    if len({len(run.parts) for run in runs}) != 1:
        return []
    out = []
    for parts in zip(*(run.parts for run in runs)):
        labels = list(dict.fromkeys(p.label for p in parts))
        out.append((" / ".join(labels), parts))
    return out


def seed_spread(record: dict) -> pd.DataFrame:
    """Each claim's primary parts in every training seed of a stability record: the run's outcome, estimate and
    interval, then the SD of the estimates over the seeds beside one run's standard error (the mean over the
    seeds; display units). Where the SD is the larger, training noise outweighs the test points' noise, which is
    all one run's interval counts. Needs two seeds or more."""
    if record is not None and len(record["seeds"]) < 2:
        fail("stability file", f"seeds {record['seeds']}", "two training seeds or more")
    rows = []
    for claim in _claims(record):
        for label, parts in _aligned_parts(_runs(record, claim, record["seeds"])):
            first = parts[0]
            if not first.primary or first.gate or any(p.estimate is None for p in parts):
                continue
            values = np.array([p.scale * p.estimate.value for p in parts])
            errors = np.array([p.scale * p.estimate.standard_error for p in parts])
            row = {"claim": claim, "part": label}
            row |= {f"seed {s}": part_with_ci(p) for s, p in zip(record["seeds"], parts)}
            row |= {SD_COLUMN: f"{values.std(ddof=1):.{first.digits + 1}f}",
                    SE_COLUMN: f"{errors.mean():.{first.digits + 1}f}"}
            rows.append(row)
    columns = ["claim", "part", *(f"seed {s}" for s in record["seeds"]), SD_COLUMN, SE_COLUMN]
    return pd.DataFrame(rows, columns=columns).set_index(["claim", "part"])


def seed_spread_text(table: pd.DataFrame) -> str:
    """Which parts of a `seed_spread` table vary more between seeds than one run's standard error."""
    sd, se = table[SD_COLUMN].astype(float), table[SE_COLUMN].astype(float)
    noisy = table[sd > se]
    if noisy.empty:
        return (f"In none of the {len(table)} parts does the SD over seeds exceed one run's standard error: here the "
                "test points' noise, which one run's interval counts, is the larger.")
    names = "; ".join(f"{claim} ({part})" for claim, part in noisy.index)
    return (f"In {len(noisy)} of {len(table)} parts the SD over seeds exceeds one run's standard error: {names}. "
            "There one run's interval, which counts only the test points, understates the uncertainty; the pooled "
            "interval adds the spread over seeds.")


def pooled_over(record: dict, subsets: Sequence[Sequence[int]]) -> pd.DataFrame:
    """Each claim's decision pooled (`advfair.verdicts.pool`) over each subset of a stability record's training
    seeds: what the book would decide with fewer runs (one run leaves a training comparison inconclusive)."""
    def column(seeds: Sequence[int]) -> str:
        return f"seeds {', '.join(map(str, seeds))}" if len(seeds) > 1 else f"seed {seeds[0]} alone"

    rows = {claim: {column(seeds): pool(_runs(record, claim, seeds)).outcome for seeds in subsets}
            for claim in _claims(record)}
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("claim")


def pooled_over_text(table: pd.DataFrame) -> str:
    """Which decisions of a `pooled_over` table (its first column the full pool) change with fewer seeds."""
    full, fewer = table.columns[0], table.columns[1:]
    changes = []
    for claim, row in table.iterrows():
        moved = [f"{row[c]} with {c}" for c in fewer if row[c] != row[full]]
        if moved:
            changes.append(f"{claim} ({row[full]} → {', '.join(moved)})")
    if not changes:
        return f"No decision of the full pool ({full}) changes with fewer seeds."
    return (f"{len(changes)} of {len(table)} decisions of the full pool ({full}) change with fewer seeds: "
            f"{'; '.join(changes)}. One seed cannot decide a comparison between trained models (it counts no "
            "training noise; the verdict table's per-run verdicts are diagnostics, not decisions); a claim about "
            "attacks on one model can be decided on one run.")

