"""Shared fixtures: the real sample data beside the project, random checkpoints, test.py as a module."""
import importlib.util
import os
from pathlib import Path

import pytest

from constants import CHECKPOINT_FLAGS
from utils.checkpoint import save_initial_networks

ROOT = Path(__file__).resolve().parents[1]
# Every key, shape and dtype of the four released checkpoints (docs/release.md §5).
RELEASED_LAYOUT = ROOT / "tests" / "data" / "checkpoint_layout.json"
SHARED_DATA = Path(os.environ.get("S2R_SHARED_DATA", ROOT.parent / "shared" / "data"))
KITTI_DRIVE = "2011_09_26/2011_09_26_drive_0052_sync"
KITTI_FRAMES = ("0000000000", "0000000014", "0000000026", "0000000036", "0000000044", "0000000050")


def checkpoint_args(paths: dict) -> list:
    """test.py/infer.py flags naming the four checkpoint files of ``paths``."""
    return [a for name, flag in CHECKPOINT_FLAGS.items() for a in (f"--{flag}", str(paths[name]))]


@pytest.fixture(scope="session")
def test_script():
    """test.py imported as a module (its name clashes with pytest's conventions), for in-process runs."""
    spec = importlib.util.spec_from_file_location("s2r_test_script", ROOT / "test.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data (real KITTI/NYU samples); tests using it skip when it is absent, except under
    CI=true, where CI always provides it and its absence is a failure."""
    if not SHARED_DATA.is_dir():
        message = f"real sample data not found at {SHARED_DATA} (set S2R_SHARED_DATA to its path)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true but {message}")
        pytest.skip(message)
    return SHARED_DATA


@pytest.fixture(scope="session")
def kitti_raw_list(shared_data, tmp_path_factory) -> tuple:
    """(root, list file) for the six real Eigen-test frames in ../shared/data/kitti_raw."""
    root = shared_data / "kitti_raw"
    lines = [f"{KITTI_DRIVE}/image_02/data/{f}.png {KITTI_DRIVE}/image_03/data/{f}.png 2011_09_26 "
             f"{KITTI_DRIVE}/velodyne_points/data/{f}.bin" for f in KITTI_FRAMES]
    list_file = tmp_path_factory.mktemp("kitti_list") / "test.txt"
    list_file.write_text("\n".join(lines) + "\n")
    return root, list_file


def save_random_checkpoints(folder: Path, seed: int = 0, prefix: bool = True) -> dict:
    """Seeded random checkpoints under the release's file names, the last three with the
    ``module.`` prefix as in the release. Returns {name: path}."""
    return save_initial_networks(folder, seed, release_prefix=prefix)


@pytest.fixture(scope="session")
def random_checkpoints(tmp_path_factory) -> dict:
    """{name: path} of seeded random checkpoints in the release layout (session-wide)."""
    return save_random_checkpoints(tmp_path_factory.mktemp("checkpoints"))


@pytest.fixture(scope="session")
def tiny_world(tmp_path_factory) -> Path:
    """The procedural sample world at its tiny preset (a second or two), shared by the session."""
    from sample_world.world import generate_world

    out = tmp_path_factory.mktemp("tiny_world")
    generate_world(out, seed=0, preset="tiny", progress=False)
    return out
