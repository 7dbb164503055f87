"""Standard (non-adversarial) training: the "plain" baseline of every chapter that asks what adversarial
training changes."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .base import FunctionObjective, Objective


def clean_ce_loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """CE on clean images, no label smoothing."""
    return F.cross_entropy(model(x), y)


def clean_ce() -> Objective:
    """Standard training as an objective (its cache key is the name "clean_ce", no parameters, version 1)."""
    return FunctionObjective("clean_ce", clean_ce_loss, {})
