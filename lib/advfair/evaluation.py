"""The class-wise report: per class x attack accuracy, spread, rank agreement, confusion, paired tests.

Conventions: robust accuracy counts a point as robust only if it is classified correctly on the
clean input and on the adversarial input (AutoAttack's convention), so A_rob = A_nat - R_bdy exactly.
"""
from __future__ import annotations

import math
import warnings
from collections.abc import Callable

import numpy as np
import torch
from scipy import stats
from torch import nn

Attack = Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]


def predict(model: nn.Module, x: torch.Tensor, *, batch_size: int = 500) -> torch.Tensor:
    """Predicted labels in eval mode (the model's mode is restored)."""
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            return torch.cat([model(x[i:i + batch_size]).argmax(1) for i in range(0, len(x), batch_size)])
    finally:
        model.train(was_training)


def adversarial_predictions(model: nn.Module, x: torch.Tensor, y: torch.Tensor, attack: Attack, *,
                            batch_size: int = 500) -> torch.Tensor:
    """Labels predicted on attack(model, x, y), batch by batch."""
    preds = []
    for i in range(0, len(x), batch_size):
        x_adv = attack(model, x[i:i + batch_size], y[i:i + batch_size])
        preds.append(predict(model, x_adv, batch_size=batch_size))
    return torch.cat(preds)


def robust_correctness(preds: dict[str, np.ndarray], y: np.ndarray, clean: str = "clean") -> dict[str, np.ndarray]:
    """Per-point correctness under each attack, counting a point only if it is also correct on the clean input."""
    correct_clean = np.asarray(preds[clean]) == y
    return {name: (np.asarray(p) == y) & correct_clean for name, p in preds.items()}


def per_class_accuracy(correct: np.ndarray, y: np.ndarray, num_classes: int) -> np.ndarray:
    return np.array([correct[y == c].mean() for c in range(num_classes)])


def spread(acc: np.ndarray) -> dict[str, float]:
    """Mean, worst and best class, max-min gap, population SD and NSD = SD / mean of a per-class vector."""
    mean = float(acc.mean())
    sd = float(acc.std())
    return {"mean": mean, "worst": float(acc.min()), "worst_class": int(acc.argmin()), "best": float(acc.max()),
            "best_class": int(acc.argmax()), "gap": float(acc.max() - acc.min()), "sd": sd,
            "nsd": sd / mean if mean > 0 else math.nan}


def spread_rows(acc: np.ndarray) -> dict[str, np.ndarray]:
    """`spread`'s statistics for each row of an (n, C) matrix of per-class accuracies (bootstrap resamples)."""
    mean, sd = acc.mean(-1), acc.std(-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        nsd = np.where(mean > 0, sd / mean, np.nan)
    return {"mean": mean, "worst": acc.min(-1), "gap": acc.max(-1) - acc.min(-1), "sd": sd, "nsd": nsd}


def spearman_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise Spearman rank correlation of (..., C) arrays (broadcast), average ranks for ties; nan
    where either row is constant. One ranking of the whole matrix instead of one call per row."""
    ra, rb = stats.rankdata(a, axis=-1), stats.rankdata(b, axis=-1)
    ra, rb = np.broadcast_arrays(ra - ra.mean(-1, keepdims=True), rb - rb.mean(-1, keepdims=True))
    denominator = np.sqrt((ra ** 2).sum(-1) * (rb ** 2).sum(-1))
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(denominator > 0, (ra * rb).sum(-1) / denominator, np.nan)


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman rank correlation with average ranks for ties (nan if either vector is constant)."""
    return float(spearman_rows(np.asarray(a, dtype=float), np.asarray(b, dtype=float)))


def confusion_matrix(y: np.ndarray, pred: np.ndarray, num_classes: int) -> np.ndarray:
    """M[c, k] = #{true class c, predicted k}."""
    return np.bincount(y * num_classes + pred, minlength=num_classes ** 2).reshape(num_classes, num_classes)


def boundary_error(correct_clean: np.ndarray, correct_adv: np.ndarray) -> float:
    """R_bdy = P(correct on x and wrong on x')."""
    return float((correct_clean & ~correct_adv).mean())


def mcnemar(correct_a: np.ndarray, correct_b: np.ndarray) -> dict[str, float]:
    """Exact McNemar test on paired outcomes: b = only A correct, c = only B correct."""
    b = int((correct_a & ~correct_b).sum())
    c = int((~correct_a & correct_b).sum())
    p = 1.0 if b + c == 0 else float(stats.binomtest(b, b + c, 0.5).pvalue)
    return {"only_a_correct": b, "only_b_correct": c, "p_value": p}


def stratified_bootstrap(y: np.ndarray, n_boot: int, seed: int) -> np.ndarray:
    """(n_boot, N) index resamples drawn within each class, so class sizes stay fixed."""
    rng = np.random.default_rng(seed)
    out = np.empty((n_boot, len(y)), dtype=np.int64)
    for c in np.unique(y):
        members = np.flatnonzero(y == c)
        out[:, members] = members[rng.integers(0, len(members), size=(n_boot, len(members)))]
    return out


def _interval(samples: np.ndarray, level: float = 0.95) -> list[float]:
    """Percentile interval over resamples, ignoring nan resamples; nan where every resample is nan (e.g. the
    NSD of a class group that no resample gets right), without numpy's all-nan warning."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "All-NaN slice", RuntimeWarning)
        lo, hi = np.nanquantile(samples, [(1 - level) / 2, (1 + level) / 2], axis=0)
    return [float(lo), float(hi)] if np.ndim(lo) == 0 else [lo.tolist(), hi.tolist()]


def classwise_report(y: torch.Tensor | np.ndarray, preds: dict[str, torch.Tensor | np.ndarray],
                     class_names: list[str] | tuple[str, ...], *, clean: str = "clean", n_boot: int = 1000,
                     seed: int = 0) -> dict:
    """The class-wise report of several attacks evaluated on the same points.

    `preds[name]` are the predicted labels under attack `name` (`preds[clean]` on clean inputs).
    Robust correctness requires clean correctness too. Returns a JSON-serialisable dict.
    """
    y = np.asarray(y)
    num_classes = len(class_names)
    correct_clean = np.asarray(preds[clean]) == y
    correct = {name: (np.asarray(p) == y) & (correct_clean if name != clean else True) for name, p in preds.items()}
    names = list(correct)
    boot_acc = {n: _bootstrap_per_class(y, correct[n], n_boot, seed, num_classes) for n in names}
    report: dict = {"classes": list(class_names), "n_per_class": np.bincount(y, minlength=num_classes).tolist(),
                    "attacks": {}, "rank_agreement": {}}
    for n in names:
        acc = per_class_accuracy(correct[n], y, num_classes)
        summary = spread(acc)
        boot_spreads = spread_rows(boot_acc[n])
        report["attacks"][n] = {
            "per_class": acc.tolist(),
            "per_class_ci": _interval(boot_acc[n]),
            "overall": float(correct[n].mean()),
            **summary,
            "ci": {k: _interval(boot_spreads[k]) for k in ("mean", "worst", "gap", "sd", "nsd")},
            "boundary_error": boundary_error(correct_clean, correct[n]),
            "confusion": confusion_matrix(y, np.asarray(preds[n]), num_classes).tolist(),
        }
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            rho = spearman(report["attacks"][a]["per_class"], report["attacks"][b]["per_class"])
            boot_rho = spearman_rows(boot_acc[a], boot_acc[b])
            report["rank_agreement"][f"{a}|{b}"] = {"rho": rho, "ci": _interval(boot_rho)}
    return report


def paired_spread_difference(y: np.ndarray, correct_a: np.ndarray, correct_b: np.ndarray, num_classes: int, *,
                             stat: str = "sd", n_boot: int = 1000, seed: int = 0) -> dict[str, float]:
    """Difference stat(B) - stat(A) of a per-class spread statistic, with a paired stratified bootstrap CI."""
    base = spread(per_class_accuracy(correct_b, y, num_classes))[stat] - \
        spread(per_class_accuracy(correct_a, y, num_classes))[stat]
    diffs = spread_rows(_bootstrap_per_class(y, correct_b, n_boot, seed, num_classes))[stat] - \
        spread_rows(_bootstrap_per_class(y, correct_a, n_boot, seed, num_classes))[stat]
    lo, hi = _interval(diffs)
    return {"difference": float(base), "ci": [lo, hi], "p_not_positive": float((diffs <= 0).mean())}


def spearman_with_ci(values: np.ndarray, correct: np.ndarray, y: np.ndarray, *, n_boot: int = 1000,
                     seed: int = 0) -> dict:
    """Spearman rho between a fixed per-class vector (e.g. weight norms) and per-class accuracy, with a
    stratified bootstrap CI over test points."""
    num_classes = len(values)
    rho = spearman(values, per_class_accuracy(correct, y, num_classes))
    boot = spearman_rows(np.asarray(values, dtype=float), _bootstrap_per_class(y, correct, n_boot, seed, num_classes))
    return {"rho": rho, "ci": _interval(boot)}


def attack_gains(report: dict, weak: str, strong: str) -> dict:
    """Per-class drop from a weaker to a stronger attack: absolute A(weak) - A(strong), relative
    (drop / A(weak)), and the Spearman correlation of each with the weak-attack accuracy."""
    a_weak = np.array(report["attacks"][weak]["per_class"])
    a_strong = np.array(report["attacks"][strong]["per_class"])
    absolute = a_weak - a_strong
    relative = np.divide(absolute, a_weak, out=np.full_like(absolute, np.nan), where=a_weak > 0)
    defined = a_weak > 0  # a relative drop is undefined for a class the weak attack already breaks fully
    return {"weak": weak, "strong": strong, "absolute": absolute.tolist(), "relative": relative.tolist(),
            "rho_absolute_vs_weak": spearman(absolute, a_weak),
            "rho_relative_vs_weak": spearman(relative[defined], a_weak[defined])}


def rank_agreement(correct_a: np.ndarray, correct_b: np.ndarray, y: np.ndarray, *, n_boot: int = 1000,
                   seed: int = 0) -> dict:
    """Spearman rho between the per-class accuracies of two evaluations on the same points (e.g. two
    defences under one attack), with a paired stratified bootstrap CI."""
    num_classes = int(y.max()) + 1
    rho = spearman(per_class_accuracy(correct_a, y, num_classes), per_class_accuracy(correct_b, y, num_classes))
    boot = spearman_rows(_bootstrap_per_class(y, correct_a, n_boot, seed, num_classes),
                         _bootstrap_per_class(y, correct_b, n_boot, seed, num_classes))
    return {"rho": rho, "ci": _interval(boot)}


def head_middle_tail(num_classes: int) -> dict[str, list[int]]:
    """Class groups of a long-tailed set whose class 0 is the most frequent: the first 30% of the classes
    are the head, the last 30% the tail, the rest the middle (CIFAR-10: 0-2, 3-6, 7-9)."""
    if num_classes < 3:
        raise ValueError(f"num_classes={num_classes} is not allowed: expected at least 3 classes")
    k = round(0.3 * num_classes)
    return {"head": list(range(k)), "middle": list(range(k, num_classes - k)),
            "tail": list(range(num_classes - k, num_classes))}


def group_accuracy(per_class: np.ndarray | list[float], groups: dict[str, list[int]]) -> dict[str, float]:
    """Mean of the per-class accuracies of each group's classes (on a balanced test set, the group's accuracy)."""
    acc = np.asarray(per_class, dtype=float)
    return {name: float(acc[list(classes)].mean()) for name, classes in groups.items()}


def _bootstrap_per_class(y: np.ndarray, correct: np.ndarray, n_boot: int, seed: int,
                         num_classes: int | None = None) -> np.ndarray:
    """(n_boot, C) per-class accuracies over stratified resamples: resampling within classes keeps
    y[boot] == y, so the per-class means are one matrix product. Equal seeds give paired resamples."""
    num_classes = num_classes or int(y.max()) + 1
    class_means = np.eye(num_classes)[y] / np.bincount(y, minlength=num_classes)
    return correct[stratified_bootstrap(y, n_boot, seed)].astype(float) @ class_means


def group_report(y: np.ndarray, correct: dict[str, np.ndarray], groups: dict[str, list[int]], *, n_boot: int = 1000,
                 seed: int = 0) -> dict:
    """{attack: {group: {"accuracy", "ci"}}}: each group's accuracy with a stratified bootstrap 95% CI."""
    y = np.asarray(y)
    num_classes = int(y.max()) + 1
    out = {}
    for name, c in correct.items():
        point = group_accuracy(per_class_accuracy(c, y, num_classes), groups)
        boot = _bootstrap_per_class(y, c, n_boot, seed)
        out[name] = {g: {"accuracy": point[g], "ci": _interval(boot[:, members].mean(1))}
                     for g, members in groups.items()}
    return out


def paired_group_difference(y: np.ndarray, correct_a: np.ndarray, correct_b: np.ndarray, classes: list[int], *,
                            n_boot: int = 1000, seed: int = 0) -> dict:
    """Accuracy of B minus A over `classes` (mean of their per-class accuracies), two evaluations of the same
    points, with a paired stratified bootstrap 95% CI."""
    y = np.asarray(y)
    num_classes = int(y.max()) + 1
    diff = (per_class_accuracy(correct_b, y, num_classes) - per_class_accuracy(correct_a, y, num_classes))[classes]
    boot = _bootstrap_per_class(y, correct_b, n_boot, seed) - _bootstrap_per_class(y, correct_a, n_boot, seed)
    return {"difference": float(diff.mean()), "ci": _interval(boot[:, classes].mean(1))}


def feature_norm_ratio(model: nn.Module, x: torch.Tensor, x_adv: torch.Tensor, *, batch_size: int = 500) -> np.ndarray:
    """||f(x')|| / ||f(x)|| per point, f = model.features (the penultimate layer), in eval mode."""
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            ratios = [model.features(x_adv[i:i + batch_size]).norm(dim=1)
                      / model.features(x[i:i + batch_size]).norm(dim=1) for i in range(0, len(x), batch_size)]
    finally:
        model.train(was_training)
    return torch.cat(ratios).cpu().numpy()
