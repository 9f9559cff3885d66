"""Argument groups shared by several commands (checkpoints, device, evaluation protocol).

Flag names follow the release (including its spellings) so that its README commands work unchanged.
"""
import argparse
import math
import os
import re
from pathlib import Path
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


# NumPy's legacy seeding (np.random.seed, used by every command) takes 0 <= seed < 2**32; torch takes
# more, so NumPy's range is the one every seed flag accepts.
MAX_SEED = 2 ** 32 - 1
DEVICE_PATTERN = re.compile(r"auto|cpu|cuda(:\d+)?")


def finite_float(text: str) -> float:
    """A float that is a number: 'nan' and 'inf' parse as floats but mean no setting."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text}")
    return value


def positive_float(text: str) -> float:
    value = finite_float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def non_negative_float(text: str) -> float:
    value = finite_float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return value


def seed(text: str) -> int:
    value = int(text)
    if not 0 <= value <= MAX_SEED:
        raise argparse.ArgumentTypeError(f"must be an integer in 0..{MAX_SEED} (what NumPy's seeding "
                                         f"accepts), got {text}")
    return value


def device_name(text: str) -> str:
    """'auto', 'cpu', 'cuda' or 'cuda:N'; whether the machine has that device is checked when it is
    opened (utils/runtime.resolve_device), before any work."""
    if not DEVICE_PATTERN.fullmatch(text):
        raise argparse.ArgumentTypeError(f"expected auto, cpu, cuda or cuda:N, got {text!r}")
    return text


def _writable_place(path: Path) -> str:
    """Why files cannot be created at ``path`` (which need not exist yet), or '' when they can.
    Missing folders on the way are fine: the commands create them (as mkdir -p does)."""
    ancestor = path.absolute()
    while not ancestor.exists():
        if ancestor.is_symlink():
            return f"{ancestor} is a broken symbolic link"
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        return f"{ancestor} is a regular file, not a folder" if ancestor == path.absolute() else \
            f"it lies under {ancestor}, which is a regular file, not a folder"
    if not os.access(ancestor, os.W_OK | os.X_OK):
        return f"the folder {ancestor} is not writable"
    return ""


def output_dir(text: str) -> str:
    """A folder a command writes into: existing, or creatable with its missing parents."""
    problem = _writable_place(Path(text))
    if problem:
        raise argparse.ArgumentTypeError(f"cannot write into {text}: {problem}")
    return text


def output_file(text: str) -> str:
    """A file a command writes (replacing an older one); missing parent folders are created."""
    path = Path(text)
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a folder; name the file to write")
    problem = _writable_place(path.parent)
    if problem:
        raise argparse.ArgumentTypeError(f"cannot write {text}: {problem}")
    return text


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
    parser.add_argument("--device", type=device_name, default="auto",
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
    group.add_argument("--min_depth", type=positive_float, default=1e-3, help="lower depth bound in metres")
    group.add_argument("--max_depth", type=positive_float, default=None,
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
