"""The run context every chapter pipeline uses: device, model cache, cached training, evaluation under the
shared protocol, and the results envelope (every chapter's results share it; see `finish`)."""
from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from torch import nn

from ..cache import ModelCache
from ..config import EXECUTION_FIELDS, ChapterConfig
from ..evaluation import AttackSpec, Evaluation, Points, Protocol, evaluate
from ..inference import Step, deploy, spec_label, spec_to_json
from ..objectives import Objective
from ..provenance import environment
from ..recheck import Target
from ..splits import Split, subset_per_class
from ..trainer import TrainConfig, resolve_device
from ..training import model_record, train_cached
from ..verdicts import Part, Verdict, model_gate, robust_gate, untestable
from .base import json_clean

RESULTS_SCHEMA = "advfair.results/1"
# Evaluations draw their random starts apart from training: validation attacks from seed + 10, test attacks
# from seed + 20 (the training seed's own stream is the trainer's).
VALIDATION_SEED_OFFSET, TEST_SEED_OFFSET = 10, 20


class Run:
    """State of one pipeline run (a run is one call of a chapter's `run`)."""

    def __init__(self, cfg: ChapterConfig):
        self.cfg = cfg
        self.device = resolve_device(cfg.device)
        self.cache = ModelCache(cfg.cache_dir)
        self.models: dict[str, dict] = {}
        self.seconds: dict[str, float] = {}
        self.started = time.perf_counter()

    def train(self, key: str, split: Split, *, model_spec: dict, objective: Objective,
              train_cfg: TrainConfig) -> nn.Module:
        """A trained model (from the cache if there), recorded under `key` in the results."""
        model, meta = train_cached(self.cache, split, model_spec=model_spec, objective=objective,
                                   train_cfg=train_cfg, device=self.device, progress=self.cfg.progress,
                                   label=f"train {key}")
        self.models[key] = model_record(meta)
        return model

    def points(self, split: Split, part: str = "test", subset_per_class_: int | None = None) -> Points:
        x, y = split.float_images(part, self.device)
        return Points.of(x, y, split.data.classes, subset_per_class(y.cpu().numpy(), subset_per_class_))

    def evaluate(self, label: str, model: nn.Module, points: Points, protocol: Protocol, *,
                 spec: Sequence[Step] = (), model_key: str | None = None, views: Mapping[str, nn.Module] | None = None,
                 side: Mapping[str, nn.Module] | None = None) -> tuple[Evaluation, dict]:
        """The model served with `spec`, evaluated under `protocol` (views and side heads as in
        `advfair.evaluation.evaluate`); returns the evaluation and its record."""
        started = time.perf_counter()
        evaluation = evaluate(deploy(model, spec), points, protocol, views=views, side=side,
                              progress=self.cfg.progress, label=f"evaluate {label}")
        record = {"model": model_key, "inference": spec_to_json(spec), "inference_label": spec_label(spec),
                  **evaluation.to_json(n_boot=protocol.n_boot, seed=protocol.seed)}
        self.seconds[f"evaluate_{label}"] = time.perf_counter() - started
        return evaluation, record

    def timed(self, label: str, started: float) -> None:
        self.seconds[label] = time.perf_counter() - started

    def finish(self, chapter: str, results: dict[str, Any]) -> dict:
        """The results envelope: chapter, schema, config (and its hash), the trained models, the chapter's
        own entries, timings under "seconds" and the environment. JSON-clean."""
        out = {"chapter": chapter, "schema": RESULTS_SCHEMA, "config": self.cfg.to_dict(),
               "config_hash": self.cfg.config_hash(), "models": self.models, **results,
               "seconds": {**self.seconds, "total": time.perf_counter() - self.started},
               "environment": environment(self.device)}
        return json_clean(out)


def training_attack(cfg: Any) -> dict:
    """The training attack's parameters of an objective, from a config (or a class-wise track) with the fields
    eps, train_alpha and train_steps."""
    return {"eps": cfg.eps, "alpha": cfg.train_alpha, "steps": cfg.train_steps}


def chapter_protocol(cfg: ChapterConfig, attacks: Mapping[str, AttackSpec], *, part: str = "test",
             eps: float | None = None) -> Protocol:
    """The chapter's protocol of `attacks` on its test (or "validation") points: the config's radius (unless
    `eps`), evaluation batch size and bootstrap count, and the part's seed offset."""
    offset = {"test": TEST_SEED_OFFSET, "validation": VALIDATION_SEED_OFFSET}[part]
    return Protocol(cfg.eps if eps is None else eps, attacks, seed=cfg.seed + offset, batch_size=cfg.eval_batch_size,
                    n_boot=cfg.n_boot)


def config_of(cls: type[ChapterConfig], results: dict) -> ChapterConfig:
    """The config a results file was made with, without its execution fields (the run's device and folders, which
    are another machine's)."""
    fields = {k: v for k, v in results["config"].items() if k not in ("profile", *EXECUTION_FIELDS)}
    return cls.make(results["config"]["profile"], **fields)


def model_targets(view: dict, split: Split, protocol: Protocol, prefix: str = "") -> list[Target]:
    """A recheck target (`advfair.recheck`) for every test evaluation of `view` (a results dict, or one track of it)
    that names its model, with AutoAttack where it ran; `prefix` turns a track's model names into keys of
    results["models"]."""
    roles = view["attack_roles"]
    return [Target(prefix + name, record, prefix + record["model"], split, protocol, roles["pgd"],
                   roles.get("aa") if roles.get("aa") in record["attacks"] else None)
            for name, record in view["evaluations"].items() if record.get("model") is not None]


def not_trained(results: dict, field: str, tier: Mapping[str, Any]) -> str:
    """Why a model is absent from `results`: config `field` leaves it out. At the evidence tier with the tier's own
    value (`tier`: the chapter's evidence profile) the tier's CPU budget did, chosen on cost alone before any of
    its results; any other value is the run's own choice."""
    value = results["config"].get(field)
    if results["config"].get("profile") == "evidence" and json_clean(tier.get(field)) == value:
        return f"left out of the evidence tier for its CPU budget ({field}={value!r})"
    return f"not trained in this run ({field}={value!r})"


def absent_models(results: dict, keys: Sequence[str]) -> list[str]:
    """The models of `keys` that `results` holds no evaluation of."""
    return [k for k in keys if k not in results["evaluations"]]


def missing_verdict(results: dict, claim: str, statement: str, names: Sequence[str], label: Callable[[str], str],
                    why: Callable[[dict, str], str]) -> Verdict | None:
    """`not testable` for a claim some of whose models (`names`) were not trained, each absent one with
    `why(results, name)`; None when every one was."""
    absent = absent_models(results, names)
    return Verdict(claim, statement, tuple(untestable(label(n), why(results, n)) for n in absent)) if absent else None


def absent_note(results: dict, keys: Sequence[str], label: Callable[[str], str],
                why: Callable[[dict, str], str]) -> str | None:
    """What a page section cannot show: the models of `keys` not trained in this run, each with `why(results,
    key)` (None: every one was)."""
    absent = absent_models(results, keys)
    if not absent:
        return None
    reasons: dict[str, list[str]] = {}
    for k in absent:
        reasons.setdefault(why(results, k), []).append(label(k))
    return ("Not trained in this run: " + "; ".join(f"{' and '.join(names)}, {reason}" for reason, names in
                                                    reasons.items()) + ". The claim's verdict below says so.")


def evaluation(results: dict, name: str) -> Evaluation:
    """The Evaluation stored under results["evaluations"][name]."""
    return Evaluation.from_json(results["evaluations"][name])


def report(results: dict, name: str, points: str = "all") -> dict:
    """The class-wise report of one evaluation on "all" points or on the "subset" (where AA ran)."""
    return results["evaluations"][name]["reports"][points]


def attack_entry(results: dict, name: str, attack: str, points: str = "all") -> dict:
    return report(results, name, points)["attacks"][attack]


def weight_norms(model: nn.Module) -> list[float]:
    """||w_c|| of the model's linear (or cosine) head, one per class."""
    return model.head.weight.detach().norm(dim=1).cpu().numpy().astype(float).tolist()


def clean_gate(label: str, e: Evaluation) -> Part:
    """The degeneracy gate of a model: its clean accuracy on the evaluation's points against the model floor."""
    return model_gate(label, e.correct("clean"), len(e.classes))


def bootstrap_args(results: dict) -> dict:
    """The bootstrap arguments of every interval of these results: the config's resample count and seed."""
    return {"n_boot": results["config"]["n_boot"], "seed": results["config"]["seed"]}


def degeneracy_gates(results: dict, names: Sequence[str], label: Callable[[str], str], robust: str, *,
          plain: Sequence[str] = (), shown: str | None = None) -> tuple[Part, ...]:
    """The degeneracy gates of the named models: clean accuracy of each, and robust accuracy under the chapter's
    reference attack `robust` of each adversarially trained one (all but `plain`)."""
    return tuple(g for name in names for g in model_gates(label(name), evaluation(results, name),
                                                          None if name in plain else robust, shown=shown))


def model_gates(label: str, e: Evaluation, robust: str | None, points: str = "all", *,
                shown: str | None = None) -> tuple[Part, ...]:
    """A model's degeneracy gates: clean accuracy, and for an adversarially trained model (`robust` names the
    chapter's reference attack, `shown` how it reads) robust accuracy under that attack against the robust
    floor."""
    gates = (clean_gate(label, e),)
    if robust is None:
        return gates
    return gates + (robust_gate(label, e.correct(robust, points), len(e.classes), shown or robust.upper()),)
