"""Inference as data: a spec of test-time transformations of the logits, and `deploy(model, spec)`, which
turns it into the module that attacks and metrics see. A defence is always attacked as it is served.

A spec is a sequence of steps applied to the logits in order:

- `Scale(factor)`: z <- factor * z (RoBal's W_i / 10^kappa sweep is factor = 10^-kappa; the argmax, the
  signs of CW margins and APGD-DLR do not change, CE-based attacks do: the "fake gain");
- `Bias(values)`: z <- z + b (Tian et al.'s logit bias on the weakest class);
- `PosthocShift(tau_p, counts)`: z <- z - tau_p * log pi (RoBal Eq. 11, "LA-post"). It SUBTRACTS the prior,
  favouring tail classes; training-time logit adjustment (objectives.logit_adjusted) ADDS it.

Specs are JSON-able (`spec_to_json` / `spec_from_json`) and recorded beside every evaluation.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import torch
from torch import nn

from .models import ClassCounts, log_prior
from .validation import check_counts, check_number, check_positive, fail


class LogitBias(nn.Module):
    """Adds a fixed vector to a model's logits."""

    def __init__(self, model: nn.Module, bias: torch.Tensor):
        super().__init__()
        self.model = model
        self.register_buffer("bias", bias.detach().clone().float())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x) + self.bias


class LogitScale(nn.Module):
    """Multiplies a model's logits by `factor`."""

    def __init__(self, model: nn.Module, factor: float):
        super().__init__()
        self.model = model
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
class Bias:
    values: tuple[float, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "values", tuple(float(v) for v in self.values))
        for v in self.values:
            check_number("bias", v)

    def apply(self, model: nn.Module) -> nn.Module:
        return LogitBias(model, torch.tensor(self.values))

    def label(self, z: str) -> str:
        terms = [f"{v:+g}·1[c={c}]" for c, v in enumerate(self.values) if v]
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


Step = Scale | Bias | PosthocShift
STEPS: dict[str, type] = {"scale": Scale, "bias": Bias, "posthoc_shift": PosthocShift}


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


def class_bias(num_classes: int, target: int, b: float) -> tuple[Step, ...]:
    """z_target <- z_target + b (b = 0: no step)."""
    check_number("target", target, low=0, high=num_classes - 1, integer=True)
    if b == 0:
        return ()
    return (Bias(tuple(b if c == target else 0.0 for c in range(num_classes))),)


def spec_to_json(spec: Sequence[Step]) -> list[dict]:
    names = {cls: name for name, cls in STEPS.items()}
    return [{"kind": names[type(step)], **{k: list(v) if isinstance(v, tuple) else v for k, v in asdict(step).items()}}
            for step in spec]


def spec_from_json(items: Sequence[dict]) -> tuple[Step, ...]:
    out = []
    for item in items:
        kind = item.get("kind")
        if kind not in STEPS:
            fail("kind", kind, "one of " + ", ".join(repr(k) for k in STEPS))
        fields = {k: tuple(v) if isinstance(v, list) else v for k, v in item.items() if k != "kind"}
        out.append(STEPS[kind](**fields))
    return tuple(out)


def spec_label(spec: Sequence[Step], z: str = "z") -> str:
    """A readable formula of the served logits, e.g. '10·z − 0.1·log π'."""
    for step in spec:
        z = step.label(z)
    return z
