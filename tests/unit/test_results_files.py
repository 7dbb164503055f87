"""Saved results shown by a page: checked to be the page's chapter, and labelled with the scale they are."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from advfair.evaluation.protocol import SCHEMA as EVALUATION_SCHEMA
from advfair.experiments import chapter_results, load_results, page_results, scale_label
from advfair.validation import ConfigError

RESULTS = Path(__file__).resolve().parents[2] / "book" / "results"


def test_a_page_refuses_another_chapters_results_with_a_clear_message():
    with pytest.raises(ConfigError, match=r"results_json=.*robal_cpu.json.*of the 'classwise' chapter.*'robal'"):
        chapter_results("classwise", "cpu", {}, {}, str(RESULTS / "robal_cpu.json"))
    with pytest.raises(ConfigError, match="an existing results JSON file"):
        chapter_results("classwise", "cpu", {}, {}, str(RESULTS / "no_such_file.json"))
    with pytest.raises(ConfigError, match=r"of the 'classwise' chapter \(this one has schema 'advfair.stability/1'"):
        load_results(RESULTS / "classwise_stability.json", "classwise")


def test_the_evaluate_page_refuses_a_file_that_is_no_report():
    assert load_results(RESULTS / "evaluate_cpu.json", schema=EVALUATION_SCHEMA)["schema"] == EVALUATION_SCHEMA
    with pytest.raises(ConfigError, match=r"a 'advfair.evaluation/1' file \(this one has schema 'advfair.results/"):
        page_results("evaluate_cpu", lambda: pytest.fail("computed"), str(RESULTS / "classwise_cpu.json"),
                     schema=EVALUATION_SCHEMA)


def test_the_scale_label_says_what_a_run_changed(tmp_path):
    results = load_results(RESULTS / "classwise_cpu.json", "classwise")
    assert scale_label(results) == "the cpu profile as defined (seed 0)"
    smoke = {**results, "config": {**results["config"], "epochs": 1, "seed": 3, "device": "cuda"}}
    assert scale_label(smoke) == "not the cpu profile's scale: this run changed epochs=1 (profile: 4)"
    # A cpu-sized run filed as the paper profile is never shown as paper scale.
    posing = {**results, "config": {**results["config"], "profile": "paper"}}
    label = scale_label(posing)
    assert label.startswith("not the paper profile's scale") and "epochs=4 (profile: 110)" in label
    path = tmp_path / "classwise_paper.json"
    path.write_text(json.dumps(posing))
    assert scale_label(load_results(path, "classwise")) == label
