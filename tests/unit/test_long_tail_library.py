"""Shared-layer additions for the long-tail chapter: attack start kinds, MI-FGSM, the CW hinge, attack-suite
flags, the bias-free head, head/middle/tail groups, the feature-norm ratio and the LDAM long-tailed draw."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from advfair.attacks import LinfThreat, cw_hinge, cw_margin, mim, pgd
from advfair.data import ldam_long_tailed_indices, long_tailed_counts
from advfair.evaluation import (feature_norm_ratio, group_accuracy, group_report, head_middle_tail,
                                paired_difference, robust_correctness, standard_attacks)
from advfair.evaluation.paired import of_classes
from advfair.models import Classifier, CosineHead, Normalize, build_model
from advfair.validation import ConfigError

EPS = 8 / 255


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _zero_model() -> nn.Module:
    """Constant logits: every input gradient is zero, so PGD and MIM never leave their start."""
    model = nn.Sequential(nn.Flatten(), nn.Linear(48, 10))
    nn.init.zeros_(model[1].weight)
    return model


# ---------------------------------------------------------------------------------------------------------------
# Random starts

def test_random_init_kinds():
    threat = LinfThreat(0.1)
    x = torch.full((200, 3), 0.5)
    positive = threat.random_init(x, _gen(0), kind="positive") - x
    assert (positive >= 0).all() and (positive <= 0.1 + 1e-7).all() and positive.max() > 0.09
    symmetric = threat.random_init(x, _gen(0), kind="symmetric") - x
    assert symmetric.min() < -0.09 and symmetric.max() > 0.09
    # the same uniform draws: positive = eps * u, symmetric = eps * (2u - 1)
    assert torch.allclose(symmetric, 2 * positive - 0.1, atol=1e-6)
    assert torch.equal(threat.random_init(x, _gen(0)), threat.random_init(x, _gen(0), kind="symmetric"))
    with pytest.raises(ConfigError, match="kind='negative'"):
        threat.random_init(x, kind="negative")


def test_pgd_random_start_kinds(linear_model, tiny_batch):
    x, y = tiny_batch
    kwargs = dict(eps=EPS, alpha=2 / 255, steps=3)
    assert torch.equal(pgd(linear_model, x, y, generator=_gen(2), **kwargs),
                       pgd(linear_model, x, y, generator=_gen(2), random_start="symmetric", **kwargs))
    start = pgd(_zero_model(), x, y, generator=_gen(2), random_start="positive", **kwargs)
    assert torch.equal(start, LinfThreat(EPS).random_init(x, _gen(2), kind="positive"))
    assert (start >= x).all()
    with pytest.raises(ConfigError, match="random_start='up'"):
        pgd(linear_model, x, y, random_start="up", **kwargs)


# ---------------------------------------------------------------------------------------------------------------
# MI-FGSM

def test_mim_with_zero_momentum_is_pgd(linear_model, tiny_batch):
    """sign(g / mean|g|) = sign(g): without momentum MIM takes PGD's steps."""
    x, y = tiny_batch
    kwargs = dict(eps=EPS, alpha=2 / 255, steps=5)
    assert torch.equal(mim(linear_model, x, y, momentum=0.0, generator=_gen(1), **kwargs),
                       pgd(linear_model, x, y, generator=_gen(1), **kwargs))


def test_mim_matches_a_reference_loop(linear_model, tiny_batch):
    x, y = tiny_batch
    eps, alpha, steps, mu = 0.05, 0.01, 6, 0.7
    x_adv, g = x.clone(), torch.zeros_like(x)
    for _ in range(steps):
        xa = x_adv.clone().requires_grad_(True)
        grad, = torch.autograd.grad(F.cross_entropy(linear_model(xa), y, reduction="sum"), xa)
        g = mu * g + grad / grad.abs().mean(dim=(1, 2, 3), keepdim=True)
        x_adv = torch.min(torch.max(x_adv + alpha * g.sign(), x - eps), x + eps).clamp(0, 1)
    out = mim(linear_model, x, y, eps=eps, alpha=alpha, steps=steps, momentum=mu, random_start=False)
    assert torch.allclose(out, x_adv, atol=1e-6)
    # and it differs from PGD: the momentum matters
    assert not torch.equal(out, pgd(linear_model, x, y, eps=eps, alpha=alpha, steps=steps, random_start=False))


def test_mim_invariants_and_zero_gradient():
    torch.manual_seed(0)
    cnn = build_model("small_cnn", dataset="cifar10", num_classes=10, in_channels=3, width=4).train()
    g = _gen(5)
    x, y = torch.rand(10, 3, 8, 8, generator=g), torch.arange(10)
    x_copy = x.clone()
    out = mim(cnn, x, y, eps=0.05, alpha=0.02, steps=3, early_stop=True, generator=_gen(0))
    assert cnn.training and all(p.requires_grad for p in cnn.parameters())
    assert torch.equal(x, x_copy) and not out.requires_grad
    assert (out - x).abs().max() <= 0.05 + 1e-6 and out.min() >= 0 and out.max() <= 1
    flat = torch.rand(4, 3, 4, 4, generator=g)
    still = mim(_zero_model(), flat, torch.zeros(4, dtype=torch.long), eps=0.05, alpha=0.02, steps=3,
                random_start=False)
    assert torch.equal(still, flat)  # no NaN from dividing a zero gradient by its zero mean
    with pytest.raises(ConfigError, match="momentum=-1"):
        mim(cnn, x, y, eps=0.05, alpha=0.02, steps=1, momentum=-1)


# ---------------------------------------------------------------------------------------------------------------
# CW hinge (RoBal's test code)

def test_cw_hinge_hand_values():
    z = torch.tensor([[3.0, 1.0, 0.0], [100.0, 0.0, -1.0], [0.0, 2.0, 1.0]])
    y = torch.tensor([0, 1, 0])
    # z_y - max_{j != y} z_j + 50, floored at 0
    assert torch.allclose(cw_hinge(z, y), torch.tensor([52.0, 0.0, 48.0]))
    assert torch.allclose(cw_hinge(z, y, kappa=0.0), torch.tensor([2.0, 0.0, 0.0]))
    active = cw_hinge(z, y) > 0
    assert torch.allclose(-cw_hinge(z, y)[active], (cw_margin(z, y) - 50)[active])


def test_cw_hinge_attack_equals_cw_margin_while_the_hinge_is_active(linear_model, tiny_batch):
    """With logits far below kappa = 50 apart, both losses have the same gradient, so the same steps."""
    x, y = tiny_batch
    kwargs = dict(eps=EPS, alpha=2 / 255, steps=5)
    assert torch.equal(pgd(linear_model, x, y, loss="cw_hinge", generator=_gen(3), **kwargs),
                       pgd(linear_model, x, y, loss="cw", generator=_gen(3), **kwargs))


def test_standard_attacks_mim_and_cw_hinge_flags(linear_model, tiny_batch):
    suite = standard_attacks(steps=3, alpha=2 / 255, fgsm=False, mim=True, cw_loss="cw_hinge", temperatures=(0.1,),
                             autoattack=None)
    assert list(suite) == ["pgd3", "mim3", "cw3", "tpgd3_T0.1"]
    assert suite["cw3"].loss == "cw_hinge"
    x, y = tiny_batch
    a, _ = suite["mim3"].run(linear_model, x, y, eps=EPS, seed=0, batch_size=500)
    b = mim(linear_model, x, y, eps=EPS, alpha=2 / 255, steps=3, early_stop=True, generator=_gen(0))
    assert torch.equal(a, b)
    with pytest.raises(ConfigError, match="cw_loss='hinge'"):
        standard_attacks(steps=2, alpha=0.01, cw_loss="hinge")


# ---------------------------------------------------------------------------------------------------------------
# Models: the bias-free ("Dot") head

def test_bias_free_linear_head():
    plain = build_model("small_cnn", dataset="cifar10", num_classes=10, in_channels=3, width=4)
    dot = build_model("small_cnn", dataset="cifar10", num_classes=10, in_channels=3, width=4, head_bias=False)
    assert plain.head.bias is not None and dot.head.bias is None
    assert dot(torch.rand(2, 3, 8, 8)).shape == (2, 10)
    with pytest.raises(ConfigError, match="head_bias='no'"):
        build_model("small_cnn", dataset="cifar10", num_classes=10, in_channels=3, head_bias="no")


# ---------------------------------------------------------------------------------------------------------------
# Evaluation: groups and the feature-norm ratio

def test_head_middle_tail():
    assert head_middle_tail(10) == {"head": [0, 1, 2], "middle": [3, 4, 5, 6], "tail": [7, 8, 9]}
    groups = head_middle_tail(100)
    assert [len(v) for v in groups.values()] == [30, 40, 30]
    assert sorted(sum(groups.values(), [])) == list(range(100))
    with pytest.raises(ValueError, match="num_classes=2"):
        head_middle_tail(2)


def test_group_accuracy_and_robust_correctness():
    per_class = [1.0, 0.8, 0.6, 0.5, 0.5, 0.4, 0.3, 0.2, 0.1, 0.0]
    acc = group_accuracy(per_class, head_middle_tail(10))
    assert acc == pytest.approx({"head": 0.8, "middle": 0.425, "tail": 0.1})
    y = np.array([0, 1, 2, 2])
    correct = robust_correctness({"clean": np.array([0, 1, 0, 2]), "pgd": np.array([0, 0, 2, 2])}, y)
    assert correct["clean"].tolist() == [True, True, False, True]
    assert correct["pgd"].tolist() == [True, False, False, True]  # point 2: fooled clean, so not robust


def test_group_report_and_paired_difference():
    y = np.repeat(np.arange(3), 4)
    groups = {"head": [0], "rest": [1, 2]}
    correct_a = np.array([1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0], dtype=bool)
    correct_b = np.array([1, 1, 1, 0, 1, 1, 1, 1, 1, 0, 0, 0], dtype=bool)
    report = group_report(y, {"a": correct_a, "b": correct_b}, groups, num_classes=3, n_boot=200, seed=0)
    assert report["a"]["head"]["accuracy"] == pytest.approx(1.0)
    assert report["a"]["rest"]["accuracy"] == pytest.approx(0.25)
    assert report["b"]["rest"]["accuracy"] == pytest.approx(0.625)  # classes 1 and 2: (1 + 0.25) / 2
    for name in ("a", "b"):
        for entry in report[name].values():
            assert entry["ci"][0] <= entry["accuracy"] <= entry["ci"][1]
    assert report == group_report(y, {"a": correct_a, "b": correct_b}, groups, num_classes=3, n_boot=200, seed=0)
    d = paired_difference(y, correct_a, correct_b, of_classes([1, 2]), num_classes=3, n_boot=200, seed=0)
    assert d.value == pytest.approx(0.375)
    assert d.ci[0] <= 0.375 <= d.ci[1]
    same = paired_difference(y, correct_a, correct_a, of_classes([0, 1, 2]), num_classes=3, n_boot=50, seed=0)
    assert same.value == 0.0 and same.ci == (0.0, 0.0)


def test_feature_norm_ratio():
    model = Classifier(Normalize((0.0,), (1.0,)), nn.Flatten(), CosineHead(12, 3)).train()
    g = _gen(0)
    x = torch.rand(5, 1, 3, 4, generator=g)
    scale = torch.tensor([0.5, 1.0, 2.0, 3.0, 1.5])[:, None, None, None]
    ratio = feature_norm_ratio(model, x, x * scale, batch_size=2)
    assert np.allclose(ratio, scale.flatten().numpy(), rtol=1e-5)
    assert model.training


# ---------------------------------------------------------------------------------------------------------------
# Data: the LDAM / RoBal long-tailed draw (fact 12 for this rule)

def _labels(per_class: tuple[int, ...], seed: int = 0) -> torch.Tensor:
    labels = torch.cat([torch.full((n,), c) for c, n in enumerate(per_class)])
    return labels[torch.randperm(len(labels), generator=_gen(seed))]


def test_ldam_long_tailed_indices_is_the_numpy_rule(ldam_reference):
    labels = _labels((60, 60, 60, 60))
    counts = long_tailed_counts(50, 0.1, 4)
    idx = ldam_long_tailed_indices(labels, counts, seed=0)
    assert idx.tolist() == ldam_reference(labels, counts)
    assert torch.bincount(labels[idx], minlength=4).tolist() == counts
    assert torch.equal(idx, ldam_long_tailed_indices(labels, counts, seed=0))
    assert not torch.equal(idx, ldam_long_tailed_indices(labels, counts, seed=1))
    # a smaller n_max keeps a prefix of each class's shuffle: a subset of the larger draw
    smaller = ldam_long_tailed_indices(labels, long_tailed_counts(40, 0.1, 4), seed=0)
    assert set(smaller.tolist()) <= set(idx.tolist())


def test_ldam_long_tailed_indices_errors():
    labels = _labels((5, 5))
    with pytest.raises(ValueError, match=r"counts\[1\]=6"):
        ldam_long_tailed_indices(labels, [5, 6])
    with pytest.raises(ConfigError, match=r"counts\[0\]=-1"):
        ldam_long_tailed_indices(labels, [-1, 1])
