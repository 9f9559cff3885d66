"""Training-time processing of synthetic RGB-D pairs (docs/release.md §2.1, steps 2-7).

The random draws follow the release's order exactly (flip, rotation, colour jitter, each guarded by
its own draw), with the algorithm of Python's ``random`` module. The draws come from a
``random.Random`` passed in, not from the module's global instance: it produces the same numbers
for the same seed, and a per-sample generator makes every sample reproducible whatever the number
of loader workers, or where in an epoch a resumed run starts.
"""
import random
from dataclasses import dataclass
from typing import Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F
import torchvision.transforms.functional as TF
from PIL import Image
from torchvision.transforms import InterpolationMode

from constants import VKITTI_MAX_DEPTH_CM

from .common import to_network_input

SUNCG_DEPTH_SCALE = 255.0     # 8-bit indoor depth
MAX_ROTATION_CENTIDEG = 500   # angles in {-5.00, -4.99, ..., 4.99} degrees
JITTER_RANGE = (0.8, 1.0)


@dataclass(frozen=True)
class AugmentFlags:
    """Which random augmentations run (the release's --no_flip, --no_rotation, --no_augment)."""

    flip: bool = True
    rotation: bool = True
    color: bool = True


def vkitti_depth_to_unit(depth: Image.Image) -> Image.Image:
    """16-bit centimetre depth -> mode-'F' image in [0, 1]: clip at 80 m, divide, negatives to 0."""
    arr = np.array(depth, dtype=np.float32)
    arr = np.minimum(arr, VKITTI_MAX_DEPTH_CM) / VKITTI_MAX_DEPTH_CM
    arr[arr < 0] = 0
    return Image.fromarray(arr, "F")


def suncg_depth_to_unit(depth: Image.Image) -> Image.Image:
    """8-bit indoor depth -> mode-'F' image in [0, 1]."""
    return Image.fromarray(np.array(depth, dtype=np.float32) / SUNCG_DEPTH_SCALE, "F")


def augment_pair(rgb: Image.Image, depth: Image.Image, flags: AugmentFlags,
                 rng: random.Random) -> Tuple[torch.Tensor, torch.Tensor]:
    """Random flip, rotation and colour jitter of a resized pair (``depth`` a mode-'F' image in
    [0, 1]); returns the image (3, h, w) and the depth (1, h, w), both in [-1, 1]."""
    if flags.flip and rng.random() < 0.5:
        rgb, depth = TF.hflip(rgb), TF.hflip(depth)
    if flags.rotation and rng.random() < 0.5:
        angle = rng.randrange(-MAX_ROTATION_CENTIDEG, MAX_ROTATION_CENTIDEG) / 100
        rgb = TF.rotate(rgb, angle, InterpolationMode.BICUBIC)
        depth = TF.rotate(depth, angle, InterpolationMode.BICUBIC)
    depth_tensor = torch.from_numpy(np.array(depth, dtype=np.float32) * 2.0 - 1.0)[None]
    return to_network_input(random_color_jitter(rgb, flags.color, rng)), depth_tensor


def random_color_jitter(rgb: Image.Image, enabled: bool, rng: random.Random) -> Image.Image:
    """With probability 0.5 (one draw, only when enabled): brightness, contrast and saturation
    factors drawn in that order from U(0.8, 1.0) and applied in that order."""
    if enabled and rng.random() < 0.5:
        brightness = rng.uniform(*JITTER_RANGE)
        contrast = rng.uniform(*JITTER_RANGE)
        saturation = rng.uniform(*JITTER_RANGE)
        rgb = TF.adjust_brightness(rgb, brightness)
        rgb = TF.adjust_contrast(rgb, contrast)
        rgb = TF.adjust_saturation(rgb, saturation)
    return rgb


def random_flip(img: Image.Image, enabled: bool, rng: random.Random) -> Image.Image:
    """Horizontal flip with probability 0.5 (one draw, only when enabled)."""
    return TF.hflip(img) if enabled and rng.random() < 0.5 else img


def masked_resize(depth: torch.Tensor, valid: torch.Tensor, size: Sequence[int]) -> Tuple[torch.Tensor, torch.Tensor]:
    """Resize sparse ground truth as the release resizes dense ground truth (bilinear,
    align_corners=True), with only the valid pixels taking part: the target is the bilinear
    average of the valid neighbours, ``interp(d * m) / interp(m)``, and a pixel is valid where
    ``interp(m) > 0``, i.e. where at least one of its neighbours is measured. For a full mask this
    is the release's resize (up to float rounding); no measured depth is ever mixed with a hole.

    ``depth`` and ``valid`` are (B, 1, H, W); returns the target and its 0/1 mask at ``size``."""
    valid = valid.to(depth.dtype)
    weight = F.interpolate(valid, size=tuple(size), mode="bilinear", align_corners=True)
    total = F.interpolate(depth * valid, size=tuple(size), mode="bilinear", align_corners=True)
    ok = weight > 0
    target = torch.where(ok, total / torch.where(ok, weight, torch.ones_like(weight)), torch.zeros_like(total))
    return target, ok.to(depth.dtype)
