"""Small evaluation sets in the real on-disk layouts of the registry's sets beyond the release's two
(datasets/*.py): by default tiny, with values chosen so that the tests know their ground truth by
hand; at the real frame sizes for the reader benchmark (benchmarks/eval_sets.py)."""
import json
from pathlib import Path
from typing import Dict, List, Sequence

import h5py
import numpy as np
import scipy.io
from PIL import Image


def rgb(rng: np.random.Generator, h: int, w: int) -> Image.Image:
    return Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8))


def save(img: Image.Image, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path)


def uint16_map(rng: np.random.Generator, h: int, w: int, lo: int, hi: int, holes: float = 0.3) -> np.ndarray:
    values = rng.integers(lo, hi, (h, w)).astype(np.uint16)
    values[rng.random((h, w)) < holes] = 0
    return values


def write_kitti_benchmark(root: Path, n: int = 2, size=(40, 120), seed: int = 0) -> Path:
    """KITTI raw images with annotated GT (uint16, m x 256) beside them, and a monodepth2-style list."""
    rng = np.random.default_rng(seed)
    lines = []
    drive = "2011_09_26/2011_09_26_drive_0002_sync"
    for frame in range(5, 5 + n):
        save(rgb(rng, *size), root / drive / "image_02" / "data" / f"{frame:010d}.png")
        save(Image.fromarray(uint16_map(rng, *size, 256, 90 * 256)),
             root / drive / "proj_depth" / "groundtruth" / "image_02" / f"{frame:010d}.png")
        lines.append(f"{drive} {frame} l")
    (root / "test_files.txt").write_text("\n".join(lines) + "\n")
    return root / "test_files.txt"


def write_make3d(root: Path, n: int = 2, size=(64, 48), grid=(11, 6), seed: int = 0) -> Path:
    """Portrait images (H, W) in Test134/ and depth_sph_corr .mat grids in Gridlaserdata/."""
    rng = np.random.default_rng(seed)
    names = []
    for i in range(n):
        name = f"img-op{i}-p-{i:03d}t000"
        save(rgb(rng, *size), root / "Test134" / f"{name}.jpg")
        position = rng.uniform(-5, 5, (*grid, 4))
        position[..., 3] = rng.uniform(2, 80, grid)
        (root / "Gridlaserdata").mkdir(parents=True, exist_ok=True)
        scipy.io.savemat(root / "Gridlaserdata" / f"depth_sph_corr-{name[4:]}.mat", {"Position3DGrid": position})
        names.append(f"{name}.jpg")
    (root / "test.txt").write_text("\n".join(names) + "\n")
    return root / "test.txt"


# nuScenes: a camera looking along the ego x axis (camera z = ego x, camera x = -ego y, camera y =
# -ego z), the quaternion (w, x, y, z) of that rotation, and its intrinsics for 48 x 64 images.
CAMERA_ROTATION = [0.5, -0.5, 0.5, -0.5]
NUSCENES_K = [[100.0, 0.0, 32.0], [0.0, 100.0, 24.0], [0.0, 0.0, 1.0]]
NUSCENES_SIZE = (48, 64)


def nuscenes_tables(samples: List[dict], k: Sequence[Sequence[float]] = NUSCENES_K) -> Dict[str, list]:
    """The four tables for ``samples`` = [{token, image, lidar, lidar_ego_t, cam_ego_t}]: identity
    lidar calibration, the camera above with intrinsics ``k``, ego poses translated only."""
    tables = {"sample": [], "sample_data": [], "calibrated_sensor": [
        {"token": "cs_lidar", "translation": [0, 0, 0], "rotation": [1, 0, 0, 0], "camera_intrinsic": []},
        {"token": "cs_cam", "translation": [0, 0, 0], "rotation": CAMERA_ROTATION,
         "camera_intrinsic": [list(row) for row in k]}], "ego_pose": []}
    for s in samples:
        tables["sample"].append({"token": s["token"], "timestamp": 0, "scene_token": "scene"})
        for kind, filename, calib in (("cam", s["image"], "cs_cam"), ("lidar", s["lidar"], "cs_lidar")):
            pose = f"{s['token']}_{kind}_pose"
            tables["ego_pose"].append({"token": pose, "rotation": [1, 0, 0, 0],
                                       "translation": s[f"{kind}_ego_t"]})
            tables["sample_data"].append({"token": f"{s['token']}_{kind}", "sample_token": s["token"],
                                          "ego_pose_token": pose, "calibrated_sensor_token": calib,
                                          "filename": filename, "is_key_frame": True})
    return tables


def write_tables(folder: Path, tables: Dict[str, list]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, records in tables.items():
        (folder / f"{name}.json").write_text(json.dumps(records))


def write_nuscenes(dataroot: Path, seed: int = 0, size: Sequence[int] = NUSCENES_SIZE, points: int = 400) -> Path:
    """Two samples of (H, W) ``size``; sample "s0" holds hand-placed points (see
    test_nuscenes_projection_by_hand), "s1" ``points`` random ones ahead. The intrinsics scale with
    the width."""
    rng = np.random.default_rng(seed)
    scale = size[1] / NUSCENES_SIZE[1]
    k = [[v * scale for v in NUSCENES_K[0]], [v * scale for v in NUSCENES_K[1]], NUSCENES_K[2]]
    samples = []
    for i in range(2):
        image = f"samples/CAM_FRONT/n000__CAM_FRONT__{i}.jpg"
        lidar = f"samples/LIDAR_TOP/n000__LIDAR_TOP__{i}.pcd.bin"
        save(rgb(rng, *size), dataroot / image)
        if i == 0:   # ego x forward: (10, 0, 0) twice farther, (5, -1, -0.5), one too near, one behind
            cloud = np.array([[10, 0, 0, 1, 0], [20, 0, 0, 1, 0], [5, -1, -0.5, 1, 0], [-0.5, 0, 0, 1, 0],
                              [-10, 0, 0, 1, 0]], np.float32)
        else:
            xyz = np.stack([rng.uniform(3, 60, points), rng.uniform(-8, 8, points), rng.uniform(-2, 2, points)], 1)
            cloud = np.concatenate([xyz, np.ones((points, 2))], 1).astype(np.float32)
        (dataroot / lidar).parent.mkdir(parents=True, exist_ok=True)
        cloud.tofile(dataroot / lidar)
        samples.append({"token": f"s{i}", "image": image, "lidar": lidar,
                        "lidar_ego_t": [1.0 if i == 0 else 0.0, 0, 0], "cam_ego_t": [0, 0, 0]})
    folder = dataroot / "v1.0-mini"
    write_tables(folder, nuscenes_tables(samples, k))
    (dataroot / "tokens.txt").write_text("s0\ns1\n")
    return dataroot / "tokens.txt"


DS_CALIB = """S_rect_101: 1.762000e+03 8.000000e+02
P_rect_101: 2.000000e+03 0.000000e+00 9.000000e+02 0.000000e+00 0.000000e+00 2.000000e+03 4.000000e+02 0.000000e+00 0.000000e+00 0.000000e+00 1.000000e+00 0.000000e+00
P_rect_103: 2.000000e+03 0.000000e+00 9.000000e+02 -1.000000e+03 0.000000e+00 2.000000e+03 4.000000e+02 0.000000e+00 0.000000e+00 0.000000e+00 1.000000e+00 0.000000e+00
"""  # fx·B = 1000 px·m at 1762 px wide


def write_drivingstereo(root: Path, kind: str, n: int = 2, size=(40, 881 // 8), seed: int = 0) -> Path:
    """Half-size-style layout; ``kind`` 'disparity' (3-field lines, full-size calibration) or 'depth'."""
    rng = np.random.default_rng(seed)
    lines = []
    for i in range(n):
        name = f"2018-07-11-14-48-52_2018-07-11-15-42-59-{i:03d}"
        left = f"test-left-image/left-image-half-size/{name}.jpg"
        save(rgb(rng, *size), root / left)
        gt = f"test-{kind}-map/{kind}-map-half-size/{name}.png"
        save(Image.fromarray(uint16_map(rng, *size, 256, (20 if kind == "disparity" else 90) * 256)), root / gt)
        lines.append(f"./{left} ./test-right-image/right-image-half-size/{name}.jpg ./{gt}" if kind == "disparity"
                     else f"{left} {gt}")
    if kind == "disparity":
        (root / "calib" / "full-image-calib").mkdir(parents=True, exist_ok=True)
        (root / "calib" / "full-image-calib" / "2018-07-11-14-48-52.txt").write_text(DS_CALIB)
    (root / "test.txt").write_text("\n".join(lines) + "\n")
    return root / "test.txt"


def write_cityscapes(root: Path, n: int = 2, size=(64, 128), seed: int = 0) -> Path:
    """leftImg8bit / disparity / camera files; baseline 0.2 m and fx 1000 px: depth = 200 / disparity."""
    rng = np.random.default_rng(seed)
    lines = []
    for i in range(n):
        stem = f"val/frankfurt/frankfurt_000000_{i:06d}"
        save(rgb(rng, *size), root / f"leftImg8bit/{stem}_leftImg8bit.png")
        save(Image.fromarray(uint16_map(rng, *size, 2, 80 * 256)), root / f"disparity/{stem}_disparity.png")
        (root / f"camera/{stem}_camera.json").parent.mkdir(parents=True, exist_ok=True)
        (root / f"camera/{stem}_camera.json").write_text(json.dumps(
            {"extrinsic": {"baseline": 0.2, "pitch": 0.0}, "intrinsic": {"fx": 1000.0, "fy": 1000.0}}))
        lines.append(f"leftImg8bit/{stem}_leftImg8bit.png disparity/{stem}_disparity.png camera/{stem}_camera.json")
    (root / "val.txt").write_text("\n".join(lines) + "\n")
    return root / "val.txt"


def write_nyu_labeled(root: Path, n: int = 3, size=(48, 64), seed: int = 0) -> np.ndarray:
    """nyu_depth_v2_labeled.mat as MATLAB v7.3 stores it (HDF5, every array transposed); returns the
    (n, H, W, 3) images, whose red channel the depth follows (depth = 1 + red / 64 m)."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (n, *size, 3), dtype=np.uint8)
    depths = 1.0 + images[..., 0].astype(np.float32) / 64
    root.mkdir(parents=True, exist_ok=True)
    with h5py.File(root / "nyu_depth_v2_labeled.mat", "w") as f:
        f["images"] = images.transpose(0, 3, 2, 1)
        f["depths"] = depths.transpose(0, 2, 1)
    return images
