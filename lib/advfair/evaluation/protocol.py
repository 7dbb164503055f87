"""One evaluation protocol for every chapter, the synthesis and `python -m advfair evaluate`:

    evaluate(deployed_model, points, protocol) -> Evaluation

The deployed model is the module as served (any inference-time head included, see `advfair.inference`), so
every attack sees what a user would. An `Evaluation` keeps the per-point predictions under every attack
(paired-ready: every comparison of two evaluations on the same points is made from them) and writes one
JSON envelope with the class-wise reports on all points and on the subset where the costly attacks ran.
"""
from __future__ import annotations

import dataclasses
import time
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from .. import attacks
from .. import autoattack
from ..distributed import batch_ranges, batchwise
from ..models import eval_mode
from ..validation import check_choice, check_eps, check_non_negative, check_positive, fail
from .metrics import classwise_report, robust_correctness

ATTACK_KINDS = ("fgsm", "pgd", "mim", "autoattack")
SCHEMA = "advfair.evaluation/1"
_LABEL_CHARS = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"


@dataclass(frozen=True)
class AttackSpec:
    """One white-box attack at the protocol's eps. `subset`: run only on the protocol's subset points.
    `view`: attack a named view of the served model (e.g. a differentiable surrogate whose argmax is the
    served model's); the prediction on the adversarial point is always the served model's. `early_stop`
    freezes a point at the first iterate the attacked module misclassifies (worst case, faster); an
    attack on a view whose argmax is not the served prediction should run every step instead. FGSM is one
    signed step of size eps (its `steps` is unused; a Protocol sets its `alpha` to eps, as its records say)."""

    kind: str = "pgd"
    steps: int = 10
    alpha: float = 2 / 255
    loss: str = "ce"
    temperature: float = 1.0
    t_rule: str = "global"
    restarts: int = 1
    # AutoAttack: "subset" (APGD-CE + APGD-T), "standard", "square" (`steps` queries) or "smoke" (the subset's
    # attacks at `steps` iterations: a smoke run's wiring check, not AutoAttack's strength)
    version: str = "subset"
    subset: bool = False
    view: str | None = None
    early_stop: bool = True

    def __post_init__(self) -> None:
        check_choice("kind", self.kind, ATTACK_KINDS)
        check_positive("steps", self.steps, integer=True)
        check_positive("alpha", self.alpha)
        check_choice("loss", self.loss, attacks.LOSSES)
        attacks.check_temperature(self.temperature)
        check_choice("t_rule", self.t_rule, attacks.T_RULES)
        check_positive("restarts", self.restarts, integer=True)
        check_choice("version", self.version, autoattack.AUTOATTACK_VERSIONS)

    def run(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, eps: float, seed: int, batch_size: int,
            judge: nn.Module | None = None, batches: Collection[int] | None = None) -> tuple[torch.Tensor, list[str]]:
        """The adversarial points, and AutoAttack's own warnings (empty for the other kinds). `judge` (the
        served model, when `model` is a view of it) decides which points a restart attacks again. `batches`
        (batch numbers) leaves the other batches unattacked where each batch is its own computation (FGSM, and
        PGD and MIM with one start); AutoAttack and restarts attack every batch."""
        if self.kind == "autoattack":
            budget = {"square": {"queries": self.steps}, "smoke": {"iterations": self.steps}}.get(self.version, {})
            return autoattack.autoattack(model, x, y, eps=eps, version=self.version, batch_size=batch_size, seed=seed,
                                         **budget)
        if self.kind == "fgsm":
            return batchwise(lambda lo, hi: attacks.fgsm(model, x[lo:hi], y[lo:hi], eps=eps, fold_bn=True),
                             torch.zeros_like(x), batch_size, only=batches), []
        # One generator per attack, seeded alike: every PGD-type attack starts from the same points.
        generator = torch.Generator().manual_seed(seed)
        attack = attacks.mim if self.kind == "mim" else attacks.pgd
        extra = {} if self.kind == "mim" else {"temperature": self.temperature, "t_rule": self.t_rule}

        def batch(lo: int, hi: int) -> torch.Tensor:
            return attack(model, x[lo:hi], y[lo:hi], eps=eps, alpha=self.alpha, steps=self.steps, loss=self.loss,
                          restarts=self.restarts, early_stop=self.early_stop, generator=generator, fold_bn=True,
                          judge=judge, **extra)

        if self.restarts > 1:  # a restart draws for the points still robust: the draws of a batch follow the
            # outcomes of the batches before it, so every process attacks every batch
            return torch.cat([batch(lo, hi) for lo, hi in batch_ranges(len(x), batch_size)]), []
        # a batch's one draw is its random start (`LinfThreat.random_init`)
        skip = lambda lo, hi: torch.rand((hi - lo, *x.shape[1:]), generator=generator, device="cpu")
        return batchwise(batch, torch.zeros_like(x), batch_size, skip=skip, only=batches), []

    def to_json(self) -> dict:
        return dataclasses.asdict(self)


def standard_attacks(*, steps: int, alpha: float, fgsm: bool = True, cw: bool = True, cw_loss: str = "cw",
                     temperatures: Sequence[float] = (), t_rule: str = "global", extra_steps: Sequence[int] = (),
                     mim: bool = False, autoattack: str | None = "subset") -> dict[str, AttackSpec]:
    """The usual white-box suite, named as the tables name it: fgsm, pgd<K>, pgd<K'>..., mim<K>, cw<K>,
    tpgd<K>_T<T> for every T != 1, and "aa" (AutoAttack on the subset points; None leaves it out).
    `cw_loss` is "cw" (the margin) or "cw_hinge" (RoBal's test code, kappa = 50); either is named cw<K>."""
    check_choice("cw_loss", cw_loss, ("cw", "cw_hinge"))
    suite = {"fgsm": AttackSpec(kind="fgsm", steps=1)} if fgsm else {}
    suite[f"pgd{steps}"] = AttackSpec(steps=steps, alpha=alpha)
    for k in extra_steps:
        suite[f"pgd{k}"] = AttackSpec(steps=k, alpha=alpha)
    if mim:
        suite[f"mim{steps}"] = AttackSpec(kind="mim", steps=steps, alpha=alpha)
    if cw:
        suite[f"cw{steps}"] = AttackSpec(steps=steps, alpha=alpha, loss=cw_loss)
    for t in temperatures:
        if t != 1:
            suite[tpgd_name(t, steps)] = AttackSpec(steps=steps, alpha=alpha, temperature=t, t_rule=t_rule)
    if autoattack is not None:
        suite["aa"] = AttackSpec(kind="autoattack", version=autoattack, subset=True)
    return suite


def tpgd_name(temperature: float, steps: int) -> str:
    return f"pgd{steps}" if temperature == 1 else f"tpgd{steps}_T{temperature:g}"


@dataclass(frozen=True)
class Protocol:
    """The threat model and the attacks of an evaluation; `seed` fixes every random start."""

    eps: float
    attacks: Mapping[str, AttackSpec]
    seed: int = 0
    batch_size: int = 500
    n_boot: int = 1000

    def __post_init__(self) -> None:
        check_eps("eps", self.eps)
        check_non_negative("seed", self.seed, integer=True)
        check_positive("batch_size", self.batch_size, integer=True)
        check_positive("n_boot", self.n_boot, integer=True)
        if "clean" in self.attacks:
            fail("attacks", "clean", "attack names other than 'clean' (clean accuracy is always evaluated)")
        # FGSM's one step is eps: its record says so, whatever step the spec was built with
        object.__setattr__(self, "attacks", {name: dataclasses.replace(a, alpha=self.eps) if a.kind == "fgsm" else a
                                             for name, a in self.attacks.items()})

    def with_attacks(self, attacks: Mapping[str, AttackSpec]) -> "Protocol":
        return dataclasses.replace(self, attacks=attacks)


@dataclass(frozen=True)
class Points:
    """Test points (float images in [0, 1] on the evaluation device), their class names, and the subset
    (indices into the points) on which attacks marked `subset` run."""

    x: torch.Tensor
    y: torch.Tensor
    classes: tuple[str, ...]
    subset: np.ndarray

    @classmethod
    def of(cls, x: torch.Tensor, y: torch.Tensor, classes: Sequence[str], subset: np.ndarray | None = None) -> "Points":
        idx = np.arange(len(y)) if subset is None else np.asarray(subset, dtype=np.int64)
        return cls(x, y, tuple(classes), idx)


@dataclass
class Evaluation:
    """Per-point predictions of one deployed model under every attack of a protocol.

    `predictions[name]` has one label per point, or one per subset point for attacks in `on_subset`."""

    classes: tuple[str, ...]
    y: np.ndarray
    subset: np.ndarray
    predictions: dict[str, np.ndarray]
    on_subset: frozenset[str]
    attacks: dict[str, dict] = field(default_factory=dict)
    warnings: dict[str, list[str]] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    # {module name: {attack: labels}}: what other heads (e.g. a 2C model's raw argmax) predict on the same points.
    side: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)

    def labels(self, points: str = "all") -> np.ndarray:
        return self.y if points == "all" else self.y[self.subset]

    def names(self, points: str = "all") -> list[str]:
        """The attacks available on `points` ("all" or "subset"); "clean" first."""
        check_choice("points", points, ("all", "subset"))
        return [n for n in self.predictions if points == "subset" or n not in self.on_subset]

    def predicted(self, attack: str, points: str = "all") -> np.ndarray:
        if attack not in self.predictions:
            fail("attack", attack, "one of " + ", ".join(repr(a) for a in self.predictions))
        p = self.predictions[attack]
        if attack in self.on_subset:
            if points == "all":
                fail("points", points, f"'subset': {attack!r} ran only on the subset points")
            return p
        return p if points == "all" else p[self.subset]

    def correct(self, attack: str, points: str = "all") -> np.ndarray:
        """Per-point robust correctness (correct on the clean input and under `attack`)."""
        y = self.labels(points)
        return (self.predicted(attack, points) == y) & (self.predicted("clean", points) == y)

    def worst_case(self, attacks: Sequence[str], points: str = "all") -> np.ndarray:
        """Per point: robust under every one of `attacks` (the per-point worst case over them)."""
        if not attacks:
            fail("attacks", list(attacks), "at least one attack")
        return np.logical_and.reduce([self.correct(a, points) for a in attacks])

    def report(self, points: str = "all", *, n_boot: int = 1000, seed: int = 0) -> dict:
        preds = {n: self.predicted(n, points) for n in self.names(points)}
        return {"points": points, **classwise_report(self.labels(points), preds, self.classes, n_boot=n_boot, seed=seed)}

    def to_json(self, *, n_boot: int = 1000, seed: int = 0) -> dict:
        return {
            "schema": SCHEMA, "classes": list(self.classes),
            "points": {"all": len(self.y), "subset": len(self.subset)},
            "attacks": {n: {**self.attacks.get(n, {}), "points": "subset" if n in self.on_subset else "all"}
                        for n in self.predictions},
            "outcomes": {"y": encode_labels(self.y), "subset": self.subset.tolist(),
                         "predictions": {n: encode_labels(p) for n, p in self.predictions.items()},
                         "side": {m: {n: encode_labels(p) for n, p in by_attack.items()}
                                  for m, by_attack in self.side.items()}},
            "reports": {"all": self.report("all", n_boot=n_boot, seed=seed),
                        "subset": self.report("subset", n_boot=n_boot, seed=seed)},
            "warnings": self.warnings, "seconds": self.seconds,
        }

    @classmethod
    def from_json(cls, d: dict) -> "Evaluation":
        if d.get("schema") != SCHEMA:
            fail("schema", d.get("schema"), repr(SCHEMA))
        out = d["outcomes"]
        on_subset = frozenset(n for n, a in d["attacks"].items() if a["points"] == "subset")
        return cls(tuple(d["classes"]), decode_labels(out["y"]), np.asarray(out["subset"], dtype=np.int64),
                   {n: decode_labels(p) for n, p in out["predictions"].items()}, on_subset,
                   {n: {k: v for k, v in a.items() if k != "points"} for n, a in d["attacks"].items()},
                   d.get("warnings", {}), d.get("seconds", {}),
                   {m: {n: decode_labels(p) for n, p in by_attack.items()} for m, by_attack in out.get("side", {}).items()})


def predict(model: nn.Module, x: torch.Tensor, *, batch_size: int = 500) -> torch.Tensor:
    """Predicted labels in eval mode (the model's mode is restored), batch by batch (shared out over the processes
    of a several-process run)."""
    with eval_mode(model), torch.inference_mode():
        return batchwise(lambda lo, hi: model(x[lo:hi]).argmax(1),
                         torch.zeros(len(x), dtype=torch.long, device=x.device), batch_size)


def evaluate(model: nn.Module, points: Points, protocol: Protocol, *, views: Mapping[str, nn.Module] | None = None,
             side: Mapping[str, nn.Module] | None = None, progress: bool = False, label: str = "evaluate",
             batches: Sequence[int] | None = None) -> Evaluation:
    """Clean predictions and predictions under every attack of `protocol` (attacks marked `subset` on the
    subset points only). Views named by an attack are attacked instead of `model`; predictions are `model`'s.
    The argmax of each `side` module is recorded on the same clean and adversarial points as well.
    `progress` shows a bar over the attacks, named `label`, with the attack running. `batches` (batch numbers
    of the points an attack runs on) is a sample for a recheck (`advfair.recheck`): each of those batches is
    attacked as in the whole evaluation, and every other point's prediction under an attack is -1."""
    views, side = dict(views or {}), dict(side or {})
    x, y, bs = points.x, points.y, protocol.batch_size
    subset = torch.as_tensor(points.subset, device=x.device)
    preds = {"clean": predict(model, x, batch_size=bs).cpu().numpy()}
    side_preds = {m: {"clean": predict(module, x, batch_size=bs).cpu().numpy()} for m, module in side.items()}
    seconds, warnings = {}, {}
    bar = tqdm(protocol.attacks.items(), desc=label, total=len(protocol.attacks), disable=not progress, leave=False)
    for name, spec in bar:
        bar.set_postfix_str(name)
        if spec.view is not None and spec.view not in views:
            fail("view", spec.view, "a view passed to evaluate(): " + (", ".join(map(repr, views)) or "none given"))
        target = views[spec.view] if spec.view is not None else model
        xs, ys = (x[subset], y[subset]) if spec.subset else (x, y)
        started = time.perf_counter()
        x_adv, warnings[name] = spec.run(target, xs, ys, eps=protocol.eps, seed=protocol.seed, batch_size=bs,
                                         judge=model if spec.view is not None else None, batches=batches)
        preds[name] = predict(model, x_adv, batch_size=bs).cpu().numpy()
        for m, module in side.items():
            side_preds[m][name] = predict(module, x_adv, batch_size=bs).cpu().numpy()
        if batches is not None:
            unattacked = ~in_batches(len(xs), bs, batches)
            for p in (preds, *side_preds.values()):
                p[name][unattacked] = -1
        seconds[name] = time.perf_counter() - started
    return Evaluation(points.classes, y.cpu().numpy(), np.asarray(points.subset), preds,
                      frozenset(n for n, s in protocol.attacks.items() if s.subset),
                      {"clean": {}, **{n: s.to_json() for n, s in protocol.attacks.items()}},
                      {n: w for n, w in warnings.items() if w}, seconds, side_preds)


def in_batches(n: int, batch_size: int, batches: Collection[int]) -> np.ndarray:
    """Which of n points lie in the batches numbered `batches` (as `batch_ranges` forms them)."""
    mask = np.zeros(n, dtype=bool)
    for b, (lo, hi) in enumerate(batch_ranges(n, batch_size)):
        mask[lo:hi] = b in batches
    return mask


def encode_labels(labels: np.ndarray) -> str | list[int]:
    """Labels as one character each (up to 62 classes), else a list: compact, exact JSON."""
    labels = np.asarray(labels)
    if len(labels) and (labels.min() < 0 or labels.max() >= len(_LABEL_CHARS)):
        return labels.tolist()
    return "".join(_LABEL_CHARS[v] for v in labels.tolist())


def decode_labels(encoded: str | list[int]) -> np.ndarray:
    if isinstance(encoded, list):
        return np.asarray(encoded, dtype=np.int64)
    lookup = {c: i for i, c in enumerate(_LABEL_CHARS)}
    return np.fromiter((lookup[c] for c in encoded), dtype=np.int64, count=len(encoded))


def robust_outcomes(evaluation: Evaluation, points: str = "all") -> dict[str, np.ndarray]:
    """{attack: per-point robust correctness} on `points`, "clean" included."""
    preds = {n: evaluation.predicted(n, points) for n in evaluation.names(points)}
    return robust_correctness(preds, evaluation.labels(points))
