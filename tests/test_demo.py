"""demo.py (what `make demo` runs) end to end on the tiny sample world with tiny settings."""
import json
import subprocess
import sys

from PIL import Image

import demo
from tests.conftest import ROOT
from constants import RELEASE_METRICS


def test_demo_end_to_end(tmp_path):
    out = tmp_path / "run"
    cmd = [sys.executable, str(ROOT / "demo.py"), "--preset", "tiny", "--world_dir", str(tmp_path / "world"),
           "--out_dir", str(out), "--loadSize", "96", "128", "--train_images", "2", "2", "2",
           "--batchSize", "1", "--epochs", "1", "1", "1", "--nThreads", "0", "--finetune_frames", "2",
           "--finetune_epochs", "1"]
    result = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]

    summary = json.loads((out / "summary.json").read_text())
    assert set(summary) == {"untrained", "trained", "finetuned"}
    for metrics in summary.values():
        assert set(metrics) == set(RELEASE_METRICS)
        assert 0 < metrics["abs_rel"] < 10 and 0 <= metrics["a1"] <= 1
    # each stage left its release-named checkpoints and the evaluations their logs
    assert (out / "stage1_struct_encoder" / "struct_encoder_1.pth").is_file()
    assert (out / "stage2_struct_decoder" / "struct_decoder_1.pth").is_file()
    assert (out / "stage3_dsa_dp" / "dsa_modle_1.pth").is_file()
    assert (out / "finetune_real" / "labelled_list.txt").read_text().count("\n") == 2
    assert (out / "eval_trained" / "evalog.txt").is_file()
    for name in ("untrained", "trained", "finetuned"):
        logged = json.loads((out / f"eval_{name}" / "metrics.json").read_text())["metrics"]
        assert all(logged[k] == summary[name][k] for k in RELEASE_METRICS)
    with Image.open(out / "overview.png") as figure:
        assert figure.size[0] > figure.size[1] > 100
    # the printed before/after table names both runs
    for title in ("untrained:", "trained (synthetic only):", "fine-tuned on 2 labelled frames of other drives:"):
        assert f"\n{title}\n" in result.stdout


def test_world_reuse_and_training_subset(tmp_path):
    world = tmp_path / "world"
    world.mkdir()
    assert not demo.world_is_ready(world, 0, "tiny")
    (world / "world.json").write_text(json.dumps({"seed": 0, "preset": "tiny"}))
    assert demo.world_is_ready(world, 0, "tiny")
    assert not demo.world_is_ready(world, 1, "tiny") and not demo.world_is_ready(world, 0, "default")

    full = tmp_path / "train.txt"
    full.write_text("".join(f"rgb/{i}.png depth/{i}.png\n" for i in range(10)))
    picked = demo.subset_list(full, 4, tmp_path / "subset.txt").read_text().splitlines()
    assert picked == [f"rgb/{i}.png depth/{i}.png" for i in (0, 2, 5, 8)]  # round(i * 10 / 4)
    assert len(demo.subset_list(full, 0, tmp_path / "all.txt").read_text().splitlines()) == 10


def test_help_names_every_knob():
    """The README sends users to `python demo.py --help` for the sizes, counts and paths."""
    text = demo.demo_parser().format_help()
    for flag in ("--world_dir", "--out_dir", "--preset", "--loadSize", "--batchSize", "--train_images",
                 "--ste_loadSize", "--epochs", "--lr", "--lr_policy", "--device", "--finetune_frames",
                 "--finetune_epochs", "--finetune_lr"):
        assert flag in text
    assert "(default: 16 32 64)" in text and "(default: 0)" in text  # a default of 0 is shown too
