"""KITTI Eigen test split (docs/release.md §2.2): images from the raw layout, ground truth projected from
the velodyne scan, and a cache of that ground truth for repeated evaluations."""
import os
import zipfile
from typing import Dict, List, Optional, Sequence

import numpy as np
from torch.utils.data import Dataset

from constants import DEPTH_SCALE, EVAL_CROP, LOAD_SIZE

from .common import (DatasetError, ListEntry, image_size, open_image, read_list, resize_image,
                     resolve, to_network_input)
from .evalset import EvalSet

VELODYNE_POINT_BYTES = 16  # x, y, z, reflectance as float32


def read_calib_file(path: str) -> Dict[str, np.ndarray]:
    """KITTI calibration text (``key: v1 v2 ...``) as float arrays; non-numeric entries are skipped."""
    data = {}
    try:
        with open(path, encoding="utf-8") as f:
            for line in f:
                key, sep, value = line.partition(":")
                if not sep:
                    continue
                try:
                    data[key.strip()] = np.array([float(v) for v in value.split()])
                except ValueError:
                    pass  # e.g. calib_time
    except OSError as exc:
        raise DatasetError(f"cannot read calibration file {path}: {exc}") from exc
    return data


def calib_entry(calib: Dict[str, np.ndarray], key: str, shape: Sequence[int], path: str) -> np.ndarray:
    """``calib[key]`` reshaped to ``shape``; a missing key or a wrong number of values names both."""
    if key not in calib:
        raise DatasetError(f"malformed KITTI calibration {path}: no numeric {key!r} line")
    values = calib[key]
    if values.size != int(np.prod(shape)):
        raise DatasetError(f"malformed KITTI calibration {path}: {key!r} has {values.size} values, "
                           f"expected {int(np.prod(shape))}")
    return values.reshape(shape)


def velo_to_image_matrix(calib_dir: str, cam: int = 2, image_shape: Optional[Sequence[int]] = None,
                         image: str = "the image") -> np.ndarray:
    """P = P_rect_0{cam} · R_rect_00 · [R|T]_velo→cam, a 3x4 float64 matrix. With ``image_shape``
    (H, W) of ``image``, the calibration's S_rect_0{cam} must be that size: P_rect holds for it only."""
    cam2cam_path = os.path.join(calib_dir, "calib_cam_to_cam.txt")
    velo2cam_path = os.path.join(calib_dir, "calib_velo_to_cam.txt")
    cam2cam = read_calib_file(cam2cam_path)
    velo2cam = read_calib_file(velo2cam_path)
    velo_to_cam = np.eye(4)
    velo_to_cam[:3, :3] = calib_entry(velo2cam, "R", (3, 3), velo2cam_path)
    velo_to_cam[:3, 3] = calib_entry(velo2cam, "T", (3,), velo2cam_path)
    rect = np.eye(4)
    rect[:3, :3] = calib_entry(cam2cam, "R_rect_00", (3, 3), cam2cam_path)
    p_rect = calib_entry(cam2cam, f"P_rect_0{cam}", (3, 4), cam2cam_path)
    if image_shape is not None:
        w, h = calib_entry(cam2cam, f"S_rect_0{cam}", (2,), cam2cam_path)
        if (round(h), round(w)) != tuple(image_shape):
            raise DatasetError(f"{image} is {image_shape[1]}x{image_shape[0]} but {cam2cam_path} calibrates "
                               f"S_rect_0{cam} = {round(w)}x{round(h)}; its P_rect_0{cam} does not hold for "
                               f"this image (was it resized?)")
    return p_rect @ rect @ velo_to_cam


def load_velodyne_points(path: str) -> np.ndarray:
    """A KITTI .bin scan as homogeneous float32 points (N, 4): x, y, z, 1."""
    try:
        size = os.path.getsize(path)
        raw = np.fromfile(path, dtype=np.float32)
    except OSError as exc:
        raise DatasetError(f"cannot read velodyne scan {path}: {exc}") from exc
    if size == 0:
        raise DatasetError(f"velodyne scan {path} is empty")
    if size % VELODYNE_POINT_BYTES:
        raise DatasetError(f"velodyne scan {path} is not a float32 N x 4 array "
                           f"({size} bytes is not a multiple of {VELODYNE_POINT_BYTES})")
    points = raw.reshape(-1, 4)
    points[:, 3] = 1.0
    return points


# Rows per matrix product in ``project_to_depth``: below OpenBLAS's multithreading threshold
# (m·n·k <= 65536·4 with n = 3, k = 4), so each product runs on the calling thread. One threaded
# product for a whole scan costs 20-30 ms instead of 1 ms whenever the other cores are busy, as they
# are in a loader worker while the network runs (docs/performance.md). Rows are independent, so the
# blocking changes no bit of the result.
PROJECTION_BLOCK = 16384


def project_to_depth(points: np.ndarray, proj: np.ndarray, shape: Sequence[int]) -> np.ndarray:
    """Sparse depth map (H, W) float64 from homogeneous velodyne points and a 3x4 projection.

    Points behind the sensor (x < 0) are dropped; pixel = round(u) - 1, round(v) - 1; the value is
    the camera depth; where several points share a pixel the smallest depth wins; negatives -> 0.
    """
    h, w = int(shape[0]), int(shape[1])
    points = points[points[:, 0] >= 0]
    im = np.empty((len(points), 3))          # float64: u·z, v·z, z
    for start in range(0, len(points), PROJECTION_BLOCK):
        stop = start + PROJECTION_BLOCK
        im[start:stop] = points[start:stop] @ proj.T
    z = im[:, 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        col = np.round(im[:, 0] / z) - 1
        row = np.round(im[:, 1] / z) - 1
    valid = (col >= 0) & (row >= 0) & (col < w) & (row < h)
    lin = row[valid].astype(np.int64) * w + col[valid].astype(np.int64)
    depth = np.full(h * w, np.inf)
    np.minimum.at(depth, lin, z[valid])
    depth[np.isinf(depth) | (depth < 0)] = 0
    return depth.reshape(h, w)


def generate_depth_map(calib_dir: str, velo_path: str, shape: Sequence[int], cam: int = 2,
                       image: str = "the image") -> np.ndarray:
    """Ground-truth depth of camera ``cam`` from one velodyne scan (docs/release.md §2.2), for
    ``image`` of the calibrated size ``shape`` (H, W)."""
    proj = velo_to_image_matrix(calib_dir, cam, shape, image)
    return project_to_depth(load_velodyne_points(velo_path), proj, shape)


class GTCache:
    """Ground truth of a whole list, precomputed by export_gt_depth.py, stored exactly.

    The file holds, per frame, the GT size and its depths, plus the list lines it was made from so
    that a stale cache is detected. Sparse maps (lidar) keep only the valid pixels with their flat
    indices; maps valid at more than half their pixels (Make3D, NYU) are stored whole, which is
    smaller. Depths are stored as float32 where that loses nothing, else as float64.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        try:
            with np.load(path, allow_pickle=False) as f:
                self.lines = [str(s) for s in f["lines"]]
                self.shapes = f["shapes"]
                self.offsets = f["offsets"]
                self.index = f["index"]
                self.depth = f["depth"]
                self.dense = bool(f["dense"]) if "dense" in f.files else False
        except (OSError, KeyError, ValueError, zipfile.BadZipFile) as exc:
            raise DatasetError(f"{path} is not a ground-truth cache written by export_gt_depth.py "
                               f"({exc})") from exc

    def __len__(self) -> int:
        return len(self.lines)

    def check_matches(self, entries: List[ListEntry]) -> None:
        """Raise DatasetError unless the cache was made from exactly these list lines."""
        lines = self.lines_of(entries)
        if len(lines) != len(self.lines):
            raise DatasetError(f"ground-truth cache {self.path} holds {len(self.lines)} frames but "
                               f"{entries[0].list_file} has {len(lines)}; re-run export_gt_depth.py")
        for entry, line, cached in zip(entries, lines, self.lines):
            if line != cached:
                raise DatasetError(f"{entry.where()}: {line!r} differs from the ground-truth cache "
                                   f"{self.path} ({cached!r}); re-run export_gt_depth.py")

    def __getitem__(self, i: int) -> np.ndarray:
        h, w = (int(v) for v in self.shapes[i])
        lo, hi = self.offsets[i], self.offsets[i + 1]
        if self.dense:
            return self.depth[lo:hi].astype(np.float64).reshape(h, w)
        depth = np.zeros(h * w, dtype=np.float64)
        depth[self.index[lo:hi]] = self.depth[lo:hi]
        return depth.reshape(h, w)

    @staticmethod
    def lines_of(entries: List[ListEntry]) -> List[str]:
        """The list lines a cache records, to detect one made from another list."""
        return [" ".join(e.fields) for e in entries]

    @staticmethod
    def write(path: str, entries: List[ListEntry], depths: List[np.ndarray]) -> None:
        """Store the GT maps of ``entries``: whole when more than half of all pixels are valid, else
        only their non-zero pixels with their indices."""
        flat = [d.reshape(-1) for d in depths]
        index = [np.flatnonzero(f) for f in flat]
        valid, total = sum(len(i) for i in index), sum(len(f) for f in flat)
        dense = 2 * valid > total
        stored = flat if dense else [f[i] for f, i in zip(flat, index)]
        values = np.concatenate(stored) if stored else np.zeros(0)
        if np.array_equal(values.astype(np.float32), values):
            values = values.astype(np.float32)
        offsets = np.zeros(len(flat) + 1, dtype=np.int64)
        offsets[1:] = np.cumsum([len(v) for v in stored])
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        tmp = f"{path}.tmp.npz"
        try:
            np.savez(tmp, lines=np.array(GTCache.lines_of(entries)), shapes=np.array([d.shape for d in depths], dtype=np.int64),
                     offsets=offsets, dense=np.array(dense), depth=values,
                     index=np.zeros(0, np.int64) if dense or not index else np.concatenate(index).astype(np.int64))
            os.replace(tmp, path)
        finally:  # an interrupted write leaves neither a torn cache nor its temporary file
            if os.path.exists(tmp):
                os.remove(tmp)


class KITTIEigenTest(Dataset):
    """Lines ``left_png right_png calib_dir velodyne_bin`` relative to ``root``.

    Items: ``image`` (3, h, w) in [-1, 1] at ``load_size``; ``depth`` the GT (H, W) float64 metres
    at the left image's original size; ``index``; ``path`` of the left image.
    """

    def __init__(self, root: str, list_file: str, load_size: Sequence[int] = LOAD_SIZE["KITTI"],
                 gt_cache: Optional[str] = None) -> None:
        self.root = root
        self.load_size = tuple(load_size)
        self.cache = GTCache(gt_cache) if gt_cache else None
        check = (0,) if self.cache else (0, 2, 3)
        self.entries = read_list(list_file, 4, root=root, check_fields=check)
        if self.cache:
            self.cache.check_matches(self.entries)

    def __len__(self) -> int:
        return len(self.entries)

    def ground_truth(self, i: int) -> np.ndarray:
        entry = self.entries[i]
        if self.cache is not None:
            return self.cache[i]
        left, _, calib, velo = (resolve(self.root, f) for f in entry.fields)
        try:
            return generate_depth_map(calib, velo, image_size(left, entry), image=f"image {left}")
        except DatasetError as exc:
            raise DatasetError(f"{entry.where()}: {exc}") from exc

    def __getitem__(self, i: int) -> dict:
        entry = self.entries[i]
        left = resolve(self.root, entry.fields[0])
        img = open_image(left, entry)
        return {"image": to_network_input(resize_image(img, self.load_size)),
                "depth": self.ground_truth(i), "index": i, "path": left}


EVAL_SET = EvalSet(
    name="KITTI", build=KITTIEigenTest, cacheable=True,
    layout="KITTI raw root (<date>/calib_*.txt, <date>/<drive>_sync/image_02|03/data/*.png, "
           "velodyne_points/data/*.bin); lines 'left right calib_dir velodyne', GT projected from the scan",
    depth_scale=DEPTH_SCALE["KITTI"], load_size=LOAD_SIZE["KITTI"], max_depth=DEPTH_SCALE["KITTI"],
    crop=EVAL_CROP["KITTI"], split="datasets/kitti/test.txt")
