"""Paired comparisons of evaluations of the same points: two models (or two inference heads) under one
attack, or two attacks on one model. Each returns an `Estimate` with its paired bootstrap interval."""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from ..validation import fail
from .metrics import spearman_rows
from .paired import Estimate, Statistic, mcnemar, of_classes, paired_statistic
from .protocol import Evaluation


RHO_BOUNDS = (-1.0, 1.0)  # a correlation's range: a pooled interval stops there


def same_points(a: Evaluation, b: Evaluation) -> None:
    if not (np.array_equal(a.y, b.y) and np.array_equal(a.subset, b.subset)):
        fail("evaluations", "of different points", "two evaluations of the same points (paired comparison)")


def evaluation_statistic(e: Evaluation, outcomes: list[np.ndarray], statistic: Statistic, *, points: str = "all",
                         n_boot: int = 1000, seed: int = 0) -> Estimate:
    """`paired_statistic` of outcome vectors on the points of `e` (its labels and class count)."""
    return paired_statistic(e.labels(points), outcomes, statistic, num_classes=len(e.classes), n_boot=n_boot, seed=seed)


def compare_models(a: Evaluation, b: Evaluation, attack: str, statistic: Statistic, *, points: str = "all",
                   attack_b: str | None = None, n_boot: int = 1000, seed: int = 0) -> Estimate:
    """statistic(B) - statistic(A) of the per-class robust accuracies under `attack` (B under `attack_b`)."""
    same_points(a, b)
    return evaluation_statistic(a, [a.correct(attack, points), b.correct(attack_b or attack, points)],
                                lambda x, y: statistic(y) - statistic(x), points=points, n_boot=n_boot, seed=seed)


def class_differences(a: Evaluation, b: Evaluation, attack: str, *, points: str = "all", n_boot: int = 1000,
                      seed: int = 0) -> list[Estimate]:
    """Per class, B's robust accuracy minus A's under `attack`, paired on the same points: one interval per class,
    not corrected for the number of classes."""
    return [compare_models(a, b, attack, of_classes([c]), points=points, n_boot=n_boot, seed=seed)
            for c in range(len(a.classes))]


def compare_attacks(e: Evaluation, attack_a: str, attack_b: str, statistic: Statistic, *, points: str = "all",
                    n_boot: int = 1000, seed: int = 0) -> Estimate:
    """statistic(under attack_b) - statistic(under attack_a) on one model's points."""
    return evaluation_statistic(e, [e.correct(attack_a, points), e.correct(attack_b, points)],
                                lambda x, y: statistic(y) - statistic(x), points=points, n_boot=n_boot, seed=seed)


def rank_agreement(a: Evaluation, attack_a: str, b: Evaluation, attack_b: str, *, points: str = "all",
                   n_boot: int = 1000, seed: int = 0) -> Estimate:
    """Spearman rho between the per-class robust accuracies of two evaluations (or two attacks of one) on
    the same points."""
    same_points(a, b)
    return replace(evaluation_statistic(a, [a.correct(attack_a, points), b.correct(attack_b, points)], spearman_rows,
                                        points=points, n_boot=n_boot, seed=seed), bounds=RHO_BOUNDS)


def attack_mcnemar(e: Evaluation, attack_a: str, attack_b: str, points: str = "all") -> dict:
    """McNemar's exact test of robustness under two attacks on the same points."""
    return mcnemar(e.correct(attack_a, points), e.correct(attack_b, points))
