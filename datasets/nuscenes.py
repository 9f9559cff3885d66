"""NUSCENES: CAM_FRONT key frames of nuScenes (Caesar et al., CVPR 2020) with the LIDAR_TOP sweep of
the same sample projected into the image through the official v1.0 tables."""
import json
import os
from typing import Dict, List, Optional, Sequence

import numpy as np
from PIL import Image

from constants import DEPTH_SCALE

from .common import DatasetError, ListEntry, image_size, open_image, read_list
from .evalset import EvalSet
from .groundtruth import EvalDataset

CAMERA, LIDAR = "CAM_FRONT", "LIDAR_TOP"
TABLES = ("sample", "sample_data", "calibrated_sensor", "ego_pose")
LIDAR_FIELDS = 5          # .pcd.bin: float32 x, y, z, intensity, ring index
MIN_DISTANCE = 1.0        # metres in front of the camera, as the devkit's map_pointcloud_to_image


def load_table(folder: str, name: str) -> List[dict]:
    path = os.path.join(folder, f"{name}.json")
    try:
        with open(path, encoding="utf-8") as f:
            table = json.load(f)
    except (OSError, ValueError) as exc:
        raise DatasetError(f"cannot read nuScenes table {path}: {exc}") from exc
    if not isinstance(table, list):
        raise DatasetError(f"nuScenes table {path} is not a JSON list of records")
    return table


def quaternion_matrix(q: Sequence[float]) -> np.ndarray:
    """3x3 rotation of a unit quaternion (w, x, y, z), the tables' order."""
    w, x, y, z = np.asarray(q, dtype=np.float64) / np.linalg.norm(q)
    return np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
                     [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
                     [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)]])


def pose_matrix(record: dict, where: str) -> np.ndarray:
    """4x4 transform of a calibrated_sensor or ego_pose record (sensor -> ego, ego -> global)."""
    try:
        m = np.eye(4)
        m[:3, :3] = quaternion_matrix(record["rotation"])
        m[:3, 3] = np.asarray(record["translation"], dtype=np.float64).reshape(3)
    except (KeyError, ValueError, TypeError) as exc:
        raise DatasetError(f"{where}: record {record.get('token')!r} has no valid rotation/translation "
                           f"({exc})") from exc
    return m


def lidar_to_camera(tables: Dict[str, Dict[str, dict]], folder: str, cam: dict, lidar: dict) -> np.ndarray:
    """4x4 transform lidar -> ego (lidar time) -> global -> ego (camera time) -> camera."""
    def record(table: str, token: str) -> dict:
        if token not in tables[table]:
            raise DatasetError(f"{os.path.join(folder, table + '.json')}: no record with token {token!r}")
        return tables[table][token]

    where = {t: os.path.join(folder, f"{t}.json") for t in TABLES}
    lidar_to_ego = pose_matrix(record("calibrated_sensor", lidar["calibrated_sensor_token"]),
                               where["calibrated_sensor"])
    ego_to_global = pose_matrix(record("ego_pose", lidar["ego_pose_token"]), where["ego_pose"])
    cam_ego_to_global = pose_matrix(record("ego_pose", cam["ego_pose_token"]), where["ego_pose"])
    cam_to_ego = pose_matrix(record("calibrated_sensor", cam["calibrated_sensor_token"]),
                             where["calibrated_sensor"])
    return np.linalg.inv(cam_to_ego) @ np.linalg.inv(cam_ego_to_global) @ ego_to_global @ lidar_to_ego


def camera_intrinsics(tables: Dict[str, Dict[str, dict]], folder: str, cam: dict) -> np.ndarray:
    calib = tables["calibrated_sensor"][cam["calibrated_sensor_token"]]
    k = np.asarray(calib.get("camera_intrinsic") or [], dtype=np.float64)
    if k.shape != (3, 3):
        raise DatasetError(f"{os.path.join(folder, 'calibrated_sensor.json')}: record "
                           f"{calib.get('token')!r} has no 3x3 camera_intrinsic")
    return k


def load_lidar(path: str) -> np.ndarray:
    """A LIDAR_TOP sweep as (N, 3) float64 x, y, z in the lidar frame."""
    try:
        raw = np.fromfile(path, dtype=np.float32)
    except OSError as exc:
        raise DatasetError(f"cannot read lidar sweep {path}: {exc}") from exc
    if raw.size % LIDAR_FIELDS:
        raise DatasetError(f"lidar sweep {path} is not a float32 N x {LIDAR_FIELDS} array")
    return raw.reshape(-1, LIDAR_FIELDS)[:, :3].astype(np.float64)


def project_points(points_cam: np.ndarray, k: np.ndarray, shape: Sequence[int]) -> np.ndarray:
    """Sparse (H, W) depth map of camera-frame points: pixel = the nearest pixel centre of K·p/z,
    points nearer than MIN_DISTANCE dropped, the smallest depth kept where points share a pixel."""
    h, w = int(shape[0]), int(shape[1])
    points_cam = points_cam[points_cam[:, 2] > MIN_DISTANCE]
    uvz = points_cam @ k.T
    z = points_cam[:, 2]
    col = np.round(uvz[:, 0] / z)
    row = np.round(uvz[:, 1] / z)
    inside = (col >= 0) & (row >= 0) & (col < w) & (row < h)
    depth = np.full(h * w, np.inf)
    np.minimum.at(depth, row[inside].astype(np.int64) * w + col[inside].astype(np.int64), z[inside])
    depth[np.isinf(depth)] = 0
    return depth.reshape(h, w)


class NuScenesTest(EvalDataset):
    """``root`` is a table folder (``<dataroot>/v1.0-trainval``, ``v1.0-mini``...) whose
    sample.json, sample_data.json, calibrated_sensor.json and ego_pose.json describe the data
    under its parent; list lines are sample tokens. Each sample's CAM_FRONT key frame is the image,
    its LIDAR_TOP key frame the ground truth."""

    def __init__(self, root: str, list_file: str, load_size: Sequence[int] = (192, 352),
                 gt_cache: Optional[str] = None) -> None:
        super().__init__(load_size, gt_cache)
        self.folder = root
        self.dataroot = os.path.dirname(os.path.abspath(root))
        self.entries = read_list(list_file, 1)
        tables = {t: {r.get("token"): r for r in load_table(root, t)} for t in TABLES}
        key_frames = {}
        for record in tables["sample_data"].values():
            channel = record.get("filename", "").split("/")[:2]
            if record.get("is_key_frame") and channel[0] == "samples" and channel[1:] in ([CAMERA], [LIDAR]):
                key_frames[(record.get("sample_token"), channel[1])] = record
        self.frames = [self._frame(e, tables, key_frames) for e in self.entries]
        self.check_cache()

    def _frame(self, entry: ListEntry, tables: dict, key_frames: dict) -> dict:
        token = entry.fields[0]
        if token not in tables["sample"]:
            raise DatasetError(f"{entry.where()}: sample {token!r} is not in "
                               f"{os.path.join(self.folder, 'sample.json')}")
        found = {c: key_frames.get((token, c)) for c in (CAMERA, LIDAR)}
        for channel, record in found.items():
            if record is None:
                raise DatasetError(f"{entry.where()}: sample {token!r} has no {channel} key frame in "
                                   f"{os.path.join(self.folder, 'sample_data.json')}")
        cam, lidar = found[CAMERA], found[LIDAR]
        frame = {"image": os.path.join(self.dataroot, cam["filename"]),
                 "lidar": os.path.join(self.dataroot, lidar["filename"])}
        for path in (frame["image"], frame["lidar"]) if self.cache is None else (frame["image"],):
            if not os.path.isfile(path):
                raise DatasetError(f"{entry.where()}: file not found: {path}")
        if self.cache is None:
            frame["lidar_to_camera"] = lidar_to_camera(tables, self.folder, cam, lidar)
            frame["intrinsics"] = camera_intrinsics(tables, self.folder, cam)
        return frame

    def image(self, i: int) -> Image.Image:
        return open_image(self.frames[i]["image"], self.entries[i])

    def compute_ground_truth(self, i: int) -> np.ndarray:
        frame = self.frames[i]
        points = load_lidar(frame["lidar"])
        m = frame["lidar_to_camera"]
        return project_points(points @ m[:3, :3].T + m[:3, 3], frame["intrinsics"],
                              image_size(frame["image"], self.entries[i]))

    def frame_path(self, i: int) -> str:
        return self.frames[i]["image"]


EVAL_SET = EvalSet(
    name="NUSCENES", build=NuScenesTest, cacheable=True,
    layout="--root <dataroot>/v1.0-<version> (sample, sample_data, calibrated_sensor, ego_pose .json); "
           "lines: sample tokens; CAM_FRONT image, LIDAR_TOP points projected, smallest depth per pixel",
    depth_scale=DEPTH_SCALE["KITTI"], load_size=(192, 352), max_depth=DEPTH_SCALE["KITTI"], crop="none")
