"""Inference modes: how test.py runs the network (memory layout, compilation, arithmetic).

A mode is *exact* when its metrics equal those of eager float32 to 1e-6; ``benchmarks/run.py``
checks that for every mode, and docs/performance.md has the numbers. TF32 and autocast change the
arithmetic, so they are options and never the default. ``auto`` is the fastest exact mode measured
on the device type.
"""
from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn as nn

from constants import AUTO_INFERENCE_MODE, INFERENCE_MODES
from utils.errors import UserError


@dataclass(frozen=True)
class InferenceMode:
    name: str
    channels_last: bool = False
    compile: bool = False
    tf32: bool = False
    autocast: Optional[torch.dtype] = None
    description: str = ""

    @property
    def exact(self) -> bool:
        return not self.tf32 and self.autocast is None

    @property
    def cuda_only(self) -> bool:
        """The inexact modes exist for GPU speed: TF32 is a CUDA format, and CPU autocast runs the
        convolutions slower than float32."""
        return not self.exact


_SETTINGS = {"channels_last": {"channels_last": True}, "compile": {"compile": True}, "tf32": {"tf32": True},
             "bf16": {"autocast": torch.bfloat16}, "fp16": {"autocast": torch.float16}}
MODES = {name: InferenceMode(name, description=text, **_SETTINGS.get(name, {}))
         for name, text in INFERENCE_MODES.items()}
AUTO = AUTO_INFERENCE_MODE


def resolve_inference_mode(name: str, device: torch.device) -> InferenceMode:
    """The mode called ``name`` ('auto' picks per device type); a UserError naming --inference_mode
    when the mode needs CUDA and ``device`` is not a GPU."""
    mode = MODES[AUTO.get(device.type, "eager") if name == "auto" else name]
    if mode.cuda_only and device.type != "cuda":
        raise UserError(f"--inference_mode {mode.name} needs a CUDA device (running on {device})")
    return mode


def set_tf32(enabled: bool) -> None:
    """TF32 or IEEE float32 for cuDNN convolutions and CUDA matmuls. PyTorch's own default lets cuDNN
    use TF32, which is not exact, so every mode sets this explicitly."""
    precision = "tf32" if enabled else "ieee"
    torch.backends.cudnn.conv.fp32_precision = precision
    torch.backends.cuda.matmul.fp32_precision = precision


class Autocast(nn.Module):
    """Runs the wrapped model under autocast to ``dtype``."""

    def __init__(self, model: nn.Module, device_type: str, dtype: torch.dtype) -> None:
        super().__init__()
        self.model = model
        self.device_type = device_type
        self.dtype = dtype

    def forward(self, images: torch.Tensor):
        with torch.autocast(self.device_type, dtype=self.dtype):
            return self.model(images)


def prepare_model(model: nn.Module, mode: InferenceMode, device: torch.device) -> nn.Module:
    """``model`` (already on ``device``) set up to run in ``mode``. On CUDA this also sets the
    process-wide TF32 switch."""
    if device.type == "cuda":
        set_tf32(mode.tf32)
    if mode.channels_last:
        model = model.to(memory_format=torch.channels_last)
    if mode.autocast is not None:
        model = Autocast(model, device.type, mode.autocast)
    if mode.compile:
        model = torch.compile(model)
    return model
