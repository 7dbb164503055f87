"""PGD-AT training throughput: advfair's trainer against a plain reference training loop.

Both train the chapter's CPU model (small_cnn, width 16) from the same initial weights for one
epoch on 2000 CIFAR-10 training images, batch 128, PGD-3 (eps 8/255, alpha 3/255), SGD with
lr 0.05, momentum 0.9, weight decay 5e-4, random crop + flip. The reference is what naive code
does: the attack runs with the model in train mode and computes parameter gradients it throws
away. No target: images/s and the ratio are reported.

    python benchmarks/bench_training.py [--device auto|cpu|cuda] [--repeats 3] [--batch-size 128] [--no-augment]
"""
from __future__ import annotations

import argparse
import copy

import torch
import torch.nn.functional as F
from torch import nn

from advfair.data import class_balanced_indices, load_dataset
from advfair.experiments.classwise import make_config, methods
from advfair.models import build_model
from advfair.objectives import make_objective
from advfair.trainer import TrainConfig, resolve_device, train
from benchlib import Timing, configure_data_dir, environment_line, median, rotated, textbook_pgd_steps, timed

EPS = 8 / 255
ALPHA = 3 / 255
STEPS = 3
BATCH = 128  # the usual PGD-AT batch; the chapter's cpu profile trains at 32 (--batch-size 32 --no-augment)
LR = 0.05
MOMENTUM = 0.9
WEIGHT_DECAY = 5e-4
PER_CLASS = 200  # 2000 images
PAD = 4
SEED = 0
REFERENCE = "reference (plain loop)"
OURS = "advfair trainer"


def build_small_cnn() -> nn.Module:
    torch.manual_seed(SEED)  # same initial weights for every run of both loops
    return build_model("small_cnn", dataset="cifar10", num_classes=10, in_channels=3, width=16)


# ----- the reference: a training loop as most tutorials write it -----------------------------------


def textbook_augment(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Zero-padded random crop and horizontal flip, one image at a time (what a per-sample
    torchvision transform does). Cheap next to the attack, but part of the work of an epoch."""
    n, _, h, w = x.shape
    padded = F.pad(x, (PAD,) * 4)
    offsets = torch.randint(0, 2 * PAD + 1, (n, 2), generator=generator).tolist()
    flips = (torch.rand(n, generator=generator) < 0.5).tolist()
    out = torch.empty_like(x)
    for i, ((dy, dx), flip) in enumerate(zip(offsets, flips)):
        crop = padded[i, :, dy:dy + h, dx:dx + w]
        out[i] = crop.flip(-1) if flip else crop
    return out


def textbook_pgd_train_mode(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """PGD-3 left in train mode: BN uses batch statistics (and updates its running ones) during the
    attack, and loss.backward() computes parameter gradients too; both are common in naive code."""
    x_adv = (x + torch.empty_like(x).uniform_(-EPS, EPS)).clamp(0, 1)
    return textbook_pgd_steps(model, x, y, x_adv, eps=EPS, alpha=ALPHA, steps=STEPS, zero_grad=False)


def reference_epoch(model: nn.Module, x: torch.Tensor, y: torch.Tensor, device: torch.device, batch_size: int,
                    augment: bool) -> float:
    """One epoch of the plain loop; returns the mean training loss."""
    model.to(device).train()
    optimizer = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM, weight_decay=WEIGHT_DECAY)
    generator = torch.Generator().manual_seed(SEED)
    x_float, y_dev = x.to(device).float() / 255, y.to(device)
    order = torch.randperm(len(x), generator=generator).to(device)
    total, seen = 0.0, 0
    for start in range(0, len(x), batch_size):
        idx = order[start:start + batch_size]
        xb, yb = x_float[idx], y_dev[idx]
        if augment:
            xb = textbook_augment(xb, generator)
        x_adv = textbook_pgd_train_mode(model, xb, yb)
        optimizer.zero_grad()  # drop the parameter gradients the attack accumulated
        loss = F.cross_entropy(model(x_adv), yb)
        loss.backward()
        optimizer.step()
        total += loss.item() * len(xb)
        seen += len(xb)
    return total / seen


# ----- advfair's trainer, configured like the chapter ----------------------------------------------


def advfair_objective():
    """The pgd_at objective (an `advfair.objectives.Objective`) with this benchmark's attack."""
    return make_objective("pgd_at", eps=EPS, alpha=ALPHA, steps=STEPS)


def advfair_config(batch_size: int, augment: bool) -> TrainConfig:
    return TrainConfig(epochs=1, batch_size=batch_size, lr=LR, momentum=MOMENTUM, weight_decay=WEIGHT_DECAY,
                       augment=augment, seed=SEED)


def advfair_epoch(model: nn.Module, x: torch.Tensor, y: torch.Tensor, device: torch.device, batch_size: int,
                  augment: bool) -> dict:
    """One epoch of advfair.trainer.train with the pgd_at objective; returns the epoch's history record."""
    return train(model, advfair_objective(), x, y, advfair_config(batch_size, augment), device=device)[0]


def chapter_comparison(batch_size: int, augment: bool) -> str:
    """How these settings compare with the class-wise chapter's cpu profile (its PGD-AT objective and the
    per-step training settings; the chapter's epochs, schedule and training-set size are not what is timed)."""
    cfg = make_config("cpu")
    ours, chapter = advfair_config(batch_size, augment).to_dict(), methods.train_config(cfg).to_dict()
    differ = [f"{k} {ours[k]} (chapter {chapter[k]})" for k in ("batch_size", "augment", "lr", "momentum", "weight_decay")
              if ours[k] != chapter[k]]
    objective, chapter_objective = advfair_objective().cache_spec(), methods.pgd_at(cfg).cache_spec()
    if objective != chapter_objective:
        differ.append(f"objective {objective} (chapter {chapter_objective})")
    head = f"objective {objective['name']} v{objective['version']}; vs the class-wise chapter's cpu profile: "
    return head + ("same per-step settings" if not differ else "differs in " + ", ".join(differ))


def measure(init: nn.Module, x: torch.Tensor, y: torch.Tensor, device: torch.device, repeats: int,
            batch_size: int, augment: bool) -> tuple[dict[str, list[Timing]], list[dict], dict[str, float]]:
    """Timings of both loops over `repeats` interleaved rounds (order rotating), the trainer's own
    history records, and the last mean training loss of each (a sanity check that both trained)."""
    timings: dict[str, list[Timing]] = {n: [] for n in (REFERENCE, OURS)}
    history: list[dict] = []
    loss: dict[str, float] = {}
    # Warm-up: a few batches of each, so one-off costs (kernel selection, allocations) are not timed.
    warm = slice(0, 2 * batch_size)
    reference_epoch(copy.deepcopy(init), x[warm], y[warm], device, batch_size, augment)
    advfair_epoch(copy.deepcopy(init), x[warm], y[warm], device, batch_size, augment)
    for r in range(repeats):
        line = []
        for name in rotated([REFERENCE, OURS], r):
            model = copy.deepcopy(init)  # both start from identical weights every round
            torch.manual_seed(SEED)
            if name == OURS:
                t, record = timed(lambda: advfair_epoch(model, x, y, device, batch_size, augment), device)
                history.append(record)
                loss[name] = record["loss"]
                line.append(f"{name} {len(x) / t.wall:.0f} (history: {record['images_per_second']:.0f})")
            else:
                t, loss[name] = timed(lambda: reference_epoch(model, x, y, device, batch_size, augment), device)
                line.append(f"{name} {len(x) / t.wall:.0f}")
            timings[name].append(t)
        print(f"  repetition {r + 1}: " + ", ".join(line) + " images/s", flush=True)
    return timings, history, loss


def report(timings: dict[str, list[Timing]], history: list[dict], loss: dict[str, float], n: int) -> None:
    # Ratio per repetition (both loops measured moments apart), then the median.
    ratio = median([r.wall / t.wall for t, r in zip(timings[OURS], timings[REFERENCE])])
    cpu_ratio = median([r.cpu / t.cpu for t, r in zip(timings[OURS], timings[REFERENCE])])
    print(f"\n{'loop':<26}{'images/s':>10}{'ratio':>8}{'ratio (CPU time)':>18}{'train loss':>12}")
    for name, (wall, cpu) in ((REFERENCE, (1.0, 1.0)), (OURS, (ratio, cpu_ratio))):
        speed = median([n / t.wall for t in timings[name]])
        print(f"{name:<26}{speed:>10.0f}{wall:>7.2f}x{cpu:>17.2f}x{loss[name]:>12.3f}")
    per_epoch = ", ".join(f"{h['images_per_second']:.0f}" for h in history)
    print(f"\nadvfair trainer history, images_per_second per epoch (one epoch per repetition): {per_epoch}; "
          f"median {median([h['images_per_second'] for h in history]):.0f} "
          "(the trainer's own clock: the epoch loop only, without model/optimizer setup)")
    print("no target: training throughput is reported, not judged")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto", help="auto (CUDA if present), cpu or cuda")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved repetitions (medians are reported)")
    parser.add_argument("--batch-size", type=int, default=BATCH, help=f"training batch size (default {BATCH})")
    parser.add_argument("--augment", action=argparse.BooleanOptionalAction, default=True,
                        help="random crop + flip in both loops (default on; the chapter's cpu profile has it off)")
    args = parser.parse_args()
    configure_data_dir()
    device = resolve_device(args.device)
    print(f"PGD-AT training throughput: small_cnn w16, {PER_CLASS * 10} CIFAR-10 images, 1 epoch, "
          f"batch {args.batch_size}, PGD-{STEPS} eps 8/255 alpha 3/255, augmentation {'on' if args.augment else 'off'}")
    print(chapter_comparison(args.batch_size, args.augment))
    print(f"environment: {environment_line(device)}")
    data = load_dataset("cifar10")
    idx = class_balanced_indices(data.y_train, PER_CLASS, seed=1)
    timings, history, loss = measure(build_small_cnn(), data.x_train[idx], data.y_train[idx], device, args.repeats,
                                     args.batch_size, args.augment)
    report(timings, history, loss, len(idx))


if __name__ == "__main__":
    main()
