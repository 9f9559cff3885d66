"""Metrics and the release's evaluation protocol (docs/release.md §4) on arrays worked out by hand."""
import json
import math

import numpy as np
import pytest
import torch

from datasets import DatasetError
from models import S2ROutput
from evaluation.loop import evaluate
from evaluation.metrics import compute_errors, mean_metrics
from evaluation.protocol import Protocol, crop_mask, default_protocol, evaluate_depth
from evaluation.results import summary, write_results


def test_each_metric_by_hand():
    # ratios max(gt/pred, pred/gt) = 1, 1.4, 1.9, 2.5: one under each threshold 1.25, 1.25², 1.25³, none
    gt = np.array([2.0, 1.4, 1.0, 5.0])
    pred = np.array([2.0, 1.0, 1.9, 2.0])
    m = compute_errors(gt, pred)
    assert m["abs_rel"] == pytest.approx(25 / 56)          # (0 + 0.4/1.4 + 0.9/1 + 3/5) / 4
    assert m["sq_rel"] == pytest.approx(9535 / 14000)      # (0 + 0.16/1.4 + 0.81 + 9/5) / 4
    assert m["rmse"] == pytest.approx(math.sqrt(9.97 / 4))  # sqrt((0 + 0.16 + 0.81 + 9) / 4)
    assert m["rmse_log"] == pytest.approx(math.sqrt((math.log(1.4) ** 2 + math.log(1.9) ** 2
                                                     + math.log(2.5) ** 2) / 4))
    assert (m["a1"], m["a2"], m["a3"]) == (0.25, 0.5, 0.75)
    assert m["log10"] == pytest.approx((math.log10(1.4) + math.log10(1.9) + math.log10(2.5)) / 4)


def test_thresholds_are_strict():
    gt = np.array([1.0, 1.0, 1.0])
    pred = np.array([1.25, 1.25 ** 2, 1.25 ** 3])
    m = compute_errors(gt, pred)
    assert (m["a1"], m["a2"], m["a3"]) == (0.0, 1 / 3, 2 / 3)


NO_CROP = dict(crop="none", max_depth=80.0)


@pytest.mark.parametrize("median, clip_after, abs_rel", [
    (True, False, 5.0),       # clip [100,20,20] -> [80,20,20], x2 -> [160,40,40]: (150/10 + 0 + 0) / 3
    (True, True, 7 / 3),      # x2 -> [200,40,40], clip -> [80,40,40]: (70/10 + 0 + 0) / 3
    (False, False, 8 / 3),    # [80,20,20]: (70/10 + 20/40 + 20/40) / 3
    (False, True, 8 / 3),
])
def test_clip_order_and_median_scaling(median, clip_after, abs_rel):
    gt = np.array([[10.0, 40.0, 40.0]])
    pred = np.array([[100.0, 20.0, 20.0]])  # median(gt) / median(pred) = 2
    m = evaluate_depth(pred, gt, Protocol(alignment="median" if median else "none", clip_after_scaling=clip_after, **NO_CROP))
    assert m["abs_rel"] == pytest.approx(abs_rel)


def test_prediction_is_clipped_at_min_depth_before_scaling():
    gt = np.array([[1.0, 2.0, 3.0]])
    pred = np.array([[-5.0, 0.0, 1.0]])   # -> [1e-3, 1e-3, 1]
    m = evaluate_depth(pred, gt, Protocol(alignment="none", **NO_CROP))
    assert m["abs_rel"] == pytest.approx(((1 - 1e-3) / 1 + (2 - 1e-3) / 2 + 2 / 3) / 3)


def test_valid_mask_bounds_are_exclusive():
    gt = np.array([[0.0, 1e-3, 80.0, 50.0, 79.99]])
    pred = np.array([[5.0, 5.0, 1.0, 25.0, 79.99 / 2]])  # the masked pixels would change every metric
    m = evaluate_depth(pred, gt, Protocol(alignment="none", **NO_CROP))
    assert m["abs_rel"] == pytest.approx(0.5) and m["a3"] == 0.0
    assert m["rmse"] == pytest.approx(math.sqrt((25 ** 2 + (79.99 / 2) ** 2) / 2))
    assert evaluate_depth(pred, gt, Protocol(alignment="none", crop="none", max_depth=50.0)) is None


def test_garg_and_eigen_crops_at_the_exact_rows_and_cols():
    # 0.40810811*375 = 153.04, 0.99189189*375 = 371.96, 0.03594771*1242 = 44.65, 0.96405229*1242 = 1197.35
    garg = crop_mask((375, 1242), "garg")
    rows, cols = np.nonzero(garg.any(1))[0], np.nonzero(garg.any(0))[0]
    assert (rows[0], rows[-1] + 1, cols[0], cols[-1] + 1) == (153, 371, 44, 1197)
    assert garg.sum() == (371 - 153) * (1197 - 44)
    # 0.3324324*375 = 124.66, 0.91351351*375 = 342.57
    eigen = crop_mask((375, 1242), "eigen")
    rows, cols = np.nonzero(eigen.any(1))[0], np.nonzero(eigen.any(0))[0]
    assert (rows[0], rows[-1] + 1, cols[0], cols[-1] + 1) == (124, 342, 44, 1197)
    assert eigen.sum() == (342 - 124) * (1197 - 44)
    assert crop_mask((4, 5), "none").all()


def test_crop_selects_the_evaluated_pixels():
    gt = np.zeros((375, 1242))
    pred = np.full((375, 1242), 10.0)
    gt[152, 600] = 5.0    # one row above the Garg crop: ignored
    with_outside_only = Protocol(alignment="none")
    assert evaluate_depth(pred, gt, with_outside_only) is None
    gt[153, 600] = 20.0   # first row inside
    m = evaluate_depth(pred, gt, with_outside_only)
    assert m["abs_rel"] == pytest.approx(0.5)
    assert evaluate_depth(pred, gt, Protocol(alignment="none", crop="eigen"))["abs_rel"] == \
        pytest.approx((1.0 + 0.5) / 2)


def test_median_scaling_on_and_off():
    rng = np.random.default_rng(0)
    gt = rng.uniform(1, 20, (3, 4))
    m = evaluate_depth(3 * gt, gt, Protocol(**NO_CROP))
    assert m["abs_rel"] == pytest.approx(0, abs=1e-12) and m["a1"] == 1.0
    m = evaluate_depth(3 * gt, gt, Protocol(alignment="none", **NO_CROP))
    assert m["abs_rel"] == pytest.approx(2.0) and m["a3"] == 0.0


def test_release_defaults():
    kitti, nyu = default_protocol("KITTI"), default_protocol("NYUD_V2")
    assert (kitti.min_depth, kitti.max_depth, kitti.crop, kitti.alignment, kitti.clip_after_scaling) \
        == (1e-3, 80.0, "garg", "median", False)
    assert (nyu.min_depth, nyu.max_depth, nyu.crop, nyu.alignment, nyu.clip_after_scaling) \
        == (1e-3, 8.0, "none", "median", False)
    assert default_protocol("KITTI", max_depth=50, crop=None).max_depth == 50
    assert default_protocol("KITTI", crop=None).crop == "garg"


def test_mean_metrics_is_a_mean_over_images():
    a = {k: 1.0 for k in ("abs_rel", "sq_rel", "rmse", "rmse_log", "a1", "a2", "a3", "log10")}
    b = {k: 0.0 for k in a}
    assert mean_metrics([a, b, b, b])["abs_rel"] == 0.25
    with pytest.raises(ValueError):
        mean_metrics([])


class PassThrough(torch.nn.Module):
    """A stand-in network whose prediction is the image's first channel."""

    def forward(self, images):
        pred = images[:, :1]
        return S2ROutput(pred, pred, [pred])


def batch(index, pred_metres, gt):
    p = torch.tensor(pred_metres, dtype=torch.float32) / 80 * 2 - 1
    return {"image": p.expand(1, 3, *p.shape), "index": torch.tensor([index]), "depth": [np.array(gt)],
            "path": [f"frame{index}.png"]}


def test_evaluate_averages_per_image_and_reports_frames_without_gt(tmp_path):
    loader = [
        batch(0, [[20.0, 20.0], [20.0, 20.0]], [[10.0, 0.0], [0.0, 0.0]]),    # one pixel, abs_rel 1
        batch(1, [[10.0, 10.0], [10.0, 10.0]], [[10.0, 10.0], [10.0, 0.0]]),  # three pixels, abs_rel 0
        batch(2, [[10.0, 10.0], [10.0, 10.0]], [[0.0, 0.0], [0.0, 0.0]]),     # no valid GT
    ]
    protocol = Protocol(crop="none", alignment="none")
    result = evaluate(PassThrough(), loader, protocol, 80.0, torch.device("cpu"), progress=False)
    assert result.n_images == 2 and result.skipped == [2]
    assert result.metrics["abs_rel"] == pytest.approx(0.5)  # not the pooled 0.25
    text = summary(result, protocol)
    assert "2 images" in text and "1 frame(s) had no valid ground truth" in text and "[2]" in text
    write_results(tmp_path, result, protocol)
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved["n_images"] == 2 and saved["skipped_no_valid_gt"] == [2]
    assert saved["metrics"]["abs_rel"] == pytest.approx(0.5)
    # Hand-computed: frame 0 has abs_rel 1, sq_rel 10, rmse 10, rmse_log ln 2 and no pixel within
    # any threshold; frame 1 is exact; three loader iterations, as the release counts them.
    assert (tmp_path / "evalog.txt").read_bytes() == (
        b"Done testing -- epoch limit reachedafter 3 iteration \n\n"
        b"   abs_rel,     sq_rel,       rmse,   rmse_log,         a1,         a2,         a3\n"
        b"    0.5000,     5.0000,     5.0000,     0.3466,     0.5000,     0.5000,     0.5000\n")


def test_evaluate_without_any_valid_frame_is_a_clear_error():
    loader = [batch(0, [[10.0]], [[0.0]]), batch(1, [[10.0]], [[90.0]])]
    with pytest.raises(DatasetError, match="none of the 2 frames has a valid ground-truth pixel"):
        evaluate(PassThrough(), loader, Protocol(crop="none"), 80.0, torch.device("cpu"), progress=False)
