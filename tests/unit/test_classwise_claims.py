"""Every verdict rule of the class-wise chapter on hand-built results, one test per branch."""
from __future__ import annotations

import numpy as np
import pytest

from advfair.experiments.classwise import claims
from advfair.verdicts import INCONCLUSIVE, NOT_REPRODUCED, NOT_TESTABLE, REPRODUCED

from results_builder import CLASSES, labels, outcomes, record

PER_CLASS, AA_PER_CLASS = 100, 50
Y = labels(PER_CLASS)
SUBSET = np.sort(np.concatenate([np.flatnonzero(Y == c)[:AA_PER_CLASS] for c in range(10)]))
CLEAN = np.linspace(0.85, 0.6, 10)  # fairly even clean accuracy
ROBUST = np.array([0.6, 0.7, 0.2, 0.1, 0.25, 0.3, 0.45, 0.5, 0.65, 0.55])  # very uneven under attack
NAMES = {"pgd": "pgd10", "tpgd": "tpgd10_T0.1", "cw": "cw10", "fgsm": "fgsm", "long": []}


def model(clean=CLEAN, robust=ROBUST, **attacks) -> dict:
    """A model record: clean, FGSM (robust + 10 pt), PGD, CW and T-PGD (= PGD) on all points, AA (= PGD)
    on the subset; any attack can be given its own per-class accuracy."""
    acc = {"clean": clean, "fgsm": np.minimum(clean, np.asarray(robust) + 0.1), "pgd10": robust, "cw10": robust,
           "tpgd10_T0.1": robust, **attacks}
    aa = np.asarray(acc.pop("aa", robust))
    correct = {k: outcomes(Y, v) for k, v in acc.items()}
    correct["aa"] = outcomes(Y, aa)[SUBSET]
    return record(Y, correct, SUBSET)


def results(**models) -> dict:
    evaluations = {"pgd_at": model(), "trades": model(), "class_weighted": model(), "pgd_at_bias": model()}
    evaluations.update(models)
    return {"config": {"n_boot": 200, "seed": 0, "w_worst": 2.0}, "classes": list(CLASSES), "attack_names": NAMES,
            "selection": {"worst_class": 3, "t_picked": 0.1}, "bias": {"picked": 1.0},
            "evaluations": evaluations, "diagnostics": {"weight_norms": list(np.linspace(1, 2, 10))}}


def outcome(rule, res) -> str:
    return rule(res).outcome


# ---- C1: robust NSD above clean NSD ----

def test_c1_reproduced_when_robust_accuracy_is_more_uneven():
    assert outcome(claims.c1, results()) == REPRODUCED


def test_c1_not_reproduced_when_robust_accuracy_is_more_even():
    even = model(clean=ROBUST + 0.3, robust=np.full(10, 0.4))
    assert outcome(claims.c1, results(pgd_at=even, trades=even)) == NOT_REPRODUCED


def test_c1_inconclusive_when_the_spreads_are_proportional():
    proportional = model(clean=ROBUST + 0.3, robust=(ROBUST + 0.3) / 2)
    verdict = claims.c1(results(pgd_at=proportional, trades=proportional))
    assert verdict.outcome == INCONCLUSIVE


def test_c1_not_testable_for_a_degenerate_model():
    weak = model(clean=np.full(10, 0.2), robust=np.full(10, 0.1))
    verdict = claims.c1(results(pgd_at=weak))
    assert verdict.outcome == NOT_TESTABLE and "degenerate model" in verdict.evidence()


# ---- C2, C3: rank agreement above 0.5 ----

def test_c2_reproduced_when_every_attack_ranks_alike():
    assert outcome(claims.c2, results()) == REPRODUCED


def test_c2_not_reproduced_when_one_attack_reverses_the_ranking():
    reversed_fgsm = model(fgsm=np.minimum(CLEAN, 0.8 - ROBUST))
    assert outcome(claims.c2, results(pgd_at=reversed_fgsm)) == NOT_REPRODUCED


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
    assert outcome(claims.c5, results(pgd_at=model(**{"tpgd10_T0.1": np.minimum(CLEAN, ROBUST + 0.1)}))) == NOT_REPRODUCED
    assert outcome(claims.c5, results()) == INCONCLUSIVE  # T-PGD = PGD on every point


def test_c6_branches():
    wider = np.clip((ROBUST - ROBUST.mean()) * 2 + ROBUST.mean(), 0, 1)
    assert outcome(claims.c6, results(pgd_at=model(**{"tpgd10_T0.1": wider}))) == REPRODUCED
    narrower = (ROBUST - ROBUST.mean()) / 3 + ROBUST.mean()
    assert outcome(claims.c6, results(pgd_at=model(**{"tpgd10_T0.1": narrower}))) == NOT_REPRODUCED
    assert outcome(claims.c6, results()) == INCONCLUSIVE


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


def test_c7_inconclusive_for_an_unchanged_model():
    assert outcome(claims.c7b, results()) == INCONCLUSIVE


def test_c7_not_testable_when_the_target_class_is_not_recognised():
    clean = CLEAN.copy()
    clean[3] = 0.05
    robust = np.minimum(ROBUST, clean)
    res = results(pgd_at=model(clean=clean, robust=robust), class_weighted=model(robust=LIFTED))
    verdict = claims.c7a(res)
    assert verdict.outcome == NOT_TESTABLE and "degenerate class" in verdict.evidence()


# ---- C8b: weight norms and robustness ----

def test_c8b_branches():
    res = results()
    res["diagnostics"]["weight_norms"] = list(ROBUST + 1)
    assert outcome(claims.c8b, res) == REPRODUCED
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
