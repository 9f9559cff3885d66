"""Training: seconds per step and peak memory of each stage (every configuration in a fresh process,
so that its peak is its own), and the scaling from one to two processes under torchrun."""
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Dict, List, Sequence

import torch

from constants import STAGES

from .common import ROOT, Section, Table, Target, fmt, log, median, not_measured, size_text
from .data import BenchData
from .plan import Plan

INTRO = ("One configuration per fresh process (`benchmarks/train_worker.py`), built by train.py's own "
         "`build_stage` from train.py's flags; float32, random weights, sample-world data. A step is the "
         "trainer's `train_step`: forward, losses, finiteness check, backward and optimiser update (both updates, "
         "discriminator and generator, in stage 1); the batches are loaded before the clock starts. "
         "Median over the timed steps after one warm-up step. CPU memory is the process's resident set "
         "(`/proc/self/status`: VmRSS before the first step, VmHWM at the end), which counts torch's "
         "allocations; CUDA memory is `torch.cuda.max_memory_allocated`.")
SCALING_NOTE = ("Under `torchrun --standalone` (gloo on CPU, NCCL on CUDA), per-process batch fixed, the cores "
                "split evenly between the processes (OMP_NUM_THREADS); samples/s counts all processes. On a "
                "CPU the processes share the same cores, so this shows the cost of the gradient all-reduce "
                "rather than a speed-up.")
WORKER = ["-m", "benchmarks.train_worker"]
TIMEOUT_S = 3600
SHORT_NAMES = {stage: f"{i} {stage}" for i, stage in enumerate(STAGES, 1)}
CPU_COLUMNS = ["stage", "batch", "input", "s/step", "samples/s", "RSS before the first step", "peak RSS"]
CUDA_COLUMNS = ["stage", "batch", "input", "s/step", "samples/s", "peak CUDA memory allocated", "host peak RSS"]
DDP_COLUMNS = ["processes", "backend", "batch per process", "threads per process", "s/step", "samples/s",
               "speed-up over 1 process"]


def train_flags(data: BenchData, stage: str, batch: int, size: Sequence[int], device: str,
                processes: int = 1) -> List[str]:
    """train.py flags for one configuration; the vKITTI list is repeated so that every process gets
    enough full batches."""
    ckpt = data.checkpoints
    return ["--train_stage", stage, "--syn_dataset", "VKITTI", "--syn_root", str(data.data_root("vkitti")),
            "--syn_train_datafile", str(data.repeated_list("vkitti", max(16, 4 * batch * processes))),
            "--style_root", str(data.data_root("style")), "--style_datafile", str(data.list_path("style")),
            "--batchSize", str(batch), "--loadSize", str(size[0]), str(size[1]),
            "--Shared_Struct_Encoder_path", str(ckpt["struct_encoder"]),
            "--Struct_Decoder_path", str(ckpt["struct_decoder"]), "--dsa_pretrained", "none",
            "--seed", "0", "--device", device, "--nThreads", "0"]


def run_worker(launcher: List[str], flags: List[str], steps: int, env: Dict[str, str],
               timeout_s: float = TIMEOUT_S) -> dict:
    """Run benchmarks/train_worker.py (via ``launcher``) and return its result."""
    with tempfile.TemporaryDirectory(prefix="s2r-bench-") as tmp:
        out = Path(tmp) / "result.json"
        cmd = [*launcher, "--out", str(out), "--warmup", "1", "--steps", str(steps), "--", *flags]
        proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout_s)
        if proc.returncode or not out.exists():
            lines = (proc.stderr or proc.stdout).strip().splitlines() or ["no output"]
            raise RuntimeError(f"exit status {proc.returncode}: {lines[-1][:200]}")
        return json.loads(out.read_text())


def _backend(kind: str, processes: int) -> str:
    return "none" if processes == 1 else "nccl" if kind == "cuda" else "gloo"


def _env(threads: int = 0) -> Dict[str, str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    if threads:
        env["OMP_NUM_THREADS"] = str(threads)
    return env


def _mib(kib) -> str:
    return f"{kib / 1024:.0f} MiB" if kib else "n/a"


def measure_steps(device: torch.device, plan: Plan, data: BenchData, table: Table) -> None:
    columns = table.columns
    for stage, batch, size, steps in plan.train:
        log(f"[training] {device.type} {stage} batch {batch} at {size_text(size)}")
        cells = [SHORT_NAMES[stage], batch, size_text(size)]
        try:
            result = run_worker([sys.executable, *WORKER], train_flags(data, stage, batch, size, device.type),
                                steps, _env())
        except (RuntimeError, subprocess.TimeoutExpired) as exc:
            table.add(*cells, *not_measured(f"failed: {exc}", len(columns) - 3))
            continue
        step = median(result["step_s"])
        if device.type == "cuda":
            memory = [f"{result['peak_cuda_bytes'] / 2 ** 20:.0f} MiB", _mib(result["peak_rss_kib"])]
        else:
            memory = [_mib(result["rss_before_kib"]), _mib(result["peak_rss_kib"])]
        table.add(*cells, fmt(step), fmt(batch / step), *memory)


def measure_scaling(device: torch.device, plan: Plan, data: BenchData, table: Table) -> None:
    """samples/s of one and two processes under torchrun (gloo on CPU, NCCL on CUDA)."""
    stage, batch, size, steps = plan.ddp
    cores = os.cpu_count() or 1
    single = None
    for processes in (1, 2):
        threads = max(1, cores // processes)
        cells = [processes, _backend(device.type, processes), batch, threads]
        if device.type == "cuda" and processes > torch.cuda.device_count():
            table.add(*cells, *not_measured(f"not measured (needs {processes} GPUs, this machine has "
                                            f"{torch.cuda.device_count()})", 3))
            continue
        log(f"[scaling] {device.type} {processes} process(es)")
        launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node",
                    str(processes), *WORKER]
        try:
            result = run_worker(launcher, train_flags(data, stage, batch, size, device.type, processes), steps,
                                _env(threads))
        except (RuntimeError, subprocess.TimeoutExpired) as exc:
            table.add(*cells, *not_measured(f"failed: {exc}", 3))
            continue
        step = median(result["step_s"])
        rate = batch * processes / step
        if processes == 1:
            single = rate
        table.add(*cells, fmt(step), fmt(rate), f"{rate / single:.2f}x" if single else "n/a")
    return table


def section(targets: List[Target], data: BenchData) -> Section:
    result = Section("Training", INTRO)
    scaling = []
    for target in targets:
        columns = CUDA_COLUMNS if target.kind == "cuda" else CPU_COLUMNS
        steps = Table(target.label, columns)
        stage, batch, size, _ = target.plan.ddp
        ddp = Table(f"Multi-process scaling, {target.kind.upper()}: {SHORT_NAMES[stage]} at {size_text(size)}",
                    DDP_COLUMNS)
        if target.device is not None:
            measure_steps(target.device, target.plan, data, steps)
            measure_scaling(target.device, target.plan, data, ddp)
        else:
            for stage_name, batch_size, input_size, _ in target.plan.train:
                steps.add(SHORT_NAMES[stage_name], batch_size, size_text(input_size),
                          *not_measured(target.reason, len(columns) - 3))
            for processes in (1, 2):
                ddp.add(processes, _backend(target.kind, processes), batch, "—", *not_measured(target.reason, 3))
        result.tables.append(steps)
        scaling.append(ddp)
    scaling[-1].note = SCALING_NOTE
    result.tables += scaling
    return result
