"""advfair.recheck: committed results against what the committed weights compute, on a tiny class-wise
run whose models were published as committed weights. AutoAttack is a cheap seeded PGD stand-in (the wiring is
what is tested)."""
from __future__ import annotations

import json

import pytest
import torch

from advfair import attacks
from advfair import autoattack as aa_module
from advfair.experiments import classwise, ducat, robal
from advfair.recheck import problems, recheck

DUCAT_TINY = dict(train_per_class=5, val_per_class=3, test_per_class=4, aa_per_class=1, epochs=2, width=4,
                  milestones=[2], ducat_start=2, ducat_end=2, unaware_steps=2, aware_steps=2, select_steps=2,
                  ablation_from_start=False, ablation_w_benign=[], plugins=["trades", "mart"], n_boot=20, device="cpu")
TINY = dict(train_per_class=5, val_per_class=3, test_per_class=4, aa_per_class=2, epochs=1, width=4, eval_steps=2,
            temperatures=[0.5, 1.0], bias_grid=[0.0, 1.0], mnist=False, n_boot=20, device="cpu")


def _aa_stand_in(model, x, y, *, eps, version="standard", batch_size=500, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return attacks.pgd(model, x, y, eps=eps, alpha=eps / 4, steps=2, early_stop=True, generator=generator), []


def _publish(chapter, fields: dict, data_dir, tmp_path_factory) -> tuple[dict, object]:
    """A tiny run of `chapter` whose models are published to a folder of committed weights."""
    if not (data_dir / "cifar10.npz").exists():
        pytest.skip("no cifar10.npz")
    folder = tmp_path_factory.mktemp("weights")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(aa_module, "autoattack", _aa_stand_in)
        mp.setenv("ADVFAIR_PUBLISH_WEIGHTS", str(folder))
        cfg = chapter.make_config("cpu", **fields, data_dir=str(data_dir), cache_dir=str(tmp_path_factory.mktemp("c")))
        results = json.loads(json.dumps(chapter.run(cfg)))
    return results, folder


@pytest.fixture(scope="module")
def published(data_dir, tmp_path_factory):
    return _publish(classwise.CHAPTER, TINY, data_dir, tmp_path_factory)


def test_the_committed_weights_recompute_the_committed_results(published, monkeypatch):
    monkeypatch.setattr(aa_module, "autoattack", _aa_stand_in)
    results, folder = published
    targets = classwise.CHAPTER.rechecks(results)
    assert [(t.label, t.model) for t in targets] == [("pgd_at", "pgd_at"), ("trades", "trades"),
                                                     ("class_weighted", "class_weighted"), ("pgd_at_bias", "pgd_at")]
    rows = recheck(results, targets, [folder], exact=True, aa_per_class=1)
    assert [(r["evaluation"], r["attack"]) for r in rows[:3]] == [("pgd_at", "clean"), ("pgd_at", "pgd2"),
                                                                   ("pgd_at", "aa")]
    assert rows[2]["points"] == "10 AutoAttack points"  # the first of each class's two
    assert not problems(rows) and all(r["agreement"] == 1.0 for r in rows)


def test_a_result_the_weights_do_not_compute_is_found(published, monkeypatch):
    monkeypatch.setattr(aa_module, "autoattack", _aa_stand_in)
    results, folder = published
    record = results["evaluations"]["trades"]
    wrong = json.loads(json.dumps(results))
    preds = record["outcomes"]["predictions"]["pgd2"]
    flipped = "".join("1" if c == "0" else "0" for c in preds)  # every PGD prediction changed
    wrong["evaluations"]["trades"]["outcomes"]["predictions"]["pgd2"] = flipped
    found = problems(recheck(wrong, classwise.CHAPTER.rechecks(wrong), [folder], exact=True, aa_per_class=1))
    assert len(found) == 1 and found[0].startswith("trades pgd2 (all)")
    with pytest.raises(FileNotFoundError, match="no committed weights"):
        recheck(results, classwise.CHAPTER.rechecks(results), [folder / "missing"], exact=True)


def test_ducat_rechecks_attack_the_views_its_evaluation_attacked(data_dir, tmp_path_factory, monkeypatch):
    """The unaware PGD ascends the raw 2C logits (a view), AutoAttack the recovered model: both recompute exactly
    from the committed weights; TRADES, MART and their DUCAT plug-ins ran no AutoAttack, so none is rechecked."""
    monkeypatch.setattr(aa_module, "autoattack", _aa_stand_in)
    results, folder = _publish(ducat.CHAPTER, DUCAT_TINY, data_dir, tmp_path_factory)
    targets = ducat.CHAPTER.rechecks(results)
    assert {t.label: t.aa for t in targets} == {"pgd_at": "aa_pairmax", "ducat": "aa_pairmax", "trades": None,
                                                "mart": None, "trades_ducat": None, "mart_ducat": None}
    rows = recheck(results, targets, [folder], exact=True, aa_per_class=1)
    assert {r["attack"] for r in rows} == {"clean", "pgd2_raw2C", "aa_pairmax"}
    assert not problems(rows) and all(r["agreement"] == 1.0 for r in rows)


def test_robal_rechecks_each_trained_model_once_sml_bal_on_its_own_training_set(data_dir, tmp_path_factory,
                                                                                 monkeypatch):
    """Every model once, by its own evaluation (not the remedies served on AT-FC's weights); Sml-Bal's weights
    are found under its own training set's spec. All recompute exactly from the committed weights."""
    monkeypatch.setattr(aa_module, "autoattack", _aa_stand_in)
    tiny = dict(n_max=50, epochs=1, width=4, milestones=[], test_per_class=3, val_per_class=3, eval_steps=2,
                aa_per_class=1, models=["plain", "sml_bal", "at_fc", "robal_n"], kappa_grid=[0, 1], ablation_tau_b=[],
                la_post_grid=[1.0], tau_p_grid=[0.0], n_boot=5, device="cpu")
    results, folder = _publish(robal.CHAPTER, tiny, data_dir, tmp_path_factory)
    targets = robal.CHAPTER.rechecks(results)
    assert [(t.label, t.model) for t in targets] == [("plain", "plain"), ("sml_bal", "sml_bal"), ("at_fc", "at_fc"),
                                                     ("robal_n", "robal_n")]
    assert targets[1].split.spec["kind"] == "sml_bal" and targets[0].split.spec["kind"] == "long_tailed"
    rows = recheck(results, targets, [folder], exact=True, aa_per_class=1)
    assert {r["attack"] for r in rows} == {"clean", "pgd2", "aa"}
    assert not problems(rows) and all(r["agreement"] == 1.0 for r in rows)
