"""Flags of export_onnx.py (the inference path as an ONNX model)."""
import argparse

from .common import HelpFormatter, add_checkpoints, positive_int
from .infer_options import add_domain

DESCRIPTION = """\
Export S2R-DepthNet's inference path to ONNX: image (B, 3, H, W) in [-1, 1] -> depth (B, 1, H, W) in
metres (--raw: the network's [-1, 1] prediction), plus the STE structure and DSA attention maps.
The model is checked with onnx.checker; run it with infer.py --onnx or any ONNX runtime.
"""


def export_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=DESCRIPTION, formatter_class=HelpFormatter)
    parser.add_argument("--output", required=True, metavar="MODEL.onnx", help="the ONNX file to write")
    add_domain(parser)
    parser.add_argument("--dynamic", action="store_true",
                        help="free height and width (at least 96, multiples of 16); without it the model "
                             "takes --loadSize only. The batch size is free either way")
    parser.add_argument("--raw", action="store_true",
                        help="output the network's prediction in [-1, 1] instead of metres")
    parser.add_argument("--opset", type=positive_int, default=20, help="ONNX opset version")
    add_checkpoints(parser)
    return parser
