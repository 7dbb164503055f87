"""Every verdict rule of the RoBal chapter on hand-built results, one test per branch."""
from __future__ import annotations

import numpy as np
import pytest

from advfair.experiments.robal import claims
from advfair.verdicts import INCONCLUSIVE, NEGLIGIBLE, NOT_REPRODUCED, NOT_TESTABLE, REPRODUCED
from advfair.experiments.roles import attack_roles

from results_builder import CLASSES, labels, outcomes, record

PER_CLASS, AA_PER_CLASS = 100, 50
Y = labels(PER_CLASS)
SUBSET = np.sort(np.concatenate([np.flatnonzero(Y == c)[:AA_PER_CLASS] for c in range(10)]))
GROUPS = {"head": [0, 1, 2], "middle": [3, 4, 5, 6], "tail": [7, 8, 9]}
COUNTS = [1000, 647, 419, 271, 175, 113, 73, 47, 30, 20]
CLEAN = np.linspace(0.9, 0.3, 10)
PGD = np.linspace(0.6, 0.05, 10)
PLAIN_CLEAN = np.linspace(0.95, 0.75, 10)  # standard training: a far smaller head - tail gap than CLEAN's
NAMES = attack_roles(pgd="pgd20", cw="cw20", aa="aa", pgd_scaled="tpgd20_T0.1", mim=None)


def model(clean=CLEAN, pgd=PGD, aa=None, aa_clean=None, moved=()) -> dict:
    """Clean, PGD, CW (= PGD) and PGD on scaled logits (= PGD) on all points; AA (default: PGD) on the
    subset, whose points are the first AA_PER_CLASS of each class (`aa_clean` sets their clean accuracy).
    The outcomes named in `moved` have the same accuracy on other points: each class's correct points start
    10 points later (robust accuracy is 25+ pt below clean in every class, so they stay clean-correct)."""
    def hits(name, y, accuracy):
        return outcomes(y, accuracy, offset=10 if name in moved else 0)

    correct = {"clean": hits("clean", Y, clean), "pgd20": hits("pgd20", Y, pgd), "cw20": hits("cw20", Y, pgd),
               "tpgd20_T0.1": hits("tpgd20_T0.1", Y, pgd)}
    if aa_clean is not None:  # the subset's clean outcomes, independently of the other points
        sub = hits("clean", Y[SUBSET], aa_clean)
        correct["clean"][SUBSET] = sub
    correct["aa"] = hits("aa", Y[SUBSET], PGD if aa is None else aa)
    return record(Y, correct, SUBSET)


ATTACKS = ("pgd20", "cw20", "tpgd20_T0.1", "aa")


def results(kappa=None, ablation=None, **models) -> dict:
    evaluations = {"plain": model(clean=PLAIN_CLEAN, pgd=np.zeros(10), aa=np.zeros(10)), "sml_bal": model(),
                   "at_fc": model(), "la_post": model(), "rescale": model(), "tau_norm": model(), "at_cos": model(),
                   "la_train": model(), "robal_n": model(), "robal_r": model()}
    evaluations.update(models)
    kappa = kappa or {"-3": model(), "0": evaluations["at_fc"], "3": model()}
    rows = ablation if ablation is not None else [
        {"tau_b_minus_tau_m": 0.0, "end": model()}, {"tau_b_minus_tau_m": 1.2, "end": model()}]
    y_ratio = np.linspace(0.8, 0.9, len(Y))
    return {"config": {"n_boot": 200, "seed": 0, "equivalence_margin": 0.02}, "classes": list(CLASSES),
            "counts": COUNTS, "groups": GROUPS, "attack_roles": NAMES, "evaluations": evaluations,
            "kappa": {"grid": [float(k) for k in kappa], "evaluations": kappa},
            "ablation": {"rows": rows}, "weight_norms": list(np.linspace(2, 1, 10)),
            "feature_norms": {"ratio": list(y_ratio), "fooled": "1" * (len(Y) // 2) + "0" * (len(Y) // 2),
                              "robust": "0" * (len(Y) // 2) + "1" * (len(Y) // 2)}}


def outcome(rule, res) -> str:
    return rule(res).outcome


def test_c1_reproduced_when_the_tail_collapses_more_under_attack():
    assert outcome(claims.c1, results()) == REPRODUCED


def test_c1_not_reproduced_when_the_tail_is_better():
    flipped = model(clean=CLEAN[::-1], pgd=PGD[::-1])
    assert outcome(claims.c1, results(at_fc=flipped)) == NOT_REPRODUCED


def test_c1_not_testable_for_a_degenerate_baseline():
    verdict = claims.c1(results(at_fc=model(clean=np.full(10, 0.2), pgd=np.full(10, 0.15))))
    assert verdict.outcome == NOT_TESTABLE and verdict.text() == NOT_TESTABLE + "; degenerate"
    assert [g.label for g in verdict.failed_gates()] == ["AT-FC clean"]  # its PGD accuracy (15 %) passes
    assert verdict.evidence().startswith("AT-FC clean 20.0 [17.6, 22.6]; model floor 30% (3× chance) (degenerate)")
    # AT-FC's clean and PGD gates and the plain model's clean gate: standard training has no robustness to gate
    assert [g.label for g in claims.c1(results()).gates] == ["AT-FC clean", "AT-FC PGD20", "plain (no AT) clean"]
    assert claims.c1(results()).failed_gates() == []
    no_robustness = claims.c1(results(at_fc=model(pgd=np.full(10, 0.02), aa=np.full(10, 0.02))))
    assert no_robustness.text() == NOT_TESTABLE + "; degenerate"
    assert [g.label for g in no_robustness.failed_gates()] == ["AT-FC PGD20"]


def test_c1_needs_at_to_widen_the_tail_gap_of_plain_training():
    parts = claims.c1(results()).parts
    assert parts[3].label.startswith("clean head − tail gap, AT-FC − plain") and parts[3].outcome == REPRODUCED
    # plain training with AT-FC's own clean outcomes: the gap is not widened at all, measured exactly
    same = claims.c1(results(plain=model()))
    assert same.outcome == NOT_REPRODUCED and same.parts[3].outcome == NOT_REPRODUCED
    assert same.text() == f"{NOT_REPRODUCED}; {NEGLIGIBLE}"
    wider = claims.c1(results(plain=model(clean=np.linspace(1.0, 0.1, 10), pgd=np.zeros(10), aa=np.zeros(10))))
    assert wider.outcome == NOT_REPRODUCED and wider.text() == NOT_REPRODUCED  # plain's gap is the larger one
    res = results()
    del res["evaluations"]["plain"]
    verdict = claims.c1(res)  # one conjunct of the claim cannot be tested: neither can the claim
    assert verdict.outcome == NOT_TESTABLE and verdict.parts[3].outcome == NOT_TESTABLE and len(verdict.gates) == 2
    assert claims.c1(results(plain=model(clean=np.full(10, 0.2)))).text() == NOT_TESTABLE + "; degenerate"


def test_c2_branches():
    stronger_head = PGD.copy()
    stronger_head[:3] += 0.2
    assert outcome(claims.c2, results(at_fc=model(pgd=stronger_head))) == REPRODUCED
    weaker = claims.c2(results(sml_bal=model(pgd=stronger_head)))
    assert weaker.outcome == NOT_REPRODUCED and weaker.text() == NOT_REPRODUCED  # the other side
    same = claims.c2(results())  # identical predictions: no difference, measured exactly
    assert same.outcome == NOT_REPRODUCED and same.text() == f"{NOT_REPRODUCED}; {NEGLIGIBLE}"
    noisy = claims.c2(results(sml_bal=model(moved=ATTACKS)))  # as accurate, right on other points
    assert noisy.outcome == INCONCLUSIVE and noisy.text() == INCONCLUSIVE
    res = results()
    del res["evaluations"]["sml_bal"]
    assert outcome(claims.c2, res) == NOT_TESTABLE


def test_c3_needs_a_clean_gain_larger_than_the_aa_gain():
    better_clean = model(clean=np.minimum(CLEAN + 0.1, 1), aa_clean=np.full(10, 1.0))
    base = model(aa_clean=np.full(10, 0.8))
    assert outcome(claims.c3, results(at_fc=base, la_train=better_clean, la_post=better_clean)) == REPRODUCED
    # the same clean gain with a larger AA gain: the second part fails
    both = model(clean=np.minimum(CLEAN + 0.1, 1), aa_clean=np.full(10, 1.0), aa=np.minimum(PGD + 0.3, 1))
    verdict = claims.c3(results(at_fc=base, la_train=both, la_post=both))
    assert verdict.outcome == NOT_REPRODUCED
    # no clean gain at all (interval [0, 0]): a null measured exactly, never "reproduced"
    none = claims.c3(results())
    assert none.outcome == NOT_REPRODUCED and none.text() == f"{NOT_REPRODUCED}; {NEGLIGIBLE}"
    # the same accuracies on other points: open
    moved = model(aa_clean=np.full(10, 0.8), moved=("clean", *ATTACKS))
    noisy = claims.c3(results(at_fc=base, la_train=moved, la_post=moved))
    assert noisy.outcome == INCONCLUSIVE and noisy.text() == INCONCLUSIVE


def test_c4_fake_gain_branches():
    fake = model(pgd=PGD + 0.1)  # PGD up, AA (= baseline PGD) unchanged
    verdict = claims.c4(results(rescale=fake, tau_norm=fake))
    assert verdict.outcome == REPRODUCED and verdict.compares == "model"
    assert [p.label.split(" − ")[0] for p in verdict.parts] == ["AT-FC + re-scaling"] * 3 + ["AT-FC + τ-normalisation"] * 3
    assert [p.primary for p in verdict.parts] == [True, True, False] * 2  # clean is shown, not voted
    lower_aa = model(pgd=PGD + 0.1, aa=PGD - 0.1)  # "not AA": an AA loss does not raise AA either
    assert outcome(claims.c4, results(rescale=fake, tau_norm=lower_aa)) == REPRODUCED
    real = model(pgd=PGD + 0.1, aa=PGD + 0.2)  # AA moves too: not a fake gain
    assert outcome(claims.c4, results(rescale=fake, tau_norm=real)) == NOT_REPRODUCED
    none = claims.c4(results())  # no PGD gain at all
    assert none.outcome == NOT_REPRODUCED and none.text() == f"{NOT_REPRODUCED}; {NEGLIGIBLE}"
    assert [p.outcome for p in none.parts[:2]] == [NOT_REPRODUCED, REPRODUCED]  # AA is not raised, as claimed
    noisy = claims.c4(results(rescale=model(moved=("pgd20",)), tau_norm=fake))
    assert noisy.outcome == INCONCLUSIVE and [p.outcome for p in noisy.parts[:2]] == [INCONCLUSIVE, REPRODUCED]
    res = results()
    for name in ("rescale", "tau_norm"):
        del res["evaluations"][name]
    assert outcome(claims.c4, res) == NOT_TESTABLE


def test_c5_u_shape_with_clean_and_aa_unchanged():
    up = model(pgd=PGD + 0.1)
    assert outcome(claims.c5, results(kappa={"-3": up, "0": model(), "3": up})) == REPRODUCED
    down = model(pgd=PGD - 0.04)
    assert outcome(claims.c5, results(kappa={"-3": up, "0": model(), "3": down})) == NOT_REPRODUCED
    verdict = claims.c5(results(kappa={"0": model(), "3": up}))
    assert verdict.outcome == NOT_TESTABLE  # no kappa on the small side


def test_c6_branches():
    base = model(aa_clean=np.full(10, 0.9))
    smaller_gap = model(aa_clean=np.full(10, 0.7))
    smaller = claims.c6(results(at_fc=base, at_cos=smaller_gap))
    assert smaller.outcome == REPRODUCED
    # the gap shrinks by a lower clean accuracy alone: the AA difference, shown beside it, does not vote
    aa = smaller.parts[1]
    assert not aa.primary and aa.outcome == NOT_REPRODUCED and aa.label.startswith("AA, AT-Cos − AT-FC")
    assert "(secondary)" in smaller.evidence()
    assert outcome(claims.c6, results(at_fc=smaller_gap, at_cos=base)) == NOT_REPRODUCED
    same = claims.c6(results())
    assert same.outcome == NOT_REPRODUCED and same.text() == f"{NOT_REPRODUCED}; {NEGLIGIBLE}"
    noisy = claims.c6(results(at_cos=model(moved=("aa",))))  # AA as accurate, on other points
    assert noisy.outcome == INCONCLUSIVE and noisy.parts[0].outcome == INCONCLUSIVE


def test_c7_weight_norms_and_feature_ratio():
    res = results()
    assert res["weight_norms"][0] > res["weight_norms"][-1]
    assert outcome(claims.c7, res) == NOT_REPRODUCED  # the fooled points have the *smaller* ratios here
    res["feature_norms"]["fooled"], res["feature_norms"]["robust"] = (res["feature_norms"]["robust"],
                                                                      res["feature_norms"]["fooled"])
    assert outcome(claims.c7, res) == REPRODUCED
    res["weight_norms"] = list(np.full(10, 1.0))
    assert outcome(claims.c7, res) == INCONCLUSIVE  # permutation test of tied norms is not significant


def test_c8_every_attack_and_clean():
    better = model(clean=np.minimum(CLEAN + 0.1, 1), pgd=PGD + 0.1, aa=PGD + 0.1)
    assert outcome(claims.c8, results(robal_n=better, robal_r=better)) == REPRODUCED
    clean_only = model(clean=np.minimum(CLEAN + 0.1, 1))  # the same robust points: no robust gain, exactly
    verdict = claims.c8(results(robal_n=better, robal_r=clean_only))
    assert verdict.outcome == NOT_REPRODUCED and verdict.text() == f"{NOT_REPRODUCED}; {NEGLIGIBLE}"
    clean_and_moved = model(clean=np.minimum(CLEAN + 0.1, 1), moved=ATTACKS)  # as robust, on other points
    verdict = claims.c8(results(robal_n=better, robal_r=clean_and_moved))
    assert verdict.outcome == INCONCLUSIVE
    assert [p.outcome for p in verdict.parts[4:]] == [REPRODUCED, INCONCLUSIVE, INCONCLUSIVE, INCONCLUSIVE]
    worse = model(pgd=PGD - 0.04, aa=PGD - 0.04)
    assert outcome(claims.c8, results(robal_n=better, robal_r=worse)) == NOT_REPRODUCED


def _ablation(*aa_of_rows, clean_up=True) -> list[dict]:
    """Ablation rows at tau_b - tau_m = 0, 0.6, ...: clean rises along the rows (by 0.05 each) when `clean_up`;
    each row's AA per class as given."""
    return [{"tau_b_minus_tau_m": 0.6 * i,
             "end": model(clean=np.minimum(CLEAN + (0.05 * i if clean_up else 0), 1), aa=aa)}
            for i, aa in enumerate(aa_of_rows)]


def test_c9_clean_part_and_the_peak():
    verdict = claims.c9(results(ablation=_ablation(PGD, PGD + 0.1, PGD)))
    assert [p.outcome for p in verdict.parts] == [REPRODUCED, REPRODUCED] and verdict.outcome == REPRODUCED
    assert verdict.parts[1].label == ("AA at the end of training, best of τ_b − τ_m = 0.6 − best of 0 and 1.2 "
                                      "(AA points)")
    assert verdict.parts[1].estimate.value == pytest.approx(0.1, abs=0.01)
    assert [g.label for g in verdict.gates[:2]] == ["RoBal τ_b − τ_m = 0 clean", "RoBal τ_b − τ_m = 0 AA"]
    assert len(verdict.gates) == 6  # clean and AA (the ablation's only attack) of each of the three models
    monotone = claims.c9(results(ablation=_ablation(PGD, PGD + 0.05, PGD + 0.1)))  # AA rises to the end
    assert monotone.parts[1].outcome == NOT_REPRODUCED and monotone.outcome == NOT_REPRODUCED
    flat = claims.c9(results(ablation=_ablation(PGD, PGD, PGD)))  # no peak at all, measured exactly
    assert flat.parts[1].outcome == NOT_REPRODUCED and flat.text() == f"{NOT_REPRODUCED}; {NEGLIGIBLE}"
    four = claims.c9(results(ablation=_ablation(PGD, PGD + 0.02, PGD + 0.1, PGD)))  # the best interior counts
    assert four.parts[1].estimate.value == pytest.approx(0.1, abs=0.01) and four.outcome == REPRODUCED
    down = claims.c9(results(ablation=_ablation(PGD, PGD + 0.1, PGD, clean_up=False)[::-1]))
    assert down.parts[0].outcome == NOT_REPRODUCED  # clean does not rise: a null, measured exactly
    two = claims.c9(results(ablation=_ablation(PGD, PGD)))
    assert [p.outcome for p in two.parts] == [REPRODUCED, NOT_TESTABLE] and two.outcome == NOT_TESTABLE
    assert outcome(claims.c9, results(ablation=_ablation(PGD))) == NOT_TESTABLE


def test_all_rules_and_key_numbers():
    res = results()
    verdicts = claims.verdicts(res)
    assert [v.claim for v in verdicts] == ["C1", "C2", "C3", "C4", "C5", "C6", "C7", "C8", "C9", "C10–C12"]
    assert verdicts[-1].outcome == NOT_TESTABLE
    assert claims.key_numbers(res)["at_fc.clean"] == pytest.approx(CLEAN.mean())
