"""test.py end to end: tiny generated KITTI/NYU data and the real KITTI frames, checked against an
independent evaluation (tests/reference.py) to 1e-6; its options; its one-line errors.

Most runs call test.py's ``main`` in-process, wrapped as its ``__main__`` block wraps it (same code
path, without paying the interpreter and import start-up each time); the default KITTI run, the
full-size run, two errors and --help run it as a subprocess.
"""
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from PIL import Image

import export_gt_depth
from models import S2RDepthNet
from options.common import check_load_size
from utils.errors import exit_on_user_error

from . import reference
from .conftest import ROOT, checkpoint_args

# The release's checkpoint flags, spelled as its README spells them.
RELEASE_FLAGS = {"struct_encoder": "--Shared_Struct_Encoder_path", "struct_decoder": "--Struct_Decoder_path",
                 "dsa": "--DSAModle_path", "depth_net": "--DepthNet_path"}
from .synthetic import write_kitti, write_nyu

METRICS = ("abs_rel", "sq_rel", "rmse", "rmse_log", "a1", "a2", "a3")
KITTI_SIZE = (96, 96)   # the smallest input the DP module takes: the CLI tests are about the pipeline


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    """Release-layout checkpoints whose predictions vary visibly with the image (PyTorch's default
    init, a strong last layer), so that every option moves the metrics."""
    folder = tmp_path_factory.mktemp("cli_checkpoints")
    torch.manual_seed(0)
    model = S2RDepthNet()
    with torch.no_grad():
        model.depth_net.output1.model[1].weight.mul_(20)
    paths = {}
    for name in RELEASE_FLAGS:
        state = getattr(model, name).state_dict()
        if name != "struct_encoder":
            state = {f"module.{k}": v for k, v in state.items()}
        paths[name] = folder / f"{name}.pth"
        torch.save(state, paths[name])
    return paths


@pytest.fixture(scope="module")
def model(checkpoints):
    return reference.load_model(checkpoints)


@pytest.fixture(scope="module")
def cli(test_script):
    return test_script


def read_outputs(out_dir: Path) -> dict:
    lines = (out_dir / "evalog.txt").read_text().split("\n")
    assert lines[0].startswith("Done testing -- epoch limit reachedafter ") and lines[1:2] == [""]
    assert lines[2] == ", ".join(f"{name:>10}" for name in METRICS) and lines[4:] == [""]
    saved = json.loads((out_dir / "metrics.json").read_text())
    assert [float(v) for v in lines[3].split(", ")] == pytest.approx([saved["metrics"][k] for k in METRICS],
                                                                     abs=5e-5)
    return saved


def run_subprocess(args, out_dir=None):
    argv = [sys.executable, "test.py", "--nThreads", "0", "--device", "cpu"] + list(args)
    if out_dir is not None:
        argv += ["--out_dir", str(out_dir)]
    return subprocess.run(argv, cwd=ROOT, capture_output=True, text=True)


def run_in_process(cli, args, out_dir: Path) -> dict:
    assert cli.main(["--nThreads", "0", "--device", "cpu", "--out_dir", str(out_dir)] + list(args)) == 0
    return read_outputs(out_dir)


def fail_in_process(cli, capsys, args) -> str:
    """Run main as ``python test.py`` does and return its stderr; it must exit with status 2."""
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info, exit_on_user_error():
        cli.main(["--nThreads", "0", "--device", "cpu"] + list(args))
    assert exit_info.value.code == 2
    return capsys.readouterr().err


def assert_metrics(saved: dict, expected: dict) -> None:
    for k in METRICS:
        assert saved["metrics"][k] == pytest.approx(expected[k], rel=1e-6, abs=1e-9), k


# --- tiny generated KITTI -------------------------------------------------------------------------

@pytest.fixture(scope="module")
def kitti(tmp_path_factory, model):
    """Two frames of two dates (two GT sizes), and the reference predictions in metres."""
    root = tmp_path_factory.mktemp("kitti")
    list_file = write_kitti(root, [("2011_09_26", 0), ("2011_09_30", 1)])
    frames = []
    for line in list_file.read_text().splitlines():
        left, _, calib, velo = line.split()
        gt = reference.kitti_gt(root / calib, root / velo, Image.open(root / left).size[::-1])
        image = reference.network_input(root / left, KITTI_SIZE)
        frames.append({"gt": gt, "pred": reference.predict_metres(model, image, gt.shape, 80.0),
                       "flip": reference.predict_metres(model, image, gt.shape, 80.0, flip=True)})
    return root, list_file, frames


def expected_kitti(frames, flip=False, **protocol):
    protocol.setdefault("max_depth", 80.0)
    return reference.mean_over_images(
        [reference.evaluate_one(f["flip" if flip else "pred"], f["gt"], **protocol) for f in frames])


@pytest.fixture(scope="module")
def kitti_default(kitti, checkpoints, tmp_path_factory):
    root, list_file, _ = kitti
    out_dir = tmp_path_factory.mktemp("kitti_default")
    run = run_subprocess(["--root", str(root), "--test_datafile", str(list_file), "--loadSize",
                          *map(str, KITTI_SIZE)] + checkpoint_args(checkpoints), out_dir)
    assert run.returncode == 0, run.stderr
    return run, read_outputs(out_dir)


def test_kitti_default_run(kitti, kitti_default):
    _, _, frames = kitti
    run, saved = kitti_default
    assert_metrics(saved, expected_kitti(frames))
    assert saved["n_images"] == 2
    assert saved["protocol"] == {"min_depth": 1e-3, "max_depth": 80.0, "crop": "garg", "alignment": "median",
                                 "clip_after_scaling": False}
    table = run.stdout.splitlines()
    header = next(i for i, l in enumerate(table) if l.split(" | ")[0].strip() == "abs_rel")
    assert [c.strip() for c in table[header].split("|")][:7] == list(METRICS)
    values = [float(v) for v in table[header + 1].split("|")]
    assert values[:7] == pytest.approx([saved["metrics"][k] for k in METRICS], abs=1e-4)
    assert "crop garg, median scaling, clip before scaling; 2 images" in run.stdout
    assert "Traceback" not in run.stderr


@pytest.mark.parametrize("args, expected, differs", [
    (["--post_process"], dict(flip=True), True),
    (["--no_median_scaling"], dict(median=False), True),
    (["--crop", "eigen"], dict(crop="eigen"), True),
    (["--max_depth", "50"], dict(max_depth=50.0), True),
    (["--max_depth", "40", "--clip_after_scaling"], dict(max_depth=40.0, clip_after=True), True),
    (["--batchSize", "2"], dict(), False),
])
def test_kitti_options(cli, kitti, kitti_default, checkpoints, tmp_path, args, expected, differs):
    root, list_file, frames = kitti
    saved = run_in_process(cli, ["--root", str(root), "--test_datafile", str(list_file), "--loadSize",
                                 *map(str, KITTI_SIZE)] + checkpoint_args(checkpoints) + args, tmp_path)
    assert_metrics(saved, expected_kitti(frames, **expected))
    default = kitti_default[1]["metrics"]
    changed = any(abs(saved["metrics"][k] - default[k]) > 1e-5 for k in METRICS)
    assert changed == differs


def test_clip_after_scaling_differs_from_clip_before(kitti):
    """The predictions lie above 40 m: with a 40 m cap they clip to one constant before scaling, but
    keep their spread when clipped after it."""
    _, _, frames = kitti
    before = expected_kitti(frames, max_depth=40.0)
    after = expected_kitti(frames, max_depth=40.0, clip_after=True)
    assert abs(before["abs_rel"] - after["abs_rel"]) > 1e-4


def test_gt_cache_gives_identical_metrics(cli, kitti, kitti_default, checkpoints, tmp_path):
    root, list_file, _ = kitti
    cache = tmp_path / "gt.npz"
    assert export_gt_depth.main(["--root", str(root), "--test_datafile", str(list_file),
                                 "--output", str(cache)]) == 0
    saved = run_in_process(cli, ["--root", str(root), "--test_datafile", str(list_file), "--gt_cache", str(cache),
                                 "--loadSize", *map(str, KITTI_SIZE)] + checkpoint_args(checkpoints), tmp_path)
    assert saved["metrics"] == kitti_default[1]["metrics"]


# --- NYU -------------------------------------------------------------------------------------------

def test_nyu_run(cli, model, checkpoints, tmp_path):
    list_file = write_nyu(tmp_path / "nyu", 2)
    saved = run_in_process(cli, ["--dataset", "NYUD_V2", "--root", str(tmp_path / "nyu"), "--test_datafile",
                                 str(list_file), "--loadSize", "96", "128"] + checkpoint_args(checkpoints),
                           tmp_path / "out")
    per_image = []
    for line in list_file.read_text().splitlines():
        rgb, depth = line.split(",")
        gt = reference.nyu_gt(tmp_path / "nyu" / depth)
        pred = reference.predict_metres(model, reference.network_input(tmp_path / "nyu" / rgb, (96, 128)),
                                        gt.shape, 8.0)
        per_image.append(reference.evaluate_one(pred, gt, 8.0, crop="none"))
    assert_metrics(saved, reference.mean_over_images(per_image))
    assert saved["n_images"] == 2 and saved["protocol"]["max_depth"] == 8.0 and saved["protocol"]["crop"] == "none"


# --- evalog.txt, byte for byte ----------------------------------------------------------------------

def release_evaluation(model, root: Path, list_file: Path, dataset: str, size) -> tuple:
    """The release's test.py on a list (batch 1): (per-image metrics, evalog.txt text)."""
    per_image = []
    lines = Path(list_file).read_text().splitlines()
    for line in lines:
        if dataset == "KITTI":
            left, _, calib, velo = line.split()
            image = root / left
            gt = reference.release_kitti_gt(root / calib, root / velo, Image.open(image).size[::-1])
            max_depth, crop = 80.0, "garg"
        else:
            rgb, depth = line.split(",")
            image, gt = root / rgb, reference.nyu_gt(root / depth)
            max_depth, crop = 8.0, "none"
        pred = reference.predict_metres(model, reference.network_input(image, size), gt.shape, max_depth)
        per_image.append(reference.evaluate_one(pred, gt, max_depth, crop=crop))
    means = reference.mean_over_images(per_image)
    return means, reference.evalog(means, len(lines))


EVALOG_SETS = {  # fixture, its (root, list) inside, dataset, --loadSize, frames
    "world_kitti": ("tiny_world", ("kitti", "kitti/test.txt"), "KITTI", (96, 96), 2),
    "world_nyu": ("tiny_world", ("nyu", "nyu/nyu2_test.csv"), "NYUD_V2", (96, 128), 2),
    "real_kitti": ("kitti_raw_list", None, "KITTI", (96, 96), 6),
}


@pytest.mark.parametrize("name", EVALOG_SETS)
def test_evalog_is_the_releases_byte_for_byte(request, cli, model, checkpoints, tmp_path, name):
    fixture, inside, dataset, size, frames = EVALOG_SETS[name]
    data = request.getfixturevalue(fixture)
    root, list_file = (data / inside[0], data / inside[1]) if inside else data
    saved = run_in_process(cli, ["--dataset", dataset, "--root", str(root), "--test_datafile", str(list_file),
                                 "--loadSize", *map(str, size)] + checkpoint_args(checkpoints), tmp_path)
    means, text = release_evaluation(model, root, list_file, dataset, size)
    assert saved["n_images"] == frames and text.startswith(f"Done testing -- epoch limit reachedafter {frames} ")
    assert (tmp_path / "evalog.txt").read_bytes() == text.encode()
    assert_metrics(saved, means)


def test_real_kitti_at_full_load_size(model, kitti_raw_list, checkpoints, tmp_path):
    """The default loadSize 192x640 on one frame; the composite's outputs have the spec's sizes."""
    root, list_file = kitti_raw_list
    one = tmp_path / "one.txt"
    line = Path(list_file).read_text().splitlines()[3]
    one.write_text(line + "\n")
    run = run_subprocess(["--root", str(root), "--test_datafile", str(one)] + checkpoint_args(checkpoints),
                         tmp_path / "out")
    assert run.returncode == 0, run.stderr
    assert "(input 192x640)" in run.stdout
    saved = read_outputs(tmp_path / "out")
    assert saved["n_images"] == 1

    left, _, calib, velo = line.split()
    with torch.no_grad():
        out = model(reference.network_input(root / left, (192, 640)))
    assert out.structure.shape == out.attention.shape == (1, 1, 192, 640)
    assert [tuple(d.shape) for d in out.depth] == [(1, 1, 24, 80), (1, 1, 48, 160), (1, 1, 96, 320),
                                                   (1, 1, 192, 640)]
    gt = reference.kitti_gt(root / calib, root / velo, (375, 1242))
    assert_metrics(saved, reference.evaluate_one(reference.to_metres(out.depth[-1], gt.shape, 80.0), gt, 80.0))


# --- errors and help ---------------------------------------------------------------------------------

def assert_one_line_error(run, *fragments):
    assert run.returncode == 2
    assert "Traceback" not in run.stderr
    errors = [l for l in run.stderr.splitlines() if "error:" in l]
    assert len(errors) == 1, run.stderr
    for fragment in fragments:
        assert fragment in errors[0], run.stderr


def test_missing_checkpoint_flag(cli, capsys, kitti, checkpoints):
    root, list_file, _ = kitti
    err = fail_in_process(cli, capsys, ["--root", str(root), "--test_datafile", str(list_file), "--loadSize",
                                        "96", "96"] + checkpoint_args(checkpoints)[:6])
    assert err == "error: no checkpoint given for --DepthNet_path (pass the files or --checkpoint_dir)\n"


def test_bad_load_size(cli, capsys, kitti, checkpoints):
    root, list_file, _ = kitti
    err = fail_in_process(cli, capsys, ["--root", str(root), "--test_datafile", str(list_file), "--loadSize",
                                        "64", "192"] + checkpoint_args(checkpoints))
    assert err.splitlines()[-1].endswith(
        "error: --loadSize 64 192: both must be multiples of 16 and at least 96 (the depth network's dilated centre)")


@pytest.mark.parametrize("size", [("100", "320"), ("96", "328"), ("80", "320")])
def test_load_size_check_rejects(cli, capsys, size):
    parser = cli.make_parser()
    args = parser.parse_args(["--root", "r", "--test_datafile", "t", "--loadSize", *size])
    with pytest.raises(SystemExit) as exit_info:
        check_load_size(parser, args)
    assert exit_info.value.code == 2
    assert f"--loadSize {size[0]} {size[1]}: both must be multiples of 16 and at least 96" in capsys.readouterr().err


def test_load_size_check_accepts_the_release_sizes(cli):
    parser = cli.make_parser()
    for size in (("96", "96"), ("192", "640"), ("192", "256")):
        check_load_size(parser, parser.parse_args(["--root", "r", "--test_datafile", "t", "--loadSize", *size]))


def test_wrong_network_checkpoint(kitti, checkpoints):
    root, list_file, _ = kitti
    swapped = dict(checkpoints, dsa=checkpoints["struct_decoder"])
    run = run_subprocess(["--root", str(root), "--test_datafile", str(list_file), "--loadSize", "96", "96"]
                         + checkpoint_args(swapped))
    assert run.returncode == 2 and "Traceback" not in run.stderr
    assert run.stderr.startswith(f"error: dsa: {checkpoints['struct_decoder']} does not match the dsa network "
                                 f"(it looks like a struct_decoder checkpoint)")


def test_bad_list_line(cli, capsys, kitti, checkpoints, tmp_path):
    root, list_file, _ = kitti
    bad = tmp_path / "bad.txt"
    bad.write_text(list_file.read_text().splitlines()[0] + "\nfoo.png bar.png\n")
    err = fail_in_process(cli, capsys, ["--root", str(root), "--test_datafile", str(bad)]
                          + checkpoint_args(checkpoints))
    assert err == f"error: {bad}, line 2: expected 4 space-separated fields, got 'foo.png bar.png'\n"


def test_corrupt_image_in_a_loader_worker(checkpoints, tmp_path):
    """A DatasetError raised inside a DataLoader worker still ends as one clean line."""
    list_file = write_kitti(tmp_path, [("2011_09_26", 0), ("2011_09_26", 1)])
    left = tmp_path / list_file.read_text().splitlines()[0].split()[0]
    left.write_bytes(b"garbage")
    run = subprocess.run([sys.executable, "test.py", "--nThreads", "1", "--device", "cpu", "--root",
                          str(tmp_path), "--test_datafile", str(list_file), "--loadSize", "96", "96",
                          "--out_dir", str(tmp_path / "out")] + checkpoint_args(checkpoints),
                         cwd=ROOT, capture_output=True, text=True)
    assert_one_line_error(run, f"error: {list_file}, line 1: cannot read image {left}")


def test_help_lists_every_flag_with_help_text(cli):
    run = subprocess.run([sys.executable, "test.py", "--help"], cwd=ROOT, capture_output=True, text=True)
    assert run.returncode == 0
    flags = [a for a in cli.make_parser()._actions if a.option_strings]
    for action in flags:
        assert action.help, action.option_strings
        assert any(f in run.stdout for f in action.option_strings), action.option_strings
    for flag in ["--root", "--test_datafile", "--dataset", "--loadSize", "--batchSize", "--gt_cache",
                 "--checkpoint_dir", *RELEASE_FLAGS.values(), "--crop", "--max_depth", "--no_median_scaling",
                 "--clip_after_scaling", "--post_process"]:
        assert flag in run.stdout


def test_release_readme_list_paths_resolve_from_anywhere(test_script, tmp_path, monkeypatch):
    """The release's README names datasets/kitti/test.txt; it is shipped there (697 Eigen lines) and
    found also when test.py runs from another folder."""
    monkeypatch.chdir(tmp_path)
    args = test_script.make_parser().parse_args(["--root", str(tmp_path), "--test_datafile", "datasets/kitti/test.txt"])
    resolved = test_script.list_file_of(None, args)
    assert Path(resolved) == ROOT / "datasets" / "kitti" / "test.txt"
    lines = Path(resolved).read_text().split("\n")
    assert len([l for l in lines if l.strip()]) == 697 and len(lines[0].split()) == 4
    assert len((ROOT / "datasets" / "vkitti" / "train.txt").read_text().split("\n")) >= 20760
