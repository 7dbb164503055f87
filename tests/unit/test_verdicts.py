"""advfair.verdicts: every branch of the part rules (with the smallest effect of interest), Holm's correction,
the gates with intervals, pooling over training seeds, the texts and the per-run record, on hand-made
estimates. Includes a true null that must come out `not reproduced` with enough data and `inconclusive` with
little, and a pooled interval that widens when the seeds disagree."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

from advfair.evaluation import Estimate
from advfair.evaluation.paired import paired_difference
from advfair.verdicts import (ACCURACY_POINT, ALPHA, INCONCLUSIVE, NEGLIGIBLE, NOT_REPRODUCED, NOT_TESTABLE, OUTCOMES,
                              REPRODUCED, SD_POINT, THRESHOLD_ONLY, Effect, Part, Rule, Verdict, at_least, at_most,
                              class_gate, combine, exact_test, gate_status, greater, holm, less, model_gate, pool,
                              pooled_estimate, run_record, untestable, with_stability, within)
from advfair.tables import width_table
from advfair.validation import ConfigError

NAN = float("nan")
NONE = THRESHOLD_ONLY  # no effect of interest beyond the threshold


def est(value: float, lo: float, hi: float, n: int = 100) -> Estimate:
    return Estimate(value, (lo, hi), n)


# ---------------------------------------------------------------------------------------------------------------
# The part rules

@pytest.mark.parametrize("ci, threshold, expected", [
    ((0.01, 0.05), 0.0, REPRODUCED),          # the whole interval above
    ((-0.05, -0.01), 0.0, NOT_REPRODUCED),    # the whole interval below
    ((-0.01, 0.05), 0.0, INCONCLUSIVE),       # straddles
    ((0.0, 0.05), 0.0, INCONCLUSIVE),         # touching the threshold is not above it
    ((0.11, 0.2), 0.1, REPRODUCED),           # another threshold
    ((0.05, 0.09), 0.1, NOT_REPRODUCED),
    ((NAN, 0.05), 0.0, INCONCLUSIVE),         # an undefined interval is never a verdict
    ((0.01, NAN), 0.0, INCONCLUSIVE),
    ((NAN, NAN), -1.0, INCONCLUSIVE),
    ((0.01, math.inf), 0.0, INCONCLUSIVE),
])
def test_greater_without_an_effect_of_interest(ci, threshold, expected):
    part = greater("Δ", est(0.02, *ci), threshold, effect=NONE)
    assert part.outcome == expected
    assert part.rule == f"> {100 * threshold:g}"


@pytest.mark.parametrize("ci, outcome, note", [
    ((0.02, 0.05), REPRODUCED, ""),                                   # beyond 0, reaching past δ
    ((0.001, 0.05), REPRODUCED, ""),                                  # reproduced needs only > 0 (not > δ)
    ((-0.05, -0.02), NOT_REPRODUCED, ""),                             # the other side
    ((-0.004, 0.008), NOT_REPRODUCED, NEGLIGIBLE),                    # inside the negligible band: a null
    ((-0.03, 0.008), NOT_REPRODUCED, NEGLIGIBLE),                     # no effect of interest in the interval
    ((0.002, 0.008), NOT_REPRODUCED, "on the claimed side but " + NEGLIGIBLE),  # real but negligible
    ((-0.004, 0.012), INCONCLUSIVE, ""),                              # reaches δ: an effect of interest is allowed
    ((-0.004, 0.01), INCONCLUSIVE, ""),                               # touching δ is not short of it
])
def test_greater_with_a_smallest_effect_of_interest(ci, outcome, note):
    part = greater("Δ", est(0.003, *ci), effect=ACCURACY_POINT)
    assert (part.outcome, part.note) == (outcome, note)
    assert part.rule == "> 0, effect of interest 1"


@pytest.mark.parametrize("ci, outcome", [
    ((-0.05, -0.01), REPRODUCED), ((0.01, 0.05), NOT_REPRODUCED), ((-0.01, 0.05), INCONCLUSIVE),
    ((-0.005, 0.004), NOT_REPRODUCED),  # the band below 0: -δ < interval
    ((-0.02, 0.004), INCONCLUSIVE), ((0.2, 0.29), REPRODUCED),
])
def test_less_mirrors_greater(ci, outcome):
    threshold = 0.3 if ci[0] > 0.1 else 0.0
    assert less("Δ", est(0.0, *ci), threshold, effect=ACCURACY_POINT).outcome == outcome


def test_the_effect_of_interest_never_makes_reproduced_easier():
    rng = np.random.default_rng(0)
    for _ in range(2000):
        lo = rng.uniform(-0.05, 0.05)
        ci = (lo, lo + rng.uniform(0, 0.05))
        plain, banded = (greater("Δ", est(0, *ci), effect=e).outcome for e in (NONE, SD_POINT))
        assert (banded == REPRODUCED) <= (plain == REPRODUCED)
        assert (plain == NOT_REPRODUCED) <= (banded == NOT_REPRODUCED)


@pytest.mark.parametrize("ci, expected", [
    ((-0.01, 0.015), REPRODUCED),      # inside +-0.02
    ((-0.02, 0.02), REPRODUCED),       # the margin itself counts as inside
    ((0.021, 0.05), NOT_REPRODUCED),   # entirely above the margin
    ((-0.05, -0.03), NOT_REPRODUCED),  # entirely below
    ((0.01, 0.05), INCONCLUSIVE),      # partly outside
    ((-0.05, 0.05), INCONCLUSIVE),     # wider than the margin on both sides
    ((0.02, 0.05), INCONCLUSIVE),      # starts on the margin: not entirely outside
    ((NAN, 0.01), INCONCLUSIVE),
])
def test_within(ci, expected):
    part = within("Δ", est(0.0, *ci), 0.02)
    assert part.outcome == expected
    assert part.rule == "within ±2"


def test_within_notes_a_significant_shift_and_an_interval_too_wide_to_show_closeness():
    assert within("Δ", est(-0.01, -0.02, -0.001), 0.03).note == "significantly below 0"
    assert within("Δ", est(0.05, 0.04, 0.06), 0.03).note == "significantly above 0"
    wide = within("Δ", est(0.0, -0.04, 0.035), 0.03)
    assert wide.outcome == INCONCLUSIVE and "wider than the margin" in wide.note
    assert within("Δ", est(0.0, -0.01, 0.01), 0.03).note == ""
    # such notes stay with their part: the verdict's text carries only why it is not reproduced or open
    assert Verdict("C2", "s", (within("Δ", est(-0.01, -0.02, -0.001), 0.03),)).text() == REPRODUCED


def test_an_undefined_estimate_is_never_a_verdict_whatever_its_interval():
    part = greater("ρ", est(NAN, 1.0, 1.0), 0.5, effect=NONE, scale=1, digits=2)  # e.g. ρ of constant vectors
    assert (part.outcome, part.note) == (INCONCLUSIVE, "the estimate is undefined")


def test_at_most_and_at_least_accept_touching_the_threshold():
    assert at_most("Δ", est(-0.01, -0.02, 0.0)).outcome == REPRODUCED
    assert at_most("Δ", est(0.02, 0.01, 0.03)).outcome == NOT_REPRODUCED
    assert at_least("p", est(0.3, 0.3, 0.4), 0.3).outcome == REPRODUCED
    assert at_least("p", est(0.2, 0.1, 0.29), 0.3).outcome == NOT_REPRODUCED
    assert at_most("Δ", est(0, -0.01, 0.01)).rule == "≤ 0" and at_least("p", est(0, 0, 1), 0.3).rule == "≥ 30"


@pytest.mark.parametrize("p, direction_ok, expected", [
    (0.01, True, REPRODUCED), (0.01, False, NOT_REPRODUCED), (0.2, True, INCONCLUSIVE),
    (0.2, False, INCONCLUSIVE), (0.05, True, INCONCLUSIVE),  # p < alpha, strictly
])
def test_exact_test(p, direction_ok, expected):
    part = exact_test("permutation", 0.4, p, direction_ok, rule="ρ > 0")
    assert part.outcome == expected
    assert part.estimate.value == 0.4 and part.estimate.ci == (0.4, 0.4) and part.rule == "ρ > 0"
    assert part.label == f"permutation (p = {p:.3g})"
    assert exact_test("x", 0.4, 0.02, True, alpha=0.01).outcome == INCONCLUSIVE


def test_display_scale_in_rules():
    assert greater("ρ", est(0.5, 0.2, 0.8), 0.1, effect=NONE, scale=1, digits=2).rule == "> 0.1"
    assert less("NSD", est(0.5, 0.2, 0.8), 0.25, effect=Effect(0.02, "x"), scale=1).rule == "< 0.25, effect of interest 0.02"
    assert within("Δ", est(0.0, -0.1, 0.1), 0.05, scale=1).rule == "within ±0.05"


def test_effects_and_tests_refuse_bad_values():
    with pytest.raises(ConfigError, match="smallest effect of interest"):
        Effect(-0.01, "x")
    with pytest.raises(ConfigError, match="side='above'"):
        Rule("above")
    with pytest.raises(TypeError):  # an effect of interest must be declared
        greater("Δ", est(0, -1, 1))


# ---------------------------------------------------------------------------------------------------------------
# Combining parts: precedence, primary parts, Holm

def test_combine_precedence():
    assert combine([REPRODUCED, REPRODUCED]) == REPRODUCED
    assert combine([REPRODUCED, INCONCLUSIVE]) == INCONCLUSIVE
    assert combine([INCONCLUSIVE, NOT_TESTABLE]) == NOT_TESTABLE
    assert combine([NOT_TESTABLE, NOT_REPRODUCED, REPRODUCED]) == NOT_REPRODUCED
    assert combine([]) == NOT_TESTABLE


def test_part_rejects_unknown_outcomes():
    with pytest.raises(ConfigError, match="outcome='maybe'"):
        Part("x", "maybe")
    assert set(OUTCOMES) == {REPRODUCED, NOT_REPRODUCED, INCONCLUSIVE, NOT_TESTABLE}


def test_all_primary_parts_must_hold_and_secondary_parts_do_not_vote():
    good = greater("Δ", est(0.02, 0.01, 0.03), effect=NONE)
    open_ = greater("Δ", est(0.0, -0.01, 0.03), effect=NONE)
    bad = greater("Δ", est(-0.02, -0.03, -0.01), effect=NONE)
    assert Verdict("C1", "s", (good, good)).outcome == REPRODUCED
    assert Verdict("C1", "s", (good, open_)).outcome == INCONCLUSIVE
    assert Verdict("C1", "s", (good, greater("Δ", est(0.0, -0.01, 0.03), effect=NONE, primary=False))).outcome == REPRODUCED
    secondary_bad = greater("Δ", est(-0.02, -0.03, -0.01), effect=NONE, primary=False)
    v = Verdict("C1", "s", (good, secondary_bad))
    assert v.outcome == REPRODUCED and "(secondary)" in v.evidence()
    assert Verdict("C1", "s", (bad,)).outcome == NOT_REPRODUCED
    assert Verdict("C1", "s", ()).outcome == NOT_TESTABLE
    assert Verdict("C1", "s", (secondary_bad,)).outcome == NOT_TESTABLE  # no primary part: nothing is claimed


def _from_p(p: float, n_sided_effect: float = 0.0) -> Part:
    """A greater-than-0 part whose interval lies below 0 with not-reproduced p-value p (a normal estimate)."""
    from scipy import stats
    z = stats.norm.isf(p / 2)  # p = 2 * Phi(value / se), se = 1
    return greater("Δ", Estimate(-z, (-z - 1.959964, -z + 1.959964), 100, se=1.0), effect=NONE)


def test_holm_keeps_a_rejection_only_when_it_survives_the_correction():
    strong, weak = _from_p(0.001), _from_p(0.04)  # both intervals lie below 0 (p < 0.05)
    assert strong.outcome == weak.outcome == NOT_REPRODUCED
    assert strong.p_against() == pytest.approx(0.001, rel=1e-3) and weak.p_against() == pytest.approx(0.04, rel=1e-3)
    # one part: no correction
    assert Verdict("C1", "s", (weak,)).outcome == NOT_REPRODUCED
    # two parts, one at 0.04 and one inconclusive (p large): 0.04 >= 0.05 / 2, so no rejection
    open_ = greater("Δ", Estimate(0.5, (-1.46, 2.46), 100, se=1.0), effect=NONE)
    v = Verdict("C1", "s", (weak, open_))
    assert v.outcome == INCONCLUSIVE
    assert "not significant after Holm's correction over 2 parts" in v.text()
    # with a strong rejection first, the weak one is tested at 0.05 / 1 and survives (step-down)
    assert [p.outcome for p in holm([strong, weak])] == [NOT_REPRODUCED, NOT_REPRODUCED]
    assert [p.outcome for p in holm([strong, weak, open_])] == [NOT_REPRODUCED, INCONCLUSIVE, INCONCLUSIVE]
    assert Verdict("C1", "s", (strong, weak, open_)).outcome == NOT_REPRODUCED
    # nine parts, one barely below 0 (the ABSLD C1 case): no longer "not reproduced"
    nine = (_from_p(0.03), *(greater("Δ", Estimate(0.5, (-1.46, 2.46), 100, se=1.0), effect=NONE) for _ in range(8)))
    assert Verdict("C1", "s", nine).outcome == INCONCLUSIVE


def test_holm_p_values_match_the_interval_rule():
    # a 95% interval whose far end sits exactly on threshold + effect: p = 0.05
    part = greater("Δ", Estimate(0.01 - 1.959964 * 0.01, (0.01 - 2 * 1.959964 * 0.01, 0.01), 100, se=0.01),
                   effect=ACCURACY_POINT)
    assert part.p_against() == pytest.approx(ALPHA, rel=1e-4)
    assert within("Δ", Estimate(0.05, (0.03, 0.07), 100, se=0.01), 0.03).p_against() == pytest.approx(
        2 * 0.02275, rel=1e-2)


# ---------------------------------------------------------------------------------------------------------------
# Degeneracy gates: intervals against floors, evaluated before the parts

def test_model_gate_is_an_interval_against_three_times_chance():
    ok = model_gate("PGD-AT", np.r_[np.ones(500), np.zeros(500)], 10)  # 50 %: far above 30 %
    assert ok.outcome == REPRODUCED and ok.gate and ok.label == "PGD-AT clean"
    assert ok.rule == "model floor 30% (3× chance)"
    low = model_gate("PGD-AT", np.r_[np.ones(100), np.zeros(900)], 10)  # 10 %, upper bound below 30 %
    assert low.outcome == NOT_REPRODUCED and low.note == "degenerate"
    border = model_gate("PGD-AT", np.r_[np.ones(29), np.zeros(71)], 10)  # 29 of 100: the interval holds 30 %
    assert border.outcome == INCONCLUSIVE and border.note == "borderline"
    assert low.text() == "PGD-AT clean 10.0 [8.2, 12.0]; model floor 30% (3× chance) (degenerate)"
    # few classes: the floor is at most halfway from chance to perfect
    assert "62%" in model_gate("m", np.ones(10), 4).rule and "75%" in model_gate("m", np.ones(10), 2).rule


def test_robust_gate_is_an_interval_against_chance():
    from advfair.verdicts import robust_gate

    ok = robust_gate("PGD-AT", np.r_[np.ones(300), np.zeros(700)], 10, "PGD20")  # 30 %: far above 10 %
    assert ok.outcome == REPRODUCED and ok.gate and ok.label == "PGD-AT PGD20" and ok.rule == "robust floor 10% (chance)"
    low = robust_gate("PGD-AT", np.r_[np.ones(20), np.zeros(980)], 10, "PGD20")  # 2 %: no robustness to compare
    assert low.outcome == NOT_REPRODUCED and low.note == "degenerate"
    border = robust_gate("PGD-AT", np.r_[np.ones(9), np.zeros(91)], 10, "PGD20")  # 9 of 100: the interval holds 10 %
    assert border.outcome == INCONCLUSIVE and border.note == "borderline"
    assert "robust floor 50% (chance)" in robust_gate("m", np.ones(10), 2, "PGD").rule


def test_class_gate_checks_only_the_classes_involved():
    names = list("abcdefghij")
    y = np.repeat(np.arange(10), 200)
    correct = np.zeros(2000, dtype=bool)
    correct[(y == 0) & (np.arange(2000) % 2 == 0)] = True  # class a 50 %
    correct[np.flatnonzero(y == 1)[:17]] = True            # class b 8.5 %: its interval holds 10 %
    gates = class_gate("PGD-AT", names, correct, y, [0, 1, 2])
    assert [g.label for g in gates] == ["PGD-AT a clean", "PGD-AT b clean", "PGD-AT c clean"]
    assert [g.outcome for g in gates] == [REPRODUCED, INCONCLUSIVE, NOT_REPRODUCED]
    assert [g.note for g in gates] == ["", "borderline", "degenerate"]


def test_gates_come_before_parts_and_a_degenerate_gate_wins():
    bad = greater("Δ", est(-0.02, -0.03, -0.01), effect=NONE)
    good_gate = model_gate("m", np.r_[np.ones(600), np.zeros(400)], 10)
    border = model_gate("m", np.r_[np.ones(29), np.zeros(71)], 10)
    dead = model_gate("m", np.zeros(1000), 10)
    assert Verdict("C1", "s", (bad,), (good_gate,)).outcome == NOT_REPRODUCED
    v = Verdict("C1", "s", (bad,), (good_gate, border))
    assert v.outcome == NOT_TESTABLE and v.text() == NOT_TESTABLE + "; borderline"  # never overridden by a part
    assert Verdict("C1", "s", (bad,), (border, dead)).text() == NOT_TESTABLE + "; degenerate"
    assert gate_status([]) == "testable"
    floor = Part("worst class", NOT_TESTABLE, rule="at the floor", gate=True)  # a gate without an interval
    assert gate_status([floor]) == "degenerate"
    assert v.failed_gates() == [border] and v.evidence().startswith("m clean 29.0")  # passing gates are not shown


# ---------------------------------------------------------------------------------------------------------------
# Pooling over training seeds

def test_pooled_estimate_counts_training_and_point_variance():
    same = [Estimate(0.02, (0.0, 0.04), 100)] * 3  # identical seeds: only the points' variance
    p = pooled_estimate(same)
    assert p.value == pytest.approx(0.02) and p.df == math.inf and p.runs == 3
    assert p.ci == pytest.approx((0.0, 0.04), abs=1e-9)  # the per-seed SE counted in full: no narrower than one seed
    spread = [Estimate(v, (v - 0.02, v + 0.02), 100) for v in (-0.03, 0.02, 0.07)]  # seeds disagree
    q = pooled_estimate(spread)
    assert q.value == pytest.approx(0.02) and q.ci[1] - q.ci[0] > 2 * (p.ci[1] - p.ci[0])
    assert 2 <= q.df < 10  # training variance dominates: few degrees of freedom
    assert pooled_estimate(same[:1]) is same[0]  # one run: its own interval
    undefined = pooled_estimate([Estimate(NAN, (NAN, NAN), 100), same[0]])
    assert math.isnan(undefined.ci[0])


def test_a_true_null_is_not_reproduced_with_enough_data_and_inconclusive_with_little():
    """Two attacks with the same class SD: the paired class-SD difference from real per-point outcomes,
    pooled over seeds, is a negligible effect with many points, an open question with few."""
    def seed_estimate(seed: int, per_class: int) -> Estimate:
        rng = np.random.default_rng(seed)
        y = np.repeat(np.arange(10), per_class)
        p = np.linspace(0.3, 0.7, 10)[y]
        a = rng.random(len(y)) < p
        b = np.where(rng.random(len(y)) < 0.95, a, rng.random(len(y)) < p)  # the same attack, up to noise
        return paired_difference(y, a, b, lambda acc: acc.std(-1), num_classes=10, n_boot=400, seed=seed)

    def decide(per_class: int, seeds: int) -> Part:
        runs = [Verdict("C6", "s", (greater("class SD", seed_estimate(s, per_class), effect=SD_POINT),),
                        compares="model") for s in range(seeds)]
        return pool(runs)

    big, small = decide(2000, 4), decide(40, 2)
    assert big.outcome == NOT_REPRODUCED and NEGLIGIBLE in big.text()
    assert small.outcome == INCONCLUSIVE


def test_pool_decides_on_the_pooled_interval_and_marks_one_seed_training_comparisons():
    def run(value: float, half: float = 0.01, compares: str = "training") -> Verdict:
        return Verdict("C3", "s", (greater("Δ", est(value, value - half, value + half), effect=ACCURACY_POINT),),
                       compares=compares)

    agree = pool([run(0.03), run(0.035), run(0.04)])
    assert agree.outcome == REPRODUCED and agree.runs == 3 and agree.pooled
    assert agree.evidence().startswith("pooled over 3 training seeds; Δ 3.5 [")
    flip = pool([run(0.03), run(-0.03), run(0.04)])  # each seed decides alone, but they disagree
    assert flip.outcome == INCONCLUSIVE
    alone = pool([run(0.03)])
    assert alone.outcome == INCONCLUSIVE
    assert alone.text() == (INCONCLUSIVE + "; one training seed (reproduced for this model): training variance "
                                           "not counted")
    assert pool([run(0.03, compares="model")]).outcome == REPRODUCED  # one fixed model: its paired bootstrap decides
    assert run(0.03).outcome == REPRODUCED  # a per-run verdict is that run's record, not a decision
    with pytest.raises(ConfigError, match="runs"):
        pool([])
    with pytest.raises(ConfigError, match="verdicts of one claim"):
        pool([run(0.03), Verdict("C4", "s", ())])


def test_pool_leaves_out_and_does_not_count_runs_of_another_shape():
    one = Verdict("C1", "s", (greater("Δ", est(0.03, 0.02, 0.04), effect=NONE),))
    two = Verdict("C1", "s", (greater("Δ", est(0.03, 0.02, 0.04), effect=NONE),) * 2)  # e.g. made by an older rule
    pooled = pool([one, two, two])
    assert pooled.runs == 1 and pooled.outcome == INCONCLUSIVE and "one training seed" in pooled.text()


def test_a_clear_reversal_is_not_reported_as_a_negligible_effect():
    reversed_ = greater("Δ", est(-0.04, -0.05, -0.03), effect=ACCURACY_POINT)
    negligible = greater("Δ", est(0.0, -0.004, 0.004), effect=ACCURACY_POINT)
    assert Verdict("C8", "s", (negligible, reversed_, reversed_)).text() == NOT_REPRODUCED
    assert Verdict("C8", "s", (negligible,)).text() == f"{NOT_REPRODUCED}; {NEGLIGIBLE}"


def test_pool_keeps_untestable_parts_and_shows_a_mixed_floor():
    gate_ok = Part("worst class", REPRODUCED, rule="not at the floor", gate=True)
    gate_floor = Part("worst class", NOT_TESTABLE, rule="at the floor", gate=True)
    part = greater("Δ", est(0.03, 0.02, 0.04), effect=NONE)
    runs = [Verdict("C1", "s", (part,), (g,)) for g in (gate_floor, gate_ok, gate_ok)]
    pooled = pool(runs)
    assert pooled.outcome == NOT_TESTABLE and "(in 1 of 3 runs)" in pooled.evidence()
    missing = pool([Verdict("C4", "s", (untestable("ablation", "not trained"),))] * 2)
    assert missing.outcome == NOT_TESTABLE and "runs)" not in missing.evidence()


def test_pooled_gates_stay_inside_zero_and_one():
    gates = [model_gate("m", np.r_[np.ones(k), np.zeros(100 - k)], 10) for k in (2, 30, 60)]
    pooled = pool([Verdict("C1", "s", (), (g,)) for g in gates]).gates[0]
    assert 0.0 <= pooled.estimate.ci[0] and pooled.estimate.ci[1] <= 1.0 and pooled.outcome == INCONCLUSIVE
    assert pooled.note == "borderline"


# ---------------------------------------------------------------------------------------------------------------
# Texts and the per-run record

def test_part_text_scales_rounds_and_never_prints_negative_zero():
    part = greater("Δ mean", est(-0.0004, -0.00049, 0.0123), effect=NONE)
    assert part.text() == "Δ mean 0.0 [0.0, 1.2]; claim > 0"
    assert greater("ρ", est(0.456, 0.1, 0.789), effect=NONE, scale=1, digits=2).text() == "ρ 0.46 [0.10, 0.79]; claim > 0"
    assert greater("Δ", est(NAN, NAN, NAN), effect=NONE).text() == "Δ – [–, –]; claim > 0 (the estimate is undefined)"
    assert untestable("this pipeline", "runs one ratio").text() == "this pipeline: runs one ratio"
    assert Part("bare", INCONCLUSIVE).text() == "bare"
    negligible = greater("Δ", est(0.0, -0.004, 0.008), effect=ACCURACY_POINT)
    assert negligible.text() == f"Δ 0.0 [-0.4, 0.8]; claim > 0, effect of interest 1 ({NEGLIGIBLE})"


def test_verdict_text_and_evidence():
    a = greater("Δ clean", est(0.05, 0.02, 0.08), effect=NONE)
    b = less("Δ AA", est(-0.0001, -0.0004, 0.03), effect=NONE)
    v = Verdict("C3", "statement", (a, b), qualifier="on the AA points")
    assert v.outcome == INCONCLUSIVE
    assert v.text() == "inconclusive at this scale; on the AA points"
    assert v.evidence() == "Δ clean 5.0 [2.0, 8.0]; claim > 0; Δ AA 0.0 [0.0, 3.0]; claim < 0"
    null = Verdict("C6", "s", (greater("Δ SD", est(0.0, -0.004, 0.008), effect=SD_POINT),))
    assert null.text() == f"not reproduced; {NEGLIGIBLE}"
    assert Verdict("C1", "s", (a,)).seeds_text() == "no stability file"


def test_the_per_run_record_is_shown_as_it_is_and_never_vetoes():
    v = Verdict("C2", "s", (greater("Δ", est(0.02, 0.01, 0.03), effect=NONE),))
    mixed = with_stability(v, run_record([NOT_TESTABLE, NOT_TESTABLE, NOT_TESTABLE, NOT_REPRODUCED], "runs"))
    assert mixed.seeds_text() == "not testable in 3, not reproduced in 1 of 4 runs"
    assert mixed.outcome == REPRODUCED and mixed.text() == REPRODUCED
    tie = with_stability(v, run_record([REPRODUCED, INCONCLUSIVE]))
    assert tie.seeds_text() == "reproduced in 1, inconclusive in 1 of 2 seeds"  # ties in the vocabulary's order
    stale = with_stability(v, {"stale": True})
    assert stale.seeds_text() == "stale" and "seed stability not current" in stale.text()
    assert with_stability(v, None) == v


def test_part_and_verdict_json_round_trip():
    parts = (greater("Δ", est(0.02, 0.01, 0.03), effect=ACCURACY_POINT, scale=1, digits=3), untestable("x", "why"),
             within("Δ", est(NAN, NAN, NAN), 0.02), greater("Δ", est(0.0, -1, 1), effect=NONE, primary=False))
    gates = (model_gate("m", np.r_[np.ones(29), np.zeros(71)], 10),)
    v = Verdict("C5", "statement", parts, gates, qualifier="q", compares="model")
    data = json.loads(json.dumps(v.to_json()))
    assert data["outcome"] == NOT_TESTABLE and data["text"] == v.text()
    back = Verdict.from_json(data)
    assert json.dumps(back.to_json()) == json.dumps(v.to_json())  # (nan != nan: compared as text)
    assert back.parts[0] == v.parts[0] and back.gates == v.gates
    pooled = pool([v, v])
    assert Verdict.from_json(json.loads(json.dumps(pooled.to_json()))).evidence() == pooled.evidence()
    e = pooled_estimate([est(0.1, 0.0, 0.2, 40), est(0.2, 0.1, 0.3, 40)])
    assert Estimate.from_json(json.loads(json.dumps(e.to_json()))) == e
    assert Estimate.from_json(json.loads(json.dumps(est(0.1, 0.0, 0.2, 40).to_json()))) == est(0.1, 0.0, 0.2, 40)


def test_verdict_table_shows_evidence_verdict_and_each_run():
    from advfair.tables import untestable_notes, verdict_table

    a = Verdict("C1", "robust is more uneven", (greater("Δ NSD", est(0.1, 0.05, 0.15), effect=NONE, scale=1, digits=2),))
    b = Verdict("C2", "needs a model", (greater("Δ", est(0.1, 0.05, 0.15), effect=NONE),),
                gates=(model_gate("TRADES", np.r_[np.ones(100), np.zeros(900)], 10),))
    table = verdict_table([with_stability(a, run_record([REPRODUCED, REPRODUCED, INCONCLUSIVE])), b])
    assert list(table.index) == ["C1", "C2"]
    assert table.loc["C1", "verdict"] == REPRODUCED
    assert table.loc["C1", "each run's own verdict"] == "reproduced in 2, inconclusive in 1 of 3 seeds"
    assert table.loc["C2", "each run's own verdict"] == "no stability file"
    assert table.loc["C1", "this book [95% CI]"] == "Δ NSD 0.10 [0.05, 0.15]; claim > 0"
    assert table.loc["C2", "verdict"] == NOT_TESTABLE + "; degenerate"
    notes = untestable_notes([a, b])
    assert "**C2**" in notes and "TRADES clean 10.0" in notes and "C1" not in notes


def test_width_table_sets_each_runs_interval_and_width_side_by_side():
    def run(half: float) -> list[Verdict]:
        gain = greater("gain", Estimate(0.05, (0.05 - half, 0.05 + half), 100), effect=ACCURACY_POINT)
        gate = Part("floor", REPRODUCED, Estimate(0.9, (0.8, 1.0), 100), gate=True)
        return [Verdict("A", "a gain", (gain,), (gate,)), Verdict("B", "other", (Part("b", REPRODUCED),))]

    other = run(0.02)
    other[0] = Verdict("A", "a gain", (greater("gain, mode b", Estimate(0.05, (0.03, 0.07), 100), effect=ACCURACY_POINT),))
    assert width_table({"a": run(0.02), "b": other}, ["A"]).index.tolist() == [("A", "gain / gain, mode b")]
    table = width_table({"20 a class": run(0.06), "100 a class": run(0.02)}, ["A"])
    assert table.reset_index().to_dict("records") == [{
        "claim": "A", "part": "gain", "20 a class": "inconclusive at this scale: 5.0 [-1.0, 11.0]",
        "width, 20 a class": "12.0", "100 a class": "reproduced: 5.0 [3.0, 7.0]", "width, 100 a class": "4.0"}]
