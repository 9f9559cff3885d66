"""The evaluation loop: where the time of a KITTI frame goes, how long the ground-truth projection
takes for scans of several sizes, and the loop's overhead over the network alone."""
import os
import time
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np
import torch

from constants import DEPTH_SCALE
from datasets import kitti
from datasets.common import image_size, open_image, resize_image, resolve, to_network_input
from datasets.registry import build_eval_dataset
from evaluation.loop import evaluate, make_loader
from evaluation.protocol import default_protocol, evaluate_depth
from inference.modes import prepare_model, resolve_inference_mode
from inference.predict import predict, to_gt_size
from utils.checkpoint import load_s2r

from .common import (ROOT, Check, Section, Table, Target, busy_cores, fmt, log, median, median_ms,
                     not_measured, size_text, sync)
from .data import BenchData
from .plan import PROJECTION_POINTS, Plan

RATIO_LIMIT = 1.10
PROJECTION_LIMIT_MS = 30.0
REQUIREMENT_POINTS = 120_000  # one of plan.PROJECTION_POINTS
LOADER_WORKERS = 2
SHARED_DATA = Path(os.environ.get("S2R_SHARED_DATA", ROOT.parent / "shared" / "data"))
INTRO = ("test.py's loop (`evaluation.loop.evaluate`, batch 1, two loader workers) on KITTI frames of the "
         "sample world (KITTI-sized images and 64-beam scans, except in the smoke plan), in test.py's "
         "default inference mode. The parts are timed one by one in the main process. 'Network alone' is "
         "the same forward passes on images already in memory, timed before and after the loop. The "
         "loop's ratio to it is the cost of everything that is not the network and that the workers do "
         "not hide behind it; the requirement is judged per frame after the first (median interval "
         "between frames, over the median network pass), as in a 697-frame evaluation, where the "
         "workers' start-up, included in the whole-loop ratio of these few frames, is paid once.")
BREAKDOWN_ROWS = ("decode + resize + normalise the image", "ground truth: read scan and calibration, project",
                  "network", "metrics: prediction to GT size, protocol", "evaluate() loop, per frame",
                  "evaluate() loop / network alone, whole loop (worker start-up included)",
                  f"evaluate() loop / network alone, per frame after the first (requirement <= {RATIO_LIMIT:.2f})")


def _repeat(fn, args: Sequence, repeats: int) -> List[float]:
    times = []
    for _ in range(repeats):
        for arg in args:
            start = time.perf_counter()
            fn(arg)
            times.append(time.perf_counter() - start)
    return times


def measure_breakdown(device: torch.device, plan: Plan, data: BenchData) -> Tuple[List[str], float]:
    """One column of the per-frame table; returns it and the loop / network ratio."""
    dataset = build_eval_dataset("KITTI", str(data.data_root("kitti")),
                                 str(data.repeated_list("kitti", plan.eval_frames)), plan.eval_size)
    distinct = range(min(len(dataset), data.manifest["kitti"]["count"]))
    paths = [resolve(dataset.root, dataset.entries[i].fields[0]) for i in distinct]
    decode = _repeat(lambda p: to_network_input(resize_image(open_image(p), plan.eval_size)), paths, 3)
    ground_truth = _repeat(dataset.ground_truth, distinct, 3)

    mode = resolve_inference_mode("auto", device)
    model = prepare_model(load_s2r(data.checkpoints).to(device).eval(), mode, device)
    images = [dataset[i]["image"][None].to(device) for i in distinct]
    predict(model, images[0])  # warm-up

    preds: Dict[int, torch.Tensor] = {}

    def network_alone() -> List[float]:
        log(f"[eval loop] {device.type}: network alone on {len(dataset)} frames ({mode.name})")
        times = []
        for i in range(len(dataset)):
            sync(device)
            start = time.perf_counter()
            preds[i % len(images)] = predict(model, images[i % len(images)]).prediction[0]
            sync(device)
            times.append(time.perf_counter() - start)
        return times

    network = network_alone()
    gts = [dataset.ground_truth(i) for i in distinct]
    protocol = default_protocol("KITTI")
    metrics = _repeat(lambda i: evaluate_depth(to_gt_size(preds[i], gts[i].shape, DEPTH_SCALE["KITTI"]),
                                               gts[i], protocol), distinct, 3)
    log(f"[eval loop] {device.type}: evaluate() with {LOADER_WORKERS} loader workers")
    frame_done: List[float] = []
    start = time.perf_counter()
    evaluate(model, make_loader(dataset, 1, LOADER_WORKERS, device), protocol, DEPTH_SCALE["KITTI"], device,
             on_frame=lambda *_: frame_done.append(time.perf_counter()), progress=False)
    loop = time.perf_counter() - start
    network += network_alone()  # before and after the loop, so that a drift of the machine's speed cancels
    steady = float(np.median(np.diff(frame_done))) / median(network)
    column = [f"{fmt(median_ms(decode))} ms", f"{fmt(median_ms(ground_truth))} ms",
              f"{fmt(median_ms(network))} ms ({mode.name})", f"{fmt(median_ms(metrics))} ms",
              f"{fmt(1e3 * loop / len(dataset))} ms", f"{loop / (sum(network) / 2):.3f}", f"{steady:.3f}"]
    return column, steady


def resample(points: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    """``count`` points drawn from a scan; when more than it holds, repeated points move by 2 cm, so
    the result still looks like one denser scan."""
    index = rng.choice(len(points), count, replace=count > len(points))
    out = points[index].copy()
    if count > len(points):
        out[:, :3] += rng.normal(0.0, 0.02, (count, 3)).astype(np.float32)
    return out


@contextmanager
def single_product() -> Iterator[None]:
    """The projection as it was before blocking: one matrix product per scan."""
    saved = kitti.PROJECTION_BLOCK
    kitti.PROJECTION_BLOCK = 1 << 62
    try:
        yield
    finally:
        kitti.PROJECTION_BLOCK = saved


def _projection_ms(points: np.ndarray, proj: np.ndarray, shape: Sequence[int], repeats: int) -> float:
    return median_ms(_repeat(lambda _: kitti.project_to_depth(points, proj, shape), [None], repeats))


def real_scans() -> Optional[Tuple[List[np.ndarray], np.ndarray, Tuple[int, int]]]:
    """The real KITTI scans of ../shared/data (their calibration and image size), when present."""
    date = SHARED_DATA / "kitti_raw" / "2011_09_26"
    scans = sorted(date.glob("*/velodyne_points/data/*.bin"))
    images = sorted(date.glob("*/image_02/data/*.png"))
    if not scans or not images:
        return None
    return ([kitti.load_velodyne_points(str(s)) for s in scans], kitti.velo_to_image_matrix(str(date)),
            image_size(str(images[0])))


def _resampled(points: int) -> str:
    return f"sample world scan resampled to {points // 1000}k points"


def measure_projection(plan: Plan, data: BenchData) -> Tuple[Table, Table, Check]:
    world = data.data_root("kitti")
    left, _, calib, velo = data.list_path("kitti").read_text().split("\n")[0].split()
    base = kitti.load_velodyne_points(str(world / velo))
    proj = kitti.velo_to_image_matrix(str(world / calib))
    shape = image_size(str(world / left))
    rng = np.random.default_rng(0)
    scans: Dict[str, Tuple[List[np.ndarray], np.ndarray, Tuple[int, int]]] = {
        _resampled(n): ([resample(base, n, rng)], proj, shape) for n in PROJECTION_POINTS}
    real = real_scans()
    if real:
        scans[f"real KITTI scans ({len(real[0])}, ../shared/data), median"] = real
    repeats = plan.projection_repeats

    def times(busy: bool) -> Dict[str, float]:
        log(f"[eval loop] projection{' with every core busy' if busy else ''}")
        with busy_cores() if busy else nullcontext():
            return {name: median([_projection_ms(p, m, s, repeats) for p in pts])
                    for name, (pts, m, s) in scans.items()}

    idle, busy = times(False), times(True)
    table = Table("Ground-truth projection (CPU, one process)",
                  ["scan", "points", "GT pixels", "ms, idle", "ms, every core busy"],
                  note="'every core busy': a convolution loop on every core, as during evaluation, where the "
                       "network occupies the cores while the loader workers project the scans.")
    for name, (pts, m, s) in scans.items():
        gt_pixels = median([np.count_nonzero(kitti.project_to_depth(p, m, s)) for p in pts])
        table.add(name, f"{median([len(p) for p in pts]):.0f}", f"{gt_pixels:.0f}", fmt(idle[name]),
                  fmt(busy[name]))

    key = _resampled(REQUIREMENT_POINTS)
    points = scans[key][0][0]
    fix = Table(f"Fix: the scan's matrix product in blocks of {kitti.PROJECTION_BLOCK} rows "
                f"(whole projection, {len(points) // 1000}k points)",
                ["projection", "ms, idle", "ms, every core busy"])
    with single_product():
        before = _projection_ms(points, proj, shape, repeats)
        with busy_cores():
            before_busy = _projection_ms(points, proj, shape, repeats)
    fix.add("one product per scan (before)", fmt(before), fmt(before_busy))
    fix.add("blocks (now)", fmt(idle[key]), fmt(busy[key]))
    worst = max(idle[key], busy[key])
    check = Check(f"GT projection of a {REQUIREMENT_POINTS // 1000}k-point scan < {PROJECTION_LIMIT_MS:g} ms",
                  f"{fmt(idle[key])} ms idle, {fmt(busy[key])} ms with every core busy",
                  worst < PROJECTION_LIMIT_MS)
    return table, fix, check


def section(targets: List[Target], data: BenchData) -> Section:
    result = Section("Evaluation loop", INTRO)
    columns: Dict[str, List[str]] = {}
    for target in targets:
        plan = target.plan
        header = f"{target.kind.upper()}, {plan.eval_frames} frames at {size_text(plan.eval_size)}"
        ratio = None
        if target.device is not None:
            columns[header], ratio = measure_breakdown(target.device, plan, data)
        else:
            columns[header] = not_measured(target.reason, len(BREAKDOWN_ROWS))
        name = f"{target.kind.upper()}: evaluate() loop within {RATIO_LIMIT:.2f} x the network alone " \
               f"(--nThreads {LOADER_WORKERS}, per frame)"
        result.checks.append(Check(name, f"{ratio:.3f}" if ratio else target.reason,
                                   ratio <= RATIO_LIMIT if ratio else None))
    table = Table(f"Per KITTI frame (batch 1, --nThreads {LOADER_WORKERS}; medians)", ["", *columns])
    for i, row in enumerate(BREAKDOWN_ROWS):
        table.add(row, *[column[i] for column in columns.values()])
    host = next(t for t in targets if t.device is not None)
    projection, fix, check = measure_projection(host.plan, data)
    result.tables += [table, projection, fix]
    result.checks.insert(0, check)
    return result
