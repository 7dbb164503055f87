"""Verdicts: tested functions of paired statistics, in one vocabulary for every chapter.

A claim is tested in parts (a claim with an "and" has one part per conjunct). Each part compares a paired
estimate on the same points (a bootstrap interval or an exact test) with the claim's direction:

- `reproduced`: the 95% interval lies on the claimed side;
- `not reproduced`: the interval lies on the other side (it excludes the claim);
- `inconclusive at this scale`: the interval allows both;
- `not testable at this scale`: the models or classes involved are degenerate by a stated rule, or the
  run cannot test the part at all.

Parts combine as: any `not reproduced` -> `not reproduced`; else any `not testable` -> `not testable`;
else any `inconclusive` -> `inconclusive`; else `reproduced`. A qualifier may follow after a semicolon.
Seed stability (`with_stability`) turns a verdict that differs between seeds into `inconclusive at this
scale; not stable across seeds`, never a plain `reproduced`.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from .evaluation.paired import Estimate
from .validation import check_choice

REPRODUCED = "reproduced"
NOT_REPRODUCED = "not reproduced"
INCONCLUSIVE = "inconclusive at this scale"
NOT_TESTABLE = "not testable at this scale"
OUTCOMES = (REPRODUCED, NOT_REPRODUCED, INCONCLUSIVE, NOT_TESTABLE)
_PRECEDENCE = (NOT_REPRODUCED, NOT_TESTABLE, INCONCLUSIVE, REPRODUCED)

# Degeneracy rules (stated in every chapter): a model whose clean accuracy is below MODEL_FLOOR x chance has
# not learnt the task well enough to be diagnosed; a class below CLASS_FLOOR x chance clean accuracy is not
# recognised at all, so its robust accuracy says nothing about robustness.
MODEL_FLOOR = 3.0
CLASS_FLOOR = 1.0


@dataclass(frozen=True)
class Part:
    """One tested part of a claim: what was estimated, the rule, and the outcome."""

    label: str
    outcome: str
    estimate: Estimate | None = None
    rule: str = ""
    scale: float = 100.0  # display: 100 shows proportions as points
    digits: int = 1

    def __post_init__(self) -> None:
        check_choice("outcome", self.outcome, OUTCOMES)

    def text(self) -> str:
        if self.estimate is None:
            return f"{self.label}: {self.rule}" if self.rule else self.label
        e = self.estimate
        value, lo, hi = (self._number(v) for v in (e.value, *e.ci))
        rule = f"; claim {self.rule}" if self.rule else ""
        return f"{self.label} {value} [{lo}, {hi}]{rule}"

    def _number(self, v: float) -> str:
        if not np.isfinite(v):
            return "–"
        scaled = round(self.scale * v, self.digits)
        return f"{scaled + 0.0:.{self.digits}f}"  # + 0.0: never print "-0.0"

    def to_json(self) -> dict:
        return {"label": self.label, "outcome": self.outcome, "rule": self.rule, "scale": self.scale,
                "digits": self.digits, "estimate": None if self.estimate is None else self.estimate.to_json()}

    @classmethod
    def from_json(cls, d: dict) -> "Part":
        est = None if d["estimate"] is None else Estimate.from_json(d["estimate"])
        return cls(d["label"], d["outcome"], est, d["rule"], d["scale"], d["digits"])


@dataclass(frozen=True)
class Verdict:
    claim: str
    statement: str
    parts: tuple[Part, ...]
    gates: tuple[Part, ...] = ()  # degeneracy checks that failed: the claim is then not testable
    qualifier: str = ""
    stability: dict = field(default_factory=dict)

    @property
    def outcome(self) -> str:
        if self.stability.get("stable") is False:
            return INCONCLUSIVE
        if self.gates:
            return NOT_TESTABLE
        return combine([p.outcome for p in self.parts])

    def text(self) -> str:
        qualifiers = [q for q in (self.qualifier, self._stability_text()) if q]
        return "; ".join([self.outcome, *qualifiers])

    def evidence(self) -> str:
        return "; ".join(p.text() for p in (*self.gates, *self.parts))

    def _stability_text(self) -> str:
        s = self.stability
        if not s:
            return ""
        if s.get("stale"):
            return "seed stability not current (the stability file is for another config)"
        if s["stable"] is False:
            counts = ", ".join(f"{o} in {k}" for o, k in sorted(s["outcomes"].items(), key=lambda kv: -kv[1]))
            across = "seeds" if s.get("unit", "seeds") == "seeds" else "seeds and kernels"
            return f"not stable across {across} ({counts} of {s['n']})"
        return ""

    def seeds_text(self) -> str:
        s = self.stability
        if not s:
            return "no stability file"
        if s.get("stale"):
            return "stale"
        return f"held in {s['held']} of {s['n']} {s.get('unit', 'seeds')}"

    def to_json(self) -> dict:
        return {"claim": self.claim, "statement": self.statement, "outcome": self.outcome, "text": self.text(),
                "parts": [p.to_json() for p in self.parts], "gates": [g.to_json() for g in self.gates],
                "qualifier": self.qualifier}

    @classmethod
    def from_json(cls, d: dict) -> "Verdict":
        return cls(d["claim"], d["statement"], tuple(Part.from_json(p) for p in d["parts"]),
                   tuple(Part.from_json(g) for g in d["gates"]), d["qualifier"])


def combine(outcomes: Sequence[str]) -> str:
    """The outcome of a claim from the outcomes of its parts (see the module docstring)."""
    if not outcomes:
        return NOT_TESTABLE
    for outcome in _PRECEDENCE:
        if outcome in outcomes:
            return outcome
    raise ValueError(f"unknown outcomes {list(outcomes)}")


def greater(label: str, estimate: Estimate, threshold: float = 0.0, **display) -> Part:
    """The claim: the quantity exceeds `threshold`."""
    lo, hi = estimate.ci
    outcome = (INCONCLUSIVE if not (np.isfinite(lo) and np.isfinite(hi)) else
               REPRODUCED if lo > threshold else NOT_REPRODUCED if hi < threshold else INCONCLUSIVE)
    return Part(label, outcome, estimate, f"> {display.get('scale', 100.0) * threshold:g}", **display)


def less(label: str, estimate: Estimate, threshold: float = 0.0, **display) -> Part:
    """The claim: the quantity is below `threshold`."""
    lo, hi = estimate.ci
    outcome = (INCONCLUSIVE if not (np.isfinite(lo) and np.isfinite(hi)) else
               REPRODUCED if hi < threshold else NOT_REPRODUCED if lo > threshold else INCONCLUSIVE)
    return Part(label, outcome, estimate, f"< {display.get('scale', 100.0) * threshold:g}", **display)


def at_most(label: str, estimate: Estimate, threshold: float = 0.0, **display) -> Part:
    """The claim: the quantity is at most `threshold` (an interval touching it from below still holds)."""
    lo, hi = estimate.ci
    outcome = (INCONCLUSIVE if not (np.isfinite(lo) and np.isfinite(hi)) else
               REPRODUCED if hi <= threshold else NOT_REPRODUCED if lo > threshold else INCONCLUSIVE)
    return Part(label, outcome, estimate, f"≤ {display.get('scale', 100.0) * threshold:g}", **display)


def at_least(label: str, estimate: Estimate, threshold: float = 0.0, **display) -> Part:
    """The claim: the quantity is at least `threshold` (an interval touching it from above still holds)."""
    lo, hi = estimate.ci
    outcome = (INCONCLUSIVE if not (np.isfinite(lo) and np.isfinite(hi)) else
               REPRODUCED if lo >= threshold else NOT_REPRODUCED if hi < threshold else INCONCLUSIVE)
    return Part(label, outcome, estimate, f"≥ {display.get('scale', 100.0) * threshold:g}", **display)


def within(label: str, estimate: Estimate, margin: float, **display) -> Part:
    """The claim: the quantity is (practically) zero, |q| <= margin. Reproduced when the whole interval lies
    inside the margin, not reproduced when it lies entirely outside."""
    lo, hi = estimate.ci
    outcome = (INCONCLUSIVE if not (np.isfinite(lo) and np.isfinite(hi)) else
               REPRODUCED if -margin <= lo and hi <= margin else
               NOT_REPRODUCED if lo > margin or hi < -margin else INCONCLUSIVE)
    return Part(label, outcome, estimate, f"within ±{display.get('scale', 100.0) * margin:g}", **display)


def exact_test(label: str, p_value: float, direction_ok: bool, *, alpha: float = 0.05, rule: str = "") -> Part:
    """An exact test (e.g. McNemar): reproduced when significant in the claimed direction, not reproduced
    when significant against it, inconclusive otherwise."""
    significant = p_value < alpha
    outcome = INCONCLUSIVE if not significant else REPRODUCED if direction_ok else NOT_REPRODUCED
    return Part(f"{label} (p = {p_value:.3g})", outcome, None, rule)


def untestable(label: str, reason: str) -> Part:
    return Part(label, NOT_TESTABLE, None, reason)


def model_gate(label: str, clean_accuracy: float, num_classes: int) -> list[Part]:
    """A failed degeneracy check if the model's clean accuracy is below MODEL_FLOOR x chance (with few
    classes, at most halfway from chance to perfect)."""
    floor = min(MODEL_FLOOR / num_classes, (1 + 1 / num_classes) / 2)
    if clean_accuracy >= floor:
        return []
    return [untestable(f"{label} clean {100 * clean_accuracy:.1f}%",
                       f"degenerate model (clean accuracy below {100 * floor:.0f}%, {floor * num_classes:g}× chance)")]


def class_gate(label: str, class_names: Sequence[str], per_class_clean: Sequence[float], classes: Sequence[int],
               num_classes: int) -> list[Part]:
    """A failed degeneracy check for each involved class whose clean accuracy is below CLASS_FLOOR x chance."""
    floor = CLASS_FLOOR / num_classes
    return [untestable(f"{label} {class_names[c]} clean {100 * per_class_clean[c]:.1f}%",
                       f"degenerate class (clean accuracy below {100 * floor:.0f}% = chance)")
            for c in classes if per_class_clean[c] < floor]


def with_stability(verdict: Verdict, stability: dict | None) -> Verdict:
    """Attach a claim's seed-stability record: {"stale": bool} or {"outcomes": {outcome: count}, "n": n} (and
    "unit", what the n runs are: seeds by default)."""
    if stability is None:
        return verdict
    if stability.get("stale"):
        return replace(verdict, stability={"stale": True})
    outcomes, n = stability["outcomes"], stability["n"]
    held = outcomes.get(verdict.outcome, 0)
    stable = set(outcomes) == {verdict.outcome}  # every seed, and this run, agree
    return replace(verdict, stability={"outcomes": outcomes, "n": n, "held": held, "stable": stable,
                                       "unit": stability.get("unit", "seeds")})
