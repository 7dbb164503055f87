"""The method catalogue: every method a chapter trains is an entry, and every entry builds its objective."""
import pytest
from torch import nn

from advfair import inference
from advfair.experiments.aalp.methods import MODEL_LABELS as AALP
from advfair.experiments.absld.methods import MODEL_LABELS as ABSLD
from advfair.experiments.classwise.methods import MODEL_LABELS as CLASSWISE
from advfair.experiments.ducat.methods import MODEL_LABELS as DUCAT
from advfair.experiments.robal.methods import MODEL_LABELS as ROBAL
from advfair.methods import CATALOGUE, entry, objective
from advfair.objectives import Objective
from advfair.validation import ConfigError

ATTACK = {"eps": 8 / 255, "alpha": 2 / 255, "steps": 2}
COUNTS = [50, 20, 5]
TEACHER = {"teacher": nn.Sequential(nn.Flatten(), nn.Linear(12, 3)), "teacher_key": "t", "num_classes": 3}
ROBAL_PARAMS = {"counts": COUNTS, "s": 10.0, "m0": 0.1, "tau_m": 0.0, "tau_b": 1.0, "kl_weight": 0.0}
PARAMS = {
    "class_weighted": {"class_weights": [1.0, 2.0, 1.0]}, "la_train": {"counts": COUNTS}, "robal_n": ROBAL_PARAMS,
    "robal_r": ROBAL_PARAMS, **{k: {"num_classes": 3} for k in ("ducat", "trades_ducat", "mart_ducat")},
    **{k: TEACHER for k in ("ard", "rslad", "absld_separate", "absld_code_product", "fair_rslad")},
    "absld_manual": {**TEACHER, "frozen": ([1.0, 2.0, 1.0], [1.0, 2.0, 1.0])},
    "label_smoothing": {"smoothing": [0.1, 0.2, 0.1]}, "trades_dafa": {"num_classes": 3, "epochs": 4, "dafa_warmup": 2},
}
# The chapters' keys that are variants of an entry: other data, an ablation, another served head, the teacher.
VARIANTS = {"sml_bal": "at_fc", "robal_r_s": "robal_r", "ducat_from_start": "ducat", "standard": "plain",
            "gd_only": "aalp", "weights_only": "aalp", "ls_uniform": "label_smoothing", "ls_class": "label_smoothing",
            "teacher": "trades"}


@pytest.mark.parametrize("key", sorted(CATALOGUE))
def test_every_entry_builds_its_objective(key: str) -> None:
    e = entry(key)
    built = objective(key) if key == "plain" else objective(key, **ATTACK, **PARAMS.get(key, {}))
    assert isinstance(built, Objective)
    assert e.reference and e.label
    assert e.served is None or getattr(inference, e.served.__name__) is e.served
    assert all(r == "teacher" or r in CATALOGUE for r in e.requires)


@pytest.mark.parametrize("labels", [CLASSWISE, ROBAL, DUCAT, ABSLD, AALP],
                         ids=["classwise", "robal", "ducat", "absld", "aalp"])
def test_every_method_a_chapter_trains_is_an_entry(labels: dict) -> None:
    missing = [k for k in labels if k not in CATALOGUE and VARIANTS.get(k) not in CATALOGUE]
    assert not missing


def test_unknown_entries_and_parameters_are_named() -> None:
    with pytest.raises(ConfigError, match="method='frl'"):
        entry("frl")
    with pytest.raises(ConfigError, match="params"):
        objective("plain", beta=6.0)
