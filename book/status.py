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

# %% [markdown]
# # Execution statistics
#
# What each page of the book costs to run, and where and when the results it shows were made. A teacher can read
# from it what a student's laptop needs; a researcher what a rerun costs. Every number comes from the committed
# results files (`book/results/`): each records its run's wall time, its machine and the commit it ran at.
#
# Jupyter Book's own `{nb-exec-table}` does not apply here: the book renders the outputs stored in its
# notebooks (execution is off in `_config.yml`), and re-executing a page only replays its committed results, so
# the times Sphinx would record are those of the replay, seconds, not of the computation.

# %% tags=["parameters"]
results_folder = None  # a folder of results and stability files; None: the book's committed results
_declared = set(globals())  # the names above: a parameter papermill injects beyond them is refused

# %%
from pathlib import Path

import matplotlib.pyplot as plt
from IPython.display import display

from advfair import plots, tables
from advfair.experiments import check_parameters, results_dir
from advfair.experiments.status import page_runs, stability_runs

check_parameters(globals(), _declared)  # papermill only warns about a parameter this page does not take
tables.show_full_cells()
folder = Path(results_folder) if results_folder is not None else results_dir()

# %% [markdown]
# ## One run of each page
#
# The results each page shows: its tier (the `cpu` profile is the smoke tier, what a student runs; the evidence
# tier is what the claims are decided on), the wall time of the run that made them, and how many of its models
# came from the model cache (a page that reuses an earlier page's models, e.g. a shared baseline, costs less than
# it would alone).

# %%
runs = page_runs(folder)
display(runs)
plots.run_minutes(runs, title="One run of each page")
plt.show()

# %% [markdown]
# ## Seed-stability runs
#
# Each chapter's stability run repeats the chapter once per training seed (and the first seed with other CPU
# kernels): what the pooled verdicts cost. Their sum over the evidence tier's chapters is the tier's budget.

# %%
stability_runs(folder)

# %% [markdown]
# ## What a student needs
#
# - No GPU. Every page runs on two CPU cores in the smoke tier's minutes above, with the datasets available
#   offline (`ADVFAIR_DATA_DIR` pointing at a folder with `cifar10.npz` and `mnist.npz`).
# - The evidence tier's pages re-evaluate committed weights instead of training them; their evaluation alone
#   takes a large part of the times above.
