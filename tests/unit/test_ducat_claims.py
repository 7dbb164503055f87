"""Every verdict rule of the DUCAT chapter on hand-built results, one test per branch."""
from __future__ import annotations

import numpy as np
import pytest

from advfair.experiments.common import evaluation
from advfair.experiments.ducat import claims, methods
from advfair.experiments.ducat.config import DucatConfig
from advfair.verdicts import INCONCLUSIVE, NEGLIGIBLE, NOT_REPRODUCED, NOT_TESTABLE, REPRODUCED, pool

from ducat_results_builder import AA, UNAWARE, model, results


def outcome(rule, res) -> str:
    return rule(res).outcome


def test_the_builder_gives_the_outcomes_asked_for():
    res = results()
    du = evaluation(res, "ducat")
    assert du.correct(UNAWARE).mean() == pytest.approx(0.6) and du.correct(AA, "subset").mean() == pytest.approx(0.25, abs=0.011)
    assert claims.trapped(du, UNAWARE).mean() == pytest.approx(0.5)
    assert claims.aware_correct(du, res).mean() == pytest.approx(0.25)
    assert not claims.trapped(evaluation(res, "pgd_at"), UNAWARE).any()  # a C-way model has no dummy
    assert claims.raw_clean_correct(du).mean() == pytest.approx(0.8 - 0.5)  # trapped clean points count as wrong


# ---- C1: always-failed points ----

def test_c1_reproduced_when_the_failures_overlap():
    assert outcome(claims.c1, results()) == REPRODUCED  # one offset: the failures are nested


def test_c1_not_reproduced_when_the_failures_are_disjoint():
    spread = {k: model(unaware=0.6, unaware_only=True, offset=o) for k, o in (("pgd_at", 0), ("trades", 33),
                                                                              ("mart", 66))}
    spread["pgd_at"] = model(unaware=0.6, offset=0)
    verdict = claims.c1(results(**spread))
    assert verdict.outcome == NOT_REPRODUCED and verdict.parts[0].outcome == NOT_REPRODUCED


def test_c1_inconclusive_when_half_of_the_best_model_s_failures_are_shared():
    # failures: PGD-AT and TRADES points 50..99 of each class (nested); MART points 25..74: all three fail on
    # 50..74, half of the 50 failures of each; independence would predict 0.5^3 = 12.5 %
    res = results(pgd_at=model(unaware=0.5), trades=model(unaware=0.5, unaware_only=True),
                  mart=model(unaware=0.5, unaware_only=True, offset=75))
    verdict = claims.c1(res)
    assert verdict.parts[0].outcome == REPRODUCED and verdict.parts[1].outcome == INCONCLUSIVE
    assert verdict.outcome == INCONCLUSIVE


def test_c1_not_testable_without_the_baselines_or_with_a_degenerate_one():
    verdict = claims.c1(results(mart=None))
    assert verdict.outcome == NOT_TESTABLE and "baselines=" in verdict.evidence()
    weak = claims.c1(results(trades=model(clean=0.15, unaware=0.05, unaware_only=True)))
    assert weak.outcome == NOT_TESTABLE and weak.text() == NOT_TESTABLE + "; degenerate"
    assert [g.label for g in weak.gates] == [f"{m} {g}" for m in ("PGD-AT", "TRADES", "MART")
                                             for g in ("clean", "dummy-unaware PGD10")]  # always all three, clean and robust
    assert [g.label for g in weak.failed_gates()] == ["TRADES clean", "TRADES dummy-unaware PGD10"]
    assert weak.evidence().startswith("TRADES clean 15.0 [12.8, 17.4]; model floor 30% (3× chance) (degenerate)")
    assert [p.outcome for p in weak.parts] == [REPRODUCED, REPRODUCED]  # the parts alone would reproduce it


# ---- C2 and C3: the paper's evaluation ----

def test_c2_reproduced_when_ducat_wins_clean_and_unaware():
    res = results(ducat=model(clean=0.9, unaware=0.6, aware=0.2, trap=0.5))
    assert outcome(claims.c2, res) == REPRODUCED


def test_c2_not_reproduced_when_ducat_loses():
    res = results(ducat=model(clean=0.7, unaware=0.3, trap=0.1))
    assert outcome(claims.c2, res) == NOT_REPRODUCED


def test_c2_not_reproduced_when_the_models_tie_exactly_and_inconclusive_when_they_tie_on_other_points():
    same = claims.c2(results(ducat=model(unaware=0.4, aware=0.35)))  # the same predictions as PGD-AT
    assert same.outcome == NOT_REPRODUCED and same.text() == f"{NOT_REPRODUCED}; {NEGLIGIBLE}"
    assert [p.note for p in same.parts] == [NEGLIGIBLE, NEGLIGIBLE]
    moved = claims.c2(results(ducat=model(unaware=0.4, aware=0.35, offset=10)))  # as accurate, on other points
    assert moved.outcome == INCONCLUSIVE and [p.outcome for p in moved.parts] == [INCONCLUSIVE, INCONCLUSIVE]


def test_c2_not_testable_for_a_degenerate_model():
    verdict = claims.c2(results(ducat=model(clean=0.2, unaware=0.1, trap=0.05)))
    assert verdict.outcome == NOT_TESTABLE and verdict.text() == NOT_TESTABLE + "; degenerate"
    assert [g.label for g in verdict.failed_gates()] == ["PGD-AT + DUCAT clean", "PGD-AT + DUCAT dummy-unaware PGD10"]
    assert verdict.evidence().startswith("PGD-AT + DUCAT clean 20.0 [17.6, 22.6]; model floor 30%")


def _plugins(trades_gain: bool = True, mart_gain: bool = True) -> dict:
    """The two bases with aware attacks, and their plug-ins: a gain on clean and unaware accuracy, or the base's
    own predictions (no difference at all)."""
    bases = {"trades": model(unaware=0.38, aware=0.3), "mart": model(unaware=0.42, aware=0.3)}
    helped = {"trades_ducat": model(clean=0.9, unaware=0.6, aware=0.2, trap=0.5),
              "mart_ducat": model(clean=0.9, unaware=0.62, aware=0.2, trap=0.5)}
    return {**bases, "trades_ducat": helped["trades_ducat"] if trades_gain else bases["trades"],
            "mart_ducat": helped["mart_ducat"] if mart_gain else bases["mart"]}


def test_c3_asks_c2_of_each_plug_in():
    assert outcome(claims.c3, results()) == NOT_TESTABLE  # no plug-in trained
    verdict = claims.c3(results(**_plugins()))
    assert verdict.outcome == REPRODUCED and verdict.compares == "training"
    assert [p.primary for p in verdict.parts] == [True, True, False] * 2 + [False]
    assert "TRADES + DUCAT − TRADES" in verdict.evidence() and "MART + DUCAT − MART" in verdict.evidence()
    aware = verdict.parts[2]  # the dummy-aware difference is shown: here a loss, and it does not vote
    assert aware.label.startswith("dummy-aware robust accuracy") and aware.outcome == NOT_REPRODUCED
    assert verdict.parts[-1].label == "DUCAT plugged into Consistency-AT" and verdict.parts[-1].outcome == NOT_TESTABLE
    assert [g.label for g in verdict.gates] == [f"{m} {g}" for m in ("TRADES", "TRADES + DUCAT", "MART", "MART + DUCAT")
                                                for g in ("clean", "dummy-unaware PGD10")]
    one = claims.c3(results(**_plugins(mart_gain=False)))  # MART + DUCAT = MART exactly: a null for MART
    assert one.outcome == NOT_REPRODUCED and one.text() == f"{NOT_REPRODUCED}; {NEGLIGIBLE}"
    res = results(**_plugins())
    del res["evaluations"]["mart_ducat"]
    trades_only = claims.c3(res)  # the verdict covers the bases it tested, and says which did not run
    assert trades_only.outcome == REPRODUCED
    assert [p.label for p in trades_only.parts if not p.primary][1:] == ["DUCAT plugged into MART",
                                                                          "DUCAT plugged into Consistency-AT"]


def test_c4_is_an_at_most_test_of_the_deterministic_cost_model():
    res = results()  # the cpu profile: 3 window epochs of 10, K = 3: 3 / 10 / 4 = 7.5 % more image passes
    verdict = claims.c4(res)
    assert verdict.outcome == REPRODUCED and verdict.compares == "model" and verdict.gates == ()
    assert verdict.parts[0].estimate.value == pytest.approx(0.075) == res["cost_model"]["overhead_schedule"]
    assert verdict.evidence() == ("extra image passes over the whole schedule, DUCAT / PGD-AT − 1 (cost model) "
                                  "7.5 [7.5, 7.5]; claim ≤ 10")
    res["seconds"] = {"train_pgd_at": 1.0, "train_ducat": 100.0}  # wall time never enters
    assert claims.c4(res) == verdict
    # the window over the whole schedule: 10 / 10 / 4 = 25 %
    heavy = claims.c4(results(cost_model=methods.cost_model(DucatConfig(ducat_start=1, ducat_end=10))))
    assert heavy.outcome == NOT_REPRODUCED and heavy.parts[0].estimate.value == pytest.approx(0.25)
    # exactly at the threshold (4 / 10 / 4 = 10 %): "at most" holds
    edge = claims.c4(results(cost_model=methods.cost_model(DucatConfig(ducat_start=7, ducat_end=10))))
    assert edge.parts[0].estimate.value == claims.SMALL_COST and edge.outcome == REPRODUCED


# ---- C5: the dummy-aware evaluation ----

def test_c5_reproduced_when_ducat_collapses_below_pgd_at():
    assert outcome(claims.c5, results()) == REPRODUCED  # DUCAT 0.6 -> 0.25 aware; PGD-AT 0.35 aware


def test_c5_not_reproduced_when_ducat_keeps_its_gain():
    res = results(ducat=model(unaware=0.6, aware=0.55, trap=0.1))
    verdict = claims.c5(res)
    assert verdict.outcome == NOT_REPRODUCED and verdict.parts[1].outcome == NOT_REPRODUCED


def test_c5_not_reproduced_when_ducat_falls_exactly_to_pgd_at():
    """DUCAT's aware points are PGD-AT's: a collapse, but not below PGD-AT (a null measured exactly)."""
    res = results(ducat=model(unaware=0.6, aware=0.35, trap=0.4))
    verdict = claims.c5(res)
    assert verdict.parts[0].outcome == REPRODUCED and verdict.parts[1].outcome == NOT_REPRODUCED
    assert verdict.parts[1].note == NEGLIGIBLE
    assert verdict.outcome == NOT_REPRODUCED and verdict.text() == f"{NOT_REPRODUCED}; {NEGLIGIBLE}"


def test_c5_inconclusive_when_ducat_falls_to_pgd_at_s_accuracy_on_other_points():
    res = results(ducat=model(unaware=0.6, aware=0.35, trap=0.4, offset=10))
    verdict = claims.c5(res)
    assert [p.outcome for p in verdict.parts] == [REPRODUCED, INCONCLUSIVE, INCONCLUSIVE]
    assert verdict.outcome == INCONCLUSIVE and verdict.text() == INCONCLUSIVE


def test_c5_gate_needs_a_dummy_unaware_gain():
    verdict = claims.c5(results())
    gain = verdict.gates[-1]
    assert [g.label for g in verdict.gates[:4]] == ["PGD-AT clean", "PGD-AT dummy-unaware PGD10", "PGD-AT + DUCAT clean",
                                                    "PGD-AT + DUCAT dummy-unaware PGD10"]
    assert gain.gate and gain.outcome == REPRODUCED and "a collapse presupposes a dummy-unaware gain (C2)" in gain.rule
    assert verdict.failed_gates() == []
    # no gain to lose (DUCAT = PGD-AT under the unaware attack): not testable, whatever the parts say
    none = claims.c5(results(ducat=model(unaware=0.4, aware=0.2, trap=0.3)))
    # (both models are sound: the verdict says what is missing, not "degenerate")
    missing = "no dummy-unaware gain (C2)"
    assert none.gates[-1].outcome == NOT_REPRODUCED and none.gates[-1].note == missing
    assert none.outcome == NOT_TESTABLE and none.text() == f"{NOT_TESTABLE}; {missing}"
    assert none.failed_gates() == [none.gates[-1]]
    # a gain whose interval holds 0: uncertain
    moved = claims.c5(results(ducat=model(unaware=0.4, aware=0.2, trap=0.3, offset=10)))
    uncertain = "dummy-unaware gain (C2) uncertain"
    assert moved.gates[-1].note == uncertain and moved.text() == f"{NOT_TESTABLE}; {uncertain}"
    # pooled over seeds, the gate keeps its wording
    pooled = pool([none, none])
    assert pooled.gates[-1].note == missing and pooled.text().startswith(f"{NOT_TESTABLE}; {missing}")
    # a degenerate model and a missing presupposition: both reasons
    both = claims.c5(results(pgd_at=model(clean=0.25, unaware=0.1), ducat=model(clean=0.25, unaware=0.1)))
    assert both.text().startswith(f"{NOT_TESTABLE}; degenerate")


def test_c5_drop_must_exceed_the_drop_any_model_shows_under_more_attacks():
    # DUCAT and PGD-AT both lose 5 points from the unaware to the aware attacks: no collapse of DUCAT's own
    res = results(pgd_at=model(unaware=0.4, aware=0.35), ducat=model(unaware=0.6, aware=0.55, trap=0.1))
    assert claims.c5(res).parts[0].outcome == INCONCLUSIVE
    res = results(pgd_at=model(unaware=0.4, aware=0.2), ducat=model(unaware=0.6, aware=0.55, trap=0.1))
    assert claims.c5(res).parts[0].outcome == NOT_REPRODUCED  # PGD-AT loses more than DUCAT


def test_c5_uses_only_the_aware_attacks_and_the_aa_points():
    # an AA-only collapse is seen on the AA points (third part), not on all points
    res = results(ducat=model(unaware=0.6, aware=0.6, aa=0.1, trap=0.5))
    verdict = claims.c5(res)
    assert verdict.parts[2].outcome == REPRODUCED and verdict.parts[1].outcome == NOT_REPRODUCED
    assert verdict.parts[2].estimate.n == 500


def test_c5_not_testable_for_a_degenerate_baseline():
    res = results(pgd_at=model(clean=0.25, unaware=0.1))
    assert outcome(claims.c5, res) == NOT_TESTABLE


# ---- C6: the label trap ----

@pytest.mark.parametrize("trap, expected", [(0.5, REPRODUCED), (0.1, NOT_REPRODUCED), (0.3, INCONCLUSIVE)])
def test_c6_share_of_unaware_robust_points_on_their_dummy(trap, expected):
    verdict = claims.c6(results(ducat=model(unaware=0.6, aware=0.25, trap=trap)))
    assert verdict.outcome == expected
    assert verdict.parts[0].estimate.value == pytest.approx(trap / 0.6)


def test_c6_not_testable_for_a_degenerate_model():
    assert outcome(claims.c6, results(ducat=model(clean=0.1, unaware=0.05, trap=0.05))) == NOT_TESTABLE


# ---- C7: transfer ----

def test_c7_reproduced_when_ducat_s_points_transfer_better():
    verdict = claims.c7(results())  # PGD-AT keeps 0.3 on DUCAT's points, DUCAT 0.5 on its
    assert verdict.outcome == REPRODUCED
    # on the points both models classify correctly (80 %): (0.3 - 0.5) / 0.8
    assert verdict.parts[0].estimate.value == pytest.approx(-0.2 / 0.8)


def test_c7_not_reproduced_when_the_reverse_transfers_better():
    res = results(ducat=model(unaware=0.6, aware=0.25, trap=0.5, transfer={"pgd_at": (0.8, 0.6), "trades": (0.8, 0.6)}))
    assert outcome(claims.c7, res) == NOT_REPRODUCED


def test_c7_not_reproduced_when_both_directions_transfer_alike_on_the_same_points():
    res = results(ducat=model(unaware=0.6, aware=0.25, trap=0.5, transfer={"pgd_at": (0.8, 0.5), "trades": (0.8, 0.5)}))
    verdict = claims.c7(res)
    assert verdict.outcome == NOT_REPRODUCED and verdict.text() == f"{NOT_REPRODUCED}; {NEGLIGIBLE}"


def test_c7_inconclusive_when_both_directions_transfer_alike_on_other_points():
    res = results(ducat=model(unaware=0.6, aware=0.25, trap=0.5, transfer={"pgd_at": (0.8, 0.5, 10),
                                                                            "trades": (0.8, 0.5, 10)}))
    verdict = claims.c7(res)
    assert verdict.outcome == INCONCLUSIVE and [p.outcome for p in verdict.parts] == [INCONCLUSIVE, INCONCLUSIVE]


def test_c7_not_testable_without_trades():
    res = results(trades=None, mart=None)
    verdict = claims.c7(res)
    assert verdict.outcome == NOT_TESTABLE and verdict.parts[0].outcome == REPRODUCED


# ---- key numbers ----

def test_key_numbers_cover_every_evaluation_and_verdict_estimate():
    res = results()
    numbers = claims.key_numbers(res)
    assert numbers["ducat.clean"] == pytest.approx(0.8) and numbers["ducat.aware"] == pytest.approx(0.25)
    assert numbers["ducat.trap"] == pytest.approx(0.5) and numbers[f"pgd_at.{AA}"] == pytest.approx(0.35, abs=0.011)
    assert "trades.aware" not in numbers and "pgd_at.trap" not in numbers
    assert {"C1.0", "C1.1", "C2.0", "C2.1", "C5.0", "C5.1", "C5.2", "C6.0", "C7.0", "C7.1"} <= set(numbers)
    assert all(isinstance(v, float) and np.isfinite(v) for v in numbers.values())
    # no timing enters: C4's number is the deterministic cost model's overhead
    assert [k for k in numbers if k.startswith("C4")] == ["C4.0"]
    assert numbers["C4.0"] == res["cost_model"]["overhead_schedule"]


def test_a_section_without_its_models_says_which_and_why():
    from advfair.experiments.ducat import report

    evidence = {"config": {"profile": "evidence", "baselines": ["trades"], "plugins": []},
                "evaluations": {"pgd_at": {}, "ducat": {}, "trades": {}}}
    assert report.absent_note(evidence, "trades", "mart") == (
        "Not trained in this run: MART, left out of the evidence tier for its CPU budget (baselines=['trades']). The "
        "claim's verdict below says so.")
    assert "TRADES + DUCAT, not trained in this run (plugins=[])" in report.absent_note(
        {"config": {"profile": "cpu", "plugins": []}, "evaluations": {}}, "trades_ducat")
    assert report.absent_note(evidence, "pgd_at", "ducat") is None
    # models left out for one reason are named together, the reason once
    assert report.absent_note(evidence, "trades_ducat", "mart_ducat") == (
        "Not trained in this run: TRADES + DUCAT and MART + DUCAT, left out of the evidence tier for its CPU budget "
        "(plugins=[]). The claim's verdict below says so.")


def test_an_ablation_table_without_ablations_says_so():
    from advfair.experiments.ducat import report

    res = {"config": {"ablation_from_start": False, "ablation_w_benign": []},
           "evaluations": {"pgd_at": {}, "ducat": {}, "trades": {}}}
    assert report.ablation_table(res) == ("No ablation was trained in this run (ablation_from_start=False, "
                                          "ablation_w_benign=[]).")
