"""Training objectives, one paper-shaped loss per method, and a registry the trainer and CLI use."""
from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import torch

from ..validation import check_choice, check_eps, check_non_negative, check_positive
from .base import FunctionObjective, Objective, ObjectiveOutput, as_objective
from .class_weighted import class_weighted_pgd_at_loss
from .clean import clean_ce, clean_ce_loss
from .dafa import DAFA, check_dafa_params
from .ducat import DucatObjective, check_ducat_params, ducat_pgd_at_loss
from .logit_adjusted import check_logit_adjusted_params, logit_adjusted_loss
from .mart import check_mart_params, mart_loss
from .pgd_at import check_pgd_at_params, pgd_at_loss
from .robal import check_robal_params, robal_loss
from .trades import check_trades_params, trades_loss

__all__ = ["OBJECTIVES", "FunctionObjective", "clean_ce", "clean_ce_loss", "Objective", "ObjectiveOutput", "as_objective", "make_objective"]


class Method(NamedTuple):
    loss: Callable[..., torch.Tensor] | None  # None: a stateful objective with no one-function form
    version: int  # the cache version of this objective: bump it when a change alters the trained weights
    check: Callable[..., dict] | None = None  # validates (and normalises) the method's own hyperparameters
    # A stateful objective: factory(name, params, version) -> Objective (None: the loss is a FunctionObjective).
    factory: Callable[[str, dict, int], Objective] | None = None


# Versions 2: every inner maximisation runs on the unfolded model (no BatchNorm folding while training), and
# RoBal's positive start is unclipped, as in its released code. TRADES also starts at the unclipped
# x + 0.001 N(0, I) and makes three train-mode passes; RoBal makes four.
OBJECTIVES: dict[str, Method] = {
    "pgd_at": Method(pgd_at_loss, 2, check_pgd_at_params),
    "trades": Method(trades_loss, 2, check_trades_params),
    "class_weighted_pgd_at": Method(class_weighted_pgd_at_loss, 2),
    "logit_adjusted": Method(logit_adjusted_loss, 2, check_logit_adjusted_params),
    "robal": Method(robal_loss, 2, check_robal_params),
    "mart": Method(mart_loss, 1, check_mart_params),
    # Stateful: switches between 2C PGD-AT and the DUCAT loss by epoch (`DucatObjective`).
    "ducat": Method(ducat_pgd_at_loss, 1, check_ducat_params, DucatObjective),
    # Stateful: TRADES until its warm-up ends, then class-wise weights and balls (`DAFA`).
    "dafa": Method(None, DAFA.version, check_dafa_params, DAFA),
}


def make_objective(name: str, *, eps: float, alpha: float, steps: int, **params) -> Objective:
    """Bind a method's hyperparameters: the result maps (model, x, y) to a scalar loss."""
    check_choice("objective", name, OBJECTIVES)
    check_eps("eps", eps)
    check_positive("alpha", alpha)
    check_positive("steps", steps, integer=True)
    if "beta" in params:
        check_non_negative("beta", params["beta"])
    method = OBJECTIVES[name]
    if method.check is not None:
        params = method.check(**params)
    params = {"eps": eps, "alpha": alpha, "steps": steps, **params}
    if method.factory is not None:
        return method.factory(name, params, method.version)
    return FunctionObjective(name, method.loss, params, version=method.version)
