"""Chapter pipeline: class-wise robustness and Temperature-PGD (Tian et al., KDD 2021).

`run(config) -> results` trains (or loads from the cache) PGD-AT, TRADES and class-weighted PGD-AT models
and an MNIST PGD-AT model, then evaluates them class by class under FGSM, PGD, CW, T-PGD and AutoAttack
with the shared protocol. Every choice that could leak test information (the weakest class, the reported
T, the logit bias) is made on a validation split held out from the training pool.

Reconstructions (labelled in the chapter): the T-PGD rule and both defence tweaks.
"""
from __future__ import annotations

import time

import torch

from ...evaluation import Evaluation, Points, mean_logit_margin, per_class_accuracy, tpgd_name, zero_gradient_fraction
from ...inference import class_bias
from ..common import Run, weight_norms
from . import methods
from .config import ClasswiseConfig


def run(cfg: ClasswiseConfig) -> dict:
    """The whole chapter: `config -> results` (a JSON-serialisable dict)."""
    r = Run(cfg)
    split = methods.cifar_split(cfg)
    classes = list(split.data.classes)
    test, val = r.points(split, "test", cfg.aa_per_class), r.points(split, "val")
    spec, model_spec = methods.data_spec(cfg, cfg.dataset, cfg.train_per_class), methods.cifar_model(cfg)
    models = {name: r.train(name, split, data_spec=spec, model_spec=model_spec, objective=objective,
                            train_cfg=methods.train_config(cfg))
              for name, objective in (("pgd_at", methods.pgd_at(cfg)), ("trades", methods.trades(cfg)))}

    pgd = tpgd_name(1.0, cfg.eval_steps)
    val_ev, _ = r.evaluate("pgd_at_validation", models["pgd_at"], val,
                           methods.validation_protocol(cfg, cfg.temperatures))
    selection = select(cfg, val_ev, pgd)
    models["class_weighted"] = r.train("class_weighted", split, data_spec=spec, model_spec=model_spec,
                                       objective=methods.class_weighted(cfg, len(classes), selection["worst_class"]),
                                       train_cfg=methods.train_config(cfg))

    records, evals = {}, {}
    evals["pgd_at"], records["pgd_at"] = r.evaluate("pgd_at", models["pgd_at"], test,
                                                    methods.test_protocol(cfg, cfg.temperatures), model_key="pgd_at")
    picked = methods.test_protocol(cfg, (selection["t_picked"],))
    for name in ("trades", "class_weighted"):
        evals[name], records[name] = r.evaluate(name, models[name], test, picked, model_key=name)
    bias = bias_sweep(r, cfg, models["pgd_at"], val, test, val_ev, evals["pgd_at"], selection["worst_class"], pgd)
    records["pgd_at_bias"] = bias.pop("evaluation")

    results = {
        "classes": classes,
        "attack_names": {"pgd": pgd, "tpgd": tpgd_name(selection["t_picked"], cfg.eval_steps),
                         "cw": f"cw{cfg.eval_steps}", "fgsm": "fgsm", "long": [f"pgd{k}" for k in cfg.long_steps]},
        "selection": selection,
        "evaluations": records,
        "bias": bias,
        "diagnostics": diagnostics(r, cfg, models, test),
    }
    if cfg.mnist:
        results["mnist"] = mnist(r, cfg)
    return r.finish("classwise", results)


def baseline(cfg: ClasswiseConfig) -> tuple[torch.nn.Module, dict]:
    """The chapter's PGD-AT model (from the model cache when it was trained before) and its record."""
    r = Run(cfg)
    split = methods.cifar_split(cfg)
    model = r.train("pgd_at", split, data_spec=methods.data_spec(cfg, cfg.dataset, cfg.train_per_class),
                    model_spec=methods.cifar_model(cfg), objective=methods.pgd_at(cfg), train_cfg=methods.train_config(cfg))
    return model, r.models["pgd_at"]


def select(cfg: ClasswiseConfig, val_ev: Evaluation, pgd: str) -> dict:
    """On validation: the weakest class under PGD, and the strongest T != 1 (lowest robust accuracy; ties:
    the smaller T). T = 1 is PGD itself, so it is never the T-PGD that C5 and C6 compare with PGD."""
    y = val_ev.labels()
    per_class = per_class_accuracy(val_ev.correct(pgd), y, len(val_ev.classes))
    accuracy = {t: float(val_ev.correct(tpgd_name(t, cfg.eval_steps)).mean()) for t in cfg.temperatures}
    t_picked = min((t for t in cfg.temperatures if t != 1), key=lambda t: (accuracy[t], t))
    return {"worst_class": int(per_class.argmin()), "val_per_class_pgd": per_class.tolist(),
            "tpgd_val_accuracy": {str(t): a for t, a in accuracy.items()}, "t_picked": t_picked}


def pick_bias(rows: list[dict], tolerance: float) -> float:
    """Among b > 0: the highest validation PGD accuracy of the target class among those whose validation mean
    stays within `tolerance` of b = 0's (ties: the smaller b); if none does, the smallest b > 0."""
    floor = next(row["val_mean"] for row in rows if row["bias"] == 0) - tolerance
    candidates = [row for row in rows if row["bias"] > 0]
    within = [row for row in candidates if row["val_mean"] >= floor]
    if not within:
        return min(row["bias"] for row in candidates)
    return max(within, key=lambda row: (row["val_target_class"], -row["bias"]))["bias"]


def bias_sweep(r: Run, cfg: ClasswiseConfig, model: torch.nn.Module, val: Points, test: Points, val_ev: Evaluation,
               test_ev: Evaluation, worst: int, pgd: str) -> dict:
    """Inference-time tweak z_worst += b, attacked as served. Each b gets PGD on validation and on test (the
    trade-off curve); b = 0 reuses the untweaked evaluations. The b `pick_bias` chooses on validation is
    then evaluated with the whole protocol, AutoAttack included."""
    started = time.perf_counter()
    num_classes = len(test.classes)
    val_protocol = methods.pgd_only(methods.validation_protocol(cfg, (1.0,)), pgd)
    test_protocol = methods.pgd_only(methods.test_protocol(cfg, (1.0,)), pgd)
    rows = []
    for b in sorted(cfg.bias_grid):
        spec = class_bias(num_classes, worst, b)
        v = val_ev if b == 0 else r.evaluate(f"bias_{b:g}_val", model, val, val_protocol, spec=spec)[0]
        t = test_ev if b == 0 else r.evaluate(f"bias_{b:g}_test", model, test, test_protocol, spec=spec)[0]
        val_pc = per_class_accuracy(v.correct(pgd), v.labels(), num_classes)
        test_pc = per_class_accuracy(t.correct(pgd), t.labels(), num_classes)
        rows.append({"bias": b, "val_mean": float(val_pc.mean()), "val_worst": float(val_pc.min()),
                     "val_target_class": float(val_pc[worst]), "test_per_class": test_pc.tolist(),
                     "test_mean": float(test_pc.mean()), "test_worst": float(test_pc.min()),
                     "test_target_class": float(test_pc[worst]),
                     "test_clean": float((t.predicted("clean") == t.labels()).mean())})
    picked = pick_bias(rows, cfg.bias_tolerance)
    _, record = r.evaluate("pgd_at_bias", model, test, methods.test_protocol(cfg, ()),
                           spec=class_bias(num_classes, worst, picked), model_key="pgd_at")
    r.timed("bias_sweep", started)
    return {"target_class": worst, "rows": rows, "picked": picked, "evaluation": record}


def diagnostics(r: Run, cfg: ClasswiseConfig, models: dict, test: Points) -> dict:
    """The logit scale of every model (a T-PGD confound), T-PGD's vanishing gradients, PGD-AT's weight norms."""
    bs = cfg.eval_batch_size
    return {
        "mean_logit_margin": {n: mean_logit_margin(m, test.x, test.y, batch_size=bs) for n, m in models.items()},
        "zero_gradient_fraction": {str(t): zero_gradient_fraction(models["pgd_at"], test.x, test.y, temperature=t,
                                                                  batch_size=bs) for t in cfg.temperatures},
        "weight_norms": weight_norms(models["pgd_at"]),
    }


def mnist(r: Run, cfg: ClasswiseConfig) -> dict:
    """The MNIST contrast: the same PGD-AT pipeline, much more uniform across classes."""
    split = methods.mnist_split(cfg)
    model = r.train("mnist", split, data_spec=methods.data_spec(cfg, "mnist", cfg.mnist_train_per_class),
                    model_spec={"name": cfg.mnist_model, "width": cfg.mnist_width}, objective=methods.mnist_pgd_at(cfg),
                    train_cfg=methods.train_config(cfg, epochs=cfg.mnist_epochs, augment=False))
    _, record = r.evaluate("mnist", model, r.points(split, "test", cfg.mnist_aa_per_class), methods.mnist_protocol(cfg),
                           model_key="mnist")
    return {"classes": list(split.data.classes), "evaluation": record,
            "attack_names": {"pgd": f"pgd{cfg.mnist_eval_steps}", "cw": f"cw{cfg.mnist_eval_steps}"}}
