"""Chapter pipelines, each `config -> results` (JSON-serialisable), registered for the CLI and the notebooks."""
from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..validation import check_choice
from . import aalp, absld, classwise, ducat, robal
from .base import Chapter, json_clean, results_dir
from .cache import write_json_atomic

__all__ = ["CHAPTERS", "Chapter", "chapter_results", "get_chapter", "page_results", "results_dir"]

CHAPTERS: dict[str, Chapter] = {"classwise": classwise.CHAPTER, "robal": robal.CHAPTER, "ducat": ducat.CHAPTER,
                                "absld": absld.CHAPTER, "aalp": aalp.CHAPTER}


def get_chapter(name: str) -> Chapter:
    return CHAPTERS[check_choice("chapter", name, CHAPTERS)]


def page_results(name: str, compute: Callable[[], dict], results_json: str | None = None) -> dict:
    """What a book page shows: `compute()`, or the results saved in `results_json`.

    Two environment variables serve the book's checks (see the README):
    - $ADVFAIR_RESULTS_OUT: the computed results are also written there as <name>.json (make book writes the
      committed results files this way);
    - $ADVFAIR_REPLAY_DIR: the page shows <dir>/<name>.json instead of computing, so re-executing the
      notebook must reproduce its committed outputs exactly, on any machine."""
    if results_json is None and os.environ.get("ADVFAIR_REPLAY_DIR"):
        results_json = str(Path(os.environ["ADVFAIR_REPLAY_DIR"]) / f"{name}.json")
    if results_json is not None:
        return json.loads(Path(results_json).read_text())
    results = json_clean(compute())
    if os.environ.get("ADVFAIR_RESULTS_OUT"):
        write_json_atomic(results, Path(os.environ["ADVFAIR_RESULTS_OUT"]) / f"{name}.json")
    return results


def chapter_results(chapter: str, profile: str, fields: dict[str, Any], overrides: dict[str, Any],
                    results_json: str | None = None) -> dict:
    """What a chapter notebook shows: the results of running its config (the profile, then the notebook's
    parameters where they are not None, then `overrides`), or those saved in `results_json` (see
    `page_results` for the two environment variables of the book's checks).

    The config is built (and so validated) even when saved results are shown, so a typo still fails loudly."""
    ch = get_chapter(chapter)
    config = ch.make_config(profile, **{k: v for k, v in fields.items() if v is not None}, **overrides)
    return page_results(f"{chapter}_{profile}", lambda: ch.run(config), results_json)
