"""A content-addressed cache of trained models, shared by every chapter and rerun.

The key is the sha256 of the canonical JSON of everything that determines the trained weights: data
selection, model, training config and seed, and the objective's `cache_spec()`, which holds the
objective's own cache version (bumped when a change to that objective alters what training produces)
and the keys of its frozen auxiliary models (a teacher is identified by its own key).
"""
from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from . import distributed, weights
from .files import remove, write_json_atomic
from .locations import default_cache_dir, default_weights_dirs
from .trainer import save_atomic

def spec_key(spec: dict) -> str:
    canonical = json.dumps(spec, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:24]


def training_seconds(history: list[dict], elapsed: float) -> float:
    """A model's training time: the sum of its epochs' times, so that a training resumed after an interruption
    counts the epochs before it too (their records travel in the checkpoint); `elapsed` when the history has
    no epoch times."""
    epochs = [h.get("seconds") for h in history]
    if epochs and all(isinstance(t, (int, float)) for t in epochs):
        return float(sum(epochs))
    return elapsed


class ModelCache:
    """`get_or_train(spec, model, train_fn)`: load the weights for `spec` if cached (in the cache's folder, else
    among the committed weights, `advfair.weights`), else train and store them.

    Training writes its per-epoch checkpoint next to the final weights, so an interrupted run resumes. In a run
    of several processes every process trains (together), process 0 writes, and the others wait for its writes.
    `publish` (default: $ADVFAIR_PUBLISH_WEIGHTS) is a committed-weights folder every newly trained model is also
    written to as it finishes: a long run of many models (the evidence tier) keeps each one as soon as it exists.
    """

    def __init__(self, root: str | Path | None = None, committed: tuple[Path, ...] | None = None,
                 publish: str | Path | None = None):
        self.root = Path(root) if root is not None else default_cache_dir()
        self.committed = tuple(Path(c) for c in committed) if committed is not None else default_weights_dirs()
        publish = publish if publish is not None else os.environ.get("ADVFAIR_PUBLISH_WEIGHTS")
        self.publish = Path(publish) if publish else None

    def path(self, spec: dict) -> Path:
        return self.root / f"{spec_key(spec)}.pt"

    def contains(self, spec: dict) -> bool:
        path = self.path(spec)
        return (path.exists() and path.with_suffix(".json").exists()) or any(
            (c / f"{spec_key(spec)}.safetensors").is_file() for c in self.committed)

    def get_or_train(self, spec: dict, model: nn.Module,
                     train_fn: Callable[[nn.Module, Path], list[dict]]) -> tuple[nn.Module, dict]:
        path = self.path(spec)
        meta_path = path.with_suffix(".json")
        if path.exists() and meta_path.exists():
            model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
            return model.eval(), {**json.loads(meta_path.read_text()), "from_cache": True}
        found = weights.find(spec_key(spec), spec, self.committed)
        if found is not None:
            state, record = found
            model.load_state_dict(state)
            return model.eval(), {"spec": record["spec"], "key": record["key"], "history": record["history"],
                                  "train_seconds": record["train_seconds"], "from_cache": True}
        started = time.perf_counter()
        checkpoint = path.with_suffix(".ckpt")
        history = train_fn(model, checkpoint)
        meta = {"spec": spec, "key": spec_key(spec), "history": history,
                "train_seconds": training_seconds(history, time.perf_counter() - started)}
        state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
        save_atomic(state, path)
        write_json_atomic(meta, meta_path)
        if self.publish is not None:
            weights.commit(state, meta, self.publish)
        remove(checkpoint)
        distributed.barrier()  # every process now sees the entry process 0 wrote
        return model.eval(), {**meta, "from_cache": False}

    def commit(self, spec: dict, folder: Path) -> Path:
        """Copy the cached model of `spec` into the committed weights `folder` (`advfair.weights`)."""
        path = self.path(spec)
        if not (path.exists() and path.with_suffix(".json").exists()):
            raise FileNotFoundError(f"no cached model for key {spec_key(spec)} in {self.root}")
        meta = json.loads(path.with_suffix(".json").read_text())
        return weights.commit(torch.load(path, map_location="cpu", weights_only=True), meta, folder)
