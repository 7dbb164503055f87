"""Several processes (torchrun) as one run: who is who, the one collective each mechanism needs, and the shards.

Every process of a torchrun run executes the whole pipeline on the same data: training splits each global batch
across the processes (DistributedDataParallel averages the gradients), evaluation splits the points in whole
batches, and everything else (statistics, verdicts) is computed alike in each process. Only the main process
(rank 0) writes files (`files.write_atomic`), and the others wait for its writes where they read them back. In one
process every function here is the identity or a no-op, so a one-process run is exactly what it was.
"""
from __future__ import annotations

import os
from collections.abc import Callable, Collection

import torch
import torch.distributed as dist

from .validation import fail


def active() -> bool:
    """Whether this process is one of a torch.distributed run of more than one process."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    return dist.get_rank() if active() else 0


def world_size() -> int:
    return dist.get_world_size() if active() else 1


def is_main() -> bool:
    return rank() == 0


def barrier() -> None:
    """Wait for every process (after the main process wrote what the others will read)."""
    if active():
        dist.barrier()


def sum_over_processes(t: torch.Tensor) -> torch.Tensor:
    """The sum of `t` over the processes; `t` itself in a one-process run."""
    if not active():
        return t
    t = t.clone()
    dist.all_reduce(t)
    return t


def gather_objects(obj: object) -> list:
    """Every process's `obj`, in rank order ([obj] in one process)."""
    if not active():
        return [obj]
    out: list = [None] * world_size()
    dist.all_gather_object(out, obj)
    return out


def assemble(t: torch.Tensor, owned: torch.Tensor) -> torch.Tensor:
    """The rows of `t` from the process that owns them (`owned`: this process's rows, disjoint across processes).
    Every other process adds exact zeros to a row, so the result is bit-identical to the owner's values."""
    if not active():
        return t
    mask = owned.to(t.device).reshape(-1, *([1] * (t.dim() - 1)))
    return sum_over_processes(torch.where(mask, t, torch.zeros((), dtype=t.dtype, device=t.device)))


def batch_ranges(n: int, batch_size: int) -> list[tuple[int, int]]:
    """The batches [lo, hi) of n points, as a one-process run forms them."""
    return [(lo, min(lo + batch_size, n)) for lo in range(0, n, batch_size)]


def my_batches(n: int, batch_size: int) -> tuple[range, torch.Tensor]:
    """This process's batches of n points (contiguous blocks of whole batches, so that each batch is formed
    exactly as in one process) and the mask of its points."""
    ranges = batch_ranges(n, batch_size)
    per, extra = divmod(len(ranges), world_size())
    first = rank() * per + min(rank(), extra)
    mine = range(first, first + per + (rank() < extra))
    owned = torch.zeros(n, dtype=torch.bool)
    for b in mine:
        owned[ranges[b][0]:ranges[b][1]] = True
    return mine, owned


def share_buffers(model: torch.nn.Module) -> None:
    """Process 0's buffers (BatchNorm's running statistics) in every process: each process updated its own with
    its own shard's statistics since the last forward that broadcast them."""
    if active():
        for buffer in model.buffers():
            dist.broadcast(buffer, src=0)


def shard(t: torch.Tensor) -> torch.Tensor:
    """This process's contiguous part of a global training batch."""
    return torch.tensor_split(t, world_size())[rank()] if active() else t


def joining() -> bool:
    """Whether this process was started by torchrun as one of several (its environment names WORLD_SIZE > 1)."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1 and not active()


def start(device: str) -> str:
    """Join the torchrun run this process was started in; returns the device to use: cuda:LOCAL_RANK for
    "cuda"/"auto" on a GPU machine (NCCL), else the CPU (gloo)."""
    local = int(os.environ.get("LOCAL_RANK", "0"))
    gpu = device != "cpu" and torch.cuda.is_available()
    if device.startswith("cuda") and not gpu:
        fail("device", device, "'cpu' or 'auto': CUDA is not available on this machine")
    if gpu:
        torch.cuda.set_device(local)
    dist.init_process_group("nccl" if gpu else "gloo")
    return f"cuda:{local}" if gpu else "cpu"


def stop() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def batchwise(fn: Callable[[int, int], torch.Tensor], out: torch.Tensor, batch_size: int, *,
              skip: Callable[[int, int], object] | None = None, only: Collection[int] | None = None) -> torch.Tensor:
    """`out` with its rows [lo, hi) set to fn(lo, hi), batch by batch as one process forms the batches. In several
    processes each process runs its own batches (`skip(lo, hi)` for the others': what such a batch takes of a
    random stream the batches share, so that each batch draws what it draws in one process), and every process
    gets all rows. `only` (batch numbers) runs those batches alone, the others skipped alike: a sample of the
    batches, each computed as in the whole run."""
    ranges = batch_ranges(len(out), batch_size)
    mine, owned = my_batches(len(out), batch_size)
    for b, (lo, hi) in enumerate(ranges):
        if b in mine and (only is None or b in only):
            out[lo:hi] = fn(lo, hi)
        elif skip is not None:
            skip(lo, hi)
    return assemble(out, owned)
