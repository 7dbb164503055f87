"""advfair.objectives: PGD-AT, TRADES, class-weighted PGD-AT and the registry."""
from __future__ import annotations

import copy
import math

import pytest
import torch
import torch.nn.functional as F

from advfair.attacks import pgd
from advfair.models import build_model
from advfair.objectives import OBJECTIVES, make_objective
from advfair.objectives.class_weighted import (class_weighted_pgd_at_loss, vulnerability_weights,
                                               worst_class_weights)
from advfair.objectives.pgd_at import pgd_at_loss
from advfair.objectives.trades import kl_to_clean, trades_loss
from advfair.validation import ConfigError

ATTACK = {"eps": 8 / 255, "alpha": 2 / 255, "steps": 2}


@pytest.fixture
def model():
    torch.manual_seed(0)
    return build_model("small_cnn", dataset="cifar10", num_classes=10, in_channels=3, width=4).train()


@pytest.fixture
def batch():
    g = torch.Generator().manual_seed(1)
    return torch.rand(12, 3, 8, 8, generator=g), torch.arange(12) % 10


def _loss_and_grads(model, fn, x, y, seed):
    torch.manual_seed(seed)
    loss = fn(model, x, y)
    grads = torch.autograd.grad(loss, list(model.parameters()))
    return loss.detach(), grads


def test_fact11_class_weighted_with_unit_weights_is_pgd_at(model, batch):
    x, y = batch
    a, b = copy.deepcopy(model), copy.deepcopy(model)  # BN running stats change during a call
    loss_pgd, grads_pgd = _loss_and_grads(a, lambda m, x, y: pgd_at_loss(m, x, y, **ATTACK), x, y, seed=5)
    loss_cw, grads_cw = _loss_and_grads(
        b, lambda m, x, y: class_weighted_pgd_at_loss(m, x, y, class_weights=torch.ones(10), **ATTACK), x, y, seed=5)
    assert torch.allclose(loss_pgd, loss_cw, rtol=1e-6, atol=0)
    for g1, g2 in zip(grads_pgd, grads_cw):
        assert torch.allclose(g1, g2, rtol=1e-5, atol=1e-7)
    # other weights change the loss (so the comparison above can fail)
    c = copy.deepcopy(model)
    weights = torch.ones(10)
    weights[0] = 5.0
    loss_w, _ = _loss_and_grads(
        c, lambda m, x, y: class_weighted_pgd_at_loss(m, x, y, class_weights=weights, **ATTACK), x, y, seed=5)
    assert not torch.allclose(loss_w, loss_pgd)


def test_class_weighted_loss_hand_formula(model, batch):
    x, y = batch
    weights = torch.linspace(0.5, 2.0, 10)
    a, b = copy.deepcopy(model), copy.deepcopy(model)
    torch.manual_seed(3)
    loss = class_weighted_pgd_at_loss(a, x, y, class_weights=weights, **ATTACK)
    torch.manual_seed(3)
    x_adv = pgd(b, x, y, **ATTACK)
    per_sample = F.cross_entropy(b(x_adv), y, reduction="none")
    expected = (weights[y] * per_sample).sum() / weights[y].sum()
    assert torch.allclose(loss, expected, rtol=1e-6)


def test_pgd_at_loss_is_train_mode_ce_at_pgd_point(model, batch):
    x, y = batch
    a, b = copy.deepcopy(model), copy.deepcopy(model)
    torch.manual_seed(4)
    loss = pgd_at_loss(a, x, y, **ATTACK)
    assert a.training
    torch.manual_seed(4)
    x_adv = pgd(b, x, y, **ATTACK)
    assert b.training
    expected = F.cross_entropy(b(x_adv), y)  # train mode: batch statistics
    assert torch.allclose(loss, expected, rtol=1e-6)
    b.eval()
    assert not torch.allclose(loss, F.cross_entropy(b(x_adv), y), rtol=1e-4)


def test_trades_beta_zero_is_clean_ce_in_train_mode(model, batch):
    x, y = batch
    a, b = copy.deepcopy(model), copy.deepcopy(model)
    torch.manual_seed(6)
    loss = trades_loss(a, x, y, beta=0.0, **ATTACK)
    assert a.training
    expected = F.cross_entropy(b.train()(x), y)
    assert torch.allclose(loss, expected, rtol=1e-6)
    eval_ce = F.cross_entropy(copy.deepcopy(model).eval()(x), y)
    assert not torch.allclose(loss, eval_ce, rtol=1e-4)


def test_trades_positive_beta_adds_non_negative_kl(model, batch):
    x, y = batch
    torch.manual_seed(6)
    base = trades_loss(copy.deepcopy(model), x, y, beta=0.0, **ATTACK)
    torch.manual_seed(6)
    with_kl = trades_loss(copy.deepcopy(model), x, y, beta=6.0, **ATTACK)
    assert with_kl > base


def test_kl_to_clean_hand_values():
    p = torch.tensor([[0.5, 0.5]])
    logits = torch.log(torch.tensor([[0.25, 0.75]]))
    expected = 0.5 * math.log(0.5 / 0.25) + 0.5 * math.log(0.5 / 0.75)
    assert kl_to_clean(logits, p).item() == pytest.approx(expected, rel=1e-5)
    z = torch.randn(4, 5)
    assert torch.allclose(kl_to_clean(z, torch.softmax(z, 1)), torch.zeros(4), atol=1e-6)


def test_worst_class_and_vulnerability_weights():
    assert worst_class_weights(4, 2, 3.0).tolist() == [1.0, 1.0, 3.0, 1.0]
    with pytest.raises(ConfigError, match="worst_class=4"):
        worst_class_weights(4, 4, 2.0)
    with pytest.raises(ConfigError, match="w_worst=0"):
        worst_class_weights(4, 1, 0)
    w = vulnerability_weights(torch.tensor([0.5, 0.75, 0.25]), 1.0)
    raw = torch.tensor([0.5, 0.25, 0.75])
    assert torch.allclose(w, raw / raw.mean())
    assert w.mean().item() == pytest.approx(1.0)
    w2 = vulnerability_weights(torch.tensor([0.5, 0.75, 0.25]), 2.0)
    assert torch.allclose(w2, raw ** 2 / (raw ** 2).mean())
    with pytest.raises(ConfigError, match="gamma=0"):
        vulnerability_weights(torch.tensor([0.5]), 0)


def test_make_objective_binds_parameters(model, batch):
    x, y = batch
    assert set(OBJECTIVES) == {"pgd_at", "trades", "class_weighted_pgd_at", "logit_adjusted", "robal"}
    objective = make_objective("pgd_at", **ATTACK)
    a, b = copy.deepcopy(model), copy.deepcopy(model)
    torch.manual_seed(2)
    bound = objective(a, x, y)
    torch.manual_seed(2)
    direct = pgd_at_loss(b, x, y, **ATTACK)
    assert torch.allclose(bound, direct)
    cw = make_objective("class_weighted_pgd_at", class_weights=torch.ones(10), **ATTACK)
    assert cw(copy.deepcopy(model), x, y).ndim == 0
    trades = make_objective("trades", beta=1.0, **ATTACK)
    assert trades(copy.deepcopy(model), x, y).ndim == 0


@pytest.mark.parametrize("name, kwargs, match", [
    ("bogus", {}, "objective='bogus'"),
    ("pgd_at", {"eps": 0}, "eps=0"),
    ("pgd_at", {"eps": 2}, "eps=2"),
    ("pgd_at", {"alpha": -1}, "alpha=-1"),
    ("pgd_at", {"steps": 0}, "steps=0"),
    ("trades", {"beta": -1.0}, "beta=-1.0"),
])
def test_make_objective_rejects_bad_values(name, kwargs, match):
    with pytest.raises(ConfigError, match=match):
        make_objective(name, **{**ATTACK, **kwargs})
