"""Camera intrinsics and coloured point clouds (PLY) from predicted depth.

Pixel coordinates are 0-based with integer values at pixel centres (the OpenCV / KITTI
rectified convention); points are in the camera frame: x right, y down, z forward, metres.
"""
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Tuple, Union

import numpy as np

from datasets.common import DatasetError
from datasets.kitti import read_calib_file

PathLike = Union[str, Path]


@dataclass(frozen=True)
class Intrinsics:
    """Pinhole intrinsics; ``size`` (W, H) is the image size they hold for, None for any size."""

    fx: float
    fy: float
    cx: float
    cy: float
    size: Optional[Tuple[int, int]] = None

    def for_size(self, width: int, height: int) -> "Intrinsics":
        """The intrinsics of the same camera on a resized image (pixel-centre aligned resize)."""
        if self.size is None or self.size == (width, height):
            return Intrinsics(self.fx, self.fy, self.cx, self.cy, (width, height))
        sx, sy = width / self.size[0], height / self.size[1]
        return Intrinsics(self.fx * sx, self.fy * sy, (self.cx + 0.5) * sx - 0.5,
                          (self.cy + 0.5) * sy - 0.5, (width, height))


def read_kitti_intrinsics(calib_path: PathLike, cam: int = 2) -> Intrinsics:
    """Intrinsics of rectified camera ``cam`` from a KITTI calib_cam_to_cam.txt (P_rect_0x, S_rect_0x)."""
    calib = read_calib_file(str(calib_path))
    p_key, s_key = f"P_rect_0{cam}", f"S_rect_0{cam}"
    if p_key not in calib or calib[p_key].size != 12:
        raise DatasetError(f"{calib_path}: no 3x4 {p_key} entry (is it a KITTI calib_cam_to_cam.txt?)")
    if s_key not in calib or calib[s_key].size != 2:
        raise DatasetError(f"{calib_path}: no {s_key} entry (image size of the calibration)")
    p = calib[p_key].reshape(3, 4)
    width, height = (int(round(v)) for v in calib[s_key])
    return Intrinsics(float(p[0, 0]), float(p[1, 1]), float(p[0, 2]), float(p[1, 2]), (width, height))


def backproject(depth: np.ndarray, intrinsics: Intrinsics) -> Tuple[np.ndarray, np.ndarray]:
    """Camera-frame points (N, 3) float32 of the pixels with finite positive depth, in row-major
    order, and the (H, W) boolean mask of those pixels."""
    h, w = depth.shape
    k = intrinsics.for_size(w, h)
    mask = np.isfinite(depth) & (depth > 0)
    rows, cols = np.nonzero(mask)
    z = depth[rows, cols].astype(np.float64)
    points = np.stack([(cols - k.cx) * z / k.fx, (rows - k.cy) * z / k.fy, z], axis=1)
    return points.astype(np.float32), mask


def write_ply(path: PathLike, points: np.ndarray, colors: np.ndarray, binary: bool = True) -> None:
    """A PLY point cloud with float x, y, z and uchar red, green, blue per vertex."""
    points = np.asarray(points, dtype=np.float32).reshape(-1, 3)
    colors = np.asarray(colors, dtype=np.uint8).reshape(-1, 3)
    if len(points) != len(colors):
        raise ValueError(f"{len(points)} points but {len(colors)} colours")
    header = ("ply\n"
              f"format {'binary_little_endian' if binary else 'ascii'} 1.0\n"
              f"element vertex {len(points)}\n"
              "property float x\nproperty float y\nproperty float z\n"
              "property uchar red\nproperty uchar green\nproperty uchar blue\n"
              "end_header\n")
    with open(path, "wb") as f:
        f.write(header.encode("ascii"))
        if binary:
            vertex = np.empty(len(points), dtype=[("xyz", "<f4", 3), ("rgb", "u1", 3)])
            vertex["xyz"], vertex["rgb"] = points, colors
            f.write(vertex.tobytes())
        else:
            for (x, y, z), (r, g, b) in zip(points.tolist(), colors.tolist()):
                f.write(f"{x:.7g} {y:.7g} {z:.7g} {r} {g} {b}\n".encode("ascii"))
