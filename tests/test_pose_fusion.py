"""PoseFusion: metric depth fused along the camera's known motion (odometry)."""

from __future__ import annotations

import numpy as np
import pytest

from iris_model.errors import InputError
from iris_model.metrics import reproject_depth
from iris_model.pose_fusion import PoseFusion, PoseFusionConfig

H, W = 48, 64
K = np.array([[50.0, 0.0, 31.7], [0.0, 50.0, 24.2], [0.0, 0.0, 1.0]])


def _pose(tz: float = 0.0, yaw: float = 0.0, tx: float = 0.0) -> np.ndarray:
    """Camera-to-world of an optical-frame camera moved tz forward, tx right and turned by yaw (rad)."""
    c, s = np.cos(yaw), np.sin(yaw)
    p = np.eye(4)
    p[:3, :3] = [[c, 0, s], [0, 1, 0], [-s, 0, c]]
    p[:3, 3] = [tx, 0.0, tz]
    return p


def test_warp_is_the_tae_reprojection():
    yy, xx = np.mgrid[0:H, 0:W]
    depth = (3.0 + 0.02 * xx + 0.01 * yy).astype(np.float32)  # a tilted plane
    rel = np.linalg.inv(_pose(0.1, 0.03, 0.02)) @ _pose()
    ours = PoseFusion()._warp(depth, K, rel)
    reference = reproject_depth(depth, K, rel)
    hit = reference > 0  # where the reference splat lands; PoseFusion also fills the one-pixel holes between
    assert np.isclose(ours[hit], reference[hit], rtol=1e-5, atol=1e-6).mean() > 0.999
    assert (ours > 0).mean() > (reference > 0).mean()


def test_walking_toward_a_wall_the_fused_depth_follows_the_motion_without_lag():
    """A wall 5 m ahead, the camera moves 0.5 m toward it: the previous output warped by the pose is 4.5 m,
    so fusing keeps the new depth's mean where a pose-blind blend (0.8 of 5 m) would pull it to 4.9 m."""
    rng = np.random.default_rng(0)
    fusion = PoseFusion()
    fusion(np.full((H, W), 5.0, np.float32), K, _pose(0.0), 0.0)
    noisy = (4.5 + 0.05 * rng.standard_normal((H, W))).astype(np.float32)
    out = fusion(noisy, K, _pose(0.5), 0.1)
    assert fusion.fused_fraction > 0.9
    assert abs(float(out.mean()) - 4.5) < 0.01
    assert out.std() < 0.3 * noisy.std()  # 1 - weight (0.1) of the new frame's noise is left


def test_a_static_camera_averages_frame_noise_at_the_set_weight():
    rng = np.random.default_rng(1)
    fusion = PoseFusion(PoseFusionConfig(weight=0.8))
    frames = [(3.0 + 0.05 * rng.standard_normal((H, W))).astype(np.float32) for _ in range(40)]
    outs = [fusion(d, K, _pose(), 0.1 * i) for i, d in enumerate(frames)]
    # An exponential filter with weight w leaves sqrt((1 - w) / (1 + w)) = 1/3 of the noise's std.
    assert np.std(outs[-1]) == pytest.approx(np.std(frames[-1]) / 3, rel=0.25)


def _trail(speed_m_s: float, start_m: float, config: PoseFusionConfig) -> list[float]:
    """A static camera, a wall moving along its axis at ``speed_m_s`` seen at 15 Hz for 4 s: per frame, how far
    the fused depth is behind the frame's own, relative to it."""
    fusion = PoseFusion(config)
    trail = []
    for i in range(60):
        depth = np.full((H, W), start_m + speed_m_s * i / 15, np.float32)
        out = fusion(depth, K, _pose(), i / 15)
        trail.append(float(np.max(np.abs(out - depth) / depth)))
    return trail


def test_an_approaching_object_trails_by_at_most_the_nearer_tolerance():
    """The exponential filter alone trails a wall coming at 1 m/s by weight / (1 - weight) = 9 frames of its
    motion (0.6 m, 12-56 % of its depth as it comes from 5 m to 1.07 m); the fused depth never shows it more
    than nearer_tolerance (20 %) behind. A wall moving away (2 m/s) may trail further, up to tolerance (50 %)."""
    config = PoseFusionConfig()
    coming = _trail(-1.0, 5.0, config)
    assert 0.5 * config.nearer_tolerance < max(coming) < config.nearer_tolerance
    going = _trail(2.0, 1.0, config)
    assert config.nearer_tolerance < max(going) < config.tolerance


def test_new_objects_keep_the_new_depth_and_resets_pass_frames_through():
    fusion = PoseFusion()
    wall = np.full((H, W), 5.0, np.float32)
    fusion(wall, K, _pose(), 0.0)
    with_box = wall.copy()
    with_box[10:30, 10:30] = 1.0  # something 4 m nearer appeared: no agreement, not fused
    out = fusion(with_box, K, _pose(), 0.1)
    assert np.array_equal(out[10:30, 10:30], with_box[10:30, 10:30])
    other = np.full((H, W), 2.0, np.float32)
    for stamp, k in ((2.0, K), (1.9, K), (2.0, K * [[1.1], [1.1], [1.0]])):  # a gap, backwards, new K
        assert np.array_equal(fusion(other, k, _pose(), stamp), other)
    fusion.reset()
    assert np.array_equal(fusion(wall, K, _pose(), 2.1), wall)


def test_bad_input_and_settings_are_refused():
    with pytest.raises(InputError):
        PoseFusionConfig(weight=1.0)
    with pytest.raises(InputError):
        PoseFusionConfig(tolerance=0.0)
    fusion = PoseFusion()
    with pytest.raises(InputError):
        fusion(np.ones((H, W)), K, np.eye(3), 0.0)
    with pytest.raises(InputError):
        fusion(np.ones((H, W)), K, np.full((4, 4), np.nan), 0.0)


def test_hole_filling_is_scipy_s_3x3_minimum_filter_at_the_holes():
    from scipy.ndimage import minimum_filter

    from iris_model.pose_fusion import _min_around

    rng = np.random.default_rng(3)
    image = rng.uniform(1.0, 5.0, (H, W)).astype(np.float32)
    image[rng.random((H, W)) < 0.3] = np.inf
    image[:5] = np.inf  # a band with nothing around some holes: they stay inf
    holes = np.flatnonzero(np.isinf(image))
    expected = minimum_filter(image, size=3, mode="constant", cval=np.inf).ravel()[holes]
    np.testing.assert_array_equal(_min_around(image, holes), expected)
