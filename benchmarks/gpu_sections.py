"""The sections of the GPU check, each a function of the run that returns its rows. They call the
benchmarks' own measuring parts (inference.run_mode, training.run_worker, loader, eval_loop) and
the project's entry points (test.py's main, train.py under torchrun)."""
import contextlib
import importlib.util
import io
import json
import math
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

import torch

from constants import CHECKPOINT_FLAGS, DATA_PARALLEL_PREFIX, STAGE_DSA_DP, STAGE_STRUCT_DECODER, STAGES
from inference.modes import MODES, set_tf32
from options.train_options import parse_train_args
from training.distributed import DistInfo
from training.precision import MixedPrecision
from training.data import to_device
from training.stages import build_stage
from training.trainer import train_step
from utils.checkpoint import load_s2r
from utils.runtime import seed_everything

from . import eval_loop, inference, loader, training
from .checks import INFO, SKIP, Allowance, Row, all_finite, curve_gap, over_budget, relative_diff, verdict
from .common import ROOT, Target, log, median, proc_status_kib, reset_peak_rss, size_text
from .data import BenchData
from .plan import CheckPlan, Size
from .train_worker import collect_batches

METRIC_TOLERANCE = 1e-5      # test.py's metrics, CUDA against CPU
LOSS_TOLERANCE = 1e-4        # a training step's losses, CUDA against CPU
EXACT_TOLERANCE = inference.EXACT_TOLERANCE
# An inexact mode may move a metric by less than this (absolute; relative above 1): below the
# second decimal in which the paper reports abs_rel and the accuracies.
INEXACT_DRIFT_LIMIT = 1e-2
CURVE_TOLERANCE = 0.10       # AMP against fp32: gap of the mean loss over the last steps
CURVE_TAIL = 10
PRECISIONS = ("fp32", "tf32", "bf16", "fp16")
# The release's schedule (docs/release.md §1.6): 120 epochs of the 20,760-image vKITTI list.
RELEASE_EPOCHS = 120
VKITTI_TRAIN_IMAGES = 20_760
WORKER = [sys.executable, "-m", "benchmarks.train_worker"]
TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone"]


@dataclass
class Run:
    """What every section reads: the device, the plan, the data, and figures that a later section
    compares with (the training images/s for the loader)."""

    device: torch.device
    plan: CheckPlan
    data: BenchData
    work: Path
    shared: Dict[str, float] = field(default_factory=dict)

    @property
    def cuda(self) -> bool:
        return self.device.type == "cuda"

    @property
    def judged(self) -> bool:
        """Timings decide PASS/FAIL only at the full sizes."""
        return not self.plan.quick


# ------------------------------------------------------------------------------------------ correctness
def _test_script():
    spec = importlib.util.spec_from_file_location("s2r_test_script", ROOT / "test.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_py_metrics(run: Run, dataset: str, key: str, device: str) -> Dict[str, float]:
    """test.py's metrics (IEEE float32, eager) on the generated ``key`` set, on ``device``."""
    out = run.work / f"test_py_{key}_{device}"
    size = run.plan.test_sizes[dataset]
    argv = ["--dataset", dataset, "--root", str(run.data.data_root(key)), "--test_datafile",
            str(run.data.list_path(key)), "--loadSize", str(size[0]), str(size[1]), "--nThreads", "0",
            "--device", device, "--inference_mode", "eager", "--out_dir", str(out)]
    argv += [a for name, flag in CHECKPOINT_FLAGS.items() for a in (f"--{flag}", str(run.data.checkpoints[name]))]
    with contextlib.redirect_stdout(io.StringIO()):
        _test_script().main(argv)
    return json.loads((out / "metrics.json").read_text())["metrics"]


def first_step_losses(run: Run, stage: str, device: torch.device) -> Dict[str, float]:
    """The losses of a stage's first training step, built from train.py's flags as train.py builds it."""
    batch, size = run.plan.step
    args = parse_train_args(training.train_flags(run.data, stage, batch, size, device.type))
    if device.type == "cuda":
        set_tf32(False)
    seed_everything(args.seed)
    built = build_stage(args, device, DistInfo(), warn=lambda message: None)
    built.train()
    batches = collect_batches(built, batch, 1, args.seed, args.sampling, DistInfo(), device)
    return train_step(built, to_device(batches[0], device), MixedPrecision(None, device), DistInfo(), device)[0]


MetricsFn = Callable[[Run, str, str, str], Dict[str, float]]
LossesFn = Callable[[Run, str, torch.device], Dict[str, float]]


def metric_rows(run: Run, measure: MetricsFn = test_py_metrics) -> List[Row]:
    """test.py's metrics on the device against the CPU's, on the generated KITTI and NYU sets."""
    rows, on = [], run.device.type.upper()
    for dataset, key in (("KITTI", "kitti"), ("NYUD_V2", "nyu")):
        log(f"[correctness] test.py on {dataset}, CPU and {on}")
        want, got = measure(run, dataset, key, "cpu"), measure(run, dataset, key, run.device.type)
        diff = relative_diff(got, want)
        rows.append(Row("correctness", f"test.py metrics on generated {dataset}, {on} (IEEE fp32) vs CPU",
                        verdict(diff <= METRIC_TOLERANCE),
                        {"max metric diff": diff, "tolerance": METRIC_TOLERANCE, "abs_rel": got.get("abs_rel"),
                         "input": size_text(run.plan.test_sizes[dataset])}))
    return rows


def loss_rows(run: Run, measure: LossesFn = first_step_losses) -> List[Row]:
    """The first step's losses of each depth stage on the device against the CPU's."""
    rows, on = [], run.device.type.upper()
    for stage in (STAGE_STRUCT_DECODER, STAGE_DSA_DP):
        log(f"[correctness] a {stage} step, CPU and {on}")
        want, got = measure(run, stage, torch.device("cpu")), measure(run, stage, run.device)
        diff = relative_diff(got, want)
        rows.append(Row("correctness", f"{stage}: first training step's losses, {on} vs CPU",
                        verdict(diff <= LOSS_TOLERANCE),
                        {"max loss diff": diff, "tolerance": LOSS_TOLERANCE, "total": got.get("total"),
                         "batch": run.plan.step[0], "input": size_text(run.plan.step[1])}))
    return rows


def correctness(run: Run, seconds: float) -> List[Row]:
    return metric_rows(run) + loss_rows(run)


# ------------------------------------------------------------------------------------------ inference
@contextlib.contextmanager
def peak_memory(device: torch.device, into: Dict[str, float]):
    """Peak memory of the block: CUDA memory allocated, or the process's resident set on CPU."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    reset = device.type == "cuda" or reset_peak_rss()
    yield
    if device.type == "cuda":
        into["peak memory (MiB)"] = torch.cuda.max_memory_allocated(device) / 2 ** 20
    elif reset:
        into["peak RSS (MiB)"] = proc_status_kib("VmHWM") / 1024


def _skip_reason(run: Run, mode: str) -> Optional[str]:
    if MODES[mode].cuda_only and not run.cuda:
        return "CUDA only (TF32 is a CUDA format; CPU autocast is slower than float32)"
    if MODES[mode].compile and run.plan.quick and not run.cuda:
        return "not with --quick on a CPU: a cold torch.compile takes about a minute there"
    return None


def inference_modes(run: Run, seconds: float) -> List[Row]:
    """images/s, peak memory and the metric drift against eager IEEE float32, per mode and batch;
    then which exact mode --inference_mode auto should pick."""
    allowance = Allowance(seconds)
    size = run.plan.infer_size
    frames = inference.load_frames(run.data, size)
    base = load_s2r(run.data.checkpoints).eval()
    rows, exact, reference = [], {}, {}
    configs = [(b, m) for b in run.plan.batches for m in run.plan.modes]
    for batch, mode in configs:
        name = f"{mode}, batch {batch}, {size_text(size)}"
        reason = _skip_reason(run, mode)
        if reason:
            rows.append(Row("inference", name, SKIP, detail=reason))
            continue
        if not allowance.allows() or (mode != "eager" and batch not in reference):
            rows.append(over_budget("inference", name, allowance))
            continue
        log(f"[inference] {run.device.type} {name}")
        figures: Dict[str, float] = {}
        start = time.monotonic()
        plan = replace(run.plan.bench, budget_s=min(run.plan.bench.budget_s, allowance.left() / 4))
        with peak_memory(run.device, figures):
            result = inference.run_mode(base, mode, batch, frames, run.device, plan)
        allowance.spent(time.monotonic() - start)
        if mode == "eager":
            reference[batch] = result
        drift = inference.metric_diff(result.metrics, reference[batch].metrics)
        seconds_per_call = median(result.times)
        figures = {"images/s": batch / seconds_per_call, **figures, "first call (s)": result.first_s,
                   "metric drift vs eager fp32": drift}
        if MODES[mode].exact:
            ok, detail = drift <= EXACT_TOLERANCE, f"exact mode: drift <= {EXACT_TOLERANCE:g}"
            if ok:
                exact[(mode, batch)] = result
        else:
            ok, detail = math.isfinite(drift) and drift <= INEXACT_DRIFT_LIMIT, \
                f"inexact mode: drift <= {INEXACT_DRIFT_LIMIT:g}"
        rows.append(Row("inference", name, verdict(ok), figures, detail))
    check, note = inference.choice(Target(run.device.type, run.device, run.plan.bench), exact)
    status = SKIP if check.passed is None else verdict(check.passed, run.judged)
    rows.append(Row("inference", f"--inference_mode auto on {run.device.type.upper()}", status,
                    {"constants.AUTO_INFERENCE_MODE": inference.AUTO[run.device.type]},
                    f"{check.name}: {check.value}. {note}".strip()))
    return rows


# ------------------------------------------------------------------------------------------ training
def _worker_flags(run: Run, stage: str, batch: int, size: Size, precision: str) -> Tuple[List[str], List[str]]:
    """(launcher, train.py flags) of one training configuration in ``precision``."""
    launcher = WORKER + (["--tf32"] if precision == "tf32" else [])
    flags = training.train_flags(run.data, stage, batch, size, run.device.type)
    flags[flags.index("--nThreads") + 1] = str(max(run.plan.loader_workers))  # the batches load faster
    return launcher, flags + (["--amp", precision] if precision in ("bf16", "fp16") else [])


def _precision_skip(run: Run, precision: str) -> Optional[str]:
    if precision != "fp32" and not run.cuda:
        return "CUDA only (TF32 is a CUDA format; --amp works on CUDA only)"
    return None


def _memory(result: dict) -> Dict[str, float]:
    if "peak_cuda_bytes" in result:
        return {"peak memory (MiB)": result["peak_cuda_bytes"] / 2 ** 20}
    return {"peak RSS (MiB)": result["peak_rss_kib"] / 1024}


def _train_config(run: Run, section: str, name: str, config: Tuple[str, int, Size, str], steps: int,
                  allowance: Allowance) -> Tuple[Optional[dict], Optional[Row]]:
    """train_worker's result for (stage, batch, input, precision) after one warm-up step, or the row
    that says why there is none."""
    stage, batch, size, precision = config
    reason = _precision_skip(run, precision)
    if reason:
        return None, Row(section, name, SKIP, detail=reason)
    if not allowance.allows():
        return None, over_budget(section, name, allowance)
    log(f"[{section}] {run.device.type} {name}")
    start = time.monotonic()
    try:
        return training.run_worker(*_worker_flags(run, stage, batch, size, precision), steps, training._env(),
                                   timeout_s=max(allowance.left(), 60.0)), None
    except subprocess.TimeoutExpired as exc:
        return None, Row(section, name, SKIP, detail=f"stopped at the time budget ({exc.timeout:.0f} s)")
    except RuntimeError as exc:
        return None, Row(section, name, verdict(False), detail=f"failed: {exc}")
    finally:
        allowance.spent(time.monotonic() - start)


def training_scale(run: Run, seconds: float) -> List[Row]:
    """s/step, images/s and peak memory of each stage in each precision, and the projected wall
    time of the release's schedule."""
    allowance = Allowance(seconds)
    batch, size, stage1_size, steps = run.plan.train
    rows = []
    for stage in STAGES:
        stage_size = stage1_size if stage == STAGES[0] else size
        for precision in PRECISIONS:
            name = f"{stage}, {precision}, batch {batch}, {size_text(stage_size)}"
            result, row = _train_config(run, "training", name, (stage, batch, stage_size, precision), steps,
                                        allowance)
            if row is not None:
                rows.append(row)
                continue
            step = median(result["step_s"])
            run.shared["training images/s"] = max(run.shared.get("training images/s", 0.0), batch / step)
            hours = math.ceil(VKITTI_TRAIN_IMAGES / batch) * RELEASE_EPOCHS * step / 3600
            rows.append(Row("training", name, verdict(all_finite(result["losses"])),
                            {"s/step": step, "images/s": batch / step, **_memory(result),
                             f"{RELEASE_EPOCHS}-epoch vKITTI schedule (h)": hours},
                            "losses finite" if all_finite(result["losses"]) else "non-finite loss"))
    return rows


def loss_curves(run: Run, seconds: float) -> List[Row]:
    """The same steps in fp32, bf16 and fp16 autocast: finite, and AMP ending near fp32."""
    stage, batch, size, steps = run.plan.curve
    setting = f"{stage}, batch {batch}, {size_text(size)}, {steps} steps"
    curves: Dict[str, dict] = {}
    rows, allowance = [], Allowance(seconds)
    for precision in ("fp32", "bf16", "fp16"):
        name = f"{precision} loss curve ({setting})"
        result, row = _train_config(run, "amp", name, (stage, batch, size, precision), steps - 1, allowance)
        if row is not None:
            rows.append(row)
            continue
        curves[precision] = result
        losses = curves[precision]["losses"]
        figures = {"first loss": losses[0], "last loss": losses[-1], "losses": losses}
        ok, detail = all_finite(losses), "every loss finite"
        if precision != "fp32" and "fp32" in curves:
            gap = curve_gap(losses, curves["fp32"]["losses"], CURVE_TAIL)
            figures[f"gap to fp32, mean of the last {CURVE_TAIL}"] = gap
            ok, detail = ok and gap <= CURVE_TOLERANCE, f"{detail}; within {CURVE_TOLERANCE:.0%} of fp32"
        if precision == "fp16":
            scale = curves[precision]["loss_scale"]
            figures["GradScaler scale"] = scale
            ok = ok and scale is not None and math.isfinite(scale) and scale > 0
            detail += "; GradScaler on, finite scale"
        rows.append(Row("amp", name, verdict(ok), figures, detail))
    return rows


# ------------------------------------------------------------------------------------------ input and loop
def input_pipeline(run: Run, seconds: float) -> List[Row]:
    batch, size, samples = run.plan.loader
    dataset = loader.training_set(run.data, size, samples)
    rates = {}
    for workers in run.plan.loader_workers:
        rates[workers], first = loader.training_throughput(dataset, batch, workers, run.device)
    train_rate = run.shared.get("training images/s")
    figures = {f"{w} workers (samples/s)": r for w, r in rates.items()}
    name = f"training loader, {size_text(size)} with augmentation, batch {batch}"
    if train_rate is None:
        return [Row("input", name, SKIP, figures, "no training images/s measured to compare with")]
    best = max(rates.values())
    figures["fastest training step (images/s)"] = train_rate
    return [Row("input", name, verdict(best >= train_rate, run.judged), figures,
                "the loader keeps up when its fastest rate is at least the fastest training step's")]


def evaluation_loop(run: Run, seconds: float) -> List[Row]:
    column, ratio = eval_loop.measure_breakdown(run.device, run.plan.bench, run.data)
    figures = dict(zip(eval_loop.BREAKDOWN_ROWS, column))
    name = (f"test.py loop per frame / network alone, {run.plan.bench.eval_frames} KITTI frames at "
            f"{size_text(run.plan.bench.eval_size)}")
    return [Row("evaluation", name, verdict(ratio <= eval_loop.RATIO_LIMIT, run.judged), figures,
                f"requirement <= {eval_loop.RATIO_LIMIT:.2f}")]


# ------------------------------------------------------------------------------------------ DDP
def _module_free(folder: Path) -> List[str]:
    """Names of the .pth files under ``folder`` whose keys carry the DataParallel prefix."""
    bad = []
    for path in sorted(folder.rglob("*.pth")):
        state = torch.load(path, map_location="cpu", weights_only=True)
        keys = [k for part in (state, *[v for v in state.values() if isinstance(v, dict)]) for k in part]
        if any(str(k).startswith(DATA_PARALLEL_PREFIX) for k in keys):
            bad.append(path.name)
    return bad


def ddp_train(run: Run, processes: int, timeout_s: float) -> Row:
    """One epoch of train.py under torchrun on ``processes`` processes."""
    backend = "nccl" if run.cuda else "gloo"
    batch, size = run.plan.ddp
    out = run.work / "ddp"
    flags = training.train_flags(run.data, STAGE_STRUCT_DECODER, batch, size, run.device.type, processes)
    cmd = [*TORCHRUN, "--nproc_per_node", str(processes), str(ROOT / "train.py"), *flags, "--epochs", "1",
           "--checkpoint_dir", str(out), "--log_dir", str(out / "logs")]
    name = f"train.py under torchrun, {processes} process(es), {backend}"
    log(f"[ddp] {name}")
    threads = {} if run.cuda else {"OMP_NUM_THREADS": "1"}
    try:
        proc = subprocess.run(cmd, cwd=ROOT, env={**training._env(), **threads}, capture_output=True, text=True,
                              timeout=timeout_s)
    except subprocess.TimeoutExpired:
        return Row("ddp", name, SKIP, detail=f"stopped at the time budget ({timeout_s:.0f} s)")
    if proc.returncode:
        tail = (proc.stderr or proc.stdout).strip().splitlines() or ["no output"]
        return Row("ddp", name, verdict(False), detail=f"exit status {proc.returncode}: {tail[-1][:200]}")
    saved = sorted(p.name for p in out.glob("*.pth"))
    bad = _module_free(out)
    world = json.loads((out / "args.json").read_text()).get("world_size")
    return Row("ddp", name, verdict(not bad and bool(saved) and world == processes),
               {"world size": world, "checkpoints": ", ".join(saved)},
               f"keys with '{DATA_PARALLEL_PREFIX}': {', '.join(bad)}" if bad else
               f"no checkpoint key starts with '{DATA_PARALLEL_PREFIX}'")


def nccl_probe(processes: int, timeout_s: float) -> Row:
    """An all-reduce over every GPU with NCCL (benchmarks/collective_probe.py)."""
    with tempfile.TemporaryDirectory(prefix="s2r-nccl-") as tmp:
        out = Path(tmp) / "probe.json"
        proc = subprocess.run([*TORCHRUN, "--nproc_per_node", str(processes), "-m", "benchmarks.collective_probe",
                               "--backend", "nccl", "--out", str(out)], cwd=ROOT, env=training._env(),
                              capture_output=True, text=True, timeout=timeout_s)
        name = f"NCCL all-reduce over {processes} GPU(s)"
        if proc.returncode or not out.exists():
            tail = (proc.stderr or proc.stdout).strip().splitlines() or ["no output"]
            return Row("ddp", name, verdict(False), detail=f"exit status {proc.returncode}: {tail[-1][:200]}")
        result = json.loads(out.read_text())
    return Row("ddp", name, verdict(result["sum"] == processes), result, "each rank adds 1")


def scaling(run: Run, processes: int, timeout_s: float) -> Row:
    """Samples/s of ``processes`` GPUs over ``processes`` times one GPU's (per-process batch fixed)."""
    batch, size = run.plan.ddp
    rates = {}
    for n in (1, processes):
        flags = training.train_flags(run.data, STAGE_DSA_DP, batch, size, "cuda", n)
        result = training.run_worker([*TORCHRUN, "--nproc_per_node", str(n), "-m", "benchmarks.train_worker"],
                                     flags, 5, training._env(), timeout_s=timeout_s)
        rates[n] = batch * n / median(result["step_s"])
    efficiency = rates[processes] / (processes * rates[1])
    return Row("ddp", f"scaling, 1 to {processes} GPUs ({STAGE_DSA_DP}, batch {batch} per GPU)", INFO,
               {"1 GPU (samples/s)": rates[1], f"{processes} GPUs (samples/s)": rates[processes],
                "efficiency": efficiency})


def ddp(run: Run, seconds: float) -> List[Row]:
    gpus = torch.cuda.device_count() if run.cuda else 0
    processes = gpus or run.plan.cpu_processes
    timeout = max(seconds, 120.0)
    rows = [ddp_train(run, processes, timeout)]
    if not run.cuda:
        rows.append(Row("ddp", "NCCL all-reduce over every GPU", SKIP, detail="NCCL needs CUDA GPUs"))
    else:
        rows.append(nccl_probe(gpus, timeout))
    if gpus >= 2:
        rows.append(scaling(run, gpus, timeout))
    else:
        rows.append(Row("ddp", "scaling over several GPUs", SKIP,
                        detail=f"needs two or more GPUs; this machine has {gpus}"))
    return rows


SECTIONS: Dict[str, Tuple[float, Callable[[Run, float], List[Row]]]] = {
    "correctness": (1.0, correctness), "inference": (3.0, inference_modes), "training": (3.0, training_scale),
    "amp": (1.5, loss_curves), "input": (0.5, input_pipeline), "evaluation": (0.5, evaluation_loop),
    "ddp": (1.0, ddp)}

