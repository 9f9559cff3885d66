"""Losses of the depth stages (docs/release.md §3)."""
from typing import Sequence

import torch
import torch.nn.functional as F

from datasets.transforms import masked_resize


def depth_loss(outputs: Sequence[torch.Tensor], depth: torch.Tensor) -> torch.Tensor:
    """Sum over the DP outputs of the mean absolute error against the [-1, 1] ground truth, which is
    resized to each output's size (bilinear, align_corners=True): every scale is supervised."""
    total = depth.new_zeros(())
    for pred in outputs:
        target = F.interpolate(depth, size=pred.shape[-2:], mode="bilinear", align_corners=True)
        total = total + (pred.float() - target).abs().mean()
    return total


def depth_gradient(depth: torch.Tensor) -> torch.Tensor:
    """|dx| + |dy| of a (B, C, H, W) map with forward differences ``D[x] - D[x+1]``; the last
    column and row are repeated first, so the size is kept and the difference there is 0."""
    padded = F.pad(depth, (0, 1, 0, 1), mode="replicate")
    dx = padded[..., :-1, :-1] - padded[..., :-1, 1:]
    dy = padded[..., :-1, :-1] - padded[..., 1:, :-1]
    return dx.abs() + dy.abs()


def structure_loss(structure: torch.Tensor, depth: torch.Tensor, hyper_w: float) -> torch.Tensor:
    """mean |structure * exp(-hyper_w * mean_c |grad depth|)|: the structure map is pushed towards 0
    everywhere, least where the depth has edges, so what survives is depth-relevant structure."""
    weight = torch.exp(-hyper_w * depth_gradient(depth).mean(1, keepdim=True))
    return (structure.float() * weight).abs().mean()


def masked_depth_loss(outputs: Sequence[torch.Tensor], depth: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """``depth_loss`` restricted to measured pixels (fine-tuning on real ground truth; not in the
    release): at each DP scale the ground truth and its mask are resized with ``masked_resize``
    (the release's bilinear resize over the valid pixels only), and the scale adds the mean
    absolute error over its valid pixels of the whole batch. With every pixel valid this is
    ``depth_loss``. A scale without a valid pixel adds exactly 0 (and a zero gradient): sparse
    lidar can leave the coarsest scales empty, while a sample without any measured pixel is
    rejected by its reader."""
    total = depth.new_zeros(())
    for pred in outputs:
        target, mask = masked_resize(depth, valid, pred.shape[-2:])
        error = ((pred.float() - target).abs() * mask).sum()
        total = total + error / mask.sum().clamp_min(1.0)
    return total
