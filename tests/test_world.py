"""Tests of the procedural sample world (sample_world/world.py, make_world.py) on the tiny preset.

The world stands in for real datasets, so besides the on-disk layouts these check that its
pieces agree with each other: velodyne scans projected the KITTI way land on the rendered
geometry, and vKITTI RGB and depth come from the same scene.
"""
import hashlib
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sample_world import world as sample_world
from sample_world.world import PRESETS, generate_world

from . import reference

REPO = Path(__file__).resolve().parents[1]
TINY = PRESETS["tiny"]


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("world")
    manifest = generate_world(out, seed=0, preset="tiny", progress=False)
    assert json.loads((out / "world.json").read_text()) == manifest
    return out


def _digests(root: Path) -> dict:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def _lines(path: Path) -> list[str]:
    return path.read_text().splitlines()


def _array(path: Path) -> np.ndarray:
    return np.array(Image.open(path))


# ----------------------------------------------------------------------------- determinism
def test_same_seed_gives_identical_files_whatever_the_workers(world, tmp_path):
    generate_world(tmp_path, seed=0, preset="tiny", progress=False, workers=1)
    assert _digests(tmp_path) == _digests(world)


def test_other_seed_gives_other_data_in_the_same_layout(world, tmp_path):
    generate_world(tmp_path, seed=1, preset="tiny", progress=False, workers=1)
    a, b = _digests(world), _digests(tmp_path)
    assert a.keys() == b.keys()
    data = [k for k in a if k.endswith((".png", ".bin"))]
    assert data and all(a[k] != b[k] for k in data)


# ----------------------------------------------------------------------------- layouts
def test_manifest_lists_and_counts(world):
    m = json.loads((world / "world.json").read_text())
    assert (m["seed"], m["preset"]) == (0, "tiny")
    expected = {"vkitti": ("vkitti", "vkitti/train.txt"), "kitti": ("kitti", "kitti/test.txt"),
                "nyu": ("nyu", "nyu/nyu2_test.csv"), "style": ("style", "style/list.txt")}
    for name, (root, listing) in expected.items():
        assert (m[name]["root"], m[name]["list"]) == (root, listing)
        assert m[name]["count"] == len(_lines(world / listing)) > 0
    assert m["vkitti"]["count"] == TINY["vkitti_worlds"] * TINY["vkitti_frames"] * len(TINY["variants"])


def test_vkitti_layout(world):
    root = world / "vkitti"
    pattern = re.compile(r"rgb/(\d{4})/([a-z]+)/(\d{5})\.png depth/\1/\2/\3\.png")
    for line in _lines(root / "train.txt"):
        assert pattern.fullmatch(line), line
        rgb_rel, depth_rel = line.split()
        rgb, depth = Image.open(root / rgb_rel), Image.open(root / depth_rel)
        assert rgb.mode == "RGB" and rgb.size == TINY["vkitti_size"]
        assert depth.mode == "I;16" and depth.size == TINY["vkitti_size"]
        assert np.array(depth).dtype == np.uint16
    # the variants restyle one geometry, so their depth maps are the same
    assert (root / "depth/0001/clone/00000.png").read_bytes() == (root / "depth/0001/fog/00000.png").read_bytes()
    assert (root / "rgb/0001/clone/00000.png").read_bytes() != (root / "rgb/0001/fog/00000.png").read_bytes()


def test_kitti_raw_layout_and_calibration(world):
    root = world / "kitti"
    w, h = TINY["kitti_size"]
    lines = _lines(root / "test.txt")
    assert len(lines) == TINY["kitti_drives"] * TINY["kitti_frames"]
    for line in lines:
        left, right, date, velo = line.split(" ")
        assert re.fullmatch(rf"{date}/{date}_drive_\d{{4}}_sync/image_02/data/\d{{10}}\.png", left)
        assert right == left.replace("image_02", "image_03")
        assert velo == left.replace("image_02", "velodyne_points").replace(".png", ".bin")
        for rel in (left, right):
            img = Image.open(root / rel)
            assert img.mode == "RGB" and img.size == (w, h)
        assert (root / left).read_bytes() != (root / right).read_bytes()
        raw = (root / velo).read_bytes()
        assert len(raw) % 16 == 0
        pts = np.frombuffer(raw, dtype="<f4").reshape(-1, 4)
        assert len(pts) > 10000 and np.isfinite(pts).all()
        assert pts[:, 3].min() >= 0 and pts[:, 3].max() <= 1
        assert np.linalg.norm(pts[:, :3], axis=1).max() <= 120.5
    cam = reference.read_calib(root / date / "calib_cam_to_cam.txt")
    velo_calib = reference.read_calib(root / date / "calib_velo_to_cam.txt")
    for key in ("P_rect_02", "P_rect_03", "R_rect_00", "S_rect_02"):
        assert key in cam
    assert velo_calib["R"].shape == (9,) and velo_calib["T"].shape == (3,)
    p2, p3 = cam["P_rect_02"].reshape(3, 4), cam["P_rect_03"].reshape(3, 4)
    assert tuple(cam["S_rect_02"]) == (w, h)
    np.testing.assert_allclose(p2[0, 0], 721.5377 * w / 1242, rtol=1e-6)
    np.testing.assert_allclose(p2[1, 2], 172.854 * h / 375, rtol=1e-6)
    assert (p2[0, 3] - p3[0, 3]) / p2[0, 0] == pytest.approx(0.54, abs=0.01)
    r = velo_calib["R"].reshape(3, 3)
    np.testing.assert_allclose(r @ r.T, np.eye(3), atol=1e-5)
    # velodyne x (forward) maps to camera z, velodyne z (up) to camera -y; ~27 cm behind, ~8 cm up
    assert r[2, 0] > 0.99 and r[1, 2] < -0.99
    assert velo_calib["T"][2] == pytest.approx(-0.27, abs=0.03)
    assert velo_calib["T"][1] == pytest.approx(-0.08, abs=0.03)


def test_nyu_layout(world):
    root = world / "nyu"
    for line in _lines(root / "nyu2_test.csv"):
        colors, depth = line.split(",")
        assert re.fullmatch(r"data/nyu2_test/(\d{5})_colors\.png", colors)
        assert depth == colors.replace("_colors", "_depth")
        rgb, d = Image.open(root / colors), Image.open(root / depth)
        assert rgb.mode == "RGB" and rgb.size == TINY["nyu_size"]
        assert d.mode == "I;16" and d.size == TINY["nyu_size"]
        mm = np.array(d)
        assert mm.dtype == np.uint16 and 300 < mm[mm > 0].min() and mm.max() < 10000  # indoor, in mm


def test_style_layout(world):
    lines = _lines(world / "style" / "list.txt")
    assert len(lines) == TINY["style_images"]
    for rel in lines:
        img = Image.open(world / "style" / rel)
        assert img.mode == "RGB" and img.size == TINY["style_size"]


# ----------------------------------------------------------------------------- geometry
def rendered_depth(out_dir: Path, index: int) -> np.ndarray:
    """Line ``index`` of ``kitti/test.txt`` re-rendered from world.json as the left camera
    (P_rect_02) sees it: (H, W) z-depth in metres, ``inf`` on sky."""
    manifest = json.loads((out_dir / "world.json").read_text())
    cfg = sample_world.WorldConfig(**manifest["config"])
    drive, frame = divmod(index, cfg.kitti_frames)
    scene, step, _ = sample_world._kitti_drive(manifest["seed"], drive, cfg.kitti_frames)
    rot, centre = sample_world._street_pose(scene.info["path"], frame * sample_world.KITTI_FRAME_STRIDE, step)
    rig = sample_world._kitti_rig(manifest["seed"], cfg.kitti_size)
    hits, _ = sample_world._render(scene, sample_world._kitti_camera(rig, rot, centre, "02"), sample_world.CAMERA_FAR)
    return hits.t


def test_velodyne_projection_agrees_with_rendered_depth(world):
    root = world / "kitti"
    w, h = TINY["kitti_size"]
    for i, line in enumerate(_lines(root / "test.txt")):
        _, _, date, velo = line.split(" ")
        gt = reference.kitti_gt(root / date, root / velo, (h, w))
        dense = rendered_depth(world, i)
        assert dense.shape == (h, w)
        hit = gt > 0
        assert hit.sum() > 0.05 * h * w
        assert np.isfinite(dense[hit]).mean() > 0.99
        rel = np.abs(gt[hit] - dense[hit]) / gt[hit]
        # exact up to range noise, sub-pixel spread and occlusion seen from the lidar's viewpoint
        assert np.median(rel) < 0.01
        assert np.mean(rel < 0.05) > 0.93


def test_vkitti_rgb_and_depth_come_from_one_geometry(world):
    root = world / "vkitti"
    depth = _array(root / "depth/0001/clone/00000.png").astype(np.float64)
    clear = _array(root / "rgb/0001/clone/00000.png").astype(np.float64)
    fog = _array(root / "rgb/0001/fog/00000.png").astype(np.float64)
    sky = depth == 65535
    assert sky.any() and (~sky).any() and depth[~sky].max() < 65535
    # the sky is blue in the clear variant and one flat colour in fog, exactly on the depth's sky
    blue = clear[..., 2] - clear[..., 0]
    assert blue[sky].mean() > 40 > blue[~sky].mean()
    fog_colour = fog[sky].mean(0)
    assert fog[sky].std(0).max() < 1.0
    # fog thickens with distance: pixels far away are closer to the fog colour
    far_gap = np.abs(fog - fog_colour).sum(-1)
    d = depth[~sky]
    assert far_gap[~sky][d > np.percentile(d, 80)].mean() < 0.5 * far_gap[~sky][d < np.percentile(d, 20)].mean()
    # the road recedes towards the horizon as a plane seen from 1.65 m: along an image column the
    # inverse depth of a plane is affine in the row, with slope cos(pitch) / (fy * height)
    h, w = depth.shape
    fy, cy = 725.0087 * h / 375, 187.0 * h / 375
    rows = np.arange(int(cy) + h // 8, h)
    column = depth[rows, w // 2] / 100.0
    assert np.all(np.diff(column) < 0)
    slope, offset = np.polyfit(rows, 1 / column, 1)
    assert np.abs(slope * rows + offset - 1 / column).max() < 1e-3
    assert 1 / (fy * slope) == pytest.approx(1.65, rel=0.02)
    # depth discontinuities are image edges too
    logd = np.log(depth)
    jump = np.abs(np.diff(logd, axis=1)) > 0.3
    grad = np.abs(np.diff(clear, axis=1)).sum(-1)
    assert grad[jump].mean() > 2 * grad[~jump].mean()


# ----------------------------------------------------------------------------- CLI
def test_cli_writes_world(tmp_path):
    out = tmp_path / "cli"
    done = subprocess.run([sys.executable, "make_world.py", "--preset", "tiny", "--out_dir", str(out), "--quiet",
                           "--workers", "1", "--style_images", "1"],
                          cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    manifest = json.loads((out / "world.json").read_text())
    assert manifest["style"]["count"] == 1
    assert str(out / "kitti" / "test.txt") in done.stdout.strip().splitlines()[-1]
