"""S2R-DepthNet networks: STE (structure encoder + decoder), DSA and DP (depth network), and the
stage-1 translation networks that train the structure encoder (style encoder, AdaIN decoder,
discriminator)."""
from .adain_decoder import AdaINDecoder
from .depth_net import DepthNet
from .discriminator import MultiScaleDiscriminator
from .dsa import DSA
from .s2r import S2RDepthNet, S2ROutput, depth_to_metres
from .struct_decoder import StructDecoder
from .struct_encoder import StructEncoder
from .style_encoder import StyleEncoder

__all__ = ["AdaINDecoder", "DepthNet", "DSA", "MultiScaleDiscriminator", "S2RDepthNet", "S2ROutput",
           "StructDecoder", "StructEncoder", "StyleEncoder", "depth_to_metres"]
