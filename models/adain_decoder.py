"""AdaIN decoder of the stage-1 image-translation model (MUNIT's, Huang et al. 2018).

It renders an image from a structure code (256 x H/4 x W/4, from the shared ``StructEncoder``)
and a global style code. Style enters only through adaptive instance norm: every residual block
normalises its features per sample and channel, then applies a scale and bias that an MLP
computes from the style code. Whatever the structure code says about appearance is therefore
replaced by the style, which is what pushes appearance out of the structure code.

Choices, following MUNIT: four AdaIN residual blocks (ReLU, reflection padding), a 3-layer
256-wide MLP, upsampling by nearest x2 + 5x5 conv (no transposed convs, so no checkerboard),
layer norm in the upsampling path (instance norm there would again erase the style just
injected), a 7x7 conv to RGB and tanh to match the [-1, 1] input range. The AdaIN parameters
of each layer are laid out as [mean (bias), std (scale)], MUNIT's order. Layer norm uses the
standard biased-variance form with a per-channel affine initialised to identity (MUNIT divides
by the unbiased std + eps and draws the scale uniformly; neither matters for a new model).
"""
from typing import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from .style_encoder import conv_block


class AdaptiveInstanceNorm2d(nn.Module):
    """Instance norm whose per-sample, per-channel scale (std) and bias (mean) are given as inputs."""

    def __init__(self, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps

    def forward(self, x: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
        """``x`` (B, C, H, W); ``mean`` and ``std`` (B, C)."""
        normalised = F.instance_norm(x, eps=self.eps)
        return normalised * std[:, :, None, None] + mean[:, :, None, None]


class LayerNorm2d(nn.Module):
    """Normalise each sample over (C, H, W), then a learned per-channel scale and bias."""

    def __init__(self, channels: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.layer_norm(x, x.shape[1:], eps=self.eps)
        return x * self.weight[:, None, None] + self.bias[:, None, None]


class AdaINResBlock(nn.Module):
    """Two reflection-padded 3x3 convs with AdaIN (ReLU after the first); identity shortcut."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.pad1 = nn.ReflectionPad2d(1)
        self.conv1 = nn.Conv2d(channels, channels, 3)
        self.norm1 = AdaptiveInstanceNorm2d()
        self.pad2 = nn.ReflectionPad2d(1)
        self.conv2 = nn.Conv2d(channels, channels, 3)
        self.norm2 = AdaptiveInstanceNorm2d()
        self.num_adain_params = 4 * channels

    def forward(self, x: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
        """``params`` (B, 4C): mean and std of the first AdaIN, then of the second."""
        mean1, std1, mean2, std2 = params.chunk(4, dim=1)
        out = F.relu(self.norm1(self.conv1(self.pad1(x)), mean1, std1))
        return x + self.norm2(self.conv2(self.pad2(out)), mean2, std2)


def _mlp(in_features: int, out_features: int, width: int, num_layers: int) -> nn.Sequential:
    """ReLU MLP; the last layer is linear because AdaIN scales and biases may be negative."""
    layers, features = [], in_features
    for _ in range(num_layers - 1):
        layers += [nn.Linear(features, width), nn.ReLU(inplace=True)]
        features = width
    layers.append(nn.Linear(features, out_features))
    return nn.Sequential(*layers)


class AdaINDecoder(nn.Module):
    """(structure code (B, 256, h, w), style (B, style_dim[, 1, 1])) -> image (B, 3, 4h, 4w) in [-1, 1]."""

    def __init__(self, style_dim: int = 8, dim: int = 256, out_channels: int = 3, num_res: int = 4,
                 num_upsample: int = 2, mlp_dim: int = 256, mlp_layers: int = 3) -> None:
        super().__init__()
        self.res_blocks = nn.ModuleList(AdaINResBlock(dim) for _ in range(num_res))
        self.adain_sizes = [block.num_adain_params for block in self.res_blocks]
        self.mlp = _mlp(style_dim, sum(self.adain_sizes), mlp_dim, mlp_layers)
        layers = []
        for _ in range(num_upsample):
            layers += [nn.Upsample(scale_factor=2, mode="nearest"),
                       conv_block(dim, dim // 2, 5, 1, 2, LayerNorm2d(dim // 2), nn.ReLU(inplace=True))]
            dim //= 2
        layers.append(conv_block(dim, out_channels, 7, 1, 3, activation=nn.Tanh()))
        self.upsample = nn.Sequential(*layers)

    def adain_params(self, style: torch.Tensor) -> Sequence[torch.Tensor]:
        """The MLP's output split per residual block: (B, 4C) each, [mean1, std1, mean2, std2]."""
        return self.mlp(style.flatten(1)).split(self.adain_sizes, dim=1)

    def forward(self, code: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        x = code
        for block, params in zip(self.res_blocks, self.adain_params(style)):
            x = block(x, params)
        return self.upsample(x)
