"""Cached training: one complete specification in, a trained model (from the cache when it exists) out."""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from . import attacks, data, trainer
from .cache import ModelCache, spec_key
from .files import copy_atomic
from .models import BODY_VERSIONS, build_model, canonical_model
from .objectives import Objective
from .splits import Split
from .trainer import TrainConfig, train
from .validation import fail


def code_versions(model_spec: dict) -> dict[str, int]:
    """The cache versions of the code every training runs through: the loop, the augmentation, the training
    attacks and the model's body (the objective carries its own version and formula fingerprint)."""
    return {"trainer": trainer.VERSION, "augmentation": data.AUGMENTATION_VERSION, "attacks": attacks.VERSION,
            "body": BODY_VERSIONS[canonical_model(model_spec["name"])]}


def model_spec_of(data_spec: dict, model_spec: dict, objective: Objective, train_cfg: TrainConfig) -> dict:
    """A trained model's complete cache specification: its training images (a split's `spec`), model, objective,
    training config and the versions of the code they run through."""
    return {"data": data_spec, "model": model_spec, "objective": objective.cache_spec(), "train": train_cfg.to_dict(),
            "versions": code_versions(model_spec)}


def initial_model(split: Split, model_spec: dict, seed: int) -> nn.Module:
    """The untrained model of `model_spec` for the split's dataset. Its weights come from the training seed, never
    from whatever the global RNG holds: otherwise the first model of a process, or a model trained after a cache
    hit, would depend on what ran before."""
    images = split.data
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build_model(dataset=images.name, num_classes=images.num_classes, in_channels=images.in_channels,
                           **model_spec)


def train_cached(cache: ModelCache, split: Split, *, model_spec: dict, objective: Objective,
                 train_cfg: TrainConfig, device: torch.device, progress: bool = False,
                 allow_training: bool = True, label: str = "", keep_after: int | None = None,
                 resume_from: Path | None = None) -> tuple[nn.Module, dict]:
    """Train (or load from the cache) a model for one complete, JSON-able specification. The returned
    meta holds the cache key, the per-epoch history and whether it came from the cache.
    `allow_training=False` makes a missing cache entry an error instead (e.g. a teacher that must exist).

    Trainings that share their first epochs (ablations of a parameter that acts only later) share them through a
    prefix: `keep_after=k` keeps a copy of the training checkpoint after epoch k (its path in meta["prefix"] when
    this call trained), and `resume_from=path` starts from such a copy. The trainer resumes exactly, so the weights
    are those of a training from scratch."""
    spec = model_spec_of(split.spec, model_spec, objective, train_cfg)
    if not allow_training and not cache.contains(spec):
        fail("cache", f"{cache.root}/{spec_key(spec)}", "a cached model for this specification (training it "
             "is not allowed here)")
    x, y = split.images("train")
    prefixes: list[Path] = []

    def run(m: nn.Module, checkpoint: Path) -> list[dict]:
        if resume_from is not None and resume_from.exists() and not checkpoint.exists():
            copy_atomic(resume_from, checkpoint)

        def keep(epoch: int, record: dict) -> None:
            if keep_after is not None and epoch + 1 == keep_after:
                prefixes.append(copy_atomic(checkpoint, checkpoint.with_suffix(f".prefix{keep_after}")))

        return train(m, objective, x, y, train_cfg, device=device, checkpoint=checkpoint, progress=progress,
                     label=label, on_epoch_end=keep)

    model, meta = cache.get_or_train(spec, initial_model(split, model_spec, train_cfg.seed), run)
    return model.to(device).eval(), {**meta, **({"prefix": prefixes[-1]} if prefixes else {})}


def model_record(meta: dict) -> dict:
    """What a results file keeps of a trained model: its cache key, the per-epoch losses (and objective
    statistics), whether it came from the cache, and its training time (timings under "seconds")."""
    history = [{k: v for k, v in record.items() if k not in ("seconds", "images_per_second")}
               for record in meta["history"]]
    return {"key": meta["key"], "history": history, "from_cache": meta["from_cache"],
            "seconds": {"train": meta["train_seconds"]}}
