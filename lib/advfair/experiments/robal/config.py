"""The RoBal chapter's config: every field a papermill parameter or `--set` override, validated."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from ...calibration import lt_tier_fields
from ...data import long_tailed_counts
from ...models import MODELS
from ...validation import check_bool, check_choice, check_fields, check_non_negative, check_number, check_positive, fail
from ...config import ChapterConfig

# The trained models a run can include; "at_fc" is the baseline every comparison needs, "plain" (standard
# training, no AT) the reference of C1's "AT widens the tail's clean-accuracy loss".
MODEL_KEYS = ("plain", "sml_bal", "at_fc", "at_cos", "la_train", "trades", "robal_n", "robal_r")
DATASET_CLASSES = {"cifar10": 10, "cifar100": 100, "mnist": 10}
# MNIST's classes are uneven: 5,421 (class 5) is the fewest training images any class has
TRAIN_IMAGES_PER_CLASS = {"cifar10": 5000, "cifar100": 500, "mnist": 5421}
START_KINDS = ("symmetric", "positive")

# Paper scale (GPU): WRN-34-10, the released training settings, the full test set.
# n_max = 4950, not 5000: at 5000 the head class has no unused training image left for validation.
PAPER = {
    "model": "wrn34_10", "n_max": 4950, "test_per_class": None, "batch_size": 64, "augment": True, "lr": 0.1,
    "models": ("plain", "at_fc", "la_train", "trades", "robal_n", "robal_r"),
    "train_steps": 5, "train_alpha": 2 / 255, "train_start": "positive", "epochs": 80, "milestones": (60, 75),
    "ablation_tau_b": (), "fgsm": True, "mim": True, "aa_per_class": 100, "standard_aa": True,
    "kappa_grid": (-4.0, -3.0, -2.0, -1.0, 0.0, 1.0, 2.0, 3.0), "eval_batch_size": 1000,
}



def _evidence() -> dict[str, Any]:
    """The evidence tier: no CIFAR-10-LT candidate of the calibration sweep clears the quality bars on CPU, so the
    tier is the MNIST-LT proxy the sweep chose by rule (`calibration.lt_tier_fields`: the paper's head class and
    ratio 50 on MNIST, at MNIST's radius 0.3). It is tested on the whole test set, with the paper's attack step
    eps / 4 (2/255 at 8/255), FGSM and MIM beside PGD and CW as in the paper's Table 2, and AutoAttack (APGD-CE +
    APGD-T) on 100 points per class."""
    tier = lt_tier_fields()
    return {**tier, "test_per_class": None, "eval_alpha": tier["eps"] / 4, "fgsm": True, "mim": True,
            "aa_per_class": 100, "models": MODEL_KEYS,
            "milestones": (3, 4)}  # unused by the cosine schedule; the value the tier's results were made with


EVIDENCE = _evidence()


@dataclass(frozen=True)
class RobalConfig(ChapterConfig):
    LIST_FIELDS: ClassVar[tuple[str, ...]] = ("models", "milestones", "la_post_grid", "ablation_tau_b", "tau_p_grid",
                                              "kappa_grid")
    PROFILES: ClassVar[dict[str, dict[str, Any]]] = {"cpu": {}, "evidence": EVIDENCE, "paper": PAPER}
    SCHEDULE_FIELDS: ClassVar[dict[str, str]] = {"milestones": "epochs"}
    # The long tail at its smallest (n_max * imbalance >= 1): 10 head images, 1 in each of the last classes. Ten
    # served heads of a WRN-34-10 are evaluated: one attack step and one kappa keep that to minutes on a CPU.
    SMOKE: ClassVar[dict[str, Any]] = {"n_max": 10, "imbalance": 0.1, "eval_steps": 1, "kappa_grid": (0.0, 1.0),
                                       "tau_p_grid": (0.0, 1.0), "standard_aa": False}

    # the released code trains with seed 1 (its data seed is 0)
    seed: int = 1  # training and attack seed
    dataset: str = "cifar10"  # CIFAR-10, CIFAR-100 or MNIST (the evidence tier's proxy), made long-tailed
    model: str = "small_cnn"  # the network of every model
    # at this scale the models are limited by data and steps, not width: 8 costs half of 16
    width: int = 8  # channel width of the small CNN
    # Data: n_c = int(n_max * imbalance^(c / (C - 1))), drawn with the LDAM rule and `data_seed`.
    n_max: int = 1000  # training images of the head class (the others follow the imbalance ratio)
    imbalance: float = 0.02  # n_min / n_max of the long-tailed set (0.02: the paper's ratio 50)
    data_seed: int = 0  # which images form the long-tailed, validation and test sets
    # None: the long-tailed total / C
    sml_bal_per_class: int | None = None  # images per class of the balanced control Sml-Bal
    val_per_class: int = 50  # balanced validation images per class, from images the long-tailed set leaves unused
    test_per_class: int | None = 100  # test images per class (None: all)
    # the smoke tier leaves out TRADES (a baseline of the tables, no claim's): the other profiles train all
    models: tuple[str, ...] = tuple(k for k in MODEL_KEYS if k != "trades")  # which models to train (at_fc is required)
    # Training (adversarial training for every model).
    eps: float = 8 / 255  # L-inf radius of every attack, inputs in [0, 1]
    train_steps: int = 3  # PGD steps of the training attack
    train_alpha: float = 3 / 255  # step size of the training attack
    # the released code starts at x + eps * U[0, 1) ("positive": paper profile)
    train_start: str = "symmetric"  # training-attack start: symmetric or positive
    # None: as the code of that start (the positive start is not clipped)
    clip_start: bool | None = None  # clip the training attack's start to [0, 1] (None: as the start's code)
    # False: TRADES' inner max starts unclipped, as in its official code
    trades_clip_start: bool = False  # clip TRADES' inner-max start to [0, 1]
    epochs: int = 3  # training epochs
    # more SGD steps per epoch than the paper's 64 (lr scaled with it)
    batch_size: int = 32  # training batch size
    # a schedule this short learns faster without crop + flip
    augment: bool = False  # random crop and flip while training
    lr: float = 0.05  # initial SGD learning rate
    weight_decay: float = 2e-4  # SGD weight decay
    schedule: str = "code_compound"  # the released code's compounding decay, or the paper's x0.1 step
    # the paper's (60, 75) of 80 epochs, scaled to 3
    milestones: tuple[int, ...] = (2, 3)  # epochs where the lr decays (unset: they follow epochs)
    # Baselines.
    cos_scale: float = 16.0  # scale s of the vanilla cosine head (AT-Cos)
    la_tau: float = 1.0  # tau of logit-adjusted training (AT + LA-train)
    la_post_grid: tuple[float, ...] = (0.5, 1.0)  # post-hoc shifts tau_p of LA-post tried on validation
    trades_beta: float = 6.0  # TRADES' KL weight
    # Table 1's inference remedies on AT-FC's weights (C4): re-scaling W_i / n_i^tau and tau-normalisation
    # W_i / ||W_i||^tau (paper Table S5: tau = 2; released config: tau = 1, followed here).
    rescale_tau: float = 0.3  # tau of the re-scaling head W_i / n_i^tau (C4)
    norm_tau: float = 1.0  # tau of the tau-normalisation head W_i / ||W_i||^tau (C4)
    # RoBal (CIFAR-10-LT released configs).
    robal_s: float = 10.0  # RoBal's cosine scale s
    robal_m0: float = 0.1  # RoBal's constant margin m0
    robal_gamma: float = 1 / 32  # RoBal's gamma in W_i / (||W_i|| + gamma)
    kl_weight: float = 6.0  # weight alpha of RoBal's TRADES-style KL term
    inner_scale: float = 1.0  # logit scale of RoBal's inner attack and KL (1: the released code)
    robal_n_tau_b: float = 1.2  # RoBal-N's class-aware bias tau_b
    robal_n_tau_m: float = 0.0  # RoBal-N's class-aware margin tau_m
    robal_n_tau_p: float = 0.1  # RoBal-N's post-hoc shift tau_p at test time
    robal_r_tau_b: float = 1.5  # RoBal-R's class-aware bias tau_b
    robal_r_tau_m: float = 0.3  # RoBal-R's class-aware margin tau_m
    robal_r_eval_scale: float = 1.0  # RoBal-R's test-time logit scale (1: as the released code serves it)
    # Table 3 block 2 (C9) over tau_b - tau_m; RoBal-N adds 1.2, so three evenly spaced values: 0, 0.6, 1.2.
    ablation_tau_b: tuple[float, ...] = (0.0, 0.6)  # tau_b - tau_m values of the C9 ablation
    tau_p_grid: tuple[float, ...] = (0.0, 0.25, 0.5, 1.0, 1.5)  # shifts tau_p tried on validation (C9)
    # Evaluation.
    eval_steps: int = 20  # PGD, CW and MIM steps of the test attacks
    eval_alpha: float = 2 / 255  # step size of the test attacks
    logit_scale_attack: float = 10.0  # factor of the PGD on scaled logits (10: PGD on 10x logits)
    fgsm: bool = False  # add FGSM to the test attacks
    mim: bool = False  # add MIM to the test attacks
    # AutoAttack costs ~1000 gradient steps per robust point: the dearest column
    aa_per_class: int | None = 10  # AutoAttack points per class (None: every test point)
    aa_version: str = "subset"  # AutoAttack on those points: "subset" (APGD-CE + APGD-T), "standard" or "smoke"
    standard_aa: bool = False  # also run standard AutoAttack on AT-FC and RoBal
    # each exponent costs an AutoAttack run
    kappa_grid: tuple[float, ...] = (-3.0, 0.0, 3.0)  # exponents kappa of the logit-scale sweep logits / 10^kappa (C5)
    # C5's "unchanged": the paired difference lies within +-2 points; C4's "not AA": AA rises by at most 2 points
    equivalence_margin: float = 0.02  # the margin of 'unchanged' (C5) and of 'not AA' (C4), as a proportion

    def validate(self) -> None:
        check_choice("dataset", self.dataset, DATASET_CLASSES)
        if self.dataset == "mnist" and self.augment:
            fail("augment", self.augment, "false on mnist: a flip turns some digits into others")
        check_choice("model", self.model, MODELS)
        check_positive("n_max", self.n_max, integer=True)
        check_fields(self, ("sml_bal_per_class",), check_positive, optional=True, integer=True)
        check_number("imbalance", self.imbalance, low=0, high=1, low_open=True)
        self._check_data_sizes()
        for key in self.models:
            check_choice("models", key, MODEL_KEYS)
        if "at_fc" not in self.models or len(set(self.models)) != len(self.models):
            fail("models", list(self.models), "a list of distinct model keys that includes 'at_fc' (the baseline)")
        check_fields(self, ("cos_scale", "robal_s", "inner_scale", "robal_r_eval_scale"), check_positive)
        check_choice("train_start", self.train_start, START_KINDS)
        self.check_schedule("milestones")  # as TrainConfig will check: fail here, before any data is loaded
        check_fields(self, ("rescale_tau", "norm_tau", "robal_m0", "robal_gamma", "kl_weight", "robal_n_tau_p"),
                     check_non_negative)
        check_fields(self, ("la_tau", "robal_n_tau_b", "robal_n_tau_m", "robal_r_tau_b", "robal_r_tau_m"), check_number)
        for name in ("la_post_grid", "tau_p_grid"):
            self._check_grid(name, low=0)
        for tau_b in self.ablation_tau_b:
            check_number("ablation_tau_b", tau_b)
        self._check_grid("kappa_grid", low=-8, high=8)
        if 0 not in self.kappa_grid or len(self.kappa_grid) < 2:
            fail("kappa_grid", list(self.kappa_grid), "a list of exponents in [-8, 8] that includes 0 (no rescaling) "
                 "and at least one other")
        check_positive("logit_scale_attack", self.logit_scale_attack)
        if self.logit_scale_attack == 1:
            fail("logit_scale_attack", self.logit_scale_attack, "a factor > 0 other than 1 (1 is plain PGD)")
        check_fields(self, ("fgsm", "mim", "standard_aa", "trades_clip_start"), check_bool)
        if self.clip_start is not None:
            check_bool("clip_start", self.clip_start)

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
