"""Chapter pipelines, each `config -> results` (JSON-serialisable), registered for the CLI."""
from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from . import classwise, robal
from ..validation import check_choice

# name -> (make_config(profile, **overrides), run(config) -> results)
CHAPTERS: dict[str, tuple[Callable[..., Any], Callable[[Any], dict]]] = {
    "classwise": (classwise.make_config, classwise.run),
    "robal": (robal.make_config, robal.run),
}


def chapter_results(chapter: str, profile: str, fields: dict[str, Any], overrides: dict[str, Any],
                    results_json: str | None = None) -> dict:
    """What a chapter notebook shows: the results of running its config (the profile, then the notebook's
    parameters where they are not None, then `overrides`), or those saved in `results_json`.

    The config is built (and so validated) even when a saved JSON is shown, so a typo still fails loudly."""
    make_config, run = CHAPTERS[check_choice("chapter", chapter, CHAPTERS)]
    config = make_config(profile, **{k: v for k, v in fields.items() if v is not None}, **overrides)
    if results_json is not None:
        return json.loads(Path(results_json).read_text())
    return run(config)
