"""The depth node's per-frame work, without ROS: image + description + intrinsics + sparse depth -> outputs.

:class:`FrameProcessor` is what the node calls for each frame; it knows nothing of topics, messages or
threads, so every step is testable with plain arrays. Per frame:

1. **depth step**: the model's relative depth in [0, 1] (larger = farther), either from one plain pipeline
   call (``temporal_mode: off``: fresh noise from ``seed`` every frame, per-frame normalization) or from a
   :class:`~iris_model.streaming.DepthStream` (``temporal_mode: stream``: warm-started from the previous
   frame, on a scale kept stable between frames; the stream state lives here and resets on a description,
   parameter or seed change, a stamp gap or a scene cut). A model output holding NaN or inf raises
   :class:`~iris_model.errors.NonFiniteOutputError`: it is never turned into depth.
2. **depth mode**: ``relative`` as is; ``fixed_scale``: meters = ``scale`` * d + ``shift``; ``sparse_aligned``:
   a robust scale/shift fit to the sparse samples (in ``stream`` mode filtered over time by
   :class:`~iris_model.streaming.ScaleShiftFilter`, outlier fits rejected). Metric depth is NaN where not
   positive (REP 117). A frame that cannot be made metric raises :class:`FrameRejected`. With
   ``temporal_mode: pose`` the metric depth is then fused with the previous output moved by the camera's
   known motion (:class:`~iris_model.pose_fusion.PoseFusion`; the pose at the image's stamp and the depth
   image's intrinsics); a frame without either is published unfused and counted.
3. **outputs, each only when asked for**: the turbo-colorized depth (rgb8) and the organized point cloud
   (XYZ or XYZRGB, packed for ``sensor_msgs/PointCloud2``), back-projected with the depth image's P as
   depth_image_proc does (:mod:`iris_ros.camera_info`).

Units: depth in meters along the optical axis in the metric modes, relative (unitless, NOT meters) in
``relative`` mode; points in the same units, camera optical frame (x right, y down, z forward).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from iris_model.colorize import colorize_depth
from iris_model.errors import InputError, IrisError, NonFiniteOutputError
from iris_model.geometry import affine_to_metric, fit_scale_shift
from iris_model.pose_fusion import PoseFusion
from iris_model.streaming import SPARSE_FIT_SCALE_RELAX, DepthStream, ScaleShiftFilter, StreamConfig

from .camera_info import CameraGeometry
from .camera_pose import StampedPose
from .cloud_packing import PackedCloud, pack_depth_cloud
from .config import NodeConfig
from .image_codec import as_rgb8, resample_sparse

#: Sparse depth for a frame: the array (meters, NaN or 0 = no sample), ``None``, or a zero-argument callable
#: returning either, called only after the model ran (so waiting for a late sparse message overlaps the model).
SparseSource = np.ndarray | Callable[[], "np.ndarray | None"] | None
#: The camera's pose at the frame's stamp (``temporal_mode: pose``): a :class:`StampedPose`, ``None``, or a
#: zero-argument callable returning either, called after the model ran (a pose can still arrive meanwhile).
PoseSource = StampedPose | Callable[[], "StampedPose | None"] | None
#: The depth image's intrinsics for pose fusion: a :class:`CameraGeometry`, ``None``, or a callable returning
#: either (called after the model ran, like the others).
CameraSource = CameraGeometry | Callable[[], "CameraGeometry | None"] | None


def stream_config_for(depth_mode: str) -> StreamConfig:
    """The :class:`~iris_model.streaming.StreamConfig` of ``temporal_mode: stream`` in ``depth_mode``.

    In ``sparse_aligned`` the per-frame sparse fits set the metric scale and :class:`ScaleShiftFilter` smooths
    them, so the stream keeps its relative scale steady (:data:`~iris_model.streaming.SPARSE_FIT_SCALE_RELAX`);
    elsewhere the stream's scale is the published one and follows the model's own more closely (the default).
    """
    return StreamConfig(scale_relax=SPARSE_FIT_SCALE_RELAX) if depth_mode == "sparse_aligned" else StreamConfig()


class FrameRejected(IrisError):  # noqa: N818 - a frame that is not published, not a failure of the code
    """The frame is not published (no sparse depth to align to, a failed fit); counted under ``reason``."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass
class FrameResult:
    """What one frame produced. Arrays are ``H x W`` at the input image's size.

    Attributes:
        depth: float32, meters (metric modes, NaN = invalid) or relative depth (``relative`` mode).
        colorized: ``H x W x 3`` uint8 turbo image when asked for, else ``None``.
        cloud: the packed organized cloud when asked for and intrinsics were given, else ``None``.
        scale, shift: metric = scale * relative + shift as used for this frame (``None`` in relative mode).
        reset_reason: why the temporal stream restarted at this frame (``None``: continued, or mode off).
        unfused_reason: ``temporal_mode: pose``: why this frame was published without pose fusion
            (``no_pose``, ``no_camera_info``; ``None``: fused, or another mode).
        times: seconds per step (``model``, ``depth_mode``, ``colorize``, ``points``).
    """

    depth: np.ndarray
    colorized: np.ndarray | None = None
    cloud: PackedCloud | None = None
    scale: float | None = None
    shift: float | None = None
    reset_reason: str | None = None
    unfused_reason: str | None = None
    times: dict[str, float] = field(default_factory=dict)


def display_range(depth: np.ndarray) -> tuple[float, float] | None:
    """The 2nd..98th percentile of the valid depth (a 1-in-16 subsample is enough), or ``None`` if none is."""
    sample = depth[::4, ::4]
    sample = sample[np.isfinite(sample)]
    if not sample.size:
        return None
    lo, hi = np.percentile(sample, [2.0, 98.0])
    return float(lo), float(hi)


def colorize_for_display(depth: np.ndarray, value_range: tuple[float, float] | None = None) -> np.ndarray:
    """Turbo rgb8 over ``value_range`` (default: :func:`display_range` of this depth); invalid pixels black."""
    value_range = value_range or display_range(depth)
    if value_range is None:
        return np.zeros((*depth.shape, 3), dtype=np.uint8)
    return colorize_depth(depth, *value_range)


#: ``temporal_mode`` stream and pose: per frame, the colorized range moves this fraction of the way to the frame's own.
COLOR_RANGE_SMOOTHING = 0.1


class FrameProcessor:
    """Per-frame depth, colorized depth and points from a pipeline (ROS-free; the node's worker calls it).

    ``pipeline`` is an :class:`~iris_model.IrisDepthPipeline` (or anything called the same way). Not
    thread-safe: one worker calls it. The temporal state (``temporal_mode`` stream and pose) lives here and
    starts afresh when the mode is switched on.
    """

    def __init__(self, pipeline: Any, device: Any = "cpu") -> None:
        self.pipeline = pipeline
        self.device = device
        #: ``temporal_mode: stream`` state: the stream (previous latent, depth, scale) and the sparse-fit filter.
        self.stream: DepthStream | None = None
        self.sparse_filter = ScaleShiftFilter()
        self.sparse_fits_rejected = 0
        #: ``temporal_mode: pose`` state: the fusion, the fixed frame its poses are in, the settings its
        #: depth was made with, frames fused and not (by reason), whether the last frame was in that mode.
        self.pose_fusion = PoseFusion()
        self._pose_frame: str | None = None
        self._pose_settings: tuple | None = None
        self.pose_frames_fused = 0
        self.pose_frames_unfused: dict[str, int] = {}
        self._pose_active = False
        self._smoothed_range: tuple[float, float] | None = None

    # ------------------------------------------------------------------ the depth step
    def _steps(self, cfg: NodeConfig) -> int | None:
        return cfg.num_steps or None

    def _resolution(self, cfg: NodeConfig) -> int | None:
        return None if cfg.processing_resolution < 0 else cfg.processing_resolution

    def predict(
        self,
        image: np.ndarray,
        description: str,
        stamp_s: float,
        cfg: NodeConfig,
        cancel: Callable[[], bool] | None = None,
    ) -> tuple[np.ndarray, str | None]:
        """The model's relative depth for one frame (``H x W`` float32) and the stream's reset reason.

        Raises :class:`NonFiniteOutputError` when the model's output holds NaN or inf.
        """
        import torch

        if cfg.temporal_mode == "stream":
            return self._predict_stream(image, description, stamp_s, cfg, cancel)
        self.stream = None  # switching stream on again starts afresh
        out = self.pipeline(
            image,
            text=description or None,
            num_inference_steps=self._steps(cfg),
            ensemble_size=cfg.ensemble_size,
            processing_resolution=self._resolution(cfg),
            generator=torch.Generator(device=self.device).manual_seed(cfg.seed),
            cancel=cancel,
        )
        return _finite(np.asarray(out.depth[0], dtype=np.float32)), None

    def _predict_stream(
        self,
        image: np.ndarray,
        description: str,
        stamp_s: float,
        cfg: NodeConfig,
        cancel: Callable[[], bool] | None,
    ) -> tuple[np.ndarray, str | None]:
        """The stream's depth (relative, on its stable scale) and why it reset before this frame, if it did."""
        stream_config = stream_config_for(cfg.depth_mode)
        if self.stream is None or self.stream.seed != cfg.seed:
            restarted = self.stream is not None
            self.stream = DepthStream(self.pipeline, stream_config, seed=cfg.seed)
            if restarted:
                self.stream.reset("parameters")
        # A depth_mode switch changes only how the scale relaxes from here on: the state stays valid.
        self.stream.config = stream_config
        frame = self.stream(
            as_rgb8(image),
            description or None,
            stamp_s,
            num_inference_steps=cfg.num_steps or int(self.pipeline.default_denoising_steps),
            ensemble_size=cfg.ensemble_size,
            processing_resolution=self._resolution(cfg),
            cancel=cancel,
        )
        if frame.reset_reason is not None:
            self.sparse_filter.reset()  # a new relative scale: earlier fits no longer apply
        return _finite(np.asarray(frame.depth, dtype=np.float32)), frame.reset_reason

    # ------------------------------------------------------------------ depth mode
    def to_output_depth(
        self, relative: np.ndarray, cfg: NodeConfig, sparse: SparseSource, stamp_s: float
    ) -> tuple[np.ndarray, float | None, float | None]:
        """The depth to publish, and the scale/shift used: relative as is, or meters (NaN where not > 0)."""
        if cfg.depth_mode == "relative":
            return relative, None, None
        if cfg.depth_mode == "fixed_scale":
            scale, shift = cfg.scale, cfg.shift
        else:
            scale, shift = self._fit_sparse(relative, sparse() if callable(sparse) else sparse, cfg, stamp_s)
        depth = affine_to_metric(relative, scale, shift)
        depth[~(depth > 0)] = np.nan
        return depth, scale, shift

    def _fit_sparse(
        self, relative: np.ndarray, sparse: np.ndarray | None, cfg: NodeConfig, stamp_s: float
    ) -> tuple[float, float]:
        if sparse is None:
            raise FrameRejected(
                "no_sparse_depth",
                f"no sparse depth within {cfg.sparse_tolerance_s:g} s of the frame's stamp (depth_mode=sparse_aligned)",
            )
        sparse = resample_sparse(sparse, *relative.shape)
        valid = np.isfinite(sparse) & (sparse > 0)
        try:
            fit = fit_scale_shift(relative, sparse, valid)
        except InputError as exc:
            raise FrameRejected("sparse_fit_failed", f"cannot align to sparse depth: {exc}") from exc
        if not (math.isfinite(fit.scale) and math.isfinite(fit.shift)) or fit.scale <= 0:
            raise FrameRejected(
                "sparse_fit_failed", f"cannot align to sparse depth: fitted scale {fit.scale:g} is not > 0"
            )
        if cfg.temporal_mode != "stream":
            self.sparse_filter.reset()
            return fit.scale, fit.shift
        # Stream: the fits filtered over time; an outlier fit (a misregistered scan) is replaced by the filter's.
        scale, shift, accepted = self.sparse_filter.update(fit.scale, fit.shift, stamp_s)
        self.sparse_fits_rejected += not accepted
        return scale, shift

    def fuse_with_pose(
        self, depth: np.ndarray, camera: CameraGeometry | None, pose: StampedPose | None, stamp_s: float
    ) -> tuple[np.ndarray, str | None]:
        """``temporal_mode: pose``: the metric ``depth`` fused along the camera's motion, and why not if not.

        ``camera`` gives the depth image's intrinsics (P's, as the points use); ``pose`` the optical frame's
        pose at the frame's stamp. Without either the frame is returned unfused (``no_camera_info``,
        ``no_pose``); the next frame with both is fused with the last one fused, as long as the stamp gap stays
        within the fusion's ``max_gap_s`` (the poses make the gap exact). A frame that starts the filter afresh
        (the first, after a gap, a new image size or intrinsics, another fixed frame) is ``restart``.
        """
        reason = "no_camera_info" if camera is None else "no_pose" if pose is None else None
        if reason is None:
            if pose.frame_id != self._pose_frame:
                self.pose_fusion.reset()
                self._pose_frame = pose.frame_id
            depth = self.pose_fusion(depth, camera.intrinsics().k(), pose.matrix, stamp_s)  # NaN stays NaN
            reason = None if self.pose_fusion.continued else "restart"
        else:
            self.pose_fusion.fused_fraction = 0.0
        if reason is None:
            self.pose_frames_fused += 1
        else:
            self.pose_frames_unfused[reason] = self.pose_frames_unfused.get(reason, 0) + 1
        return depth, reason

    def _color_range(self, result: FrameResult, cfg: NodeConfig) -> tuple[float, float] | None:
        """The colorized range: the frame's own (off), or smoothed over time so colors stay put too."""
        own = display_range(result.depth)
        if cfg.temporal_mode == "off" or own is None:
            self._smoothed_range = None
            return own
        if self._smoothed_range is None or result.reset_reason is not None:
            self._smoothed_range = own
        else:
            w = COLOR_RANGE_SMOOTHING
            lo, hi = self._smoothed_range
            self._smoothed_range = (lo + w * (own[0] - lo), hi + w * (own[1] - hi))
        return self._smoothed_range

    # ------------------------------------------------------------------ one frame
    def depth(
        self,
        image: np.ndarray,
        description: str,
        stamp_s: float,
        sparse: SparseSource,
        cfg: NodeConfig,
        cancel: Callable[[], bool] | None = None,
        *,
        camera: CameraSource = None,
        pose: PoseSource = None,
    ) -> FrameResult:
        """Steps 1 and 2: the depth to publish (see :meth:`__call__` for the arguments)."""
        t0 = time.perf_counter()
        relative, reset_reason = self.predict(image, description, stamp_s, cfg, cancel)
        t1 = time.perf_counter()
        depth, scale, shift = self.to_output_depth(relative, cfg, sparse, stamp_s)
        t2 = time.perf_counter()
        times = {"model": t1 - t0, "depth_mode": t2 - t1}
        unfused = None
        self._pose_active = cfg.temporal_mode == "pose"
        if self._pose_active:
            # Depth made with other settings is not fused with the earlier frames' (as the stream resets).
            settings = (
                description,
                cfg.depth_mode,
                cfg.scale,
                cfg.shift,
                cfg.seed,
                cfg.num_steps,
                cfg.ensemble_size,
                cfg.processing_resolution,
            )
            if settings != self._pose_settings:
                self.pose_fusion.reset()
                self._pose_settings = settings
            geometry = camera() if callable(camera) else camera
            depth, unfused = self.fuse_with_pose(depth, geometry, pose() if callable(pose) else pose, stamp_s)
            times["pose_fusion"] = time.perf_counter() - t2
        else:
            self.pose_fusion.reset()
            self._pose_settings = None
        return FrameResult(
            depth=depth, scale=scale, shift=shift, reset_reason=reset_reason, unfused_reason=unfused, times=times
        )

    def add_outputs(
        self,
        result: FrameResult,
        image: np.ndarray,
        camera: CameraGeometry | None,
        cfg: NodeConfig,
        *,
        colorized: bool = True,
        points: bool = True,
    ) -> FrameResult:
        """Step 3: the colorized depth and the cloud, each only when asked for (points need ``camera``)."""
        t0 = time.perf_counter()
        if colorized:
            result.colorized = colorize_for_display(result.depth, self._color_range(result, cfg))
            result.times["colorize"] = time.perf_counter() - t0
        t1 = time.perf_counter()
        if points and camera is not None:
            result.cloud = pack_depth_cloud(
                result.depth,
                camera.fx,
                camera.fy,
                camera.cx,
                camera.cy,
                rgb=as_rgb8(image) if cfg.cloud_rgb else None,
                stride=cfg.cloud_stride,
                max_range=cfg.max_range or math.inf,
            )
            result.times["points"] = time.perf_counter() - t1
        return result

    def __call__(
        self,
        image: np.ndarray,
        description: str,
        stamp_s: float,
        camera: CameraGeometry | None,
        sparse: SparseSource,
        cfg: NodeConfig,
        *,
        colorized: bool = True,
        points: bool = True,
        cancel: Callable[[], bool] | None = None,
        pose: PoseSource = None,
    ) -> FrameResult:
        """Process one frame (:meth:`depth`, then :meth:`add_outputs`).

        Args:
            image: the camera image as decoded (``H x W x 3`` or ``H x W``, uint8 or uint16).
            description: the scene description in use ("" = none).
            stamp_s: the image's stamp in seconds (the temporal stream resets on gaps).
            camera: the depth image's K and P (:func:`~iris_ros.camera_info.camera_geometry`), or ``None``:
                then no points.
            sparse: sparse metric depth for ``sparse_aligned`` mode (see :data:`SparseSource`).
            cfg: the settings this frame runs with.
            colorized, points: compute these outputs (skip what nobody reads).
            cancel: passed to the pipeline, checked between denoising steps.
            pose: the camera's pose at ``stamp_s`` for ``temporal_mode: pose`` (see :data:`PoseSource`).

        Raises :class:`NonFiniteOutputError` (never published), :class:`FrameRejected` (not published,
        with a reason) and :class:`~iris_model.errors.InputError` for input the model refuses.
        """
        result = self.depth(image, description, stamp_s, sparse, cfg, cancel, camera=camera, pose=pose)
        return self.add_outputs(result, image, camera, cfg, colorized=colorized, points=points)

    def stats(self) -> dict[str, str]:
        """Values for /diagnostics: the temporal stream's state and scale in use (``stream_*``), when streaming;
        the pose fusion's counts and the share of pixels fused in the last frame (``pose_*``), in pose mode."""
        out: dict[str, str] = {}
        if self.stream is not None:
            stream = self.stream.stats().items()
            out = {f"stream_{k}": f"{v:.4g}" if isinstance(v, float) else str(v) for k, v in stream}
            out["stream_sparse_fits_rejected"] = str(self.sparse_fits_rejected)
        if self._pose_active:
            out["pose_frames_fused"] = str(self.pose_frames_fused)
            out.update({f"pose_frames_unfused_{k}": str(v) for k, v in sorted(self.pose_frames_unfused.items())})
            out["pose_fused_fraction"] = f"{self.pose_fusion.fused_fraction:.3f}"
            if self._pose_frame is not None:
                out["pose_fixed_frame"] = self._pose_frame
        return out


def _finite(depth: np.ndarray) -> np.ndarray:
    """``depth`` if every value is finite, else :class:`NonFiniteOutputError` (never published)."""
    finite = np.isfinite(depth)
    if not finite.all():
        bad = int(depth.size - np.count_nonzero(finite))
        raise NonFiniteOutputError(
            f"the model output holds {bad} non-finite values (NaN/inf) of {depth.size}: frame not published "
            "(corrupt weights, or half precision overflowing)"
        )
    return depth
