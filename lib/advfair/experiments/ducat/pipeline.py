"""Chapter pipeline: dummy classes in adversarial training (DUCAT; Wang et al., arXiv 2410.12671), evaluated
as its critics asked.

`run(config) -> results` trains (or loads from the cache) PGD-AT, PGD-AT + DUCAT (a 2C head, the DUCAT loss
inside the code's late window), and as the config asks: the `baselines` TRADES and MART (C1, the transfer
matrix), DUCAT plugged into each base of `plugins` (C3) and the ablations. Every
2C model is served with recovery (`inference.PairMax`): its metrics are C-way. Each model is evaluated with
the paper's dummy-unaware PGD on the raw 2C logits and with dummy-aware attacks (merged PGD with restarts,
DAWA-style PGD, AutoAttack on the pairmax logits); the raw 2C argmax is kept as a side head (the "label
trap"), and the other models' predictions on the same adversarial points give the transfer matrix.

Reconstructions (labelled in the chapter): the "always failed" protocol of C1, the DAWA-style weights; the
attack views are book designs.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path

import torch
from torch import nn

from ...evaluation import Points, Protocol, evaluate
from ...files import remove
from ...inference import VIEWS, attack_view, check_outputs, deploy
from ...models import eval_mode
from ...objectives import Objective
from ...recheck import Target
from ...selection import last_epoch, train_selected
from ...splits import Split
from ...training import model_record, train_cached
from ..common import Run, config_of, model_targets
from . import methods
from .config import DucatConfig

TRANSFER = ("pgd_at", "trades", "ducat")


def run(cfg: DucatConfig) -> dict:
    """The whole chapter: `config -> results` (a JSON-serialisable dict)."""
    r = Run(cfg)
    split = methods.split(cfg)
    classes = list(split.data.classes)
    num_classes = len(classes)
    test = r.points(split, "test", cfg.aa_per_class)
    models, last, prefixes = {}, {}, {}
    plan = methods.plan(cfg, num_classes)
    shared = cfg.checkpoint == "last" and cfg.ducat_start > 1 and any(k.startswith("ducat_wb") for k in plan)
    for key, objective in plan.items():
        models[key], last[key] = train_model(
            r, cfg, key, split, objective, keep_prefix=cfg.ducat_start - 1 if shared and key == "ducat" else None,
            resume_from=prefixes.get("ducat") if key.startswith("ducat_wb") else None, prefixes=prefixes)
    for prefix in prefixes.values():
        remove(prefix)
    served = {key: deploy(model, methods.served_spec(num_classes, methods.is_dummy(key))) for key, model in models.items()}

    records = {}
    for key, model in models.items():
        others = {k: served[k] for k in TRANSFER if k in served and k != key} if key in TRANSFER else None
        records[key] = evaluate_model(r, cfg, key, model, test, protocol_for(cfg, key), transfer=others)
    results = {
        "classes": classes,
        "attack_roles": methods.attack_roles_of(cfg),
        "dummy_models": [key for key in models if methods.is_dummy(key)],
        "evaluations": records,
        "cost_model": methods.cost_model(cfg),
        "window_volume": methods.window_volume(cfg, len(split.train)),
    }
    if cfg.checkpoint == "validation":
        results["last_epoch"] = {key: evaluate_model(r, cfg, key, last[key], test, methods.protocol(cfg),
                                                     label=f"{key}_last")
                                 for key in ("pgd_at", "ducat")}
    return r.finish("ducat", results)


def protocol_for(cfg: DucatConfig, key: str) -> Protocol:
    """PGD-AT and DUCAT: every attack; TRADES and MART (C1): the unaware PGD only, unless DUCAT is plugged into
    them (C3: then they get the aware PGDs too, as their plug-ins); ablations and plug-ins: every attack but
    AutoAttack."""
    if key in ("pgd_at", "ducat"):
        return methods.protocol(cfg)
    if key in ("trades", "mart") and key not in cfg.plugins:
        return methods.protocol(cfg, aware=False)
    return methods.protocol(cfg, aa=False)


def evaluate_model(r: Run, cfg: DucatConfig, key: str, model: nn.Module, points: Points, protocol: Protocol, *,
                   transfer: dict[str, nn.Module] | None = None, label: str | None = None) -> dict:
    """One model under `protocol`, served with recovery if it has a 2C head; the raw 2C argmax ("raw2C") and
    the `transfer` models' predictions are side heads on the same points. Fails on a head of the wrong width."""
    num_classes, dummy = len(points.classes), methods.is_dummy(key)
    check_outputs(model, points.x, num_classes, dummy=dummy)
    spec = methods.served_spec(num_classes, dummy)
    views = attack_views(cfg, num_classes, dummy, model)
    side = {**({"raw2C": model} if dummy else {}), **(transfer or {})}
    _, record = r.evaluate(label or key, model, points, protocol, spec=spec, model_key=key, views=views, side=side)
    return record


def attack_views(cfg: DucatConfig, num_classes: int, dummy: bool, model: nn.Module) -> dict[str, nn.Module]:
    """Every attack view of the raw `model` (a 2C one if `dummy`), by name."""
    return {view: attack_view(view, model, num_classes, dummy=dummy, dawa_weight=cfg.dawa_weight) for view in VIEWS}


def rechecks(results: dict) -> list[Target]:
    """Every committed test evaluation (`advfair.recheck`): the unaware PGD through the raw 2C view it attacked,
    AutoAttack on the served (recovered) model."""
    cfg = config_of(DucatConfig, results)
    num_classes = len(results["classes"])
    return [replace(t, views=partial(attack_views, cfg, num_classes, methods.is_dummy(t.model)))
            for t in model_targets(results, methods.split(cfg), methods.protocol(cfg))]


def train_model(r: Run, cfg: DucatConfig, key: str, split: Split, objective: Objective, *,
                keep_prefix: int | None = None, resume_from: Path | None = None,
                prefixes: dict[str, Path] | None = None) -> tuple[nn.Module, nn.Module | None]:
    """(the model the chapter evaluates, its last epoch's weights when that is another model). With
    checkpoint="last" both are the last epoch; with "validation" the first is the best epoch on validation.

    `keep_prefix=k` keeps the training checkpoint after epoch k (its path goes to `prefixes[key]`);
    `resume_from` starts a training from such a checkpoint. The DUCAT ablations on w_b share the main DUCAT
    model's epochs before the window, where w_b plays no part: the trainer resumes exactly, so the weights
    are those of a training from scratch (tested), at a fraction of the cost."""
    dummy = methods.is_dummy(key)
    specs = {"model_spec": methods.model_spec(cfg, dummy), "objective": objective,
             "train_cfg": methods.train_config(cfg), "device": r.device, "progress": cfg.progress}
    if cfg.checkpoint == "validation":
        model, meta = train_selected(r.cache, split, **specs, rule=DummySelection(cfg, dummy), label=f"train {key}")
        last, _ = last_epoch(r.cache, split, **specs)  # written by train_selected
    else:
        model, meta = train_cached(r.cache, split, **specs, label=f"train {key}", keep_after=keep_prefix,
                                   resume_from=resume_from)
        if "prefix" in meta and prefixes is not None:
            prefixes[key] = meta["prefix"]
        last = None
    record = model_record(meta)
    record["seconds"]["epochs"] = [h["seconds"] for h in meta["history"]]  # C4: measured, not compared exactly
    r.models[key] = record
    return model, last


@dataclass(frozen=True)
class DummySelection:
    """DUCAT's checkpoint rule for `selection.train_selected`: every epoch, the recovered validation accuracy
    under the selection attack (the official code keeps its best test-set epoch, strict improvement)."""

    cfg: DucatConfig
    dummy: bool

    def due(self, epoch: int, epochs: int) -> bool:
        return True

    def score(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, num_classes: int) -> dict:
        accuracy = validation_accuracy(self.cfg, model, Points.of(x, y, [str(c) for c in range(num_classes)]),
                                       self.dummy)
        return {"val_accuracy": accuracy, "val_score": accuracy}

    def to_dict(self) -> dict:
        """What the rule is (part of the selected model's cache key)."""
        return methods.selection_rule(self.cfg)


def validation_accuracy(cfg: DucatConfig, model: nn.Module, val: Points, dummy: bool) -> float:
    """Recovered validation accuracy under the selection attack; the model's mode is restored."""
    protocol = methods.selection_protocol(cfg)
    view = {cfg.select_view: attack_view(cfg.select_view, model, len(val.classes), dummy=dummy,
                                         dawa_weight=cfg.dawa_weight)}
    with eval_mode(model):
        e = evaluate(deploy(model, methods.served_spec(len(val.classes), dummy)), val, protocol, views=view)
    return float(e.correct("select").mean())
