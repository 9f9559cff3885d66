"""export_onnx.py and infer.py --onnx: the onnxruntime depth equals PyTorch's on the real KITTI and
NYU frames; the metadata, raw output and fixed size behave as documented; a file that is not an
export of ours, a wrong size or missing checkpoints stop with exit code 2 and a one-line error.

Exports are small (96x96: a 350 MB file, several seconds), one per kind, shared by the module."""
import subprocess
import sys
import warnings

import numpy as np
import onnx
import pytest
import torch
import torch.nn as nn

import export_onnx
import infer
from inference.api import S2RDepth
from inference.onnx_runtime import OnnxDepth, OnnxModelError
from utils.checkpoint import CheckpointError, load_s2r

from .conftest import ROOT, checkpoint_args
from .test_api import NYU, NYU_PAIRS, SIZE
from .test_infer import network_input

TOLERANCE_M = 1e-4
NYU_IMAGES = [rgb for rgb, _ in NYU_PAIRS] + ["densedepth_examples/1_image.png",
                                               "densedepth_examples/626_image.png"]


def export(tmp_path_factory, random_checkpoints, *flags) -> tuple:
    out = tmp_path_factory.mktemp("onnx") / "model.onnx"
    argv = ["--output", str(out), "--loadSize", *map(str, SIZE), *flags, *checkpoint_args(random_checkpoints)]
    return export_onnx.main(argv), out


@pytest.fixture(scope="module")
def dynamic_export(tmp_path_factory, random_checkpoints):
    rc, path = export(tmp_path_factory, random_checkpoints, "--dynamic")
    assert rc == 0
    yield path
    path.unlink()


@pytest.fixture(scope="module")
def raw_export(tmp_path_factory, random_checkpoints):
    rc, path = export(tmp_path_factory, random_checkpoints, "--raw", "--domain", "indoor")
    assert rc == 0
    yield path
    path.unlink()


def test_export_is_checked_and_carries_its_metadata(dynamic_export, raw_export):
    for path in (dynamic_export, raw_export):
        onnx.checker.check_model(str(path))
    meta = {p.key: p.value for p in onnx.load(str(dynamic_export), load_external_data=False).metadata_props}
    assert meta == {"model": "S2R-DepthNet", "raw_output": "0", "max_depth": "80.0", "domain": "outdoor",
                    "load_size": "96 96", "dynamic_size": "1"}
    raw = OnnxDepth(raw_export)
    assert (raw.raw, raw.dynamic, raw.domain, raw.load_size, raw.max_depth) == (True, False, "indoor", SIZE, 8.0)


def test_onnxruntime_equals_pytorch_on_real_frames(dynamic_export, random_checkpoints, kitti_raw_list,
                                                   shared_data):
    """Six KITTI frames at 96x96, the NYU images at 96x128 (the dynamic export at another size)."""
    root, list_file = kitti_raw_list
    kitti = [root / line.split()[0] for line in list_file.read_text().splitlines()]
    nyu = [shared_data / NYU / name for name in NYU_IMAGES]
    worst = 0.0
    for paths, size, domain in ((kitti, SIZE, "outdoor"), (nyu, (96, 128), "indoor")):
        torch_model = S2RDepth.from_checkpoints(random_checkpoints, device="cpu", domain=domain, load_size=size)
        onnx_model = OnnxDepth(dynamic_export, load_size=size, max_depth=torch_model.max_depth)
        for path in paths:
            ours, theirs = onnx_model.infer_image(path), torch_model.infer_image(path)
            assert ours.shape == theirs.shape and ours.dtype == np.float32
            worst = max(worst, float(np.abs(ours - theirs).max()))
    print(f"\nmax |onnxruntime - PyTorch| over {len(kitti)} KITTI and {len(nyu)} NYU frames: {worst:.3g} m")
    assert worst <= TOLERANCE_M


def test_raw_output_is_the_prediction_and_batches_are_free(raw_export, random_checkpoints, shared_data):
    x = torch.cat([network_input(shared_data / NYU / name, SIZE) for name in NYU_IMAGES[:3]])
    with torch.no_grad():
        o1 = load_s2r(random_checkpoints).eval()(x).prediction
    model = OnnxDepth(raw_export)
    out = model.session.run(["depth"], {"image": x.numpy()})[0]
    assert out.shape == (3, 1, *SIZE)
    np.testing.assert_allclose(out, o1.numpy(), rtol=0, atol=2e-6)
    np.testing.assert_allclose(model.infer_batch(x).numpy(), ((o1 + 1) / 2 * 8).numpy(), rtol=0, atol=1e-5)


def test_infer_onnx_writes_what_infer_writes(raw_export, random_checkpoints, shared_data, tmp_path):
    image = shared_data / NYU / NYU_IMAGES[0]
    common = ["--input", str(image), "--nThreads", "0", "--save_maps", "--post_process"]
    assert infer.main([*common, "--out_dir", str(tmp_path / "onnx"), "--onnx", str(raw_export)]) == 0
    assert infer.main([*common, "--out_dir", str(tmp_path / "torch"), "--domain", "indoor", "--loadSize",
                       *map(str, SIZE), "--device", "cpu", *checkpoint_args(random_checkpoints)]) == 0
    names = sorted(p.name for p in (tmp_path / "torch").iterdir())
    assert names == sorted(p.name for p in (tmp_path / "onnx").iterdir()) and "rgb_structure.png" in names
    np.testing.assert_allclose(np.load(tmp_path / "onnx/rgb_depth.npy"), np.load(tmp_path / "torch/rgb_depth.npy"),
                               rtol=0, atol=TOLERANCE_M)


def test_an_onnx_file_of_another_model_is_refused(tmp_path, raw_export):
    other = tmp_path / "conv.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
        torch.onnx.export(nn.Conv2d(3, 1, 3).eval(), (torch.zeros(1, 3, 8, 8),), str(other), dynamo=False,
                          input_names=["x"], output_names=["y"])
    not_onnx = tmp_path / "notes.onnx"
    not_onnx.write_text("not a model\n")
    image = str(ROOT / "img" / "architecture.png")
    for path, message in ((other, "is not an S2R-DepthNet export of export_onnx.py"),
                          (not_onnx, "is not a loadable ONNX model")):
        with pytest.raises(OnnxModelError, match=f"{path}.* {message}"):
            infer.main(["--onnx", str(path), "--input", image, "--out_dir", str(tmp_path)])
    with pytest.raises(OnnxModelError, match="exported for 96x96 inputs .*got --loadSize 96 128"):
        infer.main(["--onnx", str(raw_export), "--input", image, "--out_dir", str(tmp_path), "--loadSize", "96",
                    "128"])
    result = subprocess.run([sys.executable, str(ROOT / "infer.py"), "--onnx", str(other), "--input", image,
                             "--out_dir", str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"error: {other} is not an S2R-DepthNet export of export_onnx.py (inputs [('x', [1, 3, 8, 8])], "
        f"outputs ['y'], model None)"], result.stderr
    assert not any(p.suffix == ".npy" for p in tmp_path.iterdir())


def test_export_without_the_four_checkpoints_is_refused(random_checkpoints, tmp_path, capsys):
    (tmp_path / "dsa.pth").write_bytes(random_checkpoints["dsa"].read_bytes())
    output = tmp_path / "model.onnx"
    with pytest.raises(CheckpointError, match=f"struct_encoder: no struct_encoder.*pth file in {tmp_path}"):
        export_onnx.main(["--checkpoint_dir", str(tmp_path), "--output", str(output)])
    with pytest.raises(SystemExit) as exit_info:
        export_onnx.main(["--checkpoint_dir", str(tmp_path), "--output", str(output), "--loadSize", "64", "64"])
    assert exit_info.value.code == 2 and "error: --loadSize 64 64" in capsys.readouterr().err
    assert not output.exists()
