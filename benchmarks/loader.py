"""Data loading alone: samples/s of the training loader (vKITTI with augmentation) and of the KITTI
test loader (image + ground-truth projection) with 0, 2 and 4 worker processes, through the same
loaders train.py and test.py build."""
import time
import warnings
from typing import Iterable, List, Sequence, Tuple

import torch

from datasets import AugmentFlags, SyntheticDepthDataset
from datasets.registry import build_eval_dataset
from evaluation.loop import make_loader
from training.data import EpochData
from training.distributed import DistInfo

from .common import Section, Table, Target, fmt, log, size_text
from .data import BenchData
from .plan import Plan

INTRO = ("The loaders alone, as train.py (`training.data.EpochData`) and test.py (`evaluation.loop.make_loader`) "
         "build them, iterated without a network. samples/s is measured after the first batch, which "
         "carries the workers' start-up (first batch column). Compare with the samples/s the network "
         "consumes (Training and Inference): the loader keeps up when its rate is higher.")
COLUMNS = ["data", "batch", "loader workers", "samples/s", "ms/sample", "first batch (s)"]


def throughput(batches: Iterable[dict]) -> Tuple[float, float]:
    """(samples/s after the first batch, seconds to the first batch): the first batch carries the
    worker start-up, which a long run pays once."""
    start = time.perf_counter()
    first_at, first_size, total = None, 0, 0
    for batch in batches:
        size = batch["image"].shape[0]
        total += size
        if first_at is None:
            first_at, first_size = time.perf_counter(), size
    end = time.perf_counter()
    return (total - first_size) / max(end - first_at, 1e-9), first_at - start


def training_set(data: BenchData, size: Sequence[int], samples: int) -> SyntheticDepthDataset:
    """train.py's vKITTI dataset with its default augmentation, over ``samples`` list lines."""
    return SyntheticDepthDataset(str(data.data_root("vkitti")), str(data.repeated_list("vkitti", samples)),
                                 size, "VKITTI", AugmentFlags(), seed=0)


def training_throughput(dataset: SyntheticDepthDataset, batch: int, workers: int,
                        device: torch.device) -> Tuple[float, float]:
    """``throughput`` of train.py's loader (``device`` only decides pinned memory)."""
    warnings.filterwarnings("ignore", message="This DataLoader will create")  # more workers than cores: intended
    log(f"[loader] {workers} workers")
    return throughput(batch for (batch,) in EpochData([dataset], batch, workers, 0, 0, DistInfo(), device))


def measure(device: torch.device, plan: Plan, data: BenchData, table: Table) -> None:
    """``device`` only decides pinned memory, as in train.py and test.py."""
    size = plan.loader_size
    train_set = training_set(data, size, plan.loader_samples)
    test_set = build_eval_dataset("KITTI", str(data.data_root("kitti")),
                                  str(data.repeated_list("kitti", plan.loader_samples)), size)
    for workers in plan.loader_workers:
        rate, first = training_throughput(train_set, plan.loader_batch, workers, device)
        image = data.manifest["vkitti"]["size"]
        table.add(f"vKITTI training, {image[0]}×{image[1]} -> {size_text(size)}, flip/rotation/colour",
                  plan.loader_batch, workers, fmt(rate), fmt(1e3 / rate), fmt(first))
    image = data.manifest["kitti"]["size"]
    for workers in plan.loader_workers:
        rate, first = throughput(make_loader(test_set, 1, workers, device))
        table.add(f"KITTI test, {image[0]}×{image[1]} -> {size_text(size)}, GT from the scan", 1, workers,
                  fmt(rate), fmt(1e3 / rate), fmt(first))


def section(targets: List[Target], data: BenchData) -> Section:
    """Measured once, on the host, for the device that consumes the batches (CUDA when measured)."""
    target = next(t for t in reversed(targets) if t.device is not None)
    pinned = "on" if target.device.type == "cuda" else "off"
    table = Table(f"This machine's CPU, feeding {target.kind.upper()} (pinned memory {pinned})", COLUMNS)
    measure(target.device, target.plan, data, table)
    return Section("Data loading", INTRO, [table])
