"""RoBal: the loss (spec section 8, facts 3-6), post-hoc adjustment (fact 8), logit-scale invariants (fact 9),
logit-adjusted training, the long-tailed split, the chapter config and a tiny end-to-end run."""
from __future__ import annotations

import copy
import json
import math

import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from pyautoattack.autopgd_base import APGDAttack, APGDAttack_targeted
from torch import nn

from advfair import autoattack as aa_module
from advfair.attacks import cw_margin, pgd
from advfair.data import long_tailed_counts
from advfair.inference import LogitScale, deploy, posthoc
from advfair.models import build_model, log_prior
from advfair.objectives import make_objective
from advfair.objectives.logit_adjusted import logit_adjusted, logit_adjusted_loss
from advfair.objectives.pgd_at import official_clip_start, pgd_at_loss
from advfair.objectives.robal import class_margins, pair_margins, robal_logits, robal_loss
from advfair.validation import ConfigError

CIFAR10_LT = long_tailed_counts(5000, 0.02, 10)  # [5000, 3237, ..., 100]
ATTACK = {"eps": 8 / 255, "alpha": 2 / 255, "steps": 2}
ROBAL_R = {"s": 10.0, "m0": 0.1, "tau_m": 0.3, "tau_b": 1.5}


class Identity(nn.Module):
    """A "model" whose logits are its inputs: post-hoc wrappers applied to hand-written logits."""

    def forward(self, x):
        return x


@pytest.fixture
def cosine_model():
    torch.manual_seed(0)
    return build_model("small_cnn", dataset="cifar10", num_classes=10, in_channels=3, width=4, head="cosine",
                       head_gamma=1 / 32).train()


@pytest.fixture
def batch():
    g = torch.Generator().manual_seed(1)
    return torch.rand(12, 3, 8, 8, generator=g), torch.arange(12) % 10


# ---------------------------------------------------------------------------------------------------------------
# Facts 3-6: margins and the RoBal loss

def test_fact3_robal_r_margins():
    m = class_margins(CIFAR10_LT, s=10, m0=0.1, tau_m=0.3)
    expected = [0.2174, 0.2043, 0.1913, 0.1782, 0.1652, 0.1521, 0.1391, 0.1260, 0.1130, 0.1000]
    assert torch.allclose(m, torch.tensor(expected), atol=5e-5)
    assert m[0].item() == pytest.approx(0.03 * math.log(50) + 0.1, rel=1e-6)
    assert m[-1].item() == pytest.approx(0.1, rel=1e-6)  # n_min: only m0


@pytest.mark.parametrize("tau_b, tau_m, expected", [
    (1.5, 0.3, {(9, 0): 6.8680, (0, 9): -3.6944, (0, 1): 1.5214}),  # RoBal-R
    (1.2, 0.0, {(9, 0): 5.6944, (0, 9): -3.6944, (0, 1): 0.4783}),  # RoBal-N
])
def test_fact4_pair_margins_in_logit_units(tau_b, tau_m, expected):
    margins = pair_margins(CIFAR10_LT, s=10, m0=0.1, tau_m=tau_m, tau_b=tau_b)
    for (y, i), value in expected.items():
        assert margins[y, i].item() == pytest.approx(value, abs=5e-4), (y, i)
    # Eq. 10's second form: (tau_b - tau_m) log(n_i / n_y) + tau_m log(n_i / n_min) + s m0
    n = torch.tensor(CIFAR10_LT, dtype=torch.float64)
    second = ((tau_b - tau_m) * (n[None, :] / n[:, None]).log() + tau_m * (n / n.min()).log()[None, :] + 1.0)
    assert torch.allclose(margins.double(), second, atol=1e-5)


def _eq9_closed_form(cos: torch.Tensor, y: int, margins: torch.Tensor, s: float) -> float:
    """L1 = log(1 + sum_{i != y} exp(s (cos_i - cos_y) + s m_yi))."""
    others = [i for i in range(cos.shape[1]) if i != y]
    terms = torch.stack([s * (cos[0, i] - cos[0, y]) + margins[y, i] for i in others])
    return math.log1p(terms.double().exp().sum().item())


def test_fact5_two_class_hand_example():
    n, s = [100, 10], 10.0
    cos = torch.tensor([[0.2, 0.5]])
    m = class_margins(n, s=s, m0=0.1, tau_m=0.3)
    assert torch.allclose(m, torch.tensor([0.16908, 0.1]), atol=1e-5)
    logits = robal_logits(cos, torch.tensor([1]), n, s, m, tau_b=1.5)
    assert torch.allclose(logits, torch.tensor([[1.85703, 0.40316]]), atol=1e-4)
    pair = pair_margins(n, s=s, m0=0.1, tau_m=0.3, tau_b=1.5)
    for y, expected in ((1, 1.66387), (0, 1.49176)):
        target = torch.tensor([y])
        loss = F.cross_entropy(robal_logits(cos, target, n, s, m, tau_b=1.5), target).item()
        assert loss == pytest.approx(expected, abs=1e-4), y
        assert _eq9_closed_form(cos, y, pair, s) == pytest.approx(loss, abs=1e-5), y


def test_fact5_closed_form_on_cifar10_lt():
    g = torch.Generator().manual_seed(0)
    cos = 2 * torch.rand(6, 10, generator=g) - 1
    y = torch.tensor([0, 3, 9, 9, 5, 1])
    m = class_margins(CIFAR10_LT, s=10, m0=0.1, tau_m=0.3)
    pair = pair_margins(CIFAR10_LT, **ROBAL_R)
    losses = F.cross_entropy(robal_logits(cos, y, CIFAR10_LT, 10, m, tau_b=1.5), y, reduction="none")
    for k in range(len(y)):
        assert _eq9_closed_form(cos[k:k + 1], int(y[k]), pair, 10) == pytest.approx(losses[k].item(), abs=1e-4)


@pytest.mark.parametrize("s", [1.0, 10.0, 16.0])
def test_fact6_zero_margins_and_bias_is_scaled_ce(s):
    g = torch.Generator().manual_seed(2)
    cos = 2 * torch.rand(8, 10, generator=g) - 1
    y = torch.arange(8)
    m = class_margins(CIFAR10_LT, s=s, m0=0.0, tau_m=0.0)
    assert torch.equal(m, torch.zeros(10))
    logits = robal_logits(cos, y, CIFAR10_LT, s, m, tau_b=0.0)
    assert torch.allclose(logits, s * cos)
    assert torch.allclose(F.cross_entropy(logits, y), F.cross_entropy(s * cos, y))


def test_margin_only_moves_the_true_logit():
    cos = torch.zeros(3, 4)
    y = torch.tensor([0, 2, 3])
    m = torch.tensor([0.1, 0.2, 0.3, 0.4])
    logits = robal_logits(cos, y, [1, 1, 1, 1], 10.0, m, tau_b=0.0)
    expected = torch.zeros(3, 4)
    expected[0, 0], expected[1, 2], expected[2, 3] = -1.0, -3.0, -4.0  # -s * m_y on the true class only
    assert torch.allclose(logits, expected, atol=1e-6)


# ---------------------------------------------------------------------------------------------------------------
# The full RoBal objective (Eq. 12, code form)

def _robal_by_hand(model, x, y, *, counts, s, m0, tau_m, tau_b, kl_weight, inner_scale, train_start, seed,
                   detach_clean=False, clip_start=None):
    """The released code's order: the inner PGD (its positive start unclipped), then four train-mode passes
    (x', x for the weight-0 clean CE, x, x')."""
    torch.manual_seed(seed)
    clip = (train_start == "symmetric") if clip_start is None else clip_start
    x_adv = pgd(model, x, y, **ATTACK, random_start=train_start, clip_start=clip,
                loss=lambda z, target, rows: F.cross_entropy(inner_scale * z, target, reduction="none"))
    cos_adv = model(x_adv)
    with torch.no_grad():
        model(x)
    cos_clean = model(x)
    if detach_clean:
        cos_clean = cos_clean.detach()
    outer = F.cross_entropy(robal_logits(cos_adv, y, counts, s, class_margins(counts, s, m0, tau_m), tau_b), y)
    kl = F.kl_div(F.log_softmax(inner_scale * model(x_adv), 1), F.softmax(inner_scale * cos_clean, 1),
                  reduction="sum") / len(x)
    return outer + kl_weight * kl


def _bn_stats(model):
    return [t.clone() for name, t in model.state_dict().items() if "running" in name]


@pytest.mark.parametrize("inner_scale, train_start", [(1.0, "positive"), (10.0, "symmetric")])
def test_robal_loss_is_the_paper_formula(cosine_model, batch, inner_scale, train_start):
    x, y = batch
    params = {"counts": CIFAR10_LT, **ROBAL_R, "kl_weight": 6.0, "inner_scale": inner_scale,
              "train_start": train_start}
    a, b = copy.deepcopy(cosine_model), copy.deepcopy(cosine_model)  # BN statistics move during a call
    torch.manual_seed(7)
    loss = robal_loss(a, x, y, **ATTACK, **params)
    assert a.training, "the outer losses run in train mode"
    expected = _robal_by_hand(b, x, y, **params, seed=7)
    assert torch.allclose(loss, expected, rtol=1e-5)
    # four train-mode passes in the code's order: BatchNorm's running statistics move exactly as in the code
    for s1, s2 in zip(_bn_stats(a), _bn_stats(b)):
        assert torch.allclose(s1, s2, rtol=1e-6, atol=1e-7)
    c = copy.deepcopy(cosine_model)  # three passes (no weight-0 clean CE) leave other statistics
    torch.manual_seed(7)
    x_adv = pgd(c, x, y, **ATTACK, random_start=train_start, clip_start=train_start == "symmetric")
    with torch.no_grad():
        c(x_adv), c(x), c(x_adv)
    assert not all(torch.allclose(s1, s2, rtol=1e-6, atol=1e-7) for s1, s2 in zip(_bn_stats(a), _bn_stats(c)))


def test_robal_positive_start_is_unclipped_by_default_and_clip_start_overrides(cosine_model, batch):
    x, y = batch
    x = x.clone()
    x[:, :, -3:] = 1.0  # white rows: projecting the positive start onto [0, 1] removes its noise there
    params = {"counts": CIFAR10_LT, **ROBAL_R, "kl_weight": 6.0, "inner_scale": 1.0, "train_start": "positive"}
    assert official_clip_start("positive", None) is False and official_clip_start("symmetric", None) is True
    assert official_clip_start("positive", True) is True and official_clip_start("symmetric", False) is False
    losses = {}
    for clip in (None, False, True):
        torch.manual_seed(2)
        losses[clip] = robal_loss(copy.deepcopy(cosine_model), x, y, **ATTACK, **params, clip_start=clip)
    assert torch.equal(losses[None], losses[False])
    assert not torch.allclose(losses[None], losses[True], rtol=1e-6)
    expected = _robal_by_hand(copy.deepcopy(cosine_model), x, y, **params, seed=2, clip_start=True)
    assert torch.allclose(losses[True], expected, rtol=1e-5)


def test_robal_clean_branch_is_not_detached(cosine_model, batch):
    """The code backpropagates the KL through both branches; detaching the clean one changes the gradient."""
    x, y = batch
    params = {"counts": CIFAR10_LT, **ROBAL_R, "kl_weight": 6.0, "inner_scale": 1.0, "train_start": "symmetric"}
    a, b = copy.deepcopy(cosine_model), copy.deepcopy(cosine_model)
    torch.manual_seed(3)
    grads = torch.autograd.grad(robal_loss(a, x, y, **ATTACK, **params), list(a.parameters()))
    manual = _robal_by_hand(b, x, y, **params, seed=3)
    assert all(torch.allclose(g1, g2, rtol=1e-4, atol=1e-7)
               for g1, g2 in zip(grads, torch.autograd.grad(manual, list(b.parameters()))))
    c = copy.deepcopy(cosine_model)
    detached = _robal_by_hand(c, x, y, **params, seed=3, detach_clean=True)
    grads_detached = torch.autograd.grad(detached, list(c.parameters()))
    assert not all(torch.allclose(g1, g2, rtol=1e-4, atol=1e-7) for g1, g2 in zip(grads, grads_detached))


def test_robal_kl_weight_zero_is_the_margin_ce(cosine_model, batch):
    x, y = batch
    a, b = copy.deepcopy(cosine_model), copy.deepcopy(cosine_model)
    torch.manual_seed(5)
    loss = robal_loss(a, x, y, **ATTACK, counts=CIFAR10_LT, **ROBAL_R, kl_weight=0.0)
    torch.manual_seed(5)
    x_adv = pgd(b, x, y, **ATTACK, random_start="symmetric")
    m = class_margins(CIFAR10_LT, 10.0, 0.1, 0.3)
    expected = F.cross_entropy(robal_logits(b(x_adv), y, CIFAR10_LT, 10.0, m, 1.5), y)
    assert torch.allclose(loss, expected, rtol=1e-6)


def test_robal_loss_needs_a_scale_one_cosine_head(batch):
    x, y = batch
    params = {**ATTACK, "counts": CIFAR10_LT, **ROBAL_R, "kl_weight": 6.0}
    linear = build_model("small_cnn", dataset="cifar10", num_classes=10, in_channels=3, width=4)
    with pytest.raises(ConfigError, match="model='Classifier'.*CosineHead of scale 1"):
        robal_loss(linear, x, y, **params)
    scaled = build_model("small_cnn", dataset="cifar10", num_classes=10, in_channels=3, width=4, head="cosine",
                         head_scale=10.0)
    with pytest.raises(ConfigError, match="CosineHead of scale 1"):
        robal_loss(scaled, x, y, **params)


# ---------------------------------------------------------------------------------------------------------------
# Logit-adjusted training and fact 8: post-hoc adjustment (and the two signs)

def test_log_prior_hand_values():
    assert torch.allclose(log_prior([100, 10]), torch.tensor([math.log(100 / 110), math.log(10 / 110)]))
    assert torch.allclose(log_prior(torch.tensor([3, 3, 3])), torch.full((3,), math.log(1 / 3)))
    for bad in ([], [5, 0], [2.5, 1], "abc", 7, torch.tensor(4)):
        with pytest.raises(ConfigError, match="counts="):
            log_prior(bad)


def test_fact8_posthoc_adjustment():
    n, cos = [100, 10], torch.tensor([[0.2, 0.5]])
    identity = deploy(Identity(), posthoc(n, tau_p=0.0))
    assert torch.equal(identity(cos), cos)
    adjusted = deploy(Identity(), posthoc(n, tau_p=1.0, scale=10.0))
    assert torch.allclose(adjusted(cos), torch.tensor([[2.0953, 7.3979]]), atol=1e-4)


def test_fact8_training_adds_and_inference_subtracts_the_prior():
    n = [100, 10]
    z = torch.zeros(1, 2)
    prior = log_prior(n)  # log pi: the head's is the larger (less negative)
    assert prior[0] > prior[1]
    trained = logit_adjusted(z, n, tau=1.0)
    inferred = deploy(Identity(), posthoc(n, tau_p=1.0))(z)
    assert torch.allclose(trained, z + prior) and torch.allclose(inferred, z - prior)
    assert trained[0, 0] > trained[0, 1]  # training favours the head in the loss ...
    assert inferred[0, 1] > inferred[0, 0]  # ... so that at inference the shift favours the tail


def test_logit_adjusted_loss_formula_and_tau_zero_is_pgd_at(batch):
    x, y = batch
    model = build_model("small_cnn", dataset="cifar10", num_classes=10, in_channels=3, width=4, head_bias=False)
    assert model.head.bias is None
    a, b, c = copy.deepcopy(model), copy.deepcopy(model), copy.deepcopy(model)
    torch.manual_seed(4)
    loss = logit_adjusted_loss(a, x, y, **ATTACK, counts=CIFAR10_LT, tau=1.0, train_start="positive")
    torch.manual_seed(4)
    # the inner attack uses the plain CE; RoBal's code takes its first gradient at the unclipped positive start
    x_adv = pgd(b, x, y, **ATTACK, random_start="positive", clip_start=False)
    expected = F.cross_entropy(b(x_adv) + log_prior(CIFAR10_LT), y)
    assert torch.allclose(loss, expected, rtol=1e-6)
    torch.manual_seed(4)
    clipped = logit_adjusted_loss(copy.deepcopy(model), x, y, **ATTACK, counts=CIFAR10_LT, tau=1.0,
                                  train_start="positive", clip_start=True)
    d = copy.deepcopy(model)
    torch.manual_seed(4)
    x_clip = pgd(d, x, y, **ATTACK, random_start="positive", clip_start=True)
    assert torch.allclose(clipped, F.cross_entropy(d(x_clip) + log_prior(CIFAR10_LT), y), rtol=1e-6)
    assert not torch.allclose(clipped, loss, rtol=1e-6)  # the switch matters on these inputs
    torch.manual_seed(4)
    zero = logit_adjusted_loss(c, x, y, **ATTACK, counts=CIFAR10_LT, tau=0.0)
    torch.manual_seed(4)
    assert torch.allclose(zero, pgd_at_loss(copy.deepcopy(model), x, y, **ATTACK), rtol=1e-6)


def test_make_objective_binds_robal_and_logit_adjusted(cosine_model, batch):
    x, y = batch
    robal = make_objective("robal", **ATTACK, counts=torch.tensor(CIFAR10_LT), **ROBAL_R, kl_weight=6.0)
    assert robal.params["counts"] == CIFAR10_LT  # tensors become plain lists
    assert robal.name == "robal" and robal.params["clip_start"] is None and robal.params["train_start"] == "symmetric"
    assert robal.cache_spec()["params"]["counts"] == CIFAR10_LT and robal.cache_spec()["version"] >= 2
    a, b = copy.deepcopy(cosine_model), copy.deepcopy(cosine_model)
    torch.manual_seed(1)
    bound = robal(a, x, y)
    torch.manual_seed(1)
    assert torch.allclose(bound, robal_loss(b, x, y, **ATTACK, counts=CIFAR10_LT, **ROBAL_R, kl_weight=6.0))
    la = make_objective("logit_adjusted", **ATTACK, counts=[5, 3, 1, 1, 1, 1, 1, 1, 1, 1])
    linear = build_model("small_cnn", dataset="cifar10", num_classes=10, in_channels=3, width=4)
    assert la(linear, x, y).ndim == 0


@pytest.mark.parametrize("name, kwargs, match", [
    ("robal", {"s": 0}, "s=0"),
    ("robal", {"m0": -0.1}, "m0=-0.1"),
    ("robal", {"tau_b": float("nan")}, "tau_b=nan"),
    ("robal", {"kl_weight": -1}, "kl_weight=-1"),
    ("robal", {"inner_scale": 0}, "inner_scale=0"),
    ("robal", {"train_start": "negative"}, "train_start='negative'"),
    ("robal", {"clip_start": "yes"}, "clip_start='yes'"),
    ("pgd_at", {"clip_start": 1}, "clip_start=1"),
    ("pgd_at", {"train_start": "up"}, "train_start='up'"),
    ("trades", {"clip_start": None}, "clip_start=None"),
    ("robal", {"counts": [10, 0]}, r"counts=\[10, 0\]"),
    ("logit_adjusted", {"tau": float("inf")}, "tau=inf"),
    ("logit_adjusted", {"counts": [1.5, 2]}, r"counts=\[1.5, 2\]"),
])
def test_make_objective_rejects_bad_long_tail_values(name, kwargs, match):
    base = ({"counts": [10, 5], **ROBAL_R, "kl_weight": 6.0} if name == "robal" else
            {"counts": [10, 5]} if name == "logit_adjusted" else {})
    with pytest.raises(ConfigError, match=match):
        make_objective(name, **ATTACK, **{**base, **kwargs})


# ---------------------------------------------------------------------------------------------------------------
# Fact 9: multiplying the logits by c > 0 changes no prediction, no CW-margin sign and no APGD-DLR step

@pytest.mark.parametrize("c", [1e-3, 0.25, 4.0, 10.0, 1e3])
def test_fact9_logit_scale_invariants(c):
    torch.manual_seed(0)
    model = build_model("small_cnn", dataset="cifar10", num_classes=10, in_channels=3, width=4).eval()
    scaled = LogitScale(model, c).eval()
    g = torch.Generator().manual_seed(3)
    x = torch.rand(16, 3, 8, 8, generator=g)
    y = torch.randint(0, 10, (16,), generator=g)
    with torch.no_grad():
        z, zc = model(x), scaled(x)
    assert torch.allclose(zc, c * z, rtol=1e-6)
    assert torch.equal(z.argmax(1), zc.argmax(1))
    assert torch.equal(torch.sign(cw_margin(z, y)), torch.sign(cw_margin(zc, y)))
    dlr = APGDAttack(model, eps=8 / 255, loss="dlr", device="cpu")
    assert torch.allclose(dlr.dlr_loss(z, y), dlr.dlr_loss(zc, y), rtol=1e-4, atol=1e-6)
    targeted = APGDAttack_targeted(model, eps=8 / 255, device="cpu")
    targeted.y_target = (y + 1) % 10
    assert torch.allclose(targeted.dlr_loss_targeted(z, y), targeted.dlr_loss_targeted(zc, y), rtol=1e-4, atol=1e-6)
    runs = [APGDAttack(m, n_iter=10, eps=8 / 255, seed=0, loss="dlr", device="cpu").perturb(x, y)
            for m in (model, scaled)]
    assert torch.equal(runs[0], runs[1])


def test_logit_scale_rejects_bad_factor():
    for bad in (0, -1.0, float("nan")):
        with pytest.raises(ConfigError, match="factor="):
            LogitScale(Identity(), bad)
    with pytest.raises(ConfigError, match="tau_p=nan"):
        posthoc([2, 1], tau_p=float("nan"))


# ---------------------------------------------------------------------------------------------------------------
# The chapter config, the long-tailed split and a tiny end-to-end run

def test_cpu_and_paper_profiles():
    from advfair.experiments import CHAPTERS
    from advfair.experiments.robal import RobalConfig, make_config

    assert CHAPTERS["robal"].config is RobalConfig and set(RobalConfig.PROFILES) == {"cpu", "evidence", "paper"}
    cfg = make_config("cpu")
    assert isinstance(cfg, RobalConfig) and CHAPTERS["robal"].make_config("cpu") == cfg
    assert cfg.test_per_class == 100 and cfg.aa_per_class == 10 and cfg.seed == 1 and "trades" not in cfg.models
    assert cfg.clip_start is None and cfg.trades_clip_start is False and cfg.equivalence_margin == 0.02
    assert not hasattr(cfg, "kappa_per_class")
    assert cfg.counts() == [1000, 647, 419, 271, 175, 113, 73, 47, 30, 20]
    assert make_config("cpu", n_max=600).counts() == [600, 388, 251, 162, 105, 68, 44, 28, 18, 12]
    assert cfg.schedule == "code_compound" and cfg.train_start == "symmetric" and cfg.inner_scale == 1.0
    d = cfg.to_dict()
    assert json.loads(json.dumps(d)) == d and isinstance(d["kappa_grid"], list)
    paper = make_config("paper")
    assert paper.model == "wrn34_10" and paper.epochs == 80 and paper.milestones == (60, 75)
    assert paper.train_start == "positive" and paper.train_steps == 5 and paper.standard_aa
    assert paper.batch_size == 64 and paper.lr == 0.1 and paper.augment and not cfg.augment
    assert paper.n_max + paper.val_per_class <= 5000
    assert make_config("cpu", schedule="step", models=["at_fc"], kappa_grid=[0, 1]).models == ("at_fc",)
    assert cfg.models[0] == "plain" and "plain" in paper.models  # C1's reference, at both scales
    assert (cfg.rescale_tau, cfg.norm_tau) == (0.3, 1.0)  # Table S5's re-scaling; tau-norm as the released config
    assert cfg.ablation_tau_b == (0.0, 0.6) and cfg.robal_n_tau_b - cfg.robal_n_tau_m == 1.2  # three C9 values


@pytest.mark.parametrize("overrides, match", [
    ({"dataset": "svhn"}, "dataset='svhn'"),
    ({"dataset": "mnist", "augment": True}, "augment=True.*false on mnist"),
    ({"dataset": "mnist", "n_max": 5400}, "n_max=5400.*val_per_class"),  # class 5 has 5,421 training images
    ({"model": "vgg"}, "model='vgg'"),
    ({"n_max": 0}, "n_max=0"),
    ({"augment": "yes"}, "augment='yes'"),
    ({"n_max": 40}, "n_max=40.*rarest class"),  # 40 * 0.02 < 1: class 9 would have no image
    ({"n_max": 4990}, "n_max=4990.*val_per_class"),
    ({"imbalance": 0}, "imbalance=0"),
    ({"imbalance": 1.5}, "imbalance=1.5"),
    ({"sml_bal_per_class": 0}, "sml_bal_per_class=0"),
    ({"test_per_class": -1}, "test_per_class=-1"),
    ({"models": ["robal_n"]}, r"models=\['robal_n'\]"),
    ({"models": ["at_fc", "at_fc"]}, r"models=\['at_fc', 'at_fc'\]"),
    ({"models": ["at_fc", "ldam"]}, "models='ldam'"),
    ({"models": "at_fc"}, "models='at_fc'"),
    ({"train_start": "negative"}, "train_start='negative'"),
    ({"schedule": "paper_step"}, "schedule='paper_step'"),
    ({"milestones": [9]}, "milestones=9"),
    ({"epochs": 0}, "epochs=0"),
    ({"batch_size": 5000}, "batch_size=5000"),
    ({"eps": 0}, "eps=0"),
    ({"inner_scale": 0}, "inner_scale=0"),
    ({"kl_weight": -1}, "kl_weight=-1"),
    ({"robal_s": 0}, "robal_s=0"),
    ({"robal_m0": -0.1}, "robal_m0=-0.1"),
    ({"robal_n_tau_p": -0.1}, "robal_n_tau_p=-0.1"),
    ({"robal_r_tau_m": float("nan")}, "robal_r_tau_m=nan"),
    ({"cos_scale": 0}, "cos_scale=0"),
    ({"rescale_tau": -0.3}, "rescale_tau=-0.3"),
    ({"norm_tau": float("nan")}, "norm_tau=nan"),
    ({"la_post_grid": []}, r"la_post_grid=\[\]"),
    ({"la_post_grid": [-1]}, "la_post_grid=-1"),
    ({"tau_p_grid": [0, float("inf")]}, "tau_p_grid=inf"),
    ({"ablation_tau_b": [float("nan")]}, "ablation_tau_b=nan"),
    ({"kappa_grid": [1, 2]}, r"kappa_grid=\[1, 2\]"),
    ({"kappa_grid": [0, 12]}, "kappa_grid=12"),
    ({"logit_scale_attack": 1}, "logit_scale_attack=1"),
    ({"logit_scale_attack": 0}, "logit_scale_attack=0"),
    ({"aa_per_class": 0}, "aa_per_class=0"),
    ({"kappa_per_class": 1.5}, "kappa_per_class=1.5"),  # no longer a field
    ({"clip_start": "no"}, "clip_start='no'"),
    ({"trades_clip_start": None}, "trades_clip_start=None"),
    ({"equivalence_margin": 0}, "equivalence_margin=0"),
    ({"equivalence_margin": 1.5}, "equivalence_margin=1.5"),
    ({"n_boot": 0}, "n_boot=0"),
    ({"mim": "yes"}, "mim='yes'"),
    ({"standard_aa": 1}, "standard_aa=1"),
    ({"seed": -1}, "seed=-1"),
    ({"data_seed": 0.5}, "data_seed=0.5"),
    ({"device": "tpu"}, "device='tpu'"),
    ({"epochz": 3}, "epochz=3"),
])
def test_bad_config_values_name_the_field(overrides, match):
    from advfair.experiments.robal import make_config

    with pytest.raises(ConfigError, match=match) as info:
        make_config("cpu", **overrides)
    assert "not allowed" in str(info.value)


def test_long_tailed_split_is_the_ldam_draw(data_dir, ldam_reference):
    from advfair.splits import long_tailed_split

    if not (data_dir / "cifar10.npz").exists():
        pytest.skip("no cifar10.npz")
    split = long_tailed_split("cifar10", n_max=200, imbalance=0.1, val_per_class=20, test_per_class=30, data_seed=0,
                              data_dir=str(data_dir))
    y_train = split.data.y_train
    counts = long_tailed_counts(200, 0.1, 10)
    assert torch.bincount(y_train[split.train], minlength=10).tolist() == counts
    assert split.train.tolist() == ldam_reference(y_train, counts)
    assert not set(split.val.tolist()) & set(split.train.tolist())
    assert torch.bincount(y_train[split.val], minlength=10).tolist() == [20] * 10
    assert torch.bincount(split.data.y_test[split.test], minlength=10).tolist() == [30] * 10


def test_tiny_run_end_to_end(data_dir, tmp_path, monkeypatch):
    """The whole pipeline on a tiny config. AutoAttack is replaced by a cheap PGD stand-in (its own tests are in
    test_attacks.py): at this size it would take a minute and a half, and the wiring is what is tested here."""
    from advfair import attacks
    from advfair.experiments import robal
    from advfair.experiments.common import evaluation
    from advfair.experiments.robal import report

    if not (data_dir / "cifar10.npz").exists():
        pytest.skip("no cifar10.npz")
    aa_calls = []

    def aa_stand_in(model, x, y, *, eps, version="standard", batch_size=500, seed=0):
        aa_calls.append((len(x), version))
        generator = torch.Generator().manual_seed(seed)
        x_adv = attacks.pgd(model, x, y, eps=eps, alpha=eps / 4, steps=2, early_stop=True, generator=generator)
        return x_adv, ["stand-in warning"]

    monkeypatch.setattr(aa_module, "autoattack", aa_stand_in)
    cfg = robal.make_config("cpu", n_max=50, epochs=1, width=8, milestones=[], test_per_class=5, val_per_class=5,
                            eval_steps=5, aa_per_class=1, kappa_grid=[0, 2], ablation_tau_b=[0.0],
                            la_post_grid=[0.5, 1.0], tau_p_grid=[0.0, 1.0], n_boot=20, device="cpu",
                            models=list(robal.config.MODEL_KEYS),  # every model, TRADES included
                            data_dir=str(data_dir), cache_dir=str(tmp_path))
    results = robal.CHAPTER.run(cfg)
    assert json.loads(json.dumps(results)) == results and results["chapter"] == "robal"
    assert results["config_hash"] == cfg.config_hash()
    assert results["counts"] == [50, 32, 20, 13, 8, 5, 3, 2, 1, 1]
    assert results["split_sizes"] == {"long_tailed": 135, "sml_bal": 140, "val": 50, "test": 50, "aa_points": 10}
    assert list(results["evaluations"]) == ["plain", "sml_bal", "at_fc", "la_post", "rescale", "tau_norm", "at_cos",
                                            "la_train", "trades", "robal_n", "robal_r", "robal_r_s"]
    assert report.setup_table(results).loc["plain (no AT)", "training"] == "standard (clean CE)"
    rescale, tau_norm = (results["evaluations"][k] for k in ("rescale", "tau_norm"))
    assert rescale["model"] == tau_norm["model"] == "at_fc"
    assert rescale["inference"] == [{"kind": "class_scale", "factors": [c ** -0.3 for c in results["counts"]],
                                     "name": "n_c^−0.3"}]
    assert [s["kind"] for s in tau_norm["inference"]] == ["bias", "class_scale"]
    assert tau_norm["inference_label"] == "‖W_c‖^−1·(z − b)"
    assert tau_norm["inference"][1]["factors"] == pytest.approx([1 / w for w in results["weight_norms"]])
    assert results["evaluations"]["robal_n"]["inference"] == [
        {"kind": "scale", "factor": 10.0}, {"kind": "posthoc_shift", "tau_p": 0.1, "counts": results["counts"]}]
    assert results["evaluations"]["robal_n"]["inference_label"] == "10·z − 0.1·log π"
    la_post = results["evaluations"]["la_post"]
    assert la_post["model"] == "at_fc"
    assert la_post["inference"][0]["tau_p"] == results["validation"]["la_post"]["picked"]
    assert set(results["models"]) == {"plain", "sml_bal", "at_fc", "at_cos", "la_train", "trades", "robal_n", "robal_r",
                                      "ablation_tau_b0"}
    assert [r["tau_b_minus_tau_m"] for r in results["ablation"]["rows"]] == [0.0, 1.2]
    kappa = report.kappa_rows(results)
    assert [r["kappa"] for r in kappa] == [0, 2] and kappa[0]["clean"] == kappa[1]["clean"]
    # kappa = 0 is the baseline on the same points: its evaluation is the AT-FC evaluation itself
    assert results["kappa"]["evaluations"]["0"] == results["evaluations"]["at_fc"]
    assert kappa[0]["aa"] == results["evaluations"]["at_fc"]["reports"]["subset"]["attacks"]["aa"]["overall"]
    ev = results["evaluations"]["at_fc"]
    n = results["attack_roles"]
    assert set(ev["reports"]["all"]["attacks"]) == {"clean", n["pgd"], n["cw"], n["pgd_scaled"]}
    assert set(ev["reports"]["subset"]["attacks"]) == {"clean", n["pgd"], n["cw"], n["pgd_scaled"], "aa"}
    assert ev["points"] == {"all": 50, "subset": 10} and ev["attacks"]["aa"]["points"] == "subset"
    assert ev["warnings"] == {"aa": ["stand-in warning"]}  # AutoAttack's warnings are kept, not dropped
    assert aa_calls and all(size == 10 and version == "subset" for size, version in aa_calls)
    e = evaluation(results, "at_fc")
    assert e.correct("aa", "subset").shape == (10,) and e.correct(n["pgd"]).shape == (50,)
    assert set(results["groups"]) == {"head", "middle", "tail"}
    assert set(results["kappa"]) == {"grid", "evaluations"}  # C5 only: nothing is picked on the sweep
    for table in (report.setup_table, report.main_table, report.group_table, report.kappa_table,
                  report.remedy_table, report.ablation_table, report.paper_comparison):
        assert isinstance(table(results), pd.DataFrame) and len(table(results)) > 0
    # PGD accuracy minus PGD accuracy on scaled logits, class-balanced, paired on the same points, largest first
    fake = report.fake_gain_table(results)
    gains = [float(g.split(" [")[0]) for g in fake[f"{n['pgd'].upper()} − {n['pgd'].upper()} on 10× logits"]]
    assert len(fake) == len(results["evaluations"]) and gains == sorted(gains, reverse=True)
    for label, gain in zip(fake.index, gains):
        name = next(k for k, v in report.MODEL_LABELS.items() if v == label)
        per_class = results["evaluations"][name]["reports"]["all"]["attacks"]
        balanced = {a: sum(per_class[n[a]]["per_class"]) / len(results["classes"]) for a in ("pgd", "pgd_scaled")}
        assert gain == pytest.approx(100 * (balanced["pgd"] - balanced["pgd_scaled"]), abs=0.051)
    verdicts = report.verdicts(results)
    assert isinstance(verdicts, pd.DataFrame)
    assert set(verdicts.index) == {"C1", "C2", "C3", "C4", "C5", "C6", "C7", "C8", "C9", "C10–C12"}
    assert "AT-FC" in report.tail_summary(results)
    assert isinstance(report.feature_norm_summary(results), str) and isinstance(report.scale_notes(results), str)
    assert (report.paper_comparison(results)["verdict"] == "not comparable at this scale").all()
    assert set(robal.CHAPTER.key_numbers(results)) >= {"at_fc.clean", f"at_fc.{n['pgd']}", "at_fc.aa"}


def test_a_tiny_mnist_lt_run_trains_on_one_channel_digits(data_dir, tmp_path):
    """The evidence tier's proxy: the chapter runs on a long-tailed MNIST at MNIST's radius."""
    from advfair.experiments import robal

    if not (data_dir / "mnist.npz").exists():
        pytest.skip("no mnist.npz")
    cfg = robal.make_config("cpu", dataset="mnist", eps=0.3, train_alpha=0.1, eval_alpha=0.075, n_max=50, epochs=1,
                            width=4, milestones=[], test_per_class=3, val_per_class=3, eval_steps=2,
                            aa_per_class=1, aa_version="smoke", models=["at_fc"], kappa_grid=[0, 1],
                            ablation_tau_b=[], la_post_grid=[1.0], tau_p_grid=[0.0], n_boot=5, device="cpu",
                            data_dir=str(data_dir), cache_dir=str(tmp_path))
    results = robal.CHAPTER.run(cfg)
    assert results["classes"] == [str(d) for d in range(10)]  # MNIST's classes are its digits
    assert results["counts"] == [50, 32, 20, 13, 8, 5, 3, 2, 1, 1] and results["config"]["dataset"] == "mnist"
    assert results["split_sizes"]["test"] == 30 and "at_fc" in results["evaluations"]
