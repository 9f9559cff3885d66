"""Predict depth for your own images with S2R-DepthNet.

Example (outdoor model; --domain indoor for the indoor one; --onnx model.onnx instead of the
checkpoints runs an export of export_onnx.py with onnxruntime):
    python infer.py --input photos/ 'drive/**/*.png' --out_dir out --checkpoint_dir checkpoints \
        --save_16bit --save_ply --calib 2011_09_26/calib_cam_to_cam.txt

Every image is resized to --loadSize (so any images batch together), run through the network,
and its depth resized back to the image's own size.
"""
import argparse
import sys
from pathlib import Path
from typing import Optional

from torch.utils.data import DataLoader
from tqdm import tqdm

from datasets.images import ImageInputs, collate_inputs, collect_inputs, output_names
from inference.api import DepthPredictor, S2RDepth
from inference.depth_io import DepthWriter
from inference.onnx_runtime import OnnxDepth
from inference.pointcloud import Intrinsics, read_kitti_intrinsics
from inference.predict import to_gt_size, upsample
from options.infer_options import check_infer_args, infer_parser
from utils.checkpoint import checkpoint_paths
from utils.errors import exit_on_user_error
from utils.runtime import resolve_device, worker_init

MAX_LISTED_SKIPS = 10


def camera_intrinsics(args: argparse.Namespace) -> Optional[Intrinsics]:
    """Read --calib up front, so that a bad calibration file fails before any image is processed."""
    if args.calib:
        return read_kitti_intrinsics(args.calib)
    if args.fx is not None:
        return Intrinsics(args.fx, args.fy, args.cx, args.cy)
    return None


def load_model(args: argparse.Namespace) -> DepthPredictor:
    """The ONNX export of --onnx, or the PyTorch model of the checkpoints."""
    if args.onnx:
        return OnnxDepth(args.onnx, args.loadSize, args.max_depth)
    device = resolve_device(args.device)  # a bad --device fails before the checkpoints are looked up
    return S2RDepth.from_checkpoints(checkpoint_paths(args), device=device,
                                     domain=args.domain or "outdoor", load_size=args.loadSize,
                                     max_depth=args.max_depth, inference_mode=args.inference_mode)


def main(argv=None) -> int:
    parser = infer_parser()
    args = parser.parse_args(argv)
    check_infer_args(parser, args)
    intrinsics = camera_intrinsics(args)
    model = load_model(args)
    paths, skipped = collect_inputs(args.input)
    for message in skipped:
        print(f"warning: {message} (skipped)", file=sys.stderr)
    names = output_names(paths)
    writer = DepthWriter(Path(args.out_dir), args.cmap, args.vmin, args.vmax, args.save_16bit,
                         args.save_ply, not args.ply_ascii, args.save_maps, args.save_overview)

    written = 0
    if paths:
        loader = DataLoader(ImageInputs(paths, model.load_size), batch_size=args.batchSize, shuffle=False,
                            num_workers=min(args.nThreads, len(paths)), collate_fn=collate_inputs,
                            worker_init_fn=worker_init)
        bar = tqdm(total=len(paths), desc="inferring", unit="img", dynamic_ncols=True)
        for batch in loader:
            for item in batch["errors"]:
                skipped.append(item["error"])
                tqdm.write(f"warning: {item['error']} (skipped)", file=sys.stderr)
            if batch["image"] is not None:
                outputs = model.outputs(batch["image"], args.post_process)
                for i, (index, rgb) in enumerate(zip(batch["index"], batch["rgb"])):
                    size = rgb.shape[:2]
                    maps = {}
                    if args.save_maps:
                        maps = {"structure": upsample(outputs.structure[i], size).cpu().numpy(),
                                "attention": upsample(outputs.attention[i], size).cpu().numpy()}
                    depth = to_gt_size(outputs.prediction[i], size, model.max_depth)
                    writer.write(names[index], depth, rgb, intrinsics, **maps)
                    written += 1
            bar.update(len(batch["index"]) + len(batch["errors"]))
        bar.close()

    print(f"wrote depth for {written} image(s) to {args.out_dir}")
    if skipped:
        listed = "\n  ".join(skipped[:MAX_LISTED_SKIPS])
        more = f"\n  ... and {len(skipped) - MAX_LISTED_SKIPS} more" if len(skipped) > MAX_LISTED_SKIPS else ""
        print(f"skipped {len(skipped)} input(s):\n  {listed}{more}", file=sys.stderr)
    if not written:
        print("error: no depth was written", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    with exit_on_user_error():
        sys.exit(main())
