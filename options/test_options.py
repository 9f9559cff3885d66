"""Flags of test.py. The evaluation sets and protocol presets come in as arguments (options/ imports
nothing of the project but constants.py): test.py passes datasets/registry.py's and
evaluation/protocol.py's."""
import argparse
from typing import Mapping

from .common import (HelpFormatter, add_checkpoints, add_cmap, add_device, add_inference_mode, add_protocol,
                     load_size, non_negative_int, output_dir, positive_int)


def test_parser(eval_sets: Mapping[str, str], presets: Mapping[str, str],
                alignments: Mapping[str, str]) -> argparse.ArgumentParser:
    """``eval_sets``: name -> layout and default protocol; ``presets`` and ``alignments``: name -> what
    it does."""
    sets_text = "\n".join(f"  {name}: {text}" for name, text in eval_sets.items())
    parser = argparse.ArgumentParser(
        description="Evaluate S2R-DepthNet (four checkpoints), or another method's saved predictions "
                    "(--pred_dir), on one evaluation set, or on several with --suite.\n\n"
                    f"Evaluation sets (--dataset), their layout and default protocol:\n{sets_text}",
        formatter_class=HelpFormatter)
    parser.add_argument("--dataset", choices=tuple(eval_sets), default=next(iter(eval_sets)),
                        help="evaluation set (its layout and default protocol are listed above)")
    parser.add_argument("--root", default=None,
                        help="dataset root the list paths are relative to (required unless --suite)")
    parser.add_argument("--test_datafile", default=None,
                        help="list file in the set's format (default: the set's standard list under splits/, "
                             "where one is shipped)")
    parser.add_argument("--gt_cache", default=None,
                        help="ground truth precomputed by export_gt_depth.py for this list (KITTI, "
                             "KITTI_BENCHMARK, NUSCENES)")
    parser.add_argument("--pred_dir", default=None,
                        help="evaluate saved predictions instead of the network (no checkpoint needed): a "
                             "folder of <index:05d>_<stem>_depth / <index:05d>_<stem> / <index:05d> "
                             ".npy|.npz|.png files (index: 0-based list line; 16-bit PNG = metres x 256, "
                             "as --save_pred and infer.py write), or one .npz with those keys or one "
                             "(N, H, W) stack")
    parser.add_argument("--pred_is_disparity", action="store_true",
                        help="the --pred_dir maps are disparity (inverse depth), not depth")
    parser.add_argument("--suite", default=None,
                        help="JSON file of several runs ({\"common\": {flag: value}, \"runs\": [{\"name\": ..., "
                             "flag: value, ...}]}); writes <out_dir>/<name>/ per run and one table, "
                             "<out_dir>/suite.md and suite.json")
    parser.add_argument("--batchSize", type=positive_int, default=1, help="images per forward pass")
    parser.add_argument("--nThreads", type=non_negative_int, default=2, help="data-loading worker processes")
    load_size(parser, None, "network input size (default: the set's, listed above)")
    parser.add_argument("--out_dir", type=output_dir, default="results", help="where evalog.txt, metrics.json and outputs go")
    parser.add_argument("--save_pred", action="store_true",
                        help="write each prediction as <out_dir>/pred/<index:05d>_<stem>_depth.npy (metres) "
                             "and a coloured PNG")
    parser.add_argument("--vis", action="store_true",
                        help="write <out_dir>/vis/<name>.png per frame: image | prediction | ground truth "
                             "on the ground truth's colour scale (sparse lidar points dilated)")
    add_cmap(parser)
    add_device(parser)
    add_inference_mode(parser)
    add_checkpoints(parser)
    add_protocol(parser, presets, alignments)
    return parser
