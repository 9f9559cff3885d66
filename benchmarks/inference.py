"""Inference: images/s of the whole network (STE + DSA + DP) in each inference mode, FLOPs per
image, and whether each mode is exact (its metrics equal eager float32's to 1e-6)."""
import copy
import tempfile
import time
import warnings
from pathlib import Path
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch._dynamo
import torch._inductor.config
from torch.utils.flop_counter import FlopCounterMode

from constants import DEPTH_SCALE
from datasets.registry import build_eval_dataset
from evaluation.protocol import default_protocol, evaluate_depth
from inference.api import S2RDepth
from inference.modes import AUTO, MODES, prepare_model
from inference.onnx_runtime import OnnxDepth, export_onnx
from inference.predict import predict, to_gt_size
from models import S2RDepthNet
from utils.checkpoint import load_s2r

from .common import Check, Section, Table, Target, fmt, log, median, not_measured, size_text, time_calls
from .data import BenchData
from .plan import Plan

EXACT_TOLERANCE = 1e-6
KITTI_TEST_FRAMES = 697
INTRO = ("The whole network (STE + DSA + DP) on KITTI frames of the sample world, random weights, called "
         "through `evaluation.loop.predict` as test.py calls it. images/s: median over the timed calls after "
         "a first call (the warm-up; for compile, also the compilation). FLOPs from "
         "`torch.utils.flop_counter.FlopCounterMode` (a multiply-add counts 2). The differences compare each "
         "mode with eager float32 on the same frames: the prediction o1 in [-1, 1], and the release's KITTI "
         "metrics per image; a mode is exact when every metric agrees to 1e-6 (relative for metrics above "
         "1). On CUDA, eager float32 means IEEE float32 (TF32 off), as test.py runs it. The onnxruntime row "
         "(CPU) runs the export of export_onnx.py (opset 20, raw output) through `OnnxDepth`, as infer.py "
         "--onnx does; its first call includes no export.")
ONNXRUNTIME = "onnxruntime"
ONNX_OPSET = 20
COLUMNS = ["mode", "batch", "input", "images/s", "ms/image", "GFLOP/image", "achieved GFLOP/s",
           "first call (s)", "max abs diff of o1 vs eager", "max metric diff vs eager", "exact"]


def flops_per_image(size: Sequence[int]) -> int:
    """FLOPs of one forward pass (a multiply-add counts 2), counted on the meta device: no arithmetic."""
    with torch.device("meta"):
        model = S2RDepthNet()
        image = torch.empty(1, 3, *size)
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(image)
    return counter.get_total_flops()


@dataclass
class Frames:
    """KITTI test frames of the sample world at one input size, with their ground truth."""

    images: torch.Tensor
    gts: List[np.ndarray]

    def batch(self, call: int, batch: int) -> Tuple[torch.Tensor, List[int]]:
        """The images of call ``call``: consecutive frames, cycling."""
        index = [(call * batch + j) % len(self.gts) for j in range(batch)]
        return self.images[index], index


def load_frames(data: BenchData, size: Sequence[int]) -> Frames:
    dataset = build_eval_dataset("KITTI", str(data.data_root("kitti")), str(data.list_path("kitti")), size)
    items = [dataset[i] for i in range(len(dataset))]
    return Frames(torch.stack([item["image"] for item in items]), [item["depth"] for item in items])


@dataclass
class ModeResult:
    times: List[float]
    first_s: float
    predictions: List[torch.Tensor]   # o1 of every call, on the CPU, float32
    metrics: List[Dict[str, float]]   # per image of every call


def run_mode(base: torch.nn.Module, mode_name: str, batch: int, frames: Frames, device: torch.device,
             plan: Plan) -> ModeResult:
    mode = MODES[mode_name]
    if mode.compile:
        torch._dynamo.reset()
    model = prepare_model(copy.deepcopy(base).to(device), mode, device)
    return run_predictions(lambda images: predict(model, images).prediction, batch, frames, device, plan)


def run_onnxruntime(base: torch.nn.Module, batch: int, frames: Frames, plan: Plan) -> Tuple[ModeResult, float]:
    """The onnxruntime row, and the seconds the export took."""
    size = tuple(frames.images.shape[-2:])
    with tempfile.TemporaryDirectory(prefix="s2r-bench-onnx-") as tmp:
        start = time.perf_counter()
        path = export_onnx(S2RDepth(copy.deepcopy(base), load_size=size, inference_mode="eager"),
                           Path(tmp) / "s2r.onnx", ONNX_OPSET, raw=True)
        export_s = time.perf_counter() - start
        runtime = OnnxDepth(path)
        result = run_predictions(lambda images: runtime.outputs(images).prediction, batch, frames,
                                 torch.device("cpu"), plan)
    return result, export_s


def run_predictions(prediction: Callable[[torch.Tensor], torch.Tensor], batch: int, frames: Frames,
                    device: torch.device, plan: Plan) -> ModeResult:
    """Time ``prediction`` (images -> o1) on the frames' batches and score every prediction."""
    inputs = [frames.batch(i, batch) for i in range(1 + plan.repeats)]
    device_inputs = [images.to(device) for images, _ in inputs]
    outputs: Dict[int, torch.Tensor] = {}

    def call(i: int) -> None:
        outputs[i] = prediction(device_inputs[i])

    first = time_calls(call, device, warmup=0, repeats=1)[0]  # the warm-up; compiles in compile mode
    times = time_calls(lambda i: call(i + 1), device, warmup=0, repeats=plan.repeats, budget_s=plan.budget_s)
    protocol = default_protocol("KITTI")
    predictions, metrics = [], []
    for i in sorted(outputs):
        pred = outputs[i].float().cpu()
        predictions.append(pred)
        for j, frame in enumerate(inputs[i][1]):
            gt = frames.gts[frame]
            metrics.append(evaluate_depth(to_gt_size(pred[j], gt.shape, DEPTH_SCALE["KITTI"]), gt, protocol))
    return ModeResult(times, first, predictions, metrics)


def metric_diff(a: List[Dict[str, float]], b: List[Dict[str, float]]) -> float:
    """The largest difference between per-image metrics, relative for metrics above 1 (rmse in metres)."""
    return max(abs(x[k] - y[k]) / max(abs(y[k]), 1.0) for x, y in zip(a, b) for k in x)


def add_row(table: Table, name: str, batch: int, size: Tuple[int, int], result: ModeResult, ref: ModeResult,
            flops: int, exact_by_design: bool) -> bool:
    """One table row compared with the eager reference; returns whether the row is exact."""
    seconds = median(result.times)
    diff = max(float((p - q).abs().max()) for p, q in zip(result.predictions, ref.predictions))
    mdiff = metric_diff(result.metrics, ref.metrics)
    within = mdiff <= EXACT_TOLERANCE
    verdict = "yes" if exact_by_design and within else "no (by design)" if within else "no"
    table.add(name, batch, size_text(size), fmt(batch / seconds), fmt(1e3 * seconds / batch), fmt(flops / 1e9),
              fmt(flops * batch / seconds / 1e9), fmt(result.first_s), fmt(diff), fmt(mdiff), verdict)
    return exact_by_design and within


def measure(device: torch.device, plan: Plan, data: BenchData,
            table: Table) -> Tuple[Dict[Tuple[str, int], ModeResult], List[str]]:
    """Fill ``table``; returns the results of the exact modes by (mode, batch), and a note per
    onnxruntime row comparing it with the automatic mode."""
    base = load_s2r(data.checkpoints).eval()
    frames: Dict[Tuple[int, int], Frames] = {}
    flops: Dict[Tuple[int, int], int] = {}
    reference: Dict[Tuple[int, Tuple[int, int]], ModeResult] = {}
    results: Dict[Tuple[str, int, Tuple[int, int]], ModeResult] = {}
    exact: Dict[Tuple[str, int], ModeResult] = {}
    torch._inductor.config.force_disable_caches = True  # time a cold compilation, as a fresh clone sees it
    warnings.filterwarnings("ignore", message="dynamo_pgo force disabled")  # ... which is what we want
    for mode_name, batch, size in plan.inference:
        size = tuple(size)
        if size not in frames:
            frames[size] = load_frames(data, size)
            flops[size] = flops_per_image(size)
        log(f"[inference] {device.type} {mode_name} batch {batch} at {size_text(size)}")
        try:
            result = run_mode(base, mode_name, batch, frames[size], device, plan)
        except Exception as exc:  # e.g. compile without a C++ compiler: report it, measure the rest
            table.add(mode_name, batch, size_text(size),
                      *not_measured(f"failed: {type(exc).__name__}: {str(exc)[:150]}", len(COLUMNS) - 3))
            continue
        results[(mode_name, batch, size)] = result
        if mode_name == "eager":
            reference[(batch, size)] = result
        ref = reference.get((batch, size))  # the plan lists eager first in each (batch, size) group
        if ref is None:
            table.add(mode_name, batch, size_text(size), *not_measured("no eager reference", len(COLUMNS) - 3))
            continue
        if add_row(table, mode_name, batch, size, result, ref, flops[size], MODES[mode_name].exact):
            exact[(mode_name, batch)] = result
    notes = []
    for batch, size in plan.onnxruntime if device.type == "cpu" else ():
        size = tuple(size)
        ref, auto = reference.get((batch, size)), results.get((AUTO[device.type], batch, size))
        if ref is None:
            table.add(ONNXRUNTIME, batch, size_text(size), *not_measured("no eager reference", len(COLUMNS) - 3))
            continue
        log(f"[inference] {device.type} {ONNXRUNTIME} batch {batch} at {size_text(size)}")
        result, export_s = run_onnxruntime(base, batch, frames[size], plan)
        add_row(table, ONNXRUNTIME, batch, size, result, ref, flops[size], True)
        if auto is not None:
            notes.append(f"CPU: onnxruntime {fmt(batch / median(result.times))} images/s against "
                         f"{fmt(batch / median(auto.times))} for PyTorch's auto mode ({AUTO[device.type]}) at "
                         f"batch {batch}, {size_text(size)} (export_onnx.py took {fmt(export_s)} s).")
    return exact, notes


def choice(target: Target, exact: Optional[Dict[Tuple[str, int], ModeResult]]) -> Tuple[Check, str]:
    """Is test.py's automatic mode the fastest exact mode at batch 1 (test.py's default batch) among
    those that start at once? Compiling is judged apart, in a sentence on when it pays off."""
    auto = AUTO[target.kind]
    name = (f"{target.kind.upper()}: test.py --inference_mode auto ({auto}) is the fastest exact mode at "
            f"batch 1 without a compilation step")
    if not exact:
        return Check(name, target.reason, None), ""
    per_image = {mode: median(r.times) for (mode, batch), r in exact.items() if batch == 1}
    best = min((m for m in per_image if not MODES[m].compile), key=per_image.get)
    ranking = ", ".join(f"{m} {fmt(1 / t)} img/s" for m, t in sorted(per_image.items(), key=lambda kv: kv[1]))
    note = ""
    if ("compile", 1) in exact and auto in per_image:
        gain = per_image[auto] - per_image["compile"]
        cost = exact[("compile", 1)].first_s - per_image["compile"]
        frames = KITTI_TEST_FRAMES
        note = (f"{target.kind.upper()}: compile saves {fmt(1e3 * gain)} ms per image over {auto} after a "
                f"{fmt(cost)} s compilation, so it pays off after {fmt(cost / gain)} images (the "
                f"{frames}-frame KITTI test split: {fmt(frames * per_image[auto] / 60)} min with {auto}, "
                f"{fmt((frames * per_image['compile'] + cost) / 60)} min with compile)."
                if gain > 0 else f"{target.kind.upper()}: compile is not faster than {auto} at batch 1.")
    return Check(name, f"{ranking}", best == auto), note


def section(targets: List[Target], data: BenchData) -> Section:
    result = Section("Inference", INTRO)
    notes = []
    for target in targets:
        table = Table(target.label, COLUMNS)
        exact = None
        if target.device is not None:
            exact, onnx_notes = measure(target.device, target.plan, data, table)
            notes += onnx_notes
        else:
            rows = [*target.plan.inference, *((ONNXRUNTIME, b, s) for b, s in target.plan.onnxruntime)]
            for mode_name, batch, size in rows:
                table.add(mode_name, batch, size_text(size), *not_measured(target.reason, len(COLUMNS) - 3))
        check, note = choice(target, exact)
        result.tables.append(table)
        result.checks.append(check)
        notes += [note] if note else []
    result.tables[-1].note = " ".join(notes)
    return result
