"""advfair.calibration: the quality bars (fixed before any claim is read), the rule that picks the tier's
configuration, and a resumable sweep that logs per-class validation curves."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from advfair import calibration
from advfair.calibration import BARS, Candidate, bars_met, choose, run_sweep
from advfair.data import long_tailed_counts
from advfair.validation import ConfigError

REPO = Path(__file__).resolve().parents[2]


def test_the_bars_are_the_issues_numbers():
    assert (BARS.class_clean, BARS.class_pgd_lower, BARS.lt_balanced_clean) == (0.10, 0.0, 0.30)
    assert (BARS.class_clean_aim, BARS.class_pgd_aim) == (0.30, 0.10)


def _counts(clean, pgd, size=1000):
    return {"clean": list(clean), "pgd": list(pgd), "size": [size] * len(clean)}


def test_every_class_must_be_recognised_and_robust_above_zero_with_its_interval():
    good = _counts([500] * 10, [100] * 9 + [5])
    assert all(b["met"] for b in bars_met(good, long_tailed=False).values())
    weak = bars_met(_counts([500] * 9 + [99], [100] * 10), long_tailed=False)
    assert not weak["every class clean"]["met"] and weak["every class clean"]["value"] == pytest.approx(0.099)
    assert not bars_met(_counts([500] * 10, [100] * 9 + [0]), long_tailed=False)["every class PGD above 0"]["met"]
    # one success in a thousand: the exact interval's lower bound is above 0
    assert bars_met(_counts([500] * 10, [100] * 9 + [1]), long_tailed=False)["every class PGD above 0"]["met"]


def test_a_long_tailed_model_needs_balanced_accuracy_and_every_tail_class_above_chance():
    bars = bars_met(_counts([900, 800, 700, 500, 400, 300, 200, 150, 150, 140], [50] * 10), long_tailed=True)
    assert bars["balanced clean"]["met"] and bars["every tail class above chance"]["met"]
    bars = bars_met(_counts([900, 800, 700, 500, 400, 300, 200, 150, 150, 110], [50] * 10), long_tailed=True)
    assert not bars["every tail class above chance"]["met"]  # 11 % of 1000: its lower bound is below 10 %
    bars = bars_met(_counts([400, 400, 300, 300, 300, 300, 200, 200, 200, 200], [50] * 10), long_tailed=True)
    assert not bars["balanced clean"]["met"] and bars["balanced clean"]["value"] == pytest.approx(0.28)


def _record(name, cpu, met, long_tailed=False, objective="pgd_at", dataset="cifar10"):
    return {"candidate": {"name": name, "dataset": dataset, "long_tailed": long_tailed, "objective": objective},
            "train_cpu_seconds": cpu, "bars": {"a": {"met": True}, "b": {"met": met}}}


def test_the_cheapest_candidate_that_clears_every_bar_is_chosen():
    records = [_record("slow", 900, True), _record("cheap_fails", 100, False), _record("cheap", 300, True),
               _record("lt", 50, True, long_tailed=True)]
    assert choose(records, long_tailed=False)["candidate"]["name"] == "cheap"
    assert choose(records, long_tailed=True)["candidate"]["name"] == "lt"
    assert choose([_record("x", 1, False)], long_tailed=False) is None
    records.append(_record("trades", 10, True, objective="trades"))
    assert choose(records, long_tailed=False)["candidate"]["name"] == "trades"
    assert choose(records, long_tailed=False, objective="pgd_at")["candidate"]["name"] == "cheap"
    # a proxy on another dataset is chosen only for that dataset
    records.append(_record("mnist_lt", 1, True, long_tailed=True, objective="at_fc", dataset="mnist"))
    assert choose(records, long_tailed=True)["candidate"]["name"] == "lt"
    assert choose(records, long_tailed=True, dataset="mnist")["candidate"]["name"] == "mnist_lt"


def test_the_tier_is_what_the_rule_chooses_on_the_book_s_records():
    """The evidence profiles take `calibration.TIER`'s fields: it must be the rule's choice on the committed sweep."""
    records = calibration.load_sweep(REPO / "book" / "results" / "calibration")
    chosen = choose(records, long_tailed=False, objective=calibration.TIER_OBJECTIVE)
    assert chosen is not None and chosen["candidate"]["name"] == calibration.TIER
    fields = calibration.tier_fields()
    assert (fields["train_per_class"], fields["epochs"], fields["width"]) == (
        chosen["candidate"]["train_per_class"], chosen["candidate"]["epochs"], chosen["candidate"]["width"])


def test_robal_s_evidence_tier_is_the_long_tailed_candidate_the_rule_chooses():
    """No CIFAR-10-LT candidate clears the bars, so RoBal's evidence profile is the MNIST-LT proxy the rule picks."""
    from advfair.experiments.robal import make_config

    records = calibration.load_sweep(REPO / "book" / "results" / "calibration")
    assert choose(records, long_tailed=True) is None
    chosen = choose(records, long_tailed=True, dataset="mnist")
    assert chosen is not None and chosen["candidate"]["name"] == calibration.LT_TIER
    cfg = make_config("evidence")
    fields = calibration.lt_tier_fields()
    assert {k: getattr(cfg, k) for k in fields} == fields
    c = chosen["candidate"]
    assert (cfg.dataset, cfg.width, cfg.epochs, cfg.imbalance, cfg.train_alpha) == (
        c["dataset"], c["width"], c["epochs"], c["imbalance"], c["train_alpha"])
    assert sum(cfg.counts()) == chosen["train_images"] and cfg.eval_alpha == cfg.eps / 4 and not cfg.augment


@pytest.mark.parametrize("kwargs, match", [
    ({"objective": "mart"}, r"objective='mart' is not allowed"),
    ({"long_tailed": True}, r"objective='pgd_at' is not allowed: expected at_fc for the long-tailed"),
    ({"epochs": 0}, r"epochs=0 is not allowed"),
    ({"train_per_class": 0}, r"train_per_class=0 is not allowed"),
    ({"dataset": "svhn"}, r"dataset='svhn' is not allowed"),
])
def test_bad_candidates_are_refused(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        Candidate("bad", **kwargs)


def test_the_sweep_logs_every_epoch_writes_each_candidate_and_resumes(tmp_path, monkeypatch):
    tiny = Candidate("tiny", width=2, train_per_class=6, epochs=1, pretrain_epochs=1, batch_size=20)
    sizes = {"val_per_class": 3, "test_per_class": 4}
    [record] = run_sweep(tmp_path, candidates=(tiny,), device="cpu", log=lambda _: None, **sizes)
    assert [(p["phase"], p["epoch"]) for p in record["curve"]] == [("clean", 1), ("adversarial", 1)]
    assert record["curve"][0]["val"]["size"] == [3] * 10 and record["test"]["size"] == [4] * 10
    assert record["train_images"] == 60 and set(record["bars"]) == {"every class clean", "every class PGD above 0"}
    assert record["train_cpu_seconds"] > 0 and record["curve"][1]["train_seconds"] >= record["curve"][0]["train_seconds"]
    assert json.loads((tmp_path / "tiny.json").read_text()) == record
    monkeypatch.setattr(calibration, "run_candidate", lambda *a, **k: pytest.fail("a recorded candidate retrained"))
    assert run_sweep(tmp_path, candidates=(tiny,), device="cpu") == [record]
    with pytest.raises(ConfigError, match=r"candidate='nope' is not allowed"):
        run_sweep(tmp_path, names=["nope"], candidates=(tiny,))


def test_an_mnist_long_tailed_candidate_trains_at_mnist_s_radius_without_crop_and_flip(tmp_path, monkeypatch):
    seen = []
    real_train = calibration.train

    def spy(model, objective, x, y, cfg, **kwargs):
        seen.append((cfg.augment, x.shape[1:]))
        return real_train(model, objective, x, y, cfg, **kwargs)

    monkeypatch.setattr(calibration, "train", spy)
    monkeypatch.setattr(calibration, "LT_N_MAX", 40)  # a head class of 40 images, a tail of 20
    tiny = Candidate("tiny_lt", dataset="mnist", width=2, long_tailed=True, objective="at_fc", imbalance=0.5,
                     train_per_class=None, epochs=1, batch_size=500, train_alpha=0.1)
    assert tiny.eps == 0.3 and not tiny.augment
    record = calibration.run_candidate(tiny, device="cpu", log=lambda _: None, val_per_class=2, test_per_class=3)
    assert seen == [(False, (1, 28, 28))]
    assert record["train_images"] == sum(long_tailed_counts(40, 0.5, 10))
    assert set(record["bars"]) == {"every class clean", "every class PGD above 0", "balanced clean",
                                   "every tail class above chance"}


def test_the_sweeps_candidates_are_distinct_and_valid():
    names = [c.name for c in calibration.SWEEP]
    assert len(set(names)) == len(names) and any(c.long_tailed for c in calibration.SWEEP)


def test_the_class_wise_evidence_profile_trains_with_the_tier_s_fields():
    from advfair.experiments.classwise import make_config

    cfg = make_config("evidence")
    assert {k: getattr(cfg, k) for k in calibration.tier_fields()} == calibration.tier_fields()


def _spec_key(data_spec, model_spec, objective, train_cfg):
    from advfair.cache import spec_key
    from advfair.training import model_spec_of

    return spec_key(model_spec_of(data_spec, model_spec, objective, train_cfg))


def _classwise_pgd_at(seed):
    from advfair.experiments.classwise import make_config, methods
    from advfair.splits import balanced_spec

    cfg = make_config("evidence", seed=seed)
    t = methods.cifar_track(cfg)
    data = balanced_spec(cfg.dataset, train_per_class=cfg.train_per_class, val_per_class=cfg.val_per_class,
                         seed=cfg.data_seed)
    return _spec_key(data, t.model, methods.pgd_at(t), methods.train_config(cfg, t))


@pytest.mark.parametrize("seed", [0, 2])
def test_the_absld_teacher_is_the_class_wise_pgd_at_model_of_the_same_seed(seed):
    """The tier's baselines are trained once: the evidence ABSLD teacher has the class-wise PGD-AT model's cache key."""
    from advfair.experiments.absld import make_config, methods

    cfg = make_config("evidence", seed=seed)
    teacher = _spec_key(methods.split_spec(cfg), methods.teacher_model_spec(cfg), methods.teacher_objective(cfg),
                        methods.teacher_train_config(cfg))
    assert teacher == _classwise_pgd_at(seed) != _classwise_pgd_at(seed + 1)


def test_the_class_wise_evidence_mnist_models_are_the_smoke_tier_s():
    """The MNIST track keeps the smoke tier's training at the evidence tier: the same cache keys, so the same models."""
    from advfair.experiments.classwise import make_config, methods
    from advfair.splits import balanced_spec

    def key(profile):
        cfg = make_config(profile)
        t = methods.mnist_track(cfg)
        data = balanced_spec(t.dataset, train_per_class=t.train_per_class, val_per_class=t.val_per_class,
                             seed=cfg.data_seed)
        return [_spec_key(data, t.model, objective, methods.train_config(cfg, t))
                for objective in (methods.pgd_at(t), methods.trades(cfg, t))]

    assert key("evidence") == key("cpu")


@pytest.mark.parametrize("seed", [0, 1])
def test_the_ducat_baselines_are_the_class_wise_models_of_the_same_seed(seed):
    """DUCAT's evidence PGD-AT and TRADES have the class-wise evidence models' cache keys: trained once."""
    from advfair.experiments.classwise import make_config as classwise_config
    from advfair.experiments.classwise import methods as cw
    from advfair.experiments.ducat import make_config, methods
    from advfair.splits import balanced_spec

    cfg = make_config("evidence", seed=seed)
    data = balanced_spec(cfg.dataset, train_per_class=cfg.train_per_class, val_per_class=cfg.val_per_class,
                         seed=cfg.data_seed)
    plan = methods.plan(cfg, 10)
    ducat = [_spec_key(data, methods.model_spec(cfg, False), plan[k], methods.train_config(cfg))
             for k in ("pgd_at", "trades")]
    ccfg = classwise_config("evidence", seed=seed)
    t = cw.cifar_track(ccfg)
    classwise = [_spec_key(data, t.model, objective, cw.train_config(ccfg, t))
                 for objective in (cw.pgd_at(t), cw.trades(ccfg, t))]
    assert ducat == classwise and _classwise_pgd_at(seed) == ducat[0]


def test_calibrate_with_only_chooses_among_every_recorded_candidate(tmp_path, capsys):
    """`calibrate --only NAME` runs (or finds) that candidate, then chooses among every record in the folder: a
    sweep extended by one long-tailed candidate still names the balanced tier."""
    from advfair import cli

    shutil.copytree(REPO / "book" / "results" / "calibration", tmp_path / "calibration")
    assert cli.main(["calibrate", "--only", "w16_lt", "--out", str(tmp_path / "calibration")]) == 0
    out = capsys.readouterr().out
    assert f"evidence tier (the cheapest whose pgd_at clears every bar): {calibration.TIER}" in out


def test_the_evidence_tier_trains_only_the_models_its_budget_keeps():
    """Cut on cost before any result: DUCAT trains PGD-AT + DUCAT beside the shared PGD-AT and TRADES; ABSLD trains
    RSLAD and ABSLD (separate) under the shared teacher. The cpu profile keeps more of them."""
    from advfair.experiments import absld, ducat
    from advfair.experiments.absld import methods as absld_methods
    from advfair.models import build_model

    assert list(ducat.methods.plan(ducat.make_config("evidence"), 10)) == ["pgd_at", "ducat", "trades"]
    assert len(ducat.methods.plan(ducat.make_config("cpu"), 10)) > 3
    teacher = build_model("small_cnn", dataset="cifar10", num_classes=10, in_channels=3, width=16)
    plans = {p: absld_methods.plan(absld.make_config(p), teacher, "key", [0, 1, 2, 3], [0, 1]) for p in ("evidence", "cpu")}
    assert list(plans["evidence"]) == ["rslad", "absld_separate"]
    assert {"absld_code_product", "absld_manual", "ls_uniform", "ls_class"} <= set(plans["cpu"])


def test_a_model_left_out_says_whether_the_budget_or_a_switch_left_it_out():
    """The budget only where the evidence tier's own value of the switch left it out."""
    from advfair.experiments.absld.config import EVIDENCE
    from advfair.experiments.common import not_trained

    tier = {"profile": "evidence", "students": ["rslad", "absld_separate"]}
    assert not_trained({"config": tier}, "students", EVIDENCE) == \
        "left out of the evidence tier for its CPU budget (students=['rslad', 'absld_separate'])"
    assert not_trained({"config": {**tier, "profile": "cpu"}}, "students", EVIDENCE).startswith("not trained in this run")
    mine = {**tier, "students": ["rslad", "absld_separate", "absld_manual"]}  # a rerun's own choice
    assert not_trained({"config": mine}, "students", EVIDENCE).startswith("not trained in this run (students=")


def test_list_switches_keep_one_order_so_one_choice_has_one_hash():
    from advfair.experiments import absld, ducat

    assert absld.make_config("cpu", students=["absld_separate", "rslad"]).students == ("rslad", "absld_separate")
    assert ducat.make_config("cpu", baselines=["mart", "trades"]).config_hash() == ducat.make_config("cpu").config_hash()


@pytest.mark.parametrize("students, message", [
    (["rslad"], "with rslad and absld_separate"),
    (["rslad", "absld_separate", "rslad"], "distinct names"),
    (["rslad", "absld_separate", "ard"], "expected one of"),
])
def test_absld_students_are_checked_before_any_work(students, message):
    from advfair.experiments import absld

    with pytest.raises(ValueError, match=message):
        absld.make_config("cpu", students=students)
    # code_product mode requires its own variant
    with pytest.raises(ValueError, match="absld_code_product"):
        absld.make_config("cpu", absld_mode="code_product", students=["rslad", "absld_separate"])


@pytest.mark.parametrize("bases", [["svm"], ["trades", "trades"]])
def test_ducat_baselines_are_checked_before_any_work(bases):
    from advfair.experiments import ducat

    with pytest.raises(ValueError, match="baselines"):
        ducat.make_config("cpu", baselines=bases)
