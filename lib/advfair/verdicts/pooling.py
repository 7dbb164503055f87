"""Pooling over training seeds: one claim's decision from its verdicts in k runs, and each run's record."""
from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import replace

import numpy as np
from scipy import stats

from ..evaluation.paired import Estimate
from ..validation import fail
from .gates import gate_note
from .parts import Part, Verdict, decide
from .rule import NOT_TESTABLE


def pooled_estimate(estimates: Sequence[Estimate]) -> Estimate:
    """The mean of k per-seed estimates on the same points, with a Welch-Satterthwaite 95% t interval:
    variance s^2/k (spread over seeds) + the mean per-seed bootstrap variance (test points, counted in full)."""
    values = np.array([e.value for e in estimates], dtype=float)
    se2 = np.array([e.standard_error ** 2 for e in estimates], dtype=float)
    k = len(values)
    if k == 1:
        return estimates[0]
    if not (np.isfinite(values).all() and np.isfinite(se2).all()):
        nan = float("nan")
        return Estimate(float(np.nanmean(values)) if np.isfinite(values).any() else nan, (nan, nan),
                        estimates[0].n, runs=k)
    between, within_ = float(values.var(ddof=1)) / k, float(se2.mean())
    total = between + within_
    df = float("inf") if between == 0 else total ** 2 / (between ** 2 / (k - 1))
    se = float(np.sqrt(total))
    half = (stats.t.ppf(0.975, df) if np.isfinite(df) else stats.norm.ppf(0.975)) * se
    centre, bounds = float(values.mean()), estimates[0].bounds
    lo, hi = centre - half, centre + half
    if bounds is not None:  # a proportion's t interval stops at its range
        lo, hi = max(bounds[0], lo), min(bounds[1], hi)
    return Estimate(centre, (lo, hi), estimates[0].n, se=se, df=df, runs=k, bounds=bounds)


def _pool_part(parts: Sequence[Part]) -> Part:
    first = parts[0]
    usable = [p for p in parts if p.estimate is not None and p.test is not None]
    if not usable:  # nothing to pool (e.g. a floor gate): a run that is not testable makes the pool so
        failed = [p for p in parts if p.outcome == NOT_TESTABLE]
        if failed and len(failed) < len(parts):
            runs = f"in {len(failed)} of {len(parts)} runs"
            return replace(failed[0], note=f"{failed[0].note} {runs}" if failed[0].note else runs)
        return failed[0] if failed else first
    if len(usable) < 2 or first.estimate is None:
        return first
    estimate = pooled_estimate([p.estimate for p in usable])
    outcome, note = decide(first.test, estimate)
    return replace(first, outcome=outcome, estimate=estimate, note=gate_note(outcome, first.presupposes) if first.gate else note)


def pool(runs: Sequence[Verdict]) -> Verdict:
    """One claim's decision from its verdicts in k runs that differ only in the training seed (the first run's
    labels are shown; runs whose verdict has another shape are left out, and not counted). One run gives that
    run's verdict, marked pooled: a training comparison then stays inconclusive."""
    if not runs:
        fail("runs", "none", "at least one run's verdict")
    claims = {v.claim for v in runs}
    if len(claims) != 1:
        fail("runs", sorted(claims), "verdicts of one claim")
    first = runs[0]
    same = [r for r in runs if len(r.parts) == len(first.parts) and len(r.gates) == len(first.gates)]
    parts = tuple(_pool_part([r.parts[i] for r in same]) for i in range(len(first.parts)))
    gates = tuple(_pool_part([r.gates[i] for r in same]) for i in range(len(first.gates)))
    return replace(first, parts=parts, gates=gates, runs=len(same), pooled=True)


def run_record(outcomes: Sequence[str], unit: str = "seeds") -> dict:
    """A claim's per-run record for `seeds_text`: {outcome: count}, the number of runs and what they are."""
    return {"outcomes": dict(Counter(outcomes)), "n": len(outcomes), "unit": unit}


def with_stability(verdict: Verdict, stability: dict | None) -> Verdict:
    """Attach a claim's per-run record: {"stale": True}, or {"outcomes": {outcome: count}, "n": n, "unit": what the
    runs are}. It is shown beside the verdict and changes no outcome."""
    if stability is None:
        return verdict
    if stability.get("stale"):
        return replace(verdict, stability={"stale": True})
    return replace(verdict, stability={"outcomes": stability["outcomes"], "n": stability["n"],
                                       "unit": stability.get("unit", "seeds")})
