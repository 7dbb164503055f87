"""Hand-built results for the verdict rules: evaluation records made from per-point outcomes.

`outcomes(y, accuracy_per_class)` gives a boolean vector with exactly that many correct points per class;
`record(y, correct, subset)` turns {attack: correct} into the JSON envelope `Run.evaluate` writes (a wrong
prediction is the next class), so a rule sees exactly what a pipeline would give it.
"""
from __future__ import annotations

import numpy as np

from advfair.evaluation import Evaluation

CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


def labels(per_class: int, num_classes: int = 10) -> np.ndarray:
    return np.repeat(np.arange(num_classes), per_class)


def outcomes(y: np.ndarray, accuracy: list[float] | np.ndarray, *, offset: int = 0) -> np.ndarray:
    """Correct on round(accuracy[c] * n_c) points of each class c (the first ones after `offset`, cyclically)."""
    out = np.zeros(len(y), dtype=bool)
    for c, acc in enumerate(accuracy):
        members = np.flatnonzero(y == c)
        k = int(round(acc * len(members)))
        out[members[(np.arange(k) + offset) % len(members)]] = True
    return out


def robust_within(clean: np.ndarray, robust: np.ndarray) -> np.ndarray:
    return clean & robust


def record(y: np.ndarray, correct: dict[str, np.ndarray], subset: np.ndarray | None = None, *,
           on_subset: tuple[str, ...] = ("aa",), n_boot: int = 200, seed: int = 0, classes=CLASSES) -> dict:
    """The evaluation envelope of per-point outcomes; attacks in `on_subset` are given on the subset points."""
    num_classes = len(classes)
    subset = np.arange(len(y)) if subset is None else np.asarray(subset)
    preds = {}
    for name, c in correct.items():
        ys = y[subset] if name in on_subset else y
        preds[name] = np.where(c, ys, (ys + 1) % num_classes)
    e = Evaluation(tuple(classes), y, subset, preds, frozenset(n for n in correct if n in on_subset),
                   {n: {"kind": "autoattack" if n in on_subset else "pgd"} for n in correct})
    return {"model": None, "inference": [], "inference_label": "z", **e.to_json(n_boot=n_boot, seed=seed)}
