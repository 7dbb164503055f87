"""The evidence tier's training step on CPU: what PyTorch's CPU options buy, against a plain loop, in one run.

The step is the tier's: PGD-AT with a 3-step attack (eps 8/255, alpha 3/255), small_cnn width 16, batch 128, SGD,
crop + flip (`bench_training.py`'s settings), one epoch on 2000 CIFAR-10 images per measurement. Measured,
interleaved and rotated, from identical initial weights:
- the plain loop of `bench_training.py` (the reference: attack in train mode, parameter gradients kept);
- advfair's trainer as the tier runs it (fp32, NCHW);
- the same with the model in channels-last (oneDNN's preferred layout);
- the same under bf16 autocast (the CPU must have AVX512-BF16 or AMX to gain);
- both together;
- the same with the model under `torch.compile` (inductor).

For each it prints images/s, the ratio to the plain loop, whether two runs give bit-identical weights
(reproducibility on one machine), and how far its weights and last loss are from the fp32 trainer's (what the
option changes in the computation). Equal accuracy after a whole training is not measured here: an option that
changes the floats changes every trained model and every cache key, so adopting one means retraining the tier.

    python benchmarks/bench_cpu_options.py [--repeats 3] [--skip-compile]
"""
from __future__ import annotations

import argparse
import contextlib
import copy

import torch
from torch import nn

from advfair.data import class_balanced_indices, load_dataset
from advfair.trainer import train
from bench_training import (BATCH, PER_CLASS, advfair_config, advfair_objective, build_small_cnn,
                            reference_epoch)
from benchlib import Timing, configure_data_dir, environment_line, median, rotated, timed

PLAIN = "plain loop (reference)"


def _variant(channels_last: bool = False, bf16: bool = False, compiled: bool = False):
    """One epoch of advfair's trainer with the options set; returns (final weights, last loss)."""

    def epoch(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[dict, float]:
        if channels_last:
            model = model.to(memory_format=torch.channels_last)
        target = torch.compile(model) if compiled else model
        objective = advfair_objective()

        def step(m: nn.Module, xb: torch.Tensor, yb: torch.Tensor) -> torch.Tensor:
            if channels_last:
                xb = xb.contiguous(memory_format=torch.channels_last)
            autocast = torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()
            with autocast:
                return objective(m, xb, yb)

        history = train(target, step, x, y, advfair_config(BATCH, True), device="cpu")
        return {k: v.detach().clone() for k, v in model.state_dict().items()}, history[-1]["loss"]

    return epoch


VARIANTS = {"advfair trainer (fp32)": _variant(), "+ channels-last": _variant(channels_last=True),
            "+ bf16 autocast": _variant(bf16=True), "+ channels-last + bf16": _variant(channels_last=True, bf16=True),
            "+ torch.compile": _variant(compiled=True)}


def _plain(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[dict, float]:
    loss = reference_epoch(model, x, y, torch.device("cpu"), BATCH, True)
    return {k: v.detach().clone() for k, v in model.state_dict().items()}, loss


def _max_diff(a: dict, b: dict) -> float:
    return max(float((a[k].float() - b[k].float()).abs().max()) for k in a if a[k].is_floating_point())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="interleaved repetitions (medians are reported)")
    parser.add_argument("--skip-compile", action="store_true", help="leave torch.compile out (its first call compiles)")
    args = parser.parse_args()
    configure_data_dir()
    loops = {PLAIN: _plain, **{k: v for k, v in VARIANTS.items() if not (args.skip_compile and "compile" in k)}}
    print(f"the evidence tier's training step on CPU: {PER_CLASS * 10} CIFAR-10 images, batch {BATCH}, PGD-3 AT")
    print(f"environment: {environment_line(torch.device('cpu'))}")
    data = load_dataset("cifar10")
    idx = class_balanced_indices(data.y_train, PER_CLASS, seed=1)
    x, y = data.x_train[idx], data.y_train[idx]
    init = build_small_cnn()
    for name, loop in loops.items():  # warm-up (kernel selection, compilation), not timed
        torch.manual_seed(0)
        loop(copy.deepcopy(init), x[:2 * BATCH], y[:2 * BATCH])
    timings: dict[str, list[Timing]] = {n: [] for n in loops}
    runs: dict[str, list[tuple[dict, float]]] = {n: [] for n in loops}
    for r in range(args.repeats):
        for name in rotated(list(loops), r):
            torch.manual_seed(0)
            t, out = timed(lambda: loops[name](copy.deepcopy(init), x, y), torch.device("cpu"))
            timings[name].append(t)
            runs[name].append(out)
        print(f"  repetition {r + 1} done", flush=True)
    fp32 = runs["advfair trainer (fp32)"][0][0]
    plain_wall = timings[PLAIN]
    print(f"\n{'loop':<28}{'images/s':>10}{'vs plain':>10}{'bit-reproducible':>18}{'max |w - fp32 w|':>18}"
          f"{'last loss':>11}")
    for name in loops:
        speed = median([len(x) / t.wall for t in timings[name]])
        ratio = median([p.wall / t.wall for t, p in zip(timings[name], plain_wall)])
        repro = all(_max_diff(runs[name][0][0], w) == 0 for w, _ in runs[name][1:]) if args.repeats > 1 else None
        diff = "–" if name == PLAIN else f"{_max_diff(runs[name][0][0], fp32):.2e}"
        print(f"{name:<28}{speed:>10.0f}{ratio:>9.2f}x{str(repro):>18}{diff:>18}{runs[name][0][1]:>11.3f}")
    print("\ngoal of the evidence-tier issue: >= 2x the plain loop at equal accuracy; a ratio is reported, not judged")


if __name__ == "__main__":
    main()
