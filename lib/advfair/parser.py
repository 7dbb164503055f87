"""Command line: chapters without Jupyter, their seed-stability runs, and class-wise evaluation of any model.

    python -m advfair run classwise --profile paper --device cuda --set seed=1 --out book/results/classwise_paper.json --into-book
    python -m advfair run absld --profile paper --smoke   # the paper's networks and pipeline, a few batches, on a CPU
    python -m advfair stability classwise --seeds 0 1 2 --kernels avx2 --into-book
    python -m advfair evaluate --model advfair.models:cifar10_small_cnn --weights w.pt --dataset cifar10 --eps 8/255
    python -m advfair config robal --profile paper   # every --set field: type, value, allowed values, meaning
    python -m advfair calibrate --into-book   # the evidence tier's calibration sweep (resumes where it stopped)
    python -m advfair compare book/results/classwise_evidence.json report.json --baseline classwise_evidence:pgd_at

Outputs go to runs/ (in the current directory) unless --out says otherwise. Nothing is written into the book's
committed results (book/results), a new file included, without --into-book.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from . import __version__
from .defaults import DEFAULT_ATTACKS, KERNELS
from .pages import CHAPTERS

# The chapter is checked by the command (a clear error naming the allowed ones), not by argparse.
CHAPTER_HELP = "one of " + ", ".join(CHAPTERS)

def _chapter_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("chapter", help=CHAPTER_HELP)
    parser.add_argument("--profile", default="cpu", help="cpu (default: the smoke tier), evidence (the evidence tier) or paper")
    parser.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                        help="override one config field (repeatable); values are JSON, e.g. --set temperatures=[0.5,1]; "
                             "`python -m advfair config CHAPTER` lists the fields")
    parser.add_argument("--device", default=None, help="auto, cpu or cuda (same as --set device=...)")
    parser.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                        help="progress bars, labelled with the model and the phase (default: on in a terminal)")
    parser.add_argument("--into-book", action="store_true",
                        help="allow writing into the book's committed results in book/results (a new file or a replaced one)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="advfair", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"advfair {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run one chapter's experiment and write its results JSON")
    _chapter_arguments(run)
    run.add_argument("--out", type=Path, default=None,
                     help="results JSON path (default: runs/<chapter>_<profile>[_smoke]_<UTC time>.json)")
    run.add_argument("--smoke", action="store_true",
                     help="the profile at a smoke size: its networks and pipeline on a few batches and test points, "
                          "one epoch, few attack steps (minutes on a CPU; --set still applies on top)")
    stab = sub.add_parser("stability", help="run a chapter once per training seed and write its stability file")
    _chapter_arguments(stab)
    stab.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="training seeds (default: 0 1 2)")
    stab.add_argument("--out", type=Path, default=None,
                      help="default: runs/<chapter>_stability_<UTC time>/<file>; with --into-book (and for "
                           "--refresh, --extend), book/results/<file>; <file> is <chapter>_stability.json for "
                           "the cpu profile, <chapter>_<profile>_stability.json for another")
    stab.add_argument("--refresh", action="store_true", help="recompute the verdicts and key numbers of an existing "
                                                             "stability file from its saved per-seed results (no training)")
    stab.add_argument("--kernels", nargs="+", default=[], metavar="KERNELS",
                      help="also run the first seed with these CPU kernel sets, each in a fresh process (" +
                           ", ".join(KERNELS) + ")")
    stab.add_argument("--resume", action="store_true", help="keep the seeds whose results the same run already wrote "
                                                            "(same config): an interrupted run goes on where it stopped")
    stab.add_argument("--extend", action="store_true", help="add the --kernels runs to an existing stability file "
                                                            "(its seeds are not rerun)")
    conf = sub.add_parser("config", help="list a chapter's config fields: type, value, allowed values, meaning")
    conf.add_argument("chapter", help=CHAPTER_HELP)
    conf.add_argument("--profile", default="cpu", help="cpu (default), evidence or paper: whose values to show")
    cal = sub.add_parser("calibrate", help="the evidence tier's calibration sweep: train each candidate, log its "
                                           "per-class curves, test it against the quality bars, choose")
    cal.add_argument("--only", nargs="+", default=[], metavar="NAME", help="these candidates only (default: all)")
    cal.add_argument("--out", type=Path, default=None,
                     help="folder of the candidates' records (default: runs/calibration; with --into-book "
                          "book/results/calibration); a candidate already recorded there is not retrained")
    cal.add_argument("--device", default="auto")
    cal.add_argument("--into-book", action="store_true", help="write into the book's committed results")
    ev = sub.add_parser("evaluate", help="class-wise robustness report of any model")
    ev.add_argument("--model", required=True, help="package.module:factory returning the torch.nn.Module")
    ev.add_argument("--model-args", default="{}", help="JSON keyword arguments for the factory, e.g. '{\"width\": 16}'")
    ev.add_argument("--weights", default=None, help="state dict file (loaded with weights_only=True)")
    ev.add_argument("--untrained", action="store_true",
                    help="evaluate the factory's fresh weights, without --weights (a smoke test, not a result)")
    ev.add_argument("--dataset", default="cifar10")
    ev.add_argument("--eps", default="8/255", help="L-inf radius for inputs in [0, 1], e.g. 8/255")
    ev.add_argument("--attacks", default=",".join(DEFAULT_ATTACKS),
                    help="comma-separated: fgsm, pgd<K>, cw<K>, mim<K>, aa (APGD-CE + APGD-T), aa_standard")
    ev.add_argument("--per-class", type=int, default=None, help="a balanced subset of N test images per class "
                                                                "(default: the whole test set; with AutoAttack "
                                                                "that takes hours on a CPU, --per-class 20 minutes)")
    ev.add_argument("--device", default="auto")
    ev.add_argument("--batch-size", type=int, default=500)
    ev.add_argument("--seed", type=int, default=0)
    ev.add_argument("--out", type=Path, default=None, help="write the class-wise report as JSON here")
    ev.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                    help="a progress bar naming the attack running (default: on in a terminal)")
    cmp = sub.add_parser("compare", help="one class-wise table (and a trade-off figure) of every model evaluated in "
                                         "some results files")
    cmp.add_argument("results", nargs="+", type=Path, metavar="RESULTS",
                     help="reports of `advfair evaluate --out` and chapters' results files (e.g. "
                          "book/results/*_evidence.json; stability files are refused); a chapter's nested tracks "
                          "(e.g. the class-wise MNIST track) are left out")
    cmp.add_argument("--baseline", default=None, metavar="ROW",
                     help="the row DAFA's rho is measured against, named as the table names it (e.g. "
                          "classwise_evidence:pgd_at); rows on other points get n/a with the reason")
    cmp.add_argument("--out", type=Path, default=None, help="write the table as JSON here (never into book/results)")
    cmp.add_argument("--figure", type=Path, default=None,
                     help="average against worst-class robust accuracy with the Pareto front (.png, .pdf or .svg)")
    return parser
