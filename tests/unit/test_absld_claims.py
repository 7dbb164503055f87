"""Every verdict rule of the ABSLD chapter on hand-built results, each branch (reproduced, not reproduced,
inconclusive, not testable) of each claim."""
from __future__ import annotations

import numpy as np
import pytest

from advfair.experiments.absld import claims
from advfair.verdicts import INCONCLUSIVE, NEGLIGIBLE, NOT_REPRODUCED, NOT_TESTABLE, REPRODUCED
from advfair.experiments.roles import attack_roles

from results_builder import CLASSES, labels, outcomes, record

PER_CLASS, AA_PER_CLASS = 200, 100
Y = labels(PER_CLASS)
SUBSET = np.sort(np.concatenate([np.flatnonzero(Y == c)[:AA_PER_CLASS] for c in range(10)]))
NAMES = attack_roles(fgsm="fgsm", pgd="pgd20", cw="cw20", aa="aa")
CLEAN = np.full(10, 0.8)
BASE = np.array([0.45, 0.5, 0.15, 0.1, 0.2, 0.2, 0.3, 0.45, 0.5, 0.45])  # RSLAD: worst class cat, very uneven
# the validation-hard classes 2-5 up 15 points each, the others down 10: the same average, a fairer spread
FAIRER = BASE + np.where(np.isin(np.arange(10), [2, 3, 4, 5]), 0.15, -0.10)
FAIREST = np.array([0.42, 0.45, 0.40, 0.38, 0.40, 0.40, 0.38, 0.42, 0.45, 0.42])  # worst classes at 38%
LESS_FAIR = BASE + np.where(np.isin(np.arange(10), [2, 3, 4, 5]), -0.06, 0.04)
HARD, PAPER_HARD = [2, 3, 4, 5], [3, 4, 5, 6]


_MODELS: dict = {}


def model(robust=BASE, clean=CLEAN, aa=None, moved: bool = False) -> dict:
    """clean, FGSM, PGD and CW on every point; AA (= PGD unless given) on the AA points (built once per input:
    the rules only read their results). `moved`: PGD, CW and AA right on other points (each class's correct
    points start 20 later, still inside its clean-correct ones): the same accuracies, other outcomes."""
    key = (*(np.asarray(v, dtype=float).tobytes() for v in (robust, clean, robust if aa is None else aa)), moved)
    if key not in _MODELS:
        _MODELS[key] = _model(robust, clean, aa, 20 if moved else 0)
    return _MODELS[key]


def _model(robust, clean, aa, offset) -> dict:
    acc = {"clean": clean, "fgsm": np.minimum(clean, np.asarray(robust) + 0.1), "pgd20": robust, "cw20": robust}
    correct = {k: outcomes(Y, v, offset=offset if k in ("pgd20", "cw20") else 0) for k, v in acc.items()}
    correct["aa"] = outcomes(Y[SUBSET], robust if aa is None else aa, offset=offset)
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
            "classes": list(CLASSES), "attack_roles": NAMES, "selection": {"hard": HARD, "paper_hard": PAPER_HARD},
            "evaluations": evals, "models": models}


def outcome(rule, res) -> str:
    return rule(res).outcome


# ---- C1: worst class up and NSD down against RSLAD, under PGD and AA ----

ALONE = "against RSLAD alone: this run trained no other baseline student"


def test_c1_branches():
    assert outcome(claims.c1, results()) == REPRODUCED
    assert outcome(claims.c1, results(absld_separate=model(LESS_FAIR))) == NOT_REPRODUCED
    same = claims.c1(results(absld_separate=model(BASE)))  # the same outcomes as RSLAD: a null measured exactly
    assert same.outcome == NOT_REPRODUCED and same.text() == f"{NOT_REPRODUCED}; {NEGLIGIBLE}; {ALONE}"
    assert [p.note for p in same.parts] == [NEGLIGIBLE] * 4
    moved = claims.c1(results(absld_separate=model(BASE, moved=True)))  # RSLAD's accuracies, on other points
    assert moved.outcome == INCONCLUSIVE and [p.outcome for p in moved.parts] == [INCONCLUSIVE] * 4
    weak = claims.c1(results(rslad=model(np.full(10, 0.1), clean=np.full(10, 0.2))))
    assert weak.outcome == NOT_TESTABLE and weak.text() == f"{NOT_TESTABLE}; degenerate; {ALONE}"
    assert [g.label for g in weak.failed_gates()] == ["RSLAD clean", "RSLAD PGD20"]  # robust 10 %: borderline
    assert weak.evidence().startswith("RSLAD clean 20.0 [18.3, 21.8]; model floor 30% (3× chance) (degenerate)")
    missing = claims.c1(results(rslad=None))
    assert missing.outcome == NOT_TESTABLE and "not trained in this run" in missing.evidence()


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
    assert only_rslad.text() == f"{REPRODUCED}; {ALONE}"  # and the verdict says whom it compares with
    res = results(fair_rslad=model(BASE), ard=model(BASE), pgd_at=model(LESS_FAIR), trades=model(BASE))
    assert claims.baselines(res) == ["rslad", "ard", "fair_rslad", "pgd_at", "trades"]
    verdict = claims.c1(res)
    assert verdict.outcome == REPRODUCED and len(verdict.parts) == 5 * 4 + 1 and verdict.text() == REPRODUCED
    for key in claims.baselines(res):
        assert sum(p.label.endswith(f"− {claims.MODEL_LABELS[key]}") for p in verdict.parts[:-1]) == 4, key
    assert "the lowest of" in verdict.parts[-1].label and verdict.parts[-1].outcome == REPRODUCED
    # a baseline fairer than ABSLD: its parts and "best on NSD" fail
    fairer = claims.c1(results(fair_rslad=model(FAIREST)))
    assert fairer.outcome == NOT_REPRODUCED
    assert [p.outcome for p in fairer.parts[4:]] == [NOT_REPRODUCED] * 5
    # a degenerate baseline makes C1 not testable (the claim rests on it)
    weak = claims.c1(results(ard=model(np.full(10, 0.1), clean=np.full(10, 0.2))))
    assert weak.outcome == NOT_TESTABLE and [g.label for g in weak.failed_gates()] == ["ARD clean", "ARD PGD20"]
    # every baseline's floor gates are there, PGD and AA, always
    floors = [g.label for g in verdict.gates if g.label.startswith("worst class")]
    assert len(floors) == 2 * 5 and all(g.outcome == REPRODUCED for g in verdict.gates)


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


def floor_gates(verdict) -> list:
    return [g for g in verdict.gates if g.label.startswith("worst class")]


@pytest.mark.parametrize("rule, base, other", [(claims.c1, "rslad", "absld_separate"),
                                               (claims.c3, "ls_uniform", "ls_class"),
                                               (claims.c4, "absld_manual", "absld_separate"),
                                               (claims.c7, "absld_separate", "absld_code_product")])
def test_a_worst_class_at_the_floor_for_both_models_is_a_failed_gate(rule, base, other):
    both = rule(results(**{base: model(ZERO), other: model(FAIRER_ZERO)}))
    gates = floor_gates(both)
    assert len(gates) == 2 and all(g.gate and g.outcome == NOT_TESTABLE and g.rule == claims.FLOOR for g in gates)
    assert both.failed_gates() == gates and both.outcome == NOT_TESTABLE  # gates come before the parts, always
    # the models are sound: the verdict names the floor instead of calling them degenerate
    assert both.text().startswith(NOT_TESTABLE + "; both worst classes at 0 %") and "degenerate" not in both.text()
    assert "a floor, not a measurement" in both.evidence()
    worst_parts = [p for p in both.parts if p.label.startswith("worst class")]
    assert len(worst_parts) == 2 and all(p.estimate.ci == (0.0, 0.0) for p in worst_parts)  # stuck at 0
    # only one of the two at 0 %: a measurement (the other's worst class is above it); the gates pass
    one = rule(results(**{base: model(ZERO), other: model(FAIRER)}))
    gates = floor_gates(one)
    assert len(gates) == 2 and all(g.outcome == REPRODUCED and g.rule == "not at the floor" for g in gates)
    assert one.failed_gates() == []
    worst_parts = [p for p in one.parts if p.label.startswith("worst class")]
    assert all(p.outcome == REPRODUCED and p.estimate.value == pytest.approx(FAIRER.min()) for p in worst_parts)


def test_the_floor_gate_makes_a_claim_not_testable_even_when_another_part_is_not_reproduced():
    # DSD: the average falls by 10 pt (outside the ±3 margin), and both models have a class at 0 %
    lower = np.where(np.arange(10) == 6, 0.0, np.maximum(BASE - 0.1, 0.02))
    verdict = claims.c3(results(ls_uniform=model(ZERO), ls_class=model(lower)))
    average = verdict.parts[-1]
    assert average.label.startswith("average under") and average.outcome == NOT_REPRODUCED
    assert verdict.outcome == NOT_TESTABLE and verdict.text() == NOT_TESTABLE + "; both worst classes at 0 %"
    # without the floor, the same drop decides the claim
    assert claims.c3(results(ls_class=model(np.maximum(BASE - 0.1, 0.02)))).outcome == NOT_REPRODUCED


def test_a_floor_in_one_seed_makes_the_pooled_claim_not_testable_and_says_where():
    from advfair.verdicts.pooling import pool

    floored = claims.c1(results(rslad=model(ZERO), absld_separate=model(FAIRER_ZERO)))
    sound = claims.c1(results(rslad=model(ZERO), absld_separate=model(FAIRER)))
    pooled = pool([sound, floored, sound])
    assert pooled.outcome == NOT_TESTABLE
    assert pooled.text().startswith(NOT_TESTABLE + "; both worst classes at 0 % in 1 of 3 runs")


def test_the_floor_is_judged_per_attack_and_points():
    on_aa_only = model(BASE, aa=ZERO)  # 0 % only under AutoAttack
    verdict = claims.c1(results(rslad=on_aa_only, absld_separate=model(FAIRER, aa=FAIRER_ZERO)))
    pgd_gate, aa_gate = floor_gates(verdict)
    assert pgd_gate.outcome == REPRODUCED and "PGD20" in pgd_gate.label  # PGD: a measurement
    assert aa_gate.outcome == NOT_TESTABLE and aa_gate.rule == claims.FLOOR and "(AA points)" in aa_gate.label
    assert verdict.outcome == NOT_TESTABLE and verdict.failed_gates() == [aa_gate]
    assert verdict.parts[0].outcome == REPRODUCED  # the parts are all measured
    assert verdict.parts[2].estimate.ci == (0.0, 0.0) and verdict.parts[3].estimate is not None


# ---- C2: the average stays within the margin; a significant drop is named ----

def test_c2_branches_and_the_reviewers_qualifier():
    same = claims.c2(results())
    assert same.outcome == REPRODUCED and same.text() == REPRODUCED and [p.note for p in same.parts] == ["", ""]
    big_drop = claims.c2(results(absld_separate=model(BASE - 0.1)))
    assert big_drop.outcome == NOT_REPRODUCED and big_drop.text() == f"{NOT_REPRODUCED}; significantly below 0"
    # a significant drop inside the margin's reach (the reviewers' point) is noted on its part, in the evidence
    small_drop = claims.c2(results(absld_separate=model(BASE - 0.03)))
    assert small_drop.outcome == INCONCLUSIVE and small_drop.text() == INCONCLUSIVE
    assert [p.note for p in small_drop.parts] == ["significantly below 0"] * 2
    assert "(significantly below 0)" in small_drop.evidence()
    assert outcome(claims.c2, results(absld_separate=model(BASE, clean=np.full(10, 0.25)))) == NOT_TESTABLE


# ---- C3: class-dependent smoothing (DSD) against the same smoothing (SSD) ----

def test_c3_branches():
    assert outcome(claims.c3, results()) == REPRODUCED
    assert outcome(claims.c3, results(ls_class=model(LESS_FAIR))) == NOT_REPRODUCED
    same = claims.c3(results(ls_class=model(BASE)))  # DSD = SSD exactly: no worst-class gain of interest
    assert same.outcome == NOT_REPRODUCED and same.text() == f"{NOT_REPRODUCED}; {NEGLIGIBLE}"
    moved = claims.c3(results(ls_class=model(BASE, moved=True)))  # the same accuracies, on other points
    assert moved.outcome == INCONCLUSIVE and [p.outcome for p in moved.parts] == [INCONCLUSIVE, INCONCLUSIVE,
                                                                                  REPRODUCED]
    missing = claims.c3(results(ls_class=None, ls_uniform=None))
    assert missing.outcome == NOT_TESTABLE and "not trained in this run" in missing.evidence()
    # a worst-class gain bought with a large drop of the average is not "about the same average"
    assert outcome(claims.c3, results(ls_class=model(np.maximum(BASE - 0.12, 0.16)))) == NOT_REPRODUCED


# ---- C4: adaptive against manual temperatures ----

def test_c4_branches():
    assert outcome(claims.c4, results()) == REPRODUCED
    assert outcome(claims.c4, results(absld_manual=model(FAIREST))) == NOT_REPRODUCED
    same = claims.c4(results(absld_manual=model(FAIRER)))  # manual = adaptive exactly
    assert same.outcome == NOT_REPRODUCED and same.text() == f"{NOT_REPRODUCED}; {NEGLIGIBLE}"
    moved = claims.c4(results(absld_manual=model(FAIRER, moved=True)))
    assert moved.outcome == INCONCLUSIVE and moved.text() == INCONCLUSIVE
    assert outcome(claims.c4, results(absld_manual=model(BASE, clean=np.full(10, 0.2)))) == NOT_TESTABLE


# ---- C5: the gains concentrate on cat, deer, dog and frog ----

ON_PAPER_HARD = BASE + np.where(np.isin(np.arange(10), PAPER_HARD), 0.1, 0.0)
ELSEWHERE = BASE + np.where(np.isin(np.arange(10), PAPER_HARD), -0.05, 0.1)


def test_c5_branches():
    assert outcome(claims.c5, results(absld_separate=model(ON_PAPER_HARD))) == REPRODUCED
    assert outcome(claims.c5, results(absld_separate=model(ELSEWHERE))) == NOT_REPRODUCED
    same = claims.c5(results(absld_separate=model(BASE)))
    assert same.outcome == NOT_REPRODUCED and same.text() == f"{NOT_REPRODUCED}; {NEGLIGIBLE}"
    moved = claims.c5(results(absld_separate=model(BASE, moved=True)))
    assert moved.outcome == INCONCLUSIVE and [p.outcome for p in moved.parts] == [INCONCLUSIVE] * 4
    clean = CLEAN.copy()
    clean[3] = 0.05
    blind = claims.c5(results(rslad=model(np.minimum(BASE, clean), clean=clean), absld_separate=model(ON_PAPER_HARD)))
    assert blind.outcome == NOT_TESTABLE and blind.text() == NOT_TESTABLE + "; degenerate"
    assert [g.label for g in blind.failed_gates()] == ["RSLAD cat clean"]
    assert blind.evidence().startswith("RSLAD cat clean 5.0 [2.4, 9.0]; class floor 10% (chance) (degenerate)")
    assert [g.label for g in blind.gates][4:] == [f"RSLAD {c} clean" for c in ("cat", "deer", "dog", "frog")]
    res = results()
    res["selection"]["paper_hard"] = None
    assert outcome(claims.c5, res) == NOT_TESTABLE


# ---- C6 (and C7's temperature half) hold by construction: no verdict ----

def test_c6_is_not_among_the_verdicts():
    """The hard classes' lower temperatures follow from the update rule (pinned in test_distillation.py): no rule,
    no verdict, no key number."""
    res = results()
    assert "C6" not in claims.PAPER and not hasattr(claims, "c6")
    assert all(v.claim != "C6" for v in claims.verdicts(res))
    assert not any(k.startswith("C6") for k in claims.key_numbers(res))


# ---- C7: code_product more aggressive than separate ----

def test_c7_branches():
    verdict = claims.c7(results())
    assert verdict.outcome == REPRODUCED
    assert [p.label for p in verdict.parts] == ["worst class under PGD20, code_product − separate",
                                                "worst class under AA (AA points), code_product − separate"]
    assert verdict.parts[0].estimate.value == pytest.approx(FAIREST.min() - FAIRER.min())
    # the temperature range is no part any more (it holds by construction): the histories do not enter
    narrow = results(histories={"absld_code_product": history(np.sqrt(SHARP) ** 0.5, np.sqrt(SHARP) ** 0.5)})
    assert claims.c7(narrow) == verdict
    less_fair = results(absld_code_product=model(BASE))  # the worst class lower
    assert outcome(claims.c7, less_fair) == NOT_REPRODUCED
    same = claims.c7(results(absld_code_product=model(FAIRER)))
    assert same.outcome == NOT_REPRODUCED and same.text() == f"{NOT_REPRODUCED}; {NEGLIGIBLE}"
    moved = claims.c7(results(absld_code_product=model(FAIRER, moved=True)))
    assert moved.outcome == INCONCLUSIVE and moved.text() == INCONCLUSIVE
    assert outcome(claims.c7, results(absld_code_product=model(FAIREST, clean=np.full(10, 0.28)))) == NOT_TESTABLE
    assert outcome(claims.c7, results(absld_code_product=None)) == NOT_TESTABLE


def test_every_rule_runs_and_key_numbers_hold_the_estimates():
    res = results()
    verdicts = claims.verdicts(res)
    assert [v.claim for v in verdicts] == ["C1", "C2", "C3", "C4", "C5", "C7"]
    for v in verdicts:
        assert v.text().split(";")[0] in (REPRODUCED, NOT_REPRODUCED, INCONCLUSIVE, NOT_TESTABLE)
    numbers = claims.key_numbers(res)
    assert numbers["rslad.clean"] == pytest.approx(0.8) and numbers["rslad.pgd20"] == pytest.approx(BASE.mean())
    assert numbers["rslad.pgd20.worst"] == pytest.approx(0.1)
    assert numbers["C7.0"] == pytest.approx(FAIREST.min() - FAIRER.min())
    assert all(isinstance(v, float) for v in numbers.values())


def test_a_section_without_its_models_says_which_and_why():
    from advfair.experiments.absld import report

    evidence = {"config": {"profile": "evidence", "students": ["rslad", "absld_separate"], "c3": False},
                "evaluations": {"rslad": {}, "absld_separate": {}}}
    note = report.absent_note(evidence, "absld_code_product", "ls_class")
    assert note.startswith("Not trained in this run: ABSLD (code_product), left out of the evidence tier for its CPU "
                           "budget (students=['rslad', 'absld_separate']); ") and "(c3=False)" in note
    assert report.absent_note(evidence, "rslad") is None
    cpu = {"config": {"profile": "cpu", "students": ["rslad", "absld_separate"]}, "evaluations": {}}
    assert "not trained in this run (students=" in report.absent_note(cpu, "absld_manual")


def test_the_temperature_reading_places_every_validation_hard_class_once():
    """C6's reading of the committed smoke run: each validation-hard class is below or above the mean final τ^adv,
    with its own value, and the sets that differ from the paper's hard classes are named."""
    import json
    import re
    from pathlib import Path

    from advfair.experiments.absld import report

    results = json.loads((Path(__file__).resolve().parents[2] / "book" / "results" / "absld_cpu.json").read_text())
    text = report.temperature_reading(results)
    final = claims.trajectories(results, claims.main_key(results))["tau_adv"][-1]
    for c in results["selection"]["hard"]:
        name = results["classes"][c]
        assert len(re.findall(rf"\b{name} \({final[c]:.2f}\)", text)) == 1, name
    assert ("differs from the paper's" in text) == (set(results["selection"]["paper_hard"]) !=
                                                    set(results["selection"]["hard"]))
