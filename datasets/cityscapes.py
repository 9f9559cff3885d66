"""CITYSCAPES: the 500 val frames of Cityscapes (Cordts et al., CVPR 2016) with depth from the
dataset's SGM disparity and each frame's camera file; the ego car's hood (the bottom quarter) is cut
off image and GT alike, as in manydepth's evaluation."""
import json
from typing import Optional, Sequence

import numpy as np
from PIL import Image

from constants import DEPTH_SCALE

from .common import DatasetError, load_depth_png, open_image, read_list, resolve
from .evalset import EvalSet
from .groundtruth import EvalDataset

DISPARITY_UNITS = 256.0   # disparity PNG: uint16, disparity = (value - 1) / 256 for value > 0
KEEP_ROWS = 0.75          # the rows above the ego car's hood


def focal_baseline(path: str) -> float:
    """fx · baseline (px·m) from a Cityscapes ``camera/*.json`` file."""
    try:
        with open(path, encoding="utf-8") as f:
            camera = json.load(f)
        fb = float(camera["extrinsic"]["baseline"]) * float(camera["intrinsic"]["fx"])
    except (OSError, ValueError) as exc:
        raise DatasetError(f"cannot read camera file {path}: {exc}") from exc
    except (KeyError, TypeError) as exc:
        raise DatasetError(f"camera file {path} has no extrinsic.baseline / intrinsic.fx ({exc})") from exc
    if not fb > 0:
        raise DatasetError(f"camera file {path}: baseline · fx = {fb} is not positive")
    return fb


def disparity_to_depth(value: np.ndarray, fb: float) -> np.ndarray:
    """Raw disparity PNG values -> depth in metres (0 where the value is 0, i.e. no disparity)."""
    disparity = (value - 1.0) / DISPARITY_UNITS
    depth = np.zeros_like(disparity)
    np.divide(fb, disparity, out=depth, where=(value > 0) & (disparity > 0))
    return depth


def hood_rows(h: int) -> int:
    return int(round(h * KEEP_ROWS))


class CityscapesTest(EvalDataset):
    """Lines ``leftImg8bit/... disparity/... camera/..._camera.json`` relative to ``root``."""

    def __init__(self, root: str, list_file: str, load_size: Sequence[int] = (192, 512),
                 gt_cache: Optional[str] = None) -> None:
        super().__init__(load_size, gt_cache)
        self.entries = read_list(list_file, 3, root=root, check_fields=(0, 1, 2))
        self.files = [tuple(resolve(root, f) for f in e.fields) for e in self.entries]
        self.check_cache()

    def image(self, i: int) -> Image.Image:
        img = open_image(self.files[i][0], self.entries[i])
        return img.crop((0, 0, img.size[0], hood_rows(img.size[1])))

    def compute_ground_truth(self, i: int) -> np.ndarray:
        _, disparity_path, camera_path = self.files[i]
        value = load_depth_png(disparity_path, 1.0, self.entries[i])
        depth = disparity_to_depth(value, focal_baseline(camera_path))
        return depth[:hood_rows(depth.shape[0])]

    def frame_path(self, i: int) -> str:
        return self.files[i][0]


EVAL_SET = EvalSet(
    name="CITYSCAPES", build=CityscapesTest, cacheable=True,
    layout="<root>/leftImg8bit/val/<city>/*_leftImg8bit.png, disparity/val/<city>/*_disparity.png "
           "(depth = baseline*fx / ((v-1)/256)), camera/val/<city>/*_camera.json; lines "
           "'image disparity camera'; bottom quarter (ego-car hood) cut off",
    depth_scale=DEPTH_SCALE["KITTI"], load_size=(192, 512), max_depth=DEPTH_SCALE["KITTI"],
    crop="cityscapes", split="splits/cityscapes/val_files.txt")
