"""advfair.verdicts: every branch of the part rules, their precedence, the degeneracy gates, the texts and seed
stability, on hand-made estimates."""
from __future__ import annotations

import json
import math

import pytest

from advfair.evaluation import Estimate
from advfair.verdicts import (INCONCLUSIVE, NOT_REPRODUCED, NOT_TESTABLE, OUTCOMES, REPRODUCED, Part, Verdict,
                              class_gate, combine, exact_test, greater, less, model_gate, untestable, with_stability,
                              within)
from advfair.validation import ConfigError

NAN = float("nan")


def est(value: float, lo: float, hi: float, n: int = 100) -> Estimate:
    return Estimate(value, (lo, hi), n)


# ---------------------------------------------------------------------------------------------------------------
# The part rules

@pytest.mark.parametrize("ci, threshold, expected", [
    ((0.01, 0.05), 0.0, REPRODUCED),          # the whole interval above
    ((-0.05, -0.01), 0.0, NOT_REPRODUCED),    # the whole interval below
    ((-0.01, 0.05), 0.0, INCONCLUSIVE),       # straddles
    ((0.0, 0.05), 0.0, INCONCLUSIVE),         # touching the threshold is not above it
    ((-0.05, 0.0), 0.0, INCONCLUSIVE),        # nor below it
    ((0.11, 0.2), 0.1, REPRODUCED),           # another threshold
    ((0.05, 0.09), 0.1, NOT_REPRODUCED),
    ((NAN, 0.05), 0.0, INCONCLUSIVE),         # an undefined interval is never a verdict
    ((0.01, NAN), 0.0, INCONCLUSIVE),
    ((NAN, NAN), -1.0, INCONCLUSIVE),
    ((0.01, math.inf), 0.0, INCONCLUSIVE),
])
def test_greater(ci, threshold, expected):
    part = greater("Δ", est(0.02, *ci), threshold)
    assert part.outcome == expected
    assert part.rule == f"> {100 * threshold:g}"


@pytest.mark.parametrize("ci, threshold, expected", [
    ((-0.05, -0.01), 0.0, REPRODUCED),
    ((0.01, 0.05), 0.0, NOT_REPRODUCED),
    ((-0.01, 0.05), 0.0, INCONCLUSIVE),
    ((-0.05, 0.0), 0.0, INCONCLUSIVE),
    ((0.0, 0.05), 0.0, INCONCLUSIVE),
    ((0.2, 0.29), 0.3, REPRODUCED),
    ((0.31, 0.4), 0.3, NOT_REPRODUCED),
    ((NAN, -0.01), 0.0, INCONCLUSIVE),
    ((-0.05, NAN), 0.0, INCONCLUSIVE),
])
def test_less(ci, threshold, expected):
    part = less("Δ", est(-0.02, *ci), threshold)
    assert part.outcome == expected
    assert part.rule == f"< {100 * threshold:g}"


@pytest.mark.parametrize("ci, expected", [
    ((-0.01, 0.015), REPRODUCED),      # inside +-0.02
    ((-0.02, 0.02), REPRODUCED),       # the margin itself counts as inside
    ((0.021, 0.05), NOT_REPRODUCED),   # entirely above the margin
    ((-0.05, -0.03), NOT_REPRODUCED),  # entirely below
    ((0.01, 0.05), INCONCLUSIVE),      # partly outside
    ((-0.05, 0.05), INCONCLUSIVE),     # wider than the margin on both sides
    ((0.02, 0.05), INCONCLUSIVE),      # starts on the margin: not entirely outside
    ((NAN, 0.01), INCONCLUSIVE),
    ((-0.01, NAN), INCONCLUSIVE),
])
def test_within(ci, expected):
    part = within("Δ", est(0.0, *ci), 0.02)
    assert part.outcome == expected
    assert part.rule == "within ±2"


@pytest.mark.parametrize("p, direction_ok, expected", [
    (0.01, True, REPRODUCED), (0.01, False, NOT_REPRODUCED), (0.2, True, INCONCLUSIVE),
    (0.2, False, INCONCLUSIVE), (0.05, True, INCONCLUSIVE),  # p < alpha, strictly
])
def test_exact_test(p, direction_ok, expected):
    part = exact_test("McNemar", p, direction_ok, rule="B beats A")
    assert part.outcome == expected
    assert part.estimate is None and part.rule == "B beats A"
    assert part.label == f"McNemar (p = {p:.3g})"
    assert exact_test("x", 0.02, True, alpha=0.01).outcome == INCONCLUSIVE


def test_display_scale_in_rules():
    assert greater("ρ", est(0.5, 0.2, 0.8), 0.1, scale=1, digits=2).rule == "> 0.1"
    assert less("NSD", est(0.5, 0.2, 0.8), 0.25, scale=1).rule == "< 0.25"
    assert within("Δ", est(0.0, -0.1, 0.1), 0.05, scale=1).rule == "within ±0.05"


# ---------------------------------------------------------------------------------------------------------------
# Combining parts

def test_combine_precedence():
    assert combine([REPRODUCED, REPRODUCED]) == REPRODUCED
    assert combine([REPRODUCED, INCONCLUSIVE]) == INCONCLUSIVE
    assert combine([INCONCLUSIVE, NOT_TESTABLE, REPRODUCED]) == NOT_TESTABLE
    assert combine([NOT_TESTABLE, NOT_REPRODUCED, INCONCLUSIVE, REPRODUCED]) == NOT_REPRODUCED
    assert combine([REPRODUCED, NOT_REPRODUCED]) == NOT_REPRODUCED
    assert combine([NOT_TESTABLE]) == NOT_TESTABLE
    assert combine([]) == NOT_TESTABLE  # nothing tested
    with pytest.raises(ValueError):
        combine(["maybe"])


def test_part_rejects_unknown_outcomes():
    with pytest.raises(ConfigError, match="outcome='maybe'"):
        Part("x", "maybe")
    assert set(OUTCOMES) == {REPRODUCED, NOT_REPRODUCED, INCONCLUSIVE, NOT_TESTABLE}


def test_verdict_outcome_from_parts_and_gates():
    good = greater("Δ", est(0.02, 0.01, 0.03))
    bad = greater("Δ", est(-0.02, -0.03, -0.01))
    assert Verdict("C1", "s", (good, good)).outcome == REPRODUCED
    assert Verdict("C1", "s", (good, bad)).outcome == NOT_REPRODUCED
    assert Verdict("C1", "s", ()).outcome == NOT_TESTABLE
    gate = untestable("model clean 5%", "degenerate")
    assert gate.outcome == NOT_TESTABLE
    assert Verdict("C1", "s", (good, bad), gates=(gate,)).outcome == NOT_TESTABLE  # a failed gate wins


# ---------------------------------------------------------------------------------------------------------------
# Degeneracy gates

def test_model_gate_floor_is_three_times_chance():
    assert model_gate("PGD-AT", 0.30, 10) == []  # exactly 3/C passes
    failed = model_gate("PGD-AT", 0.299, 10)
    assert len(failed) == 1 and failed[0].outcome == NOT_TESTABLE
    assert failed[0].label == "PGD-AT clean 29.9%"
    assert "30%" in failed[0].rule and "3× chance" in failed[0].rule
    assert model_gate("m", 0.029, 100) != [] and model_gate("m", 0.03, 100) == []  # 3/100


def test_model_gate_with_few_classes():
    # 3/C is capped halfway from chance to perfect: C = 4 gives min(0.75, 0.625), C = 2 gives min(1.5, 0.75)
    assert len(model_gate("m", 0.62, 4)) == 1
    assert model_gate("m", 0.625, 4) == []
    assert len(model_gate("m", 0.74, 2)) == 1
    assert model_gate("m", 1.0, 2) == []


def test_class_gate_floor_is_chance():
    names = ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j"]
    per_class = [0.5, 0.1, 0.099, 0.0, 0.9, 0.5, 0.5, 0.5, 0.5, 0.5]
    failed = class_gate("PGD-AT", names, per_class, [0, 1, 2, 3], 10)
    assert [p.label for p in failed] == ["PGD-AT c clean 9.9%", "PGD-AT d clean 0.0%"]  # below 1/C = 10%
    assert all(p.outcome == NOT_TESTABLE and "10%" in p.rule for p in failed)
    assert class_gate("PGD-AT", names, per_class, [0, 1, 4], 10) == []  # only the classes involved are checked


# ---------------------------------------------------------------------------------------------------------------
# Texts

def test_part_text_scales_rounds_and_never_prints_negative_zero():
    part = greater("Δ mean", est(-0.0004, -0.00049, 0.0123), 0.0)
    assert part.text() == "Δ mean 0.0 [0.0, 1.2]; claim > 0"
    assert "-0.0" not in part.text()
    assert greater("ρ", est(0.456, 0.1, 0.789), 0.0, scale=1, digits=2).text() == "ρ 0.46 [0.10, 0.79]; claim > 0"
    assert greater("Δ", est(NAN, NAN, NAN)).text() == "Δ – [–, –]; claim > 0"
    assert untestable("this pipeline", "runs one ratio").text() == "this pipeline: runs one ratio"
    assert Part("bare", INCONCLUSIVE).text() == "bare"
    assert Part("Δ", REPRODUCED, est(0.1, 0.05, 0.15)).text() == "Δ 10.0 [5.0, 15.0]"  # no rule, no claim


def test_verdict_text_and_evidence():
    a = greater("Δ clean", est(0.05, 0.02, 0.08))
    b = less("Δ AA", est(-0.0001, -0.0004, 0.03))
    gate = untestable("TRADES clean 12.0%", "degenerate model")
    v = Verdict("C3", "statement", (a, b), qualifier="on the AA points")
    assert v.outcome == INCONCLUSIVE
    assert v.text() == "inconclusive at this scale; on the AA points"
    assert v.evidence() == "Δ clean 5.0 [2.0, 8.0]; claim > 0; Δ AA 0.0 [0.0, 3.0]; claim < 0"
    assert "-0.0" not in v.evidence()
    gated = Verdict("C3", "statement", (a, b), gates=(gate,))
    assert gated.text() == NOT_TESTABLE
    assert gated.evidence().startswith("TRADES clean 12.0%: degenerate model; Δ clean")
    assert Verdict("C1", "s", (a,)).seeds_text() == "no stability file"


# ---------------------------------------------------------------------------------------------------------------
# Seed stability

def _verdict(outcome_ci=(0.01, 0.03)) -> Verdict:
    return Verdict("C2", "statement", (greater("Δ", est(0.02, *outcome_ci)),))


def test_with_stability_unanimous_seeds():
    v = with_stability(_verdict(), {"outcomes": {REPRODUCED: 3}, "n": 3})
    assert v.outcome == REPRODUCED
    assert v.seeds_text() == "held in 3 of 3 seeds"
    assert v.text() == REPRODUCED  # no qualifier when stable
    assert v.stability["stable"] is True and v.stability["held"] == 3


def test_with_stability_disagreeing_seeds_is_inconclusive():
    v = with_stability(_verdict(), {"outcomes": {REPRODUCED: 2, INCONCLUSIVE: 1}, "n": 3})
    assert v.outcome == INCONCLUSIVE  # never a plain "reproduced"
    assert v.seeds_text() == "held in 2 of 3 seeds"
    assert "not stable across seeds" in v.text()
    assert v.text() == "inconclusive at this scale; not stable across seeds (reproduced in 2, " \
                       "inconclusive at this scale in 1 of 3)"
    # seeds that agree with each other but not with this run are not stable either
    other = with_stability(_verdict(), {"outcomes": {NOT_REPRODUCED: 3}, "n": 3})
    assert other.outcome == INCONCLUSIVE and other.seeds_text() == "held in 0 of 3 seeds"


def test_with_stability_stale_and_missing():
    v = with_stability(_verdict(), {"stale": True})
    assert v.seeds_text() == "stale"
    assert v.outcome == REPRODUCED  # a stale file changes no outcome ...
    assert "seed stability not current" in v.text()  # ... but says so
    assert with_stability(_verdict(), None) == _verdict()
    assert with_stability(_verdict(), None).seeds_text() == "no stability file"


def test_part_and_verdict_json_round_trip():
    parts = (greater("Δ", est(0.02, 0.01, 0.03), scale=1, digits=3), untestable("x", "why"),
             within("Δ", est(NAN, NAN, NAN), 0.02))
    v = Verdict("C5", "statement", parts, gates=(untestable("g", "degenerate"),), qualifier="q")
    data = json.loads(json.dumps(v.to_json()))
    assert data["outcome"] == NOT_TESTABLE and data["text"] == v.text()
    back = Verdict.from_json(data)
    assert back.claim == v.claim and back.statement == v.statement and back.qualifier == "q"
    assert back.gates == v.gates and back.outcome == v.outcome and back.evidence() == v.evidence()
    for p, q in zip(back.parts, v.parts):
        assert p.label == q.label and p.outcome == q.outcome and p.rule == q.rule and p.scale == q.scale
        assert p.digits == q.digits and p.text() == q.text()
    assert Part.from_json(parts[0].to_json()) == parts[0]
    assert Part.from_json(parts[1].to_json()) == parts[1]
    assert Estimate.from_json(json.loads(json.dumps(est(0.1, 0.0, 0.2, 40).to_json()))) == est(0.1, 0.0, 0.2, 40)


def test_verdict_table_shows_evidence_verdict_and_seeds():
    from advfair.tables import untestable_notes, verdict_table

    a = Verdict("C1", "robust is more uneven", (greater("Δ NSD", est(0.1, 0.05, 0.15), scale=1, digits=2),))
    b = Verdict("C2", "needs a model", (greater("Δ", est(0.1, 0.05, 0.15)),),
                gates=tuple(model_gate("TRADES", 0.1, 10)))
    table = verdict_table([a, b], {"C1": {"outcomes": {REPRODUCED: 2, INCONCLUSIVE: 1}, "n": 3}})
    assert list(table.index) == ["C1", "C2"]
    assert table.loc["C1", "verdict"].startswith(INCONCLUSIVE + "; not stable across seeds")
    assert table.loc["C1", "seeds"] == "held in 2 of 3 seeds" and table.loc["C2", "seeds"] == "no stability file"
    assert table.loc["C1", "this book [95% CI]"] == "Δ NSD 0.10 [0.05, 0.15]; claim > 0"
    assert table.loc["C2", "verdict"] == NOT_TESTABLE
    assert verdict_table([a]).loc["C1", "verdict"] == REPRODUCED  # no stability given: the run's own verdict
    notes = untestable_notes([a, b])
    assert "**C2**" in notes and "TRADES clean 10.0%" in notes and "C1" not in notes
