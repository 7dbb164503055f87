"""MobileNet-v2 (Sandler et al., CVPR 2018) in its CIFAR form, ABSLD's second student architecture.

The CIFAR variant keeps the standard inverted-residual table (expansion t, channels c, repeats n, stride s):

    (1, 16, 1, 1), (6, 24, 2, 1), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)

with a stride-1 3x3 stem of 32 channels and stride 1 in the 24-channel stage (ImageNet uses 2 in both), so a
32x32 input ends at 4x4; then a 1x1 conv to 1280 features, BN, ReLU6 and global average pooling. A block is
1x1 expand (skipped when t = 1) -> 3x3 depthwise -> 1x1 linear projection, each conv followed by BatchNorm
(ReLU6 after the first two); the identity shortcut is added where the stride is 1 and the channels match.
Every conv-BN pair sits in one nn.Sequential, so `models.for_attacks` folds them for evaluation.
"""
from __future__ import annotations

import torch
from torch import nn

INVERTED_RESIDUALS = ((1, 16, 1, 1), (6, 24, 2, 1), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2),
                      (6, 320, 1, 1))
STEM_CHANNELS, FEATURES = 32, 1280


def _conv_bn(c_in: int, c_out: int, kernel: int, stride: int = 1, groups: int = 1,
             relu: bool = True) -> list[nn.Module]:
    layers: list[nn.Module] = [nn.Conv2d(c_in, c_out, kernel, stride, kernel // 2, groups=groups, bias=False),
                               nn.BatchNorm2d(c_out)]
    return layers + [nn.ReLU6(inplace=True)] if relu else layers


class InvertedResidual(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int, expansion: int):
        super().__init__()
        hidden = c_in * expansion
        layers = _conv_bn(c_in, hidden, 1) if expansion != 1 else []
        layers += _conv_bn(hidden, hidden, 3, stride, groups=hidden) + _conv_bn(hidden, c_out, 1, relu=False)
        self.conv = nn.Sequential(*layers)
        self.residual = stride == 1 and c_in == c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv(x)
        return x + out if self.residual else out


def mobilenet_v2_body(in_channels: int = 3) -> tuple[nn.Module, int]:
    """The feature extractor (inputs already normalised) and its feature dimension (1280)."""
    layers: list[nn.Module] = [nn.Sequential(*_conv_bn(in_channels, STEM_CHANNELS, 3))]
    c = STEM_CHANNELS
    for expansion, c_out, repeats, stride in INVERTED_RESIDUALS:
        for i in range(repeats):
            layers.append(InvertedResidual(c, c_out, stride if i == 0 else 1, expansion))
            c = c_out
    layers += [nn.Sequential(*_conv_bn(c, FEATURES, 1)), nn.AdaptiveAvgPool2d(1), nn.Flatten()]
    return nn.Sequential(*layers), FEATURES

