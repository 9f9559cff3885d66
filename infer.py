"""Predict depth for your own images with S2R-DepthNet.

Example (outdoor model; --max_depth 8 --loadSize 192 256 for the indoor one):
    python infer.py --input photos/ 'drive/**/*.png' --output_dir out --checkpoint_dir checkpoints \
        --save_16bit --save_ply --calib 2011_09_26/calib_cam_to_cam.txt

Every image is resized to --loadSize (so any images batch together), run through the network,
and its depth resized back to the image's own size.
"""
import argparse
import glob
import os
import sys
from collections import Counter, defaultdict
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from datasets.common import DatasetError, open_image, resize_image, to_network_input
from options.infer_options import check_infer_args, infer_parser
from utils.checkpoint import checkpoint_paths, load_s2r
from utils.depth_io import DepthWriter
from utils.errors import exit_on_user_error
from utils.evaluation import predict, to_gt_size
from utils.pointcloud import Intrinsics, read_kitti_intrinsics
from utils.runtime import resolve_device, worker_init

IMAGE_EXTENSIONS = {".png", ".jpg", ".jpeg", ".bmp", ".ppm", ".tif", ".tiff", ".webp"}
MAX_LISTED_SKIPS = 10


def collect_inputs(specs: Sequence[str]) -> Tuple[List[Path], List[str]]:
    """Files named by ``specs`` (files as given, folders' image files, glob matches), each once,
    and a warning for every spec that names nothing."""
    found, warnings = [], []
    for spec in specs:
        if os.path.isfile(spec):
            matches = [spec]
        elif os.path.isdir(spec):
            matches = sorted(str(p) for p in Path(spec).iterdir()
                             if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
            if not matches:
                warnings.append(f"{spec}: folder holds no image files ({', '.join(sorted(IMAGE_EXTENSIONS))})")
        elif any(c in spec for c in "*?["):
            matches = sorted(p for p in glob.glob(spec, recursive=True) if os.path.isfile(p))
            if not matches:
                warnings.append(f"{spec}: no file matches the pattern")
        else:
            matches = []
            warnings.append(f"{spec}: no such file or folder")
        found += [Path(p).absolute() for p in matches]
    unique = list(dict.fromkeys(found))
    return unique, warnings


def output_names(paths: Sequence[Path]) -> List[str]:
    """The output name of each input: its stem, or, for inputs that share a stem, the stem prefixed
    by the folders that tell them apart (and suffixed by the extension when only that differs)."""
    names = [p.stem for p in paths]
    groups = defaultdict(list)
    for i, p in enumerate(paths):
        groups[p.stem].append(i)
    for stem, members in groups.items():
        if len(members) < 2:
            continue
        common = os.path.commonpath([str(paths[i].parent) for i in members])
        for i in members:
            names[i] = "_".join([*paths[i].parent.relative_to(common).parts, stem])
        counts = Counter(names[i] for i in members)
        for i in members:
            if counts[names[i]] > 1:
                names[i] += "_" + paths[i].suffix.lstrip(".")
    seen = Counter()
    for i, name in enumerate(names):  # a prefixed name may still equal another input's stem
        seen[name] += 1
        if seen[name] > 1:
            names[i] = f"{name}_{seen[name]}"
    return names


class ImageInputs(Dataset):
    """Items: ``image`` (3, h, w) in [-1, 1] at ``load_size``, ``rgb`` the (H, W, 3) uint8 original,
    ``index``; or ``index`` and ``error`` for a file that cannot be decoded."""

    def __init__(self, paths: Sequence[Path], load_size: Sequence[int]) -> None:
        self.paths = list(paths)
        self.load_size = tuple(load_size)

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> dict:
        try:
            img = open_image(str(self.paths[i]))
        except (DatasetError, Image.DecompressionBombError) as exc:
            return {"index": i, "error": str(exc)}
        return {"image": to_network_input(resize_image(img, self.load_size)), "rgb": np.asarray(img),
                "index": i}


def collate_inputs(batch: List[dict]) -> dict:
    """Readable items stacked into one tensor; unreadable ones kept aside for the warnings."""
    good = [b for b in batch if "error" not in b]
    return {"image": torch.stack([b["image"] for b in good]) if good else None,
            "rgb": [b["rgb"] for b in good], "index": [b["index"] for b in good],
            "errors": [b for b in batch if "error" in b]}


def resize_map(values: torch.Tensor, size: Sequence[int]) -> np.ndarray:
    """A (1, h, w) STE/DSA map resized like the depth (bilinear, align_corners=True) to ``size``."""
    up = F.interpolate(values[None].float(), size=tuple(size), mode="bilinear", align_corners=True)
    return up[0, 0].cpu().numpy()


def camera_intrinsics(args: argparse.Namespace) -> Optional[Intrinsics]:
    """Read --calib up front, so that a bad calibration file fails before any image is processed."""
    if args.calib:
        return read_kitti_intrinsics(args.calib)
    if args.fx is not None:
        return Intrinsics(args.fx, args.fy, args.cx, args.cy)
    return None


def main(argv=None) -> int:
    parser = infer_parser()
    args = parser.parse_args(argv)
    check_infer_args(parser, args)
    intrinsics = camera_intrinsics(args)
    device = resolve_device(args.device)
    model = load_s2r(checkpoint_paths(args), map_location="cpu").to(device).eval()
    paths, skipped = collect_inputs(args.input)
    for message in skipped:
        print(f"warning: {message} (skipped)", file=sys.stderr)
    names = output_names(paths)
    writer = DepthWriter(Path(args.output_dir), args.cmap, args.vmin, args.vmax, args.save_16bit,
                         args.save_ply, not args.ply_ascii, args.save_maps, args.save_overview)

    written = 0
    if paths:
        loader = DataLoader(ImageInputs(paths, args.loadSize), batch_size=args.batch_size, shuffle=False,
                            num_workers=min(args.num_workers, len(paths)), collate_fn=collate_inputs,
                            worker_init_fn=worker_init)
        bar = tqdm(total=len(paths), desc="inferring", unit="img", dynamic_ncols=True)
        for batch in loader:
            for item in batch["errors"]:
                skipped.append(item["error"])
                tqdm.write(f"warning: {item['error']} (skipped)", file=sys.stderr)
            if batch["image"] is not None:
                outputs = predict(model, batch["image"].to(device), args.post_process)
                for i, (index, rgb) in enumerate(zip(batch["index"], batch["rgb"])):
                    size = rgb.shape[:2]
                    maps = {}
                    if args.save_maps:
                        maps = {"structure": resize_map(outputs.structure[i], size),
                                "attention": resize_map(outputs.attention[i], size)}
                    depth = to_gt_size(outputs.depth[-1][i], size, args.max_depth)
                    writer.write(names[index], depth, rgb, intrinsics, **maps)
                    written += 1
            bar.update(len(batch["index"]) + len(batch["errors"]))
        bar.close()

    print(f"wrote depth for {written} image(s) to {args.output_dir}")
    if skipped:
        listed = "\n  ".join(skipped[:MAX_LISTED_SKIPS])
        more = f"\n  ... and {len(skipped) - MAX_LISTED_SKIPS} more" if len(skipped) > MAX_LISTED_SKIPS else ""
        print(f"skipped {len(skipped)} input(s):\n  {listed}{more}", file=sys.stderr)
    if not written:
        print("error: no depth was written", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    with exit_on_user_error():
        sys.exit(main())
