"""The standard depth metrics on matched valid pixels, and the release's reduction over images."""
from typing import Dict, List

import numpy as np

from constants import METRIC_NAMES


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


def mean_metrics(per_image: List[Dict[str, float]]) -> Dict[str, float]:
    """Mean over images of each per-image metric (the release's reduction)."""
    if not per_image:
        raise ValueError("no image had a valid ground-truth pixel; nothing to average")
    return {name: float(np.mean([m[name] for m in per_image])) for name in METRIC_NAMES}
