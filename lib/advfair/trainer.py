"""One training loop for every objective: seeds, device, progress, checkpoint + resume, bf16 on CUDA.

Determinism: each epoch re-seeds the global RNG and the data generator from (seed, epoch), so a run
resumed from the checkpoint of epoch k continues exactly as an uninterrupted run would (on CPU).

Several processes (torchrun, `advfair.distributed`): every process draws the same permutation and augmentation of
each global batch of `batch_size` images and trains on its contiguous shard of it, the model wrapped in
DistributedDataParallel. Each shard's loss is weighted by its share of the global batch, so the averaged gradient
is that of the global batch's mean loss. The attacks' random starts draw from a per-process seed (process 0 keeps
the one-process seed). BatchNorm keeps per-process batch statistics; its running statistics are process 0's
(DistributedDataParallel broadcasts them at every forward). The epoch's losses and statistics are summed over the
processes, and only process 0 writes the checkpoint.
"""
from __future__ import annotations

import math
import re
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from . import distributed
from .files import write_atomic
from .data import augment_crop_flip, batches, to_float
from .objectives import Objective, ObjectiveOutput, as_objective
from .validation import check_bool, check_choice, check_non_negative, check_number, check_positive, fail

SCHEDULES = ("cosine", "step", "code_compound", "constant")
# The loop's cache version, in every model's key (`advfair.training`): bump it when a change to the loop alters the
# weights it trains (batch order, seeding, update, precision), and every cached model is retrained.
VERSION = 1


@dataclass(frozen=True)
class TrainConfig:
    epochs: int
    batch_size: int = 128
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 5e-4
    schedule: str = "cosine"
    milestones: tuple[int, ...] = field(default_factory=tuple)
    gamma: float = 0.1
    augment: bool = True
    drop_last: bool = False
    seed: int = 0

    def __post_init__(self) -> None:
        check_positive("epochs", self.epochs, integer=True)
        check_positive("batch_size", self.batch_size, integer=True)
        check_positive("lr", self.lr)
        check_number("momentum", self.momentum, low=0, high=1, high_open=True)
        check_non_negative("weight_decay", self.weight_decay)
        check_choice("schedule", self.schedule, SCHEDULES)
        check_number("gamma", self.gamma, low=0, high=1, low_open=True)
        check_bool("augment", self.augment)
        check_non_negative("seed", self.seed, integer=True)
        for m in self.milestones:
            check_number("milestones", m, low=1, high=self.epochs, integer=True)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["milestones"] = list(self.milestones)
        return d


def learning_rate(cfg: TrainConfig, epoch: float) -> float:
    """Learning rate at fractional epoch `epoch` (0-based).

    cosine: lr * (1 + cos(pi * epoch / epochs)) / 2, per iteration.
    step: multiplied by `gamma` at each milestone epoch.
    code_compound: the compounding decay of RoBal's released code, where every epoch >= m multiplies
    the current lr again (1-based epoch e): lr * gamma^(e - m1 + 1) * gamma^(e - m2 + 1) ...
    """
    if cfg.schedule == "constant":
        return cfg.lr
    if cfg.schedule == "cosine":
        return cfg.lr * 0.5 * (1 + math.cos(math.pi * epoch / cfg.epochs))
    e = int(epoch) + 1
    if cfg.schedule == "step":
        return cfg.lr * cfg.gamma ** sum(e >= m for m in cfg.milestones)
    return cfg.lr * math.prod(cfg.gamma ** max(0, e - m + 1) for m in cfg.milestones)


def resolve_device(device: str = "auto") -> torch.device:
    """"auto" picks CUDA when present; asking for CUDA on a machine without it is an error."""
    if not isinstance(device, str) or not re.fullmatch(r"auto|cpu|cuda(:\d+)?", device):
        fail("device", device, "'auto', 'cpu' or 'cuda[:N]'")
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        fail("device", device, "'cpu' or 'auto': CUDA is not available on this machine")
    return torch.device(device)


def save_atomic(obj: object, path: Path) -> None:
    """torch.save so that a reader never sees a half-written file."""
    write_atomic(path, lambda handle: torch.save(obj, handle))


def _epoch_seed(seed: int, epoch: int, rank: int = 0) -> int:
    return seed * 1_000_003 + epoch + rank * 2 ** 40


def _check_shards(n: int, cfg: TrainConfig) -> None:
    """Every process needs at least one image of every global batch."""
    world = distributed.world_size()
    last = 0 if cfg.drop_last else n % cfg.batch_size
    if cfg.batch_size < world or 0 < last < world:
        fail("batch_size", cfg.batch_size, f"a global batch (the last one of {n} images included) of at least one "
                                           f"image per process ({world} processes)")


def _data_parallel(model: nn.Module, device: torch.device) -> nn.Module:
    if not distributed.active():
        return model
    return DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)


def _shard_loss(loss: torch.Tensor, shard: int, total: int) -> torch.Tensor:
    """The shard's mean loss weighted by its share of the global batch (DistributedDataParallel averages the
    processes' gradients, so their average is the gradient of the global mean)."""
    return loss * (shard * distributed.world_size() / total) if distributed.active() else loss


def _epoch_totals(device: torch.device, loss: float, seen: int, stats: dict[str, float]) -> tuple[float, int, dict]:
    """The epoch's loss sum, image count and statistic sums over every process."""
    if not distributed.active():
        return loss, seen, stats
    t = distributed.sum_over_processes(torch.tensor([loss, seen, *stats.values()], dtype=torch.float64, device=device))
    return float(t[0]), int(t[1]), dict(zip(stats, t[2:].tolist()))


def train(model: nn.Module, objective: Objective | Callable[..., torch.Tensor], x: torch.Tensor, y: torch.Tensor,
          cfg: TrainConfig, *, device: torch.device | str = "cpu", checkpoint: str | Path | None = None,
          progress: bool = False, label: str = "", on_epoch_end: Callable[[int, dict], None] | None = None) -> list[dict]:
    """Train `model` in place on uint8 images `x` and labels `y`; returns per-epoch history.

    The objective's epoch hooks run around each epoch; the epoch means of the per-sample statistics it
    returns, and what its `end_epoch` returns, join the epoch's history record. With `checkpoint`, the
    state after every epoch (model, optimiser, objective state, history) is written atomically and a
    later call with the same path resumes after the last completed epoch. `label` names the progress bars.
    """
    device = torch.device(device)
    _check_shards(len(x), cfg)
    objective = as_objective(objective).to(device)
    model.to(device)
    if device.type == "cuda":
        model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    history: list[dict] = []
    start_epoch = 0
    checkpoint = Path(checkpoint) if checkpoint is not None else None
    distributed.barrier()  # a checkpoint process 0 placed (a shared prefix) is there for every process
    if checkpoint is not None and checkpoint.exists():
        state = torch.load(checkpoint, map_location=device, weights_only=False)
        if state["config"] != cfg.to_dict():
            fail("checkpoint", str(checkpoint), "a checkpoint written with the same training config")
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        objective.load_state_dict(state["objective"])
        history, start_epoch = state["history"], state["epoch"] + 1
    x_dev, y_dev = x.to(device), y.to(device)
    steps_per_epoch = len(x) // cfg.batch_size if cfg.drop_last else math.ceil(len(x) / cfg.batch_size)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.type == "cuda")
    wrapped = _data_parallel(model, device)
    for epoch in range(start_epoch, cfg.epochs):
        torch.manual_seed(_epoch_seed(cfg.seed, epoch, distributed.rank()))
        generator = torch.Generator().manual_seed(_epoch_seed(cfg.seed, epoch))
        model.train()
        objective.start_epoch(epoch)
        started, total_loss, seen, stat_sums = time.perf_counter(), 0.0, 0, {}
        bar = tqdm(batches(x_dev, y_dev, cfg.batch_size, shuffle=True, generator=generator, drop_last=cfg.drop_last),
                   total=steps_per_epoch, desc=f"{label + ': ' if label else ''}epoch {epoch + 1}/{cfg.epochs}",
                   disable=not progress or not distributed.is_main(), leave=False)
        for i, (xb, yb) in enumerate(bar):
            for group in optimizer.param_groups:
                group["lr"] = learning_rate(cfg, epoch + i / steps_per_epoch)
            xb = to_float(xb)
            if cfg.augment:
                xb = augment_crop_flip(xb, generator=generator)
            total = len(xb)
            xb, yb = distributed.shard(xb), distributed.shard(yb)
            with autocast:
                loss = objective(wrapped, xb, yb)
            if isinstance(loss, ObjectiveOutput):
                for name, values in loss.stats.items():
                    stat_sums[name] = stat_sums.get(name, 0.0) + float(values.detach().double().sum())
                loss = loss.loss
            optimizer.zero_grad(set_to_none=True)
            _shard_loss(loss, len(xb), total).backward()
            optimizer.step()
            total_loss += loss.item() * len(xb)
            seen += len(xb)
            bar.set_postfix(loss=f"{total_loss / seen:.3f}")
        seconds = time.perf_counter() - started
        distributed.share_buffers(model)  # one model in every process for what follows (validation, evaluation)
        total_loss, seen, stat_sums = _epoch_totals(device, total_loss, seen, stat_sums)
        objective.synchronise(distributed.sum_over_processes)
        record = {"epoch": epoch + 1, "loss": total_loss / seen, "seconds": seconds, "images_per_second": seen / seconds,
                  **{name: total / seen for name, total in stat_sums.items()}, **objective.end_epoch(epoch)}
        history.append(record)
        if checkpoint is not None:
            save_atomic({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "epoch": epoch,
                         "objective": objective.state_dict(), "history": history, "config": cfg.to_dict()}, checkpoint)
        if on_epoch_end is not None:
            on_epoch_end(epoch, record)
    model.eval()
    return history
