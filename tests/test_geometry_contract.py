"""Geometry edge cases: K layout, validation limits, field-of-view axes, sparse alignment in both spaces.

Expected values are hand computations from the pinhole model (K = [[fx, 0, cx], [0, fy, cy], [0, 0, 1]],
row-major as in sensor_msgs/CameraInfo) and from the stated formulas.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from iris_model import InputError
from iris_model.geometry import Intrinsics, affine_to_metric, align_to_sparse, depth_to_points, fit_scale_shift


def test_k_is_read_and_written_row_major():
    k = [500.0, 0.0, 320.5, 0.0, 480.0, 240.25, 0.0, 0.0, 1.0]
    intr = Intrinsics.from_k(k, 641, 481)
    assert (intr.fx, intr.fy, intr.cx, intr.cy, intr.width, intr.height) == (500.0, 480.0, 320.5, 240.25, 641, 481)
    assert Intrinsics.from_k(np.array(k).reshape(3, 3), 641, 481) == intr
    assert intr.k().dtype == np.float64
    np.testing.assert_array_equal(intr.k(), np.array(k).reshape(3, 3))
    with pytest.raises(InputError, match=r"^K must have 9 entries, got 8$"):
        Intrinsics.from_k(k[:8], 641, 481)


@pytest.mark.parametrize(
    ("fx", "fy", "width", "height", "words"),
    [
        (0.0, 1.0, 4, 4, "focal lengths must be > 0, got fx=0.0 fy=1.0"),
        (1.0, 0.0, 4, 4, "focal lengths must be > 0, got fx=1.0 fy=0.0"),
        (-1.0, 1.0, 4, 4, "focal lengths must be > 0"),
        (1.0, 1.0, 0, 4, "image size must be positive, got 0 x 4"),
        (1.0, 1.0, 4, 0, "image size must be positive, got 4 x 0"),
    ],
)
def test_intrinsics_limits(fx, fy, width, height, words):
    with pytest.raises(InputError, match=words):
        Intrinsics(fx, fy, 0.0, 0.0, width, height)


def test_smallest_valid_intrinsics():
    one = Intrinsics(1e-6, 1e-6, 0.0, 0.0, 1, 1)
    assert depth_to_points(np.ones((1, 1), np.float32), one).tolist() == [[[0.0, 0.0, 1.0]]]


def test_field_of_view_on_either_axis():
    h = Intrinsics.from_fov(640, 480, 60.0)
    assert h.fx == h.fy == pytest.approx(320.0 / math.tan(math.radians(30.0)))
    assert (h.cx, h.cy) == (319.5, 239.5)
    v = Intrinsics.from_fov(640, 480, 90.0, axis="vertical")
    assert v.fx == v.fy == pytest.approx(240.0)
    assert (v.cx, v.cy) == (319.5, 239.5)
    assert Intrinsics.from_fov(10, 10, 0.5).fx == pytest.approx(5.0 / math.tan(math.radians(0.25)))
    assert Intrinsics.from_fov(10, 10, 179.5).fx > 0
    for bad in (0.0, 180.0, -10.0):
        with pytest.raises(InputError, match=r"field of view must be in \(0, 180\) degrees"):
            Intrinsics.from_fov(10, 10, bad)


def test_affine_to_metric_limits_and_dtype():
    out = affine_to_metric(np.array([0.0, 1.0]), 0.5, -0.25)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, [-0.25, 0.25])
    for scale, shift in ((0.0, 0.0), (-1.0, 0.0), (math.inf, 0.0), (1.0, math.inf), (1.0, math.nan)):
        with pytest.raises(InputError, match="scale must be finite and > 0 and shift finite"):
            affine_to_metric(np.zeros(2), scale, shift)


def test_points_at_max_range_are_kept_and_outputs_are_float32():
    depth = np.array([[2.0, 3.0, 3.5]])  # float64 input
    intr = Intrinsics(1.0, 1.0, 1.0, 0.0, 3, 1)
    pts = depth_to_points(depth, intr, max_range=3.0)
    assert pts.dtype == np.float32
    np.testing.assert_array_equal(pts[0, :2], [[-2.0, 0.0, 2.0], [0.0, 0.0, 3.0]])
    assert np.isnan(pts[0, 2]).all()


def test_depth_to_points_errors_say_what_is_wrong():
    intr = Intrinsics(1.0, 1.0, 0.0, 0.0, 20, 10)
    with pytest.raises(InputError, match=r"depth must be 2-D, got shape \(10,\)"):
        depth_to_points(np.ones(10), intr)
    with pytest.raises(InputError, match="depth is 30 x 10 but intrinsics are for 20 x 10"):
        depth_to_points(np.ones((10, 30)), intr)
    for stride in (0, 1.5, -1):
        with pytest.raises(InputError, match="stride must be an int >= 1"):
            depth_to_points(np.ones((10, 20)), intr, stride=stride)


def test_fit_ignores_non_positive_and_masked_targets_and_needs_min_samples():
    pred = np.linspace(0.0, 1.0, 40)
    target = 2.0 * pred + 1.0
    target[:5] = 0.0  # no return
    target[5:10] = -3.0  # nonsense
    target[10] = np.nan
    fit = fit_scale_shift(pred, target)
    assert fit.scale == pytest.approx(2.0) and fit.shift == pytest.approx(1.0)
    assert fit.inliers is not None and not fit.inliers[:11].any() and fit.inliers[11:].all()
    # A mask narrows the valid samples; it never adds the invalid ones back.
    mask = np.ones(40, bool)
    mask[25:] = False
    target[30] = 99.0  # masked out
    target[22] = 50.0  # inside the mask: an outlier
    fit = fit_scale_shift(pred, target, mask)
    assert fit.scale == pytest.approx(2.0) and fit.shift == pytest.approx(1.0)
    assert fit.inliers is not None and np.flatnonzero(fit.inliers).tolist() == [*range(11, 22), 23, 24]
    exactly_ten = np.zeros(40, bool)
    exactly_ten[30:40] = True
    assert fit_scale_shift(pred, 2.0 * pred + 1.0, exactly_ten).scale == pytest.approx(2.0)
    with pytest.raises(InputError, match="need at least 10 valid samples to fit scale and shift, got 9"):
        fit_scale_shift(pred, 2.0 * pred + 1.0, exactly_ten & (np.arange(40) != 30))
    with pytest.raises(InputError, match="space must be 'depth' or 'inverse_depth', got 'disparity'"):
        fit_scale_shift(pred, target, space="disparity")


def test_inverse_depth_fit_skips_missing_samples():
    pred = np.linspace(0.1, 1.0, 50)
    target = 1.0 / (3.0 * pred + 0.5)
    target[::7] = 0.0
    fit = fit_scale_shift(pred, target, space="inverse_depth")
    assert fit.scale == pytest.approx(3.0) and fit.shift == pytest.approx(0.5)


def _sparse(metric: np.ndarray, every: int = 9) -> np.ndarray:
    sparse = np.zeros_like(metric)
    sparse.flat[::every] = metric.flat[::every]
    return sparse


def test_align_to_sparse_in_inverse_depth_space():
    # The model predicts affine-invariant inverse depth: metric = 1 / (s * pred + t).
    pred = np.linspace(0.0, 1.0, 300).reshape(15, 20).astype(np.float32)
    metric = 1.0 / (2.0 * pred.astype(np.float64) + 0.25)
    out, fit = align_to_sparse(pred, _sparse(metric), space="inverse_depth")
    assert fit.scale == pytest.approx(2.0, rel=1e-6) and fit.shift == pytest.approx(0.25, rel=1e-5)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, metric, rtol=1e-5)


def test_align_to_sparse_marks_non_positive_depth_invalid_and_keeps_small_depths():
    pred = np.linspace(0.0, 1.0, 200).reshape(10, 20)
    metric = 0.8 * pred - 0.2  # negative where pred < 0.25: no sample there, the aligned depth must be NaN
    sparse = np.where(metric > 0.05, _sparse(metric, 5), 0.0)
    out, fit = align_to_sparse(pred, sparse)
    assert fit.scale == pytest.approx(0.8) and fit.shift == pytest.approx(-0.2)
    assert np.isnan(out[pred < 0.249]).all()
    np.testing.assert_allclose(out[pred > 0.251], metric[pred > 0.251], rtol=1e-5)  # all below 1 m
    inv = 1.0 / np.maximum(0.8 * pred - 0.2, 1e-3)
    out_inv, _ = align_to_sparse(pred, np.where(0.8 * pred - 0.2 > 0.05, _sparse(inv, 5), 0.0),
                                 space="inverse_depth")
    assert np.isnan(out_inv[pred < 0.249]).all()
    np.testing.assert_allclose(out_inv[pred > 0.251], inv[pred > 0.251], rtol=1e-4)


def test_align_to_sparse_honours_the_mask():
    pred = np.linspace(0.0, 1.0, 200).reshape(10, 20)
    metric = 3.0 * pred + 1.0
    sparse = _sparse(metric, 3)
    bad = np.zeros(pred.shape, bool)
    bad[:, :10] = True
    sparse[bad & (sparse > 0)] = 50.0  # a reflection over half the image, masked out
    out, fit = align_to_sparse(pred, sparse, mask=~bad)
    assert fit.scale == pytest.approx(3.0) and fit.shift == pytest.approx(1.0)
    np.testing.assert_allclose(out, metric, rtol=1e-5)


def test_fit_shape_mismatch_is_explained():
    with pytest.raises(InputError, match=r"^pred \(3,\) and target \(4,\) differ in shape$"):
        fit_scale_shift(np.ones(3), np.ones(4))
