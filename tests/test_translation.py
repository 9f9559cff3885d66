"""Stage-1 translation networks and losses: shapes, AdaIN, LSGAN values, loss composition,
optimiser isolation, a short training run, and the structure encoder's released key layout."""
import json
import math

import pytest
import torch

from models import AdaINDecoder, MultiScaleDiscriminator, StructEncoder, StyleEncoder
from models.adain_decoder import AdaptiveInstanceNorm2d
from utils.errors import InputSizeError
from training.translation import (LossWeights, StructureStyleTranslation, lsgan_discriminator_loss,
                                  lsgan_generator_loss)
from utils.checkpoint import load_network

from .conftest import RELEASED_LAYOUT

SIZES = [(64, 128), (96, 64)]


SMALL = 16  # base width for tests that exercise the losses rather than the full-size networks


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """These inputs are tiny: a second intra-op thread only adds spin-waiting on a shared CPU."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def generator_losses(model, x_a, x_b, weights=None):
    """The loss terms of a generator update: its forward pass, then its loss."""
    return model.generator_loss(model.generator_forward(x_a, x_b), x_a, x_b, weights)


def discriminator_losses(model, x_a, x_b):
    """The loss terms of a discriminator update: its forward pass, then its loss."""
    return model.discriminator_loss(model.discriminator_forward(x_a, x_b), x_a, x_b)


@pytest.fixture(scope="module")
def net() -> StructureStyleTranslation:
    """A seeded narrow model for tests that do not train it."""
    torch.manual_seed(0)
    return StructureStyleTranslation(dim=SMALL)


def images(batch: int, height: int, width: int, seed: int) -> torch.Tensor:
    return torch.rand(batch, 3, height, width, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def toy_domain(n: int, size: int, seed: int, textured: bool) -> torch.Tensor:
    """Flat-coloured rectangles on a grey background; the 'textured' domain inverts the colours and
    modulates them with vertical stripes: same kind of structure, another style."""
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    out = []
    for _ in range(n):
        img = torch.full((3, size, size), -0.5)
        for _ in range(3):
            y0, x0 = torch.randint(0, size // 2, (2,), generator=g).tolist()
            h, w = torch.randint(size // 4, size // 2, (2,), generator=g).tolist()
            mask = (yy >= y0) & (yy < y0 + h) & (xx >= x0) & (xx < x0 + w)
            img = torch.where(mask, torch.rand(3, 1, 1, generator=g) * 2 - 1, img)
        if textured:
            img = -img * (0.6 + 0.4 * torch.sin(xx / 2.0))
        out.append(img)
    return torch.stack(out)


def snapshot(module: torch.nn.Module) -> dict:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def changed(module: torch.nn.Module, before: dict) -> bool:
    return any(not torch.equal(v, before[k]) for k, v in module.state_dict().items())


# ---------------------------------------------------------------- shapes

@pytest.mark.parametrize("height,width", SIZES)
def test_style_encoder_gives_a_global_code(height, width):
    torch.manual_seed(0)
    with torch.no_grad():
        style = StyleEncoder(style_dim=8)(images(2, height, width, 0))
    assert style.shape == (2, 8, 1, 1)


@pytest.mark.parametrize("height,width", SIZES)
def test_adain_decoder_renders_at_four_times_the_code_size(height, width):
    torch.manual_seed(0)
    decoder = AdaINDecoder(style_dim=8)
    code = torch.randn(2, 256, height // 4, width // 4)
    with torch.no_grad():
        out = decoder(code, torch.randn(2, 8, 1, 1))
        flat_style = decoder(code, torch.randn(2, 8))
    assert out.shape == flat_style.shape == (2, 3, height, width)
    assert out.abs().max() <= 1.0


@pytest.mark.parametrize("height,width", SIZES)
def test_discriminator_scores_three_scales(height, width):
    def conv(n):  # 4x4, stride 2, padding 1
        return (n + 2 - 4) // 2 + 1

    def pool(n):  # 3x3, stride 2, padding 1
        return (n + 2 - 3) // 2 + 1

    torch.manual_seed(0)
    with torch.no_grad():
        scores = MultiScaleDiscriminator()(images(2, height, width, 0))
    assert len(scores) == 3
    h, w = height, width
    for score in scores:
        eh, ew = h, w
        for _ in range(4):
            eh, ew = conv(eh), conv(ew)
        assert score.shape == (2, 1, eh, ew)
        h, w = pool(h), pool(w)


def test_discriminator_rejects_too_small_inputs():
    with pytest.raises(InputSizeError, match="at least 64x64"):
        MultiScaleDiscriminator()(torch.zeros(1, 3, 32, 128))


@pytest.mark.parametrize("height,width", SIZES)
def test_translate_returns_every_image_at_input_size(net, height, width):
    x_a, x_b = images(2, height, width, 1), images(2, height, width, 2)
    rng_state = torch.get_rng_state()
    first = net.translate(x_a, x_b)
    second = net.translate(x_a, x_b)
    assert torch.equal(torch.get_rng_state(), rng_state)  # display styles use a private generator
    assert set(first) == {"a", "b", "a_recon", "b_recon", "a2b", "b2a"}
    for key, value in first.items():
        assert value.shape == (2, 3, height, width)
        assert not value.requires_grad
        assert torch.equal(value, second[key])  # fixed display styles
    assert torch.equal(first["a"], x_a) and torch.equal(first["b"], x_b)


def test_inputs_are_checked(net):
    good = images(1, 64, 64, 0)
    with pytest.raises(InputSizeError, match="domain B.*multiples of 16"):
        generator_losses(net, good, images(1, 64, 72, 0))
    with pytest.raises(InputSizeError, match=r"domain A.*\(B, 3, H, W\)"):
        discriminator_losses(net, good[:, :1], good)


# ---------------------------------------------------------------- AdaIN

def test_adain_normalises_then_applies_the_given_mean_and_std():
    x = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]], [[0.0, 0.0], [0.0, 4.0]]]])
    mean, std = torch.tensor([[0.5, -1.0]]), torch.tensor([[2.0, 3.0]])
    out = AdaptiveInstanceNorm2d(eps=1e-5)(x, mean, std)
    # channel 0: mean 2.5, variance 1.25; channel 1: mean 1, variance 3
    expected0 = torch.tensor([-1.5, -0.5, 0.5, 1.5]) / math.sqrt(1.25 + 1e-5) * 2.0 + 0.5
    expected1 = torch.tensor([-1.0, -1.0, -1.0, 3.0]) / math.sqrt(3.0 + 1e-5) * 3.0 - 1.0
    torch.testing.assert_close(out[0, 0].flatten(), expected0)
    torch.testing.assert_close(out[0, 1].flatten(), expected1)


def test_decoder_features_take_the_mlp_mean_and_std():
    torch.manual_seed(0)
    decoder = AdaINDecoder(style_dim=8, dim=32)
    style = torch.randn(2, 8, 1, 1)
    captured = []
    hooks = [norm.register_forward_hook(lambda m, inp, out: captured.append((inp[0], out)))
             for block in decoder.res_blocks for norm in (block.norm1, block.norm2)]
    with torch.no_grad():
        decoder(torch.randn(2, 32, 8, 8), style)
        params = decoder.mlp(style.flatten(1))
    for hook in hooks:
        hook.remove()
    assert len(captured) == 8
    c = 32
    for i, (features, out) in enumerate(captured):  # MLP layout per AdaIN layer: [mean (c), std (c)]
        mean = params[:, 2 * c * i:2 * c * i + c, None, None]
        std = params[:, 2 * c * i + c:2 * c * (i + 1), None, None]
        mu = features.mean(dim=(2, 3), keepdim=True)
        var = features.var(dim=(2, 3), unbiased=False, keepdim=True)
        torch.testing.assert_close(out, (features - mu) / torch.sqrt(var + 1e-5) * std + mean)
        torch.testing.assert_close(out.mean(dim=(2, 3), keepdim=True), mean, atol=1e-5, rtol=1e-4)


# ---------------------------------------------------------------- losses

def test_lsgan_losses_by_hand():
    fake = [torch.tensor([[0.5, -1.0]]), torch.tensor([2.0])]
    real = [torch.tensor([[1.0, 0.0]]), torch.tensor([3.0])]
    # generator: ((0.5-1)^2 + (-1-1)^2) / 2 + (2-1)^2 = 2.125 + 1
    assert lsgan_generator_loss(fake).item() == pytest.approx(3.125)
    # discriminator: (0.25 + 1) / 2 + 4 for the fakes, (0 + 1) / 2 + 4 for the reals
    assert lsgan_discriminator_loss(fake, real).item() == pytest.approx(9.125)


def test_generator_losses_follow_the_formulas(net):
    x_a, x_b = images(2, 64, 64, 3), images(2, 64, 64, 4)
    weights = LossWeights(recon_x=2.0, recon_c=3.0, recon_s=5.0, gan=7.0)
    torch.manual_seed(11)
    losses = generator_losses(net, x_a, x_b, weights)
    assert set(losses) == {"total", "recon_x", "recon_c", "recon_s", "gan"}
    assert losses["total"].requires_grad
    torch.testing.assert_close(losses["total"], 2 * losses["recon_x"] + 3 * losses["recon_c"]
                               + 5 * losses["recon_s"] + 7 * losses["gan"])

    torch.manual_seed(11)
    s_a, s_b = torch.randn(2, 8, 1, 1), torch.randn(2, 8, 1, 1)
    with torch.no_grad():
        c_a, c_b = net.struct_encoder(x_a), net.struct_encoder(x_b)
        x_ba, x_ab = net.decoder_a(c_b, s_a), net.decoder_b(c_a, s_b)
        recon_x = ((net.decoder_a(c_a, net.style_encoder_a(x_a)) - x_a).abs().mean()
                   + (net.decoder_b(c_b, net.style_encoder_b(x_b)) - x_b).abs().mean())
        recon_c = ((net.struct_encoder(x_ba) - c_b).abs().mean()
                   + (net.struct_encoder(x_ab) - c_a).abs().mean())
        recon_s = ((net.style_encoder_a(x_ba) - s_a).abs().mean()
                   + (net.style_encoder_b(x_ab) - s_b).abs().mean())
        gan = sum(((d - 1) ** 2).mean() for d in net.dis_a(x_ba) + net.dis_b(x_ab))
    for name, value in (("recon_x", recon_x), ("recon_c", recon_c), ("recon_s", recon_s), ("gan", gan)):
        torch.testing.assert_close(losses[name].detach(), value, msg=name)

    net.zero_grad(set_to_none=True)
    losses["total"].backward()
    assert all(p.grad is not None for p in net.decoder_a.parameters())
    assert all(p.grad is None for p in net.discriminator_parameters())
    assert all(p.requires_grad for p in net.discriminator_parameters())  # unfrozen again
    net.zero_grad(set_to_none=True)


def test_default_loss_weights_are_munits():
    assert LossWeights() == LossWeights(recon_x=10.0, recon_c=1.0, recon_s=1.0, gan=1.0)


def test_discriminator_losses_follow_the_formulas(net):
    x_a, x_b = images(2, 64, 64, 5), images(2, 64, 64, 6)
    torch.manual_seed(12)
    losses = discriminator_losses(net, x_a, x_b)
    assert set(losses) == {"total", "dis_a", "dis_b"}

    torch.manual_seed(12)
    s_a, s_b = torch.randn(2, 8, 1, 1), torch.randn(2, 8, 1, 1)
    with torch.no_grad():
        x_ba = net.decoder_a(net.struct_encoder(x_b), s_a)
        x_ab = net.decoder_b(net.struct_encoder(x_a), s_b)
        dis_a = sum((f ** 2).mean() + ((r - 1) ** 2).mean() for f, r in zip(net.dis_a(x_ba), net.dis_a(x_a)))
        dis_b = sum((f ** 2).mean() + ((r - 1) ** 2).mean() for f, r in zip(net.dis_b(x_ab), net.dis_b(x_b)))
    torch.testing.assert_close(losses["dis_a"].detach(), dis_a)
    torch.testing.assert_close(losses["dis_b"].detach(), dis_b)
    torch.testing.assert_close(losses["total"], losses["dis_a"] + losses["dis_b"])

    net.zero_grad(set_to_none=True)
    losses["total"].backward()
    assert all(p.grad is not None for p in net.discriminator_parameters())
    assert all(p.grad is None for p in net.generator_parameters())  # fakes are detached
    net.zero_grad(set_to_none=True)


# ---------------------------------------------------------------- parameters and optimisation

def test_parameter_groups_partition_the_model(net):
    gen = {id(p) for p in net.generator_parameters()}
    dis = {id(p) for p in net.discriminator_parameters()}
    assert not gen & dis
    assert gen | dis == {id(p) for p in net.parameters()}
    assert {id(p) for p in net.struct_encoder.parameters()} <= gen


def test_initialisation_is_munits(net):
    dis_weight = net.dis_a.scales[0][3][1].weight  # 8 * SMALL x 4 * SMALL x 4 x 4
    assert dis_weight.std().item() == pytest.approx(0.02, rel=0.02)
    gen_weight = net.struct_encoder.resblock.model[0].conv1.weight  # Kaiming, fan-in 4 * SMALL * 3 * 3
    assert gen_weight.std().item() == pytest.approx(math.sqrt(2 / (4 * SMALL * 9)), rel=0.02)
    mlp_weight = net.decoder_b.mlp[2].weight  # 256 x 256 linear
    assert mlp_weight.std().item() == pytest.approx(math.sqrt(2 / 256), rel=0.02)
    assert all(torch.count_nonzero(m.bias) == 0 for m in net.modules()
               if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)))


def test_each_step_moves_only_its_own_networks():
    torch.manual_seed(0)
    model = StructureStyleTranslation(dim=SMALL)
    gen_nets = [model.struct_encoder, model.style_encoder_a, model.style_encoder_b,
                model.decoder_a, model.decoder_b]
    dis_nets = [model.dis_a, model.dis_b]
    gen_opt = torch.optim.Adam(model.generator_parameters(), lr=1e-4, betas=(0.5, 0.999))
    dis_opt = torch.optim.Adam(model.discriminator_parameters(), lr=1e-4, betas=(0.5, 0.999))
    x_a, x_b = images(1, 64, 64, 7), images(1, 64, 64, 8)

    before = [snapshot(m) for m in gen_nets + dis_nets]
    gen_opt.zero_grad()
    generator_losses(model, x_a, x_b)["total"].backward()
    gen_opt.step()
    assert all(changed(m, b) for m, b in zip(gen_nets, before))
    assert not any(changed(m, b) for m, b in zip(dis_nets, before[len(gen_nets):]))

    before = [snapshot(m) for m in gen_nets + dis_nets]
    dis_opt.zero_grad()
    discriminator_losses(model, x_a, x_b)["total"].backward()
    dis_opt.step()
    assert not any(changed(m, b) for m, b in zip(gen_nets, before))
    assert all(changed(m, b) for m, b in zip(dis_nets, before[len(gen_nets):]))


def test_a_few_steps_on_toy_domains_reduce_the_reconstruction_loss():
    torch.manual_seed(0)
    model = StructureStyleTranslation(dim=SMALL)
    gen_opt = torch.optim.Adam(model.generator_parameters(), lr=1e-4, betas=(0.5, 0.999))
    dis_opt = torch.optim.Adam(model.discriminator_parameters(), lr=1e-4, betas=(0.5, 0.999))
    x_a, x_b = toy_domain(1, 64, seed=1, textured=False), toy_domain(1, 64, seed=2, textured=True)

    def recon_x() -> float:
        with torch.no_grad():
            return generator_losses(model, x_a, x_b)["recon_x"].item()

    start = recon_x()
    for _ in range(24):
        dis_opt.zero_grad()
        discriminator_losses(model, x_a, x_b)["total"].backward()
        dis_opt.step()
        gen_opt.zero_grad()
        generator_losses(model, x_a, x_b)["total"].backward()
        gen_opt.step()
    assert recon_x() < 0.4 * start


# ---------------------------------------------------------------- released layout

def test_struct_encoder_keeps_the_released_key_layout(tmp_path):
    torch.manual_seed(0)
    net = StructureStyleTranslation()
    layout = json.loads(RELEASED_LAYOUT.read_text())["struct_encoder"]
    state = net.struct_encoder.state_dict()
    assert {k: list(v.shape) for k, v in state.items()} == {k: shape for k, (shape, _) in layout.items()}
    assert all(str(state[k].dtype) == dtype for k, (_, dtype) in layout.items())

    path = tmp_path / "struct_encoder_1.pth"
    torch.save(state, path)
    plain = load_network(StructEncoder(), path, "struct_encoder")
    x = images(1, 64, 64, 9)
    with torch.no_grad():
        torch.testing.assert_close(plain(x), net.struct_encoder(x), rtol=0, atol=0)
