"""advfair.evaluation: per-class statistics, spread, rank agreement, confusion, McNemar, bootstrap, the report."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from scipy import stats
from torch import nn

from advfair.evaluation import (adversarial_predictions, attack_gains, boundary_error, classwise_report,
                                confusion_matrix, mcnemar, paired_spread_difference, per_class_accuracy, predict,
                                spearman, spearman_rows, spearman_with_ci, spread, spread_rows,
                                stratified_bootstrap)

# A hand example: 3 classes x 4 points. Point 3 (class 0) and points 6, 7 (class 1) are wrong on the clean
# input but right under the attack: AA-style robust accuracy must not count them.
Y = np.array([0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2])
CLEAN = np.array([0, 0, 0, 1, 1, 1, 0, 0, 2, 2, 2, 2])
ATTACK = np.array([0, 1, 0, 0, 1, 0, 1, 1, 2, 2, 0, 1])
NAMES = ["a", "b", "c"]


@pytest.fixture(scope="module")
def hand_report():
    return classwise_report(Y, {"clean": CLEAN, "pgd": ATTACK}, NAMES, n_boot=200, seed=0)


def test_report_hand_values(hand_report):
    r = hand_report
    assert r["classes"] == NAMES and r["n_per_class"] == [4, 4, 4]
    clean, pgd = r["attacks"]["clean"], r["attacks"]["pgd"]
    assert clean["per_class"] == [0.75, 0.5, 1.0]
    assert clean["overall"] == 0.75
    assert pgd["per_class"] == [0.5, 0.25, 0.5]  # raw accuracy would give [0.75, 0.75, 0.5]
    assert pgd["overall"] == pytest.approx(5 / 12)
    assert pgd["worst_class"] == 1 and pgd["worst"] == 0.25
    assert pgd["best"] == 0.5 and pgd["gap"] == 0.25
    assert pgd["boundary_error"] == pytest.approx(4 / 12)
    assert clean["boundary_error"] == 0.0
    assert pgd["confusion"] == [[3, 1, 0], [1, 3, 0], [1, 1, 2]]
    assert clean["confusion"] == [[3, 1, 0], [2, 2, 0], [0, 0, 4]]
    # ranks [2, 1, 3] vs [2.5, 1, 2.5]: rho = 1.5 / (sqrt(2) sqrt(1.5))
    assert r["rank_agreement"]["clean|pgd"]["rho"] == pytest.approx(1.5 / math.sqrt(3))


def test_report_is_json_serialisable(hand_report):
    text = json.dumps(hand_report)
    back = json.loads(text)
    assert back["attacks"]["pgd"]["per_class"] == [0.5, 0.25, 0.5]
    assert set(back["attacks"]["pgd"]["ci"]) == {"mean", "worst", "gap", "sd", "nsd"}


def test_report_accepts_tensors(hand_report):
    r = classwise_report(torch.from_numpy(Y), {"clean": torch.from_numpy(CLEAN), "pgd": torch.from_numpy(ATTACK)},
                         tuple(NAMES), n_boot=200, seed=0)
    assert r == hand_report


def test_report_seeded():
    a = classwise_report(Y, {"clean": CLEAN, "pgd": ATTACK}, NAMES, n_boot=50, seed=1)
    b = classwise_report(Y, {"clean": CLEAN, "pgd": ATTACK}, NAMES, n_boot=50, seed=1)
    c = classwise_report(Y, {"clean": CLEAN, "pgd": ATTACK}, NAMES, n_boot=50, seed=2)
    assert a == b
    assert a["attacks"]["pgd"]["per_class_ci"] != c["attacks"]["pgd"]["per_class_ci"] or \
        a["attacks"]["pgd"]["ci"] != c["attacks"]["pgd"]["ci"]


def _random_balanced(n_per_class=32, num_classes=4, seed=0):
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(num_classes), n_per_class)
    clean = np.where(rng.random(len(y)) < 0.8, y, rng.integers(0, num_classes, len(y)))
    adv = np.where(rng.random(len(y)) < 0.5, clean, rng.integers(0, num_classes, len(y)))
    return y, clean, adv


def test_fact8_mean_of_per_class_equals_overall_on_balanced_set():
    y, clean, adv = _random_balanced(n_per_class=25, num_classes=5)
    r = classwise_report(y, {"clean": clean, "adv": adv}, list("abcde"), n_boot=20)
    for name in ("clean", "adv"):
        att = r["attacks"][name]
        assert att["mean"] == pytest.approx(att["overall"], abs=1e-12)
    # not on an unbalanced set
    y2 = np.array([0, 0, 0, 1])
    pc = per_class_accuracy(np.array([True, True, True, False]), y2, 2)
    assert pc.mean() == 0.5 and np.array([True, True, True, False]).mean() == 0.75


def test_fact9_spearman_identical_and_reversed():
    a = np.array([0.1, 0.5, 0.3, 0.9, 0.7])
    assert spearman(a, a) == pytest.approx(1.0)
    assert spearman(a, -a) == pytest.approx(-1.0)
    assert spearman(a, np.array([5, 1, 3, 0, 2])) == pytest.approx(-0.9)
    assert math.isnan(spearman(a, np.ones(5)))
    ties = np.array([1.0, 2.0, 2.0, 3.0])
    assert spearman(ties, np.arange(4.0)) == pytest.approx(stats.spearmanr(ties, np.arange(4.0)).statistic)


def test_fact10_confusion_rows_sum_to_class_counts():
    y = np.array([0, 0, 0, 1, 2, 2, 2, 2])
    rng = np.random.default_rng(0)
    preds = rng.integers(0, 3, len(y))
    clean = np.array([0, 1, 0, 1, 2, 2, 2, 0])
    r = classwise_report(y, {"clean": clean, "adv": preds}, NAMES, n_boot=10)
    for name in ("clean", "adv"):
        assert np.array(r["attacks"][name]["confusion"]).sum(1).tolist() == [3, 1, 4]
    assert np.trace(np.array(r["attacks"]["clean"]["confusion"])) == 6


def test_confusion_matrix_hand_example():
    y = np.array([0, 0, 1, 2, 2, 2])
    pred = np.array([0, 1, 1, 2, 0, 2])
    assert confusion_matrix(y, pred, 3).tolist() == [[1, 1, 0], [0, 1, 0], [1, 0, 2]]


def test_fact13_robust_accuracy_is_natural_minus_boundary_error():
    y, clean, adv = _random_balanced(n_per_class=16, num_classes=4, seed=3)  # N = 64: k/64 is exact
    r = classwise_report(y, {"clean": clean, "adv": adv}, list("abcd"), n_boot=10)
    a_nat, a_rob = r["attacks"]["clean"]["overall"], r["attacks"]["adv"]["overall"]
    r_bdy = r["attacks"]["adv"]["boundary_error"]
    assert 0 < r_bdy < a_nat
    assert a_rob == a_nat - r_bdy
    # in counts on the hand example too
    cc, ca = CLEAN == Y, (ATTACK == Y) & (CLEAN == Y)
    assert ca.sum() == cc.sum() - round(boundary_error(cc, ca) * len(Y))


def test_robust_requires_clean_correct():
    y = np.array([0, 1])
    r = classwise_report(y, {"clean": np.array([1, 1]), "adv": np.array([0, 1])}, ["a", "b"], n_boot=10)
    assert r["attacks"]["adv"]["per_class"] == [0.0, 1.0]
    assert r["attacks"]["adv"]["overall"] <= r["attacks"]["clean"]["overall"]


def test_confidence_intervals_contain_point_estimates():
    y, clean, adv = _random_balanced(n_per_class=50, num_classes=4, seed=1)
    r = classwise_report(y, {"clean": clean, "adv": adv}, list("abcd"), n_boot=300, seed=0)
    for name in ("clean", "adv"):
        att = r["attacks"][name]
        lo, hi = att["per_class_ci"]
        assert all(l <= p <= h for l, p, h in zip(lo, att["per_class"], hi))
        for key in ("mean", "sd", "gap"):
            l, h = att["ci"][key]
            assert l <= att[key] <= h, (name, key)
            assert l < h
    l, h = r["rank_agreement"]["clean|adv"]["ci"]
    assert -1 <= l <= h <= 1


def test_spearman_rows_matches_one_call_per_row():
    rng = np.random.default_rng(1)
    a = rng.integers(0, 4, size=(50, 6)).astype(float)  # small integers: many ties
    b = rng.integers(0, 4, size=(50, 6)).astype(float)
    a[3] = 2.0  # a constant row gives nan
    rows = spearman_rows(a, b)
    for i in range(len(a)):
        expected = stats.spearmanr(a[i], b[i]).statistic if i != 3 else math.nan
        assert rows[i] == pytest.approx(expected, nan_ok=True)
    fixed = np.array([3.0, 1.0, 2.0, 5.0, 4.0, 0.0])  # one fixed vector against every row
    assert spearman_rows(fixed, b) == pytest.approx([stats.spearmanr(fixed, r).statistic for r in b])


def test_spread_rows_matches_spread():
    acc = np.array([[0.2, 0.4, 0.6], [0.0, 0.0, 0.0], [0.9, 0.1, 0.5]])
    rows = spread_rows(acc)
    for i, row in enumerate(acc):
        s = spread(row)
        for key in ("mean", "worst", "gap", "sd", "nsd"):
            assert rows[key][i] == pytest.approx(s[key], nan_ok=True), key


def test_spread_population_sd():
    s = spread(np.array([0.2, 0.4, 0.6]))
    sd = math.sqrt(2 / 3) * 0.2
    assert s["mean"] == pytest.approx(0.4)
    assert s["sd"] == pytest.approx(sd)
    assert s["nsd"] == pytest.approx(sd / 0.4)
    assert s["worst"] == pytest.approx(0.2) and s["worst_class"] == 0
    assert s["best"] == pytest.approx(0.6) and s["best_class"] == 2
    assert s["gap"] == pytest.approx(0.4)
    assert math.isnan(spread(np.zeros(3))["nsd"])


def test_per_class_accuracy_and_boundary_error():
    y = np.array([0, 0, 1, 1, 1])
    correct = np.array([True, False, True, True, False])
    assert per_class_accuracy(correct, y, 2).tolist() == pytest.approx([0.5, 2 / 3])
    cc = np.array([True, True, False, True])
    ca = np.array([True, False, False, False])
    assert boundary_error(cc, ca) == 0.5


def test_mcnemar_hand_examples():
    a = np.array([True] * 5 + [True] * 3 + [False] * 2)
    b = np.array([False] * 5 + [True] * 3 + [False] * 2)
    res = mcnemar(a, b)
    assert res["only_a_correct"] == 5 and res["only_b_correct"] == 0
    assert res["p_value"] == pytest.approx(2 * 0.5 ** 5)
    assert mcnemar(b, a)["only_b_correct"] == 5
    assert mcnemar(a, a) == {"only_a_correct": 0, "only_b_correct": 0, "p_value": 1.0}
    # b = 3, c = 1: two-sided exact binomial p = (1 + 4 + 4 + 1) / 16
    a2 = np.array([True, True, True, False, True])
    b2 = np.array([False, False, False, True, True])
    assert mcnemar(a2, b2)["p_value"] == pytest.approx(10 / 16)


def test_stratified_bootstrap_keeps_class_sizes():
    y = np.array([2, 0, 1, 0, 2, 2, 1, 0, 0])
    boot = stratified_bootstrap(y, 50, seed=0)
    assert boot.shape == (50, 9) and boot.dtype == np.int64
    for row in boot:
        assert np.array_equal(y[row], y)
    assert np.array_equal(boot, stratified_bootstrap(y, 50, seed=0))
    assert not np.array_equal(boot, stratified_bootstrap(y, 50, seed=1))
    assert len(np.unique(boot[:, 1])) > 1  # actually resamples


def test_attack_gains_hand_example():
    report = {"attacks": {"weak": {"per_class": [0.8, 0.5, 0.0]}, "strong": {"per_class": [0.6, 0.5, 0.0]}}}
    g = attack_gains(report, "weak", "strong")
    assert g["weak"] == "weak" and g["strong"] == "strong"
    assert g["absolute"] == pytest.approx([0.2, 0.0, 0.0])
    assert g["relative"][:2] == pytest.approx([0.25, 0.0])
    assert math.isnan(g["relative"][2])
    # ranks [3, 1.5, 1.5] vs [3, 2, 1]
    assert g["rho_absolute_vs_weak"] == pytest.approx(1.5 / math.sqrt(3))
    json.dumps(g)


def test_paired_spread_difference():
    y, clean, _ = _random_balanced(n_per_class=20, num_classes=3)
    correct = clean == y
    same = paired_spread_difference(y, correct, correct, 3, n_boot=50)
    assert same["difference"] == 0.0 and same["ci"] == [0.0, 0.0] and same["p_not_positive"] == 1.0
    y2 = np.repeat([0, 1], 4)
    a = np.ones(8, dtype=bool)
    b = np.array([True, False, True, False, True, True, True, True])
    res = paired_spread_difference(y2, a, b, 2, stat="sd", n_boot=200)
    assert res["difference"] == pytest.approx(0.25)  # per class [0.5, 1]: population SD 0.25
    assert res["ci"][0] <= 0.25 <= res["ci"][1]
    gap = paired_spread_difference(y2, a, b, 2, stat="gap", n_boot=20)
    assert gap["difference"] == pytest.approx(0.5)
    reverse = paired_spread_difference(y2, b, a, 2, stat="sd", n_boot=200)
    assert reverse["difference"] == pytest.approx(-0.25) and reverse["p_not_positive"] == 1.0


def test_spearman_with_ci():
    y = np.repeat(np.arange(4), 10)
    acc = np.array([0.2, 0.4, 0.6, 0.8])
    correct = np.concatenate([np.arange(10) < 10 * a for a in acc])
    res = spearman_with_ci(np.array([1.0, 2.0, 3.0, 4.0]), correct, y, n_boot=50)
    assert res["rho"] == pytest.approx(1.0)
    assert res["ci"][1] == pytest.approx(1.0)
    assert spearman_with_ci(np.array([4.0, 3.0, 2.0, 1.0]), correct, y, n_boot=5)["rho"] == pytest.approx(-1.0)


class _Counting(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.lin = nn.Linear(4, 3)
        self.bn = nn.BatchNorm1d(3)
        self.sizes = []

    def forward(self, x):
        self.sizes.append(len(x))
        return self.bn(self.lin(x))


def test_predict_batches_and_restores_mode():
    model = _Counting().train()
    x = torch.randn(7, 4)
    out = predict(model, x, batch_size=3)
    assert model.training
    assert model.sizes == [3, 3, 1]
    assert out.dtype == torch.int64 and out.shape == (7,)
    model.eval()
    with torch.no_grad():
        assert torch.equal(out, model(x).argmax(1))


def test_adversarial_predictions_batches():
    model = _Counting().eval()
    x, y = torch.randn(5, 4), torch.arange(5) % 3
    seen = []

    def attack(m, xb, yb):
        seen.append((len(xb), yb.tolist()))
        return -xb

    preds = adversarial_predictions(model, x, y, attack, batch_size=2)
    assert seen == [(2, [0, 1]), (2, [2, 0]), (1, [1])]
    with torch.no_grad():
        assert torch.equal(preds, model(-x).argmax(1))


def test_rank_agreement_of_two_evaluations():
    from advfair.evaluation import rank_agreement

    y = np.repeat(np.arange(4), 10)
    a = np.concatenate([np.arange(10) < k for k in (2, 4, 6, 8)])
    res = rank_agreement(a, a, y, n_boot=30)
    assert res["rho"] == pytest.approx(1.0)
    b = np.concatenate([np.arange(10) < k for k in (8, 6, 4, 2)])
    assert rank_agreement(a, b, y, n_boot=5)["rho"] == pytest.approx(-1.0)


def test_interval_of_all_nan_resamples_is_nan_without_a_warning():
    import warnings

    from advfair.evaluation import _interval
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        lo, hi = _interval(np.full(20, np.nan))
        assert math.isnan(lo) and math.isnan(hi)
        assert _interval(np.array([0.0, 1.0, np.nan, 0.5])) == pytest.approx([0.025, 0.975])
