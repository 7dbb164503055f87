"""The RoBal chapter's claims (claim ids C1-C12, with their tables) and their verdict rules.

Every rule is a function of the results: paired statistics on the same test points, tested against the
claim's direction (`advfair.verdicts`). Where a claim names AutoAttack, every quantity of the rule is taken
on the AA points. "Unchanged" means the paired difference lies within +-`equivalence_margin`.
"""
from __future__ import annotations

import numpy as np

from ...evaluation import Estimate, Evaluation, compare_models, evaluation_statistic, permutation_spearman
from ...evaluation.paired import interval, mean, of_classes, stratified_bootstrap
from ...evaluation.protocol import decode_labels
from ...verdicts import ACCURACY_POINT, Effect, Part, Verdict, at_most, exact_test, greater, less, untestable, within
from ..common import bootstrap_args, degeneracy_gates, evaluation, model_gates
from ..roles import role
from .methods import MODEL_LABELS

PAPER = {
    "C1": "under AT, clean and robust accuracy fall from head to tail, robust accuracy collapses on the tail "
          "far more, and AT widens the tail's clean-accuracy loss compared with plain training (Fig. 1)",
    "C2": "head classes are more robust after LT training than after balanced training of the same size (Fig. 5)",
    "C3": "long-tail methods inside AT raise clean accuracy much more than AA (LA/BS: +12.1 vs +2.4 pt; Table 1)",
    "C4": "inference-time re-scaling and normalisation raise PGD accuracy but not AA (\"fake gains\": 39.05 and "
          "36.57 vs 29.30 PGD, 28.23 and 29.77 vs 28.15 AA; Table 1)",
    "C5": "scaling the logits by 10^−κ leaves clean and AA unchanged; PGD is lowest near κ = 0 and rises on both "
          "sides (Fig. 2)",
    "C6": "the cosine classifier has a smaller clean − AA gap than FC (29.36 vs 34.18; Table 1)",
    "C7": "classifier weight norms shrink toward the tail; attacked samples have a larger feature-norm ratio "
          "‖f(x+δ)‖/‖f(x)‖ (Fig. 3)",
    "C8": "RoBal beats AT on clean accuracy and every attack on CIFAR-10-LT (Table 2)",
    "C9": "larger τ_b − τ_m raises clean accuracy at the end of training; AA peaks mid-range (Table 3, block 2)",
    "C10–C12": "gains hold across imbalance ratios; the outer loss matters most; more inner steps trade clean for "
               "robust accuracy (Tables 4, S6, S7)",
}

# Quoted from the paper (CIFAR-10-LT, IR 50, WRN-34-10; accuracy in %). Not computed by this code.
PAPER_TABLE1 = {
    "ref": "Wu et al. 2021, Table 1 (CIFAR-10-LT, IR 50, WRN-34-10; PGD = PGD-20, AA = APGD-CE + APGD-T)",
    "digits": 2,  # as printed: a quote keeps the paper's trailing zeros (29.30, not 29.3)
    "columns": ("clean", "pgd", "aa"),
    "rows": {
        "vanilla FC": (62.33, 29.30, 28.15),
        "vanilla Cos": (56.59, 29.38, 27.23),
        "class-aware margin (LDAM)": (63.24, 29.81, 28.70),
        "cosine with margin (HE)": (58.47, 31.73, 28.45),
        "class-aware temperature (CDT)": (73.11, 30.12, 28.62),
        "class-aware bias (LA/BS)": (74.46, 32.45, 30.55),
        "re-scaling W_i/n_i^tau": (73.84, 39.05, 28.23),
        "normalisation W_i/||W_i||^tau": (72.70, 36.57, 29.77),
        "LA-post": (74.25, 31.95, 30.45),
    },
}
PAPER_TABLE2 = {
    "ref": "Wu et al. 2021, Table 2 (CIFAR-10-LT, IR 50, WRN-34-10)",
    "digits": 2,
    "columns": ("clean", "fgsm", "pgd", "mim", "cw", "aa"),
    "rows": {
        "Plain": (77.16, 7.01, 0.00, 0.00, 0.00, 0.00),
        "AT": (62.33, 33.57, 29.30, 30.02, 30.31, 28.15),
        "TRADES": (54.29, 32.80, 30.20, 30.53, 29.58, 28.94),
        "RoBal-N": (75.52, 40.04, 33.50, 34.57, 33.68, 31.72),
        "RoBal-R": (74.51, 40.55, 33.87, 34.92, 34.12, 32.04),
    },
}
PAPER_TABLE3_BLOCK2 = {
    "ref": "Wu et al. 2021, Table 3, block 2 (m0 = 0.1, tau_m = 0; clean / AA at the end → after the best tau_p)",
    "digits": 2,
    "rows": {0.0: ((63.51, 28.47), (75.51, 31.24)), 0.5: ((68.58, 30.55), (75.77, 30.94)),
             1.0: ((73.93, 31.52), (75.42, 31.61)), 1.5: ((74.67, 30.95), (74.67, 30.95))},
}
# Which quoted row each of our evaluations corresponds to: (table, row).
PAPER_ROWS = {"plain": (PAPER_TABLE2, "Plain"), "at_fc": (PAPER_TABLE2, "AT"),
              "rescale": (PAPER_TABLE1, "re-scaling W_i/n_i^tau"),
              "tau_norm": (PAPER_TABLE1, "normalisation W_i/||W_i||^tau"), "at_cos": (PAPER_TABLE1, "vanilla Cos"),
              "la_train": (PAPER_TABLE1, "class-aware bias (LA/BS)"), "la_post": (PAPER_TABLE1, "LA-post"),
              "trades": (PAPER_TABLE2, "TRADES"), "robal_n": (PAPER_TABLE2, "RoBal-N"),
              "robal_r": (PAPER_TABLE2, "RoBal-R")}
# At paper scale a number counts as reproduced within this many points.
PAPER_TOLERANCE_PT = 3.0
# The scale box's quote: the baseline and the method, as Table 2 prints them.
SCALE_QUOTE = "; ".join(
    f"{row} " + ", ".join(f"{PAPER_TABLE2['rows'][row][PAPER_TABLE2['columns'].index(column)]:.2f} % {shown}"
                          for column, shown in (("clean", "clean"), ("pgd", "PGD-20"), ("aa", "AA")))
    for row in ("AT", "RoBal-N")) + f" ({PAPER_TABLE2['ref']})"

# The smallest effect of interest of each claim, fixed before any result is read. The paper's effects are
# large (e.g. C3's +12.1 vs +2.4 pt, C6's 4.82 pt) but come without intervals, so each is a stated convention.
SMALLEST_EFFECT = {
    "C1": ACCURACY_POINT, "C2": ACCURACY_POINT, "C3": ACCURACY_POINT, "C4": ACCURACY_POINT, "C5": ACCURACY_POINT,
    "C6": ACCURACY_POINT, "C7": Effect(0.01, "convention: 0.01 of the feature-norm ratio"), "C8": ACCURACY_POINT,
    "C9": ACCURACY_POINT,
}


def _gates(results: dict, *names: str) -> tuple[Part, ...]:
    """Clean accuracy of each model, and PGD accuracy of the adversarially trained ones (all but the plain
    model), against their floors."""
    return degeneracy_gates(results, names, MODEL_LABELS.__getitem__, role(results, "pgd"), plain=("plain",))


def _difference(results: dict, a: str, b: str, attack: str, points: str = "all", statistic=mean) -> Estimate:
    return compare_models(evaluation(results, a), evaluation(results, b), attack, statistic, points=points,
                          **bootstrap_args(results))


def c1(results: dict) -> Verdict:
    pgd, groups = role(results, "pgd"), results["groups"]
    e = evaluation(results, "at_fc")
    head, tail = of_classes(groups["head"]), of_classes(groups["tail"])
    outcomes = [e.correct("clean"), e.correct(pgd)]

    def kept(clean: np.ndarray, robust: np.ndarray) -> np.ndarray:  # tail/head robust minus tail/head clean
        with np.errstate(divide="ignore", invalid="ignore"):
            return tail(robust) / head(robust) - tail(clean) / head(clean)

    boot, effect = bootstrap_args(results), SMALLEST_EFFECT["C1"]
    parts = [greater("AT-FC clean accuracy, head − tail",
                     evaluation_statistic(e, outcomes[:1], lambda c: head(c) - tail(c), **boot), effect=effect),
             greater(f"AT-FC {pgd.upper()} accuracy, head − tail",
                     evaluation_statistic(e, outcomes[1:], lambda r: head(r) - tail(r), **boot), effect=effect),
             less("share of the head's accuracy the tail keeps, robust − clean",
                  evaluation_statistic(e, outcomes, kept, **boot), effect=effect)]
    names = ["at_fc"]
    if "plain" in results["evaluations"]:
        names.append("plain")
        gap = _difference(results, "plain", "at_fc", "clean", statistic=lambda c: head(c) - tail(c))
        parts.append(greater("clean head − tail gap, AT-FC − plain (AT widens the tail's clean loss)", gap,
                             effect=effect))
    else:
        parts.append(untestable("AT-FC vs plain training", "no plain model in this run"))
    return Verdict("C1", PAPER["C1"], tuple(parts), _gates(results, *names))


def c2(results: dict) -> Verdict:
    if "sml_bal" not in results["evaluations"]:
        return Verdict("C2", PAPER["C2"], (untestable("Sml-Bal", "not trained in this run"),))
    pgd = role(results, "pgd")
    part = greater(f"head {pgd.upper()} accuracy, LT − Sml-Bal",
                   _difference(results, "sml_bal", "at_fc", pgd, statistic=of_classes(results["groups"]["head"])),
                   effect=SMALLEST_EFFECT["C2"])
    return Verdict("C2", PAPER["C2"], (part,), _gates(results, "sml_bal", "at_fc"))


def _clean_minus_aa_gain(results: dict, name: str) -> Estimate:
    """(clean gain) − (AA gain) of `name` over AT-FC, all four on the AA points."""
    a, b = evaluation(results, "at_fc"), evaluation(results, name)
    outcomes = [a.correct("clean", "subset"), a.correct("aa", "subset"), b.correct("clean", "subset"),
                b.correct("aa", "subset")]
    return evaluation_statistic(a, outcomes, lambda ca, aa, cb, ab: (mean(cb) - mean(ca)) - (mean(ab) - mean(aa)),
                                points="subset", **bootstrap_args(results))


def c3(results: dict) -> Verdict:
    names = [n for n in ("la_train", "la_post") if n in results["evaluations"]]
    parts = []
    for name in names:
        parts.append(greater(f"{MODEL_LABELS[name]} − AT-FC, clean", _difference(results, "at_fc", name, "clean"),
                             effect=SMALLEST_EFFECT["C3"]))
        parts.append(greater(f"{MODEL_LABELS[name]} − AT-FC, clean gain − AA gain (AA points)",
                             _clean_minus_aa_gain(results, name), effect=SMALLEST_EFFECT["C3"]))
    return Verdict("C3", PAPER["C3"], tuple(parts), _gates(results, "at_fc", *names))


def _kappa(results: dict, kappa: float) -> Evaluation:
    return Evaluation.from_json(results["kappa"]["evaluations"][f"{kappa:g}"])


def _kappa_difference(results: dict, kappa: float, attack: str, points: str) -> Estimate:
    return compare_models(_kappa(results, 0), _kappa(results, kappa), attack, mean, points=points, **bootstrap_args(results))


def c4(results: dict) -> Verdict:
    """Table 1's inference remedies on AT-FC's weights: each raises PGD accuracy, and raises AA by at most the
    equivalence margin (the "fake gain"). The clean difference (they re-balance predictions) is shown beside."""
    pgd, margin = role(results, "pgd"), results["config"]["equivalence_margin"]
    names = [n for n in ("rescale", "tau_norm") if n in results["evaluations"]]
    if not names:
        return Verdict("C4", PAPER["C4"], (untestable("re-scaling, τ-normalisation", "not evaluated in this run"),))
    parts = []
    for name in names:
        label, effect = MODEL_LABELS[name], SMALLEST_EFFECT["C4"]
        parts += [greater(f"{label} − AT-FC, {pgd.upper()}", _difference(results, "at_fc", name, pgd), effect=effect),
                  at_most(f"{label} − AT-FC, AA (AA points)", _difference(results, "at_fc", name, "aa", "subset"),
                          margin),
                  greater(f"{label} − AT-FC, clean", _difference(results, "at_fc", name, "clean"), effect=effect,
                          primary=False)]
    return Verdict("C4", PAPER["C4"], tuple(parts), _gates(results, "at_fc"), compares="model")


def c5(results: dict) -> Verdict:
    pgd, margin = role(results, "pgd"), results["config"]["equivalence_margin"]
    grid = results["kappa"]["grid"]
    parts = []
    for k in (grid[0], grid[-1]):
        if k == 0:
            parts.append(untestable(f"κ on {'the small' if k == grid[0] else 'the large'} side", "no κ there in the grid"))
            continue
        parts.append(greater(f"{pgd.upper()} at κ = {k:g} − κ = 0", _kappa_difference(results, k, pgd, "all"),
                             effect=SMALLEST_EFFECT["C5"]))
        parts.append(within(f"AA at κ = {k:g} − κ = 0 (AA points)", _kappa_difference(results, k, "aa", "subset"), margin))
        parts.append(within(f"clean at κ = {k:g} − κ = 0", _kappa_difference(results, k, "clean", "all"), margin))
    return Verdict("C5", PAPER["C5"], tuple(parts), _gates(results, "at_fc"), compares="model")


def c6(results: dict) -> Verdict:
    if "at_cos" not in results["evaluations"]:
        return Verdict("C6", PAPER["C6"], (untestable("AT-Cos", "not trained in this run"),))
    part = less("clean − AA gap, AT-Cos − AT-FC (AA points)", _gap_difference(results, "at_fc", "at_cos"),
                effect=SMALLEST_EFFECT["C6"])
    # A smaller gap also follows from a lower clean accuracy alone (as in the paper's own Table 1): the AA
    # difference is shown beside it.
    aa = greater("AA, AT-Cos − AT-FC (AA points)", _difference(results, "at_fc", "at_cos", "aa", "subset"),
                 effect=SMALLEST_EFFECT["C6"], primary=False)
    return Verdict("C6", PAPER["C6"], (part, aa), _gates(results, "at_fc", "at_cos"))


def _gap_difference(results: dict, a: str, b: str) -> Estimate:
    ea, eb = evaluation(results, a), evaluation(results, b)
    outcomes = [ea.correct(x, "subset") for x in ("clean", "aa")] + [eb.correct(x, "subset") for x in ("clean", "aa")]
    return evaluation_statistic(ea, outcomes, lambda ca, aa, cb, ab: (mean(cb) - mean(ab)) - (mean(ca) - mean(aa)),
                                points="subset", **bootstrap_args(results))


def feature_ratio_difference(ratio: np.ndarray, fooled: np.ndarray, robust: np.ndarray, y: np.ndarray, *,
                             n_boot: int, seed: int) -> Estimate:
    """Mean feature-norm ratio of fooled points − of still-robust points, stratified bootstrap over points."""
    def statistic(idx: np.ndarray) -> np.ndarray:
        f, r = fooled[idx], robust[idx]
        with np.errstate(divide="ignore", invalid="ignore"):
            return (ratio[idx] * f).sum(-1) / f.sum(-1) - (ratio[idx] * r).sum(-1) / r.sum(-1)

    value = float(statistic(np.arange(len(y))[None])[0])
    return Estimate(value, tuple(interval(statistic(stratified_bootstrap(y, n_boot, seed)))), int(len(y)))


def c7(results: dict) -> Verdict:
    norms = permutation_spearman(results["weight_norms"], results["counts"], seed=results["config"]["seed"])
    f = results["feature_norms"]
    y = evaluation(results, "at_fc").labels()
    fooled, robust = (decode_labels(f[k]).astype(bool) for k in ("fooled", "robust"))
    diff = feature_ratio_difference(np.asarray(f["ratio"]), fooled, robust, y, **bootstrap_args(results))
    parts = (exact_test("ρ(‖W_c‖, n_c), permutation test", norms["rho"], norms["p_greater"], norms["rho"] > 0,
                        rule="ρ > 0"),
             greater("feature-norm ratio, fooled − still-robust points", diff, effect=SMALLEST_EFFECT["C7"], scale=1,
                     digits=3))
    return Verdict("C7", PAPER["C7"], parts, _gates(results, "at_fc"), compares="model")


def c8(results: dict) -> Verdict:
    names = [n for n in ("robal_n", "robal_r") if n in results["evaluations"]]
    if not names:
        return Verdict("C8", PAPER["C8"], (untestable("RoBal", "not trained in this run"),))
    n = results["attack_roles"]
    attacks = [("clean", "all"), *((n[k], "all") for k in ("fgsm", "pgd", "mim", "cw") if n[k]), ("aa", "subset")]
    parts = tuple(greater(f"{MODEL_LABELS[name]} − AT-FC, {a.upper()}{' (AA points)' if pts == 'subset' else ''}",
                          _difference(results, "at_fc", name, a, pts), effect=SMALLEST_EFFECT["C8"])
                  for name in names for a, pts in attacks)
    return Verdict("C8", PAPER["C8"], parts, _gates(results, "at_fc", *names))


def aa_peak(ends: list[Evaluation], *, n_boot: int, seed: int) -> Estimate:
    """max over the interior values of AA − max of AA at the two ends (AA points, paired over points): > 0 when
    AA peaks mid-range. `ends` are the ablation models' end-of-training evaluations, in order of τ_b − τ_m."""
    outcomes = [e.correct("aa", "subset") for e in ends]

    def peak(*aa: np.ndarray) -> np.ndarray:
        means = [mean(a) for a in aa]
        return np.max(means[1:-1], axis=0) - np.maximum(means[0], means[-1])

    return evaluation_statistic(ends[0], outcomes, peak, points="subset", n_boot=n_boot, seed=seed)


def c9(results: dict) -> Verdict:
    rows = results["ablation"]["rows"]
    if len(rows) < 2:
        return Verdict("C9", PAPER["C9"], (untestable("ablation", "fewer than two ablation models"),))
    ends = [Evaluation.from_json(r["end"]) for r in rows]
    values = [f"{r['tau_b_minus_tau_m']:g}" for r in rows]
    clean = greater(f"clean at the end of training, τ_b − τ_m = {values[-1]} − {values[0]}",
                    compare_models(ends[0], ends[-1], "clean", mean, **bootstrap_args(results)), effect=SMALLEST_EFFECT["C9"])
    peak = (untestable("AA peaks mid-range", f"needs at least three values of τ_b − τ_m (this run has {len(rows)})")
            if len(rows) < 3 else
            greater(f"AA at the end of training, best of τ_b − τ_m = {', '.join(values[1:-1])} − best of "
                    f"{values[0]} and {values[-1]} (AA points)", aa_peak(ends, **bootstrap_args(results)),
                    effect=SMALLEST_EFFECT["C9"]))
    gates = [g for v, e in zip(values, ends) for g in model_gates(f"RoBal τ_b − τ_m = {v}", e, "aa", "subset")]
    return Verdict("C9", PAPER["C9"], (clean, peak), tuple(gates))


def c10_c12(results: dict) -> Verdict:
    return Verdict("C10–C12", PAPER["C10–C12"],
                   (untestable("this pipeline", "runs one imbalance ratio, one loss placement and one step count; "
                                                "rerun with other `imbalance` / `train_steps`"),))


RULES = (c1, c2, c3, c4, c5, c6, c7, c8, c9, c10_c12)


def verdicts(results: dict) -> list[Verdict]:
    return [rule(results) for rule in RULES]


def key_numbers(results: dict) -> dict[str, float]:
    """Headline accuracies of every evaluation and every verdict's estimates (see classwise.claims)."""
    n, out = results["attack_roles"], {}
    for name, record in results["evaluations"].items():
        rep, sub = record["reports"]["all"]["attacks"], record["reports"]["subset"]["attacks"]
        out[f"{name}.clean"] = rep["clean"]["overall"]
        out[f"{name}.{n['pgd']}"] = rep[n["pgd"]]["overall"]
        out[f"{name}.aa"] = sub["aa"]["overall"]
    for v in verdicts(results):
        for i, part in enumerate(v.parts):
            if part.estimate is not None:
                out[f"{v.claim}.{i}"] = part.estimate.value
    return out
