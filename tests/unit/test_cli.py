"""advfair.cli: --set parsing, config errors as exit code 2, the results JSON, without running a pipeline."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from advfair import cli
from advfair.experiments import CHAPTERS
from advfair.experiments.classwise import CHAPTER
from advfair.validation import ConfigError
from advfair.verdicts import Part, Verdict


@pytest.fixture
def fake_run(monkeypatch, tmp_path_factory):
    """Replace the classwise pipeline by a recorder; the real config factory stays. Its results carry the
    envelope's config and hash (what the printed verdicts are pooled by), and no committed stability file is
    seen (an empty results folder), so the printed verdicts are this run's alone."""
    calls = []

    def run(cfg):
        calls.append(cfg)
        return {"config": cfg.to_dict(), "config_hash": cfg.config_hash(), "seconds": {"total": 1.5}, "eps": cfg.eps}

    monkeypatch.setenv("ADVFAIR_RESULTS_DIR", str(tmp_path_factory.mktemp("results")))

    verdict = Verdict("C1", "a claim", (Part("a part", "reproduced"),))
    monkeypatch.setitem(CHAPTERS, "classwise", dataclasses.replace(
        CHAPTER, run=run, verdicts=lambda results: [verdict], key_numbers=lambda results: {"pgd_at.clean": 0.5}))
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
    written = json.loads(out.read_text())
    assert written["seconds"] == {"total": 1.5} and written["eps"] == 0.03
    assert written["config_hash"] == cfg.config_hash() and written["config"]["eps"] == 0.03
    assert str(out) in capsys.readouterr().out
    assert not list(out.parent.glob("*.tmp")) and not list(out.parent.glob(".*.tmp"))


def test_device_flag_and_default_output_path(fake_run, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert cli.main(["run", "classwise", "--device", "cpu", "--profile", "paper", "--set", "mnist=false"]) == 0
    assert fake_run[0].device == "cpu" and fake_run[0].profile == "paper" and fake_run[0].mnist is False
    written = list((tmp_path / "runs").glob("classwise_paper_*.json"))  # a user folder, never the book
    assert len(written) == 1 and not (tmp_path / "book").exists()


@pytest.fixture
def book_results(tmp_path, monkeypatch):
    """A stand-in for the book's committed results folder, with one committed file in it."""
    book = tmp_path / "book" / "results"
    book.mkdir(parents=True)
    (book / "classwise_cpu.json").write_text('{"committed": true}')
    monkeypatch.setenv("ADVFAIR_RESULTS_DIR", str(book))
    return book


def test_a_rerun_never_replaces_committed_results_without_into_book(fake_run, capsys, book_results):
    committed = book_results / "classwise_cpu.json"
    assert cli.main(["run", "classwise", "--out", str(committed)]) == 2
    err = capsys.readouterr().err
    assert "--out=" in err and "--into-book" in err and str(book_results) in err
    assert fake_run == [] and committed.read_text() == '{"committed": true}'  # refused before any work
    assert cli.main(["run", "classwise", "--out", str(committed), "--into-book"]) == 0
    assert json.loads(committed.read_text())["eps"] == fake_run[0].eps
    # A new file beside them is refused too: publishing a paper-scale run is said with --into-book.
    paper = book_results / "classwise_paper.json"
    assert cli.main(["run", "classwise", "--out", str(paper)]) == 2 and not paper.exists()
    assert "--into-book" in capsys.readouterr().err and len(fake_run) == 1
    assert cli.main(["run", "classwise", "--out", str(paper), "--into-book"]) == 0 and paper.exists()


def test_evaluate_never_writes_into_the_book_and_names_no_flag_it_lacks(capsys, book_results):
    assert cli.main(["evaluate", "--model", "small_cnn", "--untrained", "--out", str(book_results / "new.json")]) == 2
    err = capsys.readouterr().err
    assert "--out=" in err and str(book_results) in err and "--into-book" not in err


def test_out_must_be_a_file_path(fake_run, capsys, tmp_path):
    assert cli.main(["run", "classwise", "--out", str(tmp_path)]) == 2
    assert "a file path, not a folder" in capsys.readouterr().err and fake_run == []


def test_stability_writes_into_the_book_only_with_into_book(capsys, book_results, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    ran = []
    monkeypatch.setattr(cli, "run_stability", lambda chapter, seeds, **kw: ran.append(kw["out"]) or {
        "seconds": {"wall": 1.0}})
    monkeypatch.setattr(cli, "refresh_stability", lambda chapter, out: ran.append(out))
    assert cli.main(["stability", "classwise", "--seeds", "0", "1"]) == 0
    assert ran[-1].parts[0] == "runs" and ran[-1].name == "classwise_stability.json"
    # per-seed files would land beside it: any path in the book counts, existing or not
    assert cli.main(["stability", "classwise", "--seeds", "0", "1", "--out", str(book_results / "new.json")]) == 2
    assert cli.main(["stability", "classwise", "--refresh"]) == 2  # the book's file by default: say so
    assert "--into-book" in capsys.readouterr().err and len(ran) == 1
    assert cli.main(["stability", "classwise", "--refresh", "--into-book"]) == 0
    assert ran[-1] == book_results / "classwise_stability.json"


def test_a_real_rerun_from_the_repository_root_leaves_git_clean(tmp_path):
    """The README's rerun, run from the checkout as a new user would: the work tree stays as it was."""
    import subprocess
    import sys

    repo = cli.BOOK_RESULTS.parents[1]
    if not (repo / ".git").exists():
        pytest.skip("not a git checkout")
    status = lambda: subprocess.run(["git", "status", "--porcelain", "--untracked-files=all"], cwd=repo,
                                    capture_output=True, text=True, check=True).stdout
    before, had_runs = status(), (repo / "runs").exists()
    tiny = ["epochs=1", "train_per_class=10", "val_per_class=5", "test_per_class=5", "aa_per_class=2",
            "mnist=false", "temperatures=[1,2]", "bias_grid=[0,1]", "long_steps=[]"]
    run = subprocess.run([sys.executable, "-m", "advfair", "run", "classwise", *[f"--set={s}" for s in tiny]],
                         cwd=repo, capture_output=True, text=True,
                         env={**__import__("os").environ, "ADVFAIR_CACHE_DIR": str(tmp_path / "cache")})
    assert run.returncode == 0, run.stderr[-3000:]
    written = Path(run.stdout.split("wrote ", 1)[1].split(" (")[0])
    try:
        assert written.parts[0] == "runs" and status() == before
    finally:
        (repo / written).unlink(missing_ok=True)
        if not had_runs:
            (repo / "runs").rmdir()


def test_argparse_errors(fake_run, capsys):
    # An unknown chapter is the command's clear error (exit status 2), naming the chapters there are.
    assert cli.main(["run", "nochapter"]) == 2
    assert "chapter='nochapter' is not allowed: expected one of 'classwise'" in capsys.readouterr().err
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


def test_run_prints_its_verdicts_and_key_numbers(fake_run, capsys, tmp_path):
    assert cli.main(["run", "classwise", "--out", str(tmp_path / "r.json")]) == 0
    printed = capsys.readouterr().out
    assert "C1" in printed and "reproduced" in printed and "pgd_at.clean" in printed and "0.5000" in printed
    # the decision, pooled over this run alone (no stability file): a training comparison stays open
    assert "inconclusive at this scale; one training seed (reproduced for this model)" in printed


def test_the_paper_profile_never_falls_back_to_the_cpu_silently(fake_run, capsys, tmp_path, monkeypatch):
    monkeypatch.setattr(cli.api.torch.cuda, "is_available", lambda: False)
    device = CHAPTER.make_config("paper").device
    for given in ([], ["--device", "auto"]):  # 'auto' resolving to the CPU is no confirmation
        assert cli.main(["run", "classwise", "--profile", "paper", *given, "--out", str(tmp_path / "r.json")]) == 2
        err = capsys.readouterr().err
        assert f"--device={given[-1] if given else device!r} is not allowed" in err and fake_run == []
        assert "'cpu' to run it on this CPU anyway" in err
        assert "no estimate" in err  # the fixture's results folder holds no reference
    assert cli.main(["run", "classwise", "--profile", "paper", "--device", "cpu", "--out", str(tmp_path / "r.json")]) == 0
    assert "paper profile on this CPU: no estimate" in capsys.readouterr().err  # said, then run


def test_stability_and_pages_refuse_the_paper_profile_on_a_cpu_too(capsys, tmp_path, monkeypatch):
    from advfair.experiments import chapter_results

    monkeypatch.setattr(cli.api.torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(cli, "run_stability", lambda *a, **kw: pytest.fail("started"))
    assert cli.main(["stability", "classwise", "--profile", "paper", "--seeds", "0", "--out",
                     str(tmp_path / "s.json")]) == 2
    assert "'cpu' to run it on this CPU anyway" in capsys.readouterr().err
    monkeypatch.delenv("ADVFAIR_REPLAY_DIR", raising=False)
    with pytest.raises(cli.ConfigError, match="device='auto' is not allowed: expected 'cuda' for the paper profile"):
        chapter_results("classwise", "paper", {"device": "auto"}, {})


def test_the_paper_profile_on_a_cpu_gives_its_estimated_time(fake_run, capsys, tmp_path, monkeypatch):
    from advfair.experiments import estimate, results_dir

    monkeypatch.setattr(cli.api.torch.cuda, "is_available", lambda: False)
    (results_dir() / "classwise_cpu.json").write_text(json.dumps({"seconds": {"total": 600.0}}))
    cost = {"small_cnn": 1e-3, "preact_resnet18": 2e-2}  # seconds per image pass, as if timed here
    monkeypatch.setattr(estimate, "seconds_per_image", lambda cfg: cost[estimate.network(cfg)[0]])
    assert cli.main(["run", "classwise", "--profile", "paper", "--out", str(tmp_path / "r.json")]) == 2
    err = capsys.readouterr().err
    paper, cpu = CHAPTER.make_config("paper"), CHAPTER.make_config("cpu")
    expected = 600.0 * estimate.training_volume(paper) / estimate.training_volume(cpu) * 20
    assert f"(estimated: {estimate.readable(expected)} (the cpu profile's 10 minutes" in err and fake_run == []
    # 5000 images per class x 110 epochs x 11 passes against 400 per class x 4 epochs x 4 passes
    assert estimate.training_volume(paper) / estimate.training_volume(cpu) == pytest.approx(50_000 * 110 * 11 / 64_000)


def test_estimate_pieces():
    from advfair.experiments import CHAPTERS, estimate

    robal = CHAPTERS["robal"].make_config("cpu")
    assert estimate.training_volume(robal) == sum(robal.counts()) * robal.epochs * (robal.train_steps + 1)
    assert estimate.network(CHAPTERS["ducat"].make_config("paper")) == ("bottleneck18", 16)
    assert estimate.readable(90) == "about 1.5 minutes" and estimate.readable(3 * 86400) == "about 3.0 days"
    assert estimate.readable(40 * 86400) == "about 40 days" and estimate.readable(5) == "about 5 seconds"
    assert estimate.seconds_per_image(robal, batch=2, repeats=1) > 0


def test_set_takes_a_fraction_as_evaluate_does(fake_run, tmp_path):
    assert cli.parse_value("8/255") == 8 / 255 and cli.parse_value("cosine") == "cosine"
    assert cli.main(["run", "classwise", "--set", "eps=4/255", "--out", str(tmp_path / "r.json")]) == 0
    assert fake_run[0].eps == 4 / 255


def test_config_lists_every_field_with_its_value_allowed_values_and_meaning(capsys):
    from advfair.experiments import CHAPTERS
    from advfair.config import describe

    for name, chapter in CHAPTERS.items():
        for profile in chapter.config.PROFILES:
            assert cli.main(["config", name, "--profile", profile]) == 0
            out = capsys.readouterr().out
            config = chapter.make_config(profile)
            fields = describe(chapter.config, profile)
            assert [f.name for f in fields] == [f.name for f in dataclasses.fields(config) if f.name != "profile"]
            for f in fields:
                assert f.value == getattr(config, f.name)
                value = list(f.value) if isinstance(f.value, tuple) else f.value
                assert f"\n  {f.name} = {json.dumps(value)}\n      {f.meaning}\n      {f.type}: {f.allowed}" in out
                assert f.meaning and f.allowed, (name, f.name)  # every field says what it is
    robal = {f.name: f for f in describe(CHAPTERS["robal"].config, "paper")}
    assert robal["epochs"].value == 80 and robal["model"].allowed.startswith("one of 'small_cnn'")
    assert robal["models"].allowed.startswith("a list, each one of 'plain'")
    assert robal["norm_tau"].meaning == "tau of the tau-normalisation head W_i / ||W_i||^tau (C4)"
    assert robal["device"].allowed == "'auto', 'cpu' or 'cuda[:N]'"


def test_config_of_an_unknown_profile_and_help_pointing_to_config(capsys):
    assert cli.main(["config", "robal", "--profile", "gpu"]) == 2
    assert "profile='gpu' is not allowed" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["run", "--help"])
    assert "python -m advfair config CHAPTER" in " ".join(capsys.readouterr().out.split())


def test_progress_bars_are_on_in_a_terminal_and_off_otherwise(fake_run, tmp_path, monkeypatch):
    base = ["run", "classwise", "--set", "device=cpu"]
    monkeypatch.setattr("sys.stderr.isatty", lambda: False)
    cli.main([*base, "--out", str(tmp_path / "a.json")])
    monkeypatch.setattr("sys.stderr.isatty", lambda: True)
    cli.main([*base, "--out", str(tmp_path / "b.json")])
    cli.main([*base, "--no-progress", "--out", str(tmp_path / "c.json")])
    monkeypatch.setattr("sys.stderr.isatty", lambda: False)
    cli.main([*base, "--progress", "--out", str(tmp_path / "d.json")])
    assert [cfg.progress for cfg in fake_run] == [False, True, False, True]
