"""advfair.evaluation: per-class statistics, spread, rank agreement, confusion, McNemar, bootstrap, the report."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from scipy import stats
from torch import nn

from advfair.evaluation import (AttackSpec, Evaluation, Points, Protocol, attack_gains, attack_mcnemar,
                                bootstrap_per_class, boundary_error, class_differences, classwise_report,
                                compare_attacks, compare_models, confusion_matrix, evaluate, evaluation_statistic,
                                interval, mcnemar, paired_difference, paired_statistic, per_class_accuracy, predict,
                                spearman, spearman_rows, spread, spread_rows, stratified_bootstrap)
from advfair.evaluation.metrics import spearman_rows_finite
from advfair.evaluation.protocol import in_batches
from advfair.evaluation.paired import gap, mean, nsd, of_classes, sd, worst
from advfair.tables import class_difference_table
from advfair.validation import ConfigError

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
    g = attack_gains([0.8, 0.5, 0.0], [0.6, 0.5, 0.0])
    assert set(g) == {"absolute", "relative"}
    assert g["absolute"] == pytest.approx([0.2, 0.0, 0.0])
    assert g["relative"][:2] == pytest.approx([0.25, 0.0])
    assert math.isnan(g["relative"][2])  # undefined where the weak attack already breaks the whole class
    # ranks [3, 1.5, 1.5] vs [3, 2, 1]
    assert spearman(g["absolute"], [0.8, 0.5, 0.0]) == pytest.approx(1.5 / math.sqrt(3))
    json.dumps(g)


def _evaluation(y, preds, classes=None, subset=None, on_subset=()):
    """An Evaluation of hand-given predictions ("clean" among them)."""
    y = np.asarray(y)
    classes = classes or tuple(str(c) for c in range(int(y.max()) + 1))
    subset = np.arange(len(y)) if subset is None else np.asarray(subset)
    return Evaluation(tuple(classes), y, subset, {k: np.asarray(v) for k, v in preds.items()}, frozenset(on_subset))


def _wrong(y, correct, num_classes):
    """Predictions that are right exactly where `correct` holds."""
    return np.where(correct, y, (y + 1) % num_classes)


def test_paired_spread_difference():
    """compare_attacks / paired_difference with the SD (and gap) of per-class accuracy: B minus A."""
    y, clean, _ = _random_balanced(n_per_class=20, num_classes=3)
    correct = clean == y
    same = paired_difference(y, correct, correct, sd, num_classes=3, n_boot=50)
    assert same.value == 0.0 and same.ci == (0.0, 0.0) and same.n == len(y)
    y2 = np.repeat([0, 1], 4)
    a = np.ones(8, dtype=bool)
    b = np.array([True, False, True, False, True, True, True, True])
    res = paired_difference(y2, a, b, sd, num_classes=2, n_boot=200)
    assert res.value == pytest.approx(0.25)  # per class [0.5, 1]: population SD 0.25
    assert res.ci[0] <= 0.25 <= res.ci[1]
    assert paired_difference(y2, a, b, gap, num_classes=2, n_boot=20).value == pytest.approx(0.5)
    reverse = paired_difference(y2, b, a, sd, num_classes=2, n_boot=200)
    assert reverse.value == pytest.approx(-0.25) and reverse.ci[1] <= 0
    # the same numbers from an evaluation with two attacks on the same points
    e = _evaluation(y2, {"clean": y2, "a": _wrong(y2, a, 2), "b": _wrong(y2, b, 2)})
    via_attacks = compare_attacks(e, "a", "b", sd, n_boot=200)
    assert via_attacks == res
    assert compare_attacks(e, "b", "a", sd, n_boot=200) == reverse


def test_paired_statistic_is_paired_and_seeded():
    y = np.repeat(np.arange(3), 10)
    rng = np.random.default_rng(0)
    a, b = rng.random(30) < 0.6, rng.random(30) < 0.4
    est = paired_statistic(y, [a, b], lambda p, q: mean(p) - mean(q), num_classes=3, n_boot=300, seed=4)
    assert est.value == pytest.approx(per_class_accuracy(a, y, 3).mean() - per_class_accuracy(b, y, 3).mean())
    assert est == paired_statistic(y, [a, b], lambda p, q: mean(p) - mean(q), num_classes=3, n_boot=300, seed=4)
    # paired: one resample for both vectors, so the difference of a vector with itself is exactly 0 in every resample
    zero = paired_statistic(y, [a, a], lambda p, q: mean(p) - mean(q), num_classes=3, n_boot=300, seed=4)
    assert zero.value == 0.0 and zero.ci == (0.0, 0.0)
    # the bootstrap samples are those of bootstrap_per_class with the same seed
    boot = bootstrap_per_class(y, a, 300, 4, 3)
    assert est.ci[0] <= est.value <= est.ci[1]
    assert paired_statistic(y, [a], worst, num_classes=3, n_boot=300, seed=4).ci == tuple(interval(boot.min(1)))


def test_statistics_of_per_class_vectors_hand_values():
    acc = np.array([[0.2, 0.4, 0.6], [0.0, 0.0, 0.0]])
    assert mean(acc) == pytest.approx([0.4, 0.0])
    assert worst(acc) == pytest.approx([0.2, 0.0])
    assert gap(acc) == pytest.approx([0.4, 0.0])
    assert sd(acc) == pytest.approx([math.sqrt(2 / 3) * 0.2, 0.0])
    with np.errstate(invalid="ignore", divide="ignore"):
        n = nsd(acc)
    assert n[0] == pytest.approx(math.sqrt(2 / 3) * 0.2 / 0.4) and math.isnan(n[1])
    assert of_classes([0, 2])(acc) == pytest.approx([0.4, 0.0])
    assert of_classes([1])(acc[0]) == pytest.approx(0.4)


def test_bootstrap_per_class_takes_the_class_count_from_the_caller():
    y = np.array([0, 0, 1, 1, 2, 2])
    correct = np.array([True, False, True, True, False, False])
    boot = bootstrap_per_class(y, correct, 40, 0, 3)
    assert boot.shape == (40, 3)
    assert np.all((boot[:, 1] == 1.0) & (boot[:, 2] == 0.0))  # constant classes stay constant
    assert set(np.unique(boot[:, 0])) <= {0.0, 0.5, 1.0}
    assert np.array_equal(boot, bootstrap_per_class(y, correct, 40, 0, 3))
    with pytest.raises(TypeError):
        bootstrap_per_class(y, correct, 40, 0)  # num_classes is required: never guessed from the labels


def test_spearman_with_ci():
    """A fixed per-class vector (e.g. weight norms) against per-class accuracy, with a bootstrap interval."""
    y = np.repeat(np.arange(4), 10)
    acc = np.array([0.2, 0.4, 0.6, 0.8])
    correct = np.concatenate([np.arange(10) < 10 * a for a in acc])
    e = _evaluation(y, {"clean": _wrong(y, correct, 4)})
    values = np.array([1.0, 2.0, 3.0, 4.0])
    res = evaluation_statistic(e, [e.correct("clean")], lambda pc: spearman_rows(values, pc), n_boot=50)
    assert res.value == pytest.approx(1.0)
    assert res.ci[1] == pytest.approx(1.0)
    reverse = evaluation_statistic(e, [e.correct("clean")], lambda pc: spearman_rows(values[::-1], pc), n_boot=5)
    assert reverse.value == pytest.approx(-1.0)


def test_spearman_rows_finite_ignores_non_finite_entries():
    a = np.array([1.0, 2.0, np.nan, 3.0, 4.0])
    b = np.array([1.0, 2.0, 5.0, 3.0, np.inf])
    assert float(spearman_rows_finite(a, b)) == pytest.approx(1.0)  # entries 0, 1 and 3 only
    assert math.isnan(float(spearman_rows_finite(np.array([1.0, np.nan, 2.0]), np.array([1.0, 2.0, 3.0]))))
    assert math.isnan(spearman(a, b))  # plain spearman_rows is nan with a nan entry
    rows = spearman_rows_finite(np.stack([a, a[::-1]]), b)
    assert rows.shape == (2,) and rows[0] == pytest.approx(1.0)


def test_attack_mcnemar_and_compare_models():
    y = np.repeat(np.arange(2), 5)
    clean = y.copy()
    a = np.array([1, 1, 1, 1, 1, 1, 1, 1, 1, 1], dtype=bool)
    b = np.array([0, 0, 0, 0, 0, 1, 1, 1, 1, 1], dtype=bool)
    e = _evaluation(y, {"clean": clean, "a": _wrong(y, a, 2), "b": _wrong(y, b, 2)})
    assert attack_mcnemar(e, "a", "b") == mcnemar(a, b)
    assert attack_mcnemar(e, "a", "b")["only_a_correct"] == 5
    other = _evaluation(y, {"clean": clean, "a": _wrong(y, b, 2)})
    diff = compare_models(e, other, "a", mean, n_boot=100)
    assert diff.value == pytest.approx(-0.5)  # B's per-class [0, 1] minus A's [1, 1]
    assert diff == compare_models(e, e, "a", mean, attack_b="b", n_boot=100)
    with pytest.raises(ConfigError, match="evaluations="):
        compare_models(e, _evaluation(y[::-1], {"clean": y[::-1], "a": y[::-1]}), "a", mean)


def test_class_differences_are_per_class_paired_differences():
    y = np.repeat(np.arange(2), 5)
    a = np.ones(10, dtype=bool)
    b = np.array([0, 0, 0, 0, 0, 1, 1, 1, 1, 1], dtype=bool)  # class 0 lost entirely, class 1 unchanged
    e, other = (_evaluation(y, {"clean": y.copy(), "pgd": _wrong(y, c, 2)}) for c in (a, b))
    diffs = class_differences(e, other, "pgd", n_boot=100)
    assert [d.value for d in diffs] == [-1.0, 0.0]
    assert diffs[0].ci == (-1.0, -1.0) and diffs[1].ci == (0.0, 0.0)  # every point of the class moved the same way
    table = class_difference_table(["cat", "dog"], "B − A", diffs)
    assert table.to_dict("index") == {"cat": {"B − A": "-100.0 [-100.0, -100.0]", "interval excludes 0": "yes"},
                                      "dog": {"B − A": "0.0 [0.0, 0.0]", "interval excludes 0": ""}}


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


def test_evaluate_attacks_in_batches_and_predicts_with_the_model():
    model = _Counting().eval()
    x, y = torch.randn(5, 4), torch.arange(5) % 3
    fgsm = AttackSpec(kind="fgsm", steps=1)
    x_adv, warnings = fgsm.run(model, x, y, eps=0.1, seed=0, batch_size=2)
    assert warnings == [] and model.sizes == [2, 2, 1]  # one gradient per batch
    model.sizes.clear()
    e = evaluate(model, Points.of(x, y, ["a", "b", "c"]), Protocol(0.1, {"fgsm": fgsm}, batch_size=2))
    assert model.sizes == [2, 2, 1] + [2, 2, 1] + [2, 2, 1]  # clean predictions, the attack, its predictions
    with torch.no_grad():
        assert np.array_equal(e.predicted("fgsm"), model(x_adv).argmax(1).numpy())
        assert np.array_equal(e.predicted("clean"), model(x).argmax(1).numpy())


def test_a_sample_of_batches_is_attacked_as_in_the_whole_evaluation():
    """The recheck's sample (`batches`): each sampled batch draws the random start it draws in the whole run, so
    its predictions are the whole run's; every other point reads -1 (not attacked)."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.ReLU(), torch.nn.Linear(16, 3)).eval()
    x, y = torch.rand(11, 4), torch.arange(11) % 3
    protocol = Protocol(0.3, {"pgd": AttackSpec(kind="pgd", steps=3, alpha=0.1)}, batch_size=3)
    spec = protocol.attacks["pgd"]
    full, _ = spec.run(model, x, y, eps=0.3, seed=0, batch_size=3)
    sampled, _ = spec.run(model, x, y, eps=0.3, seed=0, batch_size=3, batches=[1, 3])
    assert torch.equal(sampled[3:6], full[3:6]) and torch.equal(sampled[9:], full[9:])  # the same starts and steps
    assert not sampled[:3].any()  # batch 0 was never attacked
    points = Points.of(x, y, ["a", "b", "c"])
    whole = evaluate(model, points, protocol).predicted("pgd")
    part = evaluate(model, points, protocol, batches=[1, 3]).predicted("pgd")
    on = np.isin(np.arange(11), [3, 4, 5, 9, 10])
    assert np.array_equal(part[on], whole[on]) and (part[~on] == -1).all()
    assert np.array_equal(in_batches(11, 3, [1, 3]), on)


def test_rank_agreement_of_two_evaluations():
    from advfair.evaluation import rank_agreement

    y = np.repeat(np.arange(4), 10)
    a = np.concatenate([np.arange(10) < k for k in (2, 4, 6, 8)])
    b = np.concatenate([np.arange(10) < k for k in (8, 6, 4, 2)])
    ea = _evaluation(y, {"clean": y, "pgd": _wrong(y, a, 4)})
    eb = _evaluation(y, {"clean": y, "pgd": _wrong(y, b, 4), "cw": _wrong(y, a, 4)})
    res = rank_agreement(ea, "pgd", ea, "pgd", n_boot=30)
    assert res.value == pytest.approx(1.0)
    assert rank_agreement(ea, "pgd", eb, "pgd", n_boot=5).value == pytest.approx(-1.0)
    assert rank_agreement(ea, "pgd", eb, "cw", n_boot=5).value == pytest.approx(1.0)
    assert rank_agreement(eb, "pgd", eb, "cw", n_boot=5).value == pytest.approx(-1.0)  # two attacks of one model


def test_interval_of_all_nan_resamples_is_nan_without_a_warning():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        lo, hi = interval(np.full(20, np.nan))
        assert math.isnan(lo) and math.isnan(hi)
        assert interval(np.array([0.0, 1.0, np.nan, 0.5])) == pytest.approx([0.025, 0.975])


def test_permutation_spearman():
    from advfair.evaluation import permutation_spearman

    a = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    res = permutation_spearman(a, a, n_perm=2000, seed=0)
    assert res["rho"] == pytest.approx(1.0)
    # only the identity permutation (1 of 720) reaches rho = 1: p = (hits + 1) / (n_perm + 1)
    assert res["p_greater"] < 0.01 and res["p_less"] == 1.0
    reverse = permutation_spearman(a, a[::-1], n_perm=2000, seed=0)
    assert reverse["rho"] == pytest.approx(-1.0) and reverse["p_less"] < 0.01 and reverse["p_greater"] == 1.0
    assert permutation_spearman(a, a, n_perm=2000, seed=0) == res  # seeded
    flat = permutation_spearman(a, np.ones(6))
    assert math.isnan(flat["rho"]) and flat["p_greater"] == 1.0 and flat["p_less"] == 1.0


def test_intervals_of_a_perfect_and_an_empty_class_stay_inside_zero_and_one():
    """A class at 20 of 20 gets [1, 1] exactly (integer counts divided once: never 1.0000000000000002), and a
    class at 0 of 20 gets [0, 0]; every interval of a mixed model lies in [0, 1]."""
    y = np.repeat(np.arange(3), 20)
    rng = np.random.default_rng(0)
    mixed = np.where(rng.random(y.size) < 0.5, y, (y + 1) % 3)
    preds = {"clean": np.where(y == 2, (y + 1) % 3, y), "pgd": mixed}
    report = classwise_report(y, preds, ["a", "b", "c"], n_boot=200, seed=0)
    low, high = report["attacks"]["clean"]["per_class_ci"]
    assert (low[0], high[0]) == (1.0, 1.0) and (low[2], high[2]) == (0.0, 0.0)
    for attack in report["attacks"].values():
        bounds = [*np.ravel(attack["per_class_ci"]), *(v for k in ("mean", "worst", "gap") for v in attack["ci"][k])]
        assert all(0.0 <= b <= 1.0 for b in bounds)
