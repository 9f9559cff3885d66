"""What every benchmark section shares: timing, memory readings, the machine's description, a load
that keeps every core busy, and the tables the report is made of."""
import datetime
import os
import platform
import statistics
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, Iterator, List, Optional, Sequence

import torch

from .plan import Plan

ROOT = Path(__file__).resolve().parents[1]
NO_GPU = "not measured (no GPU in this run)"


def not_measured(reason: str, cells: int) -> List[str]:
    """Value cells of a configuration that was not measured: the reason once, then dashes."""
    return [reason] + ["—"] * (cells - 1)


def sync(device: torch.device) -> None:
    """Wait for queued CUDA work, so that a wall-clock time covers it."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_calls(fn: Callable[[int], object], device: torch.device, warmup: int, repeats: int,
               budget_s: float = float("inf")) -> List[float]:
    """Seconds of ``fn(i)`` for i = warmup .. warmup + repeats - 1, after ``warmup`` untimed calls.
    Stops early, after at least one timed call, once the timed calls took ``budget_s``."""
    for i in range(warmup):
        fn(i)
    sync(device)
    times: List[float] = []
    for i in range(warmup, warmup + repeats):
        start = time.perf_counter()
        fn(i)
        sync(device)
        times.append(time.perf_counter() - start)
        if sum(times) >= budget_s:
            break
    return times


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def median_ms(seconds: Sequence[float]) -> float:
    """The median of ``seconds`` in milliseconds."""
    return 1e3 * median(seconds)


def proc_status_kib(field_name: str) -> Optional[int]:
    """A ``/proc/self/status`` memory field in KiB (VmRSS: resident now; VmHWM: peak resident), which
    counts what torch allocates outside Python's allocator too; None where /proc is missing."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith(field_name + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def reset_peak_rss() -> bool:
    """Reset VmHWM to the resident set now (Linux ``clear_refs``), so that the next reading is the
    peak of what follows; False where the system does not allow it."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as f:
            f.write("5")
    except OSError:
        return False
    return True


_BUSY_LOOP = """
import sys, torch
torch.set_num_threads(int(sys.argv[1]))
x, w = torch.randn(1, 64, 96, 320), torch.randn(64, 64, 3, 3)
torch.conv2d(x, w, padding=1)
print("ready", flush=True)
while True:
    torch.conv2d(x, w, padding=1)
"""


@contextmanager
def busy_cores(threads: Optional[int] = None) -> Iterator[None]:
    """Every core busy with convolutions, as during evaluation, where the network occupies all cores
    while the loader workers decode images and project scans."""
    threads = threads or os.cpu_count() or 1
    proc = subprocess.Popen([sys.executable, "-c", _BUSY_LOOP, str(threads)], stdout=subprocess.PIPE,
                            text=True)
    try:
        if proc.stdout.readline().strip() != "ready":
            raise RuntimeError("the busy-core load did not start")
        yield
    finally:
        proc.kill()
        proc.wait()


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _ram_gib() -> str:
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return f"{int(line.split()[1]) / 2 ** 20:.1f} GiB"
    except OSError:
        pass
    return "unknown"


def machine_info() -> Dict[str, str]:
    """What the numbers were measured on."""
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    if torch.cuda.is_available():
        gpus = ", ".join(f"{torch.cuda.get_device_name(i)} "
                         f"({torch.cuda.get_device_properties(i).total_memory / 2 ** 30:.0f} GiB)"
                         for i in range(torch.cuda.device_count()))
        cuda = f"{gpus}; CUDA {torch.version.cuda}, cuDNN {torch.backends.cudnn.version()}"
    else:
        cuda = "none"
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "CPU": _cpu_model(),
        "cores": f"{os.cpu_count()} logical, {usable} usable; torch uses {torch.get_num_threads()} threads",
        "RAM": _ram_gib(),
        "CUDA device": cuda,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "OS": platform.platform(),
    }


@dataclass(frozen=True)
class Target:
    """A device type the report covers: measured on ``device``, or, when it is None, listed with
    ``reason`` in every cell so that nothing is left to guess."""

    kind: str  # "cpu" or "cuda"
    device: Optional[torch.device]
    plan: Plan
    reason: str = ""

    @property
    def label(self) -> str:
        return f"{self.kind.upper()}, {self.plan.name}"


@dataclass
class Table:
    """A markdown table: ``rows`` hold already formatted cells."""

    title: str
    columns: List[str]
    rows: List[List[str]] = field(default_factory=list)
    note: str = ""

    def add(self, *cells: object) -> None:
        self.rows.append([str(c) for c in cells])

    def markdown(self) -> str:
        lines = [f"#### {self.title}", ""] if self.title else []
        lines += ["| " + " | ".join(self.columns) + " |", "|" + "---|" * len(self.columns)]
        lines += ["| " + " | ".join(row) + " |" for row in self.rows]
        if self.note:
            lines += ["", self.note]
        return "\n".join(lines)


@dataclass
class Check:
    """A requirement with its measured value."""

    name: str
    value: str
    passed: Optional[bool]  # None: not measured


@dataclass
class Section:
    title: str
    intro: str
    tables: List[Table] = field(default_factory=list)
    checks: List[Check] = field(default_factory=list)


def log(message: str) -> None:
    """Progress on stderr; the report itself goes to stdout."""
    print(message, file=sys.stderr, flush=True)


def fmt(value: float) -> str:
    """Three significant digits, whole numbers from 100 up, scientific below 0.001."""
    if value == 0:
        return "0"
    if abs(value) >= 100:
        return f"{value:.0f}"
    if abs(value) >= 1e-3:
        return f"{value:.3g}"
    return f"{value:.2e}"


def size_text(size: Sequence[int]) -> str:
    return f"{size[0]}×{size[1]}"
