"""The committed stability files are current: each run's stored verdict (what the pages pool) is what the
chapter's rules give today on that run's saved results, so a change to a claim rule cannot leave the book pooling
verdicts of an older rule (`python -m advfair stability CHAPTER --refresh --into-book` brings them up to date)."""
from __future__ import annotations

import json

import pytest

from advfair.experiments import CHAPTERS
from advfair.experiments.stability import load_stability, seed_record
from advfair.locations import BOOK_RESULTS


@pytest.mark.parametrize("chapter", list(CHAPTERS))
def test_each_runs_stored_verdicts_are_what_the_rules_give_today(chapter):
    record = load_stability(chapter, BOOK_RESULTS)
    assert record is not None, f"no committed stability file for {chapter}"
    for run, name in record["results_files"].items():
        results = json.loads((BOOK_RESULTS / name).read_text())
        fresh = json.dumps(seed_record(CHAPTERS[chapter], results)["verdicts"], sort_keys=True)
        stored = json.dumps(record["per_seed"][run]["verdicts"], sort_keys=True)  # as text: nan is not nan
        assert fresh == stored, (f"{chapter} run {run}: the stored verdicts are not today's; run `python -m advfair "
                                 f"stability {chapter} --refresh --into-book`")
