"""The three training stages: their networks, what is frozen, their losses and one iteration.

A stage hands the trainer its datasets (the first defines the epoch), its trainable networks under
their release names, its optimisers, ``step(batches)`` for one iteration, and the images to log.
Frozen networks are in eval mode with ``requires_grad`` off and run under ``no_grad``, so their
outputs are detached and their BatchNorm statistics never move.
"""
import argparse
import os
from typing import Callable, Dict, List, Optional, Sequence

import torch
import torch.nn as nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import Dataset

from constants import STAGE_FINETUNE_REAL
from datasets import AugmentFlags, ImageListDataset, SyntheticDepthDataset
from models import DepthNet, S2RDepthNet, S2ROutput, StructDecoder, StructEncoder
from options.train_options import DEFAULT_DRN_IMAGENET
from utils.checkpoint import FILE_STEMS, CheckpointError, load_drn_imagenet, load_network

from .distributed import DistInfo, any_rank, average_gradients, broadcast_parameters
from .losses import depth_loss, structure_loss
from .precision import MixedPrecision
from .translation import LossWeights, StructureStyleTranslation

ADAM_BETAS = (0.9, 0.999)
MUNIT_BETAS = (0.5, 0.999)
MUNIT_WEIGHT_DECAY = 1e-4
MAX_LOGGED_IMAGES = 4


class NonFiniteLoss(RuntimeError):
    """A loss became NaN or infinite; raised before the backward pass, so the weights are intact."""


def release_name(network: str) -> str:
    """File stem the release trains ``network`` under (``dsa`` -> ``dsa_modle``, sic)."""
    return FILE_STEMS[network][0]


class DepthStageNet(nn.Module):
    """Networks of a depth stage; ``frozen`` ones stay in eval mode whatever ``train()`` says."""

    frozen: Sequence[str] = ()
    trainable: Sequence[str] = ()

    def freeze(self) -> None:
        for name in self.frozen:
            getattr(self, name).requires_grad_(False)

    def train(self, mode: bool = True) -> "DepthStageNet":
        super().train(mode)
        for name in self.frozen:
            getattr(self, name).eval()
        return self

    def losses(self, out: S2ROutput, depth: torch.Tensor, args: argparse.Namespace) -> Dict[str, torch.Tensor]:
        raise NotImplementedError


class StructDecoderNet(DepthStageNet):
    """Stage 2: frozen STE encoder; STE decoder and DP trained, DP reading the structure map alone
    (its attention is 1 everywhere)."""

    frozen = ("struct_encoder",)
    trainable = ("struct_decoder", "depth_net")

    def __init__(self) -> None:
        super().__init__()
        self.struct_encoder = StructEncoder()
        self.struct_decoder = StructDecoder()
        self.depth_net = DepthNet()

    def forward(self, image: torch.Tensor) -> S2ROutput:
        with torch.no_grad():
            code = self.struct_encoder(image)
        structure = self.struct_decoder(code)
        return S2ROutput(structure, torch.ones_like(structure), self.depth_net(structure))

    def losses(self, out: S2ROutput, depth: torch.Tensor, args: argparse.Namespace) -> Dict[str, torch.Tensor]:
        d = depth_loss(out.depth, depth)
        s = structure_loss(out.structure, depth, args.hyper_w)
        return {"total": d + args.lambda_w * s, "depth": d, "struct": s}


class DSANet(DepthStageNet, S2RDepthNet):
    """Stage 3: the inference network with its STE frozen; DSA and DP trained, DP reading
    attention * structure."""

    frozen = ("struct_encoder", "struct_decoder")
    trainable = ("dsa", "depth_net")

    def forward(self, image: torch.Tensor) -> S2ROutput:
        with torch.no_grad():
            structure = self.struct_decoder(self.struct_encoder(image))
        attention = self.dsa(image)
        return S2ROutput(structure, attention, self.depth_net(attention * structure))

    def losses(self, out: S2ROutput, depth: torch.Tensor, args: argparse.Namespace) -> Dict[str, torch.Tensor]:
        d = depth_loss(out.depth, depth)
        return {"total": d, "depth": d}


def _to_unit(x: torch.Tensor) -> torch.Tensor:
    """[-1, 1] -> [0, 1] for display."""
    return (x.detach().float() + 1) / 2


class Stage:
    """What the trainer drives. Subclasses set ``datasets``, ``optimizers`` and implement the rest."""

    scalar_tags: Dict[str, str] = {}

    def __init__(self, args: argparse.Namespace, device: torch.device, dist: DistInfo,
                 amp: MixedPrecision) -> None:
        self.args = args
        self.device = device
        self.dist = dist
        self.amp = amp
        self.datasets: List[Dataset] = []
        self.optimizers: Dict[str, torch.optim.Optimizer] = {}

    def networks(self) -> Dict[str, nn.Module]:
        """Trainable networks by release name (bare modules: saved keys carry no prefix)."""
        raise NotImplementedError

    def frozen_networks(self) -> Dict[str, nn.Module]:
        return {}

    def train(self) -> None:
        raise NotImplementedError

    def step(self, batches: Sequence[dict]) -> Dict[str, float]:
        """One iteration on one batch of each dataset; returns the loss values."""
        raise NotImplementedError

    def images(self) -> Dict[str, torch.Tensor]:
        """Image batches in [0, 1] of the last iteration, by TensorBoard tag suffix."""
        raise NotImplementedError

    def predictor(self) -> Optional[nn.Module]:
        """A module mapping images to an S2ROutput, for validation; None when the stage has no depth."""
        return None

    def trainable_parameters(self) -> List[nn.Parameter]:
        return [p for net in self.networks().values() for p in net.parameters()]

    def check_finite(self, losses: Dict[str, torch.Tensor]) -> None:
        """Raise NonFiniteLoss on every rank when a loss is NaN/inf on any rank (before backward)."""
        bad = [name for name, value in losses.items() if not torch.isfinite(value).all()]
        if any_rank(bool(bad), self.dist, self.device):
            values = ", ".join(f"{n}={losses[n].item():g}" for n in bad) or "on another process"
            raise NonFiniteLoss(f"non-finite loss ({values})")

    def state_dict(self) -> dict:
        return {"networks": {name: net.state_dict() for name, net in self.networks().items()},
                "optimizers": {name: opt.state_dict() for name, opt in self.optimizers.items()},
                "scaler": self.amp.scaler.state_dict()}

    def load_state_dict(self, state: dict, source: str) -> None:
        """Restore networks, optimisers and the loss scaler; a mismatch names ``source``."""
        for name, net in self.networks().items():
            if name not in state["networks"]:
                raise CheckpointError(f"{source} holds no {name} network")
            try:
                net.load_state_dict(state["networks"][name])
            except RuntimeError as exc:
                raise CheckpointError(f"{source}: the {name} weights do not fit: "
                                      f"{str(exc).splitlines()[0]}") from exc
        for name, opt in self.optimizers.items():
            opt.load_state_dict(state["optimizers"][name])
        if state.get("scaler"):
            self.amp.scaler.load_state_dict(state["scaler"])


class DepthStage(Stage):
    """Stages 2 and 3: one network container, the depth (+ structure) loss, one Adam over the
    trainable networks. The data is opened first, so a bad list fails before any network loads."""

    def __init__(self, args: argparse.Namespace, device: torch.device, dist: DistInfo, amp: MixedPrecision,
                 warn: Callable[[str], None]) -> None:
        super().__init__(args, device, dist, amp)
        flags = AugmentFlags(flip=not args.no_flip, rotation=not args.no_rotation, color=not args.no_augment)
        self.datasets = [SyntheticDepthDataset(args.syn_root, args.syn_train_datafile, args.loadSize,
                                               args.syn_dataset, flags, args.seed)]
        net = self.build_net(args, warn)
        net.freeze()
        self.net = net.to(device)
        self.model: nn.Module = net
        if dist.enabled:
            self.model = DistributedDataParallel(net, device_ids=[device] if device.type == "cuda" else None)
        self.optimizers = {"main": torch.optim.Adam(
            [{"params": getattr(net, name).parameters()} for name in net.trainable],
            lr=args.lr, betas=ADAM_BETAS)}
        self._last: Optional[tuple] = None

    def build_net(self, args: argparse.Namespace, warn: Callable[[str], None]) -> DepthStageNet:
        """The stage's networks, initialised or loaded from the checkpoints the flags name."""
        raise NotImplementedError

    def networks(self) -> Dict[str, nn.Module]:
        return {release_name(name): getattr(self.net, name) for name in self.net.trainable}

    def frozen_networks(self) -> Dict[str, nn.Module]:
        return {release_name(name): getattr(self.net, name) for name in self.net.frozen}

    def train(self) -> None:
        self.net.train()

    def step(self, batches: Sequence[dict]) -> Dict[str, float]:
        image = batches[0]["image"].to(self.device, non_blocking=True)
        depth = batches[0]["depth"].to(self.device, non_blocking=True)
        with self.amp.autocast():
            out = self.model(image)
        losses = self.net.losses(out, depth, self.args)
        self.check_finite(losses)
        optimizer = self.optimizers["main"]
        optimizer.zero_grad(set_to_none=True)
        self.amp.step(losses["total"], optimizer)
        self._last = (image, depth, out)
        return {name: value.item() for name, value in losses.items()}

    def images(self) -> Dict[str, torch.Tensor]:
        image, depth, out = self._last
        n = min(MAX_LOGGED_IMAGES, image.shape[0])
        structure, attention = out.structure[:n].detach().float(), out.attention[:n].detach().float()
        shown = {"image": _to_unit(image[:n]), "pred_depth": _to_unit(out.depth[-1][:n]),
                 "depth_gt": _to_unit(depth[:n]), "structure_map": structure}
        if isinstance(self.net, DSANet):
            shown["attention_map"] = attention
            shown["depth_specific_structure"] = attention * structure
        return shown

    def predictor(self) -> nn.Module:
        return self.net


class StructDecoderStage(DepthStage):
    # struct_weighted_loss: the edge-weighted structure loss, before --lambda_w
    scalar_tags = {"total": "total_loss", "depth": "depth_loss", "struct": "struct_weighted_loss"}

    def build_net(self, args: argparse.Namespace, warn: Callable[[str], None]) -> DepthStageNet:
        net = StructDecoderNet()
        load_network(net.struct_encoder, args.Shared_Struct_Encoder_path, "struct_encoder")
        if args.Struct_Decoder_path:
            load_network(net.struct_decoder, args.Struct_Decoder_path, "struct_decoder")
        _init_depth_net(net.depth_net, args.DepthNet_path)
        return net


class DSAStage(DepthStage):
    scalar_tags = {"total": "total_loss", "depth": "depth_loss"}

    def build_net(self, args: argparse.Namespace, warn: Callable[[str], None]) -> DepthStageNet:
        net = DSANet()
        load_network(net.struct_encoder, args.Shared_Struct_Encoder_path, "struct_encoder")
        load_network(net.struct_decoder, args.Struct_Decoder_path, "struct_decoder")
        if args.DSAModle_path:
            load_network(net.dsa, args.DSAModle_path, "dsa")
        elif args.dsa_pretrained.lower() == "none":
            pass
        elif args.dsa_pretrained == DEFAULT_DRN_IMAGENET and not os.path.isfile(args.dsa_pretrained):
            warn(f"ImageNet DRN-D-22 weights not found at {args.dsa_pretrained}; the DSA encoder starts "
                 f"from the DRN initialisation (pass --dsa_pretrained PATH, or 'none' to silence this)")
        else:
            load_drn_imagenet(net.dsa, args.dsa_pretrained)
        _init_depth_net(net.depth_net, args.DepthNet_path)
        return net


def _init_depth_net(depth_net: DepthNet, path: Optional[str]) -> None:
    """A fresh DP module (T2Net's normal init), or the given checkpoint."""
    depth_net.reset_parameters()
    if path:
        load_network(depth_net, path, "depth_net")


class StructEncoderStage(Stage):
    """Stage 1: MUNIT-style structure/style translation between the synthetic images (domain A) and
    the style images (domain B); the shared structure encoder is what the later stages use.

    One iteration is a discriminator update, then a generator update (MUNIT's order), each with its
    own Adam (MUNIT's lr --lr, betas (0.5, 0.999), weight decay 1e-4). The two updates use different
    parts of the network, so under torchrun the gradients are averaged explicitly rather than by a
    DistributedDataParallel wrapper (which supports one forward pass per backward).
    """

    scalar_tags = {"total": "total_loss", "recon_x": "recon_x_loss", "recon_c": "recon_c_loss",
                   "recon_s": "recon_s_loss", "gan": "gan_loss", "dis": "dis_loss"}

    def __init__(self, args: argparse.Namespace, device: torch.device, dist: DistInfo,
                 amp: MixedPrecision, warn: Callable[[str], None]) -> None:
        super().__init__(args, device, dist, amp)
        self.datasets = [
            ImageListDataset(args.syn_root, args.syn_train_datafile, args.loadSize, num_fields=2,
                             flip=not args.no_flip, seed=args.seed, stream="synthetic"),
            ImageListDataset(args.style_root, args.style_datafile, args.loadSize, num_fields=1,
                             flip=not args.no_flip, seed=args.seed, stream="style"),
        ]
        self.net = StructureStyleTranslation(style_dim=args.style_dim).to(device)
        broadcast_parameters(self.net, dist)
        self.weights = LossWeights(recon_x=args.recon_x_w, recon_c=args.recon_c_w, recon_s=args.recon_s_w,
                                   gan=args.gan_w)
        self.optimizers = {
            name: torch.optim.Adam(params, lr=args.lr, betas=MUNIT_BETAS, weight_decay=MUNIT_WEIGHT_DECAY)
            for name, params in (("dis", self.net.discriminator_parameters()),
                                 ("gen", self.net.generator_parameters()))}
        self._last: Optional[tuple] = None

    def networks(self) -> Dict[str, nn.Module]:
        return {"struct_encoder": self.net.struct_encoder}

    def trainable_parameters(self) -> List[nn.Parameter]:
        return list(self.net.parameters())

    def state_dict(self) -> dict:
        state = super().state_dict()
        state["translation"] = self.net.state_dict()
        return state

    def load_state_dict(self, state: dict, source: str) -> None:
        if "translation" not in state:
            raise CheckpointError(f"{source} holds no stage-1 translation network")
        try:
            self.net.load_state_dict(state["translation"])
        except RuntimeError as exc:
            raise CheckpointError(f"{source}: the translation network does not fit "
                                  f"(different --style_dim?): {str(exc).splitlines()[0]}") from exc
        super().load_state_dict(state, source)

    def train(self) -> None:
        self.net.train()

    def _update(self, name: str, losses: Dict[str, torch.Tensor], params: List[nn.Parameter]) -> None:
        self.check_finite(losses)
        optimizer = self.optimizers[name]
        optimizer.zero_grad(set_to_none=True)
        self.amp.step(losses["total"], optimizer, lambda: average_gradients(params, self.dist))

    def step(self, batches: Sequence[dict]) -> Dict[str, float]:
        x_a = batches[0]["image"].to(self.device, non_blocking=True)
        x_b = batches[1]["image"].to(self.device, non_blocking=True)
        with self.amp.autocast():
            dis = self.net.discriminator_losses(x_a, x_b)
        self._update("dis", dis, self.net.discriminator_parameters())
        with self.amp.autocast():
            gen = self.net.generator_losses(x_a, x_b, self.weights)
        self._update("gen", gen, self.net.generator_parameters())
        self._last = (x_a, x_b)
        values = {name: value.item() for name, value in gen.items()}
        values["dis"] = dis["total"].item()
        return values

    def images(self) -> Dict[str, torch.Tensor]:
        x_a, x_b = (x[:MAX_LOGGED_IMAGES] for x in self._last)
        return {name: _to_unit(batch) for name, batch in self.net.translate(x_a, x_b).items()}


STAGES = {"TrainStructEncoder": StructEncoderStage, "TrainStructDecoder": StructDecoderStage,
          "TrainDSAandDPModule": DSAStage}


def build_stage(args: argparse.Namespace, device: torch.device, dist: DistInfo, amp: MixedPrecision,
                warn: Callable[[str], None]) -> Stage:
    """The stage of ``--train_stage``, its networks initialised or loaded as the flags say."""
    if args.train_stage == STAGE_FINETUNE_REAL:
        from .finetune import build_finetune_stage  # finetune.py builds on this module's classes
        return build_finetune_stage(args, device, dist, amp, warn)
    return STAGES[args.train_stage](args, device, dist, amp, warn)
