"""The class-wise chapter's config: every field a papermill parameter or `--set` override, validated."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from ...attacks import T_RULES, check_temperature
from ...data import DATASETS
from ...models import MODELS
from ...validation import check_bool, check_choice, check_eps, check_fields, check_number, check_positive, fail
from ...calibration import tier_fields
from ...config import ChapterConfig

PAPER = {
    "model": "preact_resnet18", "train_per_class": None, "test_per_class": None, "train_steps": 10,
    "train_alpha": 2 / 255, "epochs": 110, "batch_size": 128, "augment": True, "lr": 0.1, "schedule": "step",
    "milestones": (100, 105), "eval_steps": 20, "long_steps": (50,), "aa_version": "standard", "aa_per_class": None,
    "mnist_aa_per_class": None, "bias_grid": (0.0, 0.25, 0.5, 1.0, 1.5, 2.0, 3.0), "mnist_width": 32,
    "mnist_train_per_class": None, "mnist_test_per_class": None, "mnist_train_steps": 40, "mnist_train_alpha": 0.01,
    "mnist_eval_steps": 20, "mnist_epochs": 10, "mnist_batch_size": 128, "mnist_lr": 0.1, "eval_batch_size": 1000,
    "mnist": True,
}

# The evidence tier: the calibrated CIFAR-10 training (`calibration.tier_fields`), tested on the whole test set
# with AutoAttack's APGD-CE + APGD-T on 100 points per class (standard AutoAttack's FAB-T and Square had run 6 minutes
# on the first model here without finishing, for 3 minutes of every other attack together; `aa_version="standard"`
# runs them). The MNIST track, which the smoke tier leaves out for time, trains with the `cpu` profile's MNIST fields
# (its own batch size, learning rate and validation split; those seed-0 models have every class above 85 % clean and
# 20 % under PGD-10: the smoke tier's before it left the track out) and is tested on 500 images per class.
EVIDENCE = {**tier_fields(), "test_per_class": None, "aa_version": "subset", "aa_per_class": 100, "mnist": True,
            "mnist_test_per_class": 500, "mnist_aa_per_class": 100}

@dataclass(frozen=True)
class ClasswiseConfig(ChapterConfig):
    LIST_FIELDS: ClassVar[tuple[str, ...]] = ("milestones", "long_steps", "temperatures", "bias_grid")
    PROFILES: ClassVar[dict[str, dict[str, Any]]] = {"cpu": {}, "evidence": EVIDENCE, "paper": PAPER}
    SCHEDULE_FIELDS: ClassVar[dict[str, str]] = {"milestones": "epochs"}
    SMOKE: ClassVar[dict[str, Any]] = {
        "long_steps": (3,), "temperatures": (0.5, 1.0), "bias_grid": (0.0, 1.0), "mnist_train_per_class": 4,
        "mnist_val_per_class": 2, "mnist_test_per_class": 1, "mnist_aa_per_class": 1, "mnist_epochs": 1,
        "mnist_batch_size": 8, "mnist_train_steps": 1, "mnist_eval_steps": 2}

    dataset: str = "cifar10"  # the image dataset of the CIFAR track
    data_seed: int = 0  # which images form the training, validation and test subsets
    model: str = "small_cnn"  # the CIFAR track's network
    width: int = 16  # channel width of the small CNN
    train_per_class: int | None = 400  # training images per class (None: all)
    val_per_class: int = 50  # validation images per class, held out from training (temperature and bias choices)
    test_per_class: int | None = 100  # test images per class (None: all)
    eps: float = 8 / 255  # L-inf radius of every attack, inputs in [0, 1]
    train_steps: int = 3  # PGD steps of the training attack
    train_alpha: float = 3 / 255  # step size of the training attack
    epochs: int = 4  # training epochs
    batch_size: int = 32  # training batch size
    augment: bool = False  # random crop and flip while training
    lr: float = 0.05  # initial SGD learning rate
    weight_decay: float = 5e-4  # SGD weight decay
    schedule: str = "cosine"  # learning-rate schedule
    milestones: tuple[int, ...] = ()  # epochs where the step schedule cuts the lr x0.1 (unset: follow epochs)
    trades_beta: float = 6.0  # TRADES' KL weight
    trades_clip_start: bool = False  # False: TRADES' inner max starts unclipped, as in its official code
    eval_steps: int = 10  # PGD steps of the test attacks
    eval_alpha: float = 2 / 255  # step size of the test attacks
    long_steps: tuple[int, ...] = ()  # longer PGD runs added to the test suite (step counts)
    temperatures: tuple[float, ...] = (0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0)  # the temperatures T of the T-PGD sweep
    t_rule: str = "global"  # how T-PGD scales the logits: one global T or per-image rules
    aa_version: str = "subset"  # AutoAttack version: standard (four attacks) or the APGD-CE + APGD-T subset
    aa_per_class: int | None = 10  # AutoAttack points per class (None: every test point)
    w_worst: float = 2.0  # loss weight of the worst class in the class-weighted PGD-AT
    bias_grid: tuple[float, ...] = (0.0, 0.5, 1.0, 2.0, 3.0)  # logit biases b on the weakest class tried on validation
    bias_tolerance: float = 0.01  # largest drop of mean validation accuracy a bias may cost
    # the smoke tier leaves it out (about 5 of its 12 minutes); the evidence and paper profiles run it
    mnist: bool = False  # also run the MNIST track (C1-C7, C8b on MNIST)
    mnist_model: str = "small_cnn"  # the MNIST track's network
    mnist_width: int = 16  # channel width of the MNIST small CNN
    mnist_train_per_class: int | None = 600  # MNIST training images per class (None: all)
    mnist_test_per_class: int | None = 100  # MNIST test images per class (None: all)
    # most MNIST points stay robust, so every AutoAttack step runs on them
    mnist_aa_per_class: int | None = 5  # MNIST AutoAttack points per class
    mnist_eps: float = 0.3  # L-inf radius of the MNIST attacks
    mnist_train_steps: int = 5  # PGD steps of the MNIST training attack
    mnist_train_alpha: float = 0.1  # step size of the MNIST training attack
    mnist_eval_steps: int = 10  # PGD steps of the MNIST test attacks
    mnist_eval_alpha: float = 0.075  # step size of the MNIST test attacks
    mnist_epochs: int = 2  # MNIST training epochs
    mnist_batch_size: int = 32  # MNIST training batch size
    mnist_lr: float = 0.05  # MNIST initial SGD learning rate
    mnist_val_per_class: int = 50  # MNIST validation images per class, held out from training

    def validate(self) -> None:
        check_choice("dataset", self.dataset, tuple(d for d in DATASETS if d != "mnist"))
        check_choice("model", self.model, MODELS)
        check_choice("mnist_model", self.mnist_model, MODELS)
        check_fields(self, ("mnist_width", "mnist_train_steps", "mnist_eval_steps", "mnist_epochs", "mnist_batch_size",
                            "mnist_val_per_class"), check_positive,
                     integer=True)
        check_fields(self, ("mnist_train_per_class", "mnist_test_per_class", "mnist_aa_per_class"), check_positive,
                     optional=True, integer=True)
        check_eps("mnist_eps", self.mnist_eps)
        check_fields(self, ("mnist_train_alpha", "mnist_eval_alpha", "mnist_lr", "w_worst"), check_positive)
        check_choice("t_rule", self.t_rule, T_RULES)
        if not self.temperatures or 1.0 not in self.temperatures or len(self.temperatures) < 2:
            fail("temperatures", list(self.temperatures),
                 "a list of temperatures > 0 that includes 1 (plain PGD) and at least one other")
        for t in self.temperatures:
            try:
                check_temperature(t)
            except ValueError:
                fail("temperatures", list(self.temperatures), "finite temperatures > 0")
        self.check_schedule("milestones")  # as TrainConfig will check: fail here, before any data is loaded
        for k in self.long_steps:
            check_positive("long_steps", k, integer=True)
        if 0.0 not in self.bias_grid or len(self.bias_grid) < 2:
            fail("bias_grid", list(self.bias_grid), "a list of logit biases >= 0 that includes 0 (no tweak) and "
                 "at least one bias > 0")
        for b in self.bias_grid:
            check_number("bias_grid", b, low=0)
        check_number("bias_tolerance", self.bias_tolerance, low=0, high=1)
        check_fields(self, ("mnist", "trades_clip_start"), check_bool)
