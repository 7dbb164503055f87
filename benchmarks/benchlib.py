"""Helpers shared by the benchmark scripts: data location, device, timing and summary lines.

Not a test helper: nothing here asserts on time. Timings on a shared machine are noisy, so the
scripts measure their reference and advfair interleaved in one process and report medians.
"""
from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import torch
import torch.nn.functional as F
from torch import nn

REPO_ROOT = Path(__file__).resolve().parents[1]
T = TypeVar("T")


def configure_data_dir() -> None:
    """Point the library at the offline datasets beside the repo unless ADVFAIR_DATA_DIR is set.

    Same rule as the Makefile: only when ../shared/data exists, otherwise the library's own
    default (a download cache in the home directory) applies.
    """
    offline = REPO_ROOT.parent / "shared" / "data"
    if "ADVFAIR_DATA_DIR" not in os.environ and offline.is_dir():
        os.environ["ADVFAIR_DATA_DIR"] = str(offline.resolve())


def synchronize(device: torch.device) -> None:
    """CUDA kernels run asynchronously: wait for them, or the clock stops before the work is done."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@dataclass
class Timing:
    """Wall seconds, and CPU seconds of this process (all its threads).

    On a machine shared with other jobs the wall clock also counts the time this process waited
    for a core; CPU time mostly does not, so its ratios are a second, steadier view on CPU runs
    (on CUDA it measures only the host side and means little).
    """

    wall: float = 0.0
    cpu: float = 0.0

    def __iadd__(self, other: "Timing") -> "Timing":
        self.wall += other.wall
        self.cpu += other.cpu
        return self


def timed(fn: Callable[[], T], device: torch.device) -> tuple[Timing, T]:
    """Timing of fn() on `device`, and its result."""
    synchronize(device)
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn()
    synchronize(device)
    return Timing(time.perf_counter() - wall, time.process_time() - cpu), out


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def rotated(names: Sequence[str], repetition: int) -> list[str]:
    """Run order for one repetition: each method goes first once in turn, so slow drift of the
    machine's load (other processes, thermal state) does not favour whichever always runs first."""
    k = repetition % len(names)
    return list(names[k:]) + list(names[:k])


def environment_line(device: torch.device) -> str:
    """What the numbers were measured on; the load average says how busy the machine was."""
    load = "n/a"
    if hasattr(os, "getloadavg"):
        load = ", ".join(f"{v:.2f}" for v in os.getloadavg())
    gpu = f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else ""
    return (f"torch {torch.__version__}, python {platform.python_version()}, device {device}{gpu}, "
            f"torch threads {torch.get_num_threads()}, cpu cores {os.cpu_count()}, load average {load}")


def textbook_pgd_steps(model: nn.Module, x: torch.Tensor, y: torch.Tensor, x_adv: torch.Tensor, *, eps: float,
                       alpha: float, steps: int, zero_grad: bool) -> torch.Tensor:
    """The plain PGD loop of most tutorials: full loss.backward() (parameter gradients too) every step.
    `zero_grad` clears those gradients after each step; naive training code often does not."""
    for _ in range(steps):
        x_adv = x_adv.detach().requires_grad_(True)
        loss = F.cross_entropy(model(x_adv), y)
        loss.backward()
        with torch.no_grad():
            x_adv = x_adv + alpha * x_adv.grad.sign()
            x_adv = torch.min(torch.max(x_adv, x - eps), x + eps).clamp(0, 1)
        if zero_grad:
            model.zero_grad(set_to_none=True)
    return x_adv.detach()
