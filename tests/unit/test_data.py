"""advfair.data: checksums, the download + cache route (no network), subsets, augmentation, batching."""
from __future__ import annotations


import numpy as np
import pytest
import torch

from advfair import data as D
from advfair.data import (KNOWN_CHECKSUMS, ChecksumError, augment_crop_flip, batches, class_balanced_indices,
                          content_checksum, load_dataset, long_tailed_counts, long_tailed_indices, to_float)
from advfair.validation import ConfigError


# ---------------------------------------------------------------------------------------------------------------
# Real offline files

@pytest.fixture(scope="module")
def cifar10_arrays(data_dir):
    path = data_dir / "cifar10.npz"
    if not path.exists():
        pytest.skip("no cifar10.npz in the data dir")
    with np.load(path) as npz:
        return {k: npz[k] for k in npz.files}


def test_cifar10_content_checksum_matches_known(cifar10_arrays):
    assert content_checksum(cifar10_arrays) == KNOWN_CHECKSUMS["cifar10"]
    assert cifar10_arrays["x_train"].shape == (50000, 32, 32, 3)
    assert cifar10_arrays["x_test"].shape == (10000, 32, 32, 3)


def test_mnist_loads_with_known_checksum(data_dir):
    if not (data_dir / "mnist.npz").exists():
        pytest.skip("no mnist.npz in the data dir")
    with np.load(data_dir / "mnist.npz") as npz:
        arrays = {k: npz[k] for k in npz.files}
    assert content_checksum(arrays) == KNOWN_CHECKSUMS["mnist"]
    ds = load_dataset("mnist", data_dir, download=False)
    assert ds.x_train.shape == (60000, 1, 28, 28) and ds.x_train.dtype == torch.uint8
    assert ds.x_test.shape == (10000, 1, 28, 28)
    assert ds.y_train.dtype == torch.int64 and ds.num_classes == 10 and ds.in_channels == 1
    # (N, H, W, C) -> (N, C, H, W) keeps the pixels
    assert torch.equal(ds.x_train[0, 0], torch.from_numpy(arrays["x_train"][0, :, :, 0]))
    assert torch.bincount(ds.y_test).tolist() == np.bincount(arrays["y_test"]).tolist()


def test_content_checksum_depends_on_every_array_and_order():
    arrays = _tiny_arrays(seed=0)
    base = content_checksum(arrays)
    for key in D.ARRAYS:
        changed = dict(arrays)
        changed[key] = arrays[key].copy()
        changed[key].flat[0] += 1
        assert content_checksum(changed) != base, key
    # independent of extra keys (classes, sha256) and of memory layout
    extra = {**arrays, "classes": np.asarray(["a"]), "x_train": np.asfortranarray(arrays["x_train"])}
    assert content_checksum(extra) == base


# ---------------------------------------------------------------------------------------------------------------
# Corrupted files, missing files

def _tiny_arrays(seed: int = 0, n: int = 6, hw: int = 4, c: int = 3, classes: int = 3) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {"x_train": rng.integers(0, 256, (n, hw, hw, c), dtype=np.uint8),
            "y_train": np.arange(n, dtype=np.int64) % classes,
            "x_test": rng.integers(0, 256, (n // 2, hw, hw, c), dtype=np.uint8),
            "y_test": np.arange(n // 2, dtype=np.int64) % classes,
            "classes": np.asarray([f"c{i}" for i in range(classes)])}


def test_corrupted_known_dataset_raises_checksum_error(tmp_path):
    np.savez(tmp_path / "cifar10.npz", **_tiny_arrays())
    with pytest.raises(ChecksumError) as info:
        load_dataset("cifar10", tmp_path, download=False)
    message = str(info.value)
    assert "cifar10.npz" in message
    assert KNOWN_CHECKSUMS["cifar10"] in message
    assert "checksum" in message and "delete" in message


def test_missing_file_without_download_raises(tmp_path):
    with pytest.raises(FileNotFoundError, match="download=False"):
        load_dataset("cifar100", tmp_path, download=False)
    assert list(tmp_path.iterdir()) == []


def test_unknown_dataset_name_is_config_error(tmp_path):
    with pytest.raises(ConfigError, match="dataset='imagenet'"):
        load_dataset("imagenet", tmp_path)


# ---------------------------------------------------------------------------------------------------------------
# torchvision download route, without network

class _FakeCifar100:
    calls: list = []

    def __init__(self, root, train=True, download=False):
        type(self).calls.append((root, train, download))
        n = 5 if train else 3
        rng = np.random.default_rng(1 if train else 2)
        self.data = rng.integers(0, 256, (n, 4, 4, 3), dtype=np.uint8)
        self.targets = [i % 4 for i in range(n)]
        self.classes = ["apple", "bee", "cup", "dog"]


class _FakeSVHN:
    calls: list = []

    def __init__(self, root, split="train", download=False):
        type(self).calls.append((root, split, download))
        n = 6 if split == "train" else 4
        rng = np.random.default_rng(3 if split == "train" else 4)
        self.data = rng.integers(0, 256, (n, 3, 5, 4), dtype=np.uint8)  # (N, C, H, W), H != W
        self.labels = np.arange(n) % 10


@pytest.fixture
def fake_torchvision(monkeypatch):
    import torchvision.datasets as tvd

    _FakeCifar100.calls, _FakeSVHN.calls = [], []

    def no_network(*args, **kwargs):
        raise AssertionError("unexpected torchvision dataset")

    for name in ("CIFAR10", "MNIST"):
        monkeypatch.setattr(tvd, name, no_network)
    monkeypatch.setattr(tvd, "CIFAR100", _FakeCifar100)
    monkeypatch.setattr(tvd, "SVHN", _FakeSVHN)
    return tvd


def test_download_route_cifar100_writes_verified_cache(tmp_path, fake_torchvision):
    ds = load_dataset("cifar100", tmp_path)
    path = tmp_path / "cifar100.npz"
    assert path.exists()
    assert all(call[2] is True for call in _FakeCifar100.calls)
    assert {call[1] for call in _FakeCifar100.calls} == {True, False}
    with np.load(path) as npz:
        stored = {k: npz[k] for k in npz.files}
    assert stored["x_train"].shape == (5, 4, 4, 3) and stored["x_train"].dtype == np.uint8
    assert stored["x_test"].shape == (3, 4, 4, 3)
    assert stored["y_train"].dtype == np.int64
    assert str(stored["sha256"]) == content_checksum(stored)
    assert ds.x_train.shape == (5, 3, 4, 4)
    assert ds.classes == ("apple", "bee", "cup", "dog")
    assert torch.equal(ds.x_train, torch.from_numpy(_FakeCifar100(None).data).permute(0, 3, 1, 2))
    assert ds.y_test.tolist() == [0, 1, 2]
    assert not list(tmp_path.glob("*.tmp"))

    # A second load reads the cache: no torchvision call.
    _FakeCifar100.calls.clear()
    again = load_dataset("cifar100", tmp_path)
    assert _FakeCifar100.calls == []
    assert torch.equal(again.x_train, ds.x_train)


def test_download_route_svhn_transposes_to_channels_last(tmp_path, fake_torchvision):
    ds = load_dataset("svhn", tmp_path)
    with np.load(tmp_path / "svhn.npz") as npz:
        stored = {k: npz[k] for k in npz.files}
    assert stored["x_train"].shape == (6, 5, 4, 3)  # (N, H, W, C)
    assert stored["x_test"].shape == (4, 5, 4, 3)
    assert {call[1] for call in _FakeSVHN.calls} == {"train", "test"}
    raw = _FakeSVHN(None, split="train").data
    assert np.array_equal(stored["x_train"], raw.transpose(0, 2, 3, 1))
    assert ds.x_train.shape == (6, 3, 5, 4)
    assert torch.equal(ds.x_train, torch.from_numpy(raw))
    assert ds.classes == tuple(str(i) for i in range(10))
    assert str(stored["sha256"]) == content_checksum(stored)
    assert not list(tmp_path.glob("*.tmp"))


def test_tampered_download_cache_raises(tmp_path, fake_torchvision):
    load_dataset("cifar100", tmp_path)
    path = tmp_path / "cifar100.npz"
    with np.load(path) as npz:
        stored = {k: npz[k] for k in npz.files}
    stored["x_train"] = stored["x_train"].copy()
    stored["x_train"][0, 0, 0, 0] ^= 1
    np.savez(path, **stored)
    with pytest.raises(ChecksumError, match="cifar100.npz"):
        load_dataset("cifar100", tmp_path)


def test_failed_cache_write_leaves_no_tmp(tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez_compressed", broken)
    with pytest.raises(OSError, match="disk full"):
        D.save_npz_atomic(tmp_path / "x.npz", _tiny_arrays())
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------------------------------------------------------
# Subsets

def _labels(per_class=(30, 20, 25, 40), seed=0) -> torch.Tensor:
    labels = torch.cat([torch.full((n,), c) for c, n in enumerate(per_class)])
    return labels[torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed))]


def test_class_balanced_indices_counts_exclusion_determinism():
    labels = _labels()
    exclude = class_balanced_indices(labels, 5, seed=0)
    idx = class_balanced_indices(labels, 10, seed=1, exclude=exclude)
    assert torch.bincount(labels[idx], minlength=4).tolist() == [10, 10, 10, 10]
    assert len(set(idx.tolist())) == len(idx)
    assert torch.equal(idx, idx.sort().values)
    assert not set(idx.tolist()) & set(exclude.tolist())
    assert torch.equal(idx, class_balanced_indices(labels, 10, seed=1, exclude=exclude))
    assert not torch.equal(class_balanced_indices(labels, 10, seed=2), class_balanced_indices(labels, 10, seed=3))


def test_class_balanced_indices_too_many_or_bad():
    labels = _labels()
    with pytest.raises(ValueError, match="per_class=21"):
        class_balanced_indices(labels, 21, seed=0)  # class 1 has 20
    with pytest.raises(ConfigError, match="per_class=0"):
        class_balanced_indices(labels, 0, seed=0)
    exclude = torch.nonzero(labels == 1).flatten()[:1]
    with pytest.raises(ValueError, match="class 1 has only 19"):
        class_balanced_indices(labels, 20, seed=0, exclude=exclude)


@pytest.mark.parametrize("args, expected", [
    ((5000, 0.02, 10), [5000, 3237, 2096, 1357, 878, 568, 368, 238, 154, 100]),
    ((5000, 0.01, 10), [5000, 2997, 1796, 1077, 645, 387, 232, 139, 83, 50]),
    ((5000, 0.1, 10), [5000, 3871, 2997, 2320, 1796, 1391, 1077, 834, 645, 500]),
    ((1000, 0.02, 10), [1000, 647, 419, 271, 175, 113, 73, 47, 30, 20]),
])
def test_long_tailed_counts_paper_values(args, expected):
    counts = long_tailed_counts(*args)
    assert counts == expected
    assert sum(counts) == sum(expected)


def test_long_tailed_counts_totals_and_rule():
    assert sum(long_tailed_counts(5000, 0.02, 10)) == 13996
    assert sum(long_tailed_counts(5000, 0.01, 10)) == 12406
    assert sum(long_tailed_counts(5000, 0.1, 10)) == 20431
    c100 = long_tailed_counts(500, 0.1, 100)
    assert len(c100) == 100 and c100[0] == 500 and c100[-1] == 50 and sum(c100) == 19573
    assert all(a >= b for a, b in zip(c100, c100[1:]))
    # int() truncation, not rounding: 878.6 -> 878
    assert long_tailed_counts(5000, 0.02, 10)[4] == 878
    for bad in ({"imbalance": 0}, {"imbalance": 1.5}, {"num_classes": 1}, {"n_max": 0}):
        kwargs = {"n_max": 100, "imbalance": 0.1, "num_classes": 10, **bad}
        with pytest.raises(ConfigError, match=next(iter(bad))):
            long_tailed_counts(**kwargs)


def test_long_tailed_indices_deterministic_and_counts():
    labels = _labels((50, 50, 50, 50))
    counts = long_tailed_counts(40, 0.1, 4)
    idx = long_tailed_indices(labels, counts, seed=7)
    assert torch.bincount(labels[idx], minlength=4).tolist() == counts
    assert torch.equal(idx, long_tailed_indices(labels, counts, seed=7))
    assert not torch.equal(idx, long_tailed_indices(labels, counts, seed=8))
    exclude = class_balanced_indices(labels, 10, seed=0)
    idx2 = long_tailed_indices(labels, counts, seed=7, exclude=exclude)
    assert not set(idx2.tolist()) & set(exclude.tolist())
    assert torch.bincount(labels[idx2], minlength=4).tolist() == counts
    with pytest.raises(ValueError, match=r"counts\[0\]=51"):
        long_tailed_indices(labels, [51, 1, 1, 1], seed=0)
    with pytest.raises(ConfigError, match=r"counts\[1\]=-1"):
        long_tailed_indices(labels, [1, -1, 1, 1], seed=0)


def test_long_tailed_train_keeps_test_balanced():
    """RoBal fact 12: the LT subset is drawn from the training labels only; the test subset stays balanced."""
    y_train, y_test = _labels((60, 60, 60)), _labels((20, 20, 20), seed=1)
    lt = long_tailed_indices(y_train, long_tailed_counts(60, 0.1, 3), seed=0)
    test = class_balanced_indices(y_test, 20, seed=0)
    assert torch.bincount(y_train[lt]).tolist() == [60, 18, 6]
    assert torch.bincount(y_test[test]).tolist() == [20, 20, 20]


# ---------------------------------------------------------------------------------------------------------------
# Augmentation and batching

def test_to_float_range():
    x = torch.tensor([0, 51, 255], dtype=torch.uint8)
    assert torch.allclose(to_float(x), torch.tensor([0.0, 0.2, 1.0]))
    assert x.tolist() == [0, 51, 255]


@pytest.mark.parametrize("dtype", [torch.float32, torch.uint8])
def test_augment_no_padding_is_flip_or_identity(dtype):
    g = torch.Generator().manual_seed(0)
    x = (torch.rand(32, 3, 5, 6, generator=g) * 255).to(dtype)
    out = augment_crop_flip(x, padding=0, generator=torch.Generator().manual_seed(1))
    assert out.shape == x.shape and out.dtype == dtype
    same = [torch.equal(out[i], x[i]) for i in range(len(x))]
    flipped = [torch.equal(out[i], x[i].flip(-1)) for i in range(len(x))]
    assert all(s or f for s, f in zip(same, flipped))
    assert any(flipped) and any(s and not f for s, f in zip(same, flipped))


@pytest.mark.parametrize("dtype", [torch.float32, torch.uint8])
def test_augment_is_a_crop_of_the_padded_input(dtype):
    padding = 2
    x = (torch.rand(12, 2, 5, 5, generator=torch.Generator().manual_seed(0)) * 254 + 1).to(dtype)
    original = x.clone()
    out = augment_crop_flip(x, padding=padding, generator=torch.Generator().manual_seed(3))
    assert torch.equal(x, original)
    assert out.shape == x.shape and out.dtype == dtype
    padded = torch.nn.functional.pad(x, (padding,) * 4)
    offsets = set()
    for i in range(len(x)):
        matches = [(dy, dx, flip) for dy in range(2 * padding + 1) for dx in range(2 * padding + 1)
                   for flip in (False, True)
                   if torch.equal(out[i], (lambda c: c.flip(-1) if flip else c)(padded[i, :, dy:dy + 5, dx:dx + 5]))]
        assert matches, f"image {i} is not a (flipped) crop of the padded input"
        offsets.add(matches[0][:2])
    assert len(offsets) > 1  # offsets are random


def test_augment_seeded():
    x = torch.rand(8, 3, 6, 6)
    a = augment_crop_flip(x, generator=torch.Generator().manual_seed(5))
    b = augment_crop_flip(x, generator=torch.Generator().manual_seed(5))
    assert torch.equal(a, b)


@pytest.mark.parametrize("shuffle", [False, True])
def test_batches_cover_every_index_once(shuffle):
    x = torch.arange(23).float()[:, None]
    y = torch.arange(23)
    out = list(batches(x, y, 5, shuffle=shuffle, generator=torch.Generator().manual_seed(0)))
    assert [len(b[1]) for b in out] == [5, 5, 5, 5, 3]
    seen = torch.cat([b[1] for b in out])
    assert sorted(seen.tolist()) == list(range(23))
    for xb, yb in out:
        assert torch.equal(xb[:, 0].long(), yb)
    if not shuffle:
        assert seen.tolist() == list(range(23))
    else:
        assert seen.tolist() != list(range(23))


def test_batches_drop_last():
    y = torch.arange(23)
    out = list(batches(y[:, None], y, 5, shuffle=True, generator=torch.Generator().manual_seed(0), drop_last=True))
    assert [len(b[1]) for b in out] == [5, 5, 5, 5]
    assert len(set(torch.cat([b[1] for b in out]).tolist())) == 20


def test_an_offline_download_failure_says_what_to_do_and_leaves_no_folder(tmp_path, monkeypatch):
    import urllib.error

    def offline(name, root):
        root.mkdir(parents=True)  # torchvision creates its folder before it fails
        (root / "partial.tar.gz").write_bytes(b"x")
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(D, "_torchvision_arrays", offline)
    target = tmp_path / "fresh" / "data"
    with pytest.raises(ConfigError) as info:
        D.load_dataset("svhn", target)
    message = str(info.value)
    assert "dataset='svhn'" in message and "svhn.npz" in message and "ADVFAIR_DATA_DIR" in message
    assert "URLError" in message
    assert not target.exists() and (tmp_path / "fresh").exists()  # only what the call created is gone
    existing = tmp_path / "mine"
    (existing / "keep.txt").parent.mkdir()
    (existing / "keep.txt").write_text("mine")
    with pytest.raises(ConfigError):
        D.load_dataset("svhn", existing)
    assert sorted(p.name for p in existing.iterdir()) == ["keep.txt"]  # a user's folder stays as it was


def test_one_rule_for_data_and_cache_folders(monkeypatch, tmp_path):
    from advfair import locations

    monkeypatch.setenv("ADVFAIR_DATA_DIR", str(tmp_path / "d"))
    monkeypatch.setenv("ADVFAIR_CACHE_DIR", str(tmp_path / "c"))
    assert locations.default_data_dir() == tmp_path / "d" and locations.default_cache_dir() == tmp_path / "c"
    monkeypatch.delenv("ADVFAIR_DATA_DIR")
    monkeypatch.delenv("ADVFAIR_CACHE_DIR")
    # In this checkout: the Makefile's defaults (shared/data beside it when present, .cache/advfair in it).
    assert locations.in_checkout()
    shared = locations.CHECKOUT.parent / "shared" / "data"
    expected = shared if shared.is_dir() else tmp_path.home() / ".cache" / "advfair" / "data"
    assert locations.default_data_dir() == expected
    assert locations.default_cache_dir() == locations.CHECKOUT / ".cache" / "advfair"
    # An installed package without a checkout: the home folder.
    monkeypatch.setattr(locations, "in_checkout", lambda: False)
    assert locations.default_cache_dir() == tmp_path.home() / ".cache" / "advfair" / "models"
    assert locations.default_data_dir() == tmp_path.home() / ".cache" / "advfair" / "data"
    from advfair.cache import ModelCache

    monkeypatch.setattr(locations, "in_checkout", lambda: True)
    assert ModelCache().root == locations.CHECKOUT / ".cache" / "advfair"


def test_a_split_carries_the_spec_of_its_training_images(data_dir):
    from advfair.splits import balanced_spec, balanced_split, long_tailed_split
    if not (data_dir / "mnist.npz").exists():
        pytest.skip("no mnist.npz")
    args = dict(train_per_class=3, val_per_class=1, seed=0)
    split = balanced_split("mnist", **args, test_per_class=2, data_dir=str(data_dir))
    assert split.spec == balanced_spec("mnist", **args)
    # the test images are not trained on: they stay out of the spec; the training images' draw does not
    assert balanced_split("mnist", **args, test_per_class=5, data_dir=str(data_dir)).spec == split.spec
    assert balanced_split("mnist", **{**args, "seed": 1}, test_per_class=2, data_dir=str(data_dir)).spec != split.spec
    lt = long_tailed_split("mnist", n_max=20, imbalance=0.1, val_per_class=1, test_per_class=1, data_seed=0,
                           data_dir=str(data_dir))
    assert lt.spec == {"dataset": "mnist", "kind": "long_tailed", "rule": "ldam", "n_max": 20, "imbalance": 0.1,
                       "data_seed": 0}
