"""`run CHAPTER --profile paper --smoke`: every chapter's paper pipeline, with the paper's networks, run end to end on
the CPU at a smoke size, so a GPU user runs code that has run. What is checked: the run finishes and writes its
results; every model is the paper profile's network; the config is the paper profile with only the smoke fields
changed; and the results file says it is not the paper profile's scale."""
from __future__ import annotations

import json

import pytest

from advfair import cli
from advfair.experiments import CHAPTERS, scale_label

# The networks of each chapter's paper profile (the config's model fields), which the smoke run must keep.
NETWORK_FIELDS = {"classwise": ("model",), "robal": ("model",), "ducat": ("model",),
                  "absld": ("model", "teacher_model"), "aalp": ("model",)}


def test_smoke_fields_change_sizes_not_networks_or_objectives():
    for name, chapter in CHAPTERS.items():
        smoke = chapter.config.smoke_fields()
        assert smoke["epochs"] <= 2 and smoke["test_per_class"] == 1, name
        assert not set(smoke) & {"model", "teacher_model", "teacher_objective", "models", "baselines", "dataset",
                                 "eps", "schedule", "checkpoint"}, name
        for profile in chapter.config.PROFILES:
            chapter.make_config(profile, **smoke, device="cpu")  # a valid config of every profile


# Measured alone on 2 cores: RoBal 822 s (ten served WRN-34-10 heads), ABSLD 228 s, DUCAT 209 s (2026-12-08),
# AALP 70 s, class-wise 38 s. CI runs all but RoBal (the smaller smoke tiers made room for ABSLD and DUCAT); `make paper-smoke`
# runs all five.
IN_CI = ("aalp", "absld", "classwise", "ducat")


@pytest.mark.parametrize("name", [n if n in IN_CI else pytest.param(n, marks=pytest.mark.paper_smoke)
                                  for n in sorted(CHAPTERS)])
def test_the_paper_profile_runs_end_to_end_at_smoke_size(name, data_dir, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("ADVFAIR_CACHE_DIR", str(tmp_path / "cache"))
    out = tmp_path / f"{name}.json"
    assert cli.main(["run", name, "--profile", "paper", "--smoke", "--device", "cpu", "--no-progress",
                     "--out", str(out)]) == 0
    results = json.loads(out.read_text())
    chapter = CHAPTERS[name]
    paper = chapter.make_config("paper", device="cpu")
    expected = chapter.make_config("paper", device="cpu", **chapter.config.smoke_fields())
    assert results["config_hash"] == expected.config_hash()
    networks = {getattr(paper, f) for f in NETWORK_FIELDS[name]}
    cache = tmp_path / "cache"
    trained = {json.loads((cache / f"{record['key']}.json").read_text())["spec"]["model"]["name"]
               for key, record in results["models"].items()
               if not key.startswith("mnist_")}  # the class-wise chapter's MNIST track has its own network
    assert trained and trained <= networks and (name != "absld" or trained == networks), (trained, networks)
    assert scale_label(results).startswith("not the paper profile's scale")
    assert "verdicts" in capsys.readouterr().out
