"""The four networks against docs/release.md §1: checkpoint layout, shapes, and each block's arithmetic.

The ``ref_*`` functions are independent functional forwards written from the spec; they read
the weights by checkpoint key only, so they check the modules' wiring, not just their shapes.
"""
import json
import math
from contextlib import ExitStack, contextmanager

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from models import DSA, DepthNet, S2RDepthNet, StructDecoder, StructEncoder
from utils.errors import InputSizeError

from .conftest import RELEASED_LAYOUT

NETWORKS = {"struct_encoder": StructEncoder, "struct_decoder": StructDecoder, "dsa": DSA,
            "depth_net": DepthNet}


def randomize_bn(net: nn.Module, seed: int = 0) -> nn.Module:
    """Non-trivial BN affine parameters and running statistics, so eval-mode BN is not identity."""
    g = torch.Generator().manual_seed(seed)
    for m in net.modules():
        if isinstance(m, nn.BatchNorm2d):
            n = m.num_features
            m.weight.data = 1 + 0.1 * torch.randn(n, generator=g)
            m.bias.data = 0.1 * torch.randn(n, generator=g)
            m.running_mean = 0.1 * torch.randn(n, generator=g)
            m.running_var = 0.5 + torch.rand(n, generator=g)
    return net.eval()


@contextmanager
def record(module: nn.Module, inputs: bool = False):
    """Collect the outputs (or first inputs) of every call of ``module``."""
    seen = []
    if inputs:
        handle = module.register_forward_pre_hook(lambda m, args: seen.append(args[0].detach().clone()))
    else:
        handle = module.register_forward_hook(lambda m, args, out: seen.append(out.detach().clone()))
    try:
        yield seen
    finally:
        handle.remove()


@contextmanager
def record_each(modules, inputs: bool = False):
    """``record`` for several modules at once: one list of tensors per module."""
    with ExitStack() as stack:
        yield [stack.enter_context(record(m, inputs)) for m in modules]


def close(a: torch.Tensor, b: torch.Tensor, tol: float = 1e-5) -> bool:
    return a.shape == b.shape and torch.allclose(a, b, rtol=tol, atol=tol)


# --- independent functional references (docs/release.md §1) --------------------------------------------

def rpad(x, n):
    return F.pad(x, (n, n, n, n), mode="reflect")


def bn(sd, key, x):
    return F.batch_norm(x, sd[f"{key}.running_mean"], sd[f"{key}.running_var"], sd[f"{key}.weight"],
                        sd[f"{key}.bias"], training=False, eps=1e-5)


def ref_struct_encoder(sd, x):
    def block(key, x, k_pad, stride):
        x = F.conv2d(rpad(x, k_pad), sd[f"{key}.conv.weight"], sd[f"{key}.conv.bias"], stride)
        return F.leaky_relu(F.instance_norm(x), 0.2)

    x = block("conv", x, 3, 1)
    x = block("conv1", x, 1, 2)
    x = block("conv2", x, 1, 2)
    for i in range(4):
        k = f"resblock.model.{i}"
        y = F.conv2d(rpad(x, 1), sd[f"{k}.conv1.weight"], sd[f"{k}.conv1.bias"])
        y = F.leaky_relu(F.instance_norm(y), 0.2)
        y = F.instance_norm(F.conv2d(rpad(y, 1), sd[f"{k}.conv2.weight"], sd[f"{k}.conv2.bias"]))
        x = x + y
    return x


def ref_up(sd, key, x, size, align_corners=True):
    x = F.interpolate(x, size=size, mode="bilinear", align_corners=align_corners)
    b1 = F.relu(bn(sd, f"{key}.bn1", F.conv2d(x, sd[f"{key}.conv1.weight"], padding=2)))
    b1 = bn(sd, f"{key}.bn1_2", F.conv2d(b1, sd[f"{key}.conv1_2.weight"], padding=1))
    b2 = bn(sd, f"{key}.bn2", F.conv2d(x, sd[f"{key}.conv2.weight"], padding=2))
    return F.relu(b1 + b2)


def ref_struct_decoder(sd, code):
    h, w = code.shape[-2:]
    x = ref_up(sd, "up1", code, (2 * h, 2 * w))
    x = ref_up(sd, "up2", x, (4 * h, 4 * w))
    return torch.sigmoid(F.conv2d(rpad(x, 1), sd["conv.weight"], sd["conv.bias"]))


def ref_drn(sd, x):
    """Stage outputs of DRN-D-22 stages 0..8 (docs/release.md §1.4)."""
    def conv_bn_relu(k, x, stride=1, padding=1, dilation=1):
        x = F.conv2d(x, sd[f"{k}.0.weight"], stride=stride, padding=padding, dilation=dilation)
        return F.relu(bn(sd, f"{k}.1", x))

    def basic(k, x, stride, dilation, shortcut):
        y = F.relu(bn(sd, f"{k}.bn1", F.conv2d(x, sd[f"{k}.conv1.weight"], stride=stride,
                                               padding=dilation, dilation=dilation)))
        y = bn(sd, f"{k}.bn2", F.conv2d(y, sd[f"{k}.conv2.weight"], padding=dilation, dilation=dilation))
        if shortcut:
            x = bn(sd, f"{k}.downsample.1", F.conv2d(x, sd[f"{k}.downsample.0.weight"], stride=stride))
        return F.relu(y + x)

    outs = [conv_bn_relu("E.base.0", x, padding=3)]
    outs.append(conv_bn_relu("E.base.1", outs[-1]))
    outs.append(conv_bn_relu("E.base.2", outs[-1], stride=2))
    for stage, stride, dilation in ((3, 2, 1), (4, 2, 1), (5, 1, 2), (6, 1, 4)):
        y = basic(f"E.base.{stage}.0", outs[-1], stride, dilation, True)
        outs.append(basic(f"E.base.{stage}.1", y, 1, dilation, False))
    outs.append(conv_bn_relu("E.base.7", outs[-1], padding=2, dilation=2))
    outs.append(conv_bn_relu("E.base.8", outs[-1]))
    return outs


def ref_dsa(sd, img):
    feats = ref_drn(sd, img)
    x = ref_up(sd, "D.up1", feats[-1], tuple(feats[3].shape[-2:]))
    x = ref_up(sd, "D.up2", x, tuple(feats[2].shape[-2:]))
    x = ref_up(sd, "D.up3", x, tuple(img.shape[-2:]))
    return torch.sigmoid(F.conv2d(rpad(x, 1), sd["D.conv.weight"], sd["D.conv.bias"]))


def ref_depth_net(sd, x):
    slope = sd["conv1.3.weight"]

    def act(t):
        return F.prelu(t, slope)

    def enc(k, t):
        t = act(bn(sd, f"{k}.model.1", F.conv2d(t, sd[f"{k}.model.0.weight"], padding=1)))
        return act(bn(sd, f"{k}.model.4", F.conv2d(t, sd[f"{k}.model.3.weight"], padding=1)))

    def inception(k, t):
        branches = [F.conv2d(rpad(t, 2 * j + 1), sd[f"{k}.layer{j}.1.weight"], dilation=2 * j + 1)
                    for j in range(3)]
        y = act(bn(sd, f"{k}.norm1", torch.cat(branches, 1)))
        y = bn(sd, f"{k}.norm2", F.conv2d(rpad(y, 1), sd[f"{k}.branch1x1.1.weight"]))
        return act(y + t)

    def up(k, t):
        t = act(bn(sd, f"{k}.model.2", F.conv2d(rpad(t, 1), sd[f"{k}.model.1.weight"])))
        t = F.conv_transpose2d(t, sd[f"{k}.model.4.weight"], sd[f"{k}.model.4.bias"], stride=2,
                               padding=1, output_padding=1)
        return act(bn(sd, f"{k}.model.5", t))

    def out(k, t):
        w = sd[f"{k}.model.1.weight"]
        return torch.tanh(F.conv2d(rpad(t, w.shape[-1] // 2), w))

    def u(t):
        return t.repeat_interleave(2, -2).repeat_interleave(2, -1)

    def pool(t):
        return F.avg_pool2d(t, 2, 2)

    c1 = pool(act(bn(sd, "conv1.2", F.conv2d(rpad(x, 3), sd["conv1.1.weight"]))))
    c2 = pool(enc("conv2", c1))
    c3 = pool(enc("conv3", c2))
    c = pool(enc("conv4", c3))
    for i in range(3):
        c = inception(f"center.{i}", c)
    c = up("center.3", c)
    a = torch.cat([c, 0.1 * c3], 1)
    d4, o4 = up("deconv4", a), out("output4", a)
    b = torch.cat([d4, 0.05 * c2, u(o4)], 1)
    d3, o3 = up("deconv3", b), out("output3", b)
    e = torch.cat([d3, 0.01 * c1, u(o3)], 1)
    d2, o2 = up("deconv2", e), out("output2", e)
    o1 = out("output1", torch.cat([d2, u(o2)], 1))
    return [o4, o3, o2, o1]


# --- checkpoint layout ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def layout():
    return json.loads(RELEASED_LAYOUT.read_text())


@pytest.mark.parametrize("name", list(NETWORKS))
def test_state_dict_matches_release_layout(layout, name):
    expected = {k.removeprefix("module."): (tuple(shape), dtype) for k, (shape, dtype) in layout[name].items()}
    got = {k: (tuple(v.shape), str(v.dtype)) for k, v in NETWORKS[name]().state_dict().items()}
    assert set(got) == set(expected), set(got) ^ set(expected)
    assert got == expected


def test_depth_net_has_one_shared_prelu(layout):
    net = DepthNet()
    prelus = {id(m) for m in net.modules() if isinstance(m, nn.PReLU)}
    assert len(prelus) == 1
    slopes = [n for n, p in net.named_parameters() if p.numel() == 1]
    assert len(slopes) == 1
    assert net.state_dict()[slopes[0]].item() == pytest.approx(0.25)
    prelu_keys = [k.removeprefix("module.") for k, (shape, _) in layout["depth_net"].items() if shape == [1]]
    assert len(prelu_keys) == 18
    sd = net.state_dict()
    for k in prelu_keys:
        sd[k] = torch.tensor([0.7])
    net.load_state_dict(sd)
    assert dict(net.named_parameters())[slopes[0]].item() == pytest.approx(0.7)
    assert all(net.state_dict()[k].item() == pytest.approx(0.7) for k in prelu_keys)


# --- shapes and size errors -------------------------------------------------------------------

@pytest.mark.parametrize("size", [(48, 80), (96, 160)])
def test_struct_encoder_decoder_dsa_shapes(size):
    h, w = size
    img = torch.randn(1, 3, h, w)
    with torch.no_grad():
        code = StructEncoder().eval()(img)
        assert code.shape == (1, 256, h // 4, w // 4)
        assert StructDecoder().eval()(code).shape == (1, 1, h, w)
        assert DSA().eval()(img).shape == (1, 1, h, w)


@pytest.mark.parametrize("size", [(96, 96), (112, 160)])
def test_depth_net_shapes(size):
    h, w = size
    with torch.no_grad():
        outs = DepthNet().eval()(torch.rand(2, 1, h, w))
    assert [tuple(o.shape) for o in outs] == [(2, 1, h // s, w // s) for s in (8, 4, 2, 1)]


@pytest.fixture(scope="module")
def s2r():
    torch.manual_seed(0)
    return S2RDepthNet().eval()


def test_composite_equals_its_parts_chained(s2r):
    img = torch.rand(1, 3, 96, 96) * 2 - 1
    with torch.no_grad():
        out = s2r(img)
        structure = s2r.struct_decoder(s2r.struct_encoder(img))
        attention = s2r.dsa(img)
        depth = s2r.depth_net(attention * structure)
    assert torch.equal(out.structure, structure) and torch.equal(out.attention, attention)
    assert all(torch.equal(a, b) for a, b in zip(out.depth, depth))
    assert out.prediction is out.depth[-1]


@pytest.mark.parametrize("size", [(100, 320), (96, 328), (64, 128), (80, 320)])
def test_bad_input_sizes_are_clear_errors(s2r, size):
    with pytest.raises(InputSizeError, match=r"multiples of 16 and at least 96, got \d+x\d+"):
        s2r(torch.zeros(1, 3, *size))
    with pytest.raises(InputSizeError, match="DepthNet needs"):
        s2r.depth_net(torch.zeros(1, 1, *size))


# --- each network against its independent reference --------------------------------------------

def test_struct_encoder_matches_reference():
    torch.manual_seed(1)
    net = StructEncoder().eval()
    x = torch.randn(2, 3, 24, 40)
    with torch.no_grad():
        assert close(net(x), ref_struct_encoder(net.state_dict(), x))


def test_struct_decoder_matches_reference():
    torch.manual_seed(2)
    net = randomize_bn(StructDecoder())
    code = torch.randn(2, 256, 5, 7)
    with torch.no_grad():
        assert close(net(code), ref_struct_decoder(net.state_dict(), code))


def test_dsa_matches_reference_at_odd_size():
    torch.manual_seed(3)
    net = randomize_bn(DSA())
    img = torch.randn(1, 3, 50, 70)
    with torch.no_grad():
        assert close(net(img), ref_dsa(net.state_dict(), img), 1e-4)


def test_depth_net_matches_reference():
    torch.manual_seed(4)
    net = DepthNet()
    net.reset_parameters()
    randomize_bn(net)
    sd = net.state_dict()
    sd["conv1.3.weight"] = torch.tensor([0.1])  # a slope that is not the default
    net.load_state_dict(sd)
    x = torch.rand(1, 1, 96, 96)
    with torch.no_grad():
        got, want = net(x), ref_depth_net(net.state_dict(), x)
    assert all(close(g, r) for g, r in zip(got, want))


# --- the arithmetic the spec fixes, block by block ----------------------------------------------

def test_depth_net_skip_weights():
    """deconv4/3/2 and output1 see [coarse, weight * pooled encoder feature, nearest-up(o)]."""
    torch.manual_seed(5)
    net = DepthNet()
    net.reset_parameters()
    net.eval()
    with record(net.pool) as pooled, record(net.center) as center, \
            record(net.deconv4, True) as in4, record(net.deconv3, True) as in3, \
            record(net.deconv2, True) as in2, record(net.output1, True) as in1, \
            record(net.deconv4) as d4, record(net.deconv3) as d3, record(net.deconv2) as d2, \
            torch.no_grad():
        o4, o3, o2, o1 = net(torch.rand(1, 1, 96, 96))
    c1, c2, c3 = pooled[:3]

    def nearest2(t):
        return t.repeat_interleave(2, -2).repeat_interleave(2, -1)

    a, b, e, f = in4[0], in3[0], in2[0], in1[0]
    assert torch.equal(a[:, :256], center[0]) and close(a[:, 256:], 0.1 * c3, 1e-6)
    assert torch.equal(b[:, :128], d4[0]) and close(b[:, 128:256], 0.05 * c2, 1e-6)
    assert torch.equal(b[:, 256:], nearest2(o4))
    assert torch.equal(e[:, :64], d3[0]) and close(e[:, 64:128], 0.01 * c1, 1e-6)
    assert torch.equal(e[:, 128:], nearest2(o3))
    assert torch.equal(f[:, :32], d2[0]) and torch.equal(f[:, 32:], nearest2(o2))
    assert c3.abs().max() > 0  # the skip comparison is not 0 == 0


def test_output_blocks_are_tanh_and_maps_are_sigmoid():
    torch.manual_seed(6)
    net = DepthNet()
    net.reset_parameters()
    net.eval()
    blocks = [net.output4, net.output3, net.output2, net.output1]
    convs = [b.model[1] for b in blocks]
    x = torch.rand(1, 1, 96, 96) * 50  # large input, so the pre-activations leave [-1, 1]
    with record_each(convs) as seen, torch.no_grad():
        outs = net(x)
    for pre, out in zip(seen, outs):
        assert torch.equal(out, torch.tanh(pre[0]))
        assert out.abs().max() <= 1
    assert max(p[0].abs().max() for p in seen) > 1

    for net, conv, inp in ((randomize_bn(StructDecoder()), "conv", torch.randn(1, 256, 4, 6)),
                           (randomize_bn(DSA()), "D.conv", torch.randn(1, 3, 32, 48))):
        with record(net.get_submodule(conv)) as pre, torch.no_grad():
            out = net(inp)
        assert torch.equal(out, torch.sigmoid(pre[0]))
        assert out.min() > 0 and out.max() < 1


def test_up_projection_resizes_with_align_corners_true():
    torch.manual_seed(7)
    net = randomize_bn(StructDecoder())
    code = torch.randn(1, 256, 3, 5)
    with record(net.up1.conv1, True) as seen, torch.no_grad():
        net(code)
    resized = seen[0]
    assert close(resized, F.interpolate(code, size=(6, 10), mode="bilinear", align_corners=True), 1e-6)
    assert not close(resized, F.interpolate(code, size=(6, 10), mode="bilinear", align_corners=False), 1e-3)
    sd = net.state_dict()
    with torch.no_grad():
        out = net.up1(code, (6, 10))
        assert close(out, ref_up(sd, "up1", code, (6, 10)))
        assert not close(out, ref_up(sd, "up1", code, (6, 10), align_corners=False), 1e-3)


@pytest.mark.parametrize("size, expected", [
    ((64, 128), [(16, 32), (32, 64), (64, 128)]),
    ((50, 70), [(13, 18), (25, 35), (50, 70)]),   # stride-2 convs with padding 1: ceil(n / 2)
    ((33, 47), [(9, 12), (17, 24), (33, 47)]),
])
def test_dsa_decoder_target_sizes(size, expected):
    net = DSA().eval()
    ups = [net.D.up1.conv1, net.D.up2.conv1, net.D.up3.conv1]
    with record_each(ups, inputs=True) as seen, torch.no_grad():
        out = net(torch.randn(1, 3, *size))
    assert [tuple(s[0].shape[-2:]) for s in seen] == expected
    assert [s[0].shape[1] for s in seen] == [512, 256, 128]
    assert out.shape == (1, 1, *size)


def test_struct_encoder_uses_instance_norm_without_state():
    net = StructEncoder()
    norms = [m for m in net.modules() if isinstance(m, nn.modules.batchnorm._NormBase)]
    assert len(norms) == 3 + 8
    assert all(type(m) is nn.InstanceNorm2d and not m.affine and not m.track_running_stats for m in norms)
    torch.manual_seed(8)
    x = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        train_out = net.train()(x)
        eval_out = net.eval()(x)
        single = net(x[1:2])
    assert torch.equal(train_out, eval_out)       # no running statistics
    assert close(single, eval_out[1:2])           # per-image statistics
    with record(net.conv.norm) as seen, torch.no_grad():
        net(x)
    mean = seen[0].mean((-2, -1))
    var = seen[0].var((-2, -1), unbiased=False)
    assert mean.abs().max() < 1e-5 and (var - 1).abs().max() < 1e-3


def test_residual_blocks_have_no_activation_after_the_add():
    torch.manual_seed(9)
    net = StructEncoder().eval()
    block = net.resblock.model[0]
    x = torch.randn(1, 256, 8, 8) - 3  # mostly negative: a LeakyReLU after the add would show
    with torch.no_grad():
        delta = block(x) - x
    assert delta.mean((-2, -1)).abs().max() < 1e-4  # the residual is an instance-normed map


def _box_sum(x: torch.Tensor, k: int, mode: str) -> torch.Tensor:
    p = k // 2
    padded = F.pad(x, (p, p, p, p), mode=mode) if mode == "reflect" else F.pad(x, (p, p, p, p))
    return F.avg_pool2d(padded, k, 1) * k * k


@pytest.mark.parametrize("where", ["struct_encoder.conv", "depth_net.output1", "depth_net.conv1"])
def test_reflection_padding_at_the_border(where):
    """A constant kernel sums the reflection-padded neighbourhood, not a zero-padded one."""
    net_name, block = where.split(".")
    net = NETWORKS[net_name]().eval()
    conv = {"struct_encoder.conv": lambda n: n.conv.conv, "depth_net.output1": lambda n: n.output1.model[1],
            "depth_net.conv1": lambda n: n.conv1[1]}[where](net)
    conv.weight.data.fill_(1.0)
    if conv.bias is not None:
        conv.bias.data.zero_()
    k = conv.kernel_size[0]
    x = torch.rand(1, conv.in_channels, 16, 16)
    target = net.get_submodule(block)
    with record(conv) as out, torch.no_grad():
        target(x)
    channel_sum = x.sum(1, keepdim=True)
    assert close(out[0][:, :1], _box_sum(channel_sum, k, "reflect"), 1e-4)
    assert not close(out[0][:, :1], _box_sum(channel_sum, k, "zeros"), 1e-2)


def test_zero_padding_in_up_projection_and_drn():
    up = StructDecoder().up1
    drn = DSA().E
    for conv, pad in ((up.conv1, 2), (up.conv1_2, 1), (up.conv2, 2), (drn.base[0][0], 3),
                      (drn.base[5][0].conv1, 2), (drn.base[6][1].conv2, 4), (drn.base[7][0], 2)):
        assert conv.padding == (pad, pad) and conv.padding_mode == "zeros" and conv.bias is None


DRN_CONVS = {  # name in E.base: (out channels, kernel, stride, dilation)
    "0.0": (16, 7, 1, 1), "1.0": (16, 3, 1, 1), "2.0": (32, 3, 2, 1),
    "3.0.conv1": (64, 3, 2, 1), "3.0.conv2": (64, 3, 1, 1), "3.0.downsample.0": (64, 1, 2, 1),
    "3.1.conv1": (64, 3, 1, 1), "3.1.conv2": (64, 3, 1, 1),
    "4.0.conv1": (128, 3, 2, 1), "4.0.conv2": (128, 3, 1, 1), "4.0.downsample.0": (128, 1, 2, 1),
    "4.1.conv1": (128, 3, 1, 1), "4.1.conv2": (128, 3, 1, 1),
    "5.0.conv1": (256, 3, 1, 2), "5.0.conv2": (256, 3, 1, 2), "5.0.downsample.0": (256, 1, 1, 1),
    "5.1.conv1": (256, 3, 1, 2), "5.1.conv2": (256, 3, 1, 2),
    "6.0.conv1": (512, 3, 1, 4), "6.0.conv2": (512, 3, 1, 4), "6.0.downsample.0": (512, 1, 1, 1),
    "6.1.conv1": (512, 3, 1, 4), "6.1.conv2": (512, 3, 1, 4),
    "7.0": (512, 3, 1, 2), "8.0": (512, 3, 1, 1),
}


def test_drn_convs_strides_and_dilations():
    base = DSA().E.base
    convs = {n: m for n, m in base.named_modules() if isinstance(m, nn.Conv2d)}
    assert set(convs) == set(DRN_CONVS)
    for name, (out, k, stride, dilation) in DRN_CONVS.items():
        c = convs[name]
        assert (c.out_channels, c.kernel_size, c.stride, c.dilation) == \
            (out, (k, k), (stride, stride), (dilation, dilation)), name


def test_drn_stage_sizes_and_receptive_field():
    """All-positive weights make every ReLU pass, so the input gradient of one output pixel is
    non-zero exactly on its receptive field: 527 px for DRN-D-22 up to stage 8."""
    enc = DSA().E.double().eval()
    with torch.no_grad():
        for m in enc.modules():
            if isinstance(m, nn.Conv2d):
                m.weight.abs_()
                m.weight /= m.weight.sum((1, 2, 3), keepdim=True)
    x = (torch.rand(1, 3, 8, 560, dtype=torch.float64) + 0.1).requires_grad_()
    feats = enc(x)
    assert [tuple(f.shape[1:]) for f in feats] == [
        (16, 8, 560), (16, 8, 560), (32, 4, 280), (64, 2, 140), (128, 1, 70), (256, 1, 70),
        (512, 1, 70), (512, 1, 70), (512, 1, 70)]
    feats[-1][0, :, 0, 35].sum().backward()
    cols = torch.nonzero(x.grad.abs().sum((0, 1, 2))).flatten()
    assert cols.max() - cols.min() + 1 == 527


def test_drn_initialisation_statistics():
    torch.manual_seed(10)
    enc = DSA().E
    for name, m in enc.named_modules():
        if isinstance(m, nn.Conv2d):
            expected = math.sqrt(2.0 / (m.kernel_size[0] * m.kernel_size[1] * m.out_channels))
            w = m.weight.detach()
            assert w.std().item() == pytest.approx(expected, rel=0.1), name
            assert abs(w.mean().item()) < 0.1 * expected, name
        elif isinstance(m, nn.BatchNorm2d):
            assert torch.all(m.weight == 1) and torch.all(m.bias == 0), name


def test_depth_net_initialisation_statistics():
    torch.manual_seed(11)
    net = DepthNet()
    net.reset_parameters()
    conv_w, bn_w = [], []
    for m in net.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            conv_w.append(m.weight.detach().flatten())
            if m.bias is not None:
                assert torch.all(m.bias == 0)
        elif isinstance(m, nn.BatchNorm2d):
            bn_w.append(m.weight.detach())
            assert torch.all(m.bias == 0)
    conv_w, bn_w = torch.cat(conv_w), torch.cat(bn_w)
    assert conv_w.std().item() == pytest.approx(0.02, rel=0.02) and abs(conv_w.mean().item()) < 1e-3
    assert bn_w.mean().item() == pytest.approx(1.0, abs=2e-3)
    assert (bn_w - 1).std().item() == pytest.approx(0.02, rel=0.1)
    assert sum(1 for m in net.modules() if isinstance(m, nn.ConvTranspose2d)) == 4
    assert dict(net.named_parameters())["conv1.3.weight"].item() == pytest.approx(0.25)
