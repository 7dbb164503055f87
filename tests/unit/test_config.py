"""advfair.experiments.classwise config + advfair.experiments.common helpers: validation of every field."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from advfair.experiments import CHAPTERS
from advfair.experiments.classwise import PROFILES, ClasswiseConfig, make_config
from advfair.experiments.common import apply_overrides, attack_suite, subset_per_class, tpgd_name
from advfair.validation import ConfigError


def test_cpu_profile_builds_and_serialises():
    cfg = make_config("cpu")
    assert isinstance(cfg, ClasswiseConfig) and cfg.profile == "cpu"
    assert cfg.dataset == "cifar10" and cfg.eps == pytest.approx(8 / 255)
    assert 1.0 in cfg.temperatures and 0.0 in cfg.bias_grid
    d = cfg.to_dict()
    assert json.loads(json.dumps(d)) == d
    assert isinstance(d["temperatures"], list)
    assert CHAPTERS["classwise"][0] is make_config


def test_paper_profile_and_overrides():
    cfg = make_config("paper")
    assert cfg.profile == "paper" and cfg.model == "preact_resnet18" and cfg.epochs == 110
    assert cfg.milestones == (100, 105)
    cfg = make_config("cpu", temperatures=[0.5, 1], epochs=3, device="cpu")
    assert cfg.temperatures == (0.5, 1.0) and isinstance(cfg.temperatures, tuple)
    assert cfg.epochs == 3
    assert set(PROFILES) == {"cpu", "paper"}
    # the profile argument wins over a "profile" override
    assert apply_overrides(ClasswiseConfig, "cpu", {"profile": "paper"}, PROFILES).profile == "cpu"


CUDA = torch.cuda.is_available()


@pytest.mark.parametrize("overrides, match", [
    ({"dataset": "imagenet"}, "dataset='imagenet'"),
    ({"dataset": "mnist"}, "dataset='mnist'"),
    ({"model": "vgg"}, "model='vgg'"),
    ({"mnist_model": "vgg"}, "mnist_model='vgg'"),
    ({"eps": 0}, "eps=0"),
    ({"eps": 2}, "eps=2"),
    ({"mnist_eps": -0.3}, "mnist_eps=-0.3"),
    ({"epochs": -1}, "epochs=-1"),
    ({"epochs": 1.5}, "epochs=1.5"),
    ({"temperatures": [0.5, -1, 1]}, r"temperatures=\[0.5, -1, 1\]"),
    ({"temperatures": [0.5, float("nan"), 1]}, r"temperatures=\[0.5, nan, 1\]"),
    ({"temperatures": [0.5, 2]}, r"temperatures=\[0.5, 2\]"),
    ({"temperatures": []}, r"temperatures=\[\]"),
    ({"temperatures": 1.0}, "temperatures=1.0"),
    ({"epochz": 3}, "epochz=3"),
    ({"bias_grid": [1, 2]}, r"bias_grid=\[1, 2\]"),
    ({"bias_grid": [0, -1]}, "bias_grid=-1"),
    pytest.param({"device": "cuda"}, "device='cuda'",
                 marks=pytest.mark.skipif(CUDA, reason="CUDA is available here")),
    ({"device": "tpu"}, "device='tpu'"),
    ({"device": 5}, "device=5"),
    ({"t_rule": "x"}, "t_rule='x'"),
    ({"aa_version": "x"}, "aa_version='x'"),
    ({"schedule": "x"}, "schedule='x'"),
    ({"schedule": "step", "milestones": [3, 9]}, "milestones=9"),
    ({"train_per_class": 0}, "train_per_class=0"),
    ({"aa_per_class": -2}, "aa_per_class=-2"),
    ({"mnist_aa_per_class": 0}, "mnist_aa_per_class=0"),
    ({"lr": 0}, "lr=0"),
    ({"w_worst": 0}, "w_worst=0"),
    ({"trades_beta": -1}, "trades_beta=-1"),
    ({"long_steps": [0]}, "long_steps=0"),
    ({"mnist": "yes"}, "mnist='yes'"),
    ({"seed": -1}, "seed=-1"),
    ({"width": 0}, "width=0"),
])
def test_bad_fields_raise_config_error_naming_field_and_value(overrides, match):
    with pytest.raises(ConfigError, match=match) as info:
        make_config("cpu", **overrides)
    assert isinstance(info.value, ValueError)
    assert "not allowed" in str(info.value)


def test_paper_profile_with_fewer_epochs_than_milestones_fails_early():
    """The milestones are checked against epochs in the config, not first when training starts."""
    with pytest.raises(ConfigError, match="milestones=105"):
        make_config("paper", epochs=100)
    assert make_config("paper", epochs=50, milestones=[40, 45]).milestones == (40, 45)


def test_bad_profile():
    with pytest.raises(ConfigError, match="profile='bogus'") as info:
        make_config("bogus")
    assert "'cpu'" in str(info.value) and "'paper'" in str(info.value)


def test_unknown_field_lists_the_known_ones():
    with pytest.raises(ConfigError, match="epochz=3") as info:
        make_config("cpu", epochz=3)
    assert "epochs" in str(info.value)


def test_apply_overrides_generic():
    from dataclasses import dataclass

    @dataclass(frozen=True)
    class Tiny:
        profile: str
        a: int = 1

    assert apply_overrides(Tiny, "p", {"a": 3}, {"p": {"a": 2}}) == Tiny("p", 3)
    assert apply_overrides(Tiny, "p", {}, {"p": {"a": 2}}) == Tiny("p", 2)
    with pytest.raises(ConfigError, match="b=1"):
        apply_overrides(Tiny, "p", {"b": 1}, {"p": {}})


def test_attack_suite_names_and_shared_starts(linear_model, tiny_batch):
    suite = attack_suite(eps=8 / 255, alpha=2 / 255, steps=3, seed=0, temperatures=(0.5, 1.0, 2.0),
                         extra_steps=(7,))
    assert list(suite) == ["fgsm", "pgd3", "pgd7", "cw3", "tpgd3_T0.5", "tpgd3_T2"]
    assert tpgd_name(1.0, 10) == "pgd10" and tpgd_name(0.25, 10) == "tpgd10_T0.25"
    x, y = tiny_batch
    a = suite["pgd3"]()(linear_model, x, y)
    b = suite["pgd3"]()(linear_model, x, y)  # a fresh factory call restarts the seeded generator
    assert torch.equal(a, b)
    assert (a - x).abs().max() <= 8 / 255 + 1e-6
    no_extras = attack_suite(eps=0.1, alpha=0.01, steps=2, seed=0, fgsm=False, cw=False)
    assert list(no_extras) == ["pgd2"]


def test_subset_per_class():
    y = np.array([1, 0, 1, 2, 0, 1, 2, 0])
    idx = subset_per_class(y, 2)
    assert idx.tolist() == [0, 1, 2, 3, 4, 6]
    assert np.bincount(y[idx]).tolist() == [2, 2, 2]


@pytest.fixture(scope="module")
def mnist_split(data_dir):
    from advfair.experiments.common import balanced_split

    if not (data_dir / "mnist.npz").exists():
        pytest.skip("no mnist.npz")
    return balanced_split("mnist", train_per_class=3, val_per_class=2, test_per_class=4, seed=0,
                          data_dir=str(data_dir))


def test_balanced_split_is_disjoint_and_balanced(mnist_split):
    s = mnist_split
    y_train = s.data.y_train
    assert torch.bincount(y_train[s.train], minlength=10).tolist() == [3] * 10
    assert torch.bincount(y_train[s.val], minlength=10).tolist() == [2] * 10
    assert torch.bincount(s.data.y_test[s.test], minlength=10).tolist() == [4] * 10
    assert not set(s.train.tolist()) & set(s.val.tolist())
    x, y = s.float_images("test", torch.device("cpu"))
    assert x.shape == (40, 1, 28, 28) and x.dtype == torch.float32 and 0 <= x.min() and x.max() <= 1
    assert torch.equal(y, s.data.y_test[s.test])
    xi, _ = s.images("train")
    assert xi.dtype == torch.uint8 and xi.shape == (30, 1, 28, 28)


def test_balanced_split_all_remaining(data_dir, mnist_split):
    from advfair.experiments.common import balanced_split

    s = balanced_split("mnist", train_per_class=None, val_per_class=2, test_per_class=None, seed=0,
                       data_dir=str(data_dir))
    assert len(s.train) == 60000 - 20 and len(s.test) == 10000
    assert not set(s.val.tolist()) & set(s.train.tolist())
    assert torch.equal(s.val, mnist_split.val)  # the same seed draws the same validation images


def test_run_attacks_and_margin(linear_model):
    from advfair.experiments.common import mean_logit_margin, run_attacks

    g = torch.Generator().manual_seed(0)
    x = torch.rand(12, 3, 4, 4, generator=g)
    y = torch.arange(12) % 10
    suite = attack_suite(eps=8 / 255, alpha=2 / 255, steps=2, seed=0)
    preds, seconds = run_attacks(linear_model, x, y, suite, batch_size=5)
    assert set(preds) == {"clean", *suite} and set(seconds) == set(suite)
    assert all(p.shape == (12,) and isinstance(p, np.ndarray) for p in preds.values())
    with torch.no_grad():
        z = linear_model(x)
        assert np.array_equal(preds["clean"], z.argmax(1).numpy())
        top_other = z.scatter(1, y[:, None], float("-inf")).max(1).values
        expected = float((z.gather(1, y[:, None]).squeeze(1) - top_other).mean())
    assert mean_logit_margin(linear_model, x, y, batch_size=5) == pytest.approx(expected, rel=1e-5)


def test_robust_and_zero_gradient_fraction(linear_model):
    from advfair.experiments.classwise import _robust, _zero_gradient_fraction

    y = np.array([0, 1, 2])
    r = _robust({"clean": np.array([0, 1, 0]), "pgd": np.array([1, 1, 2])}, y)
    assert r["clean"].tolist() == [True, True, False] and r["pgd"].tolist() == [False, True, False]
    g = torch.Generator().manual_seed(0)
    x = torch.rand(6, 3, 4, 4, generator=g)
    with torch.no_grad():
        linear_model[1].weight.mul_(50)  # confident, correct points: T-PGD's loss saturates at small T
        y_t = linear_model(x).argmax(1)
    assert _zero_gradient_fraction(linear_model, x, y_t, 1.0, 4) == 0.0
    assert _zero_gradient_fraction(linear_model, x, y_t, 0.001, 4) == 1.0


def _bias_row(bias: float, val_mean: float, val_target: float) -> dict:
    return {"bias": bias, "val_mean": val_mean, "val_target_class": val_target}


def test_pick_bias_best_target_class_within_mean_tolerance():
    from advfair.experiments.classwise import pick_bias
    rows = [_bias_row(0.0, 0.30, 0.05), _bias_row(1.0, 0.295, 0.12), _bias_row(2.0, 0.28, 0.20)]
    assert pick_bias(rows, 0.01) == 1.0  # b=2 raises the class most but costs 2 points of mean accuracy
    assert pick_bias(rows, 0.03) == 2.0
    assert pick_bias(rows, 0.0) == 0.0  # no tolerance: only b=0 (and biases that do not lower the mean)


def test_pick_bias_ties_go_to_the_smaller_bias_and_b0_need_not_come_first():
    from advfair.experiments.classwise import pick_bias
    rows = [_bias_row(2.0, 0.30, 0.10), _bias_row(0.0, 0.30, 0.05), _bias_row(1.0, 0.31, 0.10)]
    assert pick_bias(rows, 0.01) == 1.0


def test_chapter_results_shows_a_saved_json_but_still_validates_the_parameters(tmp_path):
    from advfair.experiments import chapter_results
    saved = tmp_path / "r.json"
    saved.write_text(json.dumps({"chapter": "classwise", "marker": 7}))
    assert chapter_results("classwise", "cpu", {"epochs": None}, {}, str(saved))["marker"] == 7
    with pytest.raises(ConfigError, match="epochs=-1"):
        chapter_results("classwise", "cpu", {"epochs": -1}, {}, str(saved))
    with pytest.raises(ConfigError, match="chapter='nope'"):
        chapter_results("nope", "cpu", {}, {})


def test_train_cached_initialises_from_the_training_seed_not_the_global_rng():
    """Two requests for the same spec start from the same weights, whatever ran before them in the process."""
    from types import SimpleNamespace

    from advfair.experiments.common import Split, train_cached
    from advfair.trainer import TrainConfig

    class InitOnly:  # a cache that hands back the untrained model
        def get_or_train(self, spec, model, run):
            return model, {}

    data = SimpleNamespace(name="cifar10", num_classes=10, in_channels=3,
                           x_train=torch.zeros(4, 3, 8, 8, dtype=torch.uint8), y_train=torch.arange(4))
    split = Split(data, torch.arange(4), torch.arange(0), torch.arange(0))
    initial = []
    for global_seed in (1, 2):
        torch.manual_seed(global_seed)
        model, _ = train_cached(InitOnly(), split, data_spec={}, model_spec={"name": "small_cnn", "width": 4},
                                objective="pgd_at", objective_params={"eps": 8 / 255, "alpha": 2 / 255, "steps": 1},
                                train_cfg=TrainConfig(epochs=1, seed=3), device=torch.device("cpu"))
        initial.append(torch.cat([p.flatten() for p in model.parameters()]))
    assert torch.equal(initial[0], initial[1])
    torch.manual_seed(5)  # and the caller's RNG stream is left where it was
    expected = torch.rand(3)
    torch.manual_seed(5)
    train_cached(InitOnly(), split, data_spec={}, model_spec={"name": "small_cnn", "width": 4}, objective="pgd_at",
                 objective_params={"eps": 8 / 255, "alpha": 2 / 255, "steps": 1},
                 train_cfg=TrainConfig(epochs=1, seed=3), device=torch.device("cpu"))
    assert torch.equal(torch.rand(3), expected)
