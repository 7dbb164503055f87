"""PGD-10 evaluation throughput: advfair against a plain textbook PGD loop, same model and data.

Target: advfair (early_stop=True, as the chapter evaluates) >= 1.5x the images/s of the textbook
loop, with robust accuracies (AutoAttack convention: correct on clean and adversarial) within
0.5 points. advfair with early_stop=False is timed too, to separate the two sources of speed:
input-only gradients (both advfair rows) and per-sample early exit (the early_stop row only).

    python benchmarks/bench_pgd_eval.py [--device auto|cpu|cuda] [--repeats 3] [--model auto|brief|chapter]
"""
from __future__ import annotations

import argparse
import cProfile
import io
import json
import pstats
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from advfair.attacks import pgd
from advfair.data import Dataset, class_balanced_indices, load_dataset, to_float
from advfair.evaluation import adversarial_predictions, predict
from advfair.experiments.cache import ModelCache
from advfair.experiments.classwise import make_config
from advfair.models import build_model
from advfair.objectives import make_objective
from advfair.trainer import TrainConfig, resolve_device, train
from benchlib import Timing, configure_data_dir, environment_line, median, rotated, textbook_pgd_steps, timed

EPS = 8 / 255
ALPHA = 2 / 255
STEPS = 10
BATCH = 500
TEST_PER_CLASS = 100
TEST_SEED = 2  # the chapter's test split uses seed + 2 with seed 0: the same 1000 points
START_SEED = 0
TARGET_RATIO = 1.5
TARGET_ACC_POINTS = 0.5

# (model, x, y, generator) -> labels predicted on the adversarial points of one batch.
Method = Callable[[nn.Module, torch.Tensor, torch.Tensor, torch.Generator], torch.Tensor]


def build_small_cnn() -> nn.Module:
    torch.manual_seed(0)  # the same initial weights on every run
    return build_model("small_cnn", dataset="cifar10", num_classes=10, in_channels=3, width=16)


def train_briefly(data: Dataset, device: torch.device) -> tuple[nn.Module, str]:
    """PGD-AT (PGD-3, eps 8/255, alpha 3/255) for 2 epochs on 1000 training images (100 per class).

    Batch 32, not the trainer's default 128: 2 epochs of 1000 images at batch 128 are only 16 SGD
    steps and leave the model near chance (~13% clean accuracy), where almost every point is
    misclassified before the attack starts and early exit would look unrealistically good. At
    batch 32 (63 steps) the model reaches roughly 25% clean / 18% PGD-10 robust accuracy. The
    result goes into the shared model cache (ADVFAIR_CACHE_DIR), so only the first run trains.
    """
    per_class, seed = 100, 1
    attack = {"eps": 8 / 255, "alpha": 3 / 255, "steps": 3}
    cfg = TrainConfig(epochs=2, batch_size=32, lr=0.05)
    idx = class_balanced_indices(data.y_train, per_class, seed=seed)
    spec = {"benchmark": "bench_pgd_eval", "data": {"dataset": "cifar10", "train_per_class": per_class, "seed": seed},
            "model": {"name": "small_cnn", "width": 16}, "objective": "pgd_at", "objective_params": attack,
            "train": cfg.to_dict()}
    objective = make_objective("pgd_at", **attack)

    def run(model: nn.Module, checkpoint: Path) -> list[dict]:
        return train(model, objective, data.x_train[idx], data.y_train[idx], cfg, device=device, checkpoint=checkpoint)

    model, meta = ModelCache().get_or_train(spec, build_small_cnn(), run)
    how = "from the model cache" if meta["from_cache"] else f"trained now in {meta['train_seconds']:.0f} s"
    return model, f"small_cnn w16, PGD-AT 2 epochs on 1000 images, batch 32 ({how})"


def chapter_model_path() -> Path | None:
    """The chapter's cached PGD-AT model at its current cpu defaults, if the model cache has it
    (ADVFAIR_CACHE_DIR, else the library's default; `make book` fills it).

    The cache is searched by the fields of each entry's stored spec rather than by rebuilding the
    chapter's key: the key covers every training setting and changes whenever the chapter's
    profile gains or changes one, while these fields identify the model well enough here.
    """
    cfg = make_config("cpu")
    wanted = {
        "data": {"dataset": cfg.dataset, "seed": cfg.seed, "train_per_class": cfg.train_per_class,
                 "val_per_class": cfg.val_per_class},
        "model": {"name": cfg.model, "width": cfg.width},
        "objective_params": {"eps": cfg.eps, "alpha": cfg.train_alpha, "steps": cfg.train_steps},
        "train": {"epochs": cfg.epochs, "batch_size": cfg.batch_size, "lr": cfg.lr, "seed": cfg.seed},
    }
    root = ModelCache().root
    metas = sorted(root.glob("*.json"), key=lambda f: f.stat().st_mtime, reverse=True) if root.is_dir() else []
    for meta_path in metas:  # newest first
        try:
            spec = json.loads(meta_path.read_text())["spec"]
        except (OSError, ValueError, KeyError, TypeError):
            continue  # not a model entry of this cache
        if not isinstance(spec, dict) or spec.get("objective") != "pgd_at":
            continue
        if all(isinstance(spec.get(part), dict) and all(spec[part].get(k) == v for k, v in fields.items())
               for part, fields in wanted.items()):
            weights = meta_path.with_suffix(".pt")
            if weights.exists():
                return weights
    return None


def get_model(choice: str, data: Dataset, device: torch.device) -> tuple[nn.Module, str]:
    path = chapter_model_path() if choice in ("auto", "chapter") else None
    if choice == "chapter" and path is None:
        raise SystemExit("--model chapter: the chapter's PGD-AT model is not in ADVFAIR_CACHE_DIR "
                         "(run the chapter first, e.g. make book)")
    if path is not None:
        model = build_small_cnn()
        model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        return model.to(device).eval(), f"the chapter's cached PGD-AT model ({path.name})"
    model, description = train_briefly(data, device)
    return model.to(device).eval(), description


# ----- the reference: PGD as most tutorials write it ------------------------------------------------


def textbook_pgd(model: nn.Module, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Random start, then `STEPS` signed-gradient steps on the mean CE, projected onto the eps-ball.

    loss.backward() also computes every parameter's gradient (wasted work for an attack), which is
    what naive code does; the gradients are zeroed after each step. The noise is drawn exactly as
    advfair draws it (same generator, same shape), so both start from the same points.
    """
    model.eval()
    noise = torch.rand(x.shape, generator=generator).to(x.device, x.dtype)
    x_adv = (x + (2 * noise - 1) * EPS).clamp(0, 1)
    return textbook_pgd_steps(model, x, y, x_adv, eps=EPS, alpha=ALPHA, steps=STEPS, zero_grad=True)


def reference_predictions(model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                          generator: torch.Generator) -> torch.Tensor:
    """Labels predicted on the textbook loop's adversarial points (one batch)."""
    x_adv = textbook_pgd(model, x, y, generator)
    with torch.no_grad():
        return model(x_adv).argmax(1)


# ----- advfair, as the chapter calls it ---------------------------------------------------------------


def advfair_method(early_stop: bool) -> Method:
    def predictions(model: nn.Module, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        def attack(m: nn.Module, xb: torch.Tensor, yb: torch.Tensor) -> torch.Tensor:
            return pgd(m, xb, yb, eps=EPS, alpha=ALPHA, steps=STEPS, early_stop=early_stop, generator=generator)
        return adversarial_predictions(model, x, y, attack, batch_size=BATCH)

    return predictions


METHODS: dict[str, Method] = {
    "reference (textbook loop)": reference_predictions,
    "advfair early_stop=True": advfair_method(True),
    "advfair early_stop=False": advfair_method(False),
}
REFERENCE = "reference (textbook loop)"
OURS = "advfair early_stop=True"


def robust_accuracy(adv_pred: torch.Tensor, clean_pred: torch.Tensor, y: torch.Tensor) -> float:
    """AutoAttack convention: a point is robust only if clean and adversarial predictions are right."""
    return float(((adv_pred == y) & (clean_pred == y)).float().mean())


def measure(model: nn.Module, x: torch.Tensor, y: torch.Tensor, device: torch.device,
            repeats: int) -> tuple[dict[str, list[Timing]], dict[str, list[torch.Tensor]]]:
    """Timings and predictions of every method over the whole set, `repeats` times.

    Interleaved batch by batch (in an order that rotates every batch), so that the methods being
    compared run seconds apart and see the same load from the machine's other processes. Each
    method keeps its own generator, seeded alike, so all of them draw the same random starts.
    """
    names = list(METHODS)
    # Warm-up on one small batch: first calls pay one-off costs (kernel selection, allocator growth).
    for name in names:
        METHODS[name](model, x[:50], y[:50], torch.Generator().manual_seed(START_SEED))
    timings: dict[str, list[Timing]] = {n: [] for n in names}
    preds: dict[str, list[torch.Tensor]] = {n: [] for n in names}
    for r in range(repeats):
        generators = {n: torch.Generator().manual_seed(START_SEED) for n in names}
        total = {n: Timing() for n in names}
        batch_preds: dict[str, list[torch.Tensor]] = {n: [] for n in names}
        for b, i in enumerate(range(0, len(x), BATCH)):
            xb, yb = x[i:i + BATCH], y[i:i + BATCH]
            for name in rotated(names, r + b):
                t, pred = timed(lambda: METHODS[name](model, xb, yb, generators[name]), device)
                total[name] += t
                batch_preds[name].append(pred.cpu())
        for name in names:
            timings[name].append(total[name])
            preds[name].append(torch.cat(batch_preds[name]))
        print(f"  repetition {r + 1}: " + ", ".join(f"{n} {len(x) / total[n].wall:.0f}" for n in names)
              + " images/s", flush=True)
    return timings, preds


def report(timings: dict[str, list[Timing]], preds: dict[str, list[torch.Tensor]], clean: torch.Tensor,
           y: torch.Tensor) -> None:
    n = len(y)
    ref = timings[REFERENCE]
    acc = {name: robust_accuracy(p[-1], clean, y) for name, p in preds.items()}
    print(f"\n{'method':<28}{'images/s':>10}{'ratio':>8}{'ratio (CPU time)':>18}{'robust acc':>12}{'diff (pt)':>11}")
    ratio = {}
    for name in METHODS:
        # Ratio per repetition (measured side by side), then the median: robust to load drift.
        ratio[name] = median([r.wall / t.wall for t, r in zip(timings[name], ref)])
        cpu_ratio = median([r.cpu / t.cpu for t, r in zip(timings[name], ref)])
        diff = 100 * (acc[name] - acc[REFERENCE])
        print(f"{name:<28}{median([n / t.wall for t in timings[name]]):>10.0f}{ratio[name]:>7.2f}x"
              f"{cpu_ratio:>17.2f}x{100 * acc[name]:>11.1f}%{diff:>+11.1f}")
    for name, p in preds.items():
        if any(not torch.equal(q, p[0]) for q in p[1:]):
            print(f"note: {name} predictions differed between repetitions (accuracy of the last one shown)")
    diff = 100 * (acc[OURS] - acc[REFERENCE])
    holds = ratio[OURS] >= TARGET_RATIO and abs(diff) <= TARGET_ACC_POINTS
    print(f"\ntarget: {OURS} >= {TARGET_RATIO}x reference images/s and |robust acc diff| <= {TARGET_ACC_POINTS} pt: "
          f"{'MET' if holds else 'NOT MET'} (ratio {ratio[OURS]:.2f}x, diff {diff:+.1f} pt)")


def profile_one_batch(model: nn.Module, x: torch.Tensor, y: torch.Tensor, top: int = 25) -> None:
    """cProfile of one advfair PGD-10 batch (early_stop=True): where the time goes, by function."""

    profiler = cProfile.Profile()
    generator = torch.Generator().manual_seed(START_SEED)
    profiler.enable()
    pgd(model, x[:BATCH], y[:BATCH], eps=EPS, alpha=ALPHA, steps=STEPS, early_stop=True, generator=generator)
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(top)
    print("\ncProfile of one advfair PGD-10 batch (early_stop=True), by own time:")
    print(out.getvalue())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto", help="auto (CUDA if present), cpu or cuda")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved repetitions (medians are reported)")
    parser.add_argument("--model", choices=("auto", "brief", "chapter"), default="auto",
                        help="auto: the chapter's cached PGD-AT model if ADVFAIR_CACHE_DIR has it, else brief training")
    parser.add_argument("--profile", action="store_true", help="also print a cProfile of one advfair batch")
    args = parser.parse_args()
    configure_data_dir()
    device = resolve_device(args.device)
    print(f"PGD-{STEPS} evaluation throughput: {TEST_PER_CLASS * 10} CIFAR-10 test images, batch {BATCH}, "
          f"eps 8/255, alpha 2/255")
    print(f"environment: {environment_line(device)}")
    data = load_dataset("cifar10")
    model, description = get_model(args.model, data, device)
    idx = class_balanced_indices(data.y_test, TEST_PER_CLASS, seed=TEST_SEED)
    x, y = to_float(data.x_test[idx]).to(device), data.y_test[idx].to(device)
    clean = predict(model, x, batch_size=BATCH).cpu()
    y_cpu = y.cpu()
    print(f"model: {description}; clean accuracy {100 * float((clean == y_cpu).float().mean()):.1f}%")
    timings, preds = measure(model, x, y, device, args.repeats)
    report(timings, preds, clean, y_cpu)
    if args.profile:
        profile_one_batch(model, x, y)


if __name__ == "__main__":
    main()
