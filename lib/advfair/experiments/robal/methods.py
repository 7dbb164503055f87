"""The RoBal chapter's methods: the long-tailed data, the models and their test-time heads, the protocols."""
from __future__ import annotations

import dataclasses

from torch import nn

from ...data import class_balanced_indices
from ...evaluation import AttackSpec, Protocol, standard_attacks
from ...inference import Step
from ...methods import catalogue
from ...objectives import Objective
from ...splits import Split, long_tailed_split
from ...trainer import TrainConfig
from ..common import chapter_protocol, training_attack
from .config import RobalConfig

MODEL_LABELS = {
    "plain": "plain (no AT)", "sml_bal": "AT-FC on Sml-Bal", "at_fc": "AT-FC", "la_post": "AT-FC + LA-post",
    "rescale": "AT-FC + re-scaling", "tau_norm": "AT-FC + τ-normalisation", "at_cos": "AT-Cos",
    "la_train": "AT + LA-train", "trades": "TRADES", "robal_n": "RoBal-N", "robal_r": "RoBal-R",
    "robal_r_s": "RoBal-R at scale s",
}


def splits(cfg: RobalConfig) -> tuple[Split, Split]:
    """The long-tailed split and Sml-Bal (as many training images, balanced, never a validation image)."""
    lt = long_tailed_split(cfg.dataset, n_max=cfg.n_max, imbalance=cfg.imbalance, val_per_class=cfg.val_per_class,
                           test_per_class=cfg.test_per_class, data_seed=cfg.data_seed, data_dir=cfg.data_dir)
    counts = cfg.counts()
    per_class = cfg.sml_bal_per_class or round(sum(counts) / len(counts))
    # drawn around the validation split, which depends on the long-tailed set
    spec = {**lt.spec, "kind": "sml_bal", "val_per_class": cfg.val_per_class, "per_class": per_class}
    sml_bal = dataclasses.replace(lt, train=class_balanced_indices(lt.data.y_train, per_class, seed=cfg.data_seed + 3,
                                                                   exclude=lt.val), spec=spec)
    return lt, sml_bal


def train_config(cfg: RobalConfig) -> TrainConfig:
    # drop_last as in the released code: the tail classes are too small for a ragged last batch to be harmless.
    return TrainConfig(epochs=cfg.epochs, batch_size=cfg.batch_size, lr=cfg.lr, weight_decay=cfg.weight_decay,
                       schedule=cfg.schedule, milestones=cfg.milestones, augment=cfg.augment,
                       drop_last=True, seed=cfg.seed)


def model_specs(cfg: RobalConfig) -> dict[str, dict]:
    fc = {"name": cfg.model, "width": cfg.width}
    return {
        "fc": fc,
        "cos": {**fc, **catalogue.entry("at_cos").model, "head_scale": cfg.cos_scale},  # vanilla Cos: W / ||W||
        "dot": {**fc, **catalogue.entry("la_train").model},  # the bias-free head of logit-adjusted training
        "robal": {**fc, **catalogue.entry("robal_n").model, "head_gamma": cfg.robal_gamma},  # the loss applies s
    }


def _attack(cfg: RobalConfig) -> dict:
    return {**training_attack(cfg), "train_start": cfg.train_start, "clip_start": cfg.clip_start}


def robal(cfg: RobalConfig, key: str, *, tau_b: float, tau_m: float) -> Objective:
    """RoBal's loss (`key`: "robal_n" or "robal_r", which differ in their parameters and their served head)."""
    return catalogue.objective(key, **_attack(cfg), counts=cfg.counts(), s=cfg.robal_s, m0=cfg.robal_m0, tau_m=tau_m,
                          tau_b=tau_b, kl_weight=cfg.kl_weight, inner_scale=cfg.inner_scale)


def plan(cfg: RobalConfig) -> dict[str, tuple[str, str, Objective]]:
    """key -> (training set, model spec, objective) of every model the config asks for, ablations included."""
    at = _attack(cfg)
    methods = {
        "plain": ("long_tailed", "fc", catalogue.objective("plain")),
        "sml_bal": ("sml_bal", "fc", catalogue.objective("at_fc", **at)),
        "at_fc": ("long_tailed", "fc", catalogue.objective("at_fc", **at)),
        "at_cos": ("long_tailed", "cos", catalogue.objective("at_cos", **at)),
        "la_train": ("long_tailed", "dot", catalogue.objective("la_train", **at, counts=cfg.counts(), tau=cfg.la_tau)),
        "trades": ("long_tailed", "fc", catalogue.objective("trades", eps=cfg.eps, alpha=cfg.train_alpha,
                                                       steps=cfg.train_steps, beta=cfg.trades_beta,
                                                       clip_start=cfg.trades_clip_start)),
        "robal_n": ("long_tailed", "robal", robal(cfg, "robal_n", tau_b=cfg.robal_n_tau_b, tau_m=cfg.robal_n_tau_m)),
        "robal_r": ("long_tailed", "robal", robal(cfg, "robal_r", tau_b=cfg.robal_r_tau_b, tau_m=cfg.robal_r_tau_m)),
    }
    out = {key: methods[key] for key in cfg.models}
    for tau_b in cfg.ablation_tau_b:
        out[ablation_key(tau_b)] = ("long_tailed", "robal", robal(cfg, "robal_n", tau_b=tau_b, tau_m=0.0))
    return out


def ablation_key(tau_b: float) -> str:
    return f"ablation_tau_b{tau_b:g}"


def served(cfg: RobalConfig, name: str, la_post_tau: float, at_fc: nn.Module) -> tuple[str, tuple[Step, ...]]:
    """(trained model, test-time head) of each evaluation: RoBal-N at s * cos - tau_p * log pi, RoBal-R as the
    released code serves it (scale robal_r_eval_scale, no shift) and at scale s; LA-post, re-scaling and
    tau-normalisation (Table 1's inference remedies) on AT-FC's weights."""
    counts = cfg.counts()
    # entry -> (the trained model it serves, the arguments of the entry's served head)
    heads = {"la_post": ("at_fc", (counts, la_post_tau)),
             "rescale": ("at_fc", (counts, cfg.rescale_tau)),
             "tau_norm": ("at_fc", (at_fc.head.weight, at_fc.head.bias, cfg.norm_tau)),
             "robal_n": ("robal_n", (counts, cfg.robal_n_tau_p, cfg.robal_s)),
             "robal_r": ("robal_r", (counts, 0.0, cfg.robal_r_eval_scale))}
    if name == "robal_r_s":  # RoBal-R served at its training scale s (a variant of the entry's head)
        return "robal_r", catalogue.entry("robal_r").served(counts, 0.0, cfg.robal_s)
    if name not in heads:
        return name, ()
    trained, args = heads[name]
    return trained, catalogue.entry(name).served(*args)


def test_protocol(cfg: RobalConfig, *, standard_aa: bool = False) -> Protocol:
    """clean, PGD, CW-hinge, PGD on 10x logits (T = 0.1), optionally FGSM and MIM; AutoAttack (APGD-CE +
    APGD-T, and standard AutoAttack where asked) on the AA points."""
    suite = standard_attacks(steps=cfg.eval_steps, alpha=cfg.eval_alpha, fgsm=cfg.fgsm, mim=cfg.mim, cw_loss="cw_hinge",
                             temperatures=(1 / cfg.logit_scale_attack,), autoattack=cfg.aa_version)
    if standard_aa:
        suite["aa_standard"] = AttackSpec(kind="autoattack", version="standard", subset=True)
    return chapter_protocol(cfg, suite)


def pgd_and_aa(cfg: RobalConfig, *, pgd: bool = True) -> Protocol:
    """PGD (unless `pgd=False`) and AutoAttack on the test points, with the test protocol's seed."""
    full = test_protocol(cfg).attacks
    keep = ([f"pgd{cfg.eval_steps}"] if pgd else []) + ["aa"]
    return chapter_protocol(cfg, {k: full[k] for k in keep})
