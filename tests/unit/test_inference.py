"""advfair.inference: the logit wrappers, inference specs as data, deploy() and the JSON round trip."""
from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from advfair.inference import (Bias, ClassScale, LogitBias, LogitScale, PosthocShift, Scale, class_bias, deploy, posthoc,
                               rescaling, spec_from_json, spec_label, spec_to_json, weight_normalisation)
from advfair.models import log_prior
from advfair.validation import ConfigError


class Identity(nn.Module):
    """A "model" whose logits are its inputs: specs applied to hand-written logits."""

    def forward(self, x):
        return x


# ---------------------------------------------------------------------------------------------------------------
# The wrappers (moved from advfair.models)

def test_logit_scale_multiplies_and_rejects_bad_factors():
    z = torch.tensor([[1.0, -2.0, 0.5]])
    assert torch.equal(LogitScale(Identity(), 4.0)(z), 4.0 * z)
    for bad in (0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ConfigError, match="factor="):
            LogitScale(Identity(), bad)


# ---------------------------------------------------------------------------------------------------------------
# Specs and deploy()

def test_deploy_of_the_empty_spec_serves_the_model_itself_in_eval_mode():
    model = nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2)).train()
    served = deploy(model)
    assert served is model and not model.training
    model.train()
    assert deploy(model, ()) is model and not model.training
    assert deploy(model, class_bias(2, 0, 0.0)) is model  # b = 0 adds no step


def test_deploy_applies_the_steps_in_order_in_eval_mode():
    counts = [100, 10]
    z = torch.tensor([[0.2, 0.5]])
    base = Identity().train()
    served = deploy(base, (Scale(10.0), PosthocShift(1.0, (100, 10))))
    assert not served.training and not base.training
    assert isinstance(served, LogitBias) and isinstance(served.model, LogitScale) and served.model.model is base
    # RoBal Eq. 11: 10 z - log pi = [2, 5] - [log(100/110), log(10/110)]
    assert torch.allclose(served(z), torch.tensor([[2.0953, 7.3979]]), atol=1e-4)
    assert torch.allclose(served(z), 10 * z - log_prior(counts))
    # the other order shifts first, then scales the shift too
    reverse = deploy(Identity(), (PosthocShift(1.0, (100, 10)), Scale(10.0)))
    assert torch.allclose(reverse(z), 10 * (z - log_prior(counts)))
    with pytest.raises(ConfigError, match="spec="):
        deploy(Identity(), ("scale",))


def test_posthoc_leaves_identity_steps_out():
    counts = [100, 10]
    assert posthoc(counts, 0.0) == ()
    assert posthoc(counts, 0.0, 10.0) == (Scale(10.0),)
    assert posthoc(counts, 0.5) == (PosthocShift(0.5, (100, 10)),)
    assert posthoc(torch.tensor(counts), 1.0, 10.0) == (Scale(10.0), PosthocShift(1.0, (100, 10)))
    with pytest.raises(ConfigError, match="tau_p=nan"):
        posthoc(counts, float("nan"))
    with pytest.raises(ConfigError, match="counts="):
        posthoc([10, 0], 1.0)


def test_fact8_training_adds_and_inference_subtracts_the_prior():
    from advfair.objectives.logit_adjusted import logit_adjusted

    n, z = [100, 10], torch.zeros(1, 2)
    prior = log_prior(n)
    assert prior[0] > prior[1]
    trained = logit_adjusted(z, n, tau=1.0)
    inferred = deploy(Identity(), posthoc(n, 1.0))(z)
    assert torch.allclose(trained, z + prior) and torch.allclose(inferred, z - prior)
    assert inferred[0, 1] > inferred[0, 0]  # at inference the shift favours the tail


def test_class_bias():
    assert class_bias(4, 2, 0) == () and class_bias(4, 2, 0.0) == ()
    assert class_bias(4, 2, 1.5) == (Bias((0.0, 0.0, 1.5, 0.0)),)
    z = torch.zeros(1, 4)
    assert torch.equal(deploy(Identity(), class_bias(4, 2, 1.5))(z), torch.tensor([[0.0, 0.0, 1.5, 0.0]]))
    for bad in (4, -1, 1.5):
        with pytest.raises(ConfigError, match="target="):
            class_bias(4, bad, 1.0)


def test_fact_class_bias_zero_is_identity_and_positive_b_only_moves_predictions_to_the_class():
    torch.manual_seed(0)
    base = nn.Sequential(nn.Linear(12, 4))
    x = torch.randn(400, 12)
    k = 1
    with torch.no_grad():
        before = base(x).argmax(1)
        assert torch.equal(deploy(base, class_bias(4, k, 0.0))(x), base(x))
        for b in (0.3, 1.0, 3.0):
            after = deploy(base, class_bias(4, k, b))(x).argmax(1)
            changed = before != after
            assert changed.any(), "the test needs some predictions to change"
            assert (after[changed] == k).all() and not (before[changed] == k).any()
            assert ((before == k) <= (after == k)).all()


@pytest.mark.parametrize("bad, match", [
    (lambda: Scale(0.0), "factor=0.0"), (lambda: Scale(-2), "factor=-2"),
    (lambda: Bias((0.0, float("nan"))), "bias=nan"), (lambda: PosthocShift(float("inf"), (2, 1)), "tau_p=inf"),
    (lambda: PosthocShift(1.0, (2, 0)), "counts="),
])
def test_bad_steps(bad, match):
    with pytest.raises(ConfigError, match=match):
        bad()


def test_spec_json_round_trip():
    spec = (Scale(0.001), Bias((0.0, 2.0, -0.5)), PosthocShift(0.25, (50, 20, 5)))
    data = spec_to_json(spec)
    assert data == [{"kind": "scale", "factor": 0.001}, {"kind": "bias", "values": [0.0, 2.0, -0.5]},
                    {"kind": "posthoc_shift", "tau_p": 0.25, "counts": [50, 20, 5]}]
    back = spec_from_json(json.loads(json.dumps(data)))
    assert back == spec
    z = torch.randn(5, 3)
    assert torch.equal(deploy(Identity(), back)(z), deploy(Identity(), spec)(z))
    assert spec_to_json(()) == [] and spec_from_json([]) == ()
    with pytest.raises(ConfigError, match="kind='temperature'"):
        spec_from_json([{"kind": "temperature", "t": 2}])


def test_spec_label():
    assert spec_label(()) == "z"
    assert spec_label(posthoc([100, 10], 0.1, 10.0)) == "10·z − 0.1·log π"
    assert spec_label((Scale(0.001),)) == "0.001·z"
    assert spec_label(class_bias(3, 1, 2.0)) == "z +2·1[c=1]"
    assert spec_label((Bias((0.0, 0.0)),)) == "z"
    assert spec_label((PosthocShift(0.0, (2, 1)),)) == "z"
    assert spec_label((Scale(2.0),), z="f(x)") == "2·f(x)"
    assert spec_label(posthoc([3, 2, 1], 1.5)) == "z − 1.5·log π"


def test_class_scale_multiplies_each_class_and_rejects_bad_factors():
    z = torch.tensor([[1.0, -2.0, 0.5]])
    step = ClassScale((2.0, 0.5, 1.0), "n_c^−1")
    assert torch.equal(deploy(Identity(), (step,))(z), torch.tensor([[2.0, -1.0, 0.5]]))
    assert spec_label((step,)) == "n_c^−1·z"
    assert spec_label((Bias((1.0, 0.0, 0.0), "− b"), step)) == "n_c^−1·(z − b)"
    for bad in (0.0, -1.0, float("nan")):
        with pytest.raises(ConfigError, match="factors="):
            ClassScale((1.0, bad))


def test_rescaling_divides_each_logit_by_its_class_count_to_the_tau():
    counts = [1000, 20]
    assert rescaling(counts, 0.0) == ()
    (step,) = rescaling(counts, 0.3)
    z = torch.tensor([[3.0, 1.0]])
    assert torch.allclose(deploy(Identity(), (step,))(z), z / torch.tensor([1000.0, 20.0]) ** 0.3)
    assert spec_label((step,)) == "n_c^−0.3·z"
    # a class-dependent temperature: it moves a close call from the head to the tail
    assert deploy(Identity(), (step,))(torch.tensor([[1.2, 1.0]])).argmax(1).item() == 1
    with pytest.raises(ConfigError, match="counts="):
        rescaling([10, 0], 0.3)


def test_weight_normalisation_is_the_bias_free_head_over_its_weight_norms():
    torch.manual_seed(0)
    head = nn.Linear(6, 3)
    f = torch.randn(4, 6)
    for tau in (1.0, 2.0):
        served = deploy(head, weight_normalisation(head.weight, head.bias, tau))
        w = head.weight / head.weight.norm(dim=1, keepdim=True) ** tau
        assert torch.allclose(served(f), f @ w.t(), atol=1e-6)  # W_c / ||W_c||^tau, no bias (released code)
    assert spec_label(weight_normalisation(head.weight, head.bias, 1.0)) == "‖W_c‖^−1·(z − b)"
    bias_free = nn.Linear(6, 3, bias=False)
    assert [type(s) for s in weight_normalisation(bias_free.weight, None, 1.0)] == [ClassScale]
    assert weight_normalisation(bias_free.weight, None, 0.0) == ()
    with torch.no_grad():
        bias_free.weight[1] = 0
    with pytest.raises(ConfigError, match="weight="):
        weight_normalisation(bias_free.weight, None, 1.0)


def test_named_steps_round_trip_and_unnamed_ones_write_no_name():
    spec = (Bias((0.5, -0.5), "− b"), ClassScale((0.25, 4.0), "‖W_c‖^−1"))
    data = spec_to_json(spec)
    assert data == [{"kind": "bias", "values": [0.5, -0.5], "name": "− b"},
                    {"kind": "class_scale", "factors": [0.25, 4.0], "name": "‖W_c‖^−1"}]
    assert spec_from_json(json.loads(json.dumps(data))) == spec
    assert spec_to_json((Bias((1.0, 0.0)),)) == [{"kind": "bias", "values": [1.0, 0.0]}]  # as results have it
