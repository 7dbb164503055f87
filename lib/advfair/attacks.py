"""White-box L-inf attacks on models taking inputs in [0, 1].

Invariants (tested): inputs are never mutated, results stay inside the eps-ball and [0, 1], and the
model's train/eval mode and parameter ``requires_grad`` flags are restored.

Every attack runs the model in eval mode. With `fold_bn=True` (what evaluation uses) it runs on
`models.for_attacks(model)`, BatchNorm folded into the convs where it can be: the same function up to
float rounding at a fraction of the cost. Training objectives keep the default `fold_bn=False`: rounding
flips the sign of near-zero gradient entries (common on MNIST's black background), so only the unfolded
model takes the inner maximisation's steps exactly where the official training codes take them.
"""
from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import torch
import torch.nn.functional as F
from torch import nn

from .models import eval_mode, for_attacks, unwrap
from .validation import check_choice, check_eps, check_non_negative, check_positive, fail

# "nll" ascends -out_y of a model whose outputs are (log-)scores already, e.g. a view giving log(p_y + p_(y+C)).
# The training attacks' cache version, in every model's key: bump it when a change to PGD and its starts alters the
# adversarial examples that training sees.
VERSION = 1
LOSSES = ("ce", "cw", "cw_hinge", "nll")
START_KINDS = ("symmetric", "positive")
T_RULES = ("global", "per_image_std", "per_image_conf")
# A custom attack loss gets the logits of the rows still attacked, their labels and their positions in the
# batch the attack was called with, so per-sample targets stay aligned when early stop or restarts
# shrink the batch: loss(logits, y, rows) -> per-sample losses.
LossFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]

# Below this temperature softmax(z / T) saturates in float32 for confident points (T-PGD, Tian et al., KDD 2021).
FLOAT64_BELOW_T = 0.2


class LinfThreat:
    """B_eps(x) = {x' : ||x' - x||_inf <= eps} intersected with [0, 1]^d."""

    def __init__(self, eps: float):
        self.eps = check_eps("eps", eps)

    def random_init(self, x: torch.Tensor, generator: torch.Generator | None = None, *,
                    kind: str = "symmetric", clip: bool = True) -> torch.Tensor:
        """x + eps * U[-1, 1) ("symmetric"), or x + eps * U[0, 1) ("positive", the start in RoBal's
        released training code), projected onto the threat set; `clip=False` keeps the unprojected point
        (the first gradient is then taken outside [0, 1], as some official training codes do)."""
        check_choice("kind", kind, START_KINDS)
        noise = torch.rand(x.shape, generator=generator, device="cpu").to(x.device, x.dtype)
        if kind == "symmetric":
            noise = 2 * noise - 1
        start = x + noise * self.eps
        return self.project(start, x) if clip else start

    def project(self, x_adv: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return torch.min(torch.max(x_adv, x - self.eps), x + self.eps).clamp_(0, 1)

    def step(self, x_adv: torch.Tensor, grad: torch.Tensor, alpha: float) -> torch.Tensor:
        return x_adv + alpha * grad.sign()


@contextlib.contextmanager
def attacking(model: nn.Module) -> Iterator[nn.Module]:
    """The model to attack, out of a data-parallel wrapper (`models.unwrap`), in eval mode and with frozen
    parameters (input gradients only) for the duration; both restored after."""
    model = unwrap(model)
    flags = [p.requires_grad for p in model.parameters()]
    for p in model.parameters():
        p.requires_grad_(False)
    try:
        with eval_mode(model):
            yield model
    finally:
        for p, flag in zip(model.parameters(), flags):
            p.requires_grad_(flag)


def check_temperature(temperature: float | torch.Tensor) -> None:
    if isinstance(temperature, torch.Tensor):
        if not bool(torch.isfinite(temperature).all() and (temperature > 0).all()):
            fail("temperature", "tensor with non-positive or non-finite entries", "finite values > 0")
    else:
        check_positive("temperature", temperature)


def tempered_ce(logits: torch.Tensor, y: torch.Tensor, temperature: float | torch.Tensor = 1.0) -> torch.Tensor:
    """Per-sample l_T(z, y) = -log softmax(z / T)_y; float64 at small T against saturation."""
    small = (temperature < FLOAT64_BELOW_T) if not isinstance(temperature, torch.Tensor) \
        else bool((temperature < FLOAT64_BELOW_T).any())
    z = logits.double() if small else logits
    t = temperature.to(z.dtype) if isinstance(temperature, torch.Tensor) else temperature
    return F.cross_entropy(z / t, y, reduction="none")


def cw_margin(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """max_{j != y} z_j - z_y: positive exactly when the point is misclassified."""
    true = logits.gather(1, y[:, None]).squeeze(1)
    others = logits.scatter(1, y[:, None], float("-inf"))
    return others.max(1).values - true


def cw_hinge(logits: torch.Tensor, y: torch.Tensor, kappa: float = 50.0) -> torch.Tensor:
    """max(z_y - max_{j != y} z_j + kappa, 0): the CW loss of RoBal's test code, which its attack drives down.

    Where the hinge is active its ascent direction is cw_margin's; it only differs on points already
    misclassified by more than kappa, whose gradient it zeroes.
    """
    return (kappa - cw_margin(logits, y)).clamp_min(0)


def image_temperature(logits: torch.Tensor, rule: str, t0: float, target: float = 0.5) -> torch.Tensor:
    """Per-image temperatures (B, 1) for T-PGD's per-image rules (a book proposal, not the paper's)."""
    z = logits.detach().double()
    if rule == "per_image_std":
        return (t0 * z.std(dim=1, unbiased=False, keepdim=True)).clamp_min(1e-6).to(logits.dtype)
    # per_image_conf: bisection on log T so that the largest tempered probability equals `target`.
    lo = torch.full((len(z), 1), -12.0, dtype=z.dtype, device=z.device)
    hi = torch.full_like(lo, 12.0)
    for _ in range(40):
        mid = (lo + hi) / 2
        top = torch.softmax(z / mid.exp(), dim=1).max(1, keepdim=True).values
        too_confident = top > target  # a larger T lowers the top probability
        lo = torch.where(too_confident, mid, lo)
        hi = torch.where(too_confident, hi, mid)
    return ((lo + hi) / 2).exp().to(logits.dtype)


def _attack_loss(loss: str | LossFn, logits: torch.Tensor, y: torch.Tensor, rows: torch.Tensor,
                 temperature: float | torch.Tensor, t_rule: str) -> torch.Tensor:
    if callable(loss):
        return loss(logits, y, rows)
    if loss == "cw":
        return cw_margin(logits, y)
    if loss == "cw_hinge":
        return -cw_hinge(logits, y)
    if loss == "nll":
        return -logits.gather(1, y[:, None]).squeeze(1)
    if t_rule != "global":
        temperature = image_temperature(logits, t_rule, float(temperature))
    return tempered_ce(logits, y, temperature)


def _normalised_by_mean_abs(grad: torch.Tensor) -> torch.Tensor:
    """grad / mean(|grad|) per image (MI-FGSM); an all-zero gradient stays zero."""
    scale = grad.abs().mean(dim=tuple(range(1, grad.dim())), keepdim=True)
    return grad / scale.clamp_min(torch.finfo(grad.dtype).tiny)


def _run_pgd(model: nn.Module, x: torch.Tensor, y: torch.Tensor, rows: torch.Tensor, start: torch.Tensor,
             threat: LinfThreat, alpha: float, steps: int, loss: str | LossFn, temperature: float | torch.Tensor,
             t_rule: str, early_stop: bool, momentum: float | None = None) -> torch.Tensor:
    """One PGD run from `start` (`rows`: the positions of x's points in the caller's batch). With
    `early_stop`, a point is frozen at the first iterate that fools the model. With `momentum`, the step
    follows the sign of g_t = momentum * g_(t-1) + grad / mean|grad| (MI-FGSM)."""
    x_adv = start.clone()
    active = torch.arange(len(x), device=x.device)
    velocity = torch.zeros_like(x) if momentum is not None else None
    for _ in range(steps):
        if len(active) == 0:
            break
        xa = x_adv[active].requires_grad_(True)
        logits = model(xa)
        t = temperature[active] if isinstance(temperature, torch.Tensor) else temperature
        objective = _attack_loss(loss, logits, y[active], rows[active], t, t_rule).sum()
        grad, = torch.autograd.grad(objective, xa)
        if velocity is not None:
            velocity[active] = momentum * velocity[active] + _normalised_by_mean_abs(grad)
            grad = velocity[active]
        stepped = threat.project(threat.step(xa.detach(), grad, alpha), x[active])
        if early_stop:
            still_correct = logits.detach().argmax(1) == y[active]
            x_adv[active[still_correct]] = stepped[still_correct]
            active = active[still_correct]
        else:
            x_adv[active] = stepped
    return x_adv


def pgd(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, eps: float, alpha: float, steps: int,
        loss: str | LossFn = "ce", temperature: float | torch.Tensor = 1.0, t_rule: str = "global",
        random_start: bool | str = True, restarts: int = 1, early_stop: bool = False,
        generator: torch.Generator | None = None, x_init: torch.Tensor | None = None,
        clip_start: bool = True, fold_bn: bool = False, judge: nn.Module | None = None) -> torch.Tensor:
    """L-inf PGD maximising `loss` ("ce", "cw" margin, "cw_hinge", or a `LossFn` giving per-sample losses).

    Temperature-PGD is ``pgd(..., temperature=T)``: the CE of z / T drives the steps (T = 1 is PGD).
    `temperature` may be a scalar or a (B, 1) tensor; `t_rule` selects a per-image rule with
    `temperature` as T0. `random_start` is True (= "symmetric"), "positive" (x + eps * U[0, 1)) or
    False. With `restarts` > 1 only points still classified correctly are attacked again.
    `early_stop` keeps the first fooling iterate of each point (worst-case evaluation) and skips it
    from then on. `x_init` replaces the random start of the first restart. `clip_start=False` takes the
    first gradient at the start itself, before any projection (TRADES' and RoBal's official training codes
    do this: on a black background the projected start keeps only positive noise). `judge`: the module whose
    prediction decides which points a restart attacks again (default: `model`), e.g. the served model when
    `model` is a view of it whose argmax differs.
    """
    return _iterative_attack(model, x, y, eps=eps, alpha=alpha, steps=steps, loss=loss, temperature=temperature,
                             t_rule=t_rule, random_start=random_start, restarts=restarts, early_stop=early_stop,
                             generator=generator, x_init=x_init, momentum=None, clip_start=clip_start,
                             fold_bn=fold_bn, judge=judge)


def mim(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, eps: float, alpha: float, steps: int,
        momentum: float = 1.0, loss: str | LossFn = "ce", random_start: bool | str = True, restarts: int = 1,
        early_stop: bool = False, generator: torch.Generator | None = None, fold_bn: bool = False,
        judge: nn.Module | None = None) -> torch.Tensor:
    """Momentum iterative attack (MI-FGSM, Dong et al. 2018) as in RoBal's test code:

        g_t = momentum * g_(t-1) + grad_t / mean(|grad_t|),   x_(t+1) = Proj(x_t + alpha * sign(g_t))

    with a symmetric random start by default. The other arguments are as in `pgd`.
    """
    check_non_negative("momentum", momentum)
    return _iterative_attack(model, x, y, eps=eps, alpha=alpha, steps=steps, loss=loss, temperature=1.0,
                             t_rule="global", random_start=random_start, restarts=restarts, early_stop=early_stop,
                             generator=generator, x_init=None, momentum=momentum, clip_start=True,
                             fold_bn=fold_bn, judge=judge)


def _start_kind(random_start: bool | str) -> str | None:
    """True -> "symmetric", False -> None (start at x), or a kind from START_KINDS."""
    if isinstance(random_start, bool):
        return "symmetric" if random_start else None
    if random_start not in START_KINDS:
        fail("random_start", random_start, "True, False, " + " or ".join(repr(k) for k in START_KINDS))
    return random_start


def _iterative_attack(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, eps: float, alpha: float, steps: int,
                      loss: str | LossFn, temperature: float | torch.Tensor, t_rule: str, random_start: bool | str,
                      restarts: int, early_stop: bool, generator: torch.Generator | None,
                      x_init: torch.Tensor | None, momentum: float | None, clip_start: bool,
                      fold_bn: bool, judge: nn.Module | None) -> torch.Tensor:
    threat = LinfThreat(eps)
    check_positive("alpha", alpha)
    check_positive("steps", steps, integer=True)
    check_positive("restarts", restarts, integer=True)
    check_temperature(temperature)
    check_choice("t_rule", t_rule, T_RULES)
    start_kind = _start_kind(random_start)
    if not callable(loss):
        check_choice("loss", loss, LOSSES)
    x = x.detach()
    with attacking(model) as model:
        model = for_attacks(model) if fold_bn else model
        x_best = x.clone()
        remaining = torch.arange(len(x), device=x.device)
        for r in range(restarts):
            xr, yr = x[remaining], y[remaining]
            if r == 0 and x_init is not None:
                start = x_init.detach()[remaining]
                start = threat.project(start, xr) if clip_start else start.clone()
            elif start_kind is None:
                start = xr.clone()
            else:
                start = threat.random_init(xr, generator, kind=start_kind, clip=clip_start)
            tr = temperature[remaining] if isinstance(temperature, torch.Tensor) else temperature
            x_best[remaining] = _run_pgd(model, xr, yr, remaining, start, threat, alpha, steps, loss, tr, t_rule,
                                         early_stop, momentum)
            if r + 1 < restarts:
                with torch.no_grad():
                    correct = (judge if judge is not None else model)(x_best[remaining]).argmax(1) == yr
                remaining = remaining[correct]
                if len(remaining) == 0:
                    break
    return x_best


def fgsm(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, eps: float, fold_bn: bool = False) -> torch.Tensor:
    """One signed-gradient step of size eps on the CE loss, no random start."""
    return pgd(model, x, y, eps=eps, alpha=eps, steps=1, random_start=False, fold_bn=fold_bn)
