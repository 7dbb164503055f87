"""Last-layer feature contributions and how concentrated they are (AALP's observation 1; a book definition).

For a model whose last layer is linear, z_k = sum_j W_kj h_j + b_k with h the penultimate features, the
contribution of feature j to logit k is c_kj = W_kj * h_j; the contributions decompose the logits exactly
(z_k = sum_j c_kj + b_k). Concentration statistics of one row c_k. (over |c| or its positive part):

- top-m share: the mass of the m largest entries over the total mass;
- features to a mass: how many of the largest entries reach `mass` (e.g. 90 %) of the total;
- Gini coefficient of the normalised entries (0: uniform; (d - 1) / d: a single feature).

The analysis runs in eval mode without gradients and restores the model's mode. Paired summaries of
per-point statistics (a mean difference of two models on the same points) use the class-stratified
bootstrap of `advfair.evaluation.paired`, so their intervals resample points exactly as the accuracy
comparisons do.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from .models import eval_mode
from .validation import check_choice, check_number, check_positive, fail

CONTRIB_SIGNS = ("abs", "positive")


def linear_head(model: nn.Module) -> nn.Linear:
    """The model's last linear layer `model.head` (with `model.features` giving its input), or an error that
    names the model: contributions c_kj = W_kj h_j need a linear last layer."""
    head = getattr(model, "head", None)
    if not isinstance(head, nn.Linear) or not callable(getattr(model, "features", None)):
        fail("model", type(model).__name__ + (f" with head {type(head).__name__}" if head is not None else ""),
             "a classifier with `features(x)` (the penultimate layer) and a linear last layer `head` (nn.Linear): "
             "contributions c_kj = W_kj * h_j are defined for a linear head only")
    return head


def contributions(head: nn.Linear, h: torch.Tensor) -> torch.Tensor:
    """c[b, k, j] = W_kj * h[b, j] for every class k: shape (B, C, d)."""
    return head.weight[None, :, :] * h[:, None, :]


def class_contributions(head: nn.Linear, h: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """c[b, j] = W_(k_b) j * h[b, j]: each point's contributions to one logit k_b, shape (B, d)."""
    return head.weight[k] * h


def _masses(c: torch.Tensor, sign: str) -> torch.Tensor:
    check_choice("contrib_sign", sign, CONTRIB_SIGNS)
    return c.abs() if sign == "abs" else c.clamp_min(0)


def concentration(c: torch.Tensor, *, sign: str = "abs", top: Sequence[int] = (5, 10),
                  mass: float = 0.9) -> dict[str, torch.Tensor]:
    """Per-row concentration statistics of contributions c (N, d): "top<m>" shares, "n<mass%>" (features to
    reach `mass` of the total), "gini" and "active" (features with mass > 0). A row without mass (all zero) gives nan everywhere."""
    check_number("mass", mass, low=0, high=1, low_open=True)
    for m in top:
        check_positive("top", m, integer=True)
    a = _masses(c, sign).double()
    d = a.shape[1]
    total = a.sum(1, keepdim=True)
    empty = total.squeeze(1) <= 0
    share = a / torch.where(total > 0, total, torch.ones_like(total))
    ordered = share.sort(1, descending=True).values
    cumulative = ordered.cumsum(1)
    out = {f"top{m}": cumulative[:, min(m, d) - 1].clone() for m in top}
    # The first rank whose cumulative share reaches `mass` (a relative tolerance absorbs float summation).
    reached = cumulative >= mass * (1 - 1e-12)
    out[f"n{round(100 * mass)}"] = (reached.to(torch.int64).argmax(1) + 1).double()
    ascending = ordered.flip(1)
    ranks = torch.arange(1, d + 1, dtype=a.dtype, device=a.device)
    out["gini"] = 2 * (ascending * ranks).sum(1) / d - (d + 1) / d
    out["active"] = (a > 0).sum(1).double()  # features with any mass
    for key in out:
        out[key][empty] = float("nan")
    return out


def sorted_share_profile(c: torch.Tensor, *, sign: str = "abs") -> np.ndarray:
    """The mean over rows of the normalised masses sorted from the largest (length d): plotted cumulatively it
    shows how many features carry a logit. Rows without mass are left out."""
    a = _masses(c, sign).double()
    total = a.sum(1, keepdim=True)
    keep = total.squeeze(1) > 0
    ordered = (a[keep] / total[keep]).sort(1, descending=True).values
    return ordered.mean(0).cpu().numpy() if len(ordered) else np.full(a.shape[1], np.nan)


def contribution_statistics(model: nn.Module, x: torch.Tensor, *, labels: torch.Tensor | None = None,
                            sign: str = "abs", top: Sequence[int] = (5, 10), mass: float = 0.9,
                            batch_size: int = 500) -> dict:
    """Concentration statistics of every point's contributions to its predicted logit (or to `labels`), in
    eval mode under no_grad (the model's mode is restored): {"per_point": {stat: array}, "profile": array,
    "decomposition_error": max |sum_j c_kj + b_k - z_k|}."""
    head = linear_head(model)
    check_positive("batch_size", batch_size, integer=True)
    rows, errors = [], []
    with eval_mode(model), torch.no_grad():
        for i in range(0, len(x), batch_size):
            h = model.features(x[i:i + batch_size])
            z = head(h)
            k = z.argmax(1) if labels is None else labels[i:i + batch_size]
            c = class_contributions(head, h, k)
            bias = head.bias[k] if head.bias is not None else torch.zeros_like(k, dtype=c.dtype)
            errors.append(float((c.sum(1) + bias - z.gather(1, k[:, None]).squeeze(1)).abs().max()))
            rows.append(c.float().cpu())
    c = torch.cat(rows)
    per_point = {name: values.numpy() for name, values in concentration(c, sign=sign, top=top, mass=mass).items()}
    return {"per_point": per_point, "profile": sorted_share_profile(c, sign=sign),
            "decomposition_error": max(errors) if errors else 0.0}
