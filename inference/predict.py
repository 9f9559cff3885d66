"""Batched prediction as test.py makes it, and the resize of a prediction to another size."""
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from models import S2ROutput, depth_to_metres


@torch.inference_mode()
def predict(model: torch.nn.Module, images: torch.Tensor, post_process: bool = False) -> S2ROutput:
    """Network outputs for a batch; with ``post_process`` the prediction is the mean of the image's
    and its mirror's prediction (mirrored back). Returns the S2ROutput of the unflipped images,
    whose ``prediction`` is the (possibly averaged) prediction."""
    if not post_process:
        return model(images)
    n = images.shape[0]
    out = model(torch.cat([images, images.flip(-1)]))
    pred = (out.prediction[:n] + out.prediction[n:].flip(-1)) / 2
    return type(out)(out.structure[:n], out.attention[:n], [d[:n] for d in out.depth[:-1]] + [pred])


def upsample(values: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """One (1, h, w) network map bilinearly resized (align_corners=True) to ``size``: (H, W)."""
    return F.interpolate(values[None].float(), size=tuple(size), mode="bilinear", align_corners=True)[0, 0]


def to_gt_size(pred: torch.Tensor, size: Sequence[int], depth_scale: float) -> np.ndarray:
    """One (1, h, w) prediction resized to ``size`` (the release resizes first), in metres."""
    return depth_to_metres(upsample(pred, size), depth_scale).cpu().numpy()
