"""The Python API: depth in metres for an image, with test.py's preprocessing and resizing.

    from models import S2RDepthNet
    model = S2RDepthNet.from_checkpoints("checkpoints", domain="outdoor")
    depth = model.infer_image("frame.png")   # (H, W) float32 metres at the image's own size

An image is resized to the domain's load size (bicubic), normalised to [-1, 1], run through the
network, and its prediction resized back bilinearly (align_corners) and mapped to metres, exactly as
test.py does, so ``infer_image`` equals test.py's prediction for the same frame.
"""
import os
from pathlib import Path
from typing import Mapping, Optional, Sequence, Tuple, Union

import numpy as np
import torch
import torch.nn as nn
from PIL import Image

from constants import DEPTH_SCALE, DOMAINS, LOAD_SIZE, NETWORKS
from datasets.common import open_image, resize_image, to_network_input
from models import S2RDepthNet, S2ROutput, depth_to_metres
from models.depth_net import check_input_size
from utils.checkpoint import CheckpointError, PathLike, find_checkpoint, load_s2r
from utils.errors import UserError
from utils.runtime import resolve_device

from .modes import prepare_model, resolve_inference_mode
from .predict import predict, to_gt_size

ImageLike = Union[str, os.PathLike, Image.Image, np.ndarray]
Checkpoints = Union[PathLike, Sequence[PathLike], Mapping[str, PathLike]]


class ImageInputError(UserError):
    """An image the API cannot take: not RGB, not uint8, or a batch of the wrong shape."""


def domain_defaults(domain: str) -> Tuple[Tuple[int, int], float]:
    """(load size, max depth in metres) of ``domain``: outdoor = KITTI's, indoor = NYUD-v2's."""
    if domain not in DOMAINS:
        raise UserError(f"unknown domain {domain!r}: choose one of {', '.join(DOMAINS)}")
    dataset = DOMAINS[domain]
    return LOAD_SIZE[dataset], DEPTH_SCALE[dataset]


def resolve_checkpoints(checkpoints: Checkpoints) -> dict:
    """{network: path} from a folder, four paths in the order of NETWORKS, or a mapping."""
    if isinstance(checkpoints, Mapping):
        missing = [n for n in NETWORKS if n not in checkpoints]
        if missing:
            raise CheckpointError(f"no checkpoint given for {', '.join(missing)}")
        return {n: Path(checkpoints[n]) for n in NETWORKS}
    if isinstance(checkpoints, (str, os.PathLike)):
        return {n: find_checkpoint(checkpoints, n) for n in NETWORKS}
    paths = list(checkpoints)
    if len(paths) != len(NETWORKS):
        raise CheckpointError(f"expected a folder or four checkpoint paths ({', '.join(NETWORKS)}), "
                              f"got {len(paths)} paths")
    return dict(zip(NETWORKS, map(Path, paths)))


def rgb_array(image: ImageLike) -> np.ndarray:
    """The (H, W, 3) uint8 pixels of a path (decoded and converted to RGB, as test.py reads files),
    a PIL RGB image or an (H, W, 3) uint8 array; anything else is an ImageInputError naming it."""
    if isinstance(image, (str, os.PathLike)):
        return np.asarray(open_image(str(image)))
    if isinstance(image, Image.Image):
        if image.mode != "RGB":
            raise ImageInputError(f"image is a PIL image of mode {image.mode}, not RGB "
                                  f"(convert it with image.convert('RGB'))")
        return np.asarray(image)
    if isinstance(image, np.ndarray):
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ImageInputError(f"image array has shape {image.shape} and dtype {image.dtype}; "
                                  f"expected an (H, W, 3) uint8 RGB array")
        return image
    raise ImageInputError(f"image is a {type(image).__name__}; expected a path, a PIL RGB image or an "
                          f"(H, W, 3) uint8 array")


def check_batch(images: torch.Tensor) -> None:
    """A (B, 3, H, W) floating-point batch of a size the network takes."""
    if not isinstance(images, torch.Tensor) or images.ndim != 4 or images.shape[1] != 3 \
            or not images.is_floating_point():
        shape = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
        raise ImageInputError(f"images must be a (B, 3, H, W) float tensor in [-1, 1], got {shape}")
    check_input_size(*images.shape[-2:], network="S2R-DepthNet")


class DepthPredictor:
    """What the PyTorch model and the ONNX runtime share: preprocessing, metres, resizing back.

    Subclasses implement ``outputs``: the network outputs of a (B, 3, h, w) batch at ``load_size``."""

    def __init__(self, load_size: Sequence[int], max_depth: float) -> None:
        check_input_size(*load_size, network="S2R-DepthNet")
        if not max_depth > 0:
            raise UserError(f"max_depth must be > 0, got {max_depth}")
        self.load_size = tuple(load_size)
        self.max_depth = float(max_depth)

    def outputs(self, images: torch.Tensor, post_process: bool = False) -> S2ROutput:
        raise NotImplementedError

    def preprocess(self, image: ImageLike) -> Tuple[torch.Tensor, np.ndarray]:
        """((3, h, w) network input in [-1, 1] at ``load_size``, (H, W, 3) uint8 original)."""
        rgb = rgb_array(image)
        return to_network_input(resize_image(Image.fromarray(rgb), self.load_size)), rgb

    def infer_batch(self, images: torch.Tensor, max_depth: Optional[float] = None,
                    post_process: bool = False) -> torch.Tensor:
        """Depth in metres, (B, 1, h, w) at the input's size, of a (B, 3, h, w) batch in [-1, 1]."""
        check_batch(images)
        return depth_to_metres(self.outputs(images, post_process).prediction, self.max_depth if max_depth is None else max_depth)

    def infer_image(self, image: ImageLike, max_depth: Optional[float] = None,
                    post_process: bool = False) -> np.ndarray:
        """(H, W) float32 depth in metres at the image's own resolution (test.py's prediction)."""
        x, rgb = self.preprocess(image)
        pred = self.outputs(x[None], post_process).prediction[0]
        return to_gt_size(pred, rgb.shape[:2], self.max_depth if max_depth is None else max_depth)


class S2RDepth(DepthPredictor, nn.Module):
    """S2R-DepthNet with its domain's load size and depth scale. ``forward``: (B, 3, h, w) images in
    [-1, 1] to (B, 1, h, w) depth in metres (what export_onnx.py exports)."""

    def __init__(self, net: Optional[S2RDepthNet] = None, domain: str = "outdoor",
                 load_size: Optional[Sequence[int]] = None, max_depth: Optional[float] = None,
                 inference_mode: str = "auto") -> None:
        default_size, default_depth = domain_defaults(domain)
        nn.Module.__init__(self)
        DepthPredictor.__init__(self, load_size or default_size, max_depth or default_depth)
        self.domain = domain
        self.net = (net if net is not None else S2RDepthNet()).eval()
        device = next(self.net.parameters()).device
        self.mode = resolve_inference_mode(inference_mode, device)
        # Kept out of the module tree: it wraps self.net (the same parameters), which registering it
        # would list twice in state_dict().
        self.__dict__["runner"] = prepare_model(self.net, self.mode, device)

    @classmethod
    def from_checkpoints(cls, checkpoints: Checkpoints, device: Union[str, torch.device] = "auto",
                         domain: str = "outdoor", load_size: Optional[Sequence[int]] = None,
                         max_depth: Optional[float] = None, inference_mode: str = "auto") -> "S2RDepth":
        """The model of the four checkpoints: a folder holding them under the release's names (the
        highest epoch wins), four paths (struct_encoder, struct_decoder, dsa, depth_net) or a
        {network: path} mapping. ``load_size`` and ``max_depth`` default to the domain's."""
        device = resolve_device(str(device))
        net = load_s2r(resolve_checkpoints(checkpoints), map_location="cpu").to(device)
        return cls(net, domain, load_size, max_depth, inference_mode)

    @property
    def device(self) -> torch.device:
        return next(self.net.parameters()).device

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return depth_to_metres(self.net(images).prediction, self.max_depth)

    def outputs(self, images: torch.Tensor, post_process: bool = False) -> S2ROutput:
        """STE structure, DSA attention and DP outputs of a batch (test.py's predict)."""
        return predict(self.runner, images.to(self.device), post_process)
