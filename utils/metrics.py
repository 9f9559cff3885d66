"""Depth metrics and the evaluation protocol (spec §4).

The default protocol is the release's: clip the prediction to [min, max] first, mask GT to the
open interval (min, max), Garg crop on KITTI, median scaling, no clipping after scaling, then the
mean over images of the per-image metrics. monodepth2's variants are options.
"""
from dataclasses import asdict, dataclass
from typing import Dict, Iterable, List, Optional

import numpy as np

METRIC_NAMES = ("abs_rel", "sq_rel", "rmse", "rmse_log", "a1", "a2", "a3", "log10")
RELEASE_METRICS = METRIC_NAMES[:7]  # the columns of the release's evalog.txt

# Crops as fractions of (H, H, W, W): rows [top, bottom), cols [left, right).
CROPS = {
    "garg": (0.40810811, 0.99189189, 0.03594771, 0.96405229),
    "eigen": (0.3324324, 0.91351351, 0.0359477, 0.96405229),
}
DATASET_DEFAULTS = {"KITTI": {"max_depth": 80.0, "crop": "garg"},
                    "NYUD_V2": {"max_depth": 8.0, "crop": "none"}}


@dataclass
class Protocol:
    """How a prediction in metres is compared with the ground truth."""

    min_depth: float = 1e-3
    max_depth: float = 80.0
    crop: str = "garg"
    median_scaling: bool = True
    clip_after_scaling: bool = False

    def as_dict(self) -> Dict[str, object]:
        return asdict(self)


def default_protocol(dataset: str, **overrides) -> Protocol:
    """The release's protocol for ``dataset`` with any non-None ``overrides`` applied."""
    values = dict(DATASET_DEFAULTS[dataset])
    values.update({k: v for k, v in overrides.items() if v is not None})
    return Protocol(**values)


def compute_errors(gt: np.ndarray, pred: np.ndarray) -> Dict[str, float]:
    """The standard metrics on matching 1-D arrays of valid, positive depths."""
    gt = gt.astype(np.float64)
    pred = pred.astype(np.float64)
    thresh = np.maximum(gt / pred, pred / gt)
    diff = gt - pred
    return {
        "abs_rel": float(np.mean(np.abs(diff) / gt)),
        "sq_rel": float(np.mean(diff ** 2 / gt)),
        "rmse": float(np.sqrt(np.mean(diff ** 2))),
        "rmse_log": float(np.sqrt(np.mean((np.log(gt) - np.log(pred)) ** 2))),
        "a1": float(np.mean(thresh < 1.25)),
        "a2": float(np.mean(thresh < 1.25 ** 2)),
        "a3": float(np.mean(thresh < 1.25 ** 3)),
        "log10": float(np.mean(np.abs(np.log10(gt) - np.log10(pred)))),
    }


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


def mean_metrics(per_image: List[Dict[str, float]]) -> Dict[str, float]:
    """Mean over images of each per-image metric (the release's reduction)."""
    if not per_image:
        raise ValueError("no image had a valid ground-truth pixel; nothing to average")
    return {name: float(np.mean([m[name] for m in per_image])) for name in METRIC_NAMES}


def format_table(metrics: Dict[str, float], names=METRIC_NAMES) -> str:
    """A two-line fixed-width table, monodepth2 style."""
    header = " | ".join(f"{n:>8}" for n in names)
    values = " | ".join(f"{metrics[n]:8.4f}" for n in names)
    return f"{header}\n{values}"
