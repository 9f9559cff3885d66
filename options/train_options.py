"""Flags of train.py: every flag of the release under its own name (and spelling), plus resuming,
seeding, devices, mixed precision, validation and the stage-1 (structure encoder) options."""
import argparse
from typing import List, Optional

from constants import (CHECKPOINT_FLAGS, DATASETS, DEFAULT_DRN_IMAGENET, DEPTH_SCALE, SAMPLING_WITH_REPLACEMENT,
                       SAMPLINGS, STAGE_DSA_DP, STAGE_FINETUNE_REAL, STAGE_STRUCT_DECODER, STAGE_STRUCT_ENCODER,
                       TRAIN_LOAD_SIZE, TRAIN_STAGES)

from .common import (HelpFormatter, add_device, check_load_size, load_size, non_negative_float, non_negative_int,
                     output_dir, positive_float, positive_int, seed)

STAGE1_MIN_SIZE = 64  # no depth network in stage 1, so its 96-pixel minimum does not apply

DESCRIPTION = f"""\
Train S2R-DepthNet on synthetic data, one stage at a time:
  {STAGE_STRUCT_ENCODER:<20} stage 1: the structure encoder, by structure/style image translation
  {STAGE_STRUCT_DECODER:<20} stage 2: structure decoder + depth network on a frozen structure encoder
  {STAGE_DSA_DP:<20} stage 3: DSA module + a fresh depth network on the frozen STE
  {STAGE_FINETUNE_REAL:<20} (reconstructed) fine-tune DSA + DP of a trained network on labelled real images

Every epoch writes the release's checkpoint files (struct_encoder_<e>.pth, struct_decoder_<e>.pth,
dsa_modle_<e>.pth, depth_net_<e>.pth; epochs counted from 1) and last.pth, the full training state
that --resume continues from. Ctrl-C stops after the current iteration, saves last.pth at that
batch and exits with status 130; --resume then restarts the epoch at the next batch.

Example (release README):
  python train.py --syn_dataset VKITTI --syn_root $VKITTI --syn_train_datafile datasets/vkitti/train.txt \\
      --batchSize 32 --loadSize 192 640 --Shared_Struct_Encoder_path $SE --train_stage {STAGE_STRUCT_DECODER}
Multi-GPU: torchrun --nproc_per_node N train.py ...  (--batchSize is per process)
"""


def _amp_mode(text: str) -> str:
    if text not in ("bf16", "fp16"):
        raise argparse.ArgumentTypeError(f"expected bf16 or fp16, got {text!r}")
    return text


def train_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=DESCRIPTION, formatter_class=HelpFormatter)
    parser.add_argument("--train_stage", choices=TRAIN_STAGES, required=True, help="which stage to train")

    data = parser.add_argument_group("synthetic training data")
    data.add_argument("--syn_dataset", choices=("VKITTI", "SUNCG"), default="VKITTI",
                      help="VKITTI: 16-bit depth PNGs in cm, clipped at 80 m; SUNCG: the indoor layout "
                           "with 8-bit depth PNGs scaled by 1/255")
    data.add_argument("--syn_root", help=f"root the list's paths are relative to (required, except in "
                                         f"{STAGE_FINETUNE_REAL} without --syn_weight)")
    data.add_argument("--syn_train_datafile",
                      help="list file, one 'rgb_path depth_path' line per training pair")
    data.add_argument("--batchSize", type=positive_int, default=32, help="images per iteration and process")
    data.add_argument("--nThreads", type=non_negative_int, default=4,
                      help="data-loading worker processes (0 loads in the training process)")
    load_size(data, list(TRAIN_LOAD_SIZE), "training image size H W (multiples of 16; at least 96, or 64 in stage 1)")
    data.add_argument("--sampling", choices=SAMPLINGS, default=SAMPLING_WITH_REPLACEMENT,
                      help="how an epoch of N list lines picks its N samples: with_replacement (the "
                           "release): each one uniformly at random, so some repeat and about 37%% are left "
                           "out; permutation: every line once, in a shuffled order. Either way seeded by "
                           "--seed and the epoch, resumable mid-epoch, ceil(N / batchSize) batches (under "
                           "torchrun, ceil(N / processes) samples per process); stage 1 takes as many "
                           "style images, picked the same way")
    data.add_argument("--no_flip", action="store_true", help="no random horizontal flip")
    data.add_argument("--no_rotation", action="store_true", help="no random rotation (+-5 degrees)")
    data.add_argument("--no_augment", action="store_true",
                      help="no random brightness/contrast/saturation jitter")

    nets = parser.add_argument_group("networks")
    nets.add_argument("--Shared_Struct_Encoder_path", default=None,
                      help="structure encoder checkpoint; required (and frozen) in stages 2 and 3")
    nets.add_argument("--Struct_Decoder_path", default=None,
                      help="structure decoder checkpoint: the starting point in stage 2, required (and "
                           "frozen) in stage 3")
    nets.add_argument("--DSAModle_path", default=None,
                      help="start the DSA module from this checkpoint (stage 3; fine-tuning)")
    nets.add_argument("--DepthNet_path", default=None,
                      help="start the depth network from this checkpoint instead of the normal(0, 0.02) "
                           "initialisation (stages 2 and 3; fine-tuning)")
    nets.add_argument("--dsa_pretrained", default=DEFAULT_DRN_IMAGENET,
                      help="ImageNet DRN-D-22 weights for the DSA encoder (stage 3). When the default file "
                           "is absent the DRN initialisation is used, with a warning; 'none' skips it")

    optim = parser.add_argument_group("optimisation")
    optim.add_argument("--start-epoch", dest="start_epoch", type=non_negative_int, default=0,
                       help="number of epochs already done: the first checkpoint written is epoch "
                            "start-epoch + 1 and the learning-rate schedule starts there")
    optim.add_argument("--epochs", type=positive_int, default=120, help="train until this many epochs are done")
    optim.add_argument("--lr", type=positive_float, default=1e-4, help="initial learning rate (Adam)")
    optim.add_argument("--lr_policy", choices=("step", "plateau", "lambda"), default="step",
                       help="step: halve every --lr_decay_iters epochs. plateau: halve when the epoch's "
                            "metric (validation abs_rel with --val_*, else the epoch's mean training loss) "
                            "has not improved by 1%% for 5 epochs. lambda: linear decay from --lr to 0 "
                            "at --epochs")
    optim.add_argument("--lr_decay_iters", type=positive_int, default=10,
                       help="epochs between two halvings of the learning rate (--lr_policy step)")
    optim.add_argument("--lambda_w", type=non_negative_float, default=1.0,
                       help="weight of the structure loss in stage 2")
    optim.add_argument("--hyper_w", type=non_negative_float, default=0.001,
                       help="beta of the structure loss's edge weight exp(-beta * |grad depth|)")

    stage1 = parser.add_argument_group(f"stage 1 ({STAGE_STRUCT_ENCODER})")
    stage1.add_argument("--style_root", default=None, help="root the style list's paths are relative to")
    stage1.add_argument("--style_datafile", default=None,
                        help="list of style images (domain B), one relative image path per line")
    stage1.add_argument("--recon_x_w", type=non_negative_float, default=10.0, help="weight of image reconstruction")
    stage1.add_argument("--recon_c_w", type=non_negative_float, default=1.0, help="weight of structure-code reconstruction")
    stage1.add_argument("--recon_s_w", type=non_negative_float, default=1.0, help="weight of style-code reconstruction")
    stage1.add_argument("--gan_w", type=non_negative_float, default=1.0, help="weight of the adversarial loss")
    stage1.add_argument("--style_dim", type=positive_int, default=8, help="length of the style code")

    real = parser.add_argument_group(
        f"fine-tuning on labelled real images ({STAGE_FINETUNE_REAL}; reconstructed, not in the release)",
        "the four checkpoint flags name the trained networks to start from; the loss is the depth loss "
        "on the measured pixels only")
    real.add_argument("--real_dataset", choices=("KITTI", "pairs"), default="KITTI",
                      help="KITTI: the release's KITTI lines 'left right calib_dir velodyne' in the raw "
                           "layout; pairs: lines 'rgb_path depth_path' with 16-bit depth PNGs")
    real.add_argument("--real_root", default=None, help="root the real list's paths are relative to")
    real.add_argument("--real_datafile", default=None, help="list of the labelled real images")
    real.add_argument("--kitti_gt", choices=("velodyne", "annotated"), default="velodyne",
                      help="KITTI ground truth: the velodyne scan projected as test.py does, or KITTI's "
                           "annotated depth PNGs (uint16 / 256 m) under --kitti_depth_root")
    real.add_argument("--kitti_depth_root", default=None,
                      help="folder of KITTI's data_depth_annotated archive ([train/|val/]<drive>/proj_depth/"
                           "groundtruth/image_02/<frame>.png)")
    real.add_argument("--depth_units", type=positive_float, default=None,
                      help="pairs: PNG value per metre (256 for KITTI annotated depth, 1000 for NYUD-v2 "
                           "millimetres, 100 for vKITTI centimetres); 0 marks unmeasured pixels")
    real.add_argument("--real_max_depth", type=positive_float, default=DEPTH_SCALE["KITTI"],
                      help=f"metres mapped to +1 (depth is clipped there and mapped by d / max * 2 - 1); "
                           f"must be the scale test.py uses: {DEPTH_SCALE['KITTI']:g} for KITTI, "
                           f"{DEPTH_SCALE['NYUD_V2']:g} for NYUD_V2")
    real.add_argument("--num_labeled", type=non_negative_int, default=0,
                      help="train on the first N lines of --real_datafile (0: all); the lines used are "
                           "written to <checkpoint_dir>/labelled_list.txt")
    real.add_argument("--labeled_seed", type=seed, default=None,
                      help="draw the --num_labeled lines at random with this seed instead of taking the first N")
    real.add_argument("--syn_weight", type=non_negative_float, default=0.0,
                      help="mix in the synthetic set (--syn_root/--syn_train_datafile): one synthetic batch "
                           "per real batch, its depth loss weighted by this (0: real images only)")
    real.add_argument("--train_struct_decoder", action="store_true",
                      help="also fine-tune the STE structure decoder (the STE encoder stays frozen)")

    run = parser.add_argument_group("run")
    run.add_argument("--checkpoint_dir", type=output_dir, default="checkpoints",
                     help="where checkpoints, last.pth and args.json go")
    run.add_argument("--keep_epochs", type=positive_int, default=None, metavar="N",
                     help="keep the per-epoch network files (<network>_<epoch>.pth) of the last N epochs only, "
                          "removing older ones as training goes (default: every epoch's, as the release; "
                          "120 epochs of stage 3 write 36 GiB of them)")
    run.add_argument("--log_dir", type=output_dir, default="logs", help="TensorBoard log folder")
    run.add_argument("--log_freq", type=positive_int, default=30,
                     help="log scalars and images at iteration 0 and every this many iterations")
    run.add_argument("--resume", nargs="?", const="", default=None, metavar="PATH",
                     help="continue from a training state (default with no PATH: <checkpoint_dir>/last.pth); "
                          "--epochs is the new total")
    run.add_argument("--overwrite", action="store_true",
                     help="start a new run in a --checkpoint_dir that holds another run's last.pth, "
                          "replacing its files (without it, such a run is refused)")
    run.add_argument("--seed", type=seed, default=None,
                     help="seed of networks, shuffling and augmentation (default: a random one, recorded "
                          "in args.json)")
    add_device(run)
    run.add_argument("--amp", nargs="?", const="bf16", default=None, type=_amp_mode, metavar="{bf16,fp16}",
                     help="mixed precision on CUDA (--amp alone: bf16); ignored with a warning on CPU")

    val = parser.add_argument_group("validation after every epoch (stages 2 and 3)",
                                    "test.py's evaluation; the best epoch is kept in <checkpoint_dir>/best")
    val.add_argument("--val_dataset", choices=DATASETS, default=None, help="validation set")
    val.add_argument("--val_root", default=None, help="validation dataset root")
    val.add_argument("--val_datafile", default=None, help="validation list, in test.py's format")
    val.add_argument("--val_loadSize", nargs=2, type=positive_int, metavar=("H", "W"), default=None,
                     help="validation input size (default: 192 640 for KITTI, 192 256 for NYUD_V2)")
    val.add_argument("--val_gt_cache", default=None, help="KITTI ground truth from export_gt_depth.py")
    return parser


def parse_train_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    """Parse and cross-check the flags; a bad combination is a usage error naming the flags."""
    parser = train_parser()
    args = parser.parse_args(argv)
    stage = args.train_stage
    if stage != STAGE_STRUCT_ENCODER:
        check_load_size(parser, args)
    else:
        check_load_size(parser, args, minimum=STAGE1_MIN_SIZE, why="the discriminators downsample three times")
    check_load_size(parser, args, "val_loadSize")
    if (stage != STAGE_FINETUNE_REAL or args.syn_weight > 0) and not (args.syn_root and args.syn_train_datafile):
        parser.error("the following arguments are required: --syn_root, --syn_train_datafile")
    if stage == STAGE_FINETUNE_REAL:
        _check_finetune(parser, args)
    if stage in (STAGE_STRUCT_DECODER, STAGE_DSA_DP) and not args.Shared_Struct_Encoder_path:
        parser.error(f"--train_stage {stage} needs --Shared_Struct_Encoder_path (the stage-1 encoder)")
    if stage == STAGE_DSA_DP and not args.Struct_Decoder_path:
        parser.error(f"--train_stage {STAGE_DSA_DP} needs --Struct_Decoder_path (the stage-2 decoder)")
    if stage == STAGE_STRUCT_ENCODER and not (args.style_root and args.style_datafile):
        parser.error(f"--train_stage {STAGE_STRUCT_ENCODER} needs --style_root and --style_datafile")
    val = [args.val_dataset, args.val_root, args.val_datafile]
    if args.overwrite and args.resume is not None:
        parser.error("--overwrite starts a new run and --resume continues one; give one of them")
    if any(val) and not all(val):
        parser.error("validation needs all of --val_dataset, --val_root and --val_datafile")
    if all(val) and stage == STAGE_STRUCT_ENCODER:
        parser.error(f"--val_* applies to the depth stages; {STAGE_STRUCT_ENCODER} predicts no depth")
    return args


def _check_finetune(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    missing = [f"--{flag}" for flag in CHECKPOINT_FLAGS.values() if not getattr(args, flag)]
    if missing:
        parser.error(f"--train_stage {STAGE_FINETUNE_REAL} starts from trained networks: it needs "
                     f"{', '.join(missing)}")
    if not (args.real_root and args.real_datafile):
        parser.error(f"--train_stage {STAGE_FINETUNE_REAL} needs --real_root and --real_datafile")
    if args.real_dataset == "pairs" and args.depth_units is None:
        parser.error("--real_dataset pairs needs --depth_units (PNG value per metre, e.g. 256 or 1000)")
    if args.real_dataset == "KITTI" and args.kitti_gt == "annotated" and not args.kitti_depth_root:
        parser.error("--kitti_gt annotated needs --kitti_depth_root")
    if args.syn_weight < 0:
        parser.error(f"--syn_weight must be >= 0, got {args.syn_weight:g}")
