"""Writers for predicted depth: raw float32 metres and colour-mapped images."""
from pathlib import Path
from typing import Optional, Union

import matplotlib
import numpy as np
from PIL import Image

PathLike = Union[str, Path]


def colorize(depth: np.ndarray, cmap: str = "magma_r", vmin: Optional[float] = None,
             vmax: Optional[float] = None) -> np.ndarray:
    """(H, W) depth -> (H, W, 3) uint8 through a matplotlib colormap; the range defaults to the
    map's own 5th-95th percentiles of positive values so that outliers do not flatten it."""
    depth = np.asarray(depth, dtype=np.float64)
    positive = depth[np.isfinite(depth) & (depth > 0)]
    if vmin is None:
        vmin = float(np.percentile(positive, 5)) if positive.size else 0.0
    if vmax is None:
        vmax = float(np.percentile(positive, 95)) if positive.size else 1.0
    scaled = (depth - vmin) / max(vmax - vmin, 1e-8)
    rgba = matplotlib.colormaps[cmap](np.clip(scaled, 0.0, 1.0))
    return (rgba[..., :3] * 255.0 + 0.5).astype(np.uint8)


def save_depth_npy(depth: np.ndarray, path: PathLike) -> None:
    """Depth in metres as a float32 .npy."""
    np.save(path, np.asarray(depth, dtype=np.float32))


def save_depth_color(depth: np.ndarray, path: PathLike, cmap: str = "magma_r",
                     vmin: Optional[float] = None, vmax: Optional[float] = None) -> None:
    """Depth as a colour-mapped PNG."""
    Image.fromarray(colorize(depth, cmap, vmin, vmax)).save(path)
