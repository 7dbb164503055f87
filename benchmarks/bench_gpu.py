"""PGD-10 adversarial training of PreAct ResNet-18 on CIFAR-10: seconds per epoch, advfair's trainer against a
plain fp32 loop measured in the same run.

- The plain loop is what most tutorials write: fp32, NCHW, each batch moved to the device and augmented (crop +
  flip) on the host, PGD-10 with the model in train mode and parameter gradients thrown away.
- advfair is `trainer.train` with the book's PGD-AT objective. On CUDA it runs under bf16 autocast with a
  channels-last model, the whole training set on the device and the augmentation there too; `--compile` adds
  `torch.compile` of the model.

Both train from the same initial weights (eps 8/255, alpha 2/255, batch 128, SGD lr 0.1). Each is warmed up on
two batches, then timed on `--batches` batches; an epoch of full CIFAR-10 is 391 batches, and the epoch time is
the measured time per batch times 391. Anchors (quoted, per epoch): FastAT_Benchmark's 64-74 s for PGD-10
ResNet-18 in fp32; about 1.2 s is an H200's FLOP limit; the goal is <= 10 s. A report, not a test.

    python benchmarks/bench_gpu.py [--device auto|cpu|cuda] [--batches 20] [--compile] [--smoke] [--out FILE]

`--smoke` (what CI runs on the CPU) takes 2 batches of 8 images: it shows the script works, not a speed.
"""
from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from advfair.data import augment_crop_flip, load_dataset, to_float
from advfair.models import build_model
from advfair.objectives import make_objective
from advfair.trainer import TrainConfig, resolve_device, train
from benchlib import configure_data_dir, environment_line, textbook_pgd_steps, timed

EPS, ALPHA, STEPS, LR, SEED = 8 / 255, 2 / 255, 10, 0.1, 0
EPOCH_BATCHES = math.ceil(50_000 / 128)
ANCHORS = {"FastAT_Benchmark fp32 (quoted)": "64-74 s", "H200 FLOP limit (estimate)": "1.2 s", "goal": "10 s"}


def fresh_model() -> nn.Module:
    torch.manual_seed(SEED)
    return build_model("preact_resnet18", dataset="cifar10", num_classes=10, in_channels=3)


def plain_loop(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch: int, device: torch.device) -> None:
    """The tutorial loop, fp32 and NCHW, data on the host."""
    model.to(device).train()
    optimizer = torch.optim.SGD(model.parameters(), lr=LR, momentum=0.9, weight_decay=5e-4)
    generator = torch.Generator().manual_seed(SEED)
    for i in range(0, len(x), batch):
        xb = augment_crop_flip(to_float(x[i:i + batch]), generator=generator).to(device)
        yb = y[i:i + batch].to(device)
        start = (xb + EPS * (2 * torch.rand(xb.shape, device=device) - 1)).clamp(0, 1)
        x_adv = textbook_pgd_steps(model, xb, yb, start, eps=EPS, alpha=ALPHA, steps=STEPS, zero_grad=False)
        optimizer.zero_grad(set_to_none=True)
        F.cross_entropy(model(x_adv), yb).backward()
        optimizer.step()


def advfair_loop(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch: int, device: torch.device) -> None:
    objective = make_objective("pgd_at", eps=EPS, alpha=ALPHA, steps=STEPS)
    train(model, objective, x, y, TrainConfig(epochs=1, batch_size=batch, lr=LR, schedule="constant"), device=device)


def epoch_seconds(loop, x: torch.Tensor, y: torch.Tensor, batch: int, batches: int, device: torch.device,
                  compile_model: bool = False) -> float:
    model = fresh_model().to(device)
    if compile_model:
        model = torch.compile(model)
    loop(model, x[:2 * batch], y[:2 * batch], batch, device)  # warm-up: kernels chosen, graphs compiled
    timing, _ = timed(lambda: loop(model, x[:batches * batch], y[:batches * batch], batch, device), device)
    return timing.wall / batches * EPOCH_BATCHES


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--compile", action="store_true", help="also time advfair with torch.compile")
    parser.add_argument("--smoke", action="store_true", help="2 batches of 8 images: the script runs, no speed")
    parser.add_argument("--out", type=Path, help="write the results JSON here")
    args = parser.parse_args(argv)
    configure_data_dir()
    device = resolve_device(args.device)
    batch, batches = (8, 2) if args.smoke else (128, args.batches)
    data = load_dataset("cifar10")
    x, y = data.x_train[:(batches + 2) * batch], data.y_train[:(batches + 2) * batch]
    print(environment_line(device))
    results = {"device": str(device), "batch": batch, "batches": batches, "smoke": args.smoke,
               "epoch_seconds": {"plain fp32 loop": epoch_seconds(plain_loop, x, y, batch, batches, device),
                                 "advfair": epoch_seconds(advfair_loop, x, y, batch, batches, device)}}
    if args.compile:
        results["epoch_seconds"]["advfair + torch.compile"] = epoch_seconds(advfair_loop, x, y, batch, batches,
                                                                            device, compile_model=True)
    reference = results["epoch_seconds"]["plain fp32 loop"]
    for name, seconds in results["epoch_seconds"].items():
        print(f"{name:>26}: {seconds:8.1f} s per epoch (estimated from {batches} batches of {batch}), "
              f"{reference / seconds:5.2f}x the plain loop")
    print("anchors per epoch: " + "; ".join(f"{k} {v}" for k, v in ANCHORS.items()))
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({**results, "anchors": ANCHORS, "environment": environment_line(device)},
                                       indent=1) + "\n")
    return results


if __name__ == "__main__":
    main()
