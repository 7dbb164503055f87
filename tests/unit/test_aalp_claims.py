"""Every verdict rule of the AALP chapter (C1-C6, checklist G1-G3) on hand-built results, one test per branch."""
from __future__ import annotations

import numpy as np
import pytest

from advfair.evaluation import Estimate
from advfair.experiments.aalp import claims
from advfair.validation import ConfigError
from advfair.verdicts import INCONCLUSIVE, NOT_REPRODUCED, NOT_TESTABLE, REPRODUCED, at_least, at_most

from results_builder import labels, outcomes, record

PER_CLASS = 40
Y = labels(PER_CLASS)
# Every other point of each class: a first-k outcome vector keeps (about) its accuracy on the check points.
SUBSET = np.sort(np.concatenate([np.flatnonzero(Y == c)[::2] for c in range(10)]))
NAMES = {"pgd": "pgd20", "cw": "cw20", "long": "pgd100x5", "aa": "aa", "square": "square",
         "white_box": ["pgd20", "cw20", "pgd100x5", "aa"]}
ON_SUBSET = ("pgd100x5", "aa", "square")
KEYS = ("standard", "pgd_at", "mpgd", "alp", "aalp", "gd_only", "weights_only")
SWEEP = (0.1, 0.2, 0.3)


def per_class(value) -> np.ndarray:
    return np.broadcast_to(np.asarray(value, dtype=float), (10,))


def model(clean=0.95, pgd=0.6, cw=0.55, long=0.5, aa=0.3, square=0.4) -> dict:
    """One evaluation record; every accuracy a scalar or a per-class list (first-k outcomes, so they nest)."""
    acc = {"clean": clean, "pgd20": pgd, "cw20": cw, "pgd100x5": long, "aa": aa, "square": square}
    correct = {k: outcomes(Y, per_class(v)) for k, v in acc.items()}
    for k in ON_SUBSET:
        correct[k] = correct[k][SUBSET]
    return record(Y, correct, SUBSET, on_subset=ON_SUBSET, classes=tuple(str(c) for c in range(10)))


def sweep_record(accuracy: float, clean: float = 0.95) -> dict:
    y = Y[SUBSET]
    return record(y, {"clean": outcomes(y, per_class(clean)), "pgd20": outcomes(y, per_class(accuracy))}, on_subset=(),
                  classes=tuple(str(c) for c in range(10)))


def n90(base: float, shift: float = 0.0) -> list[float]:
    """Per-point features-to-90 % : base + a spread that repeats within each class, plus `shift`."""
    return list(base + shift + np.tile(np.linspace(-2, 2, PER_CLASS), 10))


def alp_records(share: float = 0.2, high: float = 0.0, rest: float = -0.4, var: float = 0.04, found: int = 5000) -> list:
    strata = [{"high": {"n": 100, "mean": high, "var": var}, "rest": {"n": 900, "mean": rest, "var": var}}
              for _ in range(5)]
    first = {"epoch": 1, "n": 5000, "r_above_1": int(share * 5000), "share_r_above_1": share,
             "cohort": {"found": 5000, "ce_high": 1.0, "ce_rest": 1.5}}
    last = {"epoch": 2, "n": 5000, "r_above_1": int(share * 5000), "share_r_above_1": share,
            "cohort": {"found": found, "ce_high": 1.0 + high, "ce_rest": 1.5 + rest, "matched": strata}}
    return [first, last]


def results(*, evaluations=None, sweep=None, n90s=None, zero=None, points=1000, training=None, drop=()) -> dict:
    evals = {k: model() for k in KEYS}
    evals["standard"] = model(clean=0.99, pgd=0.0, cw=0.0, long=0.0, aa=0.0, square=0.0)
    evals["pgd_at"] = model(pgd=0.6, cw=0.58, long=0.55, aa=0.5, square=0.55)
    evals.update(evaluations or {})
    curves = {k: {"0.1": sweep_record(0.9), "0.2": sweep_record(0.8)} for k in KEYS}
    curves.update(sweep or {})
    widths = {k: n90(6.0) for k in KEYS}
    widths["standard"] = n90(40.0)
    widths.update(n90s or {})
    zeros = {k: 0.0 for k in KEYS}
    zeros.update(zero or {})
    for k in drop:
        for table in (evals, curves, widths, zeros):
            table.pop(k)
    return {
        "config": {"n_boot": 200, "seed": 0, "eps": 0.3}, "attack_names": NAMES, "evaluations": evals,
        "sweep": {"eps": list(SWEEP), "evaluations": curves},
        "contributions": {"mass": 0.9, "top": [5, 10], "sign": "abs",
                          "models": {k: {"per_point": {"n90": v}, "profile": []} for k, v in widths.items()}},
        "diagnostics": {"points": points, "zero_gradient_fraction": zeros, "mean_logit_margin": {k: 1.0 for k in zeros}},
        "training": {"alp": alp_records()} if training is None else training,
    }


def outcome(rule, res) -> str:
    return rule(res).outcome


# ---- the per-point worst case and the interval rules ----

def test_worst_case_needs_every_white_box_attack():
    res = results(evaluations={"alp": model(pgd=0.6, cw=0.6, long=0.6, aa=0.2)})
    e = claims.evaluation(res, "alp")
    assert claims.worst_case(res, e).mean() == pytest.approx(0.2)


@pytest.mark.parametrize("ci, above, below", [((-0.1, 0.0), REPRODUCED, INCONCLUSIVE), ((0.01, 0.2), NOT_REPRODUCED, REPRODUCED),
                                              ((-0.1, 0.1), INCONCLUSIVE, INCONCLUSIVE), ((-0.2, -0.1), REPRODUCED, NOT_REPRODUCED),
                                              ((0.0, 0.1), INCONCLUSIVE, REPRODUCED)])
def test_at_most_and_at_least(ci, above, below):
    est = Estimate(sum(ci) / 2, ci, 10)
    assert at_most("q", est).outcome == above and at_least("q", est).outcome == below


# ---- C1: robust models need fewer features than the standard model ----

def test_c1_reproduced_when_pgd_at_and_alp_need_fewer_features():
    assert outcome(claims.c1, results()) == REPRODUCED


def test_c1_not_reproduced_when_a_robust_model_needs_more():
    assert outcome(claims.c1, results(n90s={"alp": n90(60.0)})) == NOT_REPRODUCED


def test_c1_inconclusive_when_the_difference_is_noise():
    noise = list(np.array(n90(40.0)) + np.tile([3.0, -3.0], len(Y) // 2))
    assert outcome(claims.c1, results(n90s={"pgd_at": noise, "alp": noise})) == INCONCLUSIVE


def test_c1_not_testable_for_a_degenerate_model():
    verdict = claims.c1(results(evaluations={"pgd_at": model(clean=0.2, pgd=0.1, cw=0.1, long=0.1, aa=0.1, square=0.1)}))
    assert verdict.outcome == NOT_TESTABLE and "degenerate model" in verdict.evidence()


# ---- C2: the share with r > 1, and the loss change of the high-r samples ----

def test_c2_reproduced_for_a_large_share_whose_loss_falls_less():
    assert outcome(claims.c2, results()) == REPRODUCED


def test_c2_not_reproduced_when_no_sample_has_r_above_1():
    assert outcome(claims.c2, results(training={"alp": alp_records(share=0.0)})) == NOT_REPRODUCED


def test_c2_not_reproduced_when_the_high_r_samples_improve_more():
    assert outcome(claims.c2, results(training={"alp": alp_records(high=-0.8)})) == NOT_REPRODUCED


def test_c2_inconclusive_when_the_matched_difference_is_noise():
    assert outcome(claims.c2, results(training={"alp": alp_records(high=-0.41, rest=-0.4, var=1.0)})) == INCONCLUSIVE


def test_c2_not_testable_without_records_or_without_the_cohort():
    assert outcome(claims.c2, results(training={})) == NOT_TESTABLE
    verdict = claims.c2(results(training={"alp": alp_records(found=0)}))
    assert verdict.outcome == NOT_TESTABLE and "cohort" in verdict.evidence()


# ---- C3: AALP-recon beats ALP under the worst case ----

def test_c3_reproduced_when_aalp_recon_is_more_robust_under_every_attack():
    res = results(evaluations={"aalp": model(aa=0.6, long=0.6, cw=0.6, square=0.6)})
    verdict = claims.c3(res)
    assert verdict.outcome == REPRODUCED and "AALP-style reconstruction" in verdict.text()


def test_c3_not_reproduced_when_aalp_recon_is_less_robust():
    assert outcome(claims.c3, results(evaluations={"aalp": model(aa=0.05)})) == NOT_REPRODUCED


def test_c3_inconclusive_when_they_are_equal():
    assert outcome(claims.c3, results()) == INCONCLUSIVE


def test_c3_not_testable_for_a_degenerate_aalp_recon():
    weak = model(clean=0.15, pgd=0.1, cw=0.1, long=0.1, aa=0.1, square=0.1)
    assert outcome(claims.c3, results(evaluations={"aalp": weak})) == NOT_TESTABLE


# ---- C4: each module contributes ----

def test_c4_reproduced_when_both_ablations_are_worse():
    better = model(aa=0.6, long=0.6, cw=0.6)
    assert outcome(claims.c4, results(evaluations={"aalp": better})) == REPRODUCED


def test_c4_not_reproduced_when_dropping_a_module_helps():
    assert outcome(claims.c4, results(evaluations={"gd_only": model(aa=0.5, long=0.5)})) == NOT_REPRODUCED


def test_c4_inconclusive_when_all_three_are_equal():
    assert outcome(claims.c4, results()) == INCONCLUSIVE


def test_c4_not_testable_without_the_ablations():
    verdict = claims.c4(results(drop=("gd_only",)))
    assert verdict.outcome == NOT_TESTABLE and "not trained" in verdict.evidence()


# ---- C5: Guided Dropout concentrates the contributions ----

def test_c5_reproduced_when_gd_models_need_fewer_features():
    assert outcome(claims.c5, results(n90s={"aalp": n90(3.0), "gd_only": n90(3.0)})) == REPRODUCED


def test_c5_not_reproduced_when_gd_spreads_them():
    assert outcome(claims.c5, results(n90s={"aalp": n90(9.0), "gd_only": n90(9.0)})) == NOT_REPRODUCED


def test_c5_inconclusive_when_gd_changes_nothing():
    assert outcome(claims.c5, results()) == INCONCLUSIVE


def test_c5_falls_back_to_aalp_recon_vs_alp_without_the_ablations():
    verdict = claims.c5(results(n90s={"aalp": n90(3.0)}, drop=("gd_only", "weights_only")))
    assert verdict.outcome == REPRODUCED and len(verdict.parts) == 1 and "ALP" in verdict.parts[0].label


# ---- C6: the ALP family loses more than PGD-AT beyond PGD-20 ----

def test_c6_reproduced_when_the_alp_family_drops_more():
    assert outcome(claims.c6, results()) == REPRODUCED  # drop 0.3 vs PGD-AT's 0.1


def test_c6_not_reproduced_when_pgd_at_drops_more():
    res = results(evaluations={"pgd_at": model(pgd=0.6, cw=0.5, long=0.4, aa=0.05, square=0.3)})
    assert outcome(claims.c6, res) == NOT_REPRODUCED


def test_c6_inconclusive_for_equal_drops():
    same = {k: model(pgd=0.6, cw=0.58, long=0.55, aa=0.5, square=0.55) for k in ("alp", "aalp", "gd_only", "weights_only")}
    assert outcome(claims.c6, results(evaluations=same)) == INCONCLUSIVE


# ---- G1: accuracy falls with eps ----

def test_g1_reproduced_when_accuracy_falls_with_eps():
    assert outcome(claims.g1, results()) == REPRODUCED


def test_g1_not_reproduced_when_accuracy_rises_with_eps():
    rising = {"alp": {"0.1": sweep_record(0.1), "0.2": sweep_record(0.15)}}
    verdict = claims.g1(results(sweep=rising))
    assert verdict.outcome == NOT_REPRODUCED
    assert [p.outcome for p in verdict.parts[:2]] == [NOT_REPRODUCED, NOT_REPRODUCED]


def test_g1_a_flat_curve_does_not_pass():
    flat = {k: {"0.1": sweep_record(0.6), "0.2": sweep_record(0.6)} for k in ("alp", "aalp", "gd_only", "weights_only")}
    verdict = claims.g1(results(sweep=flat))
    assert verdict.outcome != REPRODUCED
    steps, drop = verdict.parts[:2], verdict.parts[2]
    assert [p.outcome for p in steps] == [REPRODUCED, REPRODUCED]  # no rise between consecutive radii...
    assert "largest ε = 0.3" in drop.label and "smallest ε = 0.1" in drop.label  # ...but no drop either
    assert drop.estimate.value == 0 and drop.outcome == INCONCLUSIVE


def test_g1_requires_a_strict_drop_from_the_smallest_to_the_largest_eps():
    verdict = claims.g1(results())  # 0.9 -> 0.8 -> 0.6
    assert len(verdict.parts) == 4 * 3 and verdict.outcome == REPRODUCED
    drop = verdict.parts[2]
    assert drop.estimate.value == pytest.approx(0.6 - 0.9) and drop.outcome == REPRODUCED and drop.rule == "< 0"
    # non-increasing everywhere, but the drop is one point of one class: not shown at this size
    barely = {k: {"0.1": sweep_record(per_class([0.6] * 9 + [0.65])), "0.2": sweep_record(0.6)}
              for k in ("alp", "aalp", "gd_only", "weights_only")}
    drop = claims.g1(results(sweep=barely)).parts[2]
    assert drop.estimate.value < 0 and drop.outcome == INCONCLUSIVE
    # a curve that ends above its start: the strict-drop part fails too
    rising = {"alp": {"0.1": sweep_record(0.3), "0.2": sweep_record(0.5)}}
    assert claims.g1(results(sweep=rising)).parts[2].outcome == NOT_REPRODUCED


def test_g1_sweep_on_other_points_is_an_error():
    y = Y[SUBSET][::-1]  # the same classes in another order: not the main evaluation's check points
    other = record(y, {"clean": np.ones(len(y), bool), "pgd20": np.ones(len(y), bool)}, on_subset=(),
                   classes=tuple(str(c) for c in range(10)))
    with pytest.raises(ConfigError, match="sweep"):
        claims.g1(results(sweep={"alp": {"0.1": other, "0.2": other}}))


# ---- G2: Square is not below the white-box worst case ----

def test_g2_reproduced_when_square_finds_less():
    assert outcome(claims.g2, results()) == REPRODUCED


def test_g2_not_reproduced_when_square_beats_the_white_box_attacks():
    assert outcome(claims.g2, results(evaluations={"alp": model(aa=0.5, long=0.5, square=0.2)})) == NOT_REPRODUCED


def test_g2_inconclusive_when_square_is_slightly_below():
    e = model(aa=per_class([0.5] * 9 + [0.45]), long=0.5, square=per_class([0.5] * 9 + [0.4]))
    part = claims.g2(results(evaluations={"alp": e})).parts[0]
    assert part.outcome == INCONCLUSIVE and "(1 of 200)" in part.label  # 0.5 % [0.01, 2.8]: allows 2 %
    assert outcome(claims.g2, results(evaluations={"alp": e})) == INCONCLUSIVE


def with_square(record_: dict, accuracy: float, offset: int) -> dict:
    """The record with Square's outcomes replaced: `accuracy` of each class's check points, starting at `offset`."""
    e = claims.Evaluation.from_json(record_)
    y = Y[SUBSET]
    correct = {a: e.correct(a, "subset" if a in ON_SUBSET else "all") for a in e.predictions}
    correct["square"] = outcomes(y, per_class(accuracy), offset=offset) & e.correct("clean", "subset")
    return record(Y, correct, SUBSET, on_subset=ON_SUBSET, classes=tuple(str(c) for c in range(10)))


def test_g2_is_judged_per_point_not_on_the_means():
    # white-box worst case 30 % (the first 6 check points of each class); Square 50 % on other points (10 to 19):
    # its mean is above the worst case's, yet it breaks every point the white-box attacks left standing
    e = with_square(model(), 0.5, offset=10)
    res = results(evaluations={"alp": e})
    ev = claims.evaluation(res, "alp")
    assert ev.correct("square", "subset").mean() > claims.worst_case(res, ev).mean()
    assert claims.square_only(res, "alp") == (60, 200)
    part = claims.g2(res).parts[0]
    assert part.outcome == NOT_REPRODUCED and part.estimate.value == pytest.approx(0.3) and part.rule == "≤ 2"
    # Square on the same points as the white-box worst case and more: nothing broken by Square alone
    nested = with_square(model(), 0.5, offset=0)
    assert claims.square_only(results(evaluations={"alp": nested}), "alp") == (0, 200)
    assert outcome(claims.g2, results(evaluations={"alp": nested})) == REPRODUCED


# ---- G3: zero gradients ----

def test_g3_reproduced_without_zero_gradients():
    assert outcome(claims.g3, results()) == REPRODUCED


def test_g3_not_reproduced_when_many_points_have_zero_gradients():
    assert outcome(claims.g3, results(zero={"aalp": 0.2})) == NOT_REPRODUCED


def test_g3_inconclusive_near_the_limit():
    assert outcome(claims.g3, results(zero={"alp": 0.01})) == INCONCLUSIVE


# ---- every rule at once, and the key numbers ----

def test_verdicts_and_key_numbers():
    res = results()
    verdicts = claims.verdicts(res)
    assert [v.claim for v in verdicts] == ["C1", "C2", "C3", "C4", "C5", "C6", "G1", "G2", "G3"]
    numbers = claims.key_numbers(res)
    assert numbers["alp.worst"] == pytest.approx(0.3) and numbers["pgd_at.worst"] == pytest.approx(0.5)
    assert numbers["standard.n90"] == pytest.approx(40.0) and numbers["alp.share_r_above_1"] == 0.2
    assert all(isinstance(v, float) for v in numbers.values())
