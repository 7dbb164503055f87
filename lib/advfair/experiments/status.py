"""What every page costs to run, and where and when its results were made: the tables of the page "Execution
statistics", read from the committed results and stability files (nothing typed by hand)."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from .. import pages
from .scale import TIER_OF_PROFILE
from .stability import stability_path


def _minutes(seconds: float) -> float:
    return round(seconds / 60, 1)


def _machine(environment: dict) -> str:
    kind = environment.get("machine_kind", {})
    where = environment.get("gpu") or f"{kind.get('cpu', '?')} ({kind.get('aten_capability', '?')})"
    return f"{where}, {kind.get('threads', '?')} threads"


def _total(seconds: dict) -> float:
    """A results file's wall time: its "total", else (a report of `advfair evaluate`) the sum of its parts."""
    return seconds["total"] if "total" in seconds else sum(seconds.values())


def page_runs(results_dir: Path) -> pd.DataFrame:
    """One row per results file a page shows (<page>_<profile>.json): its tier, the wall time of the run that made
    it, how many of its models came from the model cache, the machine, the date and the commit."""
    rows = []
    for page in pages.CHECKED:
        for profile, tier in TIER_OF_PROFILE.items():
            path = results_dir / f"{page}_{profile}.json"
            if not path.exists():
                continue
            results = json.loads(path.read_text())
            env, models = results["environment"], results.get("models", {})
            cached = sum(bool(m.get("from_cache")) for m in models.values())
            rows.append({"page": page, "tier": tier, "minutes": _minutes(_total(results["seconds"])),
                         "models from the cache": f"{cached} of {len(models)}" if models else "–",
                         "machine": _machine(env), "date": env["date"][:10], "commit": env["commit"][:7]})
    return pd.DataFrame(rows, columns=["page", "tier", "minutes", "models from the cache", "machine", "date",
                                       "commit"]).set_index(["page", "tier"])


def stability_runs(results_dir: Path) -> pd.DataFrame:
    """One row per stability file: its chapter and tier, its seeds, each seed's wall time, the total (the seeds and
    the kernel runs), the machine, the date and the commit."""
    rows = []
    for page in pages.CHAPTERS:
        for profile, tier in TIER_OF_PROFILE.items():
            path = stability_path(page, results_dir, profile)
            if not path.exists():
                continue
            record = json.loads(path.read_text())
            per_seed = {k: v["seconds"] for k, v in record["per_seed"].items()}
            rows.append({"chapter": page, "tier": tier, "runs": ", ".join(per_seed),
                         "minutes per run": ", ".join(f"{_minutes(s):.1f}" for s in per_seed.values()),
                         "total minutes": _minutes(sum(per_seed.values())),
                         "machine": _machine(record["environment"]), "date": record["environment"]["date"][:10],
                         "commit": record["commit"][:7]})
    return pd.DataFrame(rows, columns=["chapter", "tier", "runs", "minutes per run", "total minutes", "machine",
                                       "date", "commit"]).set_index(["chapter", "tier"])
