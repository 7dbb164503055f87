"""Chapter pipelines, each `config -> results` (JSON-serialisable), registered for the CLI."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from . import classwise, robal

# name -> (make_config(profile, **overrides), run(config) -> results)
CHAPTERS: dict[str, tuple[Callable[..., Any], Callable[[Any], dict]]] = {
    "classwise": (classwise.make_config, classwise.run),
    "robal": (robal.make_config, robal.run),
}
