"""train.py end to end on tiny data: the release's flags for each stage, test.py on the result,
resume equivalence (epoch boundary and mid-epoch, 0 and 2 loader workers), torchrun with two gloo
processes, TensorBoard tags, and the messages for bad input and divergence."""
import json
import os
import re
import shutil
import signal
import struct
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from tensorboardX.proto import event_pb2

import train
from options.train_options import parse_train_args
from models import DepthNet, StructDecoder, StructEncoder
from tests.conftest import ROOT, save_random_checkpoints
from tests.test_train_data import write_vkitti
from training import stages, trainer
from training.translation import StructureStyleTranslation
from training.precision import MixedPrecision
from training.distributed import DistInfo
from training.trainer import Trainer, make_scheduler
from utils.checkpoint import load_network
from utils.errors import exit_on_user_error
from utils.runtime import seed_everything

SIZE = ["--loadSize", "96", "96"]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """Two vKITTI pairs, a style list, a two-frame NYU-format validation set and random checkpoints."""
    root = tmp_path_factory.mktemp("train_run")
    list_file = write_vkitti(root / "vkitti", n=2)
    style = root / "vkitti" / "style.txt"
    style.write_text("".join(line.split()[0] + "\n" for line in list_file.read_text().splitlines()))
    rng = np.random.default_rng(1)
    lines = []
    for i in range(2):
        Image.fromarray(rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)).save(root / f"nyu_{i}_rgb.png")
        depth = rng.integers(500, 7000, (48, 64)).astype(np.uint16)
        Image.fromarray(depth).save(root / f"nyu_{i}_depth.png")
        lines.append(f"nyu_{i}_rgb.png,nyu_{i}_depth.png")
    (root / "nyu.csv").write_text("\n".join(lines) + "\n")
    return {"root": root, "list": list_file, "style": style, "ckpt": save_random_checkpoints(root / "ckpt")}


def base_args(data, stage="TrainStructDecoder"):
    return ["--train_stage", stage, "--syn_dataset", "VKITTI", "--syn_root", str(data["list"].parent),
            "--syn_train_datafile", str(data["list"]), *SIZE,
            "--Shared_Struct_Encoder_path", str(data["ckpt"]["struct_encoder"])]


def run_cli(script, args, timeout=600):
    proc = subprocess.run([sys.executable, script, *args], cwd=ROOT, env=ENV, capture_output=True, text=True,
                          timeout=timeout)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def run_main(argv):
    """train.py's main as the command line runs it (user errors -> 'error: ...' and exit status 2)."""
    with exit_on_user_error():
        return train.main(argv)


def event_tags(log_dir: Path) -> set:
    """Tags in the TensorBoard event files (TFRecord framing: length, crc, payload, crc)."""
    tags = set()
    for path in log_dir.glob("events.out.tfevents.*"):
        raw, pos = path.read_bytes(), 0
        while pos < len(raw):
            (length,) = struct.unpack("<Q", raw[pos:pos + 8])
            event = event_pb2.Event.FromString(raw[pos + 12:pos + 12 + length])
            tags.update(v.tag for v in event.summary.value)
            pos += 16 + length
    return tags


def plain_state(path: Path) -> dict:
    state = torch.load(path, map_location="cpu", weights_only=True)
    assert not any(k.startswith("module.") for k in state), path
    return state


def assert_same_weights(a: Path, b: Path) -> None:
    sa, sb = plain_state(a), plain_state(b)
    assert sa.keys() == sb.keys()
    different = [k for k in sa if not torch.equal(sa[k], sb[k])]
    assert not different, f"{a.name}: {len(different)} tensors differ, e.g. {different[:3]}"


@pytest.fixture(scope="module", autouse=True)
def narrow_depth_net():
    """In-process runs build a DP module with ngf=8 (same blocks and wiring, 1/64 of the weights, so
    steps and checkpoints are small); the command-line runs in subprocesses use the real one."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(stages, "DepthNet", lambda: DepthNet(ngf=8))
        yield


# ------------------------------------------------------------------ the stages from the command line
@pytest.fixture(scope="module")
def stage2_run(data):
    out = data["root"] / "s2"
    proc = run_cli("train.py", [*base_args(data), "--batchSize", "2", "--epochs", "1", "--nThreads", "0",
                                "--checkpoint_dir", str(out), "--log_dir", str(out / "logs"), "--seed", "0"])
    return out, proc


def test_stage2_release_command(stage2_run):
    out, proc = stage2_run
    assert {p.name for p in out.glob("*.pth")} == {"struct_decoder_1.pth", "depth_net_1.pth", "last.pth"}
    load_network(StructDecoder(), out / "struct_decoder_1.pth", "struct_decoder")
    load_network(DepthNet(), out / "depth_net_1.pth", "depth_net")
    args = json.loads((out / "args.json").read_text())
    assert args["train_stage"] == "TrainStructDecoder" and args["seed"] == 0 and args["loadSize"] == [96, 96]
    assert {"train/total_loss", "train/batches_loss_avg", "train/depth_loss", "train/struct_weighted_loss",
            "train/lr", "train/image", "train/pred_depth", "train/depth_gt",
            "train/structure_map"} <= event_tags(out / "logs")
    assert "epoch 1/1: mean loss" in proc.stdout


def test_stage3_with_validation_then_test_py(data, stage2_run, tmp_path):
    s2, _ = stage2_run
    out = tmp_path / "s3"
    proc = run_cli("train.py", [
        *base_args(data, "TrainDSAandDPModule"), "--Struct_Decoder_path", str(s2 / "struct_decoder_1.pth"),
        "--DepthNet_path", str(s2 / "depth_net_1.pth"), "--batchSize", "2", "--epochs", "1", "--nThreads", "0",
        "--checkpoint_dir", str(out), "--log_dir", str(out / "logs"), "--log_freq", "1",
        "--val_dataset", "NYUD_V2", "--val_root", str(data["root"]), "--val_datafile", str(data["root"] / "nyu.csv"),
        "--val_loadSize", "96", "128"])
    assert "ImageNet DRN-D-22 weights not found" in proc.stderr and proc.stderr.count("DRN-D-22") == 1
    assert {p.name for p in out.glob("*.pth")} == {"dsa_modle_1.pth", "depth_net_1.pth", "last.pth"}
    assert {p.name for p in (out / "best").glob("*.pth")} == {"struct_encoder.pth", "struct_decoder.pth",
                                                               "dsa_modle.pth", "depth_net.pth"}
    assert {"train/attention_map", "train/depth_specific_structure", "train/structure_map",
            "val/abs_rel"} <= event_tags(out / "logs")
    assert "train/struct_weighted_loss" not in event_tags(out / "logs")
    best = json.loads((out / "best" / "metrics.json").read_text())
    run_cli("test.py", ["--dataset", "NYUD_V2", "--root", str(data["root"]), "--test_datafile",
                        str(data["root"] / "nyu.csv"), "--loadSize", "96", "128", "--nThreads", "0",
                        "--checkpoint_dir", str(out / "best"), "--out_dir", str(tmp_path / "eval")])
    evaluated = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert best["epoch"] == 1
    assert evaluated["metrics"]["abs_rel"] == pytest.approx(best["metrics"]["abs_rel"], rel=1e-6)


def test_stage1_end_to_end(data, tmp_path):
    out = tmp_path / "s1"
    assert run_main([
        "--train_stage", "TrainStructEncoder", "--syn_root", str(data["list"].parent), "--syn_train_datafile",
        str(data["list"]), "--style_root", str(data["list"].parent), "--style_datafile", str(data["style"]),
        "--loadSize", "64", "64", "--batchSize", "2", "--epochs", "1", "--nThreads", "0", "--seed", "5",
        "--checkpoint_dir", str(out), "--log_dir", str(out / "logs")]) == 0
    assert {p.name for p in out.glob("*.pth")} == {"struct_encoder_1.pth", "last.pth"}
    encoder = load_network(StructEncoder(), out / "struct_encoder_1.pth", "struct_encoder").state_dict()
    state = torch.load(out / "last.pth", map_location="cpu", weights_only=True)
    assert set(state["stage"]["optimizers"]) == {"dis", "gen"} and state["epoch"] == 1
    trained = state["stage"]["translation"]
    assert all(torch.equal(v, trained[f"struct_encoder.{k}"]) for k, v in encoder.items())
    seed_everything(5)  # the run's initial weights: the seed, then the translation networks
    initial = StructureStyleTranslation(style_dim=8).state_dict()
    for part in ("struct_encoder", "style_encoder_a", "style_encoder_b", "decoder_a", "decoder_b", "dis_a",
                 "dis_b"):  # one discriminator and one generator update touched every part
        keys = [k for k in initial if k.startswith(part + ".") and initial[k].is_floating_point()]
        assert keys and any(not torch.equal(initial[k], trained[k]) for k in keys), part
    assert {"train/total_loss", "train/batches_loss_avg", "train/dis_loss", "train/recon_x_loss", "train/lr",
            "train/a", "train/a2b", "train/b2a"} <= event_tags(out / "logs")


def test_two_gloo_processes_under_torchrun(data, tmp_path):
    out = tmp_path / "ddp"
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "train.py",
         *base_args(data), "--batchSize", "1", "--epochs", "1", "--nThreads", "0", "--device", "cpu",
         "--checkpoint_dir", str(out), "--log_dir", str(out / "logs")],
        cwd=ROOT, env={**ENV, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert {p.name for p in out.glob("*.pth")} == {"struct_decoder_1.pth", "depth_net_1.pth", "last.pth"}
    load_network(StructDecoder(), out / "struct_decoder_1.pth", "struct_decoder")
    load_network(DepthNet(), out / "depth_net_1.pth", "depth_net")
    assert json.loads((out / "args.json").read_text())["world_size"] == 2
    assert proc.stdout.count("epoch 1/1: mean loss") == 1, "only rank 0 reports and writes"
    state = torch.load(out / "last.pth", map_location="cpu", weights_only=True)
    assert state["world_size"] == 2 and state["iteration"] == 1  # two images, one per process


def test_sigterm_to_the_process_group_saves_and_exits(data, tmp_path):
    """A scheduler's SIGTERM reaches the loader workers too: the run still finishes its iteration,
    saves, exits with 143 and leaves no process behind."""
    out, err = tmp_path / "term", tmp_path / "stderr.txt"
    with open(err, "w") as err_file:
        proc = subprocess.Popen([sys.executable, "train.py", *base_args(data), "--batchSize", "1", "--epochs", "2",
                                 "--nThreads", "2", "--checkpoint_dir", str(out), "--log_dir", str(out / "logs")],
                                cwd=ROOT, env=ENV, stdout=subprocess.PIPE, stderr=err_file, text=True,
                                start_new_session=True)
        deadline = time.monotonic() + 300
        while "1/2 [" not in err.read_text() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        os.killpg(proc.pid, signal.SIGTERM)
        stdout, _ = proc.communicate(timeout=300)
    assert proc.returncode == 143, stdout + err.read_text()
    assert "stopped; resume with --resume" in stdout
    assert torch.load(out / "last.pth", map_location="cpu", weights_only=True)["batch"] >= 1
    assert subprocess.run(["pgrep", "-s", str(proc.pid)], capture_output=True).returncode == 1


# ------------------------------------------------------------------ resume equivalence
def stop_after(monkeypatch, n_steps):
    """Deliver SIGINT to this process right after the n-th training step, as Ctrl-C would."""
    original = trainer.train_step
    count = {"steps": 0}

    def step(*args):
        result = original(*args)
        count["steps"] += 1
        if count["steps"] == n_steps:
            os.kill(os.getpid(), signal.SIGINT)
        return result

    monkeypatch.setattr(trainer, "train_step", step)


def resume_args(data, out, workers, epochs):
    return [*base_args(data), "--batchSize", "1", "--lr_decay_iters", "1", "--seed", "3", "--log_freq", "1",
            "--nThreads", str(workers), "--epochs", str(epochs), "--checkpoint_dir", str(out),
            "--log_dir", str(out / "logs")]


@pytest.fixture(scope="module")
def straight(data):
    out = data["root"] / "straight"
    assert run_main(resume_args(data, out, 0, 2)) == 0
    return out


def test_interrupted_and_resumed_equals_straight_workers0(data, straight, monkeypatch, capsys):
    out = data["root"] / "resumed0"
    stop_after(monkeypatch, 1)  # mid-epoch 1
    assert run_main(resume_args(data, out, 0, 2)) == 130
    monkeypatch.undo()
    state = torch.load(out / "last.pth", map_location="cpu", weights_only=True)
    assert (state["epoch"], state["batch"], state["iteration"]) == (0, 1, 1)
    assert not list(out.glob("depth_net_*.pth"))
    assert "stopping after this iteration" in capsys.readouterr().err
    assert run_main([*resume_args(data, out, 0, 1), "--resume"]) == 0  # rest of epoch 1
    assert "continuing at batch 1 of epoch 1" in capsys.readouterr().out
    assert_same_weights(out / "depth_net_1.pth", straight / "depth_net_1.pth")
    assert run_main([*resume_args(data, out, 0, 2), "--resume"]) == 0  # epoch 2
    for name in ("struct_decoder_2.pth", "depth_net_2.pth"):
        assert_same_weights(out / name, straight / name)
    done = torch.load(out / "last.pth", map_location="cpu", weights_only=True)
    assert done["stage"]["optimizers"]["main"]["param_groups"][0]["lr"] == pytest.approx(1e-4 / 4)


def test_resumed_with_two_workers_equals_straight(data, straight, monkeypatch):
    out = data["root"] / "resumed2"
    stop_after(monkeypatch, 2)  # after the last batch of epoch 1, before its end-of-epoch work
    assert run_main(resume_args(data, out, 2, 2)) == 130
    monkeypatch.undo()
    assert not list(out.glob("depth_net_*.pth"))
    assert run_main([*resume_args(data, out, 2, 2), "--resume", str(out / "last.pth")]) == 0
    for name in ("struct_decoder_1.pth", "depth_net_1.pth", "struct_decoder_2.pth", "depth_net_2.pth"):
        assert_same_weights(out / name, straight / name)


def test_divergence_stops_and_keeps_the_last_good_state(data, straight, monkeypatch, capsys, tmp_path):
    out = tmp_path / "diverged"
    shutil.copytree(straight, out)
    before = (out / "last.pth").read_bytes()
    monkeypatch.setattr(stages, "depth_loss", lambda outputs, depth: torch.tensor(float("nan")))
    assert run_main([*resume_args(data, out, 0, 3), "--resume"]) == 1
    err = capsys.readouterr().err
    assert "error: training diverged: non-finite loss (total=nan, depth=nan" in err
    assert "at epoch 3, iteration 4 (batch 1 of 2)" in err and "last.pth is kept" in err
    assert (out / "last.pth").read_bytes() == before
    assert not list(out.glob("*_3.pth"))


# ------------------------------------------------------------------ bad input
def test_bad_input_messages(data, tmp_path, capsys):
    root, lines = data["list"].parent, data["list"].read_text().splitlines()
    (tmp_path / "bad_line.txt").write_text(f"{lines[0]}\nonly_one_field.png\n")
    (tmp_path / "empty.txt").write_text("")
    (tmp_path / "missing.txt").write_text(f"{lines[0]}\nvkitti_1.3.1_rgb/none.png {lines[1].split()[1]}\n")
    corrupt = tmp_path / "corrupt.png"
    corrupt.write_bytes(b"\x89PNG broken")
    (tmp_path / "corrupt.txt").write_text(f"{corrupt} {corrupt}\n")
    ckpt = data["ckpt"]
    out = ["--checkpoint_dir", str(tmp_path / "out"), "--log_dir", str(tmp_path / "logs"), "--epochs", "1"]

    def with_list(name, workers="0"):
        return ["--train_stage", "TrainStructDecoder", "--syn_root", str(root), "--syn_train_datafile",
                str(tmp_path / name), *SIZE, "--nThreads", workers,
                "--Shared_Struct_Encoder_path", str(ckpt["struct_encoder"]), *out]

    cases = [
        (with_list("nope.txt"), r"error: list file not found: .*nope.txt"),
        (with_list("bad_line.txt"), r"error: .*bad_line.txt, line 2: expected 2 space-separated fields, "
                                    r"got 'only_one_field.png'"),
        (with_list("empty.txt"), r"error: list file is empty: .*empty.txt"),
        (with_list("missing.txt"), r"error: .*missing.txt, line 2: file not found: .*none.png"),
        (with_list("corrupt.txt", "2"), r"error: .*corrupt.txt, line 1: cannot read image .*corrupt.png"),
        ([*base_args(data)[:-1], str(ckpt["depth_net"]), *out],
         r"error: struct_encoder: .*depth_net.pth does not match the struct_encoder network "
         r"\(it looks like a depth_net checkpoint\)"),
        ([*base_args(data), *out, "--resume"], r"error: --resume: no training state at .*out/last.pth"),
        ([*base_args(data), *out, "--resume", str(ckpt["struct_decoder"])],
         r"error: --resume: .*struct_decoder.pth is not a training state written by train.py"),
        ([*base_args(data, "TrainDSAandDPModule"), "--Struct_Decoder_path", str(ckpt["struct_decoder"]),
          "--dsa_pretrained", str(tmp_path / "drn.pth"), *out],
         r"error: DRN-D-22 \(ImageNet\): checkpoint file not found: .*drn.pth"),
    ]
    for argv, pattern in cases:
        with pytest.raises(SystemExit) as exit_info:
            run_main(argv)
        err = capsys.readouterr().err
        assert exit_info.value.code == 2, err
        assert re.search(pattern, err, re.MULTILINE) and "Traceback" not in err, err


def test_keep_epochs_removes_older_epoch_files_only(data, straight, tmp_path):
    out = tmp_path / "kept"
    out.mkdir()
    for stale in ("depth_net_0.pth", "depth_net_best.pth"):   # an older file of the folder, and a non-epoch one
        (out / stale).write_bytes(b"x")
    assert run_main([*resume_args(data, out, 0, 2), "--keep_epochs", "1"]) == 0
    assert sorted(p.name for p in out.glob("*.pth")) == ["depth_net_2.pth", "depth_net_best.pth", "last.pth",
                                                         "struct_decoder_2.pth"]
    for name in ("struct_decoder_2.pth", "depth_net_2.pth"):   # the run itself is unchanged
        assert_same_weights(out / name, straight / name)


def test_resume_refuses_another_stage(data, straight, capsys):
    argv = [*base_args(data, "TrainDSAandDPModule"), "--Struct_Decoder_path", str(data["ckpt"]["struct_decoder"]),
            "--resume", str(straight / "last.pth")]
    with pytest.raises(SystemExit):
        run_main(argv)
    assert "is a TrainStructDecoder state, but --train_stage is TrainDSAandDPModule" in capsys.readouterr().err


@pytest.mark.parametrize("argv,message", [
    (["--train_stage", "TrainStructDecoder"], "needs --Shared_Struct_Encoder_path"),
    (["--train_stage", "TrainDSAandDPModule", "--Shared_Struct_Encoder_path", "x"], "needs --Struct_Decoder_path"),
    (["--train_stage", "TrainStructEncoder"], "needs --style_root and --style_datafile"),
    (["--train_stage", "TrainStructDecoder", "--Shared_Struct_Encoder_path", "x", "--loadSize", "80", "96"],
     "multiples of 16 and at least 96"),
    (["--train_stage", "TrainStructDecoder", "--Shared_Struct_Encoder_path", "x", "--val_root", "r"],
     "validation needs all of"),
])
def test_usage_errors(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        train.main(["--syn_root", "r", "--syn_train_datafile", "l", *argv])
    assert exit_info.value.code == 2 and message in capsys.readouterr().err


# ------------------------------------------------------------------ schedules and precision
def test_start_epoch_positions_the_schedule(data, tmp_path):
    args = parse_train_args([*base_args(data), "--start-epoch", "10", "--lr_decay_iters", "4", "--seed", "0",
                             "--checkpoint_dir", str(tmp_path), "--log_dir", str(tmp_path / "logs")])
    trainer = Trainer(args, DistInfo(), torch.device("cpu"))
    assert trainer.epoch == 10 and trainer.stage.optimizers["main"].param_groups[0]["lr"] == pytest.approx(2.5e-5)



def schedule(policy, epochs=6, metric=None, **flags):
    args = type("Args", (), {"lr_policy": policy, "lr_decay_iters": 2, "epochs": epochs, **flags})
    opt = torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    scheduler = make_scheduler(opt, args)
    lrs = []
    for e in range(epochs):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        scheduler.step(metric[e]) if metric else scheduler.step()
    return lrs


def test_learning_rate_policies():
    assert schedule("step") == [1, 1, 0.5, 0.5, 0.25, 0.25]
    assert schedule("lambda", epochs=4) == pytest.approx([1, 0.75, 0.5, 0.25])
    flat = [1.0] * 9
    assert schedule("plateau", epochs=9, metric=flat) == [1] * 7 + [0.5, 0.5]


def test_amp_is_off_on_cpu_with_one_warning(capsys):
    amp = MixedPrecision("bf16", torch.device("cpu"))
    assert amp.mode is None and not amp.scaler.is_enabled()
    assert capsys.readouterr().err.count("--amp bf16 works on CUDA only") == 1
