"""Classifiers on inputs in [0, 1]: normalisation inside the model, a feature extractor and a swappable head."""
from __future__ import annotations

import contextlib
import copy
from collections.abc import Callable, Iterator, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from .mobilenet import mobilenet_v2_body
from .validation import check_bool, check_choice, check_counts, check_positive

# "bottleneck18" is the "ResNet-18" of DUCAT's official code (ResNet(Bottleneck, [2, 2, 2, 2]), 2048-d
# features, not the BasicBlock ResNet-18); "preact18" is another name for PreAct ResNet-18 (`canonical_model`
# resolves it); "mobilenet_v2" is ABSLD's second student; "mnist_cnn" the AALP spec's MNIST CNN.
MODELS = ("small_cnn", "preact_resnet18", "wrn34_10", "bottleneck18", "preact18", "mobilenet_v2", "mnist_cnn")
MODEL_ALIASES = {"preact18": "preact_resnet18"}
# Each network body's cache version, in its models' keys: bump one when a change to that body (layers,
# initialisation) alters what it trains to.
BODY_VERSIONS = {"small_cnn": 1, "preact_resnet18": 1, "wrn34_10": 1, "bottleneck18": 1, "mobilenet_v2": 1,
                 "mnist_cnn": 1}
ClassCounts = Sequence[int] | torch.Tensor  # training images per class, class 0 first
HEADS = ("linear", "cosine")

# Per-channel statistics of the training sets, used by the normalisation layer inside each model.
DATASET_STATS = {
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    "cifar100": ((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)),
    "svhn": ((0.4377, 0.4438, 0.4728), (0.1980, 0.2010, 0.1970)),
    "mnist": ((0.1307,), (0.3081,)),
}


class Normalize(nn.Module):
    def __init__(self, mean: tuple[float, ...], std: tuple[float, ...]):
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


class LinearHead(nn.Linear):
    """z = W f + b."""


class CosineHead(nn.Module):
    """z_i = scale * <W_i / (||W_i|| + gamma), f / ||f||>: invariant to the scale of the features."""

    def __init__(self, in_features: int, num_classes: int, *, scale: float = 1.0, gamma: float = 0.0):
        super().__init__()
        bound = in_features ** -0.5
        self.weight = nn.Parameter(torch.empty(num_classes, in_features).uniform_(-bound, bound))
        self.scale = scale
        self.gamma = gamma

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        f = F.normalize(features, dim=1)
        w = self.weight / (self.weight.norm(dim=1, keepdim=True) + self.gamma)
        return self.scale * f @ w.t()


class Classifier(nn.Module):
    """normalise -> features -> head. `features(x)` exposes the penultimate layer; `edit_features` changes it
    inside the forward (a training-time intervention such as Guided Dropout), so that a data-parallel wrapper,
    which synchronises gradients only through its own forward, still sees the whole computation."""

    def __init__(self, normalize: Normalize, body: nn.Module, head: nn.Module):
        super().__init__()
        self.normalize = normalize
        self.body = body
        self.head = head

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(self.normalize(x))

    def forward(self, x: torch.Tensor, edit_features: Callable[[torch.Tensor], torch.Tensor] | None = None
                ) -> torch.Tensor:
        h = self.features(x)
        return self.head(h if edit_features is None else edit_features(h))


def unwrap(model: nn.Module) -> nn.Module:
    """The module a data-parallel wrapper (DistributedDataParallel, DataParallel) trains, else the model itself.
    Attacks run on it (input gradients need no synchronisation), and heads are read on it."""
    wrappers = (nn.parallel.DistributedDataParallel, nn.DataParallel)
    return model.module if isinstance(model, wrappers) else model


@contextlib.contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """The model in eval mode for the duration; the mode it had is restored after, also on an error."""
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)


def log_prior(counts: ClassCounts) -> torch.Tensor:
    """log pi_c = log(n_c / sum_j n_j) from the training-set class counts n_c."""
    n = torch.tensor(check_counts("counts", counts), dtype=torch.float64)
    return (n / n.sum()).log().float()


def _conv_bn_pairs(model: nn.Module) -> list[tuple[nn.Sequential, int]]:
    """(Sequential, i) for every Conv2d at position i directly followed by a BatchNorm2d."""
    return [(seq, i) for seq in model.modules() if isinstance(seq, nn.Sequential)
            for i in range(len(seq) - 1) if isinstance(seq[i], nn.Conv2d) and isinstance(seq[i + 1], nn.BatchNorm2d)]


def for_attacks(model: nn.Module) -> nn.Module:
    """The model as an attack should call it: in eval mode, with BatchNorm's running statistics folded
    into the preceding conv where a Sequential has a Conv2d -> BatchNorm2d pair (the small CNN).

    The folded network is a frozen eval-mode copy computing the same function up to float rounding,
    with one memory pass fewer per layer; on CPU it is also channels-last (oneDNN's fast layout). Attacks
    call the model up to a thousand times per point, so this is most of their cost. A model without
    such pairs (pre-activation ResNets) is returned as it is; the original is never modified.
    """
    if not _conv_bn_pairs(model):
        return model
    frozen = copy.deepcopy(model).eval().requires_grad_(False)
    for seq, i in _conv_bn_pairs(frozen):
        seq[i] = fuse_conv_bn_eval(seq[i], seq[i + 1]).requires_grad_(False)
        seq[i + 1] = nn.Identity()
    on_cpu = next(frozen.parameters()).device.type == "cpu"
    return frozen.to(memory_format=torch.channels_last) if on_cpu else frozen


def _conv_bn(c_in: int, c_out: int) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]


def small_cnn_body(in_channels: int, width: int) -> tuple[nn.Module, int]:
    """Three blocks of two 3x3 conv-BN-ReLU layers (widths w, 2w, 4w), 2x2 max-pooling between, global pooling."""
    layers: list[nn.Module] = []
    c = in_channels
    for i, c_out in enumerate((width, 2 * width, 4 * width)):
        layers += _conv_bn(c, c_out) + _conv_bn(c_out, c_out)
        if i < 2:
            layers.append(nn.MaxPool2d(2))
        c = c_out
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
    return nn.Sequential(*layers), c


class PreActBlock(nn.Module):
    """Pre-activation residual block (BN-ReLU-conv twice): PreAct ResNet-18's block, and the block that
    WRN-34-10 (Zagoruyko & Komodakis; used by TRADES and RoBal) stacks at widths 160-640."""

    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(c_in)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.shortcut = (nn.Conv2d(c_in, c_out, 1, stride, bias=False)
                         if stride != 1 or c_in != c_out else None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(x))
        shortcut = self.shortcut(out) if self.shortcut is not None else x
        out = self.conv1(out)
        out = self.conv2(F.relu(self.bn2(out)))
        return out + shortcut


class PreActResNet18Body(nn.Module):
    def __init__(self, in_channels: int):
        super().__init__()
        self.stem = nn.Conv2d(in_channels, 64, 3, 1, 1, bias=False)
        blocks, c = [], 64
        for c_out, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
            blocks += [PreActBlock(c, c_out, stride), PreActBlock(c_out, c_out, 1)]
            c = c_out
        self.blocks = nn.Sequential(*blocks)
        self.bn = nn.BatchNorm2d(512)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn(self.blocks(self.stem(x))))
        return F.adaptive_avg_pool2d(out, 1).flatten(1)


class WideResNetBody(nn.Module):
    def __init__(self, in_channels: int, depth: int = 34, widen: int = 10):
        super().__init__()
        n = (depth - 4) // 6
        widths = (16, 16 * widen, 32 * widen, 64 * widen)
        self.stem = nn.Conv2d(in_channels, widths[0], 3, 1, 1, bias=False)
        blocks, c = [], widths[0]
        for c_out, stride in zip(widths[1:], (1, 2, 2)):
            for i in range(n):
                blocks.append(PreActBlock(c, c_out, stride if i == 0 else 1))
                c = c_out
        self.blocks = nn.Sequential(*blocks)
        self.bn = nn.BatchNorm2d(c)
        self.out_features = c

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn(self.blocks(self.stem(x))))
        return F.adaptive_avg_pool2d(out, 1).flatten(1)


class BottleneckBlock(nn.Module):
    """conv1x1-BN-ReLU, conv3x3(stride)-BN-ReLU, conv1x1-BN (4x the planes), plus the shortcut (conv1x1-BN
    where the shape changes), then ReLU. Conv-BN pairs sit in Sequentials, so `for_attacks` folds them."""

    expansion = 4

    def __init__(self, c_in: int, planes: int, stride: int):
        super().__init__()
        c_out = self.expansion * planes
        self.branch = nn.Sequential(
            nn.Conv2d(c_in, planes, 1, bias=False), nn.BatchNorm2d(planes), nn.ReLU(inplace=True),
            nn.Conv2d(planes, planes, 3, stride, 1, bias=False), nn.BatchNorm2d(planes), nn.ReLU(inplace=True),
            nn.Conv2d(planes, c_out, 1, bias=False), nn.BatchNorm2d(c_out))
        self.shortcut = (nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))
                         if stride != 1 or c_in != c_out else nn.Identity())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.branch(x) + self.shortcut(x))


class BottleneckResNet18Body(nn.Module):
    """ResNet(Bottleneck, [2, 2, 2, 2]): a 3x3 stem of 64 channels, two bottleneck blocks at each of 64, 128,
    256 and 512 planes (strides 1, 2, 2, 2), global average pooling: 2048-d features."""

    def __init__(self, in_channels: int):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(in_channels, 64, 3, 1, 1, bias=False), nn.BatchNorm2d(64),
                                  nn.ReLU(inplace=True))
        blocks, c = [], 64
        for planes, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
            c_out = BottleneckBlock.expansion * planes
            blocks += [BottleneckBlock(c, planes, stride), BottleneckBlock(c_out, planes, 1)]
            c = c_out
        self.blocks = nn.Sequential(*blocks)
        self.out_features = c

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.adaptive_avg_pool2d(self.blocks(self.stem(x)), 1).flatten(1)


def canonical_model(name: str) -> str:
    """The architecture a model name builds ("preact18" -> "preact_resnet18"); an unknown name is an error."""
    check_choice("model", name, MODELS)
    return MODEL_ALIASES.get(name, name)


IMAGE_SIZES = {"cifar10": 32, "cifar100": 32, "svhn": 32, "mnist": 28}


def mnist_cnn_body(in_channels: int, width: int, image_size: int, features: int = 128) -> tuple[nn.Module, int]:
    """The AALP spec's MNIST CNN: conv 3x3 (w) -> BN -> ReLU -> conv 3x3 stride 2 (2w) -> BN -> ReLU -> FC
    (`features`) -> BN -> ReLU; h = the FC output, the input of the linear head.

    The BatchNorms are the book's addition (the spec's CNN has none), chosen so that a few epochs of SGD
    adversarial training at eps = 0.3 leave the first plateau; the AALP chapter has an exercise without them.
    Every conv-BN pair sits in one Sequential, so `for_attacks` folds it for evaluation."""
    check_positive("width", width, integer=True)
    check_positive("features", features, integer=True)
    side = (image_size + 1) // 2
    body = nn.Sequential(
        nn.Conv2d(in_channels, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU(inplace=True),
        nn.Conv2d(width, 2 * width, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(2 * width),
        nn.ReLU(inplace=True), nn.Flatten(), nn.Linear(2 * width * side * side, features, bias=False),
        nn.BatchNorm1d(features), nn.ReLU(inplace=True))
    return body, features


def build_model(name: str, *, dataset: str, num_classes: int, in_channels: int, width: int = 32,
                head: str = "linear", head_scale: float = 1.0, head_gamma: float = 0.0,
                head_bias: bool = True, dummy_classes: bool = False) -> Classifier:
    """Build a classifier for inputs in [0, 1] of `dataset` (its statistics set the normalisation).

    `head_bias=False` gives a bias-free linear head (the "Dot" head of logit-adjusted training); the
    cosine head never has a bias. `dummy_classes=True` gives a 2C head (DUCAT): outputs 0..C-1 are the
    `num_classes` = C real classes, output c + C is the dummy twin of class c; only the head widens.
    """
    name = canonical_model(name)
    check_bool("dummy_classes", dummy_classes)
    check_choice("head", head, HEADS)
    check_positive("width", width, integer=True)
    check_bool("head_bias", head_bias)
    mean, std = DATASET_STATS[dataset]
    if name == "small_cnn":
        body, features = small_cnn_body(in_channels, width)
    elif name == "preact_resnet18":
        body, features = PreActResNet18Body(in_channels), 512
    elif name == "bottleneck18":
        body = BottleneckResNet18Body(in_channels)
        features = body.out_features
    elif name == "mobilenet_v2":
        body, features = mobilenet_v2_body(in_channels)
    elif name == "mnist_cnn":
        body, features = mnist_cnn_body(in_channels, width, IMAGE_SIZES[dataset])
    else:
        body = WideResNetBody(in_channels)
        features = body.out_features
    outputs = 2 * num_classes if dummy_classes else num_classes
    if head == "linear":
        head_module: nn.Module = LinearHead(features, outputs, bias=head_bias)
    else:
        head_module = CosineHead(features, outputs, scale=head_scale, gamma=head_gamma)
    return Classifier(Normalize(mean, std), body, head_module)


def cifar10_small_cnn(width: int = 16) -> Classifier:
    """The book's CPU-scale CIFAR-10 model (a factory for `python -m advfair evaluate`)."""
    return build_model("small_cnn", dataset="cifar10", num_classes=10, in_channels=3, width=width)
