"""The camera's pose at an image's stamp, without ROS: pose messages to 4x4 matrices, and a short history.

``temporal_mode: pose`` fuses each frame's metric depth with the previous output moved by the camera's motion
(:class:`~iris_model.pose_fusion.PoseFusion`). The motion comes from the camera's pose at each image stamp:
either a ``geometry_msgs/PoseStamped`` topic (``camera_pose``: the image's optical frame in a fixed frame such as
``odom``, what visual odometry publishes) kept in a :class:`PoseHistory`, or a TF lookup (the node's job).

Units: meters; poses are camera-to-world 4x4 transforms of the optical frame (x right, y down, z forward,
REP 103); stamps in integer nanoseconds.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.spatial.transform import Rotation, Slerp

from iris_model.errors import InputError

#: Quaternions further than this from unit norm are refused (tf2 refuses unnormalized ones too).
QUATERNION_NORM_TOLERANCE = 1e-2
POSE_HISTORY = 200


def pose_matrix(position: Sequence[float], orientation: Sequence[float]) -> np.ndarray:
    """4x4 float64 transform from a position (x, y, z) in meters and a quaternion (x, y, z, w) as ROS orders it.

    Raises :class:`InputError` for non-finite values or a quaternion that is not of unit norm (within 1 %).
    """
    p = np.asarray(position, dtype=np.float64)
    q = np.asarray(orientation, dtype=np.float64)
    if p.shape != (3,) or q.shape != (4,) or not (np.isfinite(p).all() and np.isfinite(q).all()):
        raise InputError(f"a pose needs a finite position (x, y, z) and quaternion (x, y, z, w), got {p}, {q}")
    norm = float(np.linalg.norm(q))
    if abs(norm - 1.0) > QUATERNION_NORM_TOLERANCE:
        raise InputError(f"the pose's quaternion {q.tolist()} is not normalized (norm {norm:.4g})")
    out = np.eye(4)
    out[:3, :3] = Rotation.from_quat(q / norm).as_matrix()  # scipy's (x, y, z, w) order is ROS's
    out[:3, 3] = p
    return out


@dataclass(frozen=True)
class StampedPose:
    """A camera-to-world pose (4x4, meters) of the optical frame in ``frame_id`` at ``stamp_ns``."""

    stamp_ns: int
    frame_id: str
    matrix: np.ndarray


class PoseHistory:
    """The last :data:`POSE_HISTORY` camera poses, looked up by stamp (not thread-safe: the node locks it).

    :meth:`at` interpolates between the poses just before and just after a stamp (linear in position, slerp in
    rotation, as tf2 does) when both are within the tolerance of it, else takes the nearest within it.
    """

    def __init__(self, maxlen: int = POSE_HISTORY) -> None:
        self._poses: list[StampedPose] = []  # sorted by stamp
        self._maxlen = maxlen

    def add(self, pose: StampedPose) -> None:
        stamps = [p.stamp_ns for p in self._poses]
        i = bisect.bisect_left(stamps, pose.stamp_ns)
        if i < len(stamps) and stamps[i] == pose.stamp_ns:
            self._poses[i] = pose  # a re-sent stamp replaces the earlier pose
        else:
            self._poses.insert(i, pose)
        del self._poses[: max(0, len(self._poses) - self._maxlen)]

    def __len__(self) -> int:
        return len(self._poses)

    def at(self, stamp_ns: int, tolerance_s: float) -> StampedPose | None:
        """The pose at ``stamp_ns`` (see the class), or ``None`` when none is within ``tolerance_s``."""
        tol = tolerance_s * 1e9
        stamps = [p.stamp_ns for p in self._poses]
        i = bisect.bisect_left(stamps, stamp_ns)
        before = self._poses[i - 1] if i > 0 else None
        after = self._poses[i] if i < len(stamps) else None
        near = [p for p in (before, after) if p is not None and abs(p.stamp_ns - stamp_ns) <= tol]
        if not near:
            return None
        if len(near) == 2 and before.frame_id == after.frame_id and after.stamp_ns > before.stamp_ns:
            t = (stamp_ns - before.stamp_ns) / (after.stamp_ns - before.stamp_ns)
            rot = Slerp([0.0, 1.0], Rotation.from_matrix([before.matrix[:3, :3], after.matrix[:3, :3]]))([t])
            out = np.eye(4)
            out[:3, :3] = rot.as_matrix()[0]
            out[:3, 3] = (1 - t) * before.matrix[:3, 3] + t * after.matrix[:3, 3]
            return StampedPose(stamp_ns, before.frame_id, out)
        return min(near, key=lambda p: abs(p.stamp_ns - stamp_ns))
