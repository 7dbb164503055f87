"""The AALP chapter's config: every field a papermill parameter or `--set` override, validated.

Every switch of the reconstruction of Wu et al. (TOMM 2024: Guided Dropout and the adaptive weights) is a field;
its default is the book's reading of the paper."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from ...contributions import CONTRIB_SIGNS
from ...models import MODELS
from ...objectives.aalp import check_gd, check_weights
from ...objectives.alp import TRAIN_ATTACKS, check_alp_params
from ...validation import check_choice, check_eps, check_fields, check_number, check_positive, fail
from ...config import ChapterConfig

MNIST_CNN = "mnist_cnn"
# The trained models a run can include; the first four are what every claim rests on.
MODEL_KEYS = ("standard", "pgd_at", "mpgd", "alp", "aalp", "gd_only", "weights_only")
REQUIRED_MODELS = ("standard", "pgd_at", "alp", "aalp")
DATASETS = ("mnist", "cifar10")

# Paper profile (GPU), the spec's book settings (AALP's own are not available): CIFAR-10, PreAct ResNet-18.
PAPER = {
    "dataset": "cifar10", "model": "preact_resnet18", "train_per_class": None, "test_per_class": None,
    "aa_per_class": None, "eps": 8 / 255, "train_steps": 10, "train_alpha": 2 / 255, "epochs": 110,
    "batch_size": 128, "lr": 0.1, "weight_decay": 5e-4, "schedule": "step", "milestones": (100, 105), "augment": True,
    "eval_alpha": 2 / 255, "cw_steps": 30, "long_alpha": 2 / 255, "restarts": 10, "aa_version": "standard",
    "square_queries": 5000, "sweep_eps": (2 / 255, 4 / 255, 8 / 255, 12 / 255), "eval_batch_size": 1000,
}

# The evidence tier: the cpu profile's MNIST models already clear the quality bars (the smoke tier's PGD-AT: every
# class above 90 % clean and 55 % under PGD-20), so the tier keeps their training, and tests on the whole test set
# with AutoAttack (APGD-CE + APGD-T, beside the chapter's own Square attack) and the other costly checks on 100
# points per class.
EVIDENCE = {"test_per_class": None, "aa_per_class": 100}


@dataclass(frozen=True)
class AALPConfig(ChapterConfig):
    LIST_FIELDS: ClassVar[tuple[str, ...]] = ("models", "milestones", "sweep_eps", "contrib_top")
    PROFILES: ClassVar[dict[str, dict[str, Any]]] = {"cpu": {}, "evidence": EVIDENCE, "paper": PAPER}
    SCHEDULE_FIELDS: ClassVar[dict[str, str]] = {"milestones": "epochs"}
    SMOKE: ClassVar[dict[str, Any]] = {"cw_steps": 2, "long_steps": 2, "restarts": 1, "square_queries": 10}

    dataset: str = "mnist"  # MNIST (the paper's) or CIFAR-10
    data_seed: int = 0  # which images form the training and test subsets
    model: str = MNIST_CNN  # the spec's small CNN (128-d h); any of models.MODELS (small_cnn of width 32: 128-d)
    width: int = 16  # mnist_cnn: channels of the first conv; small_cnn: its width
    train_per_class: int | None = 500  # training images per class (None: all)
    test_per_class: int | None = 200  # test images per class (None: all)
    # the costly checks share them: PGD-100 with restarts, AA, Square, the eps sweep
    aa_per_class: int | None = 20  # AutoAttack points per class (None: every test point)
    models: tuple[str, ...] = MODEL_KEYS  # which models to train (standard, pgd_at, alp and aalp are required)
    # Training (every adversarial model: the same attack, schedule and seed).
    eps: float = 0.3  # L-inf radius of every attack, inputs in [0, 1]
    train_steps: int = 5  # PGD steps of the training attack
    train_alpha: float = 0.075  # step size of the training attack
    # "pgd_ll": ALP's official targeted least-likely PGD
    train_attack: str = "pgd"  # the training attack: pgd, or pgd_ll
    epochs: int = 3  # training epochs
    batch_size: int = 32  # training batch size
    lr: float = 0.05  # initial SGD learning rate
    weight_decay: float = 5e-4  # SGD weight decay
    schedule: str = "cosine"  # learning-rate schedule
    milestones: tuple[int, ...] = ()  # epochs where the step schedule cuts the lr x0.1 (unset: follow epochs)
    augment: bool = False  # random crop and flip while training
    # ALP (exact core).
    lam: float = 0.5  # the logit-pairing weight lambda of ALP and AALP
    label_smoothing: float = 0.1  # label smoothing of the classification terms
    # Guided Dropout (reconstruction of Wu et al., TOMM 2024).
    gd_mode: str = "drop_low"  # which features Guided Dropout drops
    gd_p: float = 0.3  # the fraction of features Guided Dropout drops
    gd_score: str = "abs"  # features scored by |c| or by the signed contribution c
    gd_rescale: bool = False  # rescale kept features by 1 / (1 - p)
    gd_branches: str = "both"  # mask both halves of the batch, or the adversarial one only
    # "all": the literal p of all d features (after a ReLU mostly zeros already)
    gd_among: str = "active"  # drop among the active features, or among all d
    # Adaptive sample weights (reconstruction of Wu et al., TOMM 2024).
    weight_rule: str = "ratio"  # the adaptive sample-weight rule (none: ALP)
    weight_low: float = 0.1  # weight of a misclassified sample (rule correct)
    weight_tau: float = 1.0  # temperature of the softmax weight rule
    # Feature contributions (reconstruction of Wu et al., TOMM 2024).
    contrib_sign: str = "abs"  # contributions as |c| or signed c (C3, C4)
    contrib_top: tuple[int, ...] = (5, 10)  # top-k features of the contribution statistics
    contrib_mass: float = 0.9  # the share of a point's contribution mass whose feature count is reported
    # Evaluation.
    eval_steps: int = 20  # PGD steps of the test attack
    eval_alpha: float = 0.03  # step size of the test attacks
    cw_steps: int = 20  # steps of the CW attack
    long_steps: int = 100  # steps of the long PGD with restarts
    long_alpha: float = 0.01  # step size of the long PGD
    restarts: int = 5  # restarts of the long PGD
    aa_version: str = "subset"  # AutoAttack: standard, or the APGD-CE + APGD-T subset
    square_queries: int = 1000  # queries of the black-box Square attack
    sweep_eps: tuple[float, ...] = (0.1, 0.2, 0.3, 0.4)  # radii of the epsilon sweep (check points)

    def validate(self) -> None:
        check_choice("dataset", self.dataset, DATASETS)
        check_choice("model", self.model, (MNIST_CNN, *MODELS))
        if self.model == MNIST_CNN and self.dataset != "mnist":
            fail("model", self.model, f"a model of models.MODELS for dataset={self.dataset!r} ({MNIST_CNN!r} is "
                                      "built for 28x28 MNIST images)")
        check_fields(self, ("cw_steps", "long_steps", "restarts", "square_queries"), check_positive, integer=True)
        check_fields(self, ("aa_per_class",), check_positive, optional=True, integer=True)
        if self.aa_per_class is not None and self.test_per_class is not None and self.aa_per_class > self.test_per_class:
            fail("aa_per_class", self.aa_per_class, f"at most test_per_class={self.test_per_class}")
        for key in self.models:
            check_choice("models", key, MODEL_KEYS)
        if len(set(self.models)) != len(self.models) or not set(REQUIRED_MODELS) <= set(self.models):
            fail("models", list(self.models), "a list of distinct model keys of " + ", ".join(MODEL_KEYS) +
                 " that includes " + ", ".join(REQUIRED_MODELS))
        check_positive("long_alpha", self.long_alpha)
        check_choice("train_attack", self.train_attack, TRAIN_ATTACKS)
        self.check_schedule("milestones")  # as TrainConfig will check: fail here, before any data is loaded
        check_alp_params(lam=self.lam, train_attack=self.train_attack, label_smoothing=self.label_smoothing)
        check_gd(gd=True, gd_mode=self.gd_mode, gd_p=self.gd_p, gd_score=self.gd_score, gd_rescale=self.gd_rescale,
                 gd_branches=self.gd_branches, gd_among=self.gd_among)
        check_weights(weight_rule=self.weight_rule, weight_low=self.weight_low, weight_tau=self.weight_tau)
        if self.weight_rule == "none":
            fail("weight_rule", self.weight_rule, "'ratio', 'correct' or 'softmax' for the AALP-style model ('none' is "
                                                  "ALP itself, always trained as the model 'alp')")
        check_choice("contrib_sign", self.contrib_sign, CONTRIB_SIGNS)
        if not self.contrib_top:
            fail("contrib_top", list(self.contrib_top), "a non-empty list of feature counts m >= 1")
        for m in self.contrib_top:
            check_positive("contrib_top", m, integer=True)
        check_number("contrib_mass", self.contrib_mass, low=0, high=1, low_open=True)
        if self.eps not in self.sweep_eps or len(self.sweep_eps) < 2:
            fail("sweep_eps", list(self.sweep_eps), f"a list of radii in (0, 1] that includes eps={self.eps:g} and at "
                                                    "least one other")
        for e in self.sweep_eps:
            check_eps("sweep_eps", e)
