"""Every executed page of the book, re-executed from an empty model cache and without the committed weights (every
model trained again), is checked against the committed book (see advfair.experiments.reproduce): exactly on the
machine kind that produced the committed results, within the seed-derived tolerances, and with every seed-stable
verdict unchanged, on any other.

The exact comparison of the rendered outputs (every table and text cell) with the committed notebooks is
nbval's, run on the committed results (ADVFAIR_REPLAY_DIR, see the Makefile): rendering involves no training,
and its statistics are the same bits under every BLAS and SIMD kernel (tests/test_kernels.py replays the
pages under each kernel this CPU can run).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from advfair.experiments import reproduce
from advfair.experiments.stability import load_stability

pytestmark = pytest.mark.notebooks

REPO = Path(__file__).resolve().parents[2]
RESULTS = REPO / "book" / "results"
# Every page of reproduce.PAGES, in book order (a later page may reuse an earlier page's cached models):
# the results file <page>_cpu.json belongs to the notebook book/<page>.ipynb.
NOTEBOOKS = {name: name.removesuffix("_cpu") for name in reproduce.PAGES}


def papermill_parameters(notebook: Path) -> set[str]:
    """The names the notebook's parameters cell assigns."""
    cells = json.loads(notebook.read_text())["cells"]
    source = next("".join(c["source"]) for c in cells if "parameters" in c.get("metadata", {}).get("tags", []))
    return {line.split("=", 1)[0].strip() for line in source.splitlines() if "=" in line and not line.startswith(" ")}


@pytest.fixture(scope="module")
def fresh_cache(tmp_path_factory) -> Path:
    """One empty model cache for all pages, in book order: later pages reuse earlier pages' models, as in make book."""
    return tmp_path_factory.mktemp("model-cache")


@pytest.fixture(scope="module")
def no_committed_weights(tmp_path_factory) -> Path:
    """An empty committed-weights folder: the evidence tier commits models whose cache keys are also the smoke
    tier's (the class-wise chapter's MNIST track, AALP), and the cache would load them instead of training."""
    return tmp_path_factory.mktemp("no-committed-weights")


@pytest.mark.parametrize("name", list(NOTEBOOKS))
def test_fresh_execution_reproduces_the_committed_results(name, fresh_cache, no_committed_weights, tmp_path):
    committed_path = RESULTS / f"{name}.json"
    assert committed_path.exists(), f"{committed_path} is not committed: run `make book`"
    env = {**os.environ, "ADVFAIR_CACHE_DIR": str(fresh_cache), "ADVFAIR_WEIGHTS_DIR": str(no_committed_weights),
           "ADVFAIR_RESULTS_OUT": str(tmp_path)}
    env.pop("ADVFAIR_REPLAY_DIR", None)
    notebook = REPO / "book" / f"{NOTEBOOKS[name]}.ipynb"
    # The smoke tier, named: a chapter page may render another tier (the evidence tier) by default.
    profile = ["-p", "profile", "cpu"] if "profile" in papermill_parameters(notebook) else []
    run = subprocess.run([sys.executable, "-m", "papermill", "--cwd", str(REPO / "book"), str(notebook),
                          str(tmp_path / "executed.ipynb"), "--no-progress-bar", *profile], env=env,
                         capture_output=True, text=True)
    assert run.returncode == 0, f"a cell failed:\n{run.stderr[-4000:]}"
    fresh = json.loads((tmp_path / f"{name}.json").read_text())
    committed = json.loads(committed_path.read_text())
    page, stability_name = reproduce.PAGES[name]
    stability = load_stability(stability_name, RESULTS) if stability_name else None
    mode = "exact" if reproduce.same_machine_kind(fresh, committed) else "within seed-derived tolerances"
    problems = reproduce.check(page, fresh, committed, stability)
    assert not problems, f"{name} does not reproduce the committed book ({mode}):\n" + "\n".join(problems)
