"""Are the committed results what the committed weights compute? The evidence tier's check (CI runs it).

A chapter names what to check (`Chapter.rechecks(results) -> [Target]`): committed evaluations of models whose
weights are committed, each with the split and the protocol it ran with. For each, the model is loaded from the
committed weights alone (never from a local cache), served as the record says, and evaluated again:
- clean on every test point, and the chapter's PGD on one test batch in `pgd_every` (the batches of the
  committed evaluation, each with the random start it drew there: a sample of the same computation, at a
  fraction of its cost): per point, the same predictions as committed, exactly on the machine kind that made
  them, and elsewhere within `TOLERANCE` of the committed accuracy on the same points;
- AutoAttack on the first `aa_per_class` of each class's AutoAttack points: AutoAttack's random starts depend on
  the batch it runs in, so a part of its points is not the same computation even on the same machine; its robust
  accuracy must lie within `AA_TOLERANCE` of the committed outcome on the same points.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .distributed import batch_ranges
from .evaluation import AttackSpec, Evaluation, Points, Protocol, evaluate
from .evaluation.protocol import in_batches
from .inference import deploy, spec_from_json
from .splits import Split
from .training import initial_model
from .weights import load

TOLERANCE = 0.01  # another machine: clean and PGD accuracy within 1 point of the committed value
AA_TOLERANCE = 0.05  # AutoAttack's robust accuracy on its checked points, within 5 points, on any machine
# PGD on one test batch in five: 2,000 of 10,000 points, where a wrong weight or a changed attack shows on nearly
# every point; CI's time goes to the other four (recheck(..., pgd_every=1) attacks them all).
PGD_EVERY = 5


@dataclass(frozen=True)
class Target:
    """One committed evaluation to recheck: its label, its record, its model's key in results["models"], the
    split it ran on, the chapter's test protocol (radius, seed, batch size), the names of its PGD and (if it
    ran) AutoAttack attacks, and (where an attack names a view) the views of the raw model that its chapter's
    evaluation attacked."""

    label: str
    record: dict
    model: str
    split: Split
    protocol: Protocol
    pgd: str
    aa: str | None = "aa"
    views: Callable[[nn.Module], Mapping[str, nn.Module]] | None = None


def committed_model(key: str, split: Split, folders: Sequence[Path]) -> torch.nn.Module:
    """The model of cache key `key` from the committed weights: the file checked against its record's checksum, and
    the record against the key and the split's training images; an error if absent."""
    for folder in folders:
        path = Path(folder) / f"{key}.safetensors"
        if path.is_file():
            state, record = load(path)
            if record["key"] != key or record["spec"]["data"] != split.spec:
                raise ValueError(f"{path}: its record is not model {key} trained on the split's images")
            model = initial_model(split, record["spec"]["model"], record["spec"]["train"]["seed"])
            model.load_state_dict(state)
            return model.eval()
    raise FileNotFoundError(f"no committed weights for model {key} in {', '.join(map(str, folders))}")


def _spec(record: dict, attack: str) -> AttackSpec:
    return AttackSpec(**{k: v for k, v in record["attacks"][attack].items() if k != "points"})


def _first_per_class(y: np.ndarray, positions: np.ndarray, per_class: int) -> np.ndarray:
    """The first `per_class` of `positions` (indices into the subset) of each class, in subset order."""
    keep = np.concatenate([np.flatnonzero(y[positions] == c)[:per_class] for c in np.unique(y[positions])])
    return np.sort(keep)


def recheck(results: dict, targets: Sequence[Target], folders: Sequence[Path], *, exact: bool, aa_per_class: int = 10,
            pgd_every: int = PGD_EVERY, device: str | torch.device = "cpu") -> list[dict]:
    """One row per target and attack: committed and fresh accuracy on the same points, the share of points whose
    prediction agrees, the rule applied and whether it holds. PGD attacks one test batch in `pgd_every`."""
    rows = []
    for t in targets:
        model = committed_model(results["models"][t.model]["key"], t.split, folders).to(device)
        served = deploy(model, spec_from_json(t.record["inference"]))
        views = t.views(model) if t.views is not None else None
        committed = Evaluation.from_json(t.record)
        x, y = t.split.float_images("test", device)
        if not np.array_equal(y.cpu().numpy(), committed.y):
            raise ValueError(f"{t.label}: the split's test points are not the ones the committed evaluation ran on")
        points = Points.of(x, y, committed.classes, committed.subset)
        sample = range(0, len(batch_ranges(len(y), t.protocol.batch_size)), pgd_every)
        fresh = evaluate(served, points, t.protocol.with_attacks({t.pgd: _spec(t.record, t.pgd)}), views=views,
                         batches=sample)
        clean = (committed.predicted("clean"), fresh.predicted("clean"))
        rows.append(_row(t.label, "clean", "all", *clean, committed.y, TOLERANCE, exact))
        on = in_batches(len(y), t.protocol.batch_size, sample)
        rows.append(_row(t.label, t.pgd, "all" if on.all() else f"{on.sum()} points, one batch in {pgd_every}",
                         committed.predicted(t.pgd)[on], fresh.predicted(t.pgd)[on], committed.y[on], TOLERANCE,
                         exact, clean=(clean[0][on], clean[1][on])))
        if t.aa is not None:
            part = _first_per_class(committed.y, committed.subset, aa_per_class)
            sub = Points.of(x, y, committed.classes, committed.subset[part])
            spec = _spec(t.record, t.aa)
            aa = evaluate(served, sub, t.protocol.with_attacks({t.aa: spec}), views=views)
            rows.append(_row(t.label, t.aa, f"{len(part)} AutoAttack points", committed.predicted(t.aa, "subset")[part],
                             aa.predicted(t.aa, "subset"), committed.y[committed.subset[part]], AA_TOLERANCE, False,
                             clean=(committed.predicted("clean", "subset")[part], aa.predicted("clean", "subset"))))
    return rows


def _row(label: str, attack: str, points: str, committed: np.ndarray, fresh: np.ndarray, y: np.ndarray,
         tolerance: float, exact: bool, clean: tuple[np.ndarray, np.ndarray] | None = None) -> dict:
    """Robust accuracy counts a point only if it is also correct clean (as every report does)."""
    ok_committed, ok_fresh = committed == y, fresh == y
    if clean is not None:
        ok_committed, ok_fresh = ok_committed & (clean[0] == y), ok_fresh & (clean[1] == y)
    a, b = float(ok_committed.mean()), float(ok_fresh.mean())
    same = bool(np.array_equal(committed, fresh))
    rule = "the same prediction on every point" if exact else f"accuracy within {tolerance:g}"
    return {"evaluation": label, "attack": attack, "points": points, "committed": a, "fresh": b,
            "agreement": float((committed == fresh).mean()), "rule": rule,
            "holds": same if exact else abs(a - b) <= tolerance}


def problems(rows: Sequence[dict]) -> list[str]:
    return [f"{r['evaluation']} {r['attack']} ({r['points']}): committed {r['committed']:.4f}, fresh {r['fresh']:.4f}, "
            f"agreement {r['agreement']:.4f}; rule: {r['rule']}" for r in rows if not r["holds"]]

