"""Seaborn figures shared by every chapter. Each function takes parts of a results dict, returns a Figure."""
from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

sns.set_theme(style="whitegrid", context="notebook")


def _percent(values: Sequence[float]) -> np.ndarray:
    return 100 * np.asarray(values, dtype=float)


def _labelled(fig: plt.Figure, ax: plt.Axes, xlabel: str, ylabel: str, title: str) -> plt.Figure:
    """Axis labels, title and a small legend: the finish of every line plot."""
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize="small")
    fig.tight_layout()
    return fig


def per_class_bars(report: dict, attacks: Sequence[str], *, labels: Sequence[str] | None = None,
                   title: str = "", ax: plt.Axes | None = None) -> plt.Figure:
    """Per-class accuracy under each attack, with 95% bootstrap intervals."""
    classes = report["classes"]
    labels = list(labels or attacks)
    fig, ax = (ax.figure, ax) if ax is not None else plt.subplots(figsize=(10, 3.8))
    width = 0.8 / len(attacks)
    x = np.arange(len(classes))
    palette = sns.color_palette("deep", len(attacks))
    for i, (attack, label) in enumerate(zip(attacks, labels)):
        entry = report["attacks"][attack]
        acc = _percent(entry["per_class"])
        lo, hi = (_percent(v) for v in entry["per_class_ci"])
        # A percentile interval need not contain the estimate (small, skewed classes): clip the bars at it.
        yerr = [np.clip(acc - lo, 0, None), np.clip(hi - acc, 0, None)]
        ax.bar(x + (i - (len(attacks) - 1) / 2) * width, acc, width, label=label, color=palette[i],
               yerr=yerr, capsize=2, error_kw={"lw": 0.8})
    ax.set_xticks(x, classes, rotation=30, ha="right")
    ax.set_ylabel("accuracy (%)")
    ax.set_ylim(0, 100)
    ax.set_title(title)
    ax.legend(ncol=len(attacks), fontsize="small", loc="upper left")
    fig.tight_layout()
    return fig


def class_attack_heatmap(report: dict, attacks: Sequence[str], *, labels: Sequence[str] | None = None,
                         title: str = "") -> plt.Figure:
    """Class x attack accuracy (%), classes sorted by accuracy under the last attack."""
    table = pd.DataFrame({lab: _percent(report["attacks"][a]["per_class"])
                          for a, lab in zip(attacks, labels or attacks)}, index=report["classes"])
    table = table.sort_values(table.columns[-1])
    fig, ax = plt.subplots(figsize=(1.1 * len(attacks) + 2.5, 4.2))
    sns.heatmap(table, annot=True, fmt=".0f", cmap="rocket", vmin=0, vmax=100, cbar_kws={"label": "accuracy (%)"},
                ax=ax)
    ax.set_title(title)
    fig.tight_layout()
    return fig


def confusion_heatmap(confusion: Sequence[Sequence[int]], classes: Sequence[str], *, title: str = "") -> plt.Figure:
    """Row-normalised confusion matrix (%): where the points of each true class end up."""
    m = np.asarray(confusion, dtype=float)
    m = 100 * m / m.sum(1, keepdims=True)
    fig, ax = plt.subplots(figsize=(6.2, 5.2))
    sns.heatmap(pd.DataFrame(m, index=classes, columns=classes), annot=True, fmt=".0f", cmap="mako_r",
                vmin=0, vmax=100, cbar_kws={"label": "% of the true class"}, ax=ax)
    ax.set_xlabel("predicted under attack")
    ax.set_ylabel("true class")
    ax.set_title(title)
    fig.tight_layout()
    return fig


def rank_agreement_heatmap(rho: pd.DataFrame, *, title: str = "") -> plt.Figure:
    """A symmetric matrix of Spearman correlations."""
    fig, ax = plt.subplots(figsize=(1.0 * len(rho) + 2.5, 0.8 * len(rho) + 1.8))
    sns.heatmap(rho, annot=True, fmt=".2f", cmap="vlag", vmin=-1, vmax=1, ax=ax, cbar_kws={"label": "Spearman ρ"})
    ax.set_title(title)
    fig.tight_layout()
    return fig


def sweep_curve(x: Sequence[float], curves: dict[str, Sequence[float]], *, xlabel: str, ylabel: str = "accuracy (%)",
                logx: bool = False, title: str = "", bands: dict[str, tuple[Sequence[float], Sequence[float]]] | None = None
                ) -> plt.Figure:
    """Accuracy curves over a swept parameter (temperature, bias, scale ...), optional shaded intervals."""
    fig, ax = plt.subplots(figsize=(6.4, 3.8))
    for label, y in curves.items():
        ax.plot(x, _percent(y), marker="o", label=label)
        if bands and label in bands:
            lo, hi = bands[label]
            ax.fill_between(x, _percent(lo), _percent(hi), alpha=0.15)
    if logx:
        ax.set_xscale("log")
    return _labelled(fig, ax, xlabel, ylabel, title)


def tradeoff_plot(points: pd.DataFrame, *, x: str = "mean", y: str = "worst", hue: str = "method",
                  xlabel: str = "mean robust accuracy (%)", ylabel: str = "worst-class robust accuracy (%)",
                  title: str = "", annotate: str | None = None) -> plt.Figure:
    """Worst-class against mean robust accuracy; points of one method are joined in sweep order."""
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for i, (method, group) in enumerate(points.groupby(hue, sort=False)):
        color = sns.color_palette("deep")[i % 10]
        ax.plot(_percent(group[x]), _percent(group[y]), marker="o", color=color, label=method)
        if annotate:
            for _, row in group[np.isfinite(group[annotate])].iterrows():
                ax.annotate(f"{row[annotate]:g}", (100 * row[x], 100 * row[y]), textcoords="offset points",
                            xytext=(4, 4), fontsize="x-small", color=color)
    return _labelled(fig, ax, xlabel, ylabel, title)


def stacked_counts(counts: pd.DataFrame, categories: Sequence[str], *, colors: Sequence[str], xlabel: str,
                   title: str = "") -> plt.Figure:
    """One horizontal bar per row of `counts`, split into its `categories` columns (counts, left to right)."""
    fig, ax = plt.subplots(figsize=(9, 0.5 * len(counts) + 1.2))
    left = np.zeros(len(counts))
    for category, color in zip(categories, colors):
        values = counts[category].to_numpy(dtype=float)
        ax.barh(counts.index, values, left=left, color=color, label=category)
        left += values
    ax.invert_yaxis()
    ax.set_xlabel(xlabel)
    ax.set_title(title)
    ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=2, frameon=False, fontsize=8)
    fig.tight_layout()
    return fig


def calibration_curves(rows: pd.DataFrame, bars: dict[str, float]) -> plt.Figure:
    """The calibration sweep's validation curves: mean and worst-class accuracy, clean and under PGD, against the
    training CPU-minutes spent, one line per candidate; the bars as dashed lines."""
    panels = (("clean", "worst clean"), ("PGD-10", "worst PGD-10"))
    fig, axes = plt.subplots(2, 2, figsize=(11, 7), sharex=True)
    for row, pair in zip(axes, panels):
        for ax, column in zip(row, pair):
            for name, group in rows.groupby("candidate", sort=False):
                ax.plot(group["CPU-min"], _percent(group[column]), marker="o", markersize=3, label=name)
            if column in bars:
                ax.axhline(100 * bars[column], color="black", linestyle="--", linewidth=1, label="bar")
            ax.set_ylabel(f"{column} (%)")
            ax.set_title(f"{column}, validation split")
    for ax in axes[1]:
        ax.set_xlabel("training CPU-minutes")
    axes[0][0].legend(fontsize="small")
    fig.tight_layout()
    return fig


def run_minutes(runs: pd.DataFrame, *, title: str = "") -> plt.Figure:
    """Horizontal bars of the wall minutes of each (page, tier) row of `runs` (a "minutes" column)."""
    labels = [f"{page} ({tier})" for page, tier in runs.index]
    fig, ax = plt.subplots(figsize=(7, 0.45 * len(runs) + 1))
    ax.barh(labels[::-1], runs["minutes"].to_numpy()[::-1], color=sns.color_palette()[0])
    ax.set_xlabel("wall minutes (the machine of each row)")
    ax.set_title(title)
    fig.tight_layout()
    return fig
