"""The method catalogue: one entry per method the book trains, whatever chapter tests it.

An entry holds what the paper proposes, apart from any chapter's config:
- `build(**params) -> Objective`: the training objective (the attack budget eps, alpha, steps among the params);
- `model`: the fields it adds to the chapter's model spec (a cosine head, a 2C head, a bias-free head);
- `served`: the inference builder of its served model (`advfair.inference`), None for argmax of the logits;
- `aware`: the views an attack that knows the defence uses, besides the served model itself;
- `requires`: the catalogue keys it depends on (a teacher);
- `reference`: the paper; `reconstruction`: for a reconstructed method, the switch that selects the variant.

Chapters choose entries and their parameters (`objective(key, ...)`); a synthesis runs any of them under one
protocol. Building an entry's objective is the same call a chapter made before, so the cache keys are unchanged.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .. import inference
from ..objectives import Objective, clean_ce, make_objective
from ..objectives.aalp import alp_objective
from ..objectives.distill_objectives import ABSLD, Distillation, ReweightedRSLAD
from ..objectives.label_smoothing import label_smoothing_pgd_at
from ..validation import check_choice, check_number, fail


@dataclass(frozen=True)
class Entry:
    key: str
    label: str
    reference: str
    build: Callable[..., Objective]
    model: Mapping[str, Any] = field(default_factory=dict)
    served: Callable[..., tuple] | None = None
    aware: tuple[str, ...] = ()
    requires: tuple[str, ...] = ()
    reconstruction: str | None = None


def _named(name: str, **fixed: Any) -> Callable[..., Objective]:
    return lambda **params: make_objective(name, **params, **fixed)


def ducat_key(base: str) -> str:
    """The entry of DUCAT plugged into `base`: "ducat" on PGD-AT (the paper's main method), else "<base>_ducat"."""
    return "ducat" if base == "pgd_at" else f"{base}_ducat"


def _plain(**params: Any) -> Objective:
    if params:
        fail("params", sorted(params), "none: clean training takes no parameters")
    return clean_ce()


def _dafa(*, epochs: int, dafa_warmup: int, **params: Any) -> Objective:
    # The warm-up is an epoch of the run: DAFA never starts when it is not before the last epoch.
    check_number("dafa_warmup", dafa_warmup, low=1, high=epochs - 1, integer=True)
    return make_objective("dafa", dafa_warmup=dafa_warmup, **params)


MADRY, TRADES, MART = "Madry et al., ICLR 2018", "Zhang et al., ICML 2019", "Wang et al., ICLR 2020"
TIAN, WU, DUCAT = "Tian et al., KDD 2021", "Wu et al., CVPR 2021", "Wang et al., arXiv 2410.12671 (2024)"
ABSLD_REF, ALP, AALP = "Zhao et al., NeurIPS 2024", "Kannan et al., arXiv 1803.06373 (2018)", "Wu et al., TOMM 2024"
COSINE = {"head": "cosine", "head_gamma": 0.0}
ROBAL_HEAD = {"head": "cosine", "head_scale": 1.0}  # RoBal's loss applies its scale s itself

ENTRIES: tuple[Entry, ...] = (
    Entry("plain", "clean CE (no adversarial training)", "the standard baseline", _plain),
    Entry("pgd_at", "PGD-AT", MADRY, _named("pgd_at")),
    Entry("trades", "TRADES", TRADES, _named("trades")),
    Entry("mart", "MART", MART, _named("mart")),
    Entry("class_weighted", "class-weighted PGD-AT", TIAN, _named("class_weighted_pgd_at"),
          reconstruction="w_worst (the weight of the validation-weakest class)"),
    Entry("pgd_at_bias", "PGD-AT + logit bias", TIAN, _named("pgd_at"), served=inference.class_bias),
    Entry("at_fc", "AT-FC", WU, _named("pgd_at")),
    Entry("at_cos", "AT-Cos", WU, _named("pgd_at"), model=COSINE),
    Entry("la_train", "AT + LA-train", f"Menon et al., ICLR 2021, as in {WU}", _named("logit_adjusted"),
          model={"head_bias": False}),
    Entry("la_post", "AT-FC + LA-post", f"Menon et al., ICLR 2021, as in {WU}", _named("pgd_at"),
          served=inference.posthoc),
    Entry("rescale", "AT-FC + re-scaling", WU, _named("pgd_at"), served=inference.rescaling),
    Entry("tau_norm", "AT-FC + τ-normalisation", WU, _named("pgd_at"), served=inference.weight_normalisation),
    Entry("robal_n", "RoBal-N", WU, _named("robal"), model=ROBAL_HEAD, served=inference.posthoc),
    Entry("robal_r", "RoBal-R", WU, _named("robal"), model=ROBAL_HEAD, served=inference.posthoc),
    *(Entry(ducat_key(base), f"{label} + DUCAT", DUCAT,
            _named("ducat", base=base),
            model={"dummy_classes": True}, served=inference.recovery, aware=("merged", "dawa"))
      for base, label in (("pgd_at", "PGD-AT"), ("trades", "TRADES"), ("mart", "MART"))),
    Entry("ard", "ARD", "Goldblum et al., AAAI 2020",
          lambda **p: Distillation(**p, method="ard"), requires=("teacher",)),
    Entry("rslad", "RSLAD", "Zi et al., ICCV 2021",
          lambda **p: Distillation(**p, method="rslad"), requires=("teacher",)),
    *(Entry(f"absld_{mode}", f"ABSLD ({mode.replace('_', ' ')})", ABSLD_REF,
            lambda _mode=mode, **p: ABSLD(**p, mode=_mode), requires=("teacher",))
      for mode in ("separate", "code_product")),
    Entry("absld_manual", "ABSLD, frozen temperatures", ABSLD_REF, lambda **p: ABSLD(**p),
          requires=("teacher",), reconstruction="frozen (the fixed temperature vectors)"),
    Entry("fair_rslad", "re-weighted RSLAD", f"Fair-ARD-style weights, as discussed in {ABSLD_REF}",
          ReweightedRSLAD, requires=("teacher",),
          reconstruction="power, w_min, w_max (the weight rule)"),
    Entry("label_smoothing", "PGD-AT + label smoothing", ABSLD_REF,
          label_smoothing_pgd_at),
    Entry("alp", "ALP", ALP, alp_objective),
    Entry("mpgd", "M-PGD (λ = 0)", AALP, lambda **p: alp_objective(**p, lam=0.0)),
    Entry("aalp", "AALP (reconstruction)", AALP, alp_objective,
          reconstruction="gd, weight_rule (Guided Dropout and the adaptive weights)"),
    Entry("trades_dafa", "TRADES + DAFA", "Lee et al., ICLR 2024", _dafa,
          reconstruction="dafa_weight_rule (head: Algorithm 2 and the code since 2024-09; prefix: the first upload)"),
)
CATALOGUE: dict[str, Entry] = {e.key: e for e in ENTRIES}


def entry(key: str) -> Entry:
    return CATALOGUE[check_choice("method", key, CATALOGUE)]


def objective(key: str, **params: Any) -> Objective:
    """The training objective of catalogue entry `key` with these parameters (the attack budget among them)."""
    return entry(key).build(**params)
