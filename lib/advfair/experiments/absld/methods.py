"""The ABSLD chapter's methods: its data, the teacher, the students it trains and the protocols it evaluates with."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from torch import nn

from ...evaluation import Protocol, standard_attacks
from ...methods import catalogue
from ...objectives import Objective
from ...objectives.distill_objectives import ABSLD
from ...objectives.label_smoothing import class_smoothing
from ...splits import Split, balanced_spec, balanced_split
from ...trainer import TrainConfig
from ..common import VALIDATION_SEED_OFFSET, chapter_protocol, training_attack
from ...selection import SelectionRule
from .config import AbsldConfig

MODEL_LABELS = {
    "teacher": "teacher", "rslad": "RSLAD", "absld_separate": "ABSLD (separate)",
    "absld_code_product": "ABSLD (code_product)", "absld_manual": "ABSLD, manual τ", "ard": "ARD",
    "fair_rslad": "RSLAD, class re-weighted (Fair-ARD style)", "pgd_at": "PGD-AT student", "trades": "TRADES student",
    "ls_uniform": "PGD-AT, same smoothing (SSD)", "ls_class": "PGD-AT, class-dependent smoothing (DSD)",
}
TEACHER_FREE = ("ls_uniform", "ls_class")
# With a checkpoint rule other than "last", these students' last epochs are evaluated too (the paper selects on
# the test set): RSLAD and both ABSLD modes, the models C1, C2 and C7 compare (each extra evaluation is a full one,
# AutoAttack included).
LAST_EPOCH = ("rslad", "absld_separate", "absld_code_product")


def absld_key(mode: str) -> str:
    return f"absld_{mode}"


def split(cfg: AbsldConfig) -> Split:
    return balanced_split(cfg.dataset, train_per_class=cfg.train_per_class, val_per_class=cfg.val_per_class,
                          test_per_class=cfg.test_per_class, seed=cfg.data_seed, data_dir=cfg.data_dir)


def split_spec(cfg: AbsldConfig) -> dict:
    """`split(cfg).spec` without loading the data: the teacher's cache key is checked before any work starts."""
    return balanced_spec(cfg.dataset, train_per_class=cfg.train_per_class, val_per_class=cfg.val_per_class,
                         seed=cfg.data_seed)


# ---- the teacher ----

def teacher_model_spec(cfg: AbsldConfig) -> dict:
    return {"name": cfg.teacher_model, "width": cfg.teacher_width}


def teacher_objective(cfg: AbsldConfig) -> Objective:
    eps = cfg.eps if cfg.teacher_eps is None else cfg.teacher_eps
    attack = {"eps": eps, "alpha": cfg.teacher_alpha, "steps": cfg.teacher_steps}
    if cfg.teacher_objective == "trades":
        return catalogue.objective("trades", **attack, beta=cfg.teacher_beta, clip_start=False)
    return catalogue.objective("pgd_at", **attack)


def teacher_train_config(cfg: AbsldConfig) -> TrainConfig:
    return TrainConfig(epochs=cfg.teacher_epochs, batch_size=cfg.teacher_batch_size, lr=cfg.teacher_lr,
                       weight_decay=cfg.teacher_weight_decay, schedule=cfg.teacher_schedule,
                       milestones=cfg.teacher_milestones, augment=cfg.teacher_augment,
                       seed=cfg.seed if cfg.teacher_seed is None else cfg.teacher_seed)


# ---- students ----

def student_model_spec(cfg: AbsldConfig) -> dict:
    return {"name": cfg.model, "width": cfg.width}


def train_config(cfg: AbsldConfig) -> TrainConfig:
    """The students' schedule: lr × `lr_decay` from each milestone (unset: after each of the code's decay epochs
    that lies inside the training); η_τ has its own factor, `eta_decay`, applied by the ABSLD objective."""
    milestones = cfg.milestones if cfg.milestones is not None else \
        tuple(e + 1 for e in cfg.decay_epochs() if e < cfg.epochs)
    return TrainConfig(epochs=cfg.epochs, batch_size=cfg.batch_size, lr=cfg.lr, weight_decay=cfg.weight_decay,
                       schedule="step", milestones=milestones, gamma=cfg.lr_decay, augment=cfg.augment,
                       seed=cfg.seed)


def selection_rule(cfg: AbsldConfig) -> SelectionRule | None:
    """None: the last epoch. Otherwise the (avg + worst) PGD rule on validation, dense after the first decay."""
    if cfg.checkpoint == "last":
        return None
    decay = cfg.decay_epochs()
    return SelectionRule(eps=cfg.eps, steps=cfg.eval_steps, alpha=cfg.eval_alpha, every=cfg.select_every,
                         dense_from=decay[0] if decay else None, seed=cfg.seed + VALIDATION_SEED_OFFSET,
                         batch_size=cfg.eval_batch_size)


def absld(cfg: AbsldConfig, teacher: nn.Module, teacher_key: str, mode: str,
          frozen: tuple[Sequence[float], Sequence[float]] | None = None) -> ABSLD:
    """ABSLD in `mode`, or its frozen-temperature variant ("absld_manual") when `frozen` is given."""
    key, extra = (absld_key(mode), {}) if frozen is None else ("absld_manual", {"mode": mode, "frozen": frozen})
    return catalogue.objective(key, teacher=teacher, teacher_key=teacher_key, num_classes=cfg.num_classes(),
                               eta=cfg.eta_tau, tau_min=cfg.tau_min, tau_max=cfg.tau_max,
                               decay_epochs=cfg.decay_epochs(), eta_decay=cfg.eta_decay, kl_scale=cfg.kl_scale,
                               **extra, **training_attack(cfg))


def manual_temperatures(cfg: AbsldConfig, hard: Sequence[int]) -> list[float]:
    """The frozen "manual" vector: manual_tau_hard on the hard classes, manual_tau_easy on the others."""
    return [cfg.manual_tau_hard if c in hard else cfg.manual_tau_easy for c in range(cfg.num_classes())]


def plan(cfg: AbsldConfig, teacher: nn.Module, teacher_key: str, hard: Sequence[int],
         ls_hard: Sequence[int]) -> dict[str, Objective]:
    """key -> objective of every student (and of the teacher-free C3 models) the config asks for."""
    c, attack = cfg.num_classes(), training_attack(cfg)
    manual = manual_temperatures(cfg, hard)
    students = {
        "rslad": lambda: catalogue.objective("rslad", teacher=teacher, teacher_key=teacher_key, num_classes=c,
                                             kl_scale=cfg.kl_scale, **attack),
        absld_key("separate"): lambda: absld(cfg, teacher, teacher_key, "separate"),
        absld_key("code_product"): lambda: absld(cfg, teacher, teacher_key, "code_product"),
        "absld_manual": lambda: absld(cfg, teacher, teacher_key, "separate", frozen=(manual, manual)),
    }
    out: dict[str, Objective] = {name: students[name]() for name in cfg.students}
    optional = {
        "ard": lambda: catalogue.objective("ard", teacher=teacher, teacher_key=teacher_key, num_classes=c, t=cfg.ard_t,
                                    ard_alpha=cfg.ard_alpha, kl_scale=cfg.kl_scale, **attack),
        "fair_rslad": lambda: catalogue.objective("fair_rslad", teacher=teacher, teacher_key=teacher_key, num_classes=c,
                                                  kl_scale=cfg.kl_scale, **attack),
        "pgd_at": lambda: catalogue.objective("pgd_at", **attack),
        "trades": lambda: catalogue.objective("trades", **attack, beta=cfg.trades_beta, clip_start=False),
    }
    out.update({name: optional[name]() for name in cfg.baselines})
    if cfg.c3:
        out["ls_uniform"] = catalogue.objective("label_smoothing", **attack, smoothing=[cfg.ls_uniform] * c)
        out["ls_class"] = catalogue.objective("label_smoothing", **attack,
                                              smoothing=class_smoothing(c, ls_hard, cfg.ls_hard, cfg.ls_easy))
    return out


def hardest(per_class: Sequence[float], k: int) -> list[int]:
    """The k classes with the lowest accuracy (ties: the lower class index), in class order."""
    order = sorted(range(len(per_class)), key=lambda c: (per_class[c], c))
    return sorted(order[:k])


def paper_hard_classes(classes: Sequence[str]) -> list[int] | None:
    """The paper's hard classes (Fig. 3): cat, deer, dog, frog; None where the dataset lacks them."""
    names = ("cat", "deer", "dog", "frog")
    return [list(classes).index(n) for n in names] if all(n in classes for n in names) else None


# ---- protocols ----

def test_protocol(cfg: AbsldConfig, *, fgsm: bool = True, cw: bool = True) -> Protocol:
    """clean, FGSM, PGD-K and CW∞-K (margin loss) on every test point, AutoAttack on the AA points."""
    suite = standard_attacks(steps=cfg.eval_steps, alpha=cfg.eval_alpha, fgsm=fgsm, cw=cw, autoattack=cfg.aa_version)
    return chapter_protocol(cfg, suite)


def validation_protocol(cfg: AbsldConfig) -> Protocol:
    """PGD only: what the choice of the hard classes needs."""
    suite = standard_attacks(steps=cfg.eval_steps, alpha=cfg.eval_alpha, fgsm=False, cw=False, autoattack=None)
    return chapter_protocol(cfg, suite, part="validation")


def as_float_list(values: np.ndarray | Sequence[float]) -> list[float]:
    return [float(v) for v in np.asarray(values, dtype=float)]
