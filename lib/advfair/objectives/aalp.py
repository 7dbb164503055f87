"""AALP-style reconstruction (Wu et al., TOMM 2024, "Adaptive Adversarial Logits Pairing") on the exact ALP
core of `alp.py`. AALP's method section is not available to us: both modules are **reconstructions from
its abstract**, and every unverified choice is a switch.

Per-sample terms (the 1/2 makes w = 1 reproduce L_ALP exactly, weight decay aside):

    l_cls,i = (CE_ls(z(x_i), y_i) + CE_ls(z(x~_i), y_i)) / 2,    l_lp,i = ||z(x_i) - z(x~_i)||^2 / C
    L = (1/B) sum_i [ l_cls,i + lambda * w_i * l_lp,i ],          w detached (computed under no_grad)

Guided Dropout (training only, on the penultimate features h of the one train-mode forward): each sample's
features are scored by its contributions to the true logit, c_(y,j) = W_(y,j) h_j (no gradient; |c| or the
signed c), and a fraction p of them is zeroed. `gd_among` says of which n features: "all" (n = d, the literal
reading) or "active" (n = the sample's nonzero features: after a ReLU most entries of h can be exactly zero,
and "all" would then drop only features that are zero already; on dense features both are the same).
`gd_mode`: "drop_low" drops the floor(p n) lowest-scoring of them (keeps the n - floor(p n) highest),
"drop_high" the floor(p n) highest, "prob" drops feature j with probability min(1, 2 p rank_j / (n - 1)),
rank 0 the highest score (mean p for p <= 1/2). `gd_rescale` multiplies kept features by 1/(1 - p);
`gd_branches` "both" masks the clean and the adversarial half (each its own mask), "adv" the adversarial
half only. Attacks call model(x), so Guided Dropout is never active
inside an attack, in eval mode, or at test time.

Sample weights (`weight_rule`): "ratio" w_i = kappa l_cls,i / (l_cls,i + lambda l_lp,i) with kappa making the
batch mean 1; "correct" w_i = 1 if x~_i is classified correctly (training forward), else `weight_low`;
"softmax" w = B softmax(-tau lambda l_lp / l_cls); "none" w = 1 (ALP).

Every objective also records C2's statistics (r_i = lambda l_lp,i / l_cls,i; `alp_records`).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..contributions import linear_head
from ..models import unwrap
from ..validation import check_bool, check_choice, check_non_negative, check_number, check_positive
from .alp import LABEL_SMOOTHING, check_alp_params, training_attack
from .alp_records import RatioRecorder
from .base import Objective, ObjectiveOutput

GD_MODES = ("drop_low", "drop_high", "prob")
GD_SCORES = ("abs", "signed")
GD_BRANCHES = ("both", "adv")
GD_AMONG = ("active", "all")
WEIGHT_RULES = ("ratio", "correct", "softmax", "none")


def check_gd(*, gd: bool = False, gd_mode: str = "drop_low", gd_p: float = 0.3, gd_score: str = "abs",
             gd_rescale: bool = False, gd_branches: str = "both", gd_among: str = "active") -> dict:
    check_bool("gd", gd)
    check_choice("gd_mode", gd_mode, GD_MODES)
    check_number("gd_p", gd_p, low=0, high=1, high_open=True)
    check_choice("gd_score", gd_score, GD_SCORES)
    check_bool("gd_rescale", gd_rescale)
    check_choice("gd_branches", gd_branches, GD_BRANCHES)
    check_choice("gd_among", gd_among, GD_AMONG)
    return {"gd": gd, "gd_mode": gd_mode, "gd_p": gd_p, "gd_score": gd_score, "gd_rescale": gd_rescale,
            "gd_branches": gd_branches, "gd_among": gd_among}


def check_weights(*, weight_rule: str = "none", weight_low: float = 0.1, weight_tau: float = 1.0) -> dict:
    check_choice("weight_rule", weight_rule, WEIGHT_RULES)
    check_number("weight_low", weight_low, low=0, high=1)
    check_positive("weight_tau", weight_tau)
    return {"weight_rule": weight_rule, "weight_low": weight_low, "weight_tau": weight_tau}


def guided_dropout_mask(scores: torch.Tensor, *, mode: str, p: float, active: torch.Tensor | None = None) -> torch.Tensor:
    """A (B, d) 0/1 mask from per-sample feature scores (higher = more important) over all d features, or over
    the `active` ones (a (B, d) bool mask; the others are ranked last and are zero anyway). "prob" draws from
    the global CPU generator (the same draw on any device)."""
    check_choice("gd_mode", mode, GD_MODES)
    check_number("gd_p", p, low=0, high=1, high_open=True)
    b, d = scores.shape
    key = scores if active is None else torch.where(active, scores, torch.full_like(scores, float("-inf")))
    n = torch.full((b, 1), d, device=scores.device) if active is None else active.sum(1, keepdim=True)
    # rank[b, j] = position of feature j in sample b's descending order (0 = highest score)
    order = torch.sort(key, dim=1, descending=True, stable=True).indices
    rank = torch.empty_like(order)
    rank.scatter_(1, order, torch.arange(d, device=scores.device).expand_as(order))
    if mode == "prob":
        drop_p = (2 * p * rank.to(scores.dtype) / (n - 1).clamp_min(1)).clamp(max=1.0)
        draw = torch.rand(scores.shape, device="cpu").to(scores.device, scores.dtype)
        return (draw >= drop_p).to(scores.dtype)
    k = torch.floor(p * n.to(torch.float64)).to(torch.int64)
    keep = rank < n - k if mode == "drop_low" else rank >= k
    return keep.to(scores.dtype)


def guided_dropout(h: torch.Tensor, scores: torch.Tensor, *, mode: str, p: float, rescale: bool = False,
                   among: str = "all") -> tuple[torch.Tensor, torch.Tensor]:
    """(h with the features the rule drops set to zero, kept ones times 1/(1 - p) with `rescale`; the mask).
    p = 0 is h itself."""
    check_choice("gd_among", among, GD_AMONG)
    if p == 0:
        return h, torch.ones_like(h)
    mask = guided_dropout_mask(scores.detach(), mode=mode, p=p, active=(h.detach() != 0) if among == "active" else None)
    return (h * mask * (1 / (1 - p)) if rescale else h * mask), mask


def sample_weights(rule: str, l_cls: torch.Tensor, l_lp: torch.Tensor, lam: float, *,
                   adv_correct: torch.Tensor | None = None, low: float = 0.1, tau: float = 1.0) -> torch.Tensor:
    """Per-sample weights w (B,) of the pairing term, computed without gradient."""
    check_choice("weight_rule", rule, WEIGHT_RULES)
    with torch.no_grad():
        l_cls, l_lp = l_cls.detach(), l_lp.detach()
        if rule == "none":
            return torch.ones_like(l_cls)
        if rule == "ratio":
            v = l_cls / (l_cls + lam * l_lp)
            return v * (len(v) / v.sum())
        if rule == "correct":
            return torch.where(adv_correct, torch.ones_like(l_cls), torch.full_like(l_cls, low))
        return len(l_cls) * torch.softmax(-tau * lam * l_lp / l_cls, dim=0)


def alp_terms(logits: torch.Tensor, y: torch.Tensor, label_smoothing: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(l_cls, l_lp) per sample from the logits of the mixed batch [x; x~]."""
    b = len(y)
    ce = F.cross_entropy(logits, torch.cat([y, y]), label_smoothing=label_smoothing, reduction="none")
    z, z_adv = logits[:b], logits[b:]
    return 0.5 * (ce[:b] + ce[b:]), (z - z_adv).pow(2).mean(1)


def dropout_stats(h: torch.Tensor, mass: torch.Tensor, mask: torch.Tensor, b: int) -> dict[str, torch.Tensor]:
    """Per sample (averaged over its clean and adversarial rows):

    - `gd_active_share`: the active (nonzero) features of h, over all d features;
    - `gd_dropped_of_active`: the features Guided Dropout zeroes that were active, over the row's active features
      (0 for a row without any). A feature that is zero already is never counted as dropped: under
      gd_among="active" the mask also zeroes the inactive features, and zeroing a zero removes nothing;
    - `gd_dropped_mass`: the share of the |c_y| mass it removes.

    (An earlier statistic, `gd_dropped_share` = (1 − mask) over d, counted the inactive features as dropped.)"""
    active = h != 0
    dropped = (active & (mask == 0)).sum(1).to(h.dtype) / active.sum(1).clamp_min(1).to(h.dtype)
    removed = (mass * (1 - mask)).sum(1) / mass.sum(1).clamp_min(torch.finfo(mass.dtype).tiny)
    per_row = {"gd_active_share": active.to(h.dtype).mean(1), "gd_dropped_of_active": dropped,
               "gd_dropped_mass": removed}
    return {k: 0.5 * (v[:b] + v[b:]) for k, v in per_row.items()}


class AALPObjective(Objective):
    """ALP (Guided Dropout off, weight_rule "none"), M-PGD (lam = 0), or the AALP-style reconstruction."""

    name = "alp"
    version = 1

    def __init__(self, *, eps: float, alpha: float, steps: int, **params):
        alp = check_alp_params(**{k: params.pop(k) for k in ("lam", "train_attack", "label_smoothing") if k in params})
        gd = check_gd(**{k: params.pop(k) for k in list(params) if k.startswith("gd")})
        weights = check_weights(**params)
        super().__init__({"eps": eps, "alpha": alpha, "steps": steps, **alp, **gd, **weights})
        self.recorder = RatioRecorder()

    def __call__(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> ObjectiveOutput:
        p = self.params
        x_adv = training_attack(model, x, y, eps=p["eps"], alpha=p["alpha"], steps=p["steps"],
                                train_attack=p["train_attack"])
        u, yy = torch.cat([x, x_adv]), torch.cat([y, y])
        b, gd_stats = len(x), {}
        if p["gd"] and p["gd_p"] > 0:
            head = linear_head(unwrap(model))

            def drop(h: torch.Tensor) -> torch.Tensor:  # inside the one train-mode forward
                with torch.no_grad():
                    scores = head.weight[yy] * h
                    scores = scores.abs() if p["gd_score"] == "abs" else scores
                dropped, mask = guided_dropout(h, scores, mode=p["gd_mode"], p=p["gd_p"], rescale=p["gd_rescale"],
                                               among=p["gd_among"])
                if p["gd_branches"] == "adv":
                    dropped, mask = torch.cat([h[:b], dropped[b:]]), torch.cat([torch.ones_like(h[:b]), mask[b:]])
                gd_stats.update(dropout_stats(h.detach(), scores.abs(), mask, b))
                return dropped

            logits = model(u, edit_features=drop)
        else:
            logits = model(u)
        l_cls, l_lp = alp_terms(logits, y, p["label_smoothing"])
        lam = p["lam"]
        w = sample_weights(p["weight_rule"], l_cls, l_lp, lam, adv_correct=logits[len(x):].detach().argmax(1) == y,
                           low=p["weight_low"], tau=p["weight_tau"])
        loss = (l_cls + lam * w * l_lp).mean()
        with torch.no_grad():
            r = lam * l_lp / l_cls
            self.recorder.add(x, l_cls, r)
        return ObjectiveOutput(loss, {"cls_loss": l_cls.detach(), "pair_loss": l_lp.detach(), "weight": w,
                                      "r_above_1": (r > 1).to(l_cls.dtype), **gd_stats})

    def start_epoch(self, epoch: int) -> None:
        self.recorder.start_epoch(epoch)

    def end_epoch(self, epoch: int) -> dict:
        return {"c2": self.recorder.end_epoch(epoch)}

    def state_dict(self) -> dict:
        return self.recorder.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.recorder.load_state_dict(state)


def alp_objective(*, eps: float, alpha: float, steps: int, lam: float = 0.5, train_attack: str = "pgd",
                  label_smoothing: float = LABEL_SMOOTHING, **switches) -> AALPObjective:
    """ALP (lam > 0), M-PGD (lam = 0) or, with Guided Dropout and/or a weight rule, the AALP-style reconstruction."""
    check_non_negative("lam", lam)
    return AALPObjective(eps=eps, alpha=alpha, steps=steps, lam=lam, train_attack=train_attack,
                         label_smoothing=label_smoothing, **switches)
