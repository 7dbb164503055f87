"""What every chapter shares: the base config (common fields, declared and validated once), profiles and
overrides, the record of where a result was produced, and the chapter registry entry.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from ..locations import BOOK_RESULTS
from ..trainer import SCHEDULES, resolve_device
from ..validation import (check_bool, check_choice, check_eps, check_fields, check_non_negative, check_number,
                          check_positive, fail, freeze_lists)

# Fields that change how a run is executed or displayed, not what it computes.
EXECUTION_FIELDS = ("device", "progress", "data_dir", "cache_dir")
# The fields several chapters share, each under one name and validated here once: a chapter's config gets the
# check of each such field it has (the chapter's `validate` adds what is its own).
SHARED_CHECKS: dict[str, tuple[Callable[..., Any], dict[str, Any]]] = {
    **{name: (check_non_negative, {"integer": True}) for name in ("data_seed",)},
    **{name: (check_positive, {"integer": True}) for name in
       ("width", "val_per_class", "train_steps", "epochs", "batch_size", "eval_steps")},
    **{name: (check_positive, {"integer": True, "optional": True}) for name in
       ("train_per_class", "test_per_class", "aa_per_class")},
    **{name: (check_positive, {}) for name in ("train_alpha", "eval_alpha", "lr")},
    **{name: (check_non_negative, {}) for name in ("weight_decay", "trades_beta")},
    "eps": (check_eps, {}),
    "augment": (check_bool, {}),
    "schedule": (check_choice, {"choices": SCHEDULES}),
    "aa_version": (check_choice, {"choices": ("standard", "subset")}),
    "equivalence_margin": (check_number, {"low": 0, "high": 1, "low_open": True}),
}


@dataclass(frozen=True)
class ChapterConfig:
    """The fields every chapter has. Subclasses add theirs (all with defaults), list their list-valued
    fields in LIST_FIELDS, name their profiles in PROFILES and validate their own fields in `validate`."""

    LIST_FIELDS: ClassVar[tuple[str, ...]] = ()
    PROFILES: ClassVar[dict[str, dict[str, Any]]] = {"cpu": {}}
    # Fields written in epochs (a schedule), each with the epoch count it lies in: they follow an overridden
    # epoch count unless set too (`make`), and must lie inside it (`check_schedule`).
    SCHEDULE_FIELDS: ClassVar[dict[str, str]] = {}

    profile: str = "cpu"
    seed: int = 0  # the training seed: initial weights, batch order, training attacks, evaluation starts
    device: str = "auto"  # where to run: auto (cuda when there is one), cpu, cuda or cuda:N
    eval_batch_size: int = 500  # images per batch in evaluation
    n_boot: int = 1000  # bootstrap resamples behind every interval
    progress: bool = False  # progress bars for training and evaluation
    data_dir: str | None = None  # the datasets' folder (None: $ADVFAIR_DATA_DIR, else advfair.locations' default)
    cache_dir: str | None = None  # the trained-model cache (None: $ADVFAIR_CACHE_DIR, else the default)

    def __post_init__(self) -> None:
        freeze_lists(self, self.LIST_FIELDS)
        check_choice("profile", self.profile, self.PROFILES)
        check_non_negative("seed", self.seed, integer=True)
        check_positive("eval_batch_size", self.eval_batch_size, integer=True)
        check_positive("n_boot", self.n_boot, integer=True)
        check_bool("progress", self.progress)
        resolve_device(self.device)
        for name in self.__dataclass_fields__:
            if name in SHARED_CHECKS:
                check, options = SHARED_CHECKS[name]
                check_fields(self, (name,), check, **options)
        self.validate()

    def validate(self) -> None:
        """The chapter's own checks (called after the common ones)."""

    def to_dict(self) -> dict:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in dataclasses.asdict(self).items()}

    def config_hash(self) -> str:
        """A hash of everything that determines the results except the training seed: two runs with the
        same hash are seeds of one experiment (the stability file is keyed by it)."""
        identity = {k: _as_float(v) for k, v in self.to_dict().items() if k not in ("seed", *EXECUTION_FIELDS)}
        return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]

    @classmethod
    def make(cls, profile: str = "cpu", **overrides: Any) -> "ChapterConfig":
        """The config of a named profile with some fields overridden; unknown fields are errors."""
        if profile not in cls.PROFILES:
            fail("profile", profile, "one of " + ", ".join(repr(p) for p in cls.PROFILES))
        if "profile" in overrides:
            fail("profile", overrides["profile"], "no override: the profile is chosen by its own argument")
        names = {f.name for f in dataclasses.fields(cls)}
        for key in overrides:
            if key not in names:
                fail(key, overrides[key], f"a field of {cls.__name__}: " + ", ".join(sorted(names)))
        return cls(**{**cls.PROFILES[profile], **cls._schedules_following(profile, overrides), **overrides,
                      "profile": profile})

    @classmethod
    def _schedules_following(cls, profile: str, overrides: dict[str, Any]) -> dict[str, Any]:
        """The profile's schedule fields rescaled to an overridden epoch count (each epoch e becomes
        round(e * new / old) within [1, new], as the papers' schedules are fractions of their training length),
        for the schedules the overrides do not set themselves. Without an epoch override: nothing changes."""
        base = {**{f.name: f.default for f in dataclasses.fields(cls)}, **cls.PROFILES[profile]}
        out = {}
        for name, epochs_name in cls.SCHEDULE_FIELDS.items():
            new, value = overrides.get(epochs_name), base[name]
            if name in overrides or value is None or not isinstance(new, int) or isinstance(new, bool) or new < 1:
                continue  # not overridden, set explicitly, derived elsewhere, or a bad count validation names
            old = base[epochs_name]
            scaled = lambda e: max(1, min(new, round(e * new / old)))
            out[name] = tuple(sorted({scaled(e) for e in value})) if isinstance(value, (list, tuple)) else scaled(value)
        return out

    def check_schedule(self, name: str) -> None:
        """Every epoch of schedule field `name` lies in [1, its epoch count]; the message names both."""
        epochs_name = self.SCHEDULE_FIELDS[name]
        epochs, value = getattr(self, epochs_name), getattr(self, name)
        for e in value if isinstance(value, (list, tuple)) else [value]:
            if not (isinstance(e, int) and not isinstance(e, bool) and 1 <= e <= epochs):
                fail(name, e, f"epochs in [1, {epochs_name}={epochs}]: a schedule lies inside the training (left "
                              f"unset, it follows {epochs_name})")


@dataclass(frozen=True)
class Chapter:
    """A chapter as the CLI, the stability runs and the notebooks see it."""

    name: str
    config: type[ChapterConfig]
    run: Callable[[Any], dict]
    verdicts: Callable[[dict], list]  # results -> [Verdict], the chapter's tested rules
    key_numbers: Callable[[dict], dict[str, float]]  # results -> the numbers the stability file tracks

    def make_config(self, profile: str = "cpu", **overrides: Any) -> ChapterConfig:
        return self.config.make(profile, **overrides)


def _as_float(value: Any) -> Any:
    """Numbers as floats, so that equal configs (1 == 1.0) hash alike."""
    if isinstance(value, list):
        return [_as_float(v) for v in value]
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else value


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
