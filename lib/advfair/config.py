"""Chapter configs: the base every chapter's config extends (the fields every chapter has, the shared fields
validated once, profiles and overrides, schedules that follow the epoch count, the config hash), and what each
field is, for `python -m advfair config CHAPTER` (`describe`).

Nothing of a field is written twice: its meaning is its comment in its config class (the trailing comment, else
the comment block above it), and its allowed values are what the config's own validation says when given a value
no field accepts.
"""
from __future__ import annotations

import dataclasses
import hashlib
import inspect
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, NamedTuple

from .trainer import SCHEDULES, resolve_device
from .validation import (ConfigError, check_bool, check_choice, check_eps, check_fields, check_non_negative,
                         check_number, check_positive, fail, freeze_lists)

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
    "aa_version": (check_choice, {"choices": ("standard", "subset", "smoke")}),
    "equivalence_margin": (check_number, {"low": 0, "high": 1, "low_open": True}),
}

# `--smoke`: a profile shrunk to a few batches of training images and a few test points, one epoch and few attack
# steps, with its networks, objectives and pipeline kept, so that the paper profile's code has run before a GPU
# runs it. The shared fields here; a chapter's SMOKE adds its own (its other sizes, grids and step counts).
SMOKE_SHARED: dict[str, Any] = {"train_per_class": 4, "val_per_class": 2, "test_per_class": 1, "aa_per_class": 1,
                                "epochs": 1, "batch_size": 8, "train_steps": 1, "eval_steps": 2,
                                "aa_version": "smoke", "n_boot": 20, "eval_batch_size": 20}


@dataclass(frozen=True)
class ChapterConfig:
    """The fields every chapter has. Subclasses add theirs (all with defaults), list their list-valued
    fields in LIST_FIELDS, name their profiles in PROFILES and validate their own fields in `validate`."""

    LIST_FIELDS: ClassVar[tuple[str, ...]] = ()
    PROFILES: ClassVar[dict[str, dict[str, Any]]] = {"cpu": {}}
    # Fields written in epochs (a schedule), each with the epoch count it lies in: they follow an overridden
    # epoch count unless set too (`make`), and must lie inside it (`check_schedule`).
    SCHEDULE_FIELDS: ClassVar[dict[str, str]] = {}
    SMOKE: ClassVar[dict[str, Any]] = {}  # the chapter's own smoke-size fields (beside SMOKE_SHARED)

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
    def smoke_fields(cls) -> dict[str, Any]:
        """The overrides of `--smoke` (any profile at a smoke size): SMOKE_SHARED's fields this config has, then
        the chapter's own SMOKE. Schedules written in epochs follow the smoke epoch count (`make`)."""
        names = {f.name for f in dataclasses.fields(cls)}
        return {**{k: v for k, v in SMOKE_SHARED.items() if k in names}, **cls.SMOKE}

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


def _as_float(value: Any) -> Any:
    """Numbers as floats, so that equal configs (1 == 1.0) hash alike."""
    if isinstance(value, list):
        return [_as_float(v) for v in value]
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else value



_FIELD = re.compile(r"^    (\w+): [^=]+?(?: = .*?)?(?:\s+#\s?(?P<comment>.*))?$")
_COMMENT = re.compile(r"^    #\s?(.*)$")
_NOT_A_VALUE = "?"  # no field accepts this string: its error message lists what is allowed


class FieldInfo(NamedTuple):
    name: str
    type: str
    value: Any
    allowed: str
    meaning: str


def comments(cls: type) -> dict[str, str]:
    """field -> its comment in the class bodies of `cls` and its bases (a subclass's comment wins)."""
    out: dict[str, str] = {}
    for klass in reversed([k for k in cls.__mro__ if dataclasses.is_dataclass(k)]):
        block: list[str] = []
        for line in inspect.getsource(klass).splitlines():
            comment, field = _COMMENT.match(line), _FIELD.match(line)
            if comment:
                block.append(comment.group(1).strip())
            elif field and not line.lstrip().startswith(("def ", "@")):
                text = field.group("comment") or " ".join(block)
                if text:
                    out[field.group(1)] = text
                block = []
            else:
                block = []
    return out


def allowed(cls: type[ChapterConfig], profile: str, name: str, is_list: bool) -> str:
    """The config's own words for the values `name` takes (its error message for a value nothing accepts)."""
    probe = [float("nan")] if is_list else _NOT_A_VALUE
    try:
        cls.make(profile, **{name: probe})
    except ConfigError as error:
        text = str(error).split("is not allowed: expected ", 1)[-1]
        return f"a list, each {text}" if is_list else text
    return "any string, or null" if "str" in str(cls.__dataclass_fields__[name].type) else "any value"


def describe(cls: type[ChapterConfig], profile: str = "cpu") -> list[FieldInfo]:
    """Every field a user can set (the profile is chosen by its own argument), in declaration order."""
    notes, config = comments(cls), cls.make(profile)
    return [FieldInfo(f.name, str(f.type), getattr(config, f.name),
                      allowed(cls, profile, f.name, f.name in cls.LIST_FIELDS), notes.get(f.name, ""))
            for f in dataclasses.fields(cls) if f.name != "profile"]
