"""PGD adversarial training (Madry et al., ICLR 2018):

    min_theta  E_(x,y) [ max_{x' in B_eps(x)} CE(f_theta(x'), y) ]

The inner max is PGD with a uniform random start, run with BN in eval mode; the outer CE is taken in the
model's training mode. The start is either symmetric, x + eps * U[-1, 1), projected onto the threat set
as in Madry et al.'s code, or RoBal's code's positive-only x + eps * U[0, 1) (`train_start="positive"`),
whose first gradient that code takes at the unprojected point. `clip_start` overrides either choice.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..attacks import START_KINDS, pgd
from ..validation import check_bool, check_choice


def official_clip_start(train_start: str, clip_start: bool | None) -> bool:
    """Whether the first inner gradient is taken at the projected start. None: as the official code that
    uses that start does (Madry et al.'s symmetric start is clipped to [0, 1]; RoBal's positive one is not)."""
    return train_start == "symmetric" if clip_start is None else clip_start


def pgd_at_loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, eps: float, alpha: float,
                steps: int, train_start: str = "symmetric", clip_start: bool | None = None) -> torch.Tensor:
    x_adv = pgd(model, x, y, eps=eps, alpha=alpha, steps=steps, random_start=train_start,
                clip_start=official_clip_start(train_start, clip_start))
    return F.cross_entropy(model(x_adv), y)


def check_start(train_start: str = "symmetric", clip_start: bool | None = None) -> dict:
    check_choice("train_start", train_start, START_KINDS)
    if clip_start is not None:
        check_bool("clip_start", clip_start)
    return {"train_start": train_start, "clip_start": clip_start}


def check_pgd_at_params(**params) -> dict:
    return check_start(**params)
