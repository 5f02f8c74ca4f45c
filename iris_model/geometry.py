"""Depth geometry, pure numpy: intrinsics, affine -> metric depth, depth -> points.

Frames and units: depth is planar (z along the optical axis) in meters once metric; points are in the
camera optical frame of REP 103 (x right, y down, z forward), in meters. Pixel (u, v) = (column, row),
integer coordinates at pixel centers, as in ROS CameraInfo and depth_image_proc.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import optimize, stats

from .errors import InputError
from .metrics import least_squares_scale_shift


@dataclass(frozen=True)
class Intrinsics:
    """Pinhole intrinsics in pixels for an image of ``width`` x ``height``."""

    fx: float
    fy: float
    cx: float
    cy: float
    width: int
    height: int

    def __post_init__(self) -> None:
        values = (self.fx, self.fy, self.cx, self.cy)
        if not all(math.isfinite(v) for v in values):
            raise InputError(f"intrinsics must be finite, got fx={self.fx} fy={self.fy} cx={self.cx} cy={self.cy}")
        if self.fx <= 0 or self.fy <= 0:
            raise InputError(f"focal lengths must be > 0, got fx={self.fx} fy={self.fy}")
        if self.width < 1 or self.height < 1:
            raise InputError(f"image size must be positive, got {self.width} x {self.height}")

    @classmethod
    def from_k(cls, k: object, width: int, height: int) -> Intrinsics:
        """From a row-major 3x3 K (CameraInfo.k: 9 numbers)."""
        arr = np.asarray(k, dtype=np.float64).reshape(-1)
        if arr.size != 9:
            raise InputError(f"K must have 9 entries, got {arr.size}")
        return cls(float(arr[0]), float(arr[4]), float(arr[2]), float(arr[5]), int(width), int(height))

    @classmethod
    def from_fov(cls, width: int, height: int, fov_deg: float, axis: str = "horizontal") -> Intrinsics:
        """Square pixels, principal point at the image center, ``fov_deg`` across the given axis."""
        if not 0 < fov_deg < 180:
            raise InputError(f"field of view must be in (0, 180) degrees, got {fov_deg}")
        span = width if axis == "horizontal" else height
        f = (span / 2.0) / math.tan(math.radians(fov_deg) / 2.0)
        return cls(f, f, (width - 1) / 2.0, (height - 1) / 2.0, width, height)

    def scaled(self, width: int, height: int) -> Intrinsics:
        """The intrinsics of the same camera after resizing the image to ``width`` x ``height``.

        Pixel centers map as u' = (u + 0.5) * sx - 0.5, so the principal point moves with them.
        """
        sx, sy = width / self.width, height / self.height
        return Intrinsics(
            self.fx * sx, self.fy * sy, (self.cx + 0.5) * sx - 0.5, (self.cy + 0.5) * sy - 0.5, width, height
        )

    def k(self) -> np.ndarray:
        return np.array([[self.fx, 0, self.cx], [0, self.fy, self.cy], [0, 0, 1]], dtype=np.float64)


@dataclass(frozen=True)
class ScaleShift:
    """``metric = scale * relative + shift`` (in the space it was fitted in), with the inlier mask used."""

    scale: float
    shift: float
    inliers: np.ndarray | None = None


def affine_to_metric(depth: np.ndarray, scale: float, shift: float) -> np.ndarray:
    """Affine-invariant depth to meters with a known scale and shift: ``scale * depth + shift``."""
    if not (math.isfinite(scale) and math.isfinite(shift)) or scale <= 0:
        raise InputError(f"scale must be finite and > 0 and shift finite, got scale={scale} shift={shift}")
    return (np.asarray(depth, dtype=np.float32) * np.float32(scale) + np.float32(shift)).astype(np.float32)


def fit_scale_shift(
    pred: np.ndarray,
    target: np.ndarray,
    mask: np.ndarray | None = None,
    space: str = "depth",
    min_samples: int = 10,
    outlier_sigma: float = 3.0,
) -> ScaleShift:
    """Robustly fit ``target ~ scale * pred + shift`` over the valid samples, rejecting outliers.

    ``space="depth"``: ``pred`` is affine-invariant depth and ``target`` metric depth (meters).
    ``space="inverse_depth"``: ``pred`` is affine-invariant inverse depth (disparity-like) and the fit is
    ``1 / target ~ scale * pred + shift``.

    Sparse samples (projected LiDAR, ToF) carry outliers: mixed pixels, reflections, misregistration. The
    fit is Siegel's repeated-median line (50% breakdown) on a subsample as the start, then a Cauchy-loss
    least squares (scipy), then plain least squares on the inliers (residual < ``outlier_sigma`` robust
    sigmas). Raises :class:`InputError` with fewer than ``min_samples`` valid samples.
    """
    pred = np.asarray(pred, dtype=np.float64)
    target = np.asarray(target, dtype=np.float64)
    if pred.shape != target.shape:
        raise InputError(f"pred {pred.shape} and target {target.shape} differ in shape")
    valid = np.isfinite(pred) & np.isfinite(target) & (target > 0)
    if mask is not None:
        valid &= np.asarray(mask, dtype=bool)
    if space == "inverse_depth":
        y_all = np.where(valid, 1.0 / np.where(valid, target, 1.0), np.nan)
    elif space == "depth":
        y_all = target
    else:
        raise InputError(f"space must be 'depth' or 'inverse_depth', got {space!r}")
    x, y = pred[valid], y_all[valid]
    if x.size < min_samples:
        raise InputError(f"need at least {min_samples} valid samples to fit scale and shift, got {x.size}")
    if np.ptp(x) < 1e-9:
        raise InputError("the prediction is constant over the samples: scale is undetermined")

    sub = np.linspace(0, x.size - 1, num=min(x.size, 300)).astype(int)
    slope, intercept = stats.siegelslopes(y[sub], x[sub])
    spread = np.median(np.abs(y - (slope * x + intercept))) * 1.4826 + 1e-9
    res = optimize.least_squares(
        lambda p: p[0] * x + p[1] - y, x0=[slope, intercept], loss="cauchy", f_scale=spread
    )
    s, t = res.x
    residual = np.abs(s * x + t - y)
    sigma = np.median(residual) * 1.4826 + 1e-9
    inl = residual < outlier_sigma * sigma
    if inl.sum() >= 2:
        s, t = least_squares_scale_shift(x, y, inl)
    inliers = np.zeros(pred.shape, dtype=bool)
    inliers[valid] = inl
    return ScaleShift(float(s), float(t), inliers)


def align_to_sparse(
    pred: np.ndarray, sparse: np.ndarray, mask: np.ndarray | None = None, space: str = "depth"
) -> tuple[np.ndarray, ScaleShift]:
    """Metric depth (meters) from affine-invariant ``pred`` and sparse metric samples (0 / NaN = none).

    Pixels whose aligned depth is not positive come out NaN (REP 117: invalid).
    """
    sparse = np.asarray(sparse, dtype=np.float64)
    sample_mask = np.isfinite(sparse) & (sparse > 0)
    if mask is not None:
        sample_mask &= np.asarray(mask, dtype=bool)
    fit = fit_scale_shift(pred, sparse, sample_mask, space=space)
    aligned = fit.scale * np.asarray(pred, dtype=np.float64) + fit.shift
    if space == "inverse_depth":
        with np.errstate(divide="ignore", invalid="ignore"):
            aligned = np.where(aligned > 0, 1.0 / aligned, np.nan)
    aligned = np.where(aligned > 0, aligned, np.nan)
    return aligned.astype(np.float32), fit


def depth_to_points(
    depth: np.ndarray, intrinsics: Intrinsics, max_range: float = math.inf, stride: int = 1
) -> np.ndarray:
    """Back-project planar depth (meters) to an organized ``[H', W', 3]`` float32 XYZ cloud.

    X = (u - cx) z / fx, Y = (v - cy) z / fy, Z = z in the camera optical frame (x right, y down,
    z forward). Pixels with non-finite or non-positive depth, or depth beyond ``max_range`` (meters,
    along z), are NaN. ``stride`` keeps every stride-th row and column (H' = ceil(H / stride)).
    """
    depth = np.asarray(depth, dtype=np.float32)
    if depth.ndim != 2:
        raise InputError(f"depth must be 2-D, got shape {depth.shape}")
    if depth.shape != (intrinsics.height, intrinsics.width):
        raise InputError(
            f"depth is {depth.shape[1]} x {depth.shape[0]} but intrinsics are for "
            f"{intrinsics.width} x {intrinsics.height}; use Intrinsics.scaled()"
        )
    if not isinstance(stride, int) or stride < 1:
        raise InputError(f"stride must be an int >= 1, got {stride!r}")
    z = depth[::stride, ::stride]
    u = np.arange(0, depth.shape[1], stride, dtype=np.float32)
    v = np.arange(0, depth.shape[0], stride, dtype=np.float32)
    invalid = ~np.isfinite(z) | (z <= 0) | (z > max_range)
    z = np.where(invalid, np.float32(np.nan), z)
    points = np.empty((*z.shape, 3), dtype=np.float32)
    points[..., 0] = (u[None, :] - np.float32(intrinsics.cx)) * z / np.float32(intrinsics.fx)
    points[..., 1] = (v[:, None] - np.float32(intrinsics.cy)) * z / np.float32(intrinsics.fy)
    points[..., 2] = z
    return points
