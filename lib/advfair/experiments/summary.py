"""The book's summary: what the committed results decide, claim by claim and chapter by chapter, with each
claim's verdict pooled over its training seeds exactly as on its chapter's page."""
from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

import pandas as pd

from .. import plots
from ..verdicts import INCONCLUSIVE, NOT_REPRODUCED, NOT_TESTABLE, OUTCOMES, REPRODUCED, Verdict
from . import CHAPTERS, load_results
from .base import results_dir
from .scale import tier_name
from .classwise.claims import MNIST as SECOND_TRACK  # the suffix of the MNIST track's claim ids
from .stability import pooled_verdicts, stability_path

TITLES = {"classwise": "Class-wise robustness (Tian et al.)", "robal": "Long-tailed AT (RoBal)",
          "ducat": "Dummy classes (DUCAT)", "absld": "Soft-label distillation (ABSLD)",
          "aalp": "Logit pairing (AALP)"}
# Checks of the evaluation itself (gradient masking), not claims of a paper: counted apart.
SANITY_CHECKS = {"aalp": ("G1", "G2", "G3")}


def shown_tier(name: str, directory: Path) -> str:
    """The tier a chapter's verdicts are read from: the evidence tier once its results and a stability file made for
    the same config are committed (the stability run writes it when its seeds are done), else the smoke tier (the
    `cpu` profile)."""
    evidence, record = directory / f"{name}_evidence.json", stability_path(name, directory, "evidence")
    if not (evidence.exists() and record.exists()):
        return "cpu"
    same = json.loads(record.read_text())["config_hash"] == json.loads(evidence.read_text())["config_hash"]
    return "evidence" if same else "cpu"


def chapter_decisions(directory: Path | None = None) -> dict[str, list[Verdict]]:
    """Each chapter's pooled verdicts for its committed results of the tier `shown_tier` picks."""
    directory = directory or results_dir()
    return {name: pooled_verdicts(name, load_results(directory / f"{name}_{shown_tier(name, directory)}.json", name),
                                  chapter.verdicts)
            for name, chapter in CHAPTERS.items()}


def tiers_text(directory: Path | None = None) -> str:
    """Which tier each chapter's verdicts come from."""
    directory = directory or results_dir()
    tiers = {name: shown_tier(name, directory) for name in CHAPTERS}
    listed = "; ".join(f"{TITLES[n]}: {tier_name(t)}" + (", not findings" if t == "cpu" else "")
                       for n, t in tiers.items())
    return f"Each chapter's verdicts come from its highest committed tier. {listed}."


def is_sanity_check(chapter: str, claim: str) -> bool:
    return claim in SANITY_CHECKS.get(chapter, ())


def claims_table(decisions: dict[str, list[Verdict]]) -> pd.DataFrame:
    """One row per claim and check: its chapter, the verdict with its qualifiers, and each run's own verdict."""
    rows = [{"chapter": TITLES[name], "claim": v.claim,
             "kind": "sanity check" if is_sanity_check(name, v.claim) else
                     "paper claim, MNIST track" if is_second_track(v.claim) else "paper claim", "verdict": v.text(),
             "each run's own verdict": v.seeds_text()} for name, verdicts in decisions.items() for v in verdicts]
    return pd.DataFrame(rows).set_index(["chapter", "claim"])


def is_second_track(claim: str) -> bool:
    """A claim tested again on a chapter's second dataset (the class-wise chapter's MNIST track)."""
    return claim.endswith(SECOND_TRACK)


def _counts(verdicts: list[Verdict]) -> dict:
    counts = Counter(v.outcome for v in verdicts)
    return {**{o: counts.get(o, 0) for o in OUTCOMES}, "decided": counts[REPRODUCED] + counts[NOT_REPRODUCED],
            "claims": len(verdicts)}


def counts_table(decisions: dict[str, list[Verdict]]) -> pd.DataFrame:
    """Per chapter (and the MNIST track apart): how many paper claims got each verdict, and how many are decided
    (reproduced or not)."""
    rows, main = [], []
    for name, verdicts in decisions.items():
        claims = [v for v in verdicts if not is_sanity_check(name, v.claim)]
        first, second = [v for v in claims if not is_second_track(v.claim)], [v for v in claims if is_second_track(v.claim)]
        main += first
        rows.append({"": TITLES[name], **_counts(first)})
        if second:
            rows.append({"": f"{TITLES[name]}, MNIST track", **_counts(second)})
    rows.append({"": "all chapters", **_counts(main)})
    return pd.DataFrame(rows).set_index("")


# Reproduced, not reproduced, inconclusive, not testable: decided claims in strong colours.
OUTCOME_COLORS = ("#2a7f62", "#b5443b", "#d9c46c", "#b8b8b8")


def counts_figure(decisions: dict[str, list[Verdict]]):
    """The verdict counts of `counts_table`, one stacked bar per chapter (and track)."""
    table = counts_table(decisions).drop(index="all chapters")
    return plots.stacked_counts(table, OUTCOMES, colors=OUTCOME_COLORS, xlabel="paper claims")


def summary_text(decisions: dict[str, list[Verdict]]) -> str:
    """The headline sentence: decided paper claims, then the claims tested again on MNIST, then the sanity
    checks, each counted apart."""
    table = counts_table(decisions)
    total = table.loc["all chapters"]
    second = table[table.index.str.endswith("MNIST track")].sum()
    checks = [v for name, verdicts in decisions.items() for v in verdicts if is_sanity_check(name, v.claim)]
    passed = sum(v.outcome == REPRODUCED for v in checks)
    mnist = (f" The class-wise chapter tests its claims again on MNIST: {second['decided']} of those "
             f"{second['claims']} are decided ({second[REPRODUCED]} reproduced, {second[NOT_REPRODUCED]} not "
             "reproduced)." if second["claims"] else "")
    return (f"At this scale the book decides **{total['decided']} of its {total['claims']} paper claims**: "
            f"{total[REPRODUCED]} reproduced and {total[NOT_REPRODUCED]} not reproduced; {total[INCONCLUSIVE]} are "
            f"inconclusive and {total[NOT_TESTABLE]} not testable at this scale.{mnist} Apart from the claims, "
            f"{passed} of {len(checks)} sanity checks of the evaluation pass.")


def effects_table() -> pd.DataFrame:
    """Every claim's smallest effect of interest as its chapter's claims module declares it (fixed in code before
    any result is read): the size in the statistic's units and where it comes from."""
    rows = []
    for name, chapter in CHAPTERS.items():
        declared = sys.modules[chapter.verdicts.__module__].SMALLEST_EFFECT
        for key, effect in declared.items():
            for part, e in (effect.items() if isinstance(effect, dict) else [("", effect)]):
                rows.append({"chapter": TITLES[name], "claim or part": f"{key} {part}".strip(), "size": f"{e.size:g}",
                             "source": e.source})
    return pd.DataFrame(rows).set_index(["chapter", "claim or part"])
