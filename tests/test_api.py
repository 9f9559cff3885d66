"""The Python API (inference/api.py) and the torch.hub entry (hubconf.py): their depth equals
test.py's saved prediction on the real KITTI and NYU frames; inputs of every accepted kind give the
same depth; bad input is a one-line UserError naming it."""
import numpy as np
import pytest
import torch
from PIL import Image

from constants import NETWORKS
from inference.api import ImageInputError, S2RDepth
from models import S2RDepthNet
from utils.checkpoint import CheckpointError, load_s2r
from utils.errors import InputSizeError, UserError

from .conftest import ROOT, checkpoint_args
from .test_infer import network_input

SIZE = (96, 96)  # small, so that the whole network runs in a fraction of a second per frame
NYU = "nyu_depth_v2"
NYU_PAIRS = [("unidepth_demo/rgb.png", "unidepth_demo/depth.png")] + [
    (f"metric3d_nyu_demo/rgb/rgb_{i}.jpg", f"metric3d_nyu_demo/depth/sync_depth_{i}.png")
    for i in ("00000", "00050", "00100")]


@pytest.fixture(scope="module")
def model(random_checkpoints) -> S2RDepth:
    return S2RDepth.from_checkpoints(random_checkpoints["depth_net"].parent, device="cpu", load_size=SIZE)


def test_domains_take_the_release_sizes_and_scales():
    """Outdoor: KITTI's 192x640 input and 80 m; indoor: NYUD-v2's 192x256 and 8 m."""
    with torch.device("meta"):  # no weights needed to read the defaults
        outdoor, indoor = S2RDepth(S2RDepthNet()), S2RDepth(S2RDepthNet(), domain="indoor")
        with pytest.raises(UserError, match="unknown domain 'underwater'"):
            S2RDepth(S2RDepthNet(), domain="underwater")
    assert (outdoor.load_size, outdoor.max_depth) == ((192, 640), 80.0)
    assert (indoor.load_size, indoor.max_depth) == ((192, 256), 8.0)


def saved_predictions(test_script, tmp_path, argv) -> dict:
    """test.py --save_pred's depth per input stem."""
    assert test_script.main([*argv, "--save_pred", "--out_dir", str(tmp_path), "--nThreads", "0",
                             "--device", "cpu", "--loadSize", *map(str, SIZE)]) == 0
    return {p.name.split("_", 1)[1].rsplit("_depth", 1)[0]: np.load(p)
            for p in sorted((tmp_path / "pred").glob("*_depth.npy"))}


def test_api_equals_test_py_on_real_kitti_frames(test_script, kitti_raw_list, random_checkpoints, model,
                                                  tmp_path):
    root, list_file = kitti_raw_list
    saved = saved_predictions(test_script, tmp_path, ["--dataset", "KITTI", "--root", str(root),
                                                      "--test_datafile", str(list_file),
                                                      *checkpoint_args(random_checkpoints)])
    lefts = [root / line.split()[0] for line in list_file.read_text().splitlines()]
    assert len(saved) == len(lefts) == 6
    for path in lefts:
        depth = model.infer_image(path)
        assert depth.dtype == np.float32 and depth.shape == (375, 1242)
        np.testing.assert_allclose(depth, saved[path.stem], rtol=0, atol=1e-5)


def test_api_equals_test_py_on_real_nyu_frames(test_script, shared_data, random_checkpoints, tmp_path):
    indoor = S2RDepth.from_checkpoints(random_checkpoints["depth_net"].parent, device="cpu", domain="indoor",
                                       load_size=SIZE)
    csv = tmp_path / "nyu.csv"
    csv.write_text("".join(f"{rgb},{depth}\n" for rgb, depth in NYU_PAIRS))
    saved = saved_predictions(test_script, tmp_path, ["--dataset", "NYUD_V2", "--root", str(shared_data / NYU),
                                                      "--test_datafile", str(csv),
                                                      *checkpoint_args(random_checkpoints)])
    assert len(saved) == len(NYU_PAIRS)
    for rgb, _ in NYU_PAIRS:
        path = shared_data / NYU / rgb
        depth = indoor.infer_image(path)
        assert depth.shape == (480, 640) and 0 <= depth.min() and depth.max() <= 8
        np.testing.assert_allclose(depth, saved[path.stem], rtol=0, atol=1e-6)


def test_every_image_kind_and_the_batch_give_the_hand_computed_depth(shared_data, random_checkpoints, model):
    """A path, a PIL image and an array agree; the batch method is (o1 + 1) / 2 * 80 of the network
    fed the preprocessing written out by hand."""
    path = shared_data / NYU / "densedepth_examples/1_image.png"
    pil = Image.open(path).convert("RGB")
    by_path = model.infer_image(path)
    np.testing.assert_array_equal(model.infer_image(pil), by_path)
    np.testing.assert_array_equal(model.infer_image(np.asarray(pil)), by_path)
    x = network_input(path, SIZE)
    with torch.no_grad():
        o1 = load_s2r(random_checkpoints).eval()(x).prediction
    np.testing.assert_allclose(model.infer_batch(x).numpy(), ((o1 + 1) / 2 * 80).numpy(), rtol=0, atol=1e-4)
    np.testing.assert_allclose(model.infer_batch(x, max_depth=8).numpy(), ((o1 + 1) / 2 * 8).numpy(),
                               rtol=0, atol=1e-5)


def test_four_paths_and_a_mapping_load_the_same_weights(random_checkpoints, model):
    x = torch.linspace(-1, 1, 3 * 96 * 96).reshape(1, 3, 96, 96)
    listed = S2RDepthNet.from_checkpoints([random_checkpoints[n] for n in NETWORKS], device="cpu")
    assert isinstance(listed, S2RDepth)
    mapped = S2RDepth.from_checkpoints(random_checkpoints, device="cpu")
    expected = model.infer_batch(x)
    torch.testing.assert_close(listed.infer_batch(x), expected, rtol=0, atol=0)
    torch.testing.assert_close(mapped.infer_batch(x), expected, rtol=0, atol=0)


def test_a_folder_without_the_four_checkpoints_is_named(random_checkpoints, tmp_path):
    for name in NETWORKS[:3]:
        (tmp_path / random_checkpoints[name].name).write_bytes(random_checkpoints[name].read_bytes())
    with pytest.raises(CheckpointError, match=f"depth_net: no depth_net|depthnet.*pth file in {tmp_path}"):
        S2RDepth.from_checkpoints(tmp_path)
    with pytest.raises(CheckpointError, match="expected a folder or four checkpoint paths"):
        S2RDepth.from_checkpoints([random_checkpoints["dsa"]])


@pytest.mark.parametrize("image, message", [
    (Image.new("L", (64, 48)), "PIL image of mode L, not RGB"),
    (Image.new("RGBA", (64, 48)), "PIL image of mode RGBA, not RGB"),
    (np.zeros((48, 64), np.uint8), r"shape \(48, 64\) and dtype uint8"),
    (np.zeros((48, 64, 4), np.uint8), r"shape \(48, 64, 4\)"),
    (np.zeros((48, 64, 3), np.float32), "dtype float32"),
    (torch.zeros(3, 48, 64), "is a Tensor"),
])
def test_an_image_that_is_not_rgb_is_named(model, image, message):
    with pytest.raises(ImageInputError, match=message):
        model.infer_image(image)


def test_inputs_below_the_network_minimum_are_refused(random_checkpoints, model):
    with pytest.raises(InputSizeError, match="at least 96, got 64x320"):
        S2RDepth.from_checkpoints(random_checkpoints, load_size=(64, 320))
    with pytest.raises(InputSizeError, match="got 80x96"):
        model.infer_batch(torch.zeros(1, 3, 80, 96))
    with pytest.raises(ImageInputError, match=r"\(B, 3, H, W\) float tensor in \[-1, 1\], got \(3, 96, 96\)"):
        model.infer_batch(torch.zeros(3, 96, 96))


def test_hub_loads_the_checkpoints_and_a_random_network(random_checkpoints, model, tmp_path):
    x = torch.linspace(-1, 1, 3 * 96 * 96).reshape(1, 3, 96, 96)
    hub = torch.hub.load(str(ROOT), "s2r_depthnet", source="local",
                         checkpoint_dir=str(random_checkpoints["depth_net"].parent), domain="indoor")
    assert (hub.load_size, hub.max_depth) == ((192, 256), 8.0)
    torch.testing.assert_close(hub.infer_batch(x, max_depth=80), model.infer_batch(x), rtol=0, atol=0)
    untrained = torch.hub.load(str(ROOT), "s2r_depthnet", source="local", load_size=SIZE)
    assert untrained.load_size == SIZE and untrained.infer_batch(x).shape == (1, 1, 96, 96)
    assert not torch.equal(untrained.infer_batch(x), model.infer_batch(x))
    with pytest.raises(CheckpointError, match=f"struct_encoder: no struct_encoder.*pth file in {tmp_path}"):
        torch.hub.load(str(ROOT), "s2r_depthnet", source="local", checkpoint_dir=str(tmp_path))
