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
    assert set(OBJECTIVES) == {"pgd_at", "trades", "class_weighted_pgd_at", "logit_adjusted", "robal", "mart", "ducat",
                               "dafa"}
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


# ---------------------------------------------------------------------------------------------------------------
# TRADES against an independent re-implementation of the official algorithm (yaodongyu/TRADES, trades.py)

def _official_trades(model, x, y, *, eps, step, steps, beta, seed, variant=None):
    """The official `trades_loss`, written out from its code (CPU): the inner max in eval mode from
    x + 0.001 N(0, I), KLDivLoss(sum) of log_softmax(f(x')) against softmax(f(x)), a signed step, projection
    onto the eps-ball and [0, 1]; then train mode and CE(f(x), y) + beta / B * KLDivLoss(sum)(f(x'), f(x)).

    `variant` breaks it on purpose: "reversed" (KL(p(x') || p(x)) inside and out), "ce" (a CE inner attack)
    or "mean" (the outer KL averaged over batch *and* classes)."""
    criterion_kl = torch.nn.KLDivLoss(reduction="sum")
    model.eval()
    torch.manual_seed(seed)
    x_adv = x.detach() + 0.001 * torch.randn(x.shape).detach()
    for _ in range(steps):
        x_adv.requires_grad_()
        with torch.enable_grad():
            if variant == "ce":
                inner = F.cross_entropy(model(x_adv), y, reduction="sum")
            elif variant == "reversed":
                inner = criterion_kl(F.log_softmax(model(x), dim=1), F.softmax(model(x_adv), dim=1))
            else:
                inner = criterion_kl(F.log_softmax(model(x_adv), dim=1), F.softmax(model(x), dim=1))
        grad = torch.autograd.grad(inner, [x_adv])[0]
        x_adv = x_adv.detach() + step * torch.sign(grad.detach())
        x_adv = torch.min(torch.max(x_adv, x - eps), x + eps)
        x_adv = torch.clamp(x_adv, 0.0, 1.0)
    model.train()
    x_adv = torch.clamp(x_adv, 0.0, 1.0).detach()
    loss_natural = F.cross_entropy(model(x), y)
    if variant == "reversed":
        loss_robust = (1.0 / len(x)) * criterion_kl(F.log_softmax(model(x), dim=1), F.softmax(model(x_adv), dim=1))
    elif variant == "mean":
        loss_robust = F.kl_div(F.log_softmax(model(x_adv), dim=1), F.softmax(model(x), dim=1), reduction="sum") \
            / (len(x) * 10)  # = KLDivLoss(reduction="mean"): divided by the number of elements
    else:
        loss_robust = (1.0 / len(x)) * criterion_kl(F.log_softmax(model(x_adv), dim=1), F.softmax(model(x), dim=1))
    return loss_natural + beta * loss_robust


TRADES_MNIST = {"eps": 0.3, "alpha": 0.01, "steps": 40, "beta": 6.0}


@pytest.fixture(scope="module")
def mnist_batch(data_dir):
    from advfair.data import load_dataset, to_float

    if not (data_dir / "mnist.npz").exists():
        pytest.skip("no mnist.npz")
    data = load_dataset("mnist", str(data_dir))
    return to_float(data.x_test[:32]), data.y_test[:32], to_float(data.x_train[:256])


@pytest.fixture
def mnist_model(mnist_batch):
    """A width-4 small CNN with BatchNorm whose running statistics have moved (so the eval-mode inner max and
    the train-mode outer loss see different normalisations) and whose head is scaled by 5 (so the KL term
    weighs in the loss)."""
    torch.manual_seed(0)
    model = build_model("small_cnn", dataset="mnist", num_classes=10, in_channels=1, width=4).train()
    with torch.no_grad():
        model.head.weight.mul_(5.0)
        for i in range(4):
            model(mnist_batch[2][64 * i:64 * (i + 1)])
    return model


def _relative(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().detach() / b.abs().detach())


def _grad_difference(ga, gb) -> float:
    """||ga - gb|| / ||gb|| over all parameters."""
    num = sum(float(((u - v) ** 2).sum()) for u, v in zip(ga, gb))
    return math.sqrt(num / sum(float((v ** 2).sum()) for v in gb))


def _running_stats(model):
    return [t for name, t in model.state_dict().items() if "running" in name]


def test_trades_matches_the_official_algorithm(mnist_batch, mnist_model):
    x, y, _ = mnist_batch
    ours, ref = copy.deepcopy(mnist_model), copy.deepcopy(mnist_model)
    torch.manual_seed(11)
    loss = trades_loss(ours, x, y, **TRADES_MNIST, clip_start=False)
    expected = _official_trades(ref, x, y, eps=0.3, step=0.01, steps=40, beta=6.0, seed=11)
    assert ours.training
    assert _relative(loss, expected) < 1e-4
    g_ours = torch.autograd.grad(loss, list(ours.parameters()))
    g_ref = torch.autograd.grad(expected, list(ref.parameters()))
    assert _grad_difference(g_ours, g_ref) < 1e-3
    # three train-mode passes (x, x', x): BatchNorm's running statistics move as in the official code
    for s_ours, s_ref in zip(_running_stats(ours), _running_stats(ref)):
        assert torch.allclose(s_ours, s_ref, rtol=1e-6, atol=1e-7)
    assert not all(torch.equal(s, t) for s, t in zip(_running_stats(ours), _running_stats(mnist_model)))
    # the default objective is the official one (its inner maximisation runs on the unfolded model: BatchNorm
    # folding, an evaluation speed-up, would flip the signs of near-zero gradients and the iterates would drift)
    bound = make_objective("trades", eps=0.3, alpha=0.01, steps=40, beta=6.0)
    assert bound.params["clip_start"] is False
    torch.manual_seed(11)
    assert torch.equal(bound(copy.deepcopy(mnist_model), x, y), loss)


@pytest.mark.parametrize("variant", ["reversed", "ce", "mean"])
def test_the_trades_reference_comparison_can_fail(mnist_batch, mnist_model, variant):
    x, y, _ = mnist_batch
    ours, wrong = copy.deepcopy(mnist_model), copy.deepcopy(mnist_model)
    torch.manual_seed(11)
    loss = trades_loss(ours, x, y, **TRADES_MNIST, clip_start=False)
    other = _official_trades(wrong, x, y, eps=0.3, step=0.01, steps=40, beta=6.0, seed=11, variant=variant)
    assert _relative(loss, other) > 1e-4
    g_ours = torch.autograd.grad(loss, list(ours.parameters()))
    assert _grad_difference(g_ours, torch.autograd.grad(other, list(wrong.parameters()))) > 1e-3


def test_trades_clipped_start_is_not_the_official_one_on_mnist(mnist_batch, mnist_model):
    """On raw MNIST most pixels are 0: clipping x + 0.001 N onto [0, 1] keeps only the positive noise there."""
    x, y, _ = mnist_batch
    assert (x == 0).float().mean() > 0.5
    torch.manual_seed(11)
    clipped = trades_loss(copy.deepcopy(mnist_model), x, y, **TRADES_MNIST, clip_start=True)
    expected = _official_trades(copy.deepcopy(mnist_model), x, y, eps=0.3, step=0.01, steps=40, beta=6.0, seed=11)
    assert _relative(clipped, expected) > 1e-4


# ---------------------------------------------------------------------------------------------------------------
# Where the inner maximisation takes its first gradient

class Recorder(torch.nn.Module):
    """Records the input of every call (attacks call it as it is: it has no conv-BN pair to fold)."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model
        self.inputs: list[torch.Tensor] = []

    def forward(self, x):
        self.inputs.append(x.detach().clone())
        return self.model(x)


def _recorded_linear() -> Recorder:
    torch.manual_seed(0)
    return Recorder(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(48, 10))).train()


def _recorded_cosine():
    """A Classifier with a scale-1 cosine head (what robal_loss needs); the recorder sees x itself."""
    from advfair.models import Classifier, CosineHead, Normalize

    torch.manual_seed(0)
    recorder = Recorder(torch.nn.Flatten())
    return Classifier(Normalize((0.0,) * 3, (1.0,) * 3), recorder, CosineHead(48, 10)).train(), recorder


Y = torch.arange(4) % 10
EPS = 8 / 255


def test_trades_first_gradient_is_taken_at_the_unclipped_gaussian_start():
    x = torch.zeros(4, 3, 4, 4)
    torch.manual_seed(3)
    start = x + 0.001 * torch.randn(x.shape)
    assert (start < 0).any()
    for clip_start, expected in ((False, start), (True, start.clamp(0, 1))):
        model = _recorded_linear()
        torch.manual_seed(3)
        trades_loss(model, x, Y, eps=EPS, alpha=2 / 255, steps=2, beta=6.0, clip_start=clip_start)
        # call 0: p(x) (no gradient); call 1: the first attack step, at the start
        assert torch.equal(model.inputs[0], x)
        assert torch.equal(model.inputs[1], expected), clip_start
        # and the first step is the signed KL gradient at that very point
        point = expected.clone().requires_grad_(True)
        p_clean = F.softmax(model.model(x), dim=1).detach()
        grad, = torch.autograd.grad(kl_to_clean(model.model(point), p_clean).sum(), point)
        step = torch.min(torch.max(expected + 2 / 255 * grad.sign(), x - EPS), x + EPS).clamp(0, 1)
        assert torch.allclose(model.inputs[2], step, atol=1e-7)


def _positive_start(x: torch.Tensor, seed: int) -> torch.Tensor:
    torch.manual_seed(seed)
    return x + EPS * torch.rand(x.shape)


def _symmetric_start(x: torch.Tensor, seed: int) -> torch.Tensor:
    torch.manual_seed(seed)
    return x + EPS * (2 * torch.rand(x.shape) - 1)


def _clip(start: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return torch.min(torch.max(start, x - EPS), x + EPS).clamp(0, 1)


def _first_attack_input(name: str, x: torch.Tensor, seed: int, **params) -> torch.Tensor:
    from advfair.objectives.logit_adjusted import logit_adjusted_loss
    from advfair.objectives.robal import robal_loss

    attack = {"eps": EPS, "alpha": 2 / 255, "steps": 1}
    if name == "robal":
        model, recorder = _recorded_cosine()
        torch.manual_seed(seed)
        robal_loss(model, x, Y, **attack, counts=[5, 4, 3, 3, 2, 2, 2, 1, 1, 1], s=10.0, m0=0.1, tau_m=0.3,
                   tau_b=1.5, kl_weight=6.0, **params)
        return recorder.inputs[0]
    model = _recorded_linear()
    torch.manual_seed(seed)
    if name == "pgd_at":
        pgd_at_loss(model, x, Y, **attack, **params)
    else:
        logit_adjusted_loss(model, x, Y, **attack, counts=[5, 4, 3, 3, 2, 2, 2, 1, 1, 1], **params)
    return model.inputs[0]


@pytest.mark.parametrize("name", ["pgd_at", "logit_adjusted", "robal"])
def test_positive_start_is_unclipped_by_default(name):
    """RoBal's code takes the first gradient at x + eps U[0, 1) itself; on a white image that point lies outside
    [0, 1] and the projected start would be the image."""
    x = torch.ones(4, 3, 4, 4)
    start = _positive_start(x, 5)
    assert (start > 1).any()
    assert torch.equal(_first_attack_input(name, x, 5, train_start="positive"), start)
    assert torch.equal(_first_attack_input(name, x, 5, train_start="positive", clip_start=None), start)
    assert torch.equal(_first_attack_input(name, x, 5, train_start="positive", clip_start=True), _clip(start, x))
    assert torch.equal(_clip(start, x), x)


@pytest.mark.parametrize("name", ["pgd_at", "logit_adjusted", "robal"])
def test_symmetric_start_is_clipped_by_default(name):
    """Madry et al.'s code projects its symmetric start; on a black image that keeps only the positive noise."""
    x = torch.zeros(4, 3, 4, 4)
    start = _symmetric_start(x, 6)
    assert (start < 0).any()
    assert torch.equal(_first_attack_input(name, x, 6), _clip(start, x))
    assert torch.equal(_first_attack_input(name, x, 6, train_start="symmetric", clip_start=False), start)
