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
# # What this book decides
#
# Every chapter ends with a verdict table. This page gathers them: how many of the papers' claims the committed
# results decide at this scale, and how each verdict is made. Nothing here is typed by hand: the tables below are
# computed from `book/results/` by the same functions the chapters call.
#
# ## How a verdict is made
#
# A claim is tested in parts (a claim with an "and" has one part per conjunct). Each part is a paired estimate
# on the same test points — two models under one attack, or two attacks on one model — with its 95% interval.
#
# - **Pooled over training seeds.** A claim that compares training procedures varies with the training seed as
#   much as with the test points, and a bootstrap over test points counts only the second. So each part's estimate is the mean over the chapter's training seeds
#   (`book/results/<chapter>_stability.json`), and its interval is a Welch–Satterthwaite *t* interval whose
#   variance adds the spread over seeds (divided by their number) and the per-seed bootstrap variance (counted
#   in full, which holds however the seeds' errors on the shared test points are correlated). With one seed, a
#   training comparison cannot be decided: it stays `inconclusive at this scale` and says why. Claims about one
#   fixed model (two attacks on it, two inference heads of it) are pooled the same way when seeds exist.
# - **A smallest effect of interest** per claim, fixed in each chapter's `claims` module before any result is
#   read (the table at the end of this page). `reproduced`: the interval lies beyond the threshold on the claimed
#   side. `not reproduced`: the interval excludes every effect of interest — it lies on the other side, or short
#   of the smallest effect (then the verdict says "below the smallest effect of interest"). Otherwise
#   `inconclusive at this scale`. A true null can so be decided, and the effect of interest never makes
#   `reproduced` easier (a unit test checks both).
# - **Parts and multiplicity.** All primary parts must hold for `reproduced`. On the `not reproduced` side,
#   Holm's step-down corrects over the primary parts. Secondary parts are shown, marked, and do not vote.
# - **Gates first.** A model below three times chance clean accuracy, an adversarially trained model below chance
#   robust accuracy under the chapter's reference attack, or a class the claim rests on below chance, cannot be
#   diagnosed. Each gate is an exact interval against its floor: `degenerate` when the upper bound lies below the
#   floor, `borderline` when the interval holds it; both make the claim `not testable at this scale`, whatever
#   its parts say.
# - **Each run's own verdict** is shown beside the pooled one, as it is (e.g. "not testable in 3, not
#   reproduced in 1 of 4 runs"): a diagnostic of the seeds and of the CPU kernels, not a vote.

# %% tags=["parameters"]
results_folder = None  # a folder of <chapter>_<profile>.json results and stability files; None: the book's committed results
_declared = set(globals())  # the names above: a parameter papermill injects beyond them is refused

# %%
from pathlib import Path

import matplotlib.pyplot as plt
from IPython.display import Markdown, display

from advfair.experiments import check_parameters, summary
from advfair.tables import show_full_cells

check_parameters(globals(), _declared)  # papermill only warns about a parameter this page does not take
show_full_cells()
decisions = summary.chapter_decisions(None if results_folder is None else Path(results_folder))
display(Markdown(summary.summary_text(decisions)))
display(Markdown(summary.tiers_text(None if results_folder is None else Path(results_folder))))

# %% [markdown]
# ## Chapter by chapter
#
# The count of each verdict among the papers' claims. The class-wise chapter tests its claims again on MNIST (its
# MNIST track, a row of its own), and the gradient-masking checklist of the AALP chapter is a check of the
# evaluation: both are counted apart from the papers' claims.

# %%
summary.counts_figure(decisions)
plt.show()

# %%
summary.counts_table(decisions)

# %% [markdown]
# ## Every claim
#
# The verdict of each claim with its qualifiers, and each run's own verdict beside it. The chapters give the
# evidence: every part's estimate with its interval.

# %%
summary.claims_table(decisions)

# %% [markdown]
# ## The smallest effects of interest
#
# In the statistic's own units (accuracies as proportions: 0.01 is one point). Where a paper gives no effect size
# with an interval, the size is a stated convention; a threshold written in the claim itself (Spearman ρ above
# 0.5, "more than half") needs none beyond it.

# %%
summary.effects_table()
