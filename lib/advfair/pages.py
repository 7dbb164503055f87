"""The book's executed pages: the one list from which the Makefile's pages, the CLI's chapters and the notebook
checks are derived. It imports nothing, so `python lib/advfair/pages.py` prints the Makefile's list before any
environment exists."""
from __future__ import annotations

# The chapters, in book order (a later chapter may reuse an earlier one's cached models).
CHAPTERS = ("classwise", "robal", "ducat", "absld", "aalp")
# Pages that compute results of their own without being a chapter.
TOOLS = ("evaluate",)
# The page that renders the other pages' results and computes nothing ("What this book decides"): shown first,
# executed last, and checked by the replay only.
SUMMARY = "summary"
# The page that renders the evidence tier's calibration sweep ("How the scale was chosen") from its committed
# records (book/results/calibration, written by `python -m advfair calibrate`): checked by the replay only.
CALIBRATION = "calibration"
# The page that tabulates what every page costs to run, and where and when its results were made ("Execution
# statistics"), from the committed results and stability files: checked by the replay only.
STATUS = "status"
# Every executed page, in execution order.
EXECUTED = (*CHAPTERS, *TOOLS, CALIBRATION, STATUS, SUMMARY)
# The pages whose results a fresh re-execution is checked against (book/results/<page>_cpu.json).
CHECKED = (*CHAPTERS, *TOOLS)
# The executed pages in the table of contents' order.
SHOWN = (SUMMARY, CALIBRATION, *CHECKED, STATUS)
# Pages of prose alone (Markdown, never executed), after them: the course guide.
GUIDES = ("course",)
# The table of contents.
TOC = (*SHOWN, *GUIDES)


def notebook(page: str) -> str:
    """The page's notebook, relative to the repository root."""
    return f"book/{page}.ipynb"


if __name__ == "__main__":
    print(" ".join(notebook(p) for p in EXECUTED))
