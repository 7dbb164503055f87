"""Objectives in a run of several processes (gloo on CPU).

- The trainer sums each objective's epoch sums over the processes before `end_epoch`, so ABSLD's temperatures stay
  identical across processes and equal a one-process run on the same global data; without that step they diverge
  (the second test shows it can fail).
- RoBal reads its cosine head through `models.unwrap`, and Guided Dropout edits the features inside the model's
  forward, so DistributedDataParallel synchronises the gradients of both.

Every run patches the attacks' random start to the point itself: the random start of a shard is another draw than
that of the same rows in one process, and the comparison with one process is about the reduction, not the draw.
"""
import contextlib
import os
import tempfile
from collections.abc import Callable, Iterator

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from advfair.attacks import LinfThreat
from advfair.models import Classifier, CosineHead, LinearHead, Normalize
from advfair.objectives import distillation, make_objective
from advfair.objectives.aalp import alp_objective
from advfair.objectives.distill_objectives import ABSLD
from advfair.distributed import sum_over_processes

GLOBAL_BATCH, BATCHES, EPOCHS, CLASSES = 8, 3, 2, 3


@contextlib.contextmanager
def _patched(owner: object, name: str, value: object) -> Iterator[None]:
    old = getattr(owner, name)
    setattr(owner, name, value)
    try:
        yield
    finally:
        setattr(owner, name, old)


def _processes(target: Callable[..., None], world: int, *args: object) -> list[dict]:
    """What `target(rank, world, out, *args)` saved in each of `world` processes (one: in this process)."""
    with tempfile.TemporaryDirectory() as out:
        if world == 1:
            target(0, 1, out, *args)
        else:
            mp.spawn(target, args=(world, out, *args), nprocs=world)
        return [torch.load(os.path.join(out, f"{r}.pt")) for r in range(world)]


def _train(rank: int, world: int, out: str, model: nn.Module, objective, epochs: int, synchronise: bool,
           keep: Callable[[nn.Module, list], dict]) -> None:
    """`epochs` of BATCHES global batches, each split into `world` shards, with the attacks starting at x."""
    with _patched(distillation, "gaussian_start", lambda x: x.clone()), _patched(
            LinfThreat, "random_init", lambda self, x, generator=None, *, kind="symmetric", clip=True: x.clone()):
        if world > 1:
            torch.set_num_threads(1)
            dist.init_process_group("gloo", init_method=f"file://{out}/rendezvous", rank=rank, world_size=world)
        wrapped = DistributedDataParallel(model) if world > 1 else model
        optimizer = torch.optim.SGD(wrapped.parameters(), lr=0.5)
        generator = torch.Generator().manual_seed(3)
        x = torch.rand(BATCHES * GLOBAL_BATCH, 3, 4, 4, generator=generator)
        y = torch.randint(0, CLASSES, (len(x),), generator=generator)
        shard, records = GLOBAL_BATCH // world, []
        for epoch in range(epochs):
            objective.start_epoch(epoch)
            for b in range(BATCHES):
                rows = slice(b * GLOBAL_BATCH + rank * shard, b * GLOBAL_BATCH + (rank + 1) * shard)
                optimizer.zero_grad()
                loss = objective(wrapped, x[rows], y[rows])
                records.append(sorted(getattr(loss, "stats", {})))
                getattr(loss, "loss", loss).backward()
                optimizer.step()
            if synchronise:
                objective.synchronise(sum_over_processes)
            records.append(objective.end_epoch(epoch))
        torch.save({"weights": [p.detach() for p in model.parameters()], **keep(model, records)}, f"{out}/{rank}.pt")
        if world > 1:
            dist.destroy_process_group()


# ---- ABSLD's temperatures ----

def _net(seed: int) -> nn.Module:
    # No BatchNorm: a shard's forward then equals the same rows of the global batch's forward.
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(3 * 4 * 4, CLASSES))


def _absld(rank: int, world: int, out: str, synchronise: bool) -> None:
    objective = ABSLD(_net(2), "teacher", num_classes=CLASSES, eta=0.5, eps=8 / 255, alpha=2 / 255, steps=2)
    _train(rank, world, out, _net(1), objective, EPOCHS, synchronise,
           lambda _, records: {"tau_adv": [r["tau_adv"] for r in records if isinstance(r, dict)]})


@pytest.fixture(scope="module")
def one_process() -> dict:
    return _processes(_absld, 1, True)[0]


def test_two_processes_keep_one_objective(one_process: dict) -> None:
    ranks = _processes(_absld, 2, True)
    assert ranks[0]["tau_adv"] == ranks[1]["tau_adv"]  # identical across processes, bit for bit
    for got, want in zip(ranks[0]["tau_adv"], one_process["tau_adv"]):
        # equal to one process up to float rounding (DDP averages two half-batch gradients)
        assert got == pytest.approx(want, abs=1e-6)
    assert one_process["tau_adv"][0] != [1.0] * CLASSES  # the temperatures did move
    for w0, w1 in zip(ranks[0]["weights"], ranks[1]["weights"]):
        assert torch.equal(w0, w1)


def test_without_the_reduction_the_processes_diverge() -> None:
    ranks = _processes(_absld, 2, False)
    assert ranks[0]["tau_adv"][0] != ranks[1]["tau_adv"][0]


# ---- objectives that reach into the model's head (RoBal) or edit its features (AALP's Guided Dropout) ----

def _classifier(head: str) -> nn.Module:
    torch.manual_seed(4)
    body = nn.Sequential(nn.Flatten(), nn.Linear(3 * 4 * 4, 16), nn.ReLU())
    out = CosineHead(16, CLASSES, scale=1.0) if head == "cosine" else LinearHead(16, CLASSES)
    return Classifier(Normalize((0.5,) * 3, (0.25,) * 3), body, out)


def _headed(rank: int, world: int, out: str, name: str) -> None:
    if name == "robal":
        objective = make_objective("robal", eps=8 / 255, alpha=2 / 255, steps=2, counts=[30, 20, 10], s=10.0,
                                   m0=0.1, tau_m=0.3, tau_b=1.5, kl_weight=6.0)
    else:
        objective = alp_objective(eps=8 / 255, alpha=2 / 255, steps=2, gd=True, gd_p=0.3)
    _train(rank, world, out, _classifier("cosine" if name == "robal" else "linear"), objective, 1, True,
           lambda _, records: {"stats": records[0]})


@pytest.mark.parametrize("name", ["robal", "aalp"])
def test_a_wrapped_model_trains_as_one_process(name: str) -> None:
    """The two processes keep one model, the one a single process trains on the global batches."""
    one, ranks = _processes(_headed, 1, name)[0], _processes(_headed, 2, name)
    start = [p.detach() for p in _classifier("cosine" if name == "robal" else "linear").parameters()]
    for w0, w1, w, s in zip(ranks[0]["weights"], ranks[1]["weights"], one["weights"], start):
        assert torch.equal(w0, w1)
        assert torch.allclose(w0, w, atol=1e-5)
    assert any(not torch.equal(w, s) for w, s in zip(one["weights"], start))  # training moved the weights
    if name == "aalp":
        assert "gd_active_share" in ranks[0]["stats"]  # the Guided Dropout path ran
