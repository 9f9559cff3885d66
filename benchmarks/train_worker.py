"""One training configuration, timed in a process of its own (so that its peak memory is its own):
``python -m benchmarks.train_worker --out result.json -- <train.py flags>``, also under torchrun.

It builds the stage exactly as train.py does (same flags, same ``build_stage``), loads the batches
it needs first, then times the trainer's ``train_step`` on each (after moving it to the device): the
forward pass, losses, finiteness check, backward (with the gradient all-reduce under torchrun) and
optimiser step. Rank 0 writes the result: the step times, every step's total loss, the fp16 loss
scale and the memory peaks. On CUDA, float32 is IEEE unless ``--tf32``.
"""
import argparse
import itertools
import json
import sys
import time
from pathlib import Path
from typing import List, Optional

import torch

from options.train_options import parse_train_args
from training.data import EpochData, to_device
from training.distributed import init_distributed, shutdown_distributed
from inference.modes import set_tf32
from training.precision import MixedPrecision
from training.stages import build_stage
from training.trainer import train_step
from utils.runtime import seed_everything

from .common import proc_status_kib, sync


def collect_batches(stage, batch_size: int, count: int, seed: int, sampling: str, dist, device) -> List[tuple]:
    """``count`` full batches from the stage's datasets, cycling epochs when the data is short."""
    batches: List[tuple] = []
    for epoch in itertools.count():
        full = [b for b in EpochData(stage.datasets, batch_size, 0, seed, epoch, dist, device, sampling=sampling)
                if b[0]["image"].shape[0] == batch_size]
        if not full:
            raise ValueError(f"the training list has fewer than {batch_size} samples per process")
        batches.extend(full)
        if len(batches) >= count:
            return batches[:count]


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, help="JSON file for the result (written by rank 0)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed steps first")
    parser.add_argument("--steps", type=int, default=2, help="timed steps")
    parser.add_argument("--tf32", action="store_true", help="TF32 convolutions and matmuls (CUDA)")
    parser.add_argument("train_flags", nargs=argparse.REMAINDER, help="train.py flags, after --")
    args = parser.parse_args(argv)
    flags = args.train_flags[1:] if args.train_flags[:1] == ["--"] else args.train_flags
    train_args = parse_train_args(flags)
    dist, device = init_distributed(train_args.device)
    if device.type == "cuda":
        set_tf32(args.tf32)
    try:
        seed_everything(train_args.seed)
        amp = MixedPrecision(train_args.amp, device, warn=False)
        stage = build_stage(train_args, device, dist, warn=lambda message: None)
        stage.train()
        batches = collect_batches(stage, train_args.batchSize, args.warmup + args.steps, train_args.seed,
                                  train_args.sampling, dist, device)
        rss_before = proc_status_kib("VmRSS")
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        times, losses = [], []
        for i, batch in enumerate(batches):
            sync(device)
            start = time.perf_counter()
            losses.append(train_step(stage, to_device(batch, device), amp, dist, device)[0]["total"])
            sync(device)
            if i >= args.warmup:
                times.append(time.perf_counter() - start)
        if dist.is_main:
            scaler = amp.scaler
            result = {"step_s": times, "losses": losses, "world_size": dist.world_size, "batch": train_args.batchSize,
                      "threads": torch.get_num_threads(), "rss_before_kib": rss_before,
                      "peak_rss_kib": proc_status_kib("VmHWM"),
                      "loss_scale": scaler.get_scale() if scaler.is_enabled() else None}
            if device.type == "cuda":
                result["peak_cuda_bytes"] = torch.cuda.max_memory_allocated(device)
            Path(args.out).write_text(json.dumps(result))
    finally:
        shutdown_distributed()
    return 0


if __name__ == "__main__":
    sys.exit(main())
