"""KITTI_BENCHMARK: the 652 Eigen test frames that have KITTI's improved ground truth (Uhrig et al.,
3DV 2017, ``data_depth_annotated``), listed as in monodepth2's ``eigen_benchmark`` split."""
import os
from typing import Optional, Sequence

import numpy as np
from PIL import Image

from constants import DEPTH_SCALE, EVAL_CROP, KITTI_ANNOTATED_DEPTH_UNITS, KITTI_ANNOTATED_DIR, LOAD_SIZE

from .common import DatasetError, load_depth_png, open_image, read_list
from .evalset import EvalSet
from .groundtruth import EvalDataset

CAMERAS = {"l": "image_02", "r": "image_03"}


class KITTIBenchmark(EvalDataset):
    """Lines ``<date>/<drive>_sync <frame> l|r`` (monodepth2's format) relative to ``root``, the KITTI
    raw root into which ``data_depth_annotated`` was unpacked: the image is
    ``<date>/<drive>_sync/image_0X/data/<frame:010d>.png`` and its GT
    ``<date>/<drive>_sync/proj_depth/groundtruth/image_0X/<frame:010d>.png``."""

    def __init__(self, root: str, list_file: str, load_size: Sequence[int] = LOAD_SIZE["KITTI"],
                 gt_cache: Optional[str] = None) -> None:
        super().__init__(load_size, gt_cache)
        self.root = root
        self.entries = read_list(list_file, 3)
        self.files = [self._files(e) for e in self.entries]
        self.check_cache()

    def _files(self, entry) -> tuple:
        folder, frame, side = entry.fields
        if side not in CAMERAS or not frame.isdigit():
            raise DatasetError(f"{entry.where()}: expected '<date>/<drive> <frame number> l|r', "
                               f"got {' '.join(entry.fields)!r}")
        name = f"{int(frame):010d}.png"
        drive = os.path.join(self.root, folder)
        image = os.path.join(drive, CAMERAS[side], "data", name)
        gt = os.path.join(drive, *KITTI_ANNOTATED_DIR, CAMERAS[side], name)
        for path in (image, gt) if self.cache is None else (image,):
            if not os.path.isfile(path):
                raise DatasetError(f"{entry.where()}: file not found: {path}")
        return image, gt

    def image(self, i: int) -> Image.Image:
        return open_image(self.files[i][0], self.entries[i])

    def compute_ground_truth(self, i: int) -> np.ndarray:
        return load_depth_png(self.files[i][1], KITTI_ANNOTATED_DEPTH_UNITS, self.entries[i])

    def frame_path(self, i: int) -> str:
        return self.files[i][0]


EVAL_SET = EvalSet(
    name="KITTI_BENCHMARK", build=KITTIBenchmark, cacheable=True,
    layout="KITTI raw root with data_depth_annotated unpacked into it "
           "(<date>/<drive>_sync/proj_depth/groundtruth/image_02/<frame>.png, uint16 m x 256); "
           "lines '<date>/<drive>_sync <frame> l'",
    depth_scale=DEPTH_SCALE["KITTI"], load_size=LOAD_SIZE["KITTI"], max_depth=DEPTH_SCALE["KITTI"],
    crop=EVAL_CROP["KITTI"], split="splits/kitti/eigen_benchmark/test_files.txt")
