"""The base of the evaluation sets added beyond the release's two: list entries, the evaluated image,
the ground truth (computed, or read from an export_gt_depth.py cache), and the items test.py takes."""
from typing import List, Optional, Sequence

import numpy as np
import scipy.io
from PIL import Image
from torch.utils.data import Dataset

from .common import DatasetError, ListEntry, open_image, resize_image, to_network_input
from .kitti import GTCache


class EvalDataset(Dataset):
    """Items: ``image`` (3, h, w) in [-1, 1] at ``load_size``; ``depth`` the GT (H, W) float64 metres
    (0 = no measurement) at the size of ``image(i)``; ``index``; ``path`` naming the frame.

    Subclasses set ``self.entries`` and implement ``image`` (the evaluated RGB, already cropped
    where the protocol crops it), ``compute_ground_truth`` and ``frame_path``."""

    entries: List[ListEntry]

    def __init__(self, load_size: Sequence[int], gt_cache: Optional[str] = None) -> None:
        self.load_size = tuple(load_size)
        self.cache = GTCache(gt_cache) if gt_cache else None

    def check_cache(self) -> None:
        """Call once ``entries`` is set: a cache must have been made from exactly these entries."""
        if self.cache is not None:
            self.cache.check_matches(self.entries)

    def __len__(self) -> int:
        return len(self.entries)

    def image(self, i: int) -> Image.Image:
        raise NotImplementedError

    def compute_ground_truth(self, i: int) -> np.ndarray:
        raise NotImplementedError

    def frame_path(self, i: int) -> str:
        raise NotImplementedError

    def ground_truth(self, i: int) -> np.ndarray:
        if self.cache is not None:
            return self.cache[i]
        try:
            return self.compute_ground_truth(i)
        except DatasetError as exc:
            where = self.entries[i].where()
            raise exc if str(exc).startswith(where) else DatasetError(f"{where}: {exc}") from exc

    def __getitem__(self, i: int) -> dict:
        return {"image": to_network_input(resize_image(self.image(i), self.load_size)),
                "depth": self.ground_truth(i), "index": i, "path": self.frame_path(i)}


def evaluated_rgb(dataset: Dataset, index: int, path: str) -> np.ndarray:
    """The (H, W, 3) uint8 image whose pixels the GT of frame ``index`` covers (for figures): the
    cropped image of the sets that crop, the file at ``path`` for the release's two sets."""
    if isinstance(dataset, EvalDataset):
        return np.asarray(dataset.image(index))
    return np.asarray(open_image(path))



def mat_variable(path: str, key: str, what: str) -> np.ndarray:
    """Variable ``key`` of a MATLAB (v5) file; ``what`` names the file in errors."""
    try:
        value = scipy.io.loadmat(path, variable_names=[key]).get(key)
    except (OSError, ValueError, NotImplementedError) as exc:
        raise DatasetError(f"cannot read {what} {path}: {exc}") from exc
    if value is None:
        raise DatasetError(f"{what} {path} holds no {key} variable")
    return value
