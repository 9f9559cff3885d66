"""Structure encoder of the STE module (docs/release.md §1.1).

A MUNIT-style content encoder: it maps an RGB image to a 256-channel structure code at a
quarter of the input resolution. It is shared by the synthetic and the style domain in the
first training stage, which is what makes the code style-free.
"""
import torch
import torch.nn as nn


class ConvBlock(nn.Module):
    """Reflection pad, convolution, instance norm, LeakyReLU(0.2).

    The convolution sits in an attribute named ``conv`` because the released checkpoint stores
    its weights as ``<block>.conv.weight``.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int,
                 padding: int) -> None:
        super().__init__()
        self.pad = nn.ReflectionPad2d(padding)
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride, bias=True)
        self.norm = nn.InstanceNorm2d(out_channels)
        self.activation = nn.LeakyReLU(0.2, inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.activation(self.norm(self.conv(self.pad(x))))


class ResBlock(nn.Module):
    """Two 3x3 reflection-padded convolutions with instance norm; identity shortcut, no final activation."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.pad1 = nn.ReflectionPad2d(1)
        self.conv1 = nn.Conv2d(channels, channels, 3, bias=True)
        self.norm1 = nn.InstanceNorm2d(channels)
        self.activation = nn.LeakyReLU(0.2, inplace=True)
        self.pad2 = nn.ReflectionPad2d(1)
        self.conv2 = nn.Conv2d(channels, channels, 3, bias=True)
        self.norm2 = nn.InstanceNorm2d(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.activation(self.norm1(self.conv1(self.pad1(x))))
        return x + self.norm2(self.conv2(self.pad2(out)))


class ResBlocks(nn.Module):
    """A stack of residual blocks kept in ``model`` (checkpoint keys ``resblock.model.<i>``)."""

    def __init__(self, num_blocks: int, channels: int) -> None:
        super().__init__()
        self.model = nn.Sequential(*[ResBlock(channels) for _ in range(num_blocks)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class StructEncoder(nn.Module):
    """STE encoder: 7x7 stem, two stride-2 4x4 downsamplings, four residual blocks.

    Input: RGB in [-1, 1], (B, 3, H, W). Output: structure code (B, 256, H/4, W/4).
    """

    def __init__(self, in_channels: int = 3, dim: int = 64, num_res: int = 4) -> None:
        super().__init__()
        self.conv = ConvBlock(in_channels, dim, 7, 1, 3)
        self.conv1 = ConvBlock(dim, 2 * dim, 4, 2, 1)
        self.conv2 = ConvBlock(2 * dim, 4 * dim, 4, 2, 1)
        self.resblock = ResBlocks(num_res, 4 * dim)
        self.out_channels = 4 * dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.resblock(self.conv2(self.conv1(self.conv(x))))
