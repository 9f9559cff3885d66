"""Flags of test.py."""
import argparse

from .common import (HelpFormatter, add_checkpoints, add_cmap, add_device, add_inference_mode, add_protocol,
                     load_size, non_negative_int, output_dir, positive_int)


def test_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Evaluate S2R-DepthNet on the KITTI Eigen split or NYUD-v2 with the four checkpoints.",
        formatter_class=HelpFormatter)
    parser.add_argument("--dataset", choices=("KITTI", "NYUD_V2"), default="KITTI", help="test set")
    parser.add_argument("--root", required=True,
                        help="dataset root the list paths are relative to (KITTI raw root, or NYU root)")
    parser.add_argument("--test_datafile", required=True,
                        help="list file: KITTI 'left right calib_dir velodyne' lines, or NYU CSV "
                             "'rgb,depth' lines")
    parser.add_argument("--gt_cache", default=None,
                        help="KITTI only: ground truth precomputed by export_gt_depth.py for this list")
    parser.add_argument("--batchSize", type=positive_int, default=1, help="images per forward pass")
    parser.add_argument("--nThreads", type=non_negative_int, default=2, help="data-loading worker processes")
    load_size(parser, None, "network input size (default: 192 640 for KITTI, 192 256 for NYUD_V2)")
    parser.add_argument("--out_dir", type=output_dir, default="results", help="where evalog.txt, metrics.json and outputs go")
    parser.add_argument("--save_pred", action="store_true",
                        help="write each prediction as <out_dir>/pred/<name>_depth.npy (metres) and a "
                             "coloured PNG")
    parser.add_argument("--vis", action="store_true",
                        help="write <out_dir>/vis/<name>.png per frame: image | prediction | ground truth "
                             "on the ground truth's colour scale (sparse lidar points dilated)")
    add_cmap(parser)
    add_device(parser)
    add_inference_mode(parser)
    add_checkpoints(parser)
    add_protocol(parser)
    return parser
