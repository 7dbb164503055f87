"""A rough running time of a chapter's run before it starts: the `cpu` profile's measured wall time, scaled by
how much more training the run asks for (images x epochs x attack steps + 1) and by how much dearer its
network is per image on this machine (a forward and backward pass, timed here).

It is an order of magnitude for deciding whether to start (e.g. the `paper` profile on a CPU), never a result:
evaluation is assumed to scale like training, and teachers or extra models are not counted separately.
"""
from __future__ import annotations

import json
import time

import torch

from ..config import ChapterConfig
from ..models import build_model
from ..trainer import resolve_device
from ..validation import fail
from .base import results_dir

# Shape of one image and training images per class of the full training sets.
IMAGE = {"cifar10": (3, 32, 32), "cifar100": (3, 32, 32), "svhn": (3, 32, 32), "mnist": (1, 28, 28)}
CLASSES = {"cifar10": 10, "cifar100": 100, "svhn": 10, "mnist": 10}
FULL_PER_CLASS = {"cifar10": 5000, "cifar100": 500, "svhn": 7325, "mnist": 6000}


def network(cfg: ChapterConfig) -> tuple[str, int]:
    """(model name, width) of the models a chapter trains most of."""
    name = cfg.model
    return name, getattr(cfg, "width", 32)


def training_volume(cfg: ChapterConfig) -> float:
    """Training images x epochs x (attack steps + 1): the image passes of one model's training, up to a factor."""
    if hasattr(cfg, "counts"):  # the long-tailed set
        images = sum(cfg.counts())
    else:
        per_class = cfg.train_per_class or FULL_PER_CLASS[cfg.dataset]
        images = per_class * CLASSES[cfg.dataset]
    return float(images * cfg.epochs * (cfg.train_steps + 1))


def seconds_per_image(cfg: ChapterConfig, *, batch: int = 4, repeats: int = 2) -> float:
    """A forward and backward pass of the chapter's network on `batch` images, per image, on this CPU (best of
    `repeats`)."""
    name, width = network(cfg)
    model = build_model(name, dataset=cfg.dataset, num_classes=CLASSES[cfg.dataset], in_channels=IMAGE[cfg.dataset][0],
                        width=width).train()
    x, y = torch.rand(batch, *IMAGE[cfg.dataset]), torch.arange(batch) % CLASSES[cfg.dataset]
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        best = min(best, time.perf_counter() - started)
    return best / batch


def estimate_seconds(cfg: ChapterConfig, reference: ChapterConfig, reference_seconds: float) -> float:
    """`reference_seconds` (a measured run of `reference`, e.g. the committed cpu results) scaled to `cfg`."""
    work = training_volume(cfg) / training_volume(reference)
    cost = seconds_per_image(cfg) / seconds_per_image(reference)
    return reference_seconds * work * cost


def readable(seconds: float) -> str:
    for unit, size in (("days", 86400), ("hours", 3600), ("minutes", 60)):
        if seconds >= size:
            return f"about {seconds / size:.0f} {unit}" if seconds / size >= 10 else f"about {seconds / size:.1f} {unit}"
    return f"about {seconds:.0f} seconds"


def cpu_estimate(chapter, config: ChapterConfig) -> str:
    """The estimated running time of `config`, scaled from the book's committed cpu-profile run (its measured
    wall time, its training volume and its network's cost per image, timed on this machine now)."""
    path = results_dir() / f"{chapter.name}_cpu.json"
    if not path.is_file():
        return "no estimate (the book's cpu-profile results, the reference, are not here)"
    reference = json.loads(path.read_text())
    seconds = estimate_seconds(config, chapter.make_config("cpu"), reference["seconds"]["total"])
    return (f"{readable(seconds)} (the cpu profile's {reference['seconds']['total'] / 60:.0f} minutes, scaled by "
            "training volume and by the network's cost per image here; an order of magnitude)")


def check_paper_on_cpu(chapter, config: ChapterConfig, *, smoke: bool = False, name: str = "device") -> None:
    """The paper profile on a CPU runs for days: it starts only when the device is 'cpu' by name (the user's
    confirmation; 'auto' on a machine without CUDA is not), and the refusal gives the estimate. Smoke runs pass."""
    if config.profile != "paper" or smoke or config.device == "cpu" or resolve_device(config.device).type != "cpu":
        return
    fail(name, config.device, f"'cuda' for the paper profile, or 'cpu' to run it on this CPU anyway (estimated: "
                              f"{cpu_estimate(chapter, config)})")
