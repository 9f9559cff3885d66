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
    for line_no, line in enumerate(_list_lines(list_file), 1):
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


def _list_lines(list_file: str) -> List[str]:
    """The lines of a text list; a binary or non-UTF-8 file is a DatasetError naming it (and the line)."""
    try:
        with open(list_file, "rb") as f:
            raw = f.read()
    except OSError as exc:
        raise DatasetError(f"cannot read list file {list_file}: {exc.strerror}") from exc
    if b"\0" in raw:
        line_no = raw[:raw.index(b"\0")].count(b"\n") + 1
        raise DatasetError(f"{list_file}, line {line_no}: a NUL byte; this is a binary file, not a text list")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line_no = raw[:exc.start].count(b"\n") + 1
        raise DatasetError(f"{list_file}, line {line_no}: byte 0x{raw[exc.start]:02x} is not UTF-8 text; "
                           f"save the list as UTF-8") from None
    return text.replace("\r\n", "\n").replace("\r", "\n").split("\n")  # text mode's newlines


def resolve(root: Optional[os.PathLike], rel: str) -> str:
    """A list path joined to the dataset root (absolute list paths are kept)."""
    return str(Path(root) / rel) if root is not None else rel


# PIL modes whose own conversion to RGB is right: palettes, grey levels, alpha dropped, CMYK/YCbCr colours.
PIL_TO_RGB = {"RGB", "1", "L", "LA", "P", "PA", "RGBA", "RGBX", "RGBa", "CMYK", "YCbCr"}
# Grey levels of more than 8 bits: PIL's conversion would clip them at 255 (a white image), so they are
# scaled from their full range instead (mode 'I' is how PIL opens some 16-bit files).
WIDE_GREY_MAX = {"I;16": 65535, "I;16B": 65535, "I;16L": 65535, "I;16N": 65535, "I": 65535}


def _where(entry: Optional[ListEntry]) -> str:
    return f"{entry.where()}: " if entry else ""


def open_image(path: str, entry: Optional[ListEntry] = None, mode: Optional[str] = "RGB") -> Image.Image:
    """Decode an image fully (so corrupt files fail here): as stored with ``mode=None``, else as RGB."""
    try:
        img = Image.open(path)
        img.load()
    except (OSError, ValueError) as exc:
        raise DatasetError(f"{_where(entry)}cannot read image {path}: {exc}") from exc
    return to_rgb(img, path, entry) if mode else img


def to_rgb(img: Image.Image, path: str, entry: Optional[ListEntry] = None) -> Image.Image:
    """An 8-bit RGB image of any grey, colour or palette mode; 16-bit grey scaled 0..65535 -> 0..255
    (rounded). Modes without one meaning (float 'F', 'LAB', 'HSV', ...) are a DatasetError."""
    if img.mode in PIL_TO_RGB:
        return img.convert("RGB")
    if img.mode in WIDE_GREY_MAX:
        grey = np.asarray(img, dtype=np.int64)
        top = WIDE_GREY_MAX[img.mode]
        if grey.size and (grey.min() < 0 or grey.max() > top):
            raise DatasetError(f"{_where(entry)}image {path} (PIL mode {img.mode}) has values in "
                               f"{grey.min()}..{grey.max()}, outside 0..{top}; it is not a 16-bit image")
        level = (grey * 255 + top // 2) // top
        return Image.fromarray(level.astype(np.uint8), "L").convert("RGB")
    raise DatasetError(f"{_where(entry)}image {path} has PIL mode {img.mode!r}, which has no defined "
                       f"conversion to RGB; save it as 8- or 16-bit RGB or greyscale")


def image_size(path: str, entry: Optional[ListEntry] = None) -> Tuple[int, int]:
    """(H, W) of an image from its header, without decoding the pixels."""
    try:
        with Image.open(path) as img:
            w, h = img.size
    except (OSError, ValueError) as exc:
        raise DatasetError(f"{_where(entry)}cannot read image {path}: {exc}") from exc
    return h, w


def resize_image(img: Image.Image, size: Sequence[int]) -> Image.Image:
    """PIL bicubic resize to (H, W), as torchvision's Resize does on PIL images."""
    h, w = size
    return img.resize((w, h), Image.BICUBIC)


def to_network_input(img: Image.Image) -> torch.Tensor:
    """ToTensor then Normalize(0.5, 0.5): a float tensor in [-1, 1]."""
    return TF.normalize(TF.to_tensor(img), [0.5, 0.5, 0.5], [0.5, 0.5, 0.5])


SIXTEEN_BIT_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I")


def check_depth_image(depth: Image.Image, path: str, image_size_hw: Optional[Sequence[int]],
                      modes: Sequence[str], requirement: str, entry: Optional[ListEntry] = None) -> None:
    """A depth map must have its image's size (when given) and the dataset's bit depth: a resized or
    8-bit map would otherwise give silently wrong distances."""
    if depth.mode not in modes:
        raise DatasetError(f"{_where(entry)}depth image {path} has PIL mode {depth.mode!r}; {requirement}")
    if image_size_hw is None:
        return
    h, w = image_size_hw
    if depth.size != (w, h):
        raise DatasetError(f"{_where(entry)}depth image {path} is {depth.size[0]}x{depth.size[1]} but its "
                           f"image is {w}x{h}")


def load_depth_png(path: str, scale: float, entry: Optional[ListEntry] = None,
                   image_size_hw: Optional[Sequence[int]] = None, requirement: Optional[str] = None) -> np.ndarray:
    """A 16-bit depth PNG as float64 metres (``value / scale``), checked against its image's (H, W)
    when given; any other bit depth is an error naming the file."""
    img = open_image(path, entry, mode=None)
    requirement = requirement or f"expected a 16-bit PNG (value / {scale:g} = metres, 0 = no measurement)"
    check_depth_image(img, path, image_size_hw, SIXTEEN_BIT_MODES, requirement, entry)
    return np.asarray(img, dtype=np.float64) / scale


def collate_eval(batch: List[dict]) -> dict:
    """Stack images; keep ground-truth maps in a list because KITTI's sizes vary by date."""
    out = {"image": torch.stack([b["image"] for b in batch]),
           "index": torch.tensor([b["index"] for b in batch])}
    for key in batch[0]:
        if key not in out:
            out[key] = [b[key] for b in batch]
    return out
