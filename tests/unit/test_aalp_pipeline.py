"""The AALP chapter end to end on a tiny config: the trained models, every evaluation, the eps sweep, the
contribution statistics, C2's training records, the tables, figures and verdicts, and a rerun from the
model cache. AutoAttack (APGD and Square) is replaced by a cheap PGD stand-in (its own tests are in
test_attacks.py): the wiring is what is tested here. Also: every field of the config is validated."""
from __future__ import annotations

import copy
import json
from pathlib import Path

import matplotlib
import pandas as pd
import pytest
import torch

matplotlib.use("Agg")

from advfair import autoattack as aa_module
from advfair import attacks  # noqa: E402
from advfair.experiments import aalp  # noqa: E402
from advfair.experiments.aalp import figures, report  # noqa: E402
from advfair.experiments.aalp.config import MODEL_KEYS, AALPConfig  # noqa: E402
from advfair.validation import ConfigError  # noqa: E402

TINY = dict(train_per_class=5, test_per_class=4, aa_per_class=2, epochs=2, width=2, eval_steps=2, cw_steps=2,
            long_steps=2, restarts=2, square_queries=5, n_boot=20, batch_size=10, device="cpu")


@pytest.fixture(scope="module")
def runs(data_dir, tmp_path_factory):
    if not (data_dir / "mnist.npz").exists():
        pytest.skip("no mnist.npz")
    calls = []

    def aa_stand_in(model, x, y, *, eps, version="standard", batch_size=500, seed=0, **kwargs):
        calls.append((len(x), version, kwargs.get("queries")))
        generator = torch.Generator().manual_seed(seed)
        return attacks.pgd(model, x, y, eps=eps, alpha=eps / 4, steps=2, early_stop=True, generator=generator), []

    cache = tmp_path_factory.mktemp("cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(aa_module, "autoattack", aa_stand_in)
        cfg = aalp.make_config("cpu", **TINY, data_dir=str(data_dir), cache_dir=str(cache))
        first = aalp.CHAPTER.run(cfg)
        again = aalp.CHAPTER.run(cfg)
    return cfg, first, again, calls


def test_results_envelope_and_evaluations(runs):
    cfg, results, _, calls = runs
    assert json.loads(json.dumps(results)) == results
    assert results["chapter"] == "aalp" and results["config_hash"] == cfg.config_hash()
    assert list(results["evaluations"]) == list(MODEL_KEYS) == list(results["models"])
    full = results["evaluations"]["alp"]
    assert list(full["attacks"]) == ["clean", "pgd2", "cw2", "pgd2x2", "aa", "square"]
    assert full["points"] == {"all": 40, "subset": 20}
    assert {a: full["attacks"][a]["points"] for a in ("pgd2", "pgd2x2", "aa", "square")} == {
        "pgd2": "all", "pgd2x2": "subset", "aa": "subset", "square": "subset"}
    assert full["attacks"]["pgd2x2"]["restarts"] == 2 and full["attacks"]["square"]["steps"] == 5
    # AutoAttack (APGD-CE + APGD-T) and Square on the check points of every model, in each of the two runs
    assert calls == [(20, "subset", None), (20, "square", 5)] * len(MODEL_KEYS) * 2
    assert results["attack_roles"]["white_box"] == ["pgd2", "cw2", "pgd2x2", "aa"]
    assert not any(m["from_cache"] for m in results["models"].values())


def test_the_eps_sweep_runs_on_the_check_points(runs):
    _, results, _, _ = runs
    sweep = results["sweep"]
    assert sweep["eps"] == [0.1, 0.2, 0.3, 0.4]
    for key in MODEL_KEYS:
        assert list(sweep["evaluations"][key]) == ["0.1", "0.2", "0.4"]
        entry = sweep["evaluations"][key]["0.1"]
        assert entry["points"] == {"all": 20, "subset": 20} and list(entry["attacks"]) == ["clean", "pgd2"]
        assert entry["attacks"]["pgd2"]["alpha"] == pytest.approx(0.03 * 0.1 / 0.3)
        assert entry["outcomes"]["y"] == "".join(results["evaluations"][key]["outcomes"]["y"][i]
                                                 for i in results["evaluations"][key]["outcomes"]["subset"])


def test_contributions_diagnostics_and_training_records(runs):
    _, results, _, _ = runs
    c = results["contributions"]
    assert c["k"] == "predicted class" and c["sign"] == "abs" and c["mass"] == 0.9
    for key, entry in c["models"].items():
        assert set(entry["per_point"]) == {"top5", "top10", "n90", "gini", "active"}
        assert len(entry["per_point"]["n90"]) == 40 and len(entry["profile"]) == 128
        assert entry["decomposition_error"] < 1e-3
    d = results["diagnostics"]
    assert d["points"] == 40 and set(d["zero_gradient_fraction"]) == set(MODEL_KEYS)
    assert set(results["training"]) == {"mpgd", "alp", "aalp", "gd_only", "weights_only"}
    last = results["training"]["alp"][-1]
    assert last["epoch"] == 2 and last["n"] == 50 and last["cohort"]["found"] == 50 and len(last["cohort"]["matched"]) == 5
    assert "gd_dropped_mass" in results["models"]["aalp"]["history"][0]
    assert "gd_dropped_mass" not in results["models"]["alp"]["history"][0]
    for h in results["models"]["aalp"]["history"]:  # floor(0.3 n) of each row's n active features: at most 30 %
        assert "gd_dropped_share" not in h and 0 <= h["gd_dropped_of_active"] <= 0.3
    assert results["switches"]["gd_among"] == "active" and results["switches"]["weight_rule"] == "ratio"


def test_tables_figures_verdicts_and_key_numbers(runs):
    _, results, _, _ = runs
    for table in (report.setup_table, report.contribution_table, report.dropout_table, report.ratio_table,
                  report.robustness_table, report.checklist_table, report.classwise_table, report.evenness_table,
                  report.quoted_alp_table, report.quoted_third_party_table, report.deviations_table):
        out = table(results) if table.__code__.co_argcount else table()
        assert isinstance(out, pd.DataFrame) and len(out) > 0, table.__name__
    assert "AALP-style reconstruction" in " ".join(report.setup_table(results).index)
    dropout = report.dropout_table(results)
    assert list(dropout.columns) == ["active features % (of d)", "active features dropped % (of the active)",
                                     "|c_y| mass removed %"]
    old = copy.deepcopy(results)  # a record of the earlier statistic (inactive features counted): never shown
    for h in old["models"]["aalp"]["history"]:
        h["gd_dropped_share"] = h.pop("gd_dropped_of_active")
    assert set(report.dropout_table(old).loc[report.model_label(old, "aalp"),
                                             "active features dropped % (of the active)"]) == {"–"}
    model_row = report.deviations_table(results).loc["model"]
    assert "stalls" not in model_row["why"] and "Without BatchNorm" in model_row["why"]
    book = Path(__file__).resolve().parents[2] / "book" / "aalp.py"
    assert "{exercise} Without BatchNorm" in book.read_text()  # the exercise the deviation names
    assert "Square breaks ≤ 2 % of the white-box-robust points" in report.checklist_table(results).columns
    for summary in (report.switches_markdown, report.evenness_summary, report.scale_notes):
        assert isinstance(summary(results), str) and summary(results)
    for figure in (figures.contribution_profile, figures.features_to_mass, figures.ratio_histograms, figures.ce_trajectory,
                   figures.attack_chain, figures.eps_curve, figures.per_class_heatmap, figures.worst_case_bars):
        fig = figure(results)
        assert "AALP-style reconstruction" in fig.axes[0].get_title() or figure in (figures.ratio_histograms,
                                                                                    figures.ce_trajectory), figure.__name__
        matplotlib.pyplot.close(fig)
    verdicts = report.verdicts(results)
    assert list(verdicts.index) == ["C1", "C2", "C3", "C4", "C5", "C6", "G1", "G2", "G3"]
    numbers = aalp.CHAPTER.key_numbers(results)
    assert numbers and all(isinstance(v, float) for v in numbers.values())


def test_a_rerun_from_the_cache_gives_the_same_results(runs):
    _, first, again, _ = runs
    assert all(m["from_cache"] for m in again["models"].values())
    for name, entry in first["evaluations"].items():
        assert again["evaluations"][name]["outcomes"] == entry["outcomes"], name
    assert again["contributions"] == first["contributions"] and again["training"] == first["training"]
    for key, by_eps in first["sweep"]["evaluations"].items():
        assert {e: r["outcomes"] for e, r in again["sweep"]["evaluations"][key].items()} == \
            {e: r["outcomes"] for e, r in by_eps.items()}


# ---- config validation: every bad value names the field, the value and what is allowed ----

@pytest.mark.parametrize("override, field", [
    ({"gd_p": 1.0}, "gd_p"), ({"gd_p": -0.2}, "gd_p"), ({"gd_mode": "drop_mid"}, "gd_mode"),
    ({"weight_rule": "uniform"}, "weight_rule"), ({"weight_rule": "none"}, "weight_rule"), ({"lam": -1.0}, "lam"),
    ({"train_attack": "fgsm"}, "train_attack"), ({"gd_score": "sq"}, "gd_score"), ({"gd_branches": "clean"}, "gd_branches"),
    ({"gd_among": "most"}, "gd_among"), ({"contrib_sign": "signed"}, "contrib_sign"), ({"contrib_top": []}, "contrib_top"),
    ({"contrib_mass": 1.5}, "contrib_mass"), ({"models": ["standard", "alp"]}, "models"),
    ({"models": [*MODEL_KEYS, "trades"]}, "models"), ({"sweep_eps": [0.1, 0.2]}, "sweep_eps"),
    ({"aa_per_class": 300}, "aa_per_class"), ({"dataset": "cifar10"}, "model"), ({"model": "vgg"}, "model"),
    ({"eps": 0.0}, "eps"), ({"restarts": 0}, "restarts"), ({"aa_version": "square"}, "aa_version"),
    ({"weight_low": 2.0}, "weight_low"), ({"label_smoothing": 1.0}, "label_smoothing"),
])
def test_bad_config_values_name_the_field(override, field):
    with pytest.raises(ConfigError, match=f"^{field}=") as err:
        AALPConfig.make("cpu", **override)
    assert "expected" in str(err.value)


def test_profiles_are_valid_and_the_paper_profile_runs_from_the_same_parameters():
    cpu, paper = AALPConfig.make("cpu"), AALPConfig.make("paper")
    assert cpu.model == "mnist_cnn" and cpu.dataset == "mnist" and cpu.eps == 0.3
    assert paper.model == "preact_resnet18" and paper.dataset == "cifar10" and paper.eps == 8 / 255
    assert paper.gd_mode == cpu.gd_mode and paper.weight_rule == cpu.weight_rule and paper.lam == cpu.lam
    with pytest.raises(ConfigError, match="unknown_field="):
        AALPConfig.make("cpu", unknown_field=1)
