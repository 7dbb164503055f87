"""What scale a chapter page shows: the box at the top of every chapter (its tier, what its models trained on,
what they reach, next to the paper profile's scale), computed from the results file it renders."""
from __future__ import annotations

import importlib
from collections.abc import Mapping

import pandas as pd

from ..tables import pct

# The tier each profile's results form: the one name of a tier, which the status and summary pages use too.
TIER_OF_PROFILE = {"cpu": "smoke", "evidence": "evidence", "paper": "paper"}

# Each tier's meaning, in the words the box prints. The verdicts of the smoke tier are not findings: it is sized
# for minutes on a laptop, with smaller models, data or evaluations than the evidence tier (which of them differs
# by chapter: AALP's smoke models are its evidence models, evaluated on fewer points).
MEANINGS = {
    "cpu": "It is sized to run in minutes on a laptop CPU, with smaller models, training sets or evaluations than "
           "the evidence tier: its verdicts check the pipeline, they are **not findings**. The evidence tier "
           "(`profile=\"evidence\"`) is the book's test of the claims.",
    "evidence": "Its models were trained once on CPU at the `evidence` profile's scale (the configuration the "
                "calibration sweep chose by rule, or the smoke tier's where that already clears the quality bars: "
                "\"How the scale was chosen\"), and their weights are committed (`book/weights`): rerunning the page "
                "re-evaluates them instead of training.",
    "paper": "The paper's networks and schedules, run on a GPU.",
}


def tier_name(profile: str) -> str:
    """A profile's tier as prose names it, e.g. "the smoke tier (`cpu` profile)"."""
    if profile not in TIER_OF_PROFILE:
        return f"the `{profile}` profile"
    tier = TIER_OF_PROFILE[profile]
    return ("paper scale" if tier == "paper" else f"the {tier} tier") + f" (`{profile}` profile)"


WIDTH_MODELS = ("small_cnn", "mnist_cnn")  # the networks whose width is a config field


def _volume(cfg: Mapping) -> str:
    """The network and the training data of a config, as the box prints them."""
    if cfg.get("n_max") is not None:  # a long-tailed training set
        images = f"{cfg['dataset']}-LT (head class {cfg['n_max']:,} images, imbalance ratio {cfg['imbalance']:g})"
    elif cfg.get("train_per_class") is not None:
        images = f"{cfg['dataset']}, {cfg['train_per_class']:,} training images per class"
    else:
        images = f"{cfg['dataset']}, every training image" + (
            f" but the {cfg['val_per_class']} per class held out for validation" if cfg.get("val_per_class") else "")
    network = cfg["model"] + (f" (width {cfg['width']})" if cfg["model"] in WIDTH_MODELS and "width" in cfg else "")
    return f"{network} on {images}, {cfg['epochs']} epochs"


def scale_text(results: dict) -> str:
    """The box's text: the tier and what it means, what the models trained on, and the paper profile's scale."""
    from . import get_chapter  # the registry imports every chapter, and the chapters' pages import this module

    cfg = results["config"]
    profile = cfg["profile"]
    name, meaning = tier_name(profile), MEANINGS.get(profile, "")
    paper = get_chapter(results["chapter"]).make_config("paper").to_dict()
    points = next(iter(results["evaluations"].values()))["points"]
    tested = f"{points['all']:,} test points (AutoAttack on {points['subset']:,})"
    quote = importlib.import_module(f"{__package__}.{results['chapter']}.claims").SCALE_QUOTE
    lines = [f"> **Scale of this page: {name}.** {meaning}", ">",
             f"> This book: {_volume(cfg)}; {tested}.", ">",
             f"> The paper profile: {_volume(paper)}.", ">",
             f"> The paper's values (quoted): {quote}." if quote else
             "> The paper's values: none quoted (no overall accuracy of the paper's could be verified; the chapter "
             "quotes what there is)."]
    if cfg["dataset"] != paper["dataset"]:
        lines += [">", f"> **A proxy:** this page's models learn {cfg['dataset']}, the paper's learn {paper['dataset']}. "
                       "Its verdicts test the paper's mechanisms on the proxy, not the paper's numbers."]
    return "\n".join(lines)


def scale_table(results: dict) -> pd.DataFrame:
    """Every evaluated model's clean and robust accuracy (under the chapter's `pgd` role) on every test point, and
    its worst class's (in %), labelled as its chapter's `methods.MODEL_LABELS` names it."""
    labels = importlib.import_module(f"{__package__}.{results['chapter']}.methods").MODEL_LABELS
    robust = results["attack_roles"]["pgd"]
    rows = []
    for key, label in labels.items():
        if key not in results["evaluations"]:
            continue
        report = results["evaluations"][key]["reports"]["all"]
        classes, attacks = report["classes"], report["attacks"]
        row = {"model": label}
        for attack, shown in (("clean", "clean"), (robust, robust.upper())):
            e = attacks[attack]
            row[f"{shown} %"] = pct(e["overall"])
            row[f"worst class {shown} %"] = f"{pct(e['worst'])} ({classes[e['worst_class']]})"
        rows.append(row)
    return pd.DataFrame(rows).set_index("model")
