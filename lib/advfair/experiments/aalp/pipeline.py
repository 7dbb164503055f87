"""Chapter pipeline: Adversarial Logit Pairing (exact core) and an AALP-style reconstruction, under
gradient-masking checks.

`run(config) -> results` trains (or loads from the cache) a standard model, PGD-AT, M-PGD (lambda = 0), ALP
and the AALP-style reconstruction with its ablations (Guided Dropout only, weights only), then:
- evaluates each under PGD-20 and CW-20 on every test point, and PGD-100 with restarts, AutoAttack and Square
  (black-box) on the check points (a stratified part of the test points), plus PGD-20 at every radius of
  the eps sweep on the check points;
- measures the share of test points whose clean-point CE gradient is exactly zero and the mean logit margin;
- computes the last-layer contribution statistics of every model on the clean test points;
- keeps C2's training records (r_i = lambda l_lp,i / l_cls,i) from the history of every pairing model.

Reconstructions (labelled in the chapter): the contribution statistics, Guided Dropout and the sample weights.
"""
from __future__ import annotations

import time

import numpy as np
import torch
from torch import nn

from ...contributions import contribution_statistics
from ...evaluation import Points, mean_logit_margin, zero_gradient_fraction
from ...recheck import Target
from ..common import Run, config_of, model_targets
from . import methods
from .config import AALPConfig


def run(cfg: AALPConfig) -> dict:
    """The whole chapter: `config -> results` (a JSON-serialisable dict)."""
    r = Run(cfg)
    split = methods.split(cfg)
    test = r.points(split, "test", cfg.aa_per_class)
    models = {key: r.train(key, split, model_spec=methods.model_spec(cfg),
                           objective=objective, train_cfg=methods.train_config(cfg))
              for key, objective in methods.plan(cfg).items()}
    check = check_points(test)
    records, sweep = {}, {}
    for key, model in models.items():
        _, records[key] = r.evaluate(key, model, test, methods.test_protocol(cfg), model_key=key)
        sweep[key] = {f"{e:g}": r.evaluate(f"{key}_eps{e:g}", model, check, methods.sweep_protocol(cfg, e),
                                           model_key=key)[1] for e in sorted(cfg.sweep_eps) if e != cfg.eps}
    results = {
        "classes": list(split.data.classes),
        "attack_roles": methods.attack_roles_of(cfg),
        "labels": {k: methods.MODEL_LABELS[k] for k in models},
        "switches": methods.switches(cfg),
        "split_sizes": {"train": len(split.train), "test": len(test.y), "check": len(test.subset)},
        "evaluations": records,
        "sweep": {"eps": sorted(cfg.sweep_eps), "evaluations": sweep},
        "contributions": contributions(r, cfg, models, test),
        "diagnostics": diagnostics(r, cfg, models, test),
        "training": training_records(r),
    }
    return r.finish("aalp", results)


def check_points(test: Points) -> Points:
    """The check points alone (all of them the subset): the eps sweep runs on them."""
    idx = torch.as_tensor(test.subset, device=test.x.device)
    return Points.of(test.x[idx], test.y[idx], test.classes)


def _rounded(values: np.ndarray, digits: int = 4) -> list:
    return [None if not np.isfinite(v) else round(float(v), digits) for v in np.asarray(values, dtype=float)]


def contributions(r: Run, cfg: AALPConfig, models: dict[str, nn.Module], test: Points) -> dict:
    """C1/C5: per test point, the concentration of its contributions to the predicted logit (eval mode)."""
    started = time.perf_counter()
    out = {"k": "predicted class", "sign": cfg.contrib_sign, "top": list(cfg.contrib_top), "mass": cfg.contrib_mass,
           "models": {}}
    for key, model in models.items():
        stats = contribution_statistics(model, test.x, sign=cfg.contrib_sign, top=cfg.contrib_top, mass=cfg.contrib_mass,
                                        batch_size=cfg.eval_batch_size)
        out["models"][key] = {"per_point": {k: _rounded(v) for k, v in stats["per_point"].items()},
                              "profile": _rounded(stats["profile"], 6),
                              "decomposition_error": stats["decomposition_error"]}
    r.timed("contributions", started)
    return out


def diagnostics(r: Run, cfg: AALPConfig, models: dict[str, nn.Module], test: Points) -> dict:
    """Gradient-masking diagnostics: the share of points whose clean CE input gradient is all zero, and the
    mean logit margin z_y - max_(j != y) z_j (large margins saturate the softmax)."""
    started = time.perf_counter()
    bs = cfg.eval_batch_size
    out = {"points": len(test.y),
           "zero_gradient_fraction": {k: zero_gradient_fraction(m, test.x, test.y, batch_size=bs) for k, m in models.items()},
           "mean_logit_margin": {k: mean_logit_margin(m, test.x, test.y, batch_size=bs) for k, m in models.items()}}
    r.timed("diagnostics", started)
    return out


def training_records(r: Run) -> dict:
    """C2: each pairing model's per-epoch r records (from its training history; cached models keep theirs)."""
    return {key: [{"epoch": h["epoch"], "cls_loss": h.get("cls_loss"), "pair_loss": h.get("pair_loss"), **h["c2"]}
                  for h in meta["history"] if "c2" in h]
            for key, meta in r.models.items() if any("c2" in h for h in meta["history"])}


def rechecks(results: dict) -> list[Target]:
    """Every committed test evaluation, its model from the committed weights (`advfair.recheck`)."""
    cfg = config_of(AALPConfig, results)
    return model_targets(results, methods.split(cfg), methods.test_protocol(cfg))
