"""The class-wise chapter end to end on a tiny config: every evaluation, the choices made on validation, the
tables, the verdicts and a rerun from the model cache. AutoAttack is replaced by a cheap PGD stand-in (its own
tests are in test_attacks.py): the wiring is what is tested here."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from advfair import autoattack as aa_module
from advfair import attacks
from advfair.experiments import classwise
from advfair.experiments.classwise import report
from advfair.experiments.common import evaluation

TINY = dict(train_per_class=5, val_per_class=3, test_per_class=4, aa_per_class=1, epochs=1, width=4, eval_steps=2,
            temperatures=[0.5, 1.0, 2.0], bias_grid=[0.0, 1.0], mnist_train_per_class=5, mnist_test_per_class=3,
            mnist_aa_per_class=1, mnist_epochs=1, mnist_eval_steps=2, mnist_width=4, mnist=True, n_boot=20,
            device="cpu")


@pytest.fixture(scope="module")
def runs(data_dir, tmp_path_factory):
    if not ((data_dir / "cifar10.npz").exists() and (data_dir / "mnist.npz").exists()):
        pytest.skip("no cifar10.npz / mnist.npz")
    calls = []

    def aa_stand_in(model, x, y, *, eps, version="standard", batch_size=500, seed=0):
        calls.append((len(x), version, seed))
        generator = torch.Generator().manual_seed(seed)
        return attacks.pgd(model, x, y, eps=eps, alpha=eps / 4, steps=2, early_stop=True, generator=generator), []

    cache = tmp_path_factory.mktemp("cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(aa_module, "autoattack", aa_stand_in)
        cfg = classwise.make_config("cpu", **TINY, data_dir=str(data_dir), cache_dir=str(cache))
        first = classwise.CHAPTER.run(cfg)
        again = classwise.CHAPTER.run(cfg)  # every model from the cache
    return cfg, first, again, calls


def test_results_envelope_and_evaluations(runs):
    cfg, results, _, calls = runs
    assert json.loads(json.dumps(results)) == results
    assert results["chapter"] == "classwise" and results["config_hash"] == cfg.config_hash()
    assert list(results["evaluations"]) == ["pgd_at", "trades", "class_weighted", "pgd_at_bias"]
    n = results["attack_roles"]
    t = results["selection"]["t_picked"]
    assert t in (0.5, 2.0) and n["tpgd"] == f"tpgd2_T{t:g}" and n["pgd"] == "pgd2" and n["cw"] == "cw2"
    full = results["evaluations"]["pgd_at"]
    assert list(full["attacks"]) == ["clean", "fgsm", "pgd2", "cw2", "tpgd2_T0.5", "tpgd2_T2", "aa"]
    assert full["points"] == {"all": 40, "subset": 10} and full["attacks"]["aa"]["points"] == "subset"
    for name in ("trades", "class_weighted"):  # the T picked on validation only
        assert list(results["evaluations"][name]["attacks"]) == ["clean", "fgsm", "pgd2", "cw2", n["tpgd"], "aa"]
    # AutoAttack on the AA points of the four evaluations of each track (CIFAR-10, MNIST), in each of the two runs
    assert calls == [(10, "subset", cfg.seed + 20)] * 16
    assert {k: m["from_cache"] for k, m in results["models"].items()} == {
        "pgd_at": False, "trades": False, "class_weighted": False, "mnist_pgd_at": False, "mnist_trades": False,
        "mnist_class_weighted": False}


def test_the_mnist_track_is_the_same_pipeline_on_mnist(runs):
    _, results, _, _ = runs
    mnist = results["mnist"]
    assert set(mnist) == {"classes", "attack_roles", "selection", "evaluations", "bias", "diagnostics"}
    assert list(mnist["evaluations"]) == ["pgd_at", "trades", "class_weighted", "pgd_at_bias"]
    full = mnist["evaluations"]["pgd_at"]
    assert full["points"] == {"all": 30, "subset": 10}
    assert list(full["attacks"]) == ["clean", "fgsm", "pgd2", "cw2", "tpgd2_T0.5", "tpgd2_T2", "aa"]
    assert mnist["selection"]["worst_class"] == int(np.argmin(mnist["selection"]["val_per_class_pgd"]))
    assert len(mnist["diagnostics"]["weight_norms"]) == 10
    # every claim again on MNIST, under the same rules
    ids = [v.claim for v in classwise.CHAPTER.verdicts(results)]
    assert ids == ["C1", "C2", "C3", "C4", "C5", "C6", "C7a", "C7b", "C8b",
                   *(f"{c} (MNIST)" for c in ("C1", "C2", "C3", "C4", "C5", "C6", "C7a", "C7b", "C8b"))]
    assert {k for k in classwise.CHAPTER.key_numbers(results) if k.startswith("mnist.")} >= {"mnist.pgd_at.clean",
                                                                                              "mnist.pgd_at.aa"}
    assert len(report.setup_table(results, "mnist")) == 3


def test_choices_are_made_on_validation(runs):
    _, results, _, _ = runs
    sel = results["selection"]
    assert sel["worst_class"] == int(np.argmin(sel["val_per_class_pgd"]))
    assert set(sel["tpgd_val_accuracy"]) == {"0.5", "1.0", "2.0"}
    others = {float(k): v for k, v in sel["tpgd_val_accuracy"].items() if float(k) != 1}
    assert sel["t_picked"] == min(others, key=lambda k: (others[k], k))
    bias = results["bias"]
    assert [row["bias"] for row in bias["rows"]] == [0.0, 1.0] and bias["picked"] == 1.0  # the only b > 0
    assert bias["target_class"] == sel["worst_class"]
    tweaked = results["evaluations"]["pgd_at_bias"]
    values = [0.0] * 10
    values[sel["worst_class"]] = 1.0
    assert tweaked["model"] == "pgd_at" and tweaked["inference"] == [{"kind": "bias", "values": values}]
    # b = 0 reuses the untweaked test evaluation: its row is PGD-AT's per-class PGD accuracy
    e = evaluation(results, "pgd_at")
    pc = [float(e.correct("pgd2")[e.labels() == c].mean()) for c in range(10)]
    assert bias["rows"][0]["test_per_class"] == pytest.approx(pc)
    assert set(results["diagnostics"]["zero_gradient_fraction"]) == {"0.5", "1.0", "2.0"}
    assert len(results["diagnostics"]["weight_norms"]) == 10


def test_tables_verdicts_and_key_numbers(runs):
    _, results, _, _ = runs
    for table in (report.setup_table, report.spreads, report.defence_agreement_table, report.gains_table,
                  report.tpgd_table, report.tradeoff_points, report.tweaks_table, report.weight_norm_table,
                  report.mnist_table):
        out = table(results)
        assert isinstance(out, pd.DataFrame) and len(out) > 0, table.__name__
    for summary in (report.points_summary, report.disparity_summary, report.scale_notes, report.mnist_summary,
                    report.bias_choice):
        assert isinstance(summary(results), str) and summary(results)
    verdicts = report.verdicts(results)
    assert list(verdicts.index)[:9] == ["C1", "C2", "C3", "C4", "C5", "C6", "C7a", "C7b", "C8b"]
    assert len(verdicts) == 18
    assert set(v.outcome for v in classwise.CHAPTER.verdicts(results)) <= {
        "reproduced", "not reproduced", "inconclusive at this scale", "not testable at this scale"}
    numbers = classwise.CHAPTER.key_numbers(results)
    assert numbers and all(isinstance(v, float) for v in numbers.values())


def test_a_rerun_from_the_cache_gives_the_same_results(runs):
    _, first, again, _ = runs
    assert all(m["from_cache"] for m in again["models"].values())
    for name, record in first["evaluations"].items():
        assert again["evaluations"][name]["outcomes"] == record["outcomes"], name
        assert again["evaluations"][name]["reports"] == record["reports"], name
    assert again["selection"] == first["selection"] and again["bias"] == first["bias"]
    for name, record in first["mnist"]["evaluations"].items():
        assert again["mnist"]["evaluations"][name]["outcomes"] == record["outcomes"], name


def test_tier_classes_sets_two_runs_class_by_class():
    from advfair.experiments.classwise import report as cw

    def run(clean: list[float], robust: list[float]) -> dict:
        entry = lambda acc: {"per_class": acc}  # noqa: E731
        return {"classes": ["a", "b", "c"], "attack_roles": {"pgd": "pgd10"},
                "evaluations": {"pgd_at": {"reports": {"all": {"attacks": {"clean": entry(clean),
                                                                           "pgd10": entry(robust)}}}}}}

    table = cw.tier_classes({"small": run([0.2, 0.9, 0.8], [0.1, 0.5, 0.4]), "large": run([0.5, 0.9, 0.8],
                                                                                          [0.3, 0.4, 0.5])})
    assert table[("small", "rank")].tolist() == [3, 1, 2] and table[("large", "rank")].tolist() == [3, 2, 1]
    assert table[("small", "below the class floor")].tolist() == ["yes", "", ""]  # 20 % < chance (1/3)
    assert table[("large", "below the class floor")].tolist() == ["", "", ""]
    assert cw.tier_classes_text(table) == ("Spearman ρ between the class orders under PGD of small and large: 0.50 (3 "
                                           "classes: a coarse measure). Classes below the class floor: small: a; "
                                           "large: none.")
