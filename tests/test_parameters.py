"""A notebook parameter a page does not take stops the page before any work (papermill itself only warns)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from advfair.experiments import check_parameters
from advfair.validation import ConfigError

REPO = Path(__file__).resolve().parents[1]


def test_check_parameters_names_the_unknown_parameter_and_the_allowed_ones():
    namespace = {"In": [], "Out": {}, "_i1": "x", "profile": "cpu", "epochs": None, "overrides": {}}
    declared = set(namespace)
    check_parameters({**namespace, "epochs": 3, "json": os, "Path": Path}, declared)  # imports are not parameters
    with pytest.raises(ConfigError) as info:
        check_parameters({**namespace, "imbalance": 0.1}, declared)
    message = str(info.value)
    assert message.startswith("parameter='imbalance' is not allowed") and "epochs, overrides, profile" in message
    assert "In" not in message.split("parameters:")[1]


def papermill(notebook: str, tmp_path: Path, *args: str, replay: bool) -> subprocess.CompletedProcess:
    env = {**os.environ, "ADVFAIR_RESULTS_OUT": str(tmp_path / "out")}
    env.pop("ADVFAIR_REPLAY_DIR", None)
    if replay:
        env["ADVFAIR_REPLAY_DIR"] = str(REPO / "book" / "results")
    return subprocess.run([sys.executable, "-m", "papermill", "--cwd", str(REPO / "book"), str(REPO / "book" / notebook),
                           str(tmp_path / "executed.ipynb"), "--no-progress-bar", *args], env=env, capture_output=True,
                          text=True)


def test_an_unknown_papermill_parameter_stops_the_page_before_any_work(tmp_path):
    run = papermill("classwise.ipynb", tmp_path, "-p", "imbalance", "0.1", replay=False)
    assert run.returncode != 0
    assert "parameter='imbalance' is not allowed" in run.stderr and "train_per_class" in run.stderr
    assert not (tmp_path / "out").exists()  # nothing ran, nothing was written


def test_a_declared_parameter_passes_the_check(tmp_path):
    run = papermill("evaluate.ipynb", tmp_path, "-p", "per_class", "30", replay=True)
    assert run.returncode == 0, run.stderr[-3000:]
