"""Chapter pipeline: adversarial robustness under long-tailed data (RoBal; Wu et al., CVPR 2021).

`run(config) -> results` trains (or loads from the cache) adversarially trained models on a long-tailed CIFAR
training set drawn as the LDAM/RoBal code draws it, plus a balanced reference set of the same size
("Sml-Bal"), and evaluates each as served under clean, PGD, CW, PGD on 10x logits and AutoAttack (APGD-CE +
APGD-T) on the same points. On the AT-FC baseline's weights it also serves Table 1's inference remedies
(LA-post, re-scaling, tau-normalisation) and runs the logit-scale sweep (logits / 10^kappa). A plain
(standard-trained) model on the long-tailed set is the reference of C1.
Every post-hoc shift tau_p is picked on a balanced validation split drawn from training images the
long-tailed set leaves unused (never on test).
"""
from __future__ import annotations

import dataclasses
import time

import numpy as np
import torch
from torch import nn

from ... import attacks
from ...evaluation import Points, feature_norm_ratio, head_middle_tail, predict, tpgd_name
from ...evaluation.protocol import encode_labels
from ...inference import Scale, deploy, posthoc
from ...recheck import Target
from ..common import TEST_SEED_OFFSET, Run, config_of, model_targets, weight_norms
from ..roles import attack_roles
from . import methods
from .config import RobalConfig


def run(cfg: RobalConfig) -> dict:
    """The whole chapter: `config -> results` (a JSON-serialisable dict)."""
    r = Run(cfg)
    lt, sml_bal = methods.splits(cfg)
    test, val = r.points(lt, "test", cfg.aa_per_class), r.points(lt, "val")
    specs = methods.model_specs(cfg)
    models = {}
    for key, (kind, spec, objective) in methods.plan(cfg).items():
        models[key] = r.train(key, sml_bal if kind == "sml_bal" else lt, model_spec=specs[spec], objective=objective,
                              train_cfg=methods.train_config(cfg))

    la_post = pick_tau_p(cfg, models["at_fc"], val, cfg.la_post_grid, 1.0)
    on_at_fc = ("la_post", "rescale", "tau_norm")  # inference remedies on AT-FC's weights
    names = [n for n in methods.MODEL_LABELS if n in models or n in on_at_fc or (
        n == "robal_r_s" and "robal_r" in models and cfg.robal_r_eval_scale != cfg.robal_s)]
    records, evals = {}, {}
    for name in names:
        key, spec = methods.served(cfg, name, la_post["picked"], models["at_fc"])
        standard = cfg.standard_aa and name in ("at_fc", "robal_n", "robal_r")
        evals[name], records[name] = r.evaluate(name, models[key], test, methods.test_protocol(cfg, standard_aa=standard),
                                                spec=spec, model_key=key)
    pgd = tpgd_name(1.0, cfg.eval_steps)
    results = {
        "classes": list(lt.data.classes), "counts": cfg.counts(), "groups": head_middle_tail(len(lt.data.classes)),
        "split_sizes": {"long_tailed": len(lt.train), "sml_bal": len(sml_bal.train), "val": len(lt.val),
                        "test": len(lt.test), "aa_points": len(test.subset)},
        "attack_roles": attack_roles(pgd=pgd, fgsm="fgsm" if cfg.fgsm else None, cw=f"cw{cfg.eval_steps}", aa="aa",
                                     pgd_scaled=tpgd_name(1 / cfg.logit_scale_attack, cfg.eval_steps),
                                     mim=f"mim{cfg.eval_steps}" if cfg.mim else None),
        "validation": {"la_post": la_post},
        "evaluations": records,
        "kappa": kappa_sweep(r, cfg, models["at_fc"], test, records["at_fc"]),
        "ablation": ablation(r, cfg, models, val, test),
        "weight_norms": weight_norms(models["at_fc"]),
        "feature_norms": feature_norms(cfg, models["at_fc"], test),
    }
    return r.finish("robal", results)


def rechecks(results: dict) -> list[Target]:
    """Each trained model's own evaluation (AT-FC's raw head, not the remedies served on its weights: every model
    once, as the tier's check asks, and ten served heads would double its cost), from the committed weights."""
    cfg = config_of(RobalConfig, results)
    lt, sml_bal = methods.splits(cfg)
    targets = [t for t in model_targets(results, lt, methods.test_protocol(cfg)) if t.label == t.model]
    return [dataclasses.replace(t, split=sml_bal) if t.model == "sml_bal" else t for t in targets]


def val_clean_accuracy(cfg: RobalConfig, model: nn.Module, val: Points) -> float:
    """Clean accuracy on the balanced validation split (= balanced accuracy)."""
    return float((predict(model, val.x, batch_size=cfg.eval_batch_size) == val.y).float().mean())


def pick_tau_p(cfg: RobalConfig, model: nn.Module, val: Points, grid: tuple[float, ...], scale: float) -> dict:
    """The post-hoc shift with the best balanced validation accuracy (ties: the smaller tau_p). Logit
    adjustment targets the balanced error, so the choice uses clean validation accuracy only."""
    accuracy = {tau: val_clean_accuracy(cfg, deploy(model, posthoc(cfg.counts(), tau, scale)), val) for tau in grid}
    picked = max(sorted(grid), key=lambda tau: accuracy[tau])
    return {"grid": list(grid), "val_accuracy": {str(t): a for t, a in accuracy.items()}, "picked": picked}


def kappa_sweep(r: Run, cfg: RobalConfig, model: nn.Module, test: Points, baseline: dict) -> dict:
    """C5: logits / 10^kappa (the paper's W_i / 10^kappa), served and attacked as such. kappa = 0 is the
    baseline itself (its evaluation is reused)."""
    started = time.perf_counter()
    evaluations = {"0": baseline}
    for kappa in sorted(k for k in cfg.kappa_grid if k != 0):
        _, evaluations[f"{kappa:g}"] = r.evaluate(f"kappa_{kappa:g}", model, test, methods.pgd_and_aa(cfg),
                                                  spec=(Scale(10.0 ** -kappa),), model_key="at_fc")
    r.timed("kappa_sweep", started)
    return {"grid": sorted(cfg.kappa_grid), "evaluations": evaluations}


def ablation(r: Run, cfg: RobalConfig, models: dict[str, nn.Module], val: Points, test: Points) -> dict:
    """C9 (Table 3, block 2: m0 = 0.1, tau_m = 0): clean and AA at the end of training (Eq. 11 with
    tau_p = 0) and after the tau_p picked on validation. RoBal-N joins when it is trained with tau_m = 0."""
    started = time.perf_counter()
    entries = {tau_b: methods.ablation_key(tau_b) for tau_b in cfg.ablation_tau_b}
    if "robal_n" in models and cfg.robal_n_tau_m == 0 and cfg.robal_n_tau_b not in entries:
        entries[cfg.robal_n_tau_b] = "robal_n"
    rows = []
    for tau_b, key in sorted(entries.items()):
        picked = pick_tau_p(cfg, models[key], val, cfg.tau_p_grid, cfg.robal_s)
        end = r.evaluate(f"ablation_{tau_b:g}_end", models[key], test, methods.pgd_and_aa(cfg, pgd=False),
                         spec=posthoc(cfg.counts(), 0.0, cfg.robal_s), model_key=key)[1]
        best = end if picked["picked"] == 0 else r.evaluate(
            f"ablation_{tau_b:g}_best", models[key], test, methods.pgd_and_aa(cfg, pgd=False),
            spec=posthoc(cfg.counts(), picked["picked"], cfg.robal_s), model_key=key)[1]
        rows.append({"tau_b_minus_tau_m": tau_b, "model": key, "validation": picked, "end": end, "best": best})
    r.timed("ablation", started)
    return {"rows": rows}


def feature_norms(cfg: RobalConfig, model: nn.Module, test: Points) -> dict:
    """C7: ||f(x + delta)|| / ||f(x)|| of AT-FC under PGD (every step, no early stop) on every test point,
    with the per-point outcomes that split the points into fooled and still-robust ones."""
    generator = torch.Generator().manual_seed(cfg.seed + TEST_SEED_OFFSET)
    bs = cfg.eval_batch_size
    x_adv = torch.cat([attacks.pgd(model, test.x[i:i + bs], test.y[i:i + bs], eps=cfg.eps, alpha=cfg.eval_alpha,
                                   steps=cfg.eval_steps, generator=generator, fold_bn=True) for i in range(0, len(test.x), bs)])
    y = test.y.cpu().numpy()
    clean = predict(model, test.x, batch_size=bs).cpu().numpy() == y
    adv = predict(model, x_adv, batch_size=bs).cpu().numpy() == y
    ratio = feature_norm_ratio(model, test.x, x_adv, batch_size=bs)
    return {"ratio": np.asarray(ratio, dtype=float).tolist(), "fooled": encode_labels((clean & ~adv).astype(int)),
            "robust": encode_labels((clean & adv).astype(int))}
