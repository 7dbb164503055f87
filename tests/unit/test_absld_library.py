"""The shared-layer additions of the ABSLD chapter besides the distillation losses: MobileNet-v2 (CIFAR form),
PGD-AT with class-dependent label smoothing (the teacher-free C3 demo) and checkpoint selection on validation."""
from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from advfair.data import Dataset
from advfair.cache import ModelCache, spec_key
from advfair.selection import SelectionRule, last_epoch, selected_epoch, train_selected
from advfair.training import model_spec_of, train_cached
from advfair.mobilenet import FEATURES, mobilenet_v2_body
from advfair.models import Classifier, LinearHead, Normalize, build_model, for_attacks
from advfair.objectives import make_objective
from advfair.objectives.label_smoothing import (class_smoothing, label_smoothing_pgd_at, label_smoothing_pgd_at_loss,
                                                smoothed_targets)
from advfair.objectives.pgd_at import pgd_at_loss
from advfair.splits import Split
from advfair.trainer import TrainConfig, train
from advfair.validation import ConfigError

ATTACK = {"eps": 8 / 255, "alpha": 2 / 255, "steps": 2}


# ---- MobileNet-v2 ----

def test_mobilenet_v2_parameters_shape_and_structure():
    model = mobilenet_v2()
    assert isinstance(model, Classifier) and isinstance(model.normalize, Normalize)
    assert isinstance(model.head, LinearHead) and model.head.in_features == FEATURES == 1280
    # the standard inverted-residual table: torchvision's MobileNetV2 has 3,504,872 parameters with 1000 classes,
    # so 3,504,872 - 1281 * 990 = 2,236,682 with 10 (the CIFAR strides change no parameter count)
    assert sum(p.numel() for p in model.parameters()) == 2_236_682
    torchvision = pytest.importorskip("torchvision")
    assert sum(p.numel() for p in torchvision.models.mobilenet_v2(num_classes=10).parameters()) == 2_236_682
    x = torch.rand(2, 3, 32, 32)
    model.eval()
    assert model(x).shape == (2, 10)
    body, features = mobilenet_v2_body(3)
    assert features == 1280 and body[:-2](torch.rand(2, 3, 32, 32)).shape == (2, 1280, 4, 4)  # stride 8 in all
    residuals = [m.residual for m in body.modules() if hasattr(m, "residual")]
    assert len(residuals) == 17 and sum(residuals) == 10  # identity shortcuts where stride 1 and channels match


def mobilenet_v2():
    """ABSLD's second student as the library builds it: normalisation, MobileNet-v2 body, linear head."""
    return build_model("mobilenet_v2", dataset="cifar10", num_classes=10, in_channels=3)


def test_mobilenet_v2_folds_for_attacks_and_restores_nothing_it_should_not():
    model = mobilenet_v2().eval()
    folded = for_attacks(model)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in folded.modules())
    x = torch.rand(3, 3, 32, 32)
    assert torch.allclose(folded(x), model(x), atol=1e-4)
    assert any(isinstance(m, nn.BatchNorm2d) for m in model.modules())  # the original is untouched


# ---- class-dependent label smoothing ----

def test_smoothed_targets_hand_values():
    q = smoothed_targets(torch.tensor([0, 2]), torch.tensor([0.2, 0.0, 0.4, 0.0]), 4)
    assert torch.allclose(q, torch.tensor([[0.85, 0.05, 0.05, 0.05], [0.1, 0.1, 0.7, 0.1]]))
    assert class_smoothing(4, [1], 0.05, 0.3) == [0.3, 0.05, 0.3, 0.3]


@pytest.fixture
def model():
    torch.manual_seed(0)
    return build_model("small_cnn", dataset="cifar10", num_classes=10, in_channels=3, width=4).train()


@pytest.fixture
def batch():
    g = torch.Generator().manual_seed(1)
    return torch.rand(12, 3, 8, 8, generator=g), torch.arange(12) % 10


def test_zero_smoothing_is_pgd_at_and_uniform_smoothing_is_label_smoothing(model, batch):
    x, y = batch
    a, b, c = copy.deepcopy(model), copy.deepcopy(model), copy.deepcopy(model)
    torch.manual_seed(2)
    zero = label_smoothing_pgd_at_loss(a, x, y, smoothing=[0.0] * 10, **ATTACK)
    torch.manual_seed(2)
    assert torch.allclose(zero, pgd_at_loss(b, x, y, **ATTACK), rtol=1e-6)
    torch.manual_seed(2)
    uniform = label_smoothing_pgd_at_loss(c, x, y, smoothing=[0.2] * 10, **ATTACK)
    d = copy.deepcopy(model)
    torch.manual_seed(2)
    from advfair.attacks import pgd
    x_adv = pgd(d, x, y, **ATTACK)
    assert torch.allclose(uniform, F.cross_entropy(d(x_adv), y, label_smoothing=0.2), rtol=1e-6)


def test_label_smoothing_objective_and_bad_input():
    obj = label_smoothing_pgd_at(**ATTACK, smoothing=class_smoothing(10, [3, 5], 0.05, 0.3))
    assert obj.cache_spec()["name"] == "label_smoothing_pgd_at" and obj.cache_spec()["params"]["smoothing"][3] == 0.05
    with pytest.raises(ConfigError, match=r"smoothing=1\.0 is not allowed: expected a finite number in \[0, 1\)"):
        label_smoothing_pgd_at(**ATTACK, smoothing=[1.0] * 10)
    with pytest.raises(ConfigError, match=r"hard classes=12 is not allowed"):
        class_smoothing(10, [12], 0.05, 0.3)


# ---- checkpoint selection on validation ----

def tiny_split() -> Split:
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (60, 3, 8, 8), generator=g, dtype=torch.uint8)
    y = torch.arange(60) % 10
    data = Dataset("cifar10", x, y, x[:20], y[:20], tuple(str(c) for c in range(10)))
    return Split(data, torch.arange(40), torch.arange(40, 60), torch.arange(20), {"dataset": "cifar10", "toy": True})


SPECS = {"model_spec": {"name": "small_cnn", "width": 4}}
CONSTANT = TrainConfig(epochs=3, batch_size=20, lr=0.05, schedule="constant", augment=False, seed=1)


def test_selection_returns_the_best_validation_epoch_and_enters_the_cache_key(tmp_path, monkeypatch):
    scores = iter([0.1, 0.5, 0.3])
    monkeypatch.setattr(SelectionRule, "score", lambda self, m, x, y, n: {"val_mean": 0.0, "val_worst": 0.0,
                                                                          "val_score": next(scores)})
    rule = SelectionRule(eps=8 / 255, steps=2, alpha=2 / 255)
    objective = make_objective("pgd_at", **ATTACK)
    cache = ModelCache(tmp_path)
    model, meta = train_selected(cache, tiny_split(), **SPECS, objective=objective, train_cfg=CONSTANT, rule=rule,
                                 device=torch.device("cpu"))
    assert [h["selected"] for h in meta["history"]] == [False, True, False] and selected_epoch(meta["history"]) == 2
    assert [h["val_score"] for h in meta["history"]] == [0.1, 0.5, 0.3]
    # the weights of epoch 2: a constant-lr run of 2 epochs reaches the same weights (each epoch is seeded alike)
    x, y = tiny_split().images("train")
    torch.manual_seed(CONSTANT.seed)
    two = build_model(dataset="cifar10", num_classes=10, in_channels=3, **SPECS["model_spec"])
    train(two, objective, x, y, TrainConfig(**{**CONSTANT.to_dict(), "epochs": 2, "milestones": ()}))
    for k, v in model.state_dict().items():
        assert torch.equal(v, two.state_dict()[k]), k
    plain = model_spec_of(tiny_split().spec, SPECS["model_spec"], objective, CONSTANT)
    assert meta["key"] != spec_key(plain) and meta["spec"]["selection"] == rule.to_dict()
    assert not list(tmp_path.glob("*.best")) and not list(tmp_path.glob("*.ckpt"))
    again, meta2 = train_selected(cache, tiny_split(), **SPECS, objective=objective, train_cfg=CONSTANT, rule=rule,
                                  device=torch.device("cpu"))
    assert meta2["from_cache"] and torch.equal(again.head.weight, model.head.weight)
    _, last = train_cached(cache, tiny_split(), **SPECS, objective=objective, train_cfg=CONSTANT,
                           device=torch.device("cpu"))
    assert last["from_cache"] and selected_epoch(last["history"]) == 3  # written by train_selected
    assert not any("selected" in h for h in last["history"]) and [h["val_score"] for h in last["history"]] == \
        [0.1, 0.5, 0.3]


def test_the_last_epoch_of_a_selected_training_is_the_plain_trainings(tmp_path):
    """The real validation attack runs between the epochs: the last epoch cached under the plain key is still
    bit for bit the model a training without selection gives (so that key never holds other weights)."""
    rule = SelectionRule(eps=8 / 255, steps=2, alpha=2 / 255, seed=3)
    objective, cpu = make_objective("pgd_at", **ATTACK), torch.device("cpu")
    selecting = ModelCache(tmp_path / "selecting")
    selected, meta = train_selected(selecting, tiny_split(), **SPECS, objective=objective, train_cfg=CONSTANT,
                                    rule=rule, device=cpu)
    last, last_meta = last_epoch(selecting, tiny_split(), **SPECS, objective=objective, train_cfg=CONSTANT, device=cpu)
    assert last_meta["from_cache"] and last_meta["key"] == spec_key(model_spec_of(tiny_split().spec,
                                                                                  SPECS["model_spec"], objective,
                                                                                  CONSTANT))
    plain, plain_meta = train_cached(ModelCache(tmp_path / "plain"), tiny_split(), **SPECS, objective=objective,
                                     train_cfg=CONSTANT, device=cpu)
    assert not plain_meta["from_cache"]
    for k, v in plain.state_dict().items():
        assert torch.equal(v, last.state_dict()[k]), k
    assert [h["loss"] for h in last_meta["history"]] == [h["loss"] for h in plain_meta["history"]]
    if selected_epoch(meta["history"]) != 3:  # another epoch was selected: other weights
        assert not torch.equal(selected.head.weight, last.head.weight)


def test_selection_rule_schedule_and_score():
    rule = SelectionRule(eps=8 / 255, steps=2, alpha=2 / 255, every=10, dense_from=215)
    due = [e for e in range(1, 301) if rule.due(e, 300)]
    assert due[:3] == [10, 20, 30] and 214 not in due and all(e in due for e in range(215, 301))
    torch.manual_seed(0)
    net = build_model("small_cnn", dataset="cifar10", num_classes=10, in_channels=3, width=4).eval()
    x, y = torch.rand(20, 3, 8, 8), torch.arange(20) % 10
    s = rule.score(net, x, y, 10)
    assert s["val_score"] == pytest.approx(s["val_mean"] + s["val_worst"]) and 0 <= s["val_worst"] <= s["val_mean"] <= 1
    with pytest.raises(ConfigError, match="select_every=0"):
        SelectionRule(eps=8 / 255, steps=2, alpha=2 / 255, every=0)
