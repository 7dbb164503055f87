"""PGD-10 evaluation throughput: advfair against a plain textbook PGD loop, same model and data.

Target: advfair as the chapter evaluates (the shared protocol's `AttackSpec.run`: per-point early stop,
input-only gradients on a BatchNorm-folded copy, one generator for all batches) >= 1.5x the images/s of
the textbook loop, with robust accuracies (AutoAttack convention: correct on clean and adversarial)
within 0.5 points. advfair with early_stop=False is timed too, to separate the two sources of speed: the
attack path itself (input-only gradients, folded BatchNorm: both advfair rows) and per-point early exit
(the AttackSpec.run row only).

The attack, the test points and the seed of the random starts are the class-wise chapter's, taken from
its cpu config: `methods.test_protocol(cfg, methods.cifar_track(cfg), ())` and the chapter's test split.

    python benchmarks/bench_pgd_eval.py [--device auto|cpu|cuda] [--repeats 3] [--model auto|brief|chapter]
"""
from __future__ import annotations

import argparse
import cProfile
import io
import pstats
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from advfair.attacks import pgd
from advfair.data import Dataset, class_balanced_indices
from advfair.evaluation import AttackSpec, predict, tpgd_name
from advfair.cache import ModelCache
from advfair.experiments.classwise import make_config, methods, pipeline
from advfair.experiments.classwise.config import ClasswiseConfig
from advfair.training import model_spec_of
from advfair.models import build_model
from advfair.objectives import make_objective
from advfair.trainer import TrainConfig, resolve_device, train
from benchlib import Timing, configure_data_dir, environment_line, median, rotated, textbook_pgd_steps, timed

TARGET_RATIO = 1.5
TARGET_ACC_POINTS = 0.5
WARMUP_POINTS = 50


@dataclass(frozen=True)
class Setting:
    """The chapter's PGD evaluation: its attack spec and the protocol's eps, seed and batch size."""

    name: str
    spec: AttackSpec
    eps: float
    seed: int
    batch_size: int

    @classmethod
    def of(cls, cfg: ClasswiseConfig) -> "Setting":
        protocol = methods.test_protocol(cfg, methods.cifar_track(cfg), ())
        name = tpgd_name(1.0, cfg.eval_steps)
        spec = protocol.attacks[name]
        # The textbook loop below implements plain PGD on the CE with one random start, nothing else.
        plain = ("pgd", "ce", 1, 1.0, "global", None)
        if (spec.kind, spec.loss, spec.restarts, spec.temperature, spec.t_rule, spec.view) != plain:
            raise SystemExit(f"the chapter's {name} is no longer plain PGD-CE with one start ({spec}); "
                             "update the reference loop of this benchmark")
        return cls(name, spec, protocol.eps, protocol.seed, protocol.batch_size)


# (model, x, y) -> labels predicted on the adversarial points of the whole set.
Method = Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]


def build_small_cnn() -> nn.Module:
    torch.manual_seed(0)  # the same initial weights on every run
    return build_model("small_cnn", dataset="cifar10", num_classes=10, in_channels=3, width=16)


def train_briefly(data: Dataset, device: torch.device) -> tuple[nn.Module, str]:
    """PGD-AT (PGD-3, eps 8/255, alpha 3/255) for 2 epochs on 1000 training images (100 per class).

    Batch 32, not the trainer's default 128: 2 epochs of 1000 images at batch 128 are only 16 SGD
    steps and leave the model near chance (~13% clean accuracy), where almost every point is
    misclassified before the attack starts and early exit would look unrealistically good. At
    batch 32 (63 steps) the model gets clearly above chance. The result goes into the shared model
    cache (ADVFAIR_CACHE_DIR), keyed like the chapters' models (`model_spec_of`, so the objective's
    cache version is part of the key), so only the first run trains.
    """
    per_class, seed = 100, 1
    cfg = TrainConfig(epochs=2, batch_size=32, lr=0.05)
    objective = make_objective("pgd_at", eps=8 / 255, alpha=3 / 255, steps=3)
    idx = class_balanced_indices(data.y_train, per_class, seed=seed)
    spec = {"benchmark": "bench_pgd_eval",
            **model_spec_of({"dataset": "cifar10", "train_per_class": per_class, "seed": seed},
                            {"name": "small_cnn", "width": 16}, objective, cfg)}

    def run(model: nn.Module, checkpoint) -> list[dict]:
        return train(model, objective, data.x_train[idx], data.y_train[idx], cfg, device=device, checkpoint=checkpoint)

    model, meta = ModelCache().get_or_train(spec, build_small_cnn(), run)
    how = "from the model cache" if meta["from_cache"] else f"trained now in {meta['train_seconds']:.0f} s"
    return model, f"small_cnn w16, PGD-AT 2 epochs on 1000 images, batch 32 ({how})"


def chapter_model_cached(cfg: ClasswiseConfig) -> bool:
    """Whether the model cache (cfg.cache_dir, else ADVFAIR_CACHE_DIR, else the library's default; `make book`
    fills it) holds the class-wise chapter's PGD-AT model: its exact cache spec, built as the chapter builds
    it, so any change to the chapter's data, model, objective or training settings is a miss."""
    t = methods.cifar_track(cfg)
    spec = model_spec_of(methods.split(cfg, t).spec, t.model, methods.pgd_at(t), methods.train_config(cfg, t))
    return ModelCache(cfg.cache_dir).contains(spec)


def get_model(choice: str, cfg: ClasswiseConfig, data: Dataset, device: torch.device) -> tuple[nn.Module, str]:
    cached = chapter_model_cached(cfg) if choice in ("auto", "chapter") else False
    if choice == "chapter" and not cached:
        raise SystemExit("--model chapter: the class-wise chapter's PGD-AT model (cpu defaults) is not in the model "
                         f"cache {ModelCache(cfg.cache_dir).root} (run the chapter first, e.g. make book)")
    if cached:
        model, record = pipeline.baseline(cfg)  # a cache hit: loads, never trains
        return model.to(device).eval(), f"the class-wise chapter's cached PGD-AT model (key {record['key']})"
    model, description = train_briefly(data, device)
    return model.to(device).eval(), description


# ----- the reference: PGD as most tutorials write it ------------------------------------------------


def reference_method(s: Setting) -> Method:
    def textbook_pgd(model: nn.Module, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Random start, then `steps` signed-gradient steps on the mean CE, projected onto the eps-ball.

        loss.backward() also computes every parameter's gradient (wasted work for an attack), which is what
        naive code does; the gradients are zeroed after each step. The noise is drawn exactly as advfair
        draws it (same generator, same shape, on the CPU), so both start from the same points."""
        model.eval()
        noise = torch.rand(x.shape, generator=generator, device="cpu").to(x.device, x.dtype)
        x_adv = (x + (2 * noise - 1) * s.eps).clamp(0, 1)
        return textbook_pgd_steps(model, x, y, x_adv, eps=s.eps, alpha=s.spec.alpha, steps=s.spec.steps,
                                  zero_grad=True)

    def predictions(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Labels predicted on the textbook loop's adversarial points, batch by batch, one generator for all
        batches seeded like the protocol's."""
        generator = torch.Generator().manual_seed(s.seed)
        out = []
        for i in range(0, len(x), s.batch_size):
            x_adv = textbook_pgd(model, x[i:i + s.batch_size], y[i:i + s.batch_size], generator)
            with torch.no_grad():
                out.append(model(x_adv).argmax(1))
        return torch.cat(out)

    return predictions


# ----- advfair, as the chapter calls it ---------------------------------------------------------------


def protocol_method(s: Setting) -> Method:
    """What `evaluate()` times for the chapter's PGD: `AttackSpec.run` on the whole set, then `predict`."""
    def predictions(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        x_adv, _ = s.spec.run(model, x, y, eps=s.eps, seed=s.seed, batch_size=s.batch_size)
        return predict(model, x_adv, batch_size=s.batch_size)

    return predictions


def no_early_stop_method(s: Setting) -> Method:
    """The same attack through `attacks.pgd` with early_stop=False (every point runs every step), otherwise
    called as `AttackSpec.run` calls it: BatchNorm folded (fold_bn=True, as evaluation attacks run), batched,
    and one generator for all batches."""
    def predictions(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        generator = torch.Generator().manual_seed(s.seed)
        spec, bs = s.spec, s.batch_size
        x_adv = torch.cat([pgd(model, x[i:i + bs], y[i:i + bs], eps=s.eps, alpha=spec.alpha, steps=spec.steps,
                               loss=spec.loss, temperature=spec.temperature, t_rule=spec.t_rule,
                               restarts=spec.restarts, early_stop=False, generator=generator,
                               fold_bn=True)
                           for i in range(0, len(x), bs)])
        return predict(model, x_adv, batch_size=bs)

    return predictions


REFERENCE = "reference (textbook loop)"
OURS = "advfair AttackSpec.run"
NO_EARLY_STOP = "advfair early_stop=False"


def make_methods(s: Setting) -> dict[str, Method]:
    return {REFERENCE: reference_method(s), OURS: protocol_method(s), NO_EARLY_STOP: no_early_stop_method(s)}


def robust_accuracy(adv_pred: torch.Tensor, clean_pred: torch.Tensor, y: torch.Tensor) -> float:
    """AutoAttack convention: a point is robust only if clean and adversarial predictions are right."""
    return float(((adv_pred == y) & (clean_pred == y)).float().mean())


def measure(methods_: dict[str, Method], model: nn.Module, x: torch.Tensor, y: torch.Tensor, device: torch.device,
            repeats: int) -> tuple[dict[str, list[Timing]], dict[str, list[torch.Tensor]]]:
    """Timings and predictions of every method over the whole set, `repeats` times.

    Interleaved pass by pass: in each repetition every method attacks the whole set in turn, in an order
    that rotates every repetition, so the methods compared run seconds apart and see the same load from the
    machine's other processes. (Whole passes rather than single batches: advfair's call is the protocol's
    whole-set `AttackSpec.run`, whose one generator carries over from batch to batch.) Every method seeds
    its own generator alike, so all of them draw the same random starts.
    """
    names = list(methods_)
    # Warm-up on a few points: first calls pay one-off costs (kernel selection, allocator growth).
    for name in names:
        methods_[name](model, x[:WARMUP_POINTS], y[:WARMUP_POINTS])
    timings: dict[str, list[Timing]] = {n: [] for n in names}
    preds: dict[str, list[torch.Tensor]] = {n: [] for n in names}
    for r in range(repeats):
        for name in rotated(names, r):
            t, pred = timed(lambda: methods_[name](model, x, y), device)
            timings[name].append(t)
            preds[name].append(pred.cpu())
        print(f"  repetition {r + 1}: " + ", ".join(f"{n} {len(x) / timings[n][-1].wall:.0f}" for n in names)
              + " images/s", flush=True)
    return timings, preds


def report(timings: dict[str, list[Timing]], preds: dict[str, list[torch.Tensor]], clean: torch.Tensor,
           y: torch.Tensor) -> None:
    n = len(y)
    ref = timings[REFERENCE]
    acc = {name: robust_accuracy(p[-1], clean, y) for name, p in preds.items()}
    print(f"\n{'method':<28}{'images/s':>10}{'ratio':>8}{'ratio (CPU time)':>18}{'robust acc':>12}{'diff (pt)':>11}")
    ratio = {}
    for name in timings:
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


def profile_one_batch(s: Setting, model: nn.Module, x: torch.Tensor, y: torch.Tensor, top: int = 25) -> None:
    """cProfile of one batch of the chapter's PGD (`AttackSpec.run`): where the time goes, by function."""
    profiler = cProfile.Profile()
    profiler.enable()
    s.spec.run(model, x[:s.batch_size], y[:s.batch_size], eps=s.eps, seed=s.seed, batch_size=s.batch_size)
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(top)
    print(f"\ncProfile of one batch of {OURS} ({s.name}), by own time:")
    print(out.getvalue())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto", help="auto (CUDA if present), cpu or cuda")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved repetitions (medians are reported)")
    parser.add_argument("--model", choices=("auto", "brief", "chapter"), default="auto",
                        help="auto: the class-wise chapter's cached PGD-AT model if the model cache has it, "
                             "else brief training")
    parser.add_argument("--profile", action="store_true", help="also print a cProfile of one advfair batch")
    args = parser.parse_args()
    configure_data_dir()
    device = resolve_device(args.device)
    cfg = make_config("cpu", device=args.device)
    s = Setting.of(cfg)
    print(f"PGD-{s.spec.steps} evaluation throughput ({s.name} of the class-wise chapter's cpu protocol): CIFAR-10 "
          f"test images, {cfg.test_per_class} per class (the chapter's test split, data_seed {cfg.data_seed}), "
          f"batch {s.batch_size}, eps {s.eps * 255:g}/255, alpha {s.spec.alpha * 255:g}/255, random starts seeded "
          f"{s.seed}")
    print(f"environment: {environment_line(device)}")
    split = methods.split(cfg, methods.cifar_track(cfg))
    model, description = get_model(args.model, cfg, split.data, device)
    x, y = split.float_images("test", device)
    clean = predict(model, x, batch_size=s.batch_size).cpu()
    y_cpu = y.cpu()
    print(f"model: {description}; clean accuracy {100 * float((clean == y_cpu).float().mean()):.1f}% "
          f"on {len(y)} points")
    timings, preds = measure(make_methods(s), model, x, y, device, args.repeats)
    report(timings, preds, clean, y_cpu)
    if args.profile:
        profile_one_batch(s, model, x, y)


if __name__ == "__main__":
    main()
