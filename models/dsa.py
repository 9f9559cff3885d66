"""Depth-specific attention (DSA) module (docs/release.md §1.4).

A DRN-D-22 encoder (its first nine stages, output stride 8) and an up-projection decoder that
turns the image into a one-channel attention map in (0, 1). The attention map multiplies the
structure map so that only depth-relevant structure reaches the depth network.
"""
import math
from typing import List, Optional

import torch
import torch.nn as nn

from .up_projection import UpProjection

DRN_D22_CHANNELS = (16, 32, 64, 128, 256, 512, 512, 512)


class BasicBlock(nn.Module):
    """DRN basic residual block: two 3x3 convs (padding = dilation), BN, ReLU after the add."""

    def __init__(self, in_channels: int, channels: int, stride: int = 1, dilation: int = 1,
                 downsample: Optional[nn.Module] = None) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, channels, 3, stride, padding=dilation,
                               dilation=dilation, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=dilation, dilation=dilation, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + shortcut)


def _conv_stage(in_channels: int, channels: int, kernel_size: int = 3, stride: int = 1,
                dilation: int = 1) -> nn.Sequential:
    """conv (no bias) + BN + ReLU, DRN-D's plain convolutional stage."""
    padding = dilation * (kernel_size // 2)
    return nn.Sequential(
        nn.Conv2d(in_channels, channels, kernel_size, stride, padding=padding, dilation=dilation,
                  bias=False),
        nn.BatchNorm2d(channels),
        nn.ReLU(inplace=True),
    )


def _residual_stage(in_channels: int, channels: int, stride: int, dilation: int) -> nn.Sequential:
    """Two basic blocks; the first carries the stride and a 1x1 conv + BN shortcut."""
    downsample = nn.Sequential(nn.Conv2d(in_channels, channels, 1, stride, bias=False),
                               nn.BatchNorm2d(channels))
    return nn.Sequential(
        BasicBlock(in_channels, channels, stride, dilation, downsample),
        BasicBlock(channels, channels, 1, dilation),
    )


class DRNEncoder(nn.Module):
    """DRN-D-22 without its pooling and classifier; stages live in ``base`` (keys ``E.base.<i>``).

    ``forward`` returns the output of every stage so the decoder can read the sizes it needs.
    """

    def __init__(self) -> None:
        super().__init__()
        c = DRN_D22_CHANNELS
        self.base = nn.Sequential(
            _conv_stage(3, c[0], kernel_size=7),
            _conv_stage(c[0], c[0]),
            _conv_stage(c[0], c[1], stride=2),
            _residual_stage(c[1], c[2], stride=2, dilation=1),
            _residual_stage(c[2], c[3], stride=2, dilation=1),
            _residual_stage(c[3], c[4], stride=1, dilation=2),
            _residual_stage(c[4], c[5], stride=1, dilation=4),
            _conv_stage(c[5], c[6], dilation=2),
            _conv_stage(c[6], c[7]),
        )
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """DRN's own initialisation, used when no ImageNet weights are given."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                n = m.kernel_size[0] * m.kernel_size[1] * m.out_channels
                nn.init.normal_(m.weight, 0.0, math.sqrt(2.0 / n))
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> List[torch.Tensor]:
        features = []
        for stage in self.base:
            x = stage(x)
            features.append(x)
        return features


class DSADecoder(nn.Module):
    """Three up-projections back to the input size, then a reflection-padded 3x3 conv + sigmoid."""

    def __init__(self, in_channels: int = 512) -> None:
        super().__init__()
        self.up1 = UpProjection(in_channels, in_channels // 2)
        self.up2 = UpProjection(in_channels // 2, in_channels // 4)
        self.up3 = UpProjection(in_channels // 4, in_channels // 8)
        self.pad = nn.ReflectionPad2d(1)
        self.conv = nn.Conv2d(in_channels // 8, 1, 3, bias=True)

    def forward(self, features: List[torch.Tensor], input_size: List[int]) -> torch.Tensor:
        x = self.up1(features[-1], features[3].shape[-2:])
        x = self.up2(x, features[2].shape[-2:])
        x = self.up3(x, input_size)
        return torch.sigmoid(self.conv(self.pad(x)))


class DSA(nn.Module):
    """DSA module: image in [-1, 1] -> attention map (B, 1, H, W) in (0, 1)."""

    def __init__(self) -> None:
        super().__init__()
        self.E = DRNEncoder()
        self.D = DSADecoder(DRN_D22_CHANNELS[-1])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.D(self.E(x), list(x.shape[-2:]))
