"""The ABSLD chapter end to end on a tiny config: the teacher from the cache (and its key in every student's), the
hard classes chosen on validation, the temperature histories, every evaluation, the tables and figures, the
verdicts, a rerun from the model cache, and the config's bad input. AutoAttack is replaced by a cheap PGD stand-in
(its own tests are in test_attacks.py): the wiring is what is tested here."""
from __future__ import annotations

import json
from pathlib import Path

import matplotlib
import pandas as pd
import pytest
import torch

from advfair import autoattack as aa_module
from advfair import attacks
from advfair.experiments import absld
from advfair.experiments.absld import methods, pipeline, report
from advfair.cache import spec_key
from advfair.experiments.common import TEST_SEED_OFFSET
from advfair.experiments.classwise import make_config as classwise_config
from advfair.experiments.classwise import methods as classwise_methods
from advfair.experiments.common import Run
from advfair.training import model_spec_of
from advfair.models import build_model
from advfair.validation import ConfigError

matplotlib.use("Agg")

REPO = Path(__file__).resolve().parents[2]
TINY = dict(train_per_class=6, val_per_class=3, test_per_class=4, aa_per_class=1, epochs=2, teacher_epochs=1, width=4,
            teacher_width=4, eval_steps=2, n_boot=20, device="cpu")
KEYS = ["teacher", "rslad", "absld_separate", "absld_code_product", "absld_manual", "fair_rslad", "ls_uniform",
        "ls_class"]


@pytest.fixture(scope="module")
def runs(data_dir, tmp_path_factory):
    if not (data_dir / "cifar10.npz").exists():
        pytest.skip("no cifar10.npz")
    calls = []

    def aa_stand_in(model, x, y, *, eps, version="standard", batch_size=500, seed=0):
        calls.append((len(x), version, seed))
        generator = torch.Generator().manual_seed(seed)
        return attacks.pgd(model, x, y, eps=eps, alpha=eps / 4, steps=2, early_stop=True, generator=generator), []

    cache = tmp_path_factory.mktemp("cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(aa_module, "autoattack", aa_stand_in)
        cfg = absld.make_config("cpu", **TINY, data_dir=str(data_dir), cache_dir=str(cache))
        first = absld.CHAPTER.run(cfg)
        again = absld.CHAPTER.run(absld.make_config("cpu", **TINY, data_dir=str(data_dir), cache_dir=str(cache),
                                                    train_teacher=False))  # everything from the cache
        n_calls = len(calls)
        # the paper profile's checkpoint rule on the same cache: the selected epochs, and the last ones evaluated too
        selected = absld.CHAPTER.run(absld.make_config("cpu", **TINY, data_dir=str(data_dir), cache_dir=str(cache),
                                                       checkpoint="val_avg_worst", baselines=[], c3=False))
        del calls[n_calls:]
    return cfg, first, again, calls, cache, selected


def test_results_envelope_and_evaluations(runs):
    cfg, results, _, calls, _, _ = runs
    assert json.loads(json.dumps(results)) == results
    assert results["chapter"] == "absld" and results["config_hash"] == cfg.config_hash()
    assert list(results["models"]) == KEYS and list(results["evaluations"]) == KEYS
    full = ["clean", "fgsm", "pgd2", "cw2", "aa"]
    for key in KEYS:
        ev = results["evaluations"][key]
        assert list(ev["attacks"]) == (["clean", "pgd2", "aa"] if key.startswith("ls_") else full), key
        assert ev["points"] == {"all": 40, "subset": 10} and ev["model"] == key
    assert calls == [(10, "subset", cfg.seed + TEST_SEED_OFFSET)] * (2 * len(KEYS))
    assert not any(m["from_cache"] for m in results["models"].values())
    assert results["split_sizes"] == {"train": 60, "val": 30, "test": 40, "aa_points": 10}
    assert results["settings"]["decay_epochs"] == [1, 2] and results["settings"]["lr_milestones"] == [2]
    assert "last_epoch" not in results and report.last_epoch_table(results) is None  # checkpoint="last": nothing more


def test_the_hard_classes_come_from_the_teachers_validation_accuracy(runs):
    _, results, _, _, _, _ = runs
    per_class = results["teacher"]["val_per_class_pgd"]
    order = sorted(range(10), key=lambda c: (per_class[c], c))
    assert results["selection"]["hard"] == sorted(order[:4]) and results["selection"]["ls_hard"] == sorted(order[:2])
    assert results["selection"]["paper_hard"] == [3, 4, 5, 6]
    manual = results["settings"]["manual_tau"]
    assert [manual[c] for c in results["selection"]["hard"]] == [0.5] * 4 and sorted(manual).count(2.0) == 6
    smoothing = results["settings"]["ls_class"]
    assert [c for c in range(10) if smoothing[c] == 0.05] == results["selection"]["ls_hard"]
    assert sorted(set(smoothing)) == [0.05, 0.3]


def test_students_carry_the_teacher_key_and_their_temperature_histories(runs):
    _, results, _, _, cache, _ = runs
    teacher_key = results["teacher"]["key"]
    assert results["models"]["teacher"]["key"] == teacher_key
    for key in ("rslad", "absld_separate", "absld_code_product", "absld_manual", "fair_rslad"):
        spec = json.loads((cache / f"{results['models'][key]['key']}.json").read_text())["spec"]
        assert spec["objective"]["aux"] == {"teacher": teacher_key}, key
        assert spec["data"] == methods.split_spec(absld.make_config("cpu", **TINY))
    for key in ("absld_separate", "absld_code_product"):
        history = results["models"][key]["history"]
        assert len(history) == 2 and all(len(h["tau_adv"]) == 10 and len(h["risk_nat"]) == 10 for h in history)
        assert [h["eta_tau"] for h in history] == pytest.approx([0.05, 0.005])  # decayed after epochs 1 and 2
        assert all(0.5 <= t <= 5 for h in history for t in h["tau_adv"] + h["tau_nat"])
    manual = results["models"]["absld_manual"]["history"]
    assert all(h["tau_adv"] == results["settings"]["manual_tau"] == h["tau_nat"] for h in manual)
    assert "class_weights" in results["models"]["fair_rslad"]["history"][0]
    assert results["checkpoints"] == {k: 2 for k in KEYS if k != "teacher"}


def test_tables_figures_verdicts_and_key_numbers(runs):
    _, results, _, _, _, _ = runs
    for table in (report.setup_table, report.teacher_table, report.per_class_table, report.temperature_table,
                  report.modes_table):
        out = table(results)
        assert isinstance(out, pd.DataFrame) and len(out) > 0, table.__name__
    assert len(report.stats_table(results, report.students(results))) == 5
    assert report.per_class_aa_table(results).shape == (10, 6)
    assert len(report.paired_table(results, "rslad", ["absld_separate", "absld_code_product"])) == 2
    for summary in (report.points_summary, report.scale_notes, report.critiques):
        assert isinstance(summary(results), str) and summary(results)
    assert "Fair-ARD" in report.critiques(results)
    for figure in (report.tradeoff_figure(results), report.temperature_figure(results, "absld_separate")):
        assert isinstance(figure, matplotlib.figure.Figure)
    assert report.temperature_figure(results, "rslad") is None
    table = report.verdicts(results)
    assert list(table.index) == ["C1", "C2", "C3", "C4", "C5", "C7"]  # C6 holds by construction: no verdict
    assert {v.outcome for v in absld.CHAPTER.verdicts(results)} <= {
        "reproduced", "not reproduced", "inconclusive at this scale", "not testable at this scale"}
    numbers = absld.CHAPTER.key_numbers(results)
    assert numbers and all(isinstance(v, float) for v in numbers.values())


def test_a_rerun_from_the_cache_gives_the_same_results(runs):
    _, first, again, _, _, _ = runs
    assert all(m["from_cache"] for m in again["models"].values())
    for key, record in first["evaluations"].items():
        assert again["evaluations"][key]["outcomes"] == record["outcomes"], key
    assert again["selection"] == first["selection"] and again["teacher"] == first["teacher"]
    assert [m["history"] for m in again["models"].values()] == [m["history"] for m in first["models"].values()]


def test_the_validation_checkpoint_rule_selects_an_epoch_and_keys_the_cache(runs, data_dir):
    cfg, results, _, _, cache, _ = runs
    selecting = absld.make_config("cpu", **TINY, data_dir=str(data_dir), cache_dir=str(cache),
                                  checkpoint="val_avg_worst")
    r, data = Run(selecting), methods.split(selecting)
    teacher, key = pipeline.train_teacher(r, selecting, data)
    assert r.models["teacher"]["from_cache"] and key == results["teacher"]["key"]
    objective = methods.plan(selecting, teacher, key, [0, 1, 2, 3], [0, 1])["rslad"]
    model, last = pipeline.train_student(r, selecting, "rslad", data, objective)
    history = r.models["rslad"]["history"]
    assert all("val_score" in h for h in history) and sum(h["selected"] for h in history) == 1
    best = max(history, key=lambda h: (h["val_score"], -h["epoch"]))
    assert best["selected"] and r.models["rslad"]["key"] != results["models"]["rslad"]["key"]
    # the last epoch: the model the default run trained under the plain key (the same training)
    plain = torch.load(cache / f"{results['models']['rslad']['key']}.pt", weights_only=True)
    assert last is not None and all(torch.equal(v, plain[k]) for k, v in last.state_dict().items())
    assert pipeline.train_student(Run(cfg), cfg, "rslad", data, objective)[1] is None  # checkpoint="last"


def test_with_a_checkpoint_rule_the_last_epoch_is_evaluated_too(runs):
    _, results, _, _, _, selected = runs
    assert list(selected["last_epoch"]) == list(methods.LAST_EPOCH)
    assert set(selected["checkpoints"]) == {"rslad", "absld_separate", "absld_code_product", "absld_manual"}
    for key, record in selected["last_epoch"].items():
        assert record["model"] == key and list(record["attacks"]) == ["clean", "fgsm", "pgd2", "cw2", "aa"]
        # the last epoch of a selected training is the default run's model: the same outcomes on the same points
        assert record["outcomes"] == results["evaluations"][key]["outcomes"], key
        assert selected["models"][key]["key"] != results["models"][key]["key"]
    table = report.last_epoch_table(selected)
    assert table.shape == (3 * len(methods.LAST_EPOCH), 7)
    epoch = selected["checkpoints"]["rslad"]
    assert list(table.index[:3]) == [f"RSLAD, selected epoch {epoch}", "RSLAD, last epoch 2",
                                     "RSLAD: last − selected (paired)"]
    if epoch == 2:  # the selected epoch is the last: the paired differences are 0
        assert table.iloc[2][("PGD2", "avg")] == "0.0 [0.0, 0.0]"


def test_a_missing_teacher_is_an_error_when_training_it_is_forbidden(tmp_path):
    cfg = absld.make_config("cpu", **TINY, cache_dir=str(tmp_path), train_teacher=False)
    key = spec_key(pipeline.teacher_spec(cfg))
    with pytest.raises(ConfigError, match=rf"train_teacher=False is not allowed: expected True, or a teacher "
                                          rf"already in the model cache: its key {key} is missing"):
        pipeline.train_teacher(Run(cfg), cfg, None)


def _classwise_pgd_at_spec(cw) -> dict:
    t = classwise_methods.cifar_track(cw)
    return model_spec_of(classwise_methods.split(cw, t).spec, t.model, classwise_methods.pgd_at(t),
                         classwise_methods.train_config(cw, t))


def test_the_default_teacher_is_the_classwise_chapters_pgd_at_model():
    assert pipeline.teacher_spec(absld.make_config("cpu")) == _classwise_pgd_at_spec(classwise_config("cpu"))
    for seed in (1, 2):  # the stability seeds: the class-wise chapter's models of the same seeds
        assert spec_key(pipeline.teacher_spec(absld.make_config("cpu", seed=seed))) == spec_key(
            _classwise_pgd_at_spec(classwise_config("cpu", seed=seed)))


def test_the_lr_decay_is_its_own_factor_and_the_default_students_are_unchanged():
    cfg = absld.make_config("cpu")
    assert cfg.lr_decay == cfg.eta_decay == 0.1
    assert methods.train_config(cfg).to_dict() == {
        "epochs": 6, "batch_size": 32, "lr": 0.05, "momentum": 0.9, "weight_decay": 2e-4, "schedule": "step",
        "milestones": [5, 6], "gamma": 0.1, "augment": False, "drop_last": False, "seed": 0}
    # the cache keys of the default students and their teacher are those of the committed results
    committed = json.loads((REPO / "book" / "results" / "absld_cpu.json").read_text())
    hard, ls_hard = committed["selection"]["hard"], committed["selection"]["ls_hard"]
    teacher_key = spec_key(pipeline.teacher_spec(cfg))
    teacher = build_model("small_cnn", dataset="cifar10", num_classes=10, in_channels=3, width=16)
    plan = methods.plan(cfg, teacher, teacher_key, hard, ls_hard)
    keys = {k: spec_key(model_spec_of(methods.split(cfg).spec, methods.student_model_spec(cfg), o,
                                      methods.train_config(cfg))) for k, o in plan.items()}
    assert teacher_key == committed["models"]["teacher"]["key"]
    assert keys == {k: committed["models"][k]["key"] for k in plan}
    # η_τ's factor no longer moves the lr, and the lr's never moves η_τ
    eta = absld.make_config("cpu", eta_decay=0.5)
    assert methods.train_config(eta) == methods.train_config(cfg)
    assert methods.absld(eta, teacher, teacher_key, "separate").params["eta_decay"] == 0.5
    lr = absld.make_config("cpu", lr_decay=0.5)
    assert methods.train_config(lr).gamma == 0.5 and methods.train_config(lr).milestones == (5, 6)
    assert methods.absld(lr, teacher, teacher_key, "separate").params["eta_decay"] == 0.1
    assert absld.make_config("cpu", lr_decay=1).lr_decay == 1  # no decay at all is allowed


def test_profiles_and_derived_settings():
    cfg = absld.make_config("cpu")
    d = cfg.to_dict()
    assert json.loads(json.dumps(d)) == d and set(absld.AbsldConfig.PROFILES) == {"cpu", "evidence", "paper"}
    assert cfg.decay_epochs() == (4, 5, 6) and methods.train_config(cfg).milestones == (5, 6)
    assert cfg.absld_mode == "separate" and cfg.checkpoint == "last" and methods.selection_rule(cfg) is None
    paper = absld.make_config("paper")
    assert paper.model == "preact_resnet18" and paper.teacher_model == "wrn34_10" and paper.epochs == 300
    assert paper.eta_tau == 0.1 and paper.kl_scale == 1.0 and paper.train_steps == 10
    rule = methods.selection_rule(paper)
    assert rule is not None and rule.dense_from == 215 and rule.every == 10 and rule.steps == 20
    assert methods.teacher_objective(paper).cache_spec()["name"] == "trades"
    assert methods.teacher_train_config(paper).milestones == (75,)
    assert absld.make_config("cpu", milestones=[4, 6]).decay_epochs() == (3, 5)
    assert methods.train_config(absld.make_config("cpu", milestones=[1, 6])).milestones == (1, 6)
    assert absld.make_config("cpu", milestones=[1, 6]).decay_epochs() == (5,)  # no epoch ends before epoch 1


@pytest.mark.parametrize("overrides, match", [
    ({"tau_min": 5.0, "tau_max": 0.5}, r"tau_min=5\.0 is not allowed"),
    ({"tau_min": 1.5}, r"tau_min=1\.5 is not allowed: expected a temperature <= 1"),
    ({"eta_tau": -1}, r"eta_tau=-1 is not allowed"),
    ({"absld_mode": "both"}, r"absld_mode='both' is not allowed: expected one of 'separate', 'code_product'"),
    ({"train_teacher": "no"}, r"train_teacher='no' is not allowed: expected True or False"),
    ({"baselines": ["kd"]}, r"baselines='kd' is not allowed"),
    ({"baselines": ["ard", "ard"]}, r"baselines=\['ard', 'ard'\] is not allowed"),
    ({"checkpoint": "best"}, r"checkpoint='best' is not allowed"),
    ({"milestones": [9]}, r"milestones=9 is not allowed"),
    ({"teacher_objective": "kd"}, r"teacher_objective='kd' is not allowed"),
    ({"model": "mobilenet"}, r"model='mobilenet' is not allowed"),
    ({"hard_count": 10}, r"hard_count=10 is not allowed"),
    ({"ls_hard": 1.0}, r"ls_hard=1\.0 is not allowed"),
    ({"kl_scale": 0}, r"kl_scale=0 is not allowed"),
    ({"lr_decay": 0}, r"lr_decay=0 is not allowed"),
    ({"lr_decay": 1.5}, r"lr_decay=1\.5 is not allowed"),
    ({"teacher_milestones": [9]}, r"teacher_milestones=9 is not allowed"),
    ({"eval_stepz": 3}, r"eval_stepz=3 is not allowed: expected a field of AbsldConfig"),
])
def test_bad_fields_name_the_field_the_value_and_what_is_allowed(overrides, match):
    with pytest.raises(ConfigError, match=match):
        absld.make_config("cpu", **overrides)
