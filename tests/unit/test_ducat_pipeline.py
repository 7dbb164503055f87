"""The DUCAT chapter end to end on tiny configs: the results envelope, the served predictions (recovery), the
side heads, the window, the validation checkpoint rule, the tables and the verdicts. AutoAttack is replaced by
a cheap PGD stand-in (its own tests are in test_attacks.py): the wiring is what is tested here."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from advfair import autoattack as aa_module
from advfair import attacks
from advfair.experiments import ducat
from advfair.cache import ModelCache
from advfair.experiments.common import Run, evaluation
from advfair.experiments.ducat import methods, paper, pipeline, report
from advfair.experiments.reproduce import stable_part
from advfair.training import model_spec_of, train_cached
from advfair.inference import recover
from advfair.validation import ConfigError

TINY = dict(train_per_class=5, val_per_class=3, test_per_class=4, aa_per_class=1, epochs=2, width=4, milestones=[2],
            ducat_start=2, ducat_end=2, unaware_steps=2, aware_steps=2, select_steps=2, ablation_w_benign=[0.0],
            ablation_from_start=True, plugins=["trades", "mart"], n_boot=20, device="cpu")  # every model
FULL = ["clean", "pgd2_raw2C", "pgd2_merged", "pgd2_dawa", "aa_pairmax"]


@pytest.fixture(scope="module")
def runs(data_dir, tmp_path_factory):
    if not (data_dir / "cifar10.npz").exists():
        pytest.skip("no cifar10.npz")
    calls = []

    def aa_stand_in(model, x, y, *, eps, version="standard", batch_size=500, seed=0):
        calls.append((len(x), int(model(x[:1]).shape[1])))
        generator = torch.Generator().manual_seed(seed)
        return attacks.pgd(model, x, y, eps=eps, alpha=eps / 4, steps=2, early_stop=True, generator=generator), []

    cache = tmp_path_factory.mktemp("cache")
    common = dict(data_dir=str(data_dir), cache_dir=str(cache))
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(aa_module, "autoattack", aa_stand_in)
        cfg = ducat.make_config("cpu", **TINY, **common)
        last = ducat.CHAPTER.run(cfg)
        val_only = {**TINY, "ablation_w_benign": [], "plugins": [], "ablation_from_start": False}
        val_cfg = ducat.make_config("cpu", **val_only, checkpoint="validation", baselines=[], **common)
        selected = ducat.CHAPTER.run(val_cfg)
    return cfg, last, val_cfg, selected, calls


def test_results_envelope_and_evaluations(runs):
    cfg, results, _, _, calls = runs
    assert json.loads(json.dumps(results)) == results
    assert results["chapter"] == "ducat" and results["config_hash"] == cfg.config_hash()
    assert list(results["evaluations"]) == ["pgd_at", "ducat", "trades", "mart", "trades_ducat", "mart_ducat",
                                            "ducat_from_start", "ducat_wb0"]
    assert results["dummy_models"] == ["ducat", "trades_ducat", "mart_ducat", "ducat_from_start", "ducat_wb0"]
    ev = results["evaluations"]
    assert list(ev["pgd_at"]["attacks"]) == FULL and list(ev["ducat"]["attacks"]) == FULL
    # the plug-ins and their bases (C3): every attack but AutoAttack; a 2C head for the plug-ins
    for key in ("trades", "mart", "trades_ducat", "mart_ducat", "ducat_wb0"):
        assert list(ev[key]["attacks"]) == FULL[:-1], key
    assert ev["mart_ducat"]["inference"] == [{"kind": "pair_max", "num_classes": 10}]
    assert [h.get("ducat_active") for h in results["models"]["mart_ducat"]["history"]] == [False, True]
    assert ev["pgd_at"]["points"] == {"all": 40, "subset": 10}
    assert ev["ducat"]["inference"] == [{"kind": "pair_max", "num_classes": 10}] and ev["pgd_at"]["inference"] == []
    assert ev["ducat"]["attacks"]["pgd2_raw2C"]["view"] == "raw2C" and not ev["ducat"]["attacks"]["pgd2_merged"]["early_stop"]
    # AutoAttack only on the served C-way modules (pairmax for DUCAT), on the AA points, PGD-AT and DUCAT only
    assert calls[:2] == [(10, 10), (10, 10)]
    # side heads: DUCAT's raw 2C argmax, and the transfer models on the same points
    side = {k: set(v["outcomes"]["side"]) for k, v in ev.items()}
    assert side["ducat"] == {"raw2C", "pgd_at", "trades"} and side["pgd_at"] == {"ducat", "trades"}
    assert side["trades"] == {"pgd_at", "ducat"} and side["mart"] == set() and side["ducat_wb0"] == {"raw2C"}
    assert side["trades_ducat"] == side["mart_ducat"] == {"raw2C"}
    assert results["cost_model"]["pgd_at"] == 4 and results["cost_model"]["ducat_in_window"] == 5


def test_the_window_and_the_timings_are_recorded(runs):
    _, results, _, _, _ = runs
    models = results["models"]
    assert [h.get("ducat_active") for h in models["ducat"]["history"]] == [False, True]
    assert [h.get("ducat_active") for h in models["ducat_from_start"]["history"]] == [True, True]
    assert "ducat_active" not in models["pgd_at"]["history"][0]
    assert len(models["ducat"]["seconds"]["epochs"]) == 2 and "seconds" not in models["ducat"]["history"][0]
    assert "seconds" not in json.dumps(stable_part(results))  # the exactness check ignores every timing


def test_ducat_is_served_with_recovery(runs):
    cfg, results, _, _, _ = runs
    r = Run(cfg)
    split = methods.split(cfg)
    model, meta = train_cached(r.cache, split, model_spec=methods.model_spec(cfg, True),
                               objective=methods.ducat(cfg, 10), train_cfg=methods.train_config(cfg), device=r.device)
    assert meta["from_cache"] and meta["key"] == results["models"]["ducat"]["key"]
    x, _ = split.float_images("test", r.device)
    with torch.no_grad():
        z = model(x)
    e = evaluation(results, "ducat")
    assert np.array_equal(e.predicted("clean"), recover(z, 10).numpy())
    assert np.array_equal(e.side["raw2C"]["clean"], z.argmax(1).numpy())
    # the transfer head of PGD-AT's evaluation is DUCAT served the same way
    assert np.array_equal(evaluation(results, "pgd_at").side["ducat"]["clean"], e.predicted("clean"))


def test_a_head_of_the_wrong_width_is_an_error(runs):
    cfg, _, _, _, _ = runs
    r = Run(cfg)
    split = methods.split(cfg)
    test = r.points(split, "test")
    c_way = train_cached(r.cache, split, model_spec=methods.model_spec(cfg, False),
                         objective=methods.plan(cfg, 10)["pgd_at"], train_cfg=methods.train_config(cfg),
                         device=r.device)[0]
    protocol = methods.protocol(cfg, aware=False)
    with pytest.raises(ConfigError, match=r"outputs=10 is not allowed: expected 20 outputs"):
        pipeline.evaluate_model(r, cfg, "ducat", c_way, test, protocol)
    two_c = torch.nn.Sequential(c_way, torch.nn.Linear(10, 20))
    with pytest.raises(ConfigError, match=r"outputs=20 is not allowed: expected 10 outputs, one per class"):
        pipeline.evaluate_model(r, cfg, "pgd_at", two_c, test, protocol)


def test_validation_checkpoint_rule(runs):
    _, _, cfg, results, _ = runs
    assert set(results["evaluations"]) == {"pgd_at", "ducat"} and set(results["last_epoch"]) == {"pgd_at", "ducat"}
    for key in ("pgd_at", "ducat"):
        history = results["models"][key]["history"]
        accuracies = [h["val_accuracy"] for h in history]
        assert all(isinstance(a, float) for a in accuracies)
        assert [h["selected"] for h in history].count(True) == 1
        assert history[[h["selected"] for h in history].index(True)]["val_accuracy"] == max(accuracies)
        assert list(results["last_epoch"][key]["attacks"]) == FULL
    # the selected model and the last epoch are two cache entries: the plain key is the last epoch's
    cache = ModelCache(cfg.cache_dir)
    plain = model_spec_of(methods.split(cfg).spec, methods.model_spec(cfg, True), methods.ducat(cfg, 10),
                          methods.train_config(cfg))
    assert cache.contains(plain) and cache.contains({**plain, "selection": methods.selection_rule(cfg)})
    table = paper.last_epoch_table(results)
    assert len(table) == 4 and any("selected epoch" in i for i in table.index)


def test_tables_verdicts_and_key_numbers(runs):
    _, results, _, selected, _ = runs
    import matplotlib
    matplotlib.use("Agg")
    for table in (report.setup_table, report.always_failed_table, report.overlap_table, report.four_numbers_table,
                  report.attack_table, report.tradeoff_points, report.classwise_table, report.cost_table,
                  report.transfer_table, report.ablation_table, paper.quoted_table, paper.quoted_claims_table):
        out = table(results)
        assert isinstance(out, pd.DataFrame) and len(out) > 0, table.__name__
    for text in (report.points_summary, report.classwise_summary, report.cost_summary, report.scale_notes):
        assert isinstance(text(results), str) and text(results)
    for figure in (report.overlap_figure, report.classwise_figure):
        figure(results)
    assert paper.last_epoch_table(results) is None
    assert list(report.verdicts(results).index) == ["C1", "C2", "C3", "C4", "C5", "C6", "C7"]
    for res in (results, selected):
        assert set(v.outcome for v in ducat.CHAPTER.verdicts(res)) <= {
            "reproduced", "not reproduced", "inconclusive at this scale", "not testable at this scale"}
        numbers = ducat.CHAPTER.key_numbers(res)
        assert numbers and all(isinstance(v, float) for v in numbers.values())
    assert ducat.CHAPTER.verdicts(selected)[0].outcome == "not testable at this scale"  # no baselines


def test_w_b_ablations_resume_from_the_shared_prefix_exactly(runs, tmp_path):
    """The w_b ablation started from DUCAT's checkpoint before the window; trained from scratch in an empty
    cache it has the same weights, bit for bit."""
    cfg, results, _, _, _ = runs
    assert not list(Path(cfg.cache_dir).glob("*.prefix*"))  # removed after the run
    seconds = results["models"]
    # the ablation's epoch before the window is DUCAT's own record (resumed), its window epoch its own
    assert seconds["ducat_wb0"]["seconds"]["epochs"][0] == seconds["ducat"]["seconds"]["epochs"][0]
    assert seconds["ducat_wb0"]["seconds"]["epochs"][1] != seconds["ducat"]["seconds"]["epochs"][1]
    r = Run(cfg)
    split = methods.split(cfg)
    objective = methods.plan(cfg, 10)["ducat_wb0"]
    spec = dict(model_spec=methods.model_spec(cfg, True), objective=objective,
                train_cfg=methods.train_config(cfg))
    shared, meta = train_cached(ModelCache(cfg.cache_dir), split, **spec, device=r.device)
    scratch, scratch_meta = train_cached(ModelCache(tmp_path), split, **spec, device=r.device)
    assert meta["from_cache"] and not scratch_meta["from_cache"] and meta["key"] == results["models"]["ducat_wb0"]["key"]
    for (name, a), b in zip(shared.state_dict().items(), scratch.state_dict().values()):
        assert torch.equal(a, b), name
    assert [h["loss"] for h in meta["history"]] == [h["loss"] for h in scratch_meta["history"]]
