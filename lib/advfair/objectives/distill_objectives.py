"""The distillation objectives as the trainer sees them: a frozen teacher in `aux` (its cache key in `aux_keys`,
so a student's cache key changes with its teacher), and ABSLD's per-class temperatures as checkpointed state.

- `Distillation(teacher, teacher_key, method="rslad" | "ard", ...)`: RSLAD or ARD, stateless apart from the teacher.
- `ABSLD(teacher, teacher_key, num_classes=..., mode=..., eta=..., ...)`: the per-class risks R^adv, R^nat are
  accumulated over each epoch (per-class sums and counts of the CE on the same detached train-mode logits the
  loss used, before the optimiser step); at the end of each epoch η_τ is first multiplied by `eta_decay` if the
  (1-based) epoch is a decay epoch, then both temperature vectors take one clipped step (`temperature_update`) on
  the per-class mean risks. `frozen=(τ^adv, τ^nat)` fixes the temperatures (the "manual" variant: no update).
  Temperatures, η_τ and the accumulators are in `state_dict`, so a resumed run is exact; `end_epoch` returns the
  temperatures, the risks that moved them and the η_τ used, which the trainer adds to the epoch's history.
- `ReweightedRSLAD`: RSLAD with Fair-ARD-style class weights (Yue et al., NeurIPS 2023), the sample-based
  counterpart of ABSLD:
  κ_k is class k's mean number of inner PGD steps during which the student stays correct; w_k ∝ κ_k^−2, rescaled
  to sum to C and clipped to [5/6, 5/2], recomputed every epoch (weights 1 in the first epoch: RSLAD).
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..attacks import pgd
from ..validation import check_choice, check_number, check_positive, fail
from .base import Objective, ObjectiveOutput
from .distillation import (RSLAD_ADV_WEIGHT, absld_terms, ard_loss, check_distillation, check_teacher,
                           check_temperatures, class_means, rslad_loss, teacher_logits, temperature_update)
from .trades import gaussian_start, kl_to_clean

DISTILLATION_METHODS = ("rslad", "ard")


class _Distilled(Objective):
    """An objective with a frozen teacher identified by its cache key."""

    def __init__(self, teacher: nn.Module, teacher_key: str, num_classes: int, params: dict):
        check_teacher(teacher, teacher_key, num_classes)
        super().__init__({"num_classes": num_classes, **params})
        self.num_classes = num_classes
        self.aux["teacher"] = teacher.eval().requires_grad_(False)
        self.aux_keys["teacher"] = teacher_key

    @property
    def teacher(self) -> nn.Module:
        return self.aux["teacher"]


class Distillation(_Distilled):
    """RSLAD (`method="rslad"`) or ARD (`method="ard"`, temperature `t`, weight `ard_alpha`)."""

    version = 1

    def __init__(self, teacher: nn.Module, teacher_key: str, *, num_classes: int, method: str = "rslad", eps: float,
                 alpha: float, steps: int, kl_scale: float = 1.0, t: float = 30.0, ard_alpha: float = 1.0):
        check_choice("method", method, DISTILLATION_METHODS)
        check_distillation(eps=eps, alpha=alpha, steps=steps, kl_scale=kl_scale)
        params = {"eps": eps, "alpha": alpha, "steps": steps, "kl_scale": kl_scale}
        if method == "ard":
            check_positive("ard_t", t)
            check_number("ard_alpha", ard_alpha, low=0, high=1)
            params.update(t=t, ard_alpha=ard_alpha)
        super().__init__(teacher, teacher_key, num_classes, params)
        self.name = method

    def __call__(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        p = {k: v for k, v in self.params.items() if k != "num_classes"}
        loss = rslad_loss if self.name == "rslad" else ard_loss
        return loss(model, x, y, teacher=self.teacher, **p)


class ABSLD(_Distilled):
    """Anti-bias soft label distillation with per-class temperatures τ^adv, τ^nat (see the module docstring)."""

    name = "absld"
    version = 1
    epoch_sums = ("sums",)

    def __init__(self, teacher: nn.Module, teacher_key: str, *, num_classes: int, mode: str = "separate",
                 eta: float = 0.1, tau_min: float = 0.5, tau_max: float = 5.0, decay_epochs: Sequence[int] = (),
                 eta_decay: float = 0.1, init_tau: float = 1.0,
                 frozen: tuple[Sequence[float], Sequence[float]] | None = None, eps: float, alpha: float, steps: int,
                 kl_scale: float = 1.0):
        decay_epochs = check_temperatures(mode=mode, eta=eta, tau_min=tau_min, tau_max=tau_max, init_tau=init_tau,
                                          decay=eta_decay, decay_epochs=decay_epochs)
        check_distillation(eps=eps, alpha=alpha, steps=steps, kl_scale=kl_scale)
        if frozen is not None:
            if len(frozen) != 2:
                fail("frozen", frozen, "two temperature vectors (τ^adv, τ^nat)")
            frozen = tuple(self._check_frozen(v, num_classes) for v in frozen)
        params = {"mode": mode, "eta": eta, "tau_min": tau_min, "tau_max": tau_max, "decay_epochs": list(decay_epochs),
                  "eta_decay": eta_decay, "init_tau": init_tau,
                  "frozen": None if frozen is None else [list(v) for v in frozen],
                  "eps": eps, "alpha": alpha, "steps": steps, "kl_scale": kl_scale}
        super().__init__(teacher, teacher_key, num_classes, params)
        self.mode, self.frozen, self.decay_epochs = mode, frozen is not None, decay_epochs
        if frozen is None:
            self.tau_adv = torch.full((num_classes,), float(init_tau), dtype=torch.float64)
            self.tau_nat = self.tau_adv.clone()
        else:
            self.tau_adv, self.tau_nat = (torch.tensor(v, dtype=torch.float64) for v in frozen)
        self.eta = float(eta)
        self._reset()

    @staticmethod
    def _check_frozen(values: Sequence[float], num_classes: int) -> list[float]:
        values = list(values)
        if len(values) != num_classes:
            fail("frozen", values, f"a temperature for each of the {num_classes} classes")
        for v in values:
            check_positive("frozen", v)
        return [float(v) for v in values]

    def _reset(self) -> None:
        # rows: CE sum adv, CE sum nat, count
        self.sums = torch.zeros(3, self.num_classes, dtype=torch.float64)

    def __call__(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> ObjectiveOutput:
        p = self.params
        loss, logits_adv, logits_nat = absld_terms(model, x, y, teacher=self.teacher, tau_adv=self.tau_adv,
                                                   tau_nat=self.tau_nat, mode=self.mode, eps=p["eps"], alpha=p["alpha"],
                                                   steps=p["steps"], kl_scale=p["kl_scale"])
        with torch.no_grad():
            ce_adv = F.cross_entropy(logits_adv.detach().float(), y, reduction="none")
            ce_nat = F.cross_entropy(logits_nat.detach().float(), y, reduction="none")
            if self.sums.device != y.device:
                self.sums = self.sums.to(y.device)
            for row, values in enumerate((ce_adv, ce_nat, torch.ones_like(ce_adv))):
                self.sums[row].index_add_(0, y, values.double())
        return ObjectiveOutput(loss, {"ce_adv": ce_adv, "ce_nat": ce_nat})

    def risks(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The per-class mean CE of the epoch so far (adversarial, clean), on the CPU."""
        sums = self.sums.cpu()
        return class_means(sums[0], sums[2]), class_means(sums[1], sums[2])

    def end_epoch(self, epoch: int) -> dict:
        if epoch + 1 in self.decay_epochs:
            self.eta *= self.params["eta_decay"]
        risk_adv, risk_nat = self.risks()
        if not self.frozen:
            lo, hi = self.params["tau_min"], self.params["tau_max"]
            self.tau_adv = temperature_update(self.tau_adv, risk_adv, self.eta, lo, hi)
            self.tau_nat = temperature_update(self.tau_nat, risk_nat, self.eta, lo, hi)
        self._reset()
        return {"tau_adv": self.tau_adv.tolist(), "tau_nat": self.tau_nat.tolist(), "risk_adv": risk_adv.tolist(),
                "risk_nat": risk_nat.tolist(), "eta_tau": self.eta}

    def state_dict(self) -> dict:
        return {"tau_adv": self.tau_adv.clone(), "tau_nat": self.tau_nat.clone(), "eta": self.eta,
                "sums": self.sums.cpu().clone()}

    def load_state_dict(self, state: dict) -> None:
        self.tau_adv = state["tau_adv"].detach().cpu().to(torch.float64).clone()
        self.tau_nat = state["tau_nat"].detach().cpu().to(torch.float64).clone()
        self.eta = float(state["eta"])
        self.sums = state["sums"].detach().cpu().to(torch.float64).clone()


class ReweightedRSLAD(_Distilled):
    """RSLAD with Fair-ARD-style per-class weights on both terms (see the module docstring)."""

    name = "fair_rslad"
    version = 1
    epoch_sums = ("sums",)

    def __init__(self, teacher: nn.Module, teacher_key: str, *, num_classes: int, eps: float, alpha: float, steps: int,
                 kl_scale: float = 1.0, power: float = 2.0, w_min: float = 5 / 6, w_max: float = 5 / 2):
        check_distillation(eps=eps, alpha=alpha, steps=steps, kl_scale=kl_scale)
        check_positive("power", power)
        check_positive("w_min", w_min)
        if w_max <= w_min:
            fail("w_max", w_max, f"a weight above w_min={w_min:g}")
        super().__init__(teacher, teacher_key, num_classes, {"eps": eps, "alpha": alpha, "steps": steps,
                                                             "kl_scale": kl_scale, "power": power, "w_min": w_min,
                                                             "w_max": w_max})
        self.weights = torch.ones(num_classes, dtype=torch.float64)
        self.sums = torch.zeros(2, num_classes, dtype=torch.float64)  # steps correct, count

    def __call__(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        p = self.params
        soft = F.softmax(teacher_logits(self.teacher, x), dim=1)
        correct_steps = torch.zeros(len(y), device=y.device)

        def loss(z: torch.Tensor, target: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
            correct_steps.index_add_(0, rows, (z.detach().argmax(1) == target).float())
            return kl_to_clean(z.float(), soft[rows])

        x_adv = pgd(model, x, y, eps=p["eps"], alpha=p["alpha"], steps=p["steps"], x_init=gaussian_start(x),
                    clip_start=False, loss=loss)
        w = self.weights.to(y.device, torch.float32)[y]
        kl_adv = kl_to_clean(model(x_adv).float(), soft)
        kl_nat = kl_to_clean(model(x).float(), soft)
        c = self.num_classes
        out = p["kl_scale"] * (RSLAD_ADV_WEIGHT * (w * kl_adv).mean() / c
                               + (1 - RSLAD_ADV_WEIGHT) * (w * kl_nat).mean() / c)
        with torch.no_grad():
            if self.sums.device != y.device:
                self.sums = self.sums.to(y.device)
            self.sums[0].index_add_(0, y, correct_steps.double())
            self.sums[1].index_add_(0, y, torch.ones_like(correct_steps, dtype=torch.float64))
        return out

    def end_epoch(self, epoch: int) -> dict:
        sums = self.sums.cpu()
        kappa = class_means(sums[0], sums[1])
        raw = kappa.clamp_min(1e-3) ** -self.params["power"]
        self.weights = (raw * self.num_classes / raw.sum()).clamp(self.params["w_min"], self.params["w_max"])
        self.sums = torch.zeros_like(sums)
        return {"kappa": kappa.tolist(), "class_weights": self.weights.tolist()}

    def state_dict(self) -> dict:
        return {"weights": self.weights.clone(), "sums": self.sums.cpu().clone()}

    def load_state_dict(self, state: dict) -> None:
        self.weights = state["weights"].detach().cpu().to(torch.float64).clone()
        self.sums = state["sums"].detach().cpu().to(torch.float64).clone()
