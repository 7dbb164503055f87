"""Command line: run a chapter's pipeline without Jupyter and write its results JSON.

    python -m advfair run classwise --profile paper --device cuda --set seed=1 --out book/results/classwise_paper.json
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from .experiments import CHAPTERS
from .experiments.cache import write_json_atomic
from .validation import ConfigError


def parse_value(text: str) -> Any:
    """JSON where it parses (numbers, lists, true/false/null), otherwise the plain string."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def parse_sets(items: list[str]) -> dict[str, Any]:
    overrides = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--set {item!r} is not allowed: expected KEY=VALUE, e.g. --set epochs=10")
        overrides[key.strip()] = parse_value(value.strip())
    return overrides


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="advfair", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run one chapter's experiment and write its results JSON")
    run.add_argument("chapter", choices=sorted(CHAPTERS))
    run.add_argument("--profile", default="cpu", help="cpu (default) or paper")
    run.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                     help="override one config field (repeatable); values are JSON, e.g. --set temperatures=[0.5,1]")
    run.add_argument("--device", default=None, help="auto, cpu or cuda (same as --set device=...)")
    run.add_argument("--out", type=Path, default=None, help="results JSON path (default: book/results/<chapter>_<profile>.json)")
    run.add_argument("--progress", action="store_true", help="show training progress bars")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    make_config, run = CHAPTERS[args.chapter]
    try:
        overrides = parse_sets(args.sets)
        if "profile" in overrides:
            raise ConfigError(f"--set profile={overrides['profile']!r} is not allowed: use --profile")
        if args.device is not None:
            overrides["device"] = args.device
        if args.progress:
            overrides["progress"] = True
        config = make_config(args.profile, **overrides)
    except (ConfigError, TypeError) as error:
        print(f"advfair: {error}", file=sys.stderr)
        return 2
    out = args.out or Path("book/results") / f"{args.chapter}_{args.profile}.json"
    results = run(config)
    write_json_atomic(results, out)
    print(f"wrote {out} ({results['seconds']['total']:.0f} s)")
    return 0
