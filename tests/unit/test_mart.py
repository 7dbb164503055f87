"""MART (advfair.objectives.mart) against its official formula, written out independently: the outer loss
as a loop over samples and classes, and the whole official algorithm (inner max, two train-mode passes)."""
from __future__ import annotations

import copy
import math

import pytest
import torch
import torch.nn.functional as F

from advfair.models import build_model
from advfair.objectives import OBJECTIVES, make_objective
from advfair.objectives.mart import mart_loss, mart_outer
from advfair.validation import ConfigError

EPS, STEP, STEPS, BETA = 8 / 255, 2 / 255, 5, 6.0


def _outer_by_hand(logits: torch.Tensor, logits_adv: torch.Tensor, y: torch.Tensor, beta: float) -> torch.Tensor:
    """The official outer loss, one sample and one class at a time:
    CE(z', y) - log(1.0001 - p'_(y') + 1e-12) + beta * KL(p || p') * (1.0000001 - p_y), averaged over the batch,
    with y' the most probable class other than y and KL = sum_k p_k (log p_k - log(p'_k + 1e-12))."""
    total = 0.0
    batch, classes = logits.shape
    for i in range(batch):
        p = [math.exp(v) for v in logits[i].tolist()]
        q = [math.exp(v) for v in logits_adv[i].tolist()]
        sp, sq = sum(p), sum(q)
        p, q = [v / sp for v in p], [v / sq for v in q]
        yi = int(y[i])
        runner_up = max((k for k in range(classes) if k != yi), key=lambda k: q[k])
        ce = -math.log(q[yi])
        margin = -math.log(1.0001 - q[runner_up] + 1e-12)
        kl = sum(p[k] * (math.log(p[k]) - math.log(q[k] + 1e-12)) for k in range(classes))
        total += ce + margin + beta * kl * (1.0000001 - p[yi])
    return torch.tensor(total / batch, dtype=torch.float64)


def test_mart_outer_equals_the_formula_by_hand():
    torch.manual_seed(0)
    for scale in (0.5, 3.0):
        logits, logits_adv = scale * torch.randn(6, 10), scale * torch.randn(6, 10)
        y = torch.randint(0, 10, (6,))
        ours = mart_outer(logits.double(), logits_adv.double(), y, BETA)
        assert ours.item() == pytest.approx(_outer_by_hand(logits.double(), logits_adv.double(), y, BETA).item(),
                                            rel=1e-9)
    # beta = 0: the BCE part alone; a confident, correct adversarial output costs almost nothing
    z = torch.tensor([[10.0, 0.0, 0.0]], dtype=torch.float64)
    assert mart_outer(z, z, torch.tensor([0]), 0.0).item() == pytest.approx(
        -math.log(1 / (1 + 2 * math.exp(-10))) - math.log(1.0001 - math.exp(-10) / (1 + 2 * math.exp(-10)) + 1e-12),
        rel=1e-5)


def _official_mart(model, x, y, *, seed: int, variant: str | None = None) -> torch.Tensor:
    """The official `mart_loss` written out from its description (CPU): eval mode, x + 0.001 N(0, I), PGD
    steps on the mean CE, projection onto the eps-ball and [0, 1] after each step; train mode; z = f(x),
    z' = f(x'); y' from the top two of p'; BCE + beta / B * sum KLDivLoss(log(p' + 1e-12), p) * (1.0000001 - p_y).
    `variant` breaks it on purpose: "no_weight" drops the (1 - p_y) factor, "ce_margin" uses the top class."""
    model.eval()
    torch.manual_seed(seed)
    x_adv = x.detach() + 0.001 * torch.randn(x.shape).detach()
    for _ in range(STEPS):
        x_adv.requires_grad_()
        with torch.enable_grad():
            loss = F.cross_entropy(model(x_adv), y)
        grad = torch.autograd.grad(loss, [x_adv])[0]
        x_adv = x_adv.detach() + STEP * torch.sign(grad.detach())
        x_adv = torch.clamp(torch.min(torch.max(x_adv, x - EPS), x + EPS), 0.0, 1.0)
    model.train()
    x_adv = torch.clamp(x_adv, 0.0, 1.0).detach()
    logits = model(x)
    logits_adv = model(x_adv)
    adv_probs = F.softmax(logits_adv, dim=1)
    top2 = torch.argsort(adv_probs, dim=1)[:, -2:]
    new_y = torch.where(top2[:, -1] == y, top2[:, -2], top2[:, -1])
    if variant == "ce_margin":
        new_y = top2[:, -1]
    loss_adv = F.cross_entropy(logits_adv, y) + F.nll_loss(torch.log(1.0001 - adv_probs + 1e-12), new_y)
    nat_probs = F.softmax(logits, dim=1)
    true_probs = torch.gather(nat_probs, 1, y.unsqueeze(1)).squeeze()
    kl = torch.nn.KLDivLoss(reduction="none")(torch.log(adv_probs + 1e-12), nat_probs).sum(1)
    weight = 1.0 if variant == "no_weight" else (1.0000001 - true_probs)
    return loss_adv + BETA * (1.0 / len(x)) * torch.sum(kl * weight)


@pytest.fixture
def setup():
    """A width-4 small CNN whose BatchNorm statistics have moved and whose head is scaled (so the KL weighs)."""
    g = torch.Generator().manual_seed(1)
    x, y = torch.rand(16, 3, 8, 8, generator=g), torch.arange(16) % 10
    torch.manual_seed(0)
    model = build_model("small_cnn", dataset="cifar10", num_classes=10, in_channels=3, width=4).train()
    with torch.no_grad():
        model.head.weight.mul_(5.0)
        model(torch.rand(32, 3, 8, 8, generator=g))
    return model, x, y


def _relative(a, b) -> float:
    return float((a - b).abs().detach() / b.abs().detach())


def _grad_difference(ga, gb) -> float:
    num = sum(float(((u - v) ** 2).sum()) for u, v in zip(ga, gb))
    return math.sqrt(num / sum(float((v ** 2).sum()) for v in gb))


def test_mart_matches_the_official_algorithm(setup):
    model, x, y = setup
    ours, ref = copy.deepcopy(model), copy.deepcopy(model)
    torch.manual_seed(7)
    loss = mart_loss(ours, x, y, eps=EPS, alpha=STEP, steps=STEPS, beta=BETA)
    expected = _official_mart(ref, x, y, seed=7)
    assert ours.training and _relative(loss, expected) < 1e-5
    g_ours = torch.autograd.grad(loss, list(ours.parameters()))
    g_ref = torch.autograd.grad(expected, list(ref.parameters()))
    assert _grad_difference(g_ours, g_ref) < 1e-4
    # two train-mode passes (x, then x'): BatchNorm's running statistics move as in the code
    for (name, s1), s2 in zip(ours.state_dict().items(), ref.state_dict().values()):
        if "running" in name:
            assert torch.allclose(s1, s2, rtol=1e-6, atol=1e-7), name
    bound = make_objective("mart", eps=EPS, alpha=STEP, steps=STEPS, beta=BETA)
    torch.manual_seed(7)
    assert torch.equal(bound(copy.deepcopy(model), x, y), loss)


@pytest.mark.parametrize("variant", ["no_weight", "ce_margin"])
def test_the_mart_reference_comparison_can_fail(setup, variant):
    model, x, y = setup
    torch.manual_seed(7)
    loss = mart_loss(copy.deepcopy(model), x, y, eps=EPS, alpha=STEP, steps=STEPS, beta=BETA)
    assert _relative(loss, _official_mart(copy.deepcopy(model), x, y, seed=7, variant=variant)) > 1e-4


class Recorder(torch.nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model, self.inputs = model, []

    def forward(self, x):
        self.inputs.append(x.detach().clone())
        return self.model(x)


def test_mart_first_gradient_is_taken_at_the_unclipped_gaussian_start():
    torch.manual_seed(0)
    recorder = Recorder(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 10))).train()
    x = torch.zeros(4, 3, 2, 2)  # black: clipping would keep only the positive noise
    torch.manual_seed(3)
    mart_loss(recorder, x, torch.arange(4), eps=EPS, alpha=STEP, steps=2, beta=BETA)
    torch.manual_seed(3)
    start = x + 0.001 * torch.randn(x.shape)
    assert torch.equal(recorder.inputs[0], start) and (recorder.inputs[0] < 0).any()
    assert torch.equal(recorder.inputs[-2], x)  # then the train-mode passes: x, then x'


def test_mart_and_ducat_are_registered():
    assert {"mart", "ducat"} <= set(OBJECTIVES)
    assert make_objective("mart", eps=EPS, alpha=STEP, steps=1).cache_spec()["version"] == OBJECTIVES["mart"].version
    with pytest.raises(ConfigError, match="beta=-1"):
        make_objective("mart", eps=EPS, alpha=STEP, steps=1, beta=-1)
    with pytest.raises(ConfigError, match="objective='martt'"):
        make_objective("martt", eps=EPS, alpha=STEP, steps=1)
