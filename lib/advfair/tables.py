"""Tables shared by every chapter: class-wise reports turned into rounded pandas DataFrames."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd


def pct(value: float, digits: int = 1) -> str:
    return "–" if value is None or not np.isfinite(value) else f"{100 * value:.{digits}f}"


def with_ci(value: float, ci: Sequence[float], *, scale: float = 100, digits: int = 1) -> str:
    """'54.3 [51.0, 57.6]': a point estimate with its 95% interval."""
    if value is None or not np.isfinite(value):
        return "–"
    return f"{scale * value:.{digits}f} [{scale * ci[0]:.{digits}f}, {scale * ci[1]:.{digits}f}]"


def spread_table(rows: dict[str, tuple[dict, str]]) -> pd.DataFrame:
    """One row per (report, attack): mean, worst and best class, gap, SD and NSD with 95% CIs (in %)."""
    out = []
    for label, (report, attack) in rows.items():
        e = report["attacks"][attack]
        classes = report["classes"]
        out.append({
            "": label,
            "mean": with_ci(e["mean"], e["ci"]["mean"]),
            "worst class": f"{classes[e['worst_class']]} {pct(e['worst'])}",
            "best class": f"{classes[e['best_class']]} {pct(e['best'])}",
            "gap (max−min)": with_ci(e["gap"], e["ci"]["gap"]),
            "SD": with_ci(e["sd"], e["ci"]["sd"]),
            "NSD": with_ci(e["nsd"], e["ci"]["nsd"], scale=1, digits=3),
        })
    return pd.DataFrame(out).set_index("")


def per_class_table(report: dict, attacks: Sequence[str], labels: Sequence[str] | None = None) -> pd.DataFrame:
    """Class x attack accuracy (%), rounded to one decimal, plus the mean row."""
    table = pd.DataFrame({lab: np.round(100 * np.asarray(report["attacks"][a]["per_class"]), 1)
                          for a, lab in zip(attacks, labels or attacks)}, index=report["classes"])
    table.loc["mean"] = table.mean().round(1)
    return table


def rank_matrix(report: dict, attacks: Sequence[str], labels: Sequence[str] | None = None) -> pd.DataFrame:
    """Spearman rho between the per-class vectors of every pair of attacks in one report."""
    labels = list(labels or attacks)
    m = pd.DataFrame(np.eye(len(attacks)), index=labels, columns=labels)
    for i, a in enumerate(attacks):
        for j, b in enumerate(attacks):
            if i < j:
                key = f"{a}|{b}" if f"{a}|{b}" in report["rank_agreement"] else f"{b}|{a}"
                m.iloc[i, j] = m.iloc[j, i] = report["rank_agreement"][key]["rho"]
    return m.round(2)


def rank_pairs(report: dict, attacks: Sequence[str], labels: Sequence[str] | None = None) -> pd.DataFrame:
    """Spearman rho with its 95% bootstrap interval for each pair of attacks."""
    names = dict(zip(attacks, labels or attacks))
    rows = []
    for key, entry in report["rank_agreement"].items():
        a, b = key.split("|")
        if a in names and b in names:
            rows.append({"pair": f"{names[a]} vs {names[b]}", "Spearman ρ": with_ci(entry["rho"], entry["ci"], scale=1,
                                                                                      digits=2)})
    return pd.DataFrame(rows).set_index("pair")
