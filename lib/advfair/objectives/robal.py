"""RoBal (Wu et al., CVPR 2021), the training loss of "Adversarial Robustness under Long-Tailed Distribution".

    m_y    = (tau_m / s) * log(n_y / n_min) + m0                                   (Eq. 8)
    l_j    = s * (cos_j - m_y * 1[j = y]) + tau_b * log pi_j                       (Eqs. 7-9, code form)
    s*m_yi = tau_b * log(n_i / n_y) + tau_m * log(n_y / n_min) + s * m0           (Eq. 10)
    L      = CE( l(x + delta), y ) + kl_weight * (1/B) sum_i KL( softmax(c(x_i)) || softmax(c(x_i + delta_i)) )
                                                                                   (Eq. 12)

c(.) are the cosine outputs times `inner_scale`; the released code uses the scale-1 cosines
(inner_scale = 1). delta is PGD on the plain CE of inner_scale * cos (no margins, no bias) with BN in
eval mode; with the code's positive start its first gradient is taken at the unclipped x + eps * U[0, 1)
(`clip_start` overrides, see `pgd_at.official_clip_start`). As in the code's `add_reg_train`, the KL is in
the TRADES order with both branches in train mode and the clean branch not detached, and there is no
clean-CE term; the code still makes that term's train-mode pass (weight 0), so the outer loss makes four
train-mode passes in the code's order (x', x, x, x') and BatchNorm's running statistics move as in the
code. The model must have a cosine head of scale 1: this loss applies s itself.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..attacks import pgd
from ..models import ClassCounts, CosineHead, unwrap
from ..validation import check_counts, check_non_negative, check_number, check_positive, fail
from .logit_adjusted import logit_adjusted
from .pgd_at import check_start, official_clip_start
from .trades import kl_to_clean


def class_margins(counts: ClassCounts, s: float, m0: float, tau_m: float) -> torch.Tensor:
    """m_y = (tau_m / s) * log(n_y / n_min) + m0 (Eq. 8): larger for head classes when tau_m > 0."""
    n = torch.tensor(check_counts("counts", counts), dtype=torch.float64)
    return ((tau_m / s) * (n / n.min()).log() + m0).float()


def pair_margins(counts: ClassCounts, s: float, m0: float, tau_m: float, tau_b: float) -> torch.Tensor:
    """M[y, i] = s * m_yi (Eq. 10), the margin class y needs over class i in logit units."""
    n = torch.tensor(check_counts("counts", counts), dtype=torch.float64)
    log_n = n.log()
    return (tau_b * (log_n[None, :] - log_n[:, None]) + tau_m * (log_n - log_n.min())[:, None] + s * m0).float()


def robal_logits(cos: torch.Tensor, y: torch.Tensor, counts: ClassCounts, s: float, margins: torch.Tensor,
                 tau_b: float) -> torch.Tensor:
    """l_j = s * (cos_j - m_y * 1[j = y]) + tau_b * log pi_j."""
    true_class = F.one_hot(y, cos.shape[1]).to(cos.dtype)
    m_y = margins.to(cos.device, cos.dtype)[y, None]
    return logit_adjusted(s * (cos - m_y * true_class), counts, tau_b)


def robal_loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, eps: float, alpha: float, steps: int,
               counts: ClassCounts, s: float, m0: float, tau_m: float, tau_b: float, kl_weight: float,
               inner_scale: float = 1.0, train_start: str = "symmetric", clip_start: bool | None = None) -> torch.Tensor:
    head = getattr(unwrap(model), "head", None)
    if not isinstance(head, CosineHead) or head.scale != 1:
        fail("model", type(model).__name__, "a Classifier with a CosineHead of scale 1 (the RoBal loss applies s)")
    x_adv = pgd(model, x, y, eps=eps, alpha=alpha, steps=steps, random_start=train_start,
                clip_start=official_clip_start(train_start, clip_start),
                loss=lambda cos, target, _: F.cross_entropy(inner_scale * cos, target, reduction="none"))
    margins = class_margins(counts, s, m0, tau_m)
    outer = F.cross_entropy(robal_logits(model(x_adv), y, counts, s, margins, tau_b), y)
    with torch.no_grad():
        model(x)  # the code's weight-0 clean-CE term: no gradient, but a BatchNorm update
    cos_clean = model(x)
    # .mean() of the per-sample KL is the code's sum / B.
    kl = kl_to_clean(inner_scale * model(x_adv), F.softmax(inner_scale * cos_clean, dim=1)).mean()
    return outer + kl_weight * kl


def check_robal_params(*, counts: ClassCounts, s: float, m0: float, tau_m: float, tau_b: float, kl_weight: float,
                       inner_scale: float = 1.0, train_start: str = "symmetric", clip_start: bool | None = None) -> dict:
    """The hyperparameters, validated (counts normalised to a list of ints)."""
    check_positive("s", s)
    check_non_negative("m0", m0)
    check_number("tau_m", tau_m)
    check_number("tau_b", tau_b)
    check_non_negative("kl_weight", kl_weight)
    check_positive("inner_scale", inner_scale)
    return {"counts": check_counts("counts", counts), "s": s, "m0": m0, "tau_m": tau_m, "tau_b": tau_b,
            "kl_weight": kl_weight, "inner_scale": inner_scale, **check_start(train_start, clip_start)}
