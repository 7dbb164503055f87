"""Shared pytest set-up. Add fixtures below; keep module-level set-up to what every test needs."""

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

# Build machines keep the offline datasets beside the repo (as .ci/run does); use them unless told otherwise.
_SHARED_DATA = REPO.parent / "shared" / "data"
if "ADVFAIR_DATA_DIR" not in os.environ and _SHARED_DATA.is_dir():
    os.environ["ADVFAIR_DATA_DIR"] = str(_SHARED_DATA)


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The dataset directory; tests that need real data skip where there is none."""
    path = os.environ.get("ADVFAIR_DATA_DIR")
    if not path or not Path(path).is_dir():
        pytest.skip("no dataset directory: set ADVFAIR_DATA_DIR (offline <name>.npz files)")
    return Path(path)


def _linear_model(d: int = 48, num_classes: int = 10, seed: int = 0):
    import torch
    from torch import nn

    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(d, num_classes))


@pytest.fixture
def linear_model():
    """A tiny linear classifier on (N, 3, 4, 4) inputs with 10 classes (seeded)."""
    return _linear_model()


@pytest.fixture
def tiny_batch():
    """16 random images (3, 4, 4) in [0, 1] and labels in 0..9 (seeded)."""
    import torch

    g = torch.Generator().manual_seed(123)
    return torch.rand(16, 3, 4, 4, generator=g), torch.randint(0, 10, (16,), generator=g)
