"""DUCAT: adversarial training with dummy classes (Wang et al. 2024, arXiv 2410.12671), as its official code
(FlaAI/DUCAT, `training/adv_train/adv_train_dummy.py`) trains it.

The model has 2C outputs: the C real classes, then a dummy twin c + C for each class c. Inside the DUCAT
window (1-based epochs start..end, inclusive; the code's default is 105..130 of 130) the outer loss is a
soft-target CE over 2C on the clean and the adversarial halves of the batch, in one train-mode pass:

    t_ben = (1 - w_b) e_y + w_b e_(y+C)                       (w_b = 0.25)
    t_adv = w_alpha [ (1 - w_a) e_y + w_a e_(y+C) ]           (w_a = 1, w_alpha = 1: a one-hot on the dummy)
    L     = mean over 2B of CE_soft( f([x; x']), [t_ben; t_adv] ),   CE_soft(z, t) = -sum_k t_k log softmax(z)_k

Outside the window the step is plain PGD-AT on the 2C head, CE(f(x'), y) (the dummies act only as extra
negatives). x' is PGD on CE(f(x'), y) over the 2C outputs (dummy-unaware), with BN in eval mode and a uniform
start clipped to [0, 1] before the first gradient (advertorch's PGDAttack(rand_init=True)). The targets are
built as floats whatever the weights' types (the code keeps w_a and w_alpha as ints).

The TRADES variant (`base="trades"`, the code's `adv_trades_dummy.py`): x' maximises KL(p(x) || p(x')) over
2C from the unclipped x + 0.001 N(0, I); outside the window CE(f(x'), y) + beta KL_batchmean(p(x) || p(x')),
inside CE_soft over [x; x'] with t_adv = (1 - w_a) e_y + w_a e_(y+C) (no w_alpha) + beta KL. The KL's gradient
flows through both sides. Three train-mode passes in the code's order: the main term's (x' outside the window,
[x; x'] inside), then x' and x for the KL, so BatchNorm's running statistics move as in the code.

The MART variant (`base="mart"`, the code's `mart_loss_dummy` inside the window, `mart_loss` outside): x' is PGD
on CE over 2C from the unclipped x + 0.001 N(0, I). Outside the window it is MART on the 2C outputs (passes
x, x'); inside, MART's CE(f(x'), y) becomes CE_soft over [x; x'] (no w_alpha), and the margin and KL terms stay
MART's, with y' the top class of p' among all 2C outputs other than y (it may be a dummy). Three train-mode
passes in the code's order: x', [x; x'], x.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..attacks import pgd
from ..inference import check_dummy_outputs
from ..validation import check_choice, check_non_negative, check_number, fail
from .base import Objective
from .mart import mart_inner_max, mart_loss, mart_outer
from .trades import kl_to_clean, trades_inner_max


def two_hot(y: torch.Tensor, num_classes: int, w: float) -> torch.Tensor:
    """(1 - w) e_y + w e_(y+C) in R^(2C), as float32 rows."""
    w = float(w)
    target = torch.zeros(len(y), 2 * num_classes, dtype=torch.float32, device=y.device)
    rows = torch.arange(len(y), device=y.device)
    target[rows, y] += 1.0 - w
    target[rows, y + num_classes] += w
    return target


def ducat_targets(y: torch.Tensor, num_classes: int, w_benign: float = 0.25, w_adv: float = 1.0,
                  w_alpha: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """(t_ben, t_adv) of the clean and adversarial halves; t_adv is scaled by w_alpha (a loss weight)."""
    return two_hot(y, num_classes, w_benign), float(w_alpha) * two_hot(y, num_classes, w_adv)


def soft_ce(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """mean_i -sum_k t_ik log softmax(z_i)_k (targets need not sum to 1)."""
    return -(target.to(logits.dtype) * F.log_softmax(logits, dim=1)).sum(1).mean()


def in_window(epoch: int, start: int, end: int) -> bool:
    """Whether 1-based `epoch` lies in the inclusive DUCAT window [start, end]."""
    return start <= epoch <= end


def official_milestones(epochs: int) -> tuple[int, int]:
    """The official code's MultiStepLR milestones (lr x0.1 after each): [E/2, 3E/4] (floored) above 150 epochs,
    [75, 90] up to 100, [100, 105] otherwise. The window does not move with E, so below 105 epochs DUCAT never
    turns on: the book never calls this rule for E != 130 (its cpu profile maps the schedule explicitly)."""
    check_number("epochs", epochs, low=1, integer=True)
    if epochs > 150:
        return math.floor(0.5 * epochs), math.floor(0.75 * epochs)
    if epochs <= 100:
        return 75, 90
    return 100, 105


def ducat_pgd_at_loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, eps: float, alpha: float, steps: int,
                      num_classes: int, active: bool, w_benign: float = 0.25, w_adv: float = 1.0,
                      w_alpha: float = 1.0) -> torch.Tensor:
    """One PGD-AT + DUCAT step: the soft two-hot CE over [x; x'] when `active`, else CE(f(x'), y) over 2C."""
    x_adv = pgd(model, x, y, eps=eps, alpha=alpha, steps=steps)
    if not active:
        logits = model(x_adv)
        check_dummy_outputs(logits, num_classes)
        return F.cross_entropy(logits, y)
    logits = model(torch.cat([x, x_adv]))
    check_dummy_outputs(logits, num_classes)
    t_ben, t_adv = ducat_targets(y, num_classes, w_benign, w_adv, w_alpha)
    return soft_ce(logits, torch.cat([t_ben, t_adv]))


def ducat_trades_loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, eps: float, alpha: float, steps: int,
                      num_classes: int, active: bool, w_benign: float = 0.25, w_adv: float = 1.0, beta: float = 6.0,
                      clip_start: bool = False) -> torch.Tensor:
    """TRADES + DUCAT: CE(f(x'), y) + beta KL outside the window, CE_soft([x; x']) + beta KL inside."""
    x_adv = trades_inner_max(model, x, y, eps=eps, alpha=alpha, steps=steps, clip_start=clip_start)
    if active:
        t_ben, t_adv = ducat_targets(y, num_classes, w_benign, w_adv, 1.0)
        main = soft_ce(model(torch.cat([x, x_adv])), torch.cat([t_ben, t_adv]))
    else:
        main = F.cross_entropy(model(x_adv), y)
    logits_adv = model(x_adv)
    check_dummy_outputs(logits_adv, num_classes)
    return main + beta * kl_to_clean(logits_adv, F.softmax(model(x), dim=1)).mean()


def ducat_mart_loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, eps: float, alpha: float, steps: int,
                    num_classes: int, active: bool, w_benign: float = 0.25, w_adv: float = 1.0, beta: float = 6.0,
                    clip_start: bool = False) -> torch.Tensor:
    """MART + DUCAT: MART over 2C outside the window; inside, MART with CE_soft([x; x']) in place of CE(f(x'), y)."""
    if not active:
        return mart_loss(model, x, y, eps=eps, alpha=alpha, steps=steps, beta=beta, clip_start=clip_start)
    x_adv = mart_inner_max(model, x, y, eps=eps, alpha=alpha, steps=steps, clip_start=clip_start)
    logits_adv = model(x_adv)
    check_dummy_outputs(logits_adv, num_classes)
    t_ben, t_adv = ducat_targets(y, num_classes, w_benign, w_adv, 1.0)
    soft = soft_ce(model(torch.cat([x, x_adv])), torch.cat([t_ben, t_adv]))
    return mart_outer(model(x), logits_adv, y, beta, adv_ce=soft)


# Each base's loss and its revision, added to the objective's cache version: revision 1 of TRADES + DUCAT makes
# the code's three train-mode passes (revision 0 made two), which changes BatchNorm's running statistics.
BASES = {"pgd_at": (ducat_pgd_at_loss, 0), "trades": (ducat_trades_loss, 1), "mart": (ducat_mart_loss, 0)}


class DucatObjective(Objective):
    """The DUCAT objective with its window: it knows the epoch (`start_epoch`) and switches between plain 2C
    adversarial training and the DUCAT loss inside [start, end] (1-based, inclusive). The epoch is set
    again before every epoch, a resumed run included, so there is no state to checkpoint. Each epoch's
    history record says whether the window was on ("ducat_active")."""

    def __init__(self, name: str, params: dict, version: int = 1):
        super().__init__(params)
        self.name, self.version = name, version + BASES[params["base"]][1]
        self.epoch: int | None = None

    def start_epoch(self, epoch: int) -> None:
        self.epoch = epoch + 1

    def active(self) -> bool:
        if self.epoch is None:
            fail("epoch", None, "an epoch set by start_epoch(epoch) before the first batch (the DUCAT window "
                 "depends on it)")
        return in_window(self.epoch, self.params["start"], self.params["end"])

    def __call__(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        params = {k: v for k, v in self.params.items() if k not in ("start", "end", "base")}
        return BASES[self.params["base"]][0](model, x, y, active=self.active(), **params)

    def end_epoch(self, epoch: int) -> dict:
        return {"ducat_active": self.active()}


def check_weight(field: str, value: float) -> float:
    """A DUCAT label weight: a number in [0, 1], returned as a float (targets are always float)."""
    return float(check_number(field, value, low=0, high=1))


def check_ducat_params(*, num_classes: int, start: int = 105, end: int = 130, w_benign: float = 0.25,
                       w_adv: float = 1.0, w_alpha: float = 1.0, base: str = "pgd_at", beta: float = 6.0,
                       clip_start: bool = False) -> dict:
    """The hyperparameters, validated: weights in [0, 1] (as floats), 1 <= start <= end, a known base."""
    check_number("num_classes", num_classes, low=2, integer=True)
    check_number("start", start, low=1, integer=True)
    check_number("end", end, low=1, integer=True)
    if start > end:
        fail("start", start, f"at most end={end}: the DUCAT window [start, end] is inclusive")
    check_choice("base", base, BASES)
    params = {"num_classes": num_classes, "start": start, "end": end, "base": base,
              "w_benign": check_weight("w_benign", w_benign), "w_adv": check_weight("w_adv", w_adv)}
    alpha_weight = check_weight("w_alpha", w_alpha)
    if base == "pgd_at":
        params["w_alpha"] = alpha_weight
    else:
        if alpha_weight != 1:
            fail("w_alpha", w_alpha, f"1 with base={base!r} (the code's TRADES and MART variants have no w_alpha)")
        params.update(beta=float(check_non_negative("beta", beta)), clip_start=bool(clip_start))
    return params
