"""iris_ros.processing.FrameProcessor, the node's per-frame work, without ROS (tiny random-weight pipeline)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

from iris_model.errors import NonFiniteOutputError
from iris_model.streaming import SPARSE_FIT_SCALE_RELAX, StreamConfig
from iris_model.testing import make_tiny_pipeline
from iris_ros.camera_info import CameraInfoFields, camera_geometry
from iris_ros.cloud_packing import unpack_cloud
from iris_ros.config import NodeConfig
from iris_ros.processing import FrameProcessor, FrameRejected

W, H = 48, 32


@pytest.fixture(scope="module")
def pipe(one_torch_thread) -> Any:
    return make_tiny_pipeline(seed=0)


@pytest.fixture(scope="module")
def rgb() -> np.ndarray:
    rng = np.random.default_rng(0)
    img = np.zeros((H, W, 3), np.uint8)
    img[:, : W // 2] = (200, 40, 40)
    img[:, W // 2 :] = (30, 90, 220)
    img[H // 3 :, :] //= 2
    return (img + rng.integers(0, 20, size=img.shape)).astype(np.uint8)


class Recording:
    """The pipeline, recording what each call receives."""

    def __init__(self, pipe: Any, output: np.ndarray | None = None) -> None:
        self.pipe, self.output, self.calls = pipe, output, []
        self.components = pipe.components

    def __call__(self, image: Any, **kwargs: Any) -> Any:
        self.calls.append(kwargs)
        out = self.pipe(image, **kwargs)
        if self.output is not None:
            out.depth = self.output[None].copy()
        return out


def test_off_mode_is_one_seeded_pipeline_call_with_the_settings(pipe, rgb) -> None:
    rec = Recording(pipe)
    cfg = NodeConfig(num_steps=2, ensemble_size=2, seed=7, processing_resolution=32)
    result = FrameProcessor(rec)(rgb, "a kitchen", 1.0, None, None, cfg)
    call = rec.calls[-1]
    assert call["text"] == "a kitchen"
    assert (call["num_inference_steps"], call["ensemble_size"], call["processing_resolution"]) == (2, 2, 32)
    direct = pipe(
        rgb, text="a kitchen", num_inference_steps=2, ensemble_size=2, processing_resolution=32,
        generator=torch.Generator().manual_seed(7),
    ).depth[0]
    np.testing.assert_array_equal(result.depth, direct)
    assert result.scale is None and result.reset_reason is None
    # No description: the model gets None (its empty-text path), and the depth differs.
    plain = FrameProcessor(rec)(rgb, "", 1.0, None, None, cfg)
    assert rec.calls[-1]["text"] is None
    assert np.abs(plain.depth - result.depth).max() > 1e-4


def test_fixed_scale_maps_to_meters_and_outputs_are_only_computed_when_asked(pipe, rgb) -> None:
    proc = FrameProcessor(pipe)
    rel = proc(rgb, "", 0.0, None, None, NodeConfig()).depth
    cam = camera_geometry(CameraInfoFields(k=[40.0, 0, 23.5, 0, 40.0, 15.5, 0, 0, 1], p=[0.0] * 12), W, H)
    cfg = NodeConfig(depth_mode="fixed_scale", scale=2.0, shift=0.5)
    out = proc(rgb, "", 0.0, cam, None, cfg, colorized=False, points=False)
    np.testing.assert_allclose(out.depth, 2.0 * rel + 0.5, rtol=1e-6)
    assert out.colorized is None and out.cloud is None and "points" not in out.times
    full = proc(rgb, "", 0.0, cam, None, cfg)
    assert full.colorized.shape == (H, W, 3) and full.colorized.dtype == np.uint8
    xyz = unpack_cloud(full.cloud.fields, 16, H, W, full.cloud.data)["xyz"]
    np.testing.assert_allclose(xyz[..., 2], full.depth, rtol=1e-6)
    assert proc(rgb, "", 0.0, None, None, cfg).cloud is None  # no intrinsics: no points


def test_sparse_aligned_at_another_resolution_recovers_the_metric_depth(pipe, rgb) -> None:
    proc = FrameProcessor(pipe)
    rel = proc(rgb, "", 0.0, None, None, NodeConfig()).depth.astype(np.float64)
    truth = 3.0 * rel + 1.0
    # Half-resolution samples: low-res pixel (r, c) has its center at full-res (2r + 0.5, 2c + 0.5), the
    # nearest full-res pixel center is (2r, 2c) (round half to even), so it holds truth[2r, 2c].
    low = np.full((H // 2, W // 2), np.nan, np.float32)
    low[::2, ::2] = truth[::4, ::4]
    low[0, 0] = 50.0  # an outlier (a reflection): the robust fit ignores it
    cfg = NodeConfig(depth_mode="sparse_aligned")
    out = proc(rgb, "", 0.0, None, low, cfg)
    np.testing.assert_allclose(out.depth, truth, rtol=2e-3)
    assert out.scale == pytest.approx(3.0, rel=2e-3) and out.shift == pytest.approx(1.0, abs=5e-3)


def test_sparse_aligned_without_samples_is_rejected_and_the_source_is_read_after_the_model(pipe, rgb) -> None:
    rec = Recording(pipe)
    order = []

    def source() -> None:
        order.append(len(rec.calls))  # how many model calls had happened when the sparse depth was asked for
        return None

    cfg = NodeConfig(depth_mode="sparse_aligned")
    with pytest.raises(FrameRejected) as info:
        FrameProcessor(rec)(rgb, "", 0.0, None, source, cfg)
    assert info.value.reason == "no_sparse_depth" and order == [1]
    too_few = np.full((H, W), np.nan, np.float32)
    too_few[0, :3] = 2.0
    with pytest.raises(FrameRejected) as info:
        FrameProcessor(rec)(rgb, "", 0.0, None, too_few, cfg)
    assert info.value.reason == "sparse_fit_failed"


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_a_non_finite_model_output_is_never_turned_into_depth(pipe, rgb, bad) -> None:
    output = np.full((H, W), 0.5, np.float32)
    output[3, 4] = bad
    with pytest.raises(NonFiniteOutputError, match="1 non-finite values"):
        FrameProcessor(Recording(pipe, output))(rgb, "", 0.0, None, None, NodeConfig())


# ------------------------------------------------------------------ temporal_mode: stream
def test_stream_mode_resets_on_first_frame_description_and_seed_and_reports_its_state(pipe, rgb) -> None:
    proc = FrameProcessor(pipe)
    cfg = NodeConfig(temporal_mode="stream", num_steps=2)
    assert proc(rgb, "a kitchen", 10.0, None, None, cfg).reset_reason == "first"
    assert proc(rgb, "a kitchen", 10.1, None, None, cfg).reset_reason is None
    assert proc(rgb, "an office", 10.2, None, None, cfg).reset_reason == "description"
    assert proc(rgb, "an office", 15.0, None, None, cfg).reset_reason == "gap"
    assert proc.stats()["stream_resets_description"] == "1" and proc.stats()["stream_resets_gap"] == "1"
    reseeded = NodeConfig(temporal_mode="stream", num_steps=2, seed=3)
    assert proc(rgb, "an office", 15.1, None, None, reseeded).reset_reason == "parameters"  # a new stream
    stats = proc.stats()
    assert stats["stream_frames_since_reset"] == "1" and stats["stream_resets_parameters"] == "1"
    assert "stream_scale" in stats and "stream_warm_start" in stats
    # off drops the state; stream again starts afresh
    assert proc(rgb, "an office", 15.2, None, None, NodeConfig(num_steps=2)).reset_reason is None
    assert proc.stats() == {}
    assert proc(rgb, "an office", 15.3, None, None, cfg).reset_reason == "first"


def test_stream_mode_filters_sparse_fits_and_rejects_an_outlier_fit(pipe, rgb) -> None:
    proc = FrameProcessor(pipe)
    cfg = NodeConfig(temporal_mode="stream", num_steps=2, depth_mode="sparse_aligned")
    rel = proc(rgb, "", 20.0, None, None, NodeConfig(temporal_mode="stream", num_steps=2)).depth.astype(np.float64)

    def sparse(scale: float, shift: float) -> np.ndarray:
        out = np.full((H, W), np.nan, np.float32)
        out[::3, ::3] = (scale * rel + shift)[::3, ::3]
        return out

    # Relative depth continues on the stream's scale (same image, same description: no reset), so a sparse
    # scan of 3 * rel + 1 fits scale 3; a misregistered scan claiming 9 * rel + 1 is an outlier fit.
    first = proc(rgb, "", 20.1, None, sparse(3.0, 1.0), cfg)
    assert first.reset_reason is None and first.scale == pytest.approx(3.0, rel=0.05)
    # under sparse fits the stream keeps its relative scale steadier than in relative mode
    assert proc.stream.config.scale_relax == SPARSE_FIT_SCALE_RELAX < StreamConfig().scale_relax
    outlier = proc(rgb, "", 20.2, None, sparse(9.0, 1.0), cfg)
    assert outlier.scale == pytest.approx(first.scale) and outlier.shift == pytest.approx(first.shift)
    assert proc.stats()["stream_sparse_fits_rejected"] == "1"
    # off: every frame's own fit, outliers and all
    assert proc(rgb, "", 20.3, None, sparse(9.0, 1.0), NodeConfig(depth_mode="sparse_aligned")).scale > 6.0


def test_stream_mode_smooths_the_colorized_range_and_off_uses_each_frame_s_own(pipe, rgb) -> None:
    from iris_model.colorize import colorize_depth

    def own_range(depth: np.ndarray) -> tuple[float, float]:  # 2nd..98th percentile of every 4th row/column
        lo, hi = np.percentile(depth[::4, ::4], [2.0, 98.0])
        return float(lo), float(hi)

    proc = FrameProcessor(pipe)
    off = proc(rgb, "", 30.0, None, None, NodeConfig(num_steps=2))
    np.testing.assert_array_equal(off.colorized, colorize_depth(off.depth, *own_range(off.depth)))
    cfg = NodeConfig(temporal_mode="stream", num_steps=2)
    first = proc(rgb, "", 30.1, None, None, cfg)  # a reset: the frame's own range
    np.testing.assert_array_equal(first.colorized, colorize_depth(first.depth, *own_range(first.depth)))
    darker = (rgb // 3).astype(np.uint8)  # another image, same stream: its own range differs
    second = proc(darker, "", 30.2, None, None, cfg)
    assert second.reset_reason is None
    (lo1, hi1), (lo2, hi2) = own_range(first.depth), own_range(second.depth)
    assert abs(lo2 - lo1) + abs(hi2 - hi1) > 1e-3  # else the test could not tell smoothed from own
    expected = (lo1 + 0.1 * (lo2 - lo1), hi1 + 0.1 * (hi2 - hi1))
    np.testing.assert_array_equal(second.colorized, colorize_depth(second.depth, *expected))
