"""The AALP chapter's tables and summaries, computed from a results dict (the notebook only calls these).
Every label of a reconstructed model says "AALP-style reconstruction" (`methods.RECONSTRUCTED`)."""
from __future__ import annotations

import numpy as np
import pandas as pd

from ...evaluation.paired import mean_estimate
from ...evaluation import evaluation_statistic, same_points
from ...evaluation.paired import gap, mean, per_class_accuracy, sd, worst
from ...evaluation.paired import matched_difference
from ...tables import pct, untestable_notes, with_ci
from ...verdicts import combine
from ..common import bootstrap_args, evaluation
from ..stability import verdict_readers
from . import claims
from .claims import ALP_README, THIRD_PARTY, features_difference, label, mass_key, worst_case
from .methods import ALP_FAMILY, RECONSTRUCTED

TAG = "AALP-style reconstruction"
SPEC_CPU_EVAL = ("2k test images; PGD-100 with 5 restarts; CW-50; AA subset on 500 points; "
                 "ε-curve 0.1, 0.2, 0.3")  # quoted from the spec, §7
SPEC_CPU_TRAIN = "10k training images (1k per class), PGD-10, Adam, 3–4 epochs"  # quoted from the spec, §7


def model_label(results: dict, key: str) -> str:
    return f"{label(results, key)} [{TAG}]" if key in RECONSTRUCTED else label(results, key)


def switches_markdown(results: dict) -> str:
    """The reconstruction switches this run used, one bullet each."""
    return "\n".join(f"* `{k}` = `{v!r}`" for k, v in results["switches"].items())


def _acc(e, attack: str, points: str = "all") -> float:
    return float(e.correct(attack, points).mean())


def setup_table(results: dict) -> pd.DataFrame:
    n, cfg = results["attack_roles"], results["config"]
    rows = []
    for key, meta in results["models"].items():
        e = evaluation(results, key)
        rows.append({"model": model_label(results, key), "epochs": len(meta["history"]),
                     "λ": cfg["lam"] if key in ALP_FAMILY else (0.0 if key == "mpgd" else "–"),
                     "Guided Dropout": "on" if key in ("aalp", "gd_only") else "off",
                     "weights": cfg["weight_rule"] if key in ("aalp", "weights_only") else "none",
                     "clean %": pct(_acc(e, "clean")), f"{n['pgd'].upper()} %": pct(_acc(e, n["pgd"])),
                     "worst case % (check points)": pct(float(worst_case(results, e).mean())),
                     "train s (when trained)": round(meta["seconds"]["train"], 1)})
    return pd.DataFrame(rows).set_index("model")


def contribution_table(results: dict) -> pd.DataFrame:
    """C1/C5: mean concentration statistics (95 % CI) per model; paired difference in features-to-mass vs standard."""
    c, y = results["contributions"], evaluation(results, "standard").labels()
    m, rows = mass_key(results), []
    for key, entry in c["models"].items():
        pp = {k: np.array([np.nan if v is None else v for v in vals], dtype=float) for k, vals in entry["per_point"].items()}
        row = {"model": model_label(results, key)}
        for stat in [f"top{t}" for t in c["top"]] + ["gini"]:
            est = mean_estimate(y, pp[stat], **bootstrap_args(results))
            row[f"{stat} share" if stat != "gini" else "Gini"] = with_ci(est.value, est.ci, scale=1, digits=3)
        est = mean_estimate(y, pp[m], **bootstrap_args(results))
        row[f"features to {m[1:]} %"] = with_ci(est.value, est.ci, scale=1, digits=2)
        row["active features"] = f"{np.nanmean(pp['active']):.1f}"
        if key != "standard":
            d = features_difference(results, "standard", key)
            row[f"Δ features to {m[1:]} % vs standard"] = with_ci(d.value, d.ci, scale=1, digits=2)
        rows.append(row)
    return pd.DataFrame(rows).set_index("model").fillna("")


def dropout_table(results: dict) -> pd.DataFrame:
    """What Guided Dropout did during training (epoch means): the share of the d features that are active, the
    share of the active features it zeroes (features that were zero already are not counted), and the share of the
    |c_y| mass it removes. A record of the earlier statistic, which counted inactive features as dropped, shows "–"."""
    rows = []
    for key in ("aalp", "gd_only"):
        for h in results["models"].get(key, {}).get("history", []):
            if "gd_dropped_mass" in h:
                rows.append({"model": model_label(results, key), "epoch": h["epoch"],
                             "active features % (of d)": pct(h["gd_active_share"]),
                             "active features dropped % (of the active)": pct(h.get("gd_dropped_of_active")),
                             "|c_y| mass removed %": pct(h["gd_dropped_mass"])})
    return pd.DataFrame(rows).set_index(["model", "epoch"]) if rows else pd.DataFrame()


def ratio_table(results: dict, key: str = "alp") -> pd.DataFrame:
    """C2: per epoch, the share with r > 1, quantiles of r, l_cls of the top decile of r against the rest, and
    the epoch-1 cohort followed (plain and within l_cls quintiles)."""
    rows = []
    for rec in results["training"].get(key, []):
        q, cohort = rec["r_quantiles"], rec.get("cohort", {})
        matched = matched_difference(cohort["matched"]) if cohort.get("matched") else None
        rows.append({"epoch": rec["epoch"], "samples": rec["n"], "r > 1 %": pct(rec["share_r_above_1"], 2),
                     "r median / 90 % / 99 %": f"{q['0.5']:.3f} / {q['0.9']:.3f} / {q['0.99']:.3f}",
                     "l_cls: top-decile r / rest": f"{rec['ce_top_decile_r']:.3f} / {rec['ce_rest']:.3f}",
                     "epoch-1 cohort l_cls: high r / rest": (f"{cohort['ce_high']:.3f} / {cohort['ce_rest']:.3f}"
                                                             if cohort.get("ce_high") is not None else "–"),
                     "Δl_cls since epoch 1, high − rest (matched)": (with_ci(matched.value, matched.ci, scale=1, digits=3)
                                                                     if matched is not None else "–")})
    return pd.DataFrame(rows).set_index("epoch") if rows else pd.DataFrame()


def attack_columns(results: dict) -> dict[str, str]:
    n = results["attack_roles"]
    return {"clean": "clean", n["pgd"]: n["pgd"].upper(), n["long"]: f"PGD-{n['long'][3:].replace('x', ' ×')} restarts",
            n["cw"]: n["cw"].upper(), "aa": "AutoAttack", "worst": "worst case (white-box)", "square": "Square (black-box)"}


def check_point_accuracy(results: dict, key: str) -> dict[str, float]:
    """Accuracy of one model on the check points under every attack, the white-box worst case and Square."""
    e = evaluation(results, key)
    out = {a: _acc(e, a, "subset") for a in attack_columns(results) if a != "worst"}
    out["worst"] = float(worst_case(results, e).mean())
    return out


def robustness_table(results: dict) -> pd.DataFrame:
    """C3/C4: every attack on the check points, and the paired worst-case difference to ALP."""
    columns, rows = attack_columns(results), []
    for key in results["evaluations"]:
        acc = check_point_accuracy(results, key)
        row = {"model": model_label(results, key), **{label_: pct(acc[a]) for a, label_ in columns.items()}}
        if key != "alp":
            d = claims.worst_difference(results, "alp", key)
            row["Δ worst case vs ALP (pt)"] = with_ci(d.value, d.ci)
        rows.append(row)
    return pd.DataFrame(rows).set_index("model").fillna("")


def sweep_rows(results: dict) -> dict[str, list[float]]:
    """{model label: PGD accuracy (check points) at each radius of the sweep}."""
    return {model_label(results, k): [float(c.mean()) for _, c, _ in claims.sweep_accuracy(results, k)]
            for k in results["evaluations"]}


def _mark(outcome: str) -> str:
    return {"reproduced": "✓ passed", "not reproduced": "✗ FAILED", "inconclusive at this scale": "? inconclusive",
            "not testable at this scale": "not testable"}[outcome]


def checklist_table(results: dict) -> pd.DataFrame:
    """The gradient-masking checklist for every model (the verdicts G1-G3 and C6 rest on the ALP family's rows):
    the attack chain on the check points, each check's outcome, zero gradients, the logit margin and
    AutoAttack's own warnings. A failed check is a finding."""
    n, d, columns = results["attack_roles"], results["diagnostics"], attack_columns(results)
    rows = []
    for key in results["evaluations"]:
        acc = check_point_accuracy(results, key)
        row = {"model": model_label(results, key)}
        row.update({columns[a]: pct(acc[a]) for a in (n["pgd"], n["long"], n["cw"], "aa", "worst", "square")})
        row["falls with ε"] = _mark(combine([p.outcome for p in claims.g1_parts(results, key)]))
        row[f"Square breaks ≤ {100 * claims.SQUARE_ONLY_LIMIT:g} % of the white-box-robust points"] = _mark(
            claims.g2_part(results, key).outcome)
        row[f"zero gradients ≤ {100 * claims.ZERO_GRADIENT_LIMIT:g} %"] = _mark(claims.g3_part(results, key).outcome)
        row["drop beyond PGD-AT's"] = _mark(claims.c6_part(results, key).outcome) if key != "pgd_at" else "–"
        row["zero-gradient points %"] = pct(d["zero_gradient_fraction"][key], 2)
        row["mean logit margin"] = round(d["mean_logit_margin"][key], 2)
        warnings = results["evaluations"][key].get("warnings", {})
        row["AutoAttack warnings"] = "; ".join(f"{a}: {w}" for a, ws in warnings.items() for w in ws) or "none"
        rows.append(row)
    return pd.DataFrame(rows).set_index("model")


def classwise_table(results: dict, points: str = "subset") -> pd.DataFrame:
    """Per-class robust accuracy (%) of every model: the white-box worst case on the check points, or
    (points="all") the worst case of the attacks run on every point (PGD-20 and CW-20)."""
    n, classes, columns = results["attack_roles"], results["classes"], {}
    for key in results["evaluations"]:
        e = evaluation(results, key)
        correct = worst_case(results, e) if points == "subset" else e.correct(n["pgd"]) & e.correct(n["cw"])
        y = e.labels(points)
        columns[model_label(results, key)] = [pct(a, 0) for a in per_class_accuracy(correct, y, len(classes))]
    return pd.DataFrame(columns, index=classes)


EVENNESS_PAIRS = (("mpgd", "alp", "pairing (λ > 0 vs λ = 0)"), ("pgd_at", "alp", "ALP vs PGD-AT"),
                  ("alp", "aalp", "AALP-recon vs ALP"))


def _all_points_worst(results: dict, e) -> np.ndarray:
    n = results["attack_roles"]
    return e.correct(n["pgd"]) & e.correct(n["cw"])


def evenness_estimates(results: dict) -> dict[str, dict]:
    """{comparison: {statistic: Estimate}}: paired differences (b − a) of the class SD, the worst class, the
    best–worst gap and the mean, under PGD-20 ∧ CW-20 on every test point."""
    out = {}
    for a, b, title in EVENNESS_PAIRS:
        if a not in results["evaluations"] or b not in results["evaluations"]:
            continue
        ea, eb = evaluation(results, a), evaluation(results, b)
        same_points(ea, eb)
        outcomes = [_all_points_worst(results, ea), _all_points_worst(results, eb)]
        out[title] = {name: evaluation_statistic(ea, outcomes, lambda p, q, s=statistic: s(q) - s(p), **bootstrap_args(results))
                      for name, statistic in (("class SD", sd), ("worst class", worst), ("gap", gap), ("mean", mean))}
    return out


def evenness_table(results: dict) -> pd.DataFrame:
    """Does pairing make robustness more or less even across classes? (see `evenness_estimates`)"""
    rows = [{"comparison": title, **{f"Δ {k} (pt)": with_ci(e.value, e.ci) for k, e in stats.items()}}
            for title, stats in evenness_estimates(results).items()]
    return pd.DataFrame(rows).set_index("comparison") if rows else pd.DataFrame()


def evenness_summary(results: dict) -> str:
    lines = []
    for title, stats in evenness_estimates(results).items():
        est = stats["class SD"]
        reading = ("less even (the class SD rises)" if est.ci[0] > 0 else "more even (the class SD falls)"
                   if est.ci[1] < 0 else "no detectable change in evenness at this scale")
        lines.append(f"* **{title}**: Δ class SD {with_ci(est.value, est.ci)} points: {reading}.")
    return "\n".join(lines)


def quoted_alp_table() -> pd.DataFrame:
    rows = [{"model": m, "dataset": d, **dict(zip(ALP_README["columns"], v))} for (m, d), v in ALP_README["rows"].items()]
    return pd.DataFrame(rows).set_index(["model", "dataset"]).rename(columns=lambda c: f"{c} % (quoted)")


def quoted_third_party_table() -> pd.DataFrame:
    mosbach = THIRD_PARTY["mosbach"]
    rows = [{"source": mosbach["ref"], "setting": f"{d}, {m}",
             "finding (quoted)": f"{mosbach['columns'][0]} {v[0]} % → {mosbach['columns'][1]} {v[1]} %"}
            for (d, m), v in mosbach["rows"].items()]
    rows.append({"source": THIRD_PARTY["engstrom"]["ref"], "setting": "ImageNet 64×64, released ALP model",
                 "finding (quoted)": THIRD_PARTY["engstrom"]["finding"]})
    return pd.DataFrame(rows).set_index(["source", "setting"])


decisions, verdicts = verdict_readers("aalp", claims.verdicts)


def scale_notes(results: dict) -> str:
    cfg, sizes = results["config"], results["split_sizes"]
    head = (f"**Scale of this run ({cfg['profile']} profile):** {cfg['model']} on {cfg['dataset']}, {sizes['train']:,} "
            f"training images, {cfg['epochs']} epochs of PGD-{cfg['train_steps']} (α = {cfg['train_alpha']:g}, ε = "
            f"{cfg['eps']:g}) with SGD (lr {cfg['lr']:g}, batch {cfg['batch_size']}); {sizes['test']:,} test points, the "
            f"costly checks on {sizes['check']:,} of them.")
    return "\n\n".join([head, untestable_notes(decisions(results))])


def deviations_table(results: dict) -> pd.DataFrame:
    """Where this run departs from ALP's official code and from the spec's plan (values from the config)."""
    cfg = results["config"]
    rows = [
        ("training attack", "pgdll (targeted least-likely PGD)", f"{cfg['train_attack']!r}" + (
            " (untargeted on y; ALP's own untargeted option attacks the predicted class)" if cfg["train_attack"] == "pgd"
            else ""), "book default; `train_attack='pgd_ll'` is the official one"),
        ("optimiser", "RMSProp (ALP code); Adam in the spec's CPU plan", f"SGD, lr {cfg['lr']:g}, momentum 0.9, batch "
         f"{cfg['batch_size']}, {cfg['schedule']} schedule", "the shared trainer is SGD only"),
        ("EMA weights", "EMA 0.9999 (ALP code)", "none", "not part of the ALP formula"),
        ("model", "ResNet-v2-50 (ALP); spec CPU: conv16 → conv32 → FC128", f"{cfg['model']}" + (
            " with BatchNorm after each conv and the FC layer" if cfg["model"] == "mnist_cnn" else ""),
         "BatchNorm added by the book (the spec's CNN has none); the exercise \"Without BatchNorm\" removes it"),
        ("AALP modules", "not available", "Guided Dropout and sample weights reconstructed from the abstract",
         f"{TAG}; switches listed above"),
        ("training data and attack", f"spec CPU plan (quoted): {SPEC_CPU_TRAIN}",
         f"{results['split_sizes']['train']:,} images ({cfg['train_per_class']:,} per class), PGD-{cfg['train_steps']} "
         f"(α = {cfg['train_alpha']:g}), {cfg['epochs']} epochs",
         "the smoke tier's CPU budget; the evidence tier keeps this training, whose adversarially trained models clear "
         "the quality bars"),
        ("evaluation", f"spec CPU plan (quoted): {SPEC_CPU_EVAL}",
         f"{results['split_sizes']['test']:,} test points, PGD-{cfg['eval_steps']} and CW-{cfg['cw_steps']} on each; "
         f"PGD-{cfg['long_steps']} × {cfg['restarts']}, AutoAttack "
         f"({'APGD-CE + APGD-T' if cfg['aa_version'] == 'subset' else 'standard'}) and Square on "
         f"{results['split_sizes']['check']:,}; ε sweep {', '.join(f'{e:g}' for e in cfg['sweep_eps'])}",
         f"the evidence tier: the whole test set, the costly checks on {cfg['aa_per_class']} per class"
         if cfg["profile"] == "evidence" else "CPU budget of the chapter"),
        ("several GPUs (torchrun)", "one GPU", "each process normalises with the batch statistics of its own share of "
         "the global batch; the running statistics are process 0's; no SyncBatchNorm",
         "a run on N processes is another draw of the same training (README, \"On several GPUs\")"),
    ]
    return pd.DataFrame(rows, columns=["item", "ALP code / spec (quoted)", "this book", "why"]).set_index("item")
