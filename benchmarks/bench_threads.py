"""OpenMP thread settings on a quiet machine and with one core taken by another job.

A laptop always has something else running. With torch's default OpenMP settings, threads that wait for each
other at the end of every parallel region stall whenever one of them is descheduled by another process, and
the loss of one core turns into a many-fold slowdown of training. This benchmark trains the class-wise
chapter's cpu-profile PGD-AT model (advfair's trainer, its objective and per-step settings) for one short
epoch under each setting, once on a quiet machine and once beside a pure-Python busy loop that takes one
core, every run in a fresh process (libgomp reads its settings when torch loads it).

It prints images/s and two ratios per setting: quiet speed against the default setting's quiet speed
(measured in the same run), and its own busy speed against its own quiet speed (0.5 is the ideal when one
of two cores is lost). The book uses `advfair.THREAD_SETTINGS` (set in `advfair/__init__.py`, and by the
Makefile): a bounded spin count. No setting here changes a result: the thread count stays the same, and
spinning only decides how a thread waits.

    python benchmarks/bench_threads.py [--images 480] [--repeats 2]
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
# (label, environment) of each setting; "default" removes what advfair sets, to measure torch's own default.
SETTINGS = {
    "default (libgomp's spin)": {"GOMP_SPINCOUNT": None, "OMP_WAIT_POLICY": None},
    "OMP_WAIT_POLICY=PASSIVE": {"GOMP_SPINCOUNT": None, "OMP_WAIT_POLICY": "PASSIVE"},
    "GOMP_SPINCOUNT=1000 (advfair)": {"GOMP_SPINCOUNT": "1000", "OMP_WAIT_POLICY": None},
    "GOMP_SPINCOUNT=100000": {"GOMP_SPINCOUNT": "100000", "OMP_WAIT_POLICY": None},
}
BUSY_LOOP = "while True: pass"

WORKER = r"""
import dataclasses, sys, time, torch
sys.path.insert(0, sys.argv[2])
from benchlib import configure_data_dir
from advfair.data import class_balanced_indices, load_dataset
from advfair.experiments.classwise import make_config, methods
from advfair.models import build_model
from advfair.trainer import train
configure_data_dir()
cfg = make_config("cpu")
data = load_dataset("cifar10")
idx = class_balanced_indices(data.y_train, int(sys.argv[1]) // 10, seed=1)
track = dataclasses.replace(methods.cifar_track(cfg), epochs=1)
train_cfg = methods.train_config(cfg, track)
torch.manual_seed(0)
model = build_model(cfg.model, dataset="cifar10", num_classes=10, in_channels=3, width=cfg.width)
train(model, methods.pgd_at(track), data.x_train[idx[:2 * train_cfg.batch_size]], data.y_train[idx[:2 * train_cfg.batch_size]], train_cfg)
started = time.perf_counter()
train(model, methods.pgd_at(track), data.x_train[idx], data.y_train[idx], train_cfg)
print(len(idx) / (time.perf_counter() - started), torch.get_num_threads())
"""


def environment_for(setting: dict[str, str | None]) -> dict[str, str]:
    env = dict(os.environ)
    for key, value in setting.items():
        env.pop(key, None)
        if value is not None:
            env[key] = value
    return env


def measure(setting: dict[str, str | None], images: int, busy: bool) -> tuple[float, int]:
    """Images/s of one short training epoch in a fresh process (beside a busy loop if `busy`), and its threads."""
    loop = subprocess.Popen([sys.executable, "-c", BUSY_LOOP]) if busy else None
    try:
        out = subprocess.run([sys.executable, "-c", WORKER, str(images), str(HERE)], env=environment_for(setting),
                             capture_output=True, text=True, check=True).stdout.split()
    finally:
        if loop is not None:
            loop.kill()
            loop.wait()
    return float(out[0]), int(out[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=480, help="training images of the timed epoch")
    parser.add_argument("--repeats", type=int, default=2, help="rounds over all settings (medians are reported)")
    args = parser.parse_args()
    load = ", ".join(f"{v:.2f}" for v in os.getloadavg())
    print(f"OpenMP settings: one epoch of the class-wise cpu-profile PGD-AT training on {args.images} images, "
          f"{os.cpu_count()} cores, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}, load {load}")
    speeds: dict[tuple[str, bool], list[float]] = {}
    threads = {}
    for r in range(args.repeats):
        for busy in (False, True):
            for label, setting in SETTINGS.items():
                started = time.perf_counter()
                speed, threads[label] = measure(setting, args.images, busy)
                speeds.setdefault((label, busy), []).append(speed)
                print(f"  round {r + 1}, {'busy' if busy else 'quiet'}, {label}: {speed:.0f} images/s "
                      f"({time.perf_counter() - started:.0f} s)", flush=True)
    med = {k: statistics.median(v) for k, v in speeds.items()}
    reference = med[(next(iter(SETTINGS)), False)]
    print(f"\n{'setting':<32}{'threads':>8}{'quiet img/s':>13}{'busy img/s':>12}{'quiet vs default':>18}"
          f"{'busy vs own quiet':>19}")
    for label in SETTINGS:
        quiet, busy = med[(label, False)], med[(label, True)]
        print(f"{label:<32}{threads[label]:>8}{quiet:>13.0f}{busy:>12.0f}{quiet / reference:>17.2f}x"
              f"{busy / quiet:>18.2f}x")
    print("goal: quiet vs default near 1, busy vs own quiet near 0.5 (one of two cores lost); no target is judged")


if __name__ == "__main__":
    main()
