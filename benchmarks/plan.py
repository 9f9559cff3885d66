"""What each run measures: sizes, batch sizes and repeat counts per device type.

CUDA always gets the issue's full sizes (192x640; training batches 1, 8, 32). The CPU gets them
only with --full: on a 2-core CPU a stage-1 step at 192x640 takes minutes, so the default CPU plan
uses smaller inputs and fewer repeats to finish within 10 minutes, and says so in every table.
"""
from dataclasses import dataclass, replace
from typing import Dict, Optional, Tuple

from constants import LOAD_SIZE, STAGE_DSA_DP, STAGES, TRAIN_LOAD_SIZE

from .data import WorldSpec

Size = Tuple[int, int]
FULL: Size = TRAIN_LOAD_SIZE
CPU_MODES = ("eager", "channels_last", "compile")
CUDA_MODES = ("eager", "channels_last", "compile", "tf32", "bf16", "fp16")
PROJECTION_POINTS = (30_000, 120_000, 500_000)


@dataclass(frozen=True)
class Plan:
    """Sizes and counts of one device's run."""

    name: str
    inference: Tuple[Tuple[str, int, Size], ...]   # (mode, batch, input); eager first per (batch, input)
    repeats: int                                   # timed calls per inference configuration
    budget_s: float                                # ... unless they took this long already
    eval_size: Size
    eval_frames: int
    train: Tuple[Tuple[str, int, Size, int], ...]  # (stage, batch, input, timed steps after one warm-up)
    loader_size: Size
    loader_batch: int                              # training loader batch size
    loader_samples: int
    loader_workers: Tuple[int, ...]
    ddp: Tuple[str, int, Size, int]                # (stage, batch per process, input, timed steps)
    projection_repeats: int
    onnxruntime: Tuple[Tuple[int, Size], ...] = ()  # (batch, input) of the onnxruntime rows (CPU)
    sets_input: Optional[Size] = None              # evaluation sets: None = real-size frames at each
                                                   # set's input; else tiny frames at this input


def _inference(modes, groups) -> Tuple[Tuple[str, int, Size], ...]:
    return tuple((mode, batch, size) for batch, size in groups for mode in modes)


CPU_DEFAULT = Plan(
    name="default CPU plan (reduced sizes)",
    inference=_inference(CPU_MODES, [(1, FULL)]) + _inference(CPU_MODES[:2], [(8, (96, 320))]),
    repeats=2, budget_s=12.0, eval_size=FULL, eval_frames=4,
    train=tuple((stage, batch, (96, 96), 2 if batch == 1 else 1) for stage in STAGES for batch in (1, 8)),
    loader_size=FULL, loader_batch=8, loader_samples=96, loader_workers=(0, 2, 4),
    ddp=(STAGE_DSA_DP, 2, (96, 96), 3), projection_repeats=20, onnxruntime=((1, FULL),))

CPU_FULL = Plan(
    name="full CPU plan (--full)",
    inference=_inference(CPU_MODES, [(1, FULL), (8, FULL)]),
    repeats=3, budget_s=120.0, eval_size=FULL, eval_frames=8,
    train=tuple((stage, batch, FULL, 2) for stage in STAGES for batch in (1, 8)),
    loader_size=FULL, loader_batch=32, loader_samples=256, loader_workers=(0, 2, 4),
    ddp=(STAGE_DSA_DP, 4, FULL, 3), projection_repeats=50, onnxruntime=((1, FULL),))

CUDA_FULL = Plan(
    name="CUDA plan (full sizes)",
    inference=_inference(CUDA_MODES, [(1, FULL), (8, FULL)]),
    repeats=20, budget_s=10.0, eval_size=FULL, eval_frames=96,
    train=tuple((stage, batch, FULL, 5) for stage in STAGES for batch in (1, 8, 32)),
    loader_size=FULL, loader_batch=32, loader_samples=512, loader_workers=(0, 2, 4),
    ddp=(STAGE_DSA_DP, 8, FULL, 10), projection_repeats=50)

SMOKE = Plan(
    name="smoke plan (--smoke: tiny sizes, for the test suite; the numbers mean nothing)",
    inference=_inference(("eager", "channels_last"), [(1, (96, 96)), (2, (96, 96))]),
    repeats=1, budget_s=1.0, eval_size=(96, 96), eval_frames=3,
    train=tuple((stage, 1, (64, 64) if stage == STAGES[0] else (96, 96), 1) for stage in STAGES),
    loader_size=(96, 96), loader_batch=2, loader_samples=8, loader_workers=(0, 2),
    ddp=(STAGE_DSA_DP, 1, (96, 96), 1), projection_repeats=2, onnxruntime=((1, (96, 96)),),
    sets_input=(96, 96))

KITTI_WORLD = WorldSpec(image_size=(1242, 375), lidar_azimuths=1800, vkitti_frames=4, kitti_frames=3)
SMOKE_WORLD = WorldSpec(image_size=(320, 96), lidar_azimuths=360, vkitti_frames=2, kitti_frames=2,
                        style_size=(160, 48), style_images=2)


def select(full: bool, smoke: bool) -> Tuple[Plan, Plan, WorldSpec]:
    """(CPU plan, CUDA plan, world) for the run's flags."""
    if smoke:
        return SMOKE, SMOKE, SMOKE_WORLD
    return (CPU_FULL if full else CPU_DEFAULT), CUDA_FULL, KITTI_WORLD


@dataclass(frozen=True)
class CheckPlan:
    """Sizes and counts of one run of the check."""

    name: str
    world: WorldSpec
    test_sizes: Dict[str, Size]                # test.py's --loadSize per dataset
    step: Tuple[int, Size]                     # batch and input of the CPU/CUDA training step
    modes: Tuple[str, ...]
    batches: Tuple[int, ...]
    infer_size: Size
    train: Tuple[int, Size, Size, int]         # batch, input (stages 2-3), input (stage 1), timed steps
    curve: Tuple[str, int, Size, int]          # stage, batch, input, steps
    loader_workers: Tuple[int, ...]
    loader: Tuple[int, Size, int]              # batch, input, samples
    bench: Plan                                # inference repeats, evaluation-loop frames and size
    ddp: Tuple[int, Size]                      # batch per process, input
    cpu_processes: int                         # torchrun processes without CUDA (gloo)
    quick: bool


# benchmarks/gpu_check.py: the sizes on CUDA; tiny ones with --quick, where only the code
# paths count.
GPU_CHECK = CheckPlan(
    name="CUDA plan (192×640; batches 1, 8, 32)", world=KITTI_WORLD,
    test_sizes={"KITTI": LOAD_SIZE["KITTI"], "NYUD_V2": LOAD_SIZE["NYUD_V2"]}, step=(4, FULL),
    modes=CUDA_MODES, batches=(1, 8, 32), infer_size=FULL, train=(32, FULL, FULL, 3),
    curve=(STAGE_DSA_DP, 8, FULL, 50), loader_workers=(4, 8, 16), loader=(32, FULL, 512),
    bench=replace(CUDA_FULL, repeats=10, budget_s=5.0), ddp=(4, FULL), cpu_processes=2, quick=False)

GPU_CHECK_QUICK = CheckPlan(
    name="--quick plan (tiny sizes: the code paths, not the numbers)", world=SMOKE_WORLD,
    test_sizes={"KITTI": (96, 96), "NYUD_V2": (96, 96)}, step=(1, (96, 96)),
    modes=CUDA_MODES, batches=(1, 2), infer_size=(96, 96), train=(1, (96, 96), (64, 64), 1),
    curve=(STAGE_DSA_DP, 1, (96, 96), 4), loader_workers=(1, 2), loader=(2, (96, 96), 8),
    bench=SMOKE, ddp=(1, (96, 96)), cpu_processes=1, quick=True)
