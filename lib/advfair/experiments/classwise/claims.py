"""The class-wise chapter's claims (paraphrased from the KDD abstract; the book's claim ids) and their verdict rules.

Every rule is a function of the results: paired statistics on the same test points, tested against the
claim's direction (`advfair.verdicts`). Stated choices: "largely the same ranking" means Spearman rho > 0.5;
spreads are compared as NSD (SD / mean), which allows for robust accuracies being lower than clean ones.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from ...evaluation import Estimate, Evaluation, compare_attacks, compare_models, evaluation_statistic, rank_agreement
from ...evaluation.compare import RHO_BOUNDS
from ...evaluation.metrics import partial_spearman_rows, spearman_rows, spearman_rows_finite
from ...evaluation.paired import gap, mean, nsd, of_classes, sd
from ...verdicts import (ACCURACY_POINT, NSD_STEP, SD_POINT, THRESHOLD_ONLY, Effect, Part, Verdict, class_gate, greater,
                         less)
from ..common import bootstrap_args, degeneracy_gates, evaluation
from ..roles import role
from .methods import MODEL_LABELS

RANK_AGREEMENT = 0.5  # "largely the same ranking": Spearman rho above this
RANK_STEP = Effect(0.1, "convention: 0.1 of Spearman ρ")

# The smallest effect of interest of each claim, fixed before any result is read (the paper reports no effect
# sizes with intervals, so each is a stated convention in the statistic's units).
SMALLEST_EFFECT = {
    "C1": {"gap": SD_POINT, "nsd": NSD_STEP},
    "C2": THRESHOLD_ONLY, "C3": THRESHOLD_ONLY, "C4": RANK_STEP, "C5": ACCURACY_POINT, "C6": SD_POINT,
    "C7a": {"class": ACCURACY_POINT, "gap": SD_POINT}, "C7b": {"class": ACCURACY_POINT, "gap": SD_POINT},
    "C8b": RANK_STEP,
}

# The scale box's quote: none (the spec of the paper holds no overall accuracy it could verify).
SCALE_QUOTE = None

PAPER = {
    "C1": "adversarially trained models show large gaps in robust accuracy between classes, larger than in "
          "clean accuracy",
    "C2": "the class ranking by robustness is largely the same across attacks",
    "C3": "the class ranking is largely the same across defences",
    "C4": "stronger attacks gain over weaker ones mostly on the vulnerable classes",
    "C5": "T-PGD has a higher attack success rate than PGD",
    "C6": "T-PGD widens the robustness gap between classes",
    "C7a": "a training-phase change raises the robust accuracy of the most vulnerable class and shrinks the gap",
    "C7b": "an inference-phase change raises the robust accuracy of the most vulnerable class and shrinks the gap",
    "C8b": "a class's robustness correlates positively with its last-layer weight norm ‖w_c‖ (ICLR version)",
}


def _gates(results: dict, *names: str) -> tuple[Part, ...]:
    """Clean and PGD accuracy of each model (all adversarially trained) against their floors."""
    return degeneracy_gates(results, names, MODEL_LABELS.__getitem__, role(results, "pgd"))


def _nsd_gap(e: Evaluation, attack: str, boot: dict) -> Estimate:
    return compare_attacks(e, "clean", attack, nsd, **boot)


def c1(results: dict) -> Verdict:
    """Both the absolute spread (the gap, max - min) and the relative one (NSD) must be larger under attack:
    NSD alone rises whenever the mean falls."""
    pgd, boot, effect = role(results, "pgd"), bootstrap_args(results), SMALLEST_EFFECT["C1"]
    parts = []
    for m in ("pgd_at", "trades"):
        e = evaluation(results, m)
        parts.append(greater(f"{MODEL_LABELS[m]}: gap under {pgd.upper()} − clean gap",
                             compare_attacks(e, "clean", pgd, gap, **boot), effect=effect["gap"]))
        parts.append(greater(f"{MODEL_LABELS[m]}: NSD under {pgd.upper()} − clean NSD", _nsd_gap(e, pgd, boot),
                             effect=effect["nsd"], scale=1, digits=3))
    return Verdict("C1", PAPER["C1"], tuple(parts), _gates(results, "pgd_at", "trades"), compares="model")


def c2(results: dict) -> Verdict:
    """Across attacks of other objectives (CW's margin, T-PGD's tempered CE, AutoAttack): FGSM is PGD's own loss
    in one step, so a PGD-FGSM agreement holds whether or not rankings move with the attack; it is shown, not
    voted."""
    n, boot = results["attack_roles"], bootstrap_args(results)
    e = evaluation(results, "pgd_at")
    pairs = [(n["pgd"], n["fgsm"], "all", False), (n["pgd"], n["cw"], "all", True), (n["pgd"], n["tpgd"], "all", True),
             (n["pgd"], "aa", "subset", True)]
    parts = tuple(greater(f"ρ({a.upper()}, {b.upper()}){' on the AA points' if pts == 'subset' else ''}",
                          rank_agreement(e, a, e, b, points=pts, **boot), RANK_AGREEMENT,
                          effect=SMALLEST_EFFECT["C2"], primary=primary, scale=1, digits=2)
                  for a, b, pts, primary in pairs)
    return Verdict("C2", PAPER["C2"], parts, _gates(results, "pgd_at"), compares="model")


def c3(results: dict) -> Verdict:
    pgd, boot = role(results, "pgd"), bootstrap_args(results)
    a, b = evaluation(results, "pgd_at"), evaluation(results, "trades")
    part = greater(f"ρ(PGD-AT, TRADES) under {pgd.upper()}",
                   rank_agreement(a, pgd, b, pgd, **boot), RANK_AGREEMENT, effect=SMALLEST_EFFECT["C3"], scale=1,
                   digits=2)
    return Verdict("C3", PAPER["C3"], (part,), _gates(results, "pgd_at", "trades"))


def relative_drop_rank(weak: np.ndarray, strong: np.ndarray) -> np.ndarray:
    """Spearman rho between the relative drop (weak - strong) / weak and the weak-attack accuracy, over the
    classes the weak attack leaves some points of (a relative drop is undefined for the others)."""
    defined = weak > 0
    relative = np.where(defined, (weak - strong) / np.where(defined, weak, 1), np.nan)
    return spearman_rows_finite(relative, weak)


def c4(results: dict) -> Verdict:
    n, boot = results["attack_roles"], bootstrap_args(results)
    e = evaluation(results, "pgd_at")
    chains = [(n["fgsm"], n["pgd"], "all"), (n["fgsm"], "aa", "subset")]
    parts = tuple(less(f"ρ(relative drop {a.upper()}→{b.upper()}, {a.upper()} accuracy)"
                       f"{' on the AA points' if pts == 'subset' else ''}",
                       replace(evaluation_statistic(e, [e.correct(a, pts), e.correct(b, pts)], relative_drop_rank,
                                                    points=pts, **boot), bounds=RHO_BOUNDS),
                       effect=SMALLEST_EFFECT["C4"], scale=1, digits=2)
                  for a, b, pts in chains)
    return Verdict("C4", PAPER["C4"], parts, _gates(results, "pgd_at"), compares="model")


def c5(results: dict) -> Verdict:
    n, boot = results["attack_roles"], bootstrap_args(results)
    e = evaluation(results, "pgd_at")
    t = results["selection"]["t_picked"]
    part = less(f"robust accuracy, T-PGD (T = {t:g}, picked on validation) − PGD",
                compare_attacks(e, n["pgd"], n["tpgd"], mean, **boot), effect=SMALLEST_EFFECT["C5"])
    return Verdict("C5", PAPER["C5"], (part,), _gates(results, "pgd_at"), compares="model")


def c6(results: dict) -> Verdict:
    n, boot = results["attack_roles"], bootstrap_args(results)
    e = evaluation(results, "pgd_at")
    part = greater(f"class SD, T-PGD (T = {results['selection']['t_picked']:g}) − PGD",
                   compare_attacks(e, n["pgd"], n["tpgd"], sd, **boot), effect=SMALLEST_EFFECT["C6"])
    return Verdict("C6", PAPER["C6"], (part,), _gates(results, "pgd_at"), compares="model")


def _tweak(results: dict, claim: str, tweaked: str, label: str, compares: str) -> Verdict:
    """The tweaked model against PGD-AT on the same points: the validation-weakest class up and the
    max-min gap down, under PGD (all points) and under AutoAttack (the AA points)."""
    pgd, boot = role(results, "pgd"), bootstrap_args(results)
    target = results["selection"]["worst_class"]
    name, effect = results["classes"][target], SMALLEST_EFFECT[claim]
    base, tw = evaluation(results, "pgd_at"), evaluation(results, tweaked)
    parts = []
    for attack, points in ((pgd, "all"), ("aa", "subset")):
        where = " (AA points)" if points == "subset" else ""
        parts.append(greater(f"{name} under {attack.upper()}{where}, {label} − PGD-AT",
                             compare_models(base, tw, attack, of_classes([target]), points=points, **boot),
                             effect=effect["class"]))
        parts.append(less(f"gap under {attack.upper()}{where}, {label} − PGD-AT",
                          compare_models(base, tw, attack, gap, points=points, **boot), effect=effect["gap"]))
    gates = _gates(results, "pgd_at") + tuple(class_gate("PGD-AT", results["classes"], base.correct("clean"),
                                                         base.labels(), [target]))
    return Verdict(claim, PAPER[claim], tuple(parts), gates, compares=compares)


def c7a(results: dict) -> Verdict:
    return _tweak(results, "C7a", "class_weighted", f"class-weighted (w = {results['config']['w_worst']:g})",
                  "training")


def c7b(results: dict) -> Verdict:
    """An inference-phase change of one trained model: a comparison of two heads of the same model."""
    return _tweak(results, "C7b", "pgd_at_bias", f"bias b = {results['bias']['picked']:g}", "model")


def c8b(results: dict) -> Verdict:
    """The norm must go with robustness, not only with clean accuracy (which robust accuracy follows): the
    partial rank correlation given the clean per-class accuracy must be positive too."""
    pgd, boot, effect = role(results, "pgd"), bootstrap_args(results), SMALLEST_EFFECT["C8b"]
    e = evaluation(results, "pgd_at")
    norms = np.asarray(results["diagnostics"]["weight_norms"])
    rho = replace(evaluation_statistic(e, [e.correct(pgd)], lambda acc: spearman_rows(norms, acc), **boot),
                  bounds=RHO_BOUNDS)
    partial = replace(evaluation_statistic(e, [e.correct(pgd), e.correct("clean")],
                                           lambda robust, clean: partial_spearman_rows(norms, robust, clean), **boot),
                      bounds=RHO_BOUNDS)
    parts = (greater(f"ρ(‖w_c‖, {pgd.upper()} accuracy)", rho, effect=effect, scale=1, digits=2),
             greater(f"partial ρ(‖w_c‖, {pgd.upper()} accuracy | clean accuracy)", partial, effect=effect, scale=1,
                     digits=2))
    return Verdict("C8b", PAPER["C8b"], parts, _gates(results, "pgd_at"), compares="model")


RULES = (c1, c2, c3, c4, c5, c6, c7a, c7b, c8b)


MNIST = " (MNIST)"  # the claim ids of the MNIST track: the same rules on the same pipeline's MNIST results


def mnist_view(results: dict) -> dict:
    """The MNIST track as results of their own, for the same rules (the config is shared)."""
    return {**results["mnist"], "config": results["config"]}


def has_mnist_track(results: dict) -> bool:
    return "evaluations" in results.get("mnist", {})


def verdicts(results: dict) -> list[Verdict]:
    """Every claim on CIFAR-10, then every claim on MNIST (ids with the suffix MNIST)."""
    out = [rule(results) for rule in RULES]
    if has_mnist_track(results):
        view = mnist_view(results)
        out += [replace(v, claim=v.claim + MNIST) for v in (rule(view) for rule in RULES)]
    return out


def _accuracies(results: dict, prefix: str) -> dict[str, float]:
    n, out = results["attack_roles"], {}
    for name, record in results["evaluations"].items():
        rep, sub = record["reports"]["all"]["attacks"], record["reports"]["subset"]["attacks"]
        out[f"{prefix}{name}.clean"] = rep["clean"]["overall"]
        out[f"{prefix}{name}.{n['pgd']}"] = rep[n["pgd"]]["overall"]
        out[f"{prefix}{name}.{n['pgd']}.worst"] = rep[n["pgd"]]["worst"]
        out[f"{prefix}{name}.aa"] = sub["aa"]["overall"]
    return out


def key_numbers(results: dict) -> dict[str, float]:
    """Headline accuracies of every evaluation (both tracks) and every verdict's estimates: what the stability
    file tracks and what a re-execution on another machine is compared on."""
    out = _accuracies(results, "")
    if has_mnist_track(results):
        out.update(_accuracies(mnist_view(results), "mnist."))
    for v in verdicts(results):
        for i, part in enumerate(v.parts):
            if part.estimate is not None:
                out[f"{v.claim}.{i}"] = part.estimate.value
    return out
