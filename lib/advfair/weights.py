"""Committed weights: trained models kept with the book (`book/weights`), which the model cache finds before it
trains, so a fresh clone re-evaluates them instead of retraining.

A model is two files named by its cache key: `<key>.safetensors`, its state dict (tensors only: loading runs no
code), and `<key>.json`, its record: the cache spec it was trained from (data, network, objective, training config,
code versions), its training history and time, and the sha256 and size of the weights file. A file whose
checksum or spec does not match is refused with a message naming it: it is never loaded, and never silently
retrained over.

Loading one in your own code:

    from advfair.weights import load
    state, record = load("book/weights/<key>.safetensors")   # checked against its record
    model = advfair.models.build_model(**record["spec"]["model"], dataset="cifar10", num_classes=10, in_channels=3)
    model.load_state_dict(state)
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch
from safetensors.torch import load as load_bytes
from safetensors.torch import save as save_bytes

from .files import write_atomic, write_json_atomic
from .validation import fail

SCHEMA = "advfair.weights/1"


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def commit(state: dict[str, torch.Tensor], meta: dict, folder: Path) -> Path:
    """Write a trained model (its state dict and the cache's record `meta`: spec, key, history, train_seconds)
    into `folder`; returns the weights file's path."""
    data = save_bytes({k: v.detach().cpu().contiguous() for k, v in state.items()})
    path = Path(folder) / f"{meta['key']}.safetensors"
    record = {"schema": SCHEMA, "key": meta["key"], "spec": meta["spec"], "history": meta["history"],
              "train_seconds": meta["train_seconds"], "sha256": _sha256(data), "bytes": len(data)}
    write_atomic(path, lambda handle: handle.write(data))
    write_json_atomic(record, path.with_suffix(".json"))
    return path


def load(path: str | Path, spec: dict | None = None) -> tuple[dict[str, torch.Tensor], dict]:
    """The state dict of a committed weights file and its record, after checking the file against the record's
    checksum (and the record's spec against `spec`, when given)."""
    path = Path(path)
    record_path = path.with_suffix(".json")
    if not (path.is_file() and record_path.is_file()):
        fail("weights", str(path), "a committed weights file with its record (<key>.safetensors and <key>.json)")
    record = json.loads(record_path.read_text())
    data = path.read_bytes()
    if _sha256(data) != record["sha256"]:
        fail("weights", str(path), f"a file whose sha256 is its record's ({record['sha256'][:12]}…): this one is "
                                   "damaged or was replaced")
    if spec is not None and record["spec"] != spec:
        fail("weights", str(path), "a record whose cache spec is the one asked for")
    return load_bytes(data), record


def find(key: str, spec: dict, folders: tuple[Path, ...]) -> tuple[dict[str, torch.Tensor], dict] | None:
    """The committed model of cache key `key` in the first of `folders` that holds it, checked; None if none does."""
    for folder in folders:
        path = Path(folder) / f"{key}.safetensors"
        if path.is_file():
            return load(path, spec)
    return None
