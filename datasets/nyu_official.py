"""NYUD_V2_OFFICIAL: the 654 test frames of the official split, read straight from
``nyu_depth_v2_labeled.mat`` (MATLAB v7.3, i.e. HDF5) and ``splits.mat`` (Silberman et al., ECCV 2012)."""
import os
from typing import List, Optional, Sequence

import h5py
import numpy as np
from PIL import Image

from constants import DEPTH_SCALE, EVAL_CROP, LOAD_SIZE

from .common import DatasetError, ListEntry, read_list
from .evalset import EvalSet
from .groundtruth import EvalDataset, mat_variable

LABELED_FILE = "nyu_depth_v2_labeled.mat"
SPLIT_KEY = "testNdxs"    # splits.mat: 1-based indices into the 1449 labeled frames


def read_indices(list_file: str) -> List[ListEntry]:
    """``splits.mat`` (its testNdxs) or a text list of 1-based frame indices, one a line."""
    if not list_file.endswith(".mat"):
        entries = read_list(list_file, 1)
        for e in entries:
            if not e.fields[0].isdigit() or int(e.fields[0]) < 1:
                raise DatasetError(f"{e.where()}: expected a 1-based frame index, got {e.fields[0]!r}")
        return entries
    split = mat_variable(list_file, SPLIT_KEY, "split file")
    return [ListEntry((str(int(v)),), list_file, n) for n, v in enumerate(np.ravel(split), 1)]


class NYUDv2Official(EvalDataset):
    """``root`` holds nyu_depth_v2_labeled.mat: ``images`` (N, 3, W, H) uint8 and ``depths``
    (N, W, H) float32 metres, as MATLAB writes them (transposed); frame k is entry k-1."""

    def __init__(self, root: str, list_file: str, load_size: Sequence[int] = LOAD_SIZE["NYUD_V2"],
                 gt_cache: Optional[str] = None) -> None:
        super().__init__(load_size, gt_cache)
        self.path = os.path.join(root, LABELED_FILE)
        self.entries = read_indices(str(list_file))
        with self._open() as f:
            for key in ("images", "depths"):
                if key not in f:
                    raise DatasetError(f"{self.path} holds no {key!r} dataset")
            count = min(f["images"].shape[0], f["depths"].shape[0])
        for e in self.entries:
            if int(e.fields[0]) > count:
                raise DatasetError(f"{e.where()}: frame {e.fields[0]} is beyond the {count} frames of "
                                   f"{self.path}")
        self.check_cache()

    def _open(self) -> h5py.File:
        # Opened per read: an h5py handle cannot cross into the DataLoader's worker processes.
        try:
            return h5py.File(self.path, "r")
        except OSError as exc:
            raise DatasetError(f"cannot read {self.path} (the labeled NYUD-v2 .mat, HDF5): {exc}") from exc

    def _frame(self, i: int) -> int:
        return int(self.entries[i].fields[0]) - 1

    def image(self, i: int) -> Image.Image:
        with self._open() as f:
            return Image.fromarray(np.ascontiguousarray(f["images"][self._frame(i)].transpose(2, 1, 0)))

    def compute_ground_truth(self, i: int) -> np.ndarray:
        with self._open() as f:
            return np.asarray(f["depths"][self._frame(i)], dtype=np.float64).T

    def frame_path(self, i: int) -> str:
        return os.path.join(self.path, f"{self._frame(i) + 1:04d}")  # a name for outputs, not a file


EVAL_SET = EvalSet(
    name="NYUD_V2_OFFICIAL", build=NYUDv2Official, cacheable=True,
    layout=f"<root>/{LABELED_FILE} (HDF5: images, depths in m); --test_datafile splits.mat (testNdxs) "
           "or a text list of 1-based frame indices; --crop eigen_nyu for Eigen's crop",
    depth_scale=DEPTH_SCALE["NYUD_V2"], load_size=LOAD_SIZE["NYUD_V2"], max_depth=DEPTH_SCALE["NYUD_V2"],
    crop=EVAL_CROP["NYUD_V2"], split="splits/nyu/official_test.txt")
