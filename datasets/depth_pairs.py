"""Labelled real images for fine-tuning (``--train_stage TrainFineTuneReal``; not in the release):
an image and a sparse or dense metric depth map per sample, where 0 marks pixels without a
measurement. ``LabelledDepthDataset`` turns any such pair into a training sample; ``DepthPairs``
reads the generic layout, an image and a 16-bit depth PNG per list line.

A sample is processed like a vKITTI one (docs/release.md §2.1) where sparse depth allows it:
the depth is clipped at ``max_depth`` metres and mapped to [-1, 1] (``d / max_depth * 2 - 1``);
flip and colour jitter use the release's draws. Rotation is not applied: rotating a sparse map
would interpolate measurements with holes. The depth is resized with ``masked_resize``.
"""
import random
from typing import List, Optional, Sequence

import numpy as np
import torch
import torchvision.transforms.functional as TF

from constants import DEPTH_SCALE, TRAIN_LOAD_SIZE

from .common import DatasetError, ListEntry, load_depth_png, open_image, read_list, resize_image, resolve
from .common import to_network_input
from .transforms import AugmentFlags, masked_resize, random_color_jitter
from .vkitti import _EpochSeeded



def select_labelled(entries: Sequence[ListEntry], count: int, seed: Optional[int] = None) -> List[ListEntry]:
    """The labelled subset: all entries when ``count`` is 0 or at least their number, else the first
    ``count`` lines, or ``count`` lines drawn without replacement with ``seed`` (kept in list order)."""
    if count == 0 or count >= len(entries):
        return list(entries)
    if seed is None:
        return list(entries[:count])
    picked = random.Random(f"labelled:{seed}").sample(range(len(entries)), count)
    return [entries[i] for i in sorted(picked)]


class LabelledDepthDataset(_EpochSeeded):
    """Base of the labelled real sets. Subclasses set ``entries`` and implement ``image_path`` and
    ``ground_truth`` (metres, 0 = unknown, at the image's size).

    Items: ``image`` (3, h, w) in [-1, 1]; ``depth`` (1, h, w) in [-1, 1] (-1 where unknown);
    ``valid`` (1, h, w) 1.0 where the depth was measured, else 0.0; ``index``.
    """

    stream = "labelled"

    def __init__(self, load_size: Sequence[int], max_depth: float, flags: AugmentFlags, seed: int) -> None:
        super().__init__(seed)
        self.load_size = tuple(load_size)
        self.max_depth = float(max_depth)
        self.flags = flags

    def image_path(self, entry: ListEntry) -> str:
        raise NotImplementedError

    def ground_truth(self, index: int, size: Sequence[int]) -> np.ndarray:
        """Metres of sample ``index`` at the image's ``size`` (H, W), 0 where unknown."""
        raise NotImplementedError

    def sample(self, index: int, rng: random.Random) -> dict:
        entry = self.entries[index]
        path = self.image_path(entry)
        rgb = open_image(path, entry)
        metres = self.ground_truth(index, (rgb.height, rgb.width))
        if metres.shape != (rgb.height, rgb.width):
            raise DatasetError(f"{entry.where()}: the depth map is {metres.shape[1]}x{metres.shape[0]} but the "
                               f"image {path} is {rgb.width}x{rgb.height}")
        measured = torch.from_numpy(np.isfinite(metres) & (metres > 0))[None, None]
        unit = torch.from_numpy(np.nan_to_num(np.minimum(metres, self.max_depth) / self.max_depth))
        unit, valid = masked_resize(unit[None, None].float(), measured, self.load_size)
        if not valid.any():
            raise DatasetError(f"{entry.where()}: no pixel of the ground truth has a depth (all 0) at "
                               f"{self.load_size[0]}x{self.load_size[1]}; remove the line")
        image, depth, valid = resize_image(rgb, self.load_size), unit[0] * 2 - 1, valid[0]
        if self.flags.flip and rng.random() < 0.5:
            image, depth, valid = TF.hflip(image), depth.flip(-1), valid.flip(-1)
        depth = torch.where(valid > 0, depth, torch.full_like(depth, -1.0))
        image = random_color_jitter(image, self.flags.color, rng)
        return {"image": to_network_input(image), "depth": depth, "valid": valid, "index": index}


class DepthPairs(LabelledDepthDataset):
    """Lines ``rgb_path depth_path`` relative to ``root``: any image and a 16-bit depth PNG of the
    same size holding metres x ``depth_units`` (KITTI annotated depth: 256; NYUD-v2: 1000;
    vKITTI: 100), 0 where nothing was measured. ``count``/``sample_seed``: see ``select_labelled``.
    """

    def __init__(self, root: str, list_file: str, depth_units: float,
                 load_size: Sequence[int] = TRAIN_LOAD_SIZE, max_depth: float = DEPTH_SCALE["KITTI"],
                 flags: AugmentFlags = AugmentFlags(), seed: int = 0, count: int = 0,
                 sample_seed: Optional[int] = None) -> None:
        super().__init__(load_size, max_depth, flags, seed)
        if not depth_units > 0:
            raise DatasetError(f"the depth PNG units must be > 0 (PNG value per metre), got {depth_units}")
        self.root = root
        self.depth_units = float(depth_units)
        self.entries = select_labelled(read_list(list_file, 2, root=root, check_fields=(0, 1)), count, sample_seed)

    def image_path(self, entry: ListEntry) -> str:
        return resolve(self.root, entry.fields[0])

    def ground_truth(self, index: int, size: Sequence[int]) -> np.ndarray:
        entry = self.entries[index]
        return load_depth_png(resolve(self.root, entry.fields[1]), self.depth_units, entry)
