"""Independent, deliberately plain re-implementations of docs/release.md §2.2 / §2.3 / §4, for the tests to
compare the project against. Nothing here imports the project's data or metric code."""
from pathlib import Path
from typing import Dict, Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

CROP_FRACTIONS = {"garg": (0.40810811, 0.99189189, 0.03594771, 0.96405229),
                  "eigen": (0.3324324, 0.91351351, 0.0359477, 0.96405229)}


def read_calib(path: Path) -> Dict[str, np.ndarray]:
    values = {}
    for line in Path(path).read_text().splitlines():
        key, _, rest = line.partition(":")
        try:
            values[key] = np.array([float(v) for v in rest.split()])
        except ValueError:
            continue
    return values


def velo_to_image(calib_dir: Path) -> np.ndarray:
    """P_rect_02 · R_rect_00 · [R|T], as in monodepth's generate_depth_map."""
    cam = read_calib(Path(calib_dir) / "calib_cam_to_cam.txt")
    velo = read_calib(Path(calib_dir) / "calib_velo_to_cam.txt")
    rt = np.vstack([np.hstack([velo["R"].reshape(3, 3), velo["T"].reshape(3, 1)]), [0, 0, 0, 1.0]])
    r0 = np.eye(4)
    r0[:3, :3] = cam["R_rect_00"].reshape(3, 3)
    return np.dot(np.dot(cam["P_rect_02"].reshape(3, 4), r0), rt)


def project(points: np.ndarray, proj: np.ndarray, shape: Sequence[int]) -> np.ndarray:
    """Homogeneous (N, 4) velodyne points -> (H, W) depth: x >= 0, round - 1, smallest wins, neg -> 0."""
    h, w = shape
    points = points[points[:, 0] >= 0]
    im = np.dot(proj, points.T).T
    depth = im[:, 2]
    col = np.round(im[:, 0] / depth) - 1
    row = np.round(im[:, 1] / depth) - 1
    keep = (col >= 0) & (row >= 0) & (col < w) & (row < h)
    out = np.full((h, w), np.inf)
    np.minimum.at(out, (row[keep].astype(int), col[keep].astype(int)), depth[keep])
    out[np.isinf(out)] = 0
    out[out < 0] = 0
    return out


def kitti_gt(calib_dir: Path, velo_path: Path, shape: Sequence[int]) -> np.ndarray:
    points = np.fromfile(velo_path, dtype=np.float32).reshape(-1, 4)
    points[:, 3] = 1.0
    return project(points, velo_to_image(calib_dir), shape)


def network_input(path: Path, size: Sequence[int]) -> torch.Tensor:
    """(1, 3, h, w): PIL bicubic resize, then (x / 255 - 0.5) / 0.5."""
    img = Image.open(path).convert("RGB").resize((size[1], size[0]), Image.BICUBIC)
    x = np.asarray(img).astype(np.float32) / np.float32(255)
    x = (x - np.float32(0.5)) / np.float32(0.5)
    return torch.from_numpy(x).permute(2, 0, 1)[None].contiguous()


def load_state(path: Path) -> Dict[str, torch.Tensor]:
    state = torch.load(path, map_location="cpu", weights_only=True)
    return {k[len("module."):] if k.startswith("module.") else k: v for k, v in state.items()}


def load_model(paths: Dict[str, Path]) -> torch.nn.Module:
    from models import S2RDepthNet

    model = S2RDepthNet()
    for name, path in paths.items():
        getattr(model, name).load_state_dict(load_state(path))
    return model.eval()


def to_metres(pred: torch.Tensor, gt_shape: Sequence[int], max_depth: float) -> np.ndarray:
    """A (1, 1, h, w) [-1, 1] output, bilinearly resized (align_corners=True) to the GT, in metres."""
    pred = F.interpolate(pred, size=tuple(gt_shape), mode="bilinear", align_corners=True)
    return ((pred[0, 0] + 1) / 2 * max_depth).numpy()


@torch.no_grad()
def predict_metres(model: torch.nn.Module, image: torch.Tensor, gt_shape: Sequence[int], max_depth: float,
                   flip: bool = False) -> np.ndarray:
    """Full-resolution output (flip-averaged when asked), resized to the GT, mapped to metres."""
    pred = model(image).depth[-1]
    if flip:
        pred = (pred + model(image.flip(-1)).depth[-1].flip(-1)) / 2
    return to_metres(pred, gt_shape, max_depth)


def metrics(gt: np.ndarray, pred: np.ndarray) -> Dict[str, float]:
    ratio = np.maximum(gt / pred, pred / gt)
    return {"abs_rel": np.mean(np.abs(gt - pred) / gt),
            "sq_rel": np.mean((gt - pred) ** 2 / gt),
            "rmse": np.sqrt(np.mean((gt - pred) ** 2)),
            "rmse_log": np.sqrt(np.mean((np.log(gt) - np.log(pred)) ** 2)),
            "a1": np.mean(ratio < 1.25), "a2": np.mean(ratio < 1.25 ** 2), "a3": np.mean(ratio < 1.25 ** 3),
            "log10": np.mean(np.abs(np.log10(gt) - np.log10(pred)))}


def evaluate_one(pred: np.ndarray, gt: np.ndarray, max_depth: float, crop: str = "garg",
                 median: bool = True, clip_after: bool = False,
                 min_depth: float = 1e-3) -> Optional[Dict[str, float]]:
    pred = pred.astype(np.float64)
    if not clip_after:
        pred = np.clip(pred, min_depth, max_depth)
    mask = (gt > min_depth) & (gt < max_depth)
    if crop != "none":
        h, w = gt.shape
        top, bottom, left, right = CROP_FRACTIONS[crop]
        region = np.zeros_like(mask)
        region[int(np.floor(top * h)):int(np.floor(bottom * h)),
               int(np.floor(left * w)):int(np.floor(right * w))] = True
        mask &= region
    if not mask.any():
        return None
    g, p = gt[mask], pred[mask]
    if median:
        p = p * np.median(g) / np.median(p)
    if clip_after:
        p = np.clip(p, min_depth, max_depth)
    return metrics(g, p)


def mean_over_images(per_image) -> Dict[str, float]:
    per_image = [m for m in per_image if m is not None]
    return {k: float(np.mean([m[k] for m in per_image])) for k in per_image[0]}
