"""The camera's pose for ``temporal_mode: pose``: pose messages to matrices, the pose history, the processor's
fusion step and its settings (ROS-free), and the TF source (needs tf2_ros)."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from iris_model.errors import InputError
from iris_model.pose_fusion import PoseFusion
from iris_ros.camera_info import CameraGeometry
from iris_ros.camera_pose import PoseHistory, StampedPose, pose_matrix
from iris_ros.config import ConfigError, NodeConfig
from iris_ros.processing import FrameProcessor

S = 0.5**0.5


def test_pose_matrix_reads_ros_quaternions_x_y_z_w():
    # 90 degrees about z, written out by hand: x -> y, y -> -x.
    m = pose_matrix((1.0, 2.0, 3.0), (0.0, 0.0, S, S))
    np.testing.assert_allclose(m[:3, :3], [[0, -1, 0], [1, 0, 0], [0, 0, 1]], atol=1e-12)
    np.testing.assert_allclose(m[:3, 3], [1, 2, 3])
    np.testing.assert_allclose(m[3], [0, 0, 0, 1])
    # REP 103's camera_link -> camera_optical_frame rotation (the one every camera driver publishes, as
    # quaternion -0.5, 0.5, -0.5, 0.5): optical z (forward) is body x, optical x (right) is body -y,
    # optical y (down) is body -z.
    r = pose_matrix((0, 0, 0), (-0.5, 0.5, -0.5, 0.5))[:3, :3]
    np.testing.assert_allclose(r @ [0, 0, 1], [1, 0, 0], atol=1e-12)
    np.testing.assert_allclose(r @ [1, 0, 0], [0, -1, 0], atol=1e-12)
    np.testing.assert_allclose(r @ [0, 1, 0], [0, 0, -1], atol=1e-12)


@pytest.mark.parametrize(
    "position, orientation, match",
    [
        ((0, 0, 0), (0, 0, 0, 0), "not normalized"),
        ((0, 0, 0), (0, 0, 1, 1), "not normalized"),
        ((0, float("nan"), 0), (0, 0, 0, 1), "finite"),
        ((0, 0, 0), (0, 0, float("inf"), 1), "finite"),
    ],
)
def test_pose_matrix_refuses_unusable_poses(position, orientation, match):
    with pytest.raises(InputError, match=match):
        pose_matrix(position, orientation)


def _pose(stamp_ns: int, x: float, yaw_deg: float = 0.0, frame: str = "odom") -> StampedPose:
    half = np.radians(yaw_deg) / 2
    return StampedPose(stamp_ns, frame, pose_matrix((x, 0.0, 0.0), (0.0, 0.0, np.sin(half), np.cos(half))))


def test_pose_history_interpolates_between_neighbours_as_tf2_does():
    history = PoseHistory()
    history.add(_pose(2_000_000_000, 1.0, 40.0))
    history.add(_pose(1_000_000_000, 0.0, 0.0))  # out of order: kept sorted
    # A 1 s bracket is interpolated, however far the stamp is from either pose (a 1 Hz odometry still helps).
    mid = history.at(1_250_000_000, tolerance_s=0.01)
    assert mid is not None and mid.frame_id == "odom" and mid.stamp_ns == 1_250_000_000
    np.testing.assert_allclose(mid.matrix[:3, 3], [0.25, 0, 0])
    np.testing.assert_allclose(mid.matrix[:3, :3], _pose(0, 0.0, 10.0).matrix[:3, :3], atol=1e-12)  # slerp
    exact = history.at(2_000_000_000, tolerance_s=0.0)
    assert exact is not None
    np.testing.assert_allclose(exact.matrix, _pose(0, 1.0, 40.0).matrix, atol=1e-12)


def test_pose_history_takes_the_nearest_within_the_tolerance_outside_a_bracket():
    history = PoseHistory()
    history.add(_pose(1_000_000_000, 0.0))
    history.add(_pose(3_000_000_000, 1.0))  # 2 s apart: too far to interpolate between
    near = history.at(1_040_000_000, tolerance_s=0.05)
    assert near is not None and near.stamp_ns == 1_000_000_000
    assert history.at(2_000_000_000, tolerance_s=0.05) is None
    assert history.at(3_060_000_000, tolerance_s=0.05) is None  # no extrapolation past the tolerance
    assert history.at(3_040_000_000, tolerance_s=0.05).stamp_ns == 3_000_000_000
    history.add(_pose(3_500_000_000, 5.0, frame="map"))  # another fixed frame: never interpolated across
    other = history.at(3_400_000_000, tolerance_s=0.2)
    assert other is not None and other.frame_id == "map"


def test_pose_history_keeps_the_last_seconds_and_a_resent_stamp_replaces_its_pose():
    history = PoseHistory(keep_s=3.0)
    for i in range(8):
        history.add(_pose(i * 10**9, float(i)))
    history.add(_pose(7 * 10**9, 70.0))
    assert len(history) == 4  # 4, 5, 6 and 7 s
    assert history.at(3 * 10**9, tolerance_s=0.5) is None
    latest = history.at(7 * 10**9, tolerance_s=0.0)
    assert latest is not None and latest.matrix[0, 3] == 70.0 and history.newest_stamp_ns() == 7 * 10**9
    capped = PoseHistory(max_poses=5)
    for i in range(8):
        capped.add(_pose(i * 10**6, float(i)))
    assert len(capped) == 5


CAMERA = CameraGeometry(
    k=np.array([[40.0, 0, 31.5], [0, 40.0, 23.5], [0, 0, 1]]),
    p=np.array([[40.0, 0, 31.5, 0], [0, 40.0, 23.5, 0], [0, 0, 1, 0]]),
    width=64,
    height=48,
)


def test_the_processor_fuses_with_the_pose_and_counts_frames_it_cannot_fuse():
    proc = FrameProcessor(pipeline=None)
    proc._pose_active = True  # what depth() sets in pose mode
    rng = np.random.default_rng(0)
    frames = [(3.0 + 0.1 * rng.standard_normal((48, 64))).astype(np.float32) for _ in range(6)]
    reference = PoseFusion()
    poses = [_pose(i * 10**8, 0.0) for i in range(6)]
    for i in range(3):
        out, why = proc.fuse_with_pose(frames[i], CAMERA, poses[i], i * 0.1)
        expected = reference(frames[i], CAMERA.k, poses[i].matrix, i * 0.1)
        assert why == ("restart" if i == 0 else None)
        np.testing.assert_allclose(out, expected, rtol=1e-6)
    # An exponential filter: 0.1 f2 + 0.09 f1 + 0.81 f0 leaves sqrt(0.01 + 0.0081 + 0.6561) of the noise.
    assert out.std() == pytest.approx(0.8217 * frames[2].std(), rel=0.1)
    assert float(proc.stats()["pose_fused_fraction"]) > 0.9
    out, why = proc.fuse_with_pose(frames[3], CAMERA, None, 0.3)
    assert why == "no_pose" and out is frames[3] and proc.stats()["pose_fused_fraction"] == "0.000"
    out, why = proc.fuse_with_pose(frames[3], None, poses[3], 0.3)
    assert why == "no_camera_info" and out is frames[3]
    # The next frame with a pose is fused with the last one fused (frame 2), 0.2 s before it.
    out, why = proc.fuse_with_pose(frames[4], CAMERA, poses[4], 0.4)
    np.testing.assert_allclose(out, reference(frames[4], CAMERA.k, poses[4].matrix, 0.4), rtol=1e-6)
    assert why is None
    stats = proc.stats()
    assert stats["pose_frames_fused"] == "3" and stats["pose_frames_unfused_restart"] == "1"
    assert stats["pose_frames_unfused_no_pose"] == "1" and stats["pose_frames_unfused_no_camera_info"] == "1"
    assert stats["pose_fixed_frame"] == "odom"
    # A pose in another fixed frame starts afresh.
    out, why = proc.fuse_with_pose(frames[5], CAMERA, _pose(5 * 10**8, 0.0, frame="map"), 0.5)
    assert why == "restart" and np.array_equal(out, frames[5]) and proc.stats()["pose_fixed_frame"] == "map"
    proc._pose_active = False
    assert not any(k.startswith("pose_") for k in proc.stats())  # another mode: no stale pose figures


class _ConstantPipeline:
    """A stand-in model whose relative depth is a fixed ramp (what pose fusion sees is then all the node's)."""

    default_denoising_steps = 1

    def __call__(self, image, **kwargs):
        from types import SimpleNamespace

        h, w = image.shape[:2]
        ramp = np.linspace(0.2, 0.8, w, dtype=np.float32)[None].repeat(h, 0)
        return SimpleNamespace(depth=ramp[None])


def test_a_settings_change_starts_the_pose_fusion_afresh():
    proc = FrameProcessor(_ConstantPipeline())
    cfg = NodeConfig(temporal_mode="pose", depth_mode="fixed_scale", scale=4.0, shift=1.0)
    image = np.zeros((48, 64, 3), np.uint8)
    run = [("a room", cfg), ("a room", cfg), ("a room", cfg.with_changes(scale=5.0)), ("a hall", cfg)]
    reasons = []
    for i, (text, c) in enumerate(run):
        result = proc.depth(image, text, 0.1 * i, None, c, camera=CAMERA, pose=_pose(i * 10**8, 0.0))
        reasons.append(result.unfused_reason)
        if i == 2:  # the new scale is published as it is, not blended toward the old one
            expected = np.broadcast_to(5.0 * np.linspace(0.2, 0.8, 64) + 1.0, (48, 64))
            np.testing.assert_allclose(result.depth, expected, rtol=1e-6)
    assert reasons == ["restart", None, "restart", "restart"]


def test_pose_mode_needs_metric_depth_and_a_fixed_frame():
    with pytest.raises(ConfigError, match="needs depth_mode fixed_scale or sparse_aligned"):
        NodeConfig(temporal_mode="pose")
    cfg = NodeConfig(temporal_mode="pose", depth_mode="sparse_aligned")
    with pytest.raises(ConfigError, match="not 'relative'"):
        cfg.with_changes(depth_mode="relative")
    with pytest.raises(ConfigError, match="one of"):
        NodeConfig(pose_source="odometry")
    with pytest.raises(ConfigError, match="fixed_frame"):
        NodeConfig(fixed_frame=" ")
    with pytest.raises(ConfigError, match="no leading '/'"):
        NodeConfig(fixed_frame="/odom")


@pytest.mark.skipif(
    importlib.util.find_spec("tf2_ros") is None,
    reason="needs tf2_ros, which comes with a ROS 2 install (ros-<distro>-tf2-ros-py) and is not on PyPI: run this "
    "test where ROS 2 is sourced to check pose_source=tf against a real TF buffer",
)
def test_tf_source_looks_up_the_optical_frame_in_the_fixed_frame():  # pragma: no cover - needs ROS 2's tf2_ros
    import rclpy
    from geometry_msgs.msg import TransformStamped

    from iris_ros.tf_poses import TfPoses

    def transform(stamp_s: int, x: float) -> TransformStamped:
        t = TransformStamped()
        t.header.stamp.sec = stamp_s
        t.header.frame_id, t.child_frame_id = "odom", "cam_optical"
        t.transform.translation.x, t.transform.translation.z = x, 0.5
        t.transform.rotation.x, t.transform.rotation.y = -0.5, 0.5
        t.transform.rotation.z, t.transform.rotation.w = -0.5, 0.5
        return t

    rclpy.init()
    try:
        node = rclpy.create_node("tf_source_test")
        poses = TfPoses(node, "odom")
        poses.buffer.set_transform(transform(10, 1.0), "test")
        poses.buffer.set_transform(transform(11, 2.0), "test")
        pose = poses.at("cam_optical", 10_500_000_000, timeout_s=0.0)  # between the two: tf2 interpolates
        assert pose is not None, poses.last_error
        np.testing.assert_allclose(pose.matrix, pose_matrix((1.5, 0.0, 0.5), (-0.5, 0.5, -0.5, 0.5)), atol=1e-9)
        assert poses.at("cam_optical", 12 * 10**9, timeout_s=0.2) is None  # no extrapolation, after a wait
        assert poses.at("no_such_frame", 10 * 10**9, timeout_s=0.0) is None and "no_such_frame" in poses.last_error
    finally:
        rclpy.shutdown()
