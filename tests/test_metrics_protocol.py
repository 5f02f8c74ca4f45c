"""Metrics at the edges of the Marigold protocol: range limits, thresholds, precision, minimum pixel counts.

Expected values are hand computations from the protocol (Marigold's evaluation code uses strict ``<`` for the
delta thresholds and ``(gt > min_depth) & (gt < max_depth)`` for validity).
"""

from __future__ import annotations

import numpy as np
import pytest

from iris_model import InputError
from iris_model.metrics import align_scale_shift, compute_metrics, mean_metrics, valid_mask


def test_depth_range_limits_are_exclusive():
    gt = np.array([0.5, 1.0, 2.0, 3.0, 10.0, np.nan])
    np.testing.assert_array_equal(valid_mask(gt, None, 1.0, 10.0), [False, False, True, True, False, False])


def test_a_non_boolean_valid_mask_is_read_as_true_false():
    gt = np.array([1.0, 2.0, 3.0, 4.0])
    as_bytes = np.array([0, 255, 1, 0], dtype=np.uint8)  # an 8-bit mask image
    mask = valid_mask(gt, as_bytes, 1e-3, np.inf)
    assert mask.dtype == bool
    np.testing.assert_array_equal(mask, [False, True, True, False])
    pred = np.array([9.0, 2.0, 6.0, 9.0])  # wrong only where the mask is off
    m = compute_metrics(pred, gt, valid=as_bytes, align=False)
    assert m["abs_rel"] == pytest.approx((0 + 1) / 2)  # |2-2|/2, |6-3|/3


def test_delta_thresholds_are_strict():
    # Ratios exactly 1.25, 1.25^2 = 1.5625 and 1.25^3 = 1.953125 (exact in binary floating point).
    gt = np.array([4.0, 16.0, 64.0, 1.0])
    pred = np.array([5.0, 25.0, 125.0, 1.0])
    m = compute_metrics(pred, gt, align=False)
    assert (m["delta1"], m["delta2"], m["delta3"]) == (0.25, 0.5, 0.75)
    # Just below each threshold: counted.
    m = compute_metrics(pred - 1e-9, gt, align=False)
    assert (m["delta1"], m["delta2"], m["delta3"]) == (0.5, 0.75, 1.0)


def test_predictions_below_the_range_are_clipped_up_to_min_depth():
    gt = np.array([1.0, 2.0])
    pred = np.array([-3.0, 2.0])  # -3 clips to min_depth 0.5
    m = compute_metrics(pred, gt, min_depth=0.5, align=False)
    assert m["abs_rel"] == pytest.approx((0.5 / 1.0 + 0.0) / 2)


def test_single_valid_pixel_without_alignment_and_two_with():
    m = compute_metrics(np.array([2.0, 7.0]), np.array([1.0, np.nan]), align=False)
    assert m["abs_rel"] == pytest.approx(1.0)
    with pytest.raises(InputError, match=r"^need at least 2 valid pixels to align scale and shift$"):
        compute_metrics(np.array([2.0, 7.0]), np.array([1.0, np.nan]))
    aligned = align_scale_shift(np.array([0.0, 1.0, 5.0]), np.array([3.0, 5.0, 0.0]), np.array([True, True, False]))
    np.testing.assert_allclose(aligned, [3.0, 5.0, 13.0])  # two pixels fix scale 2 and shift 3
    with pytest.raises(InputError, match=r"^no valid pixels to evaluate$"):
        compute_metrics(np.array([1.0]), np.array([0.0]))


def test_float32_inputs_are_evaluated_in_double_precision():
    pred = np.linspace(0.1, 0.9, 1000, dtype=np.float32)
    gt = 7.0 * pred.astype(np.float64) + 1000.0  # affine in pred: perfect after alignment
    aligned = align_scale_shift(pred, gt, np.ones(pred.shape, bool))
    assert aligned.dtype == np.float64
    assert np.abs(aligned - gt).max() < 1e-9  # float32 arithmetic would be off by about 1e-4
    assert compute_metrics(pred, gt)["abs_rel"] < 1e-12


def test_error_messages_say_what_is_wrong():
    with pytest.raises(InputError, match=r"^prediction \(2,\) and ground truth \(3,\) differ in shape$"):
        compute_metrics(np.ones(2), np.ones(3))
    with pytest.raises(InputError, match=r"^no images to average$"):
        mean_metrics([])
