"""S2R-DepthNet networks: STE (structure encoder + decoder), DSA and DP (depth network)."""
from .depth_net import DepthNet
from .dsa import DSA
from .s2r import S2RDepthNet, S2ROutput, depth_to_metres
from .struct_decoder import StructDecoder
from .struct_encoder import StructEncoder

__all__ = ["DepthNet", "DSA", "S2RDepthNet", "S2ROutput", "StructDecoder", "StructEncoder",
           "depth_to_metres"]
