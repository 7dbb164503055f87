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
