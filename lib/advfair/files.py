"""Atomic writes: the one mechanism behind every file the library writes (datasets, checkpoints, results).

In a run of several processes only the main process writes: every process computes the same thing."""
from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from .distributed import is_main


def write_atomic(path: Path, write: Callable[[BinaryIO], object]) -> None:
    """Write `path` through `write(handle)` on a temporary file beside it, then rename it into place: a reader
    never sees a half-written file, and a failure (or an interrupt) leaves nothing behind. A process other than
    the main one of a several-process run writes nothing."""
    if not is_main():
        return
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json_atomic(obj: object, path: Path, *, indent: int | None = 1) -> None:
    # Insertion order, not sorted keys: it carries meaning (clean first, attacks in protocol order).
    text = json.dumps(obj, indent=indent) + "\n"
    write_atomic(path, lambda handle: handle.write(text.encode()))


def copy_atomic(source: Path, path: Path) -> Path:
    """A copy of `source` at `path`, written as `write_atomic` writes (by the main process only)."""
    write_atomic(path, lambda handle: handle.write(Path(source).read_bytes()))
    return Path(path)


def remove(path: Path) -> None:
    """Delete `path` if it is there (by the main process only: the others may still be reading it)."""
    if is_main():
        Path(path).unlink(missing_ok=True)
