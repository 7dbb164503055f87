"""Class-weighted PGD-AT, a training-phase tweak in the spirit of Tian et al. (KDD 2021).

Reconstruction: the paper's exact rule is not public. The loss re-weights the adversarial CE by class:

    L = sum_i w_{y_i} CE(f(x'_i), y_i) / sum_i w_{y_i}

With all weights equal to 1 it is PGD-AT.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..attacks import pgd
from ..validation import check_number, check_positive


def class_weighted_pgd_at_loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, eps: float, alpha: float,
                               steps: int, class_weights: torch.Tensor) -> torch.Tensor:
    x_adv = pgd(model, x, y, eps=eps, alpha=alpha, steps=steps)
    per_sample = F.cross_entropy(model(x_adv), y, reduction="none")
    w = class_weights.to(per_sample.device, per_sample.dtype)[y]
    return (w * per_sample).sum() / w.sum()


def worst_class_weights(num_classes: int, worst: int, w_worst: float) -> torch.Tensor:
    """w_c = 1 for every class except w_worst for the weakest class."""
    check_number("worst_class", worst, low=0, high=num_classes - 1, integer=True)
    check_positive("w_worst", w_worst)
    weights = torch.ones(num_classes)
    weights[worst] = w_worst
    return weights


def vulnerability_weights(robust_accuracy: torch.Tensor, gamma: float) -> torch.Tensor:
    """w_c proportional to (1 - A_rob(c))^gamma, normalised to mean 1."""
    check_positive("gamma", gamma)
    weights = (1 - robust_accuracy.float()).clamp_min(1e-6) ** gamma
    return weights / weights.mean()
