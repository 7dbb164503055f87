"""The DUCAT chapter's tables, figures and summaries, computed from a results dict (the notebook only calls these).
Every accuracy of a 2C model is recovered (c + C -> c); "raw" numbers count a dummy prediction as wrong."""
from __future__ import annotations

import itertools

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from ...evaluation import Evaluation
from ...evaluation.paired import bootstrap_per_class, interval, per_class_accuracy
from ...tables import pct, untestable_notes, with_ci
from .. import common
from ..common import evaluation
from ..stability import verdict_readers
from . import claims
from .claims import aware_correct, aware_names, raw_clean_correct, trapped, unaware
from .config import DucatConfig
from .methods import is_dummy, label, window_volume

# The window volume of the official schedule on the full training set (the paper profile's, computed).
PAPER_VOLUME = window_volume(DucatConfig.make("paper"), 50_000 - 10 * DucatConfig.PROFILES["paper"]["val_per_class"])

ATTACK_LABELS = {"raw2C": "dummy-unaware PGD (raw 2C, CE on y)", "merged": "merged PGD (log(p_y + p_(y+C)))",
                 "dawa": "DAWA-style PGD (reconstruction)"}


def aa_name(results: dict) -> str:
    """AutoAttack as it ran: the subset version is APGD-CE + APGD-T only."""
    return "AutoAttack (APGD-CE + APGD-T)" if results["config"].get("aa_version") == "subset" else "AutoAttack"


def attack_label(name: str, results: dict) -> str:
    steps, _, view = name.partition("_")
    if view == "pairmax":
        return f"{aa_name(results)} on pairmax"
    return ATTACK_LABELS[view].replace("PGD", steps.upper()) if view in ATTACK_LABELS and steps.startswith("pgd") \
        else ATTACK_LABELS.get(view, name)


def _ci(estimate) -> str:
    return with_ci(estimate.value, estimate.ci)


def _share(e, correct: np.ndarray, results: dict, points: str = "all") -> str:
    """Overall share with its stratified bootstrap interval (per-class means of balanced points)."""
    cfg = results["config"]
    y = e.labels(points)
    boot = bootstrap_per_class(y, correct, cfg["n_boot"], cfg["seed"], len(e.classes)).mean(1)
    return with_ci(float(correct.mean()), interval(boot))


def setup_table(results: dict) -> pd.DataFrame:
    cfg, rows = results["config"], []
    for key, meta in results["models"].items():
        dummy = is_dummy(key)
        active = [h["epoch"] for h in meta["history"] if h.get("ducat_active")]
        window = f"{active[0]}–{active[-1]}" if active else ("never" if dummy else "")
        width = f" (width {cfg['width']})" if cfg["model"] == "small_cnn" else ""
        rows.append({"model": label(key), "head": "2C (C real + C dummy)" if dummy else "C",
                     "network": cfg["model"] + width,
                     "epochs": len(meta["history"]), "DUCAT loss in epochs": window,
                     "clean % (recovered)": pct(claims.clean_accuracy(evaluation(results, key))),
                     "trained by": "another chapter (model cache)" if meta["from_cache"] else "this chapter"})
    return pd.DataFrame(rows).set_index("model")


def points_summary(results: dict) -> str:
    e = results["evaluations"]["pgd_at"]["points"]
    c = len(results["classes"])
    return (f"{e['all']:,} test points ({e['all'] // c:,} per class); {aa_name(results)} on {e['subset']:,} of them "
            f"({e['subset'] // c} per class). Checkpoint: {results['config']['checkpoint']} epoch.")


def _fails(results: dict) -> dict[str, np.ndarray]:
    u = unaware(results)
    return {k: ~evaluation(results, k).correct(u) for k in ("pgd_at", "trades", "mart") if k in results["evaluations"]}


def always_failed_table(results: dict) -> pd.DataFrame:
    """C1: the share of test points non-robust under the dummy-unaware PGD for each model and for all three."""
    fails, e = _fails(results), evaluation(results, "pgd_at")
    rows = {label(k): _share(e, f, results) for k, f in fails.items()}
    if len(fails) == 3:
        rows["all three (always failed)"] = _share(e, np.logical_and.reduce(list(fails.values())), results)
        rows["expected if the failures were independent"] = pct(np.prod([f.mean() for f in fails.values()]))
    return pd.DataFrame({f"non-robust % under {unaware(results).upper()} [95% CI]": rows})


def overlap_table(results: dict) -> pd.DataFrame:
    """C1: pairwise overlaps of the failure sets: both fail (% of points) and Jaccard |A ∩ B| / |A ∪ B|."""
    fails, rows = _fails(results), []
    for a, b in itertools.combinations(fails, 2):
        both, either = fails[a] & fails[b], fails[a] | fails[b]
        rows.append({"pair": f"{label(a)} & {label(b)}", "both fail %": pct(both.mean()),
                     "Jaccard": f"{both.sum() / max(either.sum(), 1):.2f}"})
    return pd.DataFrame(rows).set_index("pair")


def overlap_figure(results: dict) -> plt.Figure:
    """Share of points failing both models (%), each model's own failure rate on the diagonal."""
    fails = _fails(results)
    names = [label(k) for k in fails]
    m = np.array([[100 * (fails[a] & fails[b]).mean() for b in fails] for a in fails])
    fig, ax = plt.subplots(figsize=(4.8, 3.8))
    sns.heatmap(pd.DataFrame(m, index=names, columns=names), annot=True, fmt=".0f", cmap="rocket_r", vmin=0,
                vmax=100, cbar_kws={"label": "% of test points non-robust for both"}, ax=ax)
    ax.set_title(f"Failures under {unaware(results).upper()}: pairwise overlap")
    fig.tight_layout()
    return fig


def four_numbers(results: dict, key: str, *, record: dict | None = None) -> dict:
    """Raw clean, recovered clean, dummy-unaware robust, dummy-aware robust (all points and AA points) of one
    evaluation, and the label trap: the share of points predicted as their own dummy."""
    e = Evaluation.from_json(record) if record is not None else evaluation(results, key)
    u = unaware(results)
    row = {"raw clean % (2C argmax)": _share(e, raw_clean_correct(e), results),
           "recovered clean %": _share(e, e.correct("clean"), results),
           f"dummy-unaware {u} %": _share(e, e.correct(u), results)}
    if aware_names(e, results):
        row["dummy-aware % (worst of merged, DAWA-style)"] = _share(e, aware_correct(e, results), results)
    if len(aware_names(e, results, "subset")) == 3:
        row["dummy-aware % on the AA points (worst incl. AA)"] = _share(e, aware_correct(e, results, "subset"),
                                                                       results, "subset")
    row["label trap % (clean → y+C)"] = pct(trapped(e, "clean").mean())
    row[f"label trap % under {u} (of all points)"] = pct(trapped(e, u).mean())
    return row


def four_numbers_table(results: dict, keys: tuple[str, ...] = ("pgd_at", "ducat")) -> pd.DataFrame:
    return pd.DataFrame({label(k): four_numbers(results, k) for k in keys if k in results["evaluations"]}).T


def attack_table(results: dict, keys: tuple[str, ...] = ("pgd_at", "ducat")) -> pd.DataFrame:
    """Per model and attack: recovered robust accuracy and the share of points predicted as their own dummy."""
    rows = []
    for key in keys:
        e = evaluation(results, key)
        for attack in e.names("subset"):
            if attack == "clean":
                continue
            points = "subset" if attack in e.on_subset else "all"
            rows.append({"model": label(key), "attack": attack_label(attack, results),
                         "dummy-aware": "no" if attack == unaware(results) else "yes",
                         "points": len(e.labels(points)), "robust % [95% CI]": _share(e, e.correct(attack, points),
                                                                                       results, points),
                         "predicted as own dummy y+C %": pct(trapped(e, attack, points).mean())})
    return pd.DataFrame(rows).set_index(["model", "attack"])


def destination_table(results: dict, key: str = "ducat") -> pd.DataFrame:
    """C6: where the raw 2C argmax of a dummy-class model puts the points, clean and under each attack (%)."""
    e, rows = evaluation(results, key), {}
    c = len(e.classes)
    for attack in e.names("subset"):
        points = "subset" if attack in e.on_subset else "all"
        y, raw = e.labels(points), claims.side_predicted(e, "raw2C", attack, points)
        rows[attack_label(attack, results) if attack != "clean" else "clean"] = {
            "own class y": pct((raw == y).mean()), "own dummy y+C": pct((raw == y + c).mean()),
            "another class": pct(((raw < c) & (raw != y)).mean()),
            "another dummy": pct(((raw >= c) & (raw != y + c)).mean()), "points": len(y)}
    return pd.DataFrame(rows).T


def tradeoff_points(results: dict) -> pd.DataFrame:
    """Recovered clean vs robust accuracy of PGD-AT and DUCAT, under the unaware and the aware attacks."""
    rows = []
    for key in ("pgd_at", "ducat"):
        e = evaluation(results, key)
        clean = float(e.correct("clean").mean())
        rows.append({"method": label(key), "mean": clean, "worst": float(e.correct(unaware(results)).mean())})
        rows.append({"method": label(key), "mean": clean, "worst": float(aware_correct(e, results).mean())})
    return pd.DataFrame(rows)


def classwise_table(results: dict) -> pd.DataFrame:
    """Per-class robust accuracy (%) of PGD-AT and DUCAT under the unaware and the aware attacks."""
    u, columns = unaware(results), {}
    at, du = evaluation(results, "pgd_at"), evaluation(results, "ducat")
    for kind, of in (("dummy-unaware", lambda e: e.correct(u)), ("dummy-aware", lambda e: aware_correct(e, results))):
        a, b = (per_class_accuracy(of(e), e.labels(), len(e.classes)) for e in (at, du))
        columns[(kind, "PGD-AT")] = np.round(100 * a, 1)
        columns[(kind, "DUCAT")] = np.round(100 * b, 1)
        columns[(kind, "Δ (pt)")] = np.round(100 * (b - a), 1)
    return pd.DataFrame(columns, index=results["classes"])


def classwise_summary(results: dict, top: int = 3) -> str:
    t = classwise_table(results)
    unaware_d, aware_d = t[("dummy-unaware", "Δ (pt)")], t[("dummy-aware", "Δ (pt)")]
    above = unaware_d[unaware_d > 0].sort_values(ascending=False).index[:top]
    where = (f" ({', '.join(f'{c}: {unaware_d[c]:+.1f} → {aware_d[c]:+.1f} pt' for c in above)}, the paper's attack "
             f"→ the dummy-aware worst case{'; the largest shown' if (unaware_d > 0).sum() > top else ''})"
             if len(above) else "")
    text = (f"Under the paper's (dummy-unaware) attack DUCAT is above PGD-AT in {int((unaware_d > 0).sum())} of "
            f"{len(t)} classes{where}. The mean per-class difference is {unaware_d.mean():+.1f} pt unaware and "
            f"{aware_d.mean():+.1f} pt aware; under the dummy-aware attacks DUCAT is above PGD-AT in "
            f"{int((aware_d > 0).sum())} of {len(t)} classes.")
    return " ".join([text, *_below_chance(results)])


def _below_chance(results: dict) -> list[str]:
    """A class whose clean accuracy (recovered) is below chance: its robust accuracy says little about robustness."""
    out = []
    for key in ("pgd_at", "ducat"):
        e = evaluation(results, key)
        clean = per_class_accuracy(e.predicted("clean") == e.labels(), e.labels(), len(e.classes))
        low = [f"{c} ({100 * a:.1f} %)" for c, a in zip(results["classes"], clean) if a < 1 / len(e.classes)]
        if low:
            out.append(f"{label(key)}'s clean accuracy is below chance on {', '.join(low)}: its robust numbers for "
                       f"{'that class' if len(low) == 1 else 'those classes'} say little about robustness.")
    return out


def classwise_figure(results: dict) -> plt.Figure:
    t = classwise_table(results)
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8), sharey=True)
    for ax, kind in zip(axes, ("dummy-unaware", "dummy-aware")):
        t[kind][["PGD-AT", "DUCAT"]].plot.bar(ax=ax, rot=30, title=f"{kind} robust accuracy (%)")
        ax.set_ylim(0, 100)
    fig.tight_layout()
    return fig


def cost_table(results: dict) -> pd.DataFrame:
    """C4: measured seconds per epoch (outside and inside the window) and the deterministic pass count."""
    window = {h["epoch"] for h in results["models"]["ducat"]["history"] if h.get("ducat_active")}
    rows = {}
    for key in ("pgd_at", "ducat"):
        seconds = results["models"][key]["seconds"]["epochs"]
        inside = [s for i, s in enumerate(seconds, 1) if i in window]
        outside = [s for i, s in enumerate(seconds, 1) if i not in window]
        rows[label(key)] = {"s/epoch, DUCAT window epochs": np.mean(inside) if inside else np.nan,
                            "s/epoch, other epochs": np.mean(outside) if outside else np.nan,
                            "s/epoch, all": np.mean(seconds),
                            "trained by": "another chapter (model cache)" if results["models"][key]["from_cache"]
                            else "this chapter"}
    t = pd.DataFrame(rows).T
    for column in ("s/epoch, DUCAT window epochs", "s/epoch, other epochs", "s/epoch, all"):
        t[column] = t[column].astype(float).round(2)
    return t


def cost_summary(results: dict) -> str:
    t, c = cost_table(results), results["cost_model"]
    d = t.loc[label("ducat")]
    inside = d["s/epoch, DUCAT window epochs"] / d["s/epoch, other epochs"] - 1
    # Wall times of two models trained minutes apart differ by the machine's load as much as by their cost, so the
    # measured number compares DUCAT's window epochs with its own other epochs of the same training.
    return (f"Measured wall time (this machine, moved by its load; no verdict rests on it): DUCAT's window epochs "
            f"took {100 * inside:+.0f}% over its own epochs outside the window. The verdict uses the pass count: "
            f"inside the window an epoch makes "
            f"{c['ducat_in_window']} image passes per training image instead of {c['pgd_at']} "
            f"({100 * c['overhead_in_window']:+.0f}%), {100 * c['overhead_schedule']:+.1f}% over the whole schedule "
            f"({c['window_epochs']} of {c['epochs']} epochs). With the code's PGD-10 the in-window count would be "
            f"{100 / 11:+.0f}%.")


def transfer_table(results: dict) -> pd.DataFrame:
    """C7: robust accuracy (%) of each target on each source's dummy-unaware adversarial points (diagonal:
    white-box)."""
    u, names = unaware(results), [k for k in ("pgd_at", "trades", "ducat") if k in results["evaluations"]]
    table = pd.DataFrame(index=[label(k) for k in names], columns=[label(k) for k in names], dtype=float)
    for s in names:
        e = evaluation(results, s)
        for t in names:
            correct = e.correct(u) if s == t else claims.transfer_correct(e, t, u)
            table.loc[label(s), label(t)] = round(100 * float(correct.mean()), 1)
    table.index.name = "source ↓ / target →"
    return table


def ablation_table(results: dict) -> pd.DataFrame | str:
    """The ablations beside PGD-AT and the default DUCAT; a sentence when this run trained none."""
    cfg = results["config"]
    ablations = [k for k in results["evaluations"] if k.startswith("ducat_")]
    if not ablations:
        return (f"No ablation was trained in this run (ablation_from_start={cfg['ablation_from_start']}, "
                f"ablation_w_benign={cfg['ablation_w_benign']}).")
    keys = ["pgd_at", "ducat", *ablations]
    rows = {}
    for key in keys:
        name = (f"DUCAT, window {cfg['ducat_start']}–{cfg['ducat_end']}, w_b = {cfg['w_benign']:g} (default)"
                if key == "ducat" else label(key))
        rows[name] = {k: v for k, v in four_numbers(results, key).items() if "AA points" not in k}
    return pd.DataFrame(rows).T


def absent_note(results: dict, *keys: str) -> str | None:
    """What a section cannot show: its models not trained in this run, and why (None: every one was)."""
    return common.absent_note(results, keys, label, claims.why_absent)


decisions, verdicts = verdict_readers("ducat", claims.verdicts)


def _schedule(cfg: dict) -> str:
    if cfg.get("schedule", "step") == "cosine":
        return "a cosine learning-rate schedule"
    return f"lr ×0.1 from epochs {', '.join(map(str, cfg['milestones'])) or 'none'}"


def scale_notes(results: dict) -> str:
    cfg, e = results["config"], results["evaluations"]["pgd_at"]["points"]
    train = (f"{cfg['train_per_class']} training images per class" if cfg["train_per_class"] else
             f"the training set but {cfg['val_per_class']} images per class held out for validation")
    head = (f"**Scale of this run ({cfg['profile']} profile):** {cfg['model']}, {train}, {cfg['epochs']} epochs of "
            f"PGD-{cfg['train_steps']} training with batch {cfg['batch_size']}, {_schedule(cfg)}, "
            f"DUCAT window {cfg['ducat_start']}–{cfg['ducat_end']} "
            f"(its optimisation volume, SGD steps × lr / base lr: {results['window_volume']:.0f}; the official "
            f"130-epoch schedule's: {PAPER_VOLUME:.0f}); {e['all']:,} test points, {aa_name(results)} on {e['subset']:,}; "
            f"dummy-unaware PGD-{cfg['unaware_steps']}, dummy-aware merged PGD-{cfg['aware_steps']} "
            f"({cfg['merged_restarts']} start{'s' if cfg['merged_restarts'] > 1 else ''}) and DAWA-style "
            f"PGD-{cfg['aware_steps']}.")
    return "\n\n".join([head, untestable_notes(decisions(results))])
