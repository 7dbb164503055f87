"""ALP (exact core), the AALP-style reconstruction and the contribution statistics: every unit-testable fact of
the spec (papers/aalp.md §8, with the precisions of §9), with hand-computed values on tiny inputs."""
from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from advfair.contributions import class_contributions, concentration, contribution_statistics, contributions, linear_head
from advfair.evaluation.paired import matched_difference, mean_estimate, paired_mean_difference, proportion_estimate
from advfair.models import DATASET_STATS, Classifier, LinearHead, Normalize, build_model, for_attacks, mnist_cnn_body
from advfair.objectives import aalp as aalp_module
from advfair.objectives.aalp import (AALPObjective, alp_objective, alp_terms, dropout_stats, guided_dropout,
                                     guided_dropout_mask, sample_weights)
from advfair.objectives.alp import alp_loss, least_likely_class, pairing_term, pgd_ll, training_attack
from advfair.objectives.alp_records import RatioRecorder, pixel_keys
from advfair.trainer import TrainConfig, train
from advfair.validation import ConfigError

EPS, ALPHA, STEPS = 0.3, 0.1, 2


def tiny_model(seed: int = 0, width: int = 2, features: int = 8) -> nn.Module:
    torch.manual_seed(seed)
    body, d = mnist_cnn_body(1, width, 28, features)
    return Classifier(Normalize(*DATASET_STATS["mnist"]), body, LinearHead(d, 10))


def batch(n: int = 6, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(0, 256, (n, 1, 28, 28), generator=g).float() / 255
    return x, torch.arange(n) % 10


def grads(model: nn.Module, loss: torch.Tensor) -> list[torch.Tensor]:
    return [g.clone() for g in torch.autograd.grad(loss, [p for p in model.parameters()])]


# ---- 1. contributions decompose the logits ----

@pytest.mark.parametrize("build", [lambda: tiny_model(),
                                   lambda: build_model("small_cnn", dataset="mnist", num_classes=10, in_channels=1, width=2)])
def test_contributions_decompose_every_logit_exactly(build):
    model = build().eval()
    x, _ = batch()
    with torch.no_grad():
        h = model.features(x)
        z = model(x)
        c = contributions(model.head, h)
    assert c.shape == (6, 10, h.shape[1])
    torch.testing.assert_close(c.sum(2) + model.head.bias, z, rtol=1e-5, atol=1e-5)
    k = torch.tensor([3, 1, 4, 1, 5, 9])
    torch.testing.assert_close(class_contributions(model.head, h, k), c[torch.arange(6), k])


def test_contribution_statistics_run_in_eval_mode_and_restore_the_mode():
    model = tiny_model().train()
    x, _ = batch(12)
    out = contribution_statistics(model, x, batch_size=5)
    assert model.training and out["decomposition_error"] < 1e-4
    assert set(out["per_point"]) == {"top5", "top10", "n90", "gini", "active"} and len(out["per_point"]["gini"]) == 12
    assert len(out["profile"]) == 8


def test_a_model_without_a_linear_last_layer_is_an_error_naming_the_model():
    cosine = build_model("small_cnn", dataset="mnist", num_classes=10, in_channels=1, width=2, head="cosine")
    with pytest.raises(ConfigError, match="model='Classifier with head CosineHead'"):
        linear_head(cosine)
    with pytest.raises(ConfigError, match="linear last layer"):
        contribution_statistics(cosine, batch()[0])
    objective = alp_objective(eps=EPS, alpha=ALPHA, steps=1, gd=True)
    with pytest.raises(ConfigError, match="model="):
        objective(cosine.train(), *batch())


# ---- 10. concentration statistics ----

def test_concentration_by_hand():
    c = torch.tensor([[3.0, -1.0, 0.0, 0.0], [1.0, 1.0, 1.0, 1.0]])
    s = concentration(c, top=(1, 2, 3), mass=0.9)
    torch.testing.assert_close(s["top1"], torch.tensor([0.75, 0.25], dtype=torch.float64))
    torch.testing.assert_close(s["top2"], torch.tensor([1.0, 0.5], dtype=torch.float64))
    torch.testing.assert_close(s["n90"], torch.tensor([2.0, 4.0], dtype=torch.float64))
    # Gini of (0.75, 0.25, 0, 0): sum |a_i - a_j| / (2 d sum a) = 5 / 8; uniform: 0
    torch.testing.assert_close(s["gini"], torch.tensor([0.625, 0.0], dtype=torch.float64))
    torch.testing.assert_close(s["active"], torch.tensor([2.0, 4.0], dtype=torch.float64))
    positive = concentration(c, sign="positive", top=(1,))
    assert positive["top1"][0] == 1.0 and positive["gini"][0] == pytest.approx(0.75)  # (d - 1) / d for one feature


def test_top_m_share_lies_in_0_1_and_never_decreases_in_m_and_gini_is_0_for_uniform():
    c = torch.randn(50, 16, generator=torch.Generator().manual_seed(0))
    s = concentration(c, top=tuple(range(1, 17)))
    shares = torch.stack([s[f"top{m}"] for m in range(1, 17)], 1)
    assert ((shares >= 0) & (shares <= 1 + 1e-12)).all() and (shares.diff(dim=1) >= -1e-12).all()
    assert torch.allclose(shares[:, -1], torch.ones(50, dtype=torch.float64))
    assert concentration(torch.full((3, 7), 2.5))["gini"].abs().max() < 1e-12
    assert torch.isnan(concentration(torch.zeros(1, 4))["gini"]).all()  # no mass: undefined


def test_bad_contribution_sign_is_an_error():
    with pytest.raises(ConfigError, match="contrib_sign='signed'"):
        concentration(torch.ones(1, 3), sign="signed")


def test_paired_summaries():
    y = np.repeat(np.arange(2), 5)
    a, b = np.arange(10.0), np.arange(10.0) + 2
    est = paired_mean_difference(y, a, b, n_boot=50)
    assert est.value == 2.0 and est.ci == (2.0, 2.0) and est.n == 10
    assert mean_estimate(y, a, n_boot=50).value == 4.5
    p = proportion_estimate(0, 1000)
    assert p.value == 0 and p.ci[0] == 0 and 0.003 < p.ci[1] < 0.004  # Clopper-Pearson: 1 - 0.025^(1/1000)


# ---- 2. Guided Dropout ----

SCORES = torch.tensor([[5.0, 1.0, 4.0, 2.0, 3.0]])


def test_guided_dropout_with_p_0_is_the_identity():
    h = torch.rand(3, 5)
    for mode in ("drop_low", "drop_high", "prob"):
        out, mask = guided_dropout(h, torch.rand(3, 5), mode=mode, p=0.0, rescale=True)
        assert out is h and (mask == 1).all()


def test_drop_low_keeps_the_d_minus_floor_pd_highest_scores_and_drop_high_the_complement_ranking():
    # d = 5, p = 0.4: floor(p d) = 2 features go
    assert guided_dropout_mask(SCORES, mode="drop_low", p=0.4).tolist() == [[1, 0, 1, 0, 1]]
    assert guided_dropout_mask(SCORES, mode="drop_high", p=0.4).tolist() == [[0, 1, 0, 1, 1]]
    # p = 0.3: floor(1.5) = 1
    assert guided_dropout_mask(SCORES, mode="drop_low", p=0.3).tolist() == [[1, 0, 1, 1, 1]]
    scores = torch.randn(20, 128, generator=torch.Generator().manual_seed(0))
    for p in (0.1, 0.3, 0.5):
        keep = guided_dropout_mask(scores, mode="drop_low", p=p).bool()
        assert (keep.sum(1) == 128 - math.floor(p * 128)).all()
        kept_min = torch.where(keep, scores, torch.inf).min(1).values
        dropped_max = torch.where(keep, -torch.inf, scores).max(1).values
        assert (kept_min > dropped_max).all()  # exactly the highest-scoring ones
        high = guided_dropout_mask(scores, mode="drop_high", p=p).bool()
        assert (high.sum(1) == 128 - math.floor(p * 128)).all()
        assert (torch.where(high, scores, -torch.inf).max(1).values < torch.where(high, torch.inf, scores).min(1).values).all()


def test_guided_dropout_among_the_active_features():
    h = torch.tensor([[5.0, 0.0, 4.0, 0.0, 3.0, 2.0]])  # four active features
    scores = h * torch.tensor([1.0, 1.0, 1.0, 1.0, 1.0, 1.0])
    out, mask = guided_dropout(h, scores, mode="drop_low", p=0.3, among="all")
    assert mask.tolist() == [[1, 1, 1, 0, 1, 1]] and torch.equal(out, h)  # floor(1.8) = 1: a feature that is zero
    out, mask = guided_dropout(h, scores, mode="drop_low", p=0.3, among="active")  # floor(1.2) = 1 of the 4 active
    assert mask.tolist() == [[1, 0, 1, 0, 1, 0]] and out.tolist() == [[5.0, 0.0, 4.0, 0.0, 3.0, 0.0]]
    out, mask = guided_dropout(h, scores, mode="drop_low", p=0.5, among="active")  # floor(2) = 2 of the 4 active
    assert out.tolist() == [[5.0, 0.0, 4.0, 0.0, 0.0, 0.0]]
    out, _ = guided_dropout(h, scores, mode="drop_high", p=0.5, among="active")
    assert out.tolist() == [[0.0, 0.0, 0.0, 0.0, 3.0, 2.0]]


@pytest.mark.parametrize("p", [0.1, 0.3, 0.5])
def test_spec_8_2_drop_low_keeps_d_minus_floor_pd_features_with_gd_among_all(p, monkeypatch):
    """Spec §8.2 with the literal reading, gd_among="all": on sparse, ReLU-like features too, each sample keeps
    exactly d − ⌊p·d⌋ of its d features, the highest-scoring ones (zeros included in the ranking)."""
    g = torch.Generator().manual_seed(0)
    h = torch.relu(torch.randn(16, 40, generator=g))  # about half of the entries exactly zero
    scores = torch.randn(16, 40, generator=g).abs() * h
    out, mask = guided_dropout(h, scores, mode="drop_low", p=p, among="all")
    keep = mask.bool()
    assert (keep.sum(1) == 40 - math.floor(p * 40)).all()
    assert (torch.where(keep, scores, torch.inf).min(1).values >= torch.where(keep, -torch.inf, scores).max(1).values).all()
    assert torch.equal(out, h * mask)
    torch.testing.assert_close(mask, guided_dropout_mask(scores, mode="drop_low", p=p))  # "all" is the plain mask
    # the objective passes gd_among="all" through: the same kept count on its own features
    model, (x, y) = tiny_model(features=40).train(), batch()
    objective = alp_objective(eps=EPS, alpha=ALPHA, steps=1, gd=True, gd_p=p, gd_among="all")
    seen = []
    original = aalp_module.guided_dropout

    def spy(*args, **kwargs):
        out = original(*args, **kwargs)
        seen.append((kwargs["among"], out[1]))
        return out

    monkeypatch.setattr(aalp_module, "guided_dropout", spy)
    objective(model, x, y)
    assert seen[0][0] == "all" and (seen[0][1].sum(1) == 40 - math.floor(p * 40)).all()


def test_the_dropped_share_counts_only_features_that_were_active():
    # d = 10, p = 0.3, gd_among="active": rows with 3, 7, 4 and 5 active features lose floor(0.3 n) = 0, 2, 1, 1
    # of them; the mask also zeroes the inactive features, which must not count as dropped (the earlier statistic,
    # (1 − mask) over d, gave 70, 50, 70 and 60 %)
    h = torch.zeros(4, 10)
    for row, n in enumerate((3, 7, 4, 5)):
        h[row, :n] = torch.arange(n, 0, -1, dtype=torch.float32)
    out, mask = guided_dropout(h, h, mode="drop_low", p=0.3, among="active")
    active = h != 0
    assert (active & (mask == 0)).sum(1).tolist() == [0, 2, 1, 1]
    assert ((1 - mask).mean(1) * 100).round().tolist() == [70, 50, 70, 60]  # what the old statistic reported
    stats = dropout_stats(h, h.abs(), mask, b=2)  # rows 0, 1: clean halves of samples 0, 1; rows 2, 3: adversarial
    per_row = torch.tensor([0 / 3, 2 / 7, 1 / 4, 1 / 5])
    torch.testing.assert_close(stats["gd_dropped_of_active"], 0.5 * (per_row[:2] + per_row[2:]))
    torch.testing.assert_close(stats["gd_active_share"], torch.tensor([(0.3 + 0.4) / 2, (0.7 + 0.5) / 2]))
    assert "gd_dropped_share" not in stats
    # a row without any active feature drops nothing (no division by zero)
    empty = dropout_stats(torch.zeros(2, 10), torch.zeros(2, 10), torch.zeros(2, 10), b=1)
    assert empty["gd_dropped_of_active"].tolist() == [0.0] and empty["gd_dropped_mass"].tolist() == [0.0]


def test_rescale_multiplies_the_kept_features_by_exactly_1_over_1_minus_p():
    h = torch.rand(4, 5, generator=torch.Generator().manual_seed(0)) + 0.1
    scores = torch.rand(4, 5, generator=torch.Generator().manual_seed(1))
    for p in (0.2, 0.5):
        plain, mask = guided_dropout(h, scores, mode="drop_low", p=p)
        scaled, _ = guided_dropout(h, scores, mode="drop_low", p=p, rescale=True)
        assert torch.equal(scaled, h * mask * (1 / (1 - p))) and torch.equal(plain, h * mask)


def test_prob_mode_never_drops_the_top_feature_and_drops_p_on_average():
    scores = torch.randn(400, 64, generator=torch.Generator().manual_seed(0))
    torch.manual_seed(123)  # not the scores' seed: their normals come from the same uniform stream
    keep = guided_dropout_mask(scores, mode="prob", p=0.3)
    top = scores.argmax(1)
    assert keep[torch.arange(400), top].all()
    assert abs(1 - keep.mean().item() - 0.3) < 0.01


# ---- 3. eval mode: Guided Dropout never acts ----

def test_eval_mode_forward_passes_are_bit_identical_after_guided_dropout_training():
    model = tiny_model().train()
    x, y = batch()
    objective = alp_objective(eps=EPS, alpha=ALPHA, steps=STEPS, gd=True, gd_mode="prob", gd_p=0.5, weight_rule="ratio")
    objective(model, x, y).loss.backward()
    model.eval()
    with torch.no_grad():
        first, second = model(x), model(x)
        direct = model.head(model.features(x))
    assert torch.equal(first, second) and torch.equal(first, direct)


# ---- 4, 5. sample weights ----

def test_detached_weights_give_the_gradient_of_the_same_numbers_as_constants():
    model = tiny_model().train()
    x, y = batch()
    torch.manual_seed(3)
    x_adv = training_attack(model, x, y, eps=EPS, alpha=ALPHA, steps=STEPS)
    for rule in ("ratio", "correct", "softmax"):
        logits = model(torch.cat([x, x_adv]))
        l_cls, l_lp = alp_terms(logits, y, 0.1)
        w = sample_weights(rule, l_cls, l_lp, 0.5, adv_correct=logits[6:].argmax(1) == y)
        assert not w.requires_grad
        from_rule = grads(model, (l_cls + 0.5 * w * l_lp).mean())
        constant = torch.tensor(w.tolist())
        logits = model(torch.cat([x, x_adv]))
        l_cls, l_lp = alp_terms(logits, y, 0.1)
        from_constants = grads(model, (l_cls + 0.5 * constant * l_lp).mean())
        for a, b in zip(from_rule, from_constants):
            torch.testing.assert_close(a, b)
    # the test has teeth: a ratio weight left in the graph changes the gradient
    logits = model(torch.cat([x, x_adv]))
    l_cls, l_lp = alp_terms(logits, y, 0.1)
    v = l_cls / (l_cls + 0.5 * l_lp)
    attached = grads(model, (l_cls + 0.5 * (v * len(v) / v.sum()) * l_lp).mean())
    assert any(not torch.allclose(a, b) for a, b in zip(attached, from_constants))


def test_ratio_weights_by_hand_have_batch_mean_1_and_lie_in_0_B():
    w = sample_weights("ratio", torch.tensor([1.0, 1.0]), torch.tensor([0.0, 2.0]), 0.5)
    torch.testing.assert_close(w, torch.tensor([4 / 3, 2 / 3]))  # v = (1, 1/2), kappa = 2 / 1.5
    g = torch.Generator().manual_seed(0)
    l_cls, l_lp = torch.rand(64, generator=g) + 0.01, 10 * torch.rand(64, generator=g)
    w = sample_weights("ratio", l_cls, l_lp, 1.0)
    assert w.mean().item() == pytest.approx(1.0) and (w > 0).all() and (w <= 64).all()


def test_other_weight_rules_by_hand():
    l_cls, l_lp = torch.tensor([1.0, 2.0]), torch.tensor([2.0, 2.0])
    assert sample_weights("none", l_cls, l_lp, 0.5).tolist() == [1.0, 1.0]
    assert sample_weights("correct", l_cls, l_lp, 0.5, adv_correct=torch.tensor([True, False]), low=0.1).tolist() == \
        pytest.approx([1.0, 0.1])
    # softmax: B softmax(-tau lam l_lp / l_cls) = 2 softmax((-1, -0.5))
    expected = 2 * torch.softmax(torch.tensor([-1.0, -0.5]), 0)
    torch.testing.assert_close(sample_weights("softmax", l_cls, l_lp, 0.5, tau=1.0), expected)


# ---- 6, 7, 8, 9. ALP ----

def test_pairing_term_is_lambda_times_the_mean_over_b_and_c():
    assert pairing_term(torch.tensor([[1.0, 2.0]]), torch.tensor([[0.0, 0.0]]), 0.5).item() == 1.25


def test_label_smoothing_is_f_cross_entropy_with_0_1():
    g = torch.Generator().manual_seed(0)
    z, y = torch.randn(8, 10, generator=g), torch.arange(8)
    target = 0.9 * F.one_hot(y, 10) + 0.1 / 10
    by_hand = -(target * F.log_softmax(z, 1)).sum(1)
    torch.testing.assert_close(F.cross_entropy(z, y, label_smoothing=0.1, reduction="none"), by_hand)
    l_cls, _ = alp_terms(torch.cat([z, z]), y, 0.1)
    torch.testing.assert_close(l_cls, by_hand)


def _objective_and_reference(objective, reference, model, x, y):
    """Both from the same state: a train-mode forward moves BatchNorm's running statistics, which the next
    (eval-mode) training attack would see."""
    twin = copy.deepcopy(model)
    torch.manual_seed(5)
    out = objective(model, x, y)
    a = grads(model, out.loss)
    torch.manual_seed(5)
    ref = reference(twin, x, y)
    b = grads(twin, ref)
    torch.testing.assert_close(out.loss, ref)
    for u, v in zip(a, b):
        torch.testing.assert_close(u, v, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("train_attack", ["pgd", "pgd_ll"])
def test_weight_rule_none_without_guided_dropout_is_l_alp_exactly(train_attack):
    model = tiny_model().train()
    x, y = batch()
    objective = alp_objective(eps=EPS, alpha=ALPHA, steps=STEPS, lam=0.5, train_attack=train_attack)
    assert objective.params["weight_rule"] == "none" and objective.params["gd"] is False
    _objective_and_reference(objective, lambda m, u, v: alp_loss(m, u, v, eps=EPS, alpha=ALPHA, steps=STEPS, lam=0.5,
                                                               train_attack=train_attack), model, x, y)


def test_lambda_0_is_mixed_batch_pgd_training():
    model = tiny_model().train()
    x, y = batch()

    def m_pgd(m, u, v):
        x_adv = training_attack(m, u, v, eps=EPS, alpha=ALPHA, steps=STEPS)
        return F.cross_entropy(m(torch.cat([u, x_adv])), torch.cat([v, v]), label_smoothing=0.1)

    _objective_and_reference(alp_objective(eps=EPS, alpha=ALPHA, steps=STEPS, lam=0.0), m_pgd, model, x, y)


def test_alp_is_one_training_mode_forward_on_the_mixed_batch():
    model = tiny_model().train()
    x, y = batch()
    calls = []
    model.body.register_forward_hook(lambda mod, inp, out: calls.append((len(inp[0]), mod.training)))
    torch.manual_seed(0)
    alp_loss(model, x, y, eps=EPS, alpha=ALPHA, steps=STEPS)
    assert calls[-1] == (12, True) and all(not training for _, training in calls[:-1])  # attack steps: eval mode
    assert model.training


def test_pairing_gradient_flows_through_both_halves():
    z = torch.tensor([[1.0, 2.0]], requires_grad=True)
    z_adv = torch.tensor([[0.0, 0.0]], requires_grad=True)
    pairing_term(z, z_adv, 0.5).backward()
    assert z.grad.tolist() == [[0.5, 1.0]] and z_adv.grad.tolist() == [[-0.5, -1.0]]


# ---- 9 (§9). the official least-likely training attack ----

def test_pgd_ll_targets_the_argmin_of_the_eval_mode_clean_logits():
    model = tiny_model().train()
    x, y = batch(8)
    model.eval()
    with torch.no_grad():
        expected = model(x).argmin(1)
    model.train()
    assert torch.equal(least_likely_class(model, x), expected) and model.training
    torch.manual_seed(0)
    x_adv = pgd_ll(model, x, y, eps=EPS, alpha=0.05, steps=10)
    assert model.training
    assert (x_adv - x).abs().max() <= EPS + 1e-6 and x_adv.min() >= 0 and x_adv.max() <= 1
    model.eval()
    with torch.no_grad():
        before = F.cross_entropy(model(x), expected)
        after = F.cross_entropy(model(x_adv), expected)
    assert after < before  # it descends the CE to the least-likely class


def test_training_attacks_start_inside_the_box_before_the_first_gradient():
    model = tiny_model()
    x, y = batch(4)
    seen = []
    model.register_forward_pre_hook(lambda mod, inp: seen.append(inp[0].detach().clone()))
    torch.manual_seed(0)
    training_attack(model, x, y, eps=EPS, alpha=ALPHA, steps=1, train_attack="pgd_ll")
    first = seen[1]  # seen[0] is the least-likely class's clean forward
    assert not torch.equal(first, x) and (first >= 0).all() and (first <= 1).all()
    assert ((first - x).abs() <= EPS + 1e-6).all()


# ---- 11. bad switch values ----

@pytest.mark.parametrize("switches, field", [
    ({"gd": True, "gd_p": 1.0}, "gd_p"), ({"gd": True, "gd_p": -0.1}, "gd_p"), ({"gd": True, "gd_mode": "drop_mid"}, "gd_mode"),
    ({"weight_rule": "uniform"}, "weight_rule"), ({"lam": -0.5}, "lam"), ({"train_attack": "fgsm"}, "train_attack"),
    ({"gd": True, "gd_score": "square"}, "gd_score"), ({"gd": True, "gd_branches": "clean"}, "gd_branches"),
    ({"gd": True, "gd_among": "some"}, "gd_among"),
])
def test_bad_switch_values_name_the_field_and_the_value(switches, field):
    with pytest.raises(ConfigError, match=f"{field}=") as err:
        alp_objective(eps=EPS, alpha=ALPHA, steps=1, **switches)
    assert str(switches[field]) in str(err.value) and "expected" in str(err.value)


def test_bad_values_of_the_pure_functions():
    with pytest.raises(ConfigError, match="gd_p=1.5"):
        guided_dropout_mask(SCORES, mode="drop_low", p=1.5)
    with pytest.raises(ConfigError, match="gd_mode='top'"):
        guided_dropout_mask(SCORES, mode="top", p=0.1)
    with pytest.raises(ConfigError, match="weight_rule='equal'"):
        sample_weights("equal", torch.ones(2), torch.ones(2), 0.5)


# ---- the C2 records ----

def test_pixel_keys_recognise_an_image_in_any_batch():
    x, _ = batch(6)
    keys = pixel_keys(x)
    assert len(set(keys.tolist())) == 6 and torch.equal(pixel_keys(x[[4, 1]]), keys[[4, 1]])


def test_recorder_follows_the_first_epoch_cohort_by_hand():
    x, _ = batch(20)
    rec = RatioRecorder()
    r0 = torch.linspace(0.01, 2.0, 20)  # r > 1 for the last 10 samples
    ce0 = torch.full((20,), 1.0)
    rec.add(x, ce0, r0)
    first = rec.end_epoch(0)
    assert first["n"] == 20 and first["r_above_1"] == 10 and first["share_r_above_1"] == 0.5
    assert first["cohort"]["n_high"] == 2 and "matched" not in first["cohort"]  # top decile of 20
    # epoch 2: the two highest-r samples keep their loss, the others halve it
    ce1 = torch.where(r0 >= r0[-2], 1.0, 0.5)
    rec.start_epoch(1)
    rec.add(x[10:], ce1[10:], r0[10:])
    rec.add(x[:10], ce1[:10], r0[:10])
    second = rec.end_epoch(1)
    assert second["cohort"]["found"] == 20 and second["cohort"]["ce_high"] == 1.0 and second["cohort"]["ce_rest"] == 0.5
    assert sum(s["high"]["n"] + s["rest"]["n"] for s in second["cohort"]["matched"]) == 20
    restored = RatioRecorder()
    restored.load_state_dict(rec.state_dict())
    restored.add(x, ce1, r0)
    assert restored.end_epoch(2)["cohort"] == {**second["cohort"]}


def test_matched_difference_by_hand():
    strata = [{"high": {"n": 4, "mean": 0.0, "var": 0.04}, "rest": {"n": 4, "mean": -0.2, "var": 0.04}},
              {"high": {"n": 4, "mean": -0.1, "var": 0.04}, "rest": {"n": 4, "mean": -0.5, "var": 0.04}},
              {"high": {"n": 1, "mean": 9.0, "var": None}, "rest": {"n": 4, "mean": 0.0, "var": 0.04}}]
    est = matched_difference(strata)  # the third stratum is left out
    assert est.value == pytest.approx(0.3) and est.n == 16
    se = math.sqrt(2 * (0.04 / 4 + 0.04 / 4)) / 2
    assert est.ci == pytest.approx((0.3 - 1.959964 * se, 0.3 + 1.959964 * se))


def test_training_records_and_an_exact_resume(tmp_path):
    x = torch.randint(0, 256, (24, 1, 28, 28), generator=torch.Generator().manual_seed(0), dtype=torch.uint8)
    y = torch.arange(24) % 10
    cfg = TrainConfig(epochs=2, batch_size=8, lr=0.01, augment=False, seed=3)

    def objective():
        return alp_objective(eps=EPS, alpha=ALPHA, steps=1, gd=True, weight_rule="ratio")

    whole = train(tiny_model(), objective(), x, y, cfg)
    assert {"cls_loss", "pair_loss", "weight", "r_above_1", "gd_dropped_mass", "gd_active_share", "gd_dropped_of_active",
            "c2"} <= set(whole[0])
    assert 0 < whole[0]["gd_dropped_of_active"] <= 0.3  # floor(0.3 n) of each row's n active features
    assert whole[1]["c2"]["cohort"]["found"] == 24 and len(whole[1]["c2"]["cohort"]["matched"]) == 5
    assert whole[0]["weight"] == pytest.approx(1.0)

    def stop(epoch, record):
        if epoch == 0:
            raise KeyboardInterrupt

    checkpoint = tmp_path / "ckpt.pt"
    with pytest.raises(KeyboardInterrupt):
        train(tiny_model(), objective(), x, y, cfg, checkpoint=checkpoint, on_epoch_end=stop)
    resumed = train(tiny_model(), objective(), x, y, cfg, checkpoint=checkpoint)

    def strip(h):
        return [{k: v for k, v in r.items() if k not in ("seconds", "images_per_second")} for r in h]

    assert strip(resumed) == strip(whole)


# ---- the model and the objective's cache identity ----

def test_mnist_cnn_has_a_128_d_penultimate_layer_and_folds_for_attacks():
    model = build_model("mnist_cnn", dataset="mnist", num_classes=10, in_channels=1, width=16).eval()
    x, _ = batch(3)
    assert model.features(x).shape == (3, 128) and isinstance(model.head, nn.Linear)
    torch.testing.assert_close(for_attacks(model)(x), model(x), rtol=1e-4, atol=1e-4)
    assert build_model("small_cnn", dataset="mnist", num_classes=10, in_channels=1, width=2).features(x).shape == (3, 8)


def test_switches_that_are_off_do_not_enter_the_cache_key():
    alp = alp_objective(eps=EPS, alpha=ALPHA, steps=1).cache_spec()
    assert alp == AALPObjective(eps=EPS, alpha=ALPHA, steps=1, lam=0.5).cache_spec()
    assert alp_objective(eps=EPS, alpha=ALPHA, steps=1, gd=True, gd_p=0.1).cache_spec() != \
        alp_objective(eps=EPS, alpha=ALPHA, steps=1, gd=True, gd_p=0.3).cache_spec()
