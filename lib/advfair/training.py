"""Cached training: one complete specification in, a trained model (from the cache when it exists) out."""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from .cache import ModelCache, spec_key
from .models import build_model
from .objectives import Objective
from .splits import Split
from .trainer import TrainConfig, train
from .validation import fail


def model_spec_of(data_spec: dict, model_spec: dict, objective: Objective, train_cfg: TrainConfig) -> dict:
    """A trained model's complete cache specification: its training images (a split's `spec`), model, objective
    and training config."""
    return {"data": data_spec, "model": model_spec, "objective": objective.cache_spec(), "train": train_cfg.to_dict()}


def train_cached(cache: ModelCache, split: Split, *, model_spec: dict, objective: Objective,
                 train_cfg: TrainConfig, device: torch.device, progress: bool = False,
                 allow_training: bool = True, label: str = "") -> tuple[nn.Module, dict]:
    """Train (or load from the cache) a model for one complete, JSON-able specification. The returned
    meta holds the cache key, the per-epoch history and whether it came from the cache.
    `allow_training=False` makes a missing cache entry an error instead (e.g. a teacher that must exist)."""
    spec = model_spec_of(split.spec, model_spec, objective, train_cfg)
    if not allow_training and not cache.contains(spec):
        fail("cache", f"{cache.root}/{spec_key(spec)}", "a cached model for this specification (training it "
             "is not allowed here)")
    data = split.data
    # The initial weights come from the training seed, never from whatever the global RNG holds: otherwise
    # the first model of a process, or a model trained after a cache hit, would depend on what ran before.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(train_cfg.seed)
        model = build_model(dataset=data.name, num_classes=data.num_classes, in_channels=data.in_channels,
                            **model_spec)
    x, y = split.images("train")

    def run(m: nn.Module, checkpoint: Path) -> list[dict]:
        return train(m, objective, x, y, train_cfg, device=device, checkpoint=checkpoint, progress=progress,
                     label=label)

    model, meta = cache.get_or_train(spec, model, run)
    return model.to(device).eval(), meta


def model_record(meta: dict) -> dict:
    """What a results file keeps of a trained model: its cache key, the per-epoch losses (and objective
    statistics), whether it came from the cache, and its training time (timings under "seconds")."""
    history = [{k: v for k, v in record.items() if k not in ("seconds", "images_per_second")}
               for record in meta["history"]]
    return {"key": meta["key"], "history": history, "from_cache": meta["from_cache"],
            "seconds": {"train": meta["train_seconds"]}}
