# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% tags=["remove-cell"]
# Without the library (Colab, a downloaded notebook): clone the book's repository at the branch the launch button
# opened this page from (its head, not a pinned commit), install its library and run from its book/ folder, where
# the committed results and weights are. Where the library is installed (`make env`) it does nothing.
def _run_outside_repository(url: str, branch: str) -> None:
    import importlib.util, os, pathlib, subprocess, sys
    if importlib.util.find_spec("advfair") is not None or pathlib.Path("../lib/advfair").is_dir():
        return
    repo = pathlib.Path.home() / "advfair"
    if not repo.is_dir():
        subprocess.run(["git", "clone", "--quiet", "--depth", "1", "--branch", branch, url, str(repo)], check=True)
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "-e", str(repo)], check=True)
    sys.path.insert(0, str(repo / "lib"))
    os.chdir(repo / "book")


_run_outside_repository('https://github.com/advfair/advfair', 'main')
del _run_outside_repository

# %% [markdown] papermill={"duration": 0.00167, "end_time": "2026-12-01T09:53:51.189668+00:00", "exception": false, "start_time": "2026-12-01T09:53:51.187998+00:00", "status": "completed"}
# # Evaluate your own model, class by class
#
# Robustness leaderboards report one number per model. The chapters of this book show why that hides the
# most useful part: adversarially trained models are robust on some classes and nearly defenceless on
# others. `advfair` evaluates *any* PyTorch classifier the way the chapters do — per class, under several
# attacks on the same points, with bootstrap intervals — from the command line or from Python.
#
# The model must take images in [0, 1] and do any normalisation inside itself (as RobustBench models do).
# You give a factory `package.module:function` that builds it and a state-dict file:
#
# ```bash
# python -m advfair evaluate --model mypackage.models:my_resnet --weights my_resnet.pt \
#     --dataset cifar10 --eps 8/255 --attacks fgsm,pgd20,cw20,aa --out report.json
# ```
#
# By default every test image is evaluated; `--per-class N` takes a class-balanced subset of N images per
# class. Attacks: `fgsm`, `pgd<K>`, `cw<K>` (the CW margin loss), `mim<K>` (all with step ε/4 and a random
# start), `aa` (AutoAttack's APGD-CE + APGD-T) and `aa_standard` (the four attacks of standard AutoAttack
# {cite}`croce2020autoattack`). Weights are loaded with `weights_only=True`; a bad module path, a missing file,
# weights that do not fit the model or an unknown attack stop with an error naming the argument. The report
# (JSON) holds per-class clean and robust accuracy with 95% intervals, the mean, worst class, best–worst gap
# and NSD of every attack, the rank agreement between attacks and the adversarial confusion matrices.
#
# Below we run it on a model trained in this book: the PGD-AT baseline of the class-wise chapter (taken from
# the model cache, or trained if it is not there).

# %% papermill={"duration": 0.007125, "end_time": "2026-12-01T09:53:51.198013+00:00", "exception": false, "start_time": "2026-12-01T09:53:51.190888+00:00", "status": "completed"} tags=["parameters"]
per_class = 30  # test images per class
attacks = "fgsm,pgd20,cw20,aa"
results_json = None  # show a saved report instead of running
_declared = set(globals())  # the names above: a parameter papermill injects beyond them is refused

# %% papermill={"duration": 18.702969, "end_time": "2026-12-01T09:54:09.902023+00:00", "exception": false, "start_time": "2026-12-01T09:53:51.199054+00:00", "status": "completed"}
from advfair.experiments import check_parameters

check_parameters(globals(), _declared)  # papermill only warns about a parameter this page does not take

import subprocess
import sys
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import torch
from IPython.display import Markdown, display

from advfair import api, plots, tables
from advfair.experiments import page_results
from advfair.experiments.classwise import make_config, pipeline

tables.show_full_cells()


def run_the_command() -> dict:
    """Save the book's PGD-AT weights, then evaluate them exactly as a user would, through the CLI."""
    cfg = make_config("cpu")
    model, _ = pipeline.baseline(cfg)
    # Run in a scratch folder with relative paths: the report records the paths as given, and they must not
    # depend on where the scratch folder happens to be.
    with tempfile.TemporaryDirectory() as tmp:
        torch.save(model.state_dict(), Path(tmp) / "pgd_at.pt")
        command = [sys.executable, "-m", "advfair", "evaluate", "--model", "advfair.models:cifar10_small_cnn",
                   "--model-args", f'{{"width": {cfg.width}}}', "--weights", "pgd_at.pt", "--dataset", "cifar10",
                   "--eps", "8/255", "--attacks", attacks, "--per-class", str(per_class), "--out", "report.json"]
        subprocess.run(command, check=True, capture_output=True, text=True, cwd=tmp)
        return api.load_report(Path(tmp) / "report.json")


report = page_results("evaluate_cpu", run_the_command, results_json, schema=api.REPORT_SCHEMA)
print(api.summary_table(report))

# %% [markdown] papermill={"duration": 0.001255, "end_time": "2026-12-01T09:54:09.904786+00:00", "exception": false, "start_time": "2026-12-01T09:54:09.903531+00:00", "status": "completed"}
# That is the table the command prints (accuracy in %, robust = correct on the clean image *and* under the
# attack). The same numbers with their bootstrap intervals:

# %% papermill={"duration": 0.117774, "end_time": "2026-12-01T09:54:10.023593+00:00", "exception": false, "start_time": "2026-12-01T09:54:09.905819+00:00", "status": "completed"}
names = list(report["reports"]["all"]["attacks"])
plots.per_class_bars(report["reports"]["all"], names, labels=[n.upper() for n in names],
                     title="The book's PGD-AT model (small CNN), class by class")
plt.show()

# %% papermill={"duration": 0.01021, "end_time": "2026-12-01T09:54:10.035352+00:00", "exception": false, "start_time": "2026-12-01T09:54:10.025142+00:00", "status": "completed"}
tables.spread_table({n.upper(): (report["reports"]["all"], n) for n in names})

# %% [markdown] papermill={"duration": 0.001254, "end_time": "2026-12-01T09:54:10.037962+00:00", "exception": false, "start_time": "2026-12-01T09:54:10.036708+00:00", "status": "completed"}
# Do the attacks agree on which classes are weak? Spearman's ρ between the per-class accuracies of every pair
# of attacks, with its bootstrap interval:

# %% papermill={"duration": 0.007275, "end_time": "2026-12-01T09:54:10.046371+00:00", "exception": false, "start_time": "2026-12-01T09:54:10.039096+00:00", "status": "completed"}
tables.rank_pairs(report["reports"]["all"], names, [n.upper() for n in names])

# %% [markdown] papermill={"duration": 0.001225, "end_time": "2026-12-01T09:54:10.048889+00:00", "exception": false, "start_time": "2026-12-01T09:54:10.047664+00:00", "status": "completed"}
# And where do the attacked images of each class end up? Rows are the true classes; each row sums to 100%.

# %% papermill={"duration": 0.292045, "end_time": "2026-12-01T09:54:10.342095+00:00", "exception": false, "start_time": "2026-12-01T09:54:10.050050+00:00", "status": "completed"}
strongest = names[-1]
plots.confusion_heatmap(report["reports"]["all"]["attacks"][strongest]["confusion"], report["classes"],
                        title=f"Predictions under {strongest.upper()} (% of each true class)")
plt.show()

# %% [markdown] papermill={"duration": 0.001952, "end_time": "2026-12-01T09:54:10.346091+00:00", "exception": false, "start_time": "2026-12-01T09:54:10.344139+00:00", "status": "completed"}
# ## From Python
#
# The same evaluation without the command line: `advfair.evaluate(model, dataset=..., eps=..., attacks=...)`
# returns the report as a dict. It evaluates exactly what it is given, so an inference-time change (a logit
# bias, a post-hoc shift) must be part of the module: build it with `advfair.inference.deploy(model, spec)`.
#
# ```python
# import advfair
# report = advfair.evaluate(model, dataset="cifar10", eps=8/255, attacks=["pgd20", "aa"], per_class=100)
# print(advfair.api.summary_table(report))
# ```
#
# The report has the same schema as every evaluation in this book's chapters
# (`advfair.evaluation.Evaluation.to_json`), including the per-point predictions, so two reports on the same
# points can be compared pairwise with `advfair.evaluation.compare_models`.

# %% papermill={"duration": 0.006339, "end_time": "2026-12-01T09:54:10.353992+00:00", "exception": false, "start_time": "2026-12-01T09:54:10.347653+00:00", "status": "completed"}
display(Markdown(f"This run: {report['points']['all']} test images ({per_class} per class), ε = "
                 f"{255 * report['eps']:.0f}/255, attacks {', '.join(names[1:])}."))

# %% [markdown] papermill={"duration": 0.001483, "end_time": "2026-12-01T09:54:10.356995+00:00", "exception": false, "start_time": "2026-12-01T09:54:10.355512+00:00", "status": "completed"}
# ## Exercises
#
# Each asks for a rerun of this page or a few lines of Python; their solutions are still to be written.

# %% [markdown]
# ```{exercise} Another defence
# :label: evaluate-ex-another-defence
#
# Evaluate the TRADES model of the class-wise chapter instead (`advfair.experiments.classwise.methods.trades`
# gives its objective). Are the weak classes the same?
# ```

# %% [markdown]
# ```{exercise} More attacks
# :label: evaluate-ex-more-attacks
#
# Add `mim20` and `aa_standard` to the attacks. Does any class lose more than two points from `aa` to
# `aa_standard`?
# ```

# %% [markdown]
# ```{exercise} A bias on cat
# :label: evaluate-ex-a-bias-on-cat
#
# Wrap the model with `advfair.inference.deploy(model, advfair.inference.class_bias(10, 3, 1.0))` (a bias on
# "cat") and evaluate it from Python. What happens to cat, and to the classes cat takes its points from?
# ```

# %% [markdown]
# ```{bibliography}
# :filter: docname in docnames
# ```
