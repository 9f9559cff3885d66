"""Train S2R-DepthNet on synthetic data: TrainStructEncoder, TrainStructDecoder, TrainDSAandDPModule.

Examples (the release's README commands):
    python train.py --syn_dataset VKITTI --syn_root $VKITTI --syn_train_datafile datasets/vkitti/train.txt \
        --batchSize 32 --loadSize 192 640 --Shared_Struct_Encoder_path $SE --train_stage TrainStructDecoder
    python train.py --syn_dataset VKITTI --syn_root $VKITTI --syn_train_datafile datasets/vkitti/train.txt \
        --batchSize 32 --loadSize 192 640 --Shared_Struct_Encoder_path $SE --Struct_Decoder_path $SD \
        --train_stage TrainDSAandDPModule
Several GPUs (or CPU processes): torchrun --nproc_per_node N train.py ...
"""
import sys

from options.train_options import parse_train_args
from training import TrainingDiverged, run_training
from utils.errors import exit_on_user_error


def main(argv=None) -> int:
    args = parse_train_args(argv)
    try:
        return run_training(args)
    except TrainingDiverged as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    with exit_on_user_error():
        sys.exit(main())
