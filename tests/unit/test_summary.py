"""The book's summary page (advfair.experiments.summary) and the declared smallest effects of interest: the counts
follow from the pooled verdicts, sanity checks are counted apart, and every effect is pinned here, so that none can
move after a result was read without a visible change to this file."""
from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from advfair.experiments import CHAPTERS, summary
from advfair.evaluation import Estimate
from advfair.verdicts import NOT_REPRODUCED, OUTCOMES, REPRODUCED, THRESHOLD_ONLY, Effect, Verdict, greater, untestable

RESULTS = Path(__file__).resolve().parents[2] / "book" / "results"

# The size of every declared smallest effect of interest, as fixed before the results were read.
PINNED = {
    "classwise": {"C1": {"gap": 0.01, "nsd": 0.02}, "C2": 0.0, "C3": 0.0, "C4": 0.1, "C5": 0.01, "C6": 0.01,
                  "C7a": {"class": 0.01, "gap": 0.01}, "C7b": {"class": 0.01, "gap": 0.01}, "C8b": 0.1},
    "robal": {"C1": 0.01, "C2": 0.01, "C3": 0.01, "C4": 0.01, "C5": 0.01, "C6": 0.01, "C7": 0.01, "C8": 0.01,
              "C9": 0.01},
    "ducat": {"C1": {"beyond": 0.01, "of_best": 0.0}, "C2": 0.01, "C3": 0.01, "C4": 0.0, "C5": 0.01, "C6": 0.0,
              "C7": 0.01},
    "absld": {"worst": 0.01, "nsd": 0.02, "gain": 0.01},
    "aalp": {"C1": 1.0, "C2": {"share": 0.0, "loss": 0.01}, "C3": 0.01, "C4": 0.01, "C5": 1.0, "C6": 0.01,
             "G1": 0.01, "G3": 0.0},
}


def _sizes(declared: dict) -> dict:
    return {k: ({p: e.size for p, e in v.items()} if isinstance(v, dict) else v.size) for k, v in declared.items()}


@pytest.mark.parametrize("chapter", list(CHAPTERS))
def test_every_smallest_effect_of_interest_is_pinned_and_has_a_source(chapter):
    declared = sys.modules[CHAPTERS[chapter].verdicts.__module__].SMALLEST_EFFECT
    assert _sizes(declared) == PINNED[chapter]
    for effect in declared.values():
        for e in (effect.values() if isinstance(effect, dict) else [effect]):
            assert isinstance(e, Effect) and e.source


def _v(claim: str, ci: tuple[float, float]) -> Verdict:
    return Verdict(claim, "s", (greater("Δ", Estimate(0.0, ci, 10), effect=THRESHOLD_ONLY),), compares="model")


def test_counts_follow_the_verdicts_and_sanity_checks_are_apart():
    decisions = {"classwise": [_v("C1", (0.1, 0.2)), _v("C2", (-0.2, -0.1)), _v("C3", (-0.1, 0.1)),
                               Verdict("C4", "s", (untestable("x", "y"),))],
                 "aalp": [_v("C1", (0.1, 0.2)), _v("G1", (0.1, 0.2)), _v("G2", (-0.2, -0.1))]}
    table = summary.counts_table(decisions)
    total = table.loc["all chapters"]
    assert (total[REPRODUCED], total[NOT_REPRODUCED], total["decided"], total["claims"]) == (2, 1, 3, 5)
    assert table.loc[summary.TITLES["aalp"], "claims"] == 1  # G1, G2 are checks, not claims
    assert sum(total[o] for o in OUTCOMES) == total["claims"]
    text = summary.summary_text(decisions)
    assert "decides **3 of its 5 paper claims**: 2 reproduced and 1 not reproduced" in text
    assert "1 of 2 sanity checks" in text
    claims = summary.claims_table(decisions)
    assert claims.loc[(summary.TITLES["aalp"], "G1"), "kind"] == "sanity check"
    assert claims.loc[(summary.TITLES["classwise"], "C2"), "verdict"] == NOT_REPRODUCED


def test_the_mnist_track_is_counted_apart():
    decisions = {"classwise": [_v("C1", (0.1, 0.2)), _v("C1 (MNIST)", (0.1, 0.2)), _v("C2 (MNIST)", (-0.1, 0.1))]}
    table = summary.counts_table(decisions)
    assert table.loc["all chapters", "claims"] == 1 and table.loc["all chapters", "decided"] == 1
    track = table.loc[f"{summary.TITLES['classwise']}, MNIST track"]
    assert (track["claims"], track["decided"]) == (2, 1)
    assert "tests its claims again on MNIST: 1 of those 2 are decided" in summary.summary_text(decisions)
    assert summary.claims_table(decisions)["kind"].tolist() == ["paper claim", "paper claim, MNIST track",
                                                               "paper claim, MNIST track"]


def test_the_committed_book_summary_counts_every_chapter():
    decisions = summary.chapter_decisions()
    assert list(decisions) == list(CHAPTERS)
    table = summary.counts_table(decisions)
    for name, verdicts in decisions.items():
        claims = [v for v in verdicts if not summary.is_sanity_check(name, v.claim)]
        main = [v for v in claims if not summary.is_second_track(v.claim)]
        assert table.loc[summary.TITLES[name], "claims"] == len(main)
        if len(main) < len(claims):
            assert table.loc[f"{summary.TITLES[name]}, MNIST track", "claims"] == len(claims) - len(main)
        assert all(v.pooled for v in verdicts)
    assert table.loc["all chapters", "claims"] == sum(table.loc[summary.TITLES[n], "claims"] for n in CHAPTERS)
    assert set(summary.effects_table().index.get_level_values(0)) == set(summary.TITLES.values())


def test_the_counts_figure_has_one_bar_per_row_and_outcome():
    import matplotlib
    matplotlib.use("Agg")
    decisions = {"classwise": [_v("C1", (0.1, 0.2)), _v("C1 (MNIST)", (0.1, 0.2))], "aalp": [_v("C1", (-0.2, -0.1))]}
    fig = summary.counts_figure(decisions)
    rows = len(summary.counts_table(decisions)) - 1  # without "all chapters"
    assert len(fig.axes[0].patches) == rows * len(OUTCOMES)


def test_a_chapter_is_summarised_at_the_evidence_tier_once_all_its_seeds_are_in(tmp_path):
    from advfair.experiments.stability import stability_path

    for name in CHAPTERS:
        shutil.copy(RESULTS / f"{name}_cpu.json", tmp_path)
        shutil.copy(stability_path(name, RESULTS), tmp_path)
    assert summary.shown_tier("classwise", tmp_path) == "cpu"
    shutil.copy(RESULTS / "classwise_cpu.json", tmp_path / "classwise_evidence.json")
    assert summary.shown_tier("classwise", tmp_path) == "cpu"  # its seeds are not all in: no stability file yet
    shutil.copy(stability_path("classwise", RESULTS), stability_path("classwise", tmp_path, "evidence"))
    assert summary.shown_tier("classwise", tmp_path) == "evidence"
    assert "Class-wise robustness (Tian et al.): the evidence tier (`evidence` profile)" in summary.tiers_text(tmp_path)
    assert "Long-tailed AT (RoBal): the smoke tier (`cpu` profile), not findings" in summary.tiers_text(tmp_path)
