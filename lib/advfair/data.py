"""Datasets as uint8 tensors, class-balanced and long-tailed subsets, and augmentation on tensors.

Loading order: ``<data dir>/<name>.npz`` (content checksum verified), otherwise a torchvision
download converted to the same ``.npz`` format and cached atomically in the data dir.
"""
from __future__ import annotations

import hashlib
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from . import distributed
from .files import write_atomic
from .locations import default_data_dir
from .validation import check_choice, check_non_negative, check_number, check_positive, fail

DATASETS = ("cifar10", "cifar100", "mnist", "svhn")
ARRAYS = ("x_train", "y_train", "x_test", "y_test")

# sha256 over the raw C-order bytes of x_train, y_train, x_test, y_test (see shared/data/README.md).
KNOWN_CHECKSUMS = {
    "cifar10": "6b3883dca6c867f1e58def548c063d1865569b8575fcbce06b3e468a89f9895a",
    "mnist": "1e35582d42a90940c55b956deb61875c020b567ed20e3c5b174f52bf7809ed9b",
}


class ChecksumError(RuntimeError):
    """A dataset file's contents differ from the expected checksum."""


@dataclass(frozen=True)
class Dataset:
    """Images as uint8 (N, C, H, W) tensors, labels as int64 tensors."""

    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    classes: tuple[str, ...]

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def in_channels(self) -> int:
        return self.x_train.shape[1]


def content_checksum(arrays: dict[str, np.ndarray]) -> str:
    digest = hashlib.sha256()
    for key in ARRAYS:
        digest.update(np.ascontiguousarray(arrays[key]).tobytes())
    return digest.hexdigest()


def save_npz_atomic(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write an .npz so that a reader never sees a half-written file."""
    write_atomic(path, lambda handle: np.savez_compressed(handle, **arrays))


def _verify(name: str, path: Path, arrays: dict[str, np.ndarray]) -> None:
    expected = KNOWN_CHECKSUMS.get(name) or (str(arrays["sha256"]) if "sha256" in arrays else None)
    if expected is None:
        return
    actual = content_checksum(arrays)
    if actual != expected:
        raise ChecksumError(
            f"{path}: content checksum {actual} does not match the expected {expected}; "
            "delete the file to download it again, or point ADVFAIR_DATA_DIR at a good copy"
        )


def _torchvision_arrays(name: str, root: Path) -> dict[str, np.ndarray]:
    """Download `name` with torchvision and convert it to the offline format (N, H, W, C) uint8."""
    import torchvision.datasets as tvd

    if name == "svhn":
        splits = {split: tvd.SVHN(str(root), split=split, download=True) for split in ("train", "test")}
        xs = {s: np.transpose(d.data, (0, 2, 3, 1)) for s, d in splits.items()}
        ys = {s: np.asarray(d.labels, dtype=np.int64) for s, d in splits.items()}
        classes = [str(i) for i in range(10)]
    else:
        cls = {"cifar10": tvd.CIFAR10, "cifar100": tvd.CIFAR100, "mnist": tvd.MNIST}[name]
        splits = {s: cls(str(root), train=(s == "train"), download=True) for s in ("train", "test")}
        xs, ys = {}, {}
        for split, ds in splits.items():
            data = np.asarray(ds.data, dtype=np.uint8)
            xs[split] = data[..., None] if data.ndim == 3 else data
            ys[split] = np.asarray(ds.targets, dtype=np.int64)
        classes = list(splits["train"].classes)
    arrays = {"x_train": xs["train"], "y_train": ys["train"], "x_test": xs["test"], "y_test": ys["test"],
              "classes": np.asarray(classes)}
    arrays["sha256"] = np.asarray(content_checksum(arrays))
    return arrays


def _downloaded(name: str, data_dir: Path) -> dict[str, np.ndarray]:
    """The dataset from torchvision; on failure (e.g. offline) a clear error, and no folder left behind."""
    created = [p for p in (data_dir, data_dir / "torchvision") if not p.exists()]
    try:
        return _torchvision_arrays(name, data_dir / "torchvision")
    except (OSError, RuntimeError) as error:  # URLError is an OSError; torchvision raises RuntimeError too
        for folder in created[:1]:  # the outermost folder this call created, with all it wrote
            shutil.rmtree(folder, ignore_errors=True)
        fail("dataset", name, f"a dataset this machine has: {data_dir / (name + '.npz')} does not exist and the "
                              f"download failed ({type(error).__name__}: {error}). Put {name}.npz there, or set "
                              "ADVFAIR_DATA_DIR to a folder that has it (see the README, 'Data and caches')")


def load_dataset(name: str, data_dir: str | Path | None = None, *, download: bool = True) -> Dataset:
    """Load a dataset: the offline ``.npz`` first, otherwise download with torchvision and cache it."""
    check_choice("dataset", name, DATASETS)
    data_dir = Path(data_dir) if data_dir is not None else default_data_dir()
    path = data_dir / f"{name}.npz"
    if not path.exists() and not download:
        raise FileNotFoundError(f"{path} does not exist and download=False; set ADVFAIR_DATA_DIR")
    if not path.exists() and distributed.is_main():  # one process downloads; the others wait for its file
        save_npz_atomic(path, _downloaded(name, data_dir))
    distributed.barrier()
    with np.load(path) as npz:
        arrays = {key: npz[key] for key in npz.files}
    _verify(name, path, arrays)

    def images(a: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(a.transpose(0, 3, 1, 2)))

    return Dataset(
        name=name,
        x_train=images(arrays["x_train"]),
        y_train=torch.from_numpy(arrays["y_train"].astype(np.int64)),
        x_test=images(arrays["x_test"]),
        y_test=torch.from_numpy(arrays["y_test"].astype(np.int64)),
        classes=tuple(str(c) for c in arrays["classes"]),
    )


def class_balanced_indices(labels: torch.Tensor, per_class: int, *, seed: int,
                           exclude: torch.Tensor | None = None) -> torch.Tensor:
    """`per_class` seeded random indices of each class, sorted; indices in `exclude` are never drawn."""
    check_positive("per_class", per_class, integer=True)
    generator = torch.Generator().manual_seed(seed)
    available = torch.ones(len(labels), dtype=torch.bool)
    if exclude is not None:
        available[exclude] = False
    chosen = []
    for c in range(int(labels.max()) + 1):
        pool = torch.nonzero((labels == c) & available).flatten()
        if len(pool) < per_class:
            raise ValueError(f"per_class={per_class} is not allowed: class {c} has only {len(pool)} images available")
        chosen.append(pool[torch.randperm(len(pool), generator=generator)[:per_class]])
    return torch.cat(chosen).sort().values


def long_tailed_counts(n_max: int, imbalance: float, num_classes: int) -> list[int]:
    """n_c = int(n_max * imbalance^(c / (C - 1))): class 0 is the head, class C-1 has n_max * imbalance."""
    check_positive("n_max", n_max, integer=True)
    check_number("imbalance", imbalance, low=0, high=1, low_open=True)
    check_number("num_classes", num_classes, low=2, integer=True)
    return [int(n_max * imbalance ** (c / (num_classes - 1))) for c in range(num_classes)]


def long_tailed_indices(labels: torch.Tensor, counts: list[int], *, seed: int,
                        exclude: torch.Tensor | None = None) -> torch.Tensor:
    """Seeded random `counts[c]` indices of each class c, sorted."""
    generator = torch.Generator().manual_seed(seed)
    available = torch.ones(len(labels), dtype=torch.bool)
    if exclude is not None:
        available[exclude] = False
    chosen = []
    for c, n in enumerate(counts):
        check_non_negative(f"counts[{c}]", n, integer=True)
        pool = torch.nonzero((labels == c) & available).flatten()
        if len(pool) < n:
            raise ValueError(f"counts[{c}]={n} is not allowed: class {c} has only {len(pool)} images available")
        chosen.append(pool[torch.randperm(len(pool), generator=generator)[:n]])
    return torch.cat(chosen).sort().values


def ldam_long_tailed_indices(labels: torch.Tensor, counts: list[int], *, seed: int = 0) -> torch.Tensor:
    """The long-tailed subset exactly as the LDAM/RoBal code builds it (`datasets.py`), sorted:
    ``np.random.seed(seed)`` once, then for each class c in order shuffle the indices of class c and keep
    the first counts[c]. With the same seed a smaller count keeps a prefix of the same shuffle."""
    rng = np.random.RandomState(seed)  # the legacy global generator that np.random.seed seeds
    y = labels.cpu().numpy()
    chosen = []
    for c, n in enumerate(counts):
        check_non_negative(f"counts[{c}]", n, integer=True)
        idx = np.flatnonzero(y == c)
        if len(idx) < n:
            raise ValueError(f"counts[{c}]={n} is not allowed: class {c} has only {len(idx)} images available")
        rng.shuffle(idx)
        chosen.append(idx[:n])
    return torch.from_numpy(np.sort(np.concatenate(chosen)))


def to_float(x: torch.Tensor) -> torch.Tensor:
    """uint8 images in 0..255 to float images in [0, 1]."""
    return x.float().div_(255)


# The augmentation's cache version, in every model's key: bump it when a change to `augment_crop_flip` alters the
# images it draws.
AUGMENTATION_VERSION = 1


def augment_crop_flip(x: torch.Tensor, *, padding: int = 4, generator: torch.Generator | None = None) -> torch.Tensor:
    """Random crop with zero padding plus horizontal flip, for a batch on any device (float or uint8)."""
    n, _, h, w = x.shape
    device = x.device
    padded = torch.nn.functional.pad(x, (padding,) * 4)
    dy = torch.randint(0, 2 * padding + 1, (n,), generator=generator).to(device)
    dx = torch.randint(0, 2 * padding + 1, (n,), generator=generator).to(device)
    flip = (torch.rand(n, generator=generator) < 0.5).to(device)
    rows = (dy[:, None] + torch.arange(h, device=device)[None, :])  # (n, h)
    cols = dx[:, None] + torch.arange(w, device=device)[None, :]  # (n, w)
    cols = torch.where(flip[:, None], cols.flip(1), cols)
    batch = torch.arange(n, device=device)[:, None, None, None]
    channel = torch.arange(x.shape[1], device=device)[None, :, None, None]
    return padded[batch, channel, rows[:, None, :, None], cols[:, None, None, :]]


def batches(x: torch.Tensor, y: torch.Tensor, batch_size: int, *, shuffle: bool = False,
            generator: torch.Generator | None = None, drop_last: bool = False):
    """Yield (x, y) minibatches of tensors, in a seeded random order if `shuffle`."""
    order = torch.randperm(len(x), generator=generator) if shuffle else torch.arange(len(x))
    stop = len(x) - len(x) % batch_size if drop_last else len(x)
    for start in range(0, stop, batch_size):
        idx = order[start:start + batch_size]
        yield x[idx], y[idx]
