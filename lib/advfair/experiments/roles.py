"""The attack roles of every chapter's results (results["attack_roles"]): which attack of the chapter's protocol
plays each standard part, so that claims, reports and a synthesis over chapters read an attack by its role and
never by a chapter's own word.

The standard roles, in every results file: `clean`; `fgsm`, `pgd` (the chapter's reference attack, against which
its robust gates are judged), `cw` and `aa` (AutoAttack, on the subset points), each the name of its attack or
None where the chapter does not run it; and `aware`, the attacks that know the defence (its views), a list. A
chapter may add roles of its own (a T-PGD, a long PGD, Square), each a name, a list of names or None.
"""
from __future__ import annotations

from ..validation import fail

ROLES = ("clean", "fgsm", "pgd", "cw", "aa", "aware")


def _check(role: str, value: object) -> None:
    names = value if isinstance(value, list) else [value]
    if not all(isinstance(n, str) and n for n in names if n is not None):
        fail(role, value, "an attack name of the protocol, a list of names, or None")


def attack_roles(*, pgd: str, fgsm: str | None = None, cw: str | None = None, aa: str | None = None,
                 aware: tuple[str, ...] | list[str] = (), **own: str | list[str] | None) -> dict:
    """The roles of a chapter's attacks: the standard ones first, then the chapter's own."""
    clash = sorted(set(own) & set(ROLES))
    if clash:
        fail(clash[0], own[clash[0]], "a role of the chapter's own, not a standard role")
    if not isinstance(aware, (list, tuple)):
        fail("aware", aware, "a list of attack names")
    roles = {"clean": "clean", "fgsm": fgsm, "pgd": pgd, "cw": cw, "aa": aa, "aware": list(aware),
             **{k: list(v) if isinstance(v, tuple) else v for k, v in own.items()}}
    for role, value in roles.items():
        _check(role, value)
    return roles


def role(results: dict, name: str) -> str | list[str]:
    """The attack (or attacks) that plays `name` in these results; a role the chapter did not run is an error."""
    roles = results["attack_roles"]
    if roles.get(name) is None:
        fail("role", name, "a role these results ran: " + ", ".join(k for k, v in roles.items() if v))
    return roles[name]
