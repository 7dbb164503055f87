"""Checks for user-facing parameters: every failure names the field, the value and what is allowed."""
from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any


class ConfigError(ValueError):
    """A parameter has a value the library cannot use."""


def fail(field: str, value: Any, allowed: str) -> None:
    raise ConfigError(f"{field}={value!r} is not allowed: expected {allowed}")


def check_choice(field: str, value: Any, choices: Iterable[Any]) -> Any:
    choices = list(choices)
    if value not in choices:
        fail(field, value, "one of " + ", ".join(repr(c) for c in choices))
    return value


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def check_number(field: str, value: Any, *, low: float | None = None, high: float | None = None,
                 low_open: bool = False, high_open: bool = False, integer: bool = False) -> Any:
    """Check that `value` is a finite number (an int if `integer`) inside the given interval."""
    lo = "-inf" if low is None else f"{low:g}"
    hi = "inf" if high is None else f"{high:g}"
    interval = f"{'(' if low_open or low is None else '['}{lo}, {hi}{')' if high_open or high is None else ']'}"
    kind = "an integer" if integer else "a finite number"
    if not _is_number(value) or (integer and not isinstance(value, int)):
        fail(field, value, f"{kind} in {interval}")
    too_low = low is not None and (value <= low if low_open else value < low)
    too_high = high is not None and (value >= high if high_open else value > high)
    if too_low or too_high:
        fail(field, value, f"{kind} in {interval}")
    return value


def check_positive(field: str, value: Any, *, integer: bool = False) -> Any:
    return check_number(field, value, low=0, low_open=True, integer=integer)


def check_non_negative(field: str, value: Any, *, integer: bool = False) -> Any:
    return check_number(field, value, low=0, integer=integer)


def check_eps(field: str, value: Any) -> Any:
    """An L-inf radius for inputs in [0, 1]."""
    return check_number(field, value, low=0, high=1, low_open=True)


def check_bool(field: str, value: Any) -> bool:
    if not isinstance(value, bool):
        fail(field, value, "True or False")
    return value


def check_counts(field: str, value: Any) -> list[int]:
    """Training images per class (a list or tensor): every entry a whole number >= 1, returned as ints."""
    allowed = "a non-empty list of class counts, whole numbers >= 1"
    values = value.tolist() if hasattr(value, "tolist") else value
    if not isinstance(values, (list, tuple)) or not values:
        fail(field, value, allowed)
    if not all(_is_number(v) and v >= 1 and v == int(v) for v in values):
        fail(field, value, allowed)
    return [int(v) for v in values]


def check_fields(config: Any, names: Iterable[str], check: Callable[..., Any], *, optional: bool = False,
                 **kwargs: Any) -> None:
    """Apply `check(name, value, **kwargs)` to each named attribute of `config`; `optional` lets None pass."""
    for name in names:
        value = getattr(config, name)
        if not (optional and value is None):
            check(name, value, **kwargs)


def freeze_lists(config: Any, names: Iterable[str]) -> None:
    """Store list fields of a frozen dataclass as tuples (papermill and JSON give lists); anything else fails."""
    for name in names:
        value = getattr(config, name)
        if not isinstance(value, (list, tuple)):
            fail(name, value, "a list")
        object.__setattr__(config, name, tuple(value))
