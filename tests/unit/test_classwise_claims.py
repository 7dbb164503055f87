"""Every verdict rule of the class-wise chapter on hand-built results, one test per branch."""
from __future__ import annotations

import numpy as np
import pytest

from advfair.experiments.classwise import claims
from advfair.verdicts import INCONCLUSIVE, NEGLIGIBLE, NOT_REPRODUCED, NOT_TESTABLE, REPRODUCED
from advfair.experiments.roles import attack_roles

from results_builder import CLASSES, labels, outcomes, record

PER_CLASS, AA_PER_CLASS = 100, 50
Y = labels(PER_CLASS)
SUBSET = np.sort(np.concatenate([np.flatnonzero(Y == c)[:AA_PER_CLASS] for c in range(10)]))
CLEAN = np.linspace(0.85, 0.6, 10)  # fairly even clean accuracy
ROBUST = np.array([0.6, 0.7, 0.2, 0.1, 0.25, 0.3, 0.45, 0.5, 0.65, 0.55])  # very uneven under attack
NAMES = attack_roles(pgd="pgd10", cw="cw10", fgsm="fgsm", aa="aa", tpgd="tpgd10_T0.1", long=[])
# classes whose robust points can move 10 places and stay inside the clean-correct ones (robust + 10 pt <= clean)
MOVABLE = tuple(c for c in range(10) if ROBUST[c] + 0.1 <= CLEAN[c])


def model(clean=CLEAN, robust=ROBUST, moved=None, **attacks) -> dict:
    """A model record: clean, FGSM (robust + 10 pt), PGD, CW and T-PGD (= PGD) on all points, AA (= PGD)
    on the subset; any attack can be given its own per-class accuracy. `moved` = {attack: classes}: in those
    classes the attack's correct points start 10 points later (the same accuracy, on other points)."""
    acc = {"clean": clean, "fgsm": np.minimum(clean, np.asarray(robust) + 0.1), "pgd10": robust, "cw10": robust,
           "tpgd10_T0.1": robust, **attacks}
    acc["aa"] = np.asarray(acc.pop("aa", robust))
    correct = {}
    for k, v in acc.items():
        correct[k] = outcomes(Y, v)
        if k in (moved or {}):
            correct[k] = np.where(np.isin(Y, moved[k]), outcomes(Y, v, offset=10), correct[k])
    correct["aa"] = correct["aa"][SUBSET]
    return record(Y, correct, SUBSET)


def results(**models) -> dict:
    evaluations = {"pgd_at": model(), "trades": model(), "class_weighted": model(), "pgd_at_bias": model()}
    evaluations.update(models)
    return {"config": {"n_boot": 200, "seed": 0, "w_worst": 2.0}, "classes": list(CLASSES), "attack_roles": NAMES,
            "selection": {"worst_class": 3, "t_picked": 0.1}, "bias": {"picked": 1.0},
            "evaluations": evaluations, "diagnostics": {"weight_norms": list(np.linspace(1, 2, 10))}}


def outcome(rule, res) -> str:
    return rule(res).outcome


# ---- C1: robust gap and NSD above the clean ones, for PGD-AT and TRADES ----

def test_c1_reproduced_when_robust_accuracy_is_more_uneven():
    verdict = claims.c1(results())
    assert verdict.outcome == REPRODUCED
    assert [p.outcome for p in verdict.parts] == [REPRODUCED] * 4  # gap and NSD, for each of the two models
    assert [p.label.split(":")[1].split()[0] for p in verdict.parts] == ["gap", "NSD", "gap", "NSD"]


def test_c1_not_reproduced_when_robust_accuracy_is_more_even():
    even = model(clean=ROBUST + 0.3, robust=np.full(10, 0.4))
    assert outcome(claims.c1, results(pgd_at=even, trades=even)) == NOT_REPRODUCED


def test_c1_not_reproduced_when_the_spreads_are_proportional():
    """Halving every class: the NSD is unchanged (open), but the absolute gap shrinks, which rejects the claim."""
    proportional = model(clean=ROBUST + 0.3, robust=(ROBUST + 0.3) / 2)
    verdict = claims.c1(results(pgd_at=proportional, trades=proportional))
    assert verdict.outcome == NOT_REPRODUCED
    assert [p.outcome for p in verdict.parts] == [NOT_REPRODUCED, INCONCLUSIVE] * 2


def test_c1_inconclusive_when_only_the_mean_falls():
    """A uniform drop leaves the gap as it is (open) while the NSD rises with the falling mean: NSD alone
    would reproduce the claim; with the gap it stays open."""
    shifted = model(clean=ROBUST + 0.3, robust=ROBUST)
    verdict = claims.c1(results(pgd_at=shifted, trades=shifted))
    assert verdict.outcome == INCONCLUSIVE
    assert [p.outcome for p in verdict.parts] == [INCONCLUSIVE, REPRODUCED] * 2


def test_c1_not_testable_for_a_degenerate_model():
    weak = model(clean=np.full(10, 0.2), robust=np.full(10, 0.1))
    verdict = claims.c1(results(pgd_at=weak))
    assert verdict.outcome == NOT_TESTABLE and verdict.text() == NOT_TESTABLE + "; degenerate"
    # clean and PGD of both models, always present: the weak model's robust accuracy (10 %) is borderline
    assert [g.outcome for g in verdict.gates] == [NOT_REPRODUCED, INCONCLUSIVE, REPRODUCED, REPRODUCED]
    assert [g.label for g in verdict.failed_gates()] == ["PGD-AT clean", "PGD-AT PGD10"]
    assert verdict.evidence().startswith("PGD-AT clean 20.0 [") and "(degenerate)" in verdict.evidence()
    assert "PGD-AT PGD10 10.0 [" in verdict.evidence() and "robust floor 10% (chance) (borderline)" in verdict.evidence()
    assert "TRADES (β=6) clean" not in verdict.evidence()  # a passing gate is not shown


# ---- C2, C3: rank agreement above 0.5 ----

def test_c2_reproduced_when_every_attack_ranks_alike():
    assert outcome(claims.c2, results()) == REPRODUCED


def test_c2_not_reproduced_when_one_attack_reverses_the_ranking():
    reversed_cw = model(cw10=np.minimum(CLEAN, 0.8 - ROBUST))
    assert outcome(claims.c2, results(pgd_at=reversed_cw)) == NOT_REPRODUCED


def test_c2_the_fgsm_pair_is_shown_but_does_not_vote():
    """FGSM is PGD's own loss in one step: its agreement with PGD says nothing about other attack objectives."""
    reversed_fgsm = model(fgsm=np.minimum(CLEAN, 0.8 - ROBUST))
    verdict = claims.c2(results(pgd_at=reversed_fgsm))
    assert verdict.outcome == REPRODUCED
    fgsm = verdict.parts[0]
    assert not fgsm.primary and fgsm.outcome == NOT_REPRODUCED and "(secondary)" in fgsm.text()
    assert [p.primary for p in verdict.parts] == [False, True, True, True]


def test_c2_inconclusive_when_the_classes_cannot_be_ranked():
    flat = model(clean=np.full(10, 0.8), robust=np.full(10, 0.4))
    assert outcome(claims.c2, results(pgd_at=flat)) == INCONCLUSIVE


def test_c3_reproduced_and_not_reproduced():
    assert outcome(claims.c3, results()) == REPRODUCED
    reversed_trades = model(robust=0.8 - ROBUST, clean=np.full(10, 0.85))
    assert outcome(claims.c3, results(trades=reversed_trades)) == NOT_REPRODUCED


def test_c3_not_testable_when_trades_is_degenerate():
    assert outcome(claims.c3, results(trades=model(clean=np.full(10, 0.25), robust=np.full(10, 0.1)))) == NOT_TESTABLE


# ---- C4: relative drop falls with the weak-attack accuracy ----

FGSM = np.linspace(0.15, 0.6, 10)


def test_c4_reproduced_when_weak_classes_lose_relatively_more():
    # strong = weak^2 / 0.6: relative drop 1 - weak / 0.6 falls as weak rises
    strong = FGSM ** 2 / 0.6
    m = model(clean=np.full(10, 0.8), fgsm=FGSM, robust=strong, aa=strong)
    assert outcome(claims.c4, results(pgd_at=m)) == REPRODUCED


def test_c4_not_reproduced_when_strong_classes_lose_relatively_more():
    strong = FGSM * (1 - FGSM)  # relative drop = weak accuracy
    m = model(clean=np.full(10, 0.8), fgsm=FGSM, robust=strong, aa=strong)
    assert outcome(claims.c4, results(pgd_at=m)) == NOT_REPRODUCED


def test_c4_inconclusive_when_every_class_loses_the_same_share():
    m = model(clean=np.full(10, 0.8), fgsm=FGSM, robust=FGSM / 2, aa=FGSM / 2)
    assert outcome(claims.c4, results(pgd_at=m)) == INCONCLUSIVE


# ---- C5, C6: T-PGD against PGD from the same starts ----

def test_c5_branches():
    assert outcome(claims.c5, results(pgd_at=model(**{"tpgd10_T0.1": ROBUST - 0.1}))) == REPRODUCED
    higher = claims.c5(results(pgd_at=model(**{"tpgd10_T0.1": np.minimum(CLEAN, ROBUST + 0.1)})))
    assert higher.outcome == NOT_REPRODUCED and higher.parts[0].note == ""  # the other side, not negligible
    same = claims.c5(results())  # T-PGD = PGD on every point: a null measured exactly
    assert same.outcome == NOT_REPRODUCED and same.text() == f"{NOT_REPRODUCED}; {NEGLIGIBLE}"
    noisy = claims.c5(results(pgd_at=model(moved={"tpgd10_T0.1": MOVABLE})))  # same accuracy, other points
    assert noisy.outcome == INCONCLUSIVE and noisy.parts[0].note == ""
    assert noisy.parts[0].estimate.value == pytest.approx(0.0)


def test_c6_branches():
    wider = np.clip((ROBUST - ROBUST.mean()) * 2 + ROBUST.mean(), 0, 1)
    assert outcome(claims.c6, results(pgd_at=model(**{"tpgd10_T0.1": wider}))) == REPRODUCED
    narrower = (ROBUST - ROBUST.mean()) / 3 + ROBUST.mean()
    narrow = claims.c6(results(pgd_at=model(**{"tpgd10_T0.1": narrower})))
    assert narrow.outcome == NOT_REPRODUCED and narrow.parts[0].note == ""
    same = claims.c6(results())
    assert same.outcome == NOT_REPRODUCED and same.text() == f"{NOT_REPRODUCED}; {NEGLIGIBLE}"
    noisy = claims.c6(results(pgd_at=model(moved={"tpgd10_T0.1": MOVABLE})))
    assert noisy.outcome == INCONCLUSIVE and noisy.parts[0].note == ""


# ---- C7a, C7b: the weakest class (cat, 10%) up and the gap down, under PGD and AA ----

LIFTED = ROBUST.copy()
LIFTED[[2, 3]] = 0.35, 0.5  # cat (the target) well up, and the gap (now to deer, 25%) clearly smaller


def test_c7_reproduced_when_the_target_gains_and_the_gap_shrinks_under_both_attacks():
    assert outcome(claims.c7a, results(class_weighted=model(robust=LIFTED))) == REPRODUCED
    assert outcome(claims.c7b, results(pgd_at_bias=model(robust=LIFTED))) == REPRODUCED


def test_c7_needs_every_part_a_gain_on_the_target_alone_is_not_enough():
    widened = LIFTED.copy()
    widened[2] = 0.0  # the gap grows: bird falls to 0
    verdict = claims.c7a(results(class_weighted=model(robust=widened)))
    assert verdict.outcome == NOT_REPRODUCED
    assert [p.outcome for p in verdict.parts][::2] == [REPRODUCED, REPRODUCED]  # the target part holds


def test_c7_not_reproduced_for_an_unchanged_model():
    """The same predictions: every part is exactly 0, which excludes every effect of interest."""
    verdict = claims.c7b(results())
    assert verdict.outcome == NOT_REPRODUCED and verdict.text() == f"{NOT_REPRODUCED}; {NEGLIGIBLE}"
    assert [p.note for p in verdict.parts] == [NEGLIGIBLE] * 4


def test_c7_inconclusive_when_the_target_changes_points_but_not_accuracy():
    reshuffled = model(moved={"pgd10": [3], "aa": [3]})  # cat right on other points, as often
    for rule, key in ((claims.c7a, "class_weighted"), (claims.c7b, "pgd_at_bias")):
        verdict = rule(results(**{key: reshuffled}))
        assert verdict.outcome == INCONCLUSIVE
        assert [p.outcome for p in verdict.parts] == [INCONCLUSIVE] * 4 and verdict.text() == INCONCLUSIVE


@pytest.mark.parametrize("cat_clean, status", [(0.0, "degenerate"), (0.05, "borderline")])
def test_c7_not_testable_when_the_target_class_is_not_recognised(cat_clean, status):
    clean = CLEAN.copy()
    clean[3] = cat_clean  # 0 of 100 lies below chance (10 %); 5 of 100 has an interval holding it
    robust = np.minimum(ROBUST, clean)
    res = results(pgd_at=model(clean=clean, robust=robust), class_weighted=model(robust=LIFTED))
    verdict = claims.c7a(res)
    assert verdict.outcome == NOT_TESTABLE and verdict.text() == f"{NOT_TESTABLE}; {status}"
    assert [g.label for g in verdict.gates] == ["PGD-AT clean", "PGD-AT PGD10", "PGD-AT cat clean"]
    assert [g.label for g in verdict.failed_gates()] == ["PGD-AT cat clean"]
    assert verdict.failed_gates()[0].note == status and f"({status})" in verdict.evidence()
    assert [p.outcome for p in verdict.parts] == [REPRODUCED] * 4  # the parts alone would reproduce it


# ---- C8b: weight norms and robustness ----

def test_c8b_branches():
    res = results()
    res["diagnostics"]["weight_norms"] = list(ROBUST + 1)
    verdict = claims.c8b(res)
    assert verdict.outcome == REPRODUCED
    assert [p.label.split("(")[0] for p in verdict.parts] == ["ρ", "partial ρ"]  # ρ, and ρ given clean accuracy
    res["diagnostics"]["weight_norms"] = list(2 - ROBUST)
    assert outcome(claims.c8b, res) == NOT_REPRODUCED
    flat = results(pgd_at=model(clean=np.full(10, 0.8), robust=np.full(10, 0.4)))
    assert outcome(claims.c8b, flat) == INCONCLUSIVE


def test_every_rule_runs_and_key_numbers_hold_the_estimates():
    res = results()
    verdicts = claims.verdicts(res)
    assert [v.claim for v in verdicts] == ["C1", "C2", "C3", "C4", "C5", "C6", "C7a", "C7b", "C8b"]
    numbers = claims.key_numbers(res)
    assert numbers["pgd_at.clean"] == pytest.approx(CLEAN.mean())
    assert numbers["C5.0"] == 0.0


def test_verdict_text_uses_one_vocabulary():
    for v in claims.verdicts(results()):
        assert v.text().split(";")[0] in (REPRODUCED, NOT_REPRODUCED, INCONCLUSIVE, NOT_TESTABLE)
