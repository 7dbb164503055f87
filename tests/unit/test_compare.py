"""advfair.compare (`python -m advfair compare`): each row's numbers against computations made here from the
outcomes the records were built from, the Pareto front, the worst case over AutoAttack and the defence-aware
attacks, DAFA's rho on a hand example, every input error (nothing written, nothing printed), and a committed
results file read as its own reports read it."""
from __future__ import annotations

import json

import numpy as np
import pytest

from advfair import cli, compare
from advfair.experiments.common import RESULTS_SCHEMA, TEST_SEED_OFFSET
from advfair.experiments.roles import attack_roles
from advfair.locations import BOOK_RESULTS

from results_builder import labels, outcomes, record

C, PER_CLASS = 10, 20
Y = labels(PER_CLASS)
SUBSET = np.arange(0, len(Y), 2)  # every other point: 10 of each class, where AutoAttack runs
N_BOOT = 200
DAWA = "pgd20_dawa"


def _acc(values) -> list[float]:
    return [values] * C if np.isscalar(values) else list(values)


def _chapter(path, evaluations: dict, *, aware=(), seed: int = 3):
    """A chapter's results file around the records (the envelope fields compare reads)."""
    path.write_text(json.dumps({"chapter": "toy", "schema": RESULTS_SCHEMA, "config": {"profile": "cpu", "seed": seed},
                                "attack_roles": attack_roles(pgd="pgd10", aa="aa", aware=list(aware)),
                                "evaluations": evaluations, "track": {"evaluations": {}}}))
    return path


def _model(clean, aa=None, aware=None, *, aa_offset: int = 3, aware_offset: int = 5) -> tuple[dict, dict]:
    """A record and the outcomes it was built from: clean and `aware` on all points, AutoAttack on the subset.
    Offsets place the attacks' correct points apart from the clean ones (some points robust but clean-wrong)."""
    correct = {"clean": outcomes(Y, _acc(clean))}
    if aware is not None:
        correct[DAWA] = outcomes(Y, _acc(aware), offset=aware_offset)
    if aa is not None:
        correct["aa"] = outcomes(Y[SUBSET], _acc(aa), offset=aa_offset)
    return record(Y, correct, SUBSET, n_boot=N_BOOT), correct


def _spread(y: np.ndarray, robust: np.ndarray) -> dict[str, float]:
    """Average, worst class and NSD (population SD over the average) of per-class accuracy, written out here."""
    per_class = np.array([robust[y == c].mean() for c in range(C)])
    return {"mean": per_class.mean(), "worst": per_class.min(), "nsd": per_class.std() / per_class.mean()}


def _row(entries: list[dict], name: str) -> dict:
    return next(x for x in entries if x["row"] == name)


@pytest.fixture
def files(tmp_path):
    """A chapter file with two models and an `advfair evaluate` report (AutoAttack on all its points)."""
    a, a_correct = _model(np.linspace(0.3, 0.75, C), aa=np.linspace(0.2, 0.7, C))
    b, b_correct = _model(0.6, aa=[0.1] + [0.5] * (C - 1))
    mine_correct = {"clean": outcomes(Y, _acc(0.7)), "aa": outcomes(Y, _acc(0.4), offset=2)}
    mine = record(Y, mine_correct, on_subset=(), n_boot=N_BOOT)
    mine.update(model="pkg.models:net", dataset="cifar10", eps=8 / 255, per_class=PER_CLASS, weights="w.pt")
    (tmp_path / "mine.json").write_text(json.dumps(mine))
    return {"chapter": _chapter(tmp_path / "toy.json", {"a": a, "b": b}), "mine": tmp_path / "mine.json",
            "records": {"toy:a": a, "toy:b": b, "mine": mine},
            "correct": {"toy:a": a_correct, "toy:b": b_correct, "mine": mine_correct}}


def test_rows_and_their_numbers_equal_independent_computations(files):
    rows, left_out = compare.load_rows([files["chapter"], files["mine"]])
    assert [r.name for r in rows] == ["toy:a", "toy:b", "mine"]
    assert left_out == [f"{files['chapter']}: track"]  # the nested track is named, not silently dropped
    entries = compare.compare(rows, n_boot=N_BOOT, seed=0)
    for name in ("toy:a", "toy:b"):
        x, correct = _row(entries, name), files["correct"][name]
        assert (x["chapter"], x["profile"], x["seed"], x["model"]) == ("toy", "cpu", 3, name[4:])
        robust = correct["aa"] & correct["clean"][SUBSET]  # robust counts a point only if clean-correct too
        assert robust.sum() < correct["aa"].sum()  # ... which these records make matter
        for statistic, value in _spread(Y[SUBSET], robust).items():
            assert x["autoattack"][statistic]["value"] == pytest.approx(value)
            assert x["autoattack"][statistic]["n"] == len(SUBSET)
        for statistic in ("mean", "worst"):
            assert x["clean"][statistic]["value"] == pytest.approx(_spread(Y, correct["clean"])[statistic])
            assert x["clean"][statistic]["n"] == len(Y)
        # the intervals are the library's: equal to those of the record's own report at the same resamples
        report = files["records"][name]["reports"]["subset"]["attacks"]["aa"]
        assert [x["autoattack"][k]["ci"] for k in compare.STATISTICS] == [report["ci"][k] for k in compare.STATISTICS]
        assert x["worst_case"]["attacks"] == ["aa"] and x["worst_case"]["mean"] == x["autoattack"]["mean"]
    mine = _row(entries, "mine")
    assert (mine["model"], mine["dataset"], mine["autoattack"]["points"]) == ("pkg.models:net", "cifar10", "all")
    correct = files["correct"]["mine"]
    assert mine["autoattack"]["mean"]["value"] == pytest.approx(_spread(Y, correct["aa"] & correct["clean"])["mean"])
    assert mine["autoattack"]["mean"]["n"] == len(Y)


def test_pareto_front_of_hand_points():
    points = [(0.5, 0.2), (0.4, 0.3), (0.3, 0.1), (0.5, 0.2), (0.6, 0.0), (0.4, 0.2)]
    # (0.3, 0.1) and (0.4, 0.2) are beaten by (0.5, 0.2); equal points do not beat each other
    assert compare.pareto_front(points) == [True, True, False, True, True, False]


def test_rows_are_marked_on_the_front_and_without_robust_numbers_left_off(tmp_path):
    # every point clean-correct: the robust accuracies are these AutoAttack ones
    high_mean, _ = _model(1.0, aa=[0.1] + [0.8] * (C - 1))  # average 0.73, worst 0.1
    high_worst, _ = _model(1.0, aa=0.4)  # average 0.4, worst 0.4
    beaten, _ = _model(1.0, aa=[0.1] + [0.4] * (C - 1))  # below both
    plain, _ = _model(0.9)  # no AutoAttack, no aware attack: no robust accuracy
    path = _chapter(tmp_path / "p.json", {"m": high_mean, "w": high_worst, "b": beaten, "plain": plain})
    entries = compare.compare(compare.load_rows([path])[0], n_boot=N_BOOT)
    assert [x["pareto"] for x in entries] == [True, True, False, None]
    assert entries[3]["worst_case"] == {"n/a": "neither AutoAttack nor a defence-aware attack in this evaluation"}
    assert [line.split()[-1] for line in compare.text_table(entries).splitlines()[1:3]] == ["*", "*"]


def test_worst_case_over_autoattack_and_the_aware_attacks(tmp_path):
    with_aa, correct = _model(0.9, aa=0.6, aware=0.5, aa_offset=0)
    aware_only, aware_correct = _model(0.9, aware=0.5)
    rows, _ = compare.load_rows([_chapter(tmp_path / "d.json", {"m": with_aa, "n": aware_only}, aware=[DAWA])])
    m, n = compare.compare(rows, n_boot=N_BOOT)
    # per point on the subset (AutoAttack's points): robust only if it survives AutoAttack and the aware attack
    both = correct["aa"] & correct[DAWA][SUBSET] & correct["clean"][SUBSET]
    expected = _spread(Y[SUBSET], both)
    assert (m["worst_case"]["attacks"], m["worst_case"]["points"]) == (["aa", DAWA], "subset")
    for statistic, value in expected.items():
        assert m["worst_case"][statistic]["value"] == pytest.approx(value)
    alone = m["worst_case"]["alone"]
    assert alone["aa"]["mean"] == pytest.approx(0.6) and alone[DAWA]["mean"] == pytest.approx(0.5)
    assert m["worst_case"]["lowest"] == {"mean": DAWA, "worst": DAWA}
    assert expected["mean"] < min(a["mean"] for a in alone.values())  # failures on other points add up
    assert m["autoattack"]["mean"]["value"] == pytest.approx(0.6)  # AutoAttack alone is still reported
    # without AutoAttack: the aware attack alone, on all points, and the AutoAttack columns say why they are empty
    assert n["autoattack"] == {"n/a": "no AutoAttack in this evaluation"}
    assert (n["worst_case"]["attacks"], n["worst_case"]["points"]) == ([DAWA], "all")
    robust = aware_correct[DAWA] & aware_correct["clean"]
    assert n["worst_case"]["mean"]["value"] == pytest.approx(_spread(Y, robust)["mean"])
    table = compare.text_table([m, n])
    assert "worst case avg %" in table and "lowest alone (avg)" in table
    assert "n/a: d:n, autoattack: no AutoAttack in this evaluation" in table


def test_dafa_rho_of_a_hand_example(tmp_path, files):
    # per-class AutoAttack accuracies on the subset, every point clean-correct: W and A are these vectors' min and mean
    base, _ = _model(1.0, aa=[0.2] + [0.6] * (C - 1))  # W_b = 0.2, A_b = 0.56
    better, _ = _model(1.0, aa=[0.4] + [0.5] * (C - 1))  # W = 0.4, A = 0.49
    worse, _ = _model(1.0, aa=[0.1] + [0.7] * (C - 1))  # W = 0.1, A = 0.64
    broken, _ = _model(1.0, aa=[0.0] + [0.7] * (C - 1))  # W = 0: no rho against it
    first = _chapter(tmp_path / "r.json", {"base": base, "better": better, "broken": broken})
    second = _chapter(tmp_path / "s.json", {"worse": worse})  # another file, the same points: still paired
    rows, _ = compare.load_rows([first, second, files["mine"]])
    entries = {x["row"]: x["rho"] for x in compare.compare(rows, "r:base", n_boot=N_BOOT)}
    expected = {"r:better": (0.4 - 0.2) / 0.2 - (0.56 - 0.49) / 0.56, "s:worse": (0.1 - 0.2) / 0.2 - (0.56 - 0.64) / 0.56,
                "r:broken": (0.0 - 0.2) / 0.2 - (0.56 - 0.63) / 0.56, "r:base": 0.0}
    assert expected["r:better"] > 0 > expected["s:worse"]
    for name, value in expected.items():
        assert entries[name]["value"] == pytest.approx(value) and entries[name]["baseline"] == "r:base"
        assert entries[name]["n"] == len(SUBSET) and entries[name]["ci"][0] <= entries[name]["ci"][1]
    assert entries["r:base"]["ci"] == [0.0, 0.0]
    assert entries["mine"] == {"n/a": "robust accuracy on all points here, on subset points in the baseline"}
    against_broken = {x["row"]: x["rho"] for x in compare.compare(rows, "r:broken", n_boot=N_BOOT)}
    assert "worst-class robust accuracy is 0" in against_broken["r:better"]["n/a"]


def test_rho_is_not_paired_across_other_points(tmp_path, files):
    other_y = labels(PER_CLASS + 2)
    other = record(other_y, {"clean": outcomes(other_y, _acc(0.9)), "aa": outcomes(other_y[SUBSET], _acc(0.5))},
                   SUBSET, n_boot=N_BOOT)
    rows, _ = compare.load_rows([files["chapter"], _chapter(tmp_path / "other.json", {"o": other})])
    rho = {x["row"]: x["rho"] for x in compare.compare(rows, "toy:b", n_boot=N_BOOT)}
    assert rho["other:o"] == {"n/a": "evaluated on other points than the baseline (their labels or subsets differ)"}
    assert "value" in rho["toy:a"]  # the same points: paired


def test_rho_is_not_paired_across_radii(tmp_path, files):
    wide = json.loads(files["chapter"].read_text())
    wide["config"]["eps"] = 0.3  # the same points and outcomes at another radius (the toy file's is unset)
    (tmp_path / "wide.json").write_text(json.dumps(wide))
    rows, _ = compare.load_rows([files["chapter"], tmp_path / "wide.json"])
    rho = {x["row"]: x["rho"] for x in compare.compare(rows, "toy:b", n_boot=N_BOOT)}
    assert rho["wide:a"]["n/a"].startswith("another radius than the baseline")


@pytest.fixture
def cli_paths(files, tmp_path, monkeypatch):
    # the committed results' folder as the CLI finds it: a copy here, so that a broken guard writes nothing in the book
    monkeypatch.setenv("ADVFAIR_RESULTS_DIR", str(tmp_path / "results"))
    (tmp_path / "results").mkdir()
    (tmp_path / "notes.txt").write_text("not json")
    (tmp_path / "other.json").write_text(json.dumps({"schema": "something/1"}))
    (tmp_path / "bare.json").write_text(json.dumps({"schema": RESULTS_SCHEMA, "chapter": "toy"}))
    (tmp_path / "folder").mkdir()
    return {"toy": str(files["chapter"]), "mine": str(files["mine"]), "tmp": tmp_path}


@pytest.mark.parametrize("args, message", [
    (["{tmp}/missing.json"], "RESULTS='{tmp}/missing.json' is not allowed: expected an existing file"),
    (["{tmp}/notes.txt"], "RESULTS='{tmp}/notes.txt' is not allowed: expected a report of `advfair evaluate --out`"),
    (["{tmp}/other.json"], "this one has schema 'something/1'"),
    (["{tmp}/bare.json"], "and no evaluations with attack roles"),
    (["{toy}", "{toy}"], "the row 'toy:a' comes twice"),
    (["{toy}", "--baseline", "toy:z"], "--baseline='toy:z' is not allowed: expected one of the rows: 'toy:a', 'toy:b'"),
    (["{toy}", "--out", "{tmp}/folder"], "--out='{tmp}/folder' is not allowed: expected a file path, not a folder"),
    (["{toy}", "--out", "{book}/compare_never_written.json"], "results in {book} (give another --out)"),
    (["{toy}", "--out", "{toy}"], "--out='{toy}' is not allowed: expected a path other than the results files"),
    (["{toy}", "--figure", "{tmp}/f.jpg"], "--figure='{tmp}/f.jpg' is not allowed: expected a file path ending in .png"),
    (["{toy}", "--figure", "{tmp}/folder"], "--figure='{tmp}/folder' is not allowed"),
    (["{toy}", "--figure", "{book}/f.png"], "--figure='{book}/f.png' is not allowed: expected a path outside "
                                           "the book's committed results"),
    (["{toy}", "--out", "{tmp}/same.png", "--figure", "{tmp}/same.png"], "a path other than --out's"),
])
def test_every_bad_input_stops_before_any_work(cli_paths, capsys, args, message):
    names = {**cli_paths, "book": str(cli_paths["tmp"] / "results")}
    outputs = [] if {"--out", "--figure"} & set(args) else ["--out", "{tmp}/t.json", "--figure", "{tmp}/f.png"]
    assert cli.main(["compare", *(a.format(**names) for a in (*args, *outputs))]) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith("advfair: ") and message.format(**names) in captured.err
    assert captured.out == ""  # no table: it stopped before any statistic
    tmp = cli_paths["tmp"]
    assert not (tmp / "t.json").exists() and not (tmp / "f.png").exists() and not (tmp / "f.jpg").exists()
    assert not list((tmp / "results").iterdir())
    assert json.loads((tmp / "toy.json").read_text())["chapter"] == "toy"  # an input is never replaced


def test_the_command_prints_the_table_and_writes_json_and_figure(files, tmp_path, capsys):
    out, figure = tmp_path / "sub" / "table.json", tmp_path / "tradeoff.png"
    args = ["compare", str(files["chapter"]), str(files["mine"]), "--baseline", "toy:a", "--out", str(out),
            "--figure", str(figure)]
    assert cli.main(args) == 0
    printed = capsys.readouterr().out
    header = printed.splitlines()[0]
    assert header.startswith("row") and "AA avg %" in header and "rho vs toy:a" in header
    assert all(name in printed for name in ("toy:a", "toy:b", "mine", f"wrote {out}", f"wrote {figure}"))
    written = json.loads(out.read_text())
    assert written["schema"] == compare.SCHEMA and written["baseline"] == "toy:a"
    assert [x["row"] for x in written["rows"]] == ["toy:a", "toy:b", "mine"]
    assert written["rows"][0]["source"] == str(files["chapter"])
    assert figure.read_bytes().startswith(b"\x89PNG")
    assert not list(tmp_path.rglob(".*.tmp"))


def test_a_committed_results_file_reads_as_its_own_reports():
    path = BOOK_RESULTS / "classwise_evidence.json"
    results = json.loads(path.read_text())
    rows, left_out = compare.load_rows([path])
    assert [r.name for r in rows] == [f"classwise_evidence:{name}" for name in results["evaluations"]]
    assert left_out == [f"{path}: mnist"]
    # the chapter's reports were drawn with its config's resample count and its test seed: so are these
    config = results["config"]
    entries = compare.compare(rows, n_boot=config["n_boot"], seed=config["seed"] + TEST_SEED_OFFSET)
    aa = results["attack_roles"]["aa"]
    for x, record in zip(entries, results["evaluations"].values()):
        assert (x["chapter"], x["profile"], x["seed"]) == ("classwise", config["profile"], config["seed"])
        report = record["reports"]["subset"]["attacks"][aa]
        assert x["autoattack"]["mean"]["value"] == pytest.approx(report["overall"])  # a balanced test set
        assert x["autoattack"]["mean"]["n"] == record["points"]["subset"]
        for statistic in compare.STATISTICS:
            assert x["autoattack"][statistic]["value"] == pytest.approx(report[statistic])
            assert x["autoattack"][statistic]["ci"] == pytest.approx(report["ci"][statistic])
        clean = record["reports"]["all"]["attacks"]["clean"]
        assert x["clean"]["mean"]["value"] == pytest.approx(clean["overall"])
        assert x["clean"]["worst"]["value"] == pytest.approx(clean["worst"])


def test_an_undefined_nsd_is_n_a_not_nan(tmp_path):
    """A row whose AutoAttack accuracy is 0 everywhere has no NSD: the JSON says n/a (NaN is not JSON)."""
    rec, _ = _model(0.8, aa=0.0)
    rows, _ = compare.load_rows([_chapter(tmp_path / "zero.json", {"m": rec})])
    entry = compare.compare(rows, n_boot=N_BOOT)[0]
    assert entry["autoattack"]["mean"]["value"] == 0 and "n/a" in entry["autoattack"]["nsd"]
    json.dumps(entry, allow_nan=False)  # raises on a NaN
