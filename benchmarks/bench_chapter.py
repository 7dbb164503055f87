"""Wall time of a chapter's pipeline at its defaults (cpu profile).

Default: a fresh, empty model cache (what a new user gets: every model is trained). With
--warm: the shared cache in ADVFAIR_CACHE_DIR (or the library's default) is reused, so only
the evaluation runs once the models are there. Target: chapter <= 300 s on 2 cores.
This takes minutes; that is expected.

    python benchmarks/bench_chapter.py [--chapter classwise|robal] [--warm] [--device auto|cpu|cuda]
"""
from __future__ import annotations

import argparse
import signal
import sys
import tempfile

import torch

from advfair.experiments import CHAPTERS
from advfair.experiments.cache import default_cache_dir
from advfair.trainer import resolve_device
from benchlib import Timing, configure_data_dir, environment_line, timed

TARGET_SECONDS = 300.0


def run_chapter(chapter: str, cache_dir: str | None, device: str) -> tuple[Timing, dict]:
    """Timing of the chapter's run() at the cpu defaults, and its results."""
    make_config, run = CHAPTERS[chapter]
    cfg = make_config("cpu", cache_dir=cache_dir, device=device)
    return timed(lambda: run(cfg), torch.device("cpu"))  # run() returns results on the host: no sync needed


def model_rows(results: dict) -> list[tuple[str, dict]]:
    rows = [(name, meta) for name, meta in results["models"].items()]
    if "mnist" in results:
        rows.append(("mnist_pgd_at", results["mnist"]["model"]))
    return rows


def report(timing: Timing, results: dict) -> None:
    seconds = results["seconds"]
    print("\ntraining (train_seconds per model):")
    trained = 0.0
    for name, meta in model_rows(results):
        if meta["from_cache"]:
            earlier = meta["train_seconds"]
            print(f"  {name:<24}{'cached':>9}  (trained earlier in {earlier:.1f} s; not part of this run)")
        else:
            trained += meta["train_seconds"]
            print(f"  {name:<24}{meta['train_seconds']:>8.1f}s")
    print("\nper-step results['seconds'] (each evaluate_* includes its AutoAttack run):")
    evaluated = 0.0
    for step, value in seconds.items():
        if step != "total":
            evaluated += value
            print(f"  {step:<24}{value:>8.1f}s")
    # What no step records: data loading, validation sweeps, bootstraps.
    other = seconds["total"] - trained - evaluated
    print(f"  {'other (unrecorded)':<24}{other:>8.1f}s   validation sweeps, bootstraps, data loading")
    print(f"  {'total':<24}{seconds['total']:>8.1f}s   (wall time around run(): {timing.wall:.1f} s)")
    # CPU seconds over wall seconds: ~2 when the run had both cores to itself, less when it shared them.
    print(f"  process CPU time {timing.cpu:.1f} s = {timing.cpu / timing.wall:.2f} cores busy on average")
    print("\nattack seconds within each evaluation:")
    for name, ev in results["evaluations"].items():
        parts = ", ".join(f"{k} {v:.1f}" for k, v in ev["attack_seconds"].items())
        print(f"  {name}: {parts}")
    wall = timing.wall
    holds = wall <= TARGET_SECONDS
    print(f"\ntarget: chapter <= {TARGET_SECONDS:.0f} s on 2 cores: {'MET' if holds else 'NOT MET'} "
          f"({wall:.1f} s, ratio seconds/{TARGET_SECONDS:.0f} = {wall / TARGET_SECONDS:.2f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chapter", choices=sorted(CHAPTERS), default="classwise")
    parser.add_argument("--warm", action="store_true",
                        help="reuse the shared model cache (ADVFAIR_CACHE_DIR) instead of a fresh empty one")
    parser.add_argument("--device", default="auto", help="auto (CUDA if present), cpu or cuda")
    args = parser.parse_args()
    # A terminated run (SIGTERM) should still delete its temporary cache: exit through Python.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    configure_data_dir()
    print(f"{args.chapter} chapter at the cpu defaults, {'warm' if args.warm else 'cold'} model cache")
    print(f"environment: {environment_line(resolve_device(args.device))}")
    if args.warm:
        print(f"model cache: {default_cache_dir()} (reused)", flush=True)
        timing, results = run_chapter(args.chapter, None, args.device)
    else:
        with tempfile.TemporaryDirectory(prefix="advfair-bench-cache-") as cache_dir:
            print(f"model cache: {cache_dir} (fresh, deleted afterwards)", flush=True)
            timing, results = run_chapter(args.chapter, cache_dir, args.device)
    report(timing, results)


if __name__ == "__main__":
    main()
