"""Organized point clouds to ``sensor_msgs/PointCloud2`` bytes and field layout, without ROS.

Layouts (little- or big-endian as the host, ``is_bigendian`` says which):

- XYZ: ``x, y, z`` float32 at offsets 0, 4, 8; ``point_step`` 12.
- XYZRGB: ``x, y, z`` float32, then ``rgb`` at offset 12: the color as a ``0x00RRGGBB`` uint32 whose bits
  are declared as a FLOAT32 field named ``rgb`` (PCL's and RViz's RGB8 convention); ``point_step`` 16.

Clouds are organized (``height`` rows x ``width`` columns in image order, row-major) with NaN for invalid
points and ``is_dense = False``, as depth_image_proc publishes them. sensor_msgs_py is not on PyPI, and its
``create_cloud`` treats a 2-D array's first axis as the width, so the bytes are built here with numpy views
(no per-point Python).

The bytes are written straight into an ``array.array('B')`` (:attr:`PackedCloud.buffer`), the type rclpy
stores ``uint8[]`` fields as, so assigning it to ``msg.data`` copies nothing. The interleaving is OpenCV's
(``cv2.merge``, ``cv2.cvtColor``: SIMD stores of 3 or 4 channels, into the buffer through ``dst``): 1.4-1.8x a
plain copy of the same bytes, about what a plain compiled loop takes, where numpy's strided per-field stores took
3.25x (``benchmarks/node.py``, docs/ros.md).
:func:`pack_depth_cloud`, what the node runs per frame, back-projects depth into contiguous x and y planes and
interleaves them with z and the colors in one pass.
"""

from __future__ import annotations

import array
import math
import sys
from dataclasses import dataclass, field

import cv2
import numpy as np

from iris_model.errors import InputError

#: sensor_msgs/PointField datatype codes.
FLOAT32 = 7
UINT32 = 6

_LITTLE = sys.byteorder == "little"


@dataclass(frozen=True)
class FieldSpec:
    """One ``sensor_msgs/PointField``."""

    name: str
    offset: int
    datatype: int
    count: int = 1


XYZ_FIELDS = (FieldSpec("x", 0, FLOAT32), FieldSpec("y", 4, FLOAT32), FieldSpec("z", 8, FLOAT32))
XYZRGB_FIELDS = (*XYZ_FIELDS, FieldSpec("rgb", 12, FLOAT32))


@dataclass(frozen=True)
class PackedCloud:
    """Everything a ``PointCloud2`` needs besides the header.

    ``buffer`` holds the bytes (ready for ``msg.data``, no copy); ``data`` is a flat uint8 numpy view of it.
    """

    height: int
    width: int
    fields: tuple[FieldSpec, ...]
    point_step: int
    row_step: int
    buffer: array.array = field(repr=False)
    is_bigendian: bool = not _LITTLE
    is_dense: bool = False

    @property
    def data(self) -> np.ndarray:
        return np.frombuffer(self.buffer, dtype=np.uint8)


def _new_buffer(nbytes: int) -> tuple[array.array, np.ndarray]:
    """A zeroed ``array.array('B')`` of ``nbytes`` and a writable numpy uint8 view of it."""
    buf = array.array("B", b"\0") * nbytes  # repeating one byte is a memset, cheaper than bytes(n) + copy
    return buf, np.frombuffer(buf, dtype=np.uint8)


def _check_points(points: np.ndarray) -> np.ndarray:
    points = np.asarray(points)
    if points.ndim != 3 or points.shape[2] != 3:
        raise InputError(f"points must be an organized H x W x 3 array, got shape {points.shape}")
    if points.shape[0] < 1 or points.shape[1] < 1:
        raise InputError(f"points must not be empty, got shape {points.shape}")
    return points


def pack_xyz(points: np.ndarray) -> PackedCloud:
    """``[H, W, 3]`` XYZ (meters, camera optical frame; NaN = invalid) to an organized XYZ cloud."""
    points = _check_points(points)
    h, w = points.shape[:2]
    buf, data = _new_buffer(h * w * 12)
    data.view(np.float32)[:] = np.asarray(points, dtype=np.float32).reshape(-1)
    return PackedCloud(h, w, XYZ_FIELDS, 12, 12 * w, buf)


def pack_xyzrgb(points: np.ndarray, rgb: np.ndarray) -> PackedCloud:
    """``[H, W, 3]`` XYZ plus ``[H, W, 3]`` uint8 RGB to an organized XYZRGB cloud (point_step 16)."""
    points = _check_points(points)
    rgb = np.asarray(rgb)
    if rgb.shape != points.shape or rgb.dtype != np.uint8:
        raise InputError(f"rgb must be uint8 with the points' shape {points.shape}, got {rgb.dtype} {rgb.shape}")
    h, w = points.shape[:2]
    buf, data = _new_buffer(h * w * 16)
    out = data.view(np.float32).reshape(h, w, 4)
    # x, y, z into channels 0-2 in one SIMD pass (channel 3 gets 1.0), then the colors over channel 3.
    _written(cv2.cvtColor(np.asarray(points, dtype=np.float32), cv2.COLOR_RGB2RGBA, dst=out), out)
    np.copyto(out.view(np.uint32)[..., 3], color_words(rgb))
    return PackedCloud(h, w, XYZRGB_FIELDS, 16, 16 * w, buf)


def color_words(rgb: np.ndarray) -> np.ndarray:
    """``[H, W, 3]`` uint8 RGB -> ``[H, W]`` uint32 holding ``0x00RRGGBB``, the ``rgb`` field's value.

    OpenCV widens the pixels to 4 bytes in one pass, in the channel order that makes them the word in the
    host's byte order with 0xFF on top, which is then cleared (little-endian) or shifted out (big-endian).
    """
    if _LITTLE:
        words = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGRA).view("<u4")[..., 0]  # bytes B, G, R, FF: 0xFFRRGGBB
        words &= np.uint32(0x00FFFFFF)
        return words
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2RGBA).view(">u4")[..., 0] >> 8  # bytes R, G, B, FF: 0xRRGGBBFF


def _written(result: np.ndarray, out: np.ndarray) -> None:
    """OpenCV writes into ``dst`` when its shape and type fit, as here; copy the result over where it did not."""
    if result.ctypes.data != out.ctypes.data:
        np.copyto(out, result.reshape(out.shape))


def pack_depth_cloud(
    depth: np.ndarray,
    fx: float,
    fy: float,
    cx: float,
    cy: float,
    rgb: np.ndarray | None = None,
    stride: int = 1,
    max_range: float = math.inf,
) -> PackedCloud:
    """Back-project planar depth straight into an organized XYZ (or XYZRGB with ``rgb``) cloud.

    depth_image_proc's ``convertDepth`` formula, in float32 as it computes:
    ``X = (u - cx) * z * (1 / fx)``, ``Y = (v - cy) * z * (1 / fy)``, ``Z = z`` (camera optical frame; meters
    when the depth is). As there, only non-finite depth is invalid (all three coordinates NaN); depth beyond
    ``max_range`` is NaN too. ``stride`` keeps every stride-th row and column (pixel coordinates stay those
    of the full image). ``rgb`` is the full-size ``[H, W, 3]`` uint8 image.
    """
    depth = np.asarray(depth, dtype=np.float32)
    if depth.ndim != 2 or depth.shape[0] < 1 or depth.shape[1] < 1:
        raise InputError(f"depth must be a non-empty H x W array, got shape {depth.shape}")
    if not isinstance(stride, int) or stride < 1:
        raise InputError(f"stride must be an int >= 1, got {stride!r}")
    if rgb is not None and (rgb.shape != (*depth.shape, 3) or rgb.dtype != np.uint8):
        raise InputError(f"rgb must be uint8 of shape {(*depth.shape, 3)}, got {rgb.dtype} {rgb.shape}")
    z = depth[::stride, ::stride]
    with np.errstate(invalid="ignore"):
        bad = ~np.isfinite(z) if max_range == math.inf else ~(np.isfinite(z) & (z <= max_range))
    if bad.any():
        z = np.where(bad, np.float32(np.nan), z)
    h, w = z.shape
    step = 12 if rgb is None else 16
    buf, data = _new_buffer(h * w * step)
    out = data.view(np.float32).reshape(h, w, step // 4)
    # float32 throughout, as depth_image_proc: center and 1/f rounded to float, then (u - c) * z * (1/f).
    ray_x = (np.arange(0, depth.shape[1], stride, dtype=np.float32) - np.float32(cx)) * np.float32(1.0 / fx)
    ray_y = (np.arange(0, depth.shape[0], stride, dtype=np.float32) - np.float32(cy)) * np.float32(1.0 / fy)
    planes = [ray_x[None, :] * z, ray_y[:, None] * z, np.ascontiguousarray(z)]
    fields = XYZ_FIELDS
    if rgb is not None:
        planes.append(color_words(rgb[::stride, ::stride]).view(np.float32))  # the word's bits, as a float32 field
        fields = XYZRGB_FIELDS
    _written(cv2.merge(planes, dst=out), out)
    return PackedCloud(h, w, fields, step, step * w, buf)


def unpack_cloud(
    fields: tuple[FieldSpec, ...] | list,
    point_step: int,
    height: int,
    width: int,
    data: object,
    is_bigendian: bool = not _LITTLE,
) -> dict[str, np.ndarray]:
    """Read a packed cloud back: ``{"xyz": [H, W, 3] float32, "rgb": [H, W, 3] uint8 (if present)}``.

    ``fields`` may be :class:`FieldSpec` or ``sensor_msgs/PointField`` objects (same attribute names).
    Used by the tests and the benchmark to check what the node publishes.
    """
    order = ">" if is_bigendian else "<"
    by_name = {f.name: f for f in fields}
    for name in ("x", "y", "z"):
        if name not in by_name or by_name[name].datatype != FLOAT32:
            raise InputError(f"cloud has no FLOAT32 field {name!r}")
    names = ["x", "y", "z"]
    formats = [order + "f4"] * 3
    offsets = [by_name[n].offset for n in names]
    if "rgb" in by_name:
        names.append("rgb")
        formats.append(order + "u4")
        offsets.append(by_name["rgb"].offset)
    dtype = np.dtype({"names": names, "formats": formats, "offsets": offsets, "itemsize": point_step})
    buf = np.frombuffer(data, dtype=np.uint8)  # type: ignore[call-overload]
    if buf.size != point_step * height * width:
        raise InputError(f"cloud data has {buf.size} bytes, expected {point_step} * {height} * {width}")
    pts = buf.view(dtype).reshape(height, width)
    out = {"xyz": np.stack([pts["x"], pts["y"], pts["z"]], axis=-1).astype(np.float32)}
    if "rgb" in by_name:
        packed = pts["rgb"].astype(np.uint32)
        out["rgb"] = np.stack([(packed >> 16) & 255, (packed >> 8) & 255, packed & 255], axis=-1).astype(np.uint8)
    return out
