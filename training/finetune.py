"""Stage ``TrainFineTuneReal``: the paper's semi-supervised setting, fine-tuning the trained S2R
networks on a few labelled real images. The release ships no code for it; this is a
reconstruction (README, "Fine-tuning on labelled real images"; docs/release.md §6, D27).

Starting from the four trained files (STE encoder and decoder, DSA, DP), the DSA and DP modules
(and, with ``train_struct_decoder``, the STE decoder) are trained with the release's depth loss
restricted to the measured pixels of the real ground truth (``masked_depth_loss``); the STE encoder
stays frozen as in stages 2 and 3. With ``syn_weight`` > 0 every iteration also takes one batch of
the synthetic training set, whose release depth loss is added with that weight; both batches go
through the network in one forward pass (so BatchNorm sees both).
"""
import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Sequence

import torch
from torch.utils.data import Dataset

from constants import CHECKPOINT_FLAGS, STAGE_FINETUNE_REAL
from datasets import AugmentFlags, SyntheticDepthDataset
from datasets.depth_pairs import DepthPairs, LabelledDepthDataset
from datasets.kitti_train import KITTITrain
from models import S2RDepthNet, S2ROutput
from utils.checkpoint import load_network

from .distributed import DistInfo
from .losses import depth_loss, masked_depth_loss
from .stages import Batch, DSAStage

LABELLED_LIST = "labelled_list.txt"


@dataclass(frozen=True)
class FineTuneConfig:
    """What the stage trains and how; ``checkpoints`` maps each of the four networks to its file."""

    checkpoints: Dict[str, str]
    lr: float
    syn_weight: float = 0.0
    train_struct_decoder: bool = False


class FineTuneRealStage(DSAStage):
    """``datasets``: the labelled real set, then (when ``config.syn_weight`` > 0) the synthetic one.
    The inference network starts from the four files; its STE encoder stays frozen, and its STE
    decoder too unless ``config.train_struct_decoder``; DP reads attention * structure as in stage 3."""

    name = STAGE_FINETUNE_REAL

    def __init__(self, config: FineTuneConfig, datasets: Sequence[Dataset], device: torch.device,
                 dist: DistInfo) -> None:
        decoder = ("struct_decoder",)
        self.frozen = ("struct_encoder",) + (() if config.train_struct_decoder else decoder)
        self.trainable = (decoder if config.train_struct_decoder else ()) + ("dsa", "depth_net")
        self.config = config
        model = S2RDepthNet()
        for name, path in config.checkpoints.items():
            load_network(getattr(model, name), path, name)
        super().__init__(datasets[0], model, config.lr, device, dist)
        self.datasets = list(datasets)
        if config.syn_weight > 0:
            self.scalar_tags = {**self.scalar_tags, "syn_depth": "syn_depth_loss"}

    def forward(self, batch: Batch) -> S2ROutput:
        """One pass over the real images and, when mixing, the synthetic ones after them (so that
        BatchNorm sees both)."""
        image = torch.cat([b["image"] for b in batch])
        with torch.no_grad():
            code = self.model.struct_encoder(image)
        with torch.set_grad_enabled(torch.is_grad_enabled() and "struct_decoder" in self.trainable):
            structure = self.model.struct_decoder(code)
        attention = self.model.dsa(image)
        return S2ROutput(structure, attention, self.model.depth_net(attention * structure))

    def loss(self, outputs: S2ROutput, batch: Batch) -> Dict[str, torch.Tensor]:
        """The masked depth loss on the real samples, plus ``syn_weight`` times the release's depth
        loss on the synthetic ones."""
        real_batch = batch[0]
        n = real_batch["image"].shape[0]
        real = masked_depth_loss([o[:n] for o in outputs.depth], real_batch["depth"], real_batch["valid"])
        losses = {"total": real, "depth": real}
        if len(batch) > 1:
            syn = depth_loss([o[n:] for o in outputs.depth], batch[1]["depth"])
            losses.update(total=real + self.config.syn_weight * syn, syn_depth=syn)
        return losses

    def images(self, batch: Batch, outputs: S2ROutput) -> Dict[str, torch.Tensor]:
        """The real samples; unmeasured ground-truth pixels show as black."""
        shown = super().images(batch[:1], outputs)
        shown["depth_gt"] = shown["depth_gt"] * batch[0]["valid"][:shown["image"].shape[0]]
        return shown


def labelled_dataset(args: argparse.Namespace, flags: AugmentFlags) -> LabelledDepthDataset:
    """The labelled real set the flags name, cut to --num_labeled lines."""
    common = dict(load_size=args.loadSize, max_depth=args.real_max_depth, flags=flags, seed=args.seed,
                  count=args.num_labeled, sample_seed=args.labeled_seed)
    if args.real_dataset == "KITTI":
        return KITTITrain(args.real_root, args.real_datafile, args.kitti_gt, args.kitti_depth_root, **common)
    return DepthPairs(args.real_root, args.real_datafile, args.depth_units, **common)


def write_labelled_list(dataset: LabelledDepthDataset, folder: str) -> Path:
    """The list lines the run trains on, so that the labelled set of a run is on record."""
    path = Path(folder) / LABELLED_LIST
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(" ".join(e.fields) + "\n" for e in dataset.entries), encoding="utf-8")
    return path


def build_finetune_stage(args: argparse.Namespace, device: torch.device, dist: DistInfo) -> FineTuneRealStage:
    """The stage from train.py's flags; the data is opened first, so a bad list fails before any
    network loads."""
    flags = AugmentFlags(flip=not args.no_flip, rotation=False, color=not args.no_augment)
    datasets: List[Dataset] = [labelled_dataset(args, flags)]
    if args.syn_weight > 0:
        syn_flags = AugmentFlags(flip=not args.no_flip, rotation=not args.no_rotation, color=not args.no_augment)
        datasets.append(SyntheticDepthDataset(args.syn_root, args.syn_train_datafile, args.loadSize,
                                              args.syn_dataset, syn_flags, args.seed))
    if dist.is_main:
        write_labelled_list(datasets[0], args.checkpoint_dir)
    paths = {name: getattr(args, flag) for name, flag in CHECKPOINT_FLAGS.items()}
    config = FineTuneConfig(checkpoints=paths, lr=args.lr, syn_weight=args.syn_weight,
                            train_struct_decoder=args.train_struct_decoder)
    return FineTuneRealStage(config, datasets, device, dist)
