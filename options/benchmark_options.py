"""Flags of benchmarks/run.py."""
import argparse

from .common import HelpFormatter

SECTIONS = ("inference", "eval", "evalsets", "training", "loader")
DESCRIPTION = """\
Measure inference, the evaluation loop, reading each evaluation set, training and data loading;
print the report as markdown and write it to docs/performance.md with the machine it ran on.

The CPU is measured at reduced sizes by default (under 10 minutes on an idle 2-core CPU); a CUDA device, when
present, always at the full sizes (192x640; training batches 1, 8 and 32). --full measures the CPU at
the full sizes too (hours on a small CPU). Run it on an otherwise idle machine.
"""


def benchmark_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=DESCRIPTION, formatter_class=HelpFormatter)
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                        help="what to measure: auto = the CPU, and the GPU when CUDA is available")
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--full", action="store_true", help="the full sizes on the CPU too")
    size.add_argument("--smoke", action="store_true",
                      help="tiny sizes and single repeats, to check the script itself in seconds; the numbers "
                           "mean nothing")
    parser.add_argument("--sections", nargs="+", choices=SECTIONS, default=list(SECTIONS),
                        help="sections to run")
    parser.add_argument("--out", default="docs/performance.md",
                        help="where the report goes (relative to the repository); '-' only prints it")
    return parser
