"""DUCAT's library layer: recovery and the attack views (advfair.inference), the two-hot targets, the soft CE,
the window and the schedule (advfair.objectives.ducat), the backbones (advfair.models) and the chapter's
config checks. One test per fact of the spec's §8, with hand-computed values, and every bad input."""
from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from advfair.evaluation import AttackSpec, Points, Protocol, evaluate
from advfair.experiments import ducat
from advfair.experiments.ducat import methods
from advfair.inference import (PairMax, attack_view, check_outputs, deploy, merged_log_probs, pair_max, recover,
                               recovery, spec_from_json, spec_label, spec_to_json)
from advfair.models import BottleneckResNet18Body, PreActResNet18Body, build_model, for_attacks
from advfair.objectives import make_objective
from advfair.objectives.ducat import (ducat_mart_loss, ducat_pgd_at_loss, ducat_targets, ducat_trades_loss,
                                      official_milestones, soft_ce, two_hot)
from advfair.objectives.mart import mart_inner_max, mart_loss
from advfair.objectives.pgd_at import pgd_at_loss
from advfair.objectives.trades import trades_inner_max
from advfair.trainer import TrainConfig, learning_rate
from advfair.validation import ConfigError

C = 10
ATTACK = {"eps": 8 / 255, "alpha": 2 / 255, "steps": 2}
CLASSES = tuple("abcdefghij")


class Fixed(nn.Module):
    """A "model" whose logits are its inputs."""

    def forward(self, x):
        return x


def _small(dummy: bool, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return build_model("small_cnn", dataset="cifar10", num_classes=C, in_channels=3, width=4, dummy_classes=dummy)


@pytest.fixture
def batch():
    g = torch.Generator().manual_seed(1)
    return torch.rand(12, 3, 8, 8, generator=g), torch.arange(12) % C


# ---- Fact 1-3: recovery, pairmax, merged ----

def test_fact1_recovery_maps_a_dummy_to_its_class():
    z = torch.zeros(2, 2 * C)
    z[0, 13] = 5.0  # argmax 13 = the dummy of class 3
    z[1, 3] = 5.0
    assert recover(z, C).tolist() == [3, 3]
    torch.manual_seed(0)
    z = torch.randn(5000, 2 * C)
    assert torch.equal(recover(z, C), pair_max(z, C).argmax(1))


def test_fact2_pairmax_argmax_is_recovery_on_every_input():
    torch.manual_seed(1)
    for scale in (0.1, 1.0, 30.0):
        z = scale * torch.randn(2000, 2 * C)
        served = deploy(Fixed(), recovery(C))
        assert served(z).shape == (2000, C)
        assert torch.equal(served(z).argmax(1), recover(z, C))
    m = pair_max(torch.tensor([[1.0, 4.0, 3.0, -2.0]]), 2)  # C = 2: max(1, 3), max(4, -2)
    assert m.tolist() == [[3.0, 4.0]]


def test_fact3_merged_is_a_log_distribution_and_its_ce_is_the_merged_likelihood():
    torch.manual_seed(2)
    z = torch.randn(500, 2 * C)
    y = torch.randint(0, C, (500,))
    m = merged_log_probs(z, C)
    assert torch.allclose(m.exp().sum(1), torch.ones(500), atol=1e-5)
    p = z.softmax(1)
    expected = -torch.log(p[torch.arange(500), y] + p[torch.arange(500), y + C])
    assert torch.allclose(F.nll_loss(m, y, reduction="none"), expected, atol=1e-5)
    assert torch.allclose(F.cross_entropy(m, y, reduction="none"), expected, atol=1e-5)  # m is normalised
    # hand value, C = 2: p = (1, 3, 2, 1) / 7, so p_0 + p_2 = 3/7 and p_1 + p_3 = 4/7
    z = torch.log(torch.tensor([[1.0, 3.0, 2.0, 1.0]]))
    assert torch.allclose(merged_log_probs(z, 2).exp(), torch.tensor([[3 / 7, 4 / 7]]))
    # its argmax may differ from recovery: p = (4, 1, 0.1, 3.5) / 8.6 recovers to class 0, merges to class 1
    z = torch.log(torch.tensor([[4.0, 1.0, 0.1, 3.5]]))
    assert recover(z, 2).item() == 0 and merged_log_probs(z, 2).argmax(1).item() == 1
    # on random logits only a share > 0 is asserted (it depends on the logit scale)
    z = torch.randn(5000, 2 * C)
    assert (merged_log_probs(z, C).argmax(1) != recover(z, C)).float().mean() > 0


def test_dawa_view_is_the_weighted_log_likelihood_of_y_and_its_dummy():
    z = torch.log(torch.tensor([[1.0, 3.0, 2.0, 2.0]]))  # p = (1, 3, 2, 2) / 8
    view = attack_view("dawa", Fixed(), 2, dummy=True, dawa_weight=0.5)
    assert torch.allclose(view(z), torch.tensor([[0.5 * math.log(1 / 8) + 0.5 * math.log(2 / 8),
                                                  0.5 * math.log(3 / 8) + 0.5 * math.log(2 / 8)]]), atol=1e-6)
    one_sided = attack_view("dawa", Fixed(), 2, dummy=True, dawa_weight=1.0)
    assert torch.allclose(one_sided(z), F.log_softmax(z, 1)[:, :2])


def test_pairmax_is_an_inference_step_as_data():
    spec = recovery(C)
    assert spec_to_json(spec) == [{"kind": "pair_max", "num_classes": C}]
    assert spec_from_json(spec_to_json(spec)) == spec
    assert spec_label(spec) == "max(z_c, z_(c+C))"
    with pytest.raises(ConfigError, match="num_classes=1"):
        PairMax(1)


# ---- Fact 4-5: two-hot targets and the soft CE ----

def test_fact4_two_hot_targets_hand_values():
    y = torch.tensor([3])
    t_ben, t_adv = ducat_targets(y, C, w_benign=0.25)
    expected = torch.zeros(1, 2 * C)
    expected[0, 3], expected[0, 13] = 0.75, 0.25
    assert torch.equal(t_ben, expected) and t_ben.sum().item() == 1.0
    assert torch.equal(t_adv, F.one_hot(torch.tensor([13]), 2 * C).float())  # default w_a = w_alpha = 1
    half = ducat_targets(y, C, w_benign=0.25, w_adv=0.5, w_alpha=0.5)[1]
    assert half[0, 3].item() == 0.25 and half[0, 13].item() == 0.25 and half.sum().item() == 0.5


def test_fact5_soft_ce_of_a_one_hot_is_the_hard_ce_and_targets_are_float():
    torch.manual_seed(3)
    z, y = torch.randn(7, 2 * C), torch.randint(0, 2 * C, (7,))
    assert torch.allclose(soft_ce(z, F.one_hot(y, 2 * C).float()), F.cross_entropy(z, y))
    t_ben, t_adv = ducat_targets(torch.tensor([1, 2]), C, w_benign=0, w_adv=1, w_alpha=1)  # ints, as in the code
    assert t_ben.dtype == t_adv.dtype == torch.float32
    assert two_hot(torch.tensor([0]), 2, 1).dtype == torch.float32
    # hand value: t = (0.75, 0.25) on z = (0, 0): -(0.75 + 0.25) log 1/2
    assert soft_ce(torch.zeros(1, 2), torch.tensor([[0.75, 0.25]])).item() == pytest.approx(math.log(2))


# ---- Fact 6-7: the window and the schedule ----

def test_fact6_window_and_learning_rate_of_the_130_epoch_code_schedule():
    objective = make_objective("ducat", **ATTACK, num_classes=C, start=105, end=130)
    active = []
    for epoch in range(130):  # the trainer's 0-based epochs
        objective.start_epoch(epoch)
        if objective.active():
            active.append(epoch + 1)
            assert objective.end_epoch(epoch) == {"ducat_active": True}
    assert active == list(range(105, 131)) and len(active) == 26
    cfg = methods.train_config(ducat.make_config("paper"))
    assert cfg.milestones == (101, 106) and cfg.schedule == "step" and cfg.epochs == 130
    lr = lambda e: learning_rate(cfg, e - 1)  # 1-based epoch e
    assert lr(1) == lr(100) == pytest.approx(0.1)
    assert lr(101) == lr(105) == pytest.approx(0.01)
    assert lr(106) == lr(130) == pytest.approx(0.001)
    direct = TrainConfig(epochs=130, lr=0.1, schedule="step", milestones=(101, 106))
    assert learning_rate(direct, 99.99) == pytest.approx(0.1) and learning_rate(direct, 100) == pytest.approx(0.01)


def test_cpu_schedule_keeps_the_shape_and_the_window_volume_of_the_code_schedule():
    cfg = ducat.make_config("cpu")
    tc = methods.train_config(cfg)
    assert tc.milestones == cfg.milestones
    lrs = [learning_rate(tc, e) for e in range(cfg.epochs)]
    assert lrs[0] == cfg.lr and lrs[-1] == pytest.approx(cfg.lr / 10)  # the lr drops at the end
    assert cfg.ducat_end == cfg.epochs and cfg.ducat_start > cfg.epochs // 2  # a late window up to the last epoch
    # window volume = sum over window epochs of steps x lr / base lr
    paper = ducat.make_config("paper")
    steps = math.ceil(49_000 / 128)  # the full training set minus the validation split, batch 128
    assert methods.window_volume(paper, 49_000) == pytest.approx(steps * 0.1 + 25 * steps * 0.01)
    cpu_steps = math.ceil(10 * cfg.train_per_class / cfg.batch_size)
    assert methods.window_volume(cfg, 10 * cfg.train_per_class) == pytest.approx(cpu_steps * (1 + 1 + 0.1))
    assert methods.window_volume(cfg, 10 * cfg.train_per_class) == pytest.approx(
        methods.window_volume(paper, 49_000), rel=0.05)


def test_fact7_official_milestone_rule():
    assert official_milestones(200) == (100, 150) and official_milestones(151) == (75, 113)
    assert official_milestones(100) == official_milestones(10) == (75, 90)
    assert official_milestones(130) == official_milestones(101) == official_milestones(150) == (100, 105)
    assert ducat.make_config("paper").milestones == (101, 106)  # the lr cut after epochs 100 and 105


# ---- Fact 8: outside the window a DUCAT step is a PGD-AT step on the 2C head ----

def _step(model, fn, x, y, seed):
    torch.manual_seed(seed)
    loss = fn(model, x, y)
    model.zero_grad(set_to_none=True)  # whatever the attack left in .grad (ours leaves nothing)
    return loss.detach(), torch.autograd.grad(loss, list(model.parameters()))


def test_fact8_outside_the_window_ducat_is_pgd_at_on_the_2c_head(batch):
    x, y = batch
    model = _small(dummy=True).train()
    a, b, c = copy.deepcopy(model), copy.deepcopy(model), copy.deepcopy(model)
    objective = make_objective("ducat", **ATTACK, num_classes=C, start=105, end=130)
    objective.start_epoch(1)  # epoch 2: before the window
    loss_d, grads_d = _step(a, objective, x, y, seed=4)
    loss_p, grads_p = _step(b, lambda m, x, y: pgd_at_loss(m, x, y, **ATTACK), x, y, seed=4)
    assert torch.equal(loss_d, loss_p)
    assert all(torch.equal(g1, g2) for g1, g2 in zip(grads_d, grads_p))
    for s1, s2 in zip(a.state_dict().values(), b.state_dict().values()):  # BatchNorm moved alike
        assert torch.equal(s1, s2)
    objective.start_epoch(104)  # epoch 105: inside, the loss differs (so the comparison above can fail)
    assert not torch.allclose(_step(c, objective, x, y, seed=4)[0], loss_p)


def test_inside_the_window_the_loss_is_the_soft_ce_over_both_halves(batch):
    x, y = batch
    model = _small(dummy=True).train()
    ours, ref = copy.deepcopy(model), copy.deepcopy(model)
    torch.manual_seed(5)
    loss = ducat_pgd_at_loss(ours, x, y, **ATTACK, num_classes=C, active=True, w_benign=0.25)
    torch.manual_seed(5)
    from advfair.attacks import pgd
    x_adv = pgd(ref, x, y, **ATTACK)
    log_p = F.log_softmax(ref(torch.cat([x, x_adv])), 1)
    expected = []
    for i in range(len(x)):  # hand formula, one row at a time
        yi = int(y[i])
        expected.append(-(0.75 * log_p[i, yi] + 0.25 * log_p[i, yi + C]))
    for i in range(len(x)):
        expected.append(-log_p[len(x) + i, int(y[i]) + C])
    assert torch.allclose(loss, torch.stack(expected).mean(), atol=1e-6)


def test_trades_variant_outside_the_window_is_ce_at_x_adv_plus_kl(batch):
    x, y = batch
    model = _small(dummy=True).train()
    ours, ref = copy.deepcopy(model), copy.deepcopy(model)
    torch.manual_seed(6)
    loss = ducat_trades_loss(ours, x, y, **ATTACK, num_classes=C, active=False, beta=0.0)
    torch.manual_seed(6)
    x_adv = trades_inner_max(ref, x, y, **ATTACK)
    assert torch.allclose(loss, F.cross_entropy(ref(x_adv), y))


def _same_state(a: nn.Module, b: nn.Module) -> bool:
    """Equal weights and BatchNorm running statistics (the order of train-mode passes moves the latter)."""
    return all(torch.allclose(s1.float(), s2.float(), atol=1e-6) for s1, s2 in
               zip(a.state_dict().values(), b.state_dict().values()))


def _kl_batchmean(logits_adv, logits_clean):
    p = F.softmax(logits_clean, 1)
    return (p * (F.log_softmax(logits_clean, 1) - F.log_softmax(logits_adv, 1))).sum(1).mean()


@pytest.mark.parametrize("active", [False, True])
def test_trades_variant_makes_the_code_s_three_train_mode_passes(batch, active):
    """The code's order: the main term's pass (x' outside the window, [x; x'] inside), then x', then x."""
    x, y = batch
    model = _small(dummy=True).train()
    ours, ref = copy.deepcopy(model), copy.deepcopy(model)
    torch.manual_seed(7)
    loss = ducat_trades_loss(ours, x, y, **ATTACK, num_classes=C, active=active, beta=6.0)
    torch.manual_seed(7)
    x_adv = trades_inner_max(ref, x, y, **ATTACK)
    if active:
        t = torch.cat([two_hot(y, C, 0.25), two_hot(y, C, 1.0)])
        main = -(t * F.log_softmax(ref(torch.cat([x, x_adv])), 1)).sum(1).mean()
    else:
        main = F.cross_entropy(ref(x_adv), y)
    logits_adv = ref(x_adv)
    expected = main + 6.0 * _kl_batchmean(logits_adv, ref(x))
    assert torch.allclose(loss, expected, atol=1e-6)
    assert _same_state(ours, ref)  # three passes in this order: BatchNorm's statistics as in the code
    two_pass = copy.deepcopy(model)  # the earlier two-pass order (x', x) leaves other statistics
    torch.manual_seed(7)
    x2 = trades_inner_max(two_pass, x, y, **ATTACK)
    two_pass(x2), two_pass(x)
    assert not _same_state(two_pass, ref)


def test_mart_variant_outside_the_window_is_mart_on_the_2c_head(batch):
    x, y = batch
    model = _small(dummy=True).train()
    a, b = copy.deepcopy(model), copy.deepcopy(model)
    loss_d, grads_d = _step(a, lambda m, u, v: ducat_mart_loss(m, u, v, **ATTACK, num_classes=C, active=False), x, y, 8)
    loss_m, grads_m = _step(b, lambda m, u, v: mart_loss(m, u, v, **ATTACK), x, y, 8)
    assert torch.equal(loss_d, loss_m) and all(torch.equal(g1, g2) for g1, g2 in zip(grads_d, grads_m))
    assert _same_state(a, b)


def test_mart_variant_inside_the_window_is_the_official_mart_loss_dummy(batch):
    """Hand formula of the code's `mart_loss_dummy`: passes x', [x; x'], x; CE_soft over 2B + the margin term on
    y' (the top class of p' over all 2C outputs other than y) + beta * mean KL(p || p') (1.0000001 - p_y)."""
    x, y = batch
    model = _small(dummy=True).train()
    ours, ref = copy.deepcopy(model), copy.deepcopy(model)
    torch.manual_seed(9)
    loss = ducat_mart_loss(ours, x, y, **ATTACK, num_classes=C, active=True, w_benign=0.25, beta=6.0)
    torch.manual_seed(9)
    x_adv = mart_inner_max(ref, x, y, **ATTACK)
    p_adv = F.softmax(ref(x_adv), 1)
    top2 = torch.argsort(p_adv, 1)[:, -2:]
    y_prime = torch.where(top2[:, -1] == y, top2[:, -2], top2[:, -1])
    t = torch.cat([two_hot(y, C, 0.25), two_hot(y, C, 1.0)])
    soft = -(t * F.log_softmax(ref(torch.cat([x, x_adv])), 1)).sum(1).mean()
    margin = F.nll_loss(torch.log(1.0001 - p_adv + 1e-12), y_prime)
    p_nat = F.softmax(ref(x), 1)
    kl = (p_nat * (torch.log(p_nat) - torch.log(p_adv + 1e-12))).sum(1)
    robust = (kl * (1.0000001 - p_nat.gather(1, y[:, None]).squeeze(1))).mean()
    assert torch.allclose(loss, soft + margin + 6.0 * robust, atol=1e-6)
    assert _same_state(ours, ref)


def test_each_base_has_its_cache_version_and_its_hyperparameters():
    versions = {base: make_objective("ducat", **ATTACK, num_classes=C, base=base).version
                for base in ("pgd_at", "trades", "mart")}
    assert versions == {"pgd_at": 1, "trades": 2, "mart": 1}  # TRADES' three-pass revision retrains its models
    mart = make_objective("ducat", **ATTACK, num_classes=C, base="mart", beta=3)
    assert mart.params["beta"] == 3.0 and "w_alpha" not in mart.params
    with pytest.raises(ConfigError, match="w_alpha=0.5.*base='mart'"):
        make_objective("ducat", **ATTACK, num_classes=C, base="mart", w_alpha=0.5)
    with pytest.raises(ConfigError, match="base='consistency'"):
        make_objective("ducat", **ATTACK, num_classes=C, base="consistency")


# ---- Fact 9-10: the views never change the mode; dummies at -1e4 change nothing ----

def test_fact9_views_keep_the_mode_and_have_c_columns(batch):
    x, y = batch
    model = _small(dummy=True).train()
    for name in ("pairmax", "merged", "dawa"):
        view = attack_view(name, model, C, dummy=True)
        assert view(x).shape == (len(x), C) and model.training
        AttackSpec(steps=2, loss="nll" if name != "pairmax" else "ce", early_stop=False).run(
            view, x, y, eps=8 / 255, seed=0, batch_size=6)
        assert model.training
    model.eval()
    assert attack_view("merged", model, C, dummy=True)(x).shape == (len(x), C) and not model.training
    assert attack_view("raw2C", model, C, dummy=True) is model


class WithDeadDummies(nn.Module):
    """A C-way model with C dummy logits fixed at -1e4."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x):
        z = self.model(x)
        return torch.cat([z, torch.full_like(z, -1e4)], 1)


def test_fact10_dead_dummies_give_no_trap_and_the_c_way_model_s_accuracy(batch):
    x, y = batch
    base = _small(dummy=False).eval()
    padded = WithDeadDummies(base).eval()
    points = Points.of(x, y, CLASSES)
    attacks = {"raw2C": AttackSpec(steps=3, view="raw2C", early_stop=False),
               "merged": AttackSpec(steps=3, loss="nll", view="merged", early_stop=False),
               "pairmax": AttackSpec(steps=3)}
    protocol = Protocol(8 / 255, attacks, seed=3)
    views = lambda m, dummy: {v: attack_view(v, m, C, dummy=dummy) for v in ("raw2C", "merged")}
    two = evaluate(deploy(padded, recovery(C)), points, protocol, views=views(padded, True), side={"raw2C": padded})
    one = evaluate(base, points, protocol, views=views(base, False))
    for attack in ("clean", *attacks):
        assert np.array_equal(two.correct(attack), one.correct(attack)), attack
        assert not (two.side["raw2C"][attack] >= C).any()  # never a dummy: share 0


# ---- The backbones ----

def test_bottleneck18_is_the_official_code_s_resnet18():
    model = build_model("bottleneck18", dataset="cifar10", num_classes=C, in_channels=3)
    assert isinstance(model.body, BottleneckResNet18Body) and model.head.in_features == 2048
    # conv/BN/linear parameters of ResNet(Bottleneck, [2, 2, 2, 2]), counted by hand in the chapter's notes
    assert sum(p.numel() for p in model.parameters()) == 13_958_986
    wide = build_model("bottleneck18", dataset="cifar10", num_classes=C, in_channels=3, dummy_classes=True)
    assert wide.head.out_features == 2 * C
    assert sum(p.numel() for p in wide.parameters()) == 13_958_986 + 2048 * C + C  # only the head widens
    model.eval()
    x = torch.rand(2, 3, 32, 32)
    assert model(x).shape == (2, C)
    assert torch.allclose(for_attacks(model)(x), model(x), atol=1e-4)  # its conv-BN pairs fold


def test_preact18_is_preact_resnet18():
    model = build_model("preact18", dataset="cifar10", num_classes=C, in_channels=3)
    assert isinstance(model.body, PreActResNet18Body) and sum(p.numel() for p in model.parameters()) == 11_172_170
    assert methods.model_spec(ducat.make_config("cpu", model="preact18"), True)["name"] == "preact_resnet18"


# ---- Bad input: each names the field, the value and what is allowed ----

@pytest.mark.parametrize("overrides, match", [
    ({"ducat_end": 11}, r"ducat_end=11 is not allowed: expected epochs in \[1, epochs=10\]"),
    ({"ducat_start": 0}, r"ducat_start=0 is not allowed: expected epochs in \[1, epochs=10\]"),
    ({"ducat_start": 9, "ducat_end": 8}, r"ducat_start=9 is not allowed: expected at most ducat_end=8"),
    ({"epochs": 5, "ducat_start": 8}, r"ducat_start=8 is not allowed: expected epochs in \[1, epochs=5\]"),
    ({"w_benign": 1.5}, r"w_benign=1.5 is not allowed: expected a finite number in \[0, 1\]"),
    ({"w_adv": -0.1}, r"w_adv=-0.1 is not allowed"),
    ({"w_alpha": 2}, r"w_alpha=2 is not allowed"),
    ({"ablation_w_benign": [0.0, 1.2]}, r"ablation_w_benign=1.2 is not allowed"),
    ({"dawa_weight": 2.0}, r"dawa_weight=2.0 is not allowed"),
    ({"model": "resnet50"}, r"model='resnet50' is not allowed: expected one of 'small_cnn', 'bottleneck18'"),
    ({"select_view": "logits"}, r"select_view='logits' is not allowed: expected one of 'raw2C'"),
    ({"checkpoint": "test"}, r"checkpoint='test' is not allowed"),
    ({"milestones": [8, 7]}, r"milestones=\[8, 7\] is not allowed: expected strictly increasing"),
    ({"milestones": [11]}, r"milestones=11 is not allowed"),
    ({"plugins": ["consistency"]}, r"plugins='consistency' is not allowed: expected one of 'trades', 'mart'"),
    ({"plugins": ["mart", "mart"]}, r"plugins=\['mart', 'mart'\] is not allowed: expected distinct bases"),
    ({"trades_ducat": True}, r"trades_ducat=True"),  # replaced by `plugins`
])
def test_config_rejects_bad_values(overrides, match):
    with pytest.raises(ConfigError, match=match):
        ducat.make_config("cpu", **overrides)


def test_library_rejects_bad_values(batch):
    x, y = batch
    with pytest.raises(ConfigError, match=r"start=5 is not allowed: expected at most end=3"):
        make_objective("ducat", **ATTACK, num_classes=C, start=5, end=3)
    with pytest.raises(ConfigError, match=r"w_benign=1.5 is not allowed: expected a finite number in \[0, 1\]"):
        make_objective("ducat", **ATTACK, num_classes=C, w_benign=1.5)
    with pytest.raises(ConfigError, match=r"view='logits' is not allowed: expected one of 'raw2C'"):
        attack_view("logits", Fixed(), C, dummy=True)
    with pytest.raises(ConfigError, match=r"model='resnet50' is not allowed"):
        build_model("resnet50", dataset="cifar10", num_classes=C, in_channels=3)
    with pytest.raises(ConfigError, match=r"epoch=None is not allowed"):
        make_objective("ducat", **ATTACK, num_classes=C)(_small(True), x, y)
    ints = make_objective("ducat", **ATTACK, num_classes=C, w_benign=0, w_adv=1, w_alpha=1)
    assert ints.params["w_benign"] == 0.0 and isinstance(ints.params["w_adv"], float)  # one cache key for 1 and 1.0


def test_a_c_way_model_where_a_2c_one_is_expected_and_the_reverse(batch):
    x, y = batch
    c_way, two_c = _small(dummy=False), _small(dummy=True)
    objective = make_objective("ducat", **ATTACK, num_classes=C, start=1, end=1)
    objective.start_epoch(0)
    with pytest.raises(ConfigError, match=r"outputs=10 is not allowed: expected 20 outputs: a 2C dummy-class model"):
        objective(c_way.train(), x, y)
    with pytest.raises(ConfigError, match=r"outputs=10 is not allowed: expected 20 outputs"):
        deploy(c_way, recovery(C))(x)
    with pytest.raises(ConfigError, match=r"outputs=10 is not allowed"):
        attack_view("merged", c_way, C, dummy=True)(x)
    with pytest.raises(ConfigError, match=r"outputs=20 is not allowed: expected 10 outputs, one per class"):
        check_outputs(two_c, x, C, dummy=False)
    with pytest.raises(ConfigError, match=r"outputs=10 is not allowed: expected 20 outputs"):
        check_outputs(c_way, x, C, dummy=True)
    check_outputs(deploy(two_c, recovery(C)), x, C, dummy=False)  # served with recovery it is C-way
    two_c.train()
    check_outputs(two_c, x, C, dummy=True)
    assert two_c.training  # check_outputs makes its one pass in eval mode and restores the mode
