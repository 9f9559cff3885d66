"""Performance work and its benchmark: the blocked scan projection gives bit-identical ground truth,
the inference modes (exact ones agree with eager float32, CUDA-only ones are refused on the CPU,
test.py's flag), and benchmarks/run.py end to end in its smoke mode."""
import json
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest
import torch
from PIL import Image

from benchmarks import common, eval_sets, inference, loader, training
from benchmarks.data import prepare
from benchmarks.eval_loop import resample
from benchmarks.plan import SMOKE, SMOKE_WORLD
from datasets.kitti import PROJECTION_BLOCK, load_velodyne_points, project_to_depth, velo_to_image_matrix
from models import S2RDepthNet
from inference.modes import MODES, Autocast, prepare_model, resolve_inference_mode
from utils.errors import UserError, exit_on_user_error

from . import reference
from .conftest import ROOT, checkpoint_args
from .synthetic import velodyne_scan, write_kitti

SHAPE = (375, 1242)
# KITTI-like: velodyne x forward -> camera z, intrinsics of P_rect_02, a small offset.
VELO_TO_CAM = np.array([[0, -1, 0, 0.0], [0, 0, -1, -0.08], [1, 0, 0, -0.27]])
K = np.array([[721.5377, 0, 609.5593], [0, 721.5377, 172.854], [0, 0, 1]])
P_KITTI = K @ VELO_TO_CAM + np.array([[0, 0, 0, 44.857], [0, 0, 0, 0.2164], [0, 0, 0, 0.002746]])


def one_product_projection(points: np.ndarray, proj: np.ndarray, shape) -> np.ndarray:
    """The projection before this change: one matrix product per scan, nearest point by sorting."""
    h, w = shape
    points = points[points[:, 0] >= 0]
    im = points @ proj.T
    with np.errstate(divide="ignore", invalid="ignore"):
        col = np.round(im[:, 0] / im[:, 2]) - 1
        row = np.round(im[:, 1] / im[:, 2]) - 1
    keep = (col >= 0) & (row >= 0) & (col < w) & (row < h)
    lin = row[keep].astype(np.int64) * w + col[keep].astype(np.int64)
    z = im[keep, 2]
    order = np.lexsort((z, lin))
    lin, z = lin[order], z[order]
    first = np.concatenate([[True], lin[1:] != lin[:-1]]) if len(lin) else np.zeros(0, bool)
    depth = np.zeros(h * w)
    depth[lin[first]] = z[first]
    depth[depth < 0] = 0
    return depth.reshape(h, w)


def scan(n: int, seed: int) -> np.ndarray:
    """A scan with shared pixels (every point also 1-3 m farther) and points near and behind the sensor."""
    rng = np.random.default_rng(seed)
    points = velodyne_scan(rng, n)
    points[: n // 2, :3] = points[n - n // 2:][: n // 2, :3] * np.float32(1.0 + rng.uniform(0.02, 0.05))
    points[:, 3] = 1.0
    return points


@pytest.mark.parametrize("n", [0, 1, PROJECTION_BLOCK - 1, PROJECTION_BLOCK, PROJECTION_BLOCK + 1,
                               3 * PROJECTION_BLOCK + 7, 120_000])
def test_blocked_projection_is_bit_identical_to_one_product(n):
    points = scan(n, seed=n)
    got = project_to_depth(points, P_KITTI, SHAPE)
    want = one_product_projection(points, P_KITTI, SHAPE)
    assert got.dtype == np.float64 and got.tobytes() == want.tobytes()
    if n >= PROJECTION_BLOCK:
        assert np.count_nonzero(got) > n // 20  # the case is not vacuous


def test_blocked_projection_on_real_scans(shared_data):
    date = shared_data / "kitti_raw" / "2011_09_26"
    proj = velo_to_image_matrix(str(date))
    scans = sorted(date.glob("*/velodyne_points/data/*.bin"))
    assert scans
    for path in scans:
        points = load_velodyne_points(str(path))
        assert len(points) > 3 * PROJECTION_BLOCK
        assert project_to_depth(points, proj, SHAPE).tobytes() == one_product_projection(points, proj, SHAPE).tobytes()


def test_resampled_scans_have_the_requested_size():
    base = scan(1000, seed=1)
    rng = np.random.default_rng(0)
    small, large = resample(base, 300, rng), resample(base, 2500, rng)
    assert small.shape == (300, 4) and large.shape == (2500, 4)
    assert len(np.unique(small, axis=0)) == 300  # drawn without replacement
    assert len(np.unique(large[:, :3], axis=0)) == 2500 and np.all(large[:, 3] == 1)


# --- inference modes ------------------------------------------------------------------------------

def test_auto_is_the_documented_mode_and_cuda_only_modes_are_refused():
    """docs/release.md D12: auto is channels_last on the CPU and eager on CUDA."""
    cpu = torch.device("cpu")
    assert resolve_inference_mode("auto", cpu).name == "channels_last"
    assert resolve_inference_mode("auto", torch.device("cuda")).name == "eager"
    for name in ("tf32", "bf16", "fp16"):
        assert not MODES[name].exact
        with pytest.raises(UserError, match=f"--inference_mode {name} needs a CUDA device"):
            resolve_inference_mode(name, cpu)


def test_channels_last_is_exact():
    """channels_last against the bare network called directly: outputs within float32 rounding, and
    the release's metrics (tests/reference.py) equal to 1e-6."""
    torch.manual_seed(0)
    model = S2RDepthNet().eval()
    with torch.no_grad():
        model.depth_net.output1.model[1].weight.mul_(20)  # predictions that vary with the image
    images = torch.rand(2, 3, 96, 96) * 2 - 1
    rng = np.random.default_rng(0)
    gts = [rng.uniform(1, 79, (60, 200)) * (rng.random((60, 200)) < 0.3) for _ in range(2)]
    net = prepare_model(S2RDepthNet().eval(), MODES["channels_last"], torch.device("cpu"))
    net.load_state_dict(model.state_dict())
    with torch.no_grad():
        want = model(images).depth[-1]
        got = net(images).depth[-1]
    assert torch.allclose(got, want, rtol=0, atol=1e-5)
    metrics = [[reference.evaluate_one(reference.to_metres(p[None], g.shape, 80.0), g, 80.0)
                for p, g in zip(pred, gts)] for pred in (want, got)]
    assert metrics[0][0]["abs_rel"] != metrics[0][1]["abs_rel"]
    for eager, cl in zip(*metrics):
        for key in eager:
            assert cl[key] == pytest.approx(eager[key], rel=1e-6, abs=1e-6), key


def test_autocast_wrapper_runs_in_the_given_dtype():
    net = prepare_model(torch.nn.Conv2d(3, 4, 3), MODES["bf16"], torch.device("cpu"))
    assert isinstance(net, Autocast)
    assert net(torch.rand(1, 3, 8, 8)).dtype == torch.bfloat16


def test_test_py_inference_modes(test_script, tmp_path, random_checkpoints, capsys):
    list_file = write_kitti(tmp_path / "kitti", [("2011_09_26", 0), ("2011_09_30", 1)])
    args = ["--root", str(tmp_path / "kitti"), "--test_datafile", str(list_file), "--loadSize", "96", "96",
            "--nThreads", "0", "--device", "cpu"]
    args += checkpoint_args(random_checkpoints)
    model = reference.load_model(random_checkpoints)
    per_image = []
    for line in list_file.read_text().splitlines():
        left, _, calib, velo = (tmp_path / "kitti" / f for f in line.split())
        gt = reference.kitti_gt(calib, velo, Image.open(left).size[::-1])
        pred = reference.predict_metres(model, reference.network_input(left, (96, 96)), gt.shape, 80.0)
        per_image.append(reference.evaluate_one(pred, gt, 80.0))
    expected = reference.mean_over_images(per_image)
    for mode, recorded in (("auto", "channels_last"), ("eager", "eager")):
        assert test_script.main(args + ["--inference_mode", mode, "--out_dir", str(tmp_path / mode)]) == 0
        saved = json.loads((tmp_path / mode / "metrics.json").read_text())
        assert saved["inference_mode"] == recorded
        for key, value in expected.items():
            assert saved["metrics"][key] == pytest.approx(value, rel=1e-6, abs=1e-6), (mode, key)
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info, exit_on_user_error():
        test_script.main(args + ["--inference_mode", "tf32"])
    assert exit_info.value.code == 2
    assert "error: --inference_mode tf32 needs a CUDA device" in capsys.readouterr().err


# --- the benchmark's parts ------------------------------------------------------------------------

def test_table_and_number_formatting():
    table = common.Table("T", ["a", "b"])
    table.add(1, common.fmt(1234.5))
    table.add("x", common.fmt(0.00012345))
    assert table.markdown() == "#### T\n\n| a | b |\n|---|---|\n| 1 | 1234 |\n| x | 1.23e-04 |"
    assert [common.fmt(v) for v in (0, 0.5, 12.345, 99.96)] == ["0", "0.5", "12.3", "100"]
    assert common.not_measured("why", 3) == ["why", "—", "—"]


def test_time_calls_stops_at_the_budget():
    calls = []
    times = common.time_calls(calls.append, torch.device("cpu"), warmup=2, repeats=5, budget_s=0.0)
    assert calls == [0, 1, 2] and len(times) == 1
    calls.clear()
    assert len(common.time_calls(calls.append, torch.device("cpu"), warmup=0, repeats=3)) == 3 and calls == [0, 1, 2]


def test_memory_readings():
    rss, peak = common.proc_status_kib("VmRSS"), common.proc_status_kib("VmHWM")
    if rss is None:
        pytest.skip("no /proc/self/status on this system")
    assert 0 < rss <= peak
    assert common.proc_status_kib("NoSuchField") is None


def test_loader_throughput_excludes_the_first_batch(monkeypatch):
    """On a fake clock: a first batch of 4 taking 100 s, then three of 2 taking 1 s each."""
    now = [0.0]
    monkeypatch.setattr(loader.time, "perf_counter", lambda: now[0])

    def batches():
        for seconds, size in ((100.0, 4), (1.0, 2), (1.0, 2), (1.0, 2)):
            now[0] += seconds
            yield {"image": torch.zeros(size, 3, 2, 2)}

    assert loader.throughput(batches()) == (2.0, 100.0)


def test_metric_diff_is_relative_above_one():
    a = [{"abs_rel": 0.5, "rmse": 10.0}, {"abs_rel": 0.2, "rmse": 2.0}]
    b = [{"abs_rel": 0.5, "rmse": 10.5}, {"abs_rel": 0.25, "rmse": 2.0}]
    assert inference.metric_diff(a, b) == pytest.approx(0.05)       # 0.05 absolute, and 0.5 / 10.5
    assert inference.metric_diff(a[:1], b[:1]) == pytest.approx(0.5 / 10.5)


def test_exact_verdict_follows_the_metric_difference(bench_data, monkeypatch):
    """Each mode is judged against the eager run of its group: an exact mode off by more than 1e-6 is
    not exact, an inexact one within it is exact only by accident ('no (by design)')."""
    offsets = {"eager": 0.0, "channels_last": 5e-7, "compile": 3e-6, "bf16": 0.0}
    calls = []

    def fake_run(base, mode_name, batch, frames, device, plan):
        calls.append(mode_name)
        metrics = [{"abs_rel": 0.3 + offsets[mode_name], "rmse": 5.0}]
        return inference.ModeResult([0.5], 1.0, [torch.zeros(1, 1, 4, 4)], metrics)

    monkeypatch.setattr(inference, "run_mode", fake_run)
    monkeypatch.setattr(torch._inductor.config, "force_disable_caches", torch._inductor.config.force_disable_caches)
    plan = replace(SMOKE, inference=tuple((m, 1, (96, 96)) for m in offsets), onnxruntime=())
    table = common.Table("T", inference.COLUMNS)
    exact, _ = inference.measure(torch.device("cpu"), plan, bench_data, table)
    assert calls == list(offsets)
    assert {row[0]: row[-1] for row in table.rows} == {"eager": "yes", "channels_last": "yes", "compile": "no",
                                                      "bf16": "no (by design)"}
    assert sorted(exact) == [("channels_last", 1), ("eager", 1)]


@pytest.fixture(scope="module")
def bench_data(tmp_path_factory):
    return prepare(tmp_path_factory.mktemp("bench"), SMOKE_WORLD)


def test_train_worker_times_a_step(bench_data, tmp_path):
    out = tmp_path / "result.json"
    flags = training.train_flags(bench_data, "TrainStructDecoder", 2, (96, 96), "cpu")
    run = subprocess.run([sys.executable, "-m", "benchmarks.train_worker", "--out", str(out), "--warmup", "0",
                          "--steps", "2", "--", *flags], cwd=ROOT, env=training._env(), capture_output=True,
                         text=True)
    assert run.returncode == 0, run.stderr
    result = json.loads(out.read_text())
    assert len(result["step_s"]) == 2 and min(result["step_s"]) > 0
    assert result["batch"] == 2 and result["world_size"] == 1
    assert 0 < result["rss_before_kib"] <= result["peak_rss_kib"]


def test_smoke_run_writes_the_report(tmp_path):
    out = tmp_path / "performance.md"
    run = subprocess.run([sys.executable, "benchmarks/run.py", "--smoke", "--sections", "inference", "eval",
                          "evalsets", "loader", "--out", str(out)], cwd=ROOT, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    text = out.read_text()
    assert run.stdout.strip() == text.strip()
    for heading in ("## Machine", "## Summary", "## Inference", "## Evaluation loop", "## Evaluation sets",
                    "## Data loading", "## Choices and fixes"):
        assert heading in text
    assert "## Training" not in text
    for key in ("| CPU |", "| cores |", "| RAM |", "| torch |", "| CUDA device |", "| date |"):
        assert key in text
    if not torch.cuda.is_available():
        assert common.NO_GPU in text and "| CUDA device | none |" in text
    rows = [line.split(" | ") for line in text.splitlines() if line.startswith("| eager | 1 | 96×96")]
    assert float(rows[0][3]) > 0  # images/s measured on the CPU
    assert "GT projection of a 120k-point scan < 30 ms" in text
    for name in eval_sets.SETS:   # each set read in its layout, from its files and from a cache
        row = next(line for line in text.splitlines() if line.startswith(f"| {name.name} | tiny (smoke) | 96×96 |"))
        assert all(float(cell) > 0 for cell in row.strip(" |").split(" | ")[3:6])
