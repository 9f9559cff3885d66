"""Up-projection block shared by the STE decoder and the DSA decoder (docs/release.md §1.2).

It comes from Laina et al.'s fully convolutional residual networks as used by Hu et al.:
resize first, then two convolutional branches whose sum is rectified.
"""
from typing import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F


class UpProjection(nn.Module):
    """Bilinear resize (align_corners=True) followed by a residual 5x5/3x3 projection."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 5, padding=2, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.conv1_2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.bn1_2 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(in_channels, out_channels, 5, padding=2, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)

    def forward(self, x: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
        x = F.interpolate(x, size=tuple(size), mode="bilinear", align_corners=True)
        branch1 = self.bn1_2(self.conv1_2(self.relu(self.bn1(self.conv1(x)))))
        branch2 = self.bn2(self.conv2(x))
        return self.relu(branch1 + branch2)
