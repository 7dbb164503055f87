"""advfair.experiments.stability: seed-stability runs of a chapter, the stability file, per-claim counts, stale
files, the claims stable across seeds and the re-execution tolerances, on a fake chapter."""
from __future__ import annotations

import dataclasses
import json
import math
import os
from pathlib import Path
from typing import Any, ClassVar

import pandas as pd
import pytest

from advfair import cli
from advfair.experiments import CHAPTERS
from advfair.config import ChapterConfig
from advfair.experiments.base import Chapter
from advfair.provenance import git_commit, machine_kind
from advfair.experiments import noise, stability
from advfair.evaluation import Estimate
from advfair.experiments.stability import (SCHEMA, add_kernel_runs, claim_stability, load_stability, pooled_verdicts,
                                           refresh_stability, run_stability, seed_record, seed_verdicts, stability_path,
                                           stable_claims, tolerances)
from advfair.validation import ConfigError
from advfair.verdicts import (ACCURACY_POINT, INCONCLUSIVE, NOT_REPRODUCED, REPRODUCED, Part, Verdict, greater,
                              with_stability)


@dataclasses.dataclass(frozen=True)
class FakeConfig(ChapterConfig):
    PROFILES: ClassVar[dict[str, dict[str, Any]]] = {"cpu": {}}

    size: int = 3


def _run(calls: list):
    def run(cfg: FakeConfig) -> dict:
        calls.append(cfg)
        if cfg.size < 0:
            raise RuntimeError("training diverged")
        return {"seed": cfg.seed, "size": cfg.size, "seconds": {"total": 0.5 + cfg.seed},
                "config": cfg.to_dict(), "config_hash": cfg.config_hash()}  # as a chapter's Run.finish records
    return run


def verdicts(results: dict) -> list[Verdict]:
    seed = results["seed"]
    return [Verdict("A", "always holds", (Part("a", REPRODUCED),)),
            Verdict("B", "holds for even seeds", (Part("b", REPRODUCED if seed % 2 == 0 else INCONCLUSIVE),)),
            Verdict("C", "never holds", (Part("c", NOT_REPRODUCED, rule=f"seed {seed}"),))]


def key_numbers(results: dict) -> dict[str, float]:
    seed = results["seed"]
    return {"spread": 0.5 + 0.02 * seed, "tight": 0.3 + 0.001 * seed, "size": float(results["size"]),
            "partial": float("nan") if seed == 0 else 0.1 * seed}


@pytest.fixture
def chapter():
    calls: list = []
    return Chapter("fake", FakeConfig, _run(calls), verdicts, key_numbers), calls


@pytest.fixture
def record(chapter, tmp_path):
    ch, _ = chapter
    return run_stability(ch, [0, 1, 2], profile="cpu", overrides={"size": 4}, out=tmp_path / "fake_stability.json")


def test_run_stability_writes_the_record(chapter, tmp_path, record):
    _, calls = chapter
    path = tmp_path / "fake_stability.json"
    assert json.dumps(json.loads(path.read_text()), sort_keys=True) == json.dumps(record, sort_keys=True)
    # no temporary file left behind; each seed's results saved compactly beside the record
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fake_stability.json", "stability"]
    assert sorted(p.name for p in (tmp_path / "stability").iterdir()) == [f"fake_cpu_seed{s}.json" for s in (0, 1, 2)]
    assert record["results_files"]["2"] == "stability/fake_cpu_seed2.json"
    assert json.loads((tmp_path / "stability" / "fake_cpu_seed2.json").read_text())["seed"] == 2
    assert [(c.seed, c.size, c.profile) for c in calls] == [(0, 4, "cpu"), (1, 4, "cpu"), (2, 4, "cpu")]
    assert record["schema"] == SCHEMA == "advfair.stability/1"
    assert record["chapter"] == "fake" and record["profile"] == "cpu" and record["seeds"] == [0, 1, 2]
    assert record["config_hash"] == FakeConfig.make("cpu", size=4).config_hash()
    assert record["config"]["size"] == 4 and "seed" not in record["config"]
    assert set(record["per_seed"]) == {"0", "1", "2"}
    one = record["per_seed"]["1"]
    assert {c: v["outcome"] for c, v in one["verdicts"].items()} == {"A": REPRODUCED, "B": INCONCLUSIVE,
                                                                     "C": NOT_REPRODUCED}
    assert one["verdicts"]["C"]["evidence"] == "c: seed 1"
    # each run's whole verdict is kept, for pooling over seeds
    assert Verdict.from_json(one["verdicts"]["B"]["verdict"]) == verdicts({"seed": 1})[1]
    assert one["key_numbers"]["spread"] == pytest.approx(0.52) and one["key_numbers"]["size"] == 4.0
    assert math.isnan(record["per_seed"]["0"]["key_numbers"]["partial"])
    assert [record["per_seed"][s]["seconds"] for s in ("0", "1", "2")] == [0.5, 1.5, 2.5]
    assert record["commit"] == git_commit()
    assert record["machine"] == json.loads(json.dumps(machine_kind()))
    assert record["seconds"]["wall"] >= 0
    assert json.dumps(load_stability("fake", tmp_path), sort_keys=True) == json.dumps(record, sort_keys=True)
    assert stability_path("fake", tmp_path) == path


def test_a_failed_run_leaves_the_previous_file(chapter, tmp_path, record):
    ch, _ = chapter
    path = tmp_path / "fake_stability.json"
    before = path.read_text()
    with pytest.raises(RuntimeError, match="diverged"):
        run_stability(ch, [0, 1], overrides={"size": -1}, out=path)
    assert path.read_text() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fake_stability.json", "stability"]


def test_resume_keeps_the_seeds_already_written_for_the_same_config(chapter, tmp_path, record):
    ch, calls = chapter
    path, n_calls = tmp_path / "fake_stability.json", len(calls)
    (tmp_path / "stability" / "fake_cpu_seed1.json").unlink()  # an interrupted run: seed 1 never finished
    resumed = run_stability(ch, [0, 1, 2], overrides={"size": 4}, out=path, resume=True)
    assert [c.seed for c in calls[n_calls:]] == [1]  # only the missing seed ran
    assert resumed["per_seed"] == record["per_seed"]
    assert resumed["seconds"]["seeds"] == pytest.approx(0.5 + 1.5 + 2.5)  # the seeds' own times
    assert set(resumed["seed_commits"]) == {"0", "1", "2"}
    # a seed file written for another config is run again, not reused
    run_stability(ch, [0, 1], overrides={"size": 5}, out=path, resume=True)
    assert [(c.seed, c.size) for c in calls[n_calls + 1:]] == [(0, 5), (1, 5)]
    # without resume every seed runs
    run_stability(ch, [0, 1], overrides={"size": 5}, out=path)
    assert len(calls) == n_calls + 5


def test_refresh_refuses_a_results_file_of_another_run(chapter, tmp_path, record):
    ch, _ = chapter
    seed1 = tmp_path / "stability" / "fake_cpu_seed1.json"
    seed1.write_text(json.dumps({**json.loads(seed1.read_text()), "config_hash": "another"}))
    with pytest.raises(ConfigError, match=r"fake_cpu_seed1.json.*the results of seed 1 of the stability run's config"):
        refresh_stability(ch, tmp_path / "fake_stability.json")


def test_refresh_recomputes_verdicts_from_the_saved_results_without_running(chapter, tmp_path, record):
    ch, calls = chapter
    path = tmp_path / "fake_stability.json"
    n_calls = len(calls)

    def stricter(results: dict) -> list[Verdict]:  # a changed rule: B now fails for every seed
        return [v if v.claim != "B" else Verdict("B", v.statement, (Part("b", NOT_REPRODUCED),)) for v in verdicts(results)]

    refreshed = refresh_stability(dataclasses.replace(ch, verdicts=stricter), path)
    assert len(calls) == n_calls  # nothing was run again
    assert {s: r["verdicts"]["B"]["outcome"] for s, r in refreshed["per_seed"].items()} == {
        "0": NOT_REPRODUCED, "1": NOT_REPRODUCED, "2": NOT_REPRODUCED}
    assert refreshed["per_seed"]["1"]["seconds"] == record["per_seed"]["1"]["seconds"]
    assert json.loads(path.read_text())["per_seed"]["0"]["verdicts"]["B"]["outcome"] == NOT_REPRODUCED
    with pytest.raises(ConfigError, match="stability file"):
        refresh_stability(ch, tmp_path / "missing" / "fake_stability.json")


def test_claim_stability_counts(record):
    counts = claim_stability(record, record["config_hash"])
    assert counts == {"A": {"outcomes": {REPRODUCED: 3}, "n": 3, "unit": "seeds"},
                      "B": {"outcomes": {REPRODUCED: 2, INCONCLUSIVE: 1}, "n": 3, "unit": "seeds"},
                      "C": {"outcomes": {NOT_REPRODUCED: 3}, "n": 3, "unit": "seeds"}}
    assert claim_stability(None, record["config_hash"]) == {}
    # what a chapter shows beside the verdict: each run's own verdict, as it is; it changes no outcome
    b = with_stability(verdicts({"seed": 0})[1], counts["B"])
    assert b.outcome == REPRODUCED and b.text() == REPRODUCED
    assert b.seeds_text() == "reproduced in 2, inconclusive in 1 of 3 seeds"
    a = with_stability(verdicts({"seed": 0})[0], counts["A"])
    assert a.outcome == REPRODUCED and a.seeds_text() == "reproduced in 3 of 3 seeds"
    c = with_stability(verdicts({"seed": 0})[2], counts["C"])
    assert c.text() == NOT_REPRODUCED and c.seeds_text() == "not reproduced in 3 of 3 seeds"


def test_a_record_for_another_config_is_stale(record):
    other = FakeConfig.make("cpu", size=5).config_hash()
    assert other != record["config_hash"]
    assert claim_stability(record, other) == {"A": {"stale": True}, "B": {"stale": True}, "C": {"stale": True}}
    assert with_stability(verdicts({"seed": 0})[0], claim_stability(record, other)["A"]).seeds_text() == "stale"
    # another training seed is the same experiment: not stale
    assert FakeConfig.make("cpu", size=4, seed=9).config_hash() == record["config_hash"]


def test_stable_claims_lists_only_unanimous_claims(record):
    assert stable_claims(record) == {"A": REPRODUCED, "C": NOT_REPRODUCED}
    # a claim missing from one seed is not unanimous
    partial = json.loads(json.dumps(record))
    del partial["per_seed"]["2"]["verdicts"]["A"]
    assert stable_claims(partial) == {"C": NOT_REPRODUCED}


def test_tolerances_are_four_seed_sds_at_least_three_points(record):
    tol = tolerances(record)
    assert set(tol) == {"spread", "tight", "size", "partial"}
    assert tol["spread"] == pytest.approx(4 * 0.02)  # values 0.50, 0.52, 0.54: sample SD 0.02
    assert tol["tight"] == 0.03  # 4 x 0.001 is below the floor
    assert tol["size"] == 0.03  # constant
    assert tol["partial"] == pytest.approx(max(4 * 0.0707107, 0.03), rel=1e-5)  # the nan seed is left out


@pytest.mark.parametrize("seeds, overrides, match", [
    ([0], {}, r"seeds=\[0\]"),
    ([], {}, r"seeds=\[\]"),
    ([1, 1], {}, r"seeds=\[1, 1\]"),
    ([0, 1, 0], {}, r"seeds=\[0, 1, 0\]"),
    ([0, 1], {"seed": 3}, "seed=3"),
])
def test_bad_seeds_and_a_seed_override_are_errors(chapter, tmp_path, seeds, overrides, match):
    ch, calls = chapter
    with pytest.raises(ConfigError, match=match):
        run_stability(ch, seeds, overrides=overrides, out=tmp_path / "s.json")
    assert calls == [] and not (tmp_path / "s.json").exists()


def test_load_stability_checks_the_schema(tmp_path):
    assert load_stability("fake", tmp_path) is None
    (tmp_path / "fake_stability.json").write_text(json.dumps({"schema": "other/1"}))
    with pytest.raises(ConfigError, match="schema 'advfair.stability/1'"):
        load_stability("fake", tmp_path)


def test_cli_stability(chapter, tmp_path, monkeypatch, capsys):
    ch, calls = chapter
    monkeypatch.setitem(CHAPTERS, "fake", ch)
    out = tmp_path / "out.json"
    assert cli.main(["stability", "fake", "--seeds", "3", "4", "--set", "size=2", "--out", str(out)]) == 0
    assert [(c.seed, c.size) for c in calls] == [(3, 2), (4, 2)]
    assert json.loads(out.read_text())["seeds"] == [3, 4] and str(out) in capsys.readouterr().out
    calls.clear()
    assert cli.main(["stability", "fake", "--seeds", "3", "--out", str(tmp_path / "x.json")]) == 2
    assert "seeds=[3]" in capsys.readouterr().err
    assert cli.main(["stability", "fake", "--seeds", "1", "2", "--set", "seed=1", "--out", str(tmp_path / "x.json")]) == 2
    assert "seed=1" in capsys.readouterr().err
    assert calls == [] and not (tmp_path / "x.json").exists()
    # resuming needs a place where earlier seeds are: the book's folder or --out
    assert cli.main(["stability", "fake", "--seeds", "1", "2", "--resume"]) == 2
    assert "--resume=True is not allowed: expected --into-book or --out as well" in capsys.readouterr().err
    assert calls == []


class FakeProcess:
    """Stands in for `python -m advfair run` in a fresh process: records the command and the environment, and
    writes the fake chapter's results for the seed given with --set."""

    def __init__(self, chapter: Chapter):
        self.chapter, self.calls = chapter, []

    def __call__(self, command, env):
        self.calls.append((command, env))
        sets = dict(arg.removeprefix("--set=").split("=", 1) for arg in command if arg.startswith("--set="))
        cfg = self.chapter.make_config("cpu", **{k: json.loads(v) for k, v in sets.items()})
        out = Path(command[command.index("--out") + 1])
        out.write_text(json.dumps(self.chapter.run(cfg)))


@pytest.fixture
def kernel_run(chapter, monkeypatch):
    fake = FakeProcess(chapter[0])
    monkeypatch.setattr(stability, "run_process", fake)
    return fake


def test_a_kernel_run_is_the_first_seed_in_a_fresh_process_with_the_kernels_forced(chapter, kernel_run, tmp_path):
    ch, calls = chapter
    out = tmp_path / "fake_stability.json"
    record = run_stability(ch, [1, 2], overrides={"size": 4}, out=out, kernels=["avx2"])
    (command, env), = kernel_run.calls
    assert command[1:5] == ["-m", "advfair", "run", "fake"] and "--set=size=4" in command and "--set=seed=1" in command
    assert env["ATEN_CPU_CAPABILITY"] == "avx2" and env["ONEDNN_MAX_CPU_ISA"] == "AVX2"
    assert env["ADVFAIR_CACHE_DIR"] != os.environ.get("ADVFAIR_CACHE_DIR")  # nothing trained with other kernels
    assert list(record["per_seed"]) == ["1", "2", "1@avx2"] and record["kernels"] == ["avx2"]
    assert record["results_files"]["1@avx2"] == "stability/fake_cpu_seed1_avx2.json"
    assert json.loads((tmp_path / "stability/fake_cpu_seed1_avx2.json").read_text())["seed"] == 1
    assert not list((tmp_path / "stability").glob("*.run.json")) and load_stability("fake", tmp_path) == record
    counts = claim_stability(record, record["config_hash"])
    assert counts["B"]["n"] == 3 and counts["B"]["unit"] == "runs (2 seeds, and seed 1 with avx2 kernels)"
    held = with_stability(verdicts({"seed": 1})[0], counts["A"])
    assert held.seeds_text() == "reproduced in 3 of 3 runs (2 seeds, and seed 1 with avx2 kernels)"
    flipped = with_stability(verdicts({"seed": 1})[1], counts["B"])  # seed 1: inconclusive, seed 2: reproduced
    assert flipped.seeds_text() == "inconclusive in 2, reproduced in 1 of 3 runs (2 seeds, and seed 1 with avx2 kernels)"
    assert flipped.outcome == INCONCLUSIVE and flipped.text() == INCONCLUSIVE  # the record never vetoes


def test_extend_adds_kernel_runs_to_an_existing_file_without_rerunning_its_seeds(chapter, kernel_run, record, tmp_path,
                                                                               monkeypatch):
    ch, calls = chapter
    monkeypatch.setitem(CHAPTERS, "fake", ch)
    out = tmp_path / "fake_stability.json"
    calls.clear()
    assert cli.main(["stability", "fake", "--kernels", "avx2", "--extend", "--out", str(out)]) == 0
    extended = json.loads(out.read_text())
    assert [c.seed for c in calls] == [0] and len(kernel_run.calls) == 1  # only the first seed, in its own process
    assert list(extended["per_seed"]) == ["0", "1", "2", "0@avx2"] and extended["per_seed"]["0"] == record["per_seed"]["0"]
    assert stable_claims(extended) == {"A": REPRODUCED, "C": NOT_REPRODUCED}


def test_bad_kernels_and_a_stale_file_to_extend_are_errors(chapter, kernel_run, record, tmp_path, monkeypatch, capsys):
    ch, calls = chapter
    with pytest.raises(ConfigError, match=r"kernels='avx512' is not allowed: expected one of 'avx2'"):
        run_stability(ch, [0, 1], out=tmp_path / "k.json", kernels=["avx512"])
    assert calls[3:] == [] and not (tmp_path / "k.json").exists()
    stale = {**record, "config_hash": "0" * 16}
    with pytest.raises(ConfigError, match="a file made for the chapter's current config"):
        add_kernel_runs(ch, ["avx2"], stale, tmp_path / "fake_stability.json")
    monkeypatch.setitem(CHAPTERS, "fake", ch)
    assert cli.main(["stability", "fake", "--extend", "--out", str(tmp_path / "missing.json")]) == 2
    assert "--extend=" in capsys.readouterr().err and kernel_run.calls == []


# ---------------------------------------------------------------------------------------------------------------
# Pooling the committed stability file's runs into the chapter's decisions

def _delta(seed: int) -> float:
    return 0.05 + 0.002 * seed ** 2  # seeds 0, 1, 2: 0.050, 0.052, 0.058 (so double-counting a seed shows)


def pooled_rules(results: dict) -> list[Verdict]:
    """A training comparison whose estimate depends on the seed (a kernel run can be given another value)."""
    value = results.get("value", _delta(results["seed"]))
    part = greater("Δ", Estimate(value, (value - 0.01, value + 0.01), 1000), effect=ACCURACY_POINT)
    return [Verdict("D", "training helps", (part,), compares="training")]


@pytest.fixture
def pooled_record(tmp_path, monkeypatch):
    """A stability file for seeds 0, 1, 2 with a kernel run "0@avx2" whose estimate is far off, in the directory
    chapters read committed results from."""
    ch = Chapter("fake", FakeConfig, _run([]), pooled_rules, key_numbers)
    record = run_stability(ch, [0, 1, 2], overrides={"size": 4}, out=tmp_path / "fake_stability.json")
    record["per_seed"]["0@avx2"] = seed_record(ch, {"seed": 0, "size": 4, "value": -0.5, "seconds": {"total": 1.0}})
    record["kernels"] = ["avx2"]
    (tmp_path / "fake_stability.json").write_text(json.dumps(record))
    monkeypatch.setenv("ADVFAIR_RESULTS_DIR", str(tmp_path))
    return record


def this_run(seed: int, config_hash: str) -> dict:
    return {"seed": seed, "config": {"seed": seed}, "config_hash": config_hash}


def test_pooled_verdicts_pool_this_run_with_the_record_s_other_seeds(pooled_record):
    (v,) = pooled_verdicts("fake", this_run(1, pooled_record["config_hash"]), pooled_rules)
    part = v.parts[0]
    assert v.pooled and v.runs == 3  # this run (seed 1) and seeds 0 and 2; not the record's seed 1 again
    assert part.estimate.value == pytest.approx((_delta(0) + _delta(1) + _delta(2)) / 3)  # the kernel run is not pooled
    assert v.outcome == REPRODUCED and v.text() == REPRODUCED
    assert v.evidence().startswith("pooled over 3 training seeds; Δ 5.3 [")
    # every run's own verdict is shown beside it, the kernel run included
    assert v.seeds_text() == ("reproduced in 3, not reproduced in 1 of 4 runs (3 seeds, and seed 0 with avx2 "
                              "kernels)")
    assert [r.parts[0].estimate.value for r in seed_verdicts(pooled_record, "D", besides=1)] == [_delta(0), _delta(2)]


def test_a_stale_record_leaves_the_run_alone_and_a_training_comparison_open(pooled_record):
    other = FakeConfig.make("cpu", size=5).config_hash()
    (v,) = pooled_verdicts("fake", this_run(1, other), pooled_rules)
    assert v.pooled and v.runs == 1 and v.parts[0].estimate.value == _delta(1)
    assert v.outcome == INCONCLUSIVE and v.seeds_text() == "stale"
    assert v.text() == (INCONCLUSIVE + "; one training seed (reproduced for this model): training variance not counted; "
                        "seed stability not current (the stability file is for another config)")


def test_without_a_stability_file_the_pool_is_the_run_alone(tmp_path, monkeypatch):
    monkeypatch.setenv("ADVFAIR_RESULTS_DIR", str(tmp_path))
    (v,) = pooled_verdicts("fake", this_run(0, "0" * 16), pooled_rules)
    assert v.runs == 1 and v.outcome == INCONCLUSIVE and v.seeds_text() == "no stability file"


def test_a_record_made_before_verdicts_were_stored_asks_for_a_refresh(pooled_record, tmp_path):
    old = json.loads(json.dumps(pooled_record))
    for entry in old["per_seed"].values():
        for claim in entry["verdicts"].values():
            del claim["verdict"]
    (tmp_path / "fake_stability.json").write_text(json.dumps(old))
    with pytest.raises(ConfigError, match="--refresh"):
        pooled_verdicts("fake", this_run(1, old["config_hash"]), pooled_rules)
    # a stale old record is never read for pooling: no error
    (v,) = pooled_verdicts("fake", this_run(1, FakeConfig.make("cpu", size=5).config_hash()), pooled_rules)
    assert v.runs == 1


def test_each_profile_has_its_own_stability_file_and_a_run_pools_with_its_profiles(chapter, tmp_path, monkeypatch):
    """The smoke tier's file keeps its name; another profile's (the evidence tier) is <chapter>_<profile>_...,
    written by a run of that profile and read by the verdicts of that profile's results only."""
    ch, _ = chapter
    profiled = dataclasses.replace(ch, config=ProfiledConfig)
    assert stability_path("fake", tmp_path) == tmp_path / "fake_stability.json"
    assert stability_path("fake", tmp_path, "evidence") == tmp_path / "fake_evidence_stability.json"
    monkeypatch.setenv("ADVFAIR_RESULTS_DIR", str(tmp_path))
    record = run_stability(profiled, [0, 1], profile="evidence")
    assert (tmp_path / "fake_evidence_stability.json").is_file() and not (tmp_path / "fake_stability.json").exists()
    # the first seed's results are the evidence page's results file, the others go under stability/
    assert record["results_files"] == {"0": "fake_evidence.json", "1": "stability/fake_evidence_seed1.json"}
    assert json.loads((tmp_path / "fake_evidence.json").read_text())["seed"] == 0
    assert load_stability("fake", tmp_path, "evidence")["profile"] == "evidence" and load_stability("fake", tmp_path) is None
    evidence = {"seed": 1, "config": {"seed": 1, "profile": "evidence"}, "config_hash": record["config_hash"]}
    assert pooled_verdicts("fake", evidence, verdicts)[0].runs == 2
    smoke = {**evidence, "config": {"seed": 1, "profile": "cpu"}}
    assert pooled_verdicts("fake", smoke, verdicts)[0].seeds_text() == "no stability file"


@dataclasses.dataclass(frozen=True)
class ProfiledConfig(FakeConfig):
    PROFILES: ClassVar[dict[str, dict[str, Any]]] = {"cpu": {}, "evidence": {"size": 7}}


def test_seed_spread_sets_the_seed_noise_beside_a_runs_standard_error():
    def run(seed: int) -> dict:
        value = 0.10 + 0.02 * seed  # estimates 10, 12, 14 points: SD 2 points over the seeds
        part = Part("gain", REPRODUCED, Estimate(value, (value - 0.01, value + 0.01), 100, se=0.005))  # SE 0.5 pt
        gate = Part("floor", REPRODUCED, Estimate(0.5, (0.4, 0.6), 100), gate=True)
        return {"verdicts": {"A": {"verdict": Verdict("A", "a gain", (part,), (gate,)).to_json()}}}

    record = {"seeds": [0, 1, 2], "per_seed": {str(s): run(s) for s in (0, 1, 2)}}
    table = noise.seed_spread(record)
    assert table.reset_index().to_dict("records") == [{
        "claim": "A", "part": "gain", "seed 0": "reproduced: 10.0 [9.0, 11.0]", "seed 1": "reproduced: 12.0 [11.0, 13.0]",
        "seed 2": "reproduced: 14.0 [13.0, 15.0]", noise.SD_COLUMN: "2.00", noise.SE_COLUMN: "0.50"}]  # no gate row
    assert noise.seed_spread_text(table).startswith("In 1 of 1 parts the SD over seeds exceeds one run's standard "
                                                    "error: A (gain).")
    one_seed = {"seeds": [0], "per_seed": {"0": run(0)}}
    with pytest.raises(ConfigError, match="two training seeds or more"):
        noise.seed_spread(one_seed)
    other = json.loads(json.dumps(record))  # a label picked per seed: every seed's label is shown
    other["per_seed"]["2"]["verdicts"]["A"]["verdict"]["parts"][0]["label"] = "gain at T=2"
    assert noise.seed_spread(other).index.tolist() == [("A", "gain / gain at T=2")]
    other["per_seed"]["2"]["verdicts"]["A"]["verdict"]["parts"] *= 2  # another shape of the claim: no row
    assert noise.seed_spread(other).empty


def test_pooled_over_decides_each_subset_of_seeds(record):
    # the fake claims carry no estimates: a pool shows its first run's outcome (B holds for even seeds)
    table = noise.pooled_over(record, [[0, 1, 2], [1, 2], [1]])
    assert list(table.columns) == ["seeds 0, 1, 2", "seeds 1, 2", "seed 1 alone"]
    assert table.loc["B"].tolist() == [REPRODUCED, INCONCLUSIVE, INCONCLUSIVE]
    with pytest.raises(ConfigError, match=r"seeds=\[3\].*training seeds \[0, 1, 2\]"):
        noise.pooled_over(record, [[3]])


def test_pooled_over_one_seed_leaves_a_training_comparison_inconclusive():
    def run(seed: int) -> Verdict:
        value = 0.05 + 0.01 * seed  # 5, 6, 7 points, each run's interval ±1 point: clear of 0 and of 1 point
        return Verdict("A", "a gain", (greater("gain", Estimate(value, (value - 0.01, value + 0.01), 100, se=0.005),
                                               effect=ACCURACY_POINT),))

    record = {"seeds": [0, 1, 2], "per_seed": {str(s): {"verdicts": {"A": {"verdict": run(s).to_json()}}}
                                               for s in (0, 1, 2)}}
    table = noise.pooled_over(record, [[0, 1, 2], [0]])
    assert table.reset_index().to_dict("records") == [{"claim": "A", "seeds 0, 1, 2": REPRODUCED,
                                                       "seed 0 alone": INCONCLUSIVE}]


def test_seed_spread_text_when_no_part_is_noisier_than_a_run():
    table = pd.DataFrame([{"claim": "B", "part": "gap", noise.SD_COLUMN: "0.5", noise.SE_COLUMN: "1.0"}])
    assert noise.seed_spread_text(table.set_index(["claim", "part"])).startswith("In none of the 1 parts")


def test_pooled_over_text_lists_the_decisions_that_change():
    table = pd.DataFrame([{"claim": "A", "seeds 0, 1": REPRODUCED, "seed 0 alone": INCONCLUSIVE},
                          {"claim": "B", "seeds 0, 1": NOT_REPRODUCED, "seed 0 alone": NOT_REPRODUCED}]).set_index("claim")
    assert noise.pooled_over_text(table).startswith(
        "1 of 2 decisions of the full pool (seeds 0, 1) change with fewer seeds: A (reproduced → inconclusive at "
        "this scale with seed 0 alone).")
    assert noise.pooled_over_text(table.iloc[1:]) == "No decision of the full pool (seeds 0, 1) changes with fewer seeds."
    with pytest.raises(ConfigError, match="stability file"):
        noise.seed_spread(None)
