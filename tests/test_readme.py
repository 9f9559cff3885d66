"""Every command in the README's ```bash blocks, and every ```python block, runs on the tiny
sample world.

The README's commands use shell variables for dataset roots, lists and checkpoints; here they point
at the tiny world and at random checkpoints. Each command keeps its own flags; only the costly ones
are overridden by flags appended after them (argparse keeps the last): one epoch, batch 1, small
images. Commands run in a scratch folder, so their relative outputs do not touch the repository. A python
block runs as written in a scratch folder that looks like the repository root (its entries linked),
with the random checkpoints as ``checkpoints/`` and a sample-world frame as ``frame.png``.
"""
import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

README = ROOT / "README.md"
SMALL = ["--loadSize", "96", "128"]
OVERRIDES = {
    "train.py": ["--epochs", "1", "--batchSize", "1", "--nThreads", "0", "--seed", "0",
                 "--val_loadSize", "96", "128"],
    "test.py": [*SMALL, "--nThreads", "0"],
    "infer.py": [*SMALL, "--nThreads", "0"],
    "export_gt_depth.py": [],
    "export_onnx.py": SMALL,
}


def readme_blocks() -> list:
    """The commands of each ```bash block, continuation lines joined."""
    blocks = re.findall(r"```bash\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S)
    return [[line.strip() for line in block.replace("\\\n", " ").splitlines() if line.strip()]
            for block in blocks]


def readme_python_blocks() -> list:
    return re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S)


def test_readme_has_commands():
    commands = [c for block in readme_blocks() for c in block]
    scripts = {shlex.split(c)[1] for c in commands}
    assert {"train.py", "test.py", "infer.py", "export_gt_depth.py", "export_onnx.py"} <= scripts
    assert readme_python_blocks()


def to_argv(command: str, env: dict) -> list:
    """The README command as an argv for this interpreter, with its costly flags overridden."""
    words = [os.path.expandvars(w) if "$" in w else w for w in shlex.split(command)]
    assert not any("$" in w for w in words), f"unset variable in {command!r}"
    if words[0] == "torchrun":
        launcher, words = [sys.executable, "-m", "torch.distributed.run"], words[1:]
        while words[0].startswith("--"):
            launcher += words[:2]
            words = words[2:]
    else:
        assert words[0] == "python", command
        launcher, words = [sys.executable], words[1:]
    script, args = words[0], words[1:]
    extra = list(OVERRIDES[script])
    if script == "train.py":
        extra += ["--loadSize", "64", "128"] if "TrainStructEncoder" in args else SMALL
        extra += ["--dsa_pretrained", "none"]
    return [*launcher, str(ROOT / script), *args, *extra]


@pytest.fixture(scope="module")
def readme_env(tiny_world, random_checkpoints, tmp_path_factory) -> dict:
    world = json.loads((tiny_world / "world.json").read_text())
    kitti = tiny_world / world["kitti"]["root"]
    first_left = (kitti / (kitti / "test.txt").read_text().split()[0])
    ckpt = random_checkpoints["depth_net"].parent
    env = {
        "VKITTI": tiny_world / world["vkitti"]["root"], "VKITTI_LIST": tiny_world / world["vkitti"]["list"],
        "STYLE": tiny_world / world["style"]["root"], "STYLE_LIST": tiny_world / world["style"]["list"],
        "KITTI_RAW": kitti, "KITTI_LIST": tiny_world / world["kitti"]["list"],
        "NYU": tiny_world / world["nyu"]["root"], "NYU_LIST": tiny_world / world["nyu"]["list"],
        "CKPT": ckpt, "SE": ckpt / "struct_encoder.pth", "SD": ckpt / "struct_decoder.pth",
        "IMAGES": first_left.parent,
    }
    return {k: str(v) for k, v in env.items()}


@pytest.mark.parametrize("block", range(len(readme_blocks())))
def test_readme_block_runs(block, readme_env, tmp_path, monkeypatch):
    for name, value in readme_env.items():
        monkeypatch.setenv(name, value)
    for command in readme_blocks()[block]:
        argv = to_argv(command, readme_env)
        result = subprocess.run(argv, cwd=tmp_path, capture_output=True, text=True, timeout=600,
                                env={**os.environ, "PYTHONPATH": str(ROOT)})
        assert result.returncode == 0, f"{command}\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}"


@pytest.mark.parametrize("block", range(len(readme_python_blocks())))
def test_readme_python_block_runs(block, readme_env, tmp_path):
    added = {"checkpoints": Path(readme_env["CKPT"]), "frame.png": min(Path(readme_env["IMAGES"]).glob("*.png"))}
    for entry in ROOT.iterdir():
        if not entry.name.startswith(".") and entry.name not in added:
            (tmp_path / entry.name).symlink_to(entry)
    for name, target in added.items():
        (tmp_path / name).symlink_to(target)
    script = tmp_path / "readme_block.py"
    script.write_text(readme_python_blocks()[block], encoding="utf-8")
    result = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True,
                            timeout=600, env={**os.environ, "PYTHONPATH": str(tmp_path)})
    assert result.returncode == 0, f"{result.stdout[-2000:]}\n{result.stderr[-3000:]}"
