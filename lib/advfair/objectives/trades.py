"""TRADES (Zhang et al., ICML 2019):

    CE(f(x), y) + beta * KL( p(x) || p(x') ),   x' = argmax_{x' in B_eps(x)} KL( p(x) || p(x') )

As in the official `trades_loss` (yaodongyu/TRADES): the inner max runs with BN in eval mode and takes
its first gradient at the unclipped x + 0.001 * N(0, I) (projection onto [0, 1] only after each step;
`clip_start=True` projects the start first); KL is summed over classes and averaged over the batch; the
outer loss makes three train-mode passes in the code's order (x, x', x), so BatchNorm's running
statistics move as in the code. The two passes on x give the same outputs, and both carry gradients.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..attacks import pgd
from ..models import eval_mode
from ..validation import check_bool


def kl_to_clean(logits_adv: torch.Tensor, p_clean: torch.Tensor) -> torch.Tensor:
    """Per-sample KL(p_clean || softmax(logits_adv))."""
    return F.kl_div(F.log_softmax(logits_adv, dim=1), p_clean, reduction="none").sum(1)


def gaussian_start(x: torch.Tensor, scale: float = 0.001) -> torch.Tensor:
    """x + scale * N(0, I), drawn on the CPU from the global generator (the same draw on any device)."""
    return x + scale * torch.randn(x.shape, device="cpu").to(x.device, x.dtype)


def trades_inner_max(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, eps: float, alpha: float, steps: int,
                     clip_start: bool = False) -> torch.Tensor:
    """argmax of KL(p(x) || p(x')) over the eps-ball by PGD from x + 0.001 N(0, I), BN in eval mode."""
    with eval_mode(model), torch.no_grad():
        p_clean = F.softmax(model(x), dim=1)
    return pgd(model, x, y, eps=eps, alpha=alpha, steps=steps, loss=lambda z, _, rows: kl_to_clean(z, p_clean[rows]), x_init=gaussian_start(x),
               clip_start=clip_start)


def trades_loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, eps: float, alpha: float, steps: int,
                beta: float = 6.0, clip_start: bool = False) -> torch.Tensor:
    x_adv = trades_inner_max(model, x, y, eps=eps, alpha=alpha, steps=steps, clip_start=clip_start)
    natural = F.cross_entropy(model(x), y)
    logits_adv = model(x_adv)
    robust = kl_to_clean(logits_adv, F.softmax(model(x), dim=1)).mean()
    return natural + beta * robust


def check_trades_params(*, beta: float = 6.0, clip_start: bool = False) -> dict:
    check_bool("clip_start", clip_start)
    return {"beta": beta, "clip_start": clip_start}
