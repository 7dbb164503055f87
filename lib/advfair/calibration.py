"""Calibration of the evidence tier: which CPU-trainable configuration gives models good enough to test the
claims. The quality bars below are fixed before any claim is read, are the same for every chapter and say
nothing about any claim's outcome; the sweep measures what each candidate reaches and what it costs, and the
cheapest candidate that clears every bar is chosen (`choose`), by rule: the tier trains with the cheapest whose
PGD-AT clears them (`TIER`).

Each candidate trains once, logging per-class clean and PGD accuracy on a fixed validation split (held out of
the training pool) after every epoch: the curves show what more epochs would buy. The bars are judged on the
full test set after the last epoch, each per-class accuracy with its exact 95 % interval. A candidate's record
is written when it finishes (`run_sweep` skips candidates whose record exists), so the sweep resumes after an
interruption at the candidate it was training.
"""
from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from torch import nn

from .evaluation import AttackSpec, Points, Protocol, evaluate
from .evaluation.metrics import head_middle_tail
from .evaluation.paired import proportion_estimate
from .files import write_json_atomic
from .methods import objective as catalogue_objective
from .objectives import clean_ce
from .provenance import environment
from .splits import Split, balanced_split, long_tailed_split
from .trainer import TrainConfig, resolve_device, train
from .training import initial_model
from .validation import check_choice, check_number, check_positive, fail

SCHEMA = "advfair.calibration/1"
# Each dataset's L-inf radius (8/255 on CIFAR-10, 0.3 on MNIST); PGD-10 at a step of radius / 4 tests them.
EPS, EVAL_STEPS, EVAL_ALPHA = {"cifar10": 8 / 255, "mnist": 0.3}, 10, {"cifar10": 2 / 255, "mnist": 0.075}
VAL_PER_CLASS = 100  # the fixed validation split of the curves
LT_N_MAX = 4950  # the long-tailed head class (RoBal's paper profile's n_max)
LT_VAL_PER_CLASS = 5000 - LT_N_MAX  # what the head class leaves of CIFAR-10's 5,000 training images per class


@dataclass(frozen=True)
class QualityBars:
    """The bars every evidence-tier model must clear, whatever it is used for (set before any claim is read)."""

    class_clean: float = 0.10  # every class at least this clean accuracy (point estimate)
    class_clean_aim: float = 0.30  # what the tier aims at (reported, not required)
    class_pgd_lower: float = 0.0  # every class's PGD accuracy above this with its exact 95 % interval
    class_pgd_aim: float = 0.10  # the worst class's PGD accuracy aimed at (reported, not required)
    lt_balanced_clean: float = 0.30  # a long-tailed model: balanced clean accuracy at least this
    # and every tail class's clean accuracy above chance with its exact 95 % interval


BARS = QualityBars()


@dataclass(frozen=True)
class Candidate:
    """One configuration of the sweep: data, network, objective and schedule (cosine, SGD, crop + flip)."""

    name: str
    dataset: str = "cifar10"  # cifar10, or mnist (the proxy of a chapter no CIFAR-10 candidate serves)
    width: int = 16  # the small CNN's width
    train_per_class: int | None = 1000  # balanced (None: the whole training pool)
    long_tailed: bool = False  # the long-tailed set instead, as RoBal draws CIFAR-10-LT (n_max LT_N_MAX)
    imbalance: float = 0.02  # the long-tailed set's n_min / n_max (0.02: RoBal's ratio 50)
    objective: str = "pgd_at"  # a catalogue entry: pgd_at, trades or at_fc
    epochs: int = 10  # adversarial epochs
    pretrain_epochs: int = 0  # clean epochs before them (adversarial fine-tuning of a clean model)
    batch_size: int = 128
    lr: float = 0.1
    train_steps: int = 3
    train_alpha: float = 3 / 255
    seed: int = 0

    def __post_init__(self) -> None:
        check_choice("dataset", self.dataset, EPS)
        check_positive("width", self.width, integer=True)
        if self.train_per_class is not None:
            check_positive("train_per_class", self.train_per_class, integer=True)
        check_choice("objective", self.objective, ("pgd_at", "trades", "at_fc"))
        check_number("imbalance", self.imbalance, low=0, high=1, low_open=True)
        check_positive("epochs", self.epochs, integer=True)
        check_number("pretrain_epochs", self.pretrain_epochs, low=0, integer=True)
        if self.long_tailed != (self.objective == "at_fc"):
            fail("objective", self.objective, "at_fc for the long-tailed candidates, pgd_at or trades otherwise")

    @property
    def eps(self) -> float:
        return EPS[self.dataset]

    @property
    def augment(self) -> bool:
        """Random crop and flip on CIFAR-10; none on MNIST, where a flip changes what a digit is."""
        return self.dataset == "cifar10"


# The sweep: width, training-set size, objective, clean pre-training, and the long-tailed set, each against the
# reference candidate `w16_10k` (the levers the first probe named), at about an hour of CPU in all.
SWEEP: tuple[Candidate, ...] = (
    Candidate("w16_10k", epochs=15),
    Candidate("w32_10k", width=32, epochs=12),
    Candidate("w16_10k_trades", objective="trades", epochs=15),
    Candidate("w16_10k_pretrained", epochs=10, pretrain_epochs=5),
    Candidate("w16_full", train_per_class=None, epochs=6),
    Candidate("w16_lt", long_tailed=True, objective="at_fc", train_per_class=None, epochs=15),
    # Added after w16_lt missed every long-tailed bar: the nearest honest alternative the issue names, a milder
    # imbalance (ratio 10 instead of 50), at the same schedule.
    Candidate("w16_lt_r10", long_tailed=True, imbalance=0.1, objective="at_fc", train_per_class=None, epochs=15),
    # Added after both CIFAR-10-LT missed: the other alternative, an MNIST-LT proxy at RoBal's n_max and ratio
    # 50 (3 steps of 0.1 cover the 0.3 ball), at two widths (RoBal evaluates ten heads: width saves most there).
    Candidate("mnist_lt", dataset="mnist", long_tailed=True, objective="at_fc", train_per_class=None, epochs=8,
              train_alpha=0.1),
    Candidate("mnist_lt_w8", dataset="mnist", width=8, long_tailed=True, objective="at_fc", train_per_class=None,
              epochs=8, train_alpha=0.1),
)


def split_of(c: Candidate, data_dir: str | None = None, *, val_per_class: int = VAL_PER_CLASS,
             test_per_class: int | None = None) -> Split:
    """The candidate's training images, the fixed validation split and the test set (None: all of it)."""
    if c.long_tailed:
        return long_tailed_split(c.dataset, n_max=LT_N_MAX, imbalance=c.imbalance,
                                 val_per_class=min(val_per_class, LT_VAL_PER_CLASS),
                                 test_per_class=test_per_class, data_seed=0, data_dir=data_dir)
    return balanced_split(c.dataset, train_per_class=c.train_per_class, val_per_class=val_per_class,
                          test_per_class=test_per_class, seed=0, data_dir=data_dir)


def per_class(model: nn.Module, points: Points, seed: int, dataset: str = "cifar10",
              batch_size: int = 500) -> dict[str, list[int]]:
    """Correct counts per class, clean and under PGD-10 (the counts and the class sizes give exact intervals)."""
    protocol = Protocol(EPS[dataset], {"pgd": AttackSpec(steps=EVAL_STEPS, alpha=EVAL_ALPHA[dataset])}, seed=seed,
                        batch_size=batch_size, n_boot=1)
    e = evaluate(model, points, protocol)
    y, n = e.labels(), len(e.classes)
    counts = {a: np.bincount(y[e.correct(a)], minlength=n).astype(int).tolist() for a in ("clean", "pgd")}
    return {**counts, "size": np.bincount(y, minlength=n).astype(int).tolist()}


def accuracies(counts: dict[str, list[int]], attack: str) -> np.ndarray:
    return np.asarray(counts[attack]) / np.asarray(counts["size"])


def bars_met(counts: dict[str, list[int]], long_tailed: bool, bars: QualityBars = BARS) -> dict[str, dict]:
    """Each bar on the test counts: its value, the rule and whether it holds."""
    clean, pgd, size = accuracies(counts, "clean"), np.asarray(counts["pgd"]), np.asarray(counts["size"])
    lowers = [proportion_estimate(int(k), int(m)).ci[0] for k, m in zip(pgd, size)]
    out = {"every class clean": {"value": float(clean.min()), "rule": f">= {bars.class_clean:g}",
                                 "met": bool(clean.min() >= bars.class_clean)},
           "every class PGD above 0": {"value": float(min(lowers)), "rule": f"lower bound > {bars.class_pgd_lower:g}",
                                       "met": bool(min(lowers) > bars.class_pgd_lower)}}
    if long_tailed:
        chance = 1 / len(size)
        tail = head_middle_tail(len(size))["tail"]
        tail_lowers = [proportion_estimate(int(counts["clean"][c]), int(size[c])).ci[0] for c in tail]
        balanced = balanced_accuracy(counts, "clean")
        out["balanced clean"] = {"value": balanced, "rule": f">= {bars.lt_balanced_clean:g}",
                                 "met": bool(balanced >= bars.lt_balanced_clean)}
        out["every tail class above chance"] = {"value": float(min(tail_lowers)), "rule": f"lower bound > {chance:g}",
                                                "met": bool(min(tail_lowers) > chance)}
    return out


@dataclass
class _Clock:
    """Wall and CPU seconds of training alone (the curve's evaluations are not part of a model's cost)."""

    wall: float = 0.0
    cpu: float = 0.0
    marks: tuple[float, float] = field(default_factory=lambda: (time.perf_counter(), time.process_time()))

    def stop(self) -> None:
        self.wall += time.perf_counter() - self.marks[0]
        self.cpu += time.process_time() - self.marks[1]

    def start(self) -> None:
        self.marks = (time.perf_counter(), time.process_time())


def run_candidate(c: Candidate, *, data_dir: str | None = None, device: str = "auto",
                  log: Callable[[str], None] = print, **sizes: int | None) -> dict:
    """Train one candidate, logging the validation curve after every epoch, then test it against the bars.
    `sizes` (val_per_class, test_per_class) shrink the evaluation for a quick check; the sweep uses the defaults."""
    dev = resolve_device(device)
    split = split_of(c, data_dir, **sizes)
    x, y = split.images("train")
    val = Points.of(*split.float_images("val", dev), split.data.classes)
    model = initial_model(split, {"name": "small_cnn", "width": c.width}, c.seed).to(dev)
    clock, curve = _Clock(), []

    def phase(name: str, objective, epochs: int) -> None:
        cfg = TrainConfig(epochs=epochs, batch_size=c.batch_size, lr=c.lr, augment=c.augment, seed=c.seed)

        def point(epoch: int, record: dict) -> None:
            clock.stop()
            counts = per_class(model, val, seed=c.seed + 10, dataset=c.dataset)
            curve.append({"phase": name, "epoch": epoch + 1, "loss": record["loss"], "train_seconds": clock.wall,
                          "train_cpu_seconds": clock.cpu, "val": counts})
            log(f"{c.name} {name} {epoch + 1}/{epochs}: val clean {balanced_accuracy(counts, 'clean'):.3f} "
                f"(worst {worst_class(counts, 'clean'):.3f}), PGD {balanced_accuracy(counts, 'pgd'):.3f} "
                f"(worst {worst_class(counts, 'pgd'):.3f}), {clock.wall:.0f} s")
            clock.start()

        train(model, objective, x, y, cfg, device=dev, on_epoch_end=point)

    if c.pretrain_epochs:
        phase("clean", clean_ce(), c.pretrain_epochs)
    attack = {"eps": c.eps, "alpha": c.train_alpha, "steps": c.train_steps}
    extra = {"beta": 6.0} if c.objective == "trades" else {}
    phase("adversarial", catalogue_objective(c.objective, **attack, **extra), c.epochs)
    clock.stop()
    test = per_class(model, Points.of(*split.float_images("test", dev), split.data.classes), seed=c.seed + 20,
                     dataset=c.dataset)
    return {"schema": SCHEMA, "candidate": asdict(c), "train_images": len(x), "curve": curve, "test": test,
            "bars": bars_met(test, c.long_tailed), "train_seconds": clock.wall, "train_cpu_seconds": clock.cpu,
            "environment": environment(dev)}


def run_sweep(out_dir: Path, *, names: Sequence[str] = (), candidates: Sequence[Candidate] = SWEEP,
              data_dir: str | None = None, device: str = "auto", log: Callable[[str], None] = print,
              **sizes: int | None) -> list[dict]:
    """Every candidate (or those named) not yet recorded in `out_dir`, each written when it finishes."""
    known = {c.name: c for c in candidates}
    for name in names:
        check_choice("candidate", name, known)
    records = []
    for c in [known[n] for n in names] if names else candidates:
        path = Path(out_dir) / f"{c.name}.json"
        if not path.exists():
            write_json_atomic(run_candidate(c, data_dir=data_dir, device=device, log=log, **sizes), path)
        records.append(json.loads(path.read_text()))
    return records


def choose(records: Sequence[dict], *, long_tailed: bool, objective: str | None = None,
           dataset: str = "cifar10") -> dict | None:
    """The cheapest candidate (training CPU seconds) of one kind on `dataset`, trained with `objective` if given,
    that clears every bar; None if none does."""
    passing = [r for r in records if r["candidate"]["long_tailed"] == long_tailed
               and r["candidate"]["dataset"] == dataset and objective in (None, r["candidate"]["objective"])
               and all(b["met"] for b in r["bars"].values())]
    return min(passing, key=lambda r: r["train_cpu_seconds"], default=None)


# The evidence tier trains every balanced CIFAR-10 model with one candidate's data, network and schedule: the
# cheapest whose PGD-AT clears every bar (`choose(records, long_tailed=False, objective=TIER_OBJECTIVE)` on the
# book's records; a test holds the two together). PGD-AT decides, because it is the baseline every chapter
# compares against and the objective that collapses a class first: a TRADES-only choice could not train it.
TIER_OBJECTIVE = "pgd_at"
TIER = "w16_full"


# RoBal's evidence tier: the cheapest long-tailed candidate that clears every bar; none on CIFAR-10-LT does, so the
# MNIST-LT proxy's (`choose(records, long_tailed=True, dataset="mnist")`; a test holds the two together).
LT_TIER = "mnist_lt_w8"


def _training_fields(c: Candidate) -> dict:
    """A candidate's width, schedule and training attack, in the chapter configs' field names."""
    return {"width": c.width, "epochs": c.epochs, "batch_size": c.batch_size, "lr": c.lr,
            "weight_decay": TrainConfig.weight_decay, "schedule": TrainConfig.schedule, "augment": c.augment,
            "train_steps": c.train_steps, "train_alpha": c.train_alpha, "eps": c.eps}


def tier_fields() -> dict:
    """The chapter-config fields the evidence tier takes from the chosen candidate (each chapter's `evidence`
    profile starts from these): its network width, training data, schedule and training attack, and the
    calibration's validation split."""
    c = next(c for c in SWEEP if c.name == TIER)
    return {**_training_fields(c), "train_per_class": c.train_per_class, "val_per_class": VAL_PER_CLASS}


def lt_tier_fields() -> dict:
    """RoBal's evidence-tier fields from the chosen long-tailed candidate: its dataset, long-tailed set and the
    validation split it leaves, network, schedule and training attack."""
    c = next(c for c in SWEEP if c.name == LT_TIER)
    return {**_training_fields(c), "dataset": c.dataset, "n_max": LT_N_MAX, "imbalance": c.imbalance,
            "val_per_class": min(VAL_PER_CLASS, LT_VAL_PER_CLASS)}


def load_sweep(directory: Path) -> list[dict]:
    """The recorded candidates of a sweep folder, in the sweep's order."""
    order = [c.name for c in SWEEP]
    records = [json.loads(p.read_text()) for p in Path(directory).glob("*.json")]
    return sorted(records, key=lambda r: order.index(r["candidate"]["name"]) if r["candidate"]["name"] in order
                  else len(order))


def worst_class(counts: dict[str, list[int]], attack: str) -> float:
    """The worst class's accuracy under `attack` (or "clean")."""
    return float(accuracies(counts, attack).min())


def balanced_accuracy(counts: dict[str, list[int]], attack: str) -> float:
    """The mean of the per-class accuracies, exactly rounded (the same bits under every numpy kernel)."""
    acc = accuracies(counts, attack)
    return math.fsum(acc.tolist()) / len(acc)


def sweep_table(records: Sequence[dict]) -> list[dict]:
    """One row per candidate: what it trained on, what it cost and what it reached on the test set."""
    rows = []
    for r in records:
        c, t = r["candidate"], r["test"]
        rows.append({"candidate": c["name"], "data": c["dataset"] + ("-LT" if c["long_tailed"] else ""),
                     "width": c["width"], "objective": c["objective"],
                     "training images": r["train_images"],
                     "epochs": f"{c['pretrain_epochs']} clean + {c['epochs']}" if c["pretrain_epochs"] else c["epochs"],
                     "CPU-min": round(r["train_cpu_seconds"] / 60, 1),
                     "clean %": round(100 * balanced_accuracy(t, "clean"), 1),
                     "worst clean %": round(100 * worst_class(t, "clean"), 1),
                     "PGD-10 %": round(100 * balanced_accuracy(t, "pgd"), 1),
                     "worst PGD-10 %": round(100 * worst_class(t, "pgd"), 1),
                     "bars": "all met" if all(b["met"] for b in r["bars"].values())
                     else "missed: " + ", ".join(k for k, b in r["bars"].items() if not b["met"])})
    return rows


def curves(records: Sequence[dict]) -> list[dict]:
    """The validation curves as rows: candidate, training CPU-minutes so far, and the mean and worst class
    accuracy, clean and under PGD-10, after each epoch."""
    return [{"candidate": r["candidate"]["name"], "CPU-min": p["train_cpu_seconds"] / 60,
             "clean": balanced_accuracy(p["val"], "clean"), "worst clean": worst_class(p["val"], "clean"),
             "PGD-10": balanced_accuracy(p["val"], "pgd"), "worst PGD-10": worst_class(p["val"], "pgd")}
            for r in records for p in r["curve"]]
