"""The evaluation loop shared by test.py and train.py's per-epoch validation: the network's
predictions, or another method's saved ones (evaluation/external.py), scored frame by frame."""
from typing import Callable, Iterable, Iterator, List, Optional, Tuple

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from datasets import DatasetError, collate_eval
from inference.predict import predict, to_gt_size
from utils.runtime import worker_init

from .external import PredictionSource
from .metrics import mean_metrics
from .protocol import Protocol, evaluate_depth
from .results import EvalResult

def make_loader(dataset: Dataset, batch_size: int, workers: int, device: torch.device) -> DataLoader:
    return DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=workers,
                      collate_fn=collate_eval, pin_memory=device.type == "cuda",
                      worker_init_fn=worker_init, persistent_workers=False)


FrameHook = Callable[[int, str, np.ndarray, np.ndarray], None]
# One frame: index, path, prediction in metres at the GT's size, GT.
Frame = Tuple[int, str, np.ndarray, np.ndarray]


def network_frames(model: torch.nn.Module, loader: DataLoader, depth_scale: float, device: torch.device,
                   post_process: bool = False) -> Iterator[List[Frame]]:
    """The network's prediction of every frame, one list per loader batch."""
    model.eval()
    for batch in loader:
        images = batch["image"].to(device, non_blocking=True)
        prediction = predict(model, images, post_process).prediction
        yield [(index, batch["path"][i], to_gt_size(prediction[i], gt.shape, depth_scale), gt)
               for i, (index, gt) in enumerate(zip(batch["index"].tolist(), batch["depth"]))]


def saved_frames(source: PredictionSource, loader: DataLoader) -> Iterator[List[Frame]]:
    """Another method's saved prediction of every frame, one list per loader batch."""
    for batch in loader:
        yield [(index, batch["path"][i], source.depth(index, batch["path"][i], gt.shape), gt)
               for i, (index, gt) in enumerate(zip(batch["index"].tolist(), batch["depth"]))]


def score(batches: Iterable[List[Frame]], protocol: Protocol, on_frame: Optional[FrameHook] = None,
          progress: bool = True, total: Optional[int] = None) -> EvalResult:
    """Mean per-image metrics over the frames; ``on_frame(index, path, pred_m, gt)`` is
    called for every frame (to save predictions or figures)."""
    per_image, skipped, iterations = [], [], 0
    bar = tqdm(batches, desc="evaluating", unit="batch", total=total, disable=not progress, dynamic_ncols=True)
    for frames in bar:
        iterations += 1
        for index, path, pred, gt in frames:
            if on_frame is not None:
                on_frame(index, path, pred, gt)
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


def evaluate(model: torch.nn.Module, loader: DataLoader, protocol: Protocol, depth_scale: float,
             device: torch.device, post_process: bool = False, on_frame: Optional[FrameHook] = None,
             progress: bool = True) -> EvalResult:
    """Mean per-image metrics of the network's predictions over the loader."""
    return score(network_frames(model, loader, depth_scale, device, post_process), protocol, on_frame,
                 progress, len(loader))
