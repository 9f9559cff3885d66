"""Losses (docs/release.md §3) against hand-computed values and independent formulas, the step-0 losses of the
depth stages, and which networks one optimiser step changes."""
import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from models import DSA, DepthNet
from options.train_options import parse_train_args
from tests.conftest import save_random_checkpoints
from tests.test_train_data import write_vkitti
from training import depth_gradient, depth_loss, stages, structure_loss
from training.data import EpochData
from training.distributed import DistInfo
from training.precision import MixedPrecision
from training.stages import build_stage
from training.trainer import train_step

CPU = torch.device("cpu")


def test_depth_loss_resizes_ground_truth_with_align_corners():
    gt = torch.arange(16, dtype=torch.float32).reshape(1, 1, 4, 4) / 8 - 1
    full = torch.zeros(1, 1, 4, 4)
    corners = torch.full((1, 1, 2, 2), 0.5)
    thirds = torch.zeros(1, 1, 3, 3)
    g = gt[0, 0].numpy()
    # align_corners=True samples rows/cols 0 and 3 for size 2; 0, 1.5 and 3 for size 3.
    corner_vals = g[np.ix_([0, 3], [0, 3])]
    rows = np.stack([g[0], (g[1] + g[2]) / 2, g[3]])
    third_vals = np.stack([rows[:, 0], (rows[:, 1] + rows[:, 2]) / 2, rows[:, 3]], axis=1)
    expected = np.abs(g).mean() + np.abs(0.5 - corner_vals).mean() + np.abs(third_vals).mean()
    assert depth_loss([corners, thirds, full], gt).item() == pytest.approx(expected, rel=1e-6)


def test_depth_gradient_hand_computed():
    d = torch.tensor([[0.0, 1.0], [3.0, 7.0]]).reshape(1, 1, 2, 2)
    # |D[x]-D[x+1]| with the last column repeated: [[1, 0], [4, 0]]; rows likewise: [[3, 6], [0, 0]].
    assert depth_gradient(d)[0, 0].tolist() == [[4.0, 6.0], [4.0, 0.0]]


def reference_structure_loss(structure: np.ndarray, depth: np.ndarray, beta: float) -> float:
    g = np.zeros_like(depth)
    g[..., :, :-1] += np.abs(depth[..., :, :-1] - depth[..., :, 1:])
    g[..., :-1, :] += np.abs(depth[..., :-1, :] - depth[..., 1:, :])
    w = np.exp(-beta * g.mean(axis=1, keepdims=True))
    return float(np.abs(structure * w).mean())


def test_structure_loss_matches_the_formula():
    gen = torch.Generator().manual_seed(0)
    depth = torch.rand(2, 1, 8, 12, generator=gen) * 2 - 1
    structure = torch.rand(2, 1, 8, 12, generator=gen)
    for beta in (0.001, 1.0, 10.0):
        expected = reference_structure_loss(structure.numpy().astype(np.float64), depth.numpy().astype(np.float64),
                                            beta)
        assert structure_loss(structure, depth, beta).item() == pytest.approx(expected, rel=1e-5)


@pytest.fixture(autouse=True)
def narrow_depth_net(monkeypatch):
    """The stages build a DP module with ngf=8 (same blocks and wiring, 1/64 of the weights): these
    tests are about what the stages compute and update, not about the DP module's width."""
    monkeypatch.setattr(stages, "DepthNet", lambda: DepthNet(ngf=8))


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("stages")
    list_file = write_vkitti(root / "vkitti", n=2)
    ckpt = save_random_checkpoints(root / "ckpt")
    return root, list_file, ckpt


def make_stage(setup, stage, *extra):
    root, list_file, ckpt = setup
    argv = ["--train_stage", stage, "--syn_root", str(list_file.parent), "--syn_train_datafile", str(list_file),
            "--batchSize", "2", "--loadSize", "96", "96", "--seed", "0", "--nThreads", "0",
            "--Shared_Struct_Encoder_path", str(ckpt["struct_encoder"]), "--dsa_pretrained", "none", *extra]
    if stage == "TrainDSAandDPModule":
        argv += ["--Struct_Decoder_path", str(ckpt["struct_decoder"])]
    args = parse_train_args(argv)
    torch.manual_seed(0)
    built = build_stage(args, CPU, DistInfo(), warn=pytest.fail)
    built.train()
    batch = next(iter(EpochData(built.datasets, 2, 0, 0, 0, DistInfo(), CPU)))
    return built, batch


def expected_losses(net, batch, stage, lambda_w=1.0, beta=0.001):
    """The stage's forward composed by hand, and the losses of docs/release.md §3 in NumPy."""
    image, gt = batch[0]["image"], batch[0]["depth"]
    structure = net.struct_decoder(net.struct_encoder(image))
    if stage == "TrainDSAandDPModule":
        outputs = net.depth_net(net.dsa(image) * structure)
    else:
        outputs = net.depth_net(structure)
    d = 0.0
    for o in outputs:
        target = F.interpolate(gt, size=o.shape[-2:], mode="bilinear", align_corners=True)
        d += float(np.abs(o.detach().numpy().astype(np.float64) - target.numpy()).mean())
    if stage == "TrainDSAandDPModule":
        return {"total": d, "depth": d}
    s = reference_structure_loss(structure.detach().numpy().astype(np.float64), gt.numpy().astype(np.float64), beta)
    return {"total": d + lambda_w * s, "depth": d, "struct": s}


@pytest.mark.parametrize("stage,trainable,frozen", [
    ("TrainStructDecoder", ("struct_decoder", "depth_net"), ("struct_encoder",)),
    ("TrainDSAandDPModule", ("dsa", "depth_net"), ("struct_encoder", "struct_decoder")),
])
def test_one_step_losses_and_what_changes(setup, stage, trainable, frozen):
    built, batch = make_stage(setup, stage, "--lambda_w", "2.5")
    net = built.model
    for name in frozen:
        module = getattr(net, name)
        assert not module.training and not any(p.requires_grad for p in module.parameters())
    for name in trainable:
        assert getattr(net, name).training
    reference = copy.deepcopy(net)
    with torch.no_grad():
        expected = expected_losses(reference, batch, stage, lambda_w=2.5)
    before = {n: copy.deepcopy(getattr(net, n).state_dict()) for n in trainable + frozen}
    losses, _ = train_step(built, batch, MixedPrecision(None, CPU), DistInfo(), CPU)
    assert losses.keys() == expected.keys()
    for key, value in expected.items():
        assert losses[key] == pytest.approx(value, rel=1e-5), key
    for name in frozen:  # parameters and BN statistics bit-identical
        after = getattr(net, name).state_dict()
        assert all(torch.equal(before[name][k], after[k]) for k in after), name
    for name in trainable:
        after = getattr(net, name).state_dict()
        params = [k for k, _ in getattr(net, name).named_parameters()]
        changed = [k for k in params if not torch.equal(before[name][k], after[k])]
        assert len(changed) >= 0.9 * len(params), f"{name}: only {len(changed)}/{len(params)} changed"
        stats = [k for k in after if k.endswith("running_mean")]
        assert all(not torch.equal(before[name][k], after[k]) for k in stats), name
    assert set(built.networks()) == {"dsa_modle" if n == "dsa" else n for n in trainable}


def test_dsa_starting_points(setup, tmp_path):
    _, _, ckpt = setup
    drn = {f"layer{k}": v for k, v in DSA().E.base.state_dict().items() if not k.endswith("num_batches_tracked")}
    drn["fc.weight"] = torch.zeros(1000, 512)  # the classifier, which the DSA encoder drops
    torch.save(drn, tmp_path / "drn_d_22-4bd2f8ea.pth")
    imagenet, _ = make_stage(setup, "TrainDSAandDPModule", "--dsa_pretrained", str(tmp_path / "drn_d_22-4bd2f8ea.pth"))
    loaded = imagenet.model.dsa.E.base.state_dict()
    assert all(torch.equal(v, drn[f"layer{k}"]) for k, v in loaded.items() if not k.endswith("num_batches_tracked"))
    released, _ = make_stage(setup, "TrainDSAandDPModule", "--DSAModle_path", str(ckpt["dsa"]))
    expected = torch.load(ckpt["dsa"], weights_only=True)
    assert all(torch.equal(v, expected[f"module.{k}"]) for k, v in released.model.dsa.state_dict().items())
