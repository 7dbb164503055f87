"""The class-wise chapter's tables and summaries, computed from a results dict (the notebook only calls these)."""
from __future__ import annotations

import numpy as np
import pandas as pd

from ...evaluation import attack_gains, attack_mcnemar, compare_attacks, rank_agreement, spearman, tpgd_name
from ...evaluation.paired import gap, sd
from ...tables import pct, spread_table, untestable_notes, with_ci
from ...verdicts import CLASS_FLOOR
from ..common import attack_entry, bootstrap_args, evaluation, report
from ..stability import verdict_readers
from ..roles import role
from . import claims
from .methods import MODEL_LABELS


def attack_columns(results: dict, *, clean: bool = False, aa: bool = False) -> tuple[list[str], list[str]]:
    """The attacks of the PGD-AT evaluation (names, display labels)."""
    n = results["attack_roles"]
    columns = {"clean": "clean"} if clean else {}
    columns.update({n["fgsm"]: "FGSM", n["pgd"]: n["pgd"].upper(), n["cw"]: n["cw"].upper(),
                    n["tpgd"]: f"T-PGD (T={results['selection']['t_picked']:g})"})
    if aa:
        columns["aa"] = "AA"
    return list(columns), list(columns.values())


def setup_table(results: dict, track: str = "cifar") -> pd.DataFrame:
    """The models of one track (`cifar` or `mnist`): architecture, training size and epochs, headline accuracies."""
    cfg = results["config"]
    view, prefix, arch, per_class = (
        (claims.mnist_view(results), "mnist_", f"{cfg['mnist_model']} (width {cfg['mnist_width']})",
         cfg["mnist_train_per_class"]) if track == "mnist" else
        (results, "", f"{cfg['model']} (width {cfg['width']})", cfg["train_per_class"]))
    names, rows = view["attack_roles"], []
    for model in ("pgd_at", "trades", "class_weighted"):
        meta = results["models"][prefix + model]
        rows.append({"model": MODEL_LABELS[model], "architecture": arch,
                     "training images": per_class * len(view["classes"]) if per_class else "all but validation",
                     "epochs": len(meta["history"]),
                     "clean %": pct(attack_entry(view, model, "clean")["overall"]),
                     f"{names['pgd'].upper()} %": pct(attack_entry(view, model, names["pgd"])["overall"]),
                     "AA % (AA points)": pct(attack_entry(view, model, "aa", "subset")["overall"]),
                     "mean logit margin": round(view["diagnostics"]["mean_logit_margin"][model], 2)})
    return pd.DataFrame(rows).set_index("model")


def points_summary(results: dict) -> str:
    e = results["evaluations"]["pgd_at"]["points"]
    return (f"{e['all']} test points ({e['all'] // len(results['classes'])} per class); AutoAttack on {e['subset']} "
            f"of them ({e['subset'] // len(results['classes'])} per class), and every number next to an AA number "
            "comes from those same points.")


def disparity_summary(results: dict) -> str:
    names, classes = results["attack_roles"], results["classes"]
    lines = []
    for model in ("pgd_at", "trades"):
        clean, rob = attack_entry(results, model, "clean"), attack_entry(results, model, names["pgd"])
        lines.append(
            f"* **{MODEL_LABELS[model]}**: under {names['pgd'].upper()} the classes range from "
            f"{pct(rob['worst'])}% ({classes[rob['worst_class']]}) to {pct(rob['best'])}% "
            f"({classes[rob['best_class']]}), a gap of {with_ci(rob['gap'], rob['ci']['gap'])} points; the clean "
            f"gap is {with_ci(clean['gap'], clean['ci']['gap'])}. The relative spread (NSD) is "
            f"{with_ci(rob['nsd'], rob['ci']['nsd'], scale=1, digits=3)} under attack against "
            f"{with_ci(clean['nsd'], clean['ci']['nsd'], scale=1, digits=3)} clean: {_spread_direction(clean, rob)}")
    return "\n".join(lines)


def _spread_direction(clean: dict, robust: dict) -> str:
    """In words, which spread grows under attack: the gap in points, the NSD (relative to the mean), or both."""
    gap, nsd = robust["gap"] > clean["gap"], robust["nsd"] > clean["nsd"]
    if gap and nsd:
        return "the classes are further apart under attack, in points and relative to the mean."
    if nsd:
        return ("in points the classes are closer under attack than clean; they are further apart only relative to "
                "the lower mean.")
    if gap:
        return "the gap in points widens under attack, but less than the mean falls."
    return "the classes are no further apart under attack than clean, in points or relative to the mean."


def spreads(results: dict) -> pd.DataFrame:
    names = results["attack_roles"]
    return spread_table({f"{MODEL_LABELS[m]} — {label}": (report(results, m), key)
                         for m in ("pgd_at", "trades")
                         for label, key in (("clean", "clean"), (names["pgd"].upper(), names["pgd"]))})


def defence_agreement_table(results: dict) -> pd.DataFrame:
    """C3: Spearman rho of per-class robust accuracy between PGD-AT and each other defence, paired."""
    boot = bootstrap_args(results)
    base = evaluation(results, "pgd_at")
    rows = []
    for other in ("trades", "class_weighted"):
        e = evaluation(results, other)
        for attack in (a for a in e.names() if a != "clean" and a in base.names()):
            rho = rank_agreement(base, attack, e, attack, **boot)
            rows.append({"defences": f"PGD-AT vs {MODEL_LABELS[other]}", "attack": attack.upper(),
                         "Spearman ρ [95% CI]": with_ci(rho.value, rho.ci, scale=1, digits=2)})
    return pd.DataFrame(rows).set_index(["defences", "attack"])


def gains_table(results: dict) -> pd.DataFrame:
    """C4: per-class drops (points and % of the weaker attack's robust points) along the attack chain."""
    n = results["attack_roles"]
    chains = [(f"FGSM→{n['pgd'].upper()}", n["fgsm"], n["pgd"], "all")]
    chains += [(f"{n['pgd'].upper()}→{k.upper()}", n["pgd"], k, "all") for k in n["long"]]
    chains += [(f"{n['pgd'].upper()}→{n['cw'].upper()}", n["pgd"], n["cw"], "all"),
               ("FGSM→AA (AA points)", n["fgsm"], "aa", "subset")]
    columns = {}
    for label, weak, strong, points in chains:
        rep = report(results, "pgd_at", points)["attacks"]
        g = attack_gains(rep[weak]["per_class"], rep[strong]["per_class"])
        columns[(label, "drop (pt)")] = [f"{100 * v:.1f}" for v in g["absolute"]]
        columns[(label, "drop (% of weak)")] = [pct(v, 0) for v in g["relative"]]
    return pd.DataFrame(columns, index=results["classes"])


def tpgd_table(results: dict) -> pd.DataFrame:
    """C5/C6: each temperature against PGD from the same starts (McNemar and paired bootstrap)."""
    n, boot = results["attack_roles"], bootstrap_args(results)
    e = evaluation(results, "pgd_at")
    base = e.correct(n["pgd"]).mean()
    rows = []
    for t, val_acc in results["selection"]["tpgd_val_accuracy"].items():
        attack = tpgd_name(float(t), results["config"]["eval_steps"])
        m = attack_mcnemar(e, n["pgd"], attack)
        d_sd, d_gap = (compare_attacks(e, n["pgd"], attack, s, **boot) for s in (sd, gap))
        rows.append({"T": t, "robust % (test)": pct(e.correct(attack).mean()), "robust % (validation)": pct(val_acc),
                     "Δ vs PGD (pt)": f"{100 * (e.correct(attack).mean() - base):+.1f}",
                     "robust only under PGD / only under T-PGD": f"{m['only_a_correct']} / {m['only_b_correct']}",
                     "McNemar p": f"{m['p_value']:.3g}", "Δ SD (pt) [95% CI]": with_ci(d_sd.value, d_sd.ci),
                     "Δ gap (pt) [95% CI]": with_ci(d_gap.value, d_gap.ci),
                     "zero-gradient points %": pct(results["diagnostics"]["zero_gradient_fraction"][t]),
                     "picked on validation": "✓" if float(t) == results["selection"]["t_picked"] else ""})
    tpgds = [a for a in e.names() if a.startswith("tpgd")]
    ensemble = e.worst_case(tpgds).mean()
    rows.append({"T": "all T (per-point worst case)", "robust % (test)": pct(ensemble),
                 "Δ vs PGD (pt)": f"{100 * (ensemble - base):+.1f}"})
    cw = e.correct(n["cw"]).mean()
    rows.append({"T": f"reference: {n['cw'].upper()}", "robust % (test)": pct(cw), "Δ vs PGD (pt)": f"{100 * (cw - base):+.1f}"})
    return pd.DataFrame(rows).set_index("T").fillna("")


def tradeoff_points(results: dict) -> pd.DataFrame:
    """Mean and worst-class PGD accuracy of the bias sweep, the class-weighted model and TRADES (test)."""
    pgd = role(results, "pgd")
    rows = [{"method": "PGD-AT + logit bias b (inference)", "mean": r["test_mean"], "worst": r["test_worst"],
             "b": r["bias"]} for r in results["bias"]["rows"]]
    for model in ("class_weighted", "trades"):
        e = attack_entry(results, model, pgd)
        label = MODEL_LABELS[model] + (f" (w={results['config']['w_worst']:g})" if model == "class_weighted" else "")
        rows.append({"method": label, "mean": e["mean"], "worst": e["worst"], "b": np.nan})
    return pd.DataFrame(rows)


def tweaks_table(results: dict) -> pd.DataFrame:
    pgd, classes = role(results, "pgd"), results["classes"]
    target = results["selection"]["worst_class"]
    labels = {"pgd_at": "PGD-AT (baseline)",
              "class_weighted": f"class-weighted PGD-AT (w={results['config']['w_worst']:g})",
              "pgd_at_bias": f"PGD-AT + logit bias b={results['bias']['picked']:g}"}
    rows = []
    for name, label in labels.items():
        rep, aa = report(results, name)["attacks"], report(results, name, "subset")["attacks"]
        rows.append({"": label, "clean %": pct(rep["clean"]["overall"]),
                     f"{pgd.upper()} mean %": with_ci(rep[pgd]["mean"], rep[pgd]["ci"]["mean"]),
                     f"{pgd.upper()} {classes[target]} %": pct(rep[pgd]["per_class"][target]),
                     f"{pgd.upper()} gap (pt)": pct(rep[pgd]["gap"]),
                     "AA mean % (AA points)": pct(aa["aa"]["mean"]),
                     f"AA {classes[target]} % (AA points)": pct(aa["aa"]["per_class"][target]),
                     "AA gap (pt, AA points)": pct(aa["aa"]["gap"])})
    return pd.DataFrame(rows).set_index("")


def weight_norm_table(results: dict) -> pd.DataFrame:
    pgd = role(results, "pgd")
    return pd.DataFrame({"‖w_c‖": np.round(results["diagnostics"]["weight_norms"], 3),
                         f"{pgd.upper()} robust %": np.round(100 * np.asarray(attack_entry(results, "pgd_at", pgd)["per_class"]), 1)},
                        index=results["classes"])


def bias_choice(results: dict) -> str:
    """How C7b's operating point b was chosen, in words: by the tolerance rule, or by its fallback (the smallest
    b > 0) when no b keeps the validation mean within the tolerance."""
    rows, tolerance = results["bias"]["rows"], results["config"]["bias_tolerance"]
    base = next(row["val_mean"] for row in rows if row["bias"] == 0)
    within = [row["bias"] for row in rows if row["bias"] > 0 and row["val_mean"] >= base - tolerance]
    picked = results["bias"]["picked"]
    if within:
        return (f"b = {picked:g} raises the weakest class most on validation among the b that keep the validation "
                f"mean within {pct(tolerance)} points of b = 0 ({', '.join(f'{b:g}' for b in within)}).")
    mean = next(row["val_mean"] for row in rows if row["bias"] == picked)
    return (f"No b > 0 keeps the validation mean within {pct(tolerance)} points of b = 0 ({pct(base)}%), so the "
            f"rule falls back to the smallest b > 0: b = {picked:g}, whose validation mean is {pct(mean)}%. C7b then "
            "tests a tweak that costs mean accuracy.")


def _per_class(ev: dict, points: str) -> int:
    return ev["points"][points] // len(ev["reports"][points]["classes"])


def mnist_table(results: dict) -> pd.DataFrame:
    """PGD-AT's spreads on both tracks: clean, PGD and AA (with the AA points per class in each label)."""
    rows = {}
    for name, view in (("CIFAR-10", results), ("MNIST", claims.mnist_view(results))):
        pgd, ev = role(view, "pgd"), view["evaluations"]["pgd_at"]
        rows[f"{name} PGD-AT — clean"] = (report(view, "pgd_at"), "clean")
        rows[f"{name} PGD-AT — {pgd.upper()}"] = (report(view, "pgd_at"), pgd)
        rows[f"{name} PGD-AT — AA (AA points, {_per_class(ev, 'subset')} per class)"] = (report(view, "pgd_at", "subset"),
                                                                                        "aa")
    return spread_table(rows)


def mnist_summary(results: dict) -> str:
    """The MNIST contrast in words, from the numbers: the relative spread (NSD) and the spread in points, each
    against CIFAR-10's, and the AA rows' size."""
    view = claims.mnist_view(results)
    m_clean, m_rob = (attack_entry(view, "pgd_at", a) for a in ("clean", role(view, "pgd")))
    c_rob = attack_entry(results, "pgd_at", role(results, "pgd"))
    ratio = m_rob["sd"] / m_clean["sd"] if m_clean["sd"] > 0 else float("inf")
    return (f"On MNIST the robust NSD is {m_rob['nsd']:.3f}, {'smaller' if m_rob['nsd'] < c_rob['nsd'] else 'larger'} "
            f"than CIFAR-10's {c_rob['nsd']:.3f}; in points the MNIST classes are {ratio:.1f}× as spread under attack "
            f"as clean (class SD {pct(m_rob['sd'])} against {pct(m_clean['sd'])}). The AA rows rest on "
            f"{_per_class(view['evaluations']['pgd_at'], 'subset')} (MNIST) and "
            f"{_per_class(results['evaluations']['pgd_at'], 'subset')} (CIFAR-10) points per class: read their spreads "
            "with their intervals.")


decisions, verdicts = verdict_readers("classwise", claims.verdicts)


def scale_notes(results: dict) -> str:
    """What this run's scale is, and which claims it cannot test and why (from the verdicts' own gates)."""
    cfg, e = results["config"], results["evaluations"]["pgd_at"]["points"]
    train = f"{cfg['train_per_class']} training images per class" if cfg["train_per_class"] else "the full training set"
    lines = [f"**Scale of this run ({cfg['profile']} profile):** {cfg['model']} of width {cfg['width']}, {train}, "
             f"{cfg['epochs']} epochs of PGD-{cfg['train_steps']} training with batch {cfg['batch_size']}; "
             f"{cfg['val_per_class']} validation images per class; {e['all']} test points, AutoAttack on {e['subset']}."]
    if claims.has_mnist_track(results):
        m = results["mnist"]["evaluations"]["pgd_at"]["points"]
        lines.append(f"**MNIST track:** {cfg['mnist_model']} of width {cfg['mnist_width']}, {cfg['mnist_epochs']} epochs "
                     f"of PGD-{cfg['mnist_train_steps']} training at ε = {cfg['mnist_eps']:g}; {m['all']} test points, "
                     f"AutoAttack on {m['subset']}.")
    return "\n".join(lines) + "\n\n" + untestable_notes(decisions(results))


def tier_classes(runs: dict[str, dict], model: str = "pgd_at") -> pd.DataFrame:
    """One model class by class in several runs (e.g. the smoke and evidence tiers): clean and reference-PGD
    accuracy, the class's rank under PGD (1: the most robust), and whether its clean accuracy is below the class
    floor (CLASS_FLOOR x chance: a class the model does not recognise)."""
    columns = {}
    for name, results in runs.items():
        pgd, classes = role(results, "pgd"), results["classes"]
        clean, robust = (np.asarray(attack_entry(results, model, a)["per_class"]) for a in ("clean", pgd))
        columns[(name, "clean")] = [pct(v) for v in clean]
        columns[(name, pgd.upper())] = [pct(v) for v in robust]
        columns[(name, "rank")] = pd.Series(-robust).rank(method="min").astype(int).tolist()
        columns[(name, "below the class floor")] = ["yes" if c < CLASS_FLOOR / len(classes) else "" for c in clean]
    return pd.DataFrame(columns, index=pd.Index(classes, name="class"))


def tier_classes_text(table: pd.DataFrame) -> str:
    """The rank agreement of a `tier_classes` table's first two runs, and each run's classes below the floor."""
    (a, b), ranks = list(dict.fromkeys(table.columns.get_level_values(0)))[:2], {}
    for name in (a, b):
        ranks[name] = table[(name, "rank")].to_numpy(dtype=float)
    floor = "; ".join(f"{name}: {', '.join(table.index[table[(name, 'below the class floor')] == 'yes']) or 'none'}"
                      for name in (a, b))
    return (f"Spearman ρ between the class orders under PGD of {a} and {b}: {spearman(ranks[a], ranks[b]):.2f} "
            f"({len(table)} classes: a coarse measure). Classes below the class floor: {floor}.")
