"""The torchrun path on CPU: two gloo processes against one, for training, evaluation, the cache and the CLI.

What matches a one-process run, and how closely:
- evaluation: every per-point prediction under every attack (FGSM, PGD, PGD with restarts, AutoAttack), exactly;
- training without random starts or BatchNorm (plain CE): the weights, up to float rounding (1e-5), since the
  gradient of the global batch's mean is averaged from the shards' weighted means;
- adversarial training with BatchNorm: only the weights across the processes are identical. Each process draws its
  own random starts and normalises with its own shard's batch statistics, so the run is another draw of the same
  training, not the one-process run's weights.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from advfair import distributed
from advfair.cache import ModelCache
from advfair.evaluation import AttackSpec, Points, Protocol, evaluate
from advfair.files import write_json_atomic
from advfair.objectives import make_objective
from advfair.objectives.distill_objectives import ABSLD
from advfair.trainer import TrainConfig, train
from test_processes import _processes

CLASSES = 4  # APGD-T needs four classes


def _joined(rank: int, world: int, out: str, job, *args) -> None:
    """Run job(out, *args) as process `rank` of `world` (one thread each, as torchrun sets it), saving what it
    returns."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    if world > 1:
        dist.init_process_group("gloo", init_method=f"file://{out}/rendezvous", rank=rank, world_size=world)
    try:
        torch.save(job(out, *args), f"{out}/{rank}.pt")
    finally:
        distributed.stop()
        torch.set_num_threads(threads)


def _run(world: int, job, *args) -> list:
    return _processes(_joined, world, job, *args)


def _data(n: int = 36) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    return (torch.randint(0, 256, (n, 3, 8, 8), dtype=torch.uint8, generator=generator),
            torch.randint(0, CLASSES, (n,), generator=generator))


def _net(batchnorm: bool = True) -> nn.Module:
    torch.manual_seed(1)
    norm = [nn.BatchNorm2d(4)] if batchnorm else []
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), *norm, nn.ReLU(), nn.Flatten(), nn.Linear(4 * 64, CLASSES))


def _plain_ce(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(model(x), y)


def _weights(model: nn.Module) -> list[torch.Tensor]:
    return [t.detach().clone() for t in model.state_dict().values()]


# ---- training ----

def _training(out: str, place: str, objective: str, epochs: int, stop_after: int | None = None) -> dict:
    x, y = _data()
    model = _net(batchnorm=objective != "ce")
    if objective == "absld":
        loss = ABSLD(_net(batchnorm=False).eval(), "teacher", num_classes=CLASSES, eta=0.5, eps=8 / 255,
                     alpha=2 / 255, steps=2)
    else:
        loss = _plain_ce if objective == "ce" else make_objective(objective, eps=8 / 255, alpha=2 / 255, steps=2)
    cfg = TrainConfig(epochs=epochs, batch_size=8, lr=0.05)  # 36 images: 4 batches of 8 and one of 4

    def interrupt(epoch: int, record: dict) -> None:
        if stop_after is not None and epoch + 1 == stop_after:
            raise KeyboardInterrupt

    try:
        history = train(model, loss, x, y, cfg, checkpoint=Path(place) / "ckpt.pt", on_epoch_end=interrupt)
    except KeyboardInterrupt:
        return {"interrupted": True}
    return {"weights": _weights(model), "history": [{k: v for k, v in r.items() if k not in ("seconds",
                                                    "images_per_second")} for r in history]}


@pytest.fixture
def place(tmp_path: Path) -> str:
    return str(tmp_path)


def test_adversarial_training_keeps_one_model_across_processes(place: str) -> None:
    ranks = _run(2, _training, place, "pgd_at", 2)
    for a, b in zip(ranks[0]["weights"], ranks[1]["weights"]):
        assert torch.equal(a, b)
    assert ranks[0]["history"] == ranks[1]["history"]  # the epoch losses are summed over both shards
    start = _weights(_net())
    assert any(not torch.equal(a, s) for a, s in zip(ranks[0]["weights"], start))


def test_absld_keeps_one_set_of_temperatures_through_the_trainer(place: str) -> None:
    ranks = _run(2, _training, place, "absld", 2)
    assert ranks[0]["history"] == ranks[1]["history"]  # the temperatures of every epoch, bit for bit
    assert ranks[0]["history"][-1]["tau_adv"] != [1.0] * CLASSES  # and they moved
    for a, b in zip(ranks[0]["weights"], ranks[1]["weights"]):
        assert torch.equal(a, b)


def test_two_processes_train_what_one_process_trains_on_the_global_batches(tmp_path: Path) -> None:
    one, two = _run(1, _training, str(tmp_path / "1"), "ce", 2)[0], _run(2, _training, str(tmp_path / "2"), "ce", 2)
    for got, want in zip(two[0]["weights"], one["weights"]):
        assert torch.allclose(got, want, atol=1e-5)
    for got, want in zip(two[0]["history"], one["history"]):
        assert got["loss"] == pytest.approx(want["loss"], abs=1e-5)


def test_an_interrupted_two_process_run_resumes_exactly(tmp_path: Path) -> None:
    whole = _run(2, _training, str(tmp_path / "whole"), "pgd_at", 3)
    place = str(tmp_path / "resumed")
    assert _run(2, _training, place, "pgd_at", 3, 2) == [{"interrupted": True}] * 2  # after epoch 2's checkpoint
    assert (Path(place) / "ckpt.pt").exists()
    resumed = _run(2, _training, place, "pgd_at", 3)
    for a, b in zip(resumed[0]["weights"], whole[0]["weights"]):
        assert torch.equal(a, b)
    assert resumed[0]["history"] == whole[0]["history"]


def test_a_batch_that_leaves_a_process_without_images_is_refused() -> None:
    with pytest.raises(Exception, match="batch_size"):
        _run(2, _short_last_batch)


def _short_last_batch(out: str) -> dict:
    x, y = _data(17)  # 2 batches of 8 and a last one of a single image
    train(_net(), _plain_ce, x, y, TrainConfig(epochs=1, batch_size=8))
    return {}


# ---- evaluation ----

def _bright(n: int = 26) -> tuple[torch.Tensor, torch.Tensor]:
    x, _ = _data(n)
    return x, x.float().mean((1, 2, 3)).argsort().argsort() * CLASSES // n  # classes by brightness: learnable


@pytest.fixture(scope="module")
def trained() -> dict:
    """One model (trained here, in one process) for every evaluation to compare."""
    model, (x, y) = _net(), _bright()
    train(model, _plain_ce, x, y, TrainConfig(epochs=8, batch_size=8, lr=0.1, augment=False))
    return model.state_dict()


def _evaluation(out: str, weights: dict) -> dict:
    (x, y), model = _bright(), _net()
    model.load_state_dict(weights)
    attacks = {"fgsm": AttackSpec(kind="fgsm", steps=1), "pgd5": AttackSpec(steps=5, alpha=2 / 255),
               "pgd5x3": AttackSpec(steps=5, alpha=2 / 255, restarts=3),
               "aa": AttackSpec(kind="autoattack", version="subset", subset=True),
               "square": AttackSpec(kind="autoattack", version="square", steps=20, subset=True)}
    points = Points.of(x.float() / 255, y, tuple("abcd"), np.arange(2, 24))
    e = evaluate(model.eval(), points, Protocol(16 / 255, attacks, seed=3, batch_size=4))
    return {"predictions": {n: torch.from_numpy(p) for n, p in e.predictions.items()}, "warnings": e.warnings,
            "y": y.numpy().tolist()}


def test_a_sharded_evaluation_gives_every_point_what_one_process_gives(trained: dict) -> None:
    one, two = _run(1, _evaluation, trained)[0], _run(2, _evaluation, trained)
    for rank in two:
        assert rank["predictions"].keys() == one["predictions"].keys()
        for name, want in one["predictions"].items():
            assert torch.equal(rank["predictions"][name], want), name
        assert rank["warnings"] == one["warnings"]
    clean = one["predictions"]["clean"]
    assert (clean == torch.tensor(one["y"])).float().mean() > 0.5  # a model that learnt something
    assert (one["predictions"]["fgsm"] != clean).any() and (one["predictions"]["pgd5"] != clean).any()
    assert (one["predictions"]["aa"] != clean[2:24]).any()  # attacks that hurt it


# ---- the cache and the files ----

def _cached(out: str, place: str) -> dict:
    x, y = _data()
    cache, spec = ModelCache(Path(place) / "cache"), {"test": "distributed"}
    cfg = TrainConfig(epochs=1, batch_size=8)
    model, meta = cache.get_or_train(spec, _net(), lambda m, ckpt: train(m, _plain_ce, x, y, cfg, checkpoint=ckpt))
    again, meta_again = cache.get_or_train(spec, _net(), lambda *_: pytest.fail("trained twice"))
    write_json_atomic({"rank": distributed.rank()}, Path(place) / "results.json")
    return {"weights": _weights(model), "again": _weights(again), "from_cache": [meta["from_cache"],
            meta_again["from_cache"]], "files": sorted(p.name for p in (Path(place) / "cache").iterdir())}


def test_process_zero_alone_writes_and_every_process_reads_it_back(place: str) -> None:
    ranks = _run(2, _cached, place)
    for r in ranks:
        assert r["from_cache"] == [False, True]
        for a, b, c in zip(r["weights"], r["again"], ranks[0]["weights"]):
            assert torch.equal(a, b) and torch.equal(a, c)
    assert len(ranks[0]["files"]) == 2 and not any(f.endswith(".ckpt") for f in ranks[0]["files"])
    assert json.loads((Path(place) / "results.json").read_text()) == {"rank": 0}


# ---- the command line under torchrun ----

def test_torchrun_runs_a_chapter_and_writes_one_results_file(tmp_path: Path) -> None:
    tiny = ["epochs=1", "train_per_class=4", "val_per_class=2", "test_per_class=3", "aa_per_class=1",
            "mnist=false", "temperatures=[1,2]", "bias_grid=[0,1]", "long_steps=[]"]
    out = tmp_path / "classwise.json"
    env = {**os.environ, "ADVFAIR_CACHE_DIR": str(tmp_path / "cache"), "OMP_NUM_THREADS": "1"}
    run = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "-m", "advfair", "run",
                          "classwise", "--out", str(out), *[f"--set={s}" for s in tiny]],
                         capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stdout.count("wrote ") == 1  # process 0 reports, once
    results = json.loads(out.read_text())
    assert results["environment"]["processes"] == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache", "classwise.json"]
