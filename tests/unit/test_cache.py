"""advfair.cache: content keys, train-once-then-load, atomic JSON."""
from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from advfair.cache import ModelCache, spec_key
from advfair.files import write_json_atomic
from advfair.validation import ConfigError

SPEC = {"data": {"dataset": "cifar10", "seed": 0, "train_per_class": 500}, "model": {"name": "small_cnn", "width": 4},
        "objective": "pgd_at", "objective_params": {"eps": 8 / 255, "steps": 3}, "train": {"epochs": 5, "lr": 0.05}}


def _reordered(d):
    if isinstance(d, dict):
        return {k: _reordered(d[k]) for k in reversed(list(d))}
    return d


def test_spec_key_stable_under_key_order():
    assert list(_reordered(SPEC)) != list(SPEC)
    assert spec_key(_reordered(SPEC)) == spec_key(SPEC)
    assert len(spec_key(SPEC)) == 24 and all(c in "0123456789abcdef" for c in spec_key(SPEC))


@pytest.mark.parametrize("path, value", [(("model", "width"), 8), (("train", "lr"), 0.1),
                                         (("data", "seed"), 1), (("objective",), "trades")])
def test_spec_key_changes_with_spec(path, value):
    changed = json.loads(json.dumps(SPEC))
    target = changed
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    assert spec_key(changed) != spec_key(SPEC)


def _objective(version: int = 2):
    from advfair.objectives import FunctionObjective
    from advfair.objectives.pgd_at import pgd_at_loss

    return FunctionObjective("pgd_at", pgd_at_loss, {"eps": 8 / 255, "alpha": 2 / 255, "steps": 3}, version=version)


def test_spec_key_changes_with_the_objective_version():
    """Bumping one objective's cache version retrains only that objective's models: its key changes."""
    from advfair.training import model_spec_of
    from advfair.trainer import TrainConfig

    data, model, cfg = SPEC["data"], SPEC["model"], TrainConfig(epochs=5, lr=0.05)
    before = model_spec_of(data, model, _objective(2), cfg)
    after = model_spec_of(data, model, _objective(3), cfg)
    assert before["objective"]["version"] == 2 and after["objective"]["version"] == 3
    assert spec_key(after) != spec_key(before)
    assert spec_key(model_spec_of(data, model, _objective(2), cfg)) == spec_key(before)  # and nothing else moves it


def test_bumping_a_registered_objective_version_changes_only_its_keys(monkeypatch):
    from advfair.training import model_spec_of
    from advfair.objectives import OBJECTIVES, make_objective
    from advfair.trainer import TrainConfig

    data, model, cfg = SPEC["data"], SPEC["model"], TrainConfig(epochs=5, lr=0.05)
    attack = {"eps": 8 / 255, "alpha": 2 / 255, "steps": 3}

    def keys():
        return {name: spec_key(model_spec_of(data, model, make_objective(name, **attack, **extra), cfg))
                for name, extra in (("pgd_at", {}), ("trades", {"beta": 6.0}))}

    before = keys()
    assert make_objective("pgd_at", **attack).cache_spec()["version"] == OBJECTIVES["pgd_at"].version
    monkeypatch.setitem(OBJECTIVES, "trades", OBJECTIVES["trades"]._replace(version=OBJECTIVES["trades"].version + 1))
    after = keys()
    assert after["trades"] != before["trades"]
    assert after["pgd_at"] == before["pgd_at"]


def _model(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2))


def test_get_or_train_trains_once_then_loads(tmp_path):
    cache = ModelCache(tmp_path)
    calls = []

    def train_fn(model, checkpoint):
        calls.append(checkpoint)
        assert checkpoint.parent == tmp_path and checkpoint.suffix == ".ckpt"
        checkpoint.write_bytes(b"partial state")  # the trainer's per-epoch checkpoint
        with torch.no_grad():
            model[0].weight.fill_(0.5)
            model[1].running_mean.fill_(2.0)
        return [{"epoch": 1, "loss": 1.0}]

    model, meta = cache.get_or_train(SPEC, _model(0).train(), train_fn)
    assert len(calls) == 1 and meta["from_cache"] is False
    assert meta["key"] == spec_key(SPEC) and meta["history"] == [{"epoch": 1, "loss": 1.0}]
    assert not model.training
    assert cache.path(SPEC).exists() and cache.path(SPEC).with_suffix(".json").exists()
    assert not cache.path(SPEC).with_suffix(".ckpt").exists()  # checkpoint removed once the weights are stored
    assert not list(tmp_path.glob("*.tmp")) and not list(tmp_path.glob(".*.tmp"))

    loaded, meta2 = ModelCache(tmp_path).get_or_train(SPEC, _model(1), train_fn)
    assert len(calls) == 1, "trained again instead of loading"
    assert meta2["from_cache"] is True and meta2["key"] == meta["key"] and meta2["history"] == meta["history"]
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key
    assert torch.all(loaded[0].weight == 0.5)

    # another spec trains again
    other = {**SPEC, "objective": "trades"}
    ModelCache(tmp_path).get_or_train(other, _model(2), train_fn)
    assert len(calls) == 2


def test_get_or_train_retrains_when_metadata_missing(tmp_path):
    cache = ModelCache(tmp_path)
    calls = []

    def train_fn(model, checkpoint):
        calls.append(1)
        return []

    cache.get_or_train(SPEC, _model(), train_fn)
    cache.path(SPEC).with_suffix(".json").unlink()  # an incomplete entry is not trusted
    _, meta = cache.get_or_train(SPEC, _model(), train_fn)
    assert len(calls) == 2 and meta["from_cache"] is False


def test_failed_training_stores_nothing(tmp_path):
    def broken(model, checkpoint):
        raise RuntimeError("interrupted")

    cache = ModelCache(tmp_path)
    with pytest.raises(RuntimeError):
        cache.get_or_train(SPEC, _model(), broken)
    assert not cache.path(SPEC).exists()


def test_write_json_atomic(tmp_path):
    path = tmp_path / "sub" / "results.json"
    write_json_atomic({"b": [1, 2.5], "a": None}, path)
    assert json.loads(path.read_text()) == {"a": None, "b": [1, 2.5]}
    assert [p.name for p in path.parent.iterdir()] == ["results.json"]
    with pytest.raises(TypeError):
        write_json_atomic({"x": object()}, path)  # not JSON-able: the old file stays
    assert json.loads(path.read_text()) == {"a": None, "b": [1, 2.5]}
    assert [p.name for p in path.parent.iterdir()] == ["results.json"]


def test_train_cached_trains_once(data_dir, tmp_path):
    from advfair.training import train_cached
    from advfair.objectives import make_objective
    from advfair.splits import balanced_split
    from advfair.trainer import TrainConfig

    if not (data_dir / "mnist.npz").exists():
        pytest.skip("no mnist.npz")
    split = balanced_split("mnist", train_per_class=3, val_per_class=1, test_per_class=1, seed=0,
                           data_dir=str(data_dir))
    objective = make_objective("class_weighted_pgd_at", eps=0.3, alpha=0.1, steps=1, class_weights=torch.ones(10))
    kwargs = dict(model_spec={"name": "small_cnn", "width": 4},
                  objective=objective, train_cfg=TrainConfig(epochs=1, batch_size=16), device=torch.device("cpu"))
    cache = ModelCache(tmp_path)
    from advfair.training import model_spec_of

    spec = model_spec_of(split.spec, kwargs["model_spec"], objective, kwargs["train_cfg"])
    assert not cache.contains(spec)
    model, meta = train_cached(cache, split, **kwargs)
    assert cache.contains(spec)
    assert meta["from_cache"] is False and len(meta["history"]) == 1
    assert meta["spec"]["objective"]["params"]["class_weights"] == [1.0] * 10  # tensors stored as lists
    assert meta["spec"]["objective"]["name"] == "class_weighted_pgd_at"
    assert json.loads(json.dumps(meta["spec"])) == meta["spec"]
    again, meta2 = train_cached(cache, split, **kwargs)
    assert meta2["from_cache"] is True and meta2["key"] == meta["key"]
    for key, value in model.state_dict().items():
        assert torch.equal(again.state_dict()[key], value), key
    # a cached entry may be loaded where training is not allowed
    _, meta3 = train_cached(cache, split, **kwargs, allow_training=False)
    assert meta3["from_cache"] is True
    assert sorted(p.suffix for p in tmp_path.iterdir()) == [".json", ".pt"]


def test_train_cached_without_training_needs_the_entry(data_dir, tmp_path):
    from advfair.training import train_cached
    from advfair.objectives import as_objective
    from advfair.splits import balanced_split
    from advfair.trainer import TrainConfig

    if not (data_dir / "mnist.npz").exists():
        pytest.skip("no mnist.npz")
    split = balanced_split("mnist", train_per_class=1, val_per_class=1, test_per_class=1, seed=0,
                           data_dir=str(data_dir))
    calls = []

    def never(model, x, y):
        calls.append(1)
        return model(x).sum()

    with pytest.raises(ConfigError, match="cache=") as info:
        train_cached(ModelCache(tmp_path), split, model_spec={"name": "small_cnn", "width": 4}, objective=as_objective(never),
                     train_cfg=TrainConfig(epochs=1, batch_size=16), device=torch.device("cpu"),
                     allow_training=False)
    assert "not allowed" in str(info.value)
    assert calls == [] and list(tmp_path.iterdir()) == []


def test_a_resumed_training_counts_the_epochs_before_the_interruption(tmp_path):
    """The recorded training time is the sum of the epochs' times, which a resumed run's history carries over
    from its checkpoint (only the resumed epochs ran in this process)."""
    from advfair.cache import training_seconds

    resumed = [{"epoch": 1, "seconds": 40.0}, {"epoch": 2, "seconds": 41.5}]  # epoch 1 ran before the resume
    assert training_seconds(resumed, elapsed=41.6) == 81.5
    assert training_seconds([{"epoch": 1, "loss": 1.0}], elapsed=3.0) == 3.0  # no epoch times: the wall time
    assert training_seconds([], elapsed=0.5) == 0.5
    _, meta = ModelCache(tmp_path).get_or_train(SPEC, _model(0), lambda model, checkpoint: resumed)
    assert meta["train_seconds"] == 81.5


def _tiny_training(calls):
    def train_fn(model, checkpoint):
        calls.append(1)
        with torch.no_grad():
            for p in model.parameters():
                p.add_(1.0)
        return [{"epoch": 1, "loss": 0.5, "seconds": 0.1}]
    return train_fn


def test_committed_weights_are_found_before_training_and_checked(tmp_path):
    """A model committed with advfair.weights is loaded by a fresh cache (a fresh clone) without training; a
    damaged weights file or a record of another spec is refused, never loaded or trained over."""
    calls, spec = [], {**SPEC, "tag": "committed"}
    trained, _ = ModelCache(tmp_path / "local", committed=()).get_or_train(spec, nn.Linear(3, 2), _tiny_training(calls))
    committed = tmp_path / "weights"
    path = ModelCache(tmp_path / "local", committed=()).commit(spec, committed)
    assert path.name == f"{spec_key(spec)}.safetensors" and path.with_suffix(".json").is_file()

    fresh = ModelCache(tmp_path / "empty", committed=(committed,))
    assert fresh.contains(spec)
    model, meta = fresh.get_or_train(spec, nn.Linear(3, 2), _tiny_training(calls))
    assert calls == [1] and meta["from_cache"] and meta["key"] == spec_key(spec) and meta["history"][0]["loss"] == 0.5
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), trained.state_dict().values()))

    record = json.loads(path.with_suffix(".json").read_text())
    path.with_suffix(".json").write_text(json.dumps({**record, "spec": {**spec, "tag": "other"}}))
    with pytest.raises(ConfigError, match="a record whose cache spec is the one asked for"):
        fresh.get_or_train(spec, nn.Linear(3, 2), _tiny_training(calls))
    path.with_suffix(".json").write_text(json.dumps(record))
    path.write_bytes(path.read_bytes()[:-1] + b"\0")
    with pytest.raises(ConfigError, match="damaged or was replaced"):
        fresh.get_or_train(spec, nn.Linear(3, 2), _tiny_training(calls))
    assert calls == [1]


def test_a_publishing_cache_writes_every_model_it_trains_into_the_committed_folder(tmp_path, monkeypatch):
    calls, spec = [], {**SPEC, "tag": "published"}
    monkeypatch.setenv("ADVFAIR_PUBLISH_WEIGHTS", str(tmp_path / "weights"))
    trained, _ = ModelCache(tmp_path / "local", committed=()).get_or_train(spec, nn.Linear(3, 2), _tiny_training(calls))
    published = tmp_path / "weights" / f"{spec_key(spec)}.safetensors"
    assert published.is_file() and calls == [1]
    monkeypatch.delenv("ADVFAIR_PUBLISH_WEIGHTS")
    model, meta = ModelCache(tmp_path / "fresh", committed=(tmp_path / "weights",)).get_or_train(
        spec, nn.Linear(3, 2), _tiny_training(calls))
    assert calls == [1] and meta["from_cache"]
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), trained.state_dict().values()))
