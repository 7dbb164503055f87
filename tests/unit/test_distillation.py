"""ABSLD, RSLAD and ARD (advfair.objectives.distillation, distill_objectives): every fact of the ABSLD spec §8
with hand-computed values, §9's timing example, the frozen teacher (device, eval mode, cache key), the
Fair-ARD-style re-weighting, resume exactness of the temperatures, and bad input."""
from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from advfair.evaluation.metrics import spread
from advfair.evaluation.paired import nsd
from advfair.experiments.absld import make_config
from advfair.experiments.absld import methods as absld_methods
from advfair.cache import spec_key
from advfair.training import model_spec_of
from advfair.models import build_model
from advfair.objectives import distillation
from advfair.objectives.distill_objectives import ABSLD, Distillation, ReweightedRSLAD
from advfair.objectives.distillation import (ard_loss, scale_by_class, soft_kl, soft_labels, teacher_logits,
                                             temperature_update)
from advfair.objectives.trades import trades_loss
from advfair.trainer import TrainConfig, learning_rate, train
from advfair.validation import ConfigError

ATTACK = {"eps": 8 / 255, "alpha": 2 / 255, "steps": 2}


def small(seed: int = 0, num_classes: int = 10) -> nn.Module:
    torch.manual_seed(seed)
    return build_model("small_cnn", dataset="cifar10", num_classes=num_classes, in_channels=3, width=4)


@pytest.fixture
def student():
    return small(0).train()


@pytest.fixture
def teacher():
    return small(1).eval()


@pytest.fixture
def batch():
    g = torch.Generator().manual_seed(1)
    return torch.rand(12, 3, 8, 8, generator=g), torch.arange(12) % 10


class Spy:
    """Wraps `distillation.kl_inner_max` to record its soft-label target and the adversarial points it returns."""

    def __init__(self, monkeypatch):
        self.calls = []
        original = distillation.kl_inner_max

        def spy(model, x, y, p, **kw):
            x_adv = original(model, x, y, p, **kw)
            self.calls.append((p.clone(), x_adv.clone()))
            return x_adv

        monkeypatch.setattr(distillation, "kl_inner_max", spy)


def loss_and_grads(model, objective, x, y, seed):
    torch.manual_seed(seed)
    out = objective(model, x, y)
    loss = out.loss if hasattr(out, "loss") else out
    return loss.detach(), torch.autograd.grad(loss, list(model.parameters()))


# ---- fact 1: ABSLD with τ ≡ 1 and η_τ = 0 is RSLAD: same target, adversarial examples, loss and gradients ----

@pytest.mark.parametrize("frozen", [False, True])
def test_fact1_absld_with_unit_temperatures_is_rslad(student, teacher, batch, monkeypatch, frozen):
    x, y = batch
    spy = Spy(monkeypatch)
    rslad = Distillation(teacher, "teacher-key", num_classes=10, method="rslad", **ATTACK)
    absld = ABSLD(teacher, "teacher-key", num_classes=10, eta=0.0, **ATTACK,
                  frozen=([1.0] * 10, [1.0] * 10) if frozen else None)
    a, b = copy.deepcopy(student), copy.deepcopy(student)  # BatchNorm's running stats move during a call
    loss_r, grads_r = loss_and_grads(a, rslad, x, y, seed=5)
    loss_a, grads_a = loss_and_grads(b, absld, x, y, seed=5)
    (p_r, adv_r), (p_a, adv_a) = spy.calls
    assert torch.equal(p_r, p_a) and torch.equal(adv_r, adv_a)
    assert not torch.equal(adv_r, x)
    assert torch.equal(loss_r, loss_a)
    for g1, g2 in zip(grads_r, grads_a):
        assert torch.equal(g1, g2)
    for k, v in a.state_dict().items():  # the same train-mode passes
        assert torch.equal(v, b.state_dict()[k]), k
    absld.end_epoch(0)  # η_τ = 0 (or frozen): the temperatures stay 1
    assert torch.equal(absld.tau_adv, torch.ones(10, dtype=torch.float64))
    # other temperatures change the loss, so the comparison above can fail
    other = ABSLD(teacher, "teacher-key", num_classes=10, frozen=([0.5] * 10, [2.0] * 10), **ATTACK)
    loss_o, _ = loss_and_grads(copy.deepcopy(student), other, x, y, seed=5)
    assert not torch.allclose(loss_o, loss_r)


def test_rslad_loss_hand_formula(student, teacher, batch, monkeypatch):
    x, y = batch
    spy = Spy(monkeypatch)
    reference = copy.deepcopy(student)
    torch.manual_seed(3)
    loss = distillation.rslad_loss(student, x, y, teacher=teacher, kl_scale=2.0, **ATTACK)
    p, x_adv = spy.calls[0]
    logits_adv, logits_nat = reference(x_adv), reference(x)  # the same two train-mode passes, in that order
    c = p.shape[1]
    expected = 2.0 * (5 / 6 * F.kl_div(F.log_softmax(logits_adv, 1), p, reduction="batchmean") / c +
                      1 / 6 * F.kl_div(F.log_softmax(logits_nat, 1), p, reduction="batchmean") / c)
    assert torch.allclose(loss, expected, rtol=1e-5)
    assert (x_adv - x).abs().max() <= ATTACK["eps"] + 1e-6 and x_adv.min() >= 0 and x_adv.max() <= 1


def test_kl_inner_max_starts_unclipped_and_ascends_the_kl(student, teacher, batch, monkeypatch):
    x, y = batch
    x = x.clone()
    x[0] = 0.0  # a black image: a clipped start would keep only positive noise
    starts = []
    original = distillation.pgd

    def recording_pgd(model, x_, y_, **kw):
        starts.append((kw["x_init"].clone(), kw["clip_start"]))
        return original(model, x_, y_, **kw)

    monkeypatch.setattr(distillation, "pgd", recording_pgd)
    p = F.softmax(teacher_logits(teacher, x), 1)
    torch.manual_seed(0)
    x_adv = distillation.kl_inner_max(student, x, y, p, **ATTACK)
    start, clip = starts[0]
    assert clip is False and (start[0] < 0).any()  # x + 0.001 N(0, I), outside [0, 1] on the black image
    assert (start - x).abs().max() < 0.01
    assert student.training  # the attack restores train mode
    kl = lambda z: F.kl_div(F.log_softmax(z, 1), p, reduction="sum")
    student.eval()
    assert kl(student(x_adv)) > kl(student(x))


# ---- fact 2: the temperature update ----

def test_fact2_temperature_update_example():
    tau = temperature_update(torch.ones(4, dtype=torch.float64), torch.tensor([3.0, 1, 1, 1], dtype=torch.float64), 0.1)
    assert tau.tolist() == pytest.approx([0.9, 1 + 0.1 / 3, 1 + 0.1 / 3, 1 + 0.1 / 3], abs=1e-12)
    assert tau.tolist() == pytest.approx([0.9, 1.0333333, 1.0333333, 1.0333333], abs=1e-6)


def test_fact2_the_most_extreme_class_moves_by_exactly_eta():
    risk = torch.tensor([0.3, 2.5, 1.0, 1.7, 0.9], dtype=torch.float64)
    tau = torch.tensor([1.0, 2.0, 1.5, 0.8, 3.0], dtype=torch.float64)
    moved = temperature_update(tau, risk, 0.25) - tau
    assert moved.abs().max().item() == pytest.approx(0.25, abs=1e-12)
    assert moved.abs().argmax().item() == 1 and moved[1] < 0  # the hardest class: lower temperature
    g = risk - risk.mean()
    assert torch.allclose(moved, -0.25 * g / g.abs().max())


def test_fact2_clipping_to_the_bounds():
    risk = torch.tensor([3.0, 1, 1, 1], dtype=torch.float64)
    tau = torch.tensor([0.55, 4.99, 1.0, 1.0], dtype=torch.float64)
    out = temperature_update(tau, risk, 0.1, 0.5, 5.0)
    assert out.tolist() == pytest.approx([0.5, 5.0, 1 + 0.1 / 3, 1 + 0.1 / 3])
    assert temperature_update(torch.ones(4), risk, 10.0, 0.5, 5.0).tolist() == pytest.approx([0.5, 4.3333333, 4.3333333,
                                                                                              4.3333333], abs=1e-5)


def test_fact2_zero_gap_guard_skips_the_update():
    tau = torch.tensor([0.7, 1.2, 3.0], dtype=torch.float64)
    out = temperature_update(tau, torch.full((3,), 2.0, dtype=torch.float64), 0.1)
    assert torch.equal(out, tau) and torch.isfinite(out).all()


def four_class_absld(**kw) -> ABSLD:
    return ABSLD(small(1, num_classes=4), "k", num_classes=4, **{**ATTACK, **kw})


def test_fact2_in_the_objective_per_class_means_and_the_epoch_215_example():
    obj = four_class_absld(eta=0.1, decay_epochs=(215, 260, 285))
    obj.sums = torch.tensor([[6.0, 1, 1, 1], [6.0, 1, 1, 1], [2, 1, 1, 1]], dtype=torch.float64)  # means [3, 1, 1, 1]
    record = obj.end_epoch(0)  # epoch 1: no decay
    assert record["tau_adv"] == pytest.approx([0.9, 1.0333333, 1.0333333, 1.0333333], abs=1e-6)
    assert record["tau_nat"] == record["tau_adv"] and record["risk_adv"] == [3.0, 1.0, 1.0, 1.0]
    assert record["eta_tau"] == 0.1 and obj.sums.abs().sum() == 0  # reset every epoch
    late = four_class_absld(eta=0.1, decay_epochs=(215, 260, 285))
    late.sums = torch.tensor([[3.0, 1, 1, 1], [3.0, 1, 1, 1], [1, 1, 1, 1]], dtype=torch.float64)
    record = late.end_epoch(214)  # the end of epoch 215: η_τ decays first, then the update uses it
    assert record["tau_adv"] == pytest.approx([0.99, 1.0033333, 1.0033333, 1.0033333], abs=1e-6)
    assert record["eta_tau"] == pytest.approx(0.01)


def test_a_class_without_samples_does_not_move():
    obj = four_class_absld(eta=0.1)
    obj.sums = torch.tensor([[3.0, 1, 0, 1], [3.0, 1, 0, 1], [1, 1, 0, 1]], dtype=torch.float64)
    record = obj.end_epoch(0)  # class 2's risk is the mean of the others' (5/3), which is the mean of all: g = 0
    assert record["risk_adv"] == pytest.approx([3.0, 1.0, 5 / 3, 1.0])
    assert record["tau_adv"][2] == pytest.approx(1.0, abs=1e-12)
    assert all(math.isfinite(t) for t in record["tau_adv"])


# ---- facts 3, 4: the product mode reproduces the script's aliasing; vectorised scaling = the row loop ----

def code_aliased(z: torch.Tensor, y: torch.Tensor, tau_adv: torch.Tensor, tau_nat: torch.Tensor):
    """The released script's scaling: two .detach() views of one tensor, each divided row by row in place."""
    logits = z.clone()
    adv, nat = logits.detach(), logits.detach()
    for i in range(len(y)):
        adv[i] = adv[i] / tau_adv[y[i]]
        nat[i] = nat[i] / tau_nat[y[i]]
    return logits, adv, nat


def test_fact3_code_product_reproduces_the_aliasing():
    g = torch.Generator().manual_seed(0)
    z, y = torch.randn(6, 4, generator=g), torch.tensor([0, 1, 2, 3, 0, 1])
    ta, tn = torch.tensor([0.5, 1.0, 2.0, 4.0]), torch.tensor([2.0, 0.5, 1.0, 3.0])
    logits, adv, nat = code_aliased(z, y, ta, tn)
    product = z / (ta[y] * tn[y])[:, None]
    for t in (logits, adv, nat):  # all three share one storage: each is z / (τ^adv_y · τ^nat_y)
        assert torch.allclose(t, product, rtol=1e-6)
    assert not torch.allclose(adv, z / ta[y][:, None])
    p_adv, p_nat = soft_labels(z, y, ta, tn, "code_product")
    assert torch.allclose(p_adv, F.softmax(adv, 1), rtol=1e-5) and torch.equal(p_adv, p_nat)
    s_adv, s_nat = soft_labels(z, y, ta, tn, "separate")  # the intent: two temperatures
    assert torch.allclose(s_adv, F.softmax(z / ta[y][:, None], 1))
    assert torch.allclose(s_nat, F.softmax(z / tn[y][:, None], 1))


def test_fact4_vectorised_scaling_equals_the_row_loop():
    g = torch.Generator().manual_seed(2)
    z, y, tau = torch.randn(9, 5, generator=g), torch.randint(0, 5, (9,), generator=g), torch.rand(5, generator=g) + 0.5
    loop = torch.stack([z[i] / tau[y[i]] for i in range(len(y))])
    assert torch.equal(scale_by_class(z, tau, y), loop)


# ---- fact 5: the KL averaged over B×C ----

def test_fact5_soft_kl_hand_value_and_the_code_form():
    s, p = torch.tensor([[0.0, math.log(3.0)]]), torch.tensor([[0.5, 0.5]])
    # q = (1/4, 3/4): KL(p || q) = 0.5 ln 2 + 0.5 ln(2/3) = 0.5 ln(4/3), over C = 2 entries
    assert soft_kl(s, p).item() == pytest.approx(0.25 * math.log(4 / 3), rel=1e-6)
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(8, 10, generator=g).requires_grad_(True)
    p = F.softmax(torch.randn(8, 10, generator=g) * 3, 1)
    ours = soft_kl(logits, p)
    batch_mean_kl = (p * (p.log() - F.log_softmax(logits, 1))).sum(1).mean()
    assert ours.item() == pytest.approx(batch_mean_kl.item() / 10, rel=1e-6)
    code = (p * torch.log(p + 1e-5) - p * torch.log(F.softmax(logits, 1))).mean()  # ABSLD's code
    offset = (p * (torch.log(p + 1e-5) - p.log())).mean()
    assert (code - ours).item() == pytest.approx(offset.item(), abs=1e-6) and abs(offset.item()) < 1e-5
    g_ours, = torch.autograd.grad(ours, logits)
    g_code, = torch.autograd.grad(code, logits)
    assert torch.allclose(g_ours, g_code, atol=1e-8)


# ---- fact 6: lower τ, lower entropy ----

def test_fact6_entropy_increases_with_the_temperature():
    z = torch.tensor([[2.0, 0.5, -1.0, 0.0]])
    entropies = []
    for tau in (0.25, 0.5, 1.0, 2.0, 5.0, 25.0):
        p = F.softmax(z / tau, 1)
        entropies.append(float(-(p * p.log()).sum()))
    assert all(a < b for a, b in zip(entropies, entropies[1:]))
    p_hard, p_soft = soft_labels(z, torch.tensor([0]), torch.tensor([0.5, 1, 1, 1]), torch.tensor([2.0, 1, 1, 1]))
    assert p_hard.max() > F.softmax(z, 1).max() > p_soft.max()


# ---- fact 7: NSD ----

def test_fact7_nsd():
    assert nsd(np.array([0.5, 1.0])) == pytest.approx(1 / 3)
    assert spread(np.array([0.5, 1.0]))["nsd"] == pytest.approx(0.25 / 0.75)
    assert nsd(np.full(10, 0.4)) == 0.0 and spread(np.full(10, 0.4))["nsd"] == 0.0


# ---- fact 8: TRADES β = 0 is clean CE; ARD α = 1, t = 1 is KL(T(x) ‖ S(x')) ----

def test_fact8_trades_with_beta_zero_is_clean_ce(student, batch):
    x, y = batch
    a, b = copy.deepcopy(student), copy.deepcopy(student)
    torch.manual_seed(0)
    loss = trades_loss(a, x, y, beta=0.0, **ATTACK)
    ce = F.cross_entropy(b(x), y)
    assert torch.allclose(loss, ce, rtol=1e-6)
    for g1, g2 in zip(torch.autograd.grad(loss, list(a.parameters())), torch.autograd.grad(ce, list(b.parameters()))):
        assert torch.allclose(g1, g2, rtol=1e-5, atol=1e-7)


def test_fact8_ard_with_alpha_one_and_t_one_is_the_kl_to_the_teacher(student, teacher, batch, monkeypatch):
    x, y = batch
    seen = []
    original = distillation.pgd
    monkeypatch.setattr(distillation, "pgd", lambda *a, **k: seen.append(original(*a, **k)) or seen[-1])
    reference = copy.deepcopy(student)
    torch.manual_seed(1)
    loss = ard_loss(student, x, y, teacher=teacher, t=1.0, ard_alpha=1.0, **ATTACK)
    expected = soft_kl(reference(seen[0]), F.softmax(teacher(x), 1))
    assert torch.allclose(loss, expected, rtol=1e-5)
    # and the general form: α t² KL_t(T(x) ‖ S(x')) + (1 − α) CE(S(x), y), hand-written
    reference = copy.deepcopy(student)
    torch.manual_seed(1)
    loss = ard_loss(student, x, y, teacher=teacher, t=4.0, ard_alpha=0.7, **ATTACK)
    za, zn = reference(seen[1]), reference(x)
    p = F.softmax(teacher(x) / 4, 1)
    kl = (p * (p.log() - F.log_softmax(za / 4, 1))).sum(1).mean() / 10
    assert torch.allclose(loss, 0.7 * 16 * kl + 0.3 * F.cross_entropy(zn, y), rtol=1e-5)


# ---- fact 9: RSLAD's inner target is the teacher on the clean x ----

class Recorder(nn.Module):
    def __init__(self, inner: nn.Module):
        super().__init__()
        self.inner, self.seen = inner, []

    def forward(self, x):
        self.seen.append(x.detach().clone())
        return self.inner(x)


@pytest.mark.parametrize("method", ["rslad", "absld"])
def test_fact9_the_inner_target_is_the_teacher_on_clean_x(student, teacher, batch, monkeypatch, method):
    x, y = batch
    spy = Spy(monkeypatch)
    recorder = Recorder(teacher)
    objective = (Distillation(recorder, "k", num_classes=10, **ATTACK) if method == "rslad"
                 else ABSLD(recorder, "k", num_classes=10, **ATTACK))
    torch.manual_seed(0)
    objective(student, x, y)
    assert len(recorder.seen) == 1 and torch.equal(recorder.seen[0], x)  # once, on the clean batch
    p, x_adv = spy.calls[0]
    assert torch.allclose(p, F.softmax(teacher(x), 1)) and not torch.allclose(p, F.softmax(teacher(x_adv), 1))


# ---- fact 10: η_τ decays in the same epochs as the learning rate ----

def test_fact10_eta_decays_with_the_learning_rate(teacher):
    cfg = make_config("cpu", epochs=4, milestones=[3, 4], eta_tau=0.5, lr=0.05)
    tc = absld_methods.train_config(cfg)
    assert tc.milestones == (3, 4) and tc.schedule == "step"
    g = torch.Generator().manual_seed(0)
    x, y = torch.randint(0, 256, (40, 3, 8, 8), generator=g, dtype=torch.uint8), torch.arange(40) % 10
    history = train(small(2), absld_methods.absld(cfg, teacher, "k", "separate"), x, y,
                    TrainConfig(**{**tc.to_dict(), "batch_size": 20, "milestones": tc.milestones}))
    etas = [h["eta_tau"] for h in history]
    assert etas == pytest.approx([0.5, 0.05, 0.005, 0.005])
    lrs = [learning_rate(tc, e) for e in range(4)]
    assert lrs == pytest.approx([0.05, 0.05, 0.005, 0.0005])
    for e in range(3):  # the η_τ used at the end of epoch e+1 is η_0 · lr(epoch e+2) / lr_0
        assert etas[e] / 0.5 == pytest.approx(lrs[e + 1] / 0.05)
    # the code's 215/260/285 of 300 at the paper profile
    paper = make_config("paper")
    assert paper.decay_epochs() == (215, 260, 285)
    assert absld_methods.train_config(paper).milestones == (216, 261, 286)
    assert [learning_rate(absld_methods.train_config(paper), e - 1) for e in (215, 216, 260, 261, 285, 286)] == \
        pytest.approx([0.1, 0.01, 0.01, 0.001, 0.001, 1e-4])


# ---- the frozen teacher: device, eval mode, the cache key ----

def test_teacher_is_frozen_in_eval_mode_and_moved_with_the_objective(student, batch):
    teacher = small(1).train()
    obj = ABSLD(teacher, "k", num_classes=10, **ATTACK)
    assert not teacher.training and not any(p.requires_grad for p in teacher.parameters())
    teacher.train()
    obj.to("cpu")
    assert not teacher.training
    before = copy.deepcopy(teacher.state_dict())
    x, y = batch
    train(student, obj, (x * 255).to(torch.uint8), y, TrainConfig(epochs=1, batch_size=6, augment=False))
    assert not teacher.training
    for k, v in teacher.state_dict().items():  # BatchNorm's running statistics untouched
        assert torch.equal(v, before[k]), k
    if torch.cuda.is_available():
        obj.to("cuda")
        assert all(p.device.type == "cuda" for p in teacher.parameters()) and not teacher.training


def test_the_cache_key_changes_with_the_teacher_key(teacher):
    data, model = {"dataset": "cifar10"}, {"name": "small_cnn", "width": 4}
    tc = TrainConfig(epochs=1)
    keys = {}
    for name, make in (("rslad", lambda k: Distillation(teacher, k, num_classes=10, **ATTACK)),
                       ("absld", lambda k: ABSLD(teacher, k, num_classes=10, **ATTACK)),
                       ("fair", lambda k: ReweightedRSLAD(teacher, k, num_classes=10, **ATTACK))):
        one, two = make("teacher-a"), make("teacher-b")
        assert one.cache_spec()["aux"] == {"teacher": "teacher-a"}
        keys[name] = {spec_key(model_spec_of(data, model, o, tc)) for o in (one, two, make("teacher-a"))}
        assert len(keys[name]) == 2  # a and b differ, a twice is the same key
    assert len(set.union(*keys.values())) == 6
    modes = {spec_key(model_spec_of(data, model, ABSLD(teacher, "t", num_classes=10, mode=m, **ATTACK), tc))
             for m in ("separate", "code_product")}
    assert len(modes) == 2


# ---- the re-weighted RSLAD (Fair-ARD style) ----

def test_reweighted_rslad_starts_as_rslad_and_reweights_by_robust_steps(student, teacher, batch, monkeypatch):
    x, y = batch
    fair = ReweightedRSLAD(teacher, "k", num_classes=10, **ATTACK)
    a, b = copy.deepcopy(student), copy.deepcopy(student)
    torch.manual_seed(4)
    loss_f = fair(a, x, y)
    torch.manual_seed(4)
    loss_r = Distillation(teacher, "k", num_classes=10, **ATTACK)(b, x, y)
    assert torch.allclose(loss_f, loss_r, rtol=1e-5)  # weights 1 in the first epoch
    # κ_k = mean number of inner steps the student stays correct: a constant "class 0" student
    constant = nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 10))
    nn.init.zeros_(constant[1].weight)
    with torch.no_grad():
        constant[1].bias.copy_(torch.tensor([5.0] + [0.0] * 9))
    fair = ReweightedRSLAD(teacher, "k", num_classes=10, **ATTACK)
    fair(constant, x, y)
    record = fair.end_epoch(0)
    assert record["kappa"] == [2.0] + [0.0] * 9
    # w ∝ κ^−2 (κ floored at 1e-3), rescaled to sum to C, clipped to [5/6, 5/2]
    assert record["class_weights"] == pytest.approx([5 / 6] + [10 / 9] * 9, rel=1e-5)
    fair.sums = torch.tensor([[2.0, 1, 1, 1, 1, 1, 1, 1, 1, 1], [1.0] * 10], dtype=torch.float64)
    raw = np.array([0.25] + [1.0] * 9)
    assert fair.end_epoch(1)["class_weights"] == pytest.approx(np.clip(raw * 10 / raw.sum(), 5 / 6, 5 / 2).tolist())


# ---- resume exactness ----

class Interrupted(Exception):
    pass


class Forgetful(ABSLD):
    def load_state_dict(self, state):  # drops the temperatures on resume
        pass


def _without_timing(history):
    return [{k: v for k, v in r.items() if k not in ("seconds", "images_per_second")} for r in history]


def test_an_interrupted_absld_run_resumes_with_the_same_temperatures_weights_and_history(tmp_path):
    g = torch.Generator().manual_seed(0)
    x, y = torch.randint(0, 256, (48, 3, 8, 8), generator=g, dtype=torch.uint8), torch.arange(48) % 10
    cfg = TrainConfig(epochs=3, batch_size=16, lr=0.05, schedule="step", milestones=(3,), seed=1)
    make = lambda cls=ABSLD: cls(small(1), "k", num_classes=10, eta=0.3, decay_epochs=(2,), mode="code_product",
                                 **ATTACK)
    reference_obj, reference = make(), small(0)
    ref_history = train(reference, reference_obj, x, y, cfg)
    assert len({tuple(h["tau_adv"]) for h in ref_history}) == 3  # the temperatures move every epoch

    def interrupt(epoch, record):
        if epoch == 0:
            raise Interrupted

    with pytest.raises(Interrupted):
        train(small(0), make(), x, y, cfg, checkpoint=tmp_path / "run.ckpt", on_epoch_end=interrupt)
    state = torch.load(tmp_path / "run.ckpt", weights_only=False)["objective"]
    assert state["tau_adv"].tolist() == ref_history[0]["tau_adv"]
    resumed_obj, resumed = make(), small(99)
    history = train(resumed, resumed_obj, x, y, cfg, checkpoint=tmp_path / "run.ckpt")
    assert _without_timing(history) == _without_timing(ref_history)
    assert torch.equal(resumed_obj.tau_adv, reference_obj.tau_adv) and torch.equal(resumed_obj.tau_nat,
                                                                                     reference_obj.tau_nat)
    assert resumed_obj.eta == reference_obj.eta
    for k, v in resumed.state_dict().items():
        assert torch.equal(v, reference.state_dict()[k]), k
    # an objective that loses its state on resume ends elsewhere: the comparison above can fail
    with pytest.raises(Interrupted):
        train(small(0), make(), x, y, cfg, checkpoint=tmp_path / "lossy.ckpt", on_epoch_end=interrupt)
    lossy_obj = make(Forgetful)
    lossy_history = train(small(0), lossy_obj, x, y, cfg, checkpoint=tmp_path / "lossy.ckpt")
    assert lossy_history[-1]["tau_adv"] != ref_history[-1]["tau_adv"]


# ---- fact 11 and the bad input: errors name the field, the value and what is allowed ----

@pytest.mark.parametrize("kwargs, match", [
    ({"tau_min": 5.0, "tau_max": 5.0}, r"tau_min=5\.0 is not allowed: expected a temperature below tau_max=5"),
    ({"tau_min": 6.0, "tau_max": 5.0}, r"tau_min=6\.0 is not allowed"),
    ({"eta": -0.1}, r"eta_tau=-0\.1 is not allowed: expected a finite number in \[0, inf\)"),
    ({"mode": "product"}, r"absld_mode='product' is not allowed: expected one of 'separate', 'code_product'"),
    ({"frozen": ([1.0] * 3, [1.0] * 10)}, r"frozen=\[1\.0, 1\.0, 1\.0\] is not allowed"),
    ({"frozen": ([1.0] * 10, [0.0] * 10)}, r"frozen=0\.0 is not allowed"),
    ({"decay_epochs": (0,)}, r"decay_epochs=0 is not allowed"),
])
def test_fact11_bad_absld_settings_name_the_field(teacher, kwargs, match):
    with pytest.raises(ConfigError, match=match):
        ABSLD(teacher, "k", num_classes=10, **{**ATTACK, **kwargs})


@pytest.mark.parametrize("overrides, match", [
    ({"tau_min": 2.0, "tau_max": 1.0}, r"tau_min=2\.0 is not allowed: expected a temperature below tau_max=1"),
    ({"tau_min": 1.0, "tau_max": 1.0}, r"tau_min=1\.0 is not allowed"),
    ({"eta_tau": -0.5}, r"eta_tau=-0\.5 is not allowed"),
    ({"absld_mode": "aliased"}, r"absld_mode='aliased' is not allowed: expected one of 'separate', 'code_product'"),
])
def test_fact11_bad_config_fields_name_the_field(overrides, match):
    with pytest.raises(ConfigError, match=match):
        make_config("cpu", **overrides)


def test_a_teacher_with_another_class_count_is_refused():
    with pytest.raises(ConfigError, match=r"teacher='a classifier with 4 outputs' is not allowed: expected a teacher "
                                          r"with the student's 10 classes"):
        ABSLD(small(1, num_classes=4), "k", num_classes=10, **ATTACK)
    with pytest.raises(ConfigError, match="teacher="):
        Distillation(small(1, num_classes=100), "k", num_classes=10, **ATTACK)
    with pytest.raises(ConfigError, match="teacher_key=''"):
        Distillation(small(1), "", num_classes=10, **ATTACK)
    with pytest.raises(ConfigError, match="method='kd'"):
        Distillation(small(1), "k", num_classes=10, method="kd", **ATTACK)
