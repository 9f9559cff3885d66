"""Multi-scale patch discriminator of the stage-1 image-translation model (MUNIT's).

Three identical PatchGAN-style networks look at the image at full, half and quarter
resolution: the coarse ones judge global layout and colour, the fine one texture. Each is four
stride-2 4x4 convs (64 channels, doubling) with LeakyReLU(0.2) and a 1x1 conv to one score per
patch; no normalisation, reflection padding, as in MUNIT. The raw scores feed least-squares GAN
objectives (see ``training.translation``), so there is no sigmoid.
"""
from typing import List

import torch
import torch.nn as nn

from utils.errors import InputSizeError

from .style_encoder import conv_block


def _patch_discriminator(in_channels: int, dim: int, num_layers: int) -> nn.Sequential:
    layers = []
    for i in range(num_layers):
        out = dim * 2 ** i
        layers.append(conv_block(in_channels, out, 4, 2, 1, activation=nn.LeakyReLU(0.2, inplace=True)))
        in_channels = out
    layers.append(nn.Conv2d(in_channels, 1, 1))
    return nn.Sequential(*layers)


class MultiScaleDiscriminator(nn.Module):
    """Image (B, 3, H, W) -> list of patch score maps, finest scale first.

    Needs H and W of at least ``min_input_size`` (64 with the defaults), below which the
    coarsest scale's last conv would have nothing left to pad.
    """

    def __init__(self, in_channels: int = 3, dim: int = 64, num_layers: int = 4,
                 num_scales: int = 3) -> None:
        super().__init__()
        self.scales = nn.ModuleList(_patch_discriminator(in_channels, dim, num_layers)
                                    for _ in range(num_scales))
        self.downsample = nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False)
        self.min_input_size = 2 ** (num_layers + num_scales - 1)

    def forward(self, x: torch.Tensor) -> List[torch.Tensor]:
        if min(x.shape[-2:]) < self.min_input_size:
            raise InputSizeError(f"MultiScaleDiscriminator needs inputs of at least "
                                 f"{self.min_input_size}x{self.min_input_size}, got {tuple(x.shape[-2:])}")
        outputs = []
        for i, scale in enumerate(self.scales):
            if i:
                x = self.downsample(x)
            outputs.append(scale(x))
        return outputs
