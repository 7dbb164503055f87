"""advfair.trainer: config validation, learning-rate schedules, device choice, checkpoint + resume, atomic saves,
objective hooks, statistics and state."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from advfair.models import build_model
from advfair.objectives import Objective, ObjectiveOutput, make_objective
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
        f.write(b"half-writ")  # the library saves through an open file handle
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


# ---------------------------------------------------------------------------------------------------------------
# Objectives with hooks, per-sample statistics and state

TIMING = ("seconds", "images_per_second")


class Rebalancing(Objective):
    """A toy stateful objective: CE weighted by 1 / (1 + how often the class has been seen so far), so its state
    changes the loss (a resume that loses it trains differently)."""

    name = "rebalancing"

    def __init__(self, restore: bool = True):
        super().__init__({"num_classes": 10})
        self.counts = torch.zeros(10)
        self.epochs_done = 0
        self.restore = restore
        self.started: list[int] = []
        self.batch_sums: dict[int, dict[str, float]] = {}
        self.epoch = -1

    def start_epoch(self, epoch: int) -> None:
        self.started.append(epoch)
        self.epoch = epoch
        self.batch_sums[epoch] = {"ce": 0.0, "weight": 0.0, "n": 0}

    def __call__(self, model, x, y):
        weights = 1 / (1 + self.counts[y])
        self.counts += torch.bincount(y, minlength=10).float()
        per_sample = F.cross_entropy(model(x), y, reduction="none")
        sums = self.batch_sums[self.epoch]
        sums["ce"] += float(per_sample.detach().double().sum())
        sums["weight"] += float(weights.double().sum())
        sums["n"] += len(y)
        return ObjectiveOutput((weights * per_sample).sum() / weights.sum(), {"ce": per_sample, "weight": weights})

    def end_epoch(self, epoch: int) -> dict:
        self.epochs_done += 1
        return {"epochs_done": self.epochs_done, "seen": float(self.counts.sum())}

    def state_dict(self) -> dict:
        return {"counts": self.counts.clone(), "epochs_done": self.epochs_done}

    def load_state_dict(self, state: dict) -> None:
        if self.restore:
            self.counts, self.epochs_done = state["counts"].clone(), state["epochs_done"]


THREE = TrainConfig(epochs=3, batch_size=24, lr=0.05, seed=2)


def _without_timing(history):
    return [{k: v for k, v in record.items() if k not in TIMING} for record in history]


def test_objective_hooks_stats_and_end_epoch_join_the_history(train_data):
    x, y = train_data
    objective = Rebalancing()
    history = train(_fresh_model(), objective, x, y, THREE)
    assert objective.started == [0, 1, 2]
    for epoch, record in enumerate(history):
        sums = objective.batch_sums[epoch]
        assert sums["n"] == 64
        assert record["ce"] == pytest.approx(sums["ce"] / 64, rel=1e-12)  # the epoch mean of the per-sample stat
        assert record["weight"] == pytest.approx(sums["weight"] / 64, rel=1e-12)
        assert record["epochs_done"] == epoch + 1 and record["seen"] == 64.0 * (epoch + 1)  # end_epoch's dict
        assert set(record) == {"epoch", "loss", "ce", "weight", "epochs_done", "seen", *TIMING}
    assert history[0]["weight"] > history[2]["weight"]  # the state moved between epochs


def test_interrupted_run_with_a_stateful_objective_resumes_exactly(train_data, tmp_path):
    x, y = train_data
    reference_objective = Rebalancing()
    reference = _fresh_model()
    ref_history = train(reference, reference_objective, x, y, THREE)

    checkpoint = tmp_path / "run.ckpt"

    def interrupt(epoch, record):
        if epoch == 0:
            raise Interrupted

    with pytest.raises(Interrupted):
        train(_fresh_model(), Rebalancing(), x, y, THREE, checkpoint=checkpoint, on_epoch_end=interrupt)
    state = torch.load(checkpoint, weights_only=False)
    assert state["objective"]["epochs_done"] == 1 and state["objective"]["counts"].sum() == 64

    resumed_objective = Rebalancing()  # a fresh process: the state comes from the checkpoint
    resumed = _fresh_model(seed=99)
    history = train(resumed, resumed_objective, x, y, THREE, checkpoint=checkpoint)
    assert resumed_objective.started == [1, 2]
    assert _without_timing(history) == _without_timing(ref_history)
    assert torch.equal(resumed_objective.counts, reference_objective.counts)
    assert resumed_objective.epochs_done == reference_objective.epochs_done == 3
    for key, value in resumed.state_dict().items():
        assert torch.equal(value, reference.state_dict()[key]), key

    # an objective that drops its state on resume trains differently: the comparison above can fail
    with pytest.raises(Interrupted):
        train(_fresh_model(), Rebalancing(), x, y, THREE, checkpoint=tmp_path / "lossy.ckpt", on_epoch_end=interrupt)
    lossy = _fresh_model()
    lossy_history = train(lossy, Rebalancing(restore=False), x, y, THREE, checkpoint=tmp_path / "lossy.ckpt")
    assert not torch.equal(lossy.head.weight, reference.head.weight)
    assert lossy_history[-1]["epochs_done"] != ref_history[-1]["epochs_done"]


def test_a_stateless_objective_refuses_foreign_state_and_plain_callables_work(train_data):
    x, y = train_data
    with pytest.raises(ValueError, match="keeps no state"):
        OBJECTIVE.load_state_dict({"counts": 1})
    OBJECTIVE.load_state_dict({})

    def plain(model, xb, yb):
        return F.cross_entropy(model(xb), yb)

    history = train(_fresh_model(), plain, x[:32], y[:32], TrainConfig(epochs=1, batch_size=32))
    assert set(history[0]) == {"epoch", "loss", *TIMING}


def test_progress_bars_name_their_model_and_change_nothing(train_data, capsys):
    x, y = train_data
    quiet, loud = _fresh_model(), _fresh_model()
    train(quiet, OBJECTIVE, x, y, CFG)
    assert capsys.readouterr().err == ""
    train(loud, OBJECTIVE, x, y, CFG, progress=True, label="train pgd_at")
    err = capsys.readouterr().err
    assert "train pgd_at: epoch 1/2" in err and "train pgd_at: epoch 2/2" in err
    for key, value in quiet.state_dict().items():
        assert torch.equal(value, loud.state_dict()[key]), key
