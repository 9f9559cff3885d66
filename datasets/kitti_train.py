"""KITTI raw frames with metric ground truth, for fine-tuning (not in the release).

The list has the release's KITTI lines, ``left_png right_png calib_dir velodyne_bin`` relative to
``root`` (its Eigen test and val lists are in this format). The ground truth of the left image is
either the velodyne scan projected exactly as test.py projects it (``gt="velodyne"``, docs/release.md
§2.2), or KITTI's annotated depth (``gt="annotated"``: the data_depth_annotated archive under
``depth_root``, ``[train/|val/]<drive>/proj_depth/groundtruth/image_02/<frame>.png``, uint16 / 256 m).
"""
import os
from pathlib import PurePosixPath
from typing import List, Optional, Sequence

import numpy as np

from constants import (DEPTH_SCALE, KITTI_ANNOTATED_DEPTH_UNITS, KITTI_ANNOTATED_DIR, KITTI_ANNOTATED_SPLITS,
                       TRAIN_LOAD_SIZE)

from .common import DatasetError, ListEntry, load_depth_png, read_list, resolve
from .depth_pairs import LabelledDepthDataset, select_labelled
from .kitti import generate_depth_map
from .transforms import AugmentFlags

GT_SOURCES = ("velodyne", "annotated")


def annotated_candidates(depth_root: str, left: str) -> List[str]:
    """Where KITTI's annotated depth of a raw left image can be: the drive folder directly under
    ``depth_root`` or under its train/ or val/ split folder."""
    parts = PurePosixPath(left.replace("\\", "/")).parts
    drive = next((p for p in reversed(parts) if p.endswith("_sync")), None)
    camera = next((p for p in parts if p.startswith("image_0")), None)
    if drive is None or camera is None:
        return []
    rel = PurePosixPath(drive, *KITTI_ANNOTATED_DIR, camera, PurePosixPath(left).stem + ".png")
    return [resolve(depth_root, str(PurePosixPath(split, rel) if split else rel)) for split in KITTI_ANNOTATED_SPLITS]


class KITTITrain(LabelledDepthDataset):
    """Items as ``LabelledDepthDataset``'s. ``count``/``sample_seed`` pick the labelled lines
    (``select_labelled``); every path of the kept lines is checked when the list is opened."""

    def __init__(self, root: str, list_file: str, gt: str = "velodyne", depth_root: Optional[str] = None,
                 load_size: Sequence[int] = TRAIN_LOAD_SIZE, max_depth: float = DEPTH_SCALE["KITTI"],
                 flags: AugmentFlags = AugmentFlags(), seed: int = 0, count: int = 0,
                 sample_seed: Optional[int] = None) -> None:
        super().__init__(load_size, max_depth, flags, seed)
        if gt not in GT_SOURCES:
            raise ValueError(f"unknown KITTI ground truth {gt!r}; expected one of {GT_SOURCES}")
        if gt == "annotated" and not depth_root:
            raise DatasetError("KITTI annotated ground truth needs the folder of the data_depth_annotated archive")
        self.root, self.gt, self.depth_root = root, gt, depth_root
        check = (0, 2, 3) if gt == "velodyne" else (0,)
        self.entries = select_labelled(read_list(list_file, 4, root=root, check_fields=check), count, sample_seed)
        self.depth_paths = [self._annotated_path(e) for e in self.entries] if gt == "annotated" else []

    def _annotated_path(self, entry: ListEntry) -> str:
        candidates = annotated_candidates(self.depth_root, entry.fields[0])
        if not candidates:
            raise DatasetError(f"{entry.where()}: {entry.fields[0]} is not in KITTI's raw layout "
                               f"(<date>/<drive>_sync/image_0X/data/<frame>.png)")
        for path in candidates:
            if os.path.isfile(path):
                return path
        raise DatasetError(f"{entry.where()}: no annotated depth for {entry.fields[0]}; looked for "
                           f"{' and '.join(candidates)} (KITTI annotates frames 5 to N-5 of each drive)")

    def image_path(self, entry: ListEntry) -> str:
        return resolve(self.root, entry.fields[0])

    def ground_truth(self, index: int, size: Sequence[int]) -> np.ndarray:
        entry = self.entries[index]
        if self.gt == "annotated":
            return load_depth_png(self.depth_paths[index], KITTI_ANNOTATED_DEPTH_UNITS, entry)
        _, _, calib, velo = (resolve(self.root, f) for f in entry.fields)
        try:
            return generate_depth_map(calib, velo, size)
        except DatasetError as exc:
            raise DatasetError(f"{entry.where()}: {exc}") from exc
