"""The DUCAT chapter's claims (claim ids C1-C7) and their verdict rules.

Every rule is a function of the results: paired statistics on the same test points, tested against the
claim's direction (`advfair.verdicts`). Accuracies of a 2C model are always recovered (c + C -> c). Stated
choices: the "dummy-aware" robust accuracy of a point is its worst case over every dummy-aware attack that
ran on it (merged PGD and DAWA-style PGD on all points; with pairmax AutoAttack on the AA points); C2 and C3
test the paper's own evaluation (the dummy-unaware PGD), C5 the dummy-aware one; "a large share" (C1) is more
than half of the most robust model's failures, "much of" (C6) more than half.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from ...evaluation import Estimate, Evaluation, compare_models, evaluation_statistic, same_points
from ...evaluation.paired import mean
from ...verdicts import ACCURACY_POINT, THRESHOLD_ONLY, Part, Verdict, at_most, greater, less, untestable
from ...verdicts.gates import gate_note
from ..common import bootstrap_args, degeneracy_gates, evaluation, missing_verdict, not_trained
from ..roles import role
from .config import EVIDENCE, PLUGIN_BASES
from .methods import label, plugin_key

MOST = 0.5  # C1: the always-failed points are more than half of the most robust model's failures
TRAP_MAJORITY = 0.5  # C6: more than half of DUCAT's dummy-unaware robust points sit on their own dummy
SMALL_COST = 0.10  # C4: "small (about +8 %)": at most 10 % more image passes than PGD-AT over the whole schedule

# The smallest effect of interest of each part, fixed before any result is read: 1 pt of accuracy (or of a share
# of points) by convention; the "more than half" thresholds are the claims' own.
SMALLEST_EFFECT = {"C1": {"beyond": ACCURACY_POINT, "of_best": THRESHOLD_ONLY}, "C2": ACCURACY_POINT,
                   "C3": ACCURACY_POINT, "C4": THRESHOLD_ONLY, "C5": ACCURACY_POINT, "C6": THRESHOLD_ONLY,
                   "C7": ACCURACY_POINT}

PAPER = {
    "C1": "a large share of CIFAR-10 adversarial test examples (\"up to 40 %\") fool every AT method "
          "(\"always-failed\" examples)",
    "C2": "under the paper's evaluation (attacks on CE of y over the 2C logits, then recovery), PGD-AT + DUCAT "
          "beats PGD-AT on both clean and robust accuracy",
    "C3": "DUCAT is a plug-in that also helps TRADES, MART and Consistency-AT (tested here: TRADES and MART; the "
          "verdict covers those two)",
    "C4": "DUCAT's extra training cost is small (about +8 %)",
    "C5": "critique: against attacks that know the dummy classes, DUCAT's robust accuracy collapses, to below "
          "PGD-AT's",
    "C6": "mechanism: under dummy-unaware attacks much of DUCAT's \"robustness\" is points sent to their own "
          "dummy y + C (the label trap)",
    "C7": "adversarial examples crafted on DUCAT transfer to the baselines better than the reverse",
}

# Quoted numbers (CIFAR-10, L-inf, eps = 8/255, accuracy in %). Not computed by this code.
AUTHORS = "OpenReview sBpYRQOrMn, author response"
QUOTED = (
    # (setting, method, clean, robust, source, our evaluation it compares with)
    ("\"ResNet-18\", AutoAttack (paper Table 1)", "PGD-AT", 82.92, 46.74, AUTHORS, "pgd_at"),
    ("\"ResNet-18\", AutoAttack (paper Table 1)", "PGD-AT + DUCAT", 88.81, 58.61, AUTHORS, "ducat"),
    ("\"ResNet-18\", PGD-10 (App. C.4)", "PGD-AT + DUCAT", 88.81, 65.10, AUTHORS, None),
    ("WRN-28-10 + 1 M synthetic images, AA (App. C.3)", "Wang et al. 2023, lightest setting", 91.12, 63.35, AUTHORS,
     None),
    ("WRN-28-10 + 1 M synthetic images, AA (App. C.3)", "DUCAT", 92.60, 62.74, AUTHORS, None),
    ("targeted attacks exploiting the projection (App. C.1)", "PGD-AT", None, 73.02,
     "OpenReview sBpYRQOrMn, public comment quoting the appendix", None),
    ("targeted attacks exploiting the projection (App. C.1)", "PGD-AT + DUCAT", None, 70.77,
     "OpenReview sBpYRQOrMn, public comment quoting the appendix", None),
    ("dummy-aware DAWA attack", "DUCAT (58.61 under the paper's AA)", None, 29.52,
     "third-party: DAWA abstract, arXiv 2603.29182", None),
)
QUOTED_C1 = ("up to 40 %", "DUCAT abstract (v1 and v2), arXiv 2410.12671")
QUOTED_C4 = ("+8 % training time (PGD-AT R18 about 4 h on one RTX 4090)", f"{AUTHORS} (Fig. 6)")
# White-box PGD success counts on the 10,000 test images (author response, transfer table diagonal).
QUOTED_TRANSFER_DIAGONAL = {"PGD-AT": 4869, "TRADES": 4745, "MART": 4630, "Consistency-AT": 4648, "DUCAT": 3477}
# At paper scale a quoted number counts as reproduced within this many points.
PAPER_TOLERANCE_PT = 3.0
# The scale box's quote: the baseline and the method under AutoAttack, as the authors quote their Table 1.
SCALE_QUOTE = "; ".join(f"{method} {clean:.2f} % clean, {robust:.2f} % AA" for _, method, clean, robust, _, ours
                        in QUOTED[:2]) + f" (\"ResNet-18\" on CIFAR-10, paper Table 1; {AUTHORS})"


def unaware(results: dict) -> str:
    return role(results, "pgd")


def aware_names(e: Evaluation, results: dict, points: str = "all") -> list[str]:
    return [a for a in (*role(results, "aware"), role(results, "aa")) if a in e.names(points)]


def aware_correct(e: Evaluation, results: dict, points: str = "all") -> np.ndarray:
    """Per point: robust (recovered) under every dummy-aware attack that ran on `points`."""
    return e.worst_case(aware_names(e, results, points), points)


def side_predicted(e: Evaluation, head: str, attack: str, points: str = "all") -> np.ndarray:
    p = e.side[head][attack]
    return p[e.subset] if points == "subset" and attack not in e.on_subset else p


def trapped(e: Evaluation, attack: str, points: str = "all") -> np.ndarray:
    """Per point: the raw 2C argmax is the point's own dummy y + C (all False for a C-way model)."""
    y = e.labels(points)
    if "raw2C" not in e.side:
        return np.zeros(len(y), dtype=bool)
    return side_predicted(e, "raw2C", attack, points) == y + len(e.classes)


def raw_clean_correct(e: Evaluation) -> np.ndarray:
    """Clean correctness of the raw 2C argmax (a dummy prediction counts as wrong)."""
    return (side_predicted(e, "raw2C", "clean") if "raw2C" in e.side else e.predicted("clean")) == e.labels()


def transfer_correct(source: Evaluation, target: str, attack: str) -> np.ndarray:
    """Per point: `target` (a side head of the source's evaluation) is right on the clean point and on the
    source's adversarial point."""
    y = source.labels()
    return (side_predicted(source, target, "clean") == y) & (side_predicted(source, target, attack) == y)


def clean_accuracy(e: Evaluation) -> float:
    return float((e.predicted("clean") == e.labels()).mean())


def gates(results: dict, *names: str) -> tuple[Part, ...]:
    """Recovered clean and dummy-unaware PGD accuracy of each model (all adversarially trained) against their
    floors."""
    u = unaware(results)
    return degeneracy_gates(results, names, label, u, shown=f"dummy-unaware {u[:u.index('_')].upper()}")


def _difference(e: Evaluation, a: np.ndarray, b: np.ndarray, results: dict, points: str = "all") -> Estimate:
    """mean(b) - mean(a) of two outcome vectors on the same points (per-class means: balanced points)."""
    return evaluation_statistic(e, [a, b], lambda x, y: mean(y) - mean(x), points=points, **bootstrap_args(results))


def c1(results: dict) -> Verdict:
    names = ("pgd_at", "trades", "mart")
    missing = missing_verdict(results, "C1", PAPER["C1"], names, label, why_absent)
    if missing:
        return missing
    evs = [evaluation(results, n) for n in names]
    for e in evs[1:]:
        same_points(evs[0], e)
    fails = [~e.correct(unaware(results)) for e in evs]
    always = np.logical_and.reduce(fails)

    def beyond(all_, a, b, c):
        return mean(all_) - mean(a) * mean(b) * mean(c)

    def of_best(all_, a, b, c):
        return mean(all_) / np.minimum(np.minimum(mean(a), mean(b)), mean(c))

    stat = {"points": "all", **bootstrap_args(results)}
    parts = (greater("always-failed share − the product of the three failure rates (independent errors)",
                     evaluation_statistic(evs[0], [always, *fails], beyond, **stat), effect=SMALLEST_EFFECT["C1"]["beyond"]),
             greater("always-failed share / failure rate of the most robust model",
                     evaluation_statistic(evs[0], [always, *fails], of_best, **stat), MOST,
                     effect=SMALLEST_EFFECT["C1"]["of_best"], scale=1, digits=2))
    return Verdict("C1", PAPER["C1"], parts, gates(results, *names))


def _paper_evaluation(results: dict, claim: str, base: str, tweaked: str) -> list[Part]:
    a, b = evaluation(results, base), evaluation(results, tweaked)
    u, stat = unaware(results), bootstrap_args(results)
    effect = SMALLEST_EFFECT[claim]
    return [greater(f"recovered clean accuracy, {label(tweaked)} − {label(base)}",
                    compare_models(a, b, "clean", mean, **stat), effect=effect),
            greater(f"{u} robust accuracy (dummy-unaware, recovered), {label(tweaked)} − {label(base)}",
                    compare_models(a, b, u, mean, **stat), effect=effect)]


def c2(results: dict) -> Verdict:
    return Verdict("C2", PAPER["C2"], tuple(_paper_evaluation(results, "C2", "pgd_at", "ducat")),
                   gates(results, "pgd_at", "ducat"))


def why_absent(results: dict, key: str) -> str:
    """Why model `key` is not in these results: the switch that leaves it out, or the evidence tier's budget."""
    return not_trained(results, "plugins" if key in map(plugin_key, PLUGIN_BASES) else "baselines", EVIDENCE)


def c3(results: dict) -> Verdict:
    """C2's test for each base DUCAT is plugged into; the dummy-aware difference is shown beside, not voted."""
    bases = [b for b in PLUGIN_BASES if plugin_key(b) in results["evaluations"]]
    if not bases:
        return missing_verdict(results, "C3", PAPER["C3"], [plugin_key(b) for b in PLUGIN_BASES], label, why_absent)
    parts, names = [], []
    for base in bases:
        a, b = evaluation(results, base), evaluation(results, plugin_key(base))
        parts += _paper_evaluation(results, "C3", base, plugin_key(base))
        parts.append(greater(f"dummy-aware robust accuracy (merged and DAWA-style PGD), {label(plugin_key(base))} − "
                             f"{label(base)}", _difference(a, aware_correct(a, results), aware_correct(b, results),
                                                          results), effect=SMALLEST_EFFECT["C3"], primary=False))
        names += [base, plugin_key(base)]
    parts += [untestable(f"DUCAT plugged into {label(b)}", why_absent(results, plugin_key(b)), primary=False)
              for b in PLUGIN_BASES if b not in bases]
    parts.append(untestable("DUCAT plugged into Consistency-AT", "Consistency-AT is not implemented", primary=False))
    return Verdict("C3", PAPER["C3"], tuple(parts), gates(results, *names))


def c4(results: dict) -> Verdict:
    """Judged on the deterministic cost model (image passes per training image over the whole schedule), not on
    wall time, which moves with the machine's load (the cost table shows it beside)."""
    overhead = results["cost_model"]["overhead_schedule"]
    part = at_most("extra image passes over the whole schedule, DUCAT / PGD-AT − 1 (cost model)",
                   Estimate(overhead, (overhead, overhead), results["cost_model"]["epochs"]), SMALL_COST)
    return Verdict("C4", PAPER["C4"], (part,), compares="model")


def c5(results: dict) -> Verdict:
    at, du = evaluation(results, "pgd_at"), evaluation(results, "ducat")
    same_points(at, du)
    u = unaware(results)
    # The drop from the unaware to the aware attacks, beyond the drop any model shows when attacked more.
    drops = evaluation_statistic(du, [du.correct(u), aware_correct(du, results), at.correct(u), aware_correct(at, results)],
                                 lambda du_u, du_a, at_u, at_a: (mean(du_a) - mean(du_u)) - (mean(at_a) - mean(at_u)),
                                 **bootstrap_args(results))
    parts = [less("DUCAT's drop from dummy-unaware to dummy-aware robust accuracy, minus PGD-AT's", drops,
                  effect=SMALLEST_EFFECT["C5"])]
    # A collapse presupposes a gain to lose: C2's dummy-unaware gain is this claim's gate.
    gain = greater(f"{u} robust accuracy (dummy-unaware), DUCAT − PGD-AT", compare_models(at, du, u, mean, **bootstrap_args(results)),
                   effect=SMALLEST_EFFECT["C5"])
    presupposes = "dummy-unaware gain (C2)"
    gain = replace(gain, gate=True, rule=f"{gain.rule}: a collapse presupposes a {presupposes}",
                   presupposes=presupposes, note=gate_note(gain.outcome, presupposes))
    for points, where in (("all", "all points: merged and DAWA-style PGD"),
                          ("subset", "AA points: pairmax AA, merged and DAWA-style PGD")):
        parts.append(less(f"dummy-aware robust accuracy ({where}), DUCAT − PGD-AT",
                          _difference(at, aware_correct(at, results, points), aware_correct(du, results, points),
                                      results, points), effect=SMALLEST_EFFECT["C5"]))
    return Verdict("C5", PAPER["C5"], tuple(parts), (*gates(results, "pgd_at", "ducat"), gain))


def trap_share(e: Evaluation, attack: str, results: dict, points: str = "all") -> Estimate:
    """Of the points robust (recovered) under `attack`, the share whose raw 2C prediction is y + C."""
    robust = e.correct(attack, points)
    with np.errstate(divide="ignore", invalid="ignore"):
        return evaluation_statistic(e, [robust & trapped(e, attack, points), robust],
                                    lambda t, r: mean(t) / mean(r), points=points, **bootstrap_args(results))


def c6(results: dict) -> Verdict:
    du = evaluation(results, "ducat")
    part = greater(f"share of DUCAT's {unaware(results)}-robust points whose raw prediction is their own dummy y + C",
                   trap_share(du, unaware(results), results), TRAP_MAJORITY, effect=SMALLEST_EFFECT["C6"])
    return Verdict("C6", PAPER["C6"], (part,), gates(results, "ducat"), compares="model")


def c7(results: dict) -> Verdict:
    du, u = evaluation(results, "ducat"), unaware(results)
    parts = []
    for base in ("pgd_at", "trades"):
        if base not in results["evaluations"] or base not in du.side:
            parts.append(untestable(f"transfer DUCAT ↔ {label(base)}", why_absent(results, base)))
            continue
        e = evaluation(results, base)
        same_points(e, du)
        # On the points both models classify correctly: DUCAT's lower clean accuracy alone would favour the claim.
        both = e.correct("clean") & du.correct("clean")
        parts.append(less(f"{label(base)}'s accuracy on DUCAT's {u} points − DUCAT's on {label(base)}'s (points both "
                          "classify correctly)",
                          evaluation_statistic(e, [transfer_correct(e, "ducat", u) & both,
                                                   transfer_correct(du, base, u) & both, both],
                                               lambda x, y, b: (mean(y) - mean(x)) / mean(b), **bootstrap_args(results)),
                          effect=SMALLEST_EFFECT["C7"]))
    bases = [b for b in ("pgd_at", "trades") if b in results["evaluations"]]
    return Verdict("C7", PAPER["C7"], tuple(parts), gates(results, "ducat", *bases))


RULES = (c1, c2, c3, c4, c5, c6, c7)


def verdicts(results: dict) -> list[Verdict]:
    return [rule(results) for rule in RULES]


def key_numbers(results: dict) -> dict[str, float]:
    """Headline accuracies of every evaluation (recovered) and every verdict's estimates: what the stability
    file tracks and what a re-execution on another machine is compared on. No timing enters."""
    u, aa, out = unaware(results), role(results, "aa"), {}
    for name in results["evaluations"]:
        e = evaluation(results, name)
        out[f"{name}.clean"] = clean_accuracy(e)
        out[f"{name}.{u}"] = float(e.correct(u).mean())
        if aware_names(e, results):
            out[f"{name}.aware"] = float(aware_correct(e, results).mean())
        if aa in e.predictions:
            out[f"{name}.{aa}"] = float(e.correct(aa, "subset").mean())
        if "raw2C" in e.side:
            out[f"{name}.trap"] = float(trapped(e, u).mean())
    for v in verdicts(results):
        for i, part in enumerate(v.parts):
            if part.estimate is not None:
                out[f"{v.claim}.{i}"] = part.estimate.value
    return out
