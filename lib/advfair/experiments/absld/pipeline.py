"""Chapter pipeline: robust fairness through distillation (ABSLD; Zhao et al., NeurIPS 2024), with RSLAD and ARD.

`run(config) -> results` gets the teacher from the model cache (training it once if allowed), picks the hard
classes on the validation split (the teacher's lowest validation PGD accuracies), trains the students the config
names (`students`: RSLAD, ABSLD in both temperature modes, ABSLD with frozen "manual" temperatures; the optional
`baselines`) and, with `c3`, the two teacher-free label-smoothing models of the C3 demo, and evaluates every model class by class under clean, FGSM,
PGD, CW∞ and AutoAttack with the shared protocol (the C3 models under PGD and AutoAttack). ABSLD only changes
training (the student is a plain classifier), so AutoAttack is a complete evaluation here. With a checkpoint rule
other than "last", the last epoch's weights of the students in `methods.LAST_EPOCH` are evaluated as well, with
the same protocol on the same points (`results["last_epoch"]`; the last epoch is reported too).
"""
from __future__ import annotations

from torch import nn

from ...evaluation import per_class_accuracy, tpgd_name
from ...splits import Split
from ...validation import fail
from ...cache import spec_key
from ...recheck import Target
from ..common import Run, config_of, model_targets
from ...selection import last_epoch, selected_epoch, train_selected
from ...training import model_record, model_spec_of, train_cached
from ..roles import attack_roles
from . import methods
from .config import AbsldConfig


def run(cfg: AbsldConfig) -> dict:
    """The whole chapter: `config -> results` (a JSON-serialisable dict)."""
    r = Run(cfg)
    data = methods.split(cfg)
    classes = list(data.data.classes)
    test, val = r.points(data, "test", cfg.aa_per_class), r.points(data, "val")
    teacher, teacher_key = train_teacher(r, cfg, data)

    pgd = tpgd_name(1.0, cfg.eval_steps)
    val_ev, _ = r.evaluate("teacher_validation", teacher, val, methods.validation_protocol(cfg))
    val_pc = per_class_accuracy(val_ev.correct(pgd), val_ev.labels(), len(classes))
    hard, ls_hard = methods.hardest(val_pc, cfg.hard_count), methods.hardest(val_pc, cfg.ls_hard_count)

    plan = methods.plan(cfg, teacher, teacher_key, hard, ls_hard)
    trained = {key: train_student(r, cfg, key, data, objective) for key, objective in plan.items()}
    students = {key: model for key, (model, _) in trained.items()}

    records = {}
    _, records["teacher"] = r.evaluate("teacher", teacher, test, methods.test_protocol(cfg), model_key="teacher")
    for key, model in students.items():
        protocol = methods.test_protocol(cfg, fgsm=False, cw=False) if key in methods.TEACHER_FREE else \
            methods.test_protocol(cfg)
        _, records[key] = r.evaluate(key, model, test, protocol, model_key=key)

    results = {
        "classes": classes,
        "attack_roles": attack_roles(pgd=pgd, fgsm="fgsm", cw=f"cw{cfg.eval_steps}", aa="aa"),
        "split_sizes": {"train": len(data.train), "val": len(data.val), "test": len(data.test),
                        "aa_points": len(test.subset)},
        "teacher": {"key": teacher_key, "val_per_class_pgd": methods.as_float_list(val_pc)},
        "selection": {"hard": hard, "ls_hard": ls_hard, "paper_hard": methods.paper_hard_classes(classes),
                      "rule": "the teacher's lowest validation PGD accuracies (ties: the lower class index)"},
        "settings": {"manual_tau": methods.manual_temperatures(cfg, hard) if "absld_manual" in plan else None,
                     "ls_class": plan["ls_class"].params["smoothing"] if "ls_class" in plan else None,
                     "decay_epochs": list(cfg.decay_epochs()),
                     "lr_milestones": list(methods.train_config(cfg).milestones)},
        "checkpoints": {key: selected_epoch(r.models[key]["history"]) for key in students},
        "evaluations": records,
    }
    if cfg.checkpoint != "last":
        results["last_epoch"] = {key: r.evaluate(f"{key}_last", trained[key][1], test, methods.test_protocol(cfg),
                                                 model_key=key)[1]
                                 for key in methods.LAST_EPOCH if key in trained}
    return r.finish("absld", results)


def teacher_spec(cfg: AbsldConfig) -> dict:
    """The teacher's complete cache specification (at the cpu defaults, the class-wise chapter's PGD-AT model)."""
    return model_spec_of(methods.split_spec(cfg), methods.teacher_model_spec(cfg), methods.teacher_objective(cfg),
                         methods.teacher_train_config(cfg))


def train_teacher(r: Run, cfg: AbsldConfig, data: Split) -> tuple[nn.Module, str]:
    """The teacher from the model cache (trained first if missing and `train_teacher`), and its cache key."""
    spec = teacher_spec(cfg)
    if not cfg.train_teacher and not r.cache.contains(spec):
        fail("train_teacher", False, f"True, or a teacher already in the model cache: its key {spec_key(spec)} "
             f"is missing from {r.cache.root}")
    model, meta = train_cached(r.cache, data, model_spec=methods.teacher_model_spec(cfg), objective=methods.teacher_objective(cfg),
                               train_cfg=methods.teacher_train_config(cfg), device=r.device, progress=cfg.progress,
                               allow_training=cfg.train_teacher, label="train teacher")
    r.models["teacher"] = model_record(meta)
    return model.requires_grad_(False), meta["key"]


def train_student(r: Run, cfg: AbsldConfig, key: str, data: Split, objective) -> tuple[nn.Module, nn.Module | None]:
    """A student (or a C3 model) trained on the training images, checkpoint chosen by the config's rule, and its
    last epoch's weights when the rule selects another epoch (None with checkpoint="last": the model is the last
    epoch). Only the selected model is recorded in `r.models`."""
    common = {"model_spec": methods.student_model_spec(cfg),
              "objective": objective, "train_cfg": methods.train_config(cfg)}
    rule = methods.selection_rule(cfg)
    if rule is None:
        return r.train(key, data, **common), None
    model, meta = train_selected(r.cache, data, **common, rule=rule, device=r.device, progress=cfg.progress,
                                 label=f"train {key}")
    r.models[key] = model_record(meta)
    last = None
    if key in methods.LAST_EPOCH:  # written to the cache by train_selected
        last, _ = last_epoch(r.cache, data, **common, device=r.device, progress=cfg.progress)
    return model, last



def rechecks(results: dict) -> list[Target]:
    """Every committed test evaluation, its model from the committed weights (`advfair.recheck`)."""
    cfg = config_of(AbsldConfig, results)
    return model_targets(results, methods.split(cfg), methods.test_protocol(cfg))
