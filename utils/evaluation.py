"""The evaluation loop shared by test.py and train.py's per-epoch validation."""
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from datasets import DatasetError, KITTIEigenTest, NYUDv2Test, collate_eval
from datasets.kitti import DEFAULT_LOAD_SIZE as KITTI_LOAD_SIZE
from datasets.nyu import DEFAULT_LOAD_SIZE as NYU_LOAD_SIZE
from models import depth_to_metres

from .metrics import RELEASE_METRICS, Protocol, evaluate_depth, format_table, mean_metrics
from .runtime import worker_init

# The network's [-1, 1] output spans 0..DEPTH_SCALE metres (training maps GT the same way).
DEPTH_SCALE = {"KITTI": 80.0, "NYUD_V2": 8.0}
LOAD_SIZE = {"KITTI": KITTI_LOAD_SIZE, "NYUD_V2": NYU_LOAD_SIZE}


def build_test_dataset(dataset: str, root: str, list_file: str, load_size: Optional[Sequence[int]] = None,
                       gt_cache: Optional[str] = None) -> Dataset:
    """The KITTI Eigen or NYUD-v2 test set at ``load_size`` (dataset default when None)."""
    load_size = tuple(load_size) if load_size else LOAD_SIZE[dataset]
    if dataset == "KITTI":
        return KITTIEigenTest(root, list_file, load_size, gt_cache)
    if gt_cache:
        raise DatasetError("--gt_cache applies to KITTI only")
    return NYUDv2Test(root, list_file, load_size)


def make_loader(dataset: Dataset, batch_size: int, workers: int, device: torch.device) -> DataLoader:
    return DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=workers,
                      collate_fn=collate_eval, pin_memory=device.type == "cuda",
                      worker_init_fn=worker_init, persistent_workers=False)


@torch.inference_mode()
def predict(model: torch.nn.Module, images: torch.Tensor, post_process: bool = False):
    """Network outputs for a batch; with ``post_process`` the prediction is the mean of the image's
    and its mirror's prediction (mirrored back). Returns the S2ROutput of the unflipped images,
    whose ``depth[-1]`` holds the (possibly averaged) prediction."""
    if not post_process:
        return model(images)
    n = images.shape[0]
    out = model(torch.cat([images, images.flip(-1)]))
    pred = (out.depth[-1][:n] + out.depth[-1][n:].flip(-1)) / 2
    return type(out)(out.structure[:n], out.attention[:n], [d[:n] for d in out.depth[:-1]] + [pred])


def upsample(values: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """One (1, h, w) network map bilinearly resized (align_corners=True) to ``size``: (H, W)."""
    return F.interpolate(values[None].float(), size=tuple(size), mode="bilinear", align_corners=True)[0, 0]


def to_gt_size(pred: torch.Tensor, size: Sequence[int], depth_scale: float) -> np.ndarray:
    """One (1, h, w) prediction resized to ``size`` (the release resizes first), in metres."""
    return depth_to_metres(upsample(pred, size), depth_scale).cpu().numpy()


@dataclass
class EvalResult:
    metrics: Dict[str, float]
    n_images: int
    skipped: List[int] = field(default_factory=list)  # indices without a valid GT pixel


FrameHook = Callable[[int, str, np.ndarray, np.ndarray, object, int], None]


def evaluate(model: torch.nn.Module, loader: DataLoader, protocol: Protocol, depth_scale: float,
             device: torch.device, post_process: bool = False, on_frame: Optional[FrameHook] = None,
             progress: bool = True) -> EvalResult:
    """Mean per-image metrics over the loader. ``on_frame(index, path, pred_m, gt, outputs, i)`` is
    called for every frame (to save predictions or figures)."""
    model.eval()
    per_image, skipped = [], []
    bar = tqdm(loader, desc="evaluating", unit="batch", disable=not progress, dynamic_ncols=True)
    for batch in bar:
        images = batch["image"].to(device, non_blocking=True)
        outputs = predict(model, images, post_process)
        for i, (index, gt) in enumerate(zip(batch["index"].tolist(), batch["depth"])):
            pred = to_gt_size(outputs.depth[-1][i], gt.shape, depth_scale)
            if on_frame is not None:
                on_frame(index, batch["path"][i], pred, gt, outputs, i)
            metrics = evaluate_depth(pred, gt, protocol)
            if metrics is None:
                skipped.append(index)
                continue
            per_image.append(metrics)
        if per_image:
            bar.set_postfix(abs_rel=f"{np.mean([m['abs_rel'] for m in per_image]):.4f}")
    if not per_image:
        raise DatasetError(f"none of the {len(skipped)} frames has a valid ground-truth pixel "
                           f"(depth in ({protocol.min_depth:g}, {protocol.max_depth:g}) m inside the "
                           f"{protocol.crop} crop); nothing to evaluate")
    return EvalResult(mean_metrics(per_image), len(per_image), skipped)


def write_results(out_dir: os.PathLike, result: EvalResult, protocol: Protocol, extra: Optional[dict] = None) -> None:
    """``evalog.txt`` in the release's layout and ``metrics.json`` at full precision."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with open(out_dir / "evalog.txt", "w", encoding="utf-8") as f:
        f.write(", ".join(RELEASE_METRICS) + "\n")
        f.write(", ".join(f"{result.metrics[n]:.6f}" for n in RELEASE_METRICS) + "\n")
    payload = {"metrics": result.metrics, "n_images": result.n_images, "protocol": protocol.as_dict(),
               "skipped_no_valid_gt": result.skipped}
    payload.update(extra or {})
    with open(out_dir / "metrics.json", "w", encoding="utf-8") as f:
        json.dump(payload, f, indent=2)


def summary(result: EvalResult, protocol: Protocol) -> str:
    """Human-readable report: the protocol, then the metrics table."""
    p = protocol
    lines = [f"protocol: depth in ({p.min_depth:g}, {p.max_depth:g}) m, crop {p.crop}, "
             f"{'median scaling' if p.median_scaling else 'no median scaling'}, "
             f"clip {'after' if p.clip_after_scaling else 'before'} scaling; "
             f"{result.n_images} images"]
    if result.skipped:
        lines.append(f"warning: {len(result.skipped)} frame(s) had no valid ground truth and were "
                     f"skipped: indices {result.skipped[:10]}")
    lines.append(format_table(result.metrics))
    return "\n".join(lines)
