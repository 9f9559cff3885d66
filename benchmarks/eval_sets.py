"""Reading each evaluation set beside the network on it: per frame, test.py's reader (``dataset[i]``:
decode, crop, resize and normalise the image, and build the ground truth, from the set's files and
from an export_gt_depth.py cache) in one process, and the network's forward pass at the set's input
size, on generated frames of each set's real size in its real on-disk layout."""
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Tuple

import torch

from datasets.kitti import GTCache
from datasets.registry import build_eval_dataset, get_eval_set
from inference.modes import prepare_model, resolve_inference_mode
from inference.predict import predict
from sample_world import evalsets
from utils.checkpoint import load_s2r

from .common import Check, Section, Table, Target, fmt, log, median_ms, not_measured, size_text, time_calls
from .data import BenchData
from .plan import Plan, Size

FRAMES = 2
INTRO = ("test.py's reader of each set beyond the release's two (KITTI's is in 'Evaluation loop'), on "
         f"{FRAMES} generated frames of the set's real size in its real layout (random pixels, so "
         "JPEG and PNG decoding cost at least what real frames cost), timed in one process: "
         "`dataset[i]` with the ground truth built from the set's files, and again read from an "
         "export_gt_depth.py cache. 'network' is one forward pass at the set's input size in test.py's "
         "default inference mode. test.py reads in its loader workers while the network runs, so a set "
         "is read fast enough when one process reads a frame in less time than the network needs for "
         "it (ratio < 1). The generated NYUD_V2_OFFICIAL .mat is uncompressed HDF5; MATLAB's own "
         "chunking and compression of the real file may read slower.")
COLUMNS = ["set", "frame (real size)", "input", "read from files (ms)", "read with GT cache (ms)",
           "network (ms)", "files / network"]


@dataclass(frozen=True)
class GeneratedSet:
    """One set's generated frames: ``write(folder, real)`` returns (--root, list file); ``real``
    False writes the tiny frames of the smoke plan."""

    name: str
    frame: str
    write: Callable[[Path, bool], Tuple[Path, Path]]


def _kitti_benchmark(folder: Path, real: bool) -> Tuple[Path, Path]:
    return folder, evalsets.write_kitti_benchmark(folder, FRAMES, (375, 1242) if real else (40, 120))


def _make3d(folder: Path, real: bool) -> Tuple[Path, Path]:
    size, grid = ((2272, 1704), (55, 305)) if real else ((64, 48), (11, 6))
    return folder, evalsets.write_make3d(folder, FRAMES, size, grid)


def _nuscenes(folder: Path, real: bool) -> Tuple[Path, Path]:
    size, points = ((900, 1600), 34688) if real else ((48, 64), 400)
    tokens = evalsets.write_nuscenes(folder, size=size, points=points)
    return folder / "v1.0-mini", tokens


def _drivingstereo(folder: Path, real: bool) -> Tuple[Path, Path]:
    return folder, evalsets.write_drivingstereo(folder, "disparity", FRAMES, (400, 881) if real else (40, 110))


def _cityscapes(folder: Path, real: bool) -> Tuple[Path, Path]:
    return folder, evalsets.write_cityscapes(folder, FRAMES, (1024, 2048) if real else (64, 128))


def _nyu_official(folder: Path, real: bool) -> Tuple[Path, Path]:
    evalsets.write_nyu_labeled(folder, FRAMES, (480, 640) if real else (48, 64))
    frames = folder / "frames.txt"
    frames.write_text("".join(f"{i + 1}\n" for i in range(FRAMES)))
    return folder, frames


SETS = (
    GeneratedSet("KITTI_BENCHMARK", "1242×375 PNG, annotated GT PNG", _kitti_benchmark),
    GeneratedSet("MAKE3D", "1704×2272 JPEG, 55×305 laser grid (.mat)", _make3d),
    GeneratedSet("NUSCENES", "1600×900 JPEG, 34688-point sweep, JSON tables", _nuscenes),
    GeneratedSet("DRIVINGSTEREO", "881×400 JPEG, disparity PNG + calibration", _drivingstereo),
    GeneratedSet("CITYSCAPES", "2048×1024 PNG, disparity PNG + camera JSON", _cityscapes),
    GeneratedSet("NYUD_V2_OFFICIAL", "640×480 frames of the labeled .mat (HDF5)", _nyu_official),
)


def reading_ms(dataset, repeats: int) -> float:
    """Median ms of ``dataset[i]`` over every frame, ``repeats`` times."""
    return median_ms(time_calls(lambda i: dataset[i % len(dataset)], torch.device("cpu"), 0, repeats * len(dataset)))


def write_cache(dataset, path: Path) -> str:
    GTCache.write(str(path), dataset.entries, [dataset.ground_truth(i) for i in range(len(dataset))])
    return str(path)


class Network:
    """test.py's network in its default inference mode; forward-pass times per input size."""

    def __init__(self, device: torch.device, data: BenchData, plan: Plan) -> None:
        self.device, self.plan = device, plan
        self.mode = resolve_inference_mode("auto", device)
        self.model = prepare_model(load_s2r(data.checkpoints).to(device).eval(), self.mode, device)
        self.times: Dict[Size, float] = {}

    def ms(self, size: Size) -> float:
        if size not in self.times:
            log(f"[eval sets] network at {size_text(size)} ({self.mode.name})")
            image = torch.zeros(1, 3, *size, device=self.device)
            with torch.no_grad():
                calls = time_calls(lambda _: predict(self.model, image), self.device, 1, self.plan.repeats)
            self.times[size] = median_ms(calls)
        return self.times[size]


def measure(target: Target, data: BenchData, folder: Path) -> Tuple[Table, float]:
    """The table of ``target`` and its largest files / network ratio."""
    load_size = target.plan.sets_input
    real = load_size is None
    network = Network(target.device, data, target.plan)
    table = Table(f"{target.kind.upper()}, per frame (medians)", COLUMNS)
    worst = 0.0
    for spec in SETS:
        log(f"[eval sets] {spec.name}")
        root, list_file = spec.write(folder / spec.name, real)
        size = load_size or get_eval_set(spec.name).load_size
        dataset = build_eval_dataset(spec.name, str(root), str(list_file), size)
        files = reading_ms(dataset, target.plan.repeats)
        cache = write_cache(dataset, folder / f"{spec.name}_gt.npz")
        cached = reading_ms(build_eval_dataset(spec.name, str(root), str(list_file), size, cache),
                            target.plan.repeats)
        net = network.ms(size)
        worst = max(worst, files / net)
        table.add(spec.name, spec.frame if real else "tiny (smoke)", size_text(size), fmt(files), fmt(cached),
                  fmt(net), f"{files / net:.3f}")
    return table, worst


def section(targets: List[Target], data: BenchData) -> Section:
    result = Section("Evaluation sets", INTRO)
    for target in targets:
        name = f"{target.kind.upper()}: every evaluation set read faster than the network on it (files / network < 1)"
        if target.device is None:
            result.tables.append(Table(f"{target.kind.upper()}", COLUMNS,
                                       [["every set", *not_measured(target.reason, len(COLUMNS) - 1)]]))
            result.checks.append(Check(name, target.reason, None))
            continue
        table, worst = measure(target, data, data.root.parent / f"eval_sets_{target.kind}")
        result.tables.append(table)
        result.checks.append(Check(name, f"largest ratio {worst:.3f}", worst < 1))
    return result
