"""Independent, deliberately plain references written from docs/release.md (§1 the input, §2.2 the KITTI
ground truth, §2.3 NYU's, §4 the protocol and evalog.txt), for the tests to compare the project against.

Nothing here imports the project's data, evaluation or inference code, and none of it follows the
project's approach: the projections loop over points one at a time, the evaluation works in the
release's float32 arrays, in place, as its test.py does. The network itself (``models``) is not under
test here: ``load_model`` builds it only to produce raw outputs.
"""
from collections import OrderedDict
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

METRIC_ORDER = ("abs_rel", "sq_rel", "rmse", "rmse_log", "a1", "a2", "a3")
# Fractions of (H, H, W, W) for rows [top, bottom) and columns [left, right) (§4; Eigen: monodepth2's).
CROP_FRACTIONS = {"garg": (0.40810811, 0.99189189, 0.03594771, 0.96405229),
                  "eigen": (0.3324324, 0.91351351, 0.0359477, 0.96405229)}
FLOAT_CHARS = set("0123456789.e+- ")


# --- KITTI ground truth (§2.2) ----------------------------------------------------------------------

def read_calib(path: Path) -> Dict[str, np.ndarray]:
    """§2.2 step 1: split at the first ':', floats when the value uses only float characters."""
    values = {}
    for line in Path(path).read_text().splitlines():
        key, _, rest = line.partition(":")
        rest = rest.strip()
        if rest and FLOAT_CHARS.issuperset(rest):
            values[key] = np.array([float(v) for v in rest.split()])
    return values


def velo_to_image(calib_dir: Path) -> np.ndarray:
    """§2.2 step 2: P_rect_02 · R_rect_00 (4x4) · [R|T] (4x4)."""
    cam = read_calib(Path(calib_dir) / "calib_cam_to_cam.txt")
    velo = read_calib(Path(calib_dir) / "calib_velo_to_cam.txt")
    rt = np.eye(4)
    rt[:3, :3] = velo["R"].reshape(3, 3)
    rt[:3, 3] = velo["T"]
    r0 = np.eye(4)
    r0[:3, :3] = cam["R_rect_00"].reshape(3, 3)
    return np.dot(np.dot(cam["P_rect_02"].reshape(3, 4), r0), rt)


def load_scan(path: Path) -> np.ndarray:
    points = np.fromfile(path, dtype=np.float32).reshape(-1, 4)
    points[:, 3] = 1.0
    return points


def image_points(points: np.ndarray, proj: np.ndarray, shape: Sequence[int]) -> List[Tuple[int, int, float]]:
    """§2.2 steps 3-4: (row, col, camera depth) of every point kept, in scan order."""
    h, w = shape
    points = points[points[:, 0] >= 0]
    q = np.dot(proj, points.T).T
    cols = np.round(q[:, 0] / q[:, 2]) - 1
    rows = np.round(q[:, 1] / q[:, 2]) - 1
    keep = (cols >= 0) & (rows >= 0) & (cols < w) & (rows < h)
    return list(zip(rows[keep].astype(int).tolist(), cols[keep].astype(int).tolist(), q[keep, 2].tolist()))


def nearest_depth(kept: List[Tuple[int, int, float]], shape: Sequence[int]) -> np.ndarray:
    """docs/spec.md §2.2 (this project's D1): every pixel keeps the smallest depth that hit it."""
    depth = np.zeros(shape)
    seen = set()
    for row, col, z in kept:
        if (row, col) not in seen or z < depth[row, col]:
            depth[row, col] = z
            seen.add((row, col))
    depth[depth < 0] = 0
    return depth


def release_depth(kept: List[Tuple[int, int, float]], shape: Sequence[int]) -> np.ndarray:
    """§2.2 steps 5-7, the release's way: write every point (the last one on a pixel stays), then
    for each key ``row·(W−1) + col − 1`` (its sub2ind) shared by several points, give the pixel of
    the group's first point the group's minimum."""
    h, w = shape
    depth = np.zeros(shape)
    groups: "OrderedDict[int, List[Tuple[int, int, float]]]" = OrderedDict()
    for row, col, z in kept:
        depth[row, col] = z
        groups.setdefault(row * (w - 1) + col - 1, []).append((row, col, z))
    for group in groups.values():
        if len(group) > 1:
            row, col, _ = group[0]
            depth[row, col] = min(z for _, _, z in group)
    depth[depth < 0] = 0
    return depth


def project(points: np.ndarray, proj: np.ndarray, shape: Sequence[int]) -> np.ndarray:
    return nearest_depth(image_points(points, proj, shape), shape)


def kitti_gt(calib_dir: Path, velo_path: Path, shape: Sequence[int]) -> np.ndarray:
    """The specification's ground truth (nearest point per pixel)."""
    return project(load_scan(velo_path), velo_to_image(calib_dir), shape)


def release_kitti_gt(calib_dir: Path, velo_path: Path, shape: Sequence[int]) -> np.ndarray:
    """The release's ground truth, duplicate handling through its sub2ind key included."""
    return release_depth(image_points(load_scan(velo_path), velo_to_image(calib_dir), shape), shape)


def crop_region(shape: Sequence[int], crop: str) -> np.ndarray:
    """§4 step 3: the crop's rows and columns, products truncated by ``astype(np.int32)``."""
    h, w = shape
    region = np.zeros(shape, dtype=bool)
    if crop == "none":
        region[:] = True
        return region
    top, bottom, left, right = (np.array(CROP_FRACTIONS[crop]) * [h, h, w, w]).astype(np.int32)
    region[top:bottom, left:right] = True
    return region


# --- NYU ground truth (§2.3) -------------------------------------------------------------------------

def nyu_gt(path: Path) -> np.ndarray:
    """The 16-bit millimetre PNG as float32, divided by 1000 in float32, as the release reads it."""
    gt = np.array(Image.open(path)).astype(np.float32)
    gt /= 1000.0
    return gt


# --- the network's input and output (§1, §2.2) -------------------------------------------------------

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


@torch.no_grad()
def network_output(model: torch.nn.Module, image: torch.Tensor, flip: bool = False) -> torch.Tensor:
    """The last (full-resolution) DP output; with ``flip`` averaged with the mirrored image's, mirrored back."""
    pred = model(image).depth[-1]
    if flip:
        pred = (pred + model(image.flip(-1)).depth[-1].flip(-1)) / 2
    return pred


def to_metres(pred: torch.Tensor, gt_shape: Sequence[int], max_depth: float) -> np.ndarray:
    """A (1, 1, h, w) output resized (bilinear, align_corners=True) to the GT, then the release's
    in-place float32 ``+= 1``, ``/= 2``, ``*= max_depth``."""
    metres = np.squeeze(F.interpolate(pred, size=list(gt_shape), mode="bilinear", align_corners=True).numpy())
    metres += 1.0
    metres /= 2.0
    metres *= max_depth
    return metres


def predict_metres(model: torch.nn.Module, image: torch.Tensor, gt_shape: Sequence[int], max_depth: float,
                   flip: bool = False) -> np.ndarray:
    return to_metres(network_output(model, image, flip), gt_shape, max_depth)


# --- the evaluation (§4) ------------------------------------------------------------------------------

def metrics(gt: np.ndarray, pred: np.ndarray) -> Dict[str, float]:
    """§4 step 5, in the arrays' own precision as the release computes them."""
    thresh = np.maximum(gt / pred, pred / gt)
    return {"abs_rel": np.mean(np.abs(gt - pred) / gt), "sq_rel": np.mean((gt - pred) ** 2 / gt),
            "rmse": np.sqrt(((gt - pred) ** 2).mean()),
            "rmse_log": np.sqrt(((np.log(gt) - np.log(pred)) ** 2).mean()),
            "a1": (thresh < 1.25).mean(), "a2": (thresh < 1.25 ** 2).mean(), "a3": (thresh < 1.25 ** 3).mean()}


def evaluate_one(pred: np.ndarray, gt: np.ndarray, max_depth: float, crop: str = "garg",
                 median: bool = True, clip_after: bool = False,
                 min_depth: float = 1e-3) -> Optional[Dict[str, float]]:
    """One image, the release's way: clip the float32 prediction in place, mask, crop, scale
    ``pred[mask]`` in place by the ratio of medians; ``clip_after`` (monodepth2's order, not the
    release's) clips after scaling instead. None when no pixel is valid (the release gets NaN)."""
    pred = pred.astype(np.float32)  # a copy
    if not clip_after:
        pred[pred < min_depth] = min_depth
        pred[pred > max_depth] = max_depth
    mask = np.logical_and(gt > min_depth, gt < max_depth) & crop_region(gt.shape, crop)
    if not mask.any():
        return None
    if median:
        # NumPy 1.x, which the release ran, multiplies a float32 array by a float64 scalar in float32
        pred[mask] *= np.float32(np.median(gt[mask]) / np.median(pred[mask]))
    p = pred[mask]
    if clip_after:
        p = np.clip(p, np.float32(min_depth), np.float32(max_depth))
    return metrics(gt[mask], p)


def mean_over_images(per_image) -> Dict[str, float]:
    """§4 step 6: each metric's mean over the images (frames without valid pixels left out, D9)."""
    per_image = [m for m in per_image if m is not None]
    return {k: np.array([m[k] for m in per_image]).mean() for k in per_image[0]}


def evalog(means: Dict[str, float], iterations: int) -> str:
    """The release's evalog.txt: its four writes, then save_test's two format strings."""
    return ("Done testing -- epoch limit reached" + "after %d iteration \n\n" % iterations
            + "{:>10}, {:>10}, {:>10}, {:>10}, {:>10}, {:>10}, {:>10}\n".format(*METRIC_ORDER)
            + "{:10.4f}, {:10.4f}, {:10.4f}, {:10.4f}, {:10.4f}, {:10.4f}, {:10.4f}\n".format(
                *(means[k] for k in METRIC_ORDER)))
