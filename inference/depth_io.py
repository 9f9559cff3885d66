"""Writers for predicted depth (float32 metres, colour-mapped and 16-bit PNGs, point clouds,
STE/DSA maps) and the pictures made from them; infer.py and test.py share them."""
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Tuple, Union

import matplotlib
import numpy as np
from PIL import Image

from .pointcloud import Intrinsics, backproject, write_ply

PathLike = Union[str, Path]
DEFAULT_CMAP = "magma_r"
UINT16_DEPTH_SCALE = 256.0   # KITTI's 16-bit depth PNGs store metres x 256
NO_GT_COLOR = (128, 128, 128)  # pixels without ground truth in comparison figures
PANEL_GAP = 4                # white pixels between the panels of a figure


def auto_range(depth: np.ndarray) -> Tuple[float, float]:
    """5th-95th percentile of the finite positive values, so that outliers do not flatten the map."""
    positive = depth[np.isfinite(depth) & (depth > 0)]
    if not positive.size:
        return 0.0, 1.0
    return float(np.percentile(positive, 5)), float(np.percentile(positive, 95))


def colorize(depth: np.ndarray, cmap: str = DEFAULT_CMAP, vmin: Optional[float] = None,
             vmax: Optional[float] = None) -> np.ndarray:
    """(H, W) depth -> (H, W, 3) uint8 through a matplotlib colormap; a bound left as None comes
    from ``auto_range`` of this depth."""
    depth = np.asarray(depth, dtype=np.float64)
    if vmin is None or vmax is None:
        lo, hi = auto_range(depth)
        vmin = lo if vmin is None else vmin
        vmax = hi if vmax is None else vmax
    scaled = (depth - vmin) / max(vmax - vmin, 1e-8)
    rgba = matplotlib.colormaps[cmap](np.clip(scaled, 0.0, 1.0))
    return (rgba[..., :3] * 255.0 + 0.5).astype(np.uint8)


def save_depth_npy(depth: np.ndarray, path: PathLike) -> None:
    """Depth in metres as a float32 .npy."""
    np.save(path, np.asarray(depth, dtype=np.float32))


def save_depth_color(depth: np.ndarray, path: PathLike, cmap: str = DEFAULT_CMAP,
                     vmin: Optional[float] = None, vmax: Optional[float] = None) -> None:
    """Depth as a colour-mapped PNG."""
    Image.fromarray(colorize(depth, cmap, vmin, vmax)).save(path)


def depth_to_uint16(depth: np.ndarray) -> np.ndarray:
    """Metres -> uint16 metres x 256 (KITTI's convention), rounded and clipped to 0..65535."""
    scaled = np.nan_to_num(np.asarray(depth, dtype=np.float64) * UINT16_DEPTH_SCALE, nan=0.0)
    return np.clip(np.round(scaled), 0, np.iinfo(np.uint16).max).astype(np.uint16)


def save_depth_png16(depth: np.ndarray, path: PathLike) -> None:
    """Depth as a 16-bit PNG readable by KITTI tools (value / 256 = metres; 0 = no depth)."""
    Image.fromarray(depth_to_uint16(depth)).save(path)


def save_grey_map(values: np.ndarray, path: PathLike) -> None:
    """A map in [0, 1] (STE structure, DSA attention) as an 8-bit greyscale PNG."""
    grey = np.clip(np.nan_to_num(np.asarray(values, dtype=np.float64)), 0.0, 1.0) * 255.0 + 0.5
    Image.fromarray(grey.astype(np.uint8)).save(path)


def stack_panels(panels: List[np.ndarray], axis: int) -> np.ndarray:
    """(H, W, 3) uint8 panels of one height (axis 1) or one width (axis 0) joined with white gaps."""
    gap_shape = list(panels[0].shape)
    gap_shape[axis] = PANEL_GAP
    gap = np.full(gap_shape, 255, dtype=np.uint8)
    parts = [panels[0]]
    for panel in panels[1:]:
        parts += [gap, panel]
    return np.concatenate(parts, axis=axis)


def resize_rgb(image: np.ndarray, shape: Tuple[int, int]) -> np.ndarray:
    """An (H, W, 3) uint8 image at ``shape`` (H, W); unchanged when it already has that size."""
    if image.shape[:2] == tuple(shape):
        return image
    return np.asarray(Image.fromarray(image).resize((shape[1], shape[0]), Image.BILINEAR))


def dilate_sparse(depth: np.ndarray, radius: int) -> np.ndarray:
    """Grow each valid (> 0) pixel into its empty neighbours within ``radius`` (nearest depth
    wins), so that sparse lidar ground truth is visible in a picture."""
    h, w = depth.shape
    out = np.where(depth > 0, depth, np.inf)
    padded = np.pad(out, radius, constant_values=np.inf)
    grown = out.copy()
    for dy in range(2 * radius + 1):
        for dx in range(2 * radius + 1):
            np.minimum(grown, padded[dy:dy + h, dx:dx + w], out=grown)
    filled = np.where(depth > 0, depth, grown)
    return np.where(np.isfinite(filled), filled, 0.0)


def comparison_figure(image: np.ndarray, pred: np.ndarray, gt: np.ndarray, cmap: str = DEFAULT_CMAP,
                      sparse_radius: int = 2) -> np.ndarray:
    """image | prediction | ground truth side by side at the GT's size, both depths on the colour
    scale of the GT (pixels without GT in grey). GT with under half its pixels valid (lidar) is
    dilated by ``sparse_radius`` pixels so that it can be seen."""
    gt = np.asarray(gt, dtype=np.float64)
    valid = gt > 0
    vmin, vmax = auto_range(gt if valid.any() else pred)
    shown = dilate_sparse(gt, sparse_radius) if valid.mean() < 0.5 else gt
    gt_color = colorize(shown, cmap, vmin, vmax)
    gt_color[shown <= 0] = NO_GT_COLOR
    return stack_panels([resize_rgb(image, gt.shape), colorize(pred, cmap, vmin, vmax), gt_color], axis=1)


def overview_figure(image: np.ndarray, depth: np.ndarray, cmap: str = DEFAULT_CMAP,
                    vmin: Optional[float] = None, vmax: Optional[float] = None) -> np.ndarray:
    """The image above its coloured depth (the README's example picture)."""
    return stack_panels([resize_rgb(image, depth.shape), colorize(depth, cmap, vmin, vmax)], axis=0)


def save_rgb(image: np.ndarray, path: PathLike) -> None:
    Image.fromarray(image).save(path)


@dataclass
class DepthWriter:
    """The per-image files of infer.py and of test.py --save_pred, under one naming scheme:
    ``<name>_depth.npy`` (float32 metres), ``<name>_depth.png`` (coloured), and optionally
    ``<name>_depth16.png``, ``<name>_points.ply``, ``<name>_structure.png``,
    ``<name>_attention.png`` and ``<name>_overview.png``."""

    out_dir: Path
    cmap: str = DEFAULT_CMAP
    vmin: Optional[float] = None
    vmax: Optional[float] = None
    save_16bit: bool = False
    save_ply: bool = False
    ply_binary: bool = True
    save_maps: bool = False
    save_overview: bool = False

    def write(self, name: str, depth: np.ndarray, image: Optional[np.ndarray] = None,
              intrinsics: Optional[Intrinsics] = None, structure: Optional[np.ndarray] = None,
              attention: Optional[np.ndarray] = None) -> List[Path]:
        """Write the enabled files for one (H, W) depth map in metres; ``image`` is the (H, W, 3)
        uint8 input (PLY colours, overview), ``structure``/``attention`` (H, W) maps in [0, 1].
        Returns the paths written."""
        out = Path(self.out_dir)
        out.mkdir(parents=True, exist_ok=True)
        written = [out / f"{name}_depth.npy", out / f"{name}_depth.png"]
        save_depth_npy(depth, written[0])
        save_depth_color(depth, written[1], self.cmap, self.vmin, self.vmax)
        if self.save_16bit:
            written.append(out / f"{name}_depth16.png")
            save_depth_png16(depth, written[-1])
        if self.save_ply:
            if image is None or intrinsics is None:
                raise ValueError("save_ply needs the input image and the camera intrinsics")
            points, mask = backproject(depth, intrinsics)
            written.append(out / f"{name}_points.ply")
            write_ply(written[-1], points, image[mask], self.ply_binary)
        if self.save_maps:
            if structure is None or attention is None:
                raise ValueError("save_maps needs the structure and attention maps")
            written += [out / f"{name}_structure.png", out / f"{name}_attention.png"]
            save_grey_map(structure, written[-2])
            save_grey_map(attention, written[-1])
        if self.save_overview:
            if image is None:
                raise ValueError("save_overview needs the input image")
            written.append(out / f"{name}_overview.png")
            save_rgb(overview_figure(image, depth, self.cmap, self.vmin, self.vmax), written[-1])
        return written
