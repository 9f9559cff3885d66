"""Stage ``TrainFineTuneReal``: the paper's semi-supervised setting, fine-tuning the trained S2R
networks on a few labelled real images. The release ships no code for it; this is a
reconstruction (README, "Fine-tuning on labelled real images"; docs/release.md §6, D27).

Starting from the four trained files (STE encoder and decoder, DSA, DP), the DSA and DP modules
(and, with ``train_struct_decoder``, the STE decoder) are trained with the release's depth loss
restricted to the measured pixels of the real ground truth (``masked_depth_loss``); the STE encoder
stays frozen as in stages 2 and 3. With ``syn_weight`` > 0 every iteration also takes one batch of
the synthetic training set, whose release depth loss is added with that weight; both batches go
through the network in one forward pass (so BatchNorm sees both and DDP sees one forward).
"""
import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence

import torch
import torch.nn as nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import Dataset

from constants import CHECKPOINT_FLAGS
from datasets import AugmentFlags, SyntheticDepthDataset
from datasets.depth_pairs import DepthPairs, LabelledDepthDataset
from datasets.kitti_train import KITTITrain
from models import S2ROutput
from utils.checkpoint import load_network

from .distributed import DistInfo
from .losses import depth_loss, masked_depth_loss
from .precision import MixedPrecision
from .stages import ADAM_BETAS, MAX_LOGGED_IMAGES, DepthStage, DSANet, Stage, _to_unit

LABELLED_LIST = "labelled_list.txt"


@dataclass(frozen=True)
class FineTuneConfig:
    """What the stage trains and how; ``checkpoints`` maps each of the four networks to its file."""

    checkpoints: Dict[str, str]
    lr: float
    syn_weight: float = 0.0
    train_struct_decoder: bool = False


class FineTuneNet(DSANet):
    """The inference network with its STE encoder frozen, and its STE decoder too unless it is
    trained; DP reads attention * structure as in stage 3."""

    def __init__(self, train_struct_decoder: bool = False) -> None:
        super().__init__()
        decoder = ("struct_decoder",)
        self.frozen = ("struct_encoder",) + (() if train_struct_decoder else decoder)
        self.trainable = (decoder if train_struct_decoder else ()) + ("dsa", "depth_net")

    def forward(self, image: torch.Tensor) -> S2ROutput:
        with torch.no_grad():
            code = self.struct_encoder(image)
        with torch.set_grad_enabled(torch.is_grad_enabled() and "struct_decoder" in self.trainable):
            structure = self.struct_decoder(code)
        attention = self.dsa(image)
        return S2ROutput(structure, attention, self.depth_net(attention * structure))


class FineTuneRealStage(Stage):
    """``datasets``: the labelled real set, then (when ``config.syn_weight`` > 0) the synthetic one."""

    scalar_tags = {"total": "total_loss", "depth": "depth_loss"}

    def __init__(self, config: FineTuneConfig, datasets: Sequence[Dataset], device: torch.device,
                 dist: DistInfo, amp: MixedPrecision) -> None:
        super().__init__(config, device, dist, amp)  # Stage keeps its configuration as ``args``
        self.config = config
        self.datasets = list(datasets)
        if config.syn_weight > 0:
            self.scalar_tags = {**self.scalar_tags, "syn_depth": "syn_depth_loss"}
        net = FineTuneNet(config.train_struct_decoder)
        for name, path in config.checkpoints.items():
            load_network(getattr(net, name), path, name)
        net.freeze()
        self.net = net.to(device)
        self.model: nn.Module = net
        if dist.enabled:
            self.model = DistributedDataParallel(net, device_ids=[device] if device.type == "cuda" else None)
        self.optimizers = {"main": torch.optim.Adam(
            [{"params": getattr(net, name).parameters()} for name in net.trainable], lr=config.lr, betas=ADAM_BETAS)}
        self._last: Optional[tuple] = None

    # the network container's accessors of stages 2 and 3 (release names, frozen parts, modes)
    networks = DepthStage.networks
    frozen_networks = DepthStage.frozen_networks
    train = DepthStage.train
    predictor = DepthStage.predictor

    def batch(self, batches: Sequence[dict]) -> dict:
        """One iteration's input: the real batch, with the synthetic batch appended when mixing."""
        real = {k: batches[0][k].to(self.device, non_blocking=True) for k in ("image", "depth", "valid")}
        real["num_real"] = real["image"].shape[0]
        if len(batches) > 1:
            for key in ("image", "depth"):
                real[key] = torch.cat([real[key], batches[1][key].to(self.device, non_blocking=True)])
        return real

    def forward(self, batch: dict) -> S2ROutput:
        with self.amp.autocast():
            return self.model(batch["image"])

    def loss(self, outputs: S2ROutput, batch: dict) -> Dict[str, torch.Tensor]:
        """The masked depth loss on the real samples, plus ``syn_weight`` times the release's depth
        loss on the synthetic ones."""
        n = batch["num_real"]
        real = masked_depth_loss([o[:n] for o in outputs.depth], batch["depth"][:n], batch["valid"])
        losses = {"total": real, "depth": real}
        if batch["image"].shape[0] > n:
            syn = depth_loss([o[n:] for o in outputs.depth], batch["depth"][n:])
            losses.update(total=real + self.config.syn_weight * syn, syn_depth=syn)
        return losses

    def step(self, batches: Sequence[dict]) -> Dict[str, float]:
        batch = self.batch(batches)
        outputs = self.forward(batch)
        losses = self.loss(outputs, batch)
        self.check_finite(losses)
        optimizer = self.optimizers["main"]
        optimizer.zero_grad(set_to_none=True)
        self.amp.step(losses["total"], optimizer)
        self._last = (batch, outputs)
        return {name: value.item() for name, value in losses.items()}

    def images(self) -> Dict[str, torch.Tensor]:
        """The real samples of the last iteration; unmeasured ground-truth pixels show as black."""
        batch, out = self._last
        n = min(MAX_LOGGED_IMAGES, batch["num_real"])
        structure, attention = out.structure[:n].detach().float(), out.attention[:n].detach().float()
        return {"image": _to_unit(batch["image"][:n]), "pred_depth": _to_unit(out.depth[-1][:n]),
                "depth_gt": _to_unit(batch["depth"][:n]) * batch["valid"][:n], "structure_map": structure,
                "attention_map": attention, "depth_specific_structure": attention * structure}


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


def build_finetune_stage(args: argparse.Namespace, device: torch.device, dist: DistInfo, amp: MixedPrecision,
                         warn: Callable[[str], None]) -> FineTuneRealStage:
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
    return FineTuneRealStage(config, datasets, device, dist, amp)
