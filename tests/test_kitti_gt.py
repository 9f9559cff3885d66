"""KITTI ground truth (docs/release.md §2.2): velodyne projection on real and hand-built scans, and the
export_gt_depth.py cache."""
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import export_gt_depth
from datasets import DatasetError, GTCache, KITTIEigenTest, generate_depth_map
from datasets.common import ListEntry
from datasets.kitti import project_to_depth
from utils.errors import exit_on_user_error

from . import reference
from .synthetic import write_kitti

ROOT = Path(__file__).resolve().parents[1]

# Depth row x + 10, so a point behind the sensor (x < 0) would still project in front of the camera.
P_AHEAD = np.array([[0, 1, 0, 0], [0, 0, 1, 0], [1, 0, 0, 10]], dtype=np.float64)


def velo_point(u: float, v: float, depth: float, proj_offset: float = 10) -> list:
    """The velodyne point that P_AHEAD-like matrices map to pixel coordinates (u, v) at ``depth``."""
    return [depth - proj_offset, u * depth, v * depth, 1.0]


def test_real_frames_match_an_independent_projection(kitti_raw_list):
    root, list_file = kitti_raw_list
    for line in Path(list_file).read_text().split("\n")[:6]:
        left, _, calib, velo = line.split()
        shape = Image.open(root / left).size[::-1]
        assert shape == (375, 1242)
        want = reference.kitti_gt(root / calib, root / velo, shape)
        got = generate_depth_map(str(root / calib), str(root / velo), shape)
        assert got.dtype == np.float64 and got.shape == shape
        assert np.array_equal(got, want)
        assert 15000 < np.count_nonzero(got) < 18000 and 2.0 < got[got > 0].min() < got.max() < 80


def test_hand_built_cases():
    points = np.array([
        velo_point(3.2, 1.9, 16),   # two points on pixel (row 1, col 2): the nearer one wins,
        velo_point(3.0, 2.0, 12),   # whatever their order in the scan
        velo_point(2.5, 3.0, 16),   # round half to even: round(2.5) = 2 -> col 1
        velo_point(3.5, 3.0, 32),   # round(3.5) = 4 -> col 3
        velo_point(5.0, 1.0, 8),    # x = -2 < 0: behind the sensor, dropped although depth 8 > 0
        velo_point(1.0, 1.0, 10),   # x = 0 exactly: kept
        velo_point(0.5, 2.0, 16),   # round(0.5) = 0 -> col -1: outside
        velo_point(6.6, 2.0, 16),   # col 6 = W: outside
        velo_point(2.0, 4.6, 16),   # row 4 = H: outside
        velo_point(2.0, -3.0, 16),  # negative row: outside
        velo_point(0.6, 4.4, 20),   # col 0, row 3: the last pixel inside at each edge
    ], dtype=np.float32)
    expected = np.zeros((4, 6))
    expected[1, 2] = 12
    expected[2, 1] = 16
    expected[2, 3] = 32
    expected[0, 0] = 10
    expected[3, 0] = 20
    assert np.array_equal(project_to_depth(points, P_AHEAD, (4, 6)), expected)
    assert np.array_equal(project_to_depth(points[::-1].copy(), P_AHEAD, (4, 6)), expected)
    assert np.array_equal(reference.project(points, P_AHEAD, (4, 6)), expected)


def test_value_is_camera_depth_and_negatives_become_zero():
    behind_camera = P_AHEAD.copy()
    behind_camera[2, 3] = -10  # depth = x - 10: negative for 0 <= x < 10
    points = np.array([
        velo_point(3.0, 2.0, -5, -10),   # x = 5, depth -5 ...
        velo_point(3.0, 2.0, 5, -10),    # ... beats depth 5 on the same pixel, then becomes 0
        velo_point(1.0, 1.0, 30, -10),   # x = 40, camera depth 30 (not the lidar x)
    ], dtype=np.float32)
    got = project_to_depth(points, behind_camera, (4, 6))
    expected = np.zeros((4, 6))
    expected[0, 0] = 30
    assert np.array_equal(got, expected)


def release_and_ours(root: Path, list_file: Path):
    """(ours, the release's, Garg crop) for every frame of a KITTI list."""
    for line in Path(list_file).read_text().splitlines():
        left, _, calib, velo = line.split()
        shape = Image.open(root / left).size[::-1]
        ours = generate_depth_map(str(root / calib), str(root / velo), shape)
        yield ours, reference.release_kitti_gt(root / calib, root / velo, shape), reference.crop_region(shape, "garg")


def test_release_procedure_agrees_inside_the_crop_on_real_frames(kitti_raw_list):
    """D1: the release's sub2ind key only merges column W-1 of a row with column 0 of the next, so the
    two maps may differ there and nowhere else. On these six frames they differ at two pixels, both in
    column 0 (frames 26 and 36)."""
    root, list_file = kitti_raw_list
    differing = []
    for ours, release, crop in release_and_ours(root, list_file):
        assert np.count_nonzero(ours[crop]) > 10000
        assert np.array_equal(ours[crop], release[crop])
        differing += [tuple(p) for p in np.argwhere(ours != release)]
    assert {col for _, col in differing} <= {0, 1241}
    assert len(differing) == 2


def test_release_procedure_agrees_everywhere_on_generated_frames(tiny_world):
    for ours, release, crop in release_and_ours(tiny_world / "kitti", tiny_world / "kitti" / "test.txt"):
        assert np.count_nonzero(ours[crop]) > 2000
        assert np.array_equal(ours, release)


def test_release_sub2ind_merges_a_rows_last_pixel_with_the_next_rows_first():
    """W = 6: pixel (1, 5) and pixel (2, 0) share the release's key 2·5 - 1 = 9. Its first point's
    pixel gets the group minimum, the other keeps the last depth written on it; ours keeps each
    pixel's own minimum."""
    points = np.array([
        velo_point(6.0, 2.0, 20),   # (row 1, col 5): the group's first point
        velo_point(1.0, 3.0, 12),   # (row 2, col 0)
        velo_point(1.0, 3.0, 16),   # (row 2, col 0), written last there
        velo_point(3.0, 1.0, 30),   # (row 0, col 2): a pixel of its own
    ], dtype=np.float32)
    release = reference.release_depth(reference.image_points(points, P_AHEAD, (4, 6)), (4, 6))
    expected = np.zeros((4, 6))
    expected[1, 5], expected[2, 0], expected[0, 2] = 12, 16, 30
    assert np.array_equal(release, expected)
    expected[1, 5], expected[2, 0] = 20, 12
    assert np.array_equal(project_to_depth(points, P_AHEAD, (4, 6)), expected)


@pytest.fixture(scope="module")
def exported_cache(kitti_raw_list, tmp_path_factory):
    root, list_file = kitti_raw_list
    out = tmp_path_factory.mktemp("gt_cache") / "gt.npz"
    run = subprocess.run([sys.executable, "export_gt_depth.py", "--root", str(root), "--test_datafile",
                          str(list_file), "--output", str(out)], cwd=ROOT, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert "wrote ground truth of 6 frames" in run.stdout
    assert [p.name for p in out.parent.iterdir()] == ["gt.npz"]
    return out


def test_cache_is_bit_identical(kitti_raw_list, exported_cache):
    root, list_file = kitti_raw_list
    direct = KITTIEigenTest(str(root), str(list_file), (96, 320))
    cached = KITTIEigenTest(str(root), str(list_file), (96, 320), gt_cache=str(exported_cache))
    assert len(cached) == 6
    for i in range(6):
        a, b = direct.ground_truth(i), cached.ground_truth(i)
        assert a.dtype == b.dtype == np.float64 and np.array_equal(a, b)
        assert np.count_nonzero(b) > 15000


def test_stale_cache_is_a_clear_error(kitti_raw_list, exported_cache, tmp_path):
    root, list_file = kitti_raw_list
    lines = Path(list_file).read_text().splitlines()
    shorter = tmp_path / "five.txt"
    shorter.write_text("\n".join(lines[:5]) + "\n")
    with pytest.raises(DatasetError, match=r"holds 6 frames but .*five\.txt has 5.*export_gt_depth"):
        KITTIEigenTest(str(root), str(shorter), gt_cache=str(exported_cache))
    swapped = tmp_path / "swapped.txt"
    swapped.write_text("\n".join([lines[0], lines[2], lines[1]] + lines[3:]) + "\n")
    with pytest.raises(DatasetError, match=r"swapped\.txt, line 2: .*differs from the ground-truth cache"):
        KITTIEigenTest(str(root), str(swapped), gt_cache=str(exported_cache))
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"not a cache at all" * 10)
    with pytest.raises(DatasetError, match=r"garbage\.npz is not a ground-truth cache"):
        KITTIEigenTest(str(root), str(list_file), gt_cache=str(garbage))
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(exported_cache.read_bytes()[:1000])
    with pytest.raises(DatasetError, match=r"truncated\.npz is not a ground-truth cache"):
        KITTIEigenTest(str(root), str(list_file), gt_cache=str(truncated))
    with pytest.raises(DatasetError, match=r"missing\.npz is not a ground-truth cache"):
        KITTIEigenTest(str(root), str(list_file), gt_cache=str(tmp_path / "missing.npz"))


def test_cache_round_trip_on_synthetic_frames(tmp_path):
    list_file = write_kitti(tmp_path, [("2011_09_26", 0), ("2011_09_30", 3)])
    direct = KITTIEigenTest(str(tmp_path), str(list_file), (96, 320))
    depths = [direct.ground_truth(i) for i in range(2)]
    assert depths[0].shape == (64, 208) and depths[1].shape == (60, 200)
    cache = tmp_path / "gt.npz"
    GTCache.write(str(cache), direct.entries, depths)
    cached = KITTIEigenTest(str(tmp_path), str(list_file), (96, 320), gt_cache=str(cache))
    assert all(np.array_equal(cached.ground_truth(i), depths[i]) for i in range(2))


def test_cache_stores_sparse_and_dense_maps_exactly(tmp_path):
    """Lidar-like maps (few valid pixels, float64 depths) keep their non-zero pixels in float64;
    maps valid almost everywhere with float32 values (Make3D, NYU) are stored whole in float32."""
    rng = np.random.default_rng(0)
    sparse = np.zeros((20, 30))
    sparse.flat[rng.choice(300, 50, replace=False)] = rng.uniform(1, 80, 50)   # rows 0-9; not float32-exact
    dense = rng.uniform(1, 10, (20, 30)).astype(np.float32).astype(np.float64)
    dense[0, :5] = 0.0
    for name, maps, want_dense, want_dtype, want_values in (
            ("sparse", [sparse, sparse[:10]], False, np.float64, 100),
            ("dense", [dense, dense[:, :10]], True, np.float32, 800)):
        path = tmp_path / f"{name}.npz"
        GTCache.write(str(path), [ListEntry(("a",), "list.txt", 1), ListEntry(("b",), "list.txt", 2)], maps)
        with np.load(path) as f:
            assert bool(f["dense"]) is want_dense and f["depth"].dtype == want_dtype
            assert f["depth"].size == want_values
        cache = GTCache(str(path))
        for i, want in enumerate(maps):
            got = cache[i]
            assert got.dtype == np.float64 and np.array_equal(got, want)


def test_export_bad_list_is_one_clear_error(tmp_path, capsys):
    list_file = tmp_path / "bad.txt"
    list_file.write_text("only three fields\n")
    with pytest.raises(SystemExit) as exit_info, exit_on_user_error():
        export_gt_depth.main(["--root", str(tmp_path), "--test_datafile", str(list_file),
                              "--output", str(tmp_path / "gt.npz")])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err == (f"error: {list_file}, line 1: expected 4 space-separated fields, "
                                       f"got 'only three fields'\n")
    assert not (tmp_path / "gt.npz").exists()
