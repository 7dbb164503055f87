"""The AALP chapter's methods: its data, the models it trains (objectives built directly), the protocols."""
from __future__ import annotations

from ...evaluation import AttackSpec, Protocol
from ...methods import catalogue
from ...objectives import Objective
from ...splits import Split, balanced_split
from ...trainer import TrainConfig
from ..common import chapter_protocol, training_attack
from ..roles import attack_roles
from .config import AALPConfig

MODEL_LABELS = {"standard": "standard (clean CE)", "pgd_at": "PGD-AT", "mpgd": "M-PGD (λ = 0)", "alp": "ALP",
                "aalp": "AALP-recon (GD + weights)", "gd_only": "AALP-recon: GD only",
                "weights_only": "AALP-recon: weights only"}
ALP_FAMILY = ("alp", "aalp", "gd_only", "weights_only")  # the logit-pairing models (lambda > 0)
RECONSTRUCTED = ("aalp", "gd_only", "weights_only")  # every label of these says "AALP-style reconstruction"
VAL_PER_CLASS = 50  # held out from the training pool (no choice of this chapter is made on data)


def split(cfg: AALPConfig) -> Split:
    return balanced_split(cfg.dataset, train_per_class=cfg.train_per_class, val_per_class=VAL_PER_CLASS,
                          test_per_class=cfg.test_per_class, seed=cfg.data_seed, data_dir=cfg.data_dir)


def model_spec(cfg: AALPConfig) -> dict:
    return {"name": cfg.model, "width": cfg.width}


def train_config(cfg: AALPConfig) -> TrainConfig:
    return TrainConfig(epochs=cfg.epochs, batch_size=cfg.batch_size, lr=cfg.lr, weight_decay=cfg.weight_decay,
                       schedule=cfg.schedule, milestones=cfg.milestones, augment=cfg.augment, seed=cfg.seed)


def gd_switches(cfg: AALPConfig, on: bool) -> dict:
    return {"gd": on, "gd_mode": cfg.gd_mode, "gd_p": cfg.gd_p, "gd_score": cfg.gd_score, "gd_rescale": cfg.gd_rescale,
            "gd_branches": cfg.gd_branches, "gd_among": cfg.gd_among} if on else {"gd": False}


def weight_switches(cfg: AALPConfig, on: bool) -> dict:
    if not on:
        return {"weight_rule": "none"}
    extra = {"correct": {"weight_low": cfg.weight_low}, "softmax": {"weight_tau": cfg.weight_tau}}.get(cfg.weight_rule, {})
    return {"weight_rule": cfg.weight_rule, **extra}


def pairing(cfg: AALPConfig, *, lam: float, gd: bool = False, weights: bool = False) -> Objective:
    """The ALP family (one objective): M-PGD (lam = 0), ALP, or the AALP-style reconstruction's modules."""
    key = "aalp" if gd or weights else "alp" if lam else "mpgd"
    return catalogue.objective(key, **training_attack(cfg), **({} if key == "mpgd" else {"lam": lam}),
                               train_attack=cfg.train_attack, label_smoothing=cfg.label_smoothing,
                         **gd_switches(cfg, gd), **weight_switches(cfg, weights))


def plan(cfg: AALPConfig) -> dict[str, Objective]:
    """key -> objective of every model the config asks for (in MODEL_KEYS order)."""
    objectives = {
        "standard": lambda: catalogue.objective("plain"),
        "pgd_at": lambda: catalogue.objective("pgd_at", **training_attack(cfg)),
        "mpgd": lambda: pairing(cfg, lam=0.0),
        "alp": lambda: pairing(cfg, lam=cfg.lam),
        "aalp": lambda: pairing(cfg, lam=cfg.lam, gd=True, weights=True),
        "gd_only": lambda: pairing(cfg, lam=cfg.lam, gd=True),
        "weights_only": lambda: pairing(cfg, lam=cfg.lam, weights=True),
    }
    return {key: objectives[key]() for key in cfg.models}


def attack_roles_of(cfg: AALPConfig) -> dict:
    """The protocol's attacks by role; "white_box" are those of the per-point worst case (on the check points)."""
    pgd, cw, long = f"pgd{cfg.eval_steps}", f"cw{cfg.cw_steps}", f"pgd{cfg.long_steps}x{cfg.restarts}"
    return attack_roles(pgd=pgd, cw=cw, aa="aa", long=long, square="square", white_box=[pgd, cw, long, "aa"])


def test_protocol(cfg: AALPConfig) -> Protocol:
    """PGD-20 and CW-20 on every test point; PGD-100 with restarts (each restart only on the points still robust),
    AutoAttack and Square (black-box, `square_queries` queries) on the check points."""
    n = attack_roles_of(cfg)
    suite = {
        n["pgd"]: AttackSpec(steps=cfg.eval_steps, alpha=cfg.eval_alpha),
        n["cw"]: AttackSpec(steps=cfg.cw_steps, alpha=cfg.eval_alpha, loss="cw"),
        n["long"]: AttackSpec(steps=cfg.long_steps, alpha=cfg.long_alpha, restarts=cfg.restarts, subset=True),
        n["aa"]: AttackSpec(kind="autoattack", version=cfg.aa_version, subset=True),
        n["square"]: AttackSpec(kind="autoattack", version="square", steps=cfg.square_queries, subset=True),
    }
    return chapter_protocol(cfg, suite)


def sweep_protocol(cfg: AALPConfig, eps: float) -> Protocol:
    """PGD-`eval_steps` at radius `eps`, its step scaled with the radius (eval_alpha * eps / cfg.eps)."""
    spec = AttackSpec(steps=cfg.eval_steps, alpha=cfg.eval_alpha * eps / cfg.eps)
    return chapter_protocol(cfg, {attack_roles_of(cfg)["pgd"]: spec}, eps=eps)


def switches(cfg: AALPConfig) -> dict:
    """The reconstruction switches this run used (the chapter lists them beside every AALP-style result)."""
    return {"gd_mode": cfg.gd_mode, "gd_p": cfg.gd_p, "gd_score": cfg.gd_score, "gd_rescale": cfg.gd_rescale,
            "gd_branches": cfg.gd_branches, "gd_among": cfg.gd_among, "weight_rule": cfg.weight_rule,
            **({"weight_low": cfg.weight_low} if cfg.weight_rule == "correct" else {}),
            **({"weight_tau": cfg.weight_tau} if cfg.weight_rule == "softmax" else {}),
            "contrib_sign": cfg.contrib_sign, "train_attack": cfg.train_attack, "lam": cfg.lam,
            "label_smoothing": cfg.label_smoothing}
