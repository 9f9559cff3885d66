"""KITTI Eigen / NYUD-v2 test sets (docs/release.md §2.2, §2.3): list parsing, clear errors, image tensors
and depth units."""
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from datasets import DatasetError, KITTIEigenTest, NYUDv2Test, collate_eval

from . import reference
from .synthetic import write_kitti, write_nyu


@pytest.fixture()
def kitti(tmp_path):
    list_file = write_kitti(tmp_path, [("2011_09_26", 0), ("2011_09_30", 7)])
    return tmp_path, list_file, list_file.read_text().splitlines()


def write_list(path: Path, lines) -> Path:
    path.write_text("\n".join(lines) + "\n")
    return path


def test_kitti_items(kitti):
    root, list_file, lines = kitti
    ds = KITTIEigenTest(str(root), str(list_file), (96, 320))
    assert len(ds) == 2
    item = ds[1]
    left = root / lines[1].split()[0]
    assert item["index"] == 1 and item["path"] == str(left)
    assert torch.equal(item["image"], reference.network_input(left, (96, 320))[0])
    assert item["depth"].shape == (60, 200) and item["depth"].dtype == np.float64
    calib, velo = lines[1].split()[2:]
    assert np.array_equal(item["depth"], reference.kitti_gt(root / calib, root / velo, (60, 200)))


def test_collate_keeps_ground_truth_sizes_apart(kitti):
    root, list_file, _ = kitti
    ds = KITTIEigenTest(str(root), str(list_file), (96, 160))
    batch = collate_eval([ds[0], ds[1]])
    assert batch["image"].shape == (2, 3, 96, 160)
    assert batch["index"].tolist() == [0, 1]
    assert [d.shape for d in batch["depth"]] == [(64, 208), (60, 200)]
    assert len(batch["path"]) == 2


def test_real_kitti_image_tensor(kitti_raw_list):
    root, list_file = kitti_raw_list
    ds = KITTIEigenTest(str(root), str(list_file))
    assert ds.load_size == (192, 640)
    item = ds[2]
    image = reference.network_input(Path(item["path"]), (192, 640))[0]
    assert torch.equal(item["image"], image)
    assert item["image"].min() >= -1 and item["image"].max() <= 1 and item["depth"].shape == (375, 1242)


def test_blank_lines_are_skipped(kitti, tmp_path):
    root, _, lines = kitti
    list_file = write_list(tmp_path / "blanks.txt", ["", lines[0], "   ", lines[1], ""])
    assert len(KITTIEigenTest(str(root), str(list_file))) == 2


@pytest.mark.parametrize("case, pattern", [
    ("three_fields", r"bad\.txt, line 2: expected 4 space-separated fields, got 'a b c'"),
    ("five_fields", r"bad\.txt, line 2: expected 4 space-separated fields"),
    ("missing_image", r"bad\.txt, line 2: file not found: .*/image_02/data/0000000099\.png"),
    ("missing_velodyne", r"bad\.txt, line 2: file not found: .*/velodyne_points/data/0000000099\.bin"),
    ("missing_calib", r"bad\.txt, line 2: file not found: .*/2011_10_03"),
])
def test_kitti_list_errors_name_file_line_and_path(kitti, tmp_path, case, pattern):
    root, _, lines = kitti
    left, right, calib, velo = lines[1].split()
    bad = {"three_fields": "a b c",
           "five_fields": f"{lines[1]} extra",
           "missing_image": f"{left.replace('0000000007', '0000000099')} {right} {calib} {velo}",
           "missing_velodyne": f"{left} {right} {calib} {velo.replace('0000000007', '0000000099')}",
           "missing_calib": f"{left} {right} 2011_10_03 {velo}"}[case]
    list_file = write_list(tmp_path / "bad.txt", [lines[0], bad])
    with pytest.raises(DatasetError, match=pattern):
        KITTIEigenTest(str(root), str(list_file))


def test_empty_and_missing_lists(tmp_path):
    empty = write_list(tmp_path / "empty.txt", ["", "  "])
    with pytest.raises(DatasetError, match=r"list file is empty: .*empty\.txt"):
        KITTIEigenTest(str(tmp_path), str(empty))
    with pytest.raises(DatasetError, match=r"list file not found: .*absent\.csv"):
        NYUDv2Test(str(tmp_path), str(tmp_path / "absent.csv"))


def test_calibration_errors(kitti):
    root, list_file, lines = kitti
    calib_dir = root / lines[0].split()[2]
    ds = KITTIEigenTest(str(root), str(list_file))
    text = (calib_dir / "calib_cam_to_cam.txt").read_text()
    (calib_dir / "calib_cam_to_cam.txt").write_text(
        "\n".join(l for l in text.splitlines() if not l.startswith("P_rect_02")))
    with pytest.raises(DatasetError, match=r"test\.txt, line 1: malformed KITTI calibration "
                                           r".*2011_09_26/calib_cam_to_cam\.txt: no numeric 'P_rect_02' line"):
        ds[0]
    (calib_dir / "calib_cam_to_cam.txt").unlink()
    with pytest.raises(DatasetError, match=r"test\.txt, line 1: cannot read calibration file "
                                           r".*calib_cam_to_cam\.txt"):
        ds[0]


def test_velodyne_scan_of_the_wrong_size(kitti):
    root, list_file, lines = kitti
    velo = root / lines[1].split()[3]
    velo.write_bytes(velo.read_bytes()[:-4])
    ds = KITTIEigenTest(str(root), str(list_file))
    with pytest.raises(DatasetError, match=r"test\.txt, line 2: velodyne scan .*0000000007\.bin is not a "
                                           r"float32 N x 4 array"):
        ds[1]


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_corrupt_image_names_line_and_file(kitti, damage):
    root, list_file, lines = kitti
    left = root / lines[0].split()[0]
    data = left.read_bytes()
    left.write_bytes(b"\x89PNG not really" if damage == "garbage" else data[: len(data) // 2])
    ds = KITTIEigenTest(str(root), str(list_file))
    with pytest.raises(DatasetError, match=rf"test\.txt, line 1: cannot read image {left}"):
        ds[0]


def test_nyu_items_and_depth_in_metres(tmp_path):
    list_file = write_nyu(tmp_path, 2)
    ds = NYUDv2Test(str(tmp_path), str(list_file), (96, 128))
    assert ds.load_size == (96, 128) and len(ds) == 2
    item = ds[1]
    raw = np.asarray(Image.open(tmp_path / "data/nyu2_test/00001_depth.png"))
    assert raw.dtype == np.uint16
    assert np.array_equal(item["depth"], raw.astype(np.float64) / 1000)
    assert item["depth"].max() <= 9.5 and (item["depth"] == 0).any()
    assert torch.equal(item["image"], reference.network_input(tmp_path / "data/nyu2_test/00001_colors.png",
                                                              (96, 128))[0])


def test_nyu_defaults_on_the_real_pair(shared_data, tmp_path):
    folder = shared_data / "nyu_depth_v2" / "unidepth_demo"
    list_file = write_list(tmp_path / "nyu.csv", ["unidepth_demo/rgb.png,unidepth_demo/depth.png"])
    item = NYUDv2Test(str(folder.parent), str(list_file))[0]
    assert item["image"].shape == (3, 192, 256)
    assert torch.equal(item["image"], reference.network_input(folder / "rgb.png", (192, 256))[0])
    assert item["depth"].shape == (480, 640)
    assert item["depth"].max() == 10.0 and item["depth"][item["depth"] > 0].min() == pytest.approx(1.653)


@pytest.mark.parametrize("line, pattern", [
    ("data/nyu2_test/00000_colors.png", r"nyu\.csv, line 2: expected 2 comma-separated fields"),
    ("a.png,b.png,c.png", r"nyu\.csv, line 2: expected 2 comma-separated fields"),
    ("data/nyu2_test/00000_colors.png,", r"nyu\.csv, line 2: expected 2 comma-separated fields"),
    ("data/nyu2_test/00000_colors.png,data/nyu2_test/missing_depth.png",
     r"nyu\.csv, line 2: file not found: .*missing_depth\.png"),
])
def test_nyu_csv_errors(tmp_path, line, pattern):
    write_nyu(tmp_path, 1)
    list_file = write_list(tmp_path / "nyu.csv",
                           ["data/nyu2_test/00000_colors.png,data/nyu2_test/00000_depth.png", line])
    with pytest.raises(DatasetError, match=pattern):
        NYUDv2Test(str(tmp_path), str(list_file))


def test_nyu_depth_that_is_not_single_channel(tmp_path):
    list_file = write_nyu(tmp_path, 1)
    shutil.copy(tmp_path / "data/nyu2_test/00000_colors.png", tmp_path / "data/nyu2_test/00000_depth.png")
    with pytest.raises(DatasetError, match=r"nyu2_test\.csv, line 1: depth image .*00000_depth\.png has PIL "
                                           r"mode 'RGB'; NYUD-v2 depth must be a 16-bit PNG in millimetres"):
        NYUDv2Test(str(tmp_path), str(list_file))[0]
