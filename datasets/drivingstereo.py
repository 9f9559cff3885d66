"""DRIVINGSTEREO: the DrivingStereo test frames (Yang et al., CVPR 2019), half or full size, with the
dataset's depth maps, or its disparity maps turned into depth with the sequence's calibration."""
import os
from typing import Optional, Sequence

import numpy as np
from PIL import Image

from constants import DEPTH_SCALE

from .common import DatasetError, image_size, load_depth_png, open_image, read_list, resolve
from .evalset import EvalSet
from .groundtruth import EvalDataset
from .kitti import read_calib_file

PNG_UNITS = 256.0                 # depth-map and disparity-map PNGs: uint16, value / 256 (m or px)
CALIB_DIRS = ("calib/half-image-calib", "calib/full-image-calib")
SEQUENCE_CHARS = len("2018-07-11-14-48-52")   # frame names are <sequence>_<time>


def focal_baseline(calib_path: str, width: int) -> float:
    """fx·baseline in px·m for images ``width`` pixels wide, from a DrivingStereo calibration file:
    P_rect_103's fourth entry is −fx·B at the calibrated size S_rect_101."""
    calib = read_calib_file(calib_path)
    try:
        calib_width = calib["S_rect_101"][0]
        fb = -calib["P_rect_103"].reshape(3, 4)[0, 3]
    except (KeyError, ValueError, IndexError) as exc:
        raise DatasetError(f"calibration {calib_path} lacks S_rect_101 or P_rect_103 ({exc})") from exc
    if not fb > 0:
        raise DatasetError(f"calibration {calib_path}: P_rect_103 gives no positive baseline")
    return float(fb * width / calib_width)


class DrivingStereoTest(EvalDataset):
    """Lines ``left right gt`` (the published test lists) or ``left gt``, relative to ``root``. A GT
    under a ``depth-map*`` folder is depth; under ``disparity-map*`` it is disparity, converted with
    ``<root>/calib/half-image-calib/<sequence>.txt`` (or full-image-calib, rescaled to the image)."""

    def __init__(self, root: str, list_file: str, load_size: Sequence[int] = (192, 416),
                 gt_cache: Optional[str] = None) -> None:
        super().__init__(load_size, gt_cache)
        self.root = root
        entries = read_list(list_file, 3, root=root, check_fields=(0, 2)) if _fields(list_file) == 3 \
            else read_list(list_file, 2, root=root, check_fields=(0, 1))
        self.entries = entries
        self.files = [(resolve(root, e.fields[0]), resolve(root, e.fields[-1])) for e in entries]
        self.kinds = [self._kind(e) for e in entries]
        self.calibs = [self.calibration(i) if kind == "disparity" else None for i, kind in enumerate(self.kinds)]
        self.check_cache()

    def _kind(self, entry) -> str:
        folder = os.path.basename(os.path.dirname(entry.fields[-1]))
        for kind in ("disparity", "depth"):
            if folder.startswith(kind):
                return kind
        raise DatasetError(f"{entry.where()}: ground truth {entry.fields[-1]} is neither in a "
                           f"depth-map* nor a disparity-map* folder")

    def calibration(self, i: int) -> str:
        sequence = os.path.basename(self.files[i][0])[:SEQUENCE_CHARS]
        for folder in CALIB_DIRS:
            path = os.path.join(self.root, folder, f"{sequence}.txt")
            if os.path.isfile(path):
                return path
        raise DatasetError(f"{self.entries[i].where()}: no calibration for sequence {sequence} "
                           f"({' or '.join(os.path.join(self.root, d, sequence + '.txt') for d in CALIB_DIRS)})")

    def image(self, i: int) -> Image.Image:
        return open_image(self.files[i][0], self.entries[i])

    def compute_ground_truth(self, i: int) -> np.ndarray:
        values = load_depth_png(self.files[i][1], PNG_UNITS, self.entries[i])
        if self.kinds[i] == "depth":
            return values
        fb = focal_baseline(self.calibs[i], image_size(self.files[i][0], self.entries[i])[1])
        depth = np.zeros_like(values)
        np.divide(fb, values, out=depth, where=values > 0)
        return depth

    def frame_path(self, i: int) -> str:
        return self.files[i][0]


def _fields(list_file: str) -> int:
    """Fields on the first non-blank line (3: left right gt, else 2: left gt)."""
    try:
        with open(list_file, encoding="utf-8") as f:
            first = next((line for line in f if line.strip()), "")
    except OSError:
        return 2  # read_list reports the missing file
    return 3 if len(first.split()) == 3 else 2


EVAL_SET = EvalSet(
    name="DRIVINGSTEREO", build=DrivingStereoTest, cacheable=True,
    layout="<root>/test-left-image/left-image-half-size/<seq>_<time>.jpg with test-depth-map/"
           "depth-map-half-size/*.png (uint16 m x 256) or test-disparity-map/disparity-map-half-size/*.png "
           "(px x 256) and calib/half-image-calib/<seq>.txt; lines 'left right gt' or 'left gt'",
    depth_scale=DEPTH_SCALE["KITTI"], load_size=(192, 416), max_depth=DEPTH_SCALE["KITTI"], crop="none")
