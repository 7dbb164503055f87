"""The DUCAT chapter's methods: its data, the models it trains (which have a 2C head) and its protocols."""
from __future__ import annotations

from ...evaluation import AttackSpec, Protocol
from ...inference import VIEWS
from ...models import canonical_model
from ...methods import catalogue
from ...objectives import Objective
from ...splits import Split, balanced_split
from ...trainer import TrainConfig, learning_rate
from ..common import VALIDATION_SEED_OFFSET, chapter_protocol, training_attack
from ..roles import attack_roles
from .config import DucatConfig

MODEL_LABELS = {"pgd_at": "PGD-AT", "ducat": "PGD-AT + DUCAT", "trades": "TRADES", "mart": "MART",
                "trades_ducat": "TRADES + DUCAT", "mart_ducat": "MART + DUCAT", "ducat_from_start": "DUCAT from epoch 1"}
# The evaluations whose models have a 2C head (their key, or an ablation's "ducat_wb<w_b, "." as "p">).
DUMMY_PREFIXES = ("ducat", "trades_ducat", "mart_ducat")


def label(key: str) -> str:
    if key.startswith("ducat_wb"):
        return f"DUCAT w_b = {float(key.removeprefix('ducat_wb').replace('p', '.')):g}"
    return MODEL_LABELS[key]


def is_dummy(key: str) -> bool:
    return key.startswith(DUMMY_PREFIXES)


def served_spec(num_classes: int, dummy: bool) -> tuple:
    """The inference spec a model is served with: DUCAT's recovery (its catalogue entry's) for a 2C model."""
    return catalogue.entry("ducat").served(num_classes) if dummy else ()


def split(cfg: DucatConfig) -> Split:
    return balanced_split(cfg.dataset, train_per_class=cfg.train_per_class, val_per_class=cfg.val_per_class,
                          test_per_class=cfg.test_per_class, seed=cfg.data_seed, data_dir=cfg.data_dir)


def model_spec(cfg: DucatConfig, dummy: bool) -> dict:
    spec = {"name": canonical_model(cfg.model), "width": cfg.width}
    return {**spec, "dummy_classes": True} if dummy else spec


def train_config(cfg: DucatConfig) -> TrainConfig:
    """With schedule="step" the trainer multiplies the lr by 0.1 from the 1-based epoch m on (each milestone m)."""
    return TrainConfig(epochs=cfg.epochs, batch_size=cfg.batch_size, lr=cfg.lr, weight_decay=cfg.weight_decay,
                       schedule=cfg.schedule, milestones=cfg.milestones, augment=cfg.augment,
                       seed=cfg.seed)


def plugin_key(base: str) -> str:
    """The key of DUCAT plugged into `base` ("trades" -> "trades_ducat"): its catalogue entry's."""
    return catalogue.ducat_key(base)


def ducat(cfg: DucatConfig, num_classes: int, *, start: int | None = None, w_benign: float | None = None,
          base: str = "pgd_at") -> Objective:
    betas = {"trades": cfg.trades_beta, "mart": cfg.mart_beta}
    extra = {"w_alpha": cfg.w_alpha} if base == "pgd_at" else {"beta": betas[base]}
    return catalogue.objective(plugin_key(base), **training_attack(cfg), num_classes=num_classes,
                          start=cfg.ducat_start if start is None else start, end=cfg.ducat_end,
                          w_benign=cfg.w_benign if w_benign is None else w_benign, w_adv=cfg.w_adv, **extra)


def plan(cfg: DucatConfig, num_classes: int) -> dict[str, Objective]:
    """key -> objective of every model the config asks for (the 2C ones: `is_dummy(key)`)."""
    out = {"pgd_at": catalogue.objective("pgd_at", **training_attack(cfg)), "ducat": ducat(cfg, num_classes)}
    if "trades" in cfg.baselines or "trades" in cfg.plugins:
        out["trades"] = catalogue.objective("trades", **training_attack(cfg), beta=cfg.trades_beta, clip_start=False)
    if "mart" in cfg.baselines or "mart" in cfg.plugins:
        out["mart"] = catalogue.objective("mart", **training_attack(cfg), beta=cfg.mart_beta)
    for base in cfg.plugins:
        out[plugin_key(base)] = ducat(cfg, num_classes, base=base)
    if cfg.ablation_from_start and cfg.ducat_start != 1:
        out["ducat_from_start"] = ducat(cfg, num_classes, start=1)
    for w in cfg.ablation_w_benign:
        if w != cfg.w_benign:
            out[f"ducat_wb{w:g}".replace(".", "p")] = ducat(cfg, num_classes, w_benign=w)
    return out


def attack_roles_of(cfg: DucatConfig) -> dict:
    """The protocol's attacks by role: PGD is the paper's dummy-unaware one (on the raw 2C logits), the aware ones
    attack the recovered prediction through its views, and AutoAttack attacks the served (pairmax) model."""
    return attack_roles(pgd=f"pgd{cfg.unaware_steps}_raw2C", aa="aa_pairmax",
                        aware=[f"pgd{cfg.aware_steps}_{view}" for view in catalogue.entry("ducat").aware])


def protocol(cfg: DucatConfig, *, aware: bool = True, aa: bool = True) -> Protocol:
    """raw2C: PGD on CE(z, y) over the raw 2C logits (the paper's evaluation); merged: PGD on
    -log(p_y + p_(y+C)) with restarts; dawa: PGD on the DAWA-style weighted CE; aa: AutoAttack on the served
    (pairmax) model on the subset points. Views whose argmax is not the served prediction run every step.
    For a C-way model the views are the model itself."""
    roles, steps, alpha = attack_roles_of(cfg), cfg.aware_steps, cfg.eval_alpha
    attacks = {roles["pgd"]: AttackSpec(steps=cfg.unaware_steps, alpha=alpha, view="raw2C", early_stop=False)}
    if aware:
        merged, dawa = roles["aware"]
        attacks[merged] = AttackSpec(steps=steps, alpha=alpha, loss="nll", restarts=cfg.merged_restarts,
                                     view="merged", early_stop=False)
        attacks[dawa] = AttackSpec(steps=steps, alpha=alpha, loss="nll", view="dawa", early_stop=False)
        if aa:
            attacks[roles["aa"]] = AttackSpec(kind="autoattack", version=cfg.aa_version, subset=True)
    return chapter_protocol(cfg, attacks)


def selection_protocol(cfg: DucatConfig) -> Protocol:
    """The checkpoint rule's attack (on validation): PGD on `select_view`, every step, with recovery."""
    spec = AttackSpec(steps=cfg.select_steps, alpha=cfg.eval_alpha, loss=VIEWS[cfg.select_view], view=cfg.select_view,
                      early_stop=False)
    return chapter_protocol(cfg, {"select": spec}, part="validation")


def selection_rule(cfg: DucatConfig) -> dict:
    """What the checkpoint rule is (part of the selected model's cache key)."""
    return {"rule": "the epoch with the highest validation accuracy under the attack (strict improvement)",
            "val_per_class": cfg.val_per_class, "protocol": {k: v.to_json() for k, v in
                                                              selection_protocol(cfg).attacks.items()},
            "eps": cfg.eps, "seed": cfg.seed + VALIDATION_SEED_OFFSET, "served": "recovery (pairmax)"}


def window_volume(cfg: DucatConfig, train_images: int) -> float:
    """The DUCAT window's optimisation volume: its SGD steps weighted by lr / base lr. The code's 130-epoch
    schedule on the full training set gives about 134 (one epoch at x0.1, 25 at x0.01, 383 steps each)."""
    tc = train_config(cfg)
    steps = -(-train_images // cfg.batch_size)
    return sum(steps * learning_rate(tc, e - 1) / cfg.lr for e in range(cfg.ducat_start, cfg.ducat_end + 1))


def cost_model(cfg: DucatConfig) -> dict:
    """Image passes (forward + backward) per training image and epoch: K attack steps and one train-mode pass
    for PGD-AT; inside the window DUCAT's outer pass is on [x; x'], one image more. Deterministic, unlike
    the measured seconds."""
    k = cfg.train_steps
    window = cfg.ducat_end - cfg.ducat_start + 1
    return {"pgd_at": k + 1, "ducat_in_window": k + 2, "ducat_outside": k + 1, "window_epochs": window,
            "epochs": cfg.epochs, "overhead_in_window": 1 / (k + 1),
            "overhead_schedule": window / cfg.epochs / (k + 1)}
