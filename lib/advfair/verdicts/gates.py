"""Degeneracy gates: a model or class too weak to be diagnosed, each an exact interval against its floor."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from ..evaluation.paired import proportion_estimate
from .parts import Part, at_least
from .rule import NOT_REPRODUCED, REPRODUCED

# Degeneracy rules (stated in every chapter): a model whose clean accuracy is below MODEL_FLOOR x chance has
# not learnt the task well enough to be diagnosed; an adversarially trained model whose robust accuracy is
# below ROBUST_FLOOR x chance has no robustness to compare (a smoke-size run, a failed training); a class below
# CLASS_FLOOR x chance clean accuracy is not recognised at all, so its robust accuracy says nothing about
# robustness.
MODEL_FLOOR = 3.0
ROBUST_FLOOR = 1.0
CLASS_FLOOR = 1.0


def model_floor(num_classes: int) -> float:
    """MODEL_FLOOR x chance, with few classes at most halfway from chance to perfect."""
    return min(MODEL_FLOOR / num_classes, (1 + 1 / num_classes) / 2)


def model_gate(label: str, correct: np.ndarray, num_classes: int) -> Part:
    """The model's clean accuracy (per-point outcomes, exact interval) against MODEL_FLOOR x chance."""
    correct = np.asarray(correct, dtype=bool)
    floor = model_floor(num_classes)
    part = at_least(f"{label} clean", proportion_estimate(int(correct.sum()), correct.size), floor)
    return replace(part, rule=f"model floor {100 * floor:.0f}% ({floor * num_classes:g}× chance)",
                   note=gate_note(part.outcome), gate=True)


def robust_gate(label: str, correct: np.ndarray, num_classes: int, attack: str) -> Part:
    """An adversarially trained model's robust accuracy under `attack` (per-point outcomes, exact interval)
    against ROBUST_FLOOR x chance."""
    correct = np.asarray(correct, dtype=bool)
    floor = ROBUST_FLOOR / num_classes
    part = at_least(f"{label} {attack}", proportion_estimate(int(correct.sum()), correct.size), floor)
    return replace(part, rule=f"robust floor {100 * floor:.0f}% (chance)", note=gate_note(part.outcome), gate=True)


def class_gate(label: str, class_names: Sequence[str], correct: np.ndarray, y: np.ndarray,
               classes: Sequence[int]) -> list[Part]:
    """For each involved class: its clean accuracy (exact interval over its points) against CLASS_FLOOR x
    chance."""
    correct, y = np.asarray(correct, dtype=bool), np.asarray(y)
    floor = CLASS_FLOOR / len(class_names)
    out = []
    for c in classes:
        part = at_least(f"{label} {class_names[c]} clean", proportion_estimate(int(correct[y == c].sum()),
                                                                                int((y == c).sum())), floor)
        out.append(replace(part, rule=f"class floor {100 * floor:.0f}% (chance)", note=gate_note(part.outcome),
                           gate=True))
    return out


def gate_note(outcome: str, presupposes: str = "") -> str:
    """How a failed gate qualifies the verdict: a floor's reads degenerate / borderline; a gate on what the claim
    presupposes reads "no <it>" / "<it> uncertain" (the model may be sound: the claim has nothing to test)."""
    if presupposes:
        return {REPRODUCED: "", NOT_REPRODUCED: f"no {presupposes}"}.get(outcome, f"{presupposes} uncertain")
    return {REPRODUCED: "", NOT_REPRODUCED: "degenerate"}.get(outcome, "borderline")
