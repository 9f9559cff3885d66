"""Argument groups shared by several commands (checkpoints, device, evaluation protocol).

Flag names follow the release (including its spellings) so that its README commands work unchanged.
"""
import argparse
from typing import Mapping

import matplotlib

from constants import AUTO_INFERENCE_MODE, INFERENCE_MODES, MIN_INPUT_SIZE, SIZE_MULTIPLE


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Keep the description's line breaks; show a flag's default when it has a meaningful one."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        meaningful = not any(action.default is v for v in (None, False, argparse.SUPPRESS))  # 0 is one
        if meaningful and "%(default)" not in text and action.option_strings:
            default = " ".join(map(str, action.default)) if isinstance(action.default, (list, tuple)) \
                else action.default
            text += f" (default: {default})"
        return text


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return value


def load_size(parser: argparse.ArgumentParser, default, help_text: str) -> None:
    parser.add_argument("--loadSize", nargs=2, type=positive_int, metavar=("H", "W"), default=default,
                        help=help_text)


def check_load_size(parser: argparse.ArgumentParser, args: argparse.Namespace, flag: str = "loadSize",
                    minimum: int = MIN_INPUT_SIZE, why: str = "the depth network's dilated centre") -> None:
    """Sizes must be multiples of 16 (the DP module pools four times) and at least ``minimum``."""
    size = getattr(args, flag)
    if size and any(v % SIZE_MULTIPLE or v < minimum for v in size):
        parser.error(f"--{flag} {size[0]} {size[1]}: both must be multiples of {SIZE_MULTIPLE} and at "
                     f"least {minimum} ({why})")


def positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def colormap(text: str) -> str:
    if text not in matplotlib.colormaps:
        raise argparse.ArgumentTypeError(f"unknown matplotlib colormap {text!r} (e.g. magma_r, plasma_r, "
                                         f"viridis_r, inferno_r, turbo_r, gray)")
    return text


def add_cmap(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cmap", type=colormap, default="magma_r",
                        help="matplotlib colormap of the coloured depth PNGs (near = bright with magma_r)")


def add_inference_mode(parser: argparse.ArgumentParser) -> None:
    modes = "; ".join(f"{name}: {text}" for name, text in INFERENCE_MODES.items())
    auto = AUTO_INFERENCE_MODE
    parser.add_argument("--inference_mode", choices=("auto", *INFERENCE_MODES), default="auto",
                        help=f"how the network runs. auto: the fastest mode whose metrics equal eager "
                             f"float32 to 1e-6 (CPU: {auto['cpu']}, CUDA: {auto['cuda']}; measured in "
                             f"docs/performance.md). {modes}")


def add_device(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", default="auto",
                        help="'auto' (CUDA when available, else CPU), 'cpu', 'cuda' or 'cuda:N'")


def add_checkpoints(parser: argparse.ArgumentParser, required: bool = False) -> None:
    """The four released checkpoints, or a folder holding them under their release names."""
    group = parser.add_argument_group("checkpoints")
    group.add_argument("--checkpoint_dir", default=None,
                       help="folder with the four checkpoints (struct_encoder*.pth, struct_decoder*.pth, "
                            "dsa*.pth, depth_net*.pth; the highest epoch wins); the four flags below "
                            "override single files")
    group.add_argument("--Shared_Struct_Encoder_path", default=None,
                       help="structure encoder checkpoint (STE encoder)")
    group.add_argument("--Struct_Decoder_path", default=None,
                       help="structure decoder checkpoint (STE decoder)")
    group.add_argument("--DSAModle_path", default=None,
                       help="depth-specific attention (DSA) module checkpoint")
    group.add_argument("--DepthNet_path", default=None,
                       help="depth prediction (DP) network checkpoint")


def add_protocol(parser: argparse.ArgumentParser, presets: Mapping[str, str],
                 alignments: Mapping[str, str]) -> None:
    """Evaluation protocol; the defaults are the release's (docs/release.md §4) and, on the other
    sets, each set's own. A preset sets several at once; the flags below override it."""
    group = parser.add_argument_group(
        "evaluation protocol", "defaults reproduce the release: clip to [min, max], Garg crop on KITTI, "
                               "median scaling, no clipping after scaling")
    group.add_argument("--preset", choices=tuple(presets), default=None,
                       help="a named protocol: " + "; ".join(f"{k}: {v}" for k, v in presets.items()))
    group.add_argument("--crop", choices=("garg", "eigen", "eigen_nyu", "cityscapes", "none"), default=None,
                       help="evaluation crop (default: the set's: garg for KITTI, none for NYUD_V2)")
    group.add_argument("--min_depth", type=float, default=1e-3, help="lower depth bound in metres")
    group.add_argument("--max_depth", type=float, default=None,
                       help="upper depth bound in metres (default: the set's: 80 for KITTI, 8 for NYUD_V2; "
                            "monodepth2's 50 m cap is --max_depth 50)")
    group.add_argument("--alignment", choices=tuple(alignments), default=None,
                       help="per-image fit of the prediction to the GT (default: median). "
                            + "; ".join(f"{k}: {v}" for k, v in alignments.items()))
    group.add_argument("--no_median_scaling", action="store_true",
                       help="the release's flag: the same as --alignment none")
    group.add_argument("--clip_after_scaling", action="store_true", default=None,
                       help="clip the prediction after median scaling instead of before (monodepth2's order)")
    group.add_argument("--post_process", action="store_true",
                       help="flip test-time augmentation: average the prediction of the image and of its "
                            "mirror, mirrored back")
