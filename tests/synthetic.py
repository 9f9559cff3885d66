"""Tiny datasets in the real on-disk layouts (KITTI raw + Eigen list, NYU CSV), made by the tests."""
from pathlib import Path
from typing import List, Sequence, Tuple

import numpy as np
from PIL import Image

# Two dates with different image sizes, so that one batch can mix ground-truth sizes.
KITTI_DATES = {"2011_09_26": (64, 208), "2011_09_30": (60, 200)}


def _matrix_line(key: str, values) -> str:
    return f"{key}: " + " ".join(f"{v:.12e}" for v in np.asarray(values, dtype=np.float64).ravel())


def write_kitti_calib(folder: Path, size: Sequence[int]) -> None:
    """calib_cam_to_cam.txt / calib_velo_to_cam.txt in KITTI's text format for an (H, W) camera,
    with a non-trivial rectification, a 4th column in P_rect_02 and a velo->cam translation."""
    h, w = size
    f = 0.58 * w
    folder.mkdir(parents=True, exist_ok=True)
    a = np.deg2rad(0.8)
    r_rect = np.array([[np.cos(a), 0, np.sin(a)], [0, 1, 0], [-np.sin(a), 0, np.cos(a)]])
    p_rect_00 = [[f, 0, w / 2, 0], [0, f, h / 2, 0], [0, 0, 1, 0]]
    p_rect_02 = [[f, 0, w / 2 + 0.3, 0.06 * f], [0, f, h / 2 - 0.2, 0.001], [0, 0, 1, 0.003]]
    (folder / "calib_cam_to_cam.txt").write_text("\n".join([
        "calib_time: 09-Jan-2012 13:57:47",
        "corner_dist: 9.950000e-02",
        _matrix_line("S_rect_00", [w, h]),
        _matrix_line("R_rect_00", r_rect),
        _matrix_line("P_rect_00", p_rect_00),
        _matrix_line("S_rect_02", [w, h]),
        _matrix_line("R_rect_02", np.eye(3)),
        _matrix_line("P_rect_02", p_rect_02),
    ]) + "\n")
    r = np.array([[0, -1, 0], [0, 0, -1], [1, 0, 0]], dtype=np.float64)
    (folder / "calib_velo_to_cam.txt").write_text("\n".join([
        "calib_time: 15-Mar-2012 11:37:16",
        _matrix_line("R", r),
        _matrix_line("T", [-0.004, -0.076, -0.27]),
        "delta_f: 0.000000e+00 0.000000e+00",
    ]) + "\n")


def velodyne_scan(rng: np.random.Generator, n: int = 6000) -> np.ndarray:
    """(n, 4) float32 x, y, z, reflectance: mostly ahead of the car, some behind it."""
    x = rng.uniform(-10, 70, n)
    y = rng.uniform(-0.6, 0.6, n) * np.abs(x) + rng.normal(0, 0.3, n)
    z = rng.uniform(-0.35, 0.12, n) * np.abs(x)
    return np.stack([x, y, z, rng.uniform(0, 1, n)], 1).astype(np.float32)


def write_kitti(root: Path, frames: Sequence[Tuple[str, int]], seed: int = 0) -> Path:
    """KITTI raw layout under ``root`` for ``frames`` = [(date, frame_id)], and an Eigen list."""
    rng = np.random.default_rng(seed)
    lines = []
    for date, frame in frames:
        h, w = KITTI_DATES[date]
        write_kitti_calib(root / date, (h, w))
        drive = f"{date}/{date}_drive_0001_sync"
        name = f"{frame:010d}"
        for cam in ("image_02", "image_03"):
            path = root / drive / cam / "data" / f"{name}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(path)
        velo = root / drive / "velodyne_points" / "data" / f"{name}.bin"
        velo.parent.mkdir(parents=True, exist_ok=True)
        velodyne_scan(rng).tofile(velo)
        lines.append(f"{drive}/image_02/data/{name}.png {drive}/image_03/data/{name}.png {date} "
                     f"{drive}/velodyne_points/data/{name}.bin")
    list_file = root / "test.txt"
    list_file.write_text("\n".join(lines) + "\n")
    return list_file


def write_nyu(root: Path, n: int, size: Sequence[int] = (60, 80), seed: int = 0) -> Path:
    """NYU layout: RGB PNGs and 16-bit millimetre depth PNGs (0 = hole), and a header-less CSV."""
    rng = np.random.default_rng(seed)
    h, w = size
    lines: List[str] = []
    folder = root / "data" / "nyu2_test"
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(folder / f"{i:05d}_colors.png")
        depth = rng.integers(500, 9500, (h, w)).astype(np.uint16)
        depth[rng.random((h, w)) < 0.1] = 0
        Image.fromarray(depth).save(folder / f"{i:05d}_depth.png")
        lines.append(f"data/nyu2_test/{i:05d}_colors.png,data/nyu2_test/{i:05d}_depth.png")
    list_file = root / "nyu2_test.csv"
    list_file.write_text("\n".join(lines) + "\n")
    return list_file
