"""advfair.trainer: config validation, learning-rate schedules, device choice, checkpoint + resume, atomic saves."""
from __future__ import annotations

import math

import pytest
import torch

from advfair.models import build_model
from advfair.objectives import make_objective
from advfair.trainer import TrainConfig, learning_rate, resolve_device, save_atomic, train
from advfair.validation import ConfigError


# ---------------------------------------------------------------------------------------------------------------
# TrainConfig

@pytest.mark.parametrize("kwargs, match", [
    ({"epochs": -1}, "epochs=-1"),
    ({"epochs": 0}, "epochs=0"),
    ({"epochs": 2.5}, "epochs=2.5"),
    ({"lr": 0}, "lr=0"),
    ({"lr": float("inf")}, "lr=inf"),
    ({"schedule": "bogus"}, "schedule='bogus'"),
    ({"momentum": 1.0}, "momentum=1.0"),
    ({"momentum": -0.1}, "momentum=-0.1"),
    ({"batch_size": 0}, "batch_size=0"),
    ({"weight_decay": -1e-4}, "weight_decay=-0.0001"),
    ({"gamma": 0}, "gamma=0"),
    ({"augment": "yes"}, "augment='yes'"),
    ({"seed": -1}, "seed=-1"),
    ({"milestones": (3, 20)}, "milestones=20"),
])
def test_train_config_rejects_bad_values(kwargs, match):
    with pytest.raises(ConfigError, match=match) as info:
        TrainConfig(**{"epochs": 10, **kwargs})
    assert "not allowed" in str(info.value)


def test_train_config_to_dict_roundtrip():
    cfg = TrainConfig(epochs=10, schedule="step", milestones=(5, 8))
    d = cfg.to_dict()
    assert d["milestones"] == [5, 8] and d["epochs"] == 10
    assert TrainConfig(**{**d, "milestones": tuple(d["milestones"])}) == cfg


# ---------------------------------------------------------------------------------------------------------------
# Learning rate (RoBal fact 10; `epoch` is 0-based, so lr(e) for 1-based epoch e is learning_rate(cfg, e - 1))

def test_code_compound_schedule():
    cfg = TrainConfig(epochs=80, lr=0.1, schedule="code_compound", milestones=(60, 75))
    expected = {59: 0.1, 60: 1e-2, 61: 1e-3, 74: 1e-16, 75: 1e-18, 80: 1e-28}
    for e, lr in expected.items():
        assert learning_rate(cfg, e - 1) == pytest.approx(lr, rel=1e-9), e
    # constant within an epoch
    assert learning_rate(cfg, 60.5) == learning_rate(cfg, 60.0)


def test_step_schedule():
    cfg = TrainConfig(epochs=80, lr=0.1, schedule="step", milestones=(60, 75))
    for e in range(1, 81):
        expected = 0.1 if e < 60 else 0.01 if e < 75 else 0.001
        assert learning_rate(cfg, e - 1) == pytest.approx(expected, rel=1e-12), e
        assert learning_rate(cfg, e - 1 + 0.99) == pytest.approx(expected, rel=1e-12), e


def test_cosine_and_constant_schedules():
    cfg = TrainConfig(epochs=10, lr=0.2, schedule="cosine")
    assert learning_rate(cfg, 0) == pytest.approx(0.2)
    assert learning_rate(cfg, 5) == pytest.approx(0.1)
    assert learning_rate(cfg, 2.5) == pytest.approx(0.1 * (1 + math.cos(math.pi / 4)))
    assert learning_rate(cfg, 10) == pytest.approx(0.0, abs=1e-12)
    values = [learning_rate(cfg, i / 7) for i in range(70)]
    assert all(a > b for a, b in zip(values, values[1:]))  # per iteration, not per epoch
    const = TrainConfig(epochs=10, lr=0.3, schedule="constant", milestones=(5,))
    assert {learning_rate(const, e) for e in (0, 4.5, 9.9)} == {0.3}


# ---------------------------------------------------------------------------------------------------------------
# Device

def test_resolve_device():
    assert resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(ConfigError, match="device='tpu'"):
        resolve_device("tpu")
    if torch.cuda.is_available():
        assert resolve_device("auto").type == "cuda"
    else:
        assert resolve_device("auto") == torch.device("cpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available here")
@pytest.mark.parametrize("device", ["cuda", "cuda:0"])
def test_resolve_device_cuda_without_cuda(device):
    with pytest.raises(ConfigError, match=f"device='{device}'") as info:
        resolve_device(device)
    assert "CUDA is not available" in str(info.value)


# ---------------------------------------------------------------------------------------------------------------
# Checkpoint + resume

class Interrupted(Exception):
    pass


def _fresh_model(seed=0):
    torch.manual_seed(seed)
    return build_model("small_cnn", dataset="cifar10", num_classes=10, in_channels=3, width=4)


@pytest.fixture(scope="module")
def train_data():
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (64, 3, 8, 8), generator=g, dtype=torch.uint8)
    return x, torch.arange(64) % 10


OBJECTIVE = make_objective("pgd_at", eps=8 / 255, alpha=4 / 255, steps=1)
CFG = TrainConfig(epochs=2, batch_size=32, lr=0.05, seed=3)


def test_train_returns_history_and_changes_weights(train_data):
    x, y = train_data
    model = _fresh_model()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x_copy = x.clone()
    history = train(model, OBJECTIVE, x, y, CFG)
    assert [h["epoch"] for h in history] == [1, 2]
    assert all(math.isfinite(h["loss"]) and h["loss"] > 0 for h in history)
    assert not model.training
    assert torch.equal(x, x_copy)
    assert not torch.equal(model.head.weight, before["head.weight"])
    # deterministic on CPU for a fixed seed
    again = _fresh_model()
    train(again, OBJECTIVE, x, y, CFG)
    for key, value in model.state_dict().items():
        assert torch.equal(value, again.state_dict()[key]), key


def test_interrupted_run_resumes_exactly(train_data, tmp_path):
    x, y = train_data
    reference = _fresh_model()
    ref_history = train(reference, OBJECTIVE, x, y, CFG)

    checkpoint = tmp_path / "run.ckpt"
    calls = []

    def interrupt(epoch, record):
        calls.append(epoch)
        if epoch == 0:
            raise Interrupted

    with pytest.raises(Interrupted):
        train(_fresh_model(), OBJECTIVE, x, y, CFG, checkpoint=checkpoint, on_epoch_end=interrupt)
    assert checkpoint.exists() and calls == [0]
    state = torch.load(checkpoint, weights_only=False)
    assert state["epoch"] == 0 and len(state["history"]) == 1

    resumed = _fresh_model(seed=99)  # different initial weights: the checkpoint must replace them
    history = train(resumed, OBJECTIVE, x, y, CFG, checkpoint=checkpoint, on_epoch_end=interrupt)
    assert calls == [0, 1]  # only the second epoch ran
    assert [h["epoch"] for h in history] == [1, 2]
    assert [h["loss"] for h in history] == [h["loss"] for h in ref_history]
    ref_state = reference.state_dict()
    for key, value in resumed.state_dict().items():
        assert torch.equal(value, ref_state[key]), key
    assert not list(tmp_path.glob("*.tmp"))

    # a finished checkpoint: calling again trains nothing and keeps the weights
    calls.clear()
    again = _fresh_model(seed=7)
    train(again, OBJECTIVE, x, y, CFG, checkpoint=checkpoint, on_epoch_end=interrupt)
    assert calls == []
    assert torch.equal(again.head.weight, reference.head.weight)


def test_checkpoint_from_other_config_is_rejected(train_data, tmp_path):
    x, y = train_data
    checkpoint = tmp_path / "run.ckpt"
    one_epoch = TrainConfig(epochs=1, batch_size=32, lr=0.05, seed=3)
    train(_fresh_model(), OBJECTIVE, x[:32], y[:32], one_epoch, checkpoint=checkpoint)
    with pytest.raises(ConfigError, match="checkpoint="):
        train(_fresh_model(), OBJECTIVE, x[:32], y[:32], TrainConfig(epochs=1, batch_size=32, lr=0.01, seed=3),
              checkpoint=checkpoint)
    assert not list(tmp_path.glob("*.tmp"))


def test_save_atomic_keeps_old_file_when_save_fails(tmp_path, monkeypatch):
    path = tmp_path / "weights.pt"
    save_atomic({"a": torch.tensor([1.0, 2.0])}, path)
    assert torch.equal(torch.load(path)["a"], torch.tensor([1.0, 2.0]))

    def broken_save(obj, f, *args, **kwargs):
        with open(f, "wb") as handle:
            handle.write(b"half-writ")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        save_atomic({"a": torch.tensor([3.0])}, path)
    monkeypatch.undo()
    assert torch.equal(torch.load(path)["a"], torch.tensor([1.0, 2.0]))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["weights.pt"]


def test_save_atomic_creates_parent_dirs(tmp_path):
    path = tmp_path / "a" / "b" / "w.pt"
    save_atomic([1, 2], path)
    assert torch.load(path, weights_only=False) == [1, 2]
    assert [p.name for p in path.parent.iterdir()] == ["w.pt"]
