"""Style encoder of the stage-1 image-translation model (MUNIT's, Huang et al. 2018).

Stage 1 splits an image into a spatial structure code (the shared ``StructEncoder``) and a
global style code. The style code must not carry layout, so this encoder ends with a global
average pool and has no normalisation: instance norm would wipe out exactly the feature
statistics that make up style. Channels double from 64 and are capped at 256 over four
stride-2 downsamplings, as in MUNIT; reflection padding avoids zero-padding border artefacts.
"""
from typing import Optional

import torch
import torch.nn as nn


def conv_block(in_channels: int, out_channels: int, kernel_size: int, stride: int, padding: int,
               norm: Optional[nn.Module] = None, activation: Optional[nn.Module] = None
               ) -> nn.Sequential:
    """Reflection pad, conv (with bias), then the optional norm and activation.

    The building block of the three stage-1 networks (style encoder, AdaIN decoder,
    discriminator); keys read ``<i>.1.weight`` for the conv.
    """
    layers = [nn.ReflectionPad2d(padding), nn.Conv2d(in_channels, out_channels, kernel_size, stride)]
    layers += [m for m in (norm, activation) if m is not None]
    return nn.Sequential(*layers)


class StyleEncoder(nn.Module):
    """Image (B, 3, H, W) -> global style code (B, style_dim, 1, 1), whatever H and W are."""

    def __init__(self, style_dim: int = 8, in_channels: int = 3, dim: int = 64,
                 num_downsample: int = 4, max_channels: int = 256) -> None:
        super().__init__()
        layers = [conv_block(in_channels, dim, 7, 1, 3, activation=nn.ReLU(inplace=True))]
        for _ in range(num_downsample):
            out = min(2 * dim, max_channels)
            layers.append(conv_block(dim, out, 4, 2, 1, activation=nn.ReLU(inplace=True)))
            dim = out
        layers += [nn.AdaptiveAvgPool2d(1), nn.Conv2d(dim, style_dim, 1)]
        self.model = nn.Sequential(*layers)
        self.style_dim = style_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)
