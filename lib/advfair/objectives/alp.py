"""Adversarial Logit Pairing (Kannan, Kurakin and Goodfellow 2018), as its official code computes it
(tensorflow/models, research/adversarial_logit_pairing: train.py, model_lib.py):

    L_ALP = (1/2B) sum_{u in [x; x~]} CE_ls(z(u), y) + lambda * (1/(B C)) sum_i ||z(x_i) - z(x~_i)||^2

- one training-mode forward on the mixed batch [x; x~] (BatchNorm sees clean and adversarial images together);
- CE_ls: cross-entropy with label smoothing 0.1 (target (1 - 0.1) e_y + 0.1 / C);
- the pairing term is a *mean over batch and logit dimension* (TF `mean_squared_error` weighted by lambda),
  with gradients through both the clean and the adversarial logits; lambda = 0 is plain mixed-minibatch PGD
  training ("M-PGD"). A sum-over-logits lambda is lambda_mean / C;
- x~ is a constant for the update; the weight decay wd * sum ||v||^2 / 2 is the optimiser's.

Training adversaries: "pgd" (the book's default: untargeted PGD ascending the CE of y from a symmetric
random start projected onto the threat set) and "pgd_ll" (the official `pgdll`: PGD *targeted* at the
least-likely class, the argmin of the eval-mode clean logits, descending the batch sum of un-smoothed CE to
it, from x + U(-eps, eps) projected onto the box before the first gradient). Both run in eval mode. ALP's
own untargeted option attacks the predicted class, not y; the book's untargeted default uses y.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..attacks import pgd
from ..models import eval_mode
from ..validation import check_choice, check_non_negative, check_number

TRAIN_ATTACKS = ("pgd", "pgd_ll")
LABEL_SMOOTHING = 0.1


def least_likely_class(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """argmin of the eval-mode clean logits (the model's mode is restored)."""
    with eval_mode(model), torch.no_grad():
        return model(x).argmin(1)


def pgd_ll(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, eps: float, alpha: float, steps: int,
           generator: torch.Generator | None = None) -> torch.Tensor:
    """The official `pgdll_<eps>_<step>_<steps>`: steps of sign-gradient *descent* on the un-smoothed CE to
    the least-likely class, from a uniform start in the box, projected after every step. `y` is unused
    (the target comes from the model)."""
    target = least_likely_class(model, x)

    def towards_target(logits: torch.Tensor, _: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        return -F.cross_entropy(logits, target[rows], reduction="none")

    return pgd(model, x, target, eps=eps, alpha=alpha, steps=steps, loss=towards_target, random_start=True,
               clip_start=True, generator=generator)


def training_attack(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, eps: float, alpha: float, steps: int,
                    train_attack: str = "pgd") -> torch.Tensor:
    """x~ for the update (no gradient flows into it)."""
    check_choice("train_attack", train_attack, TRAIN_ATTACKS)
    if train_attack == "pgd_ll":
        x_adv = pgd_ll(model, x, y, eps=eps, alpha=alpha, steps=steps)
    else:
        x_adv = pgd(model, x, y, eps=eps, alpha=alpha, steps=steps, random_start=True, clip_start=True)
    return x_adv.detach()


def pairing_term(z: torch.Tensor, z_adv: torch.Tensor, lam: float) -> torch.Tensor:
    """lambda * mean over B x C of (z - z~)^2 (gradients through both)."""
    return lam * (z - z_adv).pow(2).mean()


def alp_loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, eps: float, alpha: float, steps: int,
             lam: float = 0.5, train_attack: str = "pgd", label_smoothing: float = LABEL_SMOOTHING) -> torch.Tensor:
    """L_ALP of the module docstring (lambda = 0: M-PGD)."""
    x_adv = training_attack(model, x, y, eps=eps, alpha=alpha, steps=steps, train_attack=train_attack)
    logits = model(torch.cat([x, x_adv]))
    z, z_adv = logits[:len(x)], logits[len(x):]
    ce = F.cross_entropy(logits, torch.cat([y, y]), label_smoothing=label_smoothing)
    return ce + pairing_term(z, z_adv, lam)


def check_alp_params(*, lam: float = 0.5, train_attack: str = "pgd", label_smoothing: float = LABEL_SMOOTHING) -> dict:
    check_non_negative("lam", lam)
    check_choice("train_attack", train_attack, TRAIN_ATTACKS)
    check_number("label_smoothing", label_smoothing, low=0, high=1, high_open=True)
    return {"lam": lam, "train_attack": train_attack, "label_smoothing": label_smoothing}
