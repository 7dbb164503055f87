"""Chapter pipelines, each `config -> results` (JSON-serialisable), registered for the CLI and the notebooks."""
from __future__ import annotations

import importlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .. import pages
from ..config import EXECUTION_FIELDS
from ..files import write_json_atomic
from ..validation import check_choice, fail
from .base import Chapter, json_clean, results_dir
from .common import RESULTS_SCHEMA
from .estimate import check_paper_on_cpu

__all__ = ["CHAPTERS", "Chapter", "chapter_results", "check_parameters", "get_chapter", "load_results", "page_results",
           "results_dir", "scale_label"]

# One package per chapter of the page registry, in its order.
CHAPTERS: dict[str, Chapter] = {name: importlib.import_module(f".{name}", __name__).CHAPTER for name in pages.CHAPTERS}


def get_chapter(name: str) -> Chapter:
    return CHAPTERS[check_choice("chapter", name, CHAPTERS)]


# Names IPython itself puts in a notebook's namespace that hold plain values.
_IPYTHON_NAMES = frozenset({"In", "Out"})


def check_parameters(namespace: dict[str, Any], declared: set[str]) -> None:
    """Stop a page before any work when papermill injected a parameter its parameters cell does not declare
    (papermill itself only warns, then runs the whole page). `declared` is the namespace's names at the end of
    the parameters cell; an injected parameter is a new plain value (imports are modules, functions, classes)."""
    plain = (str, int, float, bool, list, dict, tuple, type(None))
    unknown = sorted(k for k, v in namespace.items() if not k.startswith("_") and k not in declared
                     and k not in _IPYTHON_NAMES and isinstance(v, plain))
    if unknown:
        allowed = sorted(k for k in declared if not k.startswith("_") and k not in _IPYTHON_NAMES
                         and isinstance(namespace.get(k), plain))
        fail("parameter", unknown[0] if len(unknown) == 1 else unknown,
             f"one of this page's parameters: {', '.join(allowed)} (any other config field goes in overrides)")


def load_results(path: str | Path, chapter: str | None = None, schema: str | None = None) -> dict:
    """A saved results file, checked: it exists, is JSON, and is a results file of `chapter` (a chapter page's) or
    of `schema` (another page's, e.g. an `advfair evaluate` report)."""
    path = Path(path)
    if not path.is_file():
        fail("results_json", str(path), "an existing results JSON file")
    try:
        results = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        fail("results_json", str(path), f"a results JSON file ({error})")
    if chapter is None and schema is None:
        return results
    fields = results if isinstance(results, dict) else {}
    expected = RESULTS_SCHEMA if chapter is not None else schema
    what = f"a results file of the {chapter!r} chapter" if chapter is not None else f"a {schema!r} file"
    if fields.get("schema") != expected:
        fail("results_json", str(path), f"{what} (this one has schema {fields.get('schema')!r}, not {expected!r})")
    if chapter is not None and fields.get("chapter") != chapter:
        fail("results_json", str(path), f"{what} (this one is of the {fields.get('chapter')!r} chapter)")
    return results


def scale_label(results: dict) -> str:
    """What scale a chapter's results file is: its profile as defined, or the profile with the fields that a
    run changed (then it is not that profile's scale: a 1-epoch smoke run is never shown as paper scale)."""
    cfg = results["config"]
    reference = get_chapter(results["chapter"]).make_config(cfg["profile"]).to_dict()
    changed = [f"{k}={cfg.get(k)!r} (profile: {v!r})" for k, v in reference.items()
               if k not in (*EXECUTION_FIELDS, "seed") and json_clean(cfg.get(k)) != json_clean(v)]
    if not changed:
        return f"the {cfg['profile']} profile as defined (seed {cfg.get('seed')})"
    return f"not the {cfg['profile']} profile's scale: this run changed " + ", ".join(changed)


def page_results(name: str, compute: Callable[[], dict], results_json: str | None = None,
                 chapter: str | None = None, schema: str | None = None) -> dict:
    """What a book page shows: `compute()`, or the results saved in `results_json`.

    Two environment variables serve the book's checks (see the README):
    - $ADVFAIR_RESULTS_OUT: the computed results are also written there as <name>.json (make book writes the
      committed results files this way);
    - $ADVFAIR_REPLAY_DIR: the page shows <dir>/<name>.json instead of computing, so re-executing the
      notebook must reproduce its committed outputs exactly, on any machine."""
    if results_json is None and os.environ.get("ADVFAIR_REPLAY_DIR"):
        results_json = str(Path(os.environ["ADVFAIR_REPLAY_DIR"]) / f"{name}.json")
    if results_json is not None:
        return load_results(results_json, chapter, schema)
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

    def compute() -> dict:
        check_paper_on_cpu(ch, config)  # days on a CPU: only with device="cpu" said on purpose
        return ch.run(config)

    return page_results(f"{chapter}_{profile}", compute, results_json, chapter)
