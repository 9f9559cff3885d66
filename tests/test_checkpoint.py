"""Checkpoint I/O (docs/release.md §1.6): release files with and without ``module.``, every bad-file error,
--checkpoint_dir resolution, atomic saves and the ImageNet DRN-D-22 mapping."""
import os
import pickle
from argparse import Namespace
from pathlib import Path

import pytest
import torch
import torch.nn as nn

from models import DSA, StructDecoder, StructEncoder
from utils.checkpoint import (CheckpointError, atomic_save, checkpoint_paths, find_checkpoint,
                              load_drn_imagenet, load_network, load_s2r, read_state_dict)


@pytest.fixture(scope="module")
def decoder_state():
    torch.manual_seed(0)
    return StructDecoder().state_dict()


def same_state(net: nn.Module, state: dict) -> bool:
    got = net.state_dict()
    return set(got) == set(state) and all(torch.equal(got[k], state[k]) for k in state)


@pytest.mark.parametrize("prefix", ["", "module."])
def test_round_trip_with_and_without_prefix(tmp_path, decoder_state, prefix):
    path = tmp_path / "struct_decoder.pth"
    torch.save({prefix + k: v for k, v in decoder_state.items()}, path)
    net = load_network(StructDecoder(), path, "struct_decoder")
    assert same_state(net, decoder_state)
    assert all(t.device.type == "cpu" for t in net.state_dict().values())


def test_map_location_is_honoured(tmp_path, decoder_state):
    path = tmp_path / "d.pth"
    torch.save(decoder_state, path)
    on_meta = read_state_dict(path, "struct_decoder", map_location="meta")
    assert set(on_meta) == set(decoder_state) and all(t.is_meta for t in on_meta.values())


def test_data_parallel_wrapped_save_loads_into_bare_network(tmp_path, decoder_state):
    wrapped = nn.DataParallel(StructDecoder())
    wrapped.module.load_state_dict(decoder_state)
    path = tmp_path / "dp.pth"
    torch.save(wrapped.state_dict(), path)
    assert all(k.startswith("module.") for k in torch.load(path, weights_only=True))
    assert same_state(load_network(StructDecoder(), path, "struct_decoder"), decoder_state)


def test_another_networks_checkpoint_names_both(tmp_path, decoder_state):
    path = tmp_path / "looks_like_decoder.pth"
    torch.save({"module." + k: v for k, v in decoder_state.items()}, path)
    with pytest.raises(CheckpointError) as err:
        load_network(DSA(), path, "dsa")
    msg = str(err.value)
    assert msg.startswith(f"dsa: {path} does not match the dsa network")
    assert "it looks like a struct_decoder checkpoint" in msg
    assert "missing keys: D.conv.bias" in msg and "unexpected keys: conv.bias" in msg


def test_missing_unexpected_and_wrong_shape_keys(tmp_path, decoder_state):
    missing = dict(decoder_state)
    del missing["up2.bn1.running_var"]
    torch.save(missing, tmp_path / "missing.pth")
    with pytest.raises(CheckpointError, match=r"missing keys: up2\.bn1\.running_var$") as err:
        load_network(StructDecoder(), tmp_path / "missing.pth", "struct_decoder")
    assert "looks like" not in str(err.value) and "unexpected keys" not in str(err.value)

    extra = dict(decoder_state, **{"up3.conv1.weight": torch.zeros(1)})
    torch.save(extra, tmp_path / "extra.pth")
    with pytest.raises(CheckpointError, match=r"unexpected keys: up3\.conv1\.weight$"):
        load_network(StructDecoder(), tmp_path / "extra.pth", "struct_decoder")

    wrong = dict(decoder_state, **{"conv.weight": torch.zeros(1, 32, 3, 3)})
    torch.save(wrong, tmp_path / "wrong.pth")
    with pytest.raises(CheckpointError, match=r"wrong shapes \(file != network\): "
                                              r"conv\.weight \(1, 32, 3, 3\) != \(1, 64, 3, 3\)"):
        load_network(StructDecoder(), tmp_path / "wrong.pth", "struct_decoder")


def test_many_missing_keys_are_summarised(tmp_path):
    torch.save({}, tmp_path / "empty.pth")
    with pytest.raises(CheckpointError, match=r"missing keys: .* \(\+17 more\)"):
        load_network(StructEncoder(), tmp_path / "empty.pth", "struct_encoder")


@pytest.mark.parametrize("content, expected", [
    (b"this is a text file\nnot a checkpoint\n", "is not a readable PyTorch checkpoint"),
    (bytes(range(256)) * 4, "is not a readable PyTorch checkpoint"),
    (b"", "is not a readable PyTorch checkpoint"),
])
def test_unreadable_files(tmp_path, content, expected):
    path = tmp_path / "bad.pth"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match=f"depth_net: .*bad.pth {expected}"):
        read_state_dict(path, "depth_net")


@pytest.mark.parametrize("obj, found", [
    ({"epoch": 3, "lr": 1e-4}, "dict"),
    ([torch.zeros(2)], "list"),
    ({"state_dict": {"w": torch.zeros(1)}}, "dict"),
])
def test_pickles_that_are_not_state_dicts(tmp_path, obj, found):
    path = tmp_path / "obj.pth"
    torch.save(obj, path)
    with pytest.raises(CheckpointError, match=f"obj.pth does not hold a state_dict of tensors \\(found {found}\\)"):
        read_state_dict(path, "dsa")


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_plain_pickle_and_whole_module_are_refused(tmp_path):
    plain = tmp_path / "plain.pth"
    plain.write_bytes(pickle.dumps({"a": 1}))
    with pytest.raises(CheckpointError, match="plain.pth is not a readable PyTorch checkpoint"):
        read_state_dict(plain, "dsa")
    module = tmp_path / "module.pth"
    torch.save(StructDecoder(), module)
    with pytest.raises(CheckpointError, match=r"module.pth is refused: it is not a plain PyTorch checkpoint but a "
                                              r"pickle that runs code while loading \(Unsupported global: GLOBAL "
                                              r"models.struct_decoder.StructDecoder .*\); such a file is unsafe") as err:
        read_state_dict(module, "struct_decoder")
    assert "weights_only" not in str(err.value) and "trust" not in str(err.value)


def test_missing_file(tmp_path):
    with pytest.raises(CheckpointError, match=f"struct_encoder: checkpoint file not found: {tmp_path}/nope.pth"):
        load_network(StructEncoder(), tmp_path / "nope.pth", "struct_encoder")


# --- --checkpoint_dir --------------------------------------------------------------------------

def touch(folder: Path, *names: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for n in names:
        (folder / n).write_bytes(b"")


def test_checkpoint_dir_with_release_names(tmp_path):
    touch(tmp_path, "struct_encoder.pth", "struct_decoder.pth", "dsa.pth", "depth_net.pth", "notes.txt")
    paths = checkpoint_paths(Namespace(checkpoint_dir=str(tmp_path)))
    assert {k: p.name for k, p in paths.items()} == {
        "struct_encoder": "struct_encoder.pth", "struct_decoder": "struct_decoder.pth",
        "dsa": "dsa.pth", "depth_net": "depth_net.pth"}


def test_checkpoint_dir_picks_the_highest_epoch_numerically(tmp_path):
    touch(tmp_path, "struct_decoder_3.pth", "struct_decoder_12.pth", "struct_decoder_120.pth",
          "dsa_modle_9.pth", "dsa_modle_10.pth", "depth_net_1.pth", "depth_net_2.pth",
          "struct_encoder.pth")
    assert find_checkpoint(tmp_path, "struct_decoder").name == "struct_decoder_120.pth"
    assert find_checkpoint(tmp_path, "dsa").name == "dsa_modle_10.pth"
    assert find_checkpoint(tmp_path, "depth_net").name == "depth_net_2.pth"
    assert find_checkpoint(tmp_path, "struct_encoder").name == "struct_encoder.pth"


def test_checkpoint_dir_errors(tmp_path):
    touch(tmp_path, "dsa_kitti.pth", "dsa_nyu.pth")
    with pytest.raises(CheckpointError, match=r"dsa: several candidate checkpoints in .*: dsa_kitti\.pth, "
                                              r"dsa_nyu\.pth; name one with --DSAModle_path"):
        find_checkpoint(tmp_path, "dsa")
    with pytest.raises(CheckpointError, match=r"depth_net: no depth_net\|depthnet\*\.pth file in"):
        find_checkpoint(tmp_path, "depth_net")
    with pytest.raises(CheckpointError, match="checkpoint folder not found"):
        find_checkpoint(tmp_path / "absent", "dsa")


def test_explicit_flags_override_the_folder_and_missing_ones_are_named(tmp_path):
    touch(tmp_path, "struct_encoder.pth", "struct_decoder.pth", "dsa_modle_5.pth", "depth_net.pth")
    args = Namespace(checkpoint_dir=str(tmp_path), DSAModle_path="/elsewhere/dsa.pth")
    assert checkpoint_paths(args)["dsa"] == Path("/elsewhere/dsa.pth")
    with pytest.raises(CheckpointError, match=r"no checkpoint given for --Struct_Decoder_path, "
                                              r"--DepthNet_path \(pass the files or --checkpoint_dir\)"):
        checkpoint_paths(Namespace(Shared_Struct_Encoder_path="a.pth", DSAModle_path="b.pth"))


def test_load_s2r_from_release_files(random_checkpoints):
    model = load_s2r(random_checkpoints)
    for name, path in random_checkpoints.items():
        state = torch.load(path, weights_only=True)
        state = {k.removeprefix("module."): v for k, v in state.items()}
        assert same_state(getattr(model, name), state)


# --- atomic_save ---------------------------------------------------------------------------------

def test_atomic_save_leaves_only_the_file(tmp_path, decoder_state):
    target = tmp_path / "sub" / "struct_decoder_1.pth"
    atomic_save(decoder_state, target)
    assert os.listdir(target.parent) == ["struct_decoder_1.pth"]
    assert same_state(load_network(StructDecoder(), target, "struct_decoder"), decoder_state)


def test_atomic_save_never_tears_the_old_file(tmp_path, decoder_state, monkeypatch):
    target = tmp_path / "depth_net_3.pth"
    atomic_save(decoder_state, target)
    before = target.read_bytes()

    def half_written(obj, f):
        f.write(b"PK\x03\x04 partial")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", half_written)
    with pytest.raises(OSError, match="disk full"):
        atomic_save({"x": torch.zeros(3)}, target)
    assert target.read_bytes() == before
    assert os.listdir(tmp_path) == ["depth_net_3.pth"]


# --- ImageNet DRN-D-22 ---------------------------------------------------------------------------

def fake_drn_file(path: Path, seed: int = 0, legacy: bool = True) -> dict:
    """A file shaped like drn_d_22-4bd2f8ea.pth: ``layer0..8`` keys, an ``fc`` classifier, and (as a
    pre-0.4 file) no ``num_batches_tracked``. Returns the expected E.base state."""
    torch.manual_seed(seed)
    enc = DSA().E
    for m in enc.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.normal_()
            m.running_var.uniform_(0.5, 1.5)
            m.weight.data.normal_(1, 0.1)
    state = {}
    for key, value in enc.state_dict().items():
        if legacy and key.endswith("num_batches_tracked"):
            continue
        stage, rest = key[len("base."):].split(".", 1)
        state[f"layer{stage}.{rest}"] = value.clone()
    state["fc.weight"] = torch.randn(1000, 512, 1, 1)
    state["fc.bias"] = torch.randn(1000)
    torch.save(state, path, _use_new_zipfile_serialization=not legacy)
    return enc.state_dict()


@pytest.mark.parametrize("legacy", [True, False])
def test_drn_imagenet_mapping(tmp_path, legacy):
    expected = fake_drn_file(tmp_path / "drn_d_22-4bd2f8ea.pth", legacy=legacy)
    torch.manual_seed(1)
    dsa = DSA()
    decoder_before = {k: v.clone() for k, v in dsa.D.state_dict().items()}
    load_drn_imagenet(dsa, tmp_path / "drn_d_22-4bd2f8ea.pth")
    got = dsa.E.state_dict()
    for key, value in expected.items():
        if key.endswith("num_batches_tracked"):
            assert got[key].item() == 0
        else:
            assert torch.equal(got[key], value), key
    assert same_state(dsa.D, decoder_before)


def test_drn_imagenet_with_the_wrong_network_is_an_error(tmp_path):
    path = tmp_path / "drn_d_38.pth"
    fake_drn_file(path)
    state = torch.load(path, weights_only=True)
    state["layer3.0.conv1.weight"] = torch.zeros(64, 32, 5, 5)
    del state["layer8.1.bias"]
    torch.save(state, path)
    with pytest.raises(CheckpointError) as err:
        load_drn_imagenet(DSA(), path)
    msg = str(err.value)
    assert "DRN-D-22 (ImageNet)" in msg and str(path) in msg
    assert "missing keys: base.8.1.bias" in msg
    assert "base.3.0.conv1.weight (64, 32, 5, 5) != (64, 32, 3, 3)" in msg
