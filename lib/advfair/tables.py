"""Tables shared by every chapter: class-wise reports and verdicts turned into pandas DataFrames."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from .evaluation import Estimate
from .verdicts import Part, Verdict


def show_full_cells() -> None:
    """Never cut a cell: pandas' default shortens text to 50 characters ("..."), in HTML too, and a
    verdict's qualifiers are exactly what a reader must see."""
    pd.set_option("display.max_colwidth", None)
    pd.set_option("display.max_columns", None)
    pd.set_option("display.width", 250)


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


def verdict_table(verdicts: Sequence[Verdict]) -> pd.DataFrame:
    """Claim, paper statement, the evidence (estimates with 95% intervals, pooled over training seeds where a
    stability file gives them), the verdict, and each run's own verdict beside it (a diagnostic, not a vote)."""
    rows = [{"claim": v.claim, "paper (paraphrased)": v.statement, "this book [95% CI]": v.evidence(),
             "verdict": v.text(), "each run's own verdict": v.seeds_text()} for v in verdicts]
    return pd.DataFrame(rows).set_index("claim")


def part_with_ci(part: Part) -> str:
    """'reproduced: 5.0 [3.0, 7.0]': a tested part's outcome, estimate and 95% interval in its display units."""
    e = part.estimate
    return f"{part.outcome}: {with_ci(e.value, e.ci, scale=part.scale, digits=part.digits)}"


def width_table(runs: dict[str, Sequence[Verdict]], claims: Sequence[str]) -> pd.DataFrame:
    """Each primary part of `claims` in several runs of a chapter (e.g. two evaluation budgets, or two readings of
    one run): the run's outcome, estimate and 95% interval, and the interval's width, in the part's display units.
    Parts are aligned by position; where their labels differ, the row shows each."""
    rows = []
    for claim in claims:
        found = {name: next(v for v in verdicts if v.claim == claim) for name, verdicts in runs.items()}
        first = next(iter(found.values()))
        for i, part in enumerate(first.parts):
            if not part.primary or part.estimate is None:
                continue
            labels = dict.fromkeys(verdict.parts[i].label for verdict in found.values())
            row = {"claim": claim, "part": " / ".join(labels)}
            for name, verdict in found.items():
                p = verdict.parts[i]
                row[name] = part_with_ci(p)
                row[f"width, {name}"] = f"{p.scale * (p.estimate.ci[1] - p.estimate.ci[0]):.{p.digits}f}"
            rows.append(row)
    return pd.DataFrame(rows).set_index(["claim", "part"])


def untestable_notes(verdicts: Sequence[Verdict]) -> str:
    """Markdown: the claims this run cannot test, each with the reasons its verdict gives."""
    untestable = [v for v in verdicts if v.outcome == "not testable at this scale"]
    if not untestable:
        return "Every claim is testable at this scale: no model or class it rests on is degenerate or borderline."
    lines = ["Claims this scale cannot test:"]
    for v in untestable:
        reasons = [*v.failed_gates(), *(p for p in v.primary_parts() if p.outcome == "not testable at this scale")]
        lines.append(f"* **{v.claim}**: " + "; ".join(r.text() for r in reasons))
    return "\n".join(lines)


def class_difference_table(classes: Sequence[str], label: str, differences: Sequence[Estimate]) -> pd.DataFrame:
    """Per-class paired differences (`advfair.evaluation.class_differences`) in points, each with its 95% interval
    and whether the interval excludes 0."""
    return pd.DataFrame({label: [with_ci(d.value, d.ci) for d in differences],
                         "interval excludes 0": ["yes" if d.ci[0] > 0 or d.ci[1] < 0 else "" for d in differences]},
                        index=pd.Index(classes, name="class"))
