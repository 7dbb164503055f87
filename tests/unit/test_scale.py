"""advfair.experiments.scale: the box at the top of every chapter states its tier and what its models reach."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from advfair.experiments import CHAPTERS
from advfair.experiments.scale import scale_table, scale_text

RESULTS = Path(__file__).resolve().parents[2] / "book" / "results"


@pytest.mark.parametrize("chapter", list(CHAPTERS))
def test_the_box_states_the_tier_and_each_model_s_worst_class(chapter):
    results = json.loads((RESULTS / f"{chapter}_cpu.json").read_text())
    text = scale_text(results)
    assert "smoke tier" in text and "not findings" in text  # a smoke run never reads as evidence
    assert f"{results['config']['epochs']} epochs" in text and "The paper profile:" in text
    # the paper's own values beside ours, quoted with their digits and reference, or a line saying there are none
    assert ("The paper's values (quoted):" in text) == (chapter in ("robal", "ducat"))
    if chapter == "robal":
        assert "AT 62.33 % clean, 29.30 % PGD-20, 28.15 % AA" in text and "Table 2" in text
    if chapter == "ducat":
        assert "PGD-AT 82.92 % clean, 46.74 % AA" in text and "Table 1" in text
    # a page whose models learn another dataset than the paper's says it shows a proxy (AALP's MNIST)
    assert ("A proxy" in text) == (results["config"]["dataset"] != CHAPTERS[chapter].make_config("paper").dataset)
    table = scale_table(results)
    pgd = results["attack_roles"]["pgd"].upper()
    assert list(table.columns) == ["clean %", "worst class clean %", f"{pgd} %", f"worst class {pgd} %"]
    first = next(iter(results["evaluations"]))
    entry = results["evaluations"][first]["reports"]["all"]["attacks"]["clean"]
    assert table.iloc[0]["clean %"] == f"{100 * entry['overall']:.1f}"
    assert table.iloc[0]["worst class clean %"].startswith(f"{100 * entry['worst']:.1f} (")


def test_the_evidence_tier_says_its_weights_are_committed():
    results = json.loads((RESULTS / "classwise_cpu.json").read_text())
    results["config"] = {**results["config"], "profile": "evidence", "train_per_class": None, "val_per_class": 100}
    text = scale_text(results)
    assert "evidence tier" in text and "book/weights" in text and "but the 100 per class held out" in text
