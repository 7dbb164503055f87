"""Seed stability: a chapter's pipeline at its defaults once per training seed.

`python -m advfair stability CHAPTER --seeds 0 1 2 --into-book` writes book/results/<chapter>_stability.json with the
verdicts (with their estimates) and key numbers of every seed, the config hash (seed excluded), the commit, the
machine and the wall time. Chapters pool each claim's estimates over its seeds (`pooled_verdicts`) and show each
run's own verdict beside the pooled one; a file whose config hash differs from the config shown is stale: shown as
such, and not pooled. The spread of the key numbers over seeds sets the tolerances
with which a re-execution on another machine is checked against the committed book.

`--kernels avx2` adds a run of the first seed with other CPU kernels (`KERNELS`), in a fresh process: the
floats, and so the trained models, change with the kernels torch and oneDNN pick, as on another CPU, and a
verdict that changes with them is no more a finding than one that changes with the seed. `--extend` adds
such runs to an existing file without repeating its seeds.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..defaults import KERNELS
from ..files import write_json_atomic
from ..provenance import environment, git_commit, machine_kind
from ..tables import verdict_table
from ..trainer import resolve_device
from ..validation import fail
from ..verdicts import Verdict, pool, run_record, with_stability
from .base import Chapter, json_clean, results_dir

SCHEMA = "advfair.stability/1"
# A key number of a re-execution may differ from the committed one by TOLERANCE_SDS seed SDs, and never
# less than TOLERANCE_FLOOR (accuracies are proportions: 0.03 = 3 points).
TOLERANCE_SDS = 4.0
TOLERANCE_FLOOR = 0.03
# Kernel sets a CPU run can be forced to (set before torch starts, so each runs in its own process).
def stability_path(chapter: str, directory: Path | None = None, profile: str = "cpu") -> Path:
    """The stability file of a chapter's profile: <chapter>_stability.json for the cpu profile (the book's smoke
    tier), <chapter>_<profile>_stability.json for another (the evidence tier's, a paper run's)."""
    name = f"{chapter}_stability.json" if profile == "cpu" else f"{chapter}_{profile}_stability.json"
    return (directory or results_dir()) / name


def seed_record(chapter: Chapter, results: dict) -> dict:
    """One run's per-run verdicts (with their estimates, for pooling) and key numbers."""
    verdicts = chapter.verdicts(results)
    return {"verdicts": {v.claim: {"outcome": v.outcome, "evidence": v.evidence(), "verdict": v.to_json()}
                         for v in verdicts},
            "key_numbers": chapter.key_numbers(results), "seconds": results["seconds"]["total"]}


def run_stability(chapter: Chapter, seeds: list[int], *, profile: str = "cpu", overrides: dict[str, Any] | None = None,
                  out: Path | None = None, kernels: list[str] = (), resume: bool = False) -> dict:
    """Run the chapter once per seed (all other fields as given), and the first seed once per kernel set in
    `kernels`, and write the stability file. Each seed's results are written as soon as it finishes; with
    `resume`, a seed whose results file is already there, written for the same config, is not run again (a run
    over several sittings, such as the evidence tier's, goes on where it stopped)."""
    if len(seeds) < 2 or len(set(seeds)) != len(seeds):
        fail("seeds", seeds, "at least two distinct training seeds")
    overrides = dict(overrides or {})
    if "seed" in overrides:
        fail("seed", overrides["seed"], "no seed override: the seeds come from --seeds")
    _check_kernels(kernels)
    started = time.perf_counter()
    out = out or stability_path(chapter.name, profile=profile)
    configs = {s: chapter.make_config(profile, **overrides, seed=s) for s in seeds}
    per_seed, files, results_of = {}, {}, {}
    for s, cfg in configs.items():
        files[str(s)] = seed_file(chapter.name, profile, s, first=s == seeds[0])
        path = out.parent / files[str(s)]
        results = finished_seed(path, cfg) if resume else None
        if results is None:
            results = json_clean(chapter.run(cfg))
            write_json_atomic(results, path, indent=None)
        per_seed[str(s)] = seed_record(chapter, results)
        results_of[str(s)] = results
    reference = configs[seeds[0]]
    record = json_clean({
        "schema": SCHEMA, "chapter": chapter.name, "profile": profile, "seeds": seeds, "kernels": [],
        "overrides": overrides, "config_hash": reference.config_hash(),
        "config": {k: v for k, v in reference.to_dict().items() if k != "seed"},
        "per_seed": per_seed, "results_files": files, "commit": git_commit(), "machine": machine_kind(),
        "environment": environment(resolve_device(reference.device)),
        # this sitting's wall time, and the seeds' own (a resumed run kept some from earlier sittings)
        "seconds": {"wall": time.perf_counter() - started, "seeds": sum(r["seconds"] for r in per_seed.values())},
        # the commit each seed's results were made at (a resumed run's seeds may come from earlier commits)
        "seed_commits": {s: r.get("environment", {}).get("commit") for s, r in results_of.items()},
    })
    return add_kernel_runs(chapter, kernels, record, out) if kernels else _write(record, out)


def seed_file(chapter: str, profile: str, seed: int, *, first: bool) -> str:
    """Where a seed's results go, beside the stability file. The first seed of a tier other than the smoke tier is
    also what its chapter page shows (<chapter>_<profile>.json, the page's results: one file, not a copy); every
    other seed, and every seed of the smoke tier (whose page results `make book` writes), goes under stability/."""
    return f"{chapter}_{profile}.json" if first and profile != "cpu" else f"stability/{chapter}_{profile}_seed{seed}.json"


def finished_seed(path: Path, cfg: Any) -> dict | None:
    """The results a stability run already wrote at `path` for exactly this config and seed, else None."""
    if not path.exists():
        return None
    results = json.loads(path.read_text())
    same = results.get("config_hash") == cfg.config_hash() and results.get("config", {}).get("seed") == cfg.seed
    return results if same else None


def add_kernel_runs(chapter: Chapter, kernels: list[str], record: dict, out: Path) -> dict:
    """Run the record's first seed once per kernel set (each in a fresh process, `python -m advfair run`) and add
    the runs to the record as "<seed>@<kernels>"."""
    _check_kernels(kernels)
    seed, profile = record["seeds"][0], record["profile"]
    overrides = record.get("overrides", {})
    if chapter.make_config(profile, **overrides, seed=seed).config_hash() != record["config_hash"]:
        fail("stability file", str(out), "a file made for the chapter's current config (rerun without --extend)")
    started = time.perf_counter()
    for kernel in kernels:
        name = f"{seed}@{kernel}"
        path = out.parent / f"stability/{chapter.name}_{profile}_seed{seed}_{kernel}.json"
        sets = [f"--set={key}={json.dumps(value)}" for key, value in {**overrides, "seed": seed}.items()]
        path.parent.mkdir(parents=True, exist_ok=True)
        scratch = path.with_suffix(".run.json")
        # An empty model cache: cached models were trained with the default kernels. --into-book: the stability
        # command already checked where it may write.
        with tempfile.TemporaryDirectory() as cache:
            run_process([sys.executable, "-m", "advfair", "run", chapter.name, "--profile", profile, *sets,
                         "--out", str(scratch), "--into-book"], env={**os.environ, **KERNELS[kernel], "ADVFAIR_CACHE_DIR": cache})
        results = json.loads(scratch.read_text())
        write_json_atomic(results, path, indent=None)
        scratch.unlink()
        record["results_files"][name] = path.relative_to(out.parent).as_posix()
        record["per_seed"][name] = seed_record(chapter, results)
        record["kernels"] = sorted({*record.get("kernels", []), kernel})
    record["seconds"]["kernels"] = record["seconds"].get("kernels", 0.0) + time.perf_counter() - started
    return _write(record, out)


def run_process(command: list[str], env: dict[str, str]) -> None:
    """A run in a fresh process: torch picks its kernels when it starts."""
    subprocess.run(command, env=env, check=True)


def _check_kernels(kernels: list[str]) -> None:
    for kernel in kernels:
        if kernel not in KERNELS:
            fail("kernels", kernel, "one of " + ", ".join(repr(k) for k in KERNELS))


def _write(record: dict, out: Path) -> dict:
    record = json_clean(record)
    write_json_atomic(record, out)
    return record


def refresh_stability(chapter: Chapter, path: Path | None = None) -> dict:
    """Recompute every seed's verdicts and key numbers from the per-seed results files the stability run saved
    (after a change to the chapter's claims, no retraining); timings, commit and machine stay the run's."""
    path = path or stability_path(chapter.name)
    record = read_stability(path)
    if record is None:
        fail("stability file", str(path), "an existing file: run the stability command without --refresh first")
    for seed, name in record["results_files"].items():
        results = json.loads((path.parent / name).read_text())
        if results.get("config_hash") != record["config_hash"] or \
                str(results.get("config", {}).get("seed")) != seed.split("@")[0]:
            fail("results file", str(path.parent / name), f"the results of seed {seed} of the stability run's config "
                                                          f"{record['config_hash']} (rerun the stability command)")
        record["per_seed"][seed] = {**seed_record(chapter, results), "seconds": record["per_seed"][seed]["seconds"]}
    write_json_atomic(json_clean(record), path)
    return record


def load_stability(chapter: str, directory: Path | None = None, profile: str = "cpu") -> dict | None:
    """The chapter's stability file of `profile` (None when there is none)."""
    return read_stability(stability_path(chapter, directory, profile))


def read_stability(path: Path) -> dict | None:
    if not path.exists():
        return None
    record = json.loads(path.read_text())
    if record.get("schema") != SCHEMA:
        fail("stability file", str(path), f"schema {SCHEMA!r}")
    return record


def claim_stability(record: dict | None, config_hash: str) -> dict[str, dict]:
    """{claim: {"outcomes": {outcome: count}, "n": n, "unit": what the runs are}} (each run's own verdict) from a
    stability record, or {claim: {"stale": True}} when the record was made for another config. Empty when there
    is no record."""
    if record is None:
        return {}
    per_seed = list(record["per_seed"].values())
    claims = {c for seed in per_seed for c in seed["verdicts"]}
    if record["config_hash"] != config_hash:
        return {c: {"stale": True} for c in claims}
    unit = run_unit(record)
    return {c: run_record([seed["verdicts"][c]["outcome"] for seed in per_seed if c in seed["verdicts"]], unit)
            for c in claims}


def seed_verdicts(record: dict, claim: str, *, besides: int) -> list[Verdict]:
    """The per-run verdicts of `claim` in the record's training seeds other than `besides` (kernel runs repeat a
    seed, so they are shown in the record but not pooled)."""
    out = []
    for seed in record["seeds"]:
        entry = record["per_seed"][str(seed)]["verdicts"].get(claim)
        if seed == besides or entry is None:
            continue
        if "verdict" not in entry:
            fail("stability file", f"{record['chapter']} (made before verdicts were pooled)",
                 f"a file with each run's estimates: run `python -m advfair stability {record['chapter']} --refresh "
                 "--into-book`")
        out.append(Verdict.from_json(entry["verdict"]))
    return out


def pooled_verdicts(chapter: str, results: dict, rules: Callable[[dict], list[Verdict]]) -> list[Verdict]:
    """The chapter's decisions for `results`: each claim pooled (`advfair.verdicts.pool`) over this run and the
    other training seeds of the committed stability file when it was made for the same config, with every
    run's own verdict shown beside it. Without such a file, the pool is this run alone."""
    record = load_stability(chapter, results_dir(), results["config"].get("profile", "cpu"))
    record_matches = record is not None and record["config_hash"] == results["config_hash"]
    runs = claim_stability(record, results["config_hash"])
    seed = results["config"]["seed"]
    out = []
    for v in rules(results):
        others = seed_verdicts(record, v.claim, besides=seed) if record_matches else []
        out.append(with_stability(pool([v, *others]), runs.get(v.claim)))
    return out


def verdict_readers(chapter: str, rules: Callable[[dict], list[Verdict]]
                    ) -> tuple[Callable[[dict], list[Verdict]], Callable[[dict], pd.DataFrame]]:
    """A chapter report's `decisions(results)`, its claims' pooled verdicts (`pooled_verdicts`), and
    `verdicts(results)`, the table of those with each run's own verdict beside the pooled one."""
    def decisions(results: dict) -> list[Verdict]:
        return pooled_verdicts(chapter, results, rules)

    def verdicts(results: dict) -> pd.DataFrame:
        return verdict_table(decisions(results))

    return decisions, verdicts


def run_unit(record: dict) -> str:
    """What the runs of a stability file are, for "held in k of n ...": seeds, or seeds and kernel sets."""
    kernels = record.get("kernels", [])
    if not kernels:
        return "seeds"
    return f"runs ({len(record['seeds'])} seeds, and seed {record['seeds'][0]} with {', '.join(kernels)} kernels)"


def stable_claims(record: dict) -> dict[str, str]:
    """{claim: outcome} for the claims whose verdict is the same in every seed."""
    out = {}
    for claim, entry in claim_stability(record, record["config_hash"]).items():
        if len(entry["outcomes"]) == 1 and entry["n"] == len(record["per_seed"]):
            out[claim] = next(iter(entry["outcomes"]))
    return out


def tolerances(record: dict) -> dict[str, float]:
    """{key number: tolerance}: TOLERANCE_SDS seed SDs, at least TOLERANCE_FLOOR."""
    per_seed = list(record["per_seed"].values())
    keys = set.intersection(*(set(seed["key_numbers"]) for seed in per_seed))
    out = {}
    for key in sorted(keys):
        values = np.array([seed["key_numbers"][key] for seed in per_seed], dtype=float)
        values = values[np.isfinite(values)]
        sd = float(values.std(ddof=1)) if len(values) > 1 else 0.0
        out[key] = max(TOLERANCE_SDS * sd, TOLERANCE_FLOOR)
    return out
