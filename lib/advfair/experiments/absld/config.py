"""The ABSLD chapter's config: every field a papermill parameter or `--set` override, validated.

Epoch conventions: `teacher_milestones` and the students' `milestones` are the trainer's (the first 1-based epoch
trained at the decayed rate). The official ABSLD/RSLAD code decays at the END of its epochs 215, 260 and 285 of 300
(the student's learning rate and, in the same block and before that epoch's temperature update, η_τ): milestones
216, 261 and 286. None: those as fractions of `epochs`. The two are separate quantities with separate factors: the
lr is multiplied by `lr_decay`, η_τ by `eta_decay` (both 0.1 in the official code).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from ...models import MODELS
from ...objectives.distillation import check_temperatures
from ...trainer import SCHEDULES
from ...validation import (check_bool, check_choice, check_eps, check_fields, check_non_negative, check_number,
                           check_positive, fail)
from ...calibration import tier_fields
from ...config import ChapterConfig

CODE_DECAY_EPOCHS, CODE_EPOCHS = (215, 260, 285), 300
DATASET_CLASSES = {"cifar10": 10, "cifar100": 100}
TEACHER_OBJECTIVES = ("pgd_at", "trades")
BASELINES = ("ard", "fair_rslad", "pgd_at", "trades")  # optional students beside RSLAD and the ABSLD variants
STUDENTS = ("rslad", "absld_separate", "absld_code_product", "absld_manual")  # RSLAD and the ABSLD variants
CHECKPOINT_RULES = ("last", "val_avg_worst")

# Paper scale (GPU): the official code's settings; the teacher is TRADES' WRN-34-10 recipe (trained here if absent).
PAPER = {
    "train_per_class": None, "val_per_class": 100, "test_per_class": None,
    "teacher_model": "wrn34_10", "teacher_objective": "trades", "teacher_eps": 0.031, "teacher_steps": 10,
    "teacher_alpha": 0.007, "teacher_epochs": 76, "teacher_batch_size": 128, "teacher_lr": 0.1,
    "teacher_weight_decay": 2e-4, "teacher_schedule": "step", "teacher_milestones": (75,), "teacher_augment": True,
    "model": "preact_resnet18", "epochs": 300, "batch_size": 128, "lr": 0.1, "weight_decay": 2e-4,
    "milestones": tuple(e + 1 for e in CODE_DECAY_EPOCHS), "augment": True, "train_steps": 10,
    "train_alpha": 2 / 255,
    "eta_tau": 0.1, "kl_scale": 1.0, "checkpoint": "val_avg_worst", "select_every": 10, "baselines": BASELINES,
    "aa_version": "standard",
    "aa_per_class": None, "eval_batch_size": 1000,
}



def _evidence() -> dict[str, Any]:
    """The evidence tier: the teacher is the tier's PGD-AT baseline (the class-wise chapter's evidence model of the
    same seed, shared through the cache); the students take the tier's network, data and training attack with
    ABSLD's own step schedule and weight decay, and AutoAttack is APGD-CE + APGD-T on 100 points per class. The
    tier's CPU budget (decided on cost alone, before any result of this profile) trains two students a seed, RSLAD
    and ABSLD (separate): C1, C2 and C5 compare them. The code_product and manual variants (C7, C4), the teacher-free
    C3 models and the optional baselines (four or more full-data models a seed) are left out."""
    tier = tier_fields()
    return {
        "train_per_class": tier["train_per_class"], "val_per_class": tier["val_per_class"], "test_per_class": None,
        "teacher_model": "small_cnn", "teacher_width": tier["width"], "teacher_objective": "pgd_at",
        "teacher_steps": tier["train_steps"], "teacher_alpha": tier["train_alpha"], "teacher_epochs": tier["epochs"],
        "teacher_batch_size": tier["batch_size"], "teacher_lr": tier["lr"],
        "teacher_weight_decay": tier["weight_decay"], "teacher_schedule": tier["schedule"],
        "teacher_augment": tier["augment"],
        "width": tier["width"], "epochs": tier["epochs"], "batch_size": tier["batch_size"], "lr": tier["lr"],
        "augment": tier["augment"], "train_steps": tier["train_steps"], "train_alpha": tier["train_alpha"],
        "students": ("rslad", "absld_separate"), "c3": False, "baselines": (), "aa_version": "subset",
        "aa_per_class": 100,
    }


EVIDENCE = _evidence()


@dataclass(frozen=True)
class AbsldConfig(ChapterConfig):
    LIST_FIELDS: ClassVar[tuple[str, ...]] = ("teacher_milestones", "students", "baselines")
    PROFILES: ClassVar[dict[str, dict[str, Any]]] = {"cpu": {}, "evidence": EVIDENCE, "paper": PAPER}
    SCHEDULE_FIELDS: ClassVar[dict[str, str]] = {"teacher_milestones": "teacher_epochs", "milestones": "epochs"}
    SMOKE: ClassVar[dict[str, Any]] = {"teacher_epochs": 1, "teacher_steps": 1, "teacher_batch_size": 8,
                                       "select_every": 1}

    dataset: str = "cifar10"  # CIFAR-10 or CIFAR-100
    # the training, validation and test images: the class-wise chapter's split at the defaults
    data_seed: int = 0  # which images form the training, validation and test subsets
    train_per_class: int | None = 400  # training images per class (None: all)
    val_per_class: int = 50  # validation images per class, held out from training
    test_per_class: int | None = 150  # test images per class (None: all)
    eps: float = 8 / 255  # L-inf radius of every attack, inputs in [0, 1]
    # The teacher: at the cpu and evidence defaults exactly the class-wise chapter's PGD-AT model of the same tier and
    # seed (shared through the cache).
    # False: the teacher must already be in the model cache
    train_teacher: bool = True  # train the teacher if it is not in the model cache
    # None: the training seed
    teacher_seed: int | None = None  # the teacher's training seed
    teacher_model: str = "small_cnn"  # the teacher's network
    teacher_width: int = 16  # channel width of the teacher's small CNN
    teacher_objective: str = "pgd_at"  # how the teacher is adversarially trained
    # TRADES teacher only
    teacher_beta: float = 6.0  # KL weight of a TRADES teacher
    # None: eps
    teacher_eps: float | None = None  # L-inf radius of the teacher's training attack
    teacher_steps: int = 3  # PGD steps of the teacher's training attack
    teacher_alpha: float = 3 / 255  # step size of the teacher's training attack
    teacher_epochs: int = 4  # the teacher's training epochs
    teacher_batch_size: int = 32  # the teacher's batch size
    teacher_lr: float = 0.05  # the teacher's initial learning rate
    teacher_weight_decay: float = 5e-4  # the teacher's weight decay
    teacher_schedule: str = "cosine"  # the teacher's learning-rate schedule
    teacher_milestones: tuple[int, ...] = ()  # the teacher's step-schedule milestones (unset: follow teacher_epochs)
    teacher_augment: bool = False  # random crop and flip for the teacher
    # Students.
    model: str = "small_cnn"  # the students' network
    width: int = 8  # channel width of the students' small CNN
    epochs: int = 6  # the students' training epochs
    batch_size: int = 32  # the students' batch size
    lr: float = 0.05  # the students' initial learning rate
    weight_decay: float = 2e-4  # the students' weight decay
    # None: after 215/300, 260/300, 285/300 of `epochs` (rounded)
    milestones: tuple[int, ...] | None = None  # the first epochs trained at the decayed lr and eta_tau
    # a schedule this short learns faster without crop + flip
    augment: bool = False  # random crop and flip for the students
    train_steps: int = 3  # PGD steps of the students' training attack
    train_alpha: float = 3 / 255  # step size of the students' training attack
    # The KL "averaged over B×C" carries a factor 1/C: six epochs at that scale leave the students barely trained, so
    # the cpu profile sums it over the classes (×C = 10, RSLAD's own CIFAR-100 factor); the paper profile keeps 1.
    kl_scale: float = 10.0  # factor on the distillation KL
    # the mode the claims C1, C2, C4, C5, C6 test; `students` says which modes are trained (evidence: separate only)
    absld_mode: str = "separate"  # which ABSLD mode the claims test
    # The code's 0.1 per epoch saturates the temperatures within the first few percent of its 300 epochs; over six
    # epochs it would move them by at most 0.3. At cpu scale the hardest class reaches the 0.5 bound in one epoch.
    eta_tau: float = 0.5  # learning rate of ABSLD's class temperatures
    # η_τ × eta_decay at the end of each decay epoch
    eta_decay: float = 0.1  # decay factor of eta_tau
    # the student's lr × lr_decay at the end of each decay epoch (the code's 0.1)
    lr_decay: float = 0.1  # decay factor of the students' lr
    tau_min: float = 0.5  # lower bound of a class temperature
    tau_max: float = 5.0  # upper bound of a class temperature
    # the hard classes: the lowest validation PGD accuracies of the teacher
    hard_count: int = 4  # how many classes count as hard
    manual_tau_hard: float = 0.5  # temperature of the hard classes (manual variant)
    manual_tau_easy: float = 2.0  # temperature of the easy classes (manual variant)
    # RSLAD and the absld_mode's ABSLD are required (C1, C2, C5 compare them); code_product is C7's, manual C4's
    students: tuple[str, ...] = STUDENTS  # which of RSLAD and the ABSLD variants to train
    # Optional students: "ard", "fair_rslad" (the sample-based counterpart the reviewers asked about), "pgd_at",
    # "trades".
    baselines: tuple[str, ...] = ("fair_rslad",)  # which optional students to train
    ard_t: float = 30.0  # ARD's distillation temperature
    ard_alpha: float = 1.0  # ARD's weight of the distillation term
    trades_beta: float = 6.0  # TRADES' KL weight
    # "val_avg_worst": the epoch with the best (avg + worst) validation PGD accuracy
    checkpoint: str = "last"  # last epoch, or the best by validation (avg + worst)
    # validation every k epochs before the first decay epoch, then every epoch
    select_every: int = 1  # validation interval in epochs
    # The teacher-free C3 demo: PGD-AT with class-dependent label smoothing.
    c3: bool = True  # train the teacher-free C3 demo
    ls_uniform: float = 0.2  # label smoothing of the uniform C3 model
    ls_hard: float = 0.05  # label smoothing of the hard classes (C3)
    ls_easy: float = 0.3  # label smoothing of the easy classes (C3)
    ls_hard_count: int = 2  # how many classes count as hard in C3
    # Evaluation.
    eval_steps: int = 20  # PGD steps of the test attacks
    eval_alpha: float = 2 / 255  # step size of the test attacks
    aa_version: str = "subset"  # AutoAttack: standard, or the APGD-CE + APGD-T subset
    aa_per_class: int | None = 15  # AutoAttack points per class (None: all)
    # "close" (C2, C3): the paired difference of averages lies within ±3 points
    equivalence_margin: float = 0.03  # margin of 'close' (C2, C3), as a proportion

    def validate(self) -> None:
        check_choice("dataset", self.dataset, DATASET_CLASSES)
        check_fields(self, ("teacher_width", "teacher_steps", "teacher_epochs", "teacher_batch_size", "select_every"),
                     check_positive, integer=True)
        if self.teacher_eps is not None:
            check_eps("teacher_eps", self.teacher_eps)
        if self.teacher_seed is not None:
            check_non_negative("teacher_seed", self.teacher_seed, integer=True)
        check_choice("teacher_model", self.teacher_model, MODELS)
        check_choice("model", self.model, MODELS)
        check_choice("teacher_objective", self.teacher_objective, TEACHER_OBJECTIVES)
        check_choice("teacher_schedule", self.teacher_schedule, SCHEDULES)
        self.check_schedule("teacher_milestones")  # as TrainConfig will check: fail here, before any data is loaded
        check_fields(self, ("teacher_alpha", "teacher_lr", "kl_scale", "ard_t", "manual_tau_hard", "manual_tau_easy"),
                     check_positive)
        check_fields(self, ("teacher_beta", "teacher_weight_decay"), check_non_negative)
        if self.milestones is not None:
            if not isinstance(self.milestones, (list, tuple)):
                fail("milestones", self.milestones, "None or a list of epochs")
            object.__setattr__(self, "milestones", tuple(self.milestones))
            self.check_schedule("milestones")
        check_temperatures(mode=self.absld_mode, eta=self.eta_tau, tau_min=self.tau_min, tau_max=self.tau_max,
                           init_tau=self.tau_min, decay=self.eta_decay, decay_epochs=self.decay_epochs())
        if self.tau_min > 1:
            fail("tau_min", self.tau_min, "a temperature <= 1 (the temperatures start at 1)")
        if self.tau_max < 1:
            fail("tau_max", self.tau_max, "a temperature >= 1 (the temperatures start at 1)")
        num_classes = DATASET_CLASSES[self.dataset]
        check_number("hard_count", self.hard_count, low=1, high=num_classes - 1, integer=True)
        check_number("ls_hard_count", self.ls_hard_count, low=1, high=num_classes - 1, integer=True)
        self._check_students()
        for b in self.baselines:
            check_choice("baselines", b, BASELINES)
        if len(set(self.baselines)) != len(self.baselines):
            fail("baselines", list(self.baselines), "distinct names from " + ", ".join(BASELINES))
        check_number("ard_alpha", self.ard_alpha, low=0, high=1)
        check_number("lr_decay", self.lr_decay, low=0, high=1, low_open=True)
        check_choice("checkpoint", self.checkpoint, CHECKPOINT_RULES)
        for name in ("ls_uniform", "ls_hard", "ls_easy"):
            check_number(name, getattr(self, name), low=0, high=1, high_open=True)
        check_fields(self, ("train_teacher", "teacher_augment", "c3"), check_bool)

    def _check_students(self) -> None:
        """Known, distinct names, with the two every run compares (C1, C2, C5); kept in STUDENTS' order, so that
        one set of students has one config hash."""
        for name in self.students:
            check_choice("students", name, STUDENTS)
        required = ("rslad", f"absld_{self.absld_mode}")
        if len(set(self.students)) != len(self.students) or not set(required) <= set(self.students):
            fail("students", list(self.students), f"distinct names from {', '.join(STUDENTS)}, with "
                 f"{' and '.join(required)} (absld_mode={self.absld_mode!r})")
        object.__setattr__(self, "students", tuple(name for name in STUDENTS if name in self.students))

    def decay_epochs(self) -> tuple[int, ...]:
        """The epochs at whose end the student's lr is multiplied by `lr_decay` and η_τ by `eta_decay` (1-based):
        the epochs before the milestones (a milestone 1 decays the lr alone: no epoch ends before it). Unset, the
        code's epochs scaled to `epochs`; the last may be the last epoch, whose decay reaches only its temperature
        update."""
        if self.milestones is not None:
            return tuple(sorted({m - 1 for m in self.milestones if m > 1}))
        scaled = (round(e * self.epochs / CODE_EPOCHS) for e in CODE_DECAY_EPOCHS)
        return tuple(sorted({max(1, min(self.epochs, e)) for e in scaled}))

    def num_classes(self) -> int:
        return DATASET_CLASSES[self.dataset]
