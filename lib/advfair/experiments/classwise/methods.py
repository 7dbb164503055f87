"""The class-wise chapter's methods: its data, the models it trains, and the protocols it evaluates with."""
from __future__ import annotations

from ...evaluation import Protocol, standard_attacks
from ...objectives import Objective, make_objective
from ...objectives.class_weighted import worst_class_weights
from ...splits import Split, balanced_split
from ...trainer import TrainConfig
from .config import ClasswiseConfig

MODEL_LABELS = {"pgd_at": "PGD-AT", "trades": "TRADES (β=6)", "class_weighted": "class-weighted PGD-AT",
                "pgd_at_bias": "PGD-AT + logit bias", "mnist": "MNIST PGD-AT"}
VALIDATION_SEED_OFFSET, TEST_SEED_OFFSET = 10, 20


def cifar_split(cfg: ClasswiseConfig) -> Split:
    return balanced_split(cfg.dataset, train_per_class=cfg.train_per_class, val_per_class=cfg.val_per_class,
                          test_per_class=cfg.test_per_class, seed=cfg.data_seed, data_dir=cfg.data_dir)


def mnist_split(cfg: ClasswiseConfig) -> Split:
    return balanced_split("mnist", train_per_class=cfg.mnist_train_per_class, val_per_class=cfg.val_per_class,
                          test_per_class=cfg.mnist_test_per_class, seed=cfg.data_seed, data_dir=cfg.data_dir)


def data_spec(cfg: ClasswiseConfig, dataset: str, train_per_class: int | None) -> dict:
    return {"dataset": dataset, "seed": cfg.data_seed, "train_per_class": train_per_class,
            "val_per_class": cfg.val_per_class}


def train_config(cfg: ClasswiseConfig, *, epochs: int | None = None, augment: bool | None = None) -> TrainConfig:
    epochs = cfg.epochs if epochs is None else epochs
    return TrainConfig(epochs=epochs, batch_size=cfg.batch_size, lr=cfg.lr, weight_decay=cfg.weight_decay,
                       schedule=cfg.schedule, milestones=cfg.milestones if epochs == cfg.epochs else (),
                       augment=cfg.augment if augment is None else augment, seed=cfg.seed)


def _attack(cfg: ClasswiseConfig) -> dict:
    return {"eps": cfg.eps, "alpha": cfg.train_alpha, "steps": cfg.train_steps}


def cifar_model(cfg: ClasswiseConfig) -> dict:
    return {"name": cfg.model, "width": cfg.width}


def pgd_at(cfg: ClasswiseConfig) -> Objective:
    return make_objective("pgd_at", **_attack(cfg))


def trades(cfg: ClasswiseConfig) -> Objective:
    return make_objective("trades", **_attack(cfg), beta=cfg.trades_beta, clip_start=cfg.trades_clip_start)


def class_weighted(cfg: ClasswiseConfig, num_classes: int, worst: int) -> Objective:
    """Reconstruction (in the spirit of Tian et al.): weight w_worst on the validation-weakest class."""
    return make_objective("class_weighted_pgd_at", **_attack(cfg),
                          class_weights=worst_class_weights(num_classes, worst, cfg.w_worst))


def mnist_pgd_at(cfg: ClasswiseConfig) -> Objective:
    return make_objective("pgd_at", eps=cfg.mnist_eps, alpha=cfg.mnist_train_alpha, steps=cfg.mnist_train_steps)


def test_protocol(cfg: ClasswiseConfig, temperatures: tuple[float, ...]) -> Protocol:
    """FGSM, PGD, the longer PGDs, CW, T-PGD at `temperatures` and AutoAttack (on the AA points)."""
    suite = standard_attacks(steps=cfg.eval_steps, alpha=cfg.eval_alpha, temperatures=temperatures,
                             t_rule=cfg.t_rule, extra_steps=cfg.long_steps, autoattack=cfg.aa_version)
    return Protocol(cfg.eps, suite, seed=cfg.seed + TEST_SEED_OFFSET, batch_size=cfg.eval_batch_size, n_boot=cfg.n_boot)


def validation_protocol(cfg: ClasswiseConfig, temperatures: tuple[float, ...]) -> Protocol:
    """PGD and T-PGD only: what the choices of the weakest class, T and b need."""
    suite = standard_attacks(steps=cfg.eval_steps, alpha=cfg.eval_alpha, temperatures=temperatures, t_rule=cfg.t_rule,
                             fgsm=False, cw=False, autoattack=None)
    return Protocol(cfg.eps, suite, seed=cfg.seed + VALIDATION_SEED_OFFSET, batch_size=cfg.eval_batch_size,
                    n_boot=cfg.n_boot)


def pgd_only(protocol: Protocol, pgd: str) -> Protocol:
    return protocol.with_attacks({pgd: protocol.attacks[pgd]})


def mnist_protocol(cfg: ClasswiseConfig) -> Protocol:
    suite = standard_attacks(steps=cfg.mnist_eval_steps, alpha=cfg.mnist_eval_alpha, autoattack=cfg.aa_version)
    return Protocol(cfg.mnist_eps, suite, seed=cfg.seed + TEST_SEED_OFFSET, batch_size=cfg.eval_batch_size,
                    n_boot=cfg.n_boot)
