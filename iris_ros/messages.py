"""The depth node's output messages, built from the frame processor's arrays (and nothing else).

Every message carries the input image's header (stamp and frame_id), so TF and time synchronization work
as for any camera pipeline.
"""

from __future__ import annotations

from typing import Any

from sensor_msgs.msg import CameraInfo, Image, PointCloud2, PointField

from .camera_info import CameraGeometry
from .cloud_packing import PackedCloud
from .image_codec import ImageFields


def image_msg(header: Any, fields: ImageFields) -> Image:
    """A ``sensor_msgs/Image`` from :mod:`iris_ros.image_codec` fields (``data`` assigned without a copy)."""
    msg = Image()
    msg.header = header
    msg.height, msg.width, msg.step = fields.height, fields.width, fields.step
    msg.encoding, msg.is_bigendian = fields.encoding, fields.is_bigendian
    msg.data = fields.data
    return msg


def depth_camera_info_msg(header: Any, info: CameraInfo, camera: CameraGeometry) -> CameraInfo:
    """``depth/camera_info``: the depth image's own K and P (ROI and binning already applied, so both are
    left at their "full image" zeros), distortion and R passed through."""
    out = CameraInfo()
    out.header = header
    out.width, out.height = camera.width, camera.height
    out.distortion_model = info.distortion_model
    out.d = info.d
    out.r = info.r
    out.k = camera.k.reshape(-1).tolist()
    out.p = camera.p.reshape(-1).tolist()
    return out


def cloud_msg(header: Any, packed: PackedCloud) -> PointCloud2:
    """A ``sensor_msgs/PointCloud2`` around packed bytes (the buffer becomes ``msg.data`` without a copy)."""
    msg = PointCloud2()
    msg.header = header
    msg.height, msg.width = packed.height, packed.width
    msg.fields = [PointField(name=f.name, offset=f.offset, datatype=f.datatype, count=f.count) for f in packed.fields]
    msg.is_bigendian = packed.is_bigendian
    msg.point_step, msg.row_step = packed.point_step, packed.row_step
    msg.data = packed.buffer
    msg.is_dense = packed.is_dense
    return msg


def stamp_seconds(stamp: Any) -> float:
    """A ``builtin_interfaces/Time`` in seconds."""
    return int(stamp.sec) + int(stamp.nanosec) * 1e-9


def stamp_ns(stamp: Any) -> int:
    """A ``builtin_interfaces/Time`` in nanoseconds (exact, for matching stamps)."""
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)

