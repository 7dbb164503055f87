"""The evidence tier is what its committed weights compute (`advfair.recheck`): every seed-0 model a
chapter's evidence results list has committed weights, and each committed test evaluation is recomputed from them,
clean on every test point, under the chapter's PGD on one test batch in five and under AutoAttack on ten points
per class. Exact on the machine kind that made the results, within the recheck's tolerances on any other."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from advfair.experiments import CHAPTERS
from advfair.recheck import problems, recheck
from advfair.provenance import machine_kind

pytestmark = pytest.mark.notebooks

REPO = Path(__file__).resolve().parents[2]
RESULTS, WEIGHTS = REPO / "book" / "results", REPO / "book" / "weights"
TIER = {name: RESULTS / f"{name}_evidence.json" for name in CHAPTERS if (RESULTS / f"{name}_evidence.json").exists()}


@pytest.mark.skipif(not TIER, reason="no chapter has evidence-tier results yet")
@pytest.mark.parametrize("name", list(TIER))
def test_the_committed_weights_recompute_the_evidence_tier(name):
    results = json.loads(TIER[name].read_text())
    missing = [m for m, record in results["models"].items()
               if not (WEIGHTS / f"{record['key']}.safetensors").is_file()]
    assert not missing, f"models of {TIER[name].name} without committed weights: {missing}"
    chapter = CHAPTERS[name]
    assert chapter.rechecks is not None, f"the {name} chapter names no evaluations to recheck"
    # The same computation only on a CPU of the same kind (a GPU run also trains and attacks in other layouts).
    exact = results["environment"]["device"] == "cpu" and \
        results["environment"]["machine_kind"] == json.loads(json.dumps(machine_kind()))
    rows = recheck(results, chapter.rechecks(results), [WEIGHTS], exact=exact)
    found = problems(rows)
    assert not found, f"{name}: the committed weights do not compute the committed results:\n" + "\n".join(found)
