"""Chapter pipeline: dummy classes in adversarial training (DUCAT; Wang et al., arXiv 2410.12671), evaluated
as its critics asked.

`run(config) -> results` trains (or loads from the cache) PGD-AT, PGD-AT + DUCAT (a 2C head, the DUCAT loss
inside the code's late window), TRADES and MART (for C1 and the transfer matrix), DUCAT plugged into TRADES
and MART (C3) and the ablations. Every
2C model is served with recovery (`inference.PairMax`): its metrics are C-way. Each model is evaluated with
the paper's dummy-unaware PGD on the raw 2C logits and with dummy-aware attacks (merged PGD with restarts,
DAWA-style PGD, AutoAttack on the pairmax logits); the raw 2C argmax is kept as a side head (the "label
trap"), and the other models' predictions on the same adversarial points give the transfer matrix.

Reconstructions (labelled in the chapter): the "always failed" protocol of C1, the DAWA-style weights; the
attack views are book designs.
"""
from __future__ import annotations

import copy
import shutil
from pathlib import Path

import torch
from torch import nn

from ...evaluation import Points, Protocol, evaluate
from ...inference import attack_view, check_outputs, deploy, recovery
from ...models import build_model, eval_mode
from ...objectives import Objective
from ...splits import Split
from ...trainer import save_atomic, train
from ..common import Run
from ...training import model_record, model_spec_of, train_cached
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
    val = r.points(split, "val") if cfg.checkpoint == "validation" else None
    models, last, prefixes = {}, {}, {}
    plan = methods.plan(cfg, num_classes)
    shared = cfg.checkpoint == "last" and cfg.ducat_start > 1 and any(k.startswith("ducat_wb") for k in plan)
    for key, objective in plan.items():
        models[key], last[key] = train_model(
            r, cfg, key, split, val, objective, keep_prefix=cfg.ducat_start - 1 if shared and key == "ducat" else None,
            resume_from=prefixes.get("ducat") if key.startswith("ducat_wb") else None, prefixes=prefixes)
    for prefix in prefixes.values():
        prefix.unlink(missing_ok=True)
    served = {key: serve(model, num_classes, methods.is_dummy(key)) for key, model in models.items()}

    records = {}
    for key, model in models.items():
        others = {k: served[k] for k in TRANSFER if k in served and k != key} if key in TRANSFER else None
        records[key] = evaluate_model(r, cfg, key, model, test, protocol_for(cfg, key), transfer=others)
    results = {
        "classes": classes,
        "attack_names": methods.attack_names(cfg),
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


def serve(model: nn.Module, num_classes: int, dummy: bool) -> nn.Module:
    """The module metrics see: a 2C model with recovery (PairMax), a C-way model as it is."""
    return deploy(model, recovery(num_classes) if dummy else ())


def evaluate_model(r: Run, cfg: DucatConfig, key: str, model: nn.Module, points: Points, protocol: Protocol, *,
                   transfer: dict[str, nn.Module] | None = None, label: str | None = None) -> dict:
    """One model under `protocol`, served with recovery if it has a 2C head; the raw 2C argmax ("raw2C") and
    the `transfer` models' predictions are side heads on the same points. Fails on a head of the wrong width."""
    num_classes, dummy = len(points.classes), methods.is_dummy(key)
    check_outputs(model, points.x, num_classes, dummy=dummy)
    spec = recovery(num_classes) if dummy else ()
    views = {s.view: attack_view(s.view, model, num_classes, dummy=dummy, dawa_weight=cfg.dawa_weight)
             for s in protocol.attacks.values() if s.view is not None}
    side = {**({"raw2C": model} if dummy else {}), **(transfer or {})}
    _, record = r.evaluate(label or key, model, points, protocol, spec=spec, model_key=key, views=views, side=side)
    return record


def train_model(r: Run, cfg: DucatConfig, key: str, split: Split, val: Points | None, objective: Objective, *,
                keep_prefix: int | None = None, resume_from: Path | None = None,
                prefixes: dict[str, Path] | None = None) -> tuple[nn.Module, nn.Module | None]:
    """(the model the chapter evaluates, its last epoch's weights when that is another model). With
    checkpoint="last" both are the last epoch; with "validation" the first is the best epoch on validation.

    `keep_prefix=k` keeps the training checkpoint after epoch k (its path goes to `prefixes[key]`);
    `resume_from` starts a training from such a checkpoint. The DUCAT ablations on w_b share the main DUCAT
    model's epochs before the window, where w_b plays no part: the trainer resumes exactly, so the weights
    are those of a training from scratch (tested), at a fraction of the cost."""
    dummy = methods.is_dummy(key)
    specs = {"model_spec": methods.model_spec(cfg, dummy),
             "objective": objective, "train_cfg": methods.train_config(cfg)}
    if cfg.checkpoint == "validation":
        model, meta = train_selected(r, cfg, split, val, dummy=dummy, label=f"train {key}", **specs)
        last, _ = train_cached(r.cache, split, **specs, device=r.device)  # written by train_selected
    else:
        model, meta = fit(r, cfg, split, model_spec_of(split.spec, **specs), model_spec=specs["model_spec"], objective=objective,
                          train_cfg=specs["train_cfg"], keep_prefix=keep_prefix, resume_from=resume_from,
                          prefix_out=(prefixes, key), label=f"train {key}")
        last = None
    record = model_record(meta)
    record["seconds"]["epochs"] = [h["seconds"] for h in meta["history"]]  # C4: measured, not compared exactly
    r.models[key] = record
    return model, last


def fresh_model(split: Split, model_spec: dict, seed: int) -> nn.Module:
    """The initial weights, from the training seed (as `train_cached` makes them)."""
    data = split.data
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build_model(dataset=data.name, num_classes=data.num_classes, in_channels=data.in_channels,
                           **model_spec)


def fit(r: Run, cfg: DucatConfig, split: Split, spec: dict, *, model_spec: dict, objective: Objective, train_cfg,
        keep_prefix: int | None = None, resume_from: Path | None = None,
        prefix_out: tuple[dict, str] | None = None, label: str = "") -> tuple[nn.Module, dict]:
    """`train_cached` with a prefix checkpoint kept (after epoch `keep_prefix`, its path put in
    `prefix_out[0][prefix_out[1]]`) or resumed from (`resume_from`); cached under `spec`."""
    x, y = split.images("train")

    def run_training(m: nn.Module, checkpoint: Path) -> list[dict]:
        if resume_from is not None and resume_from.exists() and not checkpoint.exists():
            shutil.copyfile(resume_from, checkpoint)

        def hook(epoch: int, record: dict) -> None:
            if keep_prefix is not None and epoch + 1 == keep_prefix:
                prefix = checkpoint.with_suffix(f".prefix{keep_prefix}")
                shutil.copyfile(checkpoint, prefix)
                if prefix_out is not None:
                    prefix_out[0][prefix_out[1]] = prefix

        return train(m, objective, x, y, train_cfg, device=r.device, checkpoint=checkpoint, progress=cfg.progress,
                     label=label, on_epoch_end=hook)

    model, meta = r.cache.get_or_train(spec, fresh_model(split, model_spec, train_cfg.seed), run_training)
    return model.to(r.device).eval(), meta


def validation_accuracy(cfg: DucatConfig, model: nn.Module, val: Points, dummy: bool) -> float:
    """Recovered validation accuracy under the selection attack; the model's mode is restored."""
    protocol = methods.selection_protocol(cfg)
    view = {cfg.select_view: attack_view(cfg.select_view, model, len(val.classes), dummy=dummy,
                                         dawa_weight=cfg.dawa_weight)}
    with eval_mode(model):
        e = evaluate(serve(model, len(val.classes), dummy), val, protocol, views=view)
    return float(e.correct("select").mean())


def train_selected(r: Run, cfg: DucatConfig, split: Split, val: Points, *, dummy: bool, model_spec: dict, objective: Objective, train_cfg, label: str = "") -> tuple[nn.Module, dict]:
    """Train once, keep the best epoch on validation (strict improvement, as the official code keeps its best
    test-set epoch) and the last epoch: the selected model is cached under the training spec plus the
    selection rule, the last epoch under the plain training spec (the key every other chapter uses)."""
    last_spec = model_spec_of(split.spec, model_spec, objective, train_cfg)
    holder: dict = {}

    def score(epoch: int, _record: dict) -> None:
        m, best, path = holder["model"], holder["best"], holder["path"]
        accuracy = validation_accuracy(cfg, m, val, dummy)
        best["val"][epoch + 1] = accuracy
        if accuracy > best["accuracy"]:
            best.update(accuracy=accuracy, epoch=epoch + 1,
                        state={k: v.detach().cpu().clone() for k, v in m.state_dict().items()})
        save_atomic(best, path)

    def run_training(m: nn.Module, checkpoint: Path) -> list[dict]:
        path = checkpoint.with_suffix(".best")  # survives an interruption, as the checkpoint does
        best = (torch.load(path, map_location="cpu", weights_only=True) if path.exists()
                else {"accuracy": -1.0, "epoch": 0, "state": None, "val": {}})
        holder.update(model=m, best=best, path=path)
        x, y = split.images("train")
        history = train(m, objective, x, y, train_cfg, device=r.device, checkpoint=checkpoint, progress=cfg.progress,
                        label=f"{label} (validation each epoch)", on_epoch_end=score)
        for h in history:
            h["val_accuracy"] = best["val"].get(h["epoch"])
            h["selected"] = h["epoch"] == best["epoch"]
        r.cache.get_or_train(last_spec, copy.deepcopy(m), lambda *_: [dict(h) for h in history])
        m.load_state_dict(best["state"])
        path.unlink(missing_ok=True)
        return history

    spec = {**last_spec, "selection": methods.selection_rule(cfg)}
    model, meta = r.cache.get_or_train(spec, fresh_model(split, model_spec, train_cfg.seed), run_training)
    return model.to(r.device).eval(), meta
