"""Class-wise evaluation of any model: `advfair.evaluate(model, dataset=..., eps=..., attacks=...)` and
`python -m advfair evaluate`. The model takes inputs in [0, 1] with any normalisation inside it (as
RobustBench models do); the report holds per-class clean and robust accuracy with intervals, mean, worst
class, gap, NSD, rank agreement between attacks and the adversarial confusion matrices.
"""
from __future__ import annotations

import importlib
import json
import re
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

import torch
from torch import nn

from .defaults import DEFAULT_ATTACKS
from .data import DATASETS, class_balanced_indices, load_dataset, to_float
from .evaluation import AttackSpec, Points, Protocol, evaluate as evaluate_points
from .evaluation.protocol import SCHEMA as REPORT_SCHEMA  # a report is an evaluation's JSON, with its inputs
from .provenance import environment
from .trainer import resolve_device
from .validation import check_eps, check_positive, fail

_ATTACK_PATTERN = re.compile(r"^(fgsm|aa|aa_standard|(pgd|cw|mim)(\d+))$")


def parse_eps(text: str | float) -> float:
    """'8/255', '0.031' or a number."""
    try:
        value = float(Fraction(text)) if isinstance(text, str) else float(text)
    except (ValueError, ZeroDivisionError):
        fail("--eps", text, "a number or a fraction such as 8/255")
    return check_eps("--eps", value)


def attack_specs(names: Sequence[str], eps: float) -> dict[str, AttackSpec]:
    """fgsm, pgd<K>, cw<K> (CW margin), mim<K> with step eps/4 (2/255 at 8/255), aa (APGD-CE + APGD-T) and
    aa_standard (the four attacks of standard AutoAttack)."""
    specs = {}
    for name in names:
        match = _ATTACK_PATTERN.match(name)
        if not match:
            fail("--attacks", name, "fgsm, pgd<K>, cw<K>, mim<K> (K steps, e.g. pgd20), aa or aa_standard")
        if name == "fgsm":
            specs[name] = AttackSpec(kind="fgsm", steps=1)
        elif name in ("aa", "aa_standard"):
            specs[name] = AttackSpec(kind="autoattack", version="standard" if name == "aa_standard" else "subset")
        else:
            kind, steps = match.group(2), int(match.group(3))
            specs[name] = AttackSpec(kind="mim" if kind == "mim" else "pgd", steps=steps, alpha=eps / 4,
                                     loss="cw" if kind == "cw" else "ce")
    return specs


def evaluate(model: nn.Module, *, dataset: str = "cifar10", eps: float | str = 8 / 255,
             attacks: Sequence[str] = DEFAULT_ATTACKS, per_class: int | None = None, device: str = "auto",
             batch_size: int = 500, seed: int = 0, n_boot: int = 1000, data_dir: str | None = None,
             progress: bool = False) -> dict:
    """The class-wise report of `model` on the test set of `dataset` (a balanced subset of `per_class` images
    per class if given), every attack on every point (`progress`: a bar naming the attack running). Returns a
    JSON-serialisable dict."""
    eps = parse_eps(eps)
    if dataset not in DATASETS:
        fail("--dataset", dataset, "one of " + ", ".join(map(repr, DATASETS)))
    if per_class is not None:
        check_positive("--per-class", per_class, integer=True)
    specs = attack_specs(attacks, eps)
    dev = resolve_device(device)
    data = load_dataset(dataset, data_dir)
    smallest = int(torch.bincount(data.y_test, minlength=data.num_classes).min())
    if per_class is not None and per_class > smallest:
        fail("--per-class", per_class, f"at most {smallest}, the test images of the smallest class of {dataset}")
    idx = (torch.arange(len(data.y_test)) if per_class is None
           else class_balanced_indices(data.y_test, per_class, seed=seed))
    x, y = to_float(data.x_test[idx]).to(dev), data.y_test[idx].to(dev)
    model = model.to(dev).eval()
    _check_outputs(model, x, data.num_classes, dataset)
    protocol = Protocol(eps, specs, seed=seed, batch_size=batch_size, n_boot=n_boot)
    result = evaluate_points(model, Points.of(x, y, data.classes), protocol, progress=progress,
                             label=f"evaluate {type(model).__name__}")
    return {"dataset": dataset, "eps": eps, "per_class": per_class, "test_indices": idx.tolist(),
            **result.to_json(n_boot=n_boot, seed=seed), "environment": environment(dev)}


def _check_outputs(model: nn.Module, x: torch.Tensor, num_classes: int, dataset: str) -> None:
    """One forward pass on two test images before any attack: a model made for other images fails here."""
    try:
        with torch.no_grad():
            out = model(x[:2])
    except RuntimeError as error:  # e.g. an MNIST model given CIFAR-10 images: a conv or matmul shape error
        fail("--model", type(model).__name__, f"a model for {dataset} images of shape {tuple(x.shape[1:])} in [0, 1] "
             f"(its forward pass raised: {str(error).splitlines()[0]})")
    if out.ndim != 2 or out.shape[1] != num_classes:
        fail("--model", type(model).__name__, f"a model that maps a batch of images in [0, 1] to "
             f"(batch, {num_classes}) logits (got output shape {tuple(out.shape)})")


def load_model(spec: str, weights: str | Path | None = None, *, kwargs: dict | None = None) -> nn.Module:
    """`package.module:factory` called with `kwargs`, then the state dict in `weights` (loaded with
    weights_only=True; a dict holding it under "state_dict" or "model" is accepted)."""
    module_name, sep, factory_name = spec.partition(":")
    if not sep or not module_name or not factory_name:
        fail("--model", spec, "package.module:factory, e.g. advfair.models:cifar10_small_cnn")
    try:
        factory = getattr(importlib.import_module(module_name), factory_name)
    except (ImportError, AttributeError) as error:
        hint = "; a module of your own is found from the current folder or from PYTHONPATH" \
            if isinstance(error, ImportError) else ""
        fail("--model", spec, f"an importable module and a factory in it ({type(error).__name__}: {error}{hint})")
    if not callable(factory):
        fail("--model", spec, f"a callable factory ({factory_name} is a {type(factory).__name__})")
    try:
        model = factory(**(kwargs or {}))
    except TypeError as error:
        fail("--model-args", kwargs, f"keyword arguments {factory_name} accepts ({error})")
    if not isinstance(model, nn.Module):
        fail("--model", spec, f"a factory returning a torch.nn.Module (got {type(model).__name__})")
    if weights is not None:
        path = Path(weights)
        if not path.is_file():
            fail("--weights", str(path), "an existing file with the model's state dict")
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as error:  # noqa: BLE001 - any unreadable file is the same user error
            fail("--weights", str(path), f"a file torch.load(weights_only=True) can read ({_load_error(error)})")
        state = state.get("state_dict", state.get("model", state)) if isinstance(state, dict) else state
        if not isinstance(state, dict):
            fail("--weights", str(path), "a state dict (a mapping of parameter names to tensors)")
        try:
            model.load_state_dict(state)
        except RuntimeError as error:
            first = str(error).splitlines()[0:3]
            fail("--weights", str(path), "weights that fit the model: " + " ".join(first))
    return model.eval()


def _load_error(error: Exception) -> str:
    """torch's reason for refusing a file, without its advice to retry with weights_only=False: that runs any
    code the file holds, and a file from someone else must never be loaded that way."""
    text = str(error)
    if "Weights only load failed" not in text:
        first = text.splitlines()[0] if text else ""
        # a text or foreign file fails deep in the unpickler with a bare key or byte ("101"): say what it is not
        return (f"not a file written by torch.save ({type(error).__name__}: {first})"
                if len(first) < 20 else first)
    if "WeightsUnpickler error:" in text:
        reason = text.split("WeightsUnpickler error:", 1)[1]
    else:  # the advice, the reason and a pointer to the docs come as paragraphs
        reason = next((p for p in text.split("\n\n") if p.strip() and "weights_only" not in p
                       and "documentation" not in p), "objects other than tensors")
    reason = reason.strip().splitlines()[0].split(" Please use", 1)[0]  # not torch's advice to allow the class
    return (f"it holds more than tensors ({reason}); advfair never loads a file with "
            "weights_only=False: save the model's state_dict() with torch.save and pass that file")


def load_report(path: str | Path) -> dict:
    """A report written by `python -m advfair evaluate --out`, checked to be one."""
    report = json.loads(Path(path).read_text())
    if not isinstance(report, dict) or report.get("schema") != REPORT_SCHEMA:
        fail("report", str(path), f"a report of `advfair evaluate` (schema {REPORT_SCHEMA!r})")
    return report


def summary_table(report: dict) -> str:
    """The per-class table `python -m advfair evaluate` prints: accuracy (%) per class under each attack,
    then the mean, worst class, gap and NSD."""
    rep = report["reports"]["all"]
    attacks = list(rep["attacks"])
    width = max(len("class"), *(len(c) for c in rep["classes"])) + 2
    lines = ["".join([f"{'class':<{width}}", *(f"{a:>10}" for a in attacks)])]
    for c, name in enumerate(rep["classes"]):
        lines.append("".join([f"{name:<{width}}", *(f"{100 * rep['attacks'][a]['per_class'][c]:>10.1f}" for a in attacks)]))
    for stat, label in (("mean", "mean"), ("worst", "worst"), ("gap", "gap"), ("nsd", "NSD")):
        scale = 1 if stat == "nsd" else 100
        lines.append("".join([f"{label:<{width}}", *(f"{scale * rep['attacks'][a][stat]:>10.{3 if stat == 'nsd' else 1}f}"
                                                     for a in attacks)]))
    return "\n".join(lines)


__all__ = ["DEFAULT_ATTACKS", "evaluate", "load_model", "load_report", "parse_eps", "summary_table"]
