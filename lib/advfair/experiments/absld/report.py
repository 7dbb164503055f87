"""The ABSLD chapter's tables, figures and summaries, computed from a results dict (the notebook only calls these)."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.ticker import MaxNLocator

from ...evaluation import Evaluation, compare_models
from ...evaluation.paired import mean, nsd, worst
from ...tables import pct, spread_table, untestable_notes, with_ci
from ...verdicts import CLASS_FLOOR, MODEL_FLOOR
from .. import common
from ..common import attack_entry, bootstrap_args, evaluation, report
from ..stability import verdict_readers
from ..roles import role
from . import claims
from .methods import MODEL_LABELS, TEACHER_FREE, absld_key

STATISTICS = {"avg": mean, "worst": worst, "NSD": nsd}
# Quoted from the spec (§6 "worst class on small per-class test sets", §7 evaluation): what a CPU run should use.
SPEC_TEST_PER_CLASS, SPEC_AA_POINTS = 200, 500


def attacks(results: dict, key: str) -> list[tuple[str, str, str]]:
    """(attack, points, label) of one evaluation, clean first, AutoAttack last (on the AA points)."""
    n, names = results["attack_roles"], results["evaluations"][key]["attacks"]
    labels = {"clean": "clean", n["fgsm"]: "FGSM", n["pgd"]: n["pgd"].upper(), n["cw"]: f"CW∞-{n['cw'][2:]}",
              "aa": "AA (AA points)"}
    return [(a, "subset" if a == "aa" else "all", labels[a]) for a in labels if a in names]


def students(results: dict) -> list[str]:
    """The distilled students of this run (RSLAD first), then any optional baselines."""
    return [k for k in results["evaluations"] if k != "teacher" and k not in TEACHER_FREE]


def _cell(entry: dict, stat: str) -> str:
    if stat == "NSD":
        return with_ci(entry["nsd"], entry["ci"]["nsd"], scale=1, digits=3)
    key = "mean" if stat == "avg" else "worst"
    return with_ci(entry[key], entry["ci"][key])


def setup_table(results: dict) -> pd.DataFrame:
    cfg, pgd, rows = results["config"], role(results, "pgd"), []
    for key, meta in results["models"].items():
        arch = (f"{cfg['teacher_model']} (width {cfg['teacher_width']})" if key == "teacher"
                else f"{cfg['model']} (width {cfg['width']})")
        rows.append({"model": MODEL_LABELS.get(key, key), "architecture": arch, "epochs": len(meta["history"]),
                     "weights of epoch": results["checkpoints"].get(key, len(meta["history"])),
                     "from the cache": "yes" if meta["from_cache"] else "no",
                     "clean %": pct(attack_entry(results, key, "clean")["overall"]),
                     f"{pgd.upper()} %": pct(attack_entry(results, key, pgd)["overall"]),
                     "AA % (AA points)": pct(attack_entry(results, key, "aa", "subset")["overall"])})
    return pd.DataFrame(rows).set_index("model")


def points_summary(results: dict) -> str:
    s, k = results["split_sizes"], len(results["classes"])
    return (f"{s['train']} training images ({s['train'] // k} per class) for the teacher and every student, "
            f"{s['val']} validation images held out from them, {s['test']} test points ({s['test'] // k} per class); "
            f"AutoAttack on {s['aa_points']} of them ({s['aa_points'] // k} per class), and every number beside an AA "
            "number is taken on those same points.")


def teacher_table(results: dict) -> pd.DataFrame:
    """The teacher's average, worst class and NSD under every attack (the analogue of the paper's Table 7)."""
    return spread_table({label: (report(results, "teacher", points), a)
                         for a, points, label in attacks(results, "teacher")})


def stats_table(results: dict, names: list[str]) -> pd.DataFrame:
    """avg / worst class / NSD [95% CI] of each model under each of its attacks."""
    rows = {}
    for key in names:
        row = {}
        for a, points, label in attacks(results, key):
            entry = attack_entry(results, key, a, points)
            for stat in STATISTICS:
                row[(label, stat)] = _cell(entry, stat)
        rows[MODEL_LABELS.get(key, key)] = row
    return pd.DataFrame.from_dict(rows, orient="index").fillna("")


def paired_table(results: dict, base: str, names: list[str]) -> pd.DataFrame:
    """Paired differences model − `base` of avg, worst class and NSD under each attack, with 95% intervals."""
    boot = bootstrap_args(results)
    a, rows = evaluation(results, base), {}
    for key in names:
        b, row = evaluation(results, key), {}
        for attack, points, label in attacks(results, key):
            for stat, fn in STATISTICS.items():
                est = compare_models(a, b, attack, fn, points=points, **boot)
                scale = {"scale": 1, "digits": 3} if stat == "NSD" else {}
                row[(label, f"Δ {stat}")] = with_ci(est.value, est.ci, **scale)
        rows[f"{MODEL_LABELS.get(key, key)} − {MODEL_LABELS.get(base, base)}"] = row
    return pd.DataFrame.from_dict(rows, orient="index").fillna("")


def last_epoch_table(results: dict) -> pd.DataFrame | None:
    """With a checkpoint rule other than "last": each student of `results["last_epoch"]` at its selected and at its
    last epoch (clean; avg / worst / NSD under PGD and under AA on the AA points; 95% intervals), and the paired
    difference last − selected on the same points. None when the run evaluated the last epoch only."""
    if "last_epoch" not in results:
        return None
    pgd, boot = role(results, "pgd"), bootstrap_args(results)
    columns = (("clean", "all", "clean", ("avg",)), (pgd, "all", pgd.upper(), tuple(STATISTICS)),
               ("aa", "subset", "AA (AA points)", tuple(STATISTICS)))
    rows = {}
    for key, record in results["last_epoch"].items():
        name, epochs = MODEL_LABELS.get(key, key), len(results["models"][key]["history"])
        selected, last = evaluation(results, key), Evaluation.from_json(record)
        for which, entries in ((f"selected epoch {results['checkpoints'][key]}", results["evaluations"][key]),
                               (f"last epoch {epochs}", record)):
            rows[f"{name}, {which}"] = {(label, stat): _cell(entries["reports"][points]["attacks"][attack], stat)
                                        for attack, points, label, stats in columns for stat in stats}
        delta = {}
        for attack, points, label, stats in columns:
            for stat in stats:
                est = compare_models(selected, last, attack, STATISTICS[stat], points=points, **boot)
                delta[(label, stat)] = with_ci(est.value, est.ci, **({"scale": 1, "digits": 3} if stat == "NSD" else {}))
        rows[f"{name}: last − selected (paired)"] = delta
    return pd.DataFrame.from_dict(rows, orient="index")


def per_class_aa_table(results: dict) -> pd.DataFrame:
    """AutoAttack accuracy (%) per class of the teacher and every student, on the AA points."""
    names = ["teacher", *students(results)]
    return pd.DataFrame({MODEL_LABELS.get(k, k): [pct(v) for v in attack_entry(results, k, "aa", "subset")["per_class"]]
                         for k in names}, index=results["classes"])


def tradeoff_figure(results: dict) -> plt.Figure:
    """Worst-class against average robust accuracy of every model, under PGD (all points) and AA (AA points)."""
    pgd = role(results, "pgd")
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    names = ["teacher", *students(results), *(k for k in TEACHER_FREE if k in results["evaluations"])]
    palette = sns.color_palette("deep", len(names))
    for ax, (attack, points, title) in zip(axes, ((pgd, "all", pgd.upper()), ("aa", "subset", "AA (AA points)"))):
        for color, key in zip(palette, names):
            e = attack_entry(results, key, attack, points)
            ax.scatter(100 * e["mean"], 100 * e["worst"], color=color, marker="s" if key == "teacher" else "o", s=50,
                       label=MODEL_LABELS.get(key, key))
        ax.set_xlabel("average robust accuracy (%)")
        ax.set_ylabel("worst-class robust accuracy (%)")
        ax.set_title(title)
    axes[1].legend(fontsize="x-small", loc="best")
    fig.tight_layout()
    return fig


def two_model_report(results: dict, a: str, b: str, attack: str, points: str = "all") -> dict:
    """A report-shaped dict whose two "attacks" are models a and b under `attack` (for `plots.per_class_bars`)."""
    return {"classes": results["classes"],
            "attacks": {MODEL_LABELS[k]: attack_entry(results, k, attack, points) for k in (a, b)}}


def per_class_table(results: dict) -> pd.DataFrame:
    """C5: per-class PGD and AA accuracy of RSLAD and ABSLD, and ABSLD's gain; the paper's hard classes marked."""
    main, pgd = claims.main_key(results), role(results, "pgd")
    hard = results["selection"]["paper_hard"] or []
    columns = {}
    for attack, points, label in ((pgd, "all", pgd.upper()), ("aa", "subset", "AA (AA points)")):
        base = np.asarray(attack_entry(results, "rslad", attack, points)["per_class"])
        ours = np.asarray(attack_entry(results, main, attack, points)["per_class"])
        columns[(label, "RSLAD %")] = [pct(v) for v in base]
        columns[(label, f"{MODEL_LABELS[main]} %")] = [pct(v) for v in ours]
        columns[(label, "gain (pt)")] = [f"{100 * v:+.1f}" for v in ours - base]
    index = [f"{c} (paper: hard)" if i in hard else c for i, c in enumerate(results["classes"])]
    return pd.DataFrame(columns, index=index)


def temperature_figure(results: dict, key: str) -> plt.Figure | None:
    """C6: τ^adv, τ^nat and the risks R^adv, R^nat that drive them, per class over the epochs (hard classes solid)."""
    t = claims.trajectories(results, key)
    if t is None:
        return None
    epochs = np.arange(1, len(t["tau_adv"]) + 1)
    hard, classes = results["selection"]["hard"], results["classes"]
    fig, axes = plt.subplots(2, 2, figsize=(11, 6.5), sharex=True)
    palette = sns.color_palette("tab10", len(classes))
    for ax, name, title in zip(axes.flat, ("tau_adv", "tau_nat", "risk_adv", "risk_nat"),
                               ("τ^adv (after the epoch's update)", "τ^nat", "R^adv: mean CE on x' per class",
                                "R^nat: mean CE on x per class")):
        for c, label in enumerate(classes):
            ax.plot(epochs, t[name][:, c], color=palette[c], marker="o", ms=3,
                    ls="-" if c in hard else ":", label=label + (" (hard)" if c in hard else ""))
        ax.set_title(title)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, fontsize="small", loc="center left", bbox_to_anchor=(1.0, 0.5))
    fig.suptitle(f"{MODEL_LABELS[key]}: temperatures and the risks that move them")
    fig.tight_layout()
    return fig


def temperature_table(results: dict) -> pd.DataFrame:
    """The final temperatures per class of every ABSLD variant (the effective temperature of code_product too)."""
    columns = {}
    for key in (absld_key("separate"), absld_key("code_product"), "absld_manual"):
        t = claims.trajectories(results, key)
        if t is None:
            continue
        columns[(MODEL_LABELS[key], "τ^adv")] = np.round(t["tau_adv"][-1], 3)
        columns[(MODEL_LABELS[key], "τ^nat")] = np.round(t["tau_nat"][-1], 3)
        if key == absld_key("code_product"):
            columns[(MODEL_LABELS[key], "τ^adv·τ^nat (used)")] = np.round(t["tau_adv"][-1] * t["tau_nat"][-1], 3)
    hard = results["selection"]["hard"]
    index = [f"{c} (validation-hard)" if i in hard else c for i, c in enumerate(results["classes"])]
    return pd.DataFrame(columns, index=index)


def temperature_reading(results: dict) -> str:
    """C6 read off this run: the validation-hard classes against the mean final τ^adv; the paper's hard set."""
    main, classes, hard = claims.main_key(results), results["classes"], results["selection"]["hard"]
    if (t := claims.trajectories(results, main)) is None:
        return "No ABSLD student with temperatures is in this run."
    final = np.asarray(t["tau_adv"][-1], dtype=float)
    side = {low: ", ".join(f"{classes[c]} ({final[c]:.2f})" for c in hard if (final[c] < final.mean()) == low) or "none"
            for low in (True, False)}
    text = (f"{MODEL_LABELS[main]}, final τ^adv (mean {final.mean():.2f} over the classes): validation-hard classes "
            f"below the mean: {side[True]}; at or above it: {side[False]}.")
    if (paper := results["selection"].get("paper_hard")) is not None and set(paper) != set(hard):
        only = [", ".join(classes[c] for c in a if c not in b) or "none" for a, b in ((hard, paper), (paper, hard))]
        text += (f" The validation-hard set differs from the paper's hard classes (C5's): {only[0]} only in this "
                 f"run's, {only[1]} only in the paper's.")
    return text


def absent_note(results: dict, *keys: str) -> str | None:
    """What a section cannot show: its models not trained in this run, and why (None: every one was)."""
    return common.absent_note(results, keys, claims.label, claims.why_absent)


def modes_table(results: dict) -> pd.DataFrame:
    """C7: separate vs code_product: their range of effective temperatures and avg / worst / NSD."""
    table = stats_table(results, [absld_key("separate"), absld_key("code_product")])
    for key in (absld_key("separate"), absld_key("code_product")):
        eff = claims.effective_temperatures(results, key)
        table.loc[MODEL_LABELS[key], ("temperatures", "effective range")] = (
            "–" if eff is None else f"{eff.min():.2f} – {eff.max():.2f}")
    return table


decisions, verdicts = verdict_readers("absld", claims.verdicts)


def critiques(results: dict) -> str:
    """The reviewers' two critiques, each answered by this run's measurements where it has them."""
    boot = bootstrap_args(results)
    pgd, main = role(results, "pgd"), claims.main_key(results)
    lines = []
    if "fair_rslad" in results["evaluations"]:
        a, b = evaluation(results, "fair_rslad"), evaluation(results, main)
        w = compare_models(a, b, pgd, worst, **boot)
        s = compare_models(a, b, pgd, nsd, **boot)
        lines.append(f"* **\"It looks like class re-weighting.\"** Against the sample-based counterpart (RSLAD with "
                     f"Fair-ARD-style class weights, the same teacher and schedule), {MODEL_LABELS[main]} changes the "
                     f"worst class under {pgd.upper()} by {with_ci(w.value, w.ci)} points and the NSD by "
                     f"{with_ci(s.value, s.ci, scale=1, digits=3)} (paired, {MODEL_LABELS[main]} − re-weighted).")
    else:
        lines.append("* **\"It looks like class re-weighting.\"** The re-weighted RSLAD (Fair-ARD style) is not in this "
                     f"run: {claims.why_absent(results, 'fair_rslad')}; the smoke tier (`profile=\"cpu\"`) trains it "
                     "at its defaults.")
    c2 = next(v for v in decisions(results) if v.claim == "C2")  # the verdict the table shows (pooled over seeds)
    lines.append(f"* **\"Worst-class robustness rises while average robustness falls.\"** The average half is C2's: "
                 f"{c2.evidence()} — verdict: {c2.text()}. The worst-class half is C1's (the verdict table above).")
    return "\n".join(lines)


def scale_notes(results: dict) -> str:
    """What this run's scale is, and which claims it cannot test and why (from the verdicts' own gates)."""
    cfg, s = results["config"], results["split_sizes"]
    t = results["models"]["teacher"]
    lines = [f"**Scale of this run ({cfg['profile']} profile):** teacher {cfg['teacher_model']} of width "
             f"{cfg['teacher_width']} ({cfg['teacher_objective']}, {len(t['history'])} epochs"
             f"{', from the model cache' if t['from_cache'] else ''}); students {cfg['model']} of width "
             f"{cfg['width']}, "
             f"{cfg['epochs']} epochs of PGD-{cfg['train_steps']} distillation on {s['train']} training images, "
             f"{_decays(results)}; "
             f"η_τ = {cfg['eta_tau']:g}, KL × {cfg['kl_scale']:g}; checkpoint: "
             f"{'the last epoch' if cfg['checkpoint'] == 'last' else 'best avg + worst PGD on validation'}; "
             f"{s['test']} test points, AutoAttack on {s['aa_points']}."]
    return "\n".join(lines) + "\n\n" + untestable_notes(decisions(results))


def _decays(results: dict) -> str:
    """The two decays as they act: the lr from its milestones, η_τ from the updates ending the decay epochs."""
    cfg, (lr, eta) = results["config"], (", ".join(map(str, results["settings"][k])) or "none"
                                         for k in ("lr_milestones", "decay_epochs"))
    return (f"lr × {cfg.get('lr_decay', cfg['eta_decay']):g} from epochs {lr}, η_τ × {cfg['eta_decay']:g} from the "
            f"temperature updates ending epochs {eta}")


def teacher_sentence(results: dict) -> str:
    """What the teacher's test evaluation says of its quality: its clean accuracy against the degeneracy floor and
    the classes it does not recognise (clean accuracy below chance), from the numbers of this run."""
    entry, classes = attack_entry(results, "teacher", "clean"), results["classes"]
    k = len(classes)
    floor, chance = min(MODEL_FLOOR / k, (1 + 1 / k) / 2), CLASS_FLOOR / k
    below = [f"{classes[c]} ({pct(a)} %)" for c, a in enumerate(entry["per_class"]) if a < chance]
    quality = "below" if entry["overall"] < floor else "above"
    return (f"The teacher's clean accuracy on the test points is {pct(entry['overall'])} % ({quality} the degeneracy "
            f"floor of {pct(floor, 0)} %, {floor * k:g}× chance); "
            + (f"its classes below chance ({pct(chance, 0)} %) clean accuracy: {', '.join(below)}." if below else
               f"none of its classes is below chance ({pct(chance, 0)} %) clean accuracy."))


def scale_deviations(results: dict) -> str:
    """The deviation rows that depend on this run's scale (a Markdown table with the deviations table's columns),
    from the config and the split sizes, and the teacher's sentence."""
    cfg, s, k = results["config"], results["split_sizes"], len(results["classes"])
    per_class, aa = s["test"] // k, s["aa_points"]
    short = per_class < SPEC_TEST_PER_CLASS or aa < SPEC_AA_POINTS
    rows = [
        ("model, data", "—", f"students {cfg['model']} (width {cfg['width']}), teacher {cfg['teacher_model']} (width "
         f"{cfg['teacher_width']}), {s['train']} training images ({s['train'] // k} per class)",
         f"the {cfg['profile']} profile's scale"),
        ("test points and AutoAttack", f"the spec's CPU plan: ≥ {SPEC_TEST_PER_CLASS} test images per class, AutoAttack "
         f"on {SPEC_AA_POINTS} points", f"{per_class} test images per class ({s['test']} points), AutoAttack "
         f"({cfg['aa_version']}) on {aa // k} per class ({aa} points)",
         "the CPU budget of the chapter: the worst class and its interval are coarser" if short else
         "meets the spec's plan"),
    ]
    table = ["| item | paper / spec | this run | why |", "|---|---|---|---|",
             *(f"| {' | '.join(row)} |" for row in rows)]
    return "\n".join([*table, "", teacher_sentence(results)])
