"""Class-wise metrics of per-point outcomes, and the class-wise report built from them.

Conventions: robust accuracy counts a point as robust only if it is classified correctly on the
clean input and on the adversarial input (AutoAttack's convention), so A_rob = A_nat - R_bdy exactly.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import stats

from .paired import SPREAD_STATISTICS, bootstrap_per_class, interval, per_class_accuracy


def robust_correctness(preds: dict[str, np.ndarray], y: np.ndarray, clean: str = "clean") -> dict[str, np.ndarray]:
    """Per-point correctness under each attack, counting a point only if it is also correct on the clean input."""
    correct_clean = np.asarray(preds[clean]) == y
    return {name: (np.asarray(p) == y) & correct_clean for name, p in preds.items()}


def spread(acc: np.ndarray) -> dict[str, float]:
    """Mean, worst and best class, max-min gap, population SD and NSD = SD / mean of a per-class vector."""
    s = spread_rows(acc)
    return {"mean": float(s["mean"]), "worst": float(s["worst"]), "worst_class": int(acc.argmin()),
            "best": float(acc.max()), "best_class": int(acc.argmax()), "gap": float(s["gap"]), "sd": float(s["sd"]),
            "nsd": float(s["nsd"])}


def spread_rows(acc: np.ndarray) -> dict[str, np.ndarray]:
    """The spread statistics (`paired.SPREAD_STATISTICS`) of a per-class vector, or of each row of an (n, C)
    matrix of them (bootstrap resamples)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return {name: statistic(acc) for name, statistic in SPREAD_STATISTICS.items()}


def spearman_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise Spearman rank correlation of (..., C) arrays (broadcast), average ranks for ties; nan
    where either row is constant or holds a nan. One ranking of the whole matrix instead of one call per row."""
    a, b = np.broadcast_arrays(np.asarray(a, dtype=float), np.asarray(b, dtype=float))
    undefined = np.isnan(a).any(-1) | np.isnan(b).any(-1)
    ra, rb = stats.rankdata(np.nan_to_num(a), axis=-1), stats.rankdata(np.nan_to_num(b), axis=-1)
    ra, rb = ra - ra.mean(-1, keepdims=True), rb - rb.mean(-1, keepdims=True)
    denominator = np.sqrt((ra ** 2).sum(-1) * (rb ** 2).sum(-1))
    with np.errstate(divide="ignore", invalid="ignore"):
        rho = np.where(denominator > 0, (ra * rb).sum(-1) / denominator, np.nan)
    return np.where(undefined, np.nan, rho)


def spearman_rows_finite(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """`spearman_rows` over the entries where both rows are finite (nan with fewer than three of them)."""
    a, b = np.broadcast_arrays(np.asarray(a, dtype=float), np.asarray(b, dtype=float))
    flat_a, flat_b = a.reshape(-1, a.shape[-1]), b.reshape(-1, b.shape[-1])
    out = np.full(len(flat_a), np.nan)
    for i, (u, v) in enumerate(zip(flat_a, flat_b)):
        keep = np.isfinite(u) & np.isfinite(v)
        if keep.sum() >= 3:
            out[i] = spearman_rows(u[keep], v[keep])
    return out.reshape(a.shape[:-1])


def partial_spearman_rows(a: np.ndarray, b: np.ndarray, control: np.ndarray) -> np.ndarray:
    """Row-wise partial Spearman correlation of a and b given `control`: the rank correlation of a and b
    that remains once both are adjusted linearly (in ranks) for the control; nan where it is undefined."""
    ab, ac, bc = spearman_rows(a, b), spearman_rows(a, control), spearman_rows(b, control)
    with np.errstate(divide="ignore", invalid="ignore"):
        denominator = np.sqrt((1 - ac ** 2) * (1 - bc ** 2))
        return np.where(denominator > 0, (ab - ac * bc) / np.where(denominator > 0, denominator, 1), np.nan)


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman rank correlation with average ranks for ties (nan if either vector is constant)."""
    return float(spearman_rows(np.asarray(a, dtype=float), np.asarray(b, dtype=float)))


def confusion_matrix(y: np.ndarray, pred: np.ndarray, num_classes: int) -> np.ndarray:
    """M[c, k] = #{true class c, predicted k}."""
    return np.bincount(y * num_classes + pred, minlength=num_classes ** 2).reshape(num_classes, num_classes)


def boundary_error(correct_clean: np.ndarray, correct_adv: np.ndarray) -> float:
    """R_bdy = P(correct on x and wrong on x')."""
    return float((correct_clean & ~correct_adv).mean())


def classwise_report(y: np.ndarray, preds: dict[str, np.ndarray], class_names: Sequence[str], *,
                     clean: str = "clean", n_boot: int = 1000, seed: int = 0) -> dict:
    """The class-wise report of several attacks evaluated on the same points.

    `preds[name]` are the predicted labels under attack `name` (`preds[clean]` on clean inputs).
    Robust correctness requires clean correctness too. Returns a JSON-serialisable dict.
    """
    y = np.asarray(y)
    num_classes = len(class_names)
    correct = robust_correctness(preds, y, clean)
    correct_clean = correct[clean]
    names = list(correct)
    boot_acc = {n: bootstrap_per_class(y, correct[n], n_boot, seed, num_classes) for n in names}
    report: dict = {"classes": list(class_names), "n_per_class": np.bincount(y, minlength=num_classes).tolist(),
                    "attacks": {}, "rank_agreement": {}}
    for n in names:
        acc = per_class_accuracy(correct[n], y, num_classes)
        boot_spreads = spread_rows(boot_acc[n])
        report["attacks"][n] = {
            "per_class": acc.tolist(),
            "per_class_ci": interval(boot_acc[n]),
            "overall": float(correct[n].mean()),
            **spread(acc),
            "ci": {k: interval(boot_spreads[k]) for k in ("mean", "worst", "gap", "sd", "nsd")},
            "boundary_error": boundary_error(correct_clean, correct[n]),
            "confusion": confusion_matrix(y, np.asarray(preds[n]), num_classes).tolist(),
        }
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            rho = spearman(report["attacks"][a]["per_class"], report["attacks"][b]["per_class"])
            report["rank_agreement"][f"{a}|{b}"] = {"rho": rho, "ci": interval(spearman_rows(boot_acc[a], boot_acc[b]))}
    return report


def attack_gains(per_class_weak: Sequence[float], per_class_strong: Sequence[float]) -> dict:
    """Per-class drop from a weaker to a stronger attack: absolute A(weak) - A(strong) and relative
    (drop / A(weak), undefined where the weak attack already breaks the whole class)."""
    a_weak, a_strong = np.asarray(per_class_weak, dtype=float), np.asarray(per_class_strong, dtype=float)
    absolute = a_weak - a_strong
    relative = np.divide(absolute, a_weak, out=np.full_like(absolute, np.nan), where=a_weak > 0)
    return {"absolute": absolute.tolist(), "relative": relative.tolist()}


def head_middle_tail(num_classes: int) -> dict[str, list[int]]:
    """Class groups of a long-tailed set whose class 0 is the most frequent: the first 30% of the classes
    are the head, the last 30% the tail, the rest the middle (CIFAR-10: 0-2, 3-6, 7-9)."""
    if num_classes < 3:
        raise ValueError(f"num_classes={num_classes} is not allowed: expected at least 3 classes")
    k = round(0.3 * num_classes)
    return {"head": list(range(k)), "middle": list(range(k, num_classes - k)),
            "tail": list(range(num_classes - k, num_classes))}


def group_accuracy(per_class: np.ndarray | Sequence[float], groups: dict[str, list[int]]) -> dict[str, float]:
    """Mean of the per-class accuracies of each group's classes (on a balanced test set, the group's accuracy)."""
    acc = np.asarray(per_class, dtype=float)
    return {name: float(acc[list(classes)].mean()) for name, classes in groups.items()}


def group_report(y: np.ndarray, correct: dict[str, np.ndarray], groups: dict[str, list[int]], *, num_classes: int,
                 n_boot: int = 1000, seed: int = 0) -> dict:
    """{attack: {group: {"accuracy", "ci"}}}: each group's accuracy with a stratified bootstrap 95% CI."""
    y = np.asarray(y)
    out = {}
    for name, c in correct.items():
        point = group_accuracy(per_class_accuracy(c, y, num_classes), groups)
        boot = bootstrap_per_class(y, c, n_boot, seed, num_classes)
        out[name] = {g: {"accuracy": point[g], "ci": interval(boot[:, members].mean(1))}
                     for g, members in groups.items()}
    return out


def permutation_spearman(a: np.ndarray, b: np.ndarray, *, n_perm: int = 10000, seed: int = 0) -> dict:
    """Spearman rho of two fixed vectors (e.g. class weight norms and class counts) with a one-sided
    permutation p-value P(rho_perm >= rho): there is no sampling of points to bootstrap over."""
    rho = spearman(a, b)
    if not np.isfinite(rho):  # a constant vector: no ordering to test
        return {"rho": rho, "p_greater": 1.0, "p_less": 1.0}
    rng = np.random.default_rng(seed)
    perms = np.argsort(rng.random((n_perm, len(b))), axis=1)
    null = spearman_rows(np.asarray(a, dtype=float), np.asarray(b, dtype=float)[perms])
    return {"rho": rho, "p_greater": float((np.sum(null >= rho - 1e-12) + 1) / (n_perm + 1)),
            "p_less": float((np.sum(null <= rho + 1e-12) + 1) / (n_perm + 1))}
