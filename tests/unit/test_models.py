"""advfair.models: shapes of every architecture, normalisation inside, cosine head, BatchNorm folding
(the logit bias and scale wrappers are tested with the inference specs in test_inference.py)."""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from advfair.inference import LogitBias
from advfair.models import (DATASET_STATS, MODELS, Classifier, CosineHead, LinearHead, Normalize, build_model,
                            cifar10_small_cnn, eval_mode, for_attacks, unwrap)
from advfair.validation import ConfigError


@pytest.mark.parametrize("name, head", [("small_cnn", "linear"), ("small_cnn", "cosine"),
                                        ("preact_resnet18", "linear"), ("preact_resnet18", "cosine"),
                                        ("wrn34_10", "linear")])
def test_every_model_maps_images_to_logits(name, head):
    hw = 8
    torch.manual_seed(0)
    model = build_model(name, dataset="cifar10", num_classes=7, in_channels=3, width=4, head=head).eval()
    x = torch.rand(2, 3, hw, hw)
    with torch.no_grad():
        z = model(x)
        f = model.features(x)
    assert z.shape == (2, 7) and z.dtype == torch.float32
    assert torch.isfinite(z).all()
    assert f.ndim == 2 and f.shape[0] == 2
    expected_features = {"small_cnn": 16, "preact_resnet18": 512, "wrn34_10": 640}[name]
    assert f.shape[1] == expected_features
    assert isinstance(model.head, LinearHead if head == "linear" else CosineHead)


def test_mnist_single_channel():
    model = build_model("small_cnn", dataset="mnist", num_classes=10, in_channels=1, width=4).eval()
    with torch.no_grad():
        assert model(torch.rand(3, 1, 28, 28)).shape == (3, 10)
    assert model.normalize.mean.shape == (1, 1, 1, 1)


def test_normalisation_is_inside_the_model():
    torch.manual_seed(0)
    model = build_model("small_cnn", dataset="cifar10", num_classes=10, in_channels=3, width=4).eval()
    x = torch.rand(2, 3, 8, 8)
    mean = torch.tensor([0.4914, 0.4822, 0.4465]).view(1, 3, 1, 1)
    std = torch.tensor([0.2470, 0.2435, 0.2616]).view(1, 3, 1, 1)
    with torch.no_grad():
        expected = model.head(model.body((x - mean) / std))
        assert torch.allclose(model(x), expected, atol=1e-6)
        # and not the same as feeding the raw input to the body
        assert not torch.allclose(model(x), model.head(model.body(x)), atol=1e-3)
    assert Normalize(*DATASET_STATS["cifar10"])(torch.full((1, 3, 1, 1), 0.4914))[0, 0].item() == pytest.approx(0.0,
                                                                                                            abs=1e-6)
    # the statistics are buffers: saved with the weights, moved with the model
    assert {"normalize.mean", "normalize.std"} <= set(model.state_dict())


def test_build_model_rejects_bad_names():
    with pytest.raises(ConfigError, match="model='vgg'"):
        build_model("vgg", dataset="cifar10", num_classes=10, in_channels=3)
    with pytest.raises(ConfigError, match="head='mlp'"):
        build_model("small_cnn", dataset="cifar10", num_classes=10, in_channels=3, head="mlp")
    with pytest.raises(ConfigError, match="width=0"):
        build_model("small_cnn", dataset="cifar10", num_classes=10, in_channels=3, width=0)
    assert set(MODELS) == {"small_cnn", "preact_resnet18", "wrn34_10", "bottleneck18", "preact18", "mobilenet_v2", "mnist_cnn"}


@pytest.mark.parametrize("c", [1e-3, 0.5, 3.0, 1e3])
def test_cosine_head_is_invariant_to_feature_scale(c):
    torch.manual_seed(0)
    head = CosineHead(6, 4, scale=10.0, gamma=0.0)
    f = torch.randn(5, 6)
    assert torch.allclose(head(c * f), head(f), atol=1e-5)


def test_cosine_head_hand_values():
    head = CosineHead(2, 2, scale=10.0)
    with torch.no_grad():
        head.weight.copy_(torch.tensor([[3.0, 4.0], [0.0, -2.0]]))
    f = torch.tensor([[1.0, 1.0]])
    s = 1 / math.sqrt(2)
    expected = 10 * torch.tensor([[(3 * s + 4 * s) / 5, -s]])
    assert torch.allclose(head(f), expected, atol=1e-5)
    head.gamma = 1.0  # ||W_i|| + gamma in the denominator
    expected = 10 * torch.tensor([[(3 * s + 4 * s) / 6, -2 * s / 3]])
    assert torch.allclose(head(f), expected, atol=1e-5)


def test_cosine_model_ignores_feature_scale():
    """Scaling the last body layer's output scales the features; the cosine model's logits do not change."""
    torch.manual_seed(0)
    body = nn.Sequential(nn.Flatten(), nn.Linear(12, 5))
    model = Classifier(Normalize((0.5,), (0.25,)), body, CosineHead(5, 3, scale=4.0)).eval()
    x = torch.rand(4, 1, 3, 4)
    before = model(x).detach()
    with torch.no_grad():
        body[1].weight.mul_(7.0)
        body[1].bias.mul_(7.0)
    assert torch.allclose(model(x), before, atol=1e-5)


def test_cifar10_small_cnn_factory():
    torch.manual_seed(0)
    model = cifar10_small_cnn(width=4)
    assert isinstance(model, Classifier) and model.head.out_features == 10
    assert model.body[0].in_channels == 3 and model.body[0].out_channels == 4
    assert torch.equal(model.normalize.mean.flatten(), torch.tensor(DATASET_STATS["cifar10"][0]))
    assert cifar10_small_cnn().body[0].out_channels == 16  # the book's CPU width by default


def _trained_bn(model: nn.Module) -> nn.Module:
    """Give every BatchNorm non-trivial running statistics and affine parameters."""
    g = torch.Generator().manual_seed(3)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.bias.data.copy_(torch.randn(m.num_features, generator=g) * 0.1)
    return model


def test_for_attacks_folds_batchnorm_into_an_equal_frozen_copy():
    torch.manual_seed(0)
    model = _trained_bn(build_model("small_cnn", dataset="cifar10", num_classes=10, in_channels=3, width=4))
    model.train()
    folded = for_attacks(LogitBias(model, torch.arange(10.0)))
    assert not any(isinstance(m, nn.BatchNorm2d) for m in folded.modules())
    assert not folded.training and not any(p.requires_grad for p in folded.parameters())
    # the original keeps its BatchNorms, its mode and its trainable parameters
    assert sum(isinstance(m, nn.BatchNorm2d) for m in model.modules()) == 6
    assert model.training and all(p.requires_grad for p in model.parameters())
    x = torch.rand(5, 3, 16, 16)
    with torch.no_grad():
        expected = LogitBias(model, torch.arange(10.0)).eval()(x)
        assert torch.allclose(folded(x), expected, atol=1e-5, rtol=1e-5)


def test_for_attacks_returns_a_model_without_conv_bn_pairs_as_it_is():
    model = build_model("preact_resnet18", dataset="cifar10", num_classes=10, in_channels=3)
    assert for_attacks(model) is model


@pytest.mark.parametrize("name, params", [("preact_resnet18", 11_172_170), ("wrn34_10", 46_160_474)])
def test_paper_architectures_have_their_published_sizes(name, params):
    """PreAct ResNet-18 (11.17M) and WRN-34-10 (46.16M, as in TRADES and RoBal) with a 10-class linear head."""
    model = build_model(name, dataset="cifar10", num_classes=10, in_channels=3)
    assert sum(p.numel() for p in model.parameters()) == params


@pytest.mark.parametrize("training", [True, False])
def test_eval_mode_restores_the_mode_it_found_also_on_an_error(training):
    model = cifar10_small_cnn(4).train(training)
    with eval_mode(model) as inside:
        assert inside is model and not model.training
    assert model.training is training
    with pytest.raises(RuntimeError), eval_mode(model):
        raise RuntimeError("inside")
    assert model.training is training


def test_edit_features_changes_the_penultimate_layer_inside_the_forward():
    model, x = cifar10_small_cnn(4).eval(), torch.rand(3, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(model(x, edit_features=lambda h: h), model(x))
        assert torch.equal(model(x, edit_features=torch.zeros_like), model.head(torch.zeros_like(model.features(x))))


def test_unwrap_takes_the_module_out_of_a_data_parallel_wrapper():
    model = cifar10_small_cnn(4)
    assert unwrap(torch.nn.DataParallel(model)) is model
    assert unwrap(model) is model
