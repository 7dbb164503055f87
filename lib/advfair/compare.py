"""`python -m advfair compare`: every model evaluated in some results files in one class-wise table and one
trade-off figure, so a model evaluated with `python -m advfair evaluate --out` sits next to the book's models.

A row is one evaluation record: the one record of an `advfair evaluate` file (row name: the file's stem), or each
record of a chapter's `results["evaluations"]` (row name: "<file stem>:<evaluation>"). A chapter's nested tracks
(the class-wise chapter's MNIST track, RoBal's kappa sweep, AALP's sweep) are left out, and listed as left out:
they hold another data set or other settings of the same models.

Per row, each number with the library's class-stratified bootstrap interval (`advfair.evaluation.paired`):
clean accuracy on all points; AutoAttack (the `aa` role) on the points it ran on; the worst case, per point,
over AutoAttack and the defence-aware attacks (the `aware` role) on the same points, the row's robust accuracy
(AutoAttack alone where a file names no aware attack); and DAFA's rho against a baseline row, only where both
were evaluated on the same points (a paired bootstrap).
"""
from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .evaluation import Evaluation, evaluation_statistic, same_points
from .evaluation.metrics import spread_rows
from .evaluation.paired import Estimate, bootstrap_per_class, interval, mean, per_class_accuracy, worst
from .evaluation.protocol import SCHEMA as EVALUATION_SCHEMA
from .experiments.common import RESULTS_SCHEMA
from .files import write_atomic
from .tables import with_ci
from .validation import ConfigError, fail

SCHEMA, N_BOOT, SEED = "advfair.compare/1", 1000, 0  # the JSON's schema; every interval's resamples and seed
# An `advfair evaluate` file names no attack roles: its AutoAttack is whichever of these it ran, the stronger first.
EVALUATE_AA = ("aa_standard", "aa")
FIGURE_FORMATS = (".png", ".pdf", ".svg")
STATISTICS = ("mean", "worst", "nsd")
RESULTS_ALLOWED = (f"a report of `advfair evaluate --out` (schema {EVALUATION_SCHEMA!r}) or a chapter's results "
                   f"file with evaluations and attack roles (schema {RESULTS_SCHEMA!r})")


@dataclass(frozen=True)
class Row:
    """One evaluated model. `name` is what --baseline names; `aa` the AutoAttack that ran on it (None: none did);
    `aware` the defence-aware attacks that ran on it; `test_indices` the test images, where the file says."""

    name: str
    source: str
    model: str
    context: dict
    evaluation: Evaluation
    aa: str | None
    aware: tuple[str, ...]
    test_indices: list[int] | None = None


# ---- reading the results files (every check before any statistic) ----

def load_rows(paths: Sequence[Path]) -> tuple[list[Row], list[str]]:
    """The rows of every results file, and the nested tracks left out ("<file>: <track>")."""
    rows, left_out = [], []
    for path in map(Path, paths):
        results = _read(path)
        rows += _rows_of(path, results)
        left_out += [f"{path}: {key}" for key, value in results.items()
                     if isinstance(value, dict) and "evaluations" in value]
    names = [r.name for r in rows]
    repeated = next((n for n in names if names.count(n) > 1), None)
    if repeated is not None:
        fail("RESULTS", [str(p) for p in paths], f"each file once, with file names that differ (the row "
                                                 f"{repeated!r} comes twice; a row is named by its file's stem)")
    return rows, left_out


def _read(path: Path) -> dict:
    if not path.is_file():
        fail("RESULTS", str(path), "an existing file: " + RESULTS_ALLOWED)
    try:
        results = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        fail("RESULTS", str(path), f"{RESULTS_ALLOWED} (this one is not JSON: {error})")
    fields = results if isinstance(results, dict) else {}
    chapter = isinstance(fields.get("evaluations"), dict) and isinstance(fields.get("attack_roles"), dict)
    if not (fields.get("schema") == EVALUATION_SCHEMA or (fields.get("schema") == RESULTS_SCHEMA and chapter)):
        fail("RESULTS", str(path), f"{RESULTS_ALLOWED} (this one has schema {fields.get('schema')!r}"
                                   f"{'' if chapter else ' and no evaluations with attack roles'})")
    return results


def _rows_of(path: Path, results: dict) -> list[Row]:
    if results["schema"] == EVALUATION_SCHEMA:
        e = Evaluation.from_json(results)
        context = {k: results.get(k) for k in ("dataset", "eps", "per_class", "weights")}
        return [Row(path.stem, str(path), str(results.get("model")), context, e,
                    next((a for a in EVALUATE_AA if a in e.predictions), None), (), results.get("test_indices"))]
    roles, config = results["attack_roles"], results.get("config", {})
    context = {"chapter": results.get("chapter"), "profile": config.get("profile"), "seed": config.get("seed"),
               "eps": config.get("eps")}
    rows = []
    for name, record in results["evaluations"].items():
        e = Evaluation.from_json(record)
        rows.append(Row(f"{path.stem}:{name}", str(path), name,
                        {**context, "inference": record.get("inference_label")},
                        e, roles.get("aa") if roles.get("aa") in e.predictions else None,
                        tuple(a for a in roles.get("aware") or () if a in e.predictions)))
    return rows


def check_baseline(rows: Sequence[Row], baseline: str | None) -> None:
    if baseline not in (None, *[r.name for r in rows]):
        fail("--baseline", baseline, "one of the rows: " + ", ".join(repr(r.name) for r in rows))


def check_outputs(results: Sequence[Path], out: Path | None, figure: Path | None) -> None:
    """The figure path, and that neither output replaces a file being compared. (--out's own checks, a folder or
    the book's committed results, are the CLI's `checked_output`.)"""
    if figure is not None and (figure.is_dir() or figure.suffix.lower() not in FIGURE_FORMATS):
        fail("--figure", str(figure), "a file path ending in " + ", ".join(FIGURE_FORMATS))
    inputs = {Path(p).resolve() for p in results}
    for field, path in (("--out", out), ("--figure", figure)):
        if path is not None and path.resolve() in inputs:
            fail(field, str(path), "a path other than the results files compared")
    if None not in (out, figure) and out.resolve() == figure.resolve():
        fail("--figure", str(figure), "a path other than --out's")


# ---- the numbers of a row ----

def spread_estimates(y: np.ndarray, correct: np.ndarray, num_classes: int, *, n_boot: int = N_BOOT,
                     seed: int = SEED) -> dict[str, dict]:
    """Average, worst class and NSD of the per-class accuracies of `correct`, each with its interval from one set
    of stratified resamples, drawn as `classwise_report` draws them (equal seeds, equal intervals)."""
    point = spread_rows(per_class_accuracy(correct, y, num_classes))
    boot = spread_rows(bootstrap_per_class(y, correct, n_boot, seed, num_classes))
    # NSD is undefined at an average of 0: n/a, never a NaN in the JSON
    return {k: Estimate(float(point[k]), tuple(interval(boot[k])), len(y)).to_json() if np.isfinite(point[k])
            else {"n/a": f"{k} is undefined here (the average is 0)"} for k in STATISTICS}


def robust_attacks(row: Row) -> tuple[list[str], str]:
    """The attacks of the row's robust accuracy (AutoAttack and the aware ones) and their points: the subset if
    any of them ran only there (the other attacks' outcomes are then read on the subset too)."""
    attacks = [a for a in (row.aa, *row.aware) if a is not None]
    return attacks, "subset" if any(a in row.evaluation.on_subset for a in attacks) else "all"


def _not_available(reason: str) -> dict:  # a column without a number, with the reason
    return {"n/a": reason}


def _autoattack(row: Row, n_boot: int, seed: int) -> dict:
    if row.aa is None:
        return _not_available("no AutoAttack in this evaluation")
    e = row.evaluation
    points = "subset" if row.aa in e.on_subset else "all"
    return {"attack": row.aa, "points": points,
            **spread_estimates(e.labels(points), e.correct(row.aa, points), len(e.classes), n_boot=n_boot, seed=seed)}


def _worst_case(row: Row, n_boot: int, seed: int) -> dict:
    attacks, points = robust_attacks(row)
    if not attacks:
        return _not_available("neither AutoAttack nor a defence-aware attack in this evaluation")
    e = row.evaluation
    y, c = e.labels(points), len(e.classes)
    alone = {a: spread_rows(per_class_accuracy(e.correct(a, points), y, c)) for a in attacks}
    return {"attacks": attacks, "points": points,
            **spread_estimates(y, e.worst_case(attacks, points), c, n_boot=n_boot, seed=seed),
            # the single attack with the lowest number: which attack the worst case owes most to
            "lowest": {k: min(attacks, key=lambda a: alone[a][k]) for k in ("mean", "worst")},
            "alone": {a: {k: float(s[k]) for k in ("mean", "worst")} for a, s in alone.items()}}


def dafa_rho(base: np.ndarray, model: np.ndarray) -> np.ndarray:
    """DAFA's rho of per-class robust accuracies (..., C) of the baseline and the model: the relative worst-class
    gain minus the relative loss of average, (W_m - W_b) / W_b - (A_b - A_m) / A_b; nan where W_b = 0."""
    w_b, a_b = worst(base), mean(base)
    return np.where(w_b > 0, (worst(model) - w_b) / w_b - (a_b - mean(model)) / a_b, np.nan)


def _unpaired(row: Row, base: Row) -> str | None:
    """Why the row and the baseline are not paired (None: they are)."""
    (mine, points), (theirs, base_points) = robust_attacks(row), robust_attacks(base)
    if not (mine and theirs):
        return "no robust accuracy " + ("in this row" if not mine else "in the baseline")
    if points != base_points:
        return f"robust accuracy on {points} points here, on {base_points} points in the baseline"
    if row.evaluation.classes != base.evaluation.classes:
        return "other classes than the baseline's"
    if row.context.get("eps") != base.context.get("eps"):
        return f"another radius than the baseline (eps {row.context.get('eps')} against {base.context.get('eps')})"
    try:
        same_points(row.evaluation, base.evaluation)
    except ConfigError:
        return "evaluated on other points than the baseline (their labels or subsets differ)"
    if None not in (row.test_indices, base.test_indices) and row.test_indices != base.test_indices:
        return "evaluated on other test images than the baseline (their test_indices differ)"
    return None


def _rho(row: Row, base: Row, n_boot: int, seed: int) -> dict:
    reason = _unpaired(row, base)
    if reason is not None:
        return _not_available(reason)
    (attacks, points), (base_attacks, _) = robust_attacks(row), robust_attacks(base)
    b, e = base.evaluation, row.evaluation
    outcomes = [b.worst_case(base_attacks, points), e.worst_case(attacks, points)]
    if worst(per_class_accuracy(outcomes[0], b.labels(points), len(b.classes))) == 0:
        return _not_available("the baseline's worst-class robust accuracy is 0 (rho divides by it)")
    # one resample set for both rows (paired); a resample where W_b = 0 gives nan, which the interval leaves out
    estimate = evaluation_statistic(b, outcomes, dafa_rho, points=points, n_boot=n_boot, seed=seed)
    return {"baseline": base.name, **estimate.to_json()}


def pareto_front(points: Sequence[tuple[float, float]]) -> list[bool]:
    """Per (average, worst class) point: True where no other point is at least as good on both and better on one."""
    return [not any(o[0] >= p[0] and o[1] >= p[1] and (o[0] > p[0] or o[1] > p[1]) for o in points) for p in points]


def compare(rows: Sequence[Row], baseline: str | None = None, *, n_boot: int = N_BOOT, seed: int = SEED) -> list[dict]:
    """One JSON entry per row (see the module's docstring); `pareto` marks the front of the robust accuracies."""
    check_baseline(rows, baseline)
    base = next((r for r in rows if r.name == baseline), None)
    entries = []
    for row in rows:
        e = row.evaluation
        entries.append({
            "row": row.name, "source": row.source, "model": row.model, **row.context,
            "points": {"all": len(e.y), "subset": len(e.subset)},
            "clean": {"points": "all", **spread_estimates(e.labels(), e.correct("clean"), len(e.classes),
                                                         n_boot=n_boot, seed=seed)},
            "autoattack": _autoattack(row, n_boot, seed),
            "worst_case": _worst_case(row, n_boot, seed),
            **({"rho": _rho(row, base, n_boot, seed)} if base is not None else {}),
        })
    robust = [(x["worst_case"]["mean"]["value"], x["worst_case"]["worst"]["value"]) if "mean" in x["worst_case"]
              else None for x in entries]
    front = iter(pareto_front([p for p in robust if p is not None]))
    for x, p in zip(entries, robust):
        x["pareto"] = None if p is None else next(front)
    return entries


def document(entries: list[dict], *, baseline: str | None, left_out: list[str], n_boot: int = N_BOOT,
             seed: int = SEED) -> dict:
    """The --out JSON: the rows, and what the numbers rest on."""
    return {"schema": SCHEMA, "baseline": baseline, "bootstrap": {"n_boot": n_boot, "seed": seed},
            "tracks_left_out": left_out, "rows": entries}


# ---- the printed table and the figure ----

def _cell(numbers: dict, statistic: str = "value") -> str:
    """`numbers[statistic]` (or `numbers` itself, an estimate such as rho's) with its interval: in % for
    accuracies, as it is for NSD and rho; "n/a" where there is none."""
    estimate = numbers if statistic == "value" else numbers.get(statistic)
    if estimate is None or "value" not in estimate:
        return "n/a"
    scale, digits = (100, 1) if statistic in ("mean", "worst") else (1, 3)
    return with_ci(estimate["value"], estimate["ci"], scale=scale, digits=digits)


def _counts(entry: dict) -> str:
    """The points the clean and the robust numbers rest on (AutoAttack's subset, or all points)."""
    return f"{entry['points']['all']}/{entry['worst_case'].get('mean', {}).get('n', '-')}"


def _columns(entries: list[dict], baseline: str | None) -> list[tuple[str, Callable[[dict], str]]]:
    columns = [("row", lambda x: x["row"]), ("n clean/robust", _counts),
               ("clean avg %", lambda x: _cell(x["clean"], "mean")),
               ("clean worst %", lambda x: _cell(x["clean"], "worst")),
               ("AA avg %", lambda x: _cell(x["autoattack"], "mean")),
               ("AA worst %", lambda x: _cell(x["autoattack"], "worst")),
               ("AA NSD", lambda x: _cell(x["autoattack"], "nsd"))]
    if any(len(x["worst_case"].get("attacks", ())) > 1 for x in entries):  # some file names aware attacks
        columns += [("worst case avg %", lambda x: _cell(x["worst_case"], "mean")),
                    ("worst case worst %", lambda x: _cell(x["worst_case"], "worst")),
                    ("lowest alone (avg)", lambda x: x["worst_case"].get("lowest", {}).get("mean", "n/a"))]
    columns.append(("front", lambda x: "*" if x["pareto"] else ""))
    if baseline is not None:
        columns.append((f"rho vs {baseline}", lambda x: _cell(x["rho"])))
    return columns


def text_table(entries: list[dict], baseline: str | None = None, left_out: Sequence[str] = ()) -> str:
    """The aligned table (95 % intervals in brackets), then why each n/a is one and the tracks left out."""
    columns = _columns(entries, baseline)
    cells = [[header for header, _ in columns]] + [[show(x) for _, show in columns] for x in entries]
    widths = [max(len(r[i]) for r in cells) for i in range(len(columns))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in cells]
    lines += [f"n/a: {x['row']}, {block}: {x[block]['n/a']}" for x in entries
              for block in ("autoattack", "worst_case", "rho") if "n/a" in x.get(block, {})]
    lines += ["front: on the Pareto front of the robust (worst-case) average and worst-class accuracy"]
    lines += [f"left out (a nested track): {track}" for track in left_out]
    return "\n".join(lines)


def _bar(estimate: dict) -> list[list[float]]:
    # a percentile interval need not contain its estimate (small, skewed classes): clip the bar there
    value, (lo, hi) = estimate["value"], estimate["ci"]
    return [[100 * max(value - lo, 0)], [100 * max(hi - value, 0)]]


def save_figure(entries: list[dict], path: Path) -> None:
    """Average against worst-class robust accuracy (%), one point per row with its intervals, the Pareto front
    joined; written atomically. A Figure on the Agg canvas, without pyplot: no global backend is changed."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7.5, 5.5))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    shown = [x for x in entries if x["pareto"] is not None]
    for x in shown:
        m, w = x["worst_case"]["mean"], x["worst_case"]["worst"]
        ax.errorbar(100 * m["value"], 100 * w["value"], xerr=_bar(m), yerr=_bar(w), fmt="o", capsize=2,
                    color="C3" if x["pareto"] else "C0", elinewidth=0.8)
        ax.annotate(x["row"], (100 * m["value"], 100 * w["value"]), textcoords="offset points", xytext=(4, 4),
                    fontsize="x-small")
    front = sorted((100 * x["worst_case"]["mean"]["value"], 100 * x["worst_case"]["worst"]["value"])
                   for x in shown if x["pareto"])
    if front:
        ax.plot(*zip(*front), linestyle="--", color="C3", label="Pareto front")
        ax.legend(fontsize="small")
    ax.set_xlabel("average robust accuracy (%)")
    ax.set_ylabel("worst-class robust accuracy (%)")
    ax.set_title("robust accuracy: AutoAttack, and the defence-aware attacks where named"
                 if shown else "no row has a robust accuracy")
    fig.tight_layout()
    write_atomic(path, lambda handle: fig.savefig(handle, format=path.suffix[1:].lower()))
