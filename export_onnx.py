"""Export S2R-DepthNet's inference path to ONNX, checked with onnx.checker.

Example (outdoor model at 192x640; --domain indoor for 192x256 and 8 m):
    python export_onnx.py --checkpoint_dir checkpoints --output s2r_kitti.onnx
    python infer.py --onnx s2r_kitti.onnx --input photos/ --out_dir out
"""
import sys
import time

from inference.api import S2RDepth
from inference.onnx_runtime import export_onnx
from options.common import check_load_size
from options.export_options import export_parser
from utils.checkpoint import checkpoint_paths
from utils.errors import exit_on_user_error


def main(argv=None) -> int:
    parser = export_parser()
    args = parser.parse_args(argv)
    check_load_size(parser, args)
    model = S2RDepth.from_checkpoints(checkpoint_paths(args), device="cpu", domain=args.domain or "outdoor",
                                      load_size=args.loadSize, max_depth=args.max_depth,
                                      inference_mode="eager")
    start = time.perf_counter()
    path = export_onnx(model, args.output, args.opset, raw=args.raw, dynamic=args.dynamic)
    size = "any HxW" if args.dynamic else f"{model.load_size[0]}x{model.load_size[1]}"
    output = "raw prediction" if args.raw else f"metres (0..{model.max_depth:g})"
    print(f"wrote {path} ({size} inputs, depth as {output}, opset {args.opset}; "
          f"{time.perf_counter() - start:.1f} s), checked with onnx.checker")
    return 0


if __name__ == "__main__":
    with exit_on_user_error():
        sys.exit(main())
