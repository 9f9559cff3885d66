"""test.py --suite: several evaluations described by one JSON file, and the one table of them."""
import json
import os
from pathlib import Path
from typing import Dict, Iterable, List, Tuple

from constants import METRIC_NAMES
from utils.errors import UserError


class SuiteError(UserError):
    """A suite file that does not parse or names an unknown flag."""


def flag_words(values: Dict[str, object], known: Iterable[str], where: str) -> List[str]:
    """{"dataset": "KITTI", "save_pred": true, "loadSize": [96, 96]} -> --dataset KITTI --save_pred ..."""
    known = set(known)
    words = []
    for key, value in values.items():
        if key not in known:
            raise SuiteError(f"{where}: unknown flag --{key}")
        if value is True:
            words.append(f"--{key}")
        elif value is False or value is None:
            continue
        elif isinstance(value, list):
            words += [f"--{key}", *map(str, value)]
        else:
            words += [f"--{key}", str(value)]
    return words


def read_suite(path: str, known: Iterable[str]) -> List[Tuple[str, List[str]]]:
    """(name, flag words) per run: the file's ``common`` flags, then the run's own."""
    known = set(known)
    try:
        with open(path, encoding="utf-8") as f:
            suite = json.load(f)
    except (OSError, ValueError) as exc:
        raise SuiteError(f"cannot read suite file {path}: {exc}") from exc
    runs = suite.get("runs") if isinstance(suite, dict) else None
    if not isinstance(runs, list) or not runs or not all(isinstance(r, dict) for r in runs):
        raise SuiteError(f"{path}: expected {{\"runs\": [{{flag: value, ...}}, ...]}} with at least one run")
    common = flag_words(suite.get("common", {}), known - {"suite", "out_dir"}, f"{path}, common")
    out, names = [], set()
    for number, run in enumerate(runs, 1):
        run = dict(run)
        name = str(run.pop("name", run.get("dataset", f"run{number}")))
        if name in names or not name or os.sep in name:
            raise SuiteError(f"{path}, run {number}: name {name!r} is empty, has a {os.sep} or repeats")
        names.add(name)
        out.append((name, common + flag_words(run, known - {"suite", "out_dir"}, f"{path}, run {name!r}")))
    return out


def write_table(out_dir: Path, rows: List[dict]) -> Tuple[Path, Path]:
    """``suite.md`` (one row per run) and ``suite.json`` (the same at full precision)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    header = ["run", "dataset", "alignment", "crop", "max depth", "images", *METRIC_NAMES]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        p = row["protocol"]
        cells = [row["name"], row["dataset"], p["alignment"], p["crop"], f"{p['max_depth']:g}",
                 str(row["n_images"]), *(f"{row['metrics'][m]:.4f}" for m in METRIC_NAMES)]
        lines.append("| " + " | ".join(cells) + " |")
    md, js = out_dir / "suite.md", out_dir / "suite.json"
    md.write_text("\n".join(lines) + "\n", encoding="utf-8")
    js.write_text(json.dumps(rows, indent=2), encoding="utf-8")
    return md, js
