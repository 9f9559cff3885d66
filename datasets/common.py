"""Helpers every dataset shares: list files with line-numbered errors, image decoding and the
[-1, 1] image normalisation of docs/release.md §1."""
import os
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

import numpy as np
import torch
import torchvision.transforms.functional as TF
from PIL import Image

from utils.errors import UserError


class DatasetError(UserError):
    """Bad dataset input: a list line that does not parse, a missing or unreadable file."""


@dataclass(frozen=True)
class ListEntry:
    """One parsed list line: its fields, and where it came from for error messages."""

    fields: Tuple[str, ...]
    list_file: str
    line_no: int

    def where(self) -> str:
        return f"{self.list_file}, line {self.line_no}"


def read_list(list_file: os.PathLike, num_fields: int, sep: Optional[str] = None,
              root: Optional[os.PathLike] = None, check_fields: Sequence[int] = ()) -> List[ListEntry]:
    """Parse a list file of ``num_fields`` fields per line (blank lines are skipped).

    ``sep=None`` splits on whitespace (KITTI/vKITTI lists), ``sep=","`` reads the NYU CSV.
    The fields named by ``check_fields`` must exist under ``root``; a violation raises
    DatasetError naming the list file, the line number and the path.
    """
    list_file = str(list_file)
    if not os.path.isfile(list_file):
        raise DatasetError(f"list file not found: {list_file}")
    entries = []
    with open(list_file, encoding="utf-8") as f:
        for line_no, line in enumerate(f, 1):
            if not line.strip():
                continue
            fields = tuple(p.strip() for p in line.strip().split(sep))
            if len(fields) != num_fields or not all(fields):
                raise DatasetError(f"{list_file}, line {line_no}: expected {num_fields} "
                                   f"{'comma-separated' if sep == ',' else 'space-separated'} "
                                   f"fields, got {line.strip()!r}")
            entry = ListEntry(fields, list_file, line_no)
            for i in check_fields:
                path = resolve(root, fields[i])
                if not os.path.exists(path):
                    raise DatasetError(f"{entry.where()}: file not found: {path}")
            entries.append(entry)
    if not entries:
        raise DatasetError(f"list file is empty: {list_file}")
    return entries


def resolve(root: Optional[os.PathLike], rel: str) -> str:
    """A list path joined to the dataset root (absolute list paths are kept)."""
    return str(Path(root) / rel) if root is not None else rel


def open_image(path: str, entry: Optional[ListEntry] = None, mode: Optional[str] = "RGB") -> Image.Image:
    """Decode an image fully (so corrupt files fail here), converted to ``mode`` unless None."""
    try:
        img = Image.open(path)
        img.load()
        return img.convert(mode) if mode else img
    except (OSError, ValueError) as exc:
        where = f"{entry.where()}: " if entry else ""
        raise DatasetError(f"{where}cannot read image {path}: {exc}") from exc


def image_size(path: str, entry: Optional[ListEntry] = None) -> Tuple[int, int]:
    """(H, W) of an image from its header, without decoding the pixels."""
    try:
        with Image.open(path) as img:
            w, h = img.size
    except (OSError, ValueError) as exc:
        where = f"{entry.where()}: " if entry else ""
        raise DatasetError(f"{where}cannot read image {path}: {exc}") from exc
    return h, w


def resize_image(img: Image.Image, size: Sequence[int]) -> Image.Image:
    """PIL bicubic resize to (H, W), as torchvision's Resize does on PIL images."""
    h, w = size
    return img.resize((w, h), Image.BICUBIC)


def to_network_input(img: Image.Image) -> torch.Tensor:
    """ToTensor then Normalize(0.5, 0.5): a float tensor in [-1, 1]."""
    return TF.normalize(TF.to_tensor(img), [0.5, 0.5, 0.5], [0.5, 0.5, 0.5])


def load_depth_png(path: str, scale: float, entry: Optional[ListEntry] = None) -> np.ndarray:
    """A 16-bit depth PNG as float64 metres (``value / scale``)."""
    img = open_image(path, entry, mode=None)
    depth = np.asarray(img, dtype=np.float64)
    if depth.ndim != 2:
        where = f"{entry.where()}: " if entry else ""
        raise DatasetError(f"{where}depth map {path} is not a single-channel image (mode {img.mode})")
    return depth / scale


def collate_eval(batch: List[dict]) -> dict:
    """Stack images; keep ground-truth maps in a list because KITTI's sizes vary by date."""
    out = {"image": torch.stack([b["image"] for b in batch]),
           "index": torch.tensor([b["index"] for b in batch])}
    for key in batch[0]:
        if key not in out:
            out[key] = [b[key] for b in batch]
    return out
