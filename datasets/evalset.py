"""What the registry knows about one evaluation set: its reader and its default protocol.

Each evaluation set's file (``datasets/<set>.py``) defines one ``EVAL_SET``; ``datasets/registry.py``
finds them, so adding a set means adding one file.
"""
from dataclasses import dataclass
from typing import Callable, Optional, Tuple

from torch.utils.data import Dataset

# (root, list_file, load_size[, gt_cache]) -> the test set; only cacheable sets take gt_cache.
Builder = Callable[..., Dataset]


@dataclass(frozen=True)
class EvalSet:
    """An evaluation set: how to read it and how its predictions are compared with its GT."""

    name: str
    build: Builder
    layout: str                  # on-disk layout and list lines, for --help and the README
    depth_scale: float           # metres the network's [-1, 1] output spans from 0
    load_size: Tuple[int, int]   # network input (H, W)
    max_depth: float
    crop: str                    # a key of evaluation/protocol.py CROPS, or "none"
    alignment: str = "median"
    split: Optional[str] = None  # the standard list shipped under splits/, the --test_datafile default
    cacheable: bool = False      # whether --gt_cache / export_gt_depth.py apply

    def protocol_text(self) -> str:
        return (f"depth scale {self.depth_scale:g} m, input {self.load_size[0]}x{self.load_size[1]}, "
                f"max depth {self.max_depth:g} m, crop {self.crop}, alignment {self.alignment}")
