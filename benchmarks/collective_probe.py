"""An all-reduce over every process of a torchrun job, each rank adding 1:
``torchrun --nproc_per_node N -m benchmarks.collective_probe --backend nccl --out probe.json``.
Rank 0 writes the sum (N when the collective works) and how long the first all-reduce took."""
import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import List, Optional

import torch
import torch.distributed as dist


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--backend", choices=("nccl", "gloo"), required=True)
    parser.add_argument("--out", required=True, help="JSON file for the result (written by rank 0)")
    args = parser.parse_args(argv)
    if args.backend == "nccl":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
        dist.init_process_group("nccl", device_id=device)
    else:
        device = torch.device("cpu")
        dist.init_process_group("gloo")
    try:
        value = torch.ones(1, device=device)
        start = time.perf_counter()
        dist.all_reduce(value)
        total = value.item()  # waits for the collective
        seconds = time.perf_counter() - start
        if dist.get_rank() == 0:
            Path(args.out).write_text(json.dumps({"backend": args.backend, "world size": dist.get_world_size(),
                                                  "sum": total, "first all-reduce (s)": seconds}))
    finally:
        dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
