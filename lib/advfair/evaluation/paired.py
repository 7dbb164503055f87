"""Paired statistics over the same test points: stratified bootstrap intervals and McNemar's exact test.

Every comparison of two models, two attacks or two inference heads is made on per-point outcomes of the
*same* points. The bootstrap resamples points within each class (class sizes stay fixed), and equal seeds
give equal resamples, so a statistic of several outcome vectors is computed on one shared resample each time.
"""
from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

from ..validation import fail

# A statistic of per-class accuracy vectors: each argument has shape (..., C), the result shape (...).
Statistic = Callable[..., np.ndarray]


@dataclass(frozen=True)
class Estimate:
    """A paired estimate with its 95% interval, on `n` points. A per-run estimate carries a percentile bootstrap
    (or exact) interval; a pooled one (`advfair.verdicts.pool`) its standard error, the degrees of freedom of
    its t interval and the number of training runs it pools."""

    value: float
    ci: tuple[float, float]
    n: int
    se: float | None = None
    df: float = float("inf")
    runs: int = 1
    bounds: tuple[float, float] | None = None  # the statistic's range (a proportion's [0, 1]): a pooled interval stops there

    @property
    def standard_error(self) -> float:
        """The stored SE, else the interval's half-width / 1.96 (a normal reading of a percentile interval)."""
        if self.se is not None:
            return self.se
        return (self.ci[1] - self.ci[0]) / (2 * 1.959964)

    def to_json(self) -> dict:
        out = {"value": self.value, "ci": list(self.ci), "n": self.n}
        if self.se is not None:
            out.update(se=self.se, df=self.df if np.isfinite(self.df) else None, runs=self.runs)
        if self.bounds is not None:
            out["bounds"] = list(self.bounds)
        return out

    @classmethod
    def from_json(cls, d: dict) -> "Estimate":
        df = d.get("df")
        bounds = d.get("bounds")
        return cls(d["value"], tuple(d["ci"]), d["n"], d.get("se"), float("inf") if df is None else df, d.get("runs", 1),
                   None if bounds is None else tuple(bounds))


def stratified_bootstrap(y: np.ndarray, n_boot: int, seed: int) -> np.ndarray:
    """(n_boot, N) index resamples drawn within each class, so class sizes stay fixed."""
    rng = np.random.default_rng(seed)
    out = np.empty((n_boot, len(y)), dtype=np.int64)
    for c in np.unique(y):
        members = np.flatnonzero(y == c)
        out[:, members] = members[rng.integers(0, len(members), size=(n_boot, len(members)))]
    return out


def interval(samples: np.ndarray, level: float = 0.95) -> list:
    """Percentile interval over resamples (axis 0), ignoring nan resamples; nan where every resample is nan
    (e.g. the NSD of a class group that no resample gets right), without numpy's all-nan warning."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "All-NaN slice", RuntimeWarning)
        lo, hi = np.nanquantile(samples, [(1 - level) / 2, (1 + level) / 2], axis=0)
    return [float(lo), float(hi)] if np.ndim(lo) == 0 else [lo.tolist(), hi.tolist()]


def bootstrap_per_class(y: np.ndarray, correct: np.ndarray, n_boot: int, seed: int, num_classes: int) -> np.ndarray:
    """(n_boot, C) per-class accuracies over stratified resamples. Resampling within classes keeps
    y[boot] == y, so each entry is an exact integer count of correct points divided once by the class size:
    the same bits on every CPU. (A float matrix product would round by whichever BLAS kernel the CPU gets,
    and an interval endpoint then prints differently on another machine.) Equal seeds give paired resamples.
    `num_classes` comes from the class names, never from the labels present."""
    hits = np.asarray(correct, dtype=bool)[stratified_bootstrap(y, n_boot, seed)]
    counts = np.stack([hits[:, y == c].sum(1) for c in range(num_classes)], axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return counts / np.bincount(y, minlength=num_classes)


def paired_statistic(y: np.ndarray, outcomes: Sequence[np.ndarray], statistic: Statistic, *, num_classes: int,
                     n_boot: int = 1000, seed: int = 0) -> Estimate:
    """statistic(per-class accuracy of each outcome vector) on the points, with a paired bootstrap interval.

    `outcomes` are boolean per-point vectors on the same points, passed to `statistic` in order; it must
    work on (C,) and on (n_boot, C) arrays alike."""
    y = np.asarray(y)
    point = [per_class_accuracy(np.asarray(v), y, num_classes) for v in outcomes]
    boot = [bootstrap_per_class(y, np.asarray(v), n_boot, seed, num_classes) for v in outcomes]
    with np.errstate(divide="ignore", invalid="ignore"):
        value, samples = float(statistic(*point)), np.asarray(statistic(*boot), dtype=float)
    return Estimate(value, tuple(interval(samples)), len(y))


def paired_difference(y: np.ndarray, correct_a: np.ndarray, correct_b: np.ndarray, statistic: Statistic, *,
                      num_classes: int, n_boot: int = 1000, seed: int = 0) -> Estimate:
    """statistic(B) - statistic(A) for one statistic of a per-class accuracy vector (e.g. `mean`, `worst`)."""
    return paired_statistic(y, [correct_a, correct_b], lambda a, b: statistic(b) - statistic(a),
                            num_classes=num_classes, n_boot=n_boot, seed=seed)


def per_class_accuracy(correct: np.ndarray, y: np.ndarray, num_classes: int) -> np.ndarray:
    """(C,) accuracy of each class: its integer count of correct points over its size (nan for an empty class)."""
    y = np.asarray(y)
    counts = np.bincount(y[np.asarray(correct, dtype=bool)], minlength=num_classes)
    with np.errstate(divide="ignore", invalid="ignore"):
        return counts / np.bincount(y, minlength=num_classes)


# ---- statistics of per-class accuracy vectors (..., C) ----

def mean(acc: np.ndarray) -> np.ndarray:
    return acc.mean(-1)


def worst(acc: np.ndarray) -> np.ndarray:
    return acc.min(-1)


def gap(acc: np.ndarray) -> np.ndarray:
    return acc.max(-1) - acc.min(-1)


def sd(acc: np.ndarray) -> np.ndarray:
    return acc.std(-1)


def nsd(acc: np.ndarray) -> np.ndarray:
    m = acc.mean(-1)
    return np.where(m > 0, acc.std(-1) / np.where(m > 0, m, 1), np.nan)


def of_classes(classes: Sequence[int]) -> Statistic:
    """The mean accuracy of some classes (one class, or a head / tail group)."""
    members = list(classes)
    return lambda acc: acc[..., members].mean(-1)


SPREAD_STATISTICS: dict[str, Statistic] = {"mean": mean, "worst": worst, "gap": gap, "sd": sd, "nsd": nsd}


def mcnemar(correct_a: np.ndarray, correct_b: np.ndarray) -> dict[str, float]:
    """Exact McNemar test on paired outcomes: b = only A correct, c = only B correct."""
    b = int((correct_a & ~correct_b).sum())
    c = int((~correct_a & correct_b).sum())
    p = 1.0 if b + c == 0 else float(stats.binomtest(b, b + c, 0.5).pvalue)
    return {"only_a_correct": b, "only_b_correct": c, "p_value": p}


# ---- paired summaries of per-point values (not accuracies) ----

def paired_mean_difference(y: np.ndarray, a: np.ndarray, b: np.ndarray, *, n_boot: int = 1000,
                           seed: int = 0) -> Estimate:
    """mean(b) - mean(a) of two per-point statistics on the same points, with the class-stratified paired
    bootstrap interval (points where either value is nan are left out)."""
    y, a, b = np.asarray(y), np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if not (len(y) == len(a) == len(b)):
        fail("points", f"{len(y)}, {len(a)} and {len(b)} values", "per-point values of the same points")
    keep = np.isfinite(a) & np.isfinite(b)
    y, diff = y[keep], b[keep] - a[keep]
    if len(y) == 0:
        return Estimate(float("nan"), (float("nan"), float("nan")), 0)
    boot = stratified_bootstrap(y, n_boot, seed)
    return Estimate(float(diff.mean()), tuple(interval(diff[boot].mean(1))), int(len(y)))


def mean_estimate(y: np.ndarray, values: np.ndarray, *, n_boot: int = 1000, seed: int = 0) -> Estimate:
    """The mean of a per-point statistic with its class-stratified bootstrap interval."""
    return paired_mean_difference(y, np.zeros(len(values)), values, n_boot=n_boot, seed=seed)


def proportion_estimate(k: int, n: int) -> Estimate:
    """k of n as a proportion with its exact (Clopper-Pearson) 95 % interval."""
    if n <= 0:
        return Estimate(float("nan"), (float("nan"), float("nan")), 0)
    ci = stats.binomtest(int(k), int(n)).proportion_ci(0.95)
    return Estimate(k / n, (float(ci.low), float(ci.high)), int(n), bounds=(0.0, 1.0))


def difference_of_means(mean_a: float, var_a: float, n_a: int, mean_b: float, var_b: float, n_b: int) -> Estimate:
    """mean_b - mean_a with a normal-approximation (Welch) 95 % interval, from summary statistics."""
    if n_a < 2 or n_b < 2:
        return Estimate(float("nan"), (float("nan"), float("nan")), int(n_a + n_b))
    value = mean_b - mean_a
    half = 1.959964 * float(np.sqrt(var_a / n_a + var_b / n_b))
    return Estimate(float(value), (float(value - half), float(value + half)), int(n_a + n_b))


def matched_difference(strata: list[dict]) -> Estimate:
    """Stratified (equal stratum weights) mean change of l_cls of the high-r samples minus that of the rest
    (the strata of `advfair.objectives.alp_records`),
    with a normal 95 % interval; strata with fewer than two samples in a group are left out."""
    usable = [s for s in strata if s["high"]["n"] >= 2 and s["rest"]["n"] >= 2]
    if not usable:
        return Estimate(float("nan"), (float("nan"), float("nan")), 0)
    parts = [difference_of_means(s["rest"]["mean"], s["rest"]["var"], s["rest"]["n"],
                                 s["high"]["mean"], s["high"]["var"], s["high"]["n"]) for s in usable]
    value = float(np.mean([p.value for p in parts]))
    # each part's half-width is 1.96 SE: combine the SEs of the equally weighted strata
    se = float(np.sqrt(sum(((p.ci[1] - p.ci[0]) / (2 * 1.959964)) ** 2 for p in parts)) / len(parts))
    n = sum(s["high"]["n"] + s["rest"]["n"] for s in usable)
    return Estimate(value, (value - 1.959964 * se, value + 1.959964 * se), int(n))
