"""The chapter configs (advfair.experiments.base.ChapterConfig and the class-wise config), the splits and the
helpers the class-wise pipeline uses: validation of every field."""
from __future__ import annotations

import dataclasses
import json
from typing import Any, ClassVar

import numpy as np
import pytest
import torch

from advfair.evaluation import AttackSpec, standard_attacks, tpgd_name
from advfair.experiments import CHAPTERS
from advfair.config import ChapterConfig
from advfair.experiments.classwise import ClasswiseConfig, make_config
from advfair.splits import subset_per_class
from advfair.validation import ConfigError

RESULTS = __import__("pathlib").Path(__file__).resolve().parents[2] / "book" / "results"

PROFILES = ClasswiseConfig.PROFILES


def test_cpu_profile_builds_and_serialises():
    cfg = make_config("cpu")
    assert isinstance(cfg, ClasswiseConfig) and cfg.profile == "cpu"
    assert cfg.dataset == "cifar10" and cfg.eps == pytest.approx(8 / 255)
    assert 1.0 in cfg.temperatures and 0.0 in cfg.bias_grid
    d = cfg.to_dict()
    assert json.loads(json.dumps(d)) == d
    assert isinstance(d["temperatures"], list)
    assert CHAPTERS["classwise"].config is ClasswiseConfig and CHAPTERS["classwise"].name == "classwise"
    assert CHAPTERS["classwise"].make_config("cpu") == cfg
    assert cfg.test_per_class == 100 and cfg.aa_per_class == 10 and not cfg.mnist  # the cpu defaults
    assert cfg.data_seed == 0 and cfg.trades_clip_start is False  # TRADES' official unclipped start


def test_paper_profile_and_overrides():
    cfg = make_config("paper")
    assert cfg.profile == "paper" and cfg.model == "preact_resnet18" and cfg.epochs == 110
    assert cfg.milestones == (100, 105)
    cfg = make_config("cpu", temperatures=[0.5, 1], epochs=3, device="cpu")
    assert cfg.temperatures == (0.5, 1.0) and isinstance(cfg.temperatures, tuple)
    assert cfg.epochs == 3
    assert set(PROFILES) == {"cpu", "evidence", "paper"}
    # the profile is the argument, never an override
    assert ClasswiseConfig.make("paper").profile == "paper"
    with pytest.raises(TypeError):
        ClasswiseConfig.make("cpu", **{"profile": "paper"})


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
    ({"temperatures": [1]}, r"temperatures=\[1\]"),  # 1 and at least one other
    ({"temperatures": []}, r"temperatures=\[\]"),
    ({"temperatures": 1.0}, "temperatures=1.0"),
    ({"epochz": 3}, "epochz=3"),
    ({"bias_grid": [1, 2]}, r"bias_grid=\[1, 2\]"),
    ({"bias_grid": [0]}, r"bias_grid=\[0\]"),  # 0 and at least one b > 0
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
    ({"data_seed": -1}, "data_seed=-1"),
    ({"data_seed": 0.5}, "data_seed=0.5"),
    ({"trades_clip_start": "no"}, "trades_clip_start='no'"),
    ({"width": 0}, "width=0"),
    ({"eval_batch_size": 0}, "eval_batch_size=0"),
    ({"n_boot": 0}, "n_boot=0"),
    ({"progress": 1}, "progress=1"),
    ({"bias_tolerance": 2}, "bias_tolerance=2"),
])
def test_bad_fields_raise_config_error_naming_field_and_value(overrides, match):
    with pytest.raises(ConfigError, match=match) as info:
        make_config("cpu", **overrides)
    assert isinstance(info.value, ValueError)
    assert "not allowed" in str(info.value)


def test_paper_profile_with_fewer_epochs_than_milestones_fails_early():
    """Milestones set with epochs are checked against them in the config, not first when training starts;
    left unset, the profile's milestones follow epochs."""
    with pytest.raises(ConfigError, match=r"milestones=105 is not allowed: expected epochs in \[1, epochs=100\]"):
        make_config("paper", epochs=100, milestones=[100, 105])
    assert make_config("paper", epochs=100).milestones == (91, 95)
    assert make_config("paper", epochs=50, milestones=[40, 45]).milestones == (40, 45)


def test_bad_profile():
    with pytest.raises(ConfigError, match="profile='bogus'") as info:
        make_config("bogus")
    assert "'cpu'" in str(info.value) and "'paper'" in str(info.value)


def test_unknown_field_lists_the_known_ones():
    with pytest.raises(ConfigError, match="epochz=3") as info:
        make_config("cpu", epochz=3)
    assert "epochs" in str(info.value)


@dataclasses.dataclass(frozen=True)
class Tiny(ChapterConfig):
    PROFILES: ClassVar[dict[str, dict[str, Any]]] = {"p": {"a": 2}, "q": {}}
    LIST_FIELDS: ClassVar[tuple[str, ...]] = ("grid",)

    a: int = 1
    grid: tuple[int, ...] = (1, 2)

    def validate(self) -> None:
        if self.a < 0:
            raise ConfigError(f"a={self.a!r} is not allowed: expected a >= 0")


def test_chapter_config_make_generic():
    assert Tiny.make("p", a=3) == Tiny(profile="p", a=3)
    assert Tiny.make("p") == Tiny(profile="p", a=2)
    assert Tiny.make("q").a == 1
    with pytest.raises(ConfigError, match="b=1") as info:
        Tiny.make("p", b=1)
    assert "a, " in str(info.value)  # the known fields are listed
    with pytest.raises(ConfigError, match="profile='r'"):
        Tiny.make("r")
    with pytest.raises(ConfigError, match="a=-1"):  # the subclass's own check runs
        Tiny.make("p", a=-1)
    assert Tiny.make("q", grid=[3, 4]).grid == (3, 4)  # list fields are frozen to tuples
    with pytest.raises(ConfigError, match="grid=5"):
        Tiny.make("q", grid=5)


@pytest.mark.parametrize("overrides, match", [
    ({"seed": -1}, "seed=-1"), ({"seed": 1.5}, "seed=1.5"), ({"eval_batch_size": 0}, "eval_batch_size=0"),
    ({"n_boot": -5}, "n_boot=-5"), ({"progress": "yes"}, "progress='yes'"), ({"device": "tpu"}, "device='tpu'"),
])
def test_common_fields_are_validated_once_for_every_chapter(overrides, match):
    with pytest.raises(ConfigError, match=match):
        Tiny.make("q", **overrides)


# A value each shared check refuses (the counts and step numbers below take 0, which is not positive).
REFUSED = {"eps": 2.0, "augment": "yes", "schedule": "linear", "aa_version": "apgd", "equivalence_margin": 0,
           "weight_decay": -1, "trades_beta": -1, "data_seed": -1, "train_alpha": 0, "eval_alpha": 0, "lr": 0}


@pytest.mark.parametrize("chapter", sorted(CHAPTERS))
def test_the_shared_fields_are_checked_under_one_name_in_every_chapter_that_has_them(chapter):
    from advfair.config import SHARED_CHECKS
    cls = CHAPTERS[chapter].config
    shared = [f.name for f in dataclasses.fields(cls) if f.name in SHARED_CHECKS]
    assert {"eps", "epochs", "batch_size", "lr", "train_steps"} <= set(shared)
    for name in shared:
        bad = REFUSED.get(name, 0)
        with pytest.raises(ConfigError, match=rf"^{name}={bad!r} is not allowed"):
            cls.make("cpu", **{name: bad})


def test_config_hash_excludes_the_seed_and_execution_fields():
    base = Tiny.make("q")
    assert base.config_hash() == Tiny.make("q", seed=5).config_hash()
    assert base.config_hash() == Tiny.make("q", device="cpu", progress=True, data_dir="/x", cache_dir="/y").config_hash()
    assert base.config_hash() != Tiny.make("q", a=2).config_hash()
    assert base.config_hash() != Tiny.make("q", n_boot=10).config_hash()  # n_boot changes the intervals
    assert base.config_hash() != Tiny.make("p").config_hash()  # profile is part of the identity
    assert len(base.config_hash()) == 16
    cw = make_config("cpu")
    assert cw.config_hash() == make_config("cpu", seed=3, device="cpu").config_hash()
    assert cw.config_hash() != make_config("cpu", data_seed=1).config_hash()


def test_standard_attacks_names_and_shared_starts(linear_model, tiny_batch):
    suite = standard_attacks(steps=3, alpha=2 / 255, temperatures=(0.5, 1.0, 2.0), extra_steps=(7,))
    assert list(suite) == ["fgsm", "pgd3", "pgd7", "cw3", "tpgd3_T0.5", "tpgd3_T2", "aa"]
    assert all(isinstance(spec, AttackSpec) for spec in suite.values())
    assert suite["aa"].kind == "autoattack" and suite["aa"].subset and suite["aa"].version == "subset"
    assert suite["cw3"].loss == "cw" and suite["tpgd3_T0.5"].temperature == 0.5 and suite["pgd7"].steps == 7
    assert not any(spec.subset for name, spec in suite.items() if name != "aa")
    assert tpgd_name(1.0, 10) == "pgd10" and tpgd_name(0.25, 10) == "tpgd10_T0.25"
    x, y = tiny_batch
    a, warnings = suite["pgd3"].run(linear_model, x, y, eps=8 / 255, seed=0, batch_size=5)
    b, _ = suite["pgd3"].run(linear_model, x, y, eps=8 / 255, seed=0, batch_size=5)  # each run reseeds its generator
    assert warnings == [] and torch.equal(a, b)
    assert (a - x).abs().max() <= 8 / 255 + 1e-6
    c, _ = suite["pgd3"].run(linear_model, x, y, eps=8 / 255, seed=1, batch_size=5)
    assert not torch.equal(a, c)
    no_extras = standard_attacks(steps=2, alpha=0.01, fgsm=False, cw=False, autoattack=None)
    assert list(no_extras) == ["pgd2"]
    assert standard_attacks(steps=2, alpha=0.01, autoattack="standard")["aa"].version == "standard"


def test_subset_per_class():
    y = np.array([1, 0, 1, 2, 0, 1, 2, 0])
    idx = subset_per_class(y, 2)
    assert idx.tolist() == [0, 1, 2, 3, 4, 6]
    assert np.bincount(y[idx]).tolist() == [2, 2, 2]


@pytest.fixture(scope="module")
def mnist_split(data_dir):
    from advfair.splits import balanced_split

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
    from advfair.splits import balanced_split

    s = balanced_split("mnist", train_per_class=None, val_per_class=2, test_per_class=None, seed=0,
                       data_dir=str(data_dir))
    assert len(s.train) == 60000 - 20 and len(s.test) == 10000
    assert not set(s.val.tolist()) & set(s.train.tolist())
    assert torch.equal(s.val, mnist_split.val)  # the same seed draws the same validation images


def test_evaluate_attacks_and_margin(linear_model):
    from advfair.evaluation import Points, Protocol, evaluate, mean_logit_margin

    g = torch.Generator().manual_seed(0)
    x = torch.rand(12, 3, 4, 4, generator=g)
    y = torch.arange(12) % 10
    suite = standard_attacks(steps=2, alpha=2 / 255, autoattack=None)
    e = evaluate(linear_model, Points.of(x, y, [str(c) for c in range(10)]), Protocol(8 / 255, suite, batch_size=5))
    assert set(e.predictions) == {"clean", *suite} and set(e.seconds) == set(suite)
    assert all(p.shape == (12,) and isinstance(p, np.ndarray) for p in e.predictions.values())
    with torch.no_grad():
        z = linear_model(x)
        assert np.array_equal(e.predicted("clean"), z.argmax(1).numpy())
        top_other = z.scatter(1, y[:, None], float("-inf")).max(1).values
        expected = float((z.gather(1, y[:, None]).squeeze(1) - top_other).mean())
    assert mean_logit_margin(linear_model, x, y, batch_size=5) == pytest.approx(expected, rel=1e-5)


def test_robust_and_zero_gradient_fraction(linear_model):
    from advfair.evaluation import robust_correctness, zero_gradient_fraction

    y = np.array([0, 1, 2])
    r = robust_correctness({"clean": np.array([0, 1, 0]), "pgd": np.array([1, 1, 2])}, y)
    assert r["clean"].tolist() == [True, True, False] and r["pgd"].tolist() == [False, True, False]
    g = torch.Generator().manual_seed(0)
    x = torch.rand(6, 3, 4, 4, generator=g)
    with torch.no_grad():
        linear_model[1].weight.mul_(50)  # confident, correct points: T-PGD's loss saturates at small T
        y_t = linear_model(x).argmax(1)
    assert zero_gradient_fraction(linear_model, x, y_t, temperature=1.0, batch_size=4) == 0.0
    assert zero_gradient_fraction(linear_model, x, y_t, temperature=0.001, batch_size=4) == 1.0


def _bias_row(bias: float, val_mean: float, val_target: float) -> dict:
    return {"bias": bias, "val_mean": val_mean, "val_target_class": val_target}


def test_pick_bias_best_target_class_within_mean_tolerance():
    from advfair.experiments.classwise.pipeline import pick_bias
    rows = [_bias_row(0.0, 0.30, 0.05), _bias_row(1.0, 0.295, 0.12), _bias_row(2.0, 0.28, 0.20)]
    assert pick_bias(rows, 0.01) == 1.0  # b=2 raises the class most but costs 2 points of mean accuracy
    assert pick_bias(rows, 0.03) == 2.0
    # no b > 0 keeps the mean within the tolerance: the smallest b > 0 (b = 0 is the untweaked model, never picked)
    assert pick_bias(rows, 0.0) == 1.0
    keeps_mean = rows + [_bias_row(3.0, 0.30, 0.07)]
    assert pick_bias(keeps_mean, 0.0) == 3.0  # a bias that does not lower the mean passes a zero tolerance


def test_pick_bias_ties_go_to_the_smaller_bias_and_b0_need_not_come_first():
    from advfair.experiments.classwise.pipeline import pick_bias
    rows = [_bias_row(2.0, 0.30, 0.10), _bias_row(0.0, 0.30, 0.05), _bias_row(1.0, 0.31, 0.10)]
    assert pick_bias(rows, 0.01) == 1.0


def test_chapter_results_shows_a_saved_json_but_still_validates_the_parameters(tmp_path):
    from advfair.experiments import chapter_results
    saved = tmp_path / "r.json"
    saved.write_text(json.dumps({"chapter": "classwise", "schema": "advfair.results/1", "marker": 7}))
    assert chapter_results("classwise", "cpu", {"epochs": None}, {}, str(saved))["marker"] == 7
    with pytest.raises(ConfigError, match="epochs=-1"):
        chapter_results("classwise", "cpu", {"epochs": -1}, {}, str(saved))
    with pytest.raises(ConfigError, match="chapter='nope'"):
        chapter_results("nope", "cpu", {}, {})


def test_train_cached_initialises_from_the_training_seed_not_the_global_rng():
    """Two requests for the same spec start from the same weights, whatever ran before them in the process."""
    from types import SimpleNamespace

    from advfair.training import train_cached
    from advfair.objectives import make_objective
    from advfair.splits import Split
    from advfair.trainer import TrainConfig

    class InitOnly:  # a cache that hands back the untrained model
        root = "nowhere"

        def contains(self, spec):
            return False

        def get_or_train(self, spec, model, run):
            return model, {}

    data = SimpleNamespace(name="cifar10", num_classes=10, in_channels=3,
                           x_train=torch.zeros(4, 3, 8, 8, dtype=torch.uint8), y_train=torch.arange(4))
    split = Split(data, torch.arange(4), torch.arange(0), torch.arange(0), {})
    kwargs = dict(model_spec={"name": "small_cnn", "width": 4},
                  objective=make_objective("pgd_at", eps=8 / 255, alpha=2 / 255, steps=1),
                  train_cfg=TrainConfig(epochs=1, seed=3), device=torch.device("cpu"))
    initial = []
    for global_seed in (1, 2):
        torch.manual_seed(global_seed)
        model, _ = train_cached(InitOnly(), split, **kwargs)
        initial.append(torch.cat([p.flatten() for p in model.parameters()]))
    assert torch.equal(initial[0], initial[1])
    torch.manual_seed(5)  # and the caller's RNG stream is left where it was
    expected = torch.rand(3)
    torch.manual_seed(5)
    train_cached(InitOnly(), split, **kwargs)
    assert torch.equal(torch.rand(3), expected)


def test_run_context_evaluates_as_served_and_writes_the_envelope(linear_model, tiny_batch, tmp_path):
    from advfair.evaluation import Points, Protocol
    from advfair.experiments.common import RESULTS_SCHEMA, Run, attack_entry, evaluation, report, weight_norms
    from advfair.inference import class_bias, deploy

    x, y = tiny_batch[0], torch.arange(16) % 10  # every class present
    r = Run(Tiny.make("q", device="cpu", cache_dir=str(tmp_path)))
    protocol = Protocol(8 / 255, standard_attacks(steps=2, alpha=2 / 255, autoattack=None, cw=False), n_boot=20)
    points = Points.of(x, y, [str(c) for c in range(10)])
    spec = class_bias(10, 3, 2.0)
    e, record = r.evaluate("biased", linear_model, points, protocol, spec=spec, model_key="m")
    assert record["model"] == "m" and record["inference"] == [{"kind": "bias", "values": [0, 0, 0, 2.0, 0, 0, 0, 0,
                                                                                           0, 0]}]
    assert record["inference_label"] == "z +2·1[c=3]"
    served = deploy(linear_model, spec)
    with torch.no_grad():
        assert np.array_equal(e.predicted("clean"), served(x).argmax(1).numpy())  # the tweak is served
    results = r.finish("tiny", {"evaluations": {"biased": record}})
    assert results["chapter"] == "tiny" and results["schema"] == RESULTS_SCHEMA
    assert results["config_hash"] == r.cfg.config_hash() and results["config"]["a"] == 1
    assert "evaluate_biased" in results["seconds"] and results["seconds"]["total"] >= 0
    assert json.loads(json.dumps(results)) == results
    back = evaluation(results, "biased")
    assert np.array_equal(back.predicted("pgd2"), e.predicted("pgd2"))
    assert report(results, "biased")["attacks"]["pgd2"] == attack_entry(results, "biased", "pgd2")
    from advfair.models import build_model

    cnn = build_model("small_cnn", dataset="cifar10", num_classes=10, in_channels=3, width=4)
    with torch.no_grad():
        cnn.head.weight.copy_(torch.arange(160.0).view(10, 16) / 100)
    assert weight_norms(cnn) == pytest.approx([float((torch.arange(16.0) + 16 * c).div(100).norm()) for c in range(10)])


# ---- schedules written in epochs follow `epochs` (issue: `--set epochs=1` alone failed in most chapters) ----

@pytest.mark.parametrize("chapter", sorted(CHAPTERS))
def test_epochs_alone_works_in_every_chapter_and_profile(chapter, monkeypatch, tmp_path):
    from advfair import cli

    ch = CHAPTERS[chapter]
    ran = []
    monkeypatch.setitem(CHAPTERS, chapter, dataclasses.replace(
        ch, run=lambda cfg: ran.append(cfg) or {"config": cfg.to_dict(), "config_hash": cfg.config_hash(),
                                                "seconds": {"total": 0.0}}, verdicts=lambda r: [],
        key_numbers=lambda r: {}))
    for profile in ch.config.PROFILES:
        assert cli.main(["run", chapter, "--profile", profile, "--device", "cpu", "--set", "epochs=1",
                         "--out", str(tmp_path / f"{profile}.json")]) == 0
        cfg = ran[-1]
        for name, epochs_name in ch.config.SCHEDULE_FIELDS.items():
            value = getattr(cfg, name)
            values = [] if value is None else value if isinstance(value, tuple) else [value]
            assert all(1 <= e <= getattr(cfg, epochs_name) for e in values), (profile, name, value)


def test_a_schedule_follows_epochs_unless_set_and_a_conflict_names_both():
    robal = CHAPTERS["robal"]
    assert robal.make_config("cpu").milestones == (2, 3)  # the defaults are untouched
    assert robal.make_config("cpu", epochs=8).milestones == (5, 8)
    assert robal.make_config("paper", epochs=160, device="cpu").milestones == (120, 150)
    assert robal.make_config("cpu", epochs=8, milestones=[2]).milestones == (2,)  # set explicitly: kept
    with pytest.raises(ConfigError) as info:
        robal.make_config("cpu", epochs=2, milestones=[3])
    assert str(info.value).startswith("milestones=3 is not allowed") and "epochs=2" in str(info.value)
    ducat = CHAPTERS["ducat"].make_config("cpu", epochs=20)
    assert (ducat.ducat_start, ducat.ducat_end, ducat.milestones) == (16, 20, (20,))
    absld = CHAPTERS["absld"].make_config("paper", teacher_epochs=38, device="cpu")
    assert absld.teacher_milestones == (38,) and absld.milestones == (216, 261, 286)


def test_the_default_configs_keep_the_committed_results_config_hashes():
    """Following epochs changes nothing unless epochs is overridden: the committed results stay current."""
    for name, ch in CHAPTERS.items():
        committed = json.loads((RESULTS / f"{name}_cpu.json").read_text())
        assert ch.make_config("cpu", seed=committed["config"]["seed"]).config_hash() == committed["config_hash"]
