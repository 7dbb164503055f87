"""advfair.api and `python -m advfair evaluate`: attack names, eps, loading a model, the class-wise report."""
from __future__ import annotations

import json
import sys
import types

import numpy as np
import pytest
import torch
from torch import nn

import advfair
from advfair import api, cli
from advfair.models import build_model, cifar10_small_cnn
from advfair.validation import ConfigError


# ---------------------------------------------------------------------------------------------------------------
# --attacks and --eps

def test_attack_specs_parses_every_kind():
    specs = api.attack_specs(["pgd20", "cw10", "mim5", "fgsm", "aa", "aa_standard"], 8 / 255)
    assert list(specs) == ["pgd20", "cw10", "mim5", "fgsm", "aa", "aa_standard"]
    pgd, cw, mim = specs["pgd20"], specs["cw10"], specs["mim5"]
    assert (pgd.kind, pgd.steps, pgd.loss, pgd.alpha) == ("pgd", 20, "ce", pytest.approx(2 / 255))
    assert (cw.kind, cw.steps, cw.loss) == ("pgd", 10, "cw")
    assert (mim.kind, mim.steps, mim.alpha) == ("mim", 5, pytest.approx(2 / 255))
    assert specs["fgsm"].kind == "fgsm"
    assert (specs["aa"].kind, specs["aa"].version) == ("autoattack", "subset")
    assert (specs["aa_standard"].kind, specs["aa_standard"].version) == ("autoattack", "standard")
    assert not any(s.subset for s in specs.values())  # every attack on every point
    assert api.attack_specs(["pgd7"], 0.3)["pgd7"].alpha == pytest.approx(0.075)  # step eps / 4


@pytest.mark.parametrize("bad", ["pgd", "xx", "pgd-20", "PGD20", "aa_fast", "cw", "20", ""])
def test_attack_specs_rejects_unknown_names(bad):
    with pytest.raises(ConfigError, match="--attacks=") as info:
        api.attack_specs(["fgsm", bad], 8 / 255)
    assert repr(bad) in str(info.value)


def test_parse_eps():
    assert api.parse_eps("8/255") == 8 / 255
    assert api.parse_eps("0.031") == pytest.approx(0.031)
    assert api.parse_eps(0.3) == 0.3 and api.parse_eps("1") == 1.0
    for bad in ("abc", "1/0", "8/", "0", "2", "-0.1", "nan"):
        with pytest.raises(ConfigError, match="--eps="):
            api.parse_eps(bad)


# ---------------------------------------------------------------------------------------------------------------
# load_model

@pytest.fixture
def weights(tmp_path):
    torch.manual_seed(3)
    model = cifar10_small_cnn(width=4)
    path = tmp_path / "w4.pt"
    torch.save(model.state_dict(), path)
    return model, path


def test_load_model_round_trip(weights, tmp_path):
    model, path = weights
    loaded = api.load_model("advfair.models:cifar10_small_cnn", path, kwargs={"width": 4})
    assert not loaded.training
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key
    wrapped = tmp_path / "wrapped.pt"  # a training checkpoint holding the state dict under "state_dict"
    torch.save({"state_dict": model.state_dict(), "epoch": 3}, wrapped)
    again = api.load_model("advfair.models:cifar10_small_cnn", wrapped, kwargs={"width": 4})
    assert torch.equal(again.head.weight, model.head.weight)
    untrained = api.load_model("advfair.models:cifar10_small_cnn", kwargs={"width": 4})
    assert not torch.equal(untrained.head.weight, model.head.weight)


@pytest.mark.parametrize("spec, match", [
    ("advfair.models.cifar10_small_cnn", "--model="),  # no ':'
    (":cifar10_small_cnn", "--model="),
    ("advfair.models:", "--model="),
    ("advfair.no_such_module:factory", "--model=.*ModuleNotFoundError"),
    ("advfair.models:no_such_factory", "--model=.*AttributeError"),
])
def test_load_model_bad_model(spec, match):
    with pytest.raises(ConfigError, match=match):
        api.load_model(spec)


def test_load_model_factory_must_return_a_module(monkeypatch):
    fake = types.ModuleType("advfair_fake_factories")
    fake.not_a_model = lambda: "a string"
    monkeypatch.setitem(sys.modules, "advfair_fake_factories", fake)
    with pytest.raises(ConfigError, match="--model=.*torch.nn.Module"):
        api.load_model("advfair_fake_factories:not_a_model")


def test_load_model_bad_weights(weights, tmp_path):
    _, path = weights
    with pytest.raises(ConfigError, match="--weights=.*existing file"):
        api.load_model("advfair.models:cifar10_small_cnn", tmp_path / "missing.pt", kwargs={"width": 4})
    with pytest.raises(ConfigError, match="--weights=.*fit the model"):
        api.load_model("advfair.models:cifar10_small_cnn", path, kwargs={"width": 8})  # width-4 weights
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a torch file")
    with pytest.raises(ConfigError, match="--weights="):
        api.load_model("advfair.models:cifar10_small_cnn", garbage, kwargs={"width": 4})
    listed = tmp_path / "list.pt"
    torch.save([1, 2], listed)
    with pytest.raises(ConfigError, match="--weights=.*state dict"):
        api.load_model("advfair.models:cifar10_small_cnn", listed, kwargs={"width": 4})


# ---------------------------------------------------------------------------------------------------------------
# The report, in Python and from the command line (real CIFAR-10 test images)

@pytest.fixture
def cifar(data_dir):
    if not (data_dir / "cifar10.npz").exists():
        pytest.skip("no cifar10.npz")
    return data_dir


def test_evaluate_any_model(cifar):
    torch.manual_seed(0)
    model = cifar10_small_cnn(width=4).train()
    report = advfair.evaluate(model, dataset="cifar10", eps="8/255", attacks=["fgsm", "pgd2"], per_class=2,
                              device="cpu", n_boot=50, data_dir=str(cifar))
    assert json.loads(json.dumps(report)) == report
    assert report["dataset"] == "cifar10" and report["eps"] == 8 / 255 and report["per_class"] == 2
    assert len(report["test_indices"]) == 20 and report["points"] == {"all": 20, "subset": 20}
    rep = report["reports"]["all"]
    assert list(rep["attacks"]) == ["clean", "fgsm", "pgd2"] and rep["n_per_class"] == [2] * 10
    assert rep["classes"][0] == "airplane"
    for name in ("fgsm", "pgd2"):
        assert rep["attacks"][name]["overall"] <= rep["attacks"]["clean"]["overall"]
    table = api.summary_table(report)
    lines = table.splitlines()
    assert lines[0].split() == ["class", "clean", "fgsm", "pgd2"] and len(lines) == 1 + 10 + 4
    assert lines[1].split()[0] == "airplane"
    assert float(lines[1].split()[1]) == pytest.approx(100 * rep["attacks"]["clean"]["per_class"][0], abs=0.05)
    assert [line.split()[0] for line in lines[-4:]] == ["mean", "worst", "gap", "NSD"]


def test_evaluate_shows_which_attack_runs_when_asked(cifar, capsys):
    model = cifar10_small_cnn(width=4)
    quiet = advfair.evaluate(model, attacks=["fgsm", "pgd2"], per_class=1, device="cpu", n_boot=5, data_dir=str(cifar))
    assert capsys.readouterr().err == ""
    loud = advfair.evaluate(model, attacks=["fgsm", "pgd2"], per_class=1, device="cpu", n_boot=5, data_dir=str(cifar),
                            progress=True)
    err = capsys.readouterr().err
    assert "evaluate Classifier" in err and "pgd2" in err and quiet["outcomes"] == loud["outcomes"]


def test_evaluate_rejects_models_with_other_outputs_and_bad_arguments(cifar):
    with pytest.raises(ConfigError, match="--model=.*logits"):
        api.evaluate(nn.Sequential(nn.Flatten(), nn.Linear(3072, 7)), attacks=["fgsm"], per_class=1,
                     device="cpu", data_dir=str(cifar))
    with pytest.raises(ConfigError, match="--dataset='imagenet'"):
        api.evaluate(cifar10_small_cnn(width=4), dataset="imagenet", attacks=["fgsm"])
    with pytest.raises(ConfigError, match="--per-class=0"):
        api.evaluate(cifar10_small_cnn(width=4), attacks=["fgsm"], per_class=0)
    with pytest.raises(ConfigError, match="--attacks='pgd'"):
        api.evaluate(cifar10_small_cnn(width=4), attacks=["pgd"], per_class=1)


def test_cli_evaluate_writes_the_report_and_prints_the_table(cifar, tmp_path, capsys):
    out = tmp_path / "report.json"
    code = cli.main(["evaluate", "--model", "advfair.models:cifar10_small_cnn", "--model-args", '{"width": 4}',
                     "--per-class", "2", "--attacks", "fgsm,pgd2", "--device", "cpu", "--out", str(out), "--untrained"])
    assert code == 0
    printed = capsys.readouterr().out
    report = json.loads(out.read_text())
    assert report["model"] == "advfair.models:cifar10_small_cnn" and report["model_args"] == {"width": 4}
    assert report["weights"] is None and report["per_class"] == 2
    assert set(report["reports"]["all"]["attacks"]) == {"clean", "fgsm", "pgd2"}
    assert api.summary_table(report) in printed and f"wrote {out}" in printed
    assert "airplane" in printed and "NSD" in printed
    per_class = np.array(report["reports"]["all"]["attacks"]["pgd2"]["per_class"])
    assert per_class.shape == (10,) and ((0 <= per_class) & (per_class <= 1)).all()


@pytest.mark.parametrize("args, expected", [
    (["--attacks", "fgsm,pgd"], "--attacks='pgd' is not allowed"),
    (["--eps", "8/0"], "--eps='8/0' is not allowed"),
    (["--model-args", "{width: 4}"], "--model-args='{width: 4}' is not allowed"),
    (["--model-args", "[4]"], "--model-args='[4]' is not allowed"),
    (["--weights", "/nonexistent/w.pt"], "--weights='/nonexistent/w.pt' is not allowed"),
    (["--per-class", "0"], "--per-class=0 is not allowed"),
    (["--dataset", "imagenet"], "--dataset='imagenet' is not allowed"),
])
def test_cli_evaluate_errors_exit_2(args, expected, capsys, tmp_path):
    base = ["evaluate", "--model", "advfair.models:cifar10_small_cnn", "--model-args", '{"width": 4}',
            "--per-class", "1", "--device", "cpu", "--out", str(tmp_path / "r.json"), "--untrained"]
    assert cli.main([*base, *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("advfair: ") and expected in err
    assert not (tmp_path / "r.json").exists()


def test_cli_evaluate_bad_model_exits_2(capsys):
    assert cli.main(["evaluate", "--model", "advfair.models:nope", "--attacks", "fgsm"]) == 2
    assert "--model='advfair.models:nope'" in capsys.readouterr().err
    assert cli.main(["evaluate", "--model", "my_models:net", "--attacks", "fgsm"]) == 2
    assert "No module named 'my_models'; a module of your own is found from the current folder or from PYTHONPATH" \
        in capsys.readouterr().err


def test_cli_evaluate_checks_before_any_work(cifar, capsys, tmp_path):
    """Each mistake of a new user is a clear message naming the argument, not a traceback."""
    base = ["evaluate", "--model", "advfair.models:cifar10_small_cnn", "--model-args", '{"width": 4}',
            "--attacks", "fgsm", "--device", "cpu"]
    assert cli.main([*base, "--untrained", "--per-class", "2000"]) == 2
    assert "--per-class=2000 is not allowed: expected at most 1000" in capsys.readouterr().err
    assert cli.main([*base, "--untrained", "--per-class", "1", "--out", str(tmp_path)]) == 2
    assert "a file path, not a folder" in capsys.readouterr().err
    assert cli.main([*base, "--per-class", "1"]) == 2  # no weights: never a silent evaluation of random ones
    assert "--weights=None is not allowed" in capsys.readouterr().err and not list(tmp_path.iterdir())


def test_cli_evaluate_says_autoattack_on_many_points_takes_hours_on_a_cpu(capsys, monkeypatch):
    ran = []
    monkeypatch.setattr(api, "evaluate", lambda model, **kw: ran.append(kw))  # the note, not the hours
    monkeypatch.setattr(api, "summary_table", lambda report: "")
    base = ["evaluate", "--model", "advfair.models:cifar10_small_cnn", "--model-args", '{"width": 4}', "--untrained",
            "--device", "cpu"]
    note = "AutoAttack on this many test images can take hours on a CPU"
    assert cli.main([*base, "--attacks", "aa"]) == 0 and note in capsys.readouterr().err
    assert cli.main([*base, "--attacks", "aa", "--per-class", "20"]) == 0 and note not in capsys.readouterr().err
    assert cli.main([*base, "--attacks", "pgd10"]) == 0 and note not in capsys.readouterr().err
    assert len(ran) == 3


def test_a_model_for_other_images_is_named_before_any_attack(cifar, monkeypatch):
    mnist_model = build_model("small_cnn", dataset="mnist", num_classes=10, in_channels=1, width=4)
    with pytest.raises(ConfigError, match=r"--model=.*a model for cifar10 images of shape \(3, 32, 32\)"):
        api.evaluate(mnist_model, attacks=["pgd2"], per_class=1, device="cpu", data_dir=str(cifar))


def test_a_pickle_with_code_is_refused_without_the_advice_to_unpickle_it(tmp_path):
    import os

    class Payload:
        def __reduce__(self):
            return (os.getcwd, ())

    path = tmp_path / "payload.pt"
    torch.save({"state_dict": Payload()}, path)
    with pytest.raises(ConfigError) as info:
        api.load_model("advfair.models:cifar10_small_cnn", path, kwargs={"width": 4})
    message = str(info.value)
    assert "holds more than tensors" in message and "state_dict()" in message
    assert "two options" not in message and "trust the source" not in message and "set to `False`" not in message
    assert "add_safe_globals" not in message and "if you trust" not in message


def test_a_file_that_is_not_a_torch_save_says_so(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("hello world")
    with pytest.raises(ConfigError, match=r"not a file written by torch.save \(KeyError: 101\)"):
        api.load_model("advfair.models:cifar10_small_cnn", path, kwargs={"width": 4})


def test_version_and_a_table_aligned_for_short_class_names(capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(["--version"])
    assert info.value.code == 0 and capsys.readouterr().out.strip() == f"advfair {advfair.__version__}"
    entry = {"per_class": [0.5, 1.0], "mean": 0.75, "worst": 0.5, "gap": 0.5, "nsd": 0.33}
    table = api.summary_table({"reports": {"all": {"classes": ["a", "b"], "attacks": {"clean": entry}}}})
    assert len({line.index(line.split()[1]) + len(line.split()[1]) for line in table.splitlines()}) == 1
