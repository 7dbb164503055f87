"""The command line's commands (`advfair.parser` declares them; `python -m advfair --help` describes them)."""
from __future__ import annotations

import argparse
import datetime
import json
import re
import sys
from fractions import Fraction
from pathlib import Path
from typing import Any

from . import api, compare, distributed
from .config import describe
from .experiments import get_chapter, results_dir
from .experiments.estimate import check_paper_on_cpu, cpu_estimate
from .files import write_json_atomic
from .locations import BOOK_RESULTS
from .parser import build_parser
from .experiments.stability import (add_kernel_runs, pooled_verdicts, refresh_stability, run_stability,
                                   stability_path)
from .validation import ConfigError, fail


def parse_value(text: str) -> Any:
    """JSON where it parses (numbers, lists, true/false/null), a fraction such as 8/255 as its float (as
    `evaluate --eps` takes it), otherwise the plain string."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        pass
    if FRACTION.fullmatch(text) and int(text.split("/")[1]) != 0:  # 8/0 stays a string: the field says why
        return float(Fraction(text))
    return text


def parse_sets(items: list[str]) -> dict[str, Any]:
    overrides = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--set {item!r} is not allowed: expected KEY=VALUE, e.g. --set epochs=10")
        overrides[key.strip()] = parse_value(value.strip())
    return overrides


FRACTION = re.compile(r"\d+/\d+")

# Where a command's outputs go unless --out says otherwise: a folder of the user's, never the committed book.
RUNS_DIR = Path("runs")


def _timestamp() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%d-%H%M%S")


def checked_output(path: Path, into_book: bool | None, *, name: str = "--out") -> Path:
    """`path` as an output file, checked before any work: not a folder, and nowhere in the book's committed results
    (book/results), a new file included, unless --into-book says so on purpose (None: the command has no
    --into-book). `name`: the argument the path came from."""
    if path.is_dir():
        fail(name, str(path), "a file path, not a folder")
    target = path.resolve()
    for book in {results_dir().resolve(), BOOK_RESULTS}:
        if target.is_relative_to(book) and not into_book:
            remedy = f"give another {name}" + ("" if into_book is None else ", or --into-book to write there on purpose")
            fail(name, str(path), f"a path outside the book's committed results in {book} ({remedy})")
    return path


def _config(args: argparse.Namespace):
    overrides = parse_sets(args.sets)
    if "profile" in overrides:
        raise ConfigError(f"--set profile={overrides['profile']!r} is not allowed: use --profile")
    if args.device is not None:
        overrides["device"] = args.device
    if args.progress if args.progress is not None else sys.stderr.isatty():
        overrides["progress"] = True
    return overrides


def _make_config(chapter, profile: str, overrides: dict[str, Any]):
    try:
        return chapter.make_config(profile, **overrides)
    except TypeError as error:  # a field given a value of the wrong kind
        raise ConfigError(str(error)) from error


def _run(args: argparse.Namespace) -> int:
    """One chapter run; under torchrun (WORLD_SIZE > 1) every process runs it together and process 0 writes and
    reports."""
    chapter = get_chapter(args.chapter)
    overrides = {**(chapter.config.smoke_fields() if args.smoke else {}), **_config(args)}
    config = _make_config(chapter, args.profile, overrides)  # every field checked before any process joins
    if not distributed.joining():
        return _run_chapter(args, chapter, config)
    try:
        device = distributed.start(config.device)  # this process's device: cuda:LOCAL_RANK on a GPU node
        return _run_chapter(args, chapter, _make_config(chapter, args.profile, {**overrides, "device": device}))
    finally:
        distributed.stop()


def _run_chapter(args: argparse.Namespace, chapter, config) -> int:
    check_paper_on_cpu(chapter, config, smoke=args.smoke, name="--device")
    if args.profile == "paper" and not args.smoke and api.resolve_device(config.device).type == "cpu":
        print(f"advfair: {chapter.name} at the paper profile on this CPU: {cpu_estimate(chapter, config)}",
              file=sys.stderr)
    name = f"{args.chapter}_{args.profile}{'_smoke' if args.smoke else ''}_{_timestamp()}.json"
    out = checked_output(args.out or RUNS_DIR / name, args.into_book)
    results = chapter.run(config)
    write_json_atomic(results, out)
    if distributed.is_main():
        print(summary(chapter, results))
        print(f"wrote {out} ({results['seconds']['total']:.0f} s)")
    return 0


def summary(chapter, results: dict) -> str:
    """What a run found, for the terminal: every claim's verdict (pooled with the committed stability file's seeds
    when it was made for this config, else this run alone) and its evidence, then the key numbers."""
    lines = [f"{chapter.name} ({results.get('config', {}).get('profile', '?')} profile): verdicts"]
    lines += [f"  {v.claim:<5} {v.text()}\n        {v.evidence()}"
              for v in pooled_verdicts(chapter.name, results, chapter.verdicts)]
    numbers = chapter.key_numbers(results)
    if numbers:
        lines.append("key numbers")
        lines += [f"  {key:<48} {value:.4f}" for key, value in numbers.items()]
    return "\n".join(lines)


def _stability(args: argparse.Namespace) -> int:
    chapter = get_chapter(args.chapter)
    in_book = args.into_book or args.refresh or args.extend  # these two change an existing file: the book's by default
    book_file = stability_path(args.chapter, results_dir(), args.profile)
    if args.resume and not (args.into_book or args.out):
        fail("--resume", True, "--into-book or --out as well: without them every run writes to a new folder under "
                               "runs/, where there is nothing to resume")
    out = args.out or (book_file if in_book else RUNS_DIR / f"{args.chapter}_stability_{_timestamp()}" / book_file.name)
    checked_output(out, args.into_book)
    if args.refresh:
        refresh_stability(chapter, out)
        print(f"refreshed {out}")
        return 0
    if args.extend:
        if not (out.exists() and args.kernels):
            fail("--extend", str(out), "an existing stability file and at least one --kernels set to add")
        add_kernel_runs(chapter, args.kernels, json.loads(out.read_text()), out)
        print(f"added {args.kernels} to {out}")
        return 0
    overrides = _config(args)
    for seed in args.seeds:  # validate every config before the first, long, run
        check_paper_on_cpu(chapter, _make_config(chapter, args.profile, {**overrides, "seed": seed}), name="--device")
    record = run_stability(chapter, args.seeds, profile=args.profile, overrides=overrides, out=out, kernels=args.kernels,
                           resume=args.resume)
    print(f"wrote {out} ({record['seconds']['wall']:.0f} s, seeds {args.seeds}, kernels {args.kernels or 'default'})")
    return 0


def _config_fields(args: argparse.Namespace) -> int:
    chapter = get_chapter(args.chapter)
    fields = describe(chapter.config, args.profile)  # fails on an unknown profile before printing anything
    print(f"{chapter.name}: the fields of {chapter.config.__name__} with their {args.profile} profile values. Set one "
          "with --set KEY=VALUE (a JSON value), or as a notebook parameter (overrides={...}).")
    for f in fields:
        print(f"\n  {f.name} = {json.dumps(list(f.value) if isinstance(f.value, tuple) else f.value)}\n"
              f"      {f.meaning}\n      {f.type}: {f.allowed}")
    return 0


def _calibrate(args: argparse.Namespace) -> int:
    from . import calibration  # torch and the training stack, for this command only

    out = args.out or (results_dir() / "calibration" if args.into_book else RUNS_DIR / "calibration")
    if out.exists() and not out.is_dir():
        fail("--out", str(out), "a folder for the candidates' records")
    checked_output(out / "candidate.json", args.into_book)
    records = calibration.run_sweep(out, names=args.only, device=args.device)
    for row in calibration.sweep_table(records):
        print("  ".join(f"{k} {v}" for k, v in row.items()))
    recorded = calibration.load_sweep(out)  # the choice is among every candidate recorded there, not only these
    print(f"of the {len(recorded)} candidates recorded in {out}:")
    kinds = sorted({(r["candidate"]["dataset"], r["candidate"]["long_tailed"]) for r in recorded})
    for dataset, long_tailed in kinds:
        chosen = calibration.choose(recorded, long_tailed=long_tailed, dataset=dataset)
        print(f"{dataset}, {'long-tailed' if long_tailed else 'balanced'}: "
              f"{chosen['candidate']['name'] if chosen else 'no candidate clears every bar'}")
    tier = calibration.choose(recorded, long_tailed=False, objective=calibration.TIER_OBJECTIVE)
    print(f"evidence tier (the cheapest whose {calibration.TIER_OBJECTIVE} clears every bar): "
          f"{tier['candidate']['name'] if tier else 'none'}; the profiles train with {calibration.TIER}")
    print(f"records in {out}")
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    try:
        kwargs = json.loads(args.model_args)
    except json.JSONDecodeError as error:
        raise ConfigError(f"--model-args={args.model_args!r} is not allowed: expected a JSON object ({error})")
    if not isinstance(kwargs, dict):
        raise ConfigError(f"--model-args={args.model_args!r} is not allowed: expected a JSON object")
    attacks = [a.strip() for a in args.attacks.split(",") if a.strip()]
    api.attack_specs(attacks, api.parse_eps(args.eps))  # fail on a bad attack before loading anything
    if args.out is not None:
        checked_output(args.out, into_book=None)
    model = api.load_model(args.model, args.weights, kwargs=kwargs)
    if args.weights is None and not args.untrained:
        fail("--weights", None, "a state dict file for the model (or --untrained, to evaluate its fresh weights)")
    if any(a.startswith("aa") for a in attacks) and (args.per_class is None or args.per_class > 100) \
            and api.resolve_device(args.device).type == "cpu":
        print("advfair: AutoAttack on this many test images can take hours on a CPU; --per-class 20 gives a first "
              "look", file=sys.stderr)
    report = api.evaluate(model, dataset=args.dataset, eps=args.eps, attacks=attacks, per_class=args.per_class,
                          device=args.device, batch_size=args.batch_size, seed=args.seed,
                          progress=args.progress if args.progress is not None else sys.stderr.isatty())
    print(api.summary_table(report))
    if args.out is not None:
        write_json_atomic({"model": args.model, "model_args": kwargs, "weights": args.weights, **report}, args.out)
        print(f"wrote {args.out}")
    return 0


def _compare(args: argparse.Namespace) -> int:
    compare.check_outputs(args.results, args.out, args.figure)
    for name, path in (("--out", args.out), ("--figure", args.figure)):  # never into book/results, a new file included
        if path is not None:
            checked_output(path, into_book=None, name=name)
    rows, left_out = compare.load_rows(args.results)
    entries = compare.compare(rows, args.baseline)  # checks --baseline before any statistic
    print(compare.text_table(entries, args.baseline, left_out))
    if args.out is not None:
        write_json_atomic(compare.document(entries, baseline=args.baseline, left_out=left_out), args.out)
        print(f"wrote {args.out}")
    if args.figure is not None:
        compare.save_figure(entries, args.figure)
        print(f"wrote {args.figure}")
    return 0


def main(argv: list[str] | None = None) -> int:
    return dispatch(build_parser().parse_args(argv))


def dispatch(args: argparse.Namespace) -> int:
    """Run the parsed command; a bad field ends it with its message and exit status 2."""
    try:
        commands = {"run": _run, "stability": _stability, "config": _config_fields, "evaluate": _evaluate,
                    "calibrate": _calibrate, "compare": _compare}
        return commands[args.command](args)
    except ConfigError as error:
        print(f"advfair: {error}", file=sys.stderr)
        return 2
