"""advfair.recheck: committed results against what the committed weights compute, on a tiny class-wise
run whose models were published as committed weights. AutoAttack is a cheap seeded PGD stand-in (the wiring is
what is tested)."""
from __future__ import annotations

import json

import pytest
import torch

from advfair import attacks
from advfair import autoattack as aa_module
from advfair.experiments import classwise
from advfair.recheck import problems, recheck

TINY = dict(train_per_class=5, val_per_class=3, test_per_class=4, aa_per_class=2, epochs=1, width=4, eval_steps=2,
            temperatures=[0.5, 1.0], bias_grid=[0.0, 1.0], mnist=False, n_boot=20, device="cpu")


def _aa_stand_in(model, x, y, *, eps, version="standard", batch_size=500, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return attacks.pgd(model, x, y, eps=eps, alpha=eps / 4, steps=2, early_stop=True, generator=generator), []


@pytest.fixture(scope="module")
def published(data_dir, tmp_path_factory):
    if not (data_dir / "cifar10.npz").exists():
        pytest.skip("no cifar10.npz")
    folder = tmp_path_factory.mktemp("weights")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(aa_module, "autoattack", _aa_stand_in)
        mp.setenv("ADVFAIR_PUBLISH_WEIGHTS", str(folder))
        cfg = classwise.make_config("cpu", **TINY, data_dir=str(data_dir), cache_dir=str(tmp_path_factory.mktemp("c")))
        results = json.loads(json.dumps(classwise.CHAPTER.run(cfg)))
    return results, folder


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
