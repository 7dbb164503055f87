"""DAFA (Lee et al., ICLR 2024): the facts of the spec's §8 that need no official code."""
import pytest
import torch

from advfair.validation import ConfigError
from advfair.methods import catalogue
from advfair.objectives import make_objective
from advfair.objectives.dafa import class_weights, classwise_inner_max
from advfair.objectives.trades import trades_inner_max, trades_loss
from advfair.trainer import TrainConfig, train

S = torch.tensor([[0.5, 0.3, 0.2], [0.2, 0.7, 0.1], [0.1, 0.1, 0.8]])
EPS, ALPHA = 8 / 255, 2 / 255


def test_hand_example_rules_and_ties() -> None:
    assert class_weights(S, 1).tolist() == pytest.approx([1.37, 0.87, 0.76])
    assert class_weights(S, 1.5).tolist() == pytest.approx([1.555, 0.805, 0.64])
    assert class_weights(S, 1, "prefix").tolist() == pytest.approx([1.37, 0.98, 0.88])
    assert class_weights(torch.tensor([[0.6, 0.4], [0.4, 0.6]]), 1).tolist() == pytest.approx([0.76, 0.76])
    assert class_weights(torch.full((10, 10), 0.1), 1).tolist() == pytest.approx([0.91] * 10)
    assert class_weights(S, 0).tolist() == [1.0, 1.0, 1.0]


def test_head_rule_is_zero_sum_and_bounded() -> None:
    s = torch.softmax(torch.randn(10, 10, generator=torch.Generator().manual_seed(0)) * 2, dim=1)
    w, d = class_weights(s, 1.0), s.diagonal().double()
    assert float(w.sum()) == pytest.approx(10, abs=1e-12)
    assert float(class_weights(s, 1.0, "prefix").sum()) != pytest.approx(10, abs=1e-6)
    assert w[d.argmin()] >= 1 >= w[d.argmax()]
    assert (w <= 1 + (1 - d) + 1e-12).all()


def test_classwise_ball(linear_model, tiny_batch) -> None:
    x, y = tiny_batch
    w = torch.tensor([1.3, 0.8, 1.0, 1.6, 0.5, 1.1, 0.9, 1.2, 0.7, 1.4])[y]
    torch.manual_seed(0)
    x_adv = classwise_inner_max(linear_model, x, w, eps=EPS, alpha=ALPHA, steps=10)
    reach = (x_adv - x).abs().flatten(1).max(1).values
    assert (reach <= w * EPS + 1e-6).all() and x_adv.min() >= 0 and x_adv.max() <= 1
    torch.manual_seed(0)
    ones = classwise_inner_max(linear_model, x, torch.ones(len(y)), eps=EPS, alpha=ALPHA, steps=3)
    torch.manual_seed(0)
    assert torch.equal(ones, trades_inner_max(linear_model, x, y, eps=EPS, alpha=ALPHA, steps=3))


def test_warm_up_is_trades_then_weights_from_epoch_warmup(linear_model, tiny_batch) -> None:
    x, y = tiny_batch
    dafa = make_objective("dafa", eps=EPS, alpha=ALPHA, steps=2, num_classes=10, dafa_warmup=2)
    dafa.start_epoch(0)
    torch.manual_seed(1)
    got = dafa(linear_model, x, y)
    torch.manual_seed(1)
    assert torch.equal(got, trades_loss(linear_model, x, y, eps=EPS, alpha=ALPHA, steps=2))
    assert float(dafa.sums.sum()) == 0  # the similarity is taken in epoch `warmup` only
    images = torch.randint(0, 256, (40, 3, 4, 4), dtype=torch.uint8, generator=torch.Generator().manual_seed(2))
    labels = torch.arange(40) % 10  # every class in the similarity epoch
    history = train(linear_model, dafa, images, labels, TrainConfig(epochs=3, batch_size=16, augment=False))
    similarity = torch.tensor(history[1]["dafa_similarity"])
    assert similarity.sum(1).tolist() == pytest.approx([1.0] * 10)
    assert history[1]["dafa_weights"] == pytest.approx(class_weights(similarity, 1.0).tolist())
    assert "dafa_weights" not in history[0] and "dafa_weights" not in history[2]


def test_bad_fields_are_named() -> None:
    attack = {"eps": EPS, "alpha": ALPHA, "steps": 2, "num_classes": 3}
    for field, value in {"dafa_lambda": -1, "dafa_warmup": 0, "dafa_weight_rule": "algorithm2"}.items():
        with pytest.raises(ConfigError, match=field):
            make_objective("dafa", **{"dafa_warmup": 1, **attack, field: value})
    with pytest.raises(ConfigError, match="dafa_warmup"):
        catalogue.objective("trades_dafa", eps=EPS, alpha=ALPHA, steps=2, num_classes=3, epochs=5, dafa_warmup=5)
    dafa = make_objective("dafa", dafa_warmup=1, dafa_lambda=20.0, **attack)
    dafa.sums = torch.cat([S.double(), torch.ones(3, 1)], 1)
    with pytest.raises(ConfigError, match="dafa_lambda"):
        dafa.end_epoch(0)
    dafa.sums[1] = 0
    with pytest.raises(ConfigError, match="class 1 had no sample"):
        dafa.end_epoch(0)
