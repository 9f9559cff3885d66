"""The evaluation loop shared by test.py and train.py's per-epoch validation."""
from typing import Callable, Optional, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from constants import LOAD_SIZE
from datasets import DatasetError, KITTIEigenTest, NYUDv2Test, collate_eval
from inference.predict import predict, to_gt_size
from utils.runtime import worker_init

from .metrics import mean_metrics
from .protocol import Protocol, evaluate_depth
from .results import EvalResult


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


FrameHook = Callable[[int, str, np.ndarray, np.ndarray], None]


def evaluate(model: torch.nn.Module, loader: DataLoader, protocol: Protocol, depth_scale: float,
             device: torch.device, post_process: bool = False, on_frame: Optional[FrameHook] = None,
             progress: bool = True) -> EvalResult:
    """Mean per-image metrics over the loader. ``on_frame(index, path, pred_m, gt)`` is
    called for every frame (to save predictions or figures)."""
    model.eval()
    per_image, skipped, iterations = [], [], 0
    bar = tqdm(loader, desc="evaluating", unit="batch", disable=not progress, dynamic_ncols=True)
    for batch in bar:
        iterations += 1
        images = batch["image"].to(device, non_blocking=True)
        prediction = predict(model, images, post_process).prediction
        for i, (index, gt) in enumerate(zip(batch["index"].tolist(), batch["depth"])):
            pred = to_gt_size(prediction[i], gt.shape, depth_scale)
            if on_frame is not None:
                on_frame(index, batch["path"][i], pred, gt)
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
    return EvalResult(mean_metrics(per_image), len(per_image), iterations, skipped)
