"""The evaluation sets: every module of this package that defines an ``EVAL_SET`` (datasets/evalset.py),
found when first asked for, the release's KITTI and NYUD_V2 first."""
import importlib
import pkgutil
from functools import lru_cache
from typing import Dict, Optional, Sequence

from torch.utils.data import Dataset

from constants import DATASETS

from .common import DatasetError
from .evalset import EvalSet


@lru_cache(maxsize=None)
def eval_sets() -> Dict[str, EvalSet]:
    found = {}
    for module in pkgutil.iter_modules(importlib.import_module(__package__).__path__):
        spec = getattr(importlib.import_module(f"{__package__}.{module.name}"), "EVAL_SET", None)
        if spec is not None:
            found[spec.name] = spec
    order = [*DATASETS, *sorted(set(found) - set(DATASETS))]
    return {name: found[name] for name in order}


def get_eval_set(name: str) -> EvalSet:
    sets = eval_sets()
    if name not in sets:
        raise DatasetError(f"unknown evaluation set {name!r} (one of {', '.join(sets)})")
    return sets[name]


def build_eval_dataset(name: str, root: str, list_file: str, load_size: Optional[Sequence[int]] = None,
                       gt_cache: Optional[str] = None) -> Dataset:
    """The test set ``name`` at ``load_size`` (its default when None), its GT from ``gt_cache``."""
    spec = get_eval_set(name)
    if gt_cache and not spec.cacheable:
        raise DatasetError(f"--gt_cache does not apply to {name} (its ground truth is read directly); "
                           f"it applies to {', '.join(n for n, s in eval_sets().items() if s.cacheable)}")
    size = tuple(load_size) if load_size else spec.load_size
    return spec.build(root, list_file, size, gt_cache) if spec.cacheable else spec.build(root, list_file, size)


def help_entries() -> Dict[str, str]:
    """name -> layout and default protocol, for test.py --help."""
    return {name: f"{spec.layout}. Default protocol: {spec.protocol_text()}"
                  + (f"; standard list {spec.split}" if spec.split else "")
            for name, spec in eval_sets().items()}
