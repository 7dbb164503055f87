"""advfair.cli: --set parsing, config errors as exit code 2, the results JSON, without running a pipeline."""
from __future__ import annotations

import dataclasses
import json

import pytest

from advfair import cli
from advfair.experiments.classwise import CHAPTER
from advfair.validation import ConfigError


@pytest.fixture
def fake_run(monkeypatch):
    """Replace the classwise pipeline by a recorder; the real config factory stays."""
    calls = []

    def run(cfg):
        calls.append(cfg)
        return {"seconds": {"total": 1.5}, "eps": cfg.eps}

    monkeypatch.setitem(cli.CHAPTERS, "classwise", dataclasses.replace(CHAPTER, run=run))
    return calls


def test_bad_value_exits_2_without_running(fake_run, capsys, tmp_path):
    code = cli.main(["run", "classwise", "--set", "eps=0", "--out", str(tmp_path / "r.json")])
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("advfair: ") and "eps=0" in err and "not allowed" in err
    assert fake_run == []
    assert not (tmp_path / "r.json").exists()


@pytest.mark.parametrize("args, match", [
    (["--set", "epochz=3"], "epochz=3"),
    (["--set", "novalue"], "KEY=VALUE"),
    (["--profile", "bogus"], "profile='bogus'"),
    (["--set", "temperatures=[0.5,2]"], "temperatures="),
    (["--device", "tpu"], "device='tpu'"),
    (["--set", "profile=paper"], "profile"),  # use --profile
])
def test_config_errors_exit_2(fake_run, capsys, args, match):
    assert cli.main(["run", "classwise", *args]) == 2
    assert match in capsys.readouterr().err
    assert fake_run == []


def test_valid_run_writes_results(fake_run, capsys, tmp_path):
    out = tmp_path / "sub" / "results.json"
    code = cli.main(["run", "classwise", "--set", "eps=0.03", "--set", "temperatures=[0.5, 1]",
                     "--set", "device=cpu", "--progress", "--out", str(out)])
    assert code == 0
    assert len(fake_run) == 1
    cfg = fake_run[0]
    assert cfg.eps == 0.03 and cfg.temperatures == (0.5, 1.0) and cfg.progress is True and cfg.device == "cpu"
    assert json.loads(out.read_text()) == {"seconds": {"total": 1.5}, "eps": 0.03}
    assert str(out) in capsys.readouterr().out
    assert not list(out.parent.glob("*.tmp")) and not list(out.parent.glob(".*.tmp"))


def test_device_flag_and_default_output_path(fake_run, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert cli.main(["run", "classwise", "--device", "cpu", "--profile", "paper", "--set", "mnist=false"]) == 0
    assert fake_run[0].device == "cpu" and fake_run[0].profile == "paper" and fake_run[0].mnist is False
    assert (tmp_path / "book" / "results" / "classwise_paper.json").exists()


def test_argparse_errors(fake_run, capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(["run", "nochapter"])
    assert info.value.code == 2
    with pytest.raises(SystemExit):
        cli.main([])
    assert fake_run == []


def test_parse_value_and_sets():
    assert cli.parse_value("3") == 3 and isinstance(cli.parse_value("3"), int)
    assert cli.parse_value("0.5") == 0.5
    assert cli.parse_value("[0.5, 1]") == [0.5, 1]
    assert cli.parse_value("true") is True and cli.parse_value("null") is None
    assert cli.parse_value("cpu") == "cpu"
    assert cli.parse_value('"3"') == "3"
    sets = cli.parse_sets(["epochs=10", "eps=0.03", "temperatures=[0.5,1,2]", "device=cpu", " width = 8 ",
                           "data_dir=/tmp/a=b"])
    assert sets == {"epochs": 10, "eps": 0.03, "temperatures": [0.5, 1, 2], "device": "cpu", "width": 8,
                    "data_dir": "/tmp/a=b"}
    for bad in ("novalue", "=3", ""):
        with pytest.raises(ConfigError, match="KEY=VALUE"):
            cli.parse_sets([bad])
    assert cli.parse_sets([]) == {}
