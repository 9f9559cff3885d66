"""Depth prediction (DP) module (docs/release.md §1.5): the T2Net-style U-Net on the one-channel
depth-specific structure map.

One PReLU module (a single learnable slope) is shared by every block; the released checkpoint
stores it under each block's key, but it is one parameter, and so it is here.
"""
from typing import List

import torch
import torch.nn as nn
import torch.nn.functional as F

from constants import MIN_INPUT_SIZE, SIZE_MULTIPLE
from utils.errors import InputSizeError

SKIP_WEIGHT = 0.1


def check_input_size(height: int, width: int, network: str = "DepthNet") -> None:
    """Raise an InputSizeError naming the size unless both sides are multiples of 16 (four 2x
    poolings) and at least 96 (the centre's dilation-5 reflection padding needs more than 5 pixels
    at H/16)."""
    if height % SIZE_MULTIPLE or width % SIZE_MULTIPLE or min(height, width) < MIN_INPUT_SIZE:
        raise InputSizeError(f"{network} needs input height and width that are multiples of "
                             f"{SIZE_MULTIPLE} and at least {MIN_INPUT_SIZE}, got {height}x{width}")


class EncoderBlock(nn.Module):
    """Two zero-padded 3x3 convs, each followed by BN and the shared PReLU."""

    def __init__(self, in_channels: int, mid_channels: int, out_channels: int,
                 activation: nn.Module) -> None:
        super().__init__()
        self.model = nn.Sequential(
            nn.Conv2d(in_channels, mid_channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(mid_channels),
            activation,
            nn.Conv2d(mid_channels, out_channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            activation,
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class InceptionBlock(nn.Module):
    """Parallel dilated 3x3 convs (dilation 1, 3, 5 ...), fused by a 3x3 conv, residual add."""

    def __init__(self, channels: int, activation: nn.Module, width: int = 3) -> None:
        super().__init__()
        self.width = width
        for j in range(width):
            dilation = 2 * j + 1
            setattr(self, f"layer{j}", nn.Sequential(
                nn.ReflectionPad2d(dilation),
                nn.Conv2d(channels, channels, 3, dilation=dilation, bias=False),
            ))
        self.norm1 = nn.BatchNorm2d(channels * width)
        self.norm2 = nn.BatchNorm2d(channels)
        self.nonlinearity = activation
        self.branch1x1 = nn.Sequential(
            nn.ReflectionPad2d(1),
            nn.Conv2d(channels * width, channels, 3, bias=False),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branches = [getattr(self, f"layer{j}")(x) for j in range(self.width)]
        out = self.nonlinearity(self.norm1(torch.cat(branches, 1)))
        out = self.norm2(self.branch1x1(out))
        return self.nonlinearity(out + x)


class DecoderUpBlock(nn.Module):
    """3x3 conv then a stride-2 transposed conv (x2 resolution), each with BN and PReLU."""

    def __init__(self, in_channels: int, mid_channels: int, out_channels: int,
                 activation: nn.Module) -> None:
        super().__init__()
        self.model = nn.Sequential(
            nn.ReflectionPad2d(1),
            nn.Conv2d(in_channels, mid_channels, 3, bias=False),
            nn.BatchNorm2d(mid_channels),
            activation,
            nn.ConvTranspose2d(mid_channels, out_channels, 3, stride=2, padding=1,
                               output_padding=1, bias=True),
            nn.BatchNorm2d(out_channels),
            activation,
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class OutputBlock(nn.Module):
    """Reflection-padded kxk conv to one channel and tanh: a depth map in [-1, 1]."""

    def __init__(self, in_channels: int, kernel_size: int) -> None:
        super().__init__()
        self.model = nn.Sequential(
            nn.ReflectionPad2d(kernel_size // 2),
            nn.Conv2d(in_channels, 1, kernel_size, bias=False),
            nn.Tanh(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class DepthNet(nn.Module):
    """DP module. Input (B, 1, H, W) with H and W multiples of 16, at least 96.

    Returns ``[o4, o3, o2, o1]`` at H/8, H/4, H/2 and H, each in [-1, 1]; ``o1`` is the prediction.
    """

    def __init__(self, in_channels: int = 1, ngf: int = 64) -> None:
        super().__init__()
        act = nn.PReLU()
        # Registration order follows the reference network so that seeded initialisation
        # draws its random numbers in the same order.
        self.pool = nn.AvgPool2d(2, 2)
        self.conv1 = nn.Sequential(
            nn.ReflectionPad2d(3),
            nn.Conv2d(in_channels, ngf, 7, bias=False),
            nn.BatchNorm2d(ngf),
            act,
        )
        self.conv2 = EncoderBlock(ngf, 2 * ngf, 2 * ngf, act)
        self.conv3 = EncoderBlock(2 * ngf, 4 * ngf, 4 * ngf, act)
        self.conv4 = EncoderBlock(4 * ngf, 8 * ngf, 8 * ngf, act)
        self.center = nn.Sequential(
            InceptionBlock(8 * ngf, act),
            InceptionBlock(8 * ngf, act),
            InceptionBlock(8 * ngf, act),
            DecoderUpBlock(8 * ngf, 8 * ngf, 4 * ngf, act),
        )
        self.deconv4 = DecoderUpBlock(8 * ngf, 8 * ngf, 2 * ngf, act)
        self.deconv3 = DecoderUpBlock(4 * ngf + 1, 4 * ngf, ngf, act)
        self.deconv2 = DecoderUpBlock(2 * ngf + 1, 2 * ngf, ngf // 2, act)
        self.output4 = OutputBlock(8 * ngf, 3)
        self.output3 = OutputBlock(4 * ngf + 1, 3)
        self.output2 = OutputBlock(2 * ngf + 1, 3)
        self.output1 = OutputBlock(ngf // 2 + 1, 7)

    def reset_parameters(self) -> None:
        """T2Net's 'normal' init: conv weights N(0, 0.02), BN weights N(1, 0.02), biases 0."""
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
                nn.init.normal_(m.weight, 0.0, 0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.normal_(m.weight, 1.0, 0.02)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> List[torch.Tensor]:
        check_input_size(*x.shape[-2:])
        c1 = self.pool(self.conv1(x))
        c2 = self.pool(self.conv2(c1))
        c3 = self.pool(self.conv3(c2))
        center = self.center(self.pool(self.conv4(c3)))
        # Skip products are evaluated left to right as in the reference, to the last bit.
        a = torch.cat([center, c3 * SKIP_WEIGHT], 1)
        d4, o4 = self.deconv4(a), self.output4(a)
        b = torch.cat([d4, c2 * SKIP_WEIGHT * 0.5, _up(o4)], 1)
        d3, o3 = self.deconv3(b), self.output3(b)
        e = torch.cat([d3, c1 * SKIP_WEIGHT * 0.1, _up(o3)], 1)
        d2, o2 = self.deconv2(e), self.output2(e)
        o1 = self.output1(torch.cat([d2, _up(o2)], 1))
        return [o4, o3, o2, o1]


def _up(x: torch.Tensor) -> torch.Tensor:
    """Nearest-neighbour x2 upsampling of a coarse output before it joins the next scale."""
    return F.interpolate(x, scale_factor=2, mode="nearest")
