"""Synthetic training sets (docs/release.md §2.1): vKITTI RGB-D pairs, the SUNCG-style indoor layout, and the
image-only lists of stage 1 (the synthetic images and the style images).

Every random draw of a sample comes from ``sample_rng(seed, epoch, index)``; call ``set_epoch``
before each epoch (before the loader's workers start) so each epoch augments differently.
``sample(index, rng)`` takes the generator from the caller instead: the training loader's draws
with replacement (``training.data``) key it by the draw and pick the index from it first.
"""
import random
from typing import Sequence, Tuple

from PIL import Image
from torch.utils.data import Dataset

from constants import TRAIN_LOAD_SIZE

from .common import (SIXTEEN_BIT_MODES, ListEntry, check_depth_image, open_image, read_list, resize_image,
                     resolve, to_network_input)
from .transforms import AugmentFlags, augment_pair, random_flip, suncg_depth_to_unit, vkitti_depth_to_unit

# PIL modes of the depth PNGs each layout stores, and how they become [0, 1].
DEPTH_FORMATS = {
    "VKITTI": (SIXTEEN_BIT_MODES, "a 16-bit PNG in centimetres", vkitti_depth_to_unit),
    "SUNCG": (("L",), "an 8-bit PNG", suncg_depth_to_unit),
}


def sample_rng(seed: int, epoch: int, index: int, stream: str = "") -> random.Random:
    """The generator of one sample's augmentation in one epoch (``stream`` separates datasets).

    A string seed is hashed with SHA-512 by ``random``, so this is stable across processes and runs.
    """
    return random.Random(f"{stream}:{seed}:{epoch}:{index}")


class _EpochSeeded(Dataset):
    """A list-file dataset whose augmentation is a function of (seed, epoch, index)."""

    stream = ""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.epoch = 0
        self.entries: Sequence[ListEntry] = ()

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.entries)

    def rng(self, key: int) -> random.Random:
        return sample_rng(self.seed, self.epoch, key, self.stream)

    def sample(self, index: int, rng: random.Random) -> dict:
        """Item ``index``, augmented with the draws of ``rng``."""
        raise NotImplementedError

    def __getitem__(self, index: int) -> dict:
        return self.sample(index, self.rng(index))


class SyntheticDepthDataset(_EpochSeeded):
    """Lines ``rgb_path depth_path`` relative to ``root``; ``dataset`` is 'VKITTI' (16-bit cm depth)
    or 'SUNCG' (8-bit depth).

    Items: ``image`` (3, h, w) and ``depth`` (1, h, w), both in [-1, 1] at ``load_size``; ``index``.
    """

    stream = "depth"

    def __init__(self, root: str, list_file: str, load_size: Sequence[int] = TRAIN_LOAD_SIZE,
                 dataset: str = "VKITTI", flags: AugmentFlags = AugmentFlags(), seed: int = 0) -> None:
        super().__init__(seed)
        if dataset not in DEPTH_FORMATS:
            raise ValueError(f"unknown synthetic dataset {dataset!r}; expected one of {sorted(DEPTH_FORMATS)}")
        self.root = root
        self.load_size = tuple(load_size)
        self.dataset = dataset
        self.flags = flags
        self.entries = read_list(list_file, 2, root=root, check_fields=(0, 1))

    def load_depth(self, path: str, image_size_hw: Tuple[int, int], entry: ListEntry) -> Image.Image:
        """The depth PNG resized to ``load_size`` and mapped to [0, 1]; a wrong bit depth or size is an
        error, since using it anyway would train on silently wrong distances."""
        modes, description, to_unit = DEPTH_FORMATS[self.dataset]
        depth = open_image(path, entry, mode=None)
        check_depth_image(depth, path, image_size_hw, modes, f"{self.dataset} depth must be {description}", entry)
        if depth.mode.startswith("I;16"):
            # The release's Pillow decoded 16-bit PNGs as mode I (int32) and resized them in it; a
            # resize in I;16 clamps the bicubic's first pass to 0..65535, which moves pixels next to
            # the sky's 65535 (docs/release.md D21).
            depth = depth.convert("I")
        return to_unit(resize_image(depth, self.load_size))

    def sample(self, index: int, rng: random.Random) -> dict:
        entry = self.entries[index]
        rgb_path, depth_path = (resolve(self.root, f) for f in entry.fields)
        rgb = open_image(rgb_path, entry)
        depth = self.load_depth(depth_path, (rgb.height, rgb.width), entry)
        rgb = resize_image(rgb, self.load_size)
        image, depth = augment_pair(rgb, depth, self.flags, rng)
        return {"image": image, "depth": depth, "index": index}


class ImageListDataset(_EpochSeeded):
    """Images only (stage 1): the first field of each line, relative to ``root``, resized to
    ``load_size``, randomly flipped, in [-1, 1]. ``num_fields`` is 2 for a synthetic RGB-D list
    (whose depth column is ignored) and 1 for a style list.

    Items: ``image`` (3, h, w); ``index``.
    """

    def __init__(self, root: str, list_file: str, load_size: Sequence[int] = TRAIN_LOAD_SIZE,
                 num_fields: int = 1, flip: bool = True, seed: int = 0, stream: str = "images") -> None:
        super().__init__(seed)
        self.root = root
        self.load_size = tuple(load_size)
        self.flip = flip
        self.stream = stream
        self.entries = read_list(list_file, num_fields, root=root, check_fields=(0,))

    def sample(self, index: int, rng: random.Random) -> dict:
        entry = self.entries[index]
        img = resize_image(open_image(resolve(self.root, entry.fields[0]), entry), self.load_size)
        return {"image": to_network_input(random_flip(img, self.flip, rng)), "index": index}
