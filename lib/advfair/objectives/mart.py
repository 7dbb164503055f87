"""MART (Wang et al., ICLR 2020), "Improving Adversarial Robustness Requires Revisiting Misclassified Examples":

    L = BCE(p', y) + beta * (1/B) sum_i KL( p(x_i) || p'(x'_i) ) * (1 - p_y(x_i))
    BCE(p', y) = CE(f(x'), y) - log(1 - max_{k != y} p'_k)

As in the official `mart_loss` (YisenWang/MART): the inner max is PGD on CE(f(x'), y) with BN in eval mode,
its first gradient taken at the unclipped x + 0.001 * N(0, I) (projection onto the eps-ball and [0, 1] only
after each step); the outer loss makes two train-mode passes in the code's order (x, then x'); the code's
guards are kept: log(1.0001 - p'_(y') + 1e-12), log(p' + 1e-12) inside the KL and (1.0000001 - p_y). y' is
the most probable class other than y under p'. Gradients flow through p(x) in both factors of the KL term.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..attacks import pgd
from ..validation import check_bool, check_non_negative
from .trades import gaussian_start


def mart_outer(logits: torch.Tensor, logits_adv: torch.Tensor, y: torch.Tensor, beta: float, *,
               adv_ce: torch.Tensor | None = None) -> torch.Tensor:
    """MART's outer loss from the train-mode logits of x and of x'. `adv_ce` replaces the BCE's CE(f(x'), y)
    (MART + DUCAT puts its soft two-hot CE over [x; x'] there)."""
    p_adv = F.softmax(logits_adv, dim=1)
    runner_up = p_adv.scatter(1, y[:, None], -1.0).argmax(1)  # y': the top class of p' other than y
    margin = -torch.log(1.0001 - p_adv.gather(1, runner_up[:, None]).squeeze(1) + 1e-12).mean()
    bce = (F.cross_entropy(logits_adv, y) if adv_ce is None else adv_ce) + margin
    p_nat = F.softmax(logits, dim=1)
    kl = (torch.xlogy(p_nat, p_nat) - p_nat * torch.log(p_adv + 1e-12)).sum(1)
    p_true = p_nat.gather(1, y[:, None]).squeeze(1)
    return bce + beta * (kl * (1.0000001 - p_true)).mean()


def mart_inner_max(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, eps: float, alpha: float, steps: int,
                   clip_start: bool = False) -> torch.Tensor:
    """PGD on CE(f(x'), y), BN in eval mode, from the unclipped x + 0.001 N(0, I)."""
    return pgd(model, x, y, eps=eps, alpha=alpha, steps=steps, x_init=gaussian_start(x), clip_start=clip_start)


def mart_loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, eps: float, alpha: float, steps: int,
              beta: float = 6.0, clip_start: bool = False) -> torch.Tensor:
    x_adv = mart_inner_max(model, x, y, eps=eps, alpha=alpha, steps=steps, clip_start=clip_start)
    logits = model(x)
    logits_adv = model(x_adv)
    return mart_outer(logits, logits_adv, y, beta)


def check_mart_params(*, beta: float = 6.0, clip_start: bool = False) -> dict:
    check_non_negative("beta", beta)
    check_bool("clip_start", clip_start)
    return {"beta": float(beta), "clip_start": clip_start}
