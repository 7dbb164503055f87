"""Every verdict rule of the ABSLD chapter on hand-built results, each branch (reproduced, not reproduced,
inconclusive, not testable) of each claim."""
from __future__ import annotations

import numpy as np
import pytest

from advfair.experiments.absld import claims
from advfair.verdicts import INCONCLUSIVE, NOT_REPRODUCED, NOT_TESTABLE, REPRODUCED

from results_builder import CLASSES, labels, outcomes, record

PER_CLASS, AA_PER_CLASS = 200, 100
Y = labels(PER_CLASS)
SUBSET = np.sort(np.concatenate([np.flatnonzero(Y == c)[:AA_PER_CLASS] for c in range(10)]))
NAMES = {"fgsm": "fgsm", "pgd": "pgd20", "cw": "cw20"}
CLEAN = np.full(10, 0.8)
BASE = np.array([0.45, 0.5, 0.15, 0.1, 0.2, 0.2, 0.3, 0.45, 0.5, 0.45])  # RSLAD: worst class cat, very uneven
# the validation-hard classes 2-5 up 15 points each, the others down 10: the same average, a fairer spread
FAIRER = BASE + np.where(np.isin(np.arange(10), [2, 3, 4, 5]), 0.15, -0.10)
FAIREST = np.array([0.42, 0.45, 0.40, 0.38, 0.40, 0.40, 0.38, 0.42, 0.45, 0.42])  # worst classes at 38%
LESS_FAIR = BASE + np.where(np.isin(np.arange(10), [2, 3, 4, 5]), -0.06, 0.04)
HARD, PAPER_HARD = [2, 3, 4, 5], [3, 4, 5, 6]


_MODELS: dict = {}


def model(robust=BASE, clean=CLEAN, aa=None) -> dict:
    """clean, FGSM, PGD and CW on every point; AA (= PGD unless given) on the AA points (built once per input:
    the rules only read their results)."""
    key = tuple(np.asarray(v, dtype=float).tobytes() for v in (robust, clean, robust if aa is None else aa))
    if key not in _MODELS:
        _MODELS[key] = _model(robust, clean, aa)
    return _MODELS[key]


def _model(robust, clean, aa) -> dict:
    acc = {"clean": clean, "fgsm": np.minimum(clean, np.asarray(robust) + 0.1), "pgd20": robust, "cw20": robust}
    correct = {k: outcomes(Y, v) for k, v in acc.items()}
    correct["aa"] = outcomes(Y[SUBSET], robust if aa is None else aa)
    return record(Y, correct, SUBSET)


def history(tau_adv, tau_nat=None, epochs: int = 3) -> list[dict]:
    """A training history whose temperatures move linearly from 1 to the given final values."""
    tau_adv = np.asarray(tau_adv, dtype=float)
    tau_nat = tau_adv if tau_nat is None else np.asarray(tau_nat, dtype=float)
    out = []
    for e in range(1, epochs + 1):
        f = e / epochs
        out.append({"epoch": e, "loss": 1.0, "tau_adv": list(1 + f * (tau_adv - 1)),
                    "tau_nat": list(1 + f * (tau_nat - 1)),
                    "risk_adv": [2.0] * 10, "risk_nat": [2.0] * 10, "eta_tau": 0.5})
    return out


SHARP = np.where(np.isin(np.arange(10), HARD), 0.5, 2.0)  # hard classes low, easy classes high


def results(mode: str = "separate", histories: dict | None = None, **evaluations) -> dict:
    evals = {"teacher": model(), "rslad": model(BASE), "absld_separate": model(FAIRER),
             "absld_code_product": model(FAIREST), "absld_manual": model(BASE), "ls_uniform": model(BASE),
             "ls_class": model(FAIRER)}
    evals.update(evaluations)
    evals = {k: v for k, v in evals.items() if v is not None}
    hist = {"absld_separate": history(SHARP), "absld_code_product": history(SHARP, SHARP),
            "absld_manual": history(SHARP)}
    hist.update(histories or {})
    models = {k: {"history": hist.get(k, [{"epoch": 1, "loss": 1.0}]), "from_cache": False} for k in evals}
    return {"config": {"n_boot": 200, "seed": 0, "absld_mode": mode, "equivalence_margin": 0.03, "eta_tau": 0.5},
            "classes": list(CLASSES), "attack_names": NAMES, "selection": {"hard": HARD, "paper_hard": PAPER_HARD},
            "evaluations": evals, "models": models}


def outcome(rule, res) -> str:
    return rule(res).outcome


# ---- C1: worst class up and NSD down against RSLAD, under PGD and AA ----

def test_c1_branches():
    assert outcome(claims.c1, results()) == REPRODUCED
    assert outcome(claims.c1, results(absld_separate=model(LESS_FAIR))) == NOT_REPRODUCED
    assert outcome(claims.c1, results(absld_separate=model(BASE))) == INCONCLUSIVE  # the same outcomes as RSLAD
    weak = claims.c1(results(rslad=model(np.full(10, 0.1), clean=np.full(10, 0.2))))
    assert weak.outcome == NOT_TESTABLE and "degenerate model" in weak.evidence()
    assert outcome(claims.c1, results(rslad=None)) == NOT_TESTABLE


def test_c1_needs_aa_too_and_tests_the_configured_mode():
    fair_under_pgd_only = model(FAIRER, aa=LESS_FAIR)
    verdict = claims.c1(results(absld_separate=fair_under_pgd_only))
    assert verdict.outcome == NOT_REPRODUCED
    assert [p.outcome for p in verdict.parts][:2] == [REPRODUCED, REPRODUCED]  # PGD parts hold, AA parts fail
    assert "(AA points)" in verdict.parts[2].label
    assert outcome(claims.c1, results(mode="code_product", absld_separate=model(LESS_FAIR))) == REPRODUCED


def test_c1_compares_every_other_trained_baseline_and_tests_the_lowest_nsd():
    only_rslad = claims.c1(results())
    assert len(only_rslad.parts) == 4  # with RSLAD alone "the lowest NSD" is its NSD part
    res = results(fair_rslad=model(BASE), ard=model(BASE), pgd_at=model(LESS_FAIR), trades=model(BASE))
    assert claims.baselines(res) == ["rslad", "ard", "fair_rslad", "pgd_at", "trades"]
    verdict = claims.c1(res)
    assert verdict.outcome == REPRODUCED and len(verdict.parts) == 5 * 4 + 1
    for key in claims.baselines(res):
        assert sum(p.label.endswith(f"− {claims.MODEL_LABELS[key]}") for p in verdict.parts[:-1]) == 4, key
    assert "the lowest of" in verdict.parts[-1].label and verdict.parts[-1].outcome == REPRODUCED
    # a baseline fairer than ABSLD: its parts and "best on NSD" fail
    fairer = claims.c1(results(fair_rslad=model(FAIREST)))
    assert fairer.outcome == NOT_REPRODUCED
    assert [p.outcome for p in fairer.parts[4:]] == [NOT_REPRODUCED] * 5
    # a degenerate baseline makes C1 not testable (the claim rests on it)
    weak = claims.c1(results(ard=model(np.full(10, 0.1), clean=np.full(10, 0.2))))
    assert weak.outcome == NOT_TESTABLE and "ARD clean" in weak.evidence()


def test_the_lowest_nsd_is_one_paired_statistic_over_the_same_points():
    res = results(fair_rslad=model(FAIREST))
    part = claims.lowest_nsd(res, "absld_separate", ["rslad", "fair_rslad"])

    def nsd(acc):
        return np.std(acc) / np.mean(acc)

    expected = nsd(FAIRER) - min(nsd(BASE), nsd(FAIREST))
    assert part.estimate.value == pytest.approx(expected) and part.estimate.n == len(Y)
    assert part.estimate.ci[0] > 0 and part.outcome == NOT_REPRODUCED
    # against RSLAD alone, "the lowest" is RSLAD's NSD: the same number as C1's NSD part against RSLAD
    alone = claims.lowest_nsd(results(), "absld_separate", ["rslad"])
    assert alone.estimate.value == pytest.approx(claims.c1(results()).parts[1].estimate.value)
    assert alone.estimate.ci == pytest.approx(claims.c1(results()).parts[1].estimate.ci)


# ---- the worst class at the 0 % floor: not testable when both models are there ----

ZERO = np.where(np.arange(10) == 3, 0.0, BASE)  # cat at 0 %
FAIRER_ZERO = np.where(np.arange(10) == 6, 0.0, FAIRER)  # frog at 0 %


@pytest.mark.parametrize("rule, base, other, index", [(claims.c1, "rslad", "absld_separate", 0),
                                                      (claims.c3, "ls_uniform", "ls_class", 0),
                                                      (claims.c4, "absld_manual", "absld_separate", 0),
                                                      (claims.c7, "absld_separate", "absld_code_product", 1)])
def test_a_worst_class_part_at_the_floor_for_both_models_is_not_testable(rule, base, other, index):
    both = rule(results(**{base: model(ZERO), other: model(FAIRER_ZERO)}))
    worst_parts = [p for p in both.parts if p.label.startswith("worst class")]
    assert len(worst_parts) == 2 and all(p.outcome == NOT_TESTABLE and p.rule == claims.FLOOR for p in worst_parts)
    assert both.parts[index] is worst_parts[0] and both.outcome in (NOT_TESTABLE, NOT_REPRODUCED)
    assert "a floor, not a measurement" in both.evidence()
    # only one of the two at 0 %: a measurement (the other's worst class is above it)
    one = rule(results(**{base: model(ZERO), other: model(FAIRER)}))
    worst_parts = [p for p in one.parts if p.label.startswith("worst class")]
    assert all(p.outcome == REPRODUCED and p.estimate.value == pytest.approx(FAIRER.min()) for p in worst_parts)


def test_the_floor_is_judged_per_attack_and_points():
    on_aa_only = model(BASE, aa=ZERO)  # 0 % only under AutoAttack
    verdict = claims.c1(results(rslad=on_aa_only, absld_separate=model(FAIRER, aa=FAIRER_ZERO)))
    assert verdict.parts[0].outcome == REPRODUCED  # PGD: a measurement
    assert verdict.parts[2].outcome == NOT_TESTABLE and verdict.parts[2].rule == claims.FLOOR  # AA: the floor
    assert verdict.parts[3].estimate is not None  # the NSD part is still measured


# ---- C2: the average stays within the margin; a significant drop is named ----

def test_c2_branches_and_the_reviewers_qualifier():
    same = claims.c2(results())
    assert same.outcome == REPRODUCED and same.qualifier == ""
    big_drop = claims.c2(results(absld_separate=model(BASE - 0.1)))
    assert big_drop.outcome == NOT_REPRODUCED and "drops significantly" in big_drop.text()
    small_drop = claims.c2(results(absld_separate=model(BASE - 0.03)))
    assert small_drop.outcome == INCONCLUSIVE and "the reviewers' point" in small_drop.text()
    assert outcome(claims.c2, results(absld_separate=model(BASE, clean=np.full(10, 0.25)))) == NOT_TESTABLE


# ---- C3: class-dependent smoothing (DSD) against the same smoothing (SSD) ----

def test_c3_branches():
    assert outcome(claims.c3, results()) == REPRODUCED
    assert outcome(claims.c3, results(ls_class=model(LESS_FAIR))) == NOT_REPRODUCED
    assert outcome(claims.c3, results(ls_class=model(BASE))) == INCONCLUSIVE
    missing = claims.c3(results(ls_class=None, ls_uniform=None))
    assert missing.outcome == NOT_TESTABLE and "not trained in this run" in missing.evidence()
    # a worst-class gain bought with a large drop of the average is not "about the same average"
    assert outcome(claims.c3, results(ls_class=model(np.maximum(BASE - 0.12, 0.16)))) == NOT_REPRODUCED


# ---- C4: adaptive against manual temperatures ----

def test_c4_branches():
    assert outcome(claims.c4, results()) == REPRODUCED
    assert outcome(claims.c4, results(absld_manual=model(FAIREST))) == NOT_REPRODUCED
    assert outcome(claims.c4, results(absld_manual=model(FAIRER))) == INCONCLUSIVE
    assert outcome(claims.c4, results(absld_manual=model(BASE, clean=np.full(10, 0.2)))) == NOT_TESTABLE


# ---- C5: the gains concentrate on cat, deer, dog and frog ----

ON_PAPER_HARD = BASE + np.where(np.isin(np.arange(10), PAPER_HARD), 0.1, 0.0)
ELSEWHERE = BASE + np.where(np.isin(np.arange(10), PAPER_HARD), -0.05, 0.1)


def test_c5_branches():
    assert outcome(claims.c5, results(absld_separate=model(ON_PAPER_HARD))) == REPRODUCED
    assert outcome(claims.c5, results(absld_separate=model(ELSEWHERE))) == NOT_REPRODUCED
    assert outcome(claims.c5, results(absld_separate=model(BASE))) == INCONCLUSIVE
    clean = CLEAN.copy()
    clean[3] = 0.05
    blind = claims.c5(results(rslad=model(np.minimum(BASE, clean), clean=clean), absld_separate=model(ON_PAPER_HARD)))
    assert blind.outcome == NOT_TESTABLE and "degenerate class" in blind.evidence()
    res = results()
    res["selection"]["paper_hard"] = None
    assert outcome(claims.c5, res) == NOT_TESTABLE


# ---- C6: hard classes end with lower temperatures (deterministic, from the history) ----

def test_c6_branches():
    verdict = claims.c6(results())
    assert verdict.outcome == REPRODUCED
    assert verdict.parts[0].estimate.value == pytest.approx(0.5 - 2.0) and verdict.parts[0].estimate.ci == (-1.5, -1.5)
    inverted = np.where(np.isin(np.arange(10), HARD), 2.0, 0.5)
    assert outcome(claims.c6, results(histories={"absld_separate": history(inverted)})) == NOT_REPRODUCED
    flat = history(np.ones(10))
    assert outcome(claims.c6, results(histories={"absld_separate": flat})) == INCONCLUSIVE
    # the adversarial vector right, the clean one wrong: not reproduced
    assert outcome(claims.c6, results(histories={"absld_separate": history(SHARP, inverted)})) == NOT_REPRODUCED
    res = results()
    res["config"]["eta_tau"] = 0
    assert outcome(claims.c6, res) == NOT_TESTABLE
    res = results()
    res["models"]["absld_separate"]["history"] = [{"epoch": 1, "loss": 1.0}]
    assert outcome(claims.c6, res) == NOT_TESTABLE


def test_c6_is_gated_on_the_absld_student_and_its_hard_classes():
    weak = claims.c6(results(absld_separate=model(np.full(10, 0.1), clean=np.full(10, 0.2))))
    assert weak.outcome == NOT_TESTABLE and "degenerate model" in weak.evidence()
    assert [p.outcome for p in weak.parts] == [REPRODUCED, REPRODUCED]  # the parts are measured, the gate decides
    clean = CLEAN.copy()
    clean[HARD[1]] = 0.05  # a validation-hard class the student does not recognise
    blind = claims.c6(results(absld_separate=model(np.minimum(FAIRER, clean), clean=clean)))
    assert blind.outcome == NOT_TESTABLE and "cat clean 5.0%" in blind.evidence() and "degenerate class" in blind.evidence()
    clean = CLEAN.copy()
    clean[0] = 0.05  # an easy class below chance: not what C6 rests on
    assert outcome(claims.c6, results(absld_separate=model(np.minimum(FAIRER, clean), clean=clean))) == REPRODUCED
    assert outcome(claims.c6, results(absld_separate=None)) == NOT_TESTABLE


# ---- C7: code_product more aggressive than separate ----

def test_c7_branches():
    verdict = claims.c7(results())
    assert verdict.outcome == REPRODUCED
    assert verdict.parts[0].estimate.value == pytest.approx(16 - 4)  # (2·2)/(0.5·0.5) against 2/0.5
    narrow = results(histories={"absld_code_product": history(np.sqrt(SHARP) ** 0.5, np.sqrt(SHARP) ** 0.5)})
    assert outcome(claims.c7, narrow) == NOT_REPRODUCED
    less_fair = results(absld_code_product=model(BASE))  # product range wider, but the worst class lower
    assert outcome(claims.c7, less_fair) == NOT_REPRODUCED
    assert outcome(claims.c7, results(absld_code_product=model(FAIRER))) == INCONCLUSIVE
    assert outcome(claims.c7, results(absld_code_product=model(FAIREST, clean=np.full(10, 0.28)))) == NOT_TESTABLE
    assert outcome(claims.c7, results(absld_code_product=None)) == NOT_TESTABLE


def test_every_rule_runs_and_key_numbers_hold_the_estimates():
    res = results()
    verdicts = claims.verdicts(res)
    assert [v.claim for v in verdicts] == ["C1", "C2", "C3", "C4", "C5", "C6", "C7"]
    for v in verdicts:
        assert v.text().split(";")[0] in (REPRODUCED, NOT_REPRODUCED, INCONCLUSIVE, NOT_TESTABLE)
    numbers = claims.key_numbers(res)
    assert numbers["rslad.clean"] == pytest.approx(0.8) and numbers["rslad.pgd20"] == pytest.approx(BASE.mean())
    assert numbers["rslad.pgd20.worst"] == pytest.approx(0.1) and numbers["C6.0"] == pytest.approx(-1.5)
    assert all(isinstance(v, float) for v in numbers.values())
