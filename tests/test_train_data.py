"""Synthetic training data (docs/release.md §2.1): the augmentation against an independent re-implementation,
the per-sample seeding, the epoch's sampling (with replacement by default, or a permutation), and the errors on
bad lists and files."""
import random
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageEnhance

from datasets import AugmentFlags, DatasetError, ImageListDataset, SyntheticDepthDataset
from datasets import vkitti
from options.train_options import parse_train_args
from training.data import DrawnWithReplacement, EpochData, cycled_indices, draw_positions, primary_indices
from training.distributed import DistInfo

LOAD_SIZE = (96, 96)
RAW_SIZE = (60, 150)  # H, W of the written files (vKITTI's aspect, tiny)
NO_AUGMENT = AugmentFlags(flip=False, rotation=False, color=False)


def write_vkitti(root: Path, n: int = 4, seed: int = 0) -> Path:
    """``n`` RGB-D pairs in the vKITTI 1.3.1 layout (16-bit depth in cm, some beyond 80 m) and the
    list file ``train.txt``; returns the list file."""
    rng = np.random.default_rng(seed)
    h, w = RAW_SIZE
    lines = []
    for i in range(n):
        rgb_rel = f"vkitti_1.3.1_rgb/0001/clone/{i:05d}.png"
        depth_rel = f"vkitti_1.3.1_depthgt/0001/clone/{i:05d}.png"
        for rel in (rgb_rel, depth_rel):
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(root / rgb_rel)
        ramp = np.linspace(300, 12000, w)[None, :] + np.linspace(0, 2000, h)[:, None]
        depth = (ramp + rng.normal(0, 200, (h, w))).clip(0, 65535).astype(np.uint16)
        Image.fromarray(depth).save(root / depth_rel)
        lines.append(f"{rgb_rel} {depth_rel}")
    list_file = root / "train.txt"
    list_file.write_text("\n".join(lines) + "\n")
    return list_file


@pytest.fixture(scope="module")
def vkitti_data(tmp_path_factory):
    root = tmp_path_factory.mktemp("vkitti")
    return root, write_vkitti(root)


def release_decoded(depth_path) -> Image.Image:
    """The depth PNG as the release's Pillow (8.1.2) decoded it: 16-bit PNGs as mode I (int32)."""
    img = Image.open(depth_path)
    return Image.fromarray(np.array(img).astype(np.int32)) if img.mode.startswith("I;16") else img


def reference_sample(rgb_path, depth_path, size, rng, flip=True, rotation=True, color=True,
                     depth_scale=None):
    """Spec §2.1 written out with PIL/NumPy only; returns (image, depth) arrays and the branches taken."""
    h, w = size
    rgb = Image.open(rgb_path).convert("RGB").resize((w, h), Image.BICUBIC)
    depth = np.array(release_decoded(depth_path).resize((w, h), Image.BICUBIC), dtype=np.float32)
    if depth_scale is None:
        depth = np.clip(depth, None, 8000.0) / 8000.0
        depth[depth < 0] = 0
    else:
        depth = depth / depth_scale
    depth = Image.fromarray(depth, "F")
    taken = []
    if flip and rng.random() < 0.5:
        rgb, depth = rgb.transpose(Image.FLIP_LEFT_RIGHT), depth.transpose(Image.FLIP_LEFT_RIGHT)
        taken.append("flip")
    if rotation and rng.random() < 0.5:
        angle = rng.randrange(-500, 500) / 100.0
        rgb, depth = rgb.rotate(angle, Image.BICUBIC), depth.rotate(angle, Image.BICUBIC)
        taken.append("rotation")
    depth = np.array(depth, dtype=np.float32) * 2.0 - 1.0
    if color and rng.random() < 0.5:
        b, c, s = rng.uniform(0.8, 1.0), rng.uniform(0.8, 1.0), rng.uniform(0.8, 1.0)
        rgb = ImageEnhance.Brightness(rgb).enhance(b)
        rgb = ImageEnhance.Contrast(rgb).enhance(c)
        rgb = ImageEnhance.Color(rgb).enhance(s)
        taken.append("color")
    image = (np.asarray(rgb, dtype=np.float32).transpose(2, 0, 1) / 255.0 - 0.5) / 0.5
    return image, depth[None], taken


def test_no_augmentation_is_resize_clip_and_scale(vkitti_data):
    root, list_file = vkitti_data
    ds = SyntheticDepthDataset(str(root), str(list_file), LOAD_SIZE, flags=NO_AUGMENT)
    item = ds[1]
    rgb_rel, depth_rel = list_file.read_text().splitlines()[1].split()
    raw = release_decoded(root / depth_rel)
    resized = np.array(raw.resize((LOAD_SIZE[1], LOAD_SIZE[0]), Image.BICUBIC), dtype=np.float64)
    expected_depth = np.minimum(resized, 8000) / 8000 * 2 - 1
    rgb = np.asarray(Image.open(root / rgb_rel).resize((LOAD_SIZE[1], LOAD_SIZE[0]), Image.BICUBIC), np.float64)
    assert item["image"].shape == (3, *LOAD_SIZE) and item["depth"].shape == (1, *LOAD_SIZE)
    assert item["image"].dtype == torch.float32 and item["depth"].dtype == torch.float32
    np.testing.assert_allclose(item["depth"][0].numpy(), expected_depth, atol=1e-6)
    np.testing.assert_allclose(item["image"].numpy(), rgb.transpose(2, 0, 1) / 127.5 - 1, atol=1e-6)
    assert (item["depth"] == 1).any(), "the far half of the ramp is beyond 80 m and must clip to +1"
    assert item["index"] == 1


def test_depth_next_to_the_sky_is_resized_as_the_release_does(tmp_path):
    """vKITTI's sky is 65535 cm: a bicubic resize in I;16 clamps its first pass there and moves
    nearby pixels; the release resized in mode I (int32), which the dataset now matches exactly."""
    rng = np.random.default_rng(0)
    depth = np.full((375, 1242), 65535, np.uint16)                  # sky on top
    depth[150:] = rng.integers(500, 3000, (225, 1242))              # road and cars, 5-30 m
    depth[100:150, 300:600] = 800                                   # a near object against the sky
    Image.fromarray(rng.integers(0, 256, (375, 1242, 3), dtype=np.uint8)).save(tmp_path / "rgb.png")
    Image.fromarray(depth).save(tmp_path / "depth.png")
    (tmp_path / "list.txt").write_text("rgb.png depth.png\n")
    ds = SyntheticDepthDataset(str(tmp_path), str(tmp_path / "list.txt"), LOAD_SIZE, flags=NO_AUGMENT)

    def unit(img):
        return np.clip(np.minimum(np.array(img.resize(LOAD_SIZE[::-1], Image.BICUBIC), np.float32), 8000) / 8000, 0, None)

    release = unit(release_decoded(tmp_path / "depth.png"))
    in_i16 = unit(Image.open(tmp_path / "depth.png"))
    assert Image.open(tmp_path / "depth.png").mode == "I;16" and (release != in_i16).sum() > 0
    np.testing.assert_array_equal(ds[0]["depth"][0].numpy(), release * 2 - 1)


def test_draws_follow_the_release_order(vkitti_data, monkeypatch):
    root, list_file = vkitti_data
    ds = SyntheticDepthDataset(str(root), str(list_file), LOAD_SIZE)
    rgb_rel, depth_rel = list_file.read_text().splitlines()[2].split()
    seen = set()
    for k in range(12):
        monkeypatch.setattr(vkitti, "sample_rng", lambda *a, k=k: random.Random(k))
        item = ds[2]
        image, depth, taken = reference_sample(root / rgb_rel, root / depth_rel, LOAD_SIZE, random.Random(k))
        seen.update(taken)
        np.testing.assert_allclose(item["depth"].numpy(), depth, atol=1e-6, err_msg=f"seed {k}: {taken}")
        np.testing.assert_allclose(item["image"].numpy(), image, atol=1e-6, err_msg=f"seed {k}: {taken}")
    assert seen == {"flip", "rotation", "color"}, "the seeds must exercise every augmentation"


@pytest.mark.parametrize("flags", [AugmentFlags(flip=False), AugmentFlags(rotation=False),
                                   AugmentFlags(color=False)])
def test_disabled_augmentations_take_no_draw(vkitti_data, monkeypatch, flags):
    root, list_file = vkitti_data
    ds = SyntheticDepthDataset(str(root), str(list_file), LOAD_SIZE, flags=flags)
    rgb_rel, depth_rel = list_file.read_text().splitlines()[0].split()
    for k in range(6):
        monkeypatch.setattr(vkitti, "sample_rng", lambda *a, k=k: random.Random(k))
        image, depth, _ = reference_sample(root / rgb_rel, root / depth_rel, LOAD_SIZE, random.Random(k),
                                           flags.flip, flags.rotation, flags.color)
        item = ds[0]
        np.testing.assert_allclose(item["depth"].numpy(), depth, atol=1e-6)
        np.testing.assert_allclose(item["image"].numpy(), image, atol=1e-6)


def test_samples_depend_on_seed_epoch_and_index_only(vkitti_data):
    root, list_file = vkitti_data
    a = SyntheticDepthDataset(str(root), str(list_file), LOAD_SIZE, seed=3)
    b = SyntheticDepthDataset(str(root), str(list_file), LOAD_SIZE, seed=3)
    draws = {}
    for epoch in range(4):
        a.set_epoch(epoch)
        b.set_epoch(epoch)
        assert torch.equal(a[0]["image"], b[0]["image"]) and torch.equal(a[0]["depth"], b[0]["depth"])
        draws[epoch] = a[0]["depth"]
    assert any(not torch.equal(draws[0], draws[e]) for e in (1, 2, 3)), "epochs must augment differently"


def test_suncg_depth_is_8bit_over_255(tmp_path):
    (tmp_path / "rgb").mkdir()
    (tmp_path / "depth").mkdir()
    Image.fromarray(np.full((40, 50, 3), 90, np.uint8)).save(tmp_path / "rgb" / "0.png")
    depth = np.tile(np.arange(50, dtype=np.uint8) * 5, (40, 1))
    Image.fromarray(depth).save(tmp_path / "depth" / "0.png")
    (tmp_path / "list.txt").write_text("rgb/0.png depth/0.png\n")
    ds = SyntheticDepthDataset(str(tmp_path), str(tmp_path / "list.txt"), (96, 128), "SUNCG", NO_AUGMENT)
    expected = np.array(Image.fromarray(depth).resize((128, 96), Image.BICUBIC), np.float32) / 255 * 2 - 1
    np.testing.assert_allclose(ds[0]["depth"][0].numpy(), expected, atol=1e-6)
    vk = SyntheticDepthDataset(str(tmp_path), str(tmp_path / "list.txt"), (96, 128), "VKITTI", NO_AUGMENT)
    with pytest.raises(DatasetError, match=r"list.txt, line 1: depth image .*0.png has PIL mode 'L'; "
                                           r"VKITTI depth must be a 16-bit PNG in centimetres"):
        vk[0]


def test_bad_lists_name_file_and_line(tmp_path, vkitti_data):
    root, list_file = vkitti_data
    lines = list_file.read_text().splitlines()
    cases = {
        "missing.txt": None,
        "empty.txt": "\n",
        "three_fields.txt": f"{lines[0]}\n{lines[1]} extra\n",
        "missing_image.txt": f"{lines[0]}\n\nnope/rgb.png {lines[1].split()[1]}\n",
    }
    expected = {
        "missing.txt": r"list file not found: .*missing.txt",
        "empty.txt": r"list file is empty: .*empty.txt",
        "three_fields.txt": r"three_fields.txt, line 2: expected 2 space-separated fields",
        "missing_image.txt": r"missing_image.txt, line 3: file not found: .*nope/rgb.png",
    }
    for name, text in cases.items():
        if text is not None:
            (tmp_path / name).write_text(text)
        with pytest.raises(DatasetError, match=expected[name]):
            SyntheticDepthDataset(str(root), str(tmp_path / name), LOAD_SIZE)


def test_corrupt_image_names_the_line(tmp_path, vkitti_data):
    root, list_file = vkitti_data
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not a png")
    (tmp_path / "list.txt").write_text(f"{list_file.read_text().splitlines()[0]}\n{bad} {bad}\n")
    ds = SyntheticDepthDataset(str(root), str(tmp_path / "list.txt"), LOAD_SIZE)
    with pytest.raises(DatasetError, match=r"list.txt, line 2: cannot read image .*bad.png"):
        ds[1]


def test_image_lists_flip_with_their_own_stream(vkitti_data, monkeypatch):
    root, list_file = vkitti_data
    ds = ImageListDataset(str(root), str(list_file), LOAD_SIZE, num_fields=2, stream="synthetic")
    rgb = Image.open(root / list_file.read_text().split()[0]).convert("RGB").resize((96, 96), Image.BICUBIC)
    plain = np.asarray(rgb, np.float32).transpose(2, 0, 1) / 127.5 - 1
    for k in range(4):
        monkeypatch.setattr(vkitti, "sample_rng", lambda *a, k=k: random.Random(k))
        flipped = random.Random(k).random() < 0.5
        expected = plain[..., ::-1] if flipped else plain
        np.testing.assert_allclose(ds[0]["image"].numpy(), expected, atol=1e-6)


def test_epoch_order_is_seeded_by_seed_and_epoch():
    data = list(range(10))
    single = DistInfo()
    assert primary_indices(data, 5, 2, single) == primary_indices(data, 5, 2, single)
    assert primary_indices(data, 5, 2, single) != primary_indices(data, 5, 3, single)
    assert sorted(primary_indices(data, 5, 2, single)) == data
    halves = [primary_indices(data, 5, 2, DistInfo(r, 2)) for r in (0, 1)]
    assert sorted(halves[0] + halves[1]) == data and len(halves[0]) == len(halves[1]) == 5
    style = cycled_indices(3, 8, 5, 2, single, "style")
    assert len(style) == 8 and sorted(style[:3]) == [0, 1, 2] and sorted(style[3:6]) == [0, 1, 2]


@pytest.mark.parametrize("sampling", ["with_replacement", "permutation"])
@pytest.mark.parametrize("workers", [0, 2])
def test_a_resumed_epoch_sees_the_same_batches(vkitti_data, workers, sampling):
    root, list_file = vkitti_data
    ds = SyntheticDepthDataset(str(root), str(list_file), LOAD_SIZE, seed=7)
    args = (1, workers, 7, 1, DistInfo(), torch.device("cpu"))
    full = list(EpochData([ds], *args, sampling=sampling))
    tail = list(EpochData([ds], *args, start=2, sampling=sampling))
    assert len(full) == 4 and len(tail) == 2
    for (a,), (b,) in zip(full[2:], tail):
        assert torch.equal(a["index"], b["index"])
        assert torch.equal(a["image"], b["image"]) and torch.equal(a["depth"], b["depth"])


class IndexOnly(torch.utils.data.Dataset):
    """``n`` list lines whose items are just their index, seeded as the real datasets are: what an
    epoch picks, without the images."""

    def __init__(self, n: int, seed: int = 0) -> None:
        self.n, self.seed, self.epoch = n, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.n

    def rng(self, key: int) -> random.Random:
        return vkitti.sample_rng(self.seed, self.epoch, key)

    def sample(self, index: int, rng: random.Random) -> dict:
        return {"index": index}

    def __getitem__(self, index: int) -> dict:
        return self.sample(index, self.rng(index))


def epoch_indices(dataset, epoch: int, dist: DistInfo = DistInfo(), **kwargs) -> list:
    batches = EpochData([dataset], 4, 0, 0, epoch, dist, torch.device("cpu"), **kwargs)
    return [i for (batch,) in batches for i in batch["index"].tolist()]


def test_the_default_draws_with_replacement_uniformly():
    data, epochs = IndexOnly(4), 300
    draws = [epoch_indices(data, e) for e in range(epochs)]
    assert all(len(d) == 4 for d in draws)
    # P(four uniform draws over 4 lines are all different) = 4! / 4^4 = 0.09375
    with_repeats = sum(len(set(d)) < 4 for d in draws) / epochs
    assert 0.83 < with_repeats < 0.98, with_repeats
    counts = np.bincount(np.concatenate(draws), minlength=4)
    assert counts.sum() == 1200 and all(240 <= c <= 360 for c in counts), counts  # 300 +- 4 sd
    assert draws[:10] != [epoch_indices(IndexOnly(4, seed=1), e) for e in range(10)], "the seed must matter"


def test_the_permutation_option_takes_every_line_once():
    draws = [epoch_indices(IndexOnly(5), e, sampling="permutation") for e in range(20)]
    assert all(sorted(d) == [0, 1, 2, 3, 4] for d in draws)
    assert len({tuple(d) for d in draws}) > 1, "the order must change with the epoch"


def test_epoch_length_is_the_releases_loader():
    """The release's DataLoader (drop_last False) gives ceil(N / B) batches, the last one partial."""
    for sampling in ("with_replacement", "permutation"):
        batches = list(EpochData([IndexOnly(5)], 2, 0, 0, 0, DistInfo(), torch.device("cpu"), sampling=sampling))
        assert [b["index"].shape[0] for (b,) in batches] == [2, 2, 1], sampling


def test_ranks_take_disjoint_draws():
    assert draw_positions(5, DistInfo(0, 2)) == [0, 2, 4] and draw_positions(5, DistInfo(1, 2)) == [1, 3, 5]
    assert draw_positions(5, DistInfo()) == [0, 1, 2, 3, 4]
    ranks = [epoch_indices(IndexOnly(50), 0, DistInfo(r, 2)) for r in (0, 1)]
    assert len(ranks[0]) == len(ranks[1]) == 25 and ranks[0] != ranks[1]


def test_a_draw_picks_its_line_then_its_augmentation(vkitti_data, monkeypatch):
    """As the release's __getitem__: randint(0, N - 1) first, then the augmentation, from one generator."""
    root, list_file = vkitti_data
    lines = list_file.read_text().splitlines()
    drawn = DrawnWithReplacement(SyntheticDepthDataset(str(root), str(list_file), LOAD_SIZE))
    picked = set()
    for k in range(6):
        monkeypatch.setattr(vkitti, "sample_rng", lambda *a, k=k: random.Random(k))
        rng = random.Random(k)
        index = rng.randint(0, 3)
        rgb_rel, depth_rel = lines[index].split()
        image, depth, _ = reference_sample(root / rgb_rel, root / depth_rel, LOAD_SIZE, rng)
        item = drawn[k]
        assert item["index"] == index
        np.testing.assert_allclose(item["depth"].numpy(), depth, atol=1e-6)
        np.testing.assert_allclose(item["image"].numpy(), image, atol=1e-6)
        picked.add(index)
    assert len(picked) > 1


def test_sampling_flag():
    base = ["--train_stage", "TrainStructDecoder", "--syn_root", "r", "--syn_train_datafile", "l",
            "--Shared_Struct_Encoder_path", "se"]
    assert parse_train_args(base).sampling == "with_replacement"
    assert parse_train_args([*base, "--sampling", "permutation"]).sampling == "permutation"
