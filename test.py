"""Evaluate S2R-DepthNet on the KITTI Eigen split or NYUD-v2 (the release's protocol by default).

Example:
    python test.py --dataset KITTI --root $KITTI_RAW --test_datafile datasets/kitti/test.txt \
        --loadSize 192 640 --Shared_Struct_Encoder_path ... --Struct_Decoder_path ... \
        --DSAModle_path ... --DepthNet_path ... --out_dir results/kitti
"""
import sys
from pathlib import Path

import numpy as np

from datasets.common import open_image
from options.common import check_depth_range, check_load_size
from options.test_options import test_parser
from utils.checkpoint import checkpoint_paths, load_s2r
from inference.depth_io import DepthWriter, comparison_figure, save_rgb
from utils.errors import UserError, exit_on_user_error
from constants import DEPTH_SCALE
from evaluation.loop import build_test_dataset, evaluate, make_loader
from evaluation.results import non_finite_metrics, summary, write_results
from inference.modes import prepare_model, resolve_inference_mode
from evaluation.protocol import default_protocol
from utils.runtime import resolve_device


def main(argv=None) -> int:
    parser = test_parser()
    args = parser.parse_args(argv)
    check_load_size(parser, args)
    check_depth_range(parser, args)
    device = resolve_device(args.device)
    mode = resolve_inference_mode(args.inference_mode, device)
    protocol = default_protocol(args.dataset, crop=args.crop, min_depth=args.min_depth,
                                max_depth=args.max_depth, median_scaling=not args.no_median_scaling,
                                clip_after_scaling=args.clip_after_scaling)
    dataset = build_test_dataset(args.dataset, args.root, args.test_datafile, args.loadSize, args.gt_cache)
    paths = checkpoint_paths(args)
    model = prepare_model(load_s2r(paths, map_location="cpu").to(device).eval(), mode, device)
    out_dir = Path(args.out_dir)

    writer = DepthWriter(out_dir / "pred", cmap=args.cmap) if args.save_pred else None
    vis_dir = out_dir / "vis"
    if args.vis:
        vis_dir.mkdir(parents=True, exist_ok=True)

    def save_frame(index, path, pred, gt, outputs, i):
        name = f"{index:05d}_{Path(path).stem}"
        if writer is not None:
            writer.write(name, pred)
        if args.vis:
            image = np.asarray(open_image(path))
            save_rgb(comparison_figure(image, pred, gt, args.cmap), vis_dir / f"{name}.png")

    print(f"evaluating {len(dataset)} {args.dataset} images on {device} "
          f"(input {dataset.load_size[0]}x{dataset.load_size[1]}) in inference mode {mode.name}")
    loader = make_loader(dataset, args.batchSize, args.nThreads, device)
    on_frame = save_frame if args.save_pred or args.vis else None
    result = evaluate(model, loader, protocol, DEPTH_SCALE[args.dataset], device, args.post_process, on_frame)
    if non_finite_metrics(result.metrics):
        raise UserError(f"the metrics {', '.join(non_finite_metrics(result.metrics))} are not finite: the "
                        f"network predicted NaN or infinite depth (checkpoints {', '.join(map(str, paths.values()))}, "
                        f"--inference_mode {mode.name}); no results were written")
    write_results(out_dir, result, protocol, {
        "dataset": args.dataset, "post_process": args.post_process, "inference_mode": mode.name,
        "checkpoints": {k: str(v) for k, v in paths.items()}})
    print(summary(result, protocol))
    print(f"wrote {out_dir / 'evalog.txt'} and {out_dir / 'metrics.json'}")
    return 0


if __name__ == "__main__":
    with exit_on_user_error():
        sys.exit(main())
