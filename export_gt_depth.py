"""Precompute the ground truth of a whole test list into one file (like monodepth2's
export_gt_depth.py), so that repeated evaluations skip the projection (KITTI's velodyne scans,
nuScenes' lidar sweeps), the PNG decoding (KITTI_BENCHMARK), the grid resize (MAKE3D) or the
HDF5 reads (NYUD_V2_OFFICIAL).

Example:
    python export_gt_depth.py --root $KITTI_RAW --test_datafile datasets/kitti/test.txt \
        --output gt_depths_eigen.npz
    python test.py ... --gt_cache gt_depths_eigen.npz
"""
import argparse
import sys

from tqdm import tqdm

from datasets.kitti import GTCache
from datasets.registry import build_eval_dataset, eval_sets
from options.common import HelpFormatter, output_file
from utils.errors import exit_on_user_error


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    parser.add_argument("--dataset", choices=[n for n, s in eval_sets().items() if s.cacheable], default="KITTI",
                        help="evaluation set (test.py --help lists each one's layout)")
    parser.add_argument("--root", required=True, help="dataset root the list paths are relative to")
    parser.add_argument("--test_datafile", required=True,
                        help="the set's list (KITTI: 'left right calib_dir velodyne' per line)")
    parser.add_argument("--output", type=output_file, required=True,
                        help="the .npz file to write (missing folders are created; an older file is replaced)")
    args = parser.parse_args(argv)

    dataset = build_eval_dataset(args.dataset, args.root, args.test_datafile)
    depths = [dataset.ground_truth(i) for i in tqdm(range(len(dataset)), desc="projecting", unit="frame")]
    GTCache.write(args.output, dataset.entries, depths)
    print(f"wrote ground truth of {len(depths)} frames to {args.output}")
    return 0


if __name__ == "__main__":
    with exit_on_user_error():
        sys.exit(main())
