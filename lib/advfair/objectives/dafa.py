"""DAFA on TRADES (Lee et al., "DAFA: Distance-Aware Fair Adversarial Training", ICLR 2024; code rucy74/DAFA).

Epochs 1..τ (`dafa_warmup`, 1-based) are TRADES with W ≡ 1. During epoch τ the class similarity is taken from
the train-mode adversarial outputs, S[k] = mean over class-k training images of softmax(f(x')); after epoch τ the
class weights are set once (Algorithm 2, `class_weights`) and stay fixed. From epoch τ + 1 on, class y gets the
ball W_y·ε with step W_y·α, and its clean CE term the weight W_y (the KL term is unweighted, as in the code):

    L = (1/B) Σ_i W_{y_i} CE(f(x_i), y_i) + β (1/B) Σ_i KL(p(x_i) ‖ p(x'_i)),   ‖x'_i − x_i‖∞ ≤ W_{y_i} ε

The outer passes are those of the library's TRADES (x, x', x), so the warm-up is exactly TRADES; the code makes
two (x', x), which moves BatchNorm's running statistics once less and gives the same loss.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..attacks import attacking
from ..validation import check_choice, check_non_negative, check_number, fail
from .base import Objective
from .trades import gaussian_start, kl_to_clean, trades_inner_max

# "head": the code since 74657cdc and Algorithm 2 (zero-sum per pair); "prefix": the first upload's rule.
WEIGHT_RULES = ("head", "prefix")


def class_weights(similarity: torch.Tensor, lam: float, rule: str = "head") -> torch.Tensor:
    """W of Algorithm 2 from S (rows: true class): for every pair i ≠ j, a harder i (S_ii < S_jj) gains
    λ·S_ij·S_jj; otherwise (a tie included, as in the code) i loses λ·S_ji·S_ii ("head") or λ·S_ij·S_jj
    ("prefix")."""
    check_choice("dafa_weight_rule", rule, WEIGHT_RULES)
    s = similarity.double()
    d = s.diagonal()
    others = ~torch.eye(len(s), dtype=torch.bool, device=s.device)
    harder = (d[:, None] < d[None, :]) & others
    gain = s * d[None, :]  # [i, j] = S_ij·S_jj
    given = s.t() * d[:, None] if rule == "head" else gain  # [i, j] = S_ji·S_ii
    return 1 + lam * (gain * harder).sum(1) - lam * (given * (others & ~harder)).sum(1)


def classwise_inner_max(model: nn.Module, x: torch.Tensor, w: torch.Tensor, *, eps: float, alpha: float,
                        steps: int) -> torch.Tensor:
    """TRADES' KL attack in the ball w_i·ε with step w_i·α per point (`w`: (B,)). The library's `pgd` takes one
    ε per batch, so the steps are written here; with w ≡ 1 use `trades_inner_max` (the same iterates)."""
    w = w.view(-1, *([1] * (x.dim() - 1))).to(x.dtype)
    with attacking(model) as model:
        with torch.no_grad():
            p_clean = F.softmax(model(x), dim=1)
        x_adv = gaussian_start(x)
        for _ in range(steps):
            x_adv.requires_grad_(True)
            grad, = torch.autograd.grad(kl_to_clean(model(x_adv), p_clean).sum(), x_adv)
            x_adv = torch.min(torch.max(x_adv.detach() + w * alpha * grad.sign(), x - w * eps), x + w * eps).clamp(0, 1)
    return x_adv.detach()


class DAFA(Objective):
    """TRADES + DAFA with its warm-up, its one-off class weights and the similarity of epoch `dafa_warmup`."""

    name = "dafa"
    version = 1
    epoch_sums = ("sums",)

    def __init__(self, name: str, params: dict, version: int = 1):
        super().__init__(params)
        c = params["num_classes"]
        self.weights = torch.ones(c, dtype=torch.float64)
        self.sums = torch.zeros(c, c + 1, dtype=torch.float64)  # per true class: Σ softmax(f(x')), then the count
        self.epoch: int | None = None

    def start_epoch(self, epoch: int) -> None:
        self.epoch = epoch + 1

    def __call__(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        p = self.params
        active = self.epoch is not None and self.epoch > p["dafa_warmup"]
        if active:
            w = self.weights.to(x.device, torch.float32)[y]
            x_adv = classwise_inner_max(model, x, w, eps=p["eps"], alpha=p["alpha"], steps=p["steps"])
        else:
            x_adv = trades_inner_max(model, x, y, eps=p["eps"], alpha=p["alpha"], steps=p["steps"])
        logits = model(x)
        natural = (w * F.cross_entropy(logits, y, reduction="none")).mean() if active else F.cross_entropy(logits, y)
        logits_adv = model(x_adv)
        robust = kl_to_clean(logits_adv, F.softmax(model(x), dim=1)).mean()
        if self.epoch == p["dafa_warmup"]:
            with torch.no_grad():
                rows = torch.cat([F.softmax(logits_adv.detach().double(), dim=1), torch.ones_like(y)[:, None]], 1)
                self.sums = self.sums.to(x.device).index_add_(0, y, rows.double())
        return natural + p["beta"] * robust

    def end_epoch(self, epoch: int) -> dict:
        if epoch + 1 != self.params["dafa_warmup"]:
            return {}
        sums = self.sums.cpu()
        empty = (sums[:, -1] == 0).nonzero().flatten().tolist()
        if empty:
            fail("dafa_warmup", self.params["dafa_warmup"],
                 f"an epoch that sees every class (class {empty[0]} had no sample)")
        similarity = sums[:, :-1] / sums[:, -1:]
        self.weights = class_weights(similarity, self.params["dafa_lambda"], self.params["dafa_weight_rule"])
        if (self.weights <= 0).any():
            fail("dafa_lambda", self.params["dafa_lambda"], f"a λ that keeps every weight positive (W = "
                 f"{[round(v, 3) for v in self.weights.tolist()]})")
        return {"dafa_similarity": similarity.tolist(), "dafa_weights": self.weights.tolist()}

    def state_dict(self) -> dict:
        return {"weights": self.weights.clone(), "sums": self.sums.cpu().clone()}

    def load_state_dict(self, state: dict) -> None:
        self.weights = state["weights"].detach().cpu().double().clone()
        self.sums = state["sums"].detach().cpu().double().clone()


def check_dafa_params(*, num_classes: int, dafa_warmup: int, dafa_lambda: float = 1.0, dafa_weight_rule: str = "head",
                      beta: float = 6.0) -> dict:
    """The spec's names: τ is `dafa_warmup` (1-based), λ `dafa_lambda`, the rule `dafa_weight_rule`."""
    check_number("num_classes", num_classes, low=2, integer=True)
    check_number("dafa_warmup", dafa_warmup, low=1, integer=True)
    check_non_negative("dafa_lambda", dafa_lambda)
    check_choice("dafa_weight_rule", dafa_weight_rule, WEIGHT_RULES)
    return {"num_classes": num_classes, "dafa_warmup": dafa_warmup, "dafa_lambda": float(dafa_lambda),
            "dafa_weight_rule": dafa_weight_rule, "beta": float(beta)}
