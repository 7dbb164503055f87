"""The attack roles of every chapter's results (advfair.experiments.roles): the standard roles in every results
file, each naming an attack its evaluations ran."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from advfair import pages
from advfair.experiments.roles import ROLES, attack_roles, role
from advfair.validation import ConfigError

RESULTS = Path(__file__).resolve().parents[2] / "book" / "results"


def test_the_standard_roles_come_first_and_the_chapters_own_after():
    roles = attack_roles(pgd="pgd10", aa="aa", tpgd="tpgd10_T0.1", long=("pgd50",))
    assert list(roles)[:len(ROLES)] == list(ROLES) and roles["fgsm"] is None and roles["aware"] == []
    assert roles["clean"] == "clean" and roles["long"] == ["pgd50"]


@pytest.mark.parametrize("kwargs, match", [
    ({"pgd": "pgd10", "aware": "merged"}, r"aware='merged' is not allowed: expected a list of attack names"),
    ({"pgd": 10}, r"pgd=10 is not allowed: expected an attack name"),
    ({"pgd": "pgd10", "long": ["pgd50", 3]}, r"long=\['pgd50', 3\] is not allowed"),
    ({"pgd": "pgd10", "clean": "x"}, r"clean='x' is not allowed: expected a role of the chapter's own"),
])
def test_bad_roles_are_refused(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        attack_roles(**kwargs)


def test_a_role_not_run_is_an_error_naming_the_roles_that_ran():
    results = {"attack_roles": attack_roles(pgd="pgd10", cw="cw10")}
    assert role(results, "pgd") == "pgd10"
    with pytest.raises(ConfigError, match=r"role='aa' is not allowed: expected a role these results ran: "
                                          r"clean, pgd, cw"):
        role(results, "aa")


@pytest.mark.parametrize("chapter", pages.CHAPTERS)
def test_every_committed_results_file_names_its_attacks_by_role(chapter):
    results = json.loads((RESULTS / f"{chapter}_cpu.json").read_text())
    views = [results] + ([results["mnist"]] if "attack_roles" in results.get("mnist", {}) else [])
    for view in views:
        roles = view["attack_roles"]
        assert list(roles)[:len(ROLES)] == list(ROLES)
        ran = {a for e in view["evaluations"].values() for a in e["attacks"]}
        named = {a for v in roles.values() for a in (v if isinstance(v, list) else [v]) if a is not None}
        assert named <= ran, f"{chapter}: roles name attacks no evaluation ran: {sorted(named - ran)}"
        assert roles["pgd"] in ran
