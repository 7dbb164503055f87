"""Parts and verdicts: what a claim's test holds, how its parts combine (primary parts, Holm), and the part
constructors every chapter's rules use."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from ..evaluation.paired import Estimate
from ..validation import check_choice
from .rule import ALPHA, INCONCLUSIVE, NOT_REPRODUCED, NOT_TESTABLE, OUTCOMES, REPRODUCED, Effect, Rule

_PRECEDENCE = (NOT_REPRODUCED, NOT_TESTABLE, INCONCLUSIVE, REPRODUCED)

# What a claim compares: training procedures (its parts vary with the training seed, so deciding needs seeds)
# or one fixed model (e.g. two attacks on it: the per-model paired bootstrap can decide for that model).
COMPARES = ("training", "model")


@dataclass(frozen=True)
class Part:
    """One tested part of a claim: what was estimated, the rule, the outcome, and how many runs it pools."""

    label: str
    outcome: str
    estimate: Estimate | None = None
    rule: str = ""
    scale: float = 100.0  # display: 100 shows proportions as points
    digits: int = 1
    test: Rule | None = None
    primary: bool = True
    note: str = ""
    gate: bool = False  # a degeneracy check: its rule is a floor, its outcome reads testable / borderline / degenerate
    # a gate on what the claim presupposes (e.g. "dummy-unaware gain"), not on a floor: it reads "no ..." / "... uncertain"
    presupposes: str = ""

    def __post_init__(self) -> None:
        check_choice("outcome", self.outcome, OUTCOMES)

    def text(self) -> str:
        secondary = "" if self.primary else " (secondary)"
        note = f" ({self.note})" if self.note else ""
        if self.estimate is None:
            return (f"{self.label}: {self.rule}" if self.rule else self.label) + secondary + note
        e = self.estimate
        value, lo, hi = (self._number(v) for v in (e.value, *e.ci))
        rule = f"; {'' if self.gate else 'claim '}{self.rule}" if self.rule else ""
        return f"{self.label}{secondary} {value} [{lo}, {hi}]{rule}{note}"

    def _number(self, v: float) -> str:
        if not np.isfinite(v):
            return "–"
        scaled = round(self.scale * v, self.digits)
        return f"{scaled + 0.0:.{self.digits}f}"  # + 0.0: never print "-0.0"

    def p_against(self) -> float:
        if self.test is None or self.estimate is None:
            return 1.0
        return self.test.p_against(self.estimate.value, self.estimate.standard_error, self.estimate.df)

    def to_json(self) -> dict:
        test = None if self.test is None else {"side": self.test.side, "threshold": self.test.threshold,
                                               "effect": self.test.effect, "inclusive": self.test.inclusive}
        return {"label": self.label, "outcome": self.outcome, "rule": self.rule, "scale": self.scale,
                "digits": self.digits, "estimate": None if self.estimate is None else self.estimate.to_json(),
                "test": test, "primary": self.primary, "note": self.note, "gate": self.gate,
                **({"presupposes": self.presupposes} if self.presupposes else {})}

    @classmethod
    def from_json(cls, d: dict) -> "Part":
        est = None if d["estimate"] is None else Estimate.from_json(d["estimate"])
        test = None if d.get("test") is None else Rule(**d["test"])
        return cls(d["label"], d["outcome"], est, d["rule"], d["scale"], d["digits"], test, d.get("primary", True),
                   d.get("note", ""), d.get("gate", False), d.get("presupposes", ""))


@dataclass(frozen=True)
class Verdict:
    claim: str
    statement: str
    parts: tuple[Part, ...]
    gates: tuple[Part, ...] = ()  # degeneracy checks, each an at-least test against its floor
    qualifier: str = ""
    stability: dict = field(default_factory=dict)
    compares: str = "training"
    runs: int = 1  # how many training seeds the estimates pool
    pooled: bool = False  # a decision (pool) rather than one run's record

    def __post_init__(self) -> None:
        check_choice("compares", self.compares, COMPARES)

    @property
    def outcome(self) -> str:
        return self._decision()[0]

    def _decision(self) -> tuple[str, list[str]]:
        """The outcome and the qualifiers that explain it."""
        floors = gate_status([g for g in self.gates if not g.presupposes])
        # a failed presupposition says what is missing; the model itself may be sound
        missing = list(dict.fromkeys(g.note for g in self.gates if g.presupposes and g.outcome != REPRODUCED))
        if floors != "testable" or missing:
            return NOT_TESTABLE, [q for q in (floors, *missing) if q != "testable"]
        primary = holm(self.primary_parts())
        if not primary:
            return NOT_TESTABLE, []
        outcome = combine([p.outcome for p in primary])
        # Why a claim is not reproduced (below the effect of interest) or stays open (Holm); other part notes
        # (e.g. a significant shift inside an equivalence margin) stay with their part in the evidence.
        deciding = [p for p in primary if p.outcome == outcome]
        if outcome == NOT_REPRODUCED and any(not p.note for p in deciding):
            notes = []  # some part lies clearly on the other side: that, not a negligible effect, is the reason
        else:
            notes = list(dict.fromkeys(p.note for p in deciding if p.note and (
                outcome == NOT_REPRODUCED or p.note.startswith("not significant after Holm"))))
        if self.pooled and self.compares == "training" and self.runs < 2 and outcome in (REPRODUCED, NOT_REPRODUCED):
            return INCONCLUSIVE, [f"one training seed ({outcome} for this model): training variance not counted"]
        return outcome, notes

    def primary_parts(self) -> list[Part]:
        return [p for p in self.parts if p.primary]

    def failed_gates(self) -> list[Part]:
        return [g for g in self.gates if g.outcome != REPRODUCED]

    def text(self) -> str:
        qualifiers = [q for q in (*self._decision()[1], self.qualifier, self._stability_text()) if q]
        return "; ".join([self.outcome, *qualifiers])

    def evidence(self) -> str:
        pooled = [f"pooled over {self.runs} training seeds"] if self.pooled and self.runs > 1 else []
        return "; ".join([*pooled, *(p.text() for p in (*self.failed_gates(), *holm(list(self.parts))))])

    def _stability_text(self) -> str:
        return "seed stability not current (the stability file is for another config)" if self.stability.get("stale") else ""

    def seeds_text(self) -> str:
        """The per-run record, as it is: "reproduced in 3 of 4 runs", "not testable in 3, not reproduced in 1 of
        4 runs". A diagnostic: the verdict itself comes from the pooled interval."""
        s = self.stability
        if not s:
            return "no stability file"
        if s.get("stale"):
            return "stale"
        counts = sorted(s["outcomes"].items(), key=lambda kv: (-kv[1], OUTCOMES.index(kv[0])))
        listed = ", ".join(f"{_short(o)} in {k}" for o, k in counts)
        return f"{listed} of {s['n']} {s.get('unit', 'seeds')}"

    def to_json(self) -> dict:
        return {"claim": self.claim, "statement": self.statement, "outcome": self.outcome, "text": self.text(),
                "parts": [p.to_json() for p in self.parts], "gates": [g.to_json() for g in self.gates],
                "qualifier": self.qualifier, "compares": self.compares, "runs": self.runs, "pooled": self.pooled}

    @classmethod
    def from_json(cls, d: dict) -> "Verdict":
        return cls(d["claim"], d["statement"], tuple(Part.from_json(p) for p in d["parts"]),
                   tuple(Part.from_json(g) for g in d["gates"]), d["qualifier"], compares=d.get("compares", "training"),
                   runs=d.get("runs", 1), pooled=d.get("pooled", False))


def _short(outcome: str) -> str:
    return outcome.replace(" at this scale", "")


def combine(outcomes: Sequence[str]) -> str:
    """The outcome of a claim from the outcomes of its (primary, Holm-adjusted) parts: any `not reproduced` wins,
    then `not testable`, then `inconclusive`; all `reproduced` is `reproduced`."""
    if not outcomes:
        return NOT_TESTABLE
    for outcome in _PRECEDENCE:
        if outcome in outcomes:
            return outcome
    raise ValueError(f"unknown outcomes {list(outcomes)}")


def holm(parts: list[Part], alpha: float = ALPHA) -> list[Part]:
    """The parts with Holm's step-down applied to the not-reproduced side: over the m primary parts that carry a
    test, a part whose interval rejects the claim stays `not reproduced` only if its p-value is below
    alpha / (m - rank) for it and every primary part ordered before it; otherwise it becomes inconclusive and
    says so. Secondary parts are shown with their own (unadjusted) outcome."""
    tested = [i for i, p in enumerate(parts) if p.primary and p.test is not None and p.estimate is not None]
    m = len(tested)
    if m < 2:
        return list(parts)
    order = sorted(tested, key=lambda i: parts[i].p_against())
    rejected = set()
    for rank, i in enumerate(order):
        if parts[i].p_against() >= alpha / (m - rank):
            break
        rejected.add(i)
    out = list(parts)
    for i in tested:
        if parts[i].outcome == NOT_REPRODUCED and i not in rejected:
            out[i] = replace(parts[i], outcome=INCONCLUSIVE, note=f"not significant after Holm's correction over {m} parts")
    return out


def gate_status(gates: Sequence[Part]) -> str:
    """'testable' when every gate's interval lies above its floor; 'degenerate' when any lies below (or a gate
    without an interval failed: a measurement stuck at a floor); 'borderline' otherwise."""
    outcomes = {g.outcome for g in gates}
    if NOT_REPRODUCED in outcomes or NOT_TESTABLE in outcomes:
        return "degenerate"
    return "testable" if outcomes <= {REPRODUCED} else "borderline"


def _part(label: str, estimate: Estimate, test: Rule, *, primary: bool = True, scale: float = 100.0,
          digits: int = 1) -> Part:
    outcome, note = decide(test, estimate)
    return Part(label, outcome, estimate, test.rule(scale), scale, digits, test, primary, note)


def decide(test: Rule, estimate: Estimate) -> tuple[str, str]:
    """The rule on the estimate's interval; an undefined estimate (e.g. a rank correlation of constant vectors,
    whose resamples may still agree perfectly) is never a verdict."""
    if not np.isfinite(estimate.value):
        return INCONCLUSIVE, "the estimate is undefined"
    return test.decide(*estimate.ci)


def greater(label: str, estimate: Estimate, threshold: float = 0.0, *, effect: Effect, **display) -> Part:
    """The claim: the quantity exceeds `threshold`, by at least the smallest effect of interest."""
    return _part(label, estimate, Rule("greater", threshold, effect.size), **display)


def less(label: str, estimate: Estimate, threshold: float = 0.0, *, effect: Effect, **display) -> Part:
    """The claim: the quantity is below `threshold`, by at least the smallest effect of interest."""
    return _part(label, estimate, Rule("less", threshold, effect.size), **display)


def at_most(label: str, estimate: Estimate, threshold: float = 0.0, **display) -> Part:
    """The claim: the quantity is at most `threshold` (an interval touching it from below still holds)."""
    return _part(label, estimate, Rule("less", threshold, 0.0, inclusive=True), **display)


def at_least(label: str, estimate: Estimate, threshold: float = 0.0, **display) -> Part:
    """The claim: the quantity is at least `threshold` (an interval touching it from above still holds)."""
    return _part(label, estimate, Rule("greater", threshold, 0.0, inclusive=True), **display)


def within(label: str, estimate: Estimate, margin: float, **display) -> Part:
    """The claim: the quantity is (practically) zero, |q| <= margin. Reproduced when the whole interval lies
    inside the margin, not reproduced when it lies entirely outside."""
    return _part(label, estimate, Rule("within", margin), **display)


def exact_test(label: str, value: float, p_value: float, direction_ok: bool, *, alpha: float = ALPHA,
               rule: str = "", side: str = "greater", primary: bool = True) -> Part:
    """An exact test of one run (e.g. a permutation test of a fixed statistic `value`): reproduced when
    significant in the claimed direction, not reproduced when significant against it, inconclusive otherwise.
    The value travels as an estimate without point noise, so that `pool` can pool it over seeds."""
    significant = p_value < alpha
    outcome = INCONCLUSIVE if not significant else REPRODUCED if direction_ok else NOT_REPRODUCED
    return Part(f"{label} (p = {p_value:.3g})", outcome, Estimate(value, (value, value), 0), rule, 1.0, 2,
                Rule(side), primary)


def untestable(label: str, reason: str, *, primary: bool = True) -> Part:
    return Part(label, NOT_TESTABLE, None, reason, primary=primary)
