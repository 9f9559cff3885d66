"""The benchmark's own inputs: a sample world rendered into a work folder, list files that repeat
its frames (to time loaders over more samples than were rendered), and random checkpoints."""
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Tuple

from sample_world.world import generate_world
from utils.checkpoint import save_initial_networks


@dataclass(frozen=True)
class WorldSpec:
    """What to render: KITTI-sized frames by default, small ones for the smoke run."""

    image_size: Tuple[int, int]   # (width, height) of the vKITTI and KITTI images
    lidar_azimuths: int
    vkitti_frames: int            # per variant; two variants
    kitti_frames: int
    style_size: Tuple[int, int] = (320, 96)
    style_images: int = 4


@dataclass(frozen=True)
class BenchData:
    root: Path
    manifest: dict
    checkpoints: Dict[str, Path]

    def list_path(self, name: str) -> Path:
        return self.root / self.manifest[name]["list"]

    def data_root(self, name: str) -> Path:
        return self.root / self.manifest[name]["root"]

    def repeated_list(self, name: str, count: int) -> Path:
        """A copy of the ``name`` list with its lines cycled to ``count`` lines (same root)."""
        lines = self.list_path(name).read_text().splitlines()
        path = self.list_path(name).with_name(f"repeated_{count}.txt")
        path.write_text("".join(lines[i % len(lines)] + "\n" for i in range(count)))
        return path


def prepare(folder: Path, spec: WorldSpec) -> BenchData:
    """Render the world and write the checkpoints into ``folder``."""
    manifest = generate_world(
        folder / "world", seed=0, preset="tiny", progress=False, vkitti_worlds=1,
        vkitti_frames=spec.vkitti_frames, variants=("clone", "fog"), vkitti_size=spec.image_size,
        kitti_drives=1, kitti_frames=spec.kitti_frames, kitti_size=spec.image_size,
        lidar_azimuths=spec.lidar_azimuths, nyu_rooms=1, style_images=spec.style_images,
        style_size=spec.style_size)
    return BenchData(folder / "world", manifest, save_initial_networks(folder / "checkpoints"))
