"""What the trainer sees of a training objective.

Most methods are one paper-shaped loss function (`pgd_at_loss`, `trades_loss`, ...). `FunctionObjective`
binds such a function to its hyperparameters. Methods that need more subclass `Objective`:

- frozen auxiliary modules (a distillation teacher) in `aux`, moved with `to(device)`, kept in eval mode
  and entered into the cache key through their own keys (`aux_keys`);
- epoch hooks: `start_epoch(epoch)` before the first batch, `end_epoch(epoch) -> dict` after the last
  (what it returns is added to the epoch's history record), e.g. a once-per-epoch temperature update;
- per-sample statistics: `__call__` may return `ObjectiveOutput(loss, stats)`, each stat a (B,) tensor;
  the trainer records their epoch means;
- state (`state_dict` / `load_state_dict`) saved in every checkpoint, so a resumed run is exact;
- epoch sums (`epoch_sums`): tensors of sums over the epoch's samples that `end_epoch` turns into state (e.g.
  per-class risks). In a run of several processes each process sees only its shard, so the trainer sums them
  over the processes (`synchronise`) just before `end_epoch`: every process then updates from the whole epoch,
  as one process would, and the objectives stay identical across processes.

The cache key holds the fingerprint of the objective's formula (`advfair.fingerprint`): its loss function or
class and everything of this package it reaches by name. Editing the formula retrains its models by itself.
`version` is the objective's cache version for what the fingerprint cannot see: bump it when a change elsewhere
(say, in a library function the loss calls) alters what training produces, and only that objective's cached
models are retrained.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from ..fingerprint import formula_fingerprint


@dataclass
class ObjectiveOutput:
    loss: torch.Tensor
    stats: dict[str, torch.Tensor] = field(default_factory=dict)


class Objective:
    name: str = "objective"
    version: int = 1

    def __init__(self, params: dict[str, Any] | None = None):
        self.params = dict(params or {})
        self.aux: dict[str, nn.Module] = {}
        self.aux_keys: dict[str, str] = {}

    def __call__(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor | ObjectiveOutput:
        raise NotImplementedError

    # The names of the tensor attributes that hold sums over the epoch's samples (see the module docstring).
    epoch_sums: tuple[str, ...] = ()

    def start_epoch(self, epoch: int) -> None:
        """Called before the first batch of `epoch` (0-based)."""

    def synchronise(self, reduce: Callable[[torch.Tensor], torch.Tensor]) -> None:
        """Replace every epoch sum by `reduce(sum)`, its sum over the processes (the trainer's reduction; the
        identity in one process). Called after the epoch's last batch, before `end_epoch`."""
        for name in self.epoch_sums:
            setattr(self, name, reduce(getattr(self, name)))

    def end_epoch(self, epoch: int) -> dict:
        """Called after the last batch of `epoch`; the returned JSON-able dict joins the history record."""
        return {}

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        if state:
            raise ValueError(f"objective {self.name!r} keeps no state, got keys {sorted(state)}")

    def to(self, device: torch.device | str) -> "Objective":
        for module in self.aux.values():
            module.to(device).eval().requires_grad_(False)
        return self

    def formula(self) -> object:
        """The function or class whose code is the objective's formula (the root of its fingerprint)."""
        return type(self)

    def cache_spec(self) -> dict:
        """Everything about the objective that determines the trained weights (JSON-able)."""
        params = {k: (v.tolist() if isinstance(v, torch.Tensor) else v) for k, v in self.params.items()}
        # The interface in this module is the trainer's contract, versioned with it, not part of any formula.
        formula = formula_fingerprint(self.formula(), __package__, (__name__,))
        return {"name": self.name, "version": self.version, "formula": formula, "params": params,
                "aux": dict(sorted(self.aux_keys.items()))}


class FunctionObjective(Objective):
    """A stateless objective: `loss_fn(model, x, y, **params)`."""

    def __init__(self, name: str, loss_fn: Callable[..., torch.Tensor], params: dict[str, Any], version: int = 1):
        super().__init__(params)
        self.name, self.loss_fn, self.version = name, loss_fn, version

    def __call__(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.loss_fn(model, x, y, **self.params)

    def formula(self) -> object:
        return self.loss_fn


def as_objective(objective: Objective | Callable[..., torch.Tensor]) -> Objective:
    """Plain callables (model, x, y) -> loss are accepted wherever an Objective is."""
    if isinstance(objective, Objective):
        return objective
    return FunctionObjective(getattr(objective, "__name__", "callable"), objective, {})
