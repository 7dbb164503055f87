"""PGD adversarial training (Madry et al., ICLR 2018):

    min_theta  E_(x,y) [ max_{x' in B_eps(x)} CE(f_theta(x'), y) ]

The inner max is PGD with a uniform random start (symmetric, or RoBal's code's positive-only one via
`train_start`), run with BN in eval mode; the outer CE is taken in the model's training mode.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..attacks import pgd


def pgd_at_loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, eps: float, alpha: float,
                steps: int, train_start: str = "symmetric") -> torch.Tensor:
    x_adv = pgd(model, x, y, eps=eps, alpha=alpha, steps=steps, random_start=train_start)
    return F.cross_entropy(model(x_adv), y)
