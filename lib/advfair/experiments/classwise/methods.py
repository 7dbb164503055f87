"""The class-wise chapter's methods: its data, the models it trains, and the protocols it evaluates with.

The chapter runs one pipeline per dataset, a `Track`: CIFAR-10 (its main track) and MNIST (the paper diagnoses
MNIST too). A track holds the settings that differ between them; everything else is the config's.
"""
from __future__ import annotations

from dataclasses import dataclass

from ...evaluation import Protocol, standard_attacks
from ...methods import catalogue
from ...objectives import Objective
from ...objectives.class_weighted import worst_class_weights
from ...splits import Split, balanced_split
from ...trainer import TrainConfig
from ..common import chapter_protocol, training_attack
from .config import ClasswiseConfig

MODEL_LABELS = {"pgd_at": "PGD-AT", "trades": "TRADES (β=6)", "class_weighted": "class-weighted PGD-AT",
                "pgd_at_bias": "PGD-AT + logit bias"}


@dataclass(frozen=True)
class Track:
    """One dataset's pipeline settings: data, model, threat model, training and evaluation budget."""

    name: str  # "cifar" or "mnist": model-cache labels and results keys
    dataset: str
    model: dict
    eps: float
    train_per_class: int | None
    test_per_class: int | None
    aa_per_class: int | None
    train_steps: int
    train_alpha: float
    epochs: int
    batch_size: int
    lr: float
    val_per_class: int
    augment: bool
    eval_steps: int
    eval_alpha: float
    long_steps: tuple[int, ...]

    def key(self, model: str) -> str:
        """The cache label of a model of this track (the CIFAR-10 track keeps the plain names)."""
        return model if self.name == "cifar" else f"{self.name}_{model}"


def cifar_track(cfg: ClasswiseConfig) -> Track:
    return Track("cifar", cfg.dataset, {"name": cfg.model, "width": cfg.width}, cfg.eps, cfg.train_per_class,
                 cfg.test_per_class, cfg.aa_per_class, cfg.train_steps, cfg.train_alpha, cfg.epochs, cfg.batch_size,
                 cfg.lr, cfg.val_per_class, cfg.augment, cfg.eval_steps, cfg.eval_alpha, cfg.long_steps)


def mnist_track(cfg: ClasswiseConfig) -> Track:
    return Track("mnist", "mnist", {"name": cfg.mnist_model, "width": cfg.mnist_width}, cfg.mnist_eps,
                 cfg.mnist_train_per_class, cfg.mnist_test_per_class, cfg.mnist_aa_per_class, cfg.mnist_train_steps,
                 cfg.mnist_train_alpha, cfg.mnist_epochs, cfg.mnist_batch_size, cfg.mnist_lr, cfg.mnist_val_per_class,
                 False, cfg.mnist_eval_steps, cfg.mnist_eval_alpha, ())


def split(cfg: ClasswiseConfig, t: Track) -> Split:
    return balanced_split(t.dataset, train_per_class=t.train_per_class, val_per_class=t.val_per_class,
                          test_per_class=t.test_per_class, seed=cfg.data_seed, data_dir=cfg.data_dir)


def train_config(cfg: ClasswiseConfig, t: Track) -> TrainConfig:
    return TrainConfig(epochs=t.epochs, batch_size=t.batch_size, lr=t.lr, weight_decay=cfg.weight_decay,
                       schedule=cfg.schedule, milestones=cfg.milestones if t.epochs == cfg.epochs else (),
                       augment=t.augment, seed=cfg.seed)


def pgd_at(t: Track) -> Objective:
    return catalogue.objective("pgd_at", **training_attack(t))


def trades(cfg: ClasswiseConfig, t: Track) -> Objective:
    return catalogue.objective("trades", **training_attack(t), beta=cfg.trades_beta, clip_start=cfg.trades_clip_start)


def class_weighted(cfg: ClasswiseConfig, t: Track, num_classes: int, worst: int) -> Objective:
    """Reconstruction (in the spirit of Tian et al.): weight w_worst on the validation-weakest class."""
    return catalogue.objective("class_weighted", **training_attack(t),
                          class_weights=worst_class_weights(num_classes, worst, cfg.w_worst))


def test_protocol(cfg: ClasswiseConfig, t: Track, temperatures: tuple[float, ...]) -> Protocol:
    """FGSM, PGD, the longer PGDs, CW, T-PGD at `temperatures` and AutoAttack (on the AA points)."""
    suite = standard_attacks(steps=t.eval_steps, alpha=t.eval_alpha, temperatures=temperatures,
                             t_rule=cfg.t_rule, extra_steps=t.long_steps, autoattack=cfg.aa_version)
    return chapter_protocol(cfg, suite, eps=t.eps)


def validation_protocol(cfg: ClasswiseConfig, t: Track, temperatures: tuple[float, ...]) -> Protocol:
    """PGD and T-PGD only: what the choices of the weakest class, T and b need."""
    suite = standard_attacks(steps=t.eval_steps, alpha=t.eval_alpha, temperatures=temperatures, t_rule=cfg.t_rule,
                             fgsm=False, cw=False, autoattack=None)
    return chapter_protocol(cfg, suite, part="validation", eps=t.eps)


def pgd_only(protocol: Protocol, pgd: str) -> Protocol:
    return protocol.with_attacks({pgd: protocol.attacks[pgd]})
