"""Where advfair reads datasets and keeps trained models: one rule for the library, the CLI, the notebooks and
the Makefile (which sets the same folders explicitly), so that every way of running finds the same files.

- Datasets: $ADVFAIR_DATA_DIR; else `shared/data` beside the checkout when it exists (the offline `.npz` files
  of the build machines); else ~/.cache/advfair/data.
- Trained models: $ADVFAIR_CACHE_DIR; else `.cache/advfair` in the checkout, where `make book` puts them, so a
  CLI or papermill rerun reuses them; else (an installed package, no checkout) ~/.cache/advfair/models.
- Committed weights (`advfair.weights`), which the model cache reads before it trains: $ADVFAIR_WEIGHTS_DIR; else
  `book/weights` in the checkout; else none. ($ADVFAIR_PUBLISH_WEIGHTS, read by the cache, names a folder every
  newly trained model is also written to.)
"""
from __future__ import annotations

import os
from pathlib import Path

# lib/advfair/locations.py -> the repository root, when the package runs from a checkout.
CHECKOUT = Path(__file__).resolve().parents[2]
BOOK_RESULTS = CHECKOUT / "book" / "results"
BOOK_WEIGHTS = CHECKOUT / "book" / "weights"


def in_checkout() -> bool:
    return (CHECKOUT / "pyproject.toml").is_file() and (CHECKOUT / "lib" / "advfair").is_dir()


def default_data_dir() -> Path:
    if "ADVFAIR_DATA_DIR" in os.environ:
        return Path(os.environ["ADVFAIR_DATA_DIR"])
    shared = CHECKOUT.parent / "shared" / "data"
    if in_checkout() and shared.is_dir():
        return shared
    return Path.home() / ".cache" / "advfair" / "data"


def default_cache_dir() -> Path:
    if "ADVFAIR_CACHE_DIR" in os.environ:
        return Path(os.environ["ADVFAIR_CACHE_DIR"])
    if in_checkout():
        return CHECKOUT / ".cache" / "advfair"
    return Path.home() / ".cache" / "advfair" / "models"


def default_weights_dirs() -> tuple[Path, ...]:
    if "ADVFAIR_WEIGHTS_DIR" in os.environ:
        return (Path(os.environ["ADVFAIR_WEIGHTS_DIR"]),)
    return (BOOK_WEIGHTS,) if in_checkout() else ()
