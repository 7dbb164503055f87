"""Stateful objectives in a run of several processes (gloo on CPU): the trainer sums each objective's epoch sums
over the processes before `end_epoch`, so ABSLD's temperatures stay identical across processes and equal a
one-process run on the same global data. Without that step they diverge (the second test shows it can fail)."""
import os
import tempfile

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from advfair.objectives import distillation
from advfair.objectives.distill_objectives import ABSLD
from advfair.trainer import sum_over_processes

GLOBAL_BATCH, BATCHES, EPOCHS, CLASSES = 8, 3, 2, 3


def _net(seed: int) -> nn.Module:
    # No BatchNorm: a shard's forward then equals the same rows of the global batch's forward.
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(3 * 4 * 4, CLASSES))


def _run(rank: int, world: int, init: str, out: str, synchronise: bool) -> None:
    # A deterministic attack start (x itself): the random start of a shard is another draw than that of the
    # same rows in one process, and the comparison with one process is about the reduction, not the draw.
    start = distillation.gaussian_start
    distillation.gaussian_start = lambda x: x.clone()
    try:
        _epochs(rank, world, init, out, synchronise)
    finally:
        distillation.gaussian_start = start


def _epochs(rank: int, world: int, init: str, out: str, synchronise: bool) -> None:
    if world > 1:
        torch.set_num_threads(1)
        dist.init_process_group("gloo", init_method=init, rank=rank, world_size=world)
    student = _net(1)
    model = DistributedDataParallel(student) if world > 1 else student
    objective = ABSLD(_net(2), "teacher", num_classes=CLASSES, eta=0.5, eps=8 / 255, alpha=2 / 255, steps=2)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    generator = torch.Generator().manual_seed(3)
    x = torch.rand(BATCHES * GLOBAL_BATCH, 3, 4, 4, generator=generator)
    y = torch.randint(0, CLASSES, (len(x),), generator=generator)
    shard = GLOBAL_BATCH // world
    taus = []
    for epoch in range(EPOCHS):
        objective.start_epoch(epoch)
        for b in range(BATCHES):
            rows = slice(b * GLOBAL_BATCH + rank * shard, b * GLOBAL_BATCH + (rank + 1) * shard)
            optimizer.zero_grad()
            objective(model, x[rows], y[rows]).loss.backward()
            optimizer.step()
        if synchronise:
            objective.synchronise(sum_over_processes)
        taus.append(objective.end_epoch(epoch)["tau_adv"])
    torch.save({"tau_adv": taus, "weights": [p.detach() for p in student.parameters()]}, f"{out}/{rank}.pt")
    if world > 1:
        dist.destroy_process_group()


def _results(world: int, synchronise: bool = True) -> list[dict]:
    with tempfile.TemporaryDirectory() as out:
        init = f"file://{out}/rendezvous"
        if world == 1:
            _run(0, 1, init, out, synchronise)
        else:
            mp.spawn(_run, args=(world, init, out, synchronise), nprocs=world)
        return [torch.load(os.path.join(out, f"{r}.pt")) for r in range(world)]


@pytest.fixture(scope="module")
def one_process() -> dict:
    return _results(1)[0]


def test_two_processes_keep_one_objective(one_process: dict) -> None:
    ranks = _results(2)
    assert ranks[0]["tau_adv"] == ranks[1]["tau_adv"]  # identical across processes, bit for bit
    for got, want in zip(ranks[0]["tau_adv"], one_process["tau_adv"]):
        # equal to one process up to float rounding (DDP averages two half-batch gradients)
        assert got == pytest.approx(want, abs=1e-6)
    assert one_process["tau_adv"][0] != [1.0] * CLASSES  # the temperatures did move
    for w0, w1 in zip(ranks[0]["weights"], ranks[1]["weights"]):
        assert torch.equal(w0, w1)


def test_without_the_reduction_the_processes_diverge() -> None:
    ranks = _results(2, synchronise=False)
    assert ranks[0]["tau_adv"][0] != ranks[1]["tau_adv"][0]


# ---- objectives that reach into the model's head (RoBal) or edit its features (AALP's Guided Dropout) ----

def _classifier(head: str) -> nn.Module:
    from advfair.models import Classifier, CosineHead, LinearHead, Normalize
    torch.manual_seed(4)
    body = nn.Sequential(nn.Flatten(), nn.Linear(3 * 4 * 4, 16), nn.ReLU())
    out = CosineHead(16, CLASSES, scale=1.0) if head == "cosine" else LinearHead(16, CLASSES)
    return Classifier(Normalize((0.5,) * 3, (0.25,) * 3), body, out)


def _objective(name: str):
    from advfair.objectives import make_objective
    from advfair.objectives.aalp import alp_objective
    if name == "robal":
        return make_objective("robal", eps=8 / 255, alpha=2 / 255, steps=2, counts=[30, 20, 10], s=10.0, m0=0.1,
                              tau_m=0.3, tau_b=1.5, kl_weight=6.0)
    return alp_objective(eps=8 / 255, alpha=2 / 255, steps=2, gd=True, gd_p=0.3)


def _wrapped(rank: int, world: int, init: str, out: str, name: str) -> None:
    # The attacks' random start is patched to x itself, as above, so that the runs differ only in the reduction.
    from advfair.attacks import LinfThreat
    start = LinfThreat.random_init
    LinfThreat.random_init = lambda self, x, generator=None, *, kind="symmetric", clip=True: x.clone()
    try:
        _wrapped_steps(rank, world, init, out, name)
    finally:
        LinfThreat.random_init = start


def _wrapped_steps(rank: int, world: int, init: str, out: str, name: str) -> None:
    if world > 1:
        torch.set_num_threads(1)
        dist.init_process_group("gloo", init_method=init, rank=rank, world_size=world)
    net = _classifier("cosine" if name == "robal" else "linear")
    model = DistributedDataParallel(net) if world > 1 else net
    objective, optimizer = _objective(name), torch.optim.SGD(model.parameters(), lr=0.5)
    generator = torch.Generator().manual_seed(5)
    x = torch.rand(BATCHES * GLOBAL_BATCH, 3, 4, 4, generator=generator)
    y = torch.randint(0, CLASSES, (len(x),), generator=generator)
    shard, stats = GLOBAL_BATCH // world, []
    for b in range(BATCHES):
        rows = slice(b * GLOBAL_BATCH + rank * shard, b * GLOBAL_BATCH + (rank + 1) * shard)
        optimizer.zero_grad()
        loss = objective(model, x[rows], y[rows])
        stats.append(sorted(getattr(loss, "stats", {})))
        getattr(loss, "loss", loss).backward()
        optimizer.step()
    torch.save({"weights": [p.detach() for p in net.parameters()], "stats": stats}, f"{out}/{rank}.pt")
    if world > 1:
        dist.destroy_process_group()


def _wrapped_results(world: int, name: str) -> list[dict]:
    with tempfile.TemporaryDirectory() as out:
        init = f"file://{out}/rendezvous"
        if world == 1:
            _wrapped(0, 1, init, out, name)
        else:
            mp.spawn(_wrapped, args=(world, init, out, name), nprocs=world)
        return [torch.load(os.path.join(out, f"{r}.pt")) for r in range(world)]


@pytest.mark.parametrize("name", ["robal", "aalp"])
def test_a_wrapped_model_trains_as_one_process(name: str) -> None:
    """RoBal reads its cosine head through `models.unwrap`, and Guided Dropout edits the features inside the
    model's forward, so DistributedDataParallel synchronises the gradients of both: the two processes keep one
    model, the one a single process trains on the global batches."""
    one, ranks = _wrapped_results(1, name)[0], _wrapped_results(2, name)
    start = [p.detach() for p in _classifier("cosine" if name == "robal" else "linear").parameters()]
    for w0, w1, w, s in zip(ranks[0]["weights"], ranks[1]["weights"], one["weights"], start):
        assert torch.equal(w0, w1)
        assert torch.allclose(w0, w, atol=1e-5)
    assert any(not torch.equal(w, s) for w, s in zip(one["weights"], start))  # training moved the weights
    if name == "aalp":
        assert "gd_active_share" in ranks[0]["stats"][0]  # the Guided Dropout path ran
