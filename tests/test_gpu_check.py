"""benchmarks/gpu_check.py: its --quick run on the CPU end to end (the rows, their statuses and
figures, the JSON written where --out says, docs/ untouched), its comparisons failing on perturbed
figures, the time budget's shares, and the docs/performance.md block a CUDA run rewrites."""
import json
import math
import subprocess
import sys

import pytest
import torch

from benchmarks import checks, gpu_sections
from benchmarks.gpu_sections import RELEASE_EPOCHS, VKITTI_TRAIN_IMAGES, Run
from benchmarks.plan import GPU_CHECK_QUICK

from .conftest import ROOT

DOCS = [ROOT / "docs" / "gpu_check.json", ROOT / "docs" / "performance.md"]


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    """The CPU --quick run, with a budget that a loaded machine does not exhaust (a row skipped for
    time would hide what the test checks)."""
    out = tmp_path_factory.mktemp("gpu_check") / "gpu_check.json"
    before = {path: path.read_bytes() for path in DOCS if path.exists()}
    proc = subprocess.run([sys.executable, "benchmarks/gpu_check.py", "--device", "cpu", "--quick",
                           "--budget_min", "90", "--out", str(out)], cwd=ROOT, capture_output=True, text=True,
                          timeout=5400)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc, json.loads(out.read_text()), before


def rows_of(result: dict, section: str) -> dict:
    return {row["name"]: row for row in result["rows"] if row["section"] == section}


def test_quick_run_header_and_counts(quick_run):
    proc, result, _ = quick_run
    assert result["device"] == "cpu" and result["quick"] is True and result["budget_s"] == 90 * 60
    assert result["counts"]["FAIL"] == 0
    assert sum(result["counts"].values()) == len(result["rows"])
    table = [line for line in proc.stdout.splitlines() if line.startswith("| ") and " | " in line]
    assert len(table) == 1 + len(result["rows"])  # the header and one line per row


def test_quick_run_correctness_rows(quick_run):
    rows = rows_of(quick_run[1], "correctness")
    assert len(rows) == 4 and all(r["status"] == "PASS" for r in rows.values())
    for row in rows.values():  # the CPU against itself: deterministic, so exactly equal
        diff = row["figures"].get("max metric diff", row["figures"].get("max loss diff"))
        assert diff == 0
    kitti = rows["test.py metrics on generated KITTI, CPU (IEEE fp32) vs CPU"]["figures"]
    assert 0 < kitti["abs_rel"] < 10


def test_quick_run_inference_rows(quick_run):
    rows = rows_of(quick_run[1], "inference")
    for batch in (1, 2):
        for mode in ("eager", "channels_last"):
            row = rows[f"{mode}, batch {batch}, 96×96"]
            assert row["status"] == "PASS"
            assert row["figures"]["images/s"] > 0 and row["figures"]["peak RSS (MiB)"] > 0
            assert row["figures"]["metric drift vs eager fp32"] <= 1e-6
        assert rows[f"eager, batch {batch}, 96×96"]["figures"]["metric drift vs eager fp32"] == 0
        for mode in ("tf32", "bf16", "fp16"):
            assert rows[f"{mode}, batch {batch}, 96×96"]["status"] == "SKIP"
            assert "CUDA only" in rows[f"{mode}, batch {batch}, 96×96"]["detail"]
        assert rows[f"compile, batch {batch}, 96×96"]["status"] == "SKIP"
    auto = rows["--inference_mode auto on CPU"]
    assert auto["status"] == "INFO" and auto["figures"]["constants.AUTO_INFERENCE_MODE"] == "channels_last"


def test_quick_run_training_rows(quick_run):
    rows = rows_of(quick_run[1], "training")
    assert len(rows) == 12
    for stage, size in (("TrainStructEncoder", "64×64"), ("TrainStructDecoder", "96×96"),
                        ("TrainDSAandDPModule", "96×96")):
        row = rows[f"{stage}, fp32, batch 1, {size}"]
        assert row["status"] == "PASS", row
        step = row["figures"]["s/step"]
        assert step > 0 and row["figures"]["images/s"] == pytest.approx(1 / step)
        # batch 1: one step per image of the list, 120 epochs
        assert row["figures"]["120-epoch vKITTI schedule (h)"] == pytest.approx(20_760 * 120 * step / 3600)
        for precision in ("tf32", "bf16", "fp16"):
            assert rows[f"{stage}, {precision}, batch 1, {size}"]["status"] == "SKIP"
    assert (RELEASE_EPOCHS, VKITTI_TRAIN_IMAGES) == (120, 20_760)  # 77,880 iterations at batch 32 (release)
    assert math.ceil(VKITTI_TRAIN_IMAGES / 32) * RELEASE_EPOCHS == 77_880


def test_quick_run_amp_input_evaluation_ddp_rows(quick_run):
    result = quick_run[1]
    amp = rows_of(result, "amp")
    fp32 = amp["fp32 loss curve (TrainDSAandDPModule, batch 1, 96×96, 4 steps)"]
    assert fp32["status"] == "PASS" and len(fp32["figures"]["losses"]) == 4
    assert all(math.isfinite(v) for v in fp32["figures"]["losses"])
    assert [r["status"] for n, r in amp.items() if n != fp32["name"]] == ["SKIP", "SKIP"]
    (loader,) = rows_of(result, "input").values()
    assert loader["status"] == "INFO" and loader["figures"]["2 workers (samples/s)"] > 0
    assert loader["figures"]["fastest training step (images/s)"] > 0
    (loop,) = rows_of(result, "evaluation").values()
    assert loop["status"] == "INFO" and "network" in loop["figures"]
    ddp = rows_of(result, "ddp")
    # One process in quick mode: two gloo processes under torchrun are tests/test_train_run.py's.
    train = ddp["train.py under torchrun, 1 process(es), gloo"]
    assert train["status"] == "PASS" and train["figures"]["world size"] == 1
    assert "struct_decoder_1.pth" in train["figures"]["checkpoints"]
    assert ddp["NCCL all-reduce over every GPU"]["status"] == "SKIP"
    assert ddp["scaling over several GPUs"]["status"] == "SKIP"


def test_quick_run_leaves_docs_alone(quick_run):
    for path, content in quick_run[2].items():
        assert path.read_bytes() == content, path


# --- the comparisons fail on broken figures -------------------------------------------------------

def fake_run(tmp_path) -> Run:
    return Run(torch.device("cuda"), GPU_CHECK_QUICK, data=None, work=tmp_path)  # compared with "cpu"


def test_metric_comparison_fails_on_a_perturbed_metric(tmp_path):
    want = {"abs_rel": 0.25, "rmse": 4.0, "a1": 0.7}

    def measure_with(**change):
        return lambda run, dataset, key, device: want if device == "cpu" else {**want, **change}

    statuses = lambda rows: [r.status for r in rows]  # noqa: E731
    assert statuses(gpu_sections.metric_rows(fake_run(tmp_path), measure_with())) == ["PASS", "PASS"]
    assert statuses(gpu_sections.metric_rows(fake_run(tmp_path), measure_with(abs_rel=0.25 + 5e-6))) == ["PASS"] * 2
    broken = gpu_sections.metric_rows(fake_run(tmp_path), measure_with(abs_rel=0.25 + 2e-5))
    assert statuses(broken) == ["FAIL", "FAIL"]
    assert broken[0].figures["max metric diff"] == pytest.approx(2e-5)
    # rmse (metres) is compared relatively: 3e-5 m of 4 m passes, 8e-5 m fails
    assert statuses(gpu_sections.metric_rows(fake_run(tmp_path), measure_with(rmse=4.0 + 3e-5))) == ["PASS"] * 2
    assert statuses(gpu_sections.metric_rows(fake_run(tmp_path), measure_with(rmse=4.0 + 8e-5))) == ["FAIL"] * 2
    assert statuses(gpu_sections.metric_rows(fake_run(tmp_path), measure_with(a1=float("nan")))) == ["FAIL"] * 2


def test_loss_comparison_fails_on_a_perturbed_loss(tmp_path):
    want = {"total": 2.0, "depth": 1.5}

    def measure(shift):
        return lambda run, stage, device: want if device.type == "cpu" else {**want, "depth": 1.5 + shift}

    assert [r.status for r in gpu_sections.loss_rows(fake_run(tmp_path), measure(5e-5))] == ["PASS", "PASS"]
    broken = gpu_sections.loss_rows(fake_run(tmp_path), measure(3e-4))
    assert [r.status for r in broken] == ["FAIL", "FAIL"]
    assert broken[0].figures["max loss diff"] == pytest.approx(2e-4)  # relative: 3e-4 of 1.5


def test_missing_key_counts_as_a_difference():
    assert checks.relative_diff({"a": 1.0}, {"a": 1.0, "b": 2.0}) == math.inf
    assert checks.relative_diff({"a": 0.5}, {"a": 0.5}) == 0


def test_curve_gap_and_finiteness():
    assert checks.curve_gap([5.0, 4.0, 2.2], [5.0, 4.0, 2.0], tail=1) == pytest.approx(0.1)
    assert checks.curve_gap([9.0, 3.0, 1.0], [1.0, 2.0, 2.0], tail=2) == pytest.approx(0.0)
    assert checks.all_finite([1.0, 2.0]) and not checks.all_finite([1.0, float("inf")]) and not checks.all_finite([])


def test_budget_shares_follow_the_weights():
    budget = checks.Budget(100.0, {"a": 1.0, "b": 3.0})
    assert budget.take("a") == pytest.approx(25.0, abs=0.5)
    assert budget.take("b") == pytest.approx(100.0, abs=0.5)  # the unused share passes on
    allowance = checks.Allowance(10.0)
    assert allowance.allows()
    allowance.spent(20.0)  # an item longer than what is left: the next one does not start
    assert not allowance.allows()
    assert "over the time budget" in checks.over_budget("s", "n", allowance).detail


def test_performance_block_is_replaced_in_place():
    text = "# Performance\n\nintro\n"
    assert checks.current_block(text) == checks.block(checks.NOT_RUN)
    first = checks.replace_block(text, checks.block("first run"))
    assert first.startswith(text.rstrip("\n")) and first.count(checks.BLOCK_START) == 1
    second = checks.replace_block(first + "\ntail\n", checks.block("second run"))
    assert "first run" not in second and "second run" in second and second.endswith("\ntail\n")
    assert checks.current_block(second) == checks.block("second run")


def test_committed_performance_doc_has_the_block():
    text = (ROOT / "docs" / "performance.md").read_text(encoding="utf-8")
    assert checks.BLOCK_START in text and checks.BLOCK_END in text
