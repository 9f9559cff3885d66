"""The whole method on the built-in sample world, on a CPU, in minutes.

1. generate the sample world (vKITTI-, KITTI-raw- and NYU-layout data, style images) unless present;
2. save the untrained networks (the initialisation training starts from);
3. train the three stages briefly with train.py: structure encoder, structure decoder, DSA + DP;
4. with --finetune_frames N: render N "real" labelled frames (KITTI layout and camera look, other
   drives than the test split's) and fine-tune the trained DSA + DP on them (TrainFineTuneReal,
   the semi-supervised setting, reconstructed);
5. evaluate the untrained, the trained and the fine-tuned networks with test.py on the world's
   KITTI-layout split;
6. write <out_dir>/summary.json ({"untrained": {...}, "trained": {...}, "finetuned": {...}}) and
   <out_dir>/overview.png.

Every step runs the same command a user would type; each command line is printed before it runs.
A rerun retrains into the same folders: the stages pass train.py --overwrite, so the previous demo's
last.pth files are replaced (its logs gain a second run's events).
"""
import argparse
import json
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List

import numpy as np

from constants import (CHECKPOINT_FLAGS, FILE_STEMS, NETWORKS, RELEASE_METRICS, STAGE_DSA_DP, STAGE_FINETUNE_REAL,
                       STAGE_STRUCT_DECODER, STAGE_STRUCT_ENCODER)
from evaluation.results import format_table
from options.common import (HelpFormatter, add_device, check_load_size, load_size, non_negative_int, output_dir,
                            positive_float, positive_int, seed)
from utils.checkpoint import save_initial_networks

ROOT = Path(__file__).resolve().parent
STAGES = ((STAGE_STRUCT_ENCODER, "stage1_struct_encoder"), (STAGE_STRUCT_DECODER, "stage2_struct_decoder"),
          (STAGE_DSA_DP, "stage3_dsa_dp"))
OVERVIEW_FRAMES = 3
LABELLED_FRAMES_PER_DRIVE = 4


def demo_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    parser.add_argument("--world_dir", type=output_dir, default="data/world", help="where the sample world is (or goes)")
    parser.add_argument("--preset", choices=("default", "tiny"), default="default", help="sample-world size")
    parser.add_argument("--out_dir", type=output_dir, default="runs/demo",
                        help="checkpoints, logs, evaluations and figures")
    parser.add_argument("--seed", type=seed, default=0, help="seed of the world and of every training stage")
    load_size(parser, [96, 320], "network input size H W for training and evaluation")
    parser.add_argument("--batchSize", type=positive_int, default=2,
                        help="training batch size of every stage (on a CPU, more small steps learn more than "
                             "fewer large ones in the same time)")
    parser.add_argument("--train_images", nargs=3, type=non_negative_int, default=[16, 32, 64],
                        metavar=("STE", "DEC", "DSA"),
                        help="vKITTI samples each stage trains on, evenly spaced over the list (0: all)")
    parser.add_argument("--ste_loadSize", nargs=2, type=positive_int, default=[64, 128], metavar=("H", "W"),
                        help="image size of the structure-encoder stage (its translation networks are the "
                             "costliest part; the encoder is fully convolutional, so it transfers)")
    parser.add_argument("--nThreads", type=non_negative_int, default=1, help="data-loading workers")
    parser.add_argument("--lr", type=positive_float, default=5e-4, help="initial learning rate of every stage")
    parser.add_argument("--lr_policy", choices=("step", "plateau", "lambda"), default="lambda",
                        help="learning-rate schedule (lambda: linear decay to 0, which settles the "
                             "BatchNorm statistics of such a short run)")
    parser.add_argument("--epochs", nargs=3, type=positive_int, default=[1, 1, 3], metavar=("STE", "DEC", "DSA"),
                        help="epochs of the three stages")
    parser.add_argument("--finetune_frames", type=non_negative_int, default=0,
                        help="labelled 'real' frames to fine-tune the trained networks on (TrainFineTuneReal), "
                             "e.g. 8; 0 skips the step (off by default until its cost on 2 cores is measured)")
    parser.add_argument("--finetune_epochs", type=positive_int, default=5, help="epochs of the fine-tuning")
    parser.add_argument("--finetune_lr", type=float, default=2e-4, help="initial learning rate of the fine-tuning")
    add_device(parser)
    return parser


def run(cmd: List[str], step: str) -> None:
    """Run one project command, showing it; stop the demo if it fails."""
    print(f"\n=== {step}\n$ {' '.join(shlex.quote(c) for c in cmd)}", flush=True)
    start = time.perf_counter()
    if subprocess.call([sys.executable, *cmd], cwd=ROOT) != 0:
        sys.exit(f"demo: step '{step}' failed")
    print(f"--- {step}: {time.perf_counter() - start:.0f} s", flush=True)


def subset_list(list_file: Path, count: int, out: Path) -> Path:
    """``count`` lines of ``list_file``, evenly spaced (all of them when ``count`` is 0 or too large)."""
    lines = [line for line in list_file.read_text().splitlines() if line.strip()]
    if 0 < count < len(lines):
        lines = [lines[round(i * len(lines) / count)] for i in range(count)]
    out.write_text("\n".join(lines) + "\n")
    return out


def world_is_ready(world: Path, seed: int, preset: str) -> bool:
    manifest = world / "world.json"
    if not manifest.is_file():
        return False
    info = json.loads(manifest.read_text())
    return info.get("seed") == seed and info.get("preset") == preset


def checkpoint_flags(paths: Dict[str, Path]) -> List[str]:
    """train.py/test.py flags naming the four networks' files."""
    return [a for net, flag in CHECKPOINT_FLAGS.items() for a in (f"--{flag}", str(paths[net]))]


def labelled_world(world: Path, args: argparse.Namespace) -> Path:
    """The "real" labelled frames: the KITTI layout and camera look of the test split, rendered
    from another seed, so their drives (scenes, light, calibration) are not the test split's."""
    labelled, seed = world / "labelled", args.seed + 1
    manifest = labelled / "world.json"
    if world_is_ready(labelled, seed, args.preset) and \
            json.loads(manifest.read_text())["kitti"]["count"] >= args.finetune_frames:
        print(f"=== labelled frames: reusing {labelled}")
        return labelled
    drives = -(-args.finetune_frames // LABELLED_FRAMES_PER_DRIVE)
    run(["make_world.py", "--out_dir", str(labelled), "--seed", str(seed), "--preset", args.preset,
         "--vkitti_worlds", "0", "--nyu_rooms", "0", "--style_images", "0", "--kitti_drives", str(drives),
         "--kitti_frames", str(LABELLED_FRAMES_PER_DRIVE), "--quiet"], "render the labelled 'real' frames")
    return labelled


def metrics_of(eval_dir: Path) -> Dict[str, float]:
    metrics = json.loads((eval_dir / "metrics.json").read_text())["metrics"]
    return {k: metrics[k] for k in RELEASE_METRICS}


def draw_overview(world: Path, kitti: dict, checkpoints: Dict[str, Path], load_size, path: Path) -> None:
    """Input, structure map, attention map, predicted depth and ground truth for a few frames, the
    prediction scaled to the ground truth's median as the evaluation does, both in one colour range."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from datasets import KITTIEigenTest
    from datasets.common import open_image
    from utils.checkpoint import load_s2r
    from inference.depth_io import auto_range, dilate_sparse
    from constants import DEPTH_SCALE
    from inference.predict import predict, to_gt_size

    model = load_s2r(checkpoints).eval()
    data = KITTIEigenTest(str(world / kitti["root"]), str(world / kitti["list"]), load_size)
    frames = range(min(OVERVIEW_FRAMES, len(data)))
    titles = ("input", "STE structure map", "DSA attention map", "predicted depth (median-scaled)",
              "ground truth (lidar)")
    fig, axes = plt.subplots(len(frames), 5, figsize=(22, 1.3 * len(frames) + 0.6), squeeze=False)
    for row, i in enumerate(frames):
        item = data[i]
        out = predict(model, item["image"][None])
        gt = item["depth"]
        depth = to_gt_size(out.prediction[0], gt.shape, DEPTH_SCALE["KITTI"])
        valid = gt > 0
        depth = depth * np.median(gt[valid]) / np.median(depth[valid])  # as the protocol scales it
        vmin, vmax = auto_range(gt)
        panels = (np.asarray(open_image(item["path"])), out.structure[0, 0].numpy(),
                  out.attention[0, 0].numpy(), depth, np.ma.masked_equal(dilate_sparse(gt, 2), 0))
        for col, (ax, panel) in enumerate(zip(axes[row], panels)):
            if col in (1, 2):
                ax.imshow(panel, cmap="gray", vmin=0, vmax=1)
            elif col >= 3:
                ax.imshow(panel, cmap="magma_r", vmin=vmin, vmax=vmax)
            else:
                ax.imshow(panel)
            ax.set_axis_off()
            if row == 0:
                ax.set_title(titles[col], fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def main(argv=None) -> int:
    parser = demo_parser()
    args = parser.parse_args(argv)
    check_load_size(parser, args)
    world, out = Path(args.world_dir).absolute(), Path(args.out_dir).absolute()
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()

    if world_is_ready(world, args.seed, args.preset):
        print(f"=== sample world: reusing {world}")
    else:
        run(["make_world.py", "--out_dir", str(world), "--seed", str(args.seed), "--preset", args.preset],
            "generate the sample world")
    manifest = json.loads((world / "world.json").read_text())
    vkitti, kitti, style = manifest["vkitti"], manifest["kitti"], manifest["style"]

    save_initial_networks(out / "untrained", args.seed)
    size = [str(v) for v in args.loadSize]
    synthetic = ["--syn_dataset", "VKITTI", "--syn_root", str(world / vkitti["root"])]
    common = ["--batchSize", str(args.batchSize), "--nThreads", str(args.nThreads), "--lr_policy", args.lr_policy,
              "--seed", str(args.seed), "--device", args.device, "--log_freq", "10",
              "--keep_epochs", "1"]  # only each run's last epoch is used: a few GB less on disk
    ckpt = {}
    for (stage, name), epochs, images in zip(STAGES, args.epochs, args.train_images):
        train_list = subset_list(world / vkitti["list"], images, out / f"{name}_list.txt")
        stage_args = ["--train_stage", stage, "--epochs", str(epochs), "--syn_train_datafile", str(train_list),
                      "--checkpoint_dir", str(out / name), "--log_dir", str(out / "logs" / name),
                      "--overwrite"]  # a rerun retrains each stage from scratch in its own folders
        if stage == STAGE_STRUCT_ENCODER:
            stage_args += ["--style_root", str(world / style["root"]), "--style_datafile", str(world / style["list"]),
                           "--loadSize", *map(str, args.ste_loadSize)]
        else:
            stage_args += ["--Shared_Struct_Encoder_path", str(ckpt["struct_encoder"]), "--loadSize", *size]
        if stage == STAGE_DSA_DP:
            stage_args += ["--Struct_Decoder_path", str(ckpt["struct_decoder"]), "--dsa_pretrained", "none"]
        run(["train.py", *stage_args, *synthetic, *common, "--lr", str(args.lr)], f"train {stage} ({epochs} epoch(s))")
        for net in NETWORKS:
            produced = out / name / f"{FILE_STEMS[net][0]}_{epochs}.pth"
            if produced.is_file():
                ckpt[net] = produced

    if args.finetune_frames:
        labelled = labelled_world(world, args)
        tuned = out / "finetune_real"
        run(["train.py", "--train_stage", STAGE_FINETUNE_REAL, "--real_dataset", "KITTI",
             "--real_root", str(labelled / "kitti"), "--real_datafile", str(labelled / "kitti" / "test.txt"),
             "--num_labeled", str(args.finetune_frames), "--epochs", str(args.finetune_epochs),
             *checkpoint_flags(ckpt),
             "--loadSize", *size, "--checkpoint_dir", str(tuned), "--log_dir", str(out / "logs" / "finetune_real"),
             *common, "--lr", str(args.finetune_lr)],
            f"fine-tune on {args.finetune_frames} labelled frames ({args.finetune_epochs} epoch(s))")
        tuned_ckpt = {**ckpt, **{net: tuned / f"{FILE_STEMS[net][0]}_{args.finetune_epochs}.pth"
                                 for net in ("dsa", "depth_net")}}

    evaluation = ["--dataset", "KITTI", "--root", str(world / kitti["root"]),
                  "--test_datafile", str(world / kitti["list"]), "--loadSize", *size,
                  "--device", args.device, "--nThreads", str(args.nThreads)]
    run(["test.py", *evaluation, "--checkpoint_dir", str(out / "untrained"),
         "--out_dir", str(out / "eval_untrained")], "evaluate the untrained networks")
    run(["test.py", *evaluation, *checkpoint_flags(ckpt), "--out_dir", str(out / "eval_trained"), "--vis"],
        "evaluate the trained networks")

    summary = {"untrained": metrics_of(out / "eval_untrained"), "trained": metrics_of(out / "eval_trained")}
    if args.finetune_frames:
        run(["test.py", *evaluation, *checkpoint_flags(tuned_ckpt), "--out_dir", str(out / "eval_finetuned")],
            "evaluate the fine-tuned networks")
        summary["finetuned"] = metrics_of(out / "eval_finetuned")
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    draw_overview(world, kitti, ckpt, tuple(args.loadSize), out / "overview.png")

    print(f"\n=== S2R-DepthNet on the sample world's KITTI-layout split ({kitti['count']} frames, "
          f"release protocol)")
    titles = {"untrained": "untrained", "trained": "trained (synthetic only)",
              "finetuned": f"fine-tuned on {args.finetune_frames} labelled frames of other drives"}
    for name in summary:
        print(f"\n{titles[name]}:\n{format_table(summary[name], RELEASE_METRICS)}")
    print(f"\nwrote {out / 'summary.json'} and {out / 'overview.png'} "
          f"in {(time.perf_counter() - started) / 60:.1f} min")
    return 0


if __name__ == "__main__":
    sys.exit(main())
