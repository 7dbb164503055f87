"""Diagnostics of a model beside its accuracies: logit scale, vanishing attack gradients, feature norms.

Each runs the model in eval mode and restores the mode it found.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..attacks import cw_margin, tempered_ce
from ..models import eval_mode


def mean_logit_margin(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, batch_size: int = 500) -> float:
    """Mean of z_y - max_{j != y} z_j on clean inputs: the model's logit scale (a T-PGD confound)."""
    with eval_mode(model), torch.inference_mode():
        margins = [-cw_margin(model(x[i:i + batch_size]), y[i:i + batch_size]) for i in range(0, len(x), batch_size)]
    return float(torch.cat(margins).mean())


def zero_gradient_fraction(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, temperature: float = 1.0,
                           batch_size: int = 500) -> float:
    """Fraction of points whose (tempered) CE has an all-zero input gradient at the clean point: the
    attack's first sign step cannot move them (float saturation or gradient masking)."""
    zero = 0
    with eval_mode(model):
        for i in range(0, len(x), batch_size):
            xb = x[i:i + batch_size].clone().requires_grad_(True)
            loss = tempered_ce(model(xb), y[i:i + batch_size], temperature).sum()
            grad, = torch.autograd.grad(loss, xb)
            zero += int((grad.flatten(1).abs().sum(1) == 0).sum())
    return zero / len(x)


def feature_norm_ratio(model: nn.Module, x: torch.Tensor, x_adv: torch.Tensor, *, batch_size: int = 500) -> np.ndarray:
    """||f(x')|| / ||f(x)|| per point, f = model.features (the penultimate layer), in eval mode."""
    with eval_mode(model), torch.inference_mode():
        ratios = [model.features(x_adv[i:i + batch_size]).norm(dim=1) / model.features(x[i:i + batch_size]).norm(dim=1)
                  for i in range(0, len(x), batch_size)]
    return torch.cat(ratios).cpu().numpy()
