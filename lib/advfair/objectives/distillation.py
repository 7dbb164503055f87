"""Robustness distillation from a frozen teacher: ARD, RSLAD and ABSLD, as their official codes run them.

    ARD   (Goldblum et al. 2020): α·t²·KL( softmax(T(x)/t) ‖ softmax(S(x')/t) ) + (1 − α)·CE(S(x), y),
          x' = PGD on CE(S(x'), y) from x + U(−ε, ε) (unclipped start, as the code)
    RSLAD (Zi et al. 2021):       5/6·KL( T(x) ‖ S(x') ) + 1/6·KL( T(x) ‖ S(x) ),
          x' = argmax Σ_{i,k} KL( T(x_i) ‖ S(x'_i) ) by PGD from the unclipped x + 0.001·N(0, I)
    ABSLD (Zhao et al. 2024):     RSLAD with the teacher's soft labels at per-class temperatures
          p^adv_i = softmax( z_T(x_i) / τ^adv_{y_i} ),  p^nat_i = softmax( z_T(x_i) / τ^nat_{y_i} )
          (mode "code_product": both = softmax( z_T / (τ^adv_y·τ^nat_y) ), the released script as it runs),
          the attack ascends the KL to p^adv, and once per epoch (after that epoch's decay of η_τ)
          τ ← clip( τ − η_τ·g / max_k |g_k|, τ_min, τ_max ),  g = R − mean(R)  (separately for adv and nat)
          with R_k the student's mean CE on class k over the epoch (`temperature_update`).

The teacher sees the clean (augmented) batch, in eval mode, without gradients. Every inner maximisation runs
with the student in eval mode (`attacks.pgd`); the outer loss makes two train-mode passes, x' first, then x.
"KL averaged over B×C" (RSLAD's convention, `soft_kl`) is the batch-mean KL divided by C: ABSLD's code writes
it as the mean of p·log(p + 1e-5) − p·log softmax(s), which differs only in the constant p·log p term (same
gradients). `kl_scale` multiplies it (RSLAD's CIFAR-100 factor of 10).

The stateful objectives (teacher in `aux`, temperatures in the checkpointed state) are in `distill_objectives`.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..attacks import pgd
from ..models import eval_mode
from ..validation import check_choice, check_non_negative, check_number, check_positive, fail
from .trades import gaussian_start, kl_to_clean

MODES = ("separate", "code_product")
RSLAD_ADV_WEIGHT = 5 / 6  # and 1/6 on the clean term


def soft_kl(logits: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
    """mean over the B×C entries of p·(log p − log softmax(s)): the batch-mean KL(p ‖ softmax(s)) / C."""
    return F.kl_div(F.log_softmax(logits.float(), dim=1), p, reduction="none").mean()


def teacher_logits(teacher: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """z_T(x) in eval mode without gradients, as float32 (the teacher's mode is restored)."""
    with eval_mode(teacher), torch.no_grad():
        return teacher(x).float()


def scale_by_class(z: torch.Tensor, tau: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """z_i / tau[y_i], each row by the temperature of its sample's true class."""
    return z / tau.to(z.device, z.dtype)[y][:, None]


def soft_labels(z: torch.Tensor, y: torch.Tensor, tau_adv: torch.Tensor, tau_nat: torch.Tensor,
                mode: str = "separate") -> tuple[torch.Tensor, torch.Tensor]:
    """(p^adv, p^nat) of ABSLD: each mode's temperatures, the true class's entry for each row."""
    check_choice("mode", mode, MODES)
    if mode == "separate":
        return F.softmax(scale_by_class(z, tau_adv, y), dim=1), F.softmax(scale_by_class(z, tau_nat, y), dim=1)
    p = F.softmax(scale_by_class(z, tau_adv.to(z.device) * tau_nat.to(z.device), y), dim=1)
    return p, p


def kl_inner_max(model: nn.Module, x: torch.Tensor, y: torch.Tensor, p: torch.Tensor, *, eps: float, alpha: float,
                 steps: int) -> torch.Tensor:
    """argmax over the ε-ball of Σ_i KL(p_i ‖ softmax(S(x'_i))) by PGD from the unclipped x + 0.001·N(0, I),
    the student in eval mode (projection onto the ball and [0, 1] after each step)."""
    return pgd(model, x, y, eps=eps, alpha=alpha, steps=steps, x_init=gaussian_start(x), clip_start=False,
               loss=lambda z, _, rows: kl_to_clean(z.float(), p[rows]))


def rslad_loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, teacher: nn.Module, eps: float, alpha: float,
               steps: int, kl_scale: float = 1.0) -> torch.Tensor:
    """RSLAD: the teacher's soft labels on the clean x drive the attack and both terms."""
    p = F.softmax(teacher_logits(teacher, x), dim=1)
    x_adv = kl_inner_max(model, x, y, p, eps=eps, alpha=alpha, steps=steps)
    logits_adv = model(x_adv)
    logits_nat = model(x)
    return kl_scale * (RSLAD_ADV_WEIGHT * soft_kl(logits_adv, p) + (1 - RSLAD_ADV_WEIGHT) * soft_kl(logits_nat, p))


def absld_terms(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, teacher: nn.Module, tau_adv: torch.Tensor,
                tau_nat: torch.Tensor, mode: str, eps: float, alpha: float, steps: int,
                kl_scale: float = 1.0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """ABSLD's loss and the two train-mode logits it was computed from (adversarial, clean)."""
    p_adv, p_nat = soft_labels(teacher_logits(teacher, x), y, tau_adv, tau_nat, mode)
    x_adv = kl_inner_max(model, x, y, p_adv, eps=eps, alpha=alpha, steps=steps)
    logits_adv = model(x_adv)
    logits_nat = model(x)
    loss = kl_scale * (RSLAD_ADV_WEIGHT * soft_kl(logits_adv, p_adv)
                       + (1 - RSLAD_ADV_WEIGHT) * soft_kl(logits_nat, p_nat))
    return loss, logits_adv, logits_nat


def ard_loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, teacher: nn.Module, eps: float, alpha: float,
             steps: int, t: float = 30.0, ard_alpha: float = 1.0, kl_scale: float = 1.0) -> torch.Tensor:
    """ARD: PGD on the hard-label CE, then the tempered KL to the teacher on the clean x plus (1 − α)·CE on x.
    The clean pass is made even at α = 1 (weight 0), as the code makes it."""
    z_t = teacher_logits(teacher, x)
    x_adv = pgd(model, x, y, eps=eps, alpha=alpha, steps=steps, clip_start=False)
    logits_adv = model(x_adv)
    logits_nat = model(x)
    kl = soft_kl(logits_adv.float() / t, F.softmax(z_t / t, dim=1))
    return kl_scale * ard_alpha * t * t * kl + (1 - ard_alpha) * F.cross_entropy(logits_nat, y)


def temperature_update(tau: torch.Tensor, risk: torch.Tensor, eta: float, tau_min: float = 0.5,
                       tau_max: float = 5.0) -> torch.Tensor:
    """τ − η·g / max|g| clipped to [τ_min, τ_max], g = R − mean(R): the class with the largest |g| moves by
    exactly η, a hard class (g > 0) gets a lower temperature. All-equal risks (max|g| = 0) leave τ unchanged."""
    g = risk - risk.mean()
    largest = g.abs().max()
    if not bool(largest > 0):
        return tau.clone()
    return (tau - eta * g / largest).clamp(tau_min, tau_max)


def class_means(sums: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
    """Per-class means of accumulated sums; a class without samples gets the mean of the others (g = 0: it
    does not move)."""
    seen = counts > 0
    means = torch.where(seen, sums / counts.clamp_min(1), torch.zeros_like(sums))
    if bool(seen.any()) and not bool(seen.all()):
        means = torch.where(seen, means, means[seen].mean())
    return means


def output_classes(module: nn.Module) -> int | None:
    """The number of outputs of a classifier: its head's rows, else its last Linear layer's (None if unknown)."""
    head = getattr(module, "head", None)
    weight = getattr(head, "weight", None)
    if isinstance(weight, torch.Tensor) and weight.dim() == 2:
        return int(weight.shape[0])
    linears = [m for m in module.modules() if isinstance(m, nn.Linear)]
    return linears[-1].out_features if linears else None


def check_teacher(teacher: nn.Module, teacher_key: str, num_classes: int) -> None:
    """A teacher module with a cache key, whose class count is the student's."""
    if not isinstance(teacher, nn.Module):
        fail("teacher", type(teacher).__name__, "a torch.nn.Module (the frozen teacher)")
    if not isinstance(teacher_key, str) or not teacher_key:
        fail("teacher_key", teacher_key, "the teacher's model-cache key (a non-empty string)")
    check_positive("num_classes", num_classes, integer=True)
    n = output_classes(teacher)
    if n != num_classes:
        fail("teacher", f"a classifier with {n} outputs", f"a teacher with the student's {num_classes} classes")


def check_distillation(*, eps: float, alpha: float, steps: int, kl_scale: float) -> None:
    check_number("eps", eps, low=0, high=1, low_open=True)
    check_positive("alpha", alpha)
    check_positive("steps", steps, integer=True)
    check_positive("kl_scale", kl_scale)


def check_temperatures(*, mode: str, eta: float, tau_min: float, tau_max: float, init_tau: float,
                       decay: float, decay_epochs: Sequence[int]) -> tuple[int, ...]:
    """ABSLD's temperature settings, validated; returns the decay epochs as a sorted tuple of distinct ints."""
    check_choice("absld_mode", mode, MODES)
    check_non_negative("eta_tau", eta)
    check_positive("tau_min", tau_min)
    check_positive("tau_max", tau_max)
    if tau_min >= tau_max:
        fail("tau_min", tau_min, f"a temperature below tau_max={tau_max:g} (the clip interval [tau_min, tau_max])")
    check_number("init_tau", init_tau, low=tau_min, high=tau_max)
    check_number("eta_decay", decay, low=0, high=1, low_open=True)
    for e in decay_epochs:
        check_positive("decay_epochs", e, integer=True)
    return tuple(sorted(set(decay_epochs)))
