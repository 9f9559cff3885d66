"""Mixed precision (``--amp``): autocast on CUDA, with a gradient scaler for float16."""
import contextlib
import sys
from typing import Callable, ContextManager, Optional

import torch

DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


class MixedPrecision:
    """Autocast and loss scaling for ``mode`` ('bf16', 'fp16' or None). On CPU it is off: CPU
    autocast would run the convolutions in bfloat16 far slower than float32, for no memory gain
    worth having at CPU batch sizes."""

    def __init__(self, mode: Optional[str], device: torch.device, warn: bool = True) -> None:
        if mode and device.type != "cuda":
            if warn:
                print(f"warning: --amp {mode} works on CUDA only; training in float32 on {device}",
                      file=sys.stderr)
            mode = None
        self.mode = mode
        self.device = device
        self.scaler = torch.amp.GradScaler("cuda", enabled=mode == "fp16")

    def autocast(self) -> ContextManager:
        if self.mode is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=DTYPES[self.mode])

    def step(self, loss: torch.Tensor, optimizer: torch.optim.Optimizer,
             before_step: Optional[Callable[[], None]] = None) -> None:
        """Backward (scaled for fp16), ``before_step`` (e.g. gradient averaging), optimiser step."""
        self.scaler.scale(loss).backward()
        if before_step is not None:
            before_step()
        self.scaler.step(optimizer)
        self.scaler.update()
