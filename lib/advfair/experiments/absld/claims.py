"""The ABSLD chapter's claims (claim ids C1-C7, paraphrased from the abstract, captions and reviews) and their rules.

Every rule is a function of the results. Accuracy claims use paired statistics on the same test points (a
stratified bootstrap over points, `advfair.verdicts`); wherever AutoAttack enters, every quantity of the part is
taken on the AA points. "ABSLD" is the student of the config's `absld_mode` (default `separate`). Stated choices:

- C1 (against RSLAD and every other baseline student the run trained: the re-weighted RSLAD, ARD, the PGD-AT and
  TRADES students), C4 (against the frozen "manual" temperatures): the worst class must rise AND the NSD fall,
  under PGD and under AutoAttack (four parts per baseline); C1 adds "best on NSD": NSD(ABSLD) − the lowest NSD of
  those baselines < 0 under PGD, in one paired bootstrap over the same points (with two baselines or more; with
  RSLAD alone it is C1's NSD part against RSLAD). The ABSLD variants are not baselines;
- C2: "close" means the paired difference of the averages (PGD, AA) lies within ±`equivalence_margin`; a
  significant drop (interval below 0) is noted on its part (the reviewers' point);
- C3: class-dependent smoothing (DSD) − the same smoothing (SSD): the worst class up under PGD and AA, and the PGD
  average within ±`equivalence_margin`;
- C5: on cat, deer, dog and frog the mean gain over RSLAD is > 0 and exceeds the mean gain on the other classes
  (PGD and AA); those classes must be recognised by RSLAD (clean accuracy above chance);
- C7: code_product − separate: the worst class (PGD, AA) is higher.

C6 (the hard classes end with lower temperatures) and C7's first half (the product's effective temperatures range
wider) hold by construction of the update rule and of the aliasing: unit tests pin them
(`tests/unit/test_distillation.py`, facts 2 and 3), and the chapter shows them at work without a verdict.

A worst-class part (C1, C3, C4, C7) where BOTH models have a class at 0 % under that attack on those points cannot
be measured: their worst-class difference is 0 in every resample (a floor, not a measurement). Each such floor is a
gate of the claim, checked before its parts: at the floor, the claim is not testable.

"""
from __future__ import annotations

import numpy as np

from ...evaluation import Evaluation, compare_models, evaluation_statistic, per_class_accuracy
from ...evaluation.paired import mean, nsd, of_classes, worst
from ...verdicts import (ACCURACY_POINT, NOT_TESTABLE, NSD_STEP, REPRODUCED, Part, Verdict, class_gate, greater, less,
                         untestable, within)
from ..common import bootstrap_args, degeneracy_gates, evaluation, missing_verdict, not_trained
from ..roles import role
from .config import BASELINES, EVIDENCE, STUDENTS
from .methods import MODEL_LABELS, TEACHER_FREE, absld_key

# The scale box's quote: none (ABSLD's tables are not available to this book).
SCALE_QUOTE = None

PAPER = {
    "C1": "ABSLD raises the worst-class robust accuracy and lowers the NSD compared with RSLAD (and the other "
          "ARD-family and fairness baselines); it is best on NSD (abstract; Table 1 caption)",
    "C2": "the average robust accuracy stays close to the baselines' (the reviewers: it drops somewhat against the "
          "strongest average-robustness baseline)",
    "C3": "pilot (Fig. 2): under SAT, sharper soft labels for the hard classes raise the worst-class PGD robustness "
          "at about the same average as the same smoothness for all classes",
    "C4": "adaptive temperatures do better than hand-set fixed per-class temperatures (Table 6, \"Manual\" vs "
          "\"Adaptive\")",
    "C5": "the gains concentrate on the hard classes cat, deer, dog and frog (Fig. 3)",
    "C7": "(code analysis, not a paper claim) the released script as it runs (one product temperature) is more "
          "aggressive than its evident intent (two separate temperature vectors)",
}
ATTACK_POINTS = (("pgd", "all"), ("aa", "subset"))
FLOOR = "worst class at 0 % for both models: a floor, not a measurement"

# The smallest effect of interest of each kind of part, fixed before any result is read (stated conventions: the
# paper gives no intervals).
SMALLEST_EFFECT = {"worst": ACCURACY_POINT, "nsd": NSD_STEP, "gain": ACCURACY_POINT}


def main_key(results: dict) -> str:
    return absld_key(results["config"]["absld_mode"])


def label(key: str) -> str:
    return MODEL_LABELS.get(key, key)


def _attack(results: dict, which: str) -> str:
    return "aa" if which == "aa" else results["attack_roles"][which]


def _where(points: str) -> str:
    return " (AA points)" if points == "subset" else ""


def _gates(results: dict, *names: str) -> tuple[Part, ...]:
    """Clean and PGD accuracy of each model (all adversarially trained) against their floors."""
    return degeneracy_gates(results, names, label, role(results, "pgd"))


def why_absent(results: dict, key: str) -> str:
    """Why model `key` is not in these results: the switch that leaves it out, or the evidence tier's budget."""
    field = "c3" if key in TEACHER_FREE else "students" if key in STUDENTS else "baselines"
    return not_trained(results, field, EVIDENCE)


def _missing(results: dict, claim: str, *names: str) -> Verdict | None:
    return missing_verdict(results, claim, PAPER[claim], names, label, why_absent)


def at_floor(e: Evaluation, attack: str, points: str) -> bool:
    """Whether some class of `e` is at 0 % robust accuracy under `attack` on those points."""
    return bool(per_class_accuracy(e.correct(attack, points), e.labels(points), len(e.classes)).min() == 0)


def worst_part(results: dict, a: Evaluation, b: Evaluation, attack: str, points: str, name: str) -> Part:
    """worst(b) − worst(a) > 0."""
    return greater(name, compare_models(a, b, attack, worst, points=points, **bootstrap_args(results)),
                   effect=SMALLEST_EFFECT["worst"])


def floor_gate(a: Evaluation, b: Evaluation, attack: str, points: str, name: str) -> Part:
    """The gate of a worst-class part: not both models with a class at 0 % there (else the difference is stuck at
    0). Always present, so that the gates of every run line up."""
    if at_floor(a, attack, points) and at_floor(b, attack, points):
        # a floor of the measurement, not of the models: the verdict names it instead of calling them degenerate
        return Part(name, NOT_TESTABLE, rule=FLOOR, gate=True, note="both worst classes at 0 %",
                    presupposes="a measurable worst-class difference")
    return Part(name, REPRODUCED, rule="not at the floor", gate=True)


def floor_gates(results: dict, base: str, other: str, attacks=ATTACK_POINTS) -> tuple[Part, ...]:
    a, b = evaluation(results, base), evaluation(results, other)
    return tuple(floor_gate(a, b, _attack(results, w), p, f"worst class under {_attack(results, w).upper()}{_where(p)}, "
                                                          f"{label(other)} and {label(base)}") for w, p in attacks)


def _worst_and_nsd(results: dict, base: str, other: str) -> tuple[Part, ...]:
    """other − base: the worst class up and the NSD down, under PGD (all points) and AutoAttack (AA points)."""
    a, b, boot = evaluation(results, base), evaluation(results, other), bootstrap_args(results)
    parts = []
    for which, points in ATTACK_POINTS:
        attack, where = _attack(results, which), _where(points)
        name = f"{label(other)} − {label(base)}"
        parts.append(worst_part(results, a, b, attack, points, f"worst class under {attack.upper()}{where}, {name}"))
        parts.append(less(f"NSD under {attack.upper()}{where}, {name}",
                          compare_models(a, b, attack, nsd, points=points, **boot), effect=SMALLEST_EFFECT["nsd"],
                          scale=1, digits=3))
    return tuple(parts)


def baselines(results: dict) -> list[str]:
    """The baseline students of this run that C1 compares with: RSLAD, then the trained optional baselines."""
    return ["rslad", *(b for b in BASELINES if b in results["evaluations"])]


def lowest_nsd(results: dict, main: str, others: list[str]) -> Part:
    """NSD(main) − min over `others` of their NSD under PGD (all points), one paired bootstrap over the points."""
    pgd = _attack(results, "pgd")
    e = evaluation(results, main)
    outcomes = [e.correct(pgd)] + [evaluation(results, k).correct(pgd) for k in others]

    def statistic(ours, *theirs):  # fmin: a baseline whose NSD is undefined (mean 0) is not the lowest
        return nsd(ours) - np.fmin.reduce(np.stack([nsd(t) for t in theirs]), axis=0)

    names = ", ".join(label(k) for k in others)
    return less(f"NSD under {pgd.upper()}, {label(main)} − the lowest of ({names})",
                evaluation_statistic(e, outcomes, statistic, **bootstrap_args(results)), effect=SMALLEST_EFFECT["nsd"], scale=1,
                digits=3)


def c1(results: dict) -> Verdict:
    main = main_key(results)
    missing = _missing(results, "C1", "rslad", main)
    if missing:
        return missing
    others = baselines(results)
    parts = [p for base in others for p in _worst_and_nsd(results, base, main)]
    if len(others) > 1:
        parts.append(lowest_nsd(results, main, others))
    floors = tuple(g for base in others for g in floor_gates(results, base, main))
    alone = "" if len(others) > 1 else "against RSLAD alone: this run trained no other baseline student"
    return Verdict("C1", PAPER["C1"], tuple(parts), _gates(results, *others, main) + floors, qualifier=alone)


def _averages(results: dict, base: str, other: str, attacks=ATTACK_POINTS) -> tuple[Part, ...]:
    """other − base of the average under each attack, within ±equivalence_margin (a significant drop inside the
    margin is noted on the part)."""
    a, b, boot = evaluation(results, base), evaluation(results, other), bootstrap_args(results)
    margin = results["config"]["equivalence_margin"]
    return tuple(within(f"average under {_attack(results, w).upper()}{_where(p)}, {label(other)} − {label(base)}",
                        compare_models(a, b, _attack(results, w), mean, points=p, **boot), margin) for w, p in attacks)


def c2(results: dict) -> Verdict:
    main = main_key(results)
    missing = _missing(results, "C2", "rslad", main)
    if missing:
        return missing
    return Verdict("C2", PAPER["C2"], _averages(results, "rslad", main), _gates(results, "rslad", main))


def c3(results: dict) -> Verdict:
    missing = _missing(results, "C3", "ls_uniform", "ls_class")
    if missing:
        return missing
    a, b = evaluation(results, "ls_uniform"), evaluation(results, "ls_class")
    parts = [worst_part(results, a, b, _attack(results, w), p, f"worst class under {_attack(results, w).upper()}"
                        f"{_where(p)}, DSD − SSD") for w, p in ATTACK_POINTS]
    averages = _averages(results, "ls_uniform", "ls_class", attacks=(("pgd", "all"),))
    return Verdict("C3", PAPER["C3"], (*parts, *averages), _gates(results, "ls_uniform", "ls_class") +
                   floor_gates(results, "ls_uniform", "ls_class"))


def c4(results: dict) -> Verdict:
    main = main_key(results)
    return _missing(results, "C4", "absld_manual", main) or Verdict(
        "C4", PAPER["C4"], _worst_and_nsd(results, "absld_manual", main),
        _gates(results, "absld_manual", main) + floor_gates(results, "absld_manual", main))


def c5(results: dict) -> Verdict:
    main = main_key(results)
    missing = _missing(results, "C5", "rslad", main)
    if missing:
        return missing
    hard = results["selection"]["paper_hard"]
    if hard is None:
        return Verdict("C5", PAPER["C5"], (untestable("cat, deer, dog, frog", "this dataset has no such classes"),))
    classes = results["classes"]
    easy = [c for c in range(len(classes)) if c not in hard]
    on_hard, on_easy = of_classes(hard), of_classes(easy)
    a, b, boot = evaluation(results, "rslad"), evaluation(results, main), bootstrap_args(results)
    names = ", ".join(classes[c] for c in hard)
    parts = []
    for which, points in ATTACK_POINTS:
        attack, where = _attack(results, which), _where(points)
        outcomes = [a.correct(attack, points), b.correct(attack, points)]
        parts.append(greater(f"mean gain on {names} under {attack.upper()}{where}, {label(main)} − RSLAD",
                             compare_models(a, b, attack, on_hard, points=points, **boot), effect=SMALLEST_EFFECT["gain"]))
        parts.append(greater(f"gain on {names} − gain on the other classes, {attack.upper()}{where}",
                             evaluation_statistic(a, outcomes, lambda x, y: (on_hard(y) - on_hard(x)) -
                                                  (on_easy(y) - on_easy(x)), points=points, **boot),
                             effect=SMALLEST_EFFECT["gain"]))
    gates = _gates(results, "rslad", main) + tuple(class_gate("RSLAD", classes, a.correct("clean"), a.labels(), hard))
    return Verdict("C5", PAPER["C5"], tuple(parts), gates)


def trajectories(results: dict, key: str) -> dict[str, np.ndarray] | None:
    """(epochs, C) arrays of a student's τ^adv, τ^nat and risks R^adv, R^nat per epoch, from its training history
    (None for a model that kept no temperatures)."""
    history = results["models"].get(key, {}).get("history", [])
    if not history or "tau_adv" not in history[0]:
        return None
    return {name: np.asarray([h[name] for h in history], dtype=float) for name in ("tau_adv", "tau_nat", "risk_adv",
                                                                                   "risk_nat")}


def effective_temperatures(results: dict, key: str) -> np.ndarray | None:
    """The final temperatures the adversarial soft labels were divided by: τ^adv (separate), τ^adv·τ^nat
    (code_product)."""
    t = trajectories(results, key)
    if t is None:
        return None
    final = t["tau_adv"][-1]
    return final * t["tau_nat"][-1] if key == absld_key("code_product") else final


def c7(results: dict) -> Verdict:
    sep, prod = absld_key("separate"), absld_key("code_product")
    missing = _missing(results, "C7", sep, prod)
    if missing:
        return missing
    a, b = evaluation(results, sep), evaluation(results, prod)
    parts = [worst_part(results, a, b, _attack(results, w), p, f"worst class under {_attack(results, w).upper()}"
                        f"{_where(p)}, code_product − separate") for w, p in ATTACK_POINTS]
    return Verdict("C7", PAPER["C7"], tuple(parts), _gates(results, sep, prod) + floor_gates(results, sep, prod))


RULES = (c1, c2, c3, c4, c5, c7)


def verdicts(results: dict) -> list[Verdict]:
    return [rule(results) for rule in RULES]


def key_numbers(results: dict) -> dict[str, float]:
    """Headline accuracies of every evaluation (clean, PGD mean / worst / NSD, AA mean / worst on the AA points),
    the final temperatures and every verdict's estimates: what the stability file tracks."""
    pgd, out = role(results, "pgd"), {}
    for name, record in results["evaluations"].items():
        rep, sub = record["reports"]["all"]["attacks"], record["reports"]["subset"]["attacks"]
        out[f"{name}.clean"] = rep["clean"]["overall"]
        out[f"{name}.{pgd}"] = rep[pgd]["overall"]
        out[f"{name}.{pgd}.worst"] = rep[pgd]["worst"]
        out[f"{name}.{pgd}.nsd"] = rep[pgd]["nsd"]
        out[f"{name}.aa"] = sub["aa"]["overall"]
        out[f"{name}.aa.worst"] = sub["aa"]["worst"]
    for v in verdicts(results):
        for i, part in enumerate(v.parts):
            if part.estimate is not None:
                out[f"{v.claim}.{i}"] = part.estimate.value
    return out
