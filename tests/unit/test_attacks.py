"""advfair.attacks: Temperature-PGD facts (classwise paper section 8, items 1-7), attack invariants, AutoAttack."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from advfair.autoattack import autoattack
from advfair.attacks import (LinfThreat, cw_margin, fgsm, image_temperature, pgd, tempered_ce)
from advfair.evaluation import classwise_report
from advfair.models import build_model
from advfair.validation import ConfigError

EPS = 8 / 255


class Scaled(nn.Module):
    """The same model with its logits multiplied by k."""

    def __init__(self, model: nn.Module, k: float):
        super().__init__()
        self.model, self.k = model, k

    def forward(self, x):
        return self.model(x) * self.k


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# ---------------------------------------------------------------------------------------------------------------
# Facts 1-4

def test_fact1_temperature_one_is_plain_pgd(linear_model, tiny_batch):
    x, y = tiny_batch
    a = pgd(linear_model, x, y, eps=EPS, alpha=2 / 255, steps=5, generator=_gen(1))
    b = pgd(linear_model, x, y, eps=EPS, alpha=2 / 255, steps=5, temperature=1.0, generator=_gen(1))
    c = pgd(linear_model, x, y, eps=EPS, alpha=2 / 255, steps=5, temperature=1.0, random_start=False)
    d = pgd(linear_model, x, y, eps=EPS, alpha=2 / 255, steps=5, random_start=False)
    assert torch.equal(a, b)
    assert torch.equal(c, d)
    assert not torch.equal(a, c)  # the random start matters, so the comparison above is not vacuous


@pytest.mark.parametrize("k", [2.0, 4.0, 16.0])
def test_fact2_scaled_logits_with_matching_temperature_bit_identical(linear_model, tiny_batch, k):
    x, y = tiny_batch
    plain = pgd(linear_model, x, y, eps=EPS, alpha=2 / 255, steps=5, temperature=1.0, generator=_gen(2))
    scaled = pgd(Scaled(linear_model, k), x, y, eps=EPS, alpha=2 / 255, steps=5, temperature=k, generator=_gen(2))
    assert torch.equal(plain, scaled)


def test_fact2_other_k_allclose(linear_model, tiny_batch):
    x, y = tiny_batch
    plain = pgd(linear_model, x, y, eps=EPS, alpha=2 / 255, steps=5, generator=_gen(2))
    scaled = pgd(Scaled(linear_model, 3.0), x, y, eps=EPS, alpha=2 / 255, steps=5, temperature=3.0, generator=_gen(2))
    assert torch.allclose(plain, scaled, atol=1e-6)


@pytest.mark.parametrize("T", [0.1, 0.5, 2.0, 10.0])
def test_fact3_powered_softmax_equals_tempered_softmax(T):
    z = torch.randn(6, 5, generator=_gen(0)) * 3
    y = torch.arange(6) % 5
    powered = torch.softmax(z, 1) ** (1 / T)
    powered = powered / powered.sum(1, keepdim=True)
    assert torch.allclose(powered, torch.softmax(z / T, 1), atol=1e-6)
    # the library's tempered CE is -log of that distribution at the true class
    expected = -torch.log(powered.double().gather(1, y[:, None]).squeeze(1))
    assert torch.allclose(tempered_ce(z, y, T).double(), expected, atol=1e-4, rtol=1e-5)


def test_tempered_ce_hand_value_and_precision():
    z = torch.tensor([[0.0, 1.0]])
    y = torch.tensor([0])
    # -log softmax([0, 2])_0 = log(1 + e^2)
    assert tempered_ce(z, y, 0.5).item() == pytest.approx(math.log1p(math.exp(2)), rel=1e-6)
    assert tempered_ce(z, y, 0.5).dtype == torch.float32
    assert tempered_ce(z, y, 0.1).dtype == torch.float64  # small T is computed in float64
    assert tempered_ce(z, y, 0.1).item() == pytest.approx(math.log1p(math.exp(10)), rel=1e-9)
    assert torch.allclose(tempered_ce(z, y), F.cross_entropy(z, y, reduction="none"))


@pytest.mark.parametrize("T", [0.1, 0.5, 3.0])
def test_fact4_per_sample_temperature_tensor_equals_scalar(linear_model, tiny_batch, T):
    x, y = tiny_batch
    z = linear_model(x).detach()
    scalar = tempered_ce(z, y, T)
    # a float64 tensor holds T exactly; a float32 one holds float32(T), which differs from T = 0.1 in the 9th digit
    assert torch.equal(scalar, tempered_ce(z, y, torch.full((16, 1), T, dtype=torch.float64)))
    assert torch.allclose(scalar, tempered_ce(z, y, torch.full((16, 1), T)), rtol=1e-6, atol=0)
    a = pgd(linear_model, x, y, eps=EPS, alpha=2 / 255, steps=4, temperature=T, generator=_gen(3))
    b = pgd(linear_model, x, y, eps=EPS, alpha=2 / 255, steps=4, temperature=torch.full((16, 1), T),
            generator=_gen(3))
    assert torch.equal(a, b)
    # with restarts and early stop the tensor is indexed with the remaining points
    a = pgd(linear_model, x, y, eps=EPS, alpha=2 / 255, steps=4, temperature=T, restarts=2, early_stop=True,
            generator=_gen(3))
    b = pgd(linear_model, x, y, eps=EPS, alpha=2 / 255, steps=4, temperature=torch.full((16, 1), T), restarts=2,
            early_stop=True, generator=_gen(3))
    assert torch.equal(a, b)


# ---------------------------------------------------------------------------------------------------------------
# Fact 5: limits on a linear model z = W x

def _linear_three_class() -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 3, bias=False))
    W = torch.tensor([[1.0, -1.0, 1.0, -1.0],      # z_0 = 0  (true class)
                      [2.0, 1.0, 0.5, 0.5],        # z_1 = 2  (top competitor j*)
                      [-2.0, -2.0, -1.0, -1.0]])   # z_2 = -3
    with torch.no_grad():
        model[1].weight.copy_(W)
    return model, W, torch.full((1, 4), 0.5)


def _step_sign(model, x, y, T):
    x_adv = pgd(model, x, y, eps=0.1, alpha=0.01, steps=1, temperature=T, random_start=False)
    return torch.sign(x_adv - x)[0]


def test_fact5_small_temperature_steps_towards_top_competitor():
    model, W, x = _linear_three_class()
    y = torch.tensor([0])
    z = model(x)[0].detach()
    T = 0.05
    assert z[1] - z[0] >= 20 * T and z[1] - z[2] >= 50 * T  # the fact's preconditions
    expected = torch.sign(W[1] - W[0])
    assert torch.equal(_step_sign(model, x, y, T), expected)


def test_fact5_large_temperature_steps_towards_mean_of_others():
    model, W, x = _linear_three_class()
    y = torch.tensor([0])
    direction = W[1:].mean(0) - W[0]
    assert (direction.abs() > 1e-3).all()
    expected = torch.sign(direction)
    assert not torch.equal(expected, torch.sign(W[1] - W[0]))  # the two limits differ on this model
    assert torch.equal(_step_sign(model, x, y, 1e3), expected)


def test_fgsm_is_one_signed_gradient_step(linear_model):
    g = _gen(5)
    x = 0.25 + 0.5 * torch.rand(6, 3, 4, 4, generator=g)  # away from the box edges
    y = torch.randint(0, 10, (6,), generator=g)
    eps = 0.1
    W = linear_model[1].weight.detach()
    p = torch.softmax(linear_model(x).detach(), 1)
    grad = (p - F.one_hot(y, 10).float()) @ W  # d CE / d x for a linear model
    expected = x + eps * torch.sign(grad).view_as(x)
    assert torch.allclose(fgsm(linear_model, x, y, eps=eps), expected, atol=1e-6)


def test_cw_margin_hand_values():
    z = torch.tensor([[1.0, 3.0, 2.0], [1.0, 3.0, 2.0]])
    assert cw_margin(z, torch.tensor([0, 1])).tolist() == [2.0, -1.0]


# ---------------------------------------------------------------------------------------------------------------
# Fact 6: float32 underflow; fact 7: bad temperatures

def _grad_wrt_logits(T: float) -> torch.Tensor:
    z = torch.tensor([[5.0, 0.0, -1.0]], dtype=torch.float32, requires_grad=True)
    loss = tempered_ce(z, torch.tensor([0]), T).sum()
    grad, = torch.autograd.grad(loss, z)
    assert grad.dtype == torch.float32
    return grad[0]


def test_fact6_float32_underflow():
    g = _grad_wrt_logits(0.1)
    assert g[0].item() == 0.0
    assert g[1].item() != 0.0
    assert torch.equal(_grad_wrt_logits(0.03), torch.zeros(3))
    # at T = 1 every component is non-zero
    assert (_grad_wrt_logits(1.0) != 0).all()


@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan"), float("inf"), -float("inf")])
def test_fact7_bad_temperature_names_temperature(linear_model, tiny_batch, bad):
    x, y = tiny_batch
    with pytest.raises(ConfigError, match="temperature="):
        pgd(linear_model, x, y, eps=EPS, alpha=0.01, steps=1, temperature=bad)
    tensor = torch.ones(16, 1)
    tensor[3] = bad
    with pytest.raises(ConfigError, match="temperature="):
        pgd(linear_model, x, y, eps=EPS, alpha=0.01, steps=1, temperature=tensor)


@pytest.mark.parametrize("kwargs, field", [
    ({"eps": 0}, "eps=0"), ({"eps": 1.5}, "eps=1.5"), ({"eps": float("nan")}, "eps=nan"),
    ({"temperature": 0}, "temperature=0"), ({"temperature": float("nan")}, "temperature=nan"),
    ({"temperature": -1}, "temperature=-1"), ({"loss": "bogus"}, "loss='bogus'"),
    ({"t_rule": "bogus"}, "t_rule='bogus'"), ({"steps": 0}, "steps=0"), ({"steps": 1.5}, "steps=1.5"),
    ({"alpha": 0}, "alpha=0"), ({"restarts": 0}, "restarts=0"),
])
def test_bad_attack_parameters(linear_model, tiny_batch, kwargs, field):
    x, y = tiny_batch
    args = {"eps": EPS, "alpha": 0.01, "steps": 2, **kwargs}
    with pytest.raises(ConfigError, match=field.replace("[", r"\[")) as info:
        pgd(linear_model, x, y, **args)
    assert isinstance(info.value, ValueError)
    assert "not allowed" in str(info.value)


def test_fgsm_bad_eps(linear_model, tiny_batch):
    with pytest.raises(ConfigError, match="eps=2"):
        fgsm(linear_model, *tiny_batch, eps=2)


def test_linf_threat_project():
    threat = LinfThreat(0.1)
    x = torch.tensor([0.0, 0.5, 0.95])
    out = threat.project(torch.tensor([-0.5, 0.7, 1.2]), x)
    assert torch.allclose(out, torch.tensor([0.0, 0.6, 1.0]))
    start = threat.random_init(x.expand(100, 3), _gen(0))
    assert ((start - x).abs() <= 0.1 + 1e-7).all() and (start >= 0).all() and (start <= 1).all()


# ---------------------------------------------------------------------------------------------------------------
# Invariants of pgd / fgsm

@pytest.fixture(scope="module")
def cnn():
    torch.manual_seed(0)
    return build_model("small_cnn", dataset="cifar10", num_classes=10, in_channels=3, width=4)


ATTACKS = [
    pytest.param(dict(kind="fgsm"), id="fgsm"),
    *[pytest.param(dict(kind="pgd", loss=loss, restarts=r, early_stop=es), id=f"pgd-{loss}-r{r}-es{int(es)}")
      for loss in ("ce", "cw") for r in (1, 2) for es in (False, True)],
    pytest.param(dict(kind="pgd", loss="ce", temperature=0.1, restarts=2, early_stop=True), id="tpgd0.1"),
    pytest.param(dict(kind="pgd", loss="ce", temperature=1.0, t_rule="per_image_std"), id="tpgd-std"),
    pytest.param(dict(kind="pgd", loss="ce", temperature=1.0, t_rule="per_image_conf"), id="tpgd-conf"),
]


def _attack(model, x, y, spec, eps):
    spec = dict(spec)
    if spec.pop("kind") == "fgsm":
        return fgsm(model, x, y, eps=eps)
    return pgd(model, x, y, eps=eps, alpha=eps / 3, steps=3, generator=_gen(0), **spec)


@pytest.mark.parametrize("spec", ATTACKS)
def test_attack_invariants(cnn, spec):
    g = _gen(11)
    x = torch.rand(20, 3, 8, 8, generator=g)
    x[0, 0, 0, 0], x[1, 0, 0, 0] = 0.0, 1.0  # points on the box edge
    y = torch.arange(20) % 10
    x_copy, y_copy = x.clone(), y.clone()
    cnn.train()
    cnn.head.bias.requires_grad_(False)  # a mixed pattern of flags to restore
    flags = [p.requires_grad for p in cnn.parameters()]
    eps = 0.05
    try:
        x_adv = _attack(cnn, x, y, spec, eps)
        assert cnn.training, "train mode not restored"
        assert [p.requires_grad for p in cnn.parameters()] == flags
        assert torch.equal(x, x_copy) and torch.equal(y, y_copy), "input mutated"
        assert x_adv.shape == x.shape and x_adv.dtype == x.dtype
        assert not x_adv.requires_grad
        assert (x_adv - x).abs().max() <= eps + 1e-6
        assert x_adv.min() >= 0 and x_adv.max() <= 1
        assert not torch.equal(x_adv, x), "the attack did not move"
        # eval mode too
        cnn.eval()
        _attack(cnn, x, y, spec, eps)
        assert not cnn.training
        # robust accuracy (correct on x and x') never exceeds clean accuracy
        with torch.no_grad():
            clean, adv = cnn(x).argmax(1), cnn(x_adv).argmax(1)
        report = classwise_report(y, {"clean": clean, "attack": adv}, [str(c) for c in range(10)], n_boot=20)
        assert report["attacks"]["attack"]["overall"] <= report["attacks"]["clean"]["overall"]
    finally:
        cnn.head.bias.requires_grad_(True)


def test_attack_restores_state_after_exception(cnn):
    cnn.train()

    def broken_loss(z, y, rows):
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        pgd(cnn, torch.rand(2, 3, 8, 8), torch.tensor([0, 1]), eps=EPS, alpha=0.01, steps=1, loss=broken_loss)
    assert cnn.training and all(p.requires_grad for p in cnn.parameters())


@pytest.mark.parametrize("random_start", [False, True])
def test_early_stop_keeps_points_misclassified_at_the_start(linear_model, random_start):
    g = _gen(4)
    x = torch.rand(64, 3, 4, 4, generator=g)
    y = torch.randint(0, 10, (64,), generator=g)
    eps = 0.05
    start = LinfThreat(eps).random_init(x, _gen(9)) if random_start else x
    with torch.no_grad():
        wrong_at_start = linear_model(start).argmax(1) != y
    assert 0 < wrong_at_start.sum() < 64
    x_adv = pgd(linear_model, x, y, eps=eps, alpha=0.02, steps=5, early_stop=True, random_start=random_start,
                generator=_gen(9))
    assert torch.equal(x_adv[wrong_at_start], start[wrong_at_start])
    # without early stop those points move on
    x_adv = pgd(linear_model, x, y, eps=eps, alpha=0.02, steps=5, early_stop=False, random_start=random_start,
                generator=_gen(9))
    assert not torch.equal(x_adv[wrong_at_start], start[wrong_at_start])


def test_restarts_only_add_fooled_points(linear_model):
    g = _gen(6)
    x = torch.rand(64, 3, 4, 4, generator=g)
    with torch.no_grad():
        y = linear_model(x).argmax(1)  # all correct on clean inputs
    kwargs = dict(eps=0.02, alpha=0.005, steps=2)
    one = pgd(linear_model, x, y, restarts=1, generator=_gen(1), **kwargs)
    two = pgd(linear_model, x, y, restarts=2, generator=_gen(1), **kwargs)
    with torch.no_grad():
        fooled1 = linear_model(one).argmax(1) != y
        fooled2 = linear_model(two).argmax(1) != y
    assert (fooled1 <= fooled2).all()
    assert torch.equal(one[fooled1], two[fooled1])  # fooled points are not attacked again


def test_x_init_is_projected_and_used(linear_model, tiny_batch):
    x, y = tiny_batch
    far = x + 0.5
    eps = 0.03
    out = pgd(linear_model, x, y, eps=eps, alpha=0.01, steps=1, x_init=far, early_stop=True)
    assert (out - x).abs().max() <= eps + 1e-6
    start = LinfThreat(eps).project(far, x)
    with torch.no_grad():
        wrong = linear_model(start).argmax(1) != y
    assert wrong.any()
    assert torch.equal(out[wrong], start[wrong])


def test_image_temperature_rules():
    z = torch.tensor([[4.0, 0.0, -2.0], [1.0, 0.5, 0.0]])
    t_std = image_temperature(z, "per_image_std", 2.0)
    assert t_std.shape == (2, 1)
    assert torch.allclose(t_std[:, 0], 2.0 * z.std(1, unbiased=False))
    t_conf = image_temperature(z, "per_image_conf", 1.0, target=0.5)
    top = torch.softmax(z / t_conf, 1).max(1).values
    assert torch.allclose(top, torch.full((2,), 0.5), atol=1e-4)


# ---------------------------------------------------------------------------------------------------------------
# AutoAttack (subset) on a tiny linear model

def test_autoattack_subset_tiny_model():
    # 4 classes: the fewest APGD-T's targeted DLR loss accepts (it reads the 4th-largest logit)
    torch.manual_seed(0)
    linear_model = nn.Sequential(nn.Flatten(), nn.Linear(12, 4))
    g = _gen(8)
    x = torch.rand(8, 3, 2, 2, generator=g)
    with torch.no_grad():
        y = linear_model(x).argmax(1)
    y[:2] = (y[:2] + 1) % 4  # two points misclassified already
    x_copy = x.clone()
    linear_model.train()
    x_adv, warnings = autoattack(linear_model, x, y, eps=EPS, version="subset", batch_size=8)
    assert linear_model.training
    assert all(p.requires_grad for p in linear_model.parameters())
    assert torch.equal(x, x_copy)
    assert isinstance(warnings, list) and all(isinstance(w, str) for w in warnings)
    assert x_adv.shape == x.shape
    assert (x_adv - x).abs().max() <= EPS + 1e-6
    assert x_adv.min() >= 0 and x_adv.max() <= 1


def test_autoattack_bad_parameters(linear_model, tiny_batch):
    x, y = tiny_batch
    with pytest.raises(ConfigError, match="version='fast'"):
        autoattack(linear_model, x, y, eps=EPS, version="fast")
    with pytest.raises(ConfigError, match="eps=0"):
        autoattack(linear_model, x, y, eps=0)


# ---------------------------------------------------------------------------------------------------------------
# A custom loss sees the positions of the rows still attacked

def _targeted(targets: torch.Tensor, *, use_rows: bool = True):
    """Per-sample targeted loss z_t - z_y with a target class per point, indexed by `rows`."""
    def loss(logits, y, rows):
        t = targets[rows] if use_rows else targets[:len(logits)]
        return logits.gather(1, t[:, None]).squeeze(1) - logits.gather(1, y[:, None]).squeeze(1)
    return loss


def test_custom_loss_rows_keep_per_sample_targets_aligned(linear_model):
    g = _gen(21)
    x = torch.rand(24, 3, 4, 4, generator=g)
    with torch.no_grad():
        y = linear_model(x).argmax(1)  # all correct on clean inputs
    targets = (y + 1 + torch.randint(0, 9, (24,), generator=g)) % 10
    assert (targets != y).all()
    kwargs = dict(eps=0.03, alpha=0.01, steps=4, restarts=2, early_stop=True, random_start=False)
    batch = pgd(linear_model, x, y, loss=_targeted(targets), **kwargs)
    alone = torch.cat([pgd(linear_model, x[i:i + 1], y[i:i + 1], loss=_targeted(targets[i:i + 1]), **kwargs)
                       for i in range(24)])
    assert torch.equal(batch, alone)
    # the batch did shrink: some points were fooled early (early stop), others kept being attacked
    with torch.no_grad():
        fooled = linear_model(batch).argmax(1) != y
    assert 0 < fooled.sum() < 24
    # indexing the targets by position in the shrunken batch instead would attack the wrong targets
    misaligned = pgd(linear_model, x, y, loss=_targeted(targets, use_rows=False), **kwargs)
    assert not torch.equal(misaligned, batch)


def test_custom_loss_rows_are_positions_in_the_callers_batch(linear_model):
    x = torch.rand(16, 3, 4, 4, generator=_gen(22))
    with torch.no_grad():
        y = linear_model(x).argmax(1)
    seen = []

    def loss(logits, target, rows):
        seen.append(rows.clone())
        assert len(rows) == len(logits) == len(target)
        assert torch.equal(target, y[rows])
        return F.cross_entropy(logits, target, reduction="none")

    pgd(linear_model, x, y, eps=0.03, alpha=0.01, steps=3, restarts=2, early_stop=True, loss=loss, generator=_gen(0))
    assert torch.equal(seen[0], torch.arange(16))
    assert any(len(r) < 16 for r in seen)  # early stop or the second restart shrank the batch
    assert all(torch.equal(r, r.sort().values) for r in seen)


# ---------------------------------------------------------------------------------------------------------------
# clip_start: where the first gradient is taken

class _Recorder(nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model, self.inputs = model, []

    def forward(self, x):
        self.inputs.append(x.detach().clone())
        return self.model(x)


def test_random_init_clip_false_keeps_the_unprojected_start():
    threat = LinfThreat(0.1)
    x = torch.ones(50, 3)
    u = torch.rand(x.shape, generator=_gen(4))
    assert torch.equal(threat.random_init(x, _gen(4), kind="positive", clip=False), x + 0.1 * u)
    assert torch.equal(threat.random_init(x, _gen(4), kind="positive"), x)  # projected onto [0, 1]: the image
    zeros = torch.zeros(50, 3)
    unclipped = threat.random_init(zeros, _gen(4), clip=False)
    assert torch.equal(unclipped, 0.1 * (2 * u - 1)) and (unclipped < 0).any()


@pytest.mark.parametrize("clip_start", [True, False])
def test_clip_start_decides_the_first_point_and_the_result_stays_projected(linear_model, tiny_batch, clip_start):
    x, y = tiny_batch
    eps = 0.03
    far = x + 0.5
    for kwargs in ({"x_init": far}, {"random_start": "positive", "generator": _gen(3)}):
        model = _Recorder(linear_model)
        out = pgd(model, x, y, eps=eps, alpha=0.01, steps=2, clip_start=clip_start, **kwargs)
        start = far if "x_init" in kwargs else x + eps * torch.rand(x.shape, generator=_gen(3))
        expected = LinfThreat(eps).project(start, x) if clip_start else start
        assert torch.equal(model.inputs[0], expected)
        assert (out - x).abs().max() <= eps + 1e-6 and out.min() >= 0 and out.max() <= 1
