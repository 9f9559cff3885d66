"""The three training stages, one class each: its datasets (the first defines the epoch), its
networks (``model``), optimisers, ``forward(batch)`` -> outputs and ``loss(outputs, batch)`` -> loss
terms, and the images to log. The trainer runs the iteration (``training.trainer.train_step``).

Frozen networks are in eval mode with ``requires_grad`` off and run under ``no_grad``, so their
outputs are detached and their BatchNorm statistics never move. Under torchrun every stage averages
its gradients over the processes explicitly (``average_gradients``) instead of through a
DistributedDataParallel wrapper, since ``forward`` calls the networks one by one.
"""
import argparse
import os
from typing import Any, Callable, Dict, List, NamedTuple, Optional, Sequence, Tuple

import torch
import torch.nn as nn
from torch.utils.data import Dataset

from constants import (DEFAULT_DRN_IMAGENET, FILE_STEMS, STAGE_DSA_DP, STAGE_FINETUNE_REAL, STAGE_STRUCT_DECODER,
                       STAGE_STRUCT_ENCODER)
from datasets import AugmentFlags, ImageListDataset, SyntheticDepthDataset
from models import DepthNet, S2RDepthNet, S2ROutput, StructDecoder, StructEncoder
from utils.checkpoint import CheckpointError, load_drn_imagenet, load_network

from .distributed import DistInfo, broadcast_parameters
from .losses import depth_loss, structure_loss
from .translation import GeneratorOutputs, LossWeights, StructureStyleTranslation, Translations

ADAM_BETAS = (0.9, 0.999)
MUNIT_BETAS = (0.5, 0.999)
MUNIT_WEIGHT_DECAY = 1e-4
MAX_LOGGED_IMAGES = 4

# One collated batch per dataset of the stage, its tensors on the training device.
Batch = Sequence[Dict[str, torch.Tensor]]


class Update(NamedTuple):
    """One optimiser step of an iteration: ``optimizers[optimizer]`` minimises the term
    ``objective`` of ``loss(forward(batch), batch)``."""
    optimizer: str
    objective: str
    forward: Callable[[Batch], Any]
    loss: Callable[[Any, Batch], Dict[str, torch.Tensor]]


class StructureDepth(NamedTuple):
    """Stage 2's outputs: DP reads the structure map alone."""
    structure: torch.Tensor   # (B, 1, H, W)
    depth: List[torch.Tensor]  # DP outputs [o4, o3, o2, o1]


def release_name(network: str) -> str:
    """File stem the release trains ``network`` under (``dsa`` -> ``dsa_modle``, sic)."""
    return FILE_STEMS[network][0]


def _to_unit(x: torch.Tensor) -> torch.Tensor:
    """[-1, 1] -> [0, 1] for display."""
    return (x.detach().float() + 1) / 2


class Stage:
    """What the trainer drives; subclasses set ``name``, ``scalar_tags`` (loss term -> TensorBoard
    tag) and ``updates``, and implement ``forward``, ``loss``, ``images`` and ``networks``."""

    name: str
    scalar_tags: Dict[str, str]

    def __init__(self, datasets: Sequence[Dataset], model: nn.Module,
                 optimizers: Dict[str, torch.optim.Optimizer]) -> None:
        self.datasets = list(datasets)
        self.model = model
        self.optimizers = optimizers

    def updates(self) -> Tuple[Update, ...]:
        """The optimiser steps of one iteration, in order."""
        return (Update("main", "total", self.forward, self.loss),)

    def forward(self, batch: Batch) -> Any:
        raise NotImplementedError

    def loss(self, outputs: Any, batch: Batch) -> Dict[str, torch.Tensor]:
        """Loss terms by name; 'total' is what the stage minimises."""
        raise NotImplementedError

    def images(self, batch: Batch, outputs: Any) -> Dict[str, torch.Tensor]:
        """Image batches in [0, 1] of an iteration, by TensorBoard tag suffix."""
        raise NotImplementedError

    def networks(self) -> Dict[str, nn.Module]:
        """Trainable networks by release name (bare modules: saved keys carry no prefix)."""
        raise NotImplementedError

    def frozen_networks(self) -> Dict[str, nn.Module]:
        return {}

    def train(self) -> None:
        self.model.train()

    def trainable_parameters(self) -> List[nn.Parameter]:
        return [p for net in self.networks().values() for p in net.parameters()]

    def state_dict(self) -> dict:
        return {"networks": {name: net.state_dict() for name, net in self.networks().items()},
                "optimizers": {name: opt.state_dict() for name, opt in self.optimizers.items()}}

    def load_state_dict(self, state: dict, source: str) -> None:
        """Restore networks and optimisers; a mismatch names ``source``."""
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


class StructEncoderStage(Stage):
    """Stage 1: MUNIT-style structure/style translation between the synthetic images (domain A) and
    the style images (domain B); the shared structure encoder is what the later stages use.

    One iteration is a discriminator update, then a generator update (MUNIT's order), each with its
    own Adam (MUNIT's lr, betas (0.5, 0.999), weight decay 1e-4).
    """

    name = STAGE_STRUCT_ENCODER
    scalar_tags = {"total": "total_loss", "recon_x": "recon_x_loss", "recon_c": "recon_c_loss",
                   "recon_s": "recon_s_loss", "gan": "gan_loss", "dis": "dis_loss"}

    def __init__(self, synthetic: Dataset, style: Dataset, style_dim: int, weights: LossWeights, lr: float,
                 device: torch.device, dist: DistInfo) -> None:
        model = StructureStyleTranslation(style_dim=style_dim).to(device)
        broadcast_parameters(model, dist)
        super().__init__([synthetic, style], model, {
            name: torch.optim.Adam(params, lr=lr, betas=MUNIT_BETAS, weight_decay=MUNIT_WEIGHT_DECAY)
            for name, params in (("dis", model.discriminator_parameters()),
                                 ("gen", model.generator_parameters()))})
        self.weights = weights

    def updates(self) -> Tuple[Update, ...]:
        return (Update("dis", "dis", self.forward_discriminator, self.loss_discriminator),
                Update("gen", "total", self.forward, self.loss))

    def forward_discriminator(self, batch: Batch) -> Translations:
        return self.model.discriminator_forward(batch[0]["image"], batch[1]["image"])

    def loss_discriminator(self, outputs: Translations, batch: Batch) -> Dict[str, torch.Tensor]:
        return {"dis": self.model.discriminator_loss(outputs, batch[0]["image"], batch[1]["image"])["total"]}

    def forward(self, batch: Batch) -> GeneratorOutputs:
        return self.model.generator_forward(batch[0]["image"], batch[1]["image"])

    def loss(self, outputs: GeneratorOutputs, batch: Batch) -> Dict[str, torch.Tensor]:
        return self.model.generator_loss(outputs, batch[0]["image"], batch[1]["image"], self.weights)

    def images(self, batch: Batch, outputs: GeneratorOutputs) -> Dict[str, torch.Tensor]:
        """The translation grid under fixed display styles (``translate``), so that one log compares
        with the next; ``outputs``, drawn under random styles before the update, are not shown."""
        x_a, x_b = (b["image"][:MAX_LOGGED_IMAGES] for b in batch)
        return {name: _to_unit(images) for name, images in self.model.translate(x_a, x_b).items()}

    def networks(self) -> Dict[str, nn.Module]:
        return {release_name("struct_encoder"): self.model.struct_encoder}

    def trainable_parameters(self) -> List[nn.Parameter]:
        return list(self.model.parameters())

    def state_dict(self) -> dict:
        return {**super().state_dict(), "translation": self.model.state_dict()}

    def load_state_dict(self, state: dict, source: str) -> None:
        if "translation" not in state:
            raise CheckpointError(f"{source} holds no stage-1 translation network")
        try:
            self.model.load_state_dict(state["translation"])
        except RuntimeError as exc:
            raise CheckpointError(f"{source}: the translation network does not fit "
                                  f"(different --style_dim?): {str(exc).splitlines()[0]}") from exc
        super().load_state_dict(state, source)


class _Predictor(nn.Module):
    """A depth stage's forward as a network from images to outputs, for the per-epoch validation
    (``evaluation.loop.evaluate``). ``model`` is registered, so its ``eval()`` reaches the networks."""

    def __init__(self, stage: "DepthStage") -> None:
        super().__init__()
        self.model = stage.model
        self.stage_forward = stage.forward

    def forward(self, image: torch.Tensor) -> Any:
        return self.stage_forward([{"image": image}])


class DepthStage(Stage):
    """Stages 2 and 3: ``model`` holds the networks under their names, the ``frozen`` ones loaded and
    fixed; one Adam (betas (0.9, 0.999)) over the ``trainable`` ones, a parameter group each."""

    frozen: Tuple[str, ...]
    trainable: Tuple[str, ...]
    scalar_tags = {"total": "total_loss", "depth": "depth_loss"}

    def __init__(self, dataset: Dataset, model: nn.Module, lr: float, device: torch.device,
                 dist: DistInfo) -> None:
        for name in self.frozen:
            getattr(model, name).requires_grad_(False)
        model.to(device)
        broadcast_parameters(model, dist)
        super().__init__([dataset], model, {"main": torch.optim.Adam(
            [{"params": getattr(model, name).parameters()} for name in self.trainable],
            lr=lr, betas=ADAM_BETAS)})

    def networks(self) -> Dict[str, nn.Module]:
        return {release_name(name): getattr(self.model, name) for name in self.trainable}

    def frozen_networks(self) -> Dict[str, nn.Module]:
        return {release_name(name): getattr(self.model, name) for name in self.frozen}

    def train(self) -> None:
        self.model.train()
        for name in self.frozen:
            getattr(self.model, name).eval()

    def images(self, batch: Batch, outputs: Any) -> Dict[str, torch.Tensor]:
        image, depth = batch[0]["image"], batch[0]["depth"]
        n = min(MAX_LOGGED_IMAGES, image.shape[0])
        return {"image": _to_unit(image[:n]), "pred_depth": _to_unit(outputs.depth[-1][:n]),
                "depth_gt": _to_unit(depth[:n]), "structure_map": outputs.structure[:n].detach().float()}

    def predictor(self) -> nn.Module:
        return _Predictor(self)


class StructDecoderStage(DepthStage):
    """Stage 2: frozen STE encoder; STE decoder and DP trained, DP reading the structure map alone,
    with the depth loss plus ``lambda_w`` x the structure loss (edge weight ``hyper_w``)."""

    name = STAGE_STRUCT_DECODER
    frozen = ("struct_encoder",)
    trainable = ("struct_decoder", "depth_net")
    # struct_weighted_loss: the edge-weighted structure loss, before --lambda_w
    scalar_tags = {**DepthStage.scalar_tags, "struct": "struct_weighted_loss"}

    def __init__(self, dataset: Dataset, model: nn.Module, lr: float, lambda_w: float, hyper_w: float,
                 device: torch.device, dist: DistInfo) -> None:
        super().__init__(dataset, model, lr, device, dist)
        self.lambda_w = lambda_w
        self.hyper_w = hyper_w

    def forward(self, batch: Batch) -> StructureDepth:
        with torch.no_grad():
            code = self.model.struct_encoder(batch[0]["image"])
        structure = self.model.struct_decoder(code)
        return StructureDepth(structure, self.model.depth_net(structure))

    def loss(self, outputs: StructureDepth, batch: Batch) -> Dict[str, torch.Tensor]:
        depth = batch[0]["depth"]
        d = depth_loss(outputs.depth, depth)
        s = structure_loss(outputs.structure, depth, self.hyper_w)
        return {"total": d + self.lambda_w * s, "depth": d, "struct": s}


class DSAStage(DepthStage):
    """Stage 3: the inference network (``S2RDepthNet``) with its STE frozen; DSA and DP trained with
    the depth loss, DP reading attention * structure."""

    name = STAGE_DSA_DP
    frozen = ("struct_encoder", "struct_decoder")
    trainable = ("dsa", "depth_net")

    def forward(self, batch: Batch) -> S2ROutput:
        image = batch[0]["image"]
        with torch.no_grad():
            structure = self.model.struct_decoder(self.model.struct_encoder(image))
        attention = self.model.dsa(image)
        return S2ROutput(structure, attention, self.model.depth_net(attention * structure))

    def loss(self, outputs: S2ROutput, batch: Batch) -> Dict[str, torch.Tensor]:
        d = depth_loss(outputs.depth, batch[0]["depth"])
        return {"total": d, "depth": d}

    def images(self, batch: Batch, outputs: S2ROutput) -> Dict[str, torch.Tensor]:
        shown = super().images(batch, outputs)
        attention = outputs.attention[:shown["image"].shape[0]].detach().float()
        shown["attention_map"] = attention
        shown["depth_specific_structure"] = attention * shown["structure_map"]
        return shown


# ---------------------------------------------------------------- building a stage from train.py's flags
def _init_depth_net(depth_net: DepthNet, path: Optional[str]) -> None:
    """A fresh DP module (T2Net's normal init), or the given checkpoint."""
    depth_net.reset_parameters()
    if path:
        load_network(depth_net, path, "depth_net")


def _depth_dataset(args: argparse.Namespace) -> SyntheticDepthDataset:
    """Opened first, so that a bad list fails before any network loads."""
    flags = AugmentFlags(flip=not args.no_flip, rotation=not args.no_rotation, color=not args.no_augment)
    return SyntheticDepthDataset(args.syn_root, args.syn_train_datafile, args.loadSize, args.syn_dataset, flags,
                                 args.seed)


def _struct_encoder_stage(args: argparse.Namespace, device: torch.device, dist: DistInfo) -> StructEncoderStage:
    synthetic = ImageListDataset(args.syn_root, args.syn_train_datafile, args.loadSize, num_fields=2,
                                 flip=not args.no_flip, seed=args.seed, stream="synthetic")
    style = ImageListDataset(args.style_root, args.style_datafile, args.loadSize, num_fields=1,
                             flip=not args.no_flip, seed=args.seed, stream="style")
    weights = LossWeights(recon_x=args.recon_x_w, recon_c=args.recon_c_w, recon_s=args.recon_s_w, gan=args.gan_w)
    return StructEncoderStage(synthetic, style, args.style_dim, weights, args.lr, device, dist)


def _struct_decoder_stage(args: argparse.Namespace, device: torch.device, dist: DistInfo) -> StructDecoderStage:
    dataset = _depth_dataset(args)
    model = nn.ModuleDict({"struct_encoder": StructEncoder(), "struct_decoder": StructDecoder(),
                           "depth_net": DepthNet()})
    load_network(model.struct_encoder, args.Shared_Struct_Encoder_path, "struct_encoder")
    if args.Struct_Decoder_path:
        load_network(model.struct_decoder, args.Struct_Decoder_path, "struct_decoder")
    _init_depth_net(model.depth_net, args.DepthNet_path)
    return StructDecoderStage(dataset, model, args.lr, args.lambda_w, args.hyper_w, device, dist)


def _dsa_stage(args: argparse.Namespace, device: torch.device, dist: DistInfo, warn: Callable[[str], None]) -> DSAStage:
    dataset = _depth_dataset(args)
    model = S2RDepthNet()
    load_network(model.struct_encoder, args.Shared_Struct_Encoder_path, "struct_encoder")
    load_network(model.struct_decoder, args.Struct_Decoder_path, "struct_decoder")
    if args.DSAModle_path:
        load_network(model.dsa, args.DSAModle_path, "dsa")
    elif args.dsa_pretrained.lower() == "none":
        pass
    elif args.dsa_pretrained == DEFAULT_DRN_IMAGENET and not os.path.isfile(args.dsa_pretrained):
        warn(f"ImageNet DRN-D-22 weights not found at {args.dsa_pretrained}; the DSA encoder starts "
             f"from the DRN initialisation (pass --dsa_pretrained PATH, or 'none' to silence this)")
    else:
        load_drn_imagenet(model.dsa, args.dsa_pretrained)
    _init_depth_net(model.depth_net, args.DepthNet_path)
    return DSAStage(dataset, model, args.lr, device, dist)


def build_stage(args: argparse.Namespace, device: torch.device, dist: DistInfo,
                warn: Callable[[str], None]) -> Stage:
    """The stage of ``--train_stage``, its networks initialised or loaded as train.py's flags say;
    ``warn`` reports a missing default DRN file (stage 3)."""
    from .finetune import build_finetune_stage  # finetune.py builds on this module's classes

    builders = {STAGE_STRUCT_ENCODER: lambda: _struct_encoder_stage(args, device, dist),
                STAGE_STRUCT_DECODER: lambda: _struct_decoder_stage(args, device, dist),
                STAGE_DSA_DP: lambda: _dsa_stage(args, device, dist, warn),
                STAGE_FINETUNE_REAL: lambda: build_finetune_stage(args, device, dist)}
    return builders[args.train_stage]()
