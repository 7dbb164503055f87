"""Bounded, JSON-able training records for AALP's observation 2 (C2): "under ALP, for a noticeable share of
training samples the pairing term dominates and prevents the classification loss from decreasing".

Per sample and step the objective passes r_i = lambda l_lp,i / l_cls,i and l_cls,i. Each epoch's record holds:
- the share of samples with r_i > 1 (and the count), quantiles and a log10 histogram of r;
- the mean l_cls of that epoch's top decile of r against the rest;
- a *cohort* fixed at the end of the first epoch: the top decile of r there ("high r") and the rest, followed
  through later epochs (the mean l_cls of each). Because r is large where l_cls is small, the plain cohort
  comparison is confounded by the first-epoch l_cls (regression to the mean); the record therefore also
  keeps, per quintile stratum of the first-epoch l_cls, the change of l_cls since the first epoch of the
  stratum's top decile of r and of its rest (n, mean, variance), from which
  `advfair.evaluation.paired.matched_difference` gives a stratified estimate with a normal 95 % interval.

Samples are recognised across epochs by a hash of their pixels (exact for images in [0, 1] that are k/255);
augmented images change every epoch, so under augmentation the cohort is not found again (n = 0).
"""
from __future__ import annotations

import numpy as np
import torch


QUANTILES = (0.1, 0.5, 0.9, 0.99)
LOG10_EDGES = tuple(float(e) for e in np.linspace(-4, 2, 25))
TOP_FRACTION = 0.1
STRATA = 5
_KEY_SEED = 20240316


def pixel_keys(x: torch.Tensor) -> torch.Tensor:
    """An integer hash of each image's pixels (round(255 x)), exact and independent of the batch."""
    pixels = torch.round(x.detach().flatten(1).to(torch.float64) * 255).to(torch.int64).cpu()
    weights = torch.randint(1, 2 ** 31, (pixels.shape[1],), generator=torch.Generator().manual_seed(_KEY_SEED))
    return (pixels * weights).sum(1)


def _mean(values: np.ndarray) -> float | None:
    return float(values.mean()) if len(values) else None


def _top(values: np.ndarray, fraction: float = TOP_FRACTION) -> np.ndarray:
    """The entries in the top `fraction` (at least one entry when there are any)."""
    if len(values) == 0:
        return np.zeros(0, dtype=bool)
    k = max(1, int(round(fraction * len(values))))
    order = np.argsort(-values, kind="stable")
    out = np.zeros(len(values), dtype=bool)
    out[order[:k]] = True
    return out


def _group(delta: np.ndarray) -> dict:
    return {"n": int(len(delta)), "mean": _mean(delta), "var": float(delta.var(ddof=1)) if len(delta) > 1 else None}


class RatioRecorder:
    """Collects (key, l_cls, r) per step; `end_epoch` summarises, the cohort is the recorder's state."""

    def __init__(self) -> None:
        self._keys: list[torch.Tensor] = []
        self._ce: list[torch.Tensor] = []
        self._r: list[torch.Tensor] = []
        self.cohort: dict[str, torch.Tensor] = {}

    def start_epoch(self, epoch: int) -> None:
        self._keys, self._ce, self._r = [], [], []

    def add(self, x: torch.Tensor, l_cls: torch.Tensor, r: torch.Tensor) -> None:
        self._keys.append(pixel_keys(x))
        self._ce.append(l_cls.detach().double().cpu())
        self._r.append(r.detach().double().cpu())

    def end_epoch(self, epoch: int) -> dict:
        if not self._keys:
            return {"n": 0}
        keys = torch.cat(self._keys).numpy()
        ce, r = torch.cat(self._ce).numpy(), torch.cat(self._r).numpy()
        self.start_epoch(epoch)
        top = _top(r)
        log_r = np.log10(r[r > 0]) if (r > 0).any() else np.zeros(0)
        counts, _ = np.histogram(log_r, bins=np.asarray(LOG10_EDGES))
        record = {
            "epoch": epoch + 1, "n": int(len(r)), "r_above_1": int((r > 1).sum()), "share_r_above_1": float((r > 1).mean()),
            "r_quantiles": {f"{q:g}": float(np.quantile(r, q)) for q in QUANTILES},
            "r_hist": {"log10_edges": list(LOG10_EDGES), "counts": counts.tolist(),
                       "below": int((r <= 10 ** LOG10_EDGES[0]).sum()), "above": int((r > 10 ** LOG10_EDGES[-1]).sum())},
            "ce_mean": float(ce.mean()), "ce_top_decile_r": _mean(ce[top]), "ce_rest": _mean(ce[~top]),
        }
        if not self.cohort:
            self._define_cohort(keys, ce, r, epoch)
        record["cohort"] = self._follow(keys, ce, epoch)
        return record

    def _define_cohort(self, keys: np.ndarray, ce: np.ndarray, r: np.ndarray, epoch: int) -> None:
        keys, first = np.unique(keys, return_index=True)  # a repeated image: its first occurrence
        ce, r = ce[first], r[first]
        edges = np.quantile(ce, np.linspace(0, 1, STRATA + 1)[1:-1])
        stratum = np.searchsorted(edges, ce, side="right")
        within = np.zeros(len(r), dtype=bool)
        for s in range(STRATA):
            members = np.flatnonzero(stratum == s)
            within[members[_top(r[members])]] = True
        self.cohort = {"keys": torch.as_tensor(keys), "ce0": torch.as_tensor(ce), "high": torch.as_tensor(_top(r)),
                       "stratum": torch.as_tensor(stratum), "high_in_stratum": torch.as_tensor(within),
                       "epoch": torch.tensor(epoch)}

    def _follow(self, keys: np.ndarray, ce: np.ndarray, epoch: int) -> dict:
        c = {k: v.numpy() for k, v in self.cohort.items()}
        position = np.searchsorted(c["keys"], keys)
        position = np.clip(position, 0, len(c["keys"]) - 1)
        found = c["keys"][position] == keys
        idx, now = position[found], ce[found]
        high = c["high"][idx]
        out = {"defined_at_epoch": int(c["epoch"]) + 1, "size": int(len(c["keys"])), "found": int(found.sum()),
               "n_high": int(high.sum()), "ce_high": _mean(now[high]), "ce_rest": _mean(now[~high])}
        if epoch > int(c["epoch"]):
            delta, stratum, within = now - c["ce0"][idx], c["stratum"][idx], c["high_in_stratum"][idx]
            out["matched"] = [{"high": _group(delta[(stratum == s) & within]), "rest": _group(delta[(stratum == s) & ~within])}
                              for s in range(STRATA)]
        return out

    def state_dict(self) -> dict:
        return {"cohort": dict(self.cohort)} if self.cohort else {}

    def load_state_dict(self, state: dict) -> None:
        self.cohort = dict(state.get("cohort", {}))
