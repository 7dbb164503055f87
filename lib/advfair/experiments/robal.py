"""Chapter pipeline: adversarial robustness under long-tailed data (RoBal; Wu et al., CVPR 2021).

`run(config) -> results` trains (or loads from the cache) adversarially trained models on a long-tailed
CIFAR training set drawn as the LDAM/RoBal code draws it, plus a balanced reference set of the same size
("Sml-Bal"), and evaluates each under clean, PGD, CW, PGD on 10x logits and AutoAttack (APGD-CE + APGD-T),
per class and per head / middle / tail group. On the AT-FC baseline it also runs the logit-scale sweep
(logits / 10^kappa) and picks the LA-post shift tau_p on a balanced validation split drawn from training
images the long-tailed set leaves unused (never on test).

Models: AT-FC on Sml-Bal, AT-FC on LT (+ LA-post at inference), AT-Cos (s = 16), AT + LA-train
(bias-free head), TRADES (paper profile), RoBal-N, RoBal-R, and RoBal ablations over tau_b - tau_m.
"""
from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from .. import attacks
from ..attacks import START_KINDS
from ..data import class_balanced_indices, long_tailed_counts
from ..evaluation import (classwise_report, feature_norm_ratio, group_report, head_middle_tail,
                          paired_group_difference, predict, robust_correctness, spearman)
from ..models import MODELS, LogitScale, posthoc_adjusted
from ..tables import pct, with_ci
from ..trainer import TrainConfig, resolve_device
from ..validation import (check_bool, check_choice, check_eps, check_fields, check_non_negative, check_number,
                          check_positive, fail, freeze_lists)
from .cache import ModelCache
from .common import (apply_overrides, attack_suite, environment, long_tailed_split, run_attacks, run_autoattack,
                     subset_per_class, tpgd_name, train_cached)

# The trained models a run can include; "at_fc" is the baseline every comparison needs.
MODEL_KEYS = ("sml_bal", "at_fc", "at_cos", "la_train", "trades", "robal_n", "robal_r")
LR_SCHEDULES = {"code_compound": "code_compound", "paper_step": "step"}
DATASET_CLASSES = {"cifar10": 10, "cifar100": 100}
TRAIN_IMAGES_PER_CLASS = {"cifar10": 5000, "cifar100": 500}


@dataclass(frozen=True)
class RobalConfig:
    profile: str = "cpu"
    dataset: str = "cifar10"
    model: str = "small_cnn"
    width: int = 8  # at this scale the models are limited by data and steps, not width: 8 costs half of 16
    # Data: n_c = int(n_max * imbalance^(c / (C - 1))), drawn with the LDAM rule and `data_seed`.
    n_max: int = 1000
    imbalance: float = 0.02
    data_seed: int = 0
    sml_bal_per_class: int | None = None  # None: the long-tailed total / C (280 at the defaults)
    val_per_class: int = 50
    test_per_class: int | None = 100  # the spec's CPU plan says 200; halved for the 5-minute budget
    models: tuple[str, ...] = ("sml_bal", "at_fc", "at_cos", "la_train", "trades", "robal_n", "robal_r")
    # Training (adversarial training for every model).
    eps: float = 8 / 255
    train_steps: int = 3
    train_alpha: float = 3 / 255
    train_start: str = "symmetric"  # the released code starts at x + eps * U[0, 1) ("positive": paper profile)
    epochs: int = 4
    batch_size: int = 32  # more SGD steps per epoch than the paper's 64 (lr scaled with it)
    augment: bool = False  # a schedule this short learns faster without crop + flip
    lr: float = 0.05
    weight_decay: float = 2e-4
    lr_schedule: str = "code_compound"
    milestones: tuple[int, ...] = (3, 4)  # the paper's (60, 75) of 80 epochs, scaled to 4
    # Baselines.
    cos_scale: float = 16.0
    la_tau: float = 1.0
    la_post_grid: tuple[float, ...] = (0.5, 1.0)
    trades_beta: float = 6.0
    # RoBal (CIFAR-10-LT released configs).
    robal_s: float = 10.0
    robal_m0: float = 0.1
    robal_gamma: float = 1 / 32
    kl_weight: float = 6.0
    inner_scale: float = 1.0
    robal_n_tau_b: float = 1.2
    robal_n_tau_m: float = 0.0
    robal_n_tau_p: float = 0.1
    robal_r_tau_b: float = 1.5
    robal_r_tau_m: float = 0.3
    robal_r_eval_scale: float = 1.0
    ablation_tau_b: tuple[float, ...] = (0.0,)  # RoBal-N adds tau_b - tau_m = 1.2
    tau_p_grid: tuple[float, ...] = (0.0, 0.25, 0.5, 1.0, 1.5)
    # Evaluation.
    eval_steps: int = 20
    eval_alpha: float = 2 / 255
    logit_scale_attack: float = 10.0
    fgsm: bool = False
    mim: bool = False
    aa_per_class: int | None = 10  # AutoAttack costs ~1000 gradient steps per robust point: the dearest column
    standard_aa: bool = False
    kappa_grid: tuple[float, ...] = (-3.0, 0.0, 3.0)  # each exponent costs an AutoAttack run
    kappa_per_class: int | None = 10
    n_boot: int = 1000
    seed: int = 1  # the released code trains with seed 1 (its data seed is 0)
    device: str = "auto"
    eval_batch_size: int = 500
    progress: bool = False
    data_dir: str | None = None
    cache_dir: str | None = None

    def __post_init__(self) -> None:
        freeze_lists(self, ("models", "milestones", "la_post_grid", "ablation_tau_b", "tau_p_grid", "kappa_grid"))
        check_choice("profile", self.profile, PROFILES)
        check_choice("dataset", self.dataset, DATASET_CLASSES)
        check_choice("model", self.model, MODELS)
        check_fields(self, ("width", "n_max", "val_per_class", "train_steps", "epochs", "batch_size", "eval_steps",
                            "n_boot", "eval_batch_size"), check_positive, integer=True)
        check_fields(self, ("sml_bal_per_class", "test_per_class", "aa_per_class", "kappa_per_class"), check_positive,
                     optional=True, integer=True)
        check_number("imbalance", self.imbalance, low=0, high=1, low_open=True)
        check_fields(self, ("data_seed", "seed"), check_non_negative, integer=True)
        self._check_data_sizes()
        for key in self.models:
            check_choice("models", key, MODEL_KEYS)
        if "at_fc" not in self.models or len(set(self.models)) != len(self.models):
            fail("models", list(self.models), "a list of distinct model keys that includes 'at_fc' (the baseline)")
        check_eps("eps", self.eps)
        check_fields(self, ("train_alpha", "eval_alpha", "lr", "cos_scale", "robal_s", "inner_scale",
                            "robal_r_eval_scale"), check_positive)
        check_choice("train_start", self.train_start, START_KINDS)
        check_choice("lr_schedule", self.lr_schedule, LR_SCHEDULES)
        for m in self.milestones:  # as TrainConfig will check: fail here, before any data is loaded
            check_number("milestones", m, low=1, high=self.epochs, integer=True)
        check_fields(self, ("weight_decay", "trades_beta", "robal_m0", "robal_gamma", "kl_weight", "robal_n_tau_p"),
                     check_non_negative)
        check_fields(self, ("la_tau", "robal_n_tau_b", "robal_n_tau_m", "robal_r_tau_b", "robal_r_tau_m"), check_number)
        for name in ("la_post_grid", "tau_p_grid"):
            self._check_grid(name, low=0)
        for tau_b in self.ablation_tau_b:
            check_number("ablation_tau_b", tau_b)
        self._check_grid("kappa_grid", low=-8, high=8)
        if 0 not in self.kappa_grid:
            fail("kappa_grid", list(self.kappa_grid), "a list of exponents in [-8, 8] that includes 0 (no rescaling)")
        check_positive("logit_scale_attack", self.logit_scale_attack)
        if self.logit_scale_attack == 1:
            fail("logit_scale_attack", self.logit_scale_attack, "a factor > 0 other than 1 (1 is plain PGD)")
        check_fields(self, ("augment", "fgsm", "mim", "standard_aa", "progress"), check_bool)
        resolve_device(self.device)

    def _check_grid(self, name: str, *, low: float | None = None, high: float | None = None) -> None:
        grid = getattr(self, name)
        if not grid:
            fail(name, list(grid), "a non-empty list of numbers")
        for value in grid:
            check_number(name, value, low=low, high=high)

    def _check_data_sizes(self) -> None:
        available = TRAIN_IMAGES_PER_CLASS[self.dataset]
        if self.n_max + self.val_per_class > available:
            fail("n_max", self.n_max, f"n_max + val_per_class <= {available}: the validation split comes from "
                                      "training images the long-tailed set leaves unused")
        counts = self.counts()
        if counts[-1] < 1:
            fail("n_max", self.n_max, f"n_max * imbalance >= 1 (imbalance={self.imbalance:g}), so that the "
                                      "rarest class keeps at least one training image")
        if sum(counts) < self.batch_size:
            fail("batch_size", self.batch_size, f"at most the {sum(counts)} long-tailed training images "
                                                "(training drops the last incomplete batch)")

    def counts(self) -> list[int]:
        """Training images per class of the long-tailed set."""
        return long_tailed_counts(self.n_max, self.imbalance, DATASET_CLASSES[self.dataset])

    def to_dict(self) -> dict:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in dataclasses.asdict(self).items()}


PROFILES: dict[str, dict[str, Any]] = {
    "cpu": {},
    # Paper scale (GPU): WRN-34-10, the released training settings, the full test set.
    # n_max = 4950, not 5000: at 5000 the head class has no unused training image left for validation.
    "paper": {
        "model": "wrn34_10", "n_max": 4950, "test_per_class": None, "batch_size": 64, "augment": True, "lr": 0.1,
        "models": ("at_fc", "la_train", "trades", "robal_n", "robal_r"),
        "train_steps": 5, "train_alpha": 2 / 255, "train_start": "positive", "epochs": 80, "milestones": (60, 75),
        "ablation_tau_b": (), "fgsm": True, "mim": True, "aa_per_class": None, "standard_aa": True,
        "kappa_grid": (-4.0, -3.0, -2.0, -1.0, 0.0, 1.0, 2.0, 3.0), "kappa_per_class": 100, "eval_batch_size": 1000,
    },
}


def make_config(profile: str = "cpu", **overrides: Any) -> RobalConfig:
    """The config of a named profile with some fields overridden (all fields are validated)."""
    return apply_overrides(RobalConfig, profile, overrides, PROFILES)


def _train_config(cfg: RobalConfig) -> TrainConfig:
    # drop_last as in the released code: the tail classes are too small for a ragged last batch to be harmless.
    return TrainConfig(epochs=cfg.epochs, batch_size=cfg.batch_size, lr=cfg.lr, weight_decay=cfg.weight_decay,
                       schedule=LR_SCHEDULES[cfg.lr_schedule], milestones=cfg.milestones, augment=cfg.augment,
                       drop_last=True, seed=cfg.seed)


class _Chapter:
    """State shared by the steps of one run (kept small: a run is one call of `run`)."""

    def __init__(self, cfg: RobalConfig):
        self.cfg = cfg
        self.device = resolve_device(cfg.device)
        self.cache = ModelCache(cfg.cache_dir)
        self.counts = cfg.counts()
        self.lt = long_tailed_split(cfg.dataset, n_max=cfg.n_max, imbalance=cfg.imbalance,
                                    val_per_class=cfg.val_per_class, test_per_class=cfg.test_per_class,
                                    data_seed=cfg.data_seed, data_dir=cfg.data_dir)
        self.sml_bal_per_class = cfg.sml_bal_per_class or round(sum(self.counts) / len(self.counts))
        # Sml-Bal: as many training images as the long-tailed set, balanced; never a validation image.
        self.sml_bal = dataclasses.replace(self.lt, train=class_balanced_indices(
            self.lt.data.y_train, self.sml_bal_per_class, seed=cfg.data_seed + 3, exclude=self.lt.val))
        self.classes = list(self.lt.data.classes)
        self.groups = head_middle_tail(len(self.classes))
        self.x_test, self.y_test = self.lt.float_images("test", self.device)
        self.x_val, self.y_val = self.lt.float_images("val", self.device)
        self.y_test_np = self.y_test.cpu().numpy()
        self.y_val_np = self.y_val.cpu().numpy()
        self.aa_idx = self._points(cfg.aa_per_class)
        self.kappa_idx = self._points(cfg.kappa_per_class)
        self.seconds: dict[str, float] = {}

    def _points(self, per_class: int | None) -> np.ndarray:
        return np.arange(len(self.y_test_np)) if per_class is None else subset_per_class(self.y_test_np, per_class)

    def data_spec(self, kind: str) -> dict:
        cfg = self.cfg
        spec = {"dataset": cfg.dataset, "kind": kind, "rule": "ldam", "n_max": cfg.n_max, "imbalance": cfg.imbalance,
                "data_seed": cfg.data_seed}
        if kind == "sml_bal":  # drawn around the validation split, which depends on the long-tailed set
            spec.update(val_per_class=cfg.val_per_class, per_class=self.sml_bal_per_class)
        return spec

    def train(self, model_spec: dict, objective: str, params: dict, *, kind: str = "long_tailed"):
        split = self.sml_bal if kind == "sml_bal" else self.lt
        return train_cached(self.cache, split, data_spec=self.data_spec(kind), model_spec=model_spec,
                            objective=objective, objective_params=params, train_cfg=_train_config(self.cfg),
                            device=self.device, progress=self.cfg.progress)

    def suite(self) -> dict:
        cfg = self.cfg
        return attack_suite(eps=cfg.eps, alpha=cfg.eval_alpha, steps=cfg.eval_steps, seed=cfg.seed + 20,
                            temperatures=(1 / cfg.logit_scale_attack,), fgsm=cfg.fgsm, mim=cfg.mim,
                            cw_loss="cw_hinge")

    def autoattack(self, model: nn.Module, idx: np.ndarray, version: str = "subset") -> tuple[np.ndarray, list[str]]:
        pred, warnings, _ = run_autoattack(model, self.x_test[idx], self.y_test[idx], eps=self.cfg.eps,
                                           version=version, batch_size=self.cfg.eval_batch_size, seed=self.cfg.seed)
        return pred, warnings

    def evaluate(self, name: str, model: nn.Module, inference: dict, *, standard_aa: bool = False) -> dict:
        """The attack suite on the test subset plus AutoAttack (APGD-CE + APGD-T) on the AA points."""
        cfg = self.cfg
        started = time.perf_counter()
        preds, attack_seconds = run_attacks(model, self.x_test, self.y_test, self.suite(),
                                            batch_size=cfg.eval_batch_size)
        aa_preds = {k: v[self.aa_idx] for k, v in preds.items()}
        aa_preds["aa"], aa_warnings = self.autoattack(model, self.aa_idx)
        if standard_aa:
            aa_preds["aa_standard"], standard_warnings = self.autoattack(model, self.aa_idx, "standard")
            aa_warnings = aa_warnings + standard_warnings
        y_aa = self.y_test_np[self.aa_idx]
        correct, aa_correct = robust_correctness(preds, self.y_test_np), robust_correctness(aa_preds, y_aa)
        self.seconds[f"evaluate_{name}"] = time.perf_counter() - started
        return {
            "inference": inference,
            "report": classwise_report(self.y_test_np, preds, self.classes, n_boot=cfg.n_boot, seed=cfg.seed),
            "aa_report": classwise_report(y_aa, aa_preds, self.classes, n_boot=cfg.n_boot, seed=cfg.seed),
            "groups": group_report(self.y_test_np, correct, self.groups, n_boot=cfg.n_boot, seed=cfg.seed),
            "aa_groups": group_report(y_aa, aa_correct, self.groups, n_boot=cfg.n_boot, seed=cfg.seed),
            "aa_warnings": aa_warnings,
            "attack_seconds": attack_seconds,
            "_correct": correct,  # for the paired comparisons; dropped from the results
            "_aa_correct": aa_correct,
        }

    def adjusted(self, model: nn.Module, tau_p: float, scale: float) -> nn.Module:
        """Test-time logits scale * z - tau_p * log pi (Eq. 11), on the run's device, in eval mode."""
        return posthoc_adjusted(model, self.counts, tau_p, scale).to(self.device).eval()

    def val_clean_accuracy(self, model: nn.Module) -> float:
        """Clean accuracy on the balanced validation split (= balanced accuracy)."""
        return float((predict(model, self.x_val, batch_size=self.cfg.eval_batch_size).cpu().numpy()
                      == self.y_val_np).mean())

    def pick_tau_p(self, model: nn.Module, grid: tuple[float, ...], scale: float) -> dict:
        """The post-hoc shift with the best balanced validation accuracy (ties: the smaller tau_p).
        Logit adjustment targets the balanced error, so the choice uses clean validation accuracy only."""
        accuracy = {tau: self.val_clean_accuracy(self.adjusted(model, tau, scale)) for tau in grid}
        picked = max(sorted(grid), key=lambda tau: accuracy[tau])
        return {"grid": list(grid), "val_accuracy": {str(t): a for t, a in accuracy.items()}, "picked": picked}


def _model_specs(cfg: RobalConfig) -> dict[str, dict]:
    fc = {"name": cfg.model, "width": cfg.width}
    return {
        "fc": fc,
        "cos": {**fc, "head": "cosine", "head_scale": cfg.cos_scale, "head_gamma": 0.0},  # vanilla Cos: W / ||W||
        "dot": {**fc, "head_bias": False},  # the bias-free head of logit-adjusted training
        "robal": {**fc, "head": "cosine", "head_scale": 1.0, "head_gamma": cfg.robal_gamma},  # the loss applies s
    }


def _robal_params(cfg: RobalConfig, counts: list[int], *, tau_b: float, tau_m: float) -> dict:
    return {"eps": cfg.eps, "alpha": cfg.train_alpha, "steps": cfg.train_steps, "train_start": cfg.train_start,
            "counts": counts, "s": cfg.robal_s, "m0": cfg.robal_m0, "tau_m": tau_m, "tau_b": tau_b,
            "kl_weight": cfg.kl_weight, "inner_scale": cfg.inner_scale}


def _train_all(ch: _Chapter) -> tuple[dict[str, nn.Module], dict[str, dict]]:
    cfg, specs = ch.cfg, _model_specs(ch.cfg)
    at = {"eps": cfg.eps, "alpha": cfg.train_alpha, "steps": cfg.train_steps, "train_start": cfg.train_start}
    plan = {
        "sml_bal": lambda: ch.train(specs["fc"], "pgd_at", at, kind="sml_bal"),
        "at_fc": lambda: ch.train(specs["fc"], "pgd_at", at),
        "at_cos": lambda: ch.train(specs["cos"], "pgd_at", at),
        "la_train": lambda: ch.train(specs["dot"], "logit_adjusted", {**at, "counts": ch.counts, "tau": cfg.la_tau}),
        "trades": lambda: ch.train(specs["fc"], "trades", {"eps": cfg.eps, "alpha": cfg.train_alpha,
                                                           "steps": cfg.train_steps, "beta": cfg.trades_beta}),
        "robal_n": lambda: ch.train(specs["robal"], "robal",
                                    _robal_params(cfg, ch.counts, tau_b=cfg.robal_n_tau_b, tau_m=cfg.robal_n_tau_m)),
        "robal_r": lambda: ch.train(specs["robal"], "robal",
                                    _robal_params(cfg, ch.counts, tau_b=cfg.robal_r_tau_b, tau_m=cfg.robal_r_tau_m)),
    }
    models, meta = {}, {}
    for key in cfg.models:
        models[key], meta[key] = plan[key]()
    for tau_b in cfg.ablation_tau_b:
        key = _ablation_key(tau_b)
        params = _robal_params(cfg, ch.counts, tau_b=tau_b, tau_m=0.0)
        models[key], meta[key] = ch.train(specs["robal"], "robal", params)
    return models, meta


def _ablation_key(tau_b: float) -> str:
    return f"ablation_tau_b{tau_b:g}"


def run(cfg: RobalConfig) -> dict:
    """The whole chapter: `config -> results` (a JSON-serialisable dict)."""
    started = time.perf_counter()
    ch = _Chapter(cfg)
    models, meta = _train_all(ch)  # each model's training time is in its meta

    la_post = ch.pick_tau_p(models["at_fc"], cfg.la_post_grid, 1.0)
    # (scale, tau_p) of the test-time logits scale * z - tau_p * log pi of each evaluation.
    inference = {"la_post": (1.0, la_post["picked"]), "robal_n": (cfg.robal_s, cfg.robal_n_tau_p),
                 "robal_r": (cfg.robal_r_eval_scale, 0.0)}
    evaluations = {}
    for name in (k for k in MODEL_LABELS if k in models or k == "la_post"):
        scale, tau_p = inference.get(name, (1.0, 0.0))
        base = models["at_fc" if name == "la_post" else name]
        evaluations[name] = ch.evaluate(name, ch.adjusted(base, tau_p, scale),
                                        {"scale": scale, "tau_p": tau_p},
                                        standard_aa=cfg.standard_aa and name in ("at_fc", "robal_n", "robal_r"))

    pgd = tpgd_name(1.0, cfg.eval_steps)
    results: dict[str, Any] = {
        "chapter": "robal",
        "config": cfg.to_dict(),
        "classes": ch.classes,
        "counts": ch.counts,
        "groups": ch.groups,
        "split_sizes": {"long_tailed": len(ch.lt.train), "sml_bal": len(ch.sml_bal.train), "val": len(ch.lt.val),
                        "test": len(ch.lt.test), "aa_points": len(ch.aa_idx), "kappa_points": len(ch.kappa_idx)},
        "models": {k: {key: m[key] for key in ("key", "from_cache", "train_seconds", "history")}
                   for k, m in meta.items()},
        "validation": {"la_post": la_post},
        "attack_names": {"pgd": pgd, "cw": f"cw{cfg.eval_steps}",
                         "pgd_scaled": tpgd_name(1 / cfg.logit_scale_attack, cfg.eval_steps),
                         "fgsm": "fgsm" if cfg.fgsm else None, "mim": f"mim{cfg.eval_steps}" if cfg.mim else None},
        "kappa": _kappa_sweep(ch, models["at_fc"], evaluations["at_fc"]),
        "ablation": _ablation(ch, models),
        "weight_norms": _weight_norms(ch, models["at_fc"]),
        "feature_norms": _feature_norms(ch, models["at_fc"]),
        "comparisons": _comparisons(ch, evaluations, pgd),
    }
    if "robal_r" in models and cfg.robal_r_eval_scale != cfg.robal_s:
        # The released code tests RoBal-R at scale 1, where CE-based attacks are weak. Same weights at s (Eq. 11):
        # the argmax is unchanged and PGD at s is the "PGD on scaled logits" column when the factors match.
        results["robal_r_at_s"] = _clean_and_aa(ch, models["robal_r"], 0.0)
    for ev in evaluations.values():
        del ev["_correct"], ev["_aa_correct"]
    results["evaluations"] = evaluations
    results["seconds"] = {**ch.seconds, "total": time.perf_counter() - started}
    results["environment"] = environment(ch.device)
    return results


def _kappa_sweep(ch: _Chapter, model: nn.Module, baseline: dict) -> dict:
    """C4/C5: logits / 10^kappa (the paper's W_i / 10^kappa). Clean on the test subset; PGD and AA on the
    kappa points. The argmax cannot change, so any movement of a robust accuracy is the attack's.
    At kappa = 0 the model is the baseline itself: its AutoAttack result is reused when the points agree."""
    cfg, idx = ch.cfg, ch.kappa_idx
    same_points = np.array_equal(idx, ch.aa_idx)
    started = time.perf_counter()
    pgd = tpgd_name(1.0, cfg.eval_steps)
    x, y, y_np = ch.x_test[idx], ch.y_test[idx], ch.y_test_np[idx]
    rows = []
    for kappa in sorted(cfg.kappa_grid):
        scaled = LogitScale(model, 10.0 ** -kappa).eval()
        preds, _ = run_attacks(scaled, x, y, {pgd: ch.suite()[pgd]}, batch_size=cfg.eval_batch_size)
        if kappa == 0 and same_points:
            warnings = baseline["aa_warnings"]
            correct = robust_correctness(preds, y_np)
            correct["aa"] = baseline["_aa_correct"]["aa"]
        else:
            preds["aa"], warnings = ch.autoattack(scaled, idx)
            correct = robust_correctness(preds, y_np)
        clean_test = predict(scaled, ch.x_test, batch_size=cfg.eval_batch_size).cpu().numpy() == ch.y_test_np
        rows.append({"kappa": kappa, "clean": float(clean_test.mean()), "pgd": float(correct[pgd].mean()),
                     "aa": float(correct["aa"].mean()), "aa_warnings": warnings})
    ch.seconds["kappa_sweep"] = time.perf_counter() - started
    return {"rows": rows, "points": len(idx)}


def _ablation(ch: _Chapter, models: dict[str, nn.Module]) -> dict:
    """C9 (Table 3, block 2: m0 = 0.1, tau_m = 0): clean and AA at the end of training (Eq. 11 with tau_p = 0)
    and after the tau_p picked on validation. RoBal-N (tau_b = 1.2) joins when it is trained with tau_m = 0."""
    cfg = ch.cfg
    started = time.perf_counter()
    entries = [(tau_b, models[_ablation_key(tau_b)]) for tau_b in cfg.ablation_tau_b]
    if "robal_n" in models and cfg.robal_n_tau_m == 0 and cfg.robal_n_tau_b not in cfg.ablation_tau_b:
        entries.append((cfg.robal_n_tau_b, models["robal_n"]))
    rows = []
    for tau_b, model in sorted(entries, key=lambda e: e[0]):
        picked = ch.pick_tau_p(model, cfg.tau_p_grid, cfg.robal_s)
        end = _clean_and_aa(ch, model, 0.0)
        best = end if picked["picked"] == 0 else _clean_and_aa(ch, model, picked["picked"])
        rows.append({"tau_b_minus_tau_m": tau_b, "validation": picked, "end": end, "best": best})
    ch.seconds["ablation"] = time.perf_counter() - started
    return {"rows": rows}


def _clean_and_aa(ch: _Chapter, model: nn.Module, tau_p: float) -> dict:
    """Clean accuracy (test subset) and AA (AA points) with the Eq. 11 logits s * cos - tau_p * log pi."""
    cfg = ch.cfg
    adjusted = ch.adjusted(model, tau_p, cfg.robal_s)
    clean = predict(adjusted, ch.x_test, batch_size=cfg.eval_batch_size).cpu().numpy() == ch.y_test_np
    aa_pred, _ = ch.autoattack(adjusted, ch.aa_idx)
    aa = clean[ch.aa_idx] & (aa_pred == ch.y_test_np[ch.aa_idx])
    return {"tau_p": tau_p, "clean": float(clean.mean()), "aa": float(aa.mean())}


def _weight_norms(ch: _Chapter, model: nn.Module) -> dict:
    """C7: ||W_c|| of the AT-FC head against the class counts (the paper: norms shrink toward the tail)."""
    norms = model.head.weight.detach().norm(dim=1).cpu().numpy()
    return {"norms": norms.tolist(), "rho_vs_count": spearman(norms, np.asarray(ch.counts, dtype=float))}


def _feature_norms(ch: _Chapter, model: nn.Module) -> dict:
    """C7: ||f(x + delta)|| / ||f(x)|| of AT-FC on the AA points under PGD (all steps, no early stop), for
    points the attack fools and points that stay robust (both correct on the clean input)."""
    cfg, idx = ch.cfg, ch.aa_idx
    x, y = ch.x_test[idx], ch.y_test[idx]
    generator = torch.Generator().manual_seed(cfg.seed + 20)
    x_adv = attacks.pgd(model, x, y, eps=cfg.eps, alpha=cfg.eval_alpha, steps=cfg.eval_steps, generator=generator)
    ratio = feature_norm_ratio(model, x, x_adv, batch_size=cfg.eval_batch_size)
    y_np = y.cpu().numpy()
    clean = predict(model, x, batch_size=cfg.eval_batch_size).cpu().numpy() == y_np
    adv = predict(model, x_adv, batch_size=cfg.eval_batch_size).cpu().numpy() == y_np
    fooled, robust = clean & ~adv, clean & adv
    return {"fooled_mean": float(ratio[fooled].mean()) if fooled.any() else None,
            "robust_mean": float(ratio[robust].mean()) if robust.any() else None,
            "n_fooled": int(fooled.sum()), "n_robust": int(robust.sum())}


def _comparisons(ch: _Chapter, evaluations: dict, pgd: str) -> dict:
    """Paired differences (B - A) with bootstrap CIs that the verdicts use."""
    cfg, all_classes = ch.cfg, list(range(len(ch.classes)))
    y, y_aa = ch.y_test_np, ch.y_test_np[ch.aa_idx]

    def diff(a: str, b: str, attack: str, classes: list[int], aa_points: bool = False) -> dict:
        key = "_aa_correct" if aa_points else "_correct"
        return paired_group_difference(y_aa if aa_points else y, evaluations[a][key][attack],
                                       evaluations[b][key][attack], classes, n_boot=cfg.n_boot, seed=cfg.seed)

    out = {}
    if "sml_bal" in evaluations:
        out["head_pgd_lt_minus_sml_bal"] = diff("sml_bal", "at_fc", pgd, ch.groups["head"])
        out["tail_pgd_lt_minus_sml_bal"] = diff("sml_bal", "at_fc", pgd, ch.groups["tail"])
    for other in ("la_post", "la_train", "at_cos", "trades", "robal_n", "robal_r"):
        if other in evaluations:
            out[f"{other}_minus_at_fc"] = {"clean": diff("at_fc", other, "clean", all_classes),
                                           "aa": diff("at_fc", other, "aa", all_classes, aa_points=True),
                                           "tail_clean": diff("at_fc", other, "clean", ch.groups["tail"])}
    return out


# ---- Presentation: tables and verdicts computed from a results dict (the notebook only calls these) ----

MODEL_LABELS = {
    "sml_bal": "AT-FC on Sml-Bal", "at_fc": "AT-FC", "la_post": "AT-FC + LA-post", "at_cos": "AT-Cos",
    "la_train": "AT + LA-train", "trades": "TRADES", "robal_n": "RoBal-N", "robal_r": "RoBal-R",
}

# Quoted from the paper (CIFAR-10-LT, IR 50, WRN-34-10; accuracy in %). Not computed by this code.
PAPER_TABLE1 = {
    "ref": "Wu et al. 2021, Table 1 (CIFAR-10-LT, IR 50, WRN-34-10; PGD = PGD-20, AA = APGD-CE + APGD-T)",
    "columns": ("clean", "pgd", "aa"),
    "rows": {
        "vanilla FC": (62.33, 29.30, 28.15),
        "vanilla Cos": (56.59, 29.38, 27.23),
        "class-aware margin (LDAM)": (63.24, 29.81, 28.70),
        "cosine with margin (HE)": (58.47, 31.73, 28.45),
        "class-aware temperature (CDT)": (73.11, 30.12, 28.62),
        "class-aware bias (LA/BS)": (74.46, 32.45, 30.55),
        "re-scaling W_i/n_i^tau": (73.84, 39.05, 28.23),
        "normalisation W_i/||W_i||^tau": (72.70, 36.57, 29.77),
        "LA-post": (74.25, 31.95, 30.45),
    },
}
PAPER_TABLE2 = {
    "ref": "Wu et al. 2021, Table 2 (CIFAR-10-LT, IR 50, WRN-34-10)",
    "columns": ("clean", "fgsm", "pgd", "mim", "cw", "aa"),
    "rows": {
        "AT": (62.33, 33.57, 29.30, 30.02, 30.31, 28.15),
        "TRADES": (54.29, 32.80, 30.20, 30.53, 29.58, 28.94),
        "RoBal-N": (75.52, 40.04, 33.50, 34.57, 33.68, 31.72),
        "RoBal-R": (74.51, 40.55, 33.87, 34.92, 34.12, 32.04),
    },
}
PAPER_TABLE3_BLOCK2 = {
    "ref": "Wu et al. 2021, Table 3, block 2 (m0 = 0.1, tau_m = 0; clean / AA at the end → after the best tau_p)",
    "rows": {0.0: ((63.51, 28.47), (75.51, 31.24)), 0.5: ((68.58, 30.55), (75.77, 30.94)),
             1.0: ((73.93, 31.52), (75.42, 31.61)), 1.5: ((74.67, 30.95), (74.67, 30.95))},
}
# Which quoted row each of our evaluations corresponds to: (table, row).
PAPER_ROWS = {"at_fc": (PAPER_TABLE2, "AT"), "at_cos": (PAPER_TABLE1, "vanilla Cos"),
              "la_train": (PAPER_TABLE1, "class-aware bias (LA/BS)"), "la_post": (PAPER_TABLE1, "LA-post"),
              "trades": (PAPER_TABLE2, "TRADES"), "robal_n": (PAPER_TABLE2, "RoBal-N"),
              "robal_r": (PAPER_TABLE2, "RoBal-R")}
# At paper scale a number counts as reproduced within this many points.
PAPER_TOLERANCE_PT = 3.0


def _attack(results: dict, name: str, attack: str, aa_points: bool = False) -> dict:
    return results["evaluations"][name]["aa_report" if aa_points else "report"]["attacks"][attack]


def _headline(results: dict, name: str) -> dict[str, float]:
    """Clean, PGD, CW, PGD on scaled logits (test subset) and AA (AA points) of one evaluation, in [0, 1]."""
    n = results["attack_names"]
    out = {"clean": _attack(results, name, "clean")["overall"], "pgd": _attack(results, name, n["pgd"])["overall"],
           "cw": _attack(results, name, n["cw"])["overall"],
           "pgd_scaled": _attack(results, name, n["pgd_scaled"])["overall"],
           "aa": _attack(results, name, "aa", True)["overall"]}
    for key in ("fgsm", "mim"):
        if n[key]:
            out[key] = _attack(results, name, n[key])["overall"]
    return out


def setup_table(results: dict) -> pd.DataFrame:
    """One row per trained model: training set, head and epochs (timings belong to the benchmarks)."""
    cfg, sizes = results["config"], results["split_sizes"]
    heads = {"at_cos": f"cosine, s = {cfg['cos_scale']:g}", "la_train": "linear, no bias",
             "robal_n": f"cosine, γ = {cfg['robal_gamma']:g}", "robal_r": f"cosine, γ = {cfg['robal_gamma']:g}"}
    rows = []
    for key, meta in results["models"].items():
        label = MODEL_LABELS.get(key, f"RoBal ablation τ_b − τ_m = {key.removeprefix('ablation_tau_b')}")
        rows.append({"model": label,
                     "training set": (f"Sml-Bal ({sizes['sml_bal']})" if key == "sml_bal"
                                      else f"long-tailed ({sizes['long_tailed']})"),
                     "head": heads.get(key, "cosine" if key.startswith("ablation") else "linear"),
                     "epochs": len(meta["history"])})
    return pd.DataFrame(rows).set_index("model")


def main_table(results: dict) -> pd.DataFrame:
    """Table 1/2 style: accuracy (%) of every evaluation, with the quoted paper numbers beside ours."""
    n = results["attack_names"]
    scale = results["config"]["logit_scale_attack"]
    rows = []
    for name, ev in results["evaluations"].items():
        h = _headline(results, name)
        inf = ev["inference"]
        row = {"model": MODEL_LABELS[name], "test-time logits": _inference_label(inf), "clean": pct(h["clean"])}
        if "fgsm" in h:
            row["FGSM"] = pct(h["fgsm"])
        row[n["pgd"].upper()] = pct(h["pgd"])
        if "mim" in h:
            row[n["mim"].upper()] = pct(h["mim"])
        row.update({n["cw"].upper(): pct(h["cw"]), f"{n['pgd'].upper()} on {scale:g}× logits": pct(h["pgd_scaled"]),
                    "AA (APGD-CE + APGD-T)": pct(h["aa"]), "gap (clean − AA)": pct(h["clean"] - h["aa"])})
        table, paper_row = PAPER_ROWS.get(name, (None, None))
        if table is not None:
            quoted = dict(zip(table["columns"], table["rows"][paper_row]))
            row["paper clean / PGD / AA (quoted)"] = f"{quoted['clean']} / {quoted['pgd']} / {quoted['aa']}"
        rows.append(row)
    if "robal_r_at_s" in results:
        at_s = results["robal_r_at_s"]
        rows.append({"model": "RoBal-R (same weights)", "test-time logits": f"{results['config']['robal_s']:g}·z",
                     "clean": pct(at_s["clean"]), "AA (APGD-CE + APGD-T)": pct(at_s["aa"]),
                     "gap (clean − AA)": pct(at_s["clean"] - at_s["aa"])})
    return pd.DataFrame(rows).set_index("model").fillna("")


def _inference_label(inference: dict) -> str:
    scale, tau_p = inference["scale"], inference["tau_p"]
    label = "z" if scale == 1 else f"{scale:g}·z"
    return label if tau_p == 0 else f"{label} − {tau_p:g}·log π"


def group_table(results: dict, attacks: tuple[str, ...] = ("clean", "pgd", "aa")) -> pd.DataFrame:
    """Head / middle / tail accuracy (%) with 95% CIs; "aa" on the AA points."""
    n = results["attack_names"]
    columns = {}
    for name, ev in results["evaluations"].items():
        for attack in attacks:
            groups = ev["aa_groups"]["aa"] if attack == "aa" else ev["groups"][n.get(attack) or attack]
            label = "AA" if attack == "aa" else (n.get(attack) or attack).upper()
            columns[(MODEL_LABELS[name], label)] = {g: with_ci(v["accuracy"], v["ci"]) for g, v in groups.items()}
    return pd.DataFrame(columns).T


def tail_summary(results: dict) -> str:
    """C1/C2 in words: head and tail accuracy of AT-FC (and Sml-Bal), and the paired LT - Sml-Bal differences."""
    pgd = results["attack_names"]["pgd"]
    lines = []
    for name in ("at_fc", "sml_bal"):
        if name not in results["evaluations"]:
            continue
        c = {g: _group(results, name, "clean", g) for g in ("head", "tail")}
        r = {g: _group(results, name, pgd, g) for g in ("head", "tail")}
        lines.append(f"* **{MODEL_LABELS[name]}**: clean {pct(c['head'])}% on the head vs {pct(c['tail'])}% on the "
                     f"tail; under {pgd.upper()} {pct(r['head'])}% vs {pct(r['tail'])}%.")
    cmp = results["comparisons"]
    if "head_pgd_lt_minus_sml_bal" in cmp:
        head, tail = cmp["head_pgd_lt_minus_sml_bal"], cmp["tail_pgd_lt_minus_sml_bal"]
        lines.append(f"* Training on the long-tailed set instead of Sml-Bal changes {pgd.upper()} accuracy by "
                     f"{with_ci(head['difference'], head['ci'])} points on the head and "
                     f"{with_ci(tail['difference'], tail['ci'])} on the tail (paired bootstrap, 95% CI).")
    return "\n".join(lines)


def rebalancing_summary(results: dict) -> str:
    """C3/C6 in words: each remedy against AT-FC on clean and AA accuracy, and the clean - AA gaps."""
    cmp, lines = results["comparisons"], []
    for name in ("la_post", "la_train", "at_cos"):
        key = f"{name}_minus_at_fc"
        if key not in cmp:
            continue
        c, a, t = cmp[key]["clean"], cmp[key]["aa"], cmp[key]["tail_clean"]
        h = _headline(results, name)
        lines.append(f"* **{MODEL_LABELS[name]}** vs AT-FC: clean {with_ci(c['difference'], c['ci'])} pt (tail "
                     f"{with_ci(t['difference'], t['ci'])} pt), AA {with_ci(a['difference'], a['ci'])} pt; its "
                     f"clean − AA gap is {pct(h['clean'] - h['aa'])} pt.")
    fc = _headline(results, "at_fc")
    lines.append(f"* AT-FC's own clean − AA gap is {pct(fc['clean'] - fc['aa'])} pt.")
    return "\n".join(lines)


def kappa_table(results: dict) -> pd.DataFrame:
    """C4/C5: AT-FC with logits / 10^kappa."""
    rows = [{"κ": r["kappa"], "logit factor": f"{10 ** -r['kappa']:g}", "clean %": pct(r["clean"]),
             "PGD %": pct(r["pgd"]), "AA %": pct(r["aa"])} for r in results["kappa"]["rows"]]
    return pd.DataFrame(rows).set_index("κ")


def ablation_table(results: dict) -> pd.DataFrame:
    """C9: RoBal with m0 = 0.1, tau_m = 0 over tau_b - tau_m, beside the quoted Table 3 (block 2)."""
    columns = ["τ_b − τ_m", "end: clean / AA %", "τ_p (validation)", "best τ_p: clean / AA %",
               "paper end → best τ_p (quoted)"]
    rows = []
    for r in results["ablation"]["rows"]:
        quoted = PAPER_TABLE3_BLOCK2["rows"].get(r["tau_b_minus_tau_m"])
        rows.append([r["tau_b_minus_tau_m"], f"{pct(r['end']['clean'])} / {pct(r['end']['aa'])}", r["best"]["tau_p"],
                     f"{pct(r['best']['clean'])} / {pct(r['best']['aa'])}",
                     f"{quoted[0][0]} / {quoted[0][1]} → {quoted[1][0]} / {quoted[1][1]}" if quoted else ""])
    return pd.DataFrame(rows, columns=columns).set_index(columns[0])


def paper_comparison(results: dict) -> pd.DataFrame:
    """Paper number (quoted, with its table) vs ours, the profile that produced ours, and a verdict."""
    profile = results["config"]["profile"]
    rows = []
    for name, (table, paper_row) in PAPER_ROWS.items():
        if name not in results["evaluations"]:
            continue
        ours = _headline(results, name)
        for column, quoted in zip(table["columns"], table["rows"][paper_row]):
            if column not in ours:
                continue
            mine = 100 * ours[column]
            verdict = ("not comparable at this scale" if profile != "paper" else
                       f"reproduced (±{PAPER_TOLERANCE_PT:g} pt)" if abs(mine - quoted) <= PAPER_TOLERANCE_PT
                       else "not reproduced")
            rows.append({"model": MODEL_LABELS[name], "metric": column.upper(),
                         "paper (quoted)": f"{quoted} ({table['ref'].split(' (')[0]}, {paper_row})",
                         "this book": f"{mine:.1f}", "profile": profile, "verdict": verdict})
    return pd.DataFrame(rows).set_index(["model", "metric"])


def _direction(entry: dict) -> str:
    """'clear' if the CI of a difference lies above 0, 'point' if only the estimate is positive, else ''."""
    if entry["ci"][0] > 0:
        return "clear"
    return "point" if entry["difference"] > 0 else ""


def verdicts(results: dict) -> pd.DataFrame:
    """Paper claim (spec ids C1-C12) vs this book, with a verdict computed by a fixed rule."""
    rows = [_c1(results), _c2(results), _c3(results), *_c4_c5(results), _c6(results), _c7(results),
            _c8(results), _c9(results)]
    rows.append(("C10–C12", "gains hold across imbalance ratios; the outer loss matters most; more inner steps "
                 "trade clean for robust accuracy (Tables 4, S6, S7)", "not run by this pipeline",
                 "not tested (rerun with other `imbalance` / `train_steps`)"))
    columns = ["claim", "paper (paraphrased; table)", "this book", "verdict"]
    return pd.DataFrame(rows, columns=columns).set_index("claim")


def _group(results: dict, name: str, attack: str, group: str) -> float:
    return results["evaluations"][name]["groups"][attack][group]["accuracy"]


def _c1(results: dict) -> tuple:
    pgd = results["attack_names"]["pgd"]
    head_c, tail_c = _group(results, "at_fc", "clean", "head"), _group(results, "at_fc", "clean", "tail")
    head_r, tail_r = _group(results, "at_fc", pgd, "head"), _group(results, "at_fc", pgd, "tail")
    falls = head_c > tail_c and head_r > tail_r
    steeper = head_r > 0 and head_c > 0 and tail_r / head_r < tail_c / head_c
    return ("C1", "under AT, clean and robust accuracy fall from head to tail; robust accuracy collapses on the "
            "tail far more (Fig. 1)",
            f"AT-FC head → tail: clean {pct(head_c)} → {pct(tail_c)}, "
            f"{pgd.upper()} {pct(head_r)} → {pct(tail_r)} "
            f"(tail keeps {pct(tail_c / head_c if head_c else np.nan, 0)}% of the head's clean and "
            f"{pct(tail_r / head_r if head_r else np.nan, 0)}% of its robust accuracy)",
            "reproduced (the plain-training contrast is not run)" if falls and steeper else
            "partly (falls, not steeper)" if falls else "not reproduced")


def _c2(results: dict) -> tuple:
    cmp = results["comparisons"]
    if "head_pgd_lt_minus_sml_bal" not in cmp:
        return ("C2", "head classes are more robust after LT training than after balanced training (Fig. 5)",
                "Sml-Bal not trained", "not tested")
    head, tail = cmp["head_pgd_lt_minus_sml_bal"], cmp["tail_pgd_lt_minus_sml_bal"]
    d = _direction(head)
    return ("C2", "head classes are more robust after LT training than after balanced training of the same size "
            "(Fig. 5)",
            f"LT − Sml-Bal under PGD: head {with_ci(head['difference'], head['ci'])} pt, tail "
            f"{with_ci(tail['difference'], tail['ci'])} pt",
            {"clear": "reproduced", "point": "same direction, CI includes 0", "": "not reproduced"}[d])


def _vs_at_fc(results: dict, names: tuple[str, ...], suffix: str = "") -> list[tuple[str, dict, dict]]:
    """(text, clean difference, AA difference) against AT-FC for each of `names` that was evaluated."""
    out = []
    for name in names:
        entry = results["comparisons"].get(f"{name}_minus_at_fc")
        if entry is not None:
            c, a = entry["clean"], entry["aa"]
            out.append((f"{MODEL_LABELS[name]}{suffix}: clean {with_ci(c['difference'], c['ci'])} pt, "
                        f"AA {with_ci(a['difference'], a['ci'])} pt", c, a))
    return out


def _c3(results: dict) -> tuple:
    rows = _vs_at_fc(results, ("la_train", "la_post"))
    parts = [text for text, _, _ in rows]
    ok = [c["difference"] > 0 and c["difference"] > a["difference"] for _, c, a in rows]
    return ("C3", "long-tail methods inside AT raise clean accuracy much more than AA (LA/BS: +12.1 vs +2.4 pt; "
            "Table 1)", "; ".join(parts),
            "reproduced" if ok and all(ok) else "partly" if any(ok) else "not reproduced")


def _c4_c5(results: dict) -> list[tuple]:
    rows = results["kappa"]["rows"]
    base = next(r for r in rows if r["kappa"] == 0)
    clean_flat = len({r["clean"] for r in rows}) == 1
    best = max(rows, key=lambda r: r["pgd"])
    pgd_gain, aa_shift = best["pgd"] - base["pgd"], best["aa"] - base["aa"]
    fake = clean_flat and pgd_gain >= 0.03 and abs(aa_shift) <= 0.02
    c4 = ("C4", "inference-time rescaling raises PGD accuracy but not AA (\"fake gains\": 39.05 PGD vs 29.30, "
          "AA 28.23 vs 28.15; Table 1)",
          f"AT-FC logits / 10^κ at κ = {best['kappa']:g}: PGD {100 * pgd_gain:+.1f} pt, AA {100 * aa_shift:+.1f} pt, "
          f"clean {'unchanged' if clean_flat else 'changed'} ({results['kappa']['points']} points)",
          "reproduced" if fake else "not reproduced (no PGD gain ≥ 3 pt with AA within 2 pt)")
    lowest = min(rows, key=lambda r: r["pgd"])
    u_shape = abs(lowest["kappa"]) <= 1 and rows[0]["pgd"] > lowest["pgd"] and rows[-1]["pgd"] > lowest["pgd"]
    aa_range = max(r["aa"] for r in rows) - min(r["aa"] for r in rows)
    c5 = ("C5", "scaling the logits by 10^−κ leaves clean and AA unchanged; PGD is lowest near κ ≈ 0 and rises "
          "on both sides (Fig. 2)",
          f"PGD lowest at κ = {lowest['kappa']:g} ({pct(lowest['pgd'])}%), at κ = {rows[0]['kappa']:g} / "
          f"{rows[-1]['kappa']:g}: {pct(rows[0]['pgd'])}% / {pct(rows[-1]['pgd'])}%; AA range "
          f"{100 * aa_range:.1f} pt; clean {'constant' if clean_flat else 'not constant'}",
          "reproduced" if u_shape and clean_flat and aa_range <= 0.02 else
          "partly (PGD U-shape, AA moves > 2 pt)" if u_shape and clean_flat else "not reproduced")
    return [c4, c5]


def _c6(results: dict) -> tuple:
    if "at_cos" not in results["evaluations"]:
        return ("C6", "the cosine classifier has the smallest clean − AA gap (Table 1)", "AT-Cos not trained",
                "not tested")
    fc, cos = _headline(results, "at_fc"), _headline(results, "at_cos")
    gap_fc, gap_cos = fc["clean"] - fc["aa"], cos["clean"] - cos["aa"]
    return ("C6", "the cosine classifier has a smaller clean − AA gap than FC (29.36 vs 34.18; Table 1)",
            f"gap AT-Cos {pct(gap_cos)} pt vs AT-FC {pct(gap_fc)} pt (AA on the AA points)",
            "reproduced" if gap_cos < gap_fc else "not reproduced")


def _c7(results: dict) -> tuple:
    w, f = results["weight_norms"], results["feature_norms"]
    norms_shrink = w["rho_vs_count"] >= 0.5
    ratio_known = f["fooled_mean"] is not None and f["robust_mean"] is not None
    ratio_larger = ratio_known and f["fooled_mean"] > f["robust_mean"]
    ratio_text = (f"feature-norm ratio fooled {f['fooled_mean']:.3f} (n={f['n_fooled']}) vs robust "
                  f"{f['robust_mean']:.3f} (n={f['n_robust']})" if ratio_known else "too few fooled or robust points")
    return ("C7", "attacked samples have a larger feature-norm ratio ‖f(x+δ)‖/‖f(x)‖; classifier weight norms "
            "shrink toward the tail (Fig. 3)",
            f"ρ(‖W_c‖, n_c) = {w['rho_vs_count']:.2f}; {ratio_text}",
            "reproduced" if norms_shrink and ratio_larger else
            "partly" if norms_shrink or ratio_larger else "not reproduced")


def _c8(results: dict) -> tuple:
    cmp = results["comparisons"]
    rows = _vs_at_fc(results, ("robal_n", "robal_r"), " − AT-FC")
    parts = [text for text, _, _ in rows]
    wins = [(_direction(c), _direction(a)) for _, c, a in rows]
    if not wins:
        return ("C8", "RoBal beats AT on clean accuracy and every attack (Table 2)", "RoBal not trained",
                "not tested")
    if "la_train_minus_at_fc" in cmp and "robal_n_minus_at_fc" in cmp:
        la, rn = cmp["la_train_minus_at_fc"]["aa"]["difference"], cmp["robal_n_minus_at_fc"]["aa"]["difference"]
        parts.append(f"RoBal-N − LA-train AA {100 * (rn - la):+.1f} pt")
    clean_up = all(c for c, _ in wins)
    aa_up = all(a for _, a in wins)
    aa_clear = all(a == "clear" for _, a in wins)
    return ("C8", "RoBal beats AT on clean accuracy and every attack on CIFAR-10-LT (RoBal-R 74.51 / AA 32.04 vs "
            "AT 62.33 / 28.15; Table 2)", "; ".join(parts),
            "reproduced" if clean_up and aa_clear else
            "reproduced for clean; AA same direction, CI includes 0" if clean_up and aa_up else
            "reproduced for clean only" if clean_up else "not reproduced")


def _c9(results: dict) -> tuple:
    rows = results["ablation"]["rows"]
    if len(rows) < 2:
        return ("C9", "larger τ_b − τ_m raises clean accuracy; AA peaks mid-range (Table 3)",
                "fewer than two ablation models", "not tested")
    clean = [r["end"]["clean"] for r in rows]
    rising = all(a < b for a, b in zip(clean, clean[1:]))
    return ("C9", "larger τ_b − τ_m raises clean accuracy (63.51 → 74.67 at the end of training); AA peaks "
            "mid-range (Table 3, block 2)",
            "end of training, τ_b − τ_m " + ", ".join(
                f"{r['tau_b_minus_tau_m']:g}: clean {pct(r['end']['clean'])} / AA {pct(r['end']['aa'])}" for r in rows),
            "reproduced for clean (AA trend within noise)" if rising else "not reproduced")
