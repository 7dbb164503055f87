"""advfair.experiments.reproduce.check: a fresh run against the committed results, exactly on the same machine
kind, within the stability file's tolerances and with its stable verdicts elsewhere."""
from __future__ import annotations

import copy

from advfair.experiments.reproduce import Page, check
from advfair.verdicts import INCONCLUSIVE, NOT_REPRODUCED, REPRODUCED, Part, Verdict


def results(kind: str, acc: float, outcomes: dict[str, str], extra: dict | None = None) -> dict:
    return {"config_hash": "h", "acc": acc, "outcomes": outcomes, "extra": extra or {},
            "seconds": {"total": 1.0}, "environment": {"machine_kind": {"cpu": kind}}}


def key_numbers(r: dict) -> dict[str, float]:
    return {"acc": r["acc"], **r["extra"]}


def verdicts(r: dict) -> list[Verdict]:
    return [Verdict(c, "s", (Part("p", o),)) for c, o in r["outcomes"].items()]


PAGE = Page(key_numbers, verdicts)
# Seeds agree on A (reproduced); B differs between runs; "part" exists in two runs of three.
STABILITY = {"config_hash": "h", "per_seed": {
    "0": {"verdicts": {"A": {"outcome": REPRODUCED}, "B": {"outcome": REPRODUCED}}, "key_numbers": {"acc": 0.50, "part": 0.1}},
    "1": {"verdicts": {"A": {"outcome": REPRODUCED}, "B": {"outcome": INCONCLUSIVE}}, "key_numbers": {"acc": 0.52, "part": 0.2}},
    "0@avx2": {"verdicts": {"A": {"outcome": REPRODUCED}, "B": {"outcome": REPRODUCED}}, "key_numbers": {"acc": 0.54}},
}}
COMMITTED = results("epyc", 0.50, {"A": REPRODUCED, "B": REPRODUCED}, {"part": 0.1})


def test_the_same_machine_kind_is_compared_exactly_timings_aside():
    fresh = copy.deepcopy(COMMITTED)
    fresh["seconds"]["total"] = 9.0
    assert check(PAGE, fresh, COMMITTED, STABILITY) == []
    fresh["acc"] = 0.5000001
    assert check(PAGE, fresh, COMMITTED, STABILITY) == ["exact: /acc: fresh 0.5000001 vs committed 0.5"]


def test_another_machine_is_held_to_the_seed_tolerances():
    assert check(PAGE, results("xeon", 0.55, {"A": REPRODUCED, "B": INCONCLUSIVE}, {"part": 0.1}), COMMITTED, STABILITY) == []
    # acc: runs 0.50, 0.52, 0.54, SD 0.02, tolerance 4 SDs = 0.08
    problems = check(PAGE, results("xeon", 0.59, {"A": REPRODUCED, "B": REPRODUCED}, {"part": 0.1}), COMMITTED, STABILITY)
    assert problems == ["acc: fresh 0.5900 vs committed 0.5000, beyond the tolerance 0.0800"]


def test_a_verdict_stable_in_every_run_must_hold_and_an_unstable_one_may_change():
    fresh = results("xeon", 0.50, {"A": NOT_REPRODUCED, "B": INCONCLUSIVE}, {"part": 0.1})
    assert check(PAGE, fresh, COMMITTED, STABILITY) == [
        "A: stable across seeds as 'reproduced', the fresh run says 'not reproduced'"]


def test_a_number_only_some_runs_have_may_be_missing_one_every_run_has_may_not():
    # "part" is missing from the avx2 run of the stability file: its absence is within the runs' spread
    assert check(PAGE, results("xeon", 0.50, {"A": REPRODUCED}), COMMITTED, STABILITY) == []
    without_acc = Page(lambda r: {k: v for k, v in key_numbers(r).items() if k != "acc" or r is COMMITTED}, verdicts)
    assert check(without_acc, results("xeon", 0.50, {"A": REPRODUCED}), COMMITTED, STABILITY) == [
        "acc: missing from the fresh run"]


def test_a_stale_stability_file_is_reported_not_used():
    stale = {**STABILITY, "config_hash": "other"}
    (problem,) = check(PAGE, results("xeon", 0.50, {"A": REPRODUCED}), COMMITTED, stale)
    assert problem.startswith("the stability file is stale: made for config other")


def test_without_a_stability_file_the_floor_applies():
    stability = None
    page = Page(key_numbers, None, floor=0.05)
    committed = results("epyc", 0.50, {})
    assert check(page, results("xeon", 0.54, {}), committed, stability) == []
    assert check(page, results("xeon", 0.56, {}), committed, stability) == [
        "acc: fresh 0.5600 vs committed 0.5000, beyond the tolerance 0.0500"]
