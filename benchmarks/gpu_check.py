"""The GPU check: correctness on CUDA against the CPU, inference per mode, training at the paper's
scale, AMP loss curves, the input pipeline, the evaluation loop and DDP/NCCL, each a row with
PASS/FAIL/SKIP and its figures, within one time budget.

    python benchmarks/gpu_check.py                      # on CUDA: writes docs/gpu_check.json and
                                                        # the GPU-check block of docs/performance.md
    python benchmarks/gpu_check.py --device cpu --quick # the same code paths on a CPU, tiny sizes

Without CUDA it runs the --quick plan on the CPU (CUDA-only rows SKIP, with the reason), writes
runs/gpu_check_cpu.json and leaves docs/ alone. The exit status is 1 when a row FAILs.
"""
import argparse
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import List, Optional

if not __package__:  # run as a script: import from the repository, not from benchmarks/ itself
    sys.path[0] = str(Path(__file__).resolve().parents[1])

import torch  # noqa: E402

from benchmarks import checks  # noqa: E402
from benchmarks.checks import Budget, Row  # noqa: E402
from benchmarks.common import ROOT, log, machine_info  # noqa: E402
from benchmarks.data import prepare  # noqa: E402
from benchmarks.gpu_sections import SECTIONS, Run  # noqa: E402
from benchmarks.plan import GPU_CHECK, GPU_CHECK_QUICK  # noqa: E402

CUDA_OUT = "docs/gpu_check.json"
CPU_OUT = "runs/gpu_check_cpu.json"
PERFORMANCE = "docs/performance.md"


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", choices=("auto", "cuda", "cpu"), default="auto",
                   help="auto: CUDA when available, else the CPU (which implies --quick)")
    p.add_argument("--quick", action="store_true", help="tiny sizes: checks the code paths in about 2 minutes")
    p.add_argument("--budget_min", type=float, default=8.0,
                   help="total time budget in minutes; the sections scale their loops to it")
    p.add_argument("--sections", nargs="+", choices=list(SECTIONS), default=list(SECTIONS),
                   help="sections to run, in their fixed order")
    p.add_argument("--out", default=None, help=f"JSON result (default: {CUDA_OUT} on CUDA, {CPU_OUT} otherwise)")
    p.add_argument("--performance", default=PERFORMANCE,
                   help="markdown file whose GPU-check block a CUDA run rewrites; '-' for none")
    return p


def run_sections(run: Run, names: List[str], budget: Budget) -> List[Row]:
    """Every section in turn; one that raises becomes a FAIL row, and the rest still run."""
    rows: List[Row] = []
    for name in names:
        seconds = budget.take(name)
        log(f"== {name}: {seconds:.0f} s of {budget.left():.0f} s left")
        try:
            rows += SECTIONS[name][1](run, seconds)
        except Exception as exc:  # one section's crash must not hide the others' results
            traceback.print_exc()
            rows.append(Row(name, f"{name} section", checks.FAIL, detail=f"crashed: {type(exc).__name__}: {exc}"))
    return rows


def main(argv: Optional[List[str]] = None) -> int:
    p = parser()
    args = p.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        p.error("--device cuda: CUDA is not available on this machine")
    device = torch.device("cuda" if args.device != "cpu" and torch.cuda.is_available() else "cpu")
    if device.type == "cpu" and not args.quick:
        log("no CUDA device: running the --quick plan on the CPU")
        args.quick = True
    plan = GPU_CHECK_QUICK if args.quick else GPU_CHECK
    start = time.monotonic()
    budget = Budget(60 * args.budget_min, {name: SECTIONS[name][0] for name in args.sections})
    with tempfile.TemporaryDirectory(prefix="s2r-gpu-check-") as tmp:
        log(f"rendering the sample world into {tmp}")
        data = prepare(Path(tmp), plan.world)
        rows = run_sections(Run(device, plan, data, Path(tmp)), args.sections, budget)
    header = {"command": " ".join(["python benchmarks/gpu_check.py", *(argv if argv is not None else sys.argv[1:])]),
              "device": device.type, "plan": plan.name, "quick": args.quick, "budget_s": 60 * args.budget_min,
              "wall_s": time.monotonic() - start, "machine": machine_info()}
    text = checks.markdown(header, rows)
    print(text)
    out = ROOT / (args.out or (CUDA_OUT if device.type == "cuda" else CPU_OUT))
    checks.write_json(out, header, rows)
    log(f"wrote {out}")
    if device.type == "cuda" and args.performance != "-":
        performance = ROOT / args.performance
        old = performance.read_text(encoding="utf-8") if performance.exists() else "# Performance\n"
        performance.write_text(checks.replace_block(old, checks.block(text)), encoding="utf-8")
        log(f"wrote the GPU-check block of {performance}")
    return 1 if checks.failed(rows) else 0


if __name__ == "__main__":
    sys.exit(main())
