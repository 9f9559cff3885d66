"""The full S2R-DepthNet inference path (docs/release.md §1): STE, DSA and DP composed."""
from typing import List, NamedTuple

import torch
import torch.nn as nn

from .depth_net import DepthNet, check_input_size
from .dsa import DSA
from .struct_decoder import StructDecoder
from .struct_encoder import StructEncoder


class S2ROutput(NamedTuple):
    structure: torch.Tensor   # STE structure map, (B, 1, H, W) in (0, 1)
    attention: torch.Tensor   # DSA attention map, (B, 1, H, W) in (0, 1)
    depth: List[torch.Tensor]  # DP outputs [o4, o3, o2, o1]; o1 is the prediction in [-1, 1]

    @property
    def prediction(self) -> torch.Tensor:
        """o1, the only output used at inference (docs/release.md §1)."""
        return self.depth[-1]


class S2RDepthNet(nn.Module):
    """``depth = DepthNet(DSA(img) * StructDecoder(StructEncoder(img)))``.

    The four parts keep their own state_dicts so that each released checkpoint loads into its part.
    """

    def __init__(self) -> None:
        super().__init__()
        self.struct_encoder = StructEncoder()
        self.struct_decoder = StructDecoder()
        self.dsa = DSA()
        self.depth_net = DepthNet()

    def forward(self, img: torch.Tensor) -> S2ROutput:
        check_input_size(*img.shape[-2:], network="S2R-DepthNet")
        structure = self.struct_decoder(self.struct_encoder(img))
        attention = self.dsa(img)
        return S2ROutput(structure, attention, self.depth_net(attention * structure))

    @classmethod
    def from_checkpoints(cls, checkpoints, **kwargs):
        """``inference.api.S2RDepth.from_checkpoints``: the network with its checkpoints loaded,
        wrapped with test.py's preprocessing (``infer_image``, ``infer_batch``). The file I/O lives
        in the API, so that models/ stays free of it."""
        from inference.api import S2RDepth

        return S2RDepth.from_checkpoints(checkpoints, **kwargs)


def depth_to_metres(pred: torch.Tensor, max_depth: float) -> torch.Tensor:
    """Map the network's [-1, 1] output to metres, 0..max_depth, as training maps GT the other way."""
    return (pred + 1.0) / 2.0 * max_depth
