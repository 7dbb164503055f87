"""The RoBal chapter's tables and summaries, computed from a results dict (the notebook only calls these)."""
from __future__ import annotations

import numpy as np
import pandas as pd

from ...evaluation import Evaluation, compare_attacks, evaluation_statistic
from ...evaluation.paired import mean, of_classes
from ...tables import pct, untestable_notes, with_ci
from ..common import attack_entry, bootstrap_args, evaluation, report
from ..stability import verdict_readers
from ..roles import role
from . import claims
from .claims import PAPER_ROWS, PAPER_TABLE3_BLOCK2, PAPER_TOLERANCE_PT
from .methods import MODEL_LABELS


def headline(results: dict, name: str, points: str = "all") -> dict[str, float]:
    """Clean and every attack's accuracy of one evaluation on `points` (AA only on the "subset")."""
    rep = report(results, name, points)["attacks"]
    return {attack: entry["overall"] for attack, entry in rep.items()}


def setup_table(results: dict) -> pd.DataFrame:
    """One row per trained model: training set, head and epochs."""
    cfg, sizes = results["config"], results["split_sizes"]
    heads = {"at_cos": f"cosine, s = {cfg['cos_scale']:g}", "la_train": "linear, no bias",
             "robal_n": f"cosine, γ = {cfg['robal_gamma']:g}", "robal_r": f"cosine, γ = {cfg['robal_gamma']:g}"}
    rows = []
    for key, meta in results["models"].items():
        label = MODEL_LABELS.get(key, f"RoBal ablation τ_b − τ_m = {key.removeprefix('ablation_tau_b')}")
        rows.append({"model": label, "training": "standard (clean CE)" if key == "plain" else "adversarial",
                     "training set": (f"Sml-Bal ({sizes['sml_bal']})" if key == "sml_bal"
                                      else f"long-tailed ({sizes['long_tailed']})"),
                     "head": heads.get(key, "cosine" if key.startswith("ablation") else "linear"),
                     "epochs": len(meta["history"])})
    return pd.DataFrame(rows).set_index("model")


def main_table(results: dict) -> pd.DataFrame:
    """Table 1/2 style: every evaluation on the AA points (so clean, each attack and AA share their points),
    with the quoted paper numbers beside ours."""
    n, scale = results["attack_roles"], results["config"]["logit_scale_attack"]
    rows = []
    for name, ev in results["evaluations"].items():
        h = headline(results, name, "subset")
        row = {"model": MODEL_LABELS[name], "test-time logits": ev["inference_label"], "clean": pct(h["clean"])}
        for key in ("fgsm", "pgd", "mim", "cw"):
            if n[key]:
                row[n[key].upper()] = pct(h[n[key]])
        row.update({f"{n['pgd'].upper()} on {scale:g}× logits": pct(h[n["pgd_scaled"]]),
                    "AA (APGD-CE + APGD-T)": pct(h["aa"]), "gap (clean − AA)": pct(h["clean"] - h["aa"])})
        if "aa_standard" in h:
            row["standard AA"] = pct(h["aa_standard"])
        table, paper_row = PAPER_ROWS.get(name, (None, None))
        if table is not None:
            quoted = {k: quote(v, table) for k, v in zip(table["columns"], table["rows"][paper_row])}
            row["paper clean / PGD / AA (quoted)"] = f"{quoted['clean']} / {quoted['pgd']} / {quoted['aa']}"
        rows.append(row)
    return pd.DataFrame(rows).set_index("model").fillna("")


def group_table(results: dict, attacks: tuple[str, ...] = ("clean", "pgd", "aa")) -> pd.DataFrame:
    """Head / middle / tail accuracy (%) with 95% bootstrap CIs; every column on the AA points when "aa" is
    asked for, so the columns of one model share their points."""
    n, groups = results["attack_roles"], results["groups"]
    points = "subset" if "aa" in attacks else "all"
    columns = {}
    for name in results["evaluations"]:
        e = evaluation(results, name)
        for attack in attacks:
            key = n.get(attack) or attack
            columns[(MODEL_LABELS[name], key.upper())] = {
                g: _ci(evaluation_statistic(e, [e.correct(key, points)], of_classes(members), points=points,
                                            **bootstrap_args(results))) for g, members in groups.items()}
    return pd.DataFrame(columns).T


def _ci(estimate) -> str:
    return with_ci(estimate.value, estimate.ci)


def tail_summary(results: dict) -> str:
    pgd, groups = role(results, "pgd"), results["groups"]
    lines = []
    for name in ("plain", "at_fc", "sml_bal"):
        if name not in results["evaluations"]:
            continue
        clean, rob = (np.asarray(attack_entry(results, name, a)["per_class"]) for a in ("clean", pgd))
        lines.append(f"* **{MODEL_LABELS[name]}**: clean {pct(clean[groups['head']].mean())}% on the head vs "
                     f"{pct(clean[groups['tail']].mean())}% on the tail; under {pgd.upper()} "
                     f"{pct(rob[groups['head']].mean())}% vs {pct(rob[groups['tail']].mean())}%.")
    return "\n".join(lines)


def fake_gain_table(results: dict) -> pd.DataFrame:
    """Every model's class-balanced accuracy under the reference PGD and under the same PGD on its logits multiplied
    by the config's scale, and the first minus the second paired over the same points (a positive value: accuracy
    that only the unscaled attack leaves), the largest first, beside the logits the model serves."""
    pgd, scaled = role(results, "pgd"), role(results, "pgd_scaled")
    times = f"{pgd.upper()} on {results['config']['logit_scale_attack']:g}× logits"
    rows = []
    for name, ev in results["evaluations"].items():
        e, boot = evaluation(results, name), bootstrap_args(results)
        balanced = {a: evaluation_statistic(e, [e.correct(a)], mean, **boot).value for a in (pgd, scaled)}
        gain = compare_attacks(e, scaled, pgd, mean, **boot)
        rows.append({"model": MODEL_LABELS[name], "test-time logits": ev["inference_label"],
                     f"{pgd.upper()} (class-balanced)": pct(balanced[pgd]),
                     f"{times} (class-balanced)": pct(balanced[scaled]),
                     f"{pgd.upper()} − {times}": _ci(gain), "order": -gain.value})
    return pd.DataFrame(rows).sort_values("order", kind="stable").drop(columns="order").set_index("model")


def kappa_rows(results: dict) -> list[dict]:
    """Clean, PGD (all test points) and AA (AA points) of AT-FC at every kappa."""
    pgd = role(results, "pgd")
    rows = []
    for kappa in results["kappa"]["grid"]:
        e = Evaluation.from_json(results["kappa"]["evaluations"][f"{kappa:g}"])
        rows.append({"kappa": kappa, "clean": float(e.correct("clean").mean()), "pgd": float(e.correct(pgd).mean()),
                     "aa": float(e.correct("aa", "subset").mean())})
    return rows


def kappa_table(results: dict) -> pd.DataFrame:
    return pd.DataFrame([{"κ": r["kappa"], "logit factor": f"{10 ** -r['kappa']:g}", "clean %": pct(r["clean"]),
                          "PGD %": pct(r["pgd"]), "AA % (AA points)": pct(r["aa"])}
                         for r in kappa_rows(results)]).set_index("κ")


def remedy_table(results: dict) -> pd.DataFrame:
    """C4: AT-FC and its inference remedies (same weights, other test-time heads), clean / PGD on every test
    point and AA on the AA points, beside the quoted Table 1 rows."""
    pgd, rows = role(results, "pgd"), []
    for name in ("at_fc", "la_post", "rescale", "tau_norm"):
        if name not in results["evaluations"]:
            continue
        e = evaluation(results, name)
        row = {"model": MODEL_LABELS[name], "test-time logits": results["evaluations"][name]["inference_label"],
               "clean %": pct(e.correct("clean").mean()), f"{pgd.upper()} %": pct(e.correct(pgd).mean()),
               "AA % (AA points)": pct(e.correct("aa", "subset").mean())}
        table, paper_row = PAPER_ROWS[name]
        row["paper clean / PGD / AA (quoted)"] = " / ".join(
            quote(v, table) for k, v in zip(table["columns"], table["rows"][paper_row]) if k in ("clean", "pgd", "aa"))
        rows.append(row)
    return pd.DataFrame(rows).set_index("model")


def _clean_aa(record: dict) -> tuple[float, float]:
    e = Evaluation.from_json(record)
    return float(e.correct("clean").mean()), float(e.correct("aa", "subset").mean())


def ablation_table(results: dict) -> pd.DataFrame:
    """C9: RoBal with m0 = 0.1, tau_m = 0 over tau_b - tau_m, beside the quoted Table 3 (block 2)."""
    columns = ["τ_b − τ_m", "end: clean / AA %", "τ_p (validation)", "best τ_p: clean / AA %",
               "paper end → best τ_p (quoted)"]
    rows = []
    for r in results["ablation"]["rows"]:
        quoted = PAPER_TABLE3_BLOCK2["rows"].get(r["tau_b_minus_tau_m"])
        end, best = _clean_aa(r["end"]), _clean_aa(r["best"])
        rows.append([r["tau_b_minus_tau_m"], f"{pct(end[0])} / {pct(end[1])}", r["validation"]["picked"],
                     f"{pct(best[0])} / {pct(best[1])}",
                     " → ".join(" / ".join(quote(v, PAPER_TABLE3_BLOCK2) for v in pair) for pair in quoted)
                     if quoted else ""])
    return pd.DataFrame(rows, columns=columns).set_index(columns[0])


def feature_norm_summary(results: dict) -> str:
    v = next(v for v in claims.verdicts(results) if v.claim == "C7")
    f = results["feature_norms"]
    ratio = np.asarray(f["ratio"])
    fooled = np.array([c == "1" for c in f["fooled"]])
    robust = np.array([c == "1" for c in f["robust"]])
    if not fooled.any() or not robust.any():
        return "Too few fooled or robust points for the feature-norm ratio."
    means = ratio[fooled].mean(), ratio[robust].mean()
    side = ("both below 1: the attack shrinks the features of both groups" if max(means) < 1 else
            "both above 1: the attack inflates the features of both groups" if min(means) > 1 else
            "one on each side of 1")
    return (f"Feature-norm ratio ‖f(x+δ)‖/‖f(x)‖ of AT-FC under {results['attack_roles']['pgd'].upper()} on every "
            f"test point: mean {means[0]:.3f} over the {fooled.sum()} fooled points and {means[1]:.3f} over the "
            f"{robust.sum()} that stay robust ({side}). Paired difference: {v.parts[1].text()}.")


def quote(value: float, table: dict) -> str:
    """A quoted number with the digits the paper printed."""
    return f"{value:.{table['digits']}f}"


def paper_comparison(results: dict) -> pd.DataFrame:
    """Paper number (quoted, with its table) vs ours (AA points), the profile, and a verdict."""
    profile, n = results["config"]["profile"], results["attack_roles"]
    rows = []
    for name, (table, paper_row) in PAPER_ROWS.items():
        if name not in results["evaluations"]:
            continue
        ours = {k: headline(results, name, "subset").get(n.get(k) or k) for k in table["columns"]}
        for column, quoted in zip(table["columns"], table["rows"][paper_row]):
            if ours[column] is None:
                continue
            mine = 100 * ours[column]
            verdict = ("not comparable at this scale" if profile != "paper" else
                       f"reproduced (±{PAPER_TOLERANCE_PT:g} pt)" if abs(mine - quoted) <= PAPER_TOLERANCE_PT
                       else "not reproduced")
            rows.append({"model": MODEL_LABELS[name], "metric": column.upper(),
                         "paper (quoted)": f"{quote(quoted, table)} ({table['ref'].split(' (')[0]}, {paper_row})",
                         "this book (AA points)": f"{mine:.1f}", "profile": profile, "verdict": verdict})
    return pd.DataFrame(rows).set_index(["model", "metric"])


decisions, verdicts = verdict_readers("robal", claims.verdicts)


def scale_notes(results: dict) -> str:
    """What this run's scale is, and which claims it cannot test and why (from the verdicts' own gates)."""
    cfg, sizes = results["config"], results["split_sizes"]
    head = (f"**Scale of this run ({cfg['profile']} profile):** {cfg['model']} of width {cfg['width']}, a "
            f"long-tailed set of {sizes['long_tailed']} images (n_max = {cfg['n_max']}, ratio "
            f"{1 / cfg['imbalance']:.0f}), {cfg['epochs']} epochs of PGD-{cfg['train_steps']} training with batch "
            f"{cfg['batch_size']}; {sizes['test']} test points, AutoAttack on {sizes['aa_points']}.")
    return "\n\n".join([head, untestable_notes(decisions(results))])
