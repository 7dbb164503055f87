"""Splits of a dataset (the data layer's second half): training, validation and test indices.

Validation images come from the training pool and are never trained on: every choice that could leak
test information (a worst class, a temperature, a bias, a post-hoc shift) is made on them.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .data import Dataset, class_balanced_indices, ldam_long_tailed_indices, load_dataset, long_tailed_counts, to_float


@dataclass(frozen=True)
class Split:
    """Training, validation (held out from the training pool) and test indices of one dataset, and `spec`, what
    determines the training images (the data part of a trained model's cache key): two splits with equal specs
    train on the same images."""

    data: Dataset
    train: torch.Tensor
    val: torch.Tensor
    test: torch.Tensor
    spec: dict

    def images(self, part: str) -> tuple[torch.Tensor, torch.Tensor]:
        idx = getattr(self, part)
        if part == "test":
            return self.data.x_test[idx], self.data.y_test[idx]
        return self.data.x_train[idx], self.data.y_train[idx]

    def float_images(self, part: str, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = self.images(part)
        return to_float(x).to(device), y.to(device)


def balanced_split(dataset: str, *, train_per_class: int | None, val_per_class: int, test_per_class: int | None,
                   seed: int, data_dir: str | None = None) -> Split:
    """Validation images are drawn first and never used for training; `None` means all that remain."""
    data = load_dataset(dataset, data_dir)
    val = class_balanced_indices(data.y_train, val_per_class, seed=seed)
    if train_per_class is None:
        keep = torch.ones(len(data.y_train), dtype=torch.bool)
        keep[val] = False
        train_idx = torch.nonzero(keep).flatten()
    else:
        train_idx = class_balanced_indices(data.y_train, train_per_class, seed=seed + 1, exclude=val)
    test = (torch.arange(len(data.y_test)) if test_per_class is None
            else class_balanced_indices(data.y_test, test_per_class, seed=seed + 2))
    return Split(data, train_idx, val, test, balanced_spec(dataset, train_per_class=train_per_class,
                                                            val_per_class=val_per_class, seed=seed))


def balanced_spec(dataset: str, *, train_per_class: int | None, val_per_class: int, seed: int) -> dict:
    """The spec of `balanced_split`'s training images, without loading the dataset."""
    return {"dataset": dataset, "seed": seed, "train_per_class": train_per_class, "val_per_class": val_per_class}


def long_tailed_split(dataset: str, *, n_max: int, imbalance: float, val_per_class: int, test_per_class: int | None,
                      data_seed: int, data_dir: str | None = None) -> Split:
    """Long-tailed training set as the LDAM/RoBal code draws it (class 0 the head), a balanced validation
    split from the training images it leaves unused, and a balanced test subset (`None`: the full test set)."""
    data = load_dataset(dataset, data_dir)
    counts = long_tailed_counts(n_max, imbalance, data.num_classes)
    train_idx = ldam_long_tailed_indices(data.y_train, counts, seed=data_seed)
    val = class_balanced_indices(data.y_train, val_per_class, seed=data_seed + 1, exclude=train_idx)
    test = (torch.arange(len(data.y_test)) if test_per_class is None
            else class_balanced_indices(data.y_test, test_per_class, seed=data_seed + 2))
    spec = {"dataset": dataset, "kind": "long_tailed", "rule": "ldam", "n_max": n_max, "imbalance": imbalance,
            "data_seed": data_seed}
    return Split(data, train_idx, val, test, spec)


def subset_per_class(y: np.ndarray, per_class: int | None) -> np.ndarray:
    """The first `per_class` positions of each class (None: every position): the dataset's order is
    unrelated to image content, so this is a stratified subset."""
    if per_class is None:
        return np.arange(len(y))
    return np.sort(np.concatenate([np.flatnonzero(y == c)[:per_class] for c in np.unique(y)]))
