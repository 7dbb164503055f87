"""TRADES (Zhang et al., ICML 2019):

    CE(f(x), y) + beta * KL( p(x) || p(x') ),   x' = argmax_{x' in B_eps(x)} KL( p(x) || p(x') )

The inner max starts from x + 0.001 * N(0, I), as in the official code, with BN in eval mode.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..attacks import pgd


def kl_to_clean(logits_adv: torch.Tensor, p_clean: torch.Tensor) -> torch.Tensor:
    """Per-sample KL(p_clean || softmax(logits_adv))."""
    return F.kl_div(F.log_softmax(logits_adv, dim=1), p_clean, reduction="none").sum(1)


def trades_loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, eps: float, alpha: float, steps: int,
                beta: float = 6.0) -> torch.Tensor:
    was_training = model.training
    model.eval()
    with torch.no_grad():
        p_clean = F.softmax(model(x), dim=1)
    model.train(was_training)
    x_init = x + 0.001 * torch.randn(x.shape, device="cpu").to(x.device, x.dtype)
    x_adv = pgd(model, x, y, eps=eps, alpha=alpha, steps=steps, loss=lambda z, _: kl_to_clean(z, p_clean),
                x_init=x_init)
    logits_clean = model(x)
    logits_adv = model(x_adv)
    robust = kl_to_clean(logits_adv, F.softmax(logits_clean, dim=1)).mean()
    return F.cross_entropy(logits_clean, y) + beta * robust
