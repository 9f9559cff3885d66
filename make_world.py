"""Render the procedural sample world (vKITTI / KITTI raw / NYUD-v2 layouts + style paintings).

    python make_world.py --out_dir data/world            # default preset, under a minute on 2 cores
    python make_world.py --out_dir /tmp/w --preset tiny  # a few small frames, for tests
"""
import argparse
import sys
from pathlib import Path

from options.common import HelpFormatter, non_negative_int, output_dir, positive_int, seed
from sample_world.world import PRESETS, VARIANT_NAMES, generate_world


def _size(text: str) -> tuple[int, int]:
    """Parse WIDTHxHEIGHT."""
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT such as 1242x375, got {text!r}") from None
    return w, h


def _variants(text: str) -> tuple[str, ...]:
    names = tuple(v.strip() for v in text.split(",") if v.strip())
    unknown = [v for v in names if v not in VARIANT_NAMES]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"variants must be a comma list of {', '.join(VARIANT_NAMES)}")
    return names


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    p.add_argument("--out_dir", "--out", dest="out_dir", type=output_dir, default="data/world",
                   help="output folder (created; files are overwritten)")
    p.add_argument("--seed", type=seed, default=0, help="random seed; same seed -> byte-identical files")
    p.add_argument("--preset", choices=sorted(PRESETS), default="default",
                   help="counts and sizes: 'default' (full-size data) or 'tiny' (seconds, for tests)")
    g = p.add_argument_group("overrides of the preset")
    g.add_argument("--vkitti_worlds", type=non_negative_int, help="number of vKITTI worlds (0001, 0002, ...)")
    g.add_argument("--vkitti_frames", type=non_negative_int, help="frames per vKITTI world")
    g.add_argument("--variants", type=_variants,
                   help=f"comma-separated vKITTI variants (same geometry, other weather): {','.join(VARIANT_NAMES)}")
    g.add_argument("--vkitti_size", type=_size, help="vKITTI image size WIDTHxHEIGHT (intrinsics scale with it)")
    g.add_argument("--kitti_drives", type=non_negative_int, help="number of KITTI raw drives")
    g.add_argument("--kitti_frames", type=non_negative_int, help="listed frames per KITTI drive")
    g.add_argument("--kitti_size", type=_size, help="KITTI image size WIDTHxHEIGHT (P_rect scales with it)")
    g.add_argument("--lidar_azimuths", type=positive_int, help="azimuth steps per 360 degree velodyne sweep (64 beams)")
    g.add_argument("--nyu_rooms", type=non_negative_int, help="number of NYUD-v2 test rooms")
    g.add_argument("--nyu_size", type=_size, help="NYU image size WIDTHxHEIGHT")
    g.add_argument("--style_images", type=non_negative_int, help="number of style paintings")
    g.add_argument("--style_size", type=_size, help="style painting size WIDTHxHEIGHT")
    p.add_argument("--workers", type=positive_int, help="worker processes (default: all CPU cores)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    args = p.parse_args(argv)

    overrides = {k: v for k, v in vars(args).items()
                 if k not in ("out_dir", "seed", "preset", "quiet") and v is not None}
    try:
        manifest = generate_world(args.out_dir, seed=args.seed, preset=args.preset, progress=not args.quiet,
                                  **overrides)
    except ValueError as exc:
        p.error(str(exc))
    out = Path(args.out_dir)
    lists = ", ".join(f"{name}: {out / manifest[name]['list']} ({manifest[name]['count']})"
                      for name in ("vkitti", "kitti", "nyu", "style"))
    print(f"wrote {out / 'world.json'}; lists (paths relative to each list's folder) -> {lists}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
