"""Training objectives, one paper-shaped loss per method, and a registry the trainer and CLI use."""
from __future__ import annotations

import functools
from collections.abc import Callable

import torch
from torch import nn

from ..validation import check_choice, check_eps, check_non_negative, check_positive
from .class_weighted import class_weighted_pgd_at_loss
from .logit_adjusted import check_logit_adjusted_params, logit_adjusted_loss
from .pgd_at import pgd_at_loss
from .robal import check_robal_params, robal_loss
from .trades import trades_loss

Objective = Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]

OBJECTIVES: dict[str, Callable[..., torch.Tensor]] = {
    "pgd_at": pgd_at_loss,
    "trades": trades_loss,
    "class_weighted_pgd_at": class_weighted_pgd_at_loss,
    "logit_adjusted": logit_adjusted_loss,
    "robal": robal_loss,
}

# Methods whose hyperparameters are checked (and normalised, e.g. counts to a list) when bound.
PARAM_CHECKS: dict[str, Callable[..., dict]] = {
    "logit_adjusted": check_logit_adjusted_params,
    "robal": check_robal_params,
}


def make_objective(name: str, *, eps: float, alpha: float, steps: int, **params) -> Objective:
    """Bind a method's hyperparameters: the result maps (model, x, y) to a scalar loss."""
    check_choice("objective", name, OBJECTIVES)
    check_eps("eps", eps)
    check_positive("alpha", alpha)
    check_positive("steps", steps, integer=True)
    if "beta" in params:
        check_non_negative("beta", params["beta"])
    if name in PARAM_CHECKS:
        params = PARAM_CHECKS[name](**params)
    return functools.partial(OBJECTIVES[name], eps=eps, alpha=alpha, steps=steps, **params)
