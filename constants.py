"""The release's facts, written once (docs/release.md). Imports nothing of the project, so that every
package (``options/`` included) can take its facts from here."""

# The three training stages of the method, in order (what the benchmarks measure).
STAGE_STRUCT_ENCODER = "TrainStructEncoder"
STAGE_STRUCT_DECODER = "TrainStructDecoder"
STAGE_DSA_DP = "TrainDSAandDPModule"
STAGES = (STAGE_STRUCT_ENCODER, STAGE_STRUCT_DECODER, STAGE_DSA_DP)
# Not in the release: the semi-supervised setting of the paper, reconstructed (README, docs/release.md D27).
STAGE_FINETUNE_REAL = "TrainFineTuneReal"
TRAIN_STAGES = STAGES + (STAGE_FINETUNE_REAL,)  # the choices of train.py --train_stage

# The four networks of the inference path, the release flag that names each one's checkpoint, and
# the file-name stems it is found under (first: the name training saves, docs/release.md §1.6).
NETWORKS = ("struct_encoder", "struct_decoder", "dsa", "depth_net")
CHECKPOINT_FLAGS = {"struct_encoder": "Shared_Struct_Encoder_path", "struct_decoder": "Struct_Decoder_path",
                    "dsa": "DSAModle_path", "depth_net": "DepthNet_path"}
FILE_STEMS = {"struct_encoder": ("struct_encoder",), "struct_decoder": ("struct_decoder",),
              "dsa": ("dsa_modle", "dsa"), "depth_net": ("depth_net", "depthnet")}
# The released files were saved from nn.DataParallel: all but the structure encoder carry this prefix.
DATA_PARALLEL_PREFIX = "module."

# Evaluation sets of the release and the metres that the network's [-1, 1] output spans from 0
# (training maps ground truth the same way: vKITTI's 80 m, the indoor 8 m).
DATASETS = ("KITTI", "NYUD_V2")
DEPTH_SCALE = {"KITTI": 80.0, "NYUD_V2": 8.0}
VKITTI_MAX_DEPTH_CM = 8000.0
NYU_DEPTH_UNITS = 1000.0  # NYUD-v2 test depth PNGs: millimetres
# The evaluation crop of each set (evaluation/protocol.py CROPS): Garg's on KITTI, none on NYU.
EVAL_CROP = {"KITTI": "garg", "NYUD_V2": "none"}
# KITTI's annotated depth (data_depth_annotated): uint16 PNGs, metres x 256, 0 = no measurement, in
# <drive>/proj_depth/groundtruth/image_0X/<frame>.png, under the archive's train/ or val/ folder.
KITTI_ANNOTATED_DEPTH_UNITS = 256.0
KITTI_ANNOTATED_DIR = ("proj_depth", "groundtruth")
KITTI_ANNOTATED_SPLITS = ("", "train", "val")

# How a training epoch picks its samples (train.py --sampling; docs/release.md §2.1, §6 D2). The
# release's loaders ignore the index they are given and draw one uniformly, with replacement.
SAMPLING_WITH_REPLACEMENT = "with_replacement"
SAMPLING_PERMUTATION = "permutation"
SAMPLINGS = (SAMPLING_WITH_REPLACEMENT, SAMPLING_PERMUTATION)

# Network input sizes (H, W): the release's README commands for vKITTI/KITTI; NYU's test size.
TRAIN_LOAD_SIZE = (192, 640)
LOAD_SIZE = {"KITTI": (192, 640), "NYUD_V2": (192, 256)}
# The Python API's and infer.py's --domain: the test set whose load size and depth scale it takes.
DOMAINS = {"outdoor": "KITTI", "indoor": "NYUD_V2"}
# The DP network pools four times (sizes are multiples of 16) and its dilated centre needs at least
# 96 pixels (docs/release.md §6).
SIZE_MULTIPLE = 16
MIN_INPUT_SIZE = 96

# ImageNet weights the DSA encoder starts from (docs/release.md §1.4).
DRN_IMAGENET_FILE = "drn_d_22-4bd2f8ea.pth"
DEFAULT_DRN_IMAGENET = f"pretrained/{DRN_IMAGENET_FILE}"

# The metrics of the release's evalog.txt, in its column order; log10 is reported beside them.
RELEASE_METRICS = ("abs_rel", "sq_rel", "rmse", "rmse_log", "a1", "a2", "a3")
METRIC_NAMES = RELEASE_METRICS + ("log10",)

# How test.py/infer.py can run the network (inference/modes.py), with their --help descriptions,
# and the fastest exact mode per device type (docs/performance.md, "Inference"). CUDA stays on
# eager until a GPU run of the benchmarks shows a faster exact mode.
INFERENCE_MODES = {
    "eager": "float32, contiguous (NCHW) tensors",
    "channels_last": "float32, channels-last (NHWC) tensors",
    "compile": "float32, torch.compile (its first batch pays the compilation)",
    "tf32": "TF32 convolutions and matmuls (CUDA; not exact)",
    "bf16": "bfloat16 autocast (CUDA; not exact)",
    "fp16": "float16 autocast (CUDA; not exact)",
}
AUTO_INFERENCE_MODE = {"cpu": "channels_last", "cuda": "eager"}
