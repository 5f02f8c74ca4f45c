"""The camera's pose from TF (``pose_source: tf``): ``fixed_frame`` -> the image's ``frame_id`` at its stamp.

tf2_ros comes with every ROS 2 install (``ros-<distro>-tf2-ros-py``) but is not on PyPI, so it is imported only
when this source is chosen, and the tests that need it skip without it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from .camera_pose import StampedPose, pose_matrix
from .config import ConfigError

#: The longest single wait for TF, so that a stopping node is not held up.
WAIT_SLICE_S = 0.1


class TfPoses:
    """Looks up the optical frame's pose in ``fixed_frame`` (camera-to-world, meters) with a tf2 buffer that
    listens on ``/tf`` and ``/tf_static`` through ``node`` (its executor runs the listener's callbacks)."""

    def __init__(self, node: Any, fixed_frame: str) -> None:
        try:
            import tf2_ros
        except ImportError as exc:
            raise ConfigError(
                "pose_source 'tf' needs tf2_ros (part of every ROS 2 install: ros-<distro>-tf2-ros-py; not on PyPI); "
                "or publish the camera's pose on camera_pose and use pose_source 'topic'"
            ) from exc
        self._errors = (tf2_ros.TransformException,)
        self.buffer = tf2_ros.Buffer()
        self.listener = tf2_ros.TransformListener(self.buffer, node)
        self.fixed_frame = fixed_frame
        #: The last lookup's failure, for the node's log line (``None`` after a success).
        self.last_error: str | None = None

    def at(
        self, frame_id: str, stamp_ns: int, timeout_s: float, stop: Callable[[], bool] = lambda: False
    ) -> StampedPose | None:
        """The pose of ``frame_id`` in ``fixed_frame`` at ``stamp_ns`` (tf2 interpolates), waiting up to
        ``timeout_s`` for it in slices of :data:`WAIT_SLICE_S` (ending early once ``stop()`` is true);
        ``None`` when TF cannot give it (the reason in :attr:`last_error`)."""
        from rclpy.duration import Duration
        from rclpy.time import Time

        deadline = time.monotonic() + timeout_s
        while True:
            wait = max(0.0, min(deadline - time.monotonic(), WAIT_SLICE_S))
            try:
                t = self.buffer.lookup_transform(
                    self.fixed_frame,
                    frame_id,
                    Time(nanoseconds=stamp_ns),
                    timeout=Duration(nanoseconds=int(wait * 1e9)),
                )
                break
            except self._errors as exc:
                if time.monotonic() >= deadline or stop():
                    self.last_error = f"TF {self.fixed_frame} -> {frame_id!r}: {exc}"[:300]
                    return None
        tr, q = t.transform.translation, t.transform.rotation
        self.last_error = None
        return StampedPose(stamp_ns, self.fixed_frame, pose_matrix((tr.x, tr.y, tr.z), (q.x, q.y, q.z, q.w)))
