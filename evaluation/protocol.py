"""The evaluation protocol (docs/release.md §4).

The default protocol is the release's: clip the prediction to [min, max] first, mask GT to the
open interval (min, max), Garg crop on KITTI, median scaling, no clipping after scaling, then the
mean over images of the per-image metrics. monodepth2's variants are options.
"""
from dataclasses import asdict, dataclass
from typing import Dict, Iterable, Optional

import numpy as np

from constants import DEPTH_SCALE

from .metrics import compute_errors

# Crops as fractions of (H, H, W, W): rows [top, bottom), cols [left, right).
CROPS = {
    "garg": (0.40810811, 0.99189189, 0.03594771, 0.96405229),
    "eigen": (0.3324324, 0.91351351, 0.0359477, 0.96405229),
}
DEFAULT_CROP = {"KITTI": "garg", "NYUD_V2": "none"}


@dataclass
class Protocol:
    """How a prediction in metres is compared with the ground truth."""

    min_depth: float = 1e-3
    max_depth: float = DEPTH_SCALE["KITTI"]
    crop: str = "garg"
    median_scaling: bool = True
    clip_after_scaling: bool = False

    def as_dict(self) -> Dict[str, object]:
        return asdict(self)


def default_protocol(dataset: str, **overrides) -> Protocol:
    """The release's protocol for ``dataset`` with any non-None ``overrides`` applied."""
    values = {"max_depth": DEPTH_SCALE[dataset], "crop": DEFAULT_CROP[dataset]}
    values.update({k: v for k, v in overrides.items() if v is not None})
    return Protocol(**values)


def crop_mask(shape: Iterable[int], crop: str) -> np.ndarray:
    """Boolean mask of the evaluation crop for an (H, W) ground-truth map."""
    h, w = shape
    mask = np.zeros((h, w), dtype=bool)
    if crop == "none":
        mask[:] = True
        return mask
    top, bottom, left, right = CROPS[crop]
    rows = (int(top * h), int(bottom * h))
    cols = (int(left * w), int(right * w))
    mask[rows[0]:rows[1], cols[0]:cols[1]] = True
    return mask


def evaluate_depth(pred: np.ndarray, gt: np.ndarray, protocol: Protocol) -> Optional[Dict[str, float]]:
    """Metrics of one prediction (metres, GT size) against GT; None when no GT pixel is valid."""
    if pred.shape != gt.shape:
        raise ValueError(f"prediction {pred.shape} and ground truth {gt.shape} differ in size")
    pred = pred.astype(np.float64)
    lo, hi = protocol.min_depth, protocol.max_depth
    if not protocol.clip_after_scaling:
        pred = np.clip(pred, lo, hi)
    mask = (gt > lo) & (gt < hi) & crop_mask(gt.shape, protocol.crop)
    if not mask.any():
        return None
    gt_valid, pred_valid = gt[mask], pred[mask]
    if protocol.median_scaling:
        pred_valid = pred_valid * (np.median(gt_valid) / np.median(pred_valid))
    if protocol.clip_after_scaling:
        pred_valid = np.clip(pred_valid, lo, hi)
    return compute_errors(gt_valid, pred_valid)
