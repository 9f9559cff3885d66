"""MAKE3D: the 134 test images (Saxena et al., Make3D, TPAMI 2009) with their laser depth grids,
under the protocol of Godard et al. (CVPR 2017): a centred 2:1 crop, GT resized to it, depth < 70 m."""
import os
from typing import Optional, Sequence, Tuple

import numpy as np
from PIL import Image

from constants import DEPTH_SCALE

from .common import DatasetError, image_size, open_image, read_list
from .evalset import EvalSet
from .groundtruth import EvalDataset, mat_variable

IMAGE_DIR, DEPTH_DIR = "Test134", "Gridlaserdata"   # the folders Test134.tar.gz / Test134Depth.tar.gz unpack to
GRID_KEY, DEPTH_CHANNEL = "Position3DGrid", 3      # (55, 305, 4): x, y, z, depth in metres
CROP_ASPECT = 2.0                                  # width : height of the evaluated band


def frame_id(name: str) -> str:
    """``img-<id>.jpg``, ``img-<id>`` or ``<id>`` -> ``<id>`` (the two public orders of the list)."""
    stem = name[:-len(".jpg")] if name.endswith(".jpg") else name
    return stem[len("img-"):] if stem.startswith("img-") else stem


def read_depth_grid(path: str) -> np.ndarray:
    """The depth channel of a ``depth_sph_corr-<id>.mat`` file, (rows, cols) float64 metres."""
    grid = mat_variable(path, GRID_KEY, "Make3D depth file")
    if grid.ndim != 3 or grid.shape[2] <= DEPTH_CHANNEL:
        raise DatasetError(f"{GRID_KEY} in {path} has shape {grid.shape}, expected (rows, cols, 4)")
    return np.asarray(grid[..., DEPTH_CHANNEL], dtype=np.float64)


def band_fraction(h: int, w: int) -> float:
    """The fraction of an (h, w) image's rows in its centred 2:1 band."""
    return min(1.0, w / CROP_ASPECT / h)


def crop_band(n: int, fraction: float) -> Tuple[int, int]:
    """[top, bottom) of the centred band that keeps ``fraction`` of ``n`` rows."""
    top = int((n - n * fraction) / 2)
    return top, n - top


class Make3DTest(EvalDataset):
    """Lines naming one test image each (``img-<id>.jpg`` or ``img-<id>``); the image is
    ``<root>/Test134/img-<id>.jpg`` and its depth ``<root>/Gridlaserdata/depth_sph_corr-<id>.mat``.

    The evaluated region is the centred band of rows with a 2:1 width:height ratio: the image is
    cropped to it, the grid is cropped to the same fraction of its rows and resized (bilinearly) to
    the cropped image's size."""

    def __init__(self, root: str, list_file: str, load_size: Sequence[int] = (256, 512),
                 gt_cache: Optional[str] = None) -> None:
        super().__init__(load_size, gt_cache)
        self.entries = read_list(list_file, 1)
        self.files = []
        for entry in self.entries:
            stem = frame_id(entry.fields[0])
            files = (os.path.join(root, IMAGE_DIR, f"img-{stem}.jpg"),
                     os.path.join(root, DEPTH_DIR, f"depth_sph_corr-{stem}.mat"))
            for path in files if self.cache is None else files[:1]:
                if not os.path.isfile(path):
                    raise DatasetError(f"{entry.where()}: file not found: {path}")
            self.files.append(files)
        self.check_cache()

    def image(self, i: int) -> Image.Image:
        img = open_image(self.files[i][0], self.entries[i])
        top, bottom = crop_band(img.size[1], band_fraction(img.size[1], img.size[0]))
        return img.crop((0, top, img.size[0], bottom))

    def compute_ground_truth(self, i: int) -> np.ndarray:
        h, w = image_size(self.files[i][0], self.entries[i])
        fraction = band_fraction(h, w)
        top, bottom = crop_band(h, fraction)
        depth = read_depth_grid(self.files[i][1])
        grid_top, grid_bottom = crop_band(depth.shape[0], fraction)
        band = Image.fromarray(depth[grid_top:grid_bottom].astype(np.float32), "F")
        return np.asarray(band.resize((w, bottom - top), Image.BILINEAR), dtype=np.float64)

    def frame_path(self, i: int) -> str:
        return self.files[i][0]


EVAL_SET = EvalSet(
    name="MAKE3D", build=Make3DTest, cacheable=True,
    layout="<root>/Test134/img-<id>.jpg and <root>/Gridlaserdata/depth_sph_corr-<id>.mat "
           "(Position3DGrid, depth in channel 3); lines 'img-<id>.jpg'; centred 2:1 crop, GT resized to it",
    depth_scale=DEPTH_SCALE["KITTI"], load_size=(256, 512), max_depth=70.0, crop="none",
    split="splits/make3d/test_files.txt")
