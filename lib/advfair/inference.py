"""Inference as data: a spec of test-time transformations of the logits, and `deploy(model, spec)`, which
turns it into the module that attacks and metrics see. A defence is always attacked as it is served.

A spec is a sequence of steps applied to the logits in order:

- `Scale(factor)`: z <- factor * z (RoBal's W_i / 10^kappa sweep is factor = 10^-kappa; the argmax, the
  signs of CW margins and APGD-DLR do not change, CE-based attacks do: the "fake gain");
- `ClassScale(factors)`: z_c <- factors_c * z_c, one factor per class (RoBal's Table 1 inference remedies:
  re-scaling z_c / n_c^tau, and tau-normalisation W_c / ||W_c||^tau; both change predictions);
- `Bias(values)`: z <- z + b (Tian et al.'s logit bias on the weakest class);
- `PosthocShift(tau_p, counts)`: z <- z - tau_p * log pi (RoBal Eq. 11, "LA-post"). It SUBTRACTS the prior,
  favouring tail classes; training-time logit adjustment (objectives.logit_adjusted) ADDS it;
- `PairMax(C)`: a dummy-class (2C) model served C-way, m_c = max(z_c, z_(c+C)). Its argmax is DUCAT's
  recovery rule (argmax over 2C, then dummy c + C -> c) exactly, so every metric, report, confusion matrix
  and AutoAttack run on the served module is C-way and recovery-correct.

Attack views of a 2C model (`attack_view`; book designs, not DUCAT's code) are surrogates an attack may
ascend instead of the served module; predictions always stay the served module's:
`raw2C` (the raw 2C logits, attacked with CE on y: dummy-unaware, the paper's evaluation), `pairmax` (the
served C logits), `merged` (log(p_c + p_(c+C)), attacked with loss "nll": dummy-aware) and `dawa` (a
weighted log-likelihood of y and y + C, loss "nll": a reconstruction of DAWA's dummy-aware weighted attack,
whose weighting rule is not public).

Specs are JSON-able (`spec_to_json` / `spec_from_json`) and recorded beside every evaluation.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields

import torch
import torch.nn.functional as F
from torch import nn

from .models import ClassCounts, eval_mode, log_prior
from .validation import check_choice, check_counts, check_number, check_positive, fail


class LogitBias(nn.Module):
    """Adds a fixed vector to a model's logits."""

    def __init__(self, model: nn.Module, bias: torch.Tensor):
        super().__init__()
        self.model = model
        self.register_buffer("bias", bias.detach().clone().float())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x) + self.bias


class LogitScale(nn.Module):
    """Multiplies a model's logits by `factor`: one number, or a tensor of one factor per class."""

    def __init__(self, model: nn.Module, factor: float | torch.Tensor):
        super().__init__()
        self.model = model
        if isinstance(factor, torch.Tensor):
            self.register_buffer("factor", factor.detach().clone().float())
        else:
            self.factor = check_positive("factor", factor)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x) * self.factor


@dataclass(frozen=True)
class Scale:
    factor: float

    def __post_init__(self) -> None:
        check_positive("factor", self.factor)

    def apply(self, model: nn.Module) -> nn.Module:
        return LogitScale(model, self.factor)

    def label(self, z: str) -> str:
        return f"{self.factor:g}·{z}"


@dataclass(frozen=True)
class ClassScale:
    factors: tuple[float, ...]
    name: str = "s_c"  # how the factors read in a formula, e.g. "n_c^−0.3"

    def __post_init__(self) -> None:
        object.__setattr__(self, "factors", tuple(float(v) for v in self.factors))
        for v in self.factors:
            check_positive("factors", v)

    def apply(self, model: nn.Module) -> nn.Module:
        return LogitScale(model, torch.tensor(self.factors))

    def label(self, z: str) -> str:
        return f"{self.name}·{z}" if " " not in z else f"{self.name}·({z})"


@dataclass(frozen=True)
class Bias:
    values: tuple[float, ...]
    name: str = ""  # how the bias reads in a formula, e.g. "− b" (empty: its non-zero terms are listed)

    def __post_init__(self) -> None:
        object.__setattr__(self, "values", tuple(float(v) for v in self.values))
        for v in self.values:
            check_number("bias", v)

    def apply(self, model: nn.Module) -> nn.Module:
        return LogitBias(model, torch.tensor(self.values))

    def label(self, z: str) -> str:
        terms = [self.name] if self.name else [f"{v:+g}·1[c={c}]" for c, v in enumerate(self.values) if v]
        return f"{z} {' '.join(terms)}" if terms else z


@dataclass(frozen=True)
class PosthocShift:
    tau_p: float
    counts: tuple[int, ...]

    def __post_init__(self) -> None:
        check_number("tau_p", self.tau_p)
        object.__setattr__(self, "counts", tuple(check_counts("counts", self.counts)))

    def apply(self, model: nn.Module) -> nn.Module:
        return LogitBias(model, -self.tau_p * log_prior(self.counts))

    def label(self, z: str) -> str:
        return z if self.tau_p == 0 else f"{z} − {self.tau_p:g}·log π"


def check_dummy_outputs(logits: torch.Tensor, num_classes: int) -> None:
    """A dummy-class model has 2C outputs: C real classes, then their C dummy twins."""
    if logits.dim() != 2 or logits.shape[1] != 2 * num_classes:
        fail("outputs", int(logits.shape[-1]), f"{2 * num_classes} outputs: a 2C dummy-class model (C = {num_classes} "
             "real classes and their dummy twins); a C-way model has no dummies to recover")


def recover(logits: torch.Tensor, num_classes: int) -> torch.Tensor:
    """DUCAT's runtime recovery (`evals/evals.py::error_k`): argmax over the 2C outputs, then c + C -> c."""
    check_dummy_outputs(logits, num_classes)
    top = logits.argmax(1)
    return torch.where(top >= num_classes, top - num_classes, top)


def pair_max(logits: torch.Tensor, num_classes: int) -> torch.Tensor:
    """m_c = max(z_c, z_(c+C)): C columns whose argmax is `recover` exactly (ties aside)."""
    check_dummy_outputs(logits, num_classes)
    return torch.maximum(logits[:, :num_classes], logits[:, num_classes:])


def merged_log_probs(logits: torch.Tensor, num_classes: int) -> torch.Tensor:
    """m_c = log(p_c + p_(c+C)) = logsumexp(z_c, z_(c+C)) - logsumexp(z): the log-probability of class c with
    its dummy merged in. exp(m) sums to 1, and -m_y = -log(p_y + p_(y+C)) is a dummy-aware CE."""
    check_dummy_outputs(logits, num_classes)
    return torch.logaddexp(logits[:, :num_classes], logits[:, num_classes:]) - logits.logsumexp(1, keepdim=True)


def dawa_log_scores(logits: torch.Tensor, num_classes: int, weight: float = 0.5) -> torch.Tensor:
    """s_c = w log p_c + (1 - w) log p_(c+C): ascending -s_y is a weighted CE on y and on y + C.
    Reconstruction of DAWA's dummy-aware weighted attack (its weighting rule is not public; w = 1/2 is ours)."""
    check_dummy_outputs(logits, num_classes)
    log_p = F.log_softmax(logits, dim=1)
    return weight * log_p[:, :num_classes] + (1 - weight) * log_p[:, num_classes:]


class DummyView(nn.Module):
    """A function of a 2C model's logits (`pair_max`, `merged_log_probs` or `dawa_log_scores`) as a module.
    It never changes the model's train/eval mode."""

    def __init__(self, model: nn.Module, num_classes: int, kind: str, weight: float = 0.5):
        super().__init__()
        self.model = model
        self.num_classes = check_number("num_classes", num_classes, low=2, integer=True)
        self.kind = check_choice("kind", kind, ("pairmax", "merged", "dawa"))
        self.weight = check_number("dawa_weight", weight, low=0, high=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.model(x)
        if self.kind == "pairmax":
            return pair_max(z, self.num_classes)
        if self.kind == "merged":
            return merged_log_probs(z, self.num_classes)
        return dawa_log_scores(z, self.num_classes, self.weight)


class LogSoftmax(nn.Module):
    """log softmax of a C-way model's logits (loss "nll" on it is CE)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.log_softmax(self.model(x), dim=1)


@dataclass(frozen=True)
class PairMax:
    num_classes: int

    def __post_init__(self) -> None:
        check_number("num_classes", self.num_classes, low=2, integer=True)

    def apply(self, model: nn.Module) -> nn.Module:
        return DummyView(model, self.num_classes, "pairmax")

    def label(self, z: str) -> str:
        return f"max({z}_c, {z}_(c+C))"


# View name -> the attack loss that ascends it ("nll": the view outputs log-scores).
VIEWS: dict[str, str] = {"raw2C": "ce", "pairmax": "ce", "merged": "nll", "dawa": "nll"}


def attack_view(name: str, model: nn.Module, num_classes: int, *, dummy: bool, dawa_weight: float = 0.5) -> nn.Module:
    """The module an attack on view `name` ascends (with the loss `VIEWS[name]`), for the raw `model`.

    For a 2C model (`dummy=True`): raw2C is the model itself, the others `DummyView`s. A C-way model has no
    dummies, so every view is the model itself (as log-probabilities for the "nll" views): the same attack
    runs on a baseline and on its dummy-class counterpart."""
    check_choice("view", name, VIEWS)
    if not dummy:
        return LogSoftmax(model) if VIEWS[name] == "nll" else model
    return model if name == "raw2C" else DummyView(model, num_classes, name, dawa_weight)


def check_outputs(model: nn.Module, x: torch.Tensor, num_classes: int, *, dummy: bool) -> None:
    """Fail unless `model` has C outputs (`dummy=False`: a C-way model, or a 2C model already served with
    PairMax) or 2C outputs (`dummy=True`: a raw dummy-class model). One eval-mode pass on one image."""
    with eval_mode(model), torch.no_grad():
        width = int(model(x[:1]).shape[1])
    expected = 2 * num_classes if dummy else num_classes
    if width != expected:
        allowed = (f"{expected} outputs: a raw 2C dummy-class model (C = {num_classes} real classes and their "
                   "dummy twins)" if dummy else
                   f"{expected} outputs, one per class: a C-way model, or a 2C model served with "
                   f"PairMax({num_classes})")
        fail("outputs", width, allowed)


Step = Scale | ClassScale | Bias | PosthocShift | PairMax
STEPS: dict[str, type] = {"scale": Scale, "class_scale": ClassScale, "bias": Bias, "posthoc_shift": PosthocShift,
                          "pair_max": PairMax}


def deploy(model: nn.Module, spec: Sequence[Step] = ()) -> nn.Module:
    """The served module: `model` with each step of `spec` applied to its logits, in eval mode. An empty
    spec serves the model itself."""
    served = model
    for step in spec:
        if not isinstance(step, tuple(STEPS.values())):
            fail("spec", step, "steps of " + ", ".join(cls.__name__ for cls in STEPS.values()))
        served = step.apply(served)
    return served.eval()


def posthoc(counts: ClassCounts, tau_p: float, scale: float = 1.0) -> tuple[Step, ...]:
    """RoBal's test-time logits scale * z - tau_p * log pi (Eq. 11); identity steps are left out."""
    spec: list[Step] = [] if scale == 1 else [Scale(scale)]
    if tau_p != 0:
        spec.append(PosthocShift(tau_p, tuple(check_counts("counts", counts))))
    return tuple(spec)


def rescaling(counts: ClassCounts, tau: float) -> tuple[Step, ...]:
    """RoBal's Table 1 re-scaling W_c / n_c^tau (the released code's post-hoc CDT head): every logit of a linear
    head, its bias included, divided by n_c^tau. A class-dependent temperature: it moves predictions to the tail."""
    check_number("tau", tau)
    n = check_counts("counts", counts)
    return () if tau == 0 else (ClassScale(tuple(float(c) ** -tau for c in n), f"n_c^−{tau:g}"),)


def weight_normalisation(weight: torch.Tensor, bias: torch.Tensor | None, tau: float) -> tuple[Step, ...]:
    """tau-normalisation (Kang et al.; RoBal Table 1): z_c = <W_c / ||W_c||^tau, f>, without the head's bias as
    in the released code. On the served logits z_c = W_c f + b_c it is (z_c - b_c) / ||W_c||^tau."""
    check_number("tau", tau)
    norms = weight.detach().float().norm(dim=1)
    if not bool((norms > 0).all()):
        fail("weight", "a zero row", "a head whose every class weight vector is non-zero")
    steps: list[Step] = []
    if bias is not None and bool((bias != 0).any()):
        steps.append(Bias(tuple((-bias.detach().float()).tolist()), "− b"))
    if tau != 0:
        steps.append(ClassScale(tuple((norms ** -tau).tolist()), f"‖W_c‖^−{tau:g}"))
    return tuple(steps)


def class_bias(num_classes: int, target: int, b: float) -> tuple[Step, ...]:
    """z_target <- z_target + b (b = 0: no step)."""
    check_number("target", target, low=0, high=num_classes - 1, integer=True)
    if b == 0:
        return ()
    return (Bias(tuple(b if c == target else 0.0 for c in range(num_classes))),)


def spec_to_json(spec: Sequence[Step]) -> list[dict]:
    """Each step as {"kind": ..., its fields}; a field left at its default (a formula's name) is not written."""
    names = {cls: name for name, cls in STEPS.items()}
    written = [{f.name: getattr(step, f.name) for f in fields(step) if getattr(step, f.name) != f.default}
               for step in spec]
    return [{"kind": names[type(step)], **{k: list(v) if isinstance(v, tuple) else v for k, v in values.items()}}
            for step, values in zip(spec, written)]


def spec_from_json(items: Sequence[dict]) -> tuple[Step, ...]:
    out = []
    for item in items:
        kind = item.get("kind")
        if kind not in STEPS:
            fail("kind", kind, "one of " + ", ".join(repr(k) for k in STEPS))
        values = {k: tuple(v) if isinstance(v, list) else v for k, v in item.items() if k != "kind"}
        out.append(STEPS[kind](**values))
    return tuple(out)


def spec_label(spec: Sequence[Step], z: str = "z") -> str:
    """A readable formula of the served logits, e.g. '10·z − 0.1·log π'."""
    for step in spec:
        z = step.label(z)
    return z


def recovery(num_classes: int) -> tuple[Step, ...]:
    """The spec that serves a 2C dummy-class model C-way with DUCAT's recovery rule."""
    return (PairMax(num_classes),)
