"""The training state file (``last.pth``): reading it safely, and the random-number-generator states
it carries so that a resumed run draws the same numbers as an uninterrupted one."""
import random
from pathlib import Path
from typing import Any, Dict

import numpy as np
import torch

from utils.checkpoint import CheckpointError, safe_load

STATE_FORMAT = "s2r-depthnet-training-state/1"


def rng_state() -> Dict[str, Any]:
    """Python, NumPy, torch and CUDA generator states, as types ``torch.load(weights_only=True)`` reads."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    return {"python": random.getstate(),
            "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                      "has_gauss": int(has_gauss), "gauss": float(gauss)},
            "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []}


def set_rng_state(state: Dict[str, Any]) -> None:
    version, internal, gauss_next = state["python"]
    random.setstate((version, tuple(internal), gauss_next))
    n = state["numpy"]
    np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"]))
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])


def read_training_state(path: Path, train_stage: str) -> Dict[str, Any]:
    """Load a state written by train.py for ``train_stage``; anything else is a CheckpointError."""
    if not path.is_file():
        raise CheckpointError(f"--resume: no training state at {path} (it is written at the end of every "
                              f"epoch and on Ctrl-C)")
    state = safe_load(path, "--resume", "training state")
    if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
        raise CheckpointError(f"--resume: {path} is not a training state written by train.py (a network "
                              f"checkpoint goes to --Shared_Struct_Encoder_path, --Struct_Decoder_path, "
                              f"--DSAModle_path or --DepthNet_path)")
    if state["train_stage"] != train_stage:
        raise CheckpointError(f"--resume: {path} is a {state['train_stage']} state, but --train_stage is "
                              f"{train_stage}")
    return state
