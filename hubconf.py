"""torch.hub entry points. From a clone of this repository:

    import torch
    model = torch.hub.load("path/to/S2R-DepthNet", "s2r_depthnet", source="local",
                           checkpoint_dir="checkpoints", domain="outdoor")
    depth = model.infer_image("frame.png")   # (H, W) float32 metres

No released weights can be downloaded: without ``checkpoint_dir`` the network is randomly initialised.
"""
from typing import Optional

from inference.api import S2RDepth
from models import S2RDepthNet
from utils.runtime import resolve_device

dependencies = ["torch", "torchvision", "numpy", "PIL"]


def s2r_depthnet(checkpoint_dir: Optional[str] = None, domain: str = "outdoor", device: str = "cpu",
                 **kwargs) -> S2RDepth:
    """S2R-DepthNet (inference.api.S2RDepth) with the four checkpoints of ``checkpoint_dir`` (the
    release's file names; a CheckpointError names the one missing), or randomly initialised when
    it is None. ``domain``: "outdoor" (KITTI: 192x640 input, 80 m) or "indoor" (NYUD-v2: 192x256,
    8 m). Other keyword arguments (load_size, max_depth, inference_mode) go to the model."""
    if checkpoint_dir is None:
        return S2RDepth(S2RDepthNet().to(resolve_device(device)), domain, **kwargs)
    return S2RDepth.from_checkpoints(checkpoint_dir, device=device, domain=domain, **kwargs)
