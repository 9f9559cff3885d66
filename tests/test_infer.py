"""infer.py end to end on real KITTI/NYU images with seeded random weights, its writers (16-bit
PNG, PLY, maps, figures), and test.py --save_pred --vis."""
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

import infer
from datasets.common import DatasetError
from datasets.images import collect_inputs, output_names
from utils.checkpoint import load_s2r
from inference.depth_io import PANEL_GAP, comparison_figure, depth_to_uint16, dilate_sparse
from inference.pointcloud import Intrinsics, backproject, read_kitti_intrinsics, write_ply

from .conftest import checkpoint_args

DRIVE = "kitti_raw/2011_09_26/2011_09_26_drive_0052_sync"
LOAD_SIZE = (96, 128)
KITTI_SHAPE = (375, 1242)
NYU_SHAPE = (480, 640)
# P_rect_02 and S_rect_02 of the sample's calib_cam_to_cam.txt
KITTI_K = dict(fx=721.5377, fy=721.5377, cx=609.5593, cy=172.854)


def read_ply(path: Path):
    """(points (N, 3) float32, colours (N, 3) uint8) of a PLY with x y z red green blue vertices."""
    data = path.read_bytes()
    end = data.index(b"end_header\n") + len(b"end_header\n")
    header = data[:end].decode("ascii").splitlines()
    assert header[0] == "ply"
    fmt = header[1].split()[1]
    count = int(next(line for line in header if line.startswith("element vertex")).split()[2])
    props = [line.split()[1:] for line in header if line.startswith("property")]
    assert props == [["float", "x"], ["float", "y"], ["float", "z"],
                     ["uchar", "red"], ["uchar", "green"], ["uchar", "blue"]]
    if fmt == "binary_little_endian":
        assert len(data) - end == count * 15
        vertex = np.frombuffer(data, dtype=[("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("red", "u1"),
                                            ("green", "u1"), ("blue", "u1")], offset=end)
        rows = [vertex[name] for name in vertex.dtype.names]
        return np.stack(rows[:3], axis=1), np.stack(rows[3:], axis=1)
    assert fmt == "ascii"
    rows = [tuple(float(v) for v in line.split()) for line in data[end:].decode("ascii").splitlines()]
    assert len(rows) == count
    table = np.array(rows, dtype=np.float64).reshape(count, 6)
    return table[:, :3].astype(np.float32), table[:, 3:].astype(np.uint8)


def network_input(image_path: Path, load_size=LOAD_SIZE) -> torch.Tensor:
    """(1, 3, h, w) in [-1, 1], the preprocessing written out by hand."""
    img = Image.open(image_path).convert("RGB").resize(load_size[::-1], Image.BICUBIC)
    x = (np.asarray(img, dtype=np.float32) / 255.0 - 0.5) / 0.5
    return torch.from_numpy(x).permute(2, 0, 1)[None]


def reference_outputs(paths: dict, image: torch.Tensor):
    with torch.no_grad():
        return load_s2r(paths).eval()(image)


def upsample(t: torch.Tensor, shape) -> np.ndarray:
    return F.interpolate(t, size=shape, mode="bilinear", align_corners=True)[0, 0].numpy()


@pytest.fixture(scope="module")
def bad_inputs(tmp_path_factory, shared_data) -> dict:
    folder = tmp_path_factory.mktemp("bad")
    corrupt = folder / "corrupt.png"
    corrupt.write_bytes((shared_data / DRIVE / "image_02/data/0000000014.png").read_bytes()[:3000])
    text = folder / "notes.png"
    text.write_text("this is not an image\n")
    return {"corrupt": corrupt, "text": text, "missing": folder / "missing.png"}


@pytest.fixture(scope="module")
def infer_run(tmp_path_factory, shared_data, random_checkpoints, bad_inputs):
    """One infer.py run over two KITTI frames that share a stem, a corrupt PNG and the NYU image,
    with every optional output enabled."""
    out = tmp_path_factory.mktemp("infer_out")
    inputs = [shared_data / DRIVE / "image_02/data/0000000000.png",
              shared_data / DRIVE / "image_03/data/0000000000.png",
              bad_inputs["corrupt"],
              shared_data / "nyu_depth_v2/unidepth_demo/rgb.png"]
    argv = ["--input", *map(str, inputs), "--out_dir", str(out), "--loadSize", *map(str, LOAD_SIZE),
            "--batchSize", "2", "--nThreads", "0", "--device", "cpu", "--save_16bit", "--save_ply",
            "--calib", str(shared_data / "kitti_raw/2011_09_26/calib_cam_to_cam.txt"), "--save_maps",
            "--save_overview", *checkpoint_args(random_checkpoints)]
    return {"rc": infer.main(argv), "out": out, "inputs": inputs,
            "stems": {"image_02_data_0000000000": inputs[0], "image_03_data_0000000000": inputs[1],
                      "rgb": inputs[3]}}


def test_infer_writes_every_output(infer_run):
    out = infer_run["out"]
    assert infer_run["rc"] == 0
    stems = {"image_02_data_0000000000": KITTI_SHAPE, "image_03_data_0000000000": KITTI_SHAPE,
             "rgb": NYU_SHAPE}
    expected = {f"{s}_{kind}" for s in stems for kind in
                ("depth.npy", "depth.png", "depth16.png", "points.ply", "structure.png", "attention.png",
                 "overview.png")}
    assert {p.name for p in out.iterdir()} == expected  # nothing for the corrupt input
    for stem, (h, w) in stems.items():
        depth = np.load(out / f"{stem}_depth.npy")
        assert depth.dtype == np.float32 and depth.shape == (h, w)
        assert 0 <= depth.min() and depth.max() <= 80
        color = np.asarray(Image.open(out / f"{stem}_depth.png"))
        assert color.dtype == np.uint8 and color.shape == (h, w, 3)
        assert len(np.unique(color.reshape(-1, 3), axis=0)) > 10
        for name in ("structure", "attention"):
            grey = Image.open(out / f"{stem}_{name}.png")
            assert grey.mode == "L" and grey.size == (w, h)
        overview = np.asarray(Image.open(out / f"{stem}_overview.png"))
        assert overview.shape == (2 * h + PANEL_GAP, w, 3)
        rgb = np.asarray(Image.open(infer_run["stems"][stem]))
        np.testing.assert_array_equal(overview[:h], rgb)
        np.testing.assert_array_equal(overview[h + PANEL_GAP:], color)
    # the two KITTI frames (left and right camera) differ, so each name got its own prediction
    assert not np.array_equal(np.load(out / "image_02_data_0000000000_depth.npy"),
                              np.load(out / "image_03_data_0000000000_depth.npy"))


def test_npy_and_maps_equal_the_network_output(infer_run, random_checkpoints):
    """The second image of a batch: depth = (o1 + 1) / 2 * 80 resized bilinearly (align_corners)."""
    image = infer_run["inputs"][1]
    ref = reference_outputs(random_checkpoints, network_input(image))
    expected = (upsample(ref.depth[-1], KITTI_SHAPE) + 1.0) / 2.0 * 80.0
    depth = np.load(infer_run["out"] / "image_03_data_0000000000_depth.npy")
    np.testing.assert_allclose(depth, expected, rtol=0, atol=2e-4)
    for name, t in (("structure", ref.structure), ("attention", ref.attention)):
        grey = np.asarray(Image.open(infer_run["out"] / f"image_03_data_0000000000_{name}.png"), np.float64)
        assert np.abs(grey - upsample(t, KITTI_SHAPE) * 255.0).max() <= 0.51


def test_post_process_averages_the_mirrored_prediction(shared_data, random_checkpoints, tmp_path):
    image = shared_data / "nyu_depth_v2/unidepth_demo/rgb.png"
    argv = ["--input", str(image), "--out_dir", str(tmp_path), "--loadSize", "96", "96", "--max_depth", "8",
            "--post_process", "--nThreads", "0", "--device", "cpu", *checkpoint_args(random_checkpoints)]
    assert infer.main(argv) == 0
    x = network_input(image, (96, 96))
    both = reference_outputs(random_checkpoints, torch.cat([x, x.flip(-1)])).depth[-1]
    plain, mirrored = both[:1], both[1:].flip(-1)
    expected = (upsample((plain + mirrored) / 2, NYU_SHAPE) + 1.0) / 2.0 * 8.0
    np.testing.assert_allclose(np.load(tmp_path / "rgb_depth.npy"), expected, rtol=0, atol=2e-5)
    assert np.abs(expected - (upsample(plain, NYU_SHAPE) + 1.0) / 2.0 * 8.0).max() > 1e-4  # flipping matters


def test_16bit_png_round_trips(infer_run):
    for stem in ("image_02_data_0000000000", "rgb"):
        depth = np.load(infer_run["out"] / f"{stem}_depth.npy")
        png = Image.open(infer_run["out"] / f"{stem}_depth16.png")
        values = np.asarray(png)
        assert values.dtype == np.uint16 and values.shape == depth.shape
        assert np.abs(values / 256.0 - depth).max() <= 1 / 256


def test_depth_to_uint16_clips_and_rounds():
    depth = np.array([[-1.0, 0.0, 1 / 512 + 1e-9, 10.0], [255.99, 300.0, np.nan, 80.0]])
    np.testing.assert_array_equal(depth_to_uint16(depth), [[0, 0, 1, 2560], [65533, 65535, 0, 20480]])


def test_ply_points_back_project_to_their_pixels(infer_run):
    out = infer_run["out"]
    depth = np.load(out / "image_02_data_0000000000_depth.npy")
    points, colors = read_ply(out / "image_02_data_0000000000_points.ply")
    valid = depth > 0
    assert len(points) == valid.sum()
    rgb = np.asarray(Image.open(infer_run["inputs"][0]))
    rows, cols = np.nonzero(valid)
    k = KITTI_K  # the calibration's own size: no rescaling
    for n in (0, len(points) // 2, len(points) - 1):
        x, y, z = points[n].astype(np.float64)
        assert z == pytest.approx(depth[rows[n], cols[n]], rel=1e-6)
        assert k["fx"] * x / z + k["cx"] == pytest.approx(cols[n], abs=1e-3)
        assert k["fy"] * y / z + k["cy"] == pytest.approx(rows[n], abs=1e-3)
        np.testing.assert_array_equal(colors[n], rgb[rows[n], cols[n]])
    # NYU image (640x480) with the KITTI calibration (1242x375): intrinsics rescaled to its size
    nyu_depth = np.load(out / "rgb_depth.npy")
    nyu_points, _ = read_ply(out / "rgb_points.ply")
    rows, cols = np.nonzero(nyu_depth > 0)
    sx, sy = 640 / 1242, 480 / 375
    x, y, z = nyu_points[-1].astype(np.float64)
    assert k["fx"] * sx * x / z + (k["cx"] + 0.5) * sx - 0.5 == pytest.approx(cols[-1], abs=1e-3)
    assert k["fy"] * sy * y / z + (k["cy"] + 0.5) * sy - 0.5 == pytest.approx(rows[-1], abs=1e-3)


def test_backproject_and_ascii_ply_by_hand(tmp_path):
    depth = np.array([[2.0, 0.0, 4.0], [np.nan, 1.0, -3.0]])
    points, mask = backproject(depth, Intrinsics(fx=2.0, fy=4.0, cx=1.0, cy=0.5))
    np.testing.assert_array_equal(mask, [[True, False, True], [False, True, False]])
    np.testing.assert_allclose(points, [[-1.0, -0.25, 2.0], [2.0, -0.5, 4.0], [0.0, 0.125, 1.0]])
    colors = np.array([[1, 2, 3], [250, 0, 7], [9, 9, 9]], dtype=np.uint8)
    for binary in (True, False):
        write_ply(tmp_path / "c.ply", points, colors, binary=binary)
        got_points, got_colors = read_ply(tmp_path / "c.ply")
        np.testing.assert_allclose(got_points, points, rtol=1e-6)
        np.testing.assert_array_equal(got_colors, colors)


def test_kitti_calibration_and_rescaling(shared_data, tmp_path):
    k = read_kitti_intrinsics(shared_data / "kitti_raw/2011_09_26/calib_cam_to_cam.txt")
    assert (k.fx, k.fy, k.cx, k.cy, k.size) == (KITTI_K["fx"], KITTI_K["fy"], KITTI_K["cx"], KITTI_K["cy"],
                                                (1242, 375))
    half = k.for_size(621, 187)
    assert half.fx == pytest.approx(KITTI_K["fx"] / 2)
    assert half.fy == pytest.approx(KITTI_K["fy"] * 187 / 375)
    assert half.cx == pytest.approx((KITTI_K["cx"] + 0.5) / 2 - 0.5)
    bad = tmp_path / "calib_cam_to_cam.txt"
    bad.write_text("calib_time: today\nK_02: 1 0 0 0 1 0 0 0 1\n")
    with pytest.raises(DatasetError, match=r"calib_cam_to_cam.txt: no 3x4 P_rect_02"):
        read_kitti_intrinsics(bad)


def test_unreadable_inputs_are_skipped_and_nothing_written_fails(bad_inputs, random_checkpoints, tmp_path,
                                                                  capsys):
    out = tmp_path / "out"
    argv = ["--input", *(str(p) for p in bad_inputs.values()), str(tmp_path / "*.jpg"),
            "--out_dir", str(out), "--loadSize", *map(str, LOAD_SIZE), "--nThreads", "1",
            "--device", "cpu", *checkpoint_args(random_checkpoints)]
    assert infer.main(argv) == 1
    err = capsys.readouterr().err
    assert f"warning: cannot read image {bad_inputs['corrupt']}: image file is truncated" in err
    assert f"warning: cannot read image {bad_inputs['text']}: cannot identify image file" in err
    assert f"warning: {bad_inputs['missing']}: no such file or folder" in err
    assert "no file matches the pattern" in err
    assert "skipped 4 input(s)" in err and "error: no depth was written" in err
    assert not out.exists()


def test_save_ply_without_intrinsics_fails_before_any_work(tmp_path, capsys):
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as exc:
        infer.main(["--input", "nothing.png", "--out_dir", str(out), "--save_ply"])
    assert exc.value.code == 2
    assert "--save_ply needs the camera intrinsics" in capsys.readouterr().err
    assert not out.exists()
    with pytest.raises(SystemExit):
        infer.main(["--input", "x.png", "--out_dir", str(out), "--save_ply", "--fx", "500", "--fy", "500"])
    assert "missing --cx --cy" in capsys.readouterr().err


def test_collect_inputs_and_unique_names(tmp_path):
    for rel in ("a/data/0001.png", "b/data/0001.png", "a/data/0002.jpg", "a/data/0002.png",
                "a/data/readme.txt", "c/0003.PNG"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"")
    paths, warnings = collect_inputs([str(tmp_path / "a/data"), str(tmp_path / "*/data/0001.png"),
                                            str(tmp_path / "c"), str(tmp_path / "nope")])
    rel = [p.relative_to(tmp_path).as_posix() for p in paths]
    assert rel == ["a/data/0001.png", "a/data/0002.jpg", "a/data/0002.png", "b/data/0001.png", "c/0003.PNG"]
    assert warnings == [f"{tmp_path / 'nope'}: no such file or folder"]
    assert output_names(paths) == ["a_data_0001", "0002_jpg", "0002_png", "b_data_0001", "0003"]
    # a name made unique by its folders may still equal another input's stem
    clash = [tmp_path / "x/s/f.png", tmp_path / "y/s/f.png", tmp_path / "x_s_f.png"]
    assert output_names(clash) == ["x_s_f", "y_s_f", "x_s_f_2"]


def test_dilate_sparse_and_comparison_figure():
    gt = np.zeros((5, 7))
    gt[2, 2], gt[2, 3] = 5.0, 3.0
    grown = dilate_sparse(gt, 1)
    assert grown[2, 2] == 5.0 and grown[2, 3] == 3.0   # measured pixels are kept
    assert grown[1, 1] == 5.0 and grown[1, 3] == 3.0 and grown[1, 2] == 3.0  # nearest depth wins
    assert grown[0, 0] == 0.0 and grown[2, 5] == 0.0
    image = np.full((10, 14, 3), 77, np.uint8)
    fig = comparison_figure(image, np.full((5, 7), 4.0), gt)
    assert fig.shape == (5, 3 * 7 + 2 * PANEL_GAP, 3)
    assert (fig[:, :7] == 77).all() and (fig[:, 7:7 + PANEL_GAP] == 255).all()
    gt_panel = fig[:, 2 * (7 + PANEL_GAP):]
    assert (gt_panel[0, 6] == 128).all() and (gt_panel[4, 6] == 128).all()  # beyond the 2-pixel dilation
    assert not (gt_panel[0, 0] == 128).all() and not (gt_panel[2, 2] == 128).all()


def test_test_py_save_pred_and_vis(kitti_raw_list, random_checkpoints, tmp_path, test_script):
    root, list_file = kitti_raw_list
    two = tmp_path / "two.txt"
    two.write_text("".join(list_file.read_text().splitlines(keepends=True)[:2]))
    out = tmp_path / "results"
    rc = test_script.main(["--dataset", "KITTI", "--root", str(root), "--test_datafile", str(two),
                      "--loadSize", *map(str, LOAD_SIZE), "--batchSize", "2", "--nThreads", "0",
                      "--device", "cpu", "--out_dir", str(out), "--save_pred", "--vis",
                      "--cmap", "viridis", *checkpoint_args(random_checkpoints)])
    assert rc == 0 and (out / "metrics.json").is_file()
    for name in ("00000_0000000000", "00001_0000000014"):
        depth = np.load(out / "pred" / f"{name}_depth.npy")
        assert depth.dtype == np.float32 and depth.shape == KITTI_SHAPE
        assert np.asarray(Image.open(out / "pred" / f"{name}_depth.png")).shape == (*KITTI_SHAPE, 3)
        fig = np.asarray(Image.open(out / "vis" / f"{name}.png"))
        assert fig.shape == (KITTI_SHAPE[0], 3 * KITTI_SHAPE[1] + 2 * PANEL_GAP, 3)
        gt_panel = fig[:, 2 * (KITTI_SHAPE[1] + PANEL_GAP):]
        # dilated lidar: a visible share of the GT panel is coloured, the rest grey
        coloured = ~(gt_panel == 128).all(axis=-1)
        assert 0.1 < coloured.mean() < 0.8
    assert sorted(p.name for p in (out / "pred").iterdir()) == sorted(
        f"{n}_depth.{e}" for n in ("00000_0000000000", "00001_0000000014") for e in ("npy", "png"))
