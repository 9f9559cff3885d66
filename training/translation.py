"""Stage 1 (``TrainStructEncoder``): learning the structure encoder by image translation.

The release never shipped this stage; the paper trains STE's encoder by disentangling structure
from style, MUNIT-style (Huang et al., ECCV 2018). This module reconstructs it:

- Domain A is synthetic (vKITTI), domain B the style images (paintings, real photos). One
  ``StructEncoder`` E_c is SHARED by both domains (MUNIT has one content encoder per domain):
  a code that both domains must decode from, under any style, can only keep what they share,
  the scene structure. Each domain has its own ``StyleEncoder`` E_s, ``AdaINDecoder`` G and
  ``MultiScaleDiscriminator`` D.
- Losses, each an L1 mean or an LSGAN mean, summed over the two domains:
  image reconstruction |G_a(c_a, E_s_a(x_a)) - x_a| (+ b);
  translations x_ba = G_a(c_b, s_a), x_ab = G_b(c_a, s_b) with s ~ N(0, I) drawn from the
  torch RNG on the input's device; structure-code reconstruction |E_c(x_ba) - c_b| + |E_c(x_ab) - c_a|
  (both sides carry gradient, as in MUNIT); style-code reconstruction |E_s_a(x_ba) - s_a| (+ b);
  generator LSGAN sum_scales mean((D(fake) - 1)^2); discriminator LSGAN
  sum_scales mean(D(fake)^2) + mean((D(real) - 1)^2) on fakes made without gradient.
  ``generator_loss`` reports the components UNWEIGHTED; only ``total`` applies ``LossWeights``
  (MUNIT's 10 / 1 / 1 / 1). ``discriminator_loss`` is unweighted (MUNIT scales it by the GAN
  weight too, which Adam all but ignores; with the default weight 1 they agree).
- The discriminators' parameters are frozen while the generator losses are built, so a
  generator backward pass leaves no gradients in them and spends no time computing those.
- Initialisation as MUNIT: Kaiming-normal (fan-in) for every conv/linear of the generator side,
  N(0, 0.02) for the discriminators, biases 0. The structure encoder gets Kaiming too: in MUNIT
  the content encoder is part of the generator and is initialised with it, and this stage trains
  it from scratch.
- Optimiser (the trainer's business): MUNIT uses Adam, lr 1e-4, betas (0.5, 0.999), weight
  decay 1e-4, one optimiser for ``generator_parameters()`` and one for
  ``discriminator_parameters()``, alternating a discriminator and a generator step.
"""
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Dict, Iterator, List, NamedTuple, Optional, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from constants import SIZE_MULTIPLE
from models import AdaINDecoder, MultiScaleDiscriminator, StructEncoder, StyleEncoder
from utils.errors import InputSizeError

# Seed of the fixed random styles used by ``translate``, so that sample grids are comparable
# from one logging step to the next.
DISPLAY_SEED = 0


@dataclass
class LossWeights:
    """Weights of the generator objective's components (MUNIT's defaults)."""
    recon_x: float = 10.0
    recon_c: float = 1.0
    recon_s: float = 1.0
    gan: float = 1.0


def lsgan_generator_loss(fake_scores: Sequence[torch.Tensor]) -> torch.Tensor:
    """Least-squares GAN generator loss summed over discriminator scales: fakes should score 1."""
    return sum(torch.mean((score - 1) ** 2) for score in fake_scores)


def lsgan_discriminator_loss(fake_scores: Sequence[torch.Tensor],
                             real_scores: Sequence[torch.Tensor]) -> torch.Tensor:
    """Least-squares GAN discriminator loss summed over scales: fakes should score 0, reals 1."""
    return sum(torch.mean(fake ** 2) + torch.mean((real - 1) ** 2)
               for fake, real in zip(fake_scores, real_scores, strict=True))


def init_weights(module: nn.Module, scheme: str) -> None:
    """MUNIT's initialisation of every conv and linear layer: 'kaiming' or 'gaussian' (N(0, 0.02))."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            if scheme == "kaiming":
                nn.init.kaiming_normal_(m.weight, a=0, mode="fan_in")
            elif scheme == "gaussian":
                nn.init.normal_(m.weight, 0.0, 0.02)
            else:
                raise ValueError(f"unknown initialisation scheme {scheme!r}")
            if m.bias is not None:
                nn.init.zeros_(m.bias)


class Translations(NamedTuple):
    """Random styles, structure codes and the two cross-domain translations of one batch."""
    s_a: torch.Tensor
    s_b: torch.Tensor
    c_a: torch.Tensor
    c_b: torch.Tensor
    x_ba: torch.Tensor
    x_ab: torch.Tensor


class GeneratorOutputs(NamedTuple):
    """What the generator update computes from a batch: the translations and both reconstructions."""
    translations: Translations
    x_a_recon: torch.Tensor
    x_b_recon: torch.Tensor


@contextmanager
def _frozen(*modules: nn.Module) -> Iterator[None]:
    """Temporarily turn off ``requires_grad`` of the modules' parameters (restored afterwards)."""
    params = [p for m in modules for p in m.parameters()]
    flags = [p.requires_grad for p in params]
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p, flag in zip(params, flags):
            p.requires_grad_(flag)


def _check_images(x: torch.Tensor, name: str) -> None:
    if x.dim() != 4 or x.shape[1] != 3:
        raise InputSizeError(f"{name}: expected images of shape (B, 3, H, W), got {tuple(x.shape)}")
    if x.shape[-2] % SIZE_MULTIPLE or x.shape[-1] % SIZE_MULTIPLE:
        raise InputSizeError(f"{name}: image height and width must be multiples of {SIZE_MULTIPLE}, "
                             f"got {tuple(x.shape[-2:])}")


class StructureStyleTranslation(nn.Module):
    """The stage-1 model: shared structure encoder, per-domain style encoders, AdaIN decoders and
    multi-scale discriminators. Inputs are images in [-1, 1], (B, 3, H, W), H and W multiples of 16
    and at least 64.

    ``dim`` is the base width of every network (MUNIT's gen/dis ``dim``). Only the default, 64,
    gives the released StructEncoder, whose checkpoints the later stages load; smaller widths are
    for quick CPU runs.
    """

    def __init__(self, style_dim: int = 8, dim: int = 64) -> None:
        super().__init__()
        self.style_dim = style_dim
        self.struct_encoder = StructEncoder(dim=dim)
        code_channels = self.struct_encoder.out_channels
        self.style_encoder_a = StyleEncoder(style_dim, dim=dim, max_channels=code_channels)
        self.style_encoder_b = StyleEncoder(style_dim, dim=dim, max_channels=code_channels)
        self.decoder_a = AdaINDecoder(style_dim, dim=code_channels)
        self.decoder_b = AdaINDecoder(style_dim, dim=code_channels)
        self.dis_a = MultiScaleDiscriminator(dim=dim)
        self.dis_b = MultiScaleDiscriminator(dim=dim)
        for net in self._generator_modules():
            init_weights(net, "kaiming")
        for net in self._discriminator_modules():
            init_weights(net, "gaussian")

    def _generator_modules(self) -> List[nn.Module]:
        return [self.struct_encoder, self.style_encoder_a, self.style_encoder_b,
                self.decoder_a, self.decoder_b]

    def _discriminator_modules(self) -> List[nn.Module]:
        return [self.dis_a, self.dis_b]

    def generator_parameters(self) -> List[nn.Parameter]:
        """Structure encoder, style encoders and decoders: what the generator optimiser updates."""
        return [p for net in self._generator_modules() for p in net.parameters()]

    def discriminator_parameters(self) -> List[nn.Parameter]:
        return [p for net in self._discriminator_modules() for p in net.parameters()]

    def _random_style(self, like: torch.Tensor, generator: Optional[torch.Generator] = None
                      ) -> torch.Tensor:
        """Styles ~ N(0, I), one per image of ``like``, on its device and dtype."""
        if generator is None:
            return torch.randn(like.shape[0], self.style_dim, 1, 1, device=like.device, dtype=like.dtype)
        return torch.randn(like.shape[0], self.style_dim, 1, 1, generator=generator).to(like)

    def _translate(self, x_a: torch.Tensor, x_b: torch.Tensor,
                   generator: Optional[torch.Generator] = None) -> Translations:
        """Structure codes and both translations under random styles (s_a drawn before s_b)."""
        _check_images(x_a, "domain A")
        _check_images(x_b, "domain B")
        s_a = self._random_style(x_b, generator)
        s_b = self._random_style(x_a, generator)
        c_a, c_b = self.struct_encoder(x_a), self.struct_encoder(x_b)
        return Translations(s_a, s_b, c_a, c_b, self.decoder_a(c_b, s_a), self.decoder_b(c_a, s_b))

    def generator_forward(self, x_a: torch.Tensor, x_b: torch.Tensor) -> GeneratorOutputs:
        """Translations under fresh random styles and the within-domain reconstructions, with grad."""
        t = self._translate(x_a, x_b)
        return GeneratorOutputs(t, self.decoder_a(t.c_a, self.style_encoder_a(x_a)),
                                self.decoder_b(t.c_b, self.style_encoder_b(x_b)))

    def generator_loss(self, outputs: GeneratorOutputs, x_a: torch.Tensor, x_b: torch.Tensor,
                       weights: Optional[LossWeights] = None) -> Dict[str, torch.Tensor]:
        """'total' (weighted, with grad) and the unweighted components 'recon_x', 'recon_c',
        'recon_s', 'gan', each summed over both domains. The adversarial and the code terms pass the
        translations through the (frozen) discriminators and the encoders again."""
        weights = LossWeights() if weights is None else weights
        t = outputs.translations
        with _frozen(*self._discriminator_modules()):
            gan = lsgan_generator_loss(self.dis_a(t.x_ba)) + lsgan_generator_loss(self.dis_b(t.x_ab))
        losses = {
            "recon_x": F.l1_loss(outputs.x_a_recon, x_a) + F.l1_loss(outputs.x_b_recon, x_b),
            "recon_c": (F.l1_loss(self.struct_encoder(t.x_ba), t.c_b)
                        + F.l1_loss(self.struct_encoder(t.x_ab), t.c_a)),
            "recon_s": (F.l1_loss(self.style_encoder_a(t.x_ba), t.s_a)
                        + F.l1_loss(self.style_encoder_b(t.x_ab), t.s_b)),
            "gan": gan,
        }
        losses["total"] = sum(getattr(weights, name) * value for name, value in losses.items())
        return losses

    @torch.no_grad()
    def discriminator_forward(self, x_a: torch.Tensor, x_b: torch.Tensor) -> Translations:
        """The fakes of the discriminator update: translations under fresh random styles, no grad."""
        return self._translate(x_a, x_b)

    def discriminator_loss(self, outputs: Translations, x_a: torch.Tensor, x_b: torch.Tensor
                           ) -> Dict[str, torch.Tensor]:
        """'total' = 'dis_a' + 'dis_b': each domain's discriminator on the fakes and the real images
        (with grad into the discriminators only)."""
        dis_a = lsgan_discriminator_loss(self.dis_a(outputs.x_ba), self.dis_a(x_a))
        dis_b = lsgan_discriminator_loss(self.dis_b(outputs.x_ab), self.dis_b(x_b))
        return {"total": dis_a + dis_b, "dis_a": dis_a, "dis_b": dis_b}

    @torch.no_grad()
    def translate(self, x_a: torch.Tensor, x_b: torch.Tensor) -> Dict[str, torch.Tensor]:
        """Inputs, reconstructions and translations for display, without gradient.

        The random styles come from a private generator seeded with ``DISPLAY_SEED`` (one style per
        image), so repeated calls use the same styles and the global RNG is left untouched. No
        network here has batch statistics, so train/eval mode does not matter.
        """
        t = self._translate(x_a, x_b, torch.Generator().manual_seed(DISPLAY_SEED))
        return {
            "a": x_a, "b": x_b,
            "a_recon": self.decoder_a(t.c_a, self.style_encoder_a(x_a)),
            "b_recon": self.decoder_b(t.c_b, self.style_encoder_b(x_b)),
            "a2b": t.x_ab, "b2a": t.x_ba,
        }
