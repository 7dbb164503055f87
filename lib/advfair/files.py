"""Atomic writes: the one mechanism behind every file the library writes (datasets, checkpoints, results)."""
from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO


def write_atomic(path: Path, write: Callable[[BinaryIO], object]) -> None:
    """Write `path` through `write(handle)` on a temporary file beside it, then rename it into place: a reader
    never sees a half-written file, and a failure (or an interrupt) leaves nothing behind."""
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
