"""Hand-built results for the DUCAT verdict rules: evaluation records with the chapter's attacks, the raw 2C
side head of a dummy-class model ("label trap") and other models' side heads (transfer).

Per-class accuracies become outcomes with `results_builder.outcomes` (the first points of each class after an
offset), so with one offset the robust points of a model lie inside its clean-correct points, as in a pipeline.
A wrong prediction is the next class; a trapped point's raw 2C prediction is its own dummy y + C.
"""
from __future__ import annotations

import numpy as np

from advfair.evaluation import Evaluation
from advfair.experiments.ducat import methods
from advfair.experiments.ducat.config import DucatConfig
from advfair.experiments.roles import attack_roles

from results_builder import CLASSES, labels, outcomes

UNAWARE, MERGED, DAWA, AA = "pgd10_raw2C", "pgd10_merged", "pgd10_dawa", "aa_pairmax"
NAMES = attack_roles(pgd=UNAWARE, aa=AA, aware=[MERGED, DAWA])
PER_CLASS, AA_PER_CLASS = 100, 50
C = len(CLASSES)
Y = labels(PER_CLASS)
# Every other point of each class: the subset's accuracies are those of all points.
SUBSET = np.sort(np.concatenate([np.flatnonzero(Y == c)[::PER_CLASS // AA_PER_CLASS] for c in range(C)]))


def _acc(value) -> np.ndarray:
    return np.full(C, value, dtype=float) if np.isscalar(value) else np.asarray(value, dtype=float)


def _preds(correct: np.ndarray, y: np.ndarray) -> np.ndarray:
    return np.where(correct, y, (y + 1) % C)


def model(*, clean=0.8, unaware=0.5, aware=None, aa=None, trap=None, offset: int = 0, transfer=None,
          unaware_only: bool = False, n_boot: int = 200) -> dict:
    """An evaluation record: clean and the unaware PGD (per-class accuracies); `aware` for the merged and
    DAWA-style PGD (default: = unaware); `aa` on the subset (default: = aware); `trap` the per-class share of
    all points whose raw prediction (under every attack) is y + C, taken among the robust ones (None: a C-way
    model, no side head); `transfer` {target: (clean, adversarial) accuracy of the target on this model's points,
    optionally with an offset for the adversarial points: the same accuracy on other points}."""
    aware = unaware if aware is None else aware
    aa = aware if aa is None else aa
    acc = {"clean": clean, UNAWARE: unaware} if unaware_only else {"clean": clean, UNAWARE: unaware, MERGED: aware,
                                                                   DAWA: aware}
    correct = {k: outcomes(Y, _acc(v), offset=offset) for k, v in acc.items()}
    correct["clean"] |= np.logical_or.reduce(list(correct.values()))  # robust points are clean-correct
    if not unaware_only:
        correct[AA] = outcomes(Y[SUBSET], _acc(aa), offset=offset // 2)
    on_subset = frozenset({AA} & set(correct))
    preds = {k: _preds(v, Y[SUBSET] if k in on_subset else Y) for k, v in correct.items()}
    side = {}
    if trap is not None:
        trapped = outcomes(Y, _acc(trap), offset=offset)
        side["raw2C"] = {}
        for k, p in preds.items():
            t = trapped[SUBSET] if k in on_subset else trapped
            side["raw2C"][k] = np.where(t & correct[k], (Y[SUBSET] if k in on_subset else Y) + C, p)
    for target, (t_clean, t_adv, *moved) in (transfer or {}).items():
        c, a = outcomes(Y, _acc(t_clean)), outcomes(Y, _acc(t_adv), offset=moved[0] if moved else 0)
        side[target] = {"clean": _preds(c, Y), UNAWARE: _preds(a, Y)}
    e = Evaluation(CLASSES, Y, SUBSET, preds, on_subset, {k: {} for k in preds}, side=side)
    return {"model": None, "inference": [], "inference_label": "z", **e.to_json(n_boot=n_boot, seed=0)}


def results(cost_model: dict | None = None, **evaluations) -> dict:
    """The chapter's results: the evaluations (None drops one) and the cost model (default: the cpu profile's)."""
    base = {"pgd_at": model(unaware=0.4, aware=0.35, transfer={"ducat": (0.8, 0.5), "trades": (0.8, 0.5)}),
            "ducat": model(unaware=0.6, aware=0.25, trap=0.5, transfer={"pgd_at": (0.8, 0.3), "trades": (0.8, 0.3)}),
            "trades": model(unaware=0.38, unaware_only=True, transfer={"pgd_at": (0.8, 0.5), "ducat": (0.8, 0.5)}),
            "mart": model(unaware=0.42, unaware_only=True)}
    base.update(evaluations)
    return {"config": {"n_boot": 200, "seed": 0, "profile": "cpu"}, "classes": list(CLASSES), "attack_roles": NAMES,
            "evaluations": {k: v for k, v in base.items() if v is not None},
            "cost_model": cost_model or methods.cost_model(DucatConfig())}
