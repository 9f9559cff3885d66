"""Flags of infer.py (depth for your own images)."""
import argparse

from constants import CHECKPOINT_FLAGS, DEPTH_SCALE, DOMAINS, LOAD_SIZE

from .common import (HelpFormatter, add_checkpoints, add_cmap, add_device, add_inference_mode,
                     check_load_size, finite_float, load_size, non_negative_int, output_dir, positive_float,
                     positive_int)

INTRINSICS_FLAGS = ("fx", "fy", "cx", "cy")


def add_domain(parser: argparse.ArgumentParser, onnx_note: str = "") -> None:
    """--domain, and --loadSize and --max_depth defaulting to the domain's."""
    sizes = ", ".join(f"{d} {LOAD_SIZE[s][0]} {LOAD_SIZE[s][1]} and {DEPTH_SCALE[s]:g} m"
                      for d, s in DOMAINS.items())
    parser.add_argument("--domain", choices=tuple(DOMAINS), default=None,
                        help=f"the model's domain, which sets the defaults of --loadSize and --max_depth: "
                             f"{sizes} (default: outdoor{onnx_note})")
    load_size(parser, None, "network input size; every image is resized to it (bicubic) and the depth "
                            "resized back to the image's own size (default: the domain's)")
    parser.add_argument("--max_depth", type=positive_float, default=None,
                        help="metres that the network's output range [-1, 1] spans from 0 (default: the "
                             "domain's: 80 for the outdoor (vKITTI) model, 8 for the indoor one)")


def infer_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Predict depth for your own images with the four S2R-DepthNet checkpoints.\n"
                    "Per input <name>: <name>_depth.npy (float32 metres at the input's resolution) and "
                    "<name>_depth.png (coloured),\nplus the optional files below. Unreadable inputs are "
                    "skipped with a warning; the exit status is 1 when nothing was written.",
        formatter_class=HelpFormatter)
    parser.add_argument("--input", nargs="+", required=True, metavar="PATH",
                        help="image files, folders (their image files) or quoted glob patterns "
                             "('frames/**/*.png')")
    parser.add_argument("--out_dir", "--output_dir", dest="out_dir", type=output_dir, required=True,
                        help="where the outputs go (created if needed)")
    add_domain(parser, "; with --onnx, the domain the model was exported for")
    parser.add_argument("--post_process", action="store_true",
                        help="flip test-time augmentation: average the prediction of the image and of "
                             "its mirror, mirrored back")
    parser.add_argument("--batchSize", "--batch_size", dest="batchSize", type=positive_int, default=4,
                        help="images per forward pass")
    parser.add_argument("--nThreads", "--num_workers", dest="nThreads", type=non_negative_int, default=2,
                        help="image-decoding worker processes")
    add_device(parser)
    add_inference_mode(parser)
    add_checkpoints(parser)
    parser.add_argument("--onnx", default=None, metavar="MODEL.onnx",
                        help="run this export of export_onnx.py with onnxruntime on the CPU instead of "
                             "the checkpoints (its size, domain and depth scale come with it)")

    out = parser.add_argument_group("outputs")
    add_cmap(out)
    out.add_argument("--vmin", type=finite_float, default=None,
                     help="depth (m) at the low end of the colormap (default: per image, 5th percentile)")
    out.add_argument("--vmax", type=finite_float, default=None,
                     help="depth (m) at the high end of the colormap (default: per image, 95th percentile)")
    out.add_argument("--save_16bit", action="store_true",
                     help="also write <name>_depth16.png: uint16 depth x 256 (KITTI's convention), "
                          "clipped to 0..65535")
    out.add_argument("--save_ply", action="store_true",
                     help="also write <name>_points.ply, the coloured point cloud (camera frame: x right, "
                          "y down, z forward; needs --fx --fy --cx --cy or --calib)")
    out.add_argument("--ply_ascii", action="store_true", help="write ASCII PLY instead of binary")
    out.add_argument("--save_maps", action="store_true",
                     help="also write <name>_structure.png (STE) and <name>_attention.png (DSA), greyscale")
    out.add_argument("--save_overview", action="store_true",
                     help="also write <name>_overview.png: the image above its coloured depth")

    cam = parser.add_argument_group("camera (for --save_ply)",
                                    "pixel coordinates are 0-based at pixel centres")
    for name in INTRINSICS_FLAGS:
        cam.add_argument(f"--{name}", type=finite_float, default=None,
                         help=f"{name} in pixels of the input images as they are on disk")
    cam.add_argument("--calib", default=None,
                     help="KITTI calib_cam_to_cam.txt: intrinsics from P_rect_02, rescaled to images whose "
                          "size differs from its S_rect_02")
    return parser


def check_infer_args(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Flag combinations that cannot work, reported before any image is read."""
    check_load_size(parser, args)
    if args.onnx:
        check_onnx_args(parser, args)
    if args.vmin is not None and args.vmax is not None and args.vmin >= args.vmax:
        parser.error(f"--vmin {args.vmin:g} must be below --vmax {args.vmax:g}")
    given = [n for n in INTRINSICS_FLAGS if getattr(args, n) is not None]
    if given and len(given) < len(INTRINSICS_FLAGS):
        missing = [f"--{n}" for n in INTRINSICS_FLAGS if n not in given]
        parser.error(f"intrinsics need all of --fx --fy --cx --cy; missing {' '.join(missing)}")
    if given and args.calib:
        parser.error("give the intrinsics either as --fx --fy --cx --cy or as --calib, not both")
    if given and not (args.fx > 0 and args.fy > 0):
        parser.error("--fx and --fy must be positive")
    if args.save_ply and not (given or args.calib):
        parser.error("--save_ply needs the camera intrinsics: --fx --fy --cx --cy, or --calib "
                     "calib_cam_to_cam.txt")
    if args.ply_ascii and not args.save_ply:
        parser.error("--ply_ascii applies to --save_ply only")


def check_onnx_args(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """The flags that have no meaning for an ONNX export run by onnxruntime on the CPU."""
    given = [f"--{flag}" for flag in ("checkpoint_dir", *CHECKPOINT_FLAGS.values()) if getattr(args, flag)]
    if given:
        parser.error(f"--onnx replaces the checkpoints; drop {' '.join(given)}")
    if args.domain:
        parser.error("--domain: an --onnx model carries the domain it was exported for")
    if args.inference_mode != "auto":
        parser.error("--inference_mode applies to the PyTorch model, not to --onnx")
    if args.device not in ("auto", "cpu"):
        parser.error(f"--device {args.device}: --onnx runs on the CPU (onnxruntime's CPU provider)")
