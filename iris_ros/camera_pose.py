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
#: Seconds of poses kept behind the newest one (tf2's buffer keeps 10 s too), and a cap on their number.
POSE_HISTORY_S = 10.0
MAX_POSES = 20_000
#: Two poses around a stamp are interpolated when at most this far apart (s); tf2 interpolates any bracket.
MAX_BRACKET_S = 1.0


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
    """The camera poses of the last :data:`POSE_HISTORY_S` seconds, looked up by stamp (not thread-safe: the
    node locks it).

    :meth:`at` interpolates between the poses just before and just after a stamp (linear in position, slerp in
    rotation, as tf2 does) when they are in the same frame and at most :data:`MAX_BRACKET_S` apart; otherwise it
    takes the nearest pose within the tolerance. It never extrapolates.
    """

    def __init__(self, keep_s: float = POSE_HISTORY_S, max_poses: int = MAX_POSES) -> None:
        self._poses: list[StampedPose] = []  # sorted by stamp
        self._stamps: list[int] = []  # their stamps, for bisect
        self._keep_ns = int(keep_s * 1e9)
        self._max_poses = max_poses

    def add(self, pose: StampedPose) -> None:
        i = bisect.bisect_left(self._stamps, pose.stamp_ns)
        if i < len(self._stamps) and self._stamps[i] == pose.stamp_ns:
            self._poses[i] = pose  # a re-sent stamp replaces the earlier pose
        else:
            self._poses.insert(i, pose)
            self._stamps.insert(i, pose.stamp_ns)
        drop = bisect.bisect_left(self._stamps, self._stamps[-1] - self._keep_ns)
        drop = max(drop, len(self._poses) - self._max_poses)
        del self._poses[:drop], self._stamps[:drop]

    def __len__(self) -> int:
        return len(self._poses)

    def newest_stamp_ns(self) -> int | None:
        return self._poses[-1].stamp_ns if self._poses else None

    def at(self, stamp_ns: int, tolerance_s: float) -> StampedPose | None:
        """The pose at ``stamp_ns`` (see the class), or ``None`` when there is none to interpolate and none
        within ``tolerance_s``."""
        stamps = self._stamps
        i = bisect.bisect_left(stamps, stamp_ns)
        if i < len(stamps) and stamps[i] == stamp_ns:
            return self._poses[i]
        before = self._poses[i - 1] if i > 0 else None
        after = self._poses[i] if i < len(stamps) else None
        if (
            before is not None
            and after is not None
            and before.frame_id == after.frame_id
            and after.stamp_ns - before.stamp_ns <= MAX_BRACKET_S * 1e9
        ):
            t = (stamp_ns - before.stamp_ns) / (after.stamp_ns - before.stamp_ns)
            rot = Slerp([0.0, 1.0], Rotation.from_matrix([before.matrix[:3, :3], after.matrix[:3, :3]]))([t])
            out = np.eye(4)
            out[:3, :3] = rot.as_matrix()[0]
            out[:3, 3] = (1 - t) * before.matrix[:3, 3] + t * after.matrix[:3, 3]
            return StampedPose(stamp_ns, before.frame_id, out)
        near = [p for p in (before, after) if p is not None and abs(p.stamp_ns - stamp_ns) <= tolerance_s * 1e9]
        return min(near, key=lambda p: abs(p.stamp_ns - stamp_ns)) if near else None
