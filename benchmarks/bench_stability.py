"""Wall time of each chapter's seed-stability run, read from its committed stability file.

`python -m advfair stability CHAPTER --seeds ...` runs a chapter's pipeline once per training seed and
writes book/results/<chapter>_stability.json. This prints, for every chapter in advfair.experiments.CHAPTERS,
the seeds, the wall time of the whole stability run, each seed's pipeline seconds, the machine it ran on and
whether the file is current (its config hash is that of the chapter's cpu defaults). Nothing is run and
nothing is judged: a missing file is reported as missing and the exit status is 0.

    python benchmarks/bench_stability.py [--results-dir book/results]
"""
from __future__ import annotations

import argparse
from pathlib import Path

from advfair.experiments import CHAPTERS
from advfair.provenance import machine_kind
from advfair.experiments.stability import load_stability, stability_path
from benchlib import REPO_ROOT

DEFAULT_RESULTS = REPO_ROOT / "book" / "results"


def machine_line(machine: dict) -> str:
    keys = ("cpu", "machine", "aten_capability", "onednn_max_isa", "threads", "torch", "numpy")
    return ", ".join(f"{k} {machine[k]}" for k in keys if machine.get(k) is not None) or "not recorded"


def report(name: str, directory: Path) -> None:
    chapter = CHAPTERS[name]
    path = stability_path(name, directory)
    print(f"\n{name}: {path}")
    try:
        record = load_stability(name, directory)
    except (OSError, ValueError) as error:  # unreadable JSON or another schema (ConfigError is a ValueError)
        print(f"  unreadable: {error}")
        return
    if record is None:
        print(f"  no stability file (make it with: python -m advfair stability {name} --seeds 0 1 2)")
        return
    seeds = record.get("seeds", [])
    per_seed = record.get("per_seed", {})
    wall = record.get("seconds", {}).get("wall")
    print(f"  seeds: {', '.join(str(s) for s in seeds)} (profile {record.get('profile', '?')})")
    pipeline = {str(s): per_seed[str(s)]["seconds"] for s in seeds if str(s) in per_seed}
    for seed, seconds in pipeline.items():
        print(f"  seed {seed:<4} pipeline {seconds:>8.1f}s")
    if wall is None:
        print("  wall time of the stability run: not recorded")
    else:
        summed = sum(pipeline.values())
        mean = f", {summed / len(pipeline):.1f} s per seed" if pipeline else ""
        print(f"  wall time of the stability run: {wall:.1f} s (pipelines {summed:.1f} s{mean}; "
              f"outside the pipelines' own clocks {wall - summed:.1f} s)")
    machine = record.get("machine", {})
    same = "same machine kind as this one" if machine == machine_kind() else "another machine kind than this one"
    print(f"  machine: {machine_line(machine)} ({same})")
    commit, date = record.get("commit"), record.get("environment", {}).get("date")
    print(f"  commit {commit or 'unknown'}, date {date or 'unknown'}")
    current_hash = chapter.make_config("cpu").config_hash()
    if record.get("config_hash") == current_hash:
        print(f"  current: yes (config hash {current_hash} = the cpu defaults')")
    else:
        print(f"  current: no, stale (config hash {record.get('config_hash')}, the cpu defaults' is {current_hash})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results-dir", type=Path, default=DEFAULT_RESULTS,
                        help=f"where the <chapter>_stability.json files are (default {DEFAULT_RESULTS})")
    args = parser.parse_args()
    print("seed-stability runs, per chapter (a report of the committed files; nothing is run)")
    for name in CHAPTERS:
        report(name, args.results_dir)


if __name__ == "__main__":
    main()
