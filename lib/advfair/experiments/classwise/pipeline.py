"""Chapter pipeline: class-wise robustness and Temperature-PGD (Tian et al., KDD 2021).

`run(config) -> results` trains (or loads from the cache) PGD-AT, TRADES and class-weighted PGD-AT models, then
evaluates them class by class under FGSM, PGD, CW, T-PGD and AutoAttack with the shared protocol: on CIFAR-10,
and the same track on MNIST (`methods.Track`). Every choice that could leak test information (the weakest class, the reported
T, the logit bias) is made on a validation split held out from the training pool.

Reconstructions (labelled in the chapter): the T-PGD rule and both defence tweaks.
"""
from __future__ import annotations

import time

import torch

from ...evaluation import Evaluation, Points, mean_logit_margin, per_class_accuracy, tpgd_name, zero_gradient_fraction
from ...methods import catalogue
from ..common import Run, config_of, model_targets, weight_norms
from ...recheck import Target
from ..roles import attack_roles
from . import methods
from .config import ClasswiseConfig


def run(cfg: ClasswiseConfig) -> dict:
    """The whole chapter: `config -> results` (a JSON-serialisable dict): the CIFAR-10 track, and the same
    pipeline on MNIST under results["mnist"] (with `mnist`)."""
    r = Run(cfg)
    results = track(r, cfg, methods.cifar_track(cfg))
    if cfg.mnist:
        results["mnist"] = track(r, cfg, methods.mnist_track(cfg))
    return r.finish("classwise", results)


def track(r: Run, cfg: ClasswiseConfig, t: methods.Track) -> dict:
    """One dataset's pipeline: PGD-AT and TRADES, the validation choices (weakest class, T), the class-weighted
    model, every evaluation, the bias sweep and the diagnostics."""
    split = methods.split(cfg, t)
    classes = list(split.data.classes)
    test, val = r.points(split, "test", t.aa_per_class), r.points(split, "val")
    common = {"model_spec": t.model, "train_cfg": methods.train_config(cfg, t)}
    models = {name: r.train(t.key(name), split, objective=objective, **common)
              for name, objective in (("pgd_at", methods.pgd_at(t)), ("trades", methods.trades(cfg, t)))}

    pgd = tpgd_name(1.0, t.eval_steps)
    val_ev, _ = r.evaluate(t.key("pgd_at_validation"), models["pgd_at"], val,
                           methods.validation_protocol(cfg, t, cfg.temperatures))
    selection = select(cfg, t, val_ev, pgd)
    models["class_weighted"] = r.train(t.key("class_weighted"), split, **common,
                                       objective=methods.class_weighted(cfg, t, len(classes), selection["worst_class"]))

    records, evals = {}, {}
    evals["pgd_at"], records["pgd_at"] = r.evaluate(t.key("pgd_at"), models["pgd_at"], test,
                                                    methods.test_protocol(cfg, t, cfg.temperatures), model_key="pgd_at")
    picked = methods.test_protocol(cfg, t, (selection["t_picked"],))
    for name in ("trades", "class_weighted"):
        evals[name], records[name] = r.evaluate(t.key(name), models[name], test, picked, model_key=name)
    bias = bias_sweep(r, cfg, t, models["pgd_at"], val, test, val_ev, evals["pgd_at"], selection["worst_class"], pgd)
    records["pgd_at_bias"] = bias.pop("evaluation")
    return {
        "classes": classes,
        "attack_roles": attack_roles(pgd=pgd, fgsm="fgsm", cw=f"cw{t.eval_steps}", aa="aa",
                                     tpgd=tpgd_name(selection["t_picked"], t.eval_steps),
                                     long=[f"pgd{k}" for k in t.long_steps]),
        "selection": selection,
        "evaluations": records,
        "bias": bias,
        "diagnostics": diagnostics(cfg, models, test),
    }


def rechecks(results: dict) -> list[Target]:
    """Every committed test evaluation of both tracks, each model served as recorded (`advfair.recheck`)."""
    cfg = config_of(ClasswiseConfig, results)
    tracks = ((methods.cifar_track(cfg), results, ""), (methods.mnist_track(cfg), results.get("mnist"), "mnist_"))
    return [target for t, view, prefix in tracks if view is not None
            for target in model_targets(view, methods.split(cfg, t), methods.test_protocol(cfg, t, ()), prefix)]


def baseline(cfg: ClasswiseConfig) -> tuple[torch.nn.Module, dict]:
    """The chapter's PGD-AT model (from the model cache when it was trained before) and its record."""
    r, t = Run(cfg), methods.cifar_track(cfg)
    model = r.train("pgd_at", methods.split(cfg, t), model_spec=t.model,
                    objective=methods.pgd_at(t), train_cfg=methods.train_config(cfg, t))
    return model, r.models["pgd_at"]


def select(cfg: ClasswiseConfig, t: methods.Track, val_ev: Evaluation, pgd: str) -> dict:
    """On validation: the weakest class under PGD, and the strongest T != 1 (lowest robust accuracy; ties:
    the smaller T). T = 1 is PGD itself, so it is never the T-PGD that C5 and C6 compare with PGD."""
    y = val_ev.labels()
    per_class = per_class_accuracy(val_ev.correct(pgd), y, len(val_ev.classes))
    accuracy = {temp: float(val_ev.correct(tpgd_name(temp, t.eval_steps)).mean()) for temp in cfg.temperatures}
    t_picked = min((temp for temp in cfg.temperatures if temp != 1), key=lambda temp: (accuracy[temp], temp))
    return {"worst_class": int(per_class.argmin()), "val_per_class_pgd": per_class.tolist(),
            "tpgd_val_accuracy": {str(temp): a for temp, a in accuracy.items()}, "t_picked": t_picked}


def pick_bias(rows: list[dict], tolerance: float) -> float:
    """Among b > 0: the highest validation PGD accuracy of the target class among those whose validation mean
    stays within `tolerance` of b = 0's (ties: the smaller b); if none does, the smallest b > 0."""
    floor = next(row["val_mean"] for row in rows if row["bias"] == 0) - tolerance
    candidates = [row for row in rows if row["bias"] > 0]
    within = [row for row in candidates if row["val_mean"] >= floor]
    if not within:
        return min(row["bias"] for row in candidates)
    return max(within, key=lambda row: (row["val_target_class"], -row["bias"]))["bias"]


served_bias = catalogue.entry("pgd_at_bias").served  # the tweak's served head: z_worst += b


def bias_sweep(r: Run, cfg: ClasswiseConfig, t: methods.Track, model: torch.nn.Module, val: Points, test: Points,
               val_ev: Evaluation, test_ev: Evaluation, worst: int, pgd: str) -> dict:
    """Inference-time tweak z_worst += b, attacked as served. Each b gets PGD on validation and on test (the
    trade-off curve); b = 0 reuses the untweaked evaluations. The b `pick_bias` chooses on validation is
    then evaluated with the whole protocol, AutoAttack included."""
    started = time.perf_counter()
    num_classes = len(test.classes)
    val_protocol = methods.pgd_only(methods.validation_protocol(cfg, t, (1.0,)), pgd)
    test_protocol = methods.pgd_only(methods.test_protocol(cfg, t, (1.0,)), pgd)
    rows = []
    for b in sorted(cfg.bias_grid):
        spec = served_bias(num_classes, worst, b)
        v = val_ev if b == 0 else r.evaluate(t.key(f"bias_{b:g}_val"), model, val, val_protocol, spec=spec)[0]
        e = test_ev if b == 0 else r.evaluate(t.key(f"bias_{b:g}_test"), model, test, test_protocol, spec=spec)[0]
        val_pc = per_class_accuracy(v.correct(pgd), v.labels(), num_classes)
        test_pc = per_class_accuracy(e.correct(pgd), e.labels(), num_classes)
        rows.append({"bias": b, "val_mean": float(val_pc.mean()), "val_worst": float(val_pc.min()),
                     "val_target_class": float(val_pc[worst]), "test_per_class": test_pc.tolist(),
                     "test_mean": float(test_pc.mean()), "test_worst": float(test_pc.min()),
                     "test_target_class": float(test_pc[worst]),
                     "test_clean": float((e.predicted("clean") == e.labels()).mean())})
    picked = pick_bias(rows, cfg.bias_tolerance)
    _, record = r.evaluate(t.key("pgd_at_bias"), model, test, methods.test_protocol(cfg, t, ()),
                           spec=served_bias(num_classes, worst, picked), model_key="pgd_at")
    r.timed(t.key("bias_sweep"), started)
    return {"target_class": worst, "rows": rows, "picked": picked, "evaluation": record}


def diagnostics(cfg: ClasswiseConfig, models: dict, test: Points) -> dict:
    """The logit scale of every model (a T-PGD confound), T-PGD's vanishing gradients, PGD-AT's weight norms."""
    bs = cfg.eval_batch_size
    return {
        "mean_logit_margin": {n: mean_logit_margin(m, test.x, test.y, batch_size=bs) for n, m in models.items()},
        "zero_gradient_fraction": {str(temp): zero_gradient_fraction(models["pgd_at"], test.x, test.y, temperature=temp,
                                                                     batch_size=bs) for temp in cfg.temperatures},
        "weight_norms": weight_norms(models["pgd_at"]),
    }
