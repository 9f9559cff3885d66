"""Bad input, class by class and command by command: each ends in one line naming the flag, the file
or the list line, a non-zero exit status, and nothing previously written changed.

The commands run in-process, their ``main`` wrapped as their ``__main__`` blocks wrap it (user errors
become ``error: <message>`` and status 2); usage errors are argparse's (status 2, the flag named).
"""
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import demo
import export_gt_depth
import infer
import make_world
import train
from datasets import KITTIEigenTest, NYUDv2Test
from datasets.common import DatasetError, open_image, resize_image, to_network_input, to_rgb
from datasets.images import ImageInputs
from datasets.vkitti import ImageListDataset, SyntheticDepthDataset
from evaluation.results import EvalResult
from options.common import output_dir
from training import trainer
from utils.errors import exit_on_user_error

from .conftest import checkpoint_args
from .synthetic import write_kitti, write_nyu
from .test_train_data import write_vkitti

SIZE = ["--loadSize", "96", "96"]
IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


@pytest.fixture(scope="module")
def commands(test_script):
    return {"train": train.main, "test": test_script.main, "infer": infer.main,
            "export_gt_depth": export_gt_depth.main, "demo": demo.main, "make_world": make_world.main}


def run(commands, capsys, command, argv):
    """(exit status, stderr) of one command line."""
    try:
        with exit_on_user_error():
            code = commands[command](argv)
    except SystemExit as exc:
        code = exc.code
    return code, capsys.readouterr().err


TQDM_BAR = re.compile(r"^[\w ]+:\s+\d+%\|[^|]*\|[^\]]*\]")


def one_error_line(err: str) -> str:
    """The error line; the only other lines allowed are argparse's usage and progress bars."""
    lines = [TQDM_BAR.sub("", line) for line in re.split(r"[\r\n]", err)]
    lines = [line for line in lines if line.strip()]
    errors = [line for line in lines if "error: " in line]
    assert len(errors) == 1 and "Traceback" not in err, err
    assert all(line in errors or line.startswith(("usage:", " ")) for line in lines), err
    return errors[0]


def snapshot(folder: Path) -> dict:
    return {p: p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


# Minimal command lines with the output flag last; the check runs at parse time, before any input is read.
OUTPUT_FLAGS = [
    ("train", ["--train_stage", "TrainStructDecoder", "--syn_root", "r", "--syn_train_datafile", "l",
               "--Shared_Struct_Encoder_path", "x"], "--checkpoint_dir"),
    ("train", ["--train_stage", "TrainStructDecoder", "--syn_root", "r", "--syn_train_datafile", "l",
               "--Shared_Struct_Encoder_path", "x"], "--log_dir"),
    ("test", ["--root", "r", "--test_datafile", "l"], "--out_dir"),
    ("infer", ["--input", "x.png"], "--out_dir"),
    ("infer", ["--input", "x.png"], "--output_dir"),
    ("demo", [], "--out_dir"),
    ("demo", [], "--world_dir"),
    ("make_world", [], "--out_dir"),
    ("make_world", [], "--out"),
    ("export_gt_depth", ["--root", "r", "--test_datafile", "l"], "--output"),
]


# ------------------------------------------------------------------ 1. output paths
@pytest.mark.parametrize("place", ["under_a_file", "an_existing_file", "unwritable"])
@pytest.mark.parametrize("command, argv, flag", OUTPUT_FLAGS, ids=[f"{c}{f}" for c, _, f in OUTPUT_FLAGS])
def test_output_paths(commands, capsys, tmp_path, command, argv, flag, place):
    blocker = tmp_path / "notes.txt"
    blocker.write_text("keep me\n")
    if place == "under_a_file":
        target, why = blocker / "sub" / "out", f"it lies under {blocker}, which is a regular file"
    elif place == "an_existing_file":
        if flag == "--output":  # an output file replaces an older one; a folder in its place is the error
            target, why = tmp_path, "is a folder; name the file to write"
        else:
            target, why = blocker, f"{blocker} is a regular file, not a folder"
    else:
        if IS_ROOT:
            pytest.skip("root may write anywhere")
        locked = tmp_path / "locked"
        locked.mkdir()
        locked.chmod(0o555)
        target, why = locked / "new" / "out", f"the folder {locked} is not writable"
    before = snapshot(tmp_path)
    code, err = run(commands, capsys, command, [*argv, flag, str(target)])
    line = one_error_line(err)
    assert code == 2
    assert re.search(rf"argument (\S+/)?{flag}(/\S+)?: .*{re.escape(str(target))}", line) and why in line, line
    assert snapshot(tmp_path) == before


def test_missing_output_folders_are_created_by_the_command(tmp_path):
    nested = tmp_path / "a" / "b" / "c"
    assert output_dir(str(nested)) == str(nested) and not (tmp_path / "a").exists()


# ------------------------------------------------------------------ 2. flag values
TRAIN = ["--train_stage", "TrainStructDecoder", "--syn_root", "r", "--syn_train_datafile", "l",
         "--Shared_Struct_Encoder_path", "x"]
TEST = ["--root", "r", "--test_datafile", "l"]
INFER = ["--input", "x.png", "--out_dir"]  # the folder is appended per test

FLAG_VALUES = [
    ("train", [*TRAIN, "--lr", "0"], r"argument --lr: must be > 0, got 0"),
    ("train", [*TRAIN, "--lr=-1e-4"], r"argument --lr: must be > 0, got -1e-4"),
    ("train", [*TRAIN, "--lr", "nan"], r"argument --lr: must be a finite number, got nan"),
    ("train", [*TRAIN, "--lambda_w", "inf"], r"argument --lambda_w: must be a finite number, got inf"),
    ("train", [*TRAIN, "--hyper_w", "-1"], r"argument --hyper_w: must be >= 0, got -1"),
    ("train", [*TRAIN, "--seed", "-1"], r"argument --seed: must be an integer in 0..4294967295"),
    ("train", [*TRAIN, "--seed", str(2 ** 32)], r"argument --seed: must be an integer in 0..4294967295"),
    ("train", [*TRAIN, "--batchSize", "0"], r"argument --batchSize: must be a positive integer, got 0"),
    ("train", [*TRAIN, "--epochs", "-3"], r"argument --epochs: must be a positive integer, got -3"),
    ("train", [*TRAIN, "--device", "gpu"], r"argument --device: expected auto, cpu, cuda or cuda:N, got 'gpu'"),
    ("train", [*TRAIN, "--overwrite", "--resume"], r"--overwrite starts a new run and --resume continues one"),
    ("test", [*TEST, "--min_depth", "0"], r"argument --min_depth: must be > 0, got 0"),
    ("test", [*TEST, "--min_depth", "-1"], r"argument --min_depth: must be > 0, got -1"),
    ("test", [*TEST, "--max_depth", "nan"], r"argument --max_depth: must be a finite number, got nan"),
    ("test", [*TEST, "--min_depth", "90"], r"--min_depth 90 must be below --max_depth 80 \(the KITTI default\)"),
    ("test", [*TEST, "--min_depth", "5", "--max_depth", "5"], r"--min_depth 5 must be below --max_depth 5$"),
    ("test", [*TEST, "--batchSize", "0"], r"argument --batchSize: must be a positive integer, got 0"),
    ("test", [*TEST, "--device", "cuda:x"], r"argument --device: expected auto, cpu, cuda or cuda:N"),
    ("infer", ["--max_depth", "0"], r"argument --max_depth: must be > 0, got 0"),
    ("infer", ["--vmin", "nan"], r"argument --vmin: must be a finite number, got nan"),
    ("infer", ["--fx", "inf", "--fy", "1", "--cx", "1", "--cy", "1"], r"argument --fx: must be a finite number"),
    ("infer", ["--batchSize", "-1"], r"argument --batchSize/--batch_size: must be a positive integer, got -1"),
    ("demo", ["--lr", "0"], r"argument --lr: must be > 0, got 0"),
    ("demo", ["--seed", "-5"], r"argument --seed: must be an integer in 0..4294967295 .*, got -5"),
    ("demo", ["--epochs", "1", "0", "1"], r"argument --epochs: must be a positive integer, got 0"),
    ("make_world", ["--seed", "-1"], r"argument --seed: must be an integer in 0..4294967295 .*, got -1"),
    ("make_world", ["--kitti_frames", "-1"], r"argument --kitti_frames: must be >= 0, got -1"),
    ("make_world", ["--kitti_size", "0x10"], r"kitti_size must be \(width, height\) of at least 8 pixels"),
]


@pytest.mark.parametrize("command, argv, pattern", FLAG_VALUES, ids=[f"{c}:{' '.join(a[-2:])}" for c, a, _ in
                                                                       FLAG_VALUES])
def test_flag_values(commands, capsys, tmp_path, command, argv, pattern):
    if command == "infer":
        argv = [*INFER, str(tmp_path / "out"), *argv]
    elif command in ("demo", "make_world"):
        argv = ["--out_dir", str(tmp_path / "out"), *argv]
    code, err = run(commands, capsys, command, argv)
    assert code == 2 and re.search(pattern, one_error_line(err)), err
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("command", ["train", "test", "infer"])
def test_a_cuda_device_the_machine_lacks(commands, capsys, tmp_path, command):
    index = torch.cuda.device_count() if torch.cuda.is_available() else 0
    argv = {"train": [*TRAIN, "--checkpoint_dir", str(tmp_path / "c"), "--log_dir", str(tmp_path / "l")],
            "test": [*TEST, "--out_dir", str(tmp_path / "o")], "infer": [*INFER, str(tmp_path / "o")]}[command]
    code, err = run(commands, capsys, command, [*argv, "--device", f"cuda:{index}"])
    line = one_error_line(err)
    assert code == 2 and line.startswith(f"error: --device cuda:{index}: "), err
    assert ("CUDA device(s)" if torch.cuda.is_available() else "CUDA is not available on this machine") in line
    assert not list(tmp_path.iterdir())


# ------------------------------------------------------------------ 3. image modes
def gradient(mode: str) -> Image.Image:
    """A 4x8 image of mode ``mode`` whose grey levels span the mode's range."""
    ramp = np.linspace(0, 1, 32).reshape(4, 8)
    if mode in ("I;16", "I"):  # PIL makes uint16 arrays I;16 images and int32 arrays I images
        return Image.fromarray((ramp * 65535).round().astype(np.uint16 if mode == "I;16" else np.int32))
    return Image.fromarray((ramp * 255).round().astype(np.uint8), "L").convert(mode)


@pytest.mark.parametrize("mode", ["I;16", "I"])
def test_16_bit_grey_is_scaled_not_clipped(tmp_path, mode):
    path = tmp_path / f"grey.{'png' if mode == 'I;16' else 'tif'}"
    gradient(mode).save(path)
    rgb = np.asarray(open_image(str(path)))
    levels = np.linspace(0, 1, 32).reshape(4, 8) * 65535
    want = np.floor(np.round(levels) * 255 / 65535 + 0.5).astype(np.uint8)  # 65535 -> 255, 32768 -> 128
    assert rgb.shape == (4, 8, 3) and np.array_equal(rgb[..., 0], want) and np.array_equal(rgb[..., 2], want)
    assert rgb.min() == 0 and rgb.max() == 255 and len(np.unique(rgb)) == 32


@pytest.mark.parametrize("mode, pixel, want", [
    ("L", 100, (100, 100, 100)),
    ("LA", (100, 7), (100, 100, 100)),
    ("RGBA", (10, 20, 30, 0), (10, 20, 30)),        # alpha dropped, colour kept
    ("CMYK", (0, 0, 0, 0), (255, 255, 255)),
    ("CMYK", (255, 0, 0, 0), (0, 255, 255)),
    ("1", 1, (255, 255, 255)),
])
def test_other_modes_convert_to_their_colour(tmp_path, mode, pixel, want):
    img = Image.new(mode, (3, 2), pixel)
    path = tmp_path / ("img.tif" if mode in ("CMYK", "LA") else "img.png")
    img.save(path)
    assert np.asarray(open_image(str(path)))[1, 2].tolist() == list(want)


def test_palette_image_takes_its_palette_colours(tmp_path):
    img = Image.new("P", (2, 1))
    img.putpalette([0, 0, 0, 200, 100, 50] + [0] * 762)
    img.putpixel((1, 0), 1)
    img.save(tmp_path / "p.png")
    assert np.asarray(open_image(str(tmp_path / "p.png"))).tolist() == [[[0, 0, 0], [200, 100, 50]]]


def test_8_bit_rgb_is_read_as_before(tmp_path):
    pixels = np.random.default_rng(0).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(tmp_path / "rgb.png")
    assert np.array_equal(np.asarray(open_image(str(tmp_path / "rgb.png"))), pixels)


def image_loaders(root: Path, image_rel: str):
    """Every reader of user images, each over a one-item dataset whose image is ``image_rel``: infer.py's
    inputs, test.py's KITTI and NYU sets, train.py's vKITTI pairs and stage-1 image lists."""
    kitti = write_kitti(root / "kitti", [("2011_09_26", 0)])
    left = root / "kitti" / kitti.read_text().split()[0]
    nyu = write_nyu(root / "nyu", 1, size=(64, 208))
    vkitti = write_vkitti(root / "vkitti", n=1)
    image = root / image_rel
    return {
        "infer": (lambda: ImageInputs([image], (96, 96))[0], image),
        "test KITTI": (lambda: KITTIEigenTest(str(root / "kitti"), str(kitti), (96, 96))[0], left),
        "test NYU": (lambda: NYUDv2Test(str(root / "nyu"), str(nyu), (96, 96))[0],
                     root / "nyu" / "data/nyu2_test/00000_colors.png"),
        "train vKITTI": (lambda: SyntheticDepthDataset(str(root / "vkitti"), str(vkitti), (96, 96),
                                                       seed=0)[0],
                         root / "vkitti" / vkitti.read_text().split()[0]),
        "train stage 1": (lambda: ImageListDataset(str(root / "vkitti"), str(vkitti), (96, 96), num_fields=2,
                                                   flip=False)[0],
                          root / "vkitti" / vkitti.read_text().split()[0]),
    }


LOADERS = ["infer", "test KITTI", "test NYU", "train vKITTI", "train stage 1"]


def replace_image(path: Path, img: Image.Image) -> Path:
    """Store ``img`` at ``path`` at that image's size (the ground truth must keep matching it)."""
    h, w = Image.open(path).size[::-1]
    img.resize((w, h), Image.NEAREST).save(path, format="TIFF" if img.mode == "F" else "PNG")
    return path


@pytest.mark.parametrize("loader", LOADERS)
def test_every_reader_scales_16_bit_images(tmp_path, loader):
    loaders = image_loaders(tmp_path, "own.png")
    Image.new("RGB", (64, 48)).save(tmp_path / "own.png")
    read, path = loaders[loader]
    replace_image(path, gradient("I;16"))
    grey = np.asarray(Image.open(path), dtype=np.int64)
    rgb = Image.fromarray(((grey * 255 + 32767) // 65535).astype(np.uint8)).convert("RGB")
    item = read()
    if loader == "train vKITTI":  # augmentation runs after the conversion: the structure is what counts
        assert item["image"].std() > 0.1
    else:
        assert torch.equal(item["image"], to_network_input(resize_image(rgb, (96, 96))))


@pytest.mark.parametrize("loader", LOADERS)
def test_every_reader_refuses_float_images_naming_the_file(tmp_path, loader):
    loaders = image_loaders(tmp_path, "own.tif")
    Image.new("RGB", (64, 48)).save(tmp_path / "own.tif")
    read, path = loaders[loader]
    replace_image(path, Image.fromarray(np.full((4, 4), 0.5, np.float32), "F"))
    message = rf"image {re.escape(str(path))} has PIL mode 'F', which has no defined conversion to RGB"
    if loader == "infer":  # infer.py skips the file with this warning and fails only when nothing was written
        assert re.search(message, read()["error"])
    else:
        with pytest.raises(DatasetError, match=message):
            read()


@pytest.mark.parametrize("mode", ["HSV", "LAB"])
def test_modes_without_an_rgb_meaning_are_refused(mode):
    with pytest.raises(DatasetError, match=rf"image photo.png has PIL mode '{mode}', which has no defined "
                                           rf"conversion to RGB"):
        to_rgb(Image.new(mode, (2, 2)), "photo.png")


def test_out_of_range_32_bit_image_is_refused(tmp_path):
    Image.fromarray(np.full((2, 2), 70000, np.int32), "I").save(tmp_path / "big.tif")
    with pytest.raises(DatasetError, match=r"big.tif \(PIL mode I\) has values in 70000..70000, outside "
                                           r"0..65535"):
        open_image(str(tmp_path / "big.tif"))


# ------------------------------------------------------------------ 4. ground truth
@pytest.fixture
def kitti(tmp_path):
    """One synthetic KITTI frame: (root, list file, {left, calib, velo} paths)."""
    list_file = write_kitti(tmp_path / "kitti", [("2011_09_26", 0)])
    left, _, calib, velo = list_file.read_text().split()
    root = tmp_path / "kitti"
    return root, list_file, {"left": root / left, "calib": root / calib / "calib_cam_to_cam.txt",
                             "velo_calib": root / calib / "calib_velo_to_cam.txt", "velo": root / velo}


def damage_kitti(files: dict, case: str) -> str:
    """Break one file of the frame; returns the message expected (a regular expression)."""
    if case == "velodyne_18_bytes":  # 4 floats and 2 bytes: np.fromfile alone would drop the 2 bytes
        files["velo"].write_bytes(files["velo"].read_bytes()[:18])
        return rf"velodyne scan {re.escape(str(files['velo']))} is not a float32 N x 4 array \(18 bytes is not a " \
               rf"multiple of 16\)"
    if case == "velodyne_empty":
        files["velo"].write_bytes(b"")
        return rf"velodyne scan {re.escape(str(files['velo']))} is empty"
    if case == "image_not_the_calibrated_size":
        Image.open(files["left"]).resize((104, 32)).save(files["left"])
        return rf"image {re.escape(str(files['left']))} is 104x32 but .*calib_cam_to_cam.txt calibrates " \
               rf"S_rect_02 = 208x64; its P_rect_02 does not hold for this image"
    if case == "calibration_with_11_values":
        text = files["calib"].read_text().splitlines()
        files["calib"].write_text("\n".join(" ".join(l.split()[:-1]) if l.startswith("P_rect_02") else l
                                            for l in text) + "\n")
        return r"malformed KITTI calibration .*calib_cam_to_cam.txt: 'P_rect_02' has 11 values, expected 12"
    text = files["velo_calib"].read_text()
    files["velo_calib"].write_text(text.replace("T: ", "T: 1.0 "))
    return r"malformed KITTI calibration .*calib_velo_to_cam.txt: 'T' has 4 values, expected 3"


GT_CASES = ["velodyne_18_bytes", "velodyne_empty", "image_not_the_calibrated_size", "calibration_with_11_values",
            "velo_calibration_with_4_translations"]


# test.py reads the ground truth through the same dataset as export_gt_depth.py; two cases show it
# there (each loads the networks first), all of them run through export_gt_depth.py.
@pytest.mark.parametrize("command, case", [("test", "velodyne_18_bytes"), ("test", "image_not_the_calibrated_size"),
                                           *[("export_gt_depth", case) for case in GT_CASES]])
def test_kitti_ground_truth(commands, capsys, random_checkpoints, kitti, tmp_path, command, case):
    root, list_file, files = kitti
    pattern = damage_kitti(files, case)
    out = tmp_path / "out"
    argv = ["--root", str(root), "--test_datafile", str(list_file)]
    if command == "test":
        argv += [*SIZE, "--nThreads", "0", "--device", "cpu", "--out_dir", str(out),
                 *checkpoint_args(random_checkpoints)]
    else:
        argv += ["--output", str(out / "gt.npz")]
    code, err = run(commands, capsys, command, argv)
    line = one_error_line(err)
    assert code == 2 and re.search(rf"error: .*test.txt, line 1: {pattern}", line), err
    assert not out.exists()


@pytest.mark.parametrize("case, pattern", [
    ("8_bit", r"depth image .*00000_depth.png has PIL mode 'L'; NYUD-v2 depth must be a 16-bit PNG in millimetres"),
    ("other_size", r"depth image .*00000_depth.png is 40x30 but its image is 80x60"),
])
def test_nyu_ground_truth(commands, capsys, random_checkpoints, tmp_path, case, pattern):
    list_file = write_nyu(tmp_path / "nyu", 1)
    depth = tmp_path / "nyu" / "data/nyu2_test/00000_depth.png"
    raw = np.asarray(Image.open(depth))
    img = Image.fromarray((raw // 40).astype(np.uint8)) if case == "8_bit" else Image.open(depth).resize((40, 30))
    img.save(depth)
    code, err = run(commands, capsys, "test", [
        "--dataset", "NYUD_V2", "--root", str(tmp_path / "nyu"), "--test_datafile", str(list_file), *SIZE,
        "--nThreads", "0", "--device", "cpu", "--out_dir", str(tmp_path / "out"), *checkpoint_args(random_checkpoints)])
    assert code == 2 and re.search(rf"error: .*nyu2_test.csv, line 1: {pattern}", one_error_line(err)), err
    assert not (tmp_path / "out").exists()


def test_vkitti_depth_of_another_size(tmp_path):
    list_file = write_vkitti(tmp_path, n=1)
    depth = tmp_path / list_file.read_text().split()[1]
    Image.open(depth).resize((20, 10)).save(depth)
    with pytest.raises(DatasetError, match=r"train.txt, line 1: depth image .*00000.png is 20x10 but its image"):
        SyntheticDepthDataset(str(tmp_path), str(list_file), (96, 96))[0]


# ------------------------------------------------------------------ 5. checkpoints
class RunsCode:
    """Pickled by reference: loading it needs this class, i.e. code from outside the file."""


def bad_checkpoints(folder: Path, source: dict, case: str) -> tuple:
    """A copy of the four checkpoints with the DSA file broken; (paths, expected message)."""
    folder.mkdir()
    paths = {name: Path(shutil.copy(path, folder / path.name)) for name, path in source.items()}
    state = torch.load(paths["dsa"], weights_only=True)
    if case == "non_finite":
        key = sorted(k for k, v in state.items() if v.is_floating_point())[3]
        state[key].view(-1)[0] = float("nan")
        torch.save(state, paths["dsa"])
        short = key.removeprefix("module.")
        return paths, rf"dsa: .*dsa.pth holds NaN or infinite values in {re.escape(short)}; it would predict NaN"
    torch.save({"weights": state, "extra": RunsCode()}, paths["dsa"])
    return paths, (r"dsa: .*dsa.pth is refused: it is not a plain PyTorch checkpoint but a pickle that runs code "
                   r"while loading \(Unsupported global: GLOBAL tests.test_bad_input.RunsCode was not an allowed "
                   r"global by default.\); such a file is unsafe to load")


@pytest.mark.parametrize("case", ["non_finite", "runs_code"])
@pytest.mark.parametrize("command", ["test", "infer", "train"])
def test_checkpoints(commands, capsys, random_checkpoints, tmp_path, command, case):
    paths, pattern = bad_checkpoints(tmp_path / "ckpt", random_checkpoints, case)
    out = tmp_path / "out"
    if command == "test":
        list_file = write_kitti(tmp_path / "kitti", [("2011_09_26", 0)])
        argv = ["--root", str(tmp_path / "kitti"), "--test_datafile", str(list_file), *SIZE, "--nThreads", "0",
                "--device", "cpu", "--out_dir", str(out), *checkpoint_args(paths)]
    elif command == "infer":
        argv = ["--input", str(tmp_path), "--out_dir", str(out), "--device", "cpu", *checkpoint_args(paths)]
    else:
        list_file = write_vkitti(tmp_path / "vkitti", n=1)
        argv = ["--train_stage", "TrainDSAandDPModule", "--syn_root", str(tmp_path / "vkitti"),
                "--syn_train_datafile", str(list_file), *SIZE, "--nThreads", "0", "--device", "cpu",
                "--checkpoint_dir", str(out), "--log_dir", str(out / "logs"), "--dsa_pretrained", "none",
                *checkpoint_args(paths)]
    code, err = run(commands, capsys, command, argv)
    line = one_error_line(err)
    assert code == 2 and re.search(rf"^error: {pattern}", line), err
    assert "weights_only" not in line and "trust" not in line
    assert not out.exists() or not any(p.is_file() for p in out.rglob("*"))


# ------------------------------------------------------------------ 6. list files
@pytest.mark.parametrize("content, pattern", [
    (b"a.png b.png\n\x89PNG\x00\x00binary", r"line 2: a NUL byte; this is a binary file, not a text list"),
    (b"a.png b.png\nd\xe9j\xe0.png x.png\n", r"line 2: byte 0xe9 is not UTF-8 text; save the list as UTF-8"),
])
@pytest.mark.parametrize("command, flag", [("train", "--syn_train_datafile"), ("train", "--style_datafile"),
                                           ("test", "--test_datafile"), ("export_gt_depth", "--test_datafile")])
def test_list_files(commands, capsys, random_checkpoints, tmp_path, command, flag, content, pattern):
    bad = tmp_path / "list.txt"
    bad.write_bytes(content)
    out = tmp_path / "out"
    if command == "train":
        vkitti = write_vkitti(tmp_path / "vkitti", n=1)
        lists = {"--syn_train_datafile": vkitti, "--style_datafile": vkitti, flag: bad}
        argv = ["--train_stage", "TrainStructEncoder", "--syn_root", str(tmp_path / "vkitti"),
                "--syn_train_datafile", str(lists["--syn_train_datafile"]), "--style_root", str(tmp_path / "vkitti"),
                "--style_datafile", str(lists["--style_datafile"]), "--loadSize", "64", "64", "--nThreads", "0",
                "--device", "cpu", "--checkpoint_dir", str(out), "--log_dir", str(out / "logs")]
    elif command == "test":
        argv = ["--root", str(tmp_path), flag, str(bad), "--out_dir", str(out), *checkpoint_args(random_checkpoints)]
    else:
        argv = ["--root", str(tmp_path), flag, str(bad), "--output", str(out / "gt.npz")]
    code, err = run(commands, capsys, command, argv)
    assert code == 2 and re.search(rf"^error: {re.escape(str(bad))}, {pattern}$", one_error_line(err)), err
    assert not out.exists() or not any(p.is_file() for p in out.rglob("*"))


# ------------------------------------------------------------------ 7. training runs and results
@pytest.fixture
def vkitti_run(tmp_path, random_checkpoints):
    """A stage-2 command line on one vKITTI pair, and its run folder holding an earlier run's last.pth."""
    list_file = write_vkitti(tmp_path / "vkitti", n=2)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "last.pth").write_bytes(b"an earlier run's state")
    argv = ["--train_stage", "TrainStructDecoder", "--syn_root", str(tmp_path / "vkitti"), "--syn_train_datafile",
            str(list_file), *SIZE, "--nThreads", "0", "--device", "cpu", "--checkpoint_dir", str(run_dir),
            "--log_dir", str(tmp_path / "logs"), "--Shared_Struct_Encoder_path",
            str(random_checkpoints["struct_encoder"])]
    return argv, run_dir, tmp_path


def test_a_new_run_never_replaces_another_runs_state(commands, capsys, vkitti_run):
    argv, run_dir, tmp_path = vkitti_run
    before = snapshot(tmp_path)
    code, err = run(commands, capsys, "train", argv)
    line = one_error_line(err)
    assert code == 2 and line == (f"error: --checkpoint_dir {run_dir} holds another run's last.pth; pass --resume "
                                  f"to continue that run, --overwrite to replace it, or another --checkpoint_dir")
    assert snapshot(tmp_path) == before and not (tmp_path / "logs").exists()


def test_overwrite_passes_the_check_and_interrupted_saves_are_removed(commands, capsys, vkitti_run):
    argv, run_dir, tmp_path = vkitti_run
    (run_dir / "best").mkdir()
    torn = [run_dir / ".last.pth.k2j4h1_x.tmp", run_dir / "best" / ".depth_net.pth.a8b3q9.tmp"]
    kept = [run_dir / ".notes.tmp", run_dir / "depth_net_1.pth.tmp.bak"]
    for path in torn + kept:
        path.write_bytes(b"partial")
    argv[argv.index("--syn_train_datafile") + 1] = str(tmp_path / "absent.txt")  # stop right after the checks
    code, err = run(commands, capsys, "train", [*argv, "--overwrite"])
    assert code == 2 and "error: list file not found: " in err, err
    assert all(f"warning: removed {p}, left by a save that was interrupted" in err for p in torn), err
    assert not any(p.exists() for p in torn) and all(p.exists() for p in kept)
    assert (run_dir / "last.pth").read_bytes() == b"an earlier run's state"


def test_non_finite_test_metrics_are_an_error(commands, capsys, random_checkpoints, tmp_path):
    """Finite weights whose activations overflow: the network predicts NaN everywhere."""
    folder = tmp_path / "ckpt"
    folder.mkdir()
    paths = {name: Path(shutil.copy(path, folder / path.name)) for name, path in random_checkpoints.items()}
    state = torch.load(paths["depth_net"], weights_only=True)
    torch.save({k: v * 1e6 if v.dim() == 4 else v for k, v in state.items()}, paths["depth_net"])
    list_file = write_kitti(tmp_path / "kitti", [("2011_09_26", 0)])
    out = tmp_path / "out"
    code, err = run(commands, capsys, "test", [
        "--root", str(tmp_path / "kitti"), "--test_datafile", str(list_file), *SIZE, "--nThreads", "0",
        "--device", "cpu", "--out_dir", str(out), *checkpoint_args(paths)])
    line = one_error_line(err)
    assert code == 2 and line.startswith("error: the metrics abs_rel, sq_rel, rmse, rmse_log") and \
        "are not finite: the network predicted NaN or infinite depth" in line and "no results were written" in line
    assert not out.exists()


def test_non_finite_validation_metrics_stop_training(commands, capsys, vkitti_run, monkeypatch):
    """The validation network and data are real; its metrics are replaced by NaN, as a network whose
    activations overflow on the validation images would give."""
    argv, run_dir, tmp_path = vkitti_run
    (run_dir / "last.pth").unlink()
    nyu = write_nyu(tmp_path / "nyu", 1, size=(48, 64))

    def nan_metrics(*args, **kwargs):
        return EvalResult({"abs_rel": float("nan"), "a1": 0.5}, 1, 1)

    monkeypatch.setattr(trainer, "evaluate", nan_metrics)
    code, err = run(commands, capsys, "train", [
        *argv, "--batchSize", "2", "--epochs", "1", "--val_dataset", "NYUD_V2", "--val_root", str(tmp_path / "nyu"),
        "--val_datafile", str(nyu), "--val_loadSize", "96", "96"])
    assert code == 1, err
    assert "error: training diverged: non-finite validation metrics (abs_rel) at the end of epoch 1; stopped. " \
           "no training state had been saved yet" in err
    assert not (run_dir / "last.pth").exists() and not list(run_dir.glob("*_1.pth"))


def test_demo_passes_overwrite_to_every_stage(monkeypatch, tmp_path):
    """A rerun of the demo trains into its earlier run folders, so each train.py call must allow that;
    the commands are recorded instead of run (each fake stage leaves the files a real one would)."""
    calls = []

    def fake_run(cmd, step):
        calls.append(cmd)
        if cmd[0] == "train.py":
            folder, epochs = Path(cmd[cmd.index("--checkpoint_dir") + 1]), cmd[cmd.index("--epochs") + 1]
            for stem in ("struct_encoder", "struct_decoder", "dsa_modle", "depth_net"):
                (folder / f"{stem}_{epochs}.pth").parent.mkdir(parents=True, exist_ok=True)
                (folder / f"{stem}_{epochs}.pth").touch()

    for name, fake in (("run", fake_run), ("world_is_ready", lambda *a: True), ("metrics_of", lambda *a: {}),
                       ("draw_overview", lambda *a: None), ("format_table", lambda *a: ""),
                       ("save_initial_networks", lambda *a: None)):
        monkeypatch.setattr(demo, name, fake)
    world = tmp_path / "world"
    (world / "v").mkdir(parents=True)
    (world / "v" / "l.txt").write_text("a b\n")
    (world / "world.json").write_text('{"vkitti": {"root": "v", "list": "v/l.txt"}, "kitti": {"root": "k", '
                                      '"list": "k/l.txt", "count": 1}, "style": {"root": "s", "list": "s/l.txt"}}')
    assert demo.main(["--world_dir", str(world), "--out_dir", str(tmp_path / "out")]) == 0
    trains = [c for c in calls if c[0] == "train.py"]
    assert len(trains) == 3 and all("--overwrite" in c for c in trains)
