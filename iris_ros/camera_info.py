"""``sensor_msgs/CameraInfo`` to the pinhole model of the image the depth is published for, without ROS.

The node passes the message's numbers (:class:`CameraInfoFields`); :func:`camera_geometry` returns the K and
P of the depth image (:class:`CameraGeometry`) in three steps:

1. **ROI and binning exactly as image_geometry's** ``PinholeCameraModel::fromCameraInfo`` does: the
   principal point of K and P moves by the ROI offset (``cx -= roi.x_offset``), then ``fx``, ``cx`` (and
   P's ``Tx``) are divided by ``binning_x``, the y entries by ``binning_y``. A ROI of all zeros is the full
   image, a binning of 0 is 1. The image this describes is ``roi.width / binning_x`` x
   ``roi.height / binning_y`` pixels (image_geometry's ``reducedResolution``).
2. **Any remaining size difference is a resize** (a driver or ``image_proc`` resizing the image): pixel
   centers map as ``u' = (u + 0.5) * sx - 0.5``, so ``fx' = sx fx``, ``cx' = (cx + 0.5) sx - 0.5``,
   ``Tx' = sx Tx``.
3. **Validated after scaling**: every entry finite in float32 (depth_image_proc computes in float) and both
   focal lengths > 0; otherwise :class:`CameraInfoError` with the numbers and where they came from.

Points follow depth_image_proc (``depth_image_proc/conversions.hpp``, ``convertDepth``), which reads the
intrinsics through image_geometry, i.e. from **P**, not K: ``X = (u - cx) z / fx``, ``Y = (v - cy) z / fy``
with ``fx = P[0, 0]``, ``cx = P[0, 2]``, ``fy = P[1, 1]``, ``cy = P[1, 2]``. A CameraInfo whose P is all
zeros (drivers that fill only K) gets ``P = [K | 0]``, and that P is what ``depth/camera_info`` carries, so
depth_image_proc run on the node's ``depth`` + ``depth/camera_info`` gives the node's ``points``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from iris_model.errors import InputError
from iris_model.geometry import Intrinsics

_F32_MAX = float(np.finfo(np.float32).max)


class CameraInfoError(InputError):
    """A CameraInfo cannot be used: zero or non-finite focal length, malformed K or P, impossible ROI."""


@dataclass(frozen=True)
class CameraInfoFields:
    """The numbers of a ``sensor_msgs/CameraInfo`` that the geometry needs (pixels; 0 = unset)."""

    k: object
    p: object
    width: int = 0
    height: int = 0
    binning_x: int = 0
    binning_y: int = 0
    #: (x_offset, y_offset, width, height) of ``roi``, in full-resolution pixels; all zeros = full image.
    roi: tuple[int, int, int, int] = (0, 0, 0, 0)

    @classmethod
    def from_msg(cls, msg: object) -> CameraInfoFields:
        """From a ``sensor_msgs/CameraInfo`` (or anything with its attribute names)."""
        roi = msg.roi  # type: ignore[attr-defined]
        return cls(
            k=msg.k,  # type: ignore[attr-defined]
            p=msg.p,  # type: ignore[attr-defined]
            width=int(msg.width),  # type: ignore[attr-defined]
            height=int(msg.height),  # type: ignore[attr-defined]
            binning_x=int(msg.binning_x),  # type: ignore[attr-defined]
            binning_y=int(msg.binning_y),  # type: ignore[attr-defined]
            roi=(int(roi.x_offset), int(roi.y_offset), int(roi.width), int(roi.height)),
        )


@dataclass(frozen=True)
class CameraGeometry:
    """K (3x3) and P (3x4), in pixels, of a ``width`` x ``height`` image; what ``depth/camera_info`` says."""

    k: np.ndarray = field(repr=False)
    p: np.ndarray = field(repr=False)
    width: int
    height: int

    @property
    def fx(self) -> float:
        return float(self.p[0, 0])

    @property
    def fy(self) -> float:
        return float(self.p[1, 1])

    @property
    def cx(self) -> float:
        return float(self.p[0, 2])

    @property
    def cy(self) -> float:
        return float(self.p[1, 2])

    def intrinsics(self) -> Intrinsics:
        """The intrinsics points are computed with: P's, as image_geometry and depth_image_proc read them."""
        return Intrinsics(self.fx, self.fy, self.cx, self.cy, self.width, self.height)


def _matrix(values: object, rows: int, cols: int, name: str) -> np.ndarray:
    try:
        arr = np.asarray(values, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError) as exc:
        raise CameraInfoError(f"CameraInfo {name} is not {rows * cols} numbers: {exc}") from exc
    if arr.size != rows * cols:
        raise CameraInfoError(f"CameraInfo {name} must have {rows * cols} entries, got {arr.size}")
    return arr.reshape(rows, cols).copy()


def _check(k: np.ndarray, p: np.ndarray, where: str) -> None:
    for name, fx, fy in (("K", k[0, 0], k[1, 1]), ("P", p[0, 0], p[1, 1])):
        if not (np.isfinite(fx) and np.isfinite(fy)) or fx <= 0 or fy <= 0:
            raise CameraInfoError(
                f"CameraInfo {name} has focal lengths fx={fx:g}, fy={fy:g} {where}; they must be finite and > 0 "
                "(an all-zero K means the camera is not calibrated)"
            )
    for name, m in (("K", k), ("P", p)):
        big = np.abs(m) > _F32_MAX
        if not np.isfinite(m).all() or big.any():
            bad = m[~np.isfinite(m) | big].reshape(-1)[0]
            raise CameraInfoError(
                f"CameraInfo {name} holds {bad:g} {where}: every entry must be finite in float32 "
                "(depth_image_proc computes points in float)"
            )


def _reduced(info: CameraInfoFields, image_width: int, image_height: int) -> tuple[np.ndarray, np.ndarray, int, int]:
    """K, P and size after ROI and binning, as image_geometry's PinholeCameraModel computes them."""
    k = _matrix(info.k, 3, 3, "K")
    p = _matrix(info.p, 3, 4, "P")
    if not p.any():
        p[:, :3] = k  # drivers that fill only K: P = [K | 0]
    _check(k, p, "as sent")
    known = bool(info.width and info.height)
    full_w = int(info.width) if known else int(image_width)
    full_h = int(info.height) if known else int(image_height)
    x_off, y_off, roi_w, roi_h = (int(v) for v in info.roi)
    if (x_off, y_off, roi_w, roi_h) == (0, 0, 0, 0):
        roi_w, roi_h = full_w, full_h
    if min(x_off, y_off, roi_w, roi_h) < 0 or (known and (x_off + roi_w > full_w or y_off + roi_h > full_h)):
        raise CameraInfoError(
            f"CameraInfo roi (x_offset {x_off}, y_offset {y_off}, {roi_w} x {roi_h}) does not fit in its "
            f"{full_w} x {full_h} image"
        )
    bx, by = int(info.binning_x) or 1, int(info.binning_y) or 1
    if bx < 1 or by < 1:
        raise CameraInfoError(f"CameraInfo binning must be >= 0, got binning_x={bx}, binning_y={by}")
    # image_geometry: the ROI is in full-resolution pixels, so the principal point moves first; then binning
    # divides the x entries (fx, cx, Tx) by binning_x and the y entries by binning_y.
    for m in (k, p):
        m[0, 2] -= x_off
        m[1, 2] -= y_off
    k[0, [0, 2]] /= bx
    k[1, [1, 2]] /= by
    p[0, [0, 2, 3]] /= bx
    p[1, [1, 2, 3]] /= by
    reduced_w, reduced_h = (roi_w // bx, roi_h // by) if known else (int(image_width), int(image_height))
    if reduced_w < 1 or reduced_h < 1:
        raise CameraInfoError(f"CameraInfo roi {roi_w} x {roi_h} with binning {bx} x {by} leaves an empty image")
    return k, p, reduced_w, reduced_h


def check_camera_info(info: CameraInfoFields) -> None:
    """Raise :class:`CameraInfoError` if the CameraInfo is unusable for the image it describes itself."""
    k, p, w, h = _reduced(info, 1, 1)
    _check(k, p, f"after roi {info.roi} and binning {info.binning_x} x {info.binning_y} ({w} x {h})")


def camera_geometry(info: CameraInfoFields, image_width: int, image_height: int) -> CameraGeometry:
    """The K and P of an ``image_width`` x ``image_height`` image taken with this CameraInfo (see the module).

    A CameraInfo ``width`` / ``height`` of 0 (some drivers leave them unset) means "the image's size".
    Raises :class:`CameraInfoError` for malformed matrices, unusable focal lengths (as sent or after scaling
    to the image: the message says which), a ROI outside the image, or an empty reduced image.
    """
    k, p, reduced_w, reduced_h = _reduced(info, image_width, image_height)
    if (reduced_w, reduced_h) != (image_width, image_height):
        sx, sy = image_width / reduced_w, image_height / reduced_h
        with np.errstate(over="ignore", invalid="ignore"):
            for m in (k, p):
                m[0, 0] *= sx
                m[0, 2] = (m[0, 2] + 0.5) * sx - 0.5
                m[1, 1] *= sy
                m[1, 2] = (m[1, 2] + 0.5) * sy - 0.5
            p[0, 3] *= sx  # Tx = -fx' * baseline scales with fx
            p[1, 3] *= sy
    where = (
        f"at the image's {image_width} x {image_height} (CameraInfo {info.width} x {info.height}, "
        f"roi {info.roi}, binning {info.binning_x} x {info.binning_y})"
    )
    _check(k, p, where)
    return CameraGeometry(k=k, p=p, width=int(image_width), height=int(image_height))
