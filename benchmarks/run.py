"""Benchmarks: inference speed per mode, the evaluation loop, reading each evaluation set, training
steps and memory, data loading and multi-process scaling; printed as markdown and written to docs/performance.md.

    python benchmarks/run.py            # CPU at reduced sizes (+ CUDA at full sizes when present)
    python benchmarks/run.py --full     # the full sizes on the CPU too
    python benchmarks/run.py --smoke    # seconds: checks the script, the numbers mean nothing
"""
import sys
import tempfile
import time
from pathlib import Path
from typing import List

if not __package__:  # run as a script: import from the repository, not from benchmarks/ itself
    sys.path[0] = str(Path(__file__).resolve().parents[1])

import torch  # noqa: E402

from benchmarks import eval_loop, eval_sets, inference, loader, training  # noqa: E402
from benchmarks.checks import current_block  # noqa: E402
from benchmarks.common import NO_GPU, ROOT, Target, log, machine_info  # noqa: E402
from benchmarks.data import prepare  # noqa: E402
from benchmarks.plan import select  # noqa: E402
from benchmarks.report import render  # noqa: E402
from options.benchmark_options import benchmark_parser  # noqa: E402

SECTIONS = {"inference": inference.section, "eval": eval_loop.section, "evalsets": eval_sets.section,
            "training": training.section, "loader": loader.section}


def make_targets(device: str, full: bool, smoke: bool) -> List[Target]:
    """The CPU and CUDA targets, each measured or marked with why it is not."""
    cpu_plan, cuda_plan, _ = select(full, smoke)
    cuda_available = torch.cuda.is_available()
    cpu = Target("cpu", torch.device("cpu"), cpu_plan) if device != "cuda" else \
        Target("cpu", None, cpu_plan, "not measured (--device cuda)")
    if not cuda_available:
        cuda = Target("cuda", None, cuda_plan, NO_GPU)
    elif device == "cpu":
        cuda = Target("cuda", None, cuda_plan, "not measured (--device cpu)")
    else:
        cuda = Target("cuda", torch.device("cuda"), cuda_plan)
    return [cpu, cuda]


def main(argv=None) -> int:
    parser = benchmark_parser()
    args = parser.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: CUDA is not available on this machine")
    start = time.perf_counter()
    targets = make_targets(args.device, args.full, args.smoke)
    with tempfile.TemporaryDirectory(prefix="s2r-bench-") as tmp:
        log(f"rendering the sample world into {tmp}")
        data = prepare(Path(tmp), select(args.full, args.smoke)[2])
        sections = [SECTIONS[name](targets, data) for name in SECTIONS if name in args.sections]
    machine = machine_info()
    machine["benchmark run time"] = f"{(time.perf_counter() - start) / 60:.1f} min"
    command = " ".join(["python benchmarks/run.py", *(argv if argv is not None else sys.argv[1:])])
    out = ROOT / args.out if args.out != "-" else None
    previous = out.read_text(encoding="utf-8") if out and out.exists() else ""
    # the GPU-check block is benchmarks/gpu_check.py's: kept as it is
    text = render(machine, command, [t.label for t in targets], sections) + "\n\n" + current_block(previous)
    print(text)
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text + "\n", encoding="utf-8")
        log(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
