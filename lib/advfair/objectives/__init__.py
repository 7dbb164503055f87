"""Training objectives, one paper-shaped loss per method, and a registry the trainer and CLI use."""
from __future__ import annotations

import functools
from collections.abc import Callable

import torch
from torch import nn

from ..validation import check_choice, check_eps, check_non_negative, check_positive
from .class_weighted import class_weighted_pgd_at_loss
from .pgd_at import pgd_at_loss
from .trades import trades_loss

Objective = Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]

OBJECTIVES: dict[str, Callable[..., torch.Tensor]] = {
    "pgd_at": pgd_at_loss,
    "trades": trades_loss,
    "class_weighted_pgd_at": class_weighted_pgd_at_loss,
}


def make_objective(name: str, *, eps: float, alpha: float, steps: int, **params) -> Objective:
    """Bind a method's hyperparameters: the result maps (model, x, y) to a scalar loss."""
    check_choice("objective", name, OBJECTIVES)
    check_eps("eps", eps)
    check_positive("alpha", alpha)
    check_positive("steps", steps, integer=True)
    if "beta" in params:
        check_non_negative("beta", params["beta"])
    return functools.partial(OBJECTIVES[name], eps=eps, alpha=alpha, steps=steps, **params)
