"""advfair.experiments.status: the execution statistics come from the results files, not from a typed table."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

from advfair.experiments.status import page_runs, stability_runs

RESULTS = Path(__file__).resolve().parents[2] / "book" / "results"


def test_each_results_file_gives_its_tier_time_machine_date_and_commit(tmp_path):
    shutil.copy(RESULTS / "classwise_cpu.json", tmp_path)
    results = json.loads((RESULTS / "classwise_cpu.json").read_text())
    evidence = {**results, "config": {**results["config"], "profile": "evidence"},
                "seconds": {"total": 3600.0}, "environment": {**results["environment"], "commit": "abcdef0123"}}
    (tmp_path / "classwise_evidence.json").write_text(json.dumps(evidence))
    runs = page_runs(tmp_path)
    assert list(runs.index) == [("classwise", "smoke"), ("classwise", "evidence")]
    assert runs.loc[("classwise", "smoke"), "minutes"] == round(results["seconds"]["total"] / 60, 1)
    assert runs.loc[("classwise", "evidence"), "minutes"] == 60.0
    assert runs.loc[("classwise", "evidence"), "commit"] == "abcdef0"
    assert runs.loc[("classwise", "smoke"), "date"] == results["environment"]["date"][:10]
    assert runs.loc[("classwise", "smoke"), "models from the cache"] == "0 of 3"  # the smoke tier runs no MNIST track


def test_a_stability_file_gives_each_run_s_time_and_their_total():
    runs = stability_runs(RESULTS)
    record = json.loads((RESULTS / "classwise_stability.json").read_text())
    row = runs.loc[("classwise", "smoke")]
    assert row["runs"] == ", ".join(record["per_seed"])
    assert row["total minutes"] == round(sum(r["seconds"] for r in record["per_seed"].values()) / 60, 1)
