"""Logit-adjusted adversarial training: the "class-aware bias" (LA / Balanced Softmax) row of RoBal's Table 1.

    L = CE( z(x') + tau * log pi, y ),   x' = PGD on the plain CE( z(x'), y )

pi_c = n_c / sum_j n_j are the training class frequencies. Training ADDS tau * log pi, so head classes
must win by a larger margin; the model is then used with its plain logits. The inference-time
counterpart, which SUBTRACTS tau_p * log pi, is `advfair.inference.posthoc`.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..attacks import pgd
from ..models import ClassCounts, log_prior
from ..validation import check_counts, check_number
from .pgd_at import check_start, official_clip_start


def logit_adjusted(logits: torch.Tensor, counts: ClassCounts, tau: float) -> torch.Tensor:
    """z + tau * log pi (training-time adjustment)."""
    return logits + tau * log_prior(counts).to(logits.device, logits.dtype)


def logit_adjusted_loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, eps: float, alpha: float, steps: int,
                        counts: ClassCounts, tau: float = 1.0, train_start: str = "symmetric",
                        clip_start: bool | None = None) -> torch.Tensor:
    x_adv = pgd(model, x, y, eps=eps, alpha=alpha, steps=steps, random_start=train_start,
                clip_start=official_clip_start(train_start, clip_start))
    return F.cross_entropy(logit_adjusted(model(x_adv), counts, tau), y)


def check_logit_adjusted_params(*, counts: ClassCounts, tau: float = 1.0, train_start: str = "symmetric",
                                clip_start: bool | None = None) -> dict:
    """The hyperparameters, validated (counts normalised to a list of ints)."""
    check_number("tau", tau)
    return {"counts": check_counts("counts", counts), "tau": tau, **check_start(train_start, clip_start)}
