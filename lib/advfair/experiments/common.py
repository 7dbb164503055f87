"""Pieces every chapter pipeline shares: config handling, data splits, cached training, attack suites."""
from __future__ import annotations

import dataclasses
import datetime
import platform
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .. import attacks
from ..data import Dataset, class_balanced_indices, ldam_long_tailed_indices, load_dataset, long_tailed_counts, to_float
from ..evaluation import Attack, adversarial_predictions, predict
from ..models import build_model
from ..objectives import make_objective
from ..trainer import TrainConfig, train
from ..validation import check_choice, fail
from .cache import ModelCache


def apply_overrides(config_cls: type, profile: str, overrides: dict[str, Any], profiles: dict[str, dict]) -> Any:
    """Build a config from a named profile plus field overrides; unknown fields are errors."""
    if profile not in profiles:
        fail("profile", profile, "one of " + ", ".join(repr(p) for p in profiles))
    names = {f.name for f in dataclasses.fields(config_cls)}
    for key in overrides:
        if key not in names:
            fail(key, overrides[key], f"a field of {config_cls.__name__}: " + ", ".join(sorted(names)))
    return config_cls(**{**profiles[profile], **overrides, "profile": profile})


def git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
                             cwd=Path(__file__).resolve().parent)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def environment(device: torch.device) -> dict:
    """Where and when a result was produced (recorded in every results JSON)."""
    return {
        "torch": torch.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "device": str(device),
        "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
        "cpu_threads": torch.get_num_threads(),
        "commit": git_commit(),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }


@dataclass(frozen=True)
class Split:
    """Training, validation (held out from the training pool) and test indices of one dataset."""

    data: Dataset
    train: torch.Tensor
    val: torch.Tensor
    test: torch.Tensor

    def images(self, part: str) -> tuple[torch.Tensor, torch.Tensor]:
        idx = getattr(self, part)
        if part == "test":
            return self.data.x_test[idx], self.data.y_test[idx]
        return self.data.x_train[idx], self.data.y_train[idx]

    def float_images(self, part: str, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = self.images(part)
        return to_float(x).to(device), y.to(device)


def balanced_split(dataset: str, *, train_per_class: int | None, val_per_class: int, test_per_class: int | None,
                   seed: int, data_dir: str | None = None) -> Split:
    """Validation images are drawn first and never used for training; `None` means all that remain."""
    data = load_dataset(dataset, data_dir)
    val = class_balanced_indices(data.y_train, val_per_class, seed=seed)
    if train_per_class is None:
        keep = torch.ones(len(data.y_train), dtype=torch.bool)
        keep[val] = False
        train_idx = torch.nonzero(keep).flatten()
    else:
        train_idx = class_balanced_indices(data.y_train, train_per_class, seed=seed + 1, exclude=val)
    test = (torch.arange(len(data.y_test)) if test_per_class is None
            else class_balanced_indices(data.y_test, test_per_class, seed=seed + 2))
    return Split(data, train_idx, val, test)


def long_tailed_split(dataset: str, *, n_max: int, imbalance: float, val_per_class: int, test_per_class: int | None,
                      data_seed: int, data_dir: str | None = None) -> Split:
    """Long-tailed training set as the LDAM/RoBal code draws it (class 0 the head), a balanced validation
    split from the training images it leaves unused, and a balanced test subset (`None`: the full test set)."""
    data = load_dataset(dataset, data_dir)
    counts = long_tailed_counts(n_max, imbalance, data.num_classes)
    train_idx = ldam_long_tailed_indices(data.y_train, counts, seed=data_seed)
    val = class_balanced_indices(data.y_train, val_per_class, seed=data_seed + 1, exclude=train_idx)
    test = (torch.arange(len(data.y_test)) if test_per_class is None
            else class_balanced_indices(data.y_test, test_per_class, seed=data_seed + 2))
    return Split(data, train_idx, val, test)


def train_cached(cache: ModelCache, split: Split, *, data_spec: dict, model_spec: dict, objective: str,
                 objective_params: dict, train_cfg: TrainConfig, device: torch.device,
                 progress: bool = False) -> tuple[nn.Module, dict]:
    """Train (or load from the cache) a model for one complete, JSON-able specification."""
    spec = {"data": data_spec, "model": model_spec, "objective": objective,
            "objective_params": {k: (v.tolist() if isinstance(v, torch.Tensor) else v)
                                 for k, v in objective_params.items()},
            "train": train_cfg.to_dict()}
    data = split.data
    # The initial weights come from the training seed, never from whatever the global RNG holds: otherwise
    # the first model of a process, or a model trained after a cache hit, would depend on what ran before.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(train_cfg.seed)
        model = build_model(dataset=data.name, num_classes=data.num_classes, in_channels=data.in_channels,
                            **model_spec)
    loss = make_objective(objective, **objective_params)
    x, y = split.images("train")

    def run(m: nn.Module, checkpoint: Path) -> list[dict]:
        return train(m, loss, x, y, train_cfg, device=device, checkpoint=checkpoint, progress=progress)

    model, meta = cache.get_or_train(spec, model, run)
    return model.to(device).eval(), meta


def attack_suite(*, eps: float, alpha: float, steps: int, seed: int, temperatures: tuple[float, ...] = (),
                 t_rule: str = "global", fgsm: bool = True, cw: bool = True,
                 extra_steps: tuple[int, ...] = (), mim: bool = False,
                 cw_loss: str = "cw") -> dict[str, Callable[[], Attack]]:
    """Factories of the standard white-box attacks. Every PGD-type attack draws its random starts
    from a generator seeded with `seed`, so all of them start from the same points (paired tests).

    `mim` adds MI-FGSM (momentum 1) with the same steps; `cw_loss` is "cw" (the margin) or "cw_hinge"
    (RoBal's test code, kappa = 50); either is reported as cw<steps>.
    """
    check_choice("cw_loss", cw_loss, ("cw", "cw_hinge"))

    def make(attack: Callable[..., torch.Tensor] = attacks.pgd, **kw: Any) -> Callable[[], Attack]:
        def factory() -> Attack:
            generator = torch.Generator().manual_seed(seed)
            return lambda m, x, y: attack(m, x, y, eps=eps, early_stop=True, generator=generator, **kw)
        return factory

    suite: dict[str, Callable[[], Attack]] = {}
    if fgsm:
        suite["fgsm"] = lambda: (lambda m, x, y: attacks.fgsm(m, x, y, eps=eps))
    suite[f"pgd{steps}"] = make(alpha=alpha, steps=steps)
    for k in extra_steps:
        suite[f"pgd{k}"] = make(alpha=alpha, steps=k)
    if mim:
        suite[f"mim{steps}"] = make(attacks.mim, alpha=alpha, steps=steps)
    if cw:
        suite[f"cw{steps}"] = make(alpha=alpha, steps=steps, loss=cw_loss)
    for t in temperatures:
        if t != 1:
            suite[tpgd_name(t, steps)] = make(alpha=alpha, steps=steps, temperature=t, t_rule=t_rule)
    return suite


def tpgd_name(temperature: float, steps: int) -> str:
    return f"pgd{steps}" if temperature == 1 else f"tpgd{steps}_T{temperature:g}"


def run_attacks(model: nn.Module, x: torch.Tensor, y: torch.Tensor, suite: dict[str, Callable[[], Attack]], *,
                batch_size: int) -> tuple[dict[str, np.ndarray], dict[str, float]]:
    """Predictions under each attack (plus "clean") and the seconds each attack took."""
    preds = {"clean": predict(model, x, batch_size=batch_size).cpu().numpy()}
    seconds = {}
    for name, factory in suite.items():
        started = time.perf_counter()
        preds[name] = adversarial_predictions(model, x, y, factory(), batch_size=batch_size).cpu().numpy()
        seconds[name] = time.perf_counter() - started
    return preds, seconds


def run_autoattack(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, eps: float, version: str,
                   batch_size: int, seed: int) -> tuple[np.ndarray, list[str], float]:
    started = time.perf_counter()
    x_adv, warnings = attacks.autoattack(model, x, y, eps=eps, version=version, batch_size=batch_size, seed=seed)
    return predict(model, x_adv, batch_size=batch_size).cpu().numpy(), warnings, time.perf_counter() - started


def mean_logit_margin(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, batch_size: int) -> float:
    """Mean of z_y - max_{j != y} z_j on clean inputs: the model's logit scale (a T-PGD confound)."""
    model.eval()
    with torch.inference_mode():
        margins = [-attacks.cw_margin(model(x[i:i + batch_size]), y[i:i + batch_size])
                   for i in range(0, len(x), batch_size)]
    return float(torch.cat(margins).mean())


def subset_per_class(y: np.ndarray, per_class: int) -> np.ndarray:
    """The first `per_class` positions of each class: the dataset's order is unrelated to image content."""
    return np.sort(np.concatenate([np.flatnonzero(y == c)[:per_class] for c in np.unique(y)]))

