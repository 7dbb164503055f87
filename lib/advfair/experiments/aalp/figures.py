"""The AALP chapter's figures, each from a results dict. Every figure that shows an AALP-style model says
"AALP-style reconstruction" in its title."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from ... import plots
from ...evaluation.paired import per_class_accuracy
from ..common import bootstrap_args, evaluation
from .claims import mass_key, worst_case
from .methods import RECONSTRUCTED
from .report import TAG, attack_columns, check_point_accuracy, model_label, sweep_rows


def _title(results: dict, text: str, keys) -> str:
    return f"{text} — {TAG}" if any(k in RECONSTRUCTED for k in keys) else text


def contribution_profile(results: dict, keys: list[str] | None = None) -> plt.Figure:
    """C1/C5: the cumulative share of the predicted logit's contribution mass carried by the m largest
    features, averaged over the clean test points (a steeper curve: fewer features carry the logit)."""
    c = results["contributions"]
    keys = keys or list(c["models"])
    fig, ax = plt.subplots(figsize=(6.8, 4.0))
    for key in keys:
        profile = np.array([np.nan if v is None else v for v in c["models"][key]["profile"]], dtype=float)
        ax.plot(np.arange(1, len(profile) + 1), 100 * np.cumsum(profile), label=model_label(results, key))
    ax.axhline(100 * c["mass"], color="grey", lw=0.8, ls="--")
    ax.set_xscale("log")
    ax.set_xlabel("number of largest features m")
    ax.set_ylabel("share of |c| mass (%)" if c["sign"] == "abs" else "share of positive mass (%)")
    ax.set_title(_title(results, "Contribution concentration (clean test points)", keys))
    ax.legend(fontsize="x-small")
    fig.tight_layout()
    return fig


def features_to_mass(results: dict) -> plt.Figure:
    """The per-point distribution of the features needed for `contrib_mass` of the mass, per model."""
    c, m = results["contributions"], mass_key(results)
    keys = list(c["models"])
    data = [[v for v in c["models"][k]["per_point"][m] if v is not None] for k in keys]
    fig, ax = plt.subplots(figsize=(7.2, 0.45 * len(keys) + 1.6))
    ax.boxplot(data, orientation="horizontal", tick_labels=[model_label(results, k) for k in keys], flierprops={"markersize": 2})
    ax.invert_yaxis()
    ax.set_xlabel(f"features carrying {m[1:]} % of the predicted logit's contribution mass")
    ax.set_title(_title(results, "Features per test point", keys))
    fig.tight_layout()
    return fig


def ratio_histograms(results: dict, key: str = "alp") -> plt.Figure:
    """C2: the distribution of log10 r_i = log10(λ l_lp,i / l_cls,i) in each training epoch (r > 1 right of the line)."""
    records = results["training"].get(key, [])
    fig, ax = plt.subplots(figsize=(6.8, 3.8))
    for rec in records:
        edges, counts = np.asarray(rec["r_hist"]["log10_edges"]), np.asarray(rec["r_hist"]["counts"], dtype=float)
        share = counts / max(rec["n"], 1)
        ax.step(edges[:-1], 100 * share, where="post", label=f"epoch {rec['epoch']}: r > 1 for "
                                                             f"{100 * rec['share_r_above_1']:.2f} %")
    ax.axvline(0, color="black", lw=0.8, ls="--")
    ax.set_xlabel("log10 r  (r = λ·l_lp / l_cls)")
    ax.set_ylabel("share of training samples (%)")
    ax.set_title(_title(results, f"{model_label(results, key)}: pairing vs classification loss per sample", [key]))
    ax.legend(fontsize="x-small")
    fig.tight_layout()
    return fig


def ce_trajectory(results: dict, key: str = "alp") -> plt.Figure:
    """C2: l_cls per epoch of the epoch-1 cohort (top decile of r vs the rest), and within each epoch of that
    epoch's top decile of r vs the rest."""
    records = results["training"].get(key, [])
    epochs = [r["epoch"] for r in records]
    curves = {"epoch-1 cohort: top-decile r": [r["cohort"]["ce_high"] for r in records],
              "epoch-1 cohort: rest": [r["cohort"]["ce_rest"] for r in records],
              "each epoch's top-decile r": [r["ce_top_decile_r"] for r in records],
              "each epoch's rest": [r["ce_rest"] for r in records]}
    fig, ax = plt.subplots(figsize=(6.4, 3.8))
    for (name, values), style in zip(curves.items(), ("-", "-", ":", ":")):
        ax.plot(epochs, [np.nan if v is None else v for v in values], marker="o", ls=style, label=name)
    ax.set_xticks(epochs)
    ax.set_xlabel("epoch")
    ax.set_ylabel("mean l_cls (label-smoothed CE)")
    ax.set_title(_title(results, f"{model_label(results, key)}: classification loss of high-r samples", [key]))
    ax.legend(fontsize="x-small")
    fig.tight_layout()
    return fig


def attack_chain(results: dict) -> plt.Figure:
    """C6 and the checklist: accuracy on the check points along PGD-20 → PGD-100 with restarts → CW → AA →
    the white-box worst case, with Square (black-box) as a separate marker."""
    n, columns = results["attack_roles"], attack_columns(results)
    chain = [n["pgd"], n["long"], n["cw"], "aa", "worst"]
    fig, ax = plt.subplots(figsize=(7.6, 4.2))
    for i, key in enumerate(results["evaluations"]):
        acc = check_point_accuracy(results, key)
        color = sns.color_palette("deep", 10)[i % 10]
        ax.plot(range(len(chain)), [100 * acc[a] for a in chain], marker="o", color=color, label=model_label(results, key))
        ax.scatter([len(chain)], [100 * acc["square"]], marker="s", color=color)
    ax.set_xticks(range(len(chain) + 1), [columns[a] for a in chain] + [columns["square"]], rotation=20, ha="right")
    ax.set_ylabel("robust accuracy (%), check points")
    ax.set_title(_title(results, "Gradient-masking checklist: the attack chain", results["evaluations"]))
    ax.legend(fontsize="x-small")
    fig.tight_layout()
    return fig


def eps_curve(results: dict) -> plt.Figure:
    """Accuracy under PGD at every radius of the sweep (check points): it must fall as eps grows."""
    rows = sweep_rows(results)
    return plots.sweep_curve(results["sweep"]["eps"], rows, xlabel="ε", ylabel="PGD robust accuracy (%), check points",
                             title=_title(results, "Accuracy vs ε", results["evaluations"]))


def per_class_heatmap(results: dict) -> plt.Figure:
    """Per-class robust accuracy (%) of every model under PGD-20 ∧ CW-20 on every test point."""
    n, classes = results["attack_roles"], results["classes"]
    table = {}
    for key in results["evaluations"]:
        e = evaluation(results, key)
        correct, y = e.correct(n["pgd"]) & e.correct(n["cw"]), e.labels()
        table[model_label(results, key)] = 100 * per_class_accuracy(correct, y, len(classes))
    frame = pd.DataFrame(table, index=classes)
    fig, ax = plt.subplots(figsize=(1.3 * len(table) + 2.5, 4.6))
    sns.heatmap(frame, annot=True, fmt=".0f", cmap="rocket", vmin=0, vmax=100, ax=ax,
                cbar_kws={"label": "robust accuracy (%)"})
    ax.set_xticklabels(ax.get_xticklabels(), rotation=30, ha="right", fontsize="x-small")
    ax.set_title(_title(results, f"Per-class robustness under {n['pgd'].upper()} ∧ {n['cw'].upper()}", results["evaluations"]))
    fig.tight_layout()
    return fig


def worst_case_bars(results: dict) -> plt.Figure:
    """C3/C4: white-box worst-case accuracy on the check points per model (error bars: 95 % bootstrap)."""
    from ...evaluation import evaluation_statistic
    from ...evaluation.paired import mean
    labels, values, lo, hi = [], [], [], []
    for key in results["evaluations"]:
        e = evaluation(results, key)
        est = evaluation_statistic(e, [worst_case(results, e)], mean, points="subset", **bootstrap_args(results))
        labels.append(model_label(results, key))
        values.append(100 * est.value)
        lo.append(100 * (est.value - est.ci[0]))
        hi.append(100 * (est.ci[1] - est.value))
    fig, ax = plt.subplots(figsize=(7.2, 0.45 * len(labels) + 1.6))
    ax.barh(labels, values, xerr=[np.clip(lo, 0, None), np.clip(hi, 0, None)], color=sns.color_palette("deep")[0], capsize=3)
    ax.invert_yaxis()
    ax.set_xlabel("worst-case robust accuracy (%), check points")
    ax.set_title(_title(results, "Strongest white-box evaluation", results["evaluations"]))
    fig.tight_layout()
    return fig
