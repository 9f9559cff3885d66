"""The registry's evaluation sets beyond the release's two: each reader on the real samples of
../shared/data and on generated data in its layout (values known by hand), the alignments on
hand-solved cases, external predictions against the network's own, and --suite end to end."""
import json
import os
import pickle

import numpy as np
import pytest
from PIL import Image

from constants import DEPTH_SCALE, EVAL_CROP, LOAD_SIZE
from datasets import DatasetError
from datasets.registry import build_eval_dataset, eval_sets
from evaluation.protocol import Protocol, crop_mask, default_protocol, evaluate_depth
from utils.errors import exit_on_user_error

from sample_world import evalsets as bd

from .conftest import checkpoint_args

SHARED_DS_NAME = "2018-07-11-14-48-52_2018-07-11-15-42-59-522"   # a test-list name of the calib's sequence


def link(src, dst) -> None:
    """The real samples of ../shared/data go into each set's layout as symbolic links (never copied)."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    os.symlink(src, dst)


NEW_SETS = ("KITTI_BENCHMARK", "MAKE3D", "NUSCENES", "DRIVINGSTEREO", "CITYSCAPES", "NYUD_V2_OFFICIAL")


def valid_stats(depth: np.ndarray):
    valid = depth > 0
    return valid.mean(), depth[valid].min(), depth[valid].max()


# --- registry and protocol ------------------------------------------------------------------------

def test_registry_keeps_the_release_sets_and_finds_every_file():
    sets = eval_sets()
    assert list(sets)[:2] == ["KITTI", "NYUD_V2"] and set(NEW_SETS) <= set(sets)
    for name in ("KITTI", "NYUD_V2"):
        spec = sets[name]
        assert (spec.depth_scale, spec.load_size, spec.max_depth, spec.crop, spec.alignment) == \
            (DEPTH_SCALE[name], LOAD_SIZE[name], DEPTH_SCALE[name], EVAL_CROP[name], "median")
    assert default_protocol("MAKE3D").max_depth == 70.0 and default_protocol("CITYSCAPES").crop == "cityscapes"


def test_crops_by_hand():
    assert np.argwhere(crop_mask((768, 2048), "cityscapes"))[[0, -1]].tolist() == [[256, 192], [767, 1855]]
    assert np.argwhere(crop_mask((480, 640), "eigen_nyu"))[[0, -1]].tolist() == [[45, 41], [470, 600]]


NO_CROP = dict(crop="none", max_depth=80.0)


def test_least_squares_by_hand():
    # pred [1, 2, 3] against gt [2, 3, 5]: s = 1.5, t = 1/3 -> [11/6, 10/3, 29/6]
    m = evaluate_depth(np.array([[1.0, 2.0, 3.0]]), np.array([[2.0, 3.0, 5.0]]),
                       Protocol(alignment="least_squares", **NO_CROP))
    assert m["abs_rel"] == pytest.approx((1 / 12 + 1 / 9 + 1 / 30) / 3)
    exact = evaluate_depth(np.array([[1.0, 2.0, 3.0]]), np.array([[3.0, 5.0, 7.0]]),
                           Protocol(alignment="least_squares", **NO_CROP))
    assert exact["abs_rel"] == pytest.approx(0, abs=1e-12)


def test_least_squares_in_disparity_by_hand():
    # disparities [1, 2, 3] against [2, 3, 5]: s = 1.5, t = 1/3 -> depth [6/11, 3/10, 6/29]
    m = evaluate_depth(np.array([[1.0, 1 / 2, 1 / 3]]), np.array([[1 / 2, 1 / 3, 1 / 5]]),
                       Protocol(alignment="least_squares_disparity", **NO_CROP))
    assert m["abs_rel"] == pytest.approx((1 / 11 + 1 / 10 + 1 / 29) / 3)
    # the same fit in depth is a different one: depth alignment of the same maps is not exact
    d = evaluate_depth(np.array([[1.0, 1 / 2, 1 / 3]]), np.array([[1 / 2, 1 / 3, 1 / 5]]),
                       Protocol(alignment="least_squares", **NO_CROP))
    assert d["abs_rel"] != pytest.approx(m["abs_rel"])


def test_least_squares_result_is_clipped_to_the_depth_range():
    # gt falls where pred rises: s = -2, t = 8 -> [6, 4, 2, 0]; the last is clipped to 1e-3
    m = evaluate_depth(np.array([[1.0, 2.0, 3.0, 4.0]]), np.array([[6.0, 4.0, 2.0, 1e-2]]),
                       Protocol(alignment="least_squares", **NO_CROP))
    assert np.isfinite(m["rmse_log"])


# --- readers on the real samples ------------------------------------------------------------------

def test_kitti_benchmark_real_annotated_gt(shared_data, tmp_path):
    kd = shared_data / "kitti_depth"
    drive = tmp_path / "2011_09_26" / "2011_09_26_drive_0002_sync"
    crop = kd / "val_selection_cropped"
    link(crop / "image" / "2011_09_26_drive_0002_sync_image_0000000053_image_02.png",
            drive / "image_02" / "data" / "0000000053.png")
    link(crop / "groundtruth_depth" / "2011_09_26_drive_0002_sync_groundtruth_depth_0000000053_image_02.png",
            drive / "proj_depth" / "groundtruth" / "image_02" / "0000000053.png")
    for frame in ("0000000005", "0000000050", "0000000100"):   # full-size maps of an unrecorded drive
        link(kd / "metric3d_kitti_demo" / "rgb" / f"{frame}.png", drive / "image_02" / "data" / f"{frame}.png")
        link(kd / "metric3d_kitti_demo" / "depth" / f"{frame}.png",
                drive / "proj_depth" / "groundtruth" / "image_02" / f"{frame}.png")
    lines = "".join(f"2011_09_26/2011_09_26_drive_0002_sync {f} l\n" for f in (53, 5, 50, 100))
    (tmp_path / "list.txt").write_text(lines)
    ds = build_eval_dataset("KITTI_BENCHMARK", str(tmp_path), str(tmp_path / "list.txt"))
    depth = ds.ground_truth(0)
    assert depth.shape == (352, 1216)
    fraction, lo, hi = valid_stats(depth)
    assert fraction == pytest.approx(0.265, abs=0.001) and lo == 1505 / 256 and hi == 21479 / 256
    for i, expected in zip((1, 2, 3), (0.195, 0.206, 0.183)):
        assert ds.ground_truth(i).shape == (375, 1242)
        assert valid_stats(ds.ground_truth(i))[0] == pytest.approx(expected, abs=0.001)
    assert ds[1]["image"].shape == (3, *LOAD_SIZE["KITTI"])


def make3d_real_layout(shared_data, root):
    names = ("op36-p-343t000", "op57-p-283t000")   # Train400 pairs, same formats as Test134
    for n in names:
        link(shared_data / "make3d" / "Train400Img" / f"img-{n}.jpg", root / "Test134" / f"img-{n}.jpg")
        link(shared_data / "make3d" / "Train400Depth" / f"depth_sph_corr-{n}.mat",
                root / "Gridlaserdata" / f"depth_sph_corr-{n}.mat")
    (root / "list.txt").write_text(f"img-{names[0]}.jpg\nimg-{names[1]}\n")
    return names


def test_make3d_real_grid(shared_data, tmp_path):
    import scipy.io
    names = make3d_real_layout(shared_data, tmp_path)
    ds = build_eval_dataset("MAKE3D", str(tmp_path), str(tmp_path / "list.txt"))
    grid = scipy.io.loadmat(shared_data / "make3d" / "Train400Depth" / f"depth_sph_corr-{names[0]}.mat")
    grid = grid["Position3DGrid"][..., 3]
    depth = ds.ground_truth(0)
    # 1704 x 2272 portrait image: the 2:1 band is rows 710:1562 (852 rows); the grid's is rows 17:38 of 55
    assert depth.shape == (852, 1704) and ds.image(0).size == (1704, 852)
    assert depth[0, 0] == pytest.approx(grid[17, 0], abs=1e-4)
    assert depth[-1, -1] == pytest.approx(grid[37, -1], abs=1e-4)
    assert 3.8 <= depth.min() and depth.max() <= 80.0 and (depth > 0).all()
    assert ds[0]["image"].shape == (3, 256, 512)


def nuscenes_from_pkl(shared_data, folder):
    """The four JSON tables for the real sample, from mmdetection3d's info file (read with an
    unpickler that only builds numpy arrays and plain containers). Both sensors share the ego pose
    at the lidar time (the file has no camera-time pose)."""
    from scipy.spatial.transform import Rotation
    import numpy.core.multiarray  # noqa: F401  (numpy's array reconstructors)

    class Restricted(pickle.Unpickler):
        ALLOWED = {("numpy.core.multiarray", "scalar"), ("numpy", "dtype"), ("_codecs", "encode"),
                   ("numpy.core.multiarray", "_reconstruct"), ("numpy", "ndarray")}

        def find_class(self, module, name):
            if (module, name) not in self.ALLOWED:
                raise pickle.UnpicklingError(f"{module}.{name} is not allowed")
            return super().find_class(module, name)

    with open(shared_data / "nuscenes" / "mmdet3d_demo" / "n015-2018-07-24-11-22-45+0800.pkl", "rb") as f:
        info = Restricted(f).load()["data_list"][0]
    cam = info["images"]["CAM_FRONT"]

    def record(token, matrix, **extra):
        m = np.asarray(matrix, dtype=np.float64)
        q = Rotation.from_matrix(m[:3, :3]).as_quat(scalar_first=True)
        return {"token": token, "rotation": q.tolist(), "translation": m[:3, 3].tolist(), **extra}

    token = info["token"]
    tables = {"sample": [{"token": token}],
              "calibrated_sensor": [record("cs_lidar", info["lidar_points"]["lidar2ego"]),
                                    record("cs_cam", cam["cam2ego"],
                                           camera_intrinsic=np.asarray(cam["cam2img"])[:3, :3].tolist())],
              "ego_pose": [record("pose", info["ego2global"])],
              "sample_data": [
                  {"token": "sd_cam", "sample_token": token, "ego_pose_token": "pose", "is_key_frame": True,
                   "calibrated_sensor_token": "cs_cam", "filename": f"samples/CAM_FRONT/{cam['img_path']}"},
                  {"token": "sd_lidar", "sample_token": token, "ego_pose_token": "pose", "is_key_frame": True,
                   "calibrated_sensor_token": "cs_lidar",
                   "filename": f"samples/LIDAR_TOP/{info['lidar_points']['lidar_path']}"}]}
    bd.write_tables(folder, tables)
    return (token, np.asarray(info["lidar_points"]["lidar2ego"], dtype=np.float64),
            np.asarray(cam["cam2ego"], dtype=np.float64), np.asarray(cam["cam2img"])[:3, :3])


def test_nuscenes_real_sample(shared_data, tmp_path):
    dataroot = tmp_path / "nuscenes"
    link(shared_data / "nuscenes" / "samples", dataroot / "samples")
    token, lidar2ego, cam2ego, k = nuscenes_from_pkl(shared_data, dataroot / "v1.0-mini")
    (tmp_path / "tokens.txt").write_text(token + "\n")
    ds = build_eval_dataset("NUSCENES", str(dataroot / "v1.0-mini"), str(tmp_path / "tokens.txt"))
    depth = ds.ground_truth(0)
    assert depth.shape == (900, 1600)
    valid = depth > 0
    assert 4.4 < depth[valid].min() < 4.7 and 97 < depth[valid].max() < 99   # the README's 4.5-98 m
    # independently, from the file's 4x4 matrices (no quaternions): with the lidar-time ego pose for
    # both sensors, lidar -> camera is inv(cam2ego) @ lidar2ego. (The file's own lidar2cam also
    # has the car's 0.33 m of motion between the two exposures, which its tables would carry.)
    m = np.linalg.inv(cam2ego) @ lidar2ego
    points = np.fromfile(next((shared_data / "nuscenes" / "samples" / "LIDAR_TOP").iterdir()), np.float32)
    xyz = points.reshape(-1, 5)[:, :3].astype(np.float64) @ m[:3, :3].T + m[:3, 3]
    xyz = xyz[xyz[:, 2] > 1.0]
    u, v = np.round(xyz[:, 0] * k[0, 0] / xyz[:, 2] + k[0, 2]), np.round(xyz[:, 1] * k[1, 1] / xyz[:, 2] + k[1, 2])
    inside = (u >= 0) & (u < 1600) & (v >= 0) & (v < 900)
    expected = np.full((900, 1600), np.inf)
    for row, col, z in zip(v[inside].astype(int), u[inside].astype(int), xyz[inside, 2]):
        expected[row, col] = min(expected[row, col], z)
    assert np.array_equal(valid, np.isfinite(expected))
    assert np.allclose(depth[valid], expected[valid], rtol=1e-6)


def test_drivingstereo_real_disparity(shared_data, tmp_path):
    demo = shared_data / "drivingstereo" / "stereovoxelnet_demo"
    name = SHARED_DS_NAME
    link(demo / "left.jpg", tmp_path / "test-left-image" / "left-image-half-size" / f"{name}.jpg")
    link(demo / "disparity.png", tmp_path / "test-disparity-map" / "disparity-map-half-size" / f"{name}.png")
    calib = shared_data / "drivingstereo" / "calib" / "full-image-calib" / "2018-07-11-14-48-52.txt"
    link(calib, tmp_path / "calib" / "full-image-calib" / calib.name)
    (tmp_path / "list.txt").write_text(f"./test-left-image/left-image-half-size/{name}.jpg ./test-right-image/"
                                       f"right-image-half-size/{name}.jpg ./test-disparity-map/"
                                       f"disparity-map-half-size/{name}.png\n")
    depth = build_eval_dataset("DRIVINGSTEREO", str(tmp_path), str(tmp_path / "list.txt")).ground_truth(0)
    assert depth.shape == (400, 881)
    fraction, lo, hi = valid_stats(depth)
    assert fraction == pytest.approx(0.187, abs=0.001) and 8.0 < lo < 8.2 and 115 < hi < 117
    raw = np.asarray(Image.open(demo / "disparity.png"), dtype=np.float64)
    r, c = np.argwhere(raw > 0)[0]
    # P_rect_103's -fx*B = 1093.101 px*m at 1762 px, halved for the 881-px image
    assert depth[r, c] == pytest.approx(1093.101 / 2 / (raw[r, c] / 256))


def test_nyu_official_real_split(shared_data, tmp_path):
    from datasets.nyu_official import read_indices
    entries = read_indices(str(shared_data / "nyu_depth_v2" / "splits.mat"))
    assert len(entries) == 654 and [e.fields[0] for e in entries[:3]] == ["1", "2", "9"]
    shipped = read_indices(str(eval_sets()["NYUD_V2_OFFICIAL"].split))
    assert [e.fields for e in shipped] == [e.fields for e in entries]


def test_release_nyu_list_is_the_official_split(shared_data):
    """datasets/nyudv2/nyu2_test.csv (the release's path) names DenseDepth's test pairs, which are
    numbered by the 0-based labeled-frame index: testNdxs - 1 of the official splits.mat, ascending.
    Its first names, as listings of DenseDepth's nyu_test.zip show them, are checked by hand."""
    import scipy.io
    from tests.conftest import ROOT
    lines = (ROOT / eval_sets()["NYUD_V2"].split).read_text().splitlines()
    frames = [line.split(",")[0][len("data/nyu2_test/"):-len("_colors.png")] for line in lines]
    assert frames[:9] == ["00000", "00001", "00008", "00013", "00014", "00015", "00016", "00017", "00020"]
    assert all(line == f"data/nyu2_test/{f}_colors.png,data/nyu2_test/{f}_depth.png" for f, line in zip(frames, lines))
    test_ndxs = scipy.io.loadmat(shared_data / "nyu_depth_v2" / "splits.mat")["testNdxs"].ravel()
    assert [int(f) for f in frames] == sorted(int(k) - 1 for k in test_ndxs)


# --- readers on generated data, values by hand ----------------------------------------------------

def test_kitti_benchmark_generated(tmp_path):
    list_file = bd.write_kitti_benchmark(tmp_path)
    ds = build_eval_dataset("KITTI_BENCHMARK", str(tmp_path), str(list_file))
    png = tmp_path / "2011_09_26/2011_09_26_drive_0002_sync/proj_depth/groundtruth/image_02/0000000006.png"
    assert np.array_equal(ds.ground_truth(1), np.asarray(Image.open(png), dtype=np.float64) / 256)


def test_make3d_generated_band(tmp_path):
    list_file = bd.write_make3d(tmp_path)
    ds = build_eval_dataset("MAKE3D", str(tmp_path), str(list_file))
    # 48 x 64 portrait: band rows 20:44 (24 = 48 / 2); the 11-row grid's band is rows 3:8
    assert ds.image(0).size == (48, 24) and ds.ground_truth(0).shape == (24, 48)
    import scipy.io
    grid = scipy.io.loadmat(tmp_path / "Gridlaserdata" / "depth_sph_corr-op0-p-000t000.mat")["Position3DGrid"]
    assert ds.ground_truth(0)[0, 0] == pytest.approx(grid[3, 0, 3], abs=1e-4)
    assert ds.ground_truth(0)[-1, -1] == pytest.approx(grid[7, -1, 3], abs=1e-4)


def test_nuscenes_projection_by_hand(tmp_path):
    list_file = bd.write_nuscenes(tmp_path)
    depth = build_eval_dataset("NUSCENES", str(tmp_path / "v1.0-mini"), str(list_file)).ground_truth(0)
    # lidar ego pose 1 m ahead of the camera's: (10, 0, 0) and (20, 0, 0) -> 11 and 21 m on the centre
    # pixel (32, 24), the smaller kept; (5, -1, -0.5) -> camera (1, 0.5, 6) -> pixel (48.67, 32.33);
    # (-0.5, 0, 0) is 0.5 m ahead (under the 1 m minimum) and (-10, 0, 0) behind: dropped
    assert depth[24, 32] == pytest.approx(11.0)
    assert depth[32, 49] == pytest.approx(6.0)
    assert (depth > 0).sum() == 2


def test_cityscapes_generated(tmp_path):
    list_file = bd.write_cityscapes(tmp_path)
    ds = build_eval_dataset("CITYSCAPES", str(tmp_path), str(list_file))
    raw = np.asarray(Image.open(tmp_path / "disparity/val/frankfurt/frankfurt_000000_000000_disparity.png"),
                     dtype=np.float64)[:48]
    depth = ds.ground_truth(0)
    assert depth.shape == (48, 128) and ds.image(0).size == (128, 48)   # the hood's 16 rows cut off
    expected = np.where(raw > 1, 200 / np.maximum(raw - 1, 1e-9) * 256, 0)
    assert np.allclose(depth, expected)


def test_drivingstereo_generated_depth_maps(tmp_path):
    list_file = bd.write_drivingstereo(tmp_path, "depth")
    ds = build_eval_dataset("DRIVINGSTEREO", str(tmp_path), str(list_file))
    png = next((tmp_path / "test-depth-map" / "depth-map-half-size").iterdir())
    assert np.array_equal(ds.ground_truth(0), np.asarray(Image.open(png), dtype=np.float64) / 256)


def test_nyu_official_generated(tmp_path):
    images = bd.write_nyu_labeled(tmp_path)
    (tmp_path / "list.txt").write_text("3\n1\n")
    ds = build_eval_dataset("NYUD_V2_OFFICIAL", str(tmp_path), str(tmp_path / "list.txt"))
    assert np.array_equal(np.asarray(ds.image(0)), images[2])
    assert np.allclose(ds.ground_truth(1), 1 + images[0, ..., 0] / 64)


# --- bad input names the file ---------------------------------------------------------------------

def test_make3d_mat_without_grid(tmp_path):
    import scipy.io
    list_file = bd.write_make3d(tmp_path, n=1)
    mat = tmp_path / "Gridlaserdata" / "depth_sph_corr-op0-p-000t000.mat"
    scipy.io.savemat(mat, {"Depth": np.ones((3, 3))})
    with pytest.raises(DatasetError, match=f"line 1: Make3D depth file {mat} holds no Position3DGrid"):
        build_eval_dataset("MAKE3D", str(tmp_path), str(list_file)).ground_truth(0)


def test_nuscenes_sample_missing_from_the_table(tmp_path):
    list_file = bd.write_nuscenes(tmp_path)
    list_file.write_text("s0\nnot_a_token\n")
    with pytest.raises(DatasetError, match="line 2: sample 'not_a_token' is not in .*v1.0-mini/sample.json"):
        build_eval_dataset("NUSCENES", str(tmp_path / "v1.0-mini"), str(list_file))


def test_nuscenes_missing_calibration_record(tmp_path):
    list_file = bd.write_nuscenes(tmp_path)
    table = tmp_path / "v1.0-mini" / "calibrated_sensor.json"
    table.write_text(json.dumps([r for r in json.loads(table.read_text()) if r["token"] != "cs_cam"]))
    with pytest.raises(DatasetError, match="calibrated_sensor.json: no record with token 'cs_cam'"):
        build_eval_dataset("NUSCENES", str(tmp_path / "v1.0-mini"), str(list_file))


def test_drivingstereo_missing_calibration(tmp_path):
    list_file = bd.write_drivingstereo(tmp_path, "disparity")
    os.remove(tmp_path / "calib" / "full-image-calib" / "2018-07-11-14-48-52.txt")
    with pytest.raises(DatasetError, match="line 1: no calibration for sequence 2018-07-11-14-48-52 .*"
                                           "full-image-calib/2018-07-11-14-48-52.txt"):
        build_eval_dataset("DRIVINGSTEREO", str(tmp_path), str(list_file))


def test_cityscapes_camera_without_baseline(tmp_path):
    list_file = bd.write_cityscapes(tmp_path, n=1)
    camera = tmp_path / "camera/val/frankfurt/frankfurt_000000_000000_camera.json"
    camera.write_text(json.dumps({"intrinsic": {"fx": 1000.0}}))
    with pytest.raises(DatasetError, match=f"line 1: camera file {camera} has no extrinsic.baseline"):
        build_eval_dataset("CITYSCAPES", str(tmp_path), str(list_file)).ground_truth(0)


def test_nyu_official_without_depths(tmp_path):
    import h5py
    tmp_path.mkdir(exist_ok=True)
    with h5py.File(tmp_path / "nyu_depth_v2_labeled.mat", "w") as f:
        f["images"] = np.zeros((1, 3, 8, 6), np.uint8)
    (tmp_path / "list.txt").write_text("1\n")
    with pytest.raises(DatasetError, match="nyu_depth_v2_labeled.mat holds no 'depths' dataset"):
        build_eval_dataset("NYUD_V2_OFFICIAL", str(tmp_path), str(tmp_path / "list.txt"))


# --- test.py on every new set: checkpoint, then its saved predictions ------------------------------

def generated_set(name, root):
    """(--root, --test_datafile) of a tiny generated copy of set ``name``."""
    if name == "KITTI_BENCHMARK":
        return root, bd.write_kitti_benchmark(root)
    if name == "MAKE3D":
        return root, bd.write_make3d(root)
    if name == "NUSCENES":
        return root / "v1.0-mini", bd.write_nuscenes(root)
    if name == "DRIVINGSTEREO":
        return root, bd.write_drivingstereo(root, "disparity")
    if name == "CITYSCAPES":
        return root, bd.write_cityscapes(root)
    bd.write_nyu_labeled(root)
    (root / "list.txt").write_text("2\n3\n")
    return root, root / "list.txt"


def run_test_py(test_script, args):
    with exit_on_user_error():
        assert test_script.main(["--nThreads", "0", "--device", "cpu", "--loadSize", "96", "96", *args]) == 0


@pytest.mark.parametrize("name", NEW_SETS)
def test_checkpoint_then_its_predictions(name, test_script, random_checkpoints, tmp_path):
    root, list_file = generated_set(name, tmp_path / "data")
    common = ["--dataset", name, "--root", str(root), "--test_datafile", str(list_file)]
    run_test_py(test_script, [*common, *checkpoint_args(random_checkpoints), "--save_pred",
                              "--out_dir", str(tmp_path / "net")])
    run_test_py(test_script, [*common, "--pred_dir", str(tmp_path / "net" / "pred"), "--out_dir", str(tmp_path / "ext")])
    net = json.loads((tmp_path / "net" / "metrics.json").read_text())
    ext = json.loads((tmp_path / "ext" / "metrics.json").read_text())
    assert net["n_images"] == ext["n_images"] == 2 and net["protocol"] == ext["protocol"]
    assert ext["metrics"] == pytest.approx(net["metrics"], rel=1e-6)


def test_prediction_formats_and_disparity(test_script, random_checkpoints, tmp_path):
    """The network's saved depth as one (N, H, W) .npz stack, and inverted into disparity .npy files."""
    root, list_file = generated_set("MAKE3D", tmp_path / "data")
    common = ["--dataset", "MAKE3D", "--root", str(root), "--test_datafile", str(list_file)]
    run_test_py(test_script, [*common, *checkpoint_args(random_checkpoints), "--save_pred",
                              "--out_dir", str(tmp_path / "net")])
    preds = sorted((tmp_path / "net" / "pred").glob("*_depth.npy"))
    depths = [np.load(p) for p in preds]
    np.savez(tmp_path / "stack.npz", pred=np.stack(depths))
    (tmp_path / "disp").mkdir()
    for i, d in enumerate(depths):
        np.save(tmp_path / "disp" / f"{i:05d}.npy", 1.0 / d.astype(np.float64))
    run_test_py(test_script, [*common, "--pred_dir", str(tmp_path / "stack.npz"), "--out_dir", str(tmp_path / "a")])
    run_test_py(test_script, [*common, "--pred_dir", str(tmp_path / "disp"), "--pred_is_disparity",
                              "--out_dir", str(tmp_path / "b")])
    net = json.loads((tmp_path / "net" / "metrics.json").read_text())["metrics"]
    for out in ("a", "b"):
        assert json.loads((tmp_path / out / "metrics.json").read_text())["metrics"] == pytest.approx(net, rel=1e-6)


def test_missing_prediction_names_the_frame(test_script, tmp_path, capsys):
    root, list_file = generated_set("KITTI_BENCHMARK", tmp_path / "data")
    (tmp_path / "empty").mkdir()
    with pytest.raises(SystemExit) as exit_info, exit_on_user_error():
        test_script.main(["--nThreads", "0", "--dataset", "KITTI_BENCHMARK", "--root", str(root),
                          "--test_datafile", str(list_file), "--pred_dir", str(tmp_path / "empty")])
    assert exit_info.value.code == 2
    assert f"error: {tmp_path / 'empty'}: no prediction for frame 0" in capsys.readouterr().err


def test_alignment_flags(test_script, tmp_path):
    """--no_median_scaling is --alignment none; a preset sets the alignment; they cannot contradict."""
    root, list_file = generated_set("KITTI_BENCHMARK", tmp_path / "data")
    gt_dir = tmp_path / "gt_as_pred"
    gt_dir.mkdir()
    ds = build_eval_dataset("KITTI_BENCHMARK", str(root), str(list_file))
    for i in range(len(ds)):   # the GT's own maps, doubled and shifted: least squares in depth undoes it
        gt = ds.ground_truth(i)
        np.save(gt_dir / f"{i:05d}.npy", np.where(gt > 0, 2 * gt + 3, 40.0))
    common = ["--dataset", "KITTI_BENCHMARK", "--root", str(root), "--test_datafile", str(list_file),
              "--pred_dir", str(gt_dir), "--clip_after_scaling"]
    results = {}
    for name, flags in {"none": ["--alignment", "none"], "alias": ["--no_median_scaling"],
                        "ls": ["--preset", "marigold"], "median": []}.items():
        run_test_py(test_script, [*common, *flags, "--out_dir", str(tmp_path / name)])
        results[name] = json.loads((tmp_path / name / "metrics.json").read_text())
    assert results["alias"]["metrics"] == results["none"]["metrics"]
    assert results["ls"]["protocol"]["alignment"] == "least_squares"
    assert results["ls"]["metrics"]["abs_rel"] == pytest.approx(0, abs=1e-9)
    assert results["median"]["metrics"]["abs_rel"] > 1e-3
    with pytest.raises(SystemExit):
        test_script.main([*common, "--no_median_scaling", "--alignment", "median"])


def test_suite_writes_one_table(test_script, random_checkpoints, tmp_path):
    sets = {name: generated_set(name, tmp_path / name) for name in ("KITTI_BENCHMARK", "CITYSCAPES")}
    suite = {"common": {"loadSize": [96, 96]},
             "runs": [{"name": "kitti_bench", "dataset": "KITTI_BENCHMARK", "root": str(sets["KITTI_BENCHMARK"][0]),
                       "test_datafile": str(sets["KITTI_BENCHMARK"][1])},
                      {"name": "cityscapes_midas", "dataset": "CITYSCAPES", "root": str(sets["CITYSCAPES"][0]),
                       "test_datafile": str(sets["CITYSCAPES"][1]), "preset": "midas"}]}
    (tmp_path / "suite.json").write_text(json.dumps(suite))
    run_test_py(test_script, ["--suite", str(tmp_path / "suite.json"), *checkpoint_args(random_checkpoints),
                              "--out_dir", str(tmp_path / "out")])
    rows = json.loads((tmp_path / "out" / "suite.json").read_text())
    assert [r["name"] for r in rows] == ["kitti_bench", "cityscapes_midas"]
    for row in rows:
        own = json.loads((tmp_path / "out" / row["name"] / "metrics.json").read_text())
        assert row["metrics"] == own["metrics"] and row["protocol"] == own["protocol"]
    assert rows[1]["protocol"]["alignment"] == "least_squares_disparity"
    table = (tmp_path / "out" / "suite.md").read_text().splitlines()
    assert len(table) == 4 and table[2].startswith("| kitti_bench | KITTI_BENCHMARK | median | garg | 80 | 2 |")
    assert f"{rows[1]['metrics']['abs_rel']:.4f}" in table[3]


def test_suite_unknown_flag_names_the_file(test_script, tmp_path, capsys):
    (tmp_path / "suite.json").write_text(json.dumps({"runs": [{"name": "a", "datset": "KITTI"}]}))
    with pytest.raises(SystemExit) as exit_info, exit_on_user_error():
        test_script.main(["--suite", str(tmp_path / "suite.json")])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err == f"error: {tmp_path / 'suite.json'}, run 'a': unknown flag --datset\n"


def test_nuscenes_gt_cache_round_trip(test_script, random_checkpoints, tmp_path):
    import export_gt_depth
    list_file = bd.write_nuscenes(tmp_path)
    tables = str(tmp_path / "v1.0-mini")
    cache = tmp_path / "gt.npz"
    assert export_gt_depth.main(["--dataset", "NUSCENES", "--root", tables, "--test_datafile", str(list_file),
                                 "--output", str(cache)]) == 0
    direct = build_eval_dataset("NUSCENES", tables, str(list_file))
    cached = build_eval_dataset("NUSCENES", tables, str(list_file), gt_cache=str(cache))
    for i in range(2):
        assert np.array_equal(direct.ground_truth(i), cached.ground_truth(i))
    list_file.write_text("s1\ns0\n")
    with pytest.raises(DatasetError, match="differs from the ground-truth cache"):
        build_eval_dataset("NUSCENES", tables, str(list_file), gt_cache=str(cache))


def _nyu_official_frames(root):
    bd.write_nyu_labeled(root)
    (root / "frames.txt").write_text("3\n1\n")
    return root / "frames.txt"


@pytest.mark.parametrize("dataset, write, stored", [
    ("KITTI_BENCHMARK", bd.write_kitti_benchmark, np.float32),      # value / 256: exact in float32
    ("MAKE3D", bd.write_make3d, np.float32),                        # a float32 resize
    ("DRIVINGSTEREO", lambda root: bd.write_drivingstereo(root, "disparity"), np.float64),  # fx·B / d
    ("CITYSCAPES", bd.write_cityscapes, np.float64),
    ("NYUD_V2_OFFICIAL", _nyu_official_frames, np.float32)])        # float32 in the .mat
def test_dense_gt_cache_round_trip(dataset, write, stored, tmp_path):
    """export_gt_depth.py caches maps valid at most pixels whole, in float32 only where that is
    exact, and test.py's reader returns the same maps from the cache as from the files."""
    import export_gt_depth
    list_file = write(tmp_path)
    cache = tmp_path / "gt.npz"
    assert export_gt_depth.main(["--dataset", dataset, "--root", str(tmp_path), "--test_datafile",
                                 str(list_file), "--output", str(cache)]) == 0
    with np.load(cache) as f:
        assert bool(f["dense"]) and f["depth"].dtype == stored
    direct = build_eval_dataset(dataset, str(tmp_path), str(list_file))
    cached = build_eval_dataset(dataset, str(tmp_path), str(list_file), gt_cache=str(cache))
    for i in range(2):
        assert np.array_equal(direct.ground_truth(i), cached.ground_truth(i))
        assert np.array_equal(direct[i]["image"], cached[i]["image"])
