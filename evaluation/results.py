"""What an evaluation writes and prints: the release's ``evalog.txt``, ``metrics.json`` at full
precision, and the console table."""
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence

from constants import METRIC_NAMES, RELEASE_METRICS

from .protocol import Protocol


# How the console summary names the alignments (the release's wording for its two).
ALIGNMENT_TEXT = {"median": "median scaling", "none": "no median scaling"}


@dataclass
class EvalResult:
    metrics: Dict[str, float]
    n_images: int
    iterations: int  # loader batches, which the release's evalog.txt counts
    skipped: List[int] = field(default_factory=list)  # indices without a valid GT pixel


def non_finite_metrics(metrics: Dict[str, float]) -> List[str]:
    """Names of the metrics that are NaN or infinite: a result that must not be reported."""
    return [name for name, value in metrics.items() if not math.isfinite(value)]


def evalog_text(metrics: Dict[str, float], iterations: int) -> str:
    """The release's evalog.txt, byte for byte: its first line has no break between the two phrases
    and ends in a space and a blank line; then seven right-aligned names and ``{:10.4f}`` values."""
    header = ", ".join(f"{name:>10}" for name in RELEASE_METRICS)
    values = ", ".join(f"{metrics[name]:10.4f}" for name in RELEASE_METRICS)
    return f"Done testing -- epoch limit reachedafter {iterations} iteration \n\n{header}\n{values}\n"


def write_results(out_dir: os.PathLike, result: EvalResult, protocol: Protocol,
                  extra: Optional[dict] = None) -> None:
    """``evalog.txt`` in the release's layout and ``metrics.json`` at full precision."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "evalog.txt").write_text(evalog_text(result.metrics, result.iterations), encoding="utf-8")
    payload = {"metrics": result.metrics, "n_images": result.n_images, "protocol": protocol.as_dict(),
               "skipped_no_valid_gt": result.skipped}
    payload.update(extra or {})
    with open(out_dir / "metrics.json", "w", encoding="utf-8") as f:
        json.dump(payload, f, indent=2)


def format_table(metrics: Dict[str, float], names: Sequence[str] = METRIC_NAMES) -> str:
    """A two-line fixed-width table, monodepth2 style."""
    header = " | ".join(f"{n:>8}" for n in names)
    values = " | ".join(f"{metrics[n]:8.4f}" for n in names)
    return f"{header}\n{values}"


def summary(result: EvalResult, protocol: Protocol) -> str:
    """Human-readable report: the protocol, then the metrics table."""
    p = protocol
    lines = [f"protocol: depth in ({p.min_depth:g}, {p.max_depth:g}) m, crop {p.crop}, "
             f"{ALIGNMENT_TEXT.get(p.alignment, p.alignment + ' alignment')}, "
             f"clip {'after' if p.clip_after_scaling else 'before'} scaling; "
             f"{result.n_images} images"]
    if result.skipped:
        lines.append(f"warning: {len(result.skipped)} frame(s) had no valid ground truth and were "
                     f"skipped: indices {result.skipped[:10]}")
    lines.append(format_table(result.metrics))
    return "\n".join(lines)
