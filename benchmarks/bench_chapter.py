"""Wall time of a chapter's pipeline at its defaults (cpu profile).

Default: a fresh, empty model cache (what a new user gets: every model is trained). With
--warm: the shared cache in ADVFAIR_CACHE_DIR (or the library's default) is reused, so only
the evaluation runs once the models are there. Target: chapter <= 300 s on 2 cores.
This takes minutes; that is expected.

    python benchmarks/bench_chapter.py [--chapter NAME] [--warm] [--device auto|cpu|cuda]
"""
from __future__ import annotations

import argparse
import signal
import sys
import tempfile

import torch

from advfair.evaluation.protocol import SCHEMA as EVALUATION_SCHEMA
from advfair.experiments import CHAPTERS
from advfair.cache import default_cache_dir
from advfair.trainer import resolve_device
from benchlib import Timing, configure_data_dir, environment_line, timed

TARGET_SECONDS = 300.0
# Steps of results["seconds"] that time a whole sweep, and the prefixes of the evaluate_* steps recorded
# inside them (their seconds are part of the sweep's, so they are shown under it and counted once).
SWEEPS = {
    "bias_sweep": ("evaluate_bias_", "evaluate_pgd_at_bias"),  # class-wise
    "kappa_sweep": ("evaluate_kappa_",),  # RoBal
    "ablation": ("evaluate_ablation_",),  # RoBal
}


def run_chapter(chapter: str, cache_dir: str | None, device: str) -> tuple[Timing, dict]:
    """Timing of the chapter's run() at the cpu defaults, and its results."""
    ch = CHAPTERS[chapter]
    cfg = ch.make_config("cpu", cache_dir=cache_dir, device=device)
    return timed(lambda: ch.run(cfg), torch.device("cpu"))  # run() returns results on the host: no sync needed


def nested_steps(seconds: dict[str, float]) -> dict[str, list[str]]:
    """{sweep step: [the steps timed inside it]} for the sweeps present in `seconds`."""
    return {sweep: [s for s in seconds if s != sweep and s.startswith(prefixes)]
            for sweep, prefixes in SWEEPS.items() if sweep in seconds}


def evaluation_records(results: dict) -> list[tuple[str, dict]]:
    """(name, record) of every evaluation envelope in the results: results["evaluations"], then the ones
    kept elsewhere (e.g. the class-wise chapter's MNIST evaluation under results["mnist"]["evaluation"],
    RoBal's kappa sweep and ablation), named by their path. A record stored twice (RoBal's kappa = 0 reuses
    the baseline's) is listed once."""
    out, seen = [], []

    def walk(node, path: str) -> None:
        if isinstance(node, dict):
            if node.get("schema") == EVALUATION_SCHEMA:
                if not any(node is s or node == s for s in seen):
                    seen.append(node)
                    out.append((path, node))
                return
            for key, value in node.items():
                walk(value, f"{path}/{key}" if path else str(key))
        elif isinstance(node, list):
            for i, value in enumerate(node):
                walk(value, f"{path}[{i}]")

    for name, record in results["evaluations"].items():
        walk(record, name)
    for key, value in results.items():
        if key not in ("evaluations", "models", "seconds", "config", "environment"):
            walk(value, key)
    return out


def report(timing: Timing, results: dict) -> None:
    seconds = results["seconds"]
    print("\ntraining (results['models'][key]['seconds']['train']):")
    trained = 0.0
    for name, meta in results["models"].items():
        train_s = meta["seconds"]["train"]
        if meta["from_cache"]:
            print(f"  {name:<24}{'cached':>9}  (trained earlier in {train_s:.1f} s; not part of this run)")
        else:
            trained += train_s
            print(f"  {name:<24}{train_s:>8.1f}s")
    print("\nper-step results['seconds'] (each evaluate_* includes its AutoAttack run and its bootstraps; "
          "a sweep includes the evaluations indented under it):")
    nested = nested_steps(seconds)
    inner = {s for steps in nested.values() for s in steps}
    w = max([24, *(len(step) + 2 for step in seconds)])
    evaluated = 0.0
    for step, value in seconds.items():
        if step == "total" or step in inner:
            continue
        evaluated += value
        print(f"  {step:<{w}}{value:>8.1f}s")
        for sub in nested.get(step, []):
            print(f"    {sub:<{w - 2}}{seconds[sub]:>8.1f}s")
    # What no step records: data loading, the untimed analyses (diagnostics, clean validation picks, ...).
    other = seconds["total"] - trained - evaluated
    print(f"  {'other (unrecorded)':<{w}}{other:>8.1f}s   data loading, untimed analyses (diagnostics, clean picks)")
    if other < -1.0:
        print("  note: the recorded steps add up to more than the total: some steps overlap in a way this "
              "benchmark does not know (see SWEEPS in bench_chapter.py)")
    print(f"  {'total':<{w}}{seconds['total']:>8.1f}s   (wall time around run(): {timing.wall:.1f} s)")
    # CPU seconds over wall seconds: ~2 when the run had both cores to itself, less when it shared them.
    print(f"  process CPU time {timing.cpu:.1f} s = {timing.cpu / timing.wall:.2f} cores busy on average")
    print("\nattack seconds within each evaluation (evaluation['seconds']: attack and prediction per attack):")
    for name, ev in evaluation_records(results):
        parts = ", ".join(f"{k} {v:.1f}" for k, v in ev["seconds"].items())
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
