"""Structure decoder of the STE module (docs/release.md §1.3): structure code -> one-channel structure map."""
import torch
import torch.nn as nn

from .up_projection import UpProjection


class StructDecoder(nn.Module):
    """Two up-projections (x2 each) and a 3x3 reflection-padded conv with a sigmoid.

    Input: (B, 256, h, w) structure code. Output: (B, 1, 4h, 4w) structure map in (0, 1).
    """

    def __init__(self, in_channels: int = 256) -> None:
        super().__init__()
        self.up1 = UpProjection(in_channels, in_channels // 2)
        self.up2 = UpProjection(in_channels // 2, in_channels // 4)
        self.pad = nn.ReflectionPad2d(1)
        self.conv = nn.Conv2d(in_channels // 4, 1, 3, bias=True)

    def forward(self, code: torch.Tensor) -> torch.Tensor:
        h, w = code.shape[-2:]
        x = self.up1(code, (2 * h, 2 * w))
        x = self.up2(x, (4 * h, 4 * w))
        return torch.sigmoid(self.conv(self.pad(x)))
