"""PGD-AT with class-dependent label smoothing: the teacher-free analogue of ABSLD's pilot study (its Fig. 2:
"different smoothness" for hard and easy classes against "same smoothness" for all).

    L = CE( f(x'), q ),   q_i = (1 − ε_{y_i})·onehot(y_i) + ε_{y_i} / C,   x' = PGD on CE(f(x'), y)

A lower ε_c gives class c's samples a sharper target. Every ε_c = ε is ordinary label smoothing (`F.cross_entropy`
with `label_smoothing=ε`); every ε_c = 0 is PGD-AT. The inner maximisation is PGD-AT's (hard labels, symmetric
start projected onto the threat set, BN in eval mode).
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..attacks import pgd
from ..validation import check_number, fail
from .base import FunctionObjective

NAME, VERSION = "label_smoothing_pgd_at", 1


def smoothed_targets(y: torch.Tensor, smoothing: torch.Tensor, num_classes: int) -> torch.Tensor:
    """q_i = (1 − ε_{y_i})·onehot(y_i) + ε_{y_i} / C, one row per sample."""
    eps = smoothing.to(y.device, torch.float32)[y][:, None]
    return (1 - eps) * F.one_hot(y, num_classes).float() + eps / num_classes


def label_smoothing_pgd_at_loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, eps: float, alpha: float,
                                steps: int, smoothing: Sequence[float]) -> torch.Tensor:
    x_adv = pgd(model, x, y, eps=eps, alpha=alpha, steps=steps)
    logits = model(x_adv)
    return F.cross_entropy(logits.float(), smoothed_targets(y, torch.tensor(smoothing), logits.shape[1]))


def check_smoothing(smoothing: Sequence[float], num_classes: int) -> list[float]:
    values = list(smoothing)
    if len(values) != num_classes:
        fail("smoothing", values, f"one smoothing value for each of the {num_classes} classes")
    return [float(check_number("smoothing", v, low=0, high=1, high_open=True)) for v in values]


def class_smoothing(num_classes: int, hard: Sequence[int], hard_value: float, easy_value: float) -> list[float]:
    """ε_c = hard_value for the classes in `hard`, easy_value for the others."""
    for c in hard:
        check_number("hard classes", c, low=0, high=num_classes - 1, integer=True)
    return [float(hard_value if c in hard else easy_value) for c in range(num_classes)]


def label_smoothing_pgd_at(*, eps: float, alpha: float, steps: int, smoothing: Sequence[float]) -> FunctionObjective:
    """The objective with its hyperparameters bound (its cache spec lists them)."""
    check_number("eps", eps, low=0, high=1, low_open=True)
    check_number("alpha", alpha, low=0, low_open=True)
    check_number("steps", steps, low=1, integer=True)
    values = check_smoothing(smoothing, len(list(smoothing)))
    return FunctionObjective(NAME, label_smoothing_pgd_at_loss, {"eps": eps, "alpha": alpha, "steps": steps,
                                                                 "smoothing": values}, version=VERSION)
