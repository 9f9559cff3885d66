"""Folders, files and glob patterns of arbitrary images (infer.py): no labels, any size, and
files that cannot be decoded reported instead of stopping the run."""
import glob
import os
from collections import Counter, defaultdict
from pathlib import Path
from typing import List, Sequence, Tuple

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from .common import DatasetError, open_image, resize_image, to_network_input

IMAGE_EXTENSIONS = {".png", ".jpg", ".jpeg", ".bmp", ".ppm", ".tif", ".tiff", ".webp"}


def collect_inputs(specs: Sequence[str]) -> Tuple[List[Path], List[str]]:
    """Files named by ``specs`` (files as given, folders' image files, glob matches), each once,
    and a warning for every spec that names nothing."""
    found, warnings = [], []
    for spec in specs:
        if os.path.isfile(spec):
            matches = [spec]
        elif os.path.isdir(spec):
            matches = sorted(str(p) for p in Path(spec).iterdir()
                             if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
            if not matches:
                warnings.append(f"{spec}: folder holds no image files ({', '.join(sorted(IMAGE_EXTENSIONS))})")
        elif any(c in spec for c in "*?["):
            matches = sorted(p for p in glob.glob(spec, recursive=True) if os.path.isfile(p))
            if not matches:
                warnings.append(f"{spec}: no file matches the pattern")
        else:
            matches = []
            warnings.append(f"{spec}: no such file or folder")
        found += [Path(p).absolute() for p in matches]
    unique = list(dict.fromkeys(found))
    return unique, warnings


def output_names(paths: Sequence[Path]) -> List[str]:
    """The output name of each input: its stem, or, for inputs that share a stem, the stem prefixed
    by the folders that tell them apart (and suffixed by the extension when only that differs)."""
    names = [p.stem for p in paths]
    groups = defaultdict(list)
    for i, p in enumerate(paths):
        groups[p.stem].append(i)
    for stem, members in groups.items():
        if len(members) < 2:
            continue
        common = os.path.commonpath([str(paths[i].parent) for i in members])
        for i in members:
            names[i] = "_".join([*paths[i].parent.relative_to(common).parts, stem])
        counts = Counter(names[i] for i in members)
        for i in members:
            if counts[names[i]] > 1:
                names[i] += "_" + paths[i].suffix.lstrip(".")
    seen = Counter()
    for i, name in enumerate(names):  # a prefixed name may still equal another input's stem
        seen[name] += 1
        if seen[name] > 1:
            names[i] = f"{name}_{seen[name]}"
    return names


class ImageInputs(Dataset):
    """Items: ``image`` (3, h, w) in [-1, 1] at ``load_size``, ``rgb`` the (H, W, 3) uint8 original,
    ``index``; or ``index`` and ``error`` for a file that cannot be decoded."""

    def __init__(self, paths: Sequence[Path], load_size: Sequence[int]) -> None:
        self.paths = list(paths)
        self.load_size = tuple(load_size)

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> dict:
        try:
            img = open_image(str(self.paths[i]))
        except (DatasetError, Image.DecompressionBombError) as exc:
            return {"index": i, "error": str(exc)}
        return {"image": to_network_input(resize_image(img, self.load_size)), "rgb": np.asarray(img),
                "index": i}


def collate_inputs(batch: List[dict]) -> dict:
    """Readable items stacked into one tensor; unreadable ones kept aside for the warnings."""
    good = [b for b in batch if "error" not in b]
    return {"image": torch.stack([b["image"] for b in good]) if good else None,
            "rgb": [b["rgb"] for b in good], "index": [b["index"] for b in good],
            "errors": [b for b in batch if "error" in b]}
