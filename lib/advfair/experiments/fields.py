"""What each config field is, for `python -m advfair config CHAPTER`: its type, its value in a profile, what
values are allowed and one line of meaning.

Nothing here is written twice: the meaning is the field's comment in its config class (the trailing comment,
else the comment block above it), and the allowed values are what the config's own validation says when given
a value no field accepts.
"""
from __future__ import annotations

import dataclasses
import inspect
import re
from typing import Any, NamedTuple

from ..validation import ConfigError
from .base import ChapterConfig

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
