"""Run every benchmark, each in its own subprocess, and print their reports (`make bench`).

A report, not a test: missed targets do not change the exit status; a benchmark that crashes does.
The last one, bench_stability.py, only reads the chapters' stability files (seconds) and always runs.
Each runs in a fresh process so that one benchmark's allocations, threads and warm caches do not
bleed into the next one's timings.

    python benchmarks/run_all.py [--skip-chapter] [--warm-chapter] [--device auto|cpu|cuda]
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

from advfair.experiments import CHAPTERS

HERE = Path(__file__).resolve().parent


def run_one(script: str, args: list[str]) -> int:
    """Run benchmarks/<script> with the current interpreter; its output goes straight to ours."""
    command = [sys.executable, str(HERE / script), *args]
    print(f"\n=== {script} {' '.join(args)}".rstrip(), flush=True)
    started = time.perf_counter()
    code = subprocess.run(command, cwd=HERE.parent).returncode
    print(f"=== {script}: exit {code}, {time.perf_counter() - started:.0f} s", flush=True)
    return code


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-chapter", action="store_true", help="skip the chapter wall-time benchmarks (minutes each)")
    parser.add_argument("--warm-chapter", action="store_true", help="run the chapter benchmark with the shared cache")
    parser.add_argument("--device", default="auto",
                        help="passed to every timing benchmark (not bench_stability.py): auto, cpu or cuda")
    args = parser.parse_args()
    device = ["--device", args.device]
    plan = [("bench_pgd_eval.py", device), ("bench_training.py", device), ("bench_cpu_options.py", []),
            ("bench_threads.py", [])]
    if not args.skip_chapter:
        for chapter in CHAPTERS:
            plan.append(("bench_chapter.py", device + ["--chapter", chapter] + (["--warm"] if args.warm_chapter else [])))
    plan.append(("bench_stability.py", []))  # reads the stability files: cheap, always run
    failed = [script for script, script_args in plan if run_one(script, script_args) != 0]
    if failed:
        print(f"\ncrashed: {', '.join(failed)}", file=sys.stderr)
        return 1
    print("\nall benchmarks ran (targets are reported above, not enforced)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
