"""Every verdict rule of the AALP chapter (C1-C6, checklist G1-G3) on hand-built results, one test per branch."""
from __future__ import annotations

import numpy as np
import pytest

from advfair.evaluation import Estimate
from advfair.experiments.aalp import claims
from advfair.validation import ConfigError
from advfair.objectives.alp_records import LOG10_EDGES
from advfair.verdicts import INCONCLUSIVE, NEGLIGIBLE, NOT_REPRODUCED, NOT_TESTABLE, REPRODUCED, at_least, at_most
from advfair.experiments.roles import attack_roles

from results_builder import labels, outcomes, record

PER_CLASS = 40
Y = labels(PER_CLASS)
# Every other point of each class: a first-k outcome vector keeps (about) its accuracy on the check points.
SUBSET = np.sort(np.concatenate([np.flatnonzero(Y == c)[::2] for c in range(10)]))
NAMES = attack_roles(pgd="pgd20", cw="cw20", aa="aa", long="pgd100x5", square="square",
                     white_box=["pgd20", "cw20", "pgd100x5", "aa"])
ON_SUBSET = ("pgd100x5", "aa", "square")
KEYS = ("standard", "pgd_at", "mpgd", "alp", "aalp", "gd_only", "weights_only")
SWEEP = (0.1, 0.2, 0.3)


def per_class(value) -> np.ndarray:
    return np.broadcast_to(np.asarray(value, dtype=float), (10,))


def model(clean=0.95, pgd=0.6, cw=0.55, long=0.5, aa=0.3, square=0.4, offset: int = 0) -> dict:
    """One evaluation record; every accuracy a scalar or a per-class list (first-k outcomes, so they nest).
    `offset`: every attack's correct points start that many points later in each class (the same accuracies on
    other points; they stay nested and, below clean - offset, clean-correct)."""
    acc = {"clean": clean, "pgd20": pgd, "cw20": cw, "pgd100x5": long, "aa": aa, "square": square}
    correct = {k: outcomes(Y, per_class(v), offset=0 if k == "clean" else offset) for k, v in acc.items()}
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


def r_hist(n: int, above_1: int, above_tenth: int) -> dict:
    """A log10 histogram of r (the recorder's edges): `above_1` samples in [1, 10^0.25), the others of the
    `above_tenth` in [0.1, 10^-0.75), the rest in the first bin."""
    counts = [0] * (len(LOG10_EDGES) - 1)
    counts[LOG10_EDGES.index(0.0)] = above_1
    counts[LOG10_EDGES.index(-1.0)] = above_tenth - above_1
    counts[0] = n - above_tenth
    return {"log10_edges": list(LOG10_EDGES), "counts": counts, "below": 0, "above": 0}


def alp_records(share: float = 0.2, high: float = 0.0, rest: float = -0.4, var: float = 0.04, found: int = 5000,
                share_sum: float = 0.6) -> list:
    """ALP's first and last epoch records; `share_sum`: the share with r > 1 / C (r > 1 under the sum over the C
    logits)."""
    strata = [{"high": {"n": 100, "mean": high, "var": var}, "rest": {"n": 900, "mean": rest, "var": var}}
              for _ in range(5)]
    hist = r_hist(5000, int(share * 5000), int(max(share, share_sum) * 5000))
    first = {"epoch": 1, "n": 5000, "r_above_1": int(share * 5000), "share_r_above_1": share, "r_hist": hist,
             "cohort": {"found": 5000, "ce_high": 1.0, "ce_rest": 1.5}}
    last = {"epoch": 2, "n": 5000, "r_above_1": int(share * 5000), "share_r_above_1": share, "r_hist": hist,
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
        "config": {"n_boot": 200, "seed": 0, "eps": 0.3}, "attack_roles": NAMES, "evaluations": evals,
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


def test_c1_not_reproduced_when_the_difference_is_small_noise_and_inconclusive_when_it_is_large():
    def noisy(amplitude):  # the standard model's counts, ± amplitude point by point: mean difference 0
        return list(np.array(n90(40.0)) + np.tile([amplitude, -amplitude], len(Y) // 2))

    small = claims.c1(results(n90s={"pgd_at": noisy(3.0), "alp": noisy(3.0)}))  # interval well inside ±1 feature
    assert small.outcome == NOT_REPRODUCED and small.text() == f"{NOT_REPRODUCED}; {NEGLIGIBLE}"
    large = claims.c1(results(n90s={"pgd_at": noisy(30.0), "alp": noisy(30.0)}))  # interval reaching past 1 feature
    assert large.outcome == INCONCLUSIVE and large.text() == INCONCLUSIVE


def test_c1_not_testable_for_a_degenerate_model():
    verdict = claims.c1(results(evaluations={"pgd_at": model(clean=0.2, pgd=0.1, cw=0.1, long=0.1, aa=0.1, square=0.1)}))
    assert verdict.outcome == NOT_TESTABLE and verdict.text() == NOT_TESTABLE + "; degenerate"
    # the standard model has no robustness to gate; the adversarially trained ones have their PGD gates too
    assert [g.label for g in verdict.gates] == ["standard (clean CE) clean", "PGD-AT clean", "PGD-AT PGD20", "ALP clean",
                                                "ALP PGD20"]
    assert [g.label for g in verdict.failed_gates()] == ["PGD-AT clean", "PGD-AT PGD20"]  # robust 10 %: borderline
    assert verdict.evidence().startswith("PGD-AT clean 20.0 [16.2, 24.3]; model floor 30% (3× chance) (degenerate)")
    robust_only = claims.c1(results(evaluations={"pgd_at": model(pgd=0.02, cw=0.02, long=0.02, aa=0.02, square=0.02)}))
    assert robust_only.text() == NOT_TESTABLE + "; degenerate"  # clean passes; no robustness to compare
    assert [g.label for g in robust_only.failed_gates()] == ["PGD-AT PGD20"]
    assert "robust floor 10% (chance) (degenerate)" in robust_only.evidence()


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


def test_share_above_counts_the_histogram_from_an_edge():
    edges = np.asarray(LOG10_EDGES)
    r = np.array([1e-3, 0.05, 0.1, 0.2, 0.5, 0.99, 1.0, 2.0, 50.0, 500.0, 1e4])
    counts, _ = np.histogram(np.log10(r), bins=edges)  # as the recorder makes it: [a, b) bins, "above" beyond 100
    hist = {"log10_edges": list(LOG10_EDGES), "counts": counts.tolist(), "below": 0, "above": int((r > 100).sum())}
    assert claims.share_above(hist, 0.1) == 9  # 0.1 itself lies in the bin that starts at the edge
    assert claims.share_above(hist, 1.0) == 5
    assert claims.share_above(hist, 100.0) == 2  # only the "above" count
    assert claims.share_above(hist, 1e-4) == len(r)
    with pytest.raises(ConfigError, match="threshold"):  # not an edge: the count would not be exact
        claims.share_above(hist, 0.3)


def test_c2_shows_the_paper_s_sum_convention_as_a_secondary_part():
    verdict = claims.c2(results())  # 20 % with r > 1; 60 % with r > 0.1 (r × 10 > 1)
    code, paper = verdict.parts[:2]
    assert code.primary and code.estimate.value == pytest.approx(0.2)
    assert not paper.primary and paper.estimate.value == pytest.approx(0.6) and paper.outcome == REPRODUCED
    assert "the paper's sum over the 10 logits (r × 10)" in paper.label and "(secondary)" in verdict.evidence()
    # it does not vote: no sample above 1 under the code's mean, most of them above 1 under the sum
    mean_only = claims.c2(results(training={"alp": alp_records(share=0.0, share_sum=0.6)}))
    assert [p.outcome for p in mean_only.parts[:2]] == [NOT_REPRODUCED, REPRODUCED]
    assert mean_only.outcome == NOT_REPRODUCED
    # nor does it lift an open claim: 5 % under the code's mean (its interval holds the threshold)
    open_ = claims.c2(results(training={"alp": alp_records(share=0.05, share_sum=0.6)}))
    assert [p.outcome for p in open_.parts] == [INCONCLUSIVE, REPRODUCED, REPRODUCED]
    assert open_.outcome == INCONCLUSIVE


# ---- C3: AALP-recon beats ALP under the worst case ----

def test_c3_reproduced_when_aalp_recon_is_more_robust_under_every_attack():
    res = results(evaluations={"aalp": model(aa=0.6, long=0.6, cw=0.6, square=0.6)})
    verdict = claims.c3(res)
    assert verdict.outcome == REPRODUCED and "AALP-style reconstruction" in verdict.text()


def test_c3_not_reproduced_when_aalp_recon_is_less_robust():
    assert outcome(claims.c3, results(evaluations={"aalp": model(aa=0.05)})) == NOT_REPRODUCED


def test_c3_not_reproduced_when_they_are_equal_and_inconclusive_when_equal_on_other_points():
    same = claims.c3(results())  # the same outcomes as ALP: no gain of interest, measured exactly
    assert same.outcome == NOT_REPRODUCED and same.text().startswith(f"{NOT_REPRODUCED}; {NEGLIGIBLE}; ")
    moved = claims.c3(results(evaluations={"aalp": model(offset=10)}))  # ALP's accuracies, on other points
    assert moved.outcome == INCONCLUSIVE and moved.parts[0].estimate.value == pytest.approx(0.0)


def test_c3_not_testable_for_a_degenerate_aalp_recon():
    weak = model(clean=0.15, pgd=0.1, cw=0.1, long=0.1, aa=0.1, square=0.1)
    assert outcome(claims.c3, results(evaluations={"aalp": weak})) == NOT_TESTABLE


# ---- C4: each module contributes ----

def test_c4_reproduced_when_both_ablations_are_worse():
    better = model(aa=0.6, long=0.6, cw=0.6)
    assert outcome(claims.c4, results(evaluations={"aalp": better})) == REPRODUCED


def test_c4_not_reproduced_when_dropping_a_module_helps():
    assert outcome(claims.c4, results(evaluations={"gd_only": model(aa=0.5, long=0.5)})) == NOT_REPRODUCED


def test_c4_not_reproduced_when_all_three_are_equal_and_inconclusive_when_equal_on_other_points():
    same = claims.c4(results())
    assert same.outcome == NOT_REPRODUCED and [p.note for p in same.parts] == [NEGLIGIBLE, NEGLIGIBLE]
    moved = {"gd_only": model(offset=10), "weights_only": model(offset=10)}
    assert outcome(claims.c4, results(evaluations=moved)) == INCONCLUSIVE


def test_c4_not_testable_without_the_ablations():
    verdict = claims.c4(results(drop=("gd_only", "weights_only")))
    assert verdict.outcome == NOT_TESTABLE and "not trained" in verdict.evidence()
    # one ablation missing: the other's open part leaves the claim not testable...
    verdict = claims.c4(results(drop=("gd_only",), evaluations={"weights_only": model(offset=10)}))
    assert [p.outcome for p in verdict.parts] == [NOT_TESTABLE, INCONCLUSIVE] and verdict.outcome == NOT_TESTABLE
    # ...but a module shown not to contribute rejects the claim whatever the missing one would show
    verdict = claims.c4(results(drop=("gd_only",)))
    assert [p.outcome for p in verdict.parts] == [NOT_TESTABLE, NOT_REPRODUCED] and verdict.outcome == NOT_REPRODUCED
    assert "ablation not trained in this run" in verdict.evidence()


# ---- C5: Guided Dropout concentrates the contributions ----

def test_c5_reproduced_when_gd_models_need_fewer_features():
    assert outcome(claims.c5, results(n90s={"aalp": n90(3.0), "gd_only": n90(3.0)})) == REPRODUCED


def test_c5_not_reproduced_when_gd_spreads_them():
    assert outcome(claims.c5, results(n90s={"aalp": n90(9.0), "gd_only": n90(9.0)})) == NOT_REPRODUCED


def test_c5_not_reproduced_when_gd_changes_nothing_and_inconclusive_when_it_only_adds_noise():
    same = claims.c5(results())
    assert same.outcome == NOT_REPRODUCED and same.text().startswith(f"{NOT_REPRODUCED}; {NEGLIGIBLE}")
    noise = list(np.array(n90(6.0)) + np.tile([30.0, -30.0], len(Y) // 2))  # the same mean, point by point ±30
    assert outcome(claims.c5, results(n90s={"aalp": noise, "gd_only": noise})) == INCONCLUSIVE


def test_c5_falls_back_to_aalp_recon_vs_alp_without_the_ablations():
    verdict = claims.c5(results(n90s={"aalp": n90(3.0)}, drop=("gd_only", "weights_only")))
    assert verdict.outcome == REPRODUCED and len(verdict.parts) == 1 and "ALP" in verdict.parts[0].label


# ---- C6: the ALP family loses more than PGD-AT beyond PGD-20 ----

def test_c6_reproduced_when_the_alp_family_drops_more():
    assert outcome(claims.c6, results()) == REPRODUCED  # drop 0.3 vs PGD-AT's 0.1


def test_c6_not_reproduced_when_pgd_at_drops_more():
    res = results(evaluations={"pgd_at": model(pgd=0.6, cw=0.5, long=0.4, aa=0.05, square=0.3)})
    assert outcome(claims.c6, res) == NOT_REPRODUCED


def test_c6_not_reproduced_for_equal_drops_and_inconclusive_for_equal_drops_on_other_points():
    same = {k: model(pgd=0.6, cw=0.58, long=0.55, aa=0.5, square=0.55) for k in ("alp", "aalp", "gd_only", "weights_only")}
    verdict = claims.c6(results(evaluations=same))
    assert verdict.outcome == NOT_REPRODUCED and verdict.text() == f"{NOT_REPRODUCED}; {NEGLIGIBLE}"
    moved = {k: model(pgd=0.6, cw=0.58, long=0.55, aa=0.5, square=0.55, offset=10)
             for k in ("alp", "aalp", "gd_only", "weights_only")}
    verdict = claims.c6(results(evaluations=moved))
    assert verdict.outcome == INCONCLUSIVE and all(p.outcome == INCONCLUSIVE for p in verdict.parts)


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
    assert drop.estimate.value == 0 and drop.outcome == NOT_REPRODUCED and drop.note == NEGLIGIBLE
    assert verdict.text() == f"{NOT_REPRODUCED}; {NEGLIGIBLE}"


def test_g1_requires_a_strict_drop_from_the_smallest_to_the_largest_eps():
    verdict = claims.g1(results())  # 0.9 -> 0.8 -> 0.6
    assert len(verdict.parts) == 4 * 3 and verdict.outcome == REPRODUCED
    drop = verdict.parts[2]
    assert drop.estimate.value == pytest.approx(0.6 - 0.9) and drop.outcome == REPRODUCED
    assert drop.rule == "< 0, effect of interest 1"
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
