"""Evaluate S2R-DepthNet, or another method's saved predictions, on a registered evaluation set
(datasets/registry.py; the release's protocol by default), or on several with --suite.

Example:
    python test.py --dataset KITTI --root $KITTI_RAW --test_datafile datasets/kitti/test.txt \
        --loadSize 192 640 --Shared_Struct_Encoder_path ... --Struct_Decoder_path ... \
        --DSAModle_path ... --DepthNet_path ... --out_dir results/kitti
"""
import argparse
import os
import sys
from pathlib import Path
from typing import List, Optional, Tuple

from datasets.groundtruth import evaluated_rgb
from datasets.registry import build_eval_dataset, get_eval_set, help_entries
from evaluation.external import PredictionSource
from evaluation.loop import make_loader, network_frames, saved_frames, score
from evaluation.protocol import ALIGNMENTS, PRESETS, Protocol, default_protocol
from evaluation.results import EvalResult, non_finite_metrics, summary, write_results
from evaluation.suite import read_suite, write_table
from inference.depth_io import DepthWriter, comparison_figure, save_rgb
from inference.modes import prepare_model, resolve_inference_mode
from options.common import check_load_size
from options.test_options import test_parser
from utils.checkpoint import checkpoint_paths, load_s2r
from utils.errors import UserError, exit_on_user_error
from utils.runtime import resolve_device

ROOT = Path(__file__).resolve().parent


def make_parser() -> argparse.ArgumentParser:
    return test_parser(help_entries(), {name: text for name, (_, text) in PRESETS.items()}, ALIGNMENTS)


def protocol_of(parser: argparse.ArgumentParser, args: argparse.Namespace) -> Protocol:
    """The set's default protocol, then the preset's changes, then the flags given."""
    if args.no_median_scaling and args.alignment not in (None, "none"):
        parser.error(f"--no_median_scaling (= --alignment none) contradicts --alignment {args.alignment}")
    overrides = dict(PRESETS[args.preset][0]) if args.preset else {}
    flags = {"crop": args.crop, "min_depth": args.min_depth, "max_depth": args.max_depth,
             "alignment": "none" if args.no_median_scaling else args.alignment,
             "clip_after_scaling": args.clip_after_scaling}
    overrides.update({k: v for k, v in flags.items() if v is not None})
    protocol = default_protocol(args.dataset, **overrides)
    if protocol.min_depth >= protocol.max_depth:
        parser.error(f"--min_depth {protocol.min_depth:g} must be below --max_depth {protocol.max_depth:g}"
                     f"{'' if args.max_depth is not None else f' (the {args.dataset} default)'}")
    return protocol


def list_file_of(parser: argparse.ArgumentParser, args: argparse.Namespace) -> str:
    if args.test_datafile:
        # The release's README names its lists relative to the repository root (datasets/kitti/test.txt).
        shipped = ROOT / args.test_datafile
        if not os.path.exists(args.test_datafile) and not os.path.isabs(args.test_datafile) and shipped.is_file():
            return str(shipped)
        return args.test_datafile
    split = get_eval_set(args.dataset).split
    if split is None:
        parser.error(f"--test_datafile is needed for {args.dataset} (no standard list is shipped for it)")
    return str(ROOT / split)


def evaluate_one(parser: argparse.ArgumentParser, args: argparse.Namespace) -> Tuple[EvalResult, Protocol]:
    """One evaluation as the flags say; writes evalog.txt and metrics.json under --out_dir."""
    check_load_size(parser, args)
    if args.root is None:
        parser.error("--root is required (the dataset root)")
    if args.pred_is_disparity and not args.pred_dir:
        parser.error("--pred_is_disparity applies to --pred_dir predictions")
    protocol = protocol_of(parser, args)
    device = resolve_device(args.device)
    dataset = build_eval_dataset(args.dataset, args.root, list_file_of(parser, args), args.loadSize, args.gt_cache)
    out_dir = Path(args.out_dir)
    writer = DepthWriter(out_dir / "pred", cmap=args.cmap) if args.save_pred else None
    vis_dir = out_dir / "vis"
    if args.vis:
        vis_dir.mkdir(parents=True, exist_ok=True)

    def save_frame(index, path, pred, gt):
        name = f"{index:05d}_{Path(path).stem}"
        if writer is not None:
            writer.write(name, pred)
        if args.vis:
            save_rgb(comparison_figure(evaluated_rgb(dataset, index, path), pred, gt, args.cmap),
                     vis_dir / f"{name}.png")

    loader = make_loader(dataset, args.batchSize, args.nThreads, device)
    if args.pred_dir:
        source = PredictionSource(args.pred_dir, args.pred_is_disparity)
        print(f"evaluating the predictions in {args.pred_dir} on {len(dataset)} {args.dataset} images")
        frames, extra = saved_frames(source, loader), {"predictions": args.pred_dir,
                                                       "pred_is_disparity": args.pred_is_disparity}
    else:
        mode = resolve_inference_mode(args.inference_mode, device)
        paths = checkpoint_paths(args)
        model = prepare_model(load_s2r(paths, map_location="cpu").to(device).eval(), mode, device)
        print(f"evaluating {len(dataset)} {args.dataset} images on {device} "
              f"(input {dataset.load_size[0]}x{dataset.load_size[1]}) in inference mode {mode.name}")
        frames = network_frames(model, loader, get_eval_set(args.dataset).depth_scale, device, args.post_process)
        extra = {"post_process": args.post_process, "inference_mode": mode.name,
                 "checkpoints": {k: str(v) for k, v in paths.items()}}
    on_frame = save_frame if args.save_pred or args.vis else None
    result = score(frames, protocol, on_frame, total=len(loader))
    bad = non_finite_metrics(result.metrics)
    if bad:
        source = (f"the predictions in {args.pred_dir} hold" if args.pred_dir else
                  "the network predicted")
        where = "" if args.pred_dir else (f" (checkpoints {', '.join(extra['checkpoints'].values())}, "
                                          f"--inference_mode {extra['inference_mode']})")
        raise UserError(f"the metrics {', '.join(bad)} are not finite: {source} NaN or infinite depth{where}; "
                        f"no results were written")
    write_results(out_dir, result, protocol, {"dataset": args.dataset, **extra})
    print(summary(result, protocol))
    print(f"wrote {out_dir / 'evalog.txt'} and {out_dir / 'metrics.json'}")
    return result, protocol


def run_suite(parser: argparse.ArgumentParser, args: argparse.Namespace, argv: List[str]) -> int:
    """Every run of the suite file, each with the command line's other flags first, then one table."""
    rest, skip = [], False
    for word in argv:
        if skip or word == "--suite" or word.startswith("--suite="):
            skip = word == "--suite"
            continue
        rest.append(word)
    known = [a.dest for a in parser._actions if a.option_strings]
    rows = []
    for name, words in read_suite(args.suite, known):
        print(f"== {name}")
        run_args = parser.parse_args([*rest, *words, "--out_dir", str(Path(args.out_dir) / name)])
        result, protocol = evaluate_one(parser, run_args)
        rows.append({"name": name, "dataset": run_args.dataset, "n_images": result.n_images,
                     "protocol": protocol.as_dict(), "metrics": result.metrics})
    md, js = write_table(Path(args.out_dir), rows)
    print(md.read_text(encoding="utf-8"), end="")
    print(f"wrote {md} and {js}")
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = make_parser()
    args = parser.parse_args(argv)
    if args.suite:
        return run_suite(parser, args, argv)
    evaluate_one(parser, args)
    return 0


if __name__ == "__main__":
    with exit_on_user_error():
        sys.exit(main())
