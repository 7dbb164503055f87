"""advfair.evaluation.protocol: evaluate(model, points, protocol) -> Evaluation, its JSON envelope, the subset
attacks, the shared random starts and attacked views."""
from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch
from torch import nn

from advfair import autoattack as aa_module
from advfair import attacks
from advfair.evaluation import (AttackSpec, Evaluation, Points, Protocol, classwise_report, evaluate, predict,
                                robust_outcomes, standard_attacks)
from advfair.evaluation.protocol import decode_labels, encode_labels
from advfair.validation import ConfigError

EPS = 8 / 255
CLASSES = tuple(f"c{k}" for k in range(10))
SUBSET = np.arange(0, 20, 2)  # the first point of each class


class Centered(nn.Module):
    """A linear classifier of x - 0.5 (a plain linear model on [0, 1] inputs predicts one class everywhere)."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.lin = nn.Linear(48, 10)

    def forward(self, x):
        return self.lin(x.flatten(1) - 0.5)


@pytest.fixture
def model():
    return Centered()


@pytest.fixture
def batch(model):
    """Two points per class, each pushed towards its class's weights; three mislabelled (wrong on clean inputs).
    At eps = 8/255 the attacks fool some of the others but not all."""
    w = model.lin.weight.detach()
    c = torch.arange(20) // 2
    g = torch.Generator().manual_seed(1)
    noise = 0.15 * (torch.rand(20, 48, generator=g) - 0.5)
    x = (0.5 + 0.05 * torch.sign(w[c]) + noise).clamp(0, 1).view(20, 3, 4, 4)
    y = c.clone()
    y[[1, 5, 13]] = (y[[1, 5, 13]] + 1) % 10
    return x, y


class Negated(nn.Module):
    """A view whose logits are the served model's, negated: attacking it pushes the served model towards y."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x):
        return -self.model(x)


def _protocol(seed: int = 0, **extra) -> Protocol:
    specs = {"fgsm": AttackSpec(kind="fgsm", steps=1), "pgd3": AttackSpec(steps=3, alpha=2 / 255),
             "cw3": AttackSpec(steps=3, alpha=2 / 255, loss="cw"),
             "pgd5_sub": AttackSpec(steps=5, alpha=2 / 255, subset=True), **extra}
    return Protocol(EPS, specs, seed=seed, batch_size=5, n_boot=50)


@pytest.fixture
def evaluation(model, batch):
    x, y = batch
    return evaluate(model, Points.of(x, y, CLASSES, SUBSET), _protocol())


def test_predictions_and_their_shapes(evaluation, model, batch):
    linear_model = model
    x, y = batch
    e = evaluation
    assert list(e.predictions) == ["clean", "fgsm", "pgd3", "cw3", "pgd5_sub"]
    assert e.on_subset == frozenset({"pgd5_sub"})
    for name in ("clean", "fgsm", "pgd3", "cw3"):
        assert e.predictions[name].shape == (20,) and e.predictions[name].dtype == np.int64
        assert e.predicted(name, "subset").shape == (10,)
        assert np.array_equal(e.predicted(name, "subset"), e.predicted(name)[SUBSET])
    assert e.predictions["pgd5_sub"].shape == (10,)
    assert np.array_equal(e.predicted("clean"), predict(linear_model, x).numpy())
    # the FGSM predictions are the model's on its one-step points
    x_fgsm = attacks.fgsm(linear_model, x, y, eps=EPS)
    assert np.array_equal(e.predicted("fgsm"), predict(linear_model, x_fgsm).numpy())
    assert e.names("all") == ["clean", "fgsm", "pgd3", "cw3"]
    assert e.names("subset") == ["clean", "fgsm", "pgd3", "cw3", "pgd5_sub"]
    assert set(e.seconds) == {"fgsm", "pgd3", "cw3", "pgd5_sub"} and e.warnings == {}
    assert e.attacks["cw3"]["loss"] == "cw" and e.attacks["pgd5_sub"]["subset"] is True
    # FGSM steps by eps, and its record says so (not the spec's default step of 2/255)
    assert e.attacks["fgsm"]["alpha"] == EPS != 2 / 255 and e.attacks["pgd3"]["alpha"] == 2 / 255
    assert np.array_equal(e.labels("subset"), y.numpy()[SUBSET])


def test_correct_is_clean_and_adversarial(evaluation, batch):
    e, y = evaluation, batch[1].numpy()
    clean = e.predictions["clean"] == y
    for name in ("fgsm", "pgd3", "cw3"):
        assert np.array_equal(e.correct(name), clean & (e.predictions[name] == y))
        assert np.array_equal(e.correct(name, "subset"), (clean & (e.predictions[name] == y))[SUBSET])
    assert np.array_equal(e.correct("pgd5_sub", "subset"), clean[SUBSET] & (e.predictions["pgd5_sub"] == y[SUBSET]))
    assert np.array_equal(e.correct("clean"), clean)
    assert 0 < clean.sum() < 20  # the hand-made point set has both kinds
    assert 0 < e.correct("pgd3").sum() < clean.sum()  # and the attack fools some of the clean-correct ones
    # a point fooled on the clean input never counts as robust, even where the attack "fixes" it
    assert not (e.correct("pgd3") & ~clean).any()
    outcomes = robust_outcomes(e)
    assert set(outcomes) == {"clean", "fgsm", "pgd3", "cw3"}
    assert np.array_equal(outcomes["pgd3"], e.correct("pgd3"))
    assert set(robust_outcomes(e, "subset")) == set(e.names("subset"))


def test_subset_attacks_are_not_available_on_all_points(evaluation):
    with pytest.raises(ConfigError, match="points='all'") as info:
        evaluation.correct("pgd5_sub", "all")
    assert "subset" in str(info.value)
    with pytest.raises(ConfigError, match="attack='pgd99'"):
        evaluation.predicted("pgd99")
    with pytest.raises(ConfigError, match="points='half'"):
        evaluation.names("half")


def _same_evaluation(a: Evaluation, b: Evaluation) -> None:
    assert a.classes == b.classes and a.on_subset == b.on_subset
    assert np.array_equal(a.y, b.y) and np.array_equal(a.subset, b.subset)
    assert list(a.predictions) == list(b.predictions)
    for name in a.predictions:
        assert np.array_equal(a.predictions[name], b.predictions[name]), name
    specs = {n: v for n, v in a.attacks.items() if n != "clean"}  # from_json gives "clean" an empty entry
    assert specs == {n: v for n, v in b.attacks.items() if n != "clean"}
    assert a.warnings == b.warnings and a.seconds == b.seconds


def test_json_round_trip(evaluation):
    data = json.loads(json.dumps(evaluation.to_json(n_boot=50, seed=0)))
    assert data["schema"] == "advfair.evaluation/1"
    assert data["points"] == {"all": 20, "subset": 10}
    assert data["attacks"]["pgd5_sub"]["points"] == "subset" and data["attacks"]["pgd3"]["points"] == "all"
    assert data["outcomes"]["subset"] == SUBSET.tolist()
    back = Evaluation.from_json(data)
    _same_evaluation(back, evaluation)
    assert back.to_json(n_boot=50, seed=0) == data
    with pytest.raises(ConfigError, match="schema='advfair.evaluation/0'"):
        Evaluation.from_json({**data, "schema": "advfair.evaluation/0"})


def test_label_encoding():
    labels = np.array([0, 9, 10, 35, 36, 61, 3])
    code = encode_labels(labels)
    assert code == "09azAZ3"
    assert np.array_equal(decode_labels(code), labels)
    many = np.array([0, 61, 62, 99])  # more than 62 classes: a plain list
    assert encode_labels(many) == [0, 61, 62, 99]
    assert np.array_equal(decode_labels(encode_labels(many)), many)
    assert encode_labels(np.array([-1, 2])) == [-1, 2]
    assert encode_labels(np.array([], dtype=np.int64)) == "" and decode_labels("").shape == (0,)
    rng = np.random.default_rng(0)
    r = rng.integers(0, 62, 500)
    assert np.array_equal(decode_labels(json.loads(json.dumps(encode_labels(r)))), r)


def test_subset_report_is_the_all_points_report_restricted_to_the_subset(evaluation):
    e = evaluation
    sub = e.report("subset", n_boot=50, seed=3)
    assert sub["points"] == "subset" and set(sub["attacks"]) == set(e.names("subset"))
    y = e.y[SUBSET]
    preds = {n: e.predictions[n][SUBSET] for n in ("clean", "fgsm", "pgd3", "cw3")}
    restricted = classwise_report(y, preds, CLASSES, n_boot=50, seed=3)
    for name in preds:
        assert sub["attacks"][name] == restricted["attacks"][name], name
    assert sub["rank_agreement"]["fgsm|pgd3"] == restricted["rank_agreement"]["fgsm|pgd3"]
    full = e.report("all", n_boot=50, seed=3)
    assert full["points"] == "all" and "pgd5_sub" not in full["attacks"]
    assert full["n_per_class"] == np.bincount(e.y, minlength=10).tolist()


def test_a_subset_attack_is_the_attack_on_the_subset_points(evaluation, model, batch):
    x, y = batch
    plain = evaluate(model, Points.of(x[SUBSET], y[SUBSET], CLASSES),
                     _protocol().with_attacks({"pgd5": AttackSpec(steps=5, alpha=2 / 255)}))
    assert np.array_equal(plain.predictions["pgd5"], evaluation.predictions["pgd5_sub"])


def _zero_model() -> nn.Module:
    """Constant logits: zero input gradients, so a PGD-type attack stays at its random start."""
    model = nn.Sequential(nn.Flatten(), nn.Linear(48, 10))
    nn.init.zeros_(model[1].weight)
    return model


def test_every_pgd_type_attack_starts_from_the_same_seeded_points(tiny_batch):
    x, y = tiny_batch
    model = _zero_model()
    start = attacks.LinfThreat(EPS).random_init(x, torch.Generator().manual_seed(7))
    specs = [AttackSpec(steps=3, alpha=2 / 255), AttackSpec(steps=5, alpha=1 / 255, loss="cw"),
             AttackSpec(steps=2, alpha=2 / 255, temperature=0.5), AttackSpec(kind="mim", steps=3, alpha=2 / 255),
             AttackSpec(steps=2, alpha=2 / 255, loss="cw_hinge", restarts=1)]
    for spec in specs:
        x_adv, _ = spec.run(model, x, y, eps=EPS, seed=7, batch_size=16)
        assert torch.equal(x_adv, start), spec
    other, _ = specs[0].run(model, x, y, eps=EPS, seed=8, batch_size=16)
    assert not torch.equal(other, start)


def test_same_seed_same_evaluation(model, batch):
    linear_model = model
    x, y = batch
    points = Points.of(x, y, CLASSES, SUBSET)
    a = evaluate(linear_model, points, _protocol(seed=4))
    b = evaluate(linear_model, points, _protocol(seed=4))
    for name in a.predictions:
        assert np.array_equal(a.predictions[name], b.predictions[name]), name
    # the protocol's seed is the attacks' seed: the PGD points are those of AttackSpec.run with it
    x_adv, _ = AttackSpec(steps=3, alpha=2 / 255).run(linear_model, x, y, eps=EPS, seed=4, batch_size=5)
    assert np.array_equal(a.predictions["pgd3"], predict(linear_model, x_adv).numpy())


def test_a_view_is_attacked_and_the_served_model_predicts(model, batch):
    linear_model = model
    x, y = batch
    view = Negated(linear_model)
    spec = AttackSpec(steps=3, alpha=2 / 255)
    protocol = Protocol(EPS, {"pgd3": spec, "pgd3_view": dataclasses.replace(spec, view="neg")}, seed=1, batch_size=20)
    e = evaluate(linear_model, Points.of(x, y, CLASSES), protocol, views={"neg": view})
    x_view, _ = spec.run(view, x, y, eps=EPS, seed=1, batch_size=20)
    assert np.array_equal(e.predictions["pgd3_view"], predict(linear_model, x_view).numpy())  # the served model's
    assert not np.array_equal(e.predictions["pgd3_view"], predict(view, x_view).numpy())
    assert not np.array_equal(e.predictions["pgd3_view"], e.predictions["pgd3"])
    # attacking the negated logits helps the served model: weaker than attacking it directly
    assert e.correct("pgd3_view").sum() > e.correct("pgd3").sum()
    assert e.attacks["pgd3_view"]["view"] == "neg"


def test_unknown_view_is_an_error(linear_model, tiny_batch):
    x, y = tiny_batch
    protocol = Protocol(EPS, {"pgd3": AttackSpec(steps=3, view="surrogate")})
    with pytest.raises(ConfigError, match="view='surrogate'") as info:
        evaluate(linear_model, Points.of(x, y, CLASSES), protocol)
    assert "none given" in str(info.value)
    with pytest.raises(ConfigError, match="view='surrogate'") as info:
        evaluate(linear_model, Points.of(x, y, CLASSES), protocol, views={"neg": Negated(linear_model)})
    assert "'neg'" in str(info.value)


def test_autoattack_specs_and_their_warnings_reach_the_evaluation(model, batch, monkeypatch):
    linear_model = model
    x, y = batch
    calls = []

    def fake_autoattack(model, xs, ys, *, eps, version, batch_size, seed):
        calls.append((len(xs), version, eps, batch_size, seed))
        return xs.clone(), ["zero gradients"]

    monkeypatch.setattr(aa_module, "autoattack", fake_autoattack)
    protocol = Protocol(EPS, {"pgd3": AttackSpec(steps=3), "aa": AttackSpec(kind="autoattack", subset=True)},
                        seed=2, batch_size=7)
    e = evaluate(linear_model, Points.of(x, y, CLASSES, SUBSET), protocol)
    assert calls == [(10, "subset", EPS, 7, 2)]
    assert e.warnings == {"aa": ["zero gradients"]}  # attacks without warnings are left out
    assert np.array_equal(e.predicted("aa", "subset"), e.predicted("clean", "subset"))


@pytest.mark.parametrize("make, match", [
    (lambda: AttackSpec(kind="square"), "kind='square'"),
    (lambda: AttackSpec(steps=0), "steps=0"),
    (lambda: AttackSpec(alpha=-1.0), "alpha=-1.0"),
    (lambda: AttackSpec(loss="dlr"), "loss='dlr'"),
    (lambda: AttackSpec(temperature=0.0), "temperature=0.0"),
    (lambda: AttackSpec(t_rule="x"), "t_rule='x'"),
    (lambda: AttackSpec(restarts=0), "restarts=0"),
    (lambda: AttackSpec(kind="autoattack", version="fast"), "version='fast'"),
    (lambda: Protocol(0.0, {}), "eps=0.0"),
    (lambda: Protocol(EPS, {"clean": AttackSpec()}), "attacks='clean'"),
    (lambda: Protocol(EPS, {}, seed=-1), "seed=-1"),
    (lambda: Protocol(EPS, {}, batch_size=0), "batch_size=0"),
    (lambda: Protocol(EPS, {}, n_boot=0), "n_boot=0"),
])
def test_bad_specs_and_protocols(make, match):
    with pytest.raises(ConfigError, match=match):
        make()


def test_protocol_copies_its_attacks_and_points_default_to_all():
    suite = standard_attacks(steps=2, alpha=0.01, autoattack=None)
    protocol = Protocol(EPS, suite)
    suite["extra"] = AttackSpec()
    assert "extra" not in protocol.attacks
    assert list(protocol.with_attacks({"pgd2": suite["pgd2"]}).attacks) == ["pgd2"]
    points = Points.of(torch.zeros(3, 1), torch.tensor([0, 1, 0]), ["a", "b"])
    assert points.subset.tolist() == [0, 1, 2] and points.classes == ("a", "b")


def test_side_heads_are_recorded_on_the_same_points_and_survive_json(model, batch):
    x, y = batch
    side = Negated(model)
    e = evaluate(model, Points.of(x, y, CLASSES, SUBSET), _protocol(), side={"neg": side})
    assert set(e.side["neg"]) == set(e.predictions)
    assert np.array_equal(e.side["neg"]["clean"], predict(side, x).numpy())
    x_adv, _ = _protocol().attacks["pgd3"].run(model, x, y, eps=EPS, seed=0, batch_size=5)
    assert np.array_equal(e.side["neg"]["pgd3"], predict(side, x_adv).numpy())
    assert len(e.side["neg"]["pgd5_sub"]) == len(SUBSET)
    back = Evaluation.from_json(json.loads(json.dumps(e.to_json(n_boot=20))))
    assert all(np.array_equal(back.side["neg"][k], v) for k, v in e.side["neg"].items())


def test_early_stop_off_runs_every_step_and_nll_ascends_minus_the_output(model, batch):
    x, y = batch
    stop, full = AttackSpec(steps=4, alpha=2 / 255), AttackSpec(steps=4, alpha=2 / 255, early_stop=False)
    x_stop, _ = stop.run(model, x, y, eps=EPS, seed=3, batch_size=20)
    x_full, _ = full.run(model, x, y, eps=EPS, seed=3, batch_size=20)
    fooled = predict(model, x_stop) != y
    assert fooled.any() and not torch.equal(x_stop[fooled], x_full[fooled])  # fooled points kept on moving
    log_probs = nn.Sequential(model, nn.LogSoftmax(dim=1))
    nll = AttackSpec(steps=4, alpha=2 / 255, loss="nll")
    x_nll, _ = nll.run(log_probs, x, y, eps=EPS, seed=3, batch_size=20)
    assert torch.allclose(x_nll, x_stop)  # CE(z, y) = -log softmax(z)_y: the same ascent


def test_square_is_a_black_box_autoattack_version_with_a_query_budget(model, batch, monkeypatch):
    calls = []

    def fake(model, x, y, **kw):
        calls.append(kw)
        return x.clone(), []

    monkeypatch.setattr(aa_module, "autoattack", fake)
    x, y = batch
    spec = AttackSpec(kind="autoattack", version="square", steps=300)
    spec.run(model, x, y, eps=EPS, seed=2, batch_size=20)
    assert calls[-1]["version"] == "square" and calls[-1]["queries"] == 300
    AttackSpec(kind="autoattack", version="subset").run(model, x, y, eps=EPS, seed=2, batch_size=20)
    assert "queries" not in calls[-1]
    with pytest.raises(ConfigError, match="version='squares'"):
        AttackSpec(kind="autoattack", version="squares")


def test_smoke_autoattack_runs_the_subset_attacks_at_steps_iterations(model, batch, monkeypatch):
    """A --smoke run's AutoAttack: APGD-CE + APGD-T with `steps` iterations and the step-size schedule APGD's
    constructor derives from them (set beside n_iter, or the schedule of 100 iterations would remain)."""
    from advfair.autoattack import _adversary

    x, _ = batch
    smoke = _adversary(model, x, eps=EPS, version="smoke", seed=0, queries=1, iterations=10)
    subset = _adversary(model, x, eps=EPS, version="subset", seed=0, queries=1, iterations=10)
    assert smoke.attacks_to_run == subset.attacks_to_run == ["apgd-ce", "apgd-t"]
    for attack in (smoke.apgd, smoke.apgd_targeted):
        assert (attack.n_iter, attack.n_iter_2, attack.n_iter_min, attack.size_decr) == (10, 2, 1, 1)
    assert subset.apgd.n_iter == subset.apgd_targeted.n_iter == 100  # the subset keeps AutoAttack's own
    calls = []
    monkeypatch.setattr(aa_module, "autoattack", lambda model, x, y, **kw: calls.append(kw) or (x.clone(), []))
    AttackSpec(kind="autoattack", version="smoke", steps=7).run(model, *batch, eps=EPS, seed=2, batch_size=20)
    assert calls[-1]["version"] == "smoke" and calls[-1]["iterations"] == 7


def test_worst_case_is_robust_under_every_attack(evaluation):
    both = evaluation.worst_case(["pgd3", "cw3"])
    assert np.array_equal(both, evaluation.correct("pgd3") & evaluation.correct("cw3"))
    assert np.array_equal(evaluation.worst_case(["pgd5_sub", "pgd3"], "subset"),
                          evaluation.correct("pgd5_sub", "subset") & evaluation.correct("pgd3", "subset"))
    with pytest.raises(ConfigError, match="attacks"):
        evaluation.worst_case([])


def test_restarts_of_a_view_attack_follow_the_served_prediction(model, batch, monkeypatch):
    """A restart attacks again the points the *served* model still gets right, not those the view does."""
    x, y = batch
    seen = []
    real = attacks._run_pgd

    def spy(m, xr, yr, rows, *args):
        seen.append(rows.clone())
        return real(m, xr, yr, rows, *args)

    monkeypatch.setattr(attacks, "_run_pgd", spy)
    view = Negated(model)
    spec = AttackSpec(steps=2, alpha=2 / 255, restarts=2, view="neg", early_stop=False)
    spec.run(view, x, y, eps=EPS, seed=0, batch_size=20, judge=model)
    first_pass = attacks.pgd(view, x, y, eps=EPS, alpha=2 / 255, steps=2, early_stop=False,
                             generator=torch.Generator().manual_seed(0), fold_bn=True)
    still_right = torch.nonzero(predict(model, first_pass) == y).flatten()
    assert torch.equal(seen[1], still_right)  # the served model's survivors, not the view's
    view_right = torch.nonzero(predict(view, first_pass) == y).flatten()
    assert not torch.equal(still_right, view_right)


def test_evaluation_progress_names_the_model_and_each_attack(model, batch, capsys):
    x, y = batch
    points = Points.of(x, y, CLASSES, SUBSET)
    quiet = evaluate(model, points, _protocol())
    assert capsys.readouterr().err == ""
    loud = evaluate(model, points, _protocol(), progress=True, label="evaluate at_fc")
    err = capsys.readouterr().err
    assert "evaluate at_fc" in err and all(name in err for name in _protocol().attacks)
    assert quiet.predictions.keys() == loud.predictions.keys()
    assert all(np.array_equal(quiet.predictions[k], loud.predictions[k]) for k in quiet.predictions)
