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
    mid = history.at(1_250_000_000, tolerance_s=1.0)
    assert mid is not None and mid.frame_id == "odom" and mid.stamp_ns == 1_250_000_000
    np.testing.assert_allclose(mid.matrix[:3, 3], [0.25, 0, 0])
    np.testing.assert_allclose(mid.matrix[:3, :3], _pose(0, 0.0, 10.0).matrix[:3, :3], atol=1e-12)  # slerp
    exact = history.at(2_000_000_000, tolerance_s=0.0)
    assert exact is not None
    np.testing.assert_allclose(exact.matrix, _pose(0, 1.0, 40.0).matrix, atol=1e-12)


def test_pose_history_takes_the_nearest_within_the_tolerance_or_nothing():
    history = PoseHistory()
    history.add(_pose(1_000_000_000, 0.0))
    history.add(_pose(2_000_000_000, 1.0))
    near = history.at(1_040_000_000, tolerance_s=0.05)  # the later pose is 0.96 s away: not used
    assert near is not None and near.stamp_ns == 1_000_000_000
    assert history.at(1_500_000_000, tolerance_s=0.05) is None
    assert history.at(2_060_000_000, tolerance_s=0.05) is None  # no extrapolation past the tolerance
    history.add(_pose(3_000_000_000, 5.0, frame="map"))  # another fixed frame: never interpolated across
    other = history.at(2_900_000_000, tolerance_s=1.0)
    assert other is not None and other.frame_id == "map"


def test_pose_history_is_bounded_and_a_resent_stamp_replaces_its_pose():
    history = PoseHistory(maxlen=5)
    for i in range(8):
        history.add(_pose(i * 10**9, float(i)))
    history.add(_pose(7 * 10**9, 70.0))
    assert len(history) == 5
    assert history.at(0, tolerance_s=0.5) is None  # the oldest went first
    latest = history.at(7 * 10**9, tolerance_s=0.0)
    assert latest is not None and latest.matrix[0, 3] == 70.0


CAMERA = CameraGeometry(
    k=np.array([[40.0, 0, 31.5], [0, 40.0, 23.5], [0, 0, 1]]),
    p=np.array([[40.0, 0, 31.5, 0], [0, 40.0, 23.5, 0], [0, 0, 1, 0]]),
    width=64,
    height=48,
)


def test_the_processor_fuses_with_the_pose_and_counts_frames_it_cannot_fuse():
    proc = FrameProcessor(pipeline=None)
    rng = np.random.default_rng(0)
    frames = [(3.0 + 0.1 * rng.standard_normal((48, 64))).astype(np.float32) for _ in range(4)]
    reference = PoseFusion()
    poses = [_pose(i * 10**8, 0.0) for i in range(4)]
    for i in range(3):
        out, why = proc.fuse_with_pose(frames[i], CAMERA, poses[i], i * 0.1)
        expected = reference(frames[i], CAMERA.k, poses[i].matrix, i * 0.1)
        assert why is None
        np.testing.assert_allclose(out, expected, rtol=1e-6)
    # An exponential filter: 0.1 f2 + 0.09 f1 + 0.81 f0 leaves sqrt(0.01 + 0.0081 + 0.6561) of the noise.
    assert out.std() == pytest.approx(0.8217 * frames[2].std(), rel=0.1)
    assert float(proc.stats()["pose_fused_fraction"]) > 0.9
    out, why = proc.fuse_with_pose(frames[3], CAMERA, None, 0.3)
    assert why == "no_pose" and out is frames[3] and proc.stats()["pose_fused_fraction"] == "0.000"
    out, why = proc.fuse_with_pose(frames[3], None, poses[3], 0.3)
    assert why == "no_camera_info" and out is frames[3]
    # After a frame it did not fuse, the next starts afresh (it never bridges a frame it did not see).
    out, why = proc.fuse_with_pose(frames[0], CAMERA, poses[3], 0.3)
    assert why is None and np.array_equal(out, frames[0])
    stats = proc.stats()
    assert stats["pose_frames_fused"] == "4"
    assert stats["pose_frames_unfused_no_pose"] == "1" and stats["pose_frames_unfused_no_camera_info"] == "1"
    assert stats["pose_fixed_frame"] == "odom"
    # A pose in another fixed frame restarts the fusion too.
    proc.fuse_with_pose(frames[1], CAMERA, _pose(4 * 10**8, 0.0), 0.4)
    out, _ = proc.fuse_with_pose(frames[2], CAMERA, _pose(5 * 10**8, 0.0, frame="map"), 0.5)
    assert np.array_equal(out, frames[2]) and proc.stats()["pose_fixed_frame"] == "map"


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


@pytest.mark.skipif(
    importlib.util.find_spec("tf2_ros") is None,
    reason="needs tf2_ros, which comes with a ROS 2 install (ros-<distro>-tf2-ros-py) and is not on PyPI: run this "
    "test where ROS 2 is sourced to check pose_source=tf against a real TF buffer",
)
def test_tf_source_looks_up_the_optical_frame_in_the_fixed_frame():  # pragma: no cover - needs ROS 2's tf2_ros
    import rclpy
    from geometry_msgs.msg import TransformStamped
    from tf2_ros import StaticTransformBroadcaster

    from iris_ros.tf_poses import TfPoses

    rclpy.init()
    try:
        node = rclpy.create_node("tf_source_test")
        poses = TfPoses(node, "odom")
        t = TransformStamped()
        t.header.frame_id, t.child_frame_id = "odom", "cam_optical"
        t.transform.translation.x, t.transform.translation.z = 1.0, 0.5
        t.transform.rotation.x, t.transform.rotation.y = -0.5, 0.5
        t.transform.rotation.z, t.transform.rotation.w = -0.5, 0.5
        StaticTransformBroadcaster(node).sendTransform(t)
        pose = None
        for _ in range(50):
            rclpy.spin_once(node, timeout_sec=0.1)
            pose = poses.at("cam_optical", 0, timeout_s=0.0)  # static: valid at any stamp
            if pose is not None:
                break
        assert pose is not None, poses.last_error
        np.testing.assert_allclose(pose.matrix, pose_matrix((1.0, 0.0, 0.5), (-0.5, 0.5, -0.5, 0.5)), atol=1e-9)
        assert poses.at("no_such_frame", 0, timeout_s=0.0) is None and "no_such_frame" in poses.last_error
    finally:
        rclpy.shutdown()
