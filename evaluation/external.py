"""Another method's saved predictions (test.py --pred_dir), evaluated with the same ground truth and
protocol as the network's: a folder of per-frame files, or one .npz."""
import os
import zipfile
from pathlib import Path
from typing import Dict, List, Sequence

import numpy as np
import torch
from PIL import Image

from datasets import DatasetError
from inference.depth_io import UINT16_DEPTH_SCALE
from inference.predict import upsample

EXTENSIONS = (".npy", ".npz", ".png")


def frame_names(index: int, path: str) -> List[str]:
    """The names a frame's prediction may have: test.py --save_pred's, then shorter ones, all led by
    the frame's 0-based position in the list (stems alone repeat across KITTI drives)."""
    stem = Path(path).stem
    return [f"{index:05d}_{stem}_depth", f"{index:05d}_{stem}", f"{index:05d}"]


def as_map(values: np.ndarray, where: str) -> np.ndarray:
    values = np.squeeze(np.asarray(values))
    if values.ndim != 2 or not np.issubdtype(values.dtype, np.number):
        raise DatasetError(f"{where}: expected one numeric (H, W) map, got {values.dtype} {values.shape}")
    if not np.isfinite(values).all():
        raise DatasetError(f"{where}: the map holds NaN or infinite values")
    return values.astype(np.float64)


def read_map(path: str) -> np.ndarray:
    """A saved map: .npy; .npz with one array; 16-bit .png (value / 256, KITTI's and infer.py's
    convention) or any other single-channel .png as its raw values."""
    try:
        if path.endswith(".npy"):
            return as_map(np.load(path, allow_pickle=False), path)
        if path.endswith(".npz"):
            with np.load(path, allow_pickle=False) as f:
                if len(f.files) != 1:
                    raise DatasetError(f"{path}: expected one array, found {', '.join(f.files)}")
                return as_map(f[f.files[0]], path)
        with Image.open(path) as img:
            img.load()
            values = as_map(np.asarray(img), path)
            return values / UINT16_DEPTH_SCALE if img.mode.startswith("I;16") else values
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise DatasetError(f"cannot read prediction {path}: {exc}") from exc


class PredictionSource:
    """``path`` is a folder of ``<name>.npy|.npz|.png`` files (names from ``frame_names``) or one
    .npz holding either an array per frame under those names or one (N, H, W) stack in list order.
    Maps are depth in metres, or disparity with ``is_disparity``; either at any size (resized
    bilinearly, align_corners, to the GT as the network's output is)."""

    def __init__(self, path: str, is_disparity: bool = False) -> None:
        self.path = str(path)
        self.is_disparity = is_disparity
        self.stack = None
        self.arrays: Dict[str, np.ndarray] = {}
        if os.path.isdir(self.path):
            return
        if not (os.path.isfile(self.path) and self.path.endswith(".npz")):
            raise DatasetError(f"--pred_dir {self.path}: not a folder or a .npz file")
        try:
            with np.load(self.path, allow_pickle=False) as f:
                self.arrays = {k: f[k] for k in f.files}
        except (OSError, ValueError, zipfile.BadZipFile) as exc:
            raise DatasetError(f"cannot read predictions {self.path}: {exc}") from exc
        if len(self.arrays) == 1 and next(iter(self.arrays.values())).ndim == 3:
            self.stack = next(iter(self.arrays.values()))

    def raw(self, index: int, path: str) -> np.ndarray:
        names = frame_names(index, path)
        if self.stack is not None:
            if index >= len(self.stack):
                raise DatasetError(f"{self.path}: its stack holds {len(self.stack)} maps; frame {index} "
                                   f"({path}) has none")
            return as_map(self.stack[index], f"{self.path}[{index}]")
        if self.arrays:
            for name in names:
                if name in self.arrays:
                    return as_map(self.arrays[name], f"{self.path}[{name}]")
        else:
            for name in names:
                for ext in EXTENSIONS:
                    file = os.path.join(self.path, name + ext)
                    if os.path.isfile(file):
                        return read_map(file)
        raise DatasetError(f"{self.path}: no prediction for frame {index} ({path}); expected one of "
                           f"{', '.join(names)} (.npy, .npz or .png)")

    def depth(self, index: int, path: str, shape: Sequence[int]) -> np.ndarray:
        """Frame ``index``'s prediction as depth in metres at the GT's ``shape`` (disparity <= 0:
        infinitely far)."""
        values = self.raw(index, path)
        if values.shape != tuple(shape):
            values = upsample(torch.from_numpy(values)[None], shape).double().numpy()
        if not self.is_disparity:
            return values
        depth = np.full_like(values, np.inf)
        np.divide(1.0, values, out=depth, where=values > 0)
        return depth
