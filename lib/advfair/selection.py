"""Checkpoint selection on a validation split (Fair-ARD's and ABSLD's rule: the best avg + worst-class PGD accuracy).

`train_selected` is `training.train_cached` with a selection rule: after each due epoch the model is attacked
with PGD on the validation points (never on test), and the weights of the epoch with the highest
(overall robust accuracy + worst-class robust accuracy) are the ones returned and cached (ties: the earlier
epoch, as the official codes' strict `>`). The rule enters the cache key, so a selected model never shares an
entry with a last-epoch one. The best weights so far live in a file beside the training checkpoint, so an
interrupted run resumes with them; every epoch's validation numbers join its history record.

The same training also gives the last epoch's weights: they are cached under the plain training spec (the key
`train_cached` uses; every epoch is seeded and the validation runs in eval mode, so they are the weights of a
training without selection, tested), so `last_epoch` loads them without training again.
"""
from __future__ import annotations

import copy
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn

from .cache import ModelCache
from .evaluation import AttackSpec, per_class_accuracy, predict
from .files import remove
from .objectives import Objective
from .splits import Split
from .trainer import TrainConfig, save_atomic, train
from .validation import check_eps, check_non_negative, check_positive
from .training import initial_model, model_spec_of, train_cached


@dataclass(frozen=True)
class SelectionRule:
    """PGD-`steps` at step `alpha` on the validation points every `every` epochs, every epoch from `dense_from`
    on (the official code: every 10 epochs before the first decay, then every epoch), and after the last one."""

    eps: float
    steps: int
    alpha: float
    every: int = 1
    dense_from: int | None = None
    seed: int = 0
    batch_size: int = 500
    rule: str = "val_avg_worst"

    def __post_init__(self) -> None:
        check_eps("eps", self.eps)
        check_positive("steps", self.steps, integer=True)
        check_positive("alpha", self.alpha)
        check_positive("select_every", self.every, integer=True)
        check_non_negative("seed", self.seed, integer=True)

    def due(self, epoch: int, epochs: int) -> bool:
        """Whether the 1-based `epoch` is validated."""
        return epoch == epochs or epoch % self.every == 0 or (self.dense_from is not None and epoch >= self.dense_from)

    def score(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, num_classes: int) -> dict:
        """Overall and worst-class robust accuracy (correct on x and under PGD) and their sum."""
        x_adv, _ = AttackSpec(steps=self.steps, alpha=self.alpha).run(model, x, y, eps=self.eps, seed=self.seed,
                                                                      batch_size=self.batch_size)
        correct = ((predict(model, x, batch_size=self.batch_size) == y) &
                   (predict(model, x_adv, batch_size=self.batch_size) == y)).cpu().numpy()
        per_class = per_class_accuracy(correct, y.cpu().numpy(), num_classes)
        mean, worst = float(correct.mean()), float(per_class.min())
        return {"val_mean": mean, "val_worst": worst, "val_score": mean + worst}

    def to_dict(self) -> dict:
        return asdict(self)


def train_selected(cache: ModelCache, split: Split, *, model_spec: dict, objective: Objective,
                   train_cfg: TrainConfig, rule: SelectionRule, device: torch.device,
                   progress: bool = False, label: str = "") -> tuple[nn.Module, dict]:
    """Train (or load from the cache) the model the rule selects; meta as `train_cached`'s, and each history
    record has the epoch's validation numbers (where due) and "selected" (True on the returned epoch)."""
    plain = model_spec_of(split.spec, model_spec, objective, train_cfg)
    spec = {**plain, "selection": rule.to_dict()}
    data, model = split.data, initial_model(split, model_spec, train_cfg.seed)
    x, y = split.images("train")
    xv, yv = split.float_images("val", device)

    def run(m: nn.Module, checkpoint: Path) -> list[dict]:
        best_path = checkpoint.with_suffix(".best")
        state = torch.load(best_path, weights_only=False) if best_path.exists() else {"scores": {}, "best": None}

        def consider(net: nn.Module, epoch: int) -> None:
            scores = rule.score(net, xv, yv, data.num_classes)
            state["scores"][epoch] = scores
            if state["best"] is None or scores["val_score"] > state["best"]["val_score"]:
                state["best"] = {"epoch": epoch, "val_score": scores["val_score"],
                                 "weights": {k: v.detach().cpu().clone() for k, v in net.state_dict().items()}}
            save_atomic(state, best_path)

        if checkpoint.exists():  # interrupted after a checkpoint but before that epoch was validated
            saved = torch.load(checkpoint, map_location=device, weights_only=False)
            last = saved["epoch"] + 1
            if rule.due(last, train_cfg.epochs) and last not in state["scores"]:
                net = copy.deepcopy(m).to(device)
                net.load_state_dict(saved["model"])
                consider(net, last)

        def on_epoch_end(epoch: int, record: dict) -> None:
            if rule.due(epoch + 1, train_cfg.epochs):
                consider(m, epoch + 1)

        history = train(m, objective, x, y, train_cfg, device=device, checkpoint=checkpoint, progress=progress,
                        label=label, on_epoch_end=on_epoch_end)
        for record in history:
            record.update(state["scores"].get(record["epoch"], {}))
        # the last epoch under the plain spec (its history without "selected": its weights are the last epoch's)
        cache.get_or_train(plain, copy.deepcopy(m), lambda *_: [dict(r) for r in history])
        m.load_state_dict(state["best"]["weights"])
        for record in history:
            record["selected"] = record["epoch"] == state["best"]["epoch"]
        remove(best_path)
        return history

    model, meta = cache.get_or_train(spec, model, run)
    return model.to(device).eval(), meta


def last_epoch(cache: ModelCache, split: Split, *, model_spec: dict, objective: Objective,
               train_cfg: TrainConfig, device: torch.device, progress: bool = False) -> tuple[nn.Module, dict]:
    """The last epoch's weights of the training `train_selected` ran (from the cache, where it wrote them; a
    selected model cached before it did is trained again without selection, to the same weights)."""
    return train_cached(cache, split, model_spec=model_spec, objective=objective,
                        train_cfg=train_cfg, device=device, progress=progress)


def selected_epoch(history: list[dict]) -> int:
    """The epoch whose weights a selected model has (the last epoch for a model trained without selection)."""
    return next((r["epoch"] for r in history if r.get("selected")), history[-1]["epoch"] if history else 0)
