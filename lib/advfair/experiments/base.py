"""What every chapter shares beyond its config (`advfair.config`): the chapter registry entry, where committed
results live, and results as JSON gives them back.
"""
from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..config import ChapterConfig
from ..locations import BOOK_RESULTS


@dataclass(frozen=True)
class Chapter:
    """A chapter as the CLI, the stability runs and the notebooks see it."""

    name: str
    config: type[ChapterConfig]
    run: Callable[[Any], dict]
    verdicts: Callable[[dict], list]  # results -> [Verdict], the chapter's tested rules
    key_numbers: Callable[[dict], dict[str, float]]  # results -> the numbers the stability file tracks
    # results -> the committed evaluations a recheck of the committed weights covers (`advfair.recheck`)
    rechecks: Callable[[dict], list] | None = None

    def make_config(self, profile: str = "cpu", **overrides: Any) -> ChapterConfig:
        return self.config.make(profile, **overrides)


def results_dir() -> Path:
    """Where committed results live: $ADVFAIR_RESULTS_DIR, else book/results seen from the repository
    root or from book/ (where the notebooks run)."""
    if "ADVFAIR_RESULTS_DIR" in os.environ:
        return Path(os.environ["ADVFAIR_RESULTS_DIR"])
    for candidate in (Path("results"), Path("book/results")):
        if candidate.is_dir():
            return candidate
    return BOOK_RESULTS


def json_clean(obj: Any) -> Any:
    """The object as JSON would give it back (tuples to lists, numpy scalars to floats): a run's results in
    memory and the same results read from their file render identically."""
    return json.loads(json.dumps(obj, default=_to_builtin))


def _to_builtin(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"not JSON-serialisable: {type(value).__name__}")
