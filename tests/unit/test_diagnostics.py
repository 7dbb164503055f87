"""advfair.evaluation.diagnostics: each runs the model in eval mode and restores the mode it found."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from advfair.evaluation import feature_norm_ratio, mean_logit_margin, zero_gradient_fraction
from advfair.models import build_model


@pytest.fixture
def bn_model():
    """A small CNN whose BatchNorm running statistics differ from the batch statistics: train and eval mode
    give different logits, so a diagnostic run in the wrong mode is visible."""
    torch.manual_seed(0)
    model = build_model("small_cnn", dataset="cifar10", num_classes=10, in_channels=3, width=4)
    with torch.no_grad():
        model.train()(torch.rand(32, 3, 8, 8) * 0.3)  # move the running statistics away from N(0, 1)
    return model


@pytest.fixture
def points():
    g = torch.Generator().manual_seed(1)
    return torch.rand(10, 3, 8, 8, generator=g), torch.arange(10)


def _stats(model):
    return [t.clone() for name, t in model.state_dict().items() if "running" in name]


DIAGNOSTICS = {
    "mean_logit_margin": lambda m, x, y: mean_logit_margin(m, x, y, batch_size=4),
    "zero_gradient_fraction": lambda m, x, y: zero_gradient_fraction(m, x, y, temperature=0.5, batch_size=4),
    "feature_norm_ratio": lambda m, x, y: feature_norm_ratio(m, x, (x + 0.05).clamp(0, 1), batch_size=4),
}


@pytest.mark.parametrize("name", list(DIAGNOSTICS))
@pytest.mark.parametrize("training", [True, False])
def test_diagnostics_restore_the_mode_and_run_in_eval_mode(bn_model, points, name, training):
    x, y = points
    fn = DIAGNOSTICS[name]
    expected = np.asarray(fn(bn_model.eval(), x, y))  # the value in eval mode
    before = _stats(bn_model)
    bn_model.train(training)
    value = np.asarray(fn(bn_model, x, y))
    assert bn_model.training is training
    assert np.allclose(value, expected, rtol=1e-6, atol=1e-7)
    assert all(torch.equal(a, b) for a, b in zip(before, _stats(bn_model)))  # no train-mode pass ran


def test_margin_differs_between_modes(bn_model, points):
    """The check above can fail: in train mode (batch statistics) the logits are other numbers."""
    x, _ = points
    with torch.no_grad():
        z_train, z_eval = bn_model.train()(x), bn_model.eval()(x)
    assert not torch.allclose(z_train, z_eval, atol=1e-3)
    assert all(p.requires_grad for p in bn_model.parameters())


def test_diagnostics_restore_mode_after_an_exception(bn_model):
    bn_model.train()
    with pytest.raises(RuntimeError):
        mean_logit_margin(bn_model, torch.rand(2, 5), torch.tensor([0, 1]))  # wrong input shape
    assert bn_model.training
    bn_model.eval()
    with pytest.raises(RuntimeError):
        zero_gradient_fraction(bn_model, torch.rand(2, 5), torch.tensor([0, 1]))
    assert not bn_model.training
