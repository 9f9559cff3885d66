"""Fine-tuning on labelled real images (TrainFineTuneReal, reconstructed): the masked depth loss by
hand, the readers on generated data in KITTI's layouts and on the real samples, and the stage end to
end on tiny data."""
import copy
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from datasets import AugmentFlags, DatasetError
from datasets.depth_pairs import DepthPairs, select_labelled
from datasets.kitti_train import KITTITrain
from options.train_options import parse_train_args
from tests import reference
from tests.conftest import ROOT, checkpoint_args, save_random_checkpoints
from tests.synthetic import write_kitti
from tests.test_train_data import write_vkitti
from training.data import EpochData, to_device
from training.distributed import DistInfo
from training.losses import depth_loss, masked_depth_loss
from training.precision import MixedPrecision
from training.stages import build_stage
from training.trainer import train_step

CPU = torch.device("cpu")
NO_AUGMENT = AugmentFlags(flip=False, rotation=False, color=False)
KITTI_SIZE = (64, 208)  # tests/synthetic.py's 2011_09_26 camera (H, W)
DRIVE = "2011_09_26_drive_0001_sync"


# ------------------------------------------------------------------ the masked loss
def test_masked_loss_hand_computed():
    gt = torch.tensor([[0.1, 0.2, 0.3, 0.4],
                       [0.5, 0.6, 0.7, 0.8],
                       [-0.1, -0.2, -0.3, -0.4],
                       [-0.5, -0.6, -0.7, -0.8]]).reshape(1, 1, 4, 4)
    valid = torch.tensor([[1, 0, 1, 1],
                          [1, 1, 0, 0],
                          [0, 0, 0, 1],
                          [0, 1, 1, 0]], dtype=torch.float32).reshape(1, 1, 4, 4)
    full, corners, thirds = torch.zeros(1, 1, 4, 4), torch.full((1, 1, 2, 2), 0.5), torch.zeros(1, 1, 3, 3)
    # 4x4: the valid pixels as they are, mean |0 - gt| over the 8 of them.
    s4 = (0.1 + 0.3 + 0.4 + 0.5 + 0.6 + 0.4 + 0.6 + 0.7) / 8
    # 2x2 (align_corners samples rows/cols 0 and 3): corners 0.1 (valid), 0.4 (valid), -0.5 and -0.8 (holes).
    s2 = (abs(0.5 - 0.1) + abs(0.5 - 0.4)) / 2
    # 3x3 samples at 0, 1.5, 3: row/col 1.5 averages rows/cols 1 and 2 with equal weights, over the
    # valid ones only. Row 0: 0.1; (0.2 hole, 0.3) -> 0.3; 0.4.  Row 1.5: rows 1 and 2 -> col 0: 0.5;
    # cols 1-2: 0.6 only; col 3: -0.4.  Row 3: col 0 hole; cols 1-2: (-0.6 + -0.7) / 2; col 3 hole.
    s3_values = [0.1, 0.3, 0.4, 0.5, 0.6, 0.4, 0.65]
    s3 = sum(s3_values) / len(s3_values)
    loss = masked_depth_loss([corners, thirds, full], gt, valid)
    assert loss.item() == pytest.approx(s4 + s2 + s3, rel=1e-6)


def test_masked_loss_ignores_unmeasured_values_and_equals_the_release_loss_when_dense():
    gen = torch.Generator().manual_seed(0)
    gt = torch.rand(2, 1, 32, 48, generator=gen) * 2 - 1
    outputs = [torch.rand(2, 1, 32 // s, 48 // s, generator=gen) * 2 - 1 for s in (8, 4, 2, 1)]
    assert masked_depth_loss(outputs, gt, torch.ones_like(gt)).item() == pytest.approx(
        depth_loss(outputs, gt).item(), rel=1e-6)
    valid = (torch.rand(2, 1, 32, 48, generator=gen) < 0.1).float()
    changed = torch.where(valid > 0, gt, torch.full_like(gt, 0.77))
    assert masked_depth_loss(outputs, gt, valid).item() == masked_depth_loss(outputs, changed, valid).item()


def test_masked_loss_empty_mask_is_zero_with_zero_gradient():
    pred = torch.zeros(1, 1, 4, 4, requires_grad=True)
    loss = masked_depth_loss([pred], torch.zeros(1, 1, 4, 4), torch.zeros(1, 1, 4, 4))
    loss.backward()
    assert loss.item() == 0.0 and torch.equal(pred.grad, torch.zeros_like(pred))
    # a coarse scale that no measurement reaches adds nothing: 1x1 samples pixel (0, 0) only
    gt, valid = torch.full((1, 1, 4, 4), 0.5), torch.zeros(1, 1, 4, 4)
    valid[0, 0, 2, 2] = 1
    coarse, fine = torch.zeros(1, 1, 1, 1), torch.zeros(1, 1, 4, 4)
    assert masked_depth_loss([coarse, fine], gt, valid).item() == pytest.approx(0.5)


# ------------------------------------------------------------------ readers
def write_annotated(depth_root: Path, list_file: Path, split: str = "train", seed: int = 0) -> list:
    """KITTI annotated depth (uint16, m x 256, 0 = none) for every left image of ``list_file``, in
    data_depth_annotated's layout; returns the metre maps."""
    rng = np.random.default_rng(seed)
    maps = []
    for line in list_file.read_text().split("\n"):
        if not line:
            continue
        left = Path(line.split()[0])
        values = rng.integers(256, 100 * 256, KITTI_SIZE).astype(np.uint16)  # 1 m .. 100 m
        values[rng.random(KITTI_SIZE) < 0.8] = 0
        path = depth_root / split / DRIVE / "proj_depth" / "groundtruth" / "image_02" / f"{left.stem}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(values).save(path)
        maps.append(values.astype(np.float64) / 256)
    return maps


@pytest.fixture(scope="module")
def kitti(tmp_path_factory):
    root = tmp_path_factory.mktemp("kitti_train")
    list_file = write_kitti(root / "raw", [("2011_09_26", i) for i in (5, 6, 7)])
    maps = write_annotated(root / "annotated", list_file)
    return root, list_file, maps


def expected_target(metres: np.ndarray) -> np.ndarray:
    return np.minimum(metres, 80.0) / 80.0 * 2 - 1


def test_kitti_annotated_reader_at_the_image_size(kitti):
    root, list_file, maps = kitti
    data = KITTITrain(str(root / "raw"), str(list_file), "annotated", str(root / "annotated"), KITTI_SIZE,
                      flags=NO_AUGMENT)
    assert len(data) == 3
    for i, metres in enumerate(maps):
        item = data[i]
        assert item["image"].shape == (3, *KITTI_SIZE) and item["depth"].shape == (1, *KITTI_SIZE)
        measured = metres > 0
        assert np.array_equal(item["valid"][0].numpy() > 0, measured)
        np.testing.assert_allclose(item["depth"][0].numpy()[measured], expected_target(metres)[measured], atol=1e-6)
        assert (item["depth"][0].numpy()[~measured] == -1).all()
        assert item["depth"].max() == 1.0  # 80..100 m are clipped to +1, as vKITTI's depth is


def test_kitti_velodyne_reader_matches_the_reference_projection(kitti):
    root, list_file, _ = kitti
    data = KITTITrain(str(root / "raw"), str(list_file), "velodyne", load_size=KITTI_SIZE, flags=NO_AUGMENT)
    raw = root / "raw"
    for i, line in enumerate(list_file.read_text().split("\n")[:3]):
        _, _, calib, velo = line.split()
        gt = reference.kitti_gt(raw / calib, raw / velo, KITTI_SIZE)
        item = data[i]
        assert np.array_equal(item["valid"][0].numpy() > 0, gt > 0)
        np.testing.assert_allclose(item["depth"][0].numpy()[gt > 0], expected_target(gt)[gt > 0], atol=1e-6)


def test_kitti_reader_resizes_and_flips_sparse_depth(kitti):
    root, list_file, maps = kitti
    flags = AugmentFlags(flip=True, rotation=False, color=False)
    data = KITTITrain(str(root / "raw"), str(list_file), "annotated", str(root / "annotated"), (96, 96), flags=flags)
    plain = KITTITrain(str(root / "raw"), str(list_file), "annotated", str(root / "annotated"), (96, 96),
                       flags=NO_AUGMENT)
    flipped = 0
    for i in range(len(data)):
        item, ref = data[i], plain[i]
        assert item["depth"].shape == (1, 96, 96) and item["valid"].any()
        depth = item["depth"][item["valid"] > 0]
        assert depth.min() >= -1 and depth.max() <= 1
        if not torch.equal(item["valid"], ref["valid"]):
            assert torch.equal(item["valid"], ref["valid"].flip(-1))
            assert torch.equal(item["depth"], ref["depth"].flip(-1))
            flipped += 1
    assert flipped  # seed 0 flips at least one of the three


def test_labelled_subset_first_or_seeded(kitti, tmp_path):
    root, list_file, _ = kitti
    lines = list_file.read_text().split("\n")
    first = KITTITrain(str(root / "raw"), str(list_file), load_size=KITTI_SIZE, count=2)
    assert [" ".join(e.fields) for e in first.entries] == lines[:2]
    entries = list(range(10))
    drawn = select_labelled(entries, 4, seed=3)
    assert len(drawn) == 4 and drawn == sorted(drawn) and drawn == select_labelled(entries, 4, seed=3)
    assert drawn != select_labelled(entries, 4, seed=4) and select_labelled(entries, 0) == entries
    assert select_labelled(entries, 12, seed=3) == entries


def test_reader_errors_name_the_line(kitti, tmp_path):
    root, list_file, _ = kitti
    with pytest.raises(DatasetError, match=r"line 1: no annotated depth for .*0000000005.png"):
        KITTITrain(str(root / "raw"), str(list_file), "annotated", str(tmp_path), KITTI_SIZE)
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "d8.png")
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "rgb.png")
    Image.fromarray(np.zeros((8, 8), np.uint16)).save(tmp_path / "empty.png")
    Image.fromarray(np.ones((8, 9), np.uint16)).save(tmp_path / "wide.png")
    for depth, message in (("d8.png", "mode 'L'; expected a 16-bit PNG"), ("empty.png", "no pixel of the ground truth"),
                           ("wide.png", "depth map is 9x8 but the image")):
        (tmp_path / "pairs.txt").write_text(f"rgb.png {depth}\n")
        data = DepthPairs(str(tmp_path), str(tmp_path / "pairs.txt"), 256, (8, 8))
        with pytest.raises(DatasetError, match=f"pairs.txt, line 1: .*{message}"):
            data[0]


def test_readers_on_the_real_samples(shared_data, kitti_raw_list):
    root, list_file = kitti_raw_list
    velodyne = KITTITrain(str(root), str(list_file), load_size=(192, 640), flags=NO_AUGMENT, count=2)
    for item in (velodyne[0], velodyne[1]):
        assert 0.01 < item["valid"].mean() < 0.5  # lidar covers the lower part of the image only
        assert -1 < item["depth"][item["valid"] > 0].min() < item["depth"][item["valid"] > 0].max() <= 1
    demo = shared_data / "kitti_depth" / "metric3d_kitti_demo"
    pairs = Path(list_file).parent / "annotated_pairs.txt"
    pairs.write_text("".join(f"rgb/{f}.png depth/{f}.png\n" for f in ("0000000005", "0000000050")))
    data = DepthPairs(str(demo), str(pairs), 256, (375, 1242), flags=NO_AUGMENT)
    values = np.asarray(Image.open(demo / "depth" / "0000000005.png"), dtype=np.float64)
    item = data[0]
    assert np.array_equal(item["valid"][0].numpy() > 0, values > 0)
    measured = values > 0
    np.testing.assert_allclose(item["depth"][0].numpy()[measured], expected_target(values / 256)[measured],
                               atol=1e-6)


# ------------------------------------------------------------------ the stage
@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    return save_random_checkpoints(tmp_path_factory.mktemp("ft_ckpt"))


def finetune_argv(kitti, ckpt, *extra):
    root, list_file, _ = kitti
    return ["--train_stage", "TrainFineTuneReal", "--real_root", str(root / "raw"), "--real_datafile",
            str(list_file), "--kitti_gt", "annotated", "--kitti_depth_root", str(root / "annotated"),
            "--loadSize", "96", "96", "--batchSize", "2", "--seed", "0", "--nThreads", "0",
            *checkpoint_args(ckpt), *extra]


def test_one_step_trains_dsa_and_dp_only(kitti, ckpt, tmp_path):
    args = parse_train_args(finetune_argv(kitti, ckpt, "--num_labeled", "2", "--checkpoint_dir", str(tmp_path)))
    stage = build_stage(args, CPU, DistInfo(), warn=pytest.fail)
    stage.train()
    batches = next(iter(EpochData(stage.datasets, 2, 0, 0, 0, DistInfo(), CPU)))
    net = stage.model
    before = copy.deepcopy(net.state_dict())
    with torch.no_grad():
        reference_net = copy.deepcopy(net)
        image = batches[0]["image"]
        out = reference_net.depth_net(reference_net.dsa(image) *
                                      reference_net.struct_decoder(reference_net.struct_encoder(image)))
        expected = masked_depth_loss(out, batches[0]["depth"], batches[0]["valid"]).item()
    losses, _ = train_step(stage, to_device(batches, CPU), MixedPrecision(None, CPU), DistInfo(), CPU)
    assert losses == {"total": pytest.approx(expected, rel=1e-5), "depth": pytest.approx(expected, rel=1e-5)}
    after = net.state_dict()
    for prefix, should_change in (("struct_encoder.", False), ("struct_decoder.", False), ("dsa.", True),
                                  ("depth_net.", True)):
        changed = [k for k in after if k.startswith(prefix) and not torch.equal(before[k], after[k])]
        assert bool(changed) == should_change, prefix
    assert set(stage.networks()) == {"dsa_modle", "depth_net"}
    assert (tmp_path / "labelled_list.txt").read_text().count("\n") == 2


def test_struct_decoder_option_and_synthetic_mix(kitti, ckpt, tmp_path):
    syn_list = write_vkitti(tmp_path / "vkitti", n=2)
    args = parse_train_args(finetune_argv(kitti, ckpt, "--train_struct_decoder", "--syn_weight", "0.5",
                                          "--syn_root", str(syn_list.parent), "--syn_train_datafile", str(syn_list),
                                          "--checkpoint_dir", str(tmp_path / "run")))
    stage = build_stage(args, CPU, DistInfo(), warn=pytest.fail)
    stage.train()
    batches = next(iter(EpochData(stage.datasets, 2, 0, 0, 0, DistInfo(), CPU)))
    before = copy.deepcopy(stage.model.struct_decoder.state_dict())
    losses, _ = train_step(stage, to_device(batches, CPU), MixedPrecision(None, CPU), DistInfo(), CPU)
    assert losses["total"] == pytest.approx(losses["depth"] + 0.5 * losses["syn_depth"], rel=1e-6)
    assert set(stage.networks()) == {"struct_decoder", "dsa_modle", "depth_net"}
    assert not all(torch.equal(v, stage.model.struct_decoder.state_dict()[k]) for k, v in before.items())


def test_flag_errors(kitti, ckpt, capsys):
    argv = finetune_argv(kitti, ckpt)
    for drop, message in (("--DepthNet_path", "needs --DepthNet_path"), ("--real_root", "needs --real_root")):
        i = argv.index(drop)
        with pytest.raises(SystemExit):
            parse_train_args(argv[:i] + argv[i + 2:])
        assert message in capsys.readouterr().err
    with pytest.raises(SystemExit):
        parse_train_args([*argv, "--syn_weight", "1"])
    assert "required: --syn_root, --syn_train_datafile" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        parse_train_args([*argv, "--real_dataset", "pairs"])
    assert "needs --depth_units" in capsys.readouterr().err


def test_train_then_test_end_to_end(kitti, ckpt, tmp_path):
    """train.py on two frames in KITTI's layout (96x96, one epoch), then test.py on its checkpoints."""
    root, list_file, _ = kitti
    out = tmp_path / "run"
    train = subprocess.run([sys.executable, str(ROOT / "train.py"), *finetune_argv(kitti, ckpt),
                            "--num_labeled", "2", "--epochs", "1", "--checkpoint_dir", str(out),
                            "--log_dir", str(out / "logs")], capture_output=True, text=True, timeout=600)
    assert train.returncode == 0, train.stdout[-2000:] + train.stderr[-3000:]
    assert "TrainFineTuneReal on cpu: 2 training images" in train.stdout
    tuned = {**ckpt, "dsa": out / "dsa_modle_1.pth", "depth_net": out / "depth_net_1.pth"}
    test = subprocess.run([sys.executable, str(ROOT / "test.py"), "--dataset", "KITTI", "--root", str(root / "raw"),
                           "--test_datafile", str(list_file), "--loadSize", "96", "96", "--nThreads", "0",
                           *checkpoint_args(tuned), "--out_dir", str(tmp_path / "eval")],
                          capture_output=True, text=True, timeout=600)
    assert test.returncode == 0, test.stderr[-3000:]
    assert (tmp_path / "eval" / "metrics.json").is_file()
