"""The evaluation protocol (docs/release.md §4).

The default protocol is the release's: clip the prediction to [min, max] first, mask GT to the
open interval (min, max), Garg crop on KITTI, median scaling, no clipping after scaling, then the
mean over images of the per-image metrics. monodepth2's variants, the least-squares alignments of
relative-depth methods and the other evaluation sets' defaults are options.
"""
from dataclasses import asdict, dataclass
from typing import Dict, Iterable, Optional

import numpy as np

from constants import DEPTH_SCALE, EVAL_CROP
from datasets.registry import get_eval_set

from .metrics import compute_errors

# Crops as fractions of (H, H, W, W): rows [top, bottom), cols [left, right).
CROPS = {
    "garg": (0.40810811, 0.99189189, 0.03594771, 0.96405229),
    "eigen": (0.3324324, 0.91351351, 0.0359477, 0.96405229),
    # Eigen's NYU crop, rows 45:471 and columns 41:601 of the 480 x 640 frames.
    "eigen_nyu": (45 / 480, 471 / 480, 41 / 640, 601 / 640),
    # Cityscapes (manydepth): rows 256:768 and columns 192:1856 of the 768 x 2048 GT left once the
    # bottom quarter (the ego car's hood) is cut off.
    "cityscapes": (256 / 768, 1.0, 192 / 2048, 1856 / 2048),
}

# How the prediction is fitted to the GT of each image before the metrics (--alignment).
ALIGNMENTS = {
    "median": "scale by median(gt) / median(pred) (the release)",
    "least_squares": "scale and shift fitted to the GT in depth by least squares (Marigold)",
    "least_squares_disparity": "scale and shift fitted in inverse depth by least squares (MiDaS)",
    "none": "metric depth as predicted",
}

# Named protocols (test.py --preset): overrides of the set's default protocol, and what they are.
PRESETS = {
    "release": ({}, "the set's default protocol (the release's on KITTI and NYUD_V2)"),
    "monodepth2": ({"clip_after_scaling": True}, "median scaling, then clipping to [min, max] (monodepth2)"),
    "garg50": ({"crop": "garg", "max_depth": 50.0}, "Garg crop and a 50 m cap (Garg et al.)"),
    "marigold": ({"alignment": "least_squares"}, "least-squares scale and shift in depth (Marigold)"),
    "midas": ({"alignment": "least_squares_disparity"}, "least-squares scale and shift in disparity (MiDaS)"),
}


@dataclass
class Protocol:
    """How a prediction in metres is compared with the ground truth."""

    min_depth: float = 1e-3
    max_depth: float = DEPTH_SCALE["KITTI"]
    crop: str = EVAL_CROP["KITTI"]
    alignment: str = "median"
    clip_after_scaling: bool = False

    def as_dict(self) -> Dict[str, object]:
        return asdict(self)


def default_protocol(dataset: str, **overrides) -> Protocol:
    """The default protocol of ``dataset`` (its registry entry) with any non-None ``overrides``."""
    spec = get_eval_set(dataset)
    values = {"max_depth": spec.max_depth, "crop": spec.crop, "alignment": spec.alignment}
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


def fit_scale_shift(x: np.ndarray, y: np.ndarray) -> tuple:
    """(s, t) minimising sum((s·x + t − y)²): the normal equations of a line fit."""
    a = np.stack([x, np.ones_like(x)], 1)
    (s, t), *_ = np.linalg.lstsq(a, y, rcond=None)
    return float(s), float(t)


def align(pred: np.ndarray, gt: np.ndarray, protocol: Protocol) -> np.ndarray:
    """The valid pixels' prediction fitted to their GT as ``protocol.alignment`` says. The two
    least-squares fits can shift depth to or below zero, so their result is always clipped to
    [min, max] (in depth or, equivalently, in inverse depth)."""
    lo, hi = protocol.min_depth, protocol.max_depth
    if protocol.alignment == "median":
        return pred * (np.median(gt) / np.median(pred))
    if protocol.alignment == "least_squares":
        s, t = fit_scale_shift(pred, gt)
        return np.clip(s * pred + t, lo, hi)
    if protocol.alignment == "least_squares_disparity":
        disparity = np.where(pred > 0, 1 / np.where(pred > 0, pred, 1), 0.0)
        s, t = fit_scale_shift(disparity, 1 / gt)
        return 1 / np.clip(s * disparity + t, 1 / hi, 1 / lo)
    return pred


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
    gt_valid = gt[mask]
    pred_valid = align(pred[mask], gt_valid, protocol)
    if protocol.clip_after_scaling:
        pred_valid = np.clip(pred_valid, lo, hi)
    return compute_errors(gt_valid, pred_valid)
