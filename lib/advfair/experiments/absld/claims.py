"""The ABSLD chapter's claims (spec ids C1-C7, paraphrased from the abstract, captions and reviews) and their rules.

Every rule is a function of the results. Accuracy claims use paired statistics on the same test points (a
stratified bootstrap over points, `advfair.verdicts`); wherever AutoAttack enters, every quantity of the part is
taken on the AA points. "ABSLD" is the student of the config's `absld_mode` (default `separate`). Stated choices:

- C1 (against RSLAD and every other baseline student the run trained: the re-weighted RSLAD, ARD, the PGD-AT and
  TRADES students), C4 (against the frozen "manual" temperatures): the worst class must rise AND the NSD fall,
  under PGD and under AutoAttack (four parts per baseline); C1 adds "best on NSD": NSD(ABSLD) − the lowest NSD of
  those baselines < 0 under PGD, in one paired bootstrap over the same points (with two baselines or more; with
  RSLAD alone it is C1's NSD part against RSLAD). The ABSLD variants are not baselines;
- C2: "close" means the paired difference of the averages (PGD, AA) lies within ±`equivalence_margin`; a
  significant drop (interval below 0) is named in the verdict's qualifier (the reviewers' point);
- C3: class-dependent smoothing (DSD) − the same smoothing (SSD): the worst class up under PGD and AA, and the PGD
  average within ±`equivalence_margin`;
- C5: on cat, deer, dog and frog the mean gain over RSLAD is > 0 and exceeds the mean gain on the other classes
  (PGD and AA); those classes must be recognised by RSLAD (clean accuracy above chance);
- C6: the final τ^adv and τ^nat of ABSLD, mean over the validation-hard classes − mean over the others, < 0; gated
  on ABSLD's clean accuracy and on the clean accuracy of each validation-hard class (ABSLD's, on test);
- C7: code_product − separate: the range max/min of the final effective temperatures (τ^adv·τ^nat against τ^adv)
  is wider, and the worst class (PGD, AA) is higher.

A worst-class part (C1, C3, C4, C7) where BOTH models have a class at 0 % under that attack on those points is not
testable: their worst-class difference is 0 in every resample (a floor, not a measurement), so it could only ever
be "inconclusive".

The temperature parts (C6, C7's first) are deterministic functions of the training history (no points to
resample): such a part carries its value as a zero-width interval, so it is reproduced or not by its sign, and
seed stability ("held in k of n seeds") is its uncertainty.
"""
from __future__ import annotations

import numpy as np

from ...evaluation import Estimate, Evaluation, compare_models, evaluation_statistic, per_class_accuracy
from ...evaluation.paired import mean, nsd, of_classes, worst
from ...verdicts import Part, Verdict, class_gate, greater, less, model_gate, untestable, within
from ..common import evaluation
from .config import BASELINES
from .methods import MODEL_LABELS, absld_key

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
    "C6": "mechanism: the hard classes get lower temperatures (sharper soft labels), the easy classes higher ones",
    "C7": "(code analysis, not a paper claim) the released script as it runs (one product temperature) is more "
          "aggressive than its evident intent (two separate temperature vectors)",
}
ATTACK_POINTS = (("pgd", "all"), ("aa", "subset"))
FLOOR = "worst class at 0 % for both models: a floor, not a measurement"


def _boot(results: dict) -> dict:
    return {"n_boot": results["config"]["n_boot"], "seed": results["config"]["seed"]}


def main_key(results: dict) -> str:
    return absld_key(results["config"]["absld_mode"])


def _label(key: str) -> str:
    return MODEL_LABELS.get(key, key)


def _attack(results: dict, which: str) -> str:
    return "aa" if which == "aa" else results["attack_names"][which]


def _where(points: str) -> str:
    return " (AA points)" if points == "subset" else ""


def _gates(results: dict, *names: str) -> tuple[Part, ...]:
    gates = []
    for name in names:
        e = evaluation(results, name)
        gates += model_gate(_label(name), float((e.predicted("clean") == e.labels()).mean()), len(e.classes))
    return tuple(gates)


def _missing(results: dict, claim: str, *names: str) -> Verdict | None:
    absent = [n for n in names if n not in results["evaluations"]]
    if not absent:
        return None
    return Verdict(claim, PAPER[claim], tuple(untestable(_label(n), "not trained in this run") for n in absent))


def fixed(value: float, n: int) -> Estimate:
    """A deterministic quantity as an Estimate: its interval is the value itself."""
    return Estimate(float(value), (float(value), float(value)), n)


def at_floor(e: Evaluation, attack: str, points: str) -> bool:
    """Whether some class of `e` is at 0 % robust accuracy under `attack` on those points."""
    return bool(per_class_accuracy(e.correct(attack, points), e.labels(points), len(e.classes)).min() == 0)


def worst_part(results: dict, a: Evaluation, b: Evaluation, attack: str, points: str, label: str) -> Part:
    """worst(b) − worst(a) > 0; not testable when both have a class at 0 % there (the difference is stuck at 0)."""
    if at_floor(a, attack, points) and at_floor(b, attack, points):
        return untestable(label, FLOOR)
    return greater(label, compare_models(a, b, attack, worst, points=points, **_boot(results)))


def _worst_and_nsd(results: dict, base: str, other: str) -> tuple[Part, ...]:
    """other − base: the worst class up and the NSD down, under PGD (all points) and AutoAttack (AA points)."""
    a, b, boot = evaluation(results, base), evaluation(results, other), _boot(results)
    parts = []
    for which, points in ATTACK_POINTS:
        attack, where = _attack(results, which), _where(points)
        name = f"{_label(other)} − {_label(base)}"
        parts.append(worst_part(results, a, b, attack, points, f"worst class under {attack.upper()}{where}, {name}"))
        parts.append(less(f"NSD under {attack.upper()}{where}, {name}",
                          compare_models(a, b, attack, nsd, points=points, **boot), scale=1, digits=3))
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

    names = ", ".join(_label(k) for k in others)
    return less(f"NSD under {pgd.upper()}, {_label(main)} − the lowest of ({names})",
                evaluation_statistic(e, outcomes, statistic, **_boot(results)), scale=1, digits=3)


def c1(results: dict) -> Verdict:
    main = main_key(results)
    missing = _missing(results, "C1", "rslad", main)
    if missing:
        return missing
    others = baselines(results)
    parts = [p for base in others for p in _worst_and_nsd(results, base, main)]
    if len(others) > 1:
        parts.append(lowest_nsd(results, main, others))
    return Verdict("C1", PAPER["C1"], tuple(parts), _gates(results, *others, main))


def _averages(results: dict, base: str, other: str, attacks=ATTACK_POINTS) -> tuple[tuple[Part, ...], str]:
    a, b, boot = evaluation(results, base), evaluation(results, other), _boot(results)
    margin = results["config"]["equivalence_margin"]
    parts, drops = [], []
    for which, points in attacks:
        attack = _attack(results, which)
        est = compare_models(a, b, attack, mean, points=points, **boot)
        parts.append(within(f"average under {attack.upper()}{_where(points)}, {_label(other)} − {_label(base)}", est,
                            margin))
        if est.ci[1] < 0:
            drops.append(f"{attack.upper()}{_where(points)}")
    qualifier = f"the average drops significantly under {' and '.join(drops)} (the reviewers' point)" if drops else ""
    return tuple(parts), qualifier


def c2(results: dict) -> Verdict:
    main = main_key(results)
    missing = _missing(results, "C2", "rslad", main)
    if missing:
        return missing
    parts, qualifier = _averages(results, "rslad", main)
    return Verdict("C2", PAPER["C2"], parts, _gates(results, "rslad", main), qualifier)


def c3(results: dict) -> Verdict:
    missing = _missing(results, "C3", "ls_uniform", "ls_class")
    if missing:
        return missing
    a, b = evaluation(results, "ls_uniform"), evaluation(results, "ls_class")
    parts = [worst_part(results, a, b, _attack(results, w), p, f"worst class under {_attack(results, w).upper()}"
                        f"{_where(p)}, DSD − SSD") for w, p in ATTACK_POINTS]
    averages, qualifier = _averages(results, "ls_uniform", "ls_class", attacks=(("pgd", "all"),))
    return Verdict("C3", PAPER["C3"], (*parts, *averages), _gates(results, "ls_uniform", "ls_class"), qualifier)


def c4(results: dict) -> Verdict:
    main = main_key(results)
    return _missing(results, "C4", "absld_manual", main) or Verdict(
        "C4", PAPER["C4"], _worst_and_nsd(results, "absld_manual", main), _gates(results, "absld_manual", main))


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
    a, b, boot = evaluation(results, "rslad"), evaluation(results, main), _boot(results)
    names = ", ".join(classes[c] for c in hard)
    parts = []
    for which, points in ATTACK_POINTS:
        attack, where = _attack(results, which), _where(points)
        outcomes = [a.correct(attack, points), b.correct(attack, points)]
        parts.append(greater(f"mean gain on {names} under {attack.upper()}{where}, {_label(main)} − RSLAD",
                             compare_models(a, b, attack, on_hard, points=points, **boot)))
        parts.append(greater(f"gain on {names} − gain on the other classes, {attack.upper()}{where}",
                             evaluation_statistic(a, outcomes, lambda x, y: (on_hard(y) - on_hard(x)) -
                                                  (on_easy(y) - on_easy(x)), points=points, **boot)))
    per_class_clean = results["evaluations"]["rslad"]["reports"]["all"]["attacks"]["clean"]["per_class"]
    gates = _gates(results, "rslad", main) + tuple(class_gate("RSLAD", classes, per_class_clean, hard, len(classes)))
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


def c6(results: dict) -> Verdict:
    main = main_key(results)
    missing = _missing(results, "C6", main)
    if missing:
        return missing
    t = trajectories(results, main)
    if t is None:
        return Verdict("C6", PAPER["C6"], (untestable(_label(main), "no temperature history in this run"),))
    if results["config"]["eta_tau"] == 0:
        return Verdict("C6", PAPER["C6"], (untestable("temperatures", "η_τ = 0: they never move"),))
    hard = results["selection"]["hard"]
    easy = [c for c in range(t["tau_adv"].shape[1]) if c not in hard]
    names = ", ".join(results["classes"][c] for c in hard)
    parts = tuple(less(f"final {sym} of {_label(main)}: mean over the validation-hard classes ({names}) − over the "
                       "others",
                       fixed(t[name][-1][hard].mean() - t[name][-1][easy].mean(), len(hard) + len(easy)),
                       scale=1, digits=2) for name, sym in (("tau_adv", "τ^adv"), ("tau_nat", "τ^nat")))
    per_class_clean = results["evaluations"][main]["reports"]["all"]["attacks"]["clean"]["per_class"]
    gates = _gates(results, main) + tuple(class_gate(_label(main), results["classes"], per_class_clean, hard,
                                                     len(results["classes"])))
    return Verdict("C6", PAPER["C6"], parts, gates)


def c7(results: dict) -> Verdict:
    sep, prod = absld_key("separate"), absld_key("code_product")
    missing = _missing(results, "C7", sep, prod)
    if missing:
        return missing
    t_sep, t_prod = effective_temperatures(results, sep), effective_temperatures(results, prod)
    a, b = evaluation(results, sep), evaluation(results, prod)
    parts = [greater("max/min of the final effective temperatures, code_product − separate",
                     fixed(t_prod.max() / t_prod.min() - t_sep.max() / t_sep.min(), len(t_sep)), scale=1, digits=2)]
    parts += [worst_part(results, a, b, _attack(results, w), p, f"worst class under {_attack(results, w).upper()}"
                         f"{_where(p)}, code_product − separate") for w, p in ATTACK_POINTS]
    return Verdict("C7", PAPER["C7"], tuple(parts), _gates(results, sep, prod))


RULES = (c1, c2, c3, c4, c5, c6, c7)


def verdicts(results: dict) -> list[Verdict]:
    return [rule(results) for rule in RULES]


def key_numbers(results: dict) -> dict[str, float]:
    """Headline accuracies of every evaluation (clean, PGD mean / worst / NSD, AA mean / worst on the AA points),
    the final temperatures and every verdict's estimates: what the stability file tracks."""
    pgd, out = results["attack_names"]["pgd"], {}
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
