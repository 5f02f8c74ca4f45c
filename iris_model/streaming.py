"""Streaming depth for camera streams: warm-started denoising and a temporally stable output scale.

:class:`DepthStream` wraps an :class:`~iris_model.pipeline.IrisDepthPipeline` and keeps, between frames of one
camera stream, the previous frame's final depth latent, its output depth and the affine mapping in use:

- **Warm start** (``StreamConfig.warm_start``) of each frame's depth latent from the previous one:
  ``"blend"`` (the default) is diffusers' Marigold video recipe: the initial latent is
  ``(1 - w) * fixed noise + w * previous latent`` (w = 0.1) and the full schedule runs. ``"renoise"`` noises
  the previous latent with the scheduler's own ``add_noise`` to an intermediate trailing timestep and runs only
  the remaining steps: ``num_inference_steps`` UNet calls per frame on a schedule
  ``1 / strength`` times as long, so a frame costs k steps but ends on the fine end of a 2k-step schedule
  (at ``strength = 0.5``); it is not the default because the embedded model is most accurate at one step from
  t = T - 1 and its mid-schedule steps are weaker (docs/streaming.md). ``"none"``: every frame starts from the
  same fixed noise.
- **A stable output scale**: the pipeline normalizes each frame to its own [0, 1] range, so the scale jumps when
  the nearest or farthest thing in view changes. Instead each frame's raw depth is aligned to the previous
  output with a robust affine fit on the pixels that agree, and the mapping relaxes toward the model's own
  scale (a low-pass filter of the per-frame scales); the first frame after a reset keeps the model's [0, 1].
- **Temporal fusion**: the previous output, moved by the image motion (dense optical flow between the two images,
  OpenCV's DIS; or a global shift by phase correlation), is blended into the pixels whose aligned depth agrees with
  it (an exponential filter per pixel), which averages out the model's frame-to-frame wobble. Where the
  (motion-compensated) image did not change, the previous output is held harder (``static_smoothing``): the model's
  prediction of unchanged surroundings changes shape when something else in view moves, which no affine alignment
  can undo.
- **Resets** before a frame whose description, steps, ensemble size, processing resolution or image size
  differs from the previous frame's, after a stamp gap longer than ``max_gap_s`` or a stamp that goes
  backwards, and on a scene cut (a large change of the image, or too few pixels whose depth agrees).

:class:`ScaleShiftFilter` filters the scale and shift of per-frame sparse-depth fits (``sparse_aligned``) over
time and rejects outlier fits.

Depth here is relative (unitless, larger is farther) until a caller maps it to meters; stamps are seconds.
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import cv2
import numpy as np
import torch
from diffusers.utils.torch_utils import randn_tensor

from .errors import InputError, NonFiniteOutputError
from .pipeline import IrisDepthPipeline
from .schedulers import MAX_STEPS
from .text import normalize_text

WarmStart = Literal["renoise", "blend", "none"]
WARM_STARTS: tuple[str, ...] = ("renoise", "blend", "none")
MotionCompensation = Literal["flow", "shift", "none"]
MOTION_COMPENSATIONS: tuple[str, ...] = ("flow", "shift", "none")
RESET_REASONS: tuple[str, ...] = ("first", "description", "scene_cut", "gap", "parameters", "manual")


#: ``StreamConfig.scale_relax`` for a stream whose output is made metric by per-frame sparse-depth fits filtered
#: over time (:class:`ScaleShiftFilter`; the node's ``sparse_aligned``): there the fits set the scale, and a
#: steadier relative scale under them gave a lower TAE on validation video than the default (docs/streaming.md).
SPARSE_FIT_SCALE_RELAX = 0.05


def _check_range(name: str, value: float, lo: float, hi: float, lo_open: bool = False, hi_open: bool = False) -> None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if ok:
        ok = (value > lo if lo_open else value >= lo) and (value < hi if hi_open else value <= hi)
    if not ok:
        left, right = "(" if lo_open else "[", ")" if hi_open else "]"
        raise InputError(f"{name} must be in {left}{lo}, {hi}{right}, got {value!r}")


@dataclass(frozen=True)
class StreamConfig:
    """Settings of a :class:`DepthStream` (validated; :class:`InputError` on bad values).

    Attributes:
        warm_start: ``"blend"`` (diffusers' recipe: ``(1 - blend_weight) * fixed noise + blend_weight *
            previous latent``, full schedule), ``"renoise"`` (partial re-noising of the previous latent) or
            ``"none"``.
        strength: ``renoise`` only: the fraction of the schedule re-run from the previous latent. A frame at
            k steps runs the last k steps of a ``round(k / strength)``-step schedule (at most 50).
        blend_weight: ``blend`` only: the weight of the previous latent (diffusers uses 0.1).
        scale_relax: per frame, the mapping moves this fraction of the way from the fit to the previous
            output back toward the model's own per-frame [0, 1] scale (identity). The stream's scale is then a
            low-pass filter of the per-frame scales: a jump is spread over about ``1 / scale_relax`` frames
            instead of one, and drift of the chained alignments (e.g. when moving forward, where pixels do
            not keep their depth) stays bounded. 0 = follow the previous output exactly.
        depth_smoothing: weight in [0, 1) of the (motion-compensated) previous output in each agreeing pixel
            of this frame's output where the image changed: ``depth = aligned + w * (previous - aligned)``. With
            fusion, ``depth = scale * raw + shift`` holds before the fusion only; no fusion: this and
            ``static_smoothing`` 0.
        fuse_tolerance: a pixel is fused when the aligned depth and the previous output differ by less than
            this fraction of the previous output's range (new objects and disocclusions are not).
        agree_tolerance: a pixel agrees with the previous output when the fitted residual is below this
            fraction of the previous output's depth range.
        min_agree_fraction: fewer agreeing pixels than this fraction means the depth changed too much to
            align: the frame counts as a scene cut and keeps its own [0, 1] scale.
        cut_threshold: a scene cut when the mean absolute difference of the mean-removed grey thumbnails of
            two consecutive images (values in [0, 1]) exceeds this.
        max_gap_s: a stamp gap longer than this (seconds) resets the stream.
        fit_grid: the alignment is fitted on about this many columns x rows of pixels (strided samples).
        motion_compensation: how the previous output is moved into this frame's view before aligning and
            fusing, so that each pixel is compared with what it saw in the previous frame while the camera
            moves: ``"flow"`` (the default) samples it along the dense optical flow between the two grey
            images about 128 pixels wide (:func:`image_flow`), which follows a walk forward (the image
            expands), an orbit and parallax as well as a pan; ``"shift"`` moves it by one global translation
            (:func:`image_shift`, phase correlation), which follows a pan only; ``"none"`` leaves it in place.
        static_smoothing: the fusion's weight in [0, 1) in the agreeing pixels whose image did not change.
            A static room with a ball moving in front of it: the model's depth of the room drifts as the ball
            comes nearer; holding those pixels keeps the stream's scale steadier than the per-frame one.
        static_tolerance: a pixel's image did not change when its grey value (in [0, 1], on the motion
            estimation's strided grid, after the motion compensation) moved by at most this.

    The fusion and scale defaults were chosen on validation video (``benchmarks/streaming.py --split val``,
    docs/streaming.md).
    """

    warm_start: WarmStart = "blend"
    strength: float = 0.5
    blend_weight: float = 0.1
    scale_relax: float = 0.5
    depth_smoothing: float = 0.6
    fuse_tolerance: float = 0.3
    agree_tolerance: float = 0.05
    min_agree_fraction: float = 0.3
    cut_threshold: float = 0.15
    max_gap_s: float = 1.0
    fit_grid: tuple[int, int] = (32, 24)
    motion_compensation: MotionCompensation = "flow"
    static_smoothing: float = 0.75
    static_tolerance: float = 0.02

    def __post_init__(self) -> None:
        if self.warm_start not in WARM_STARTS:
            raise InputError(f"warm_start must be one of {WARM_STARTS}, got {self.warm_start!r}")
        if self.motion_compensation not in MOTION_COMPENSATIONS:
            raise InputError(
                f"motion_compensation must be one of {MOTION_COMPENSATIONS}, got {self.motion_compensation!r}")
        _check_range("strength", self.strength, 0.0, 1.0, lo_open=True)
        _check_range("blend_weight", self.blend_weight, 0.0, 1.0)
        _check_range("scale_relax", self.scale_relax, 0.0, 1.0, hi_open=True)
        _check_range("depth_smoothing", self.depth_smoothing, 0.0, 1.0, hi_open=True)
        _check_range("static_smoothing", self.static_smoothing, 0.0, 1.0, hi_open=True)
        _check_range("static_tolerance", self.static_tolerance, 0.0, 1.0)
        _check_range("fuse_tolerance", self.fuse_tolerance, 0.0, math.inf, lo_open=True)
        _check_range("agree_tolerance", self.agree_tolerance, 0.0, 1.0, lo_open=True)
        _check_range("min_agree_fraction", self.min_agree_fraction, 0.0, 1.0)
        _check_range("cut_threshold", self.cut_threshold, 0.0, 1.0, lo_open=True)
        _check_range("max_gap_s", self.max_gap_s, 0.0, math.inf, lo_open=True)
        grid = self.fit_grid
        if not (isinstance(grid, tuple) and len(grid) == 2 and all(isinstance(g, int) and g >= 4 for g in grid)):
            raise InputError(f"fit_grid must be two ints >= 4 (columns, rows), got {grid!r}")


@dataclass
class StreamFrame:
    """One frame of a :class:`DepthStream`.

    Attributes:
        depth: ``[H, W]`` float32 relative depth on the stream's stable scale, larger is farther (not
            normalized per frame; the first frame after a reset is the model's own [0, 1]).
        raw: ``[H, W]`` float32, the pipeline's per-frame [0, 1] output for this frame.
        scale, shift: ``depth = scale * raw + shift`` (before the temporal fusion of agreeing pixels, exactly
            so with ``depth_smoothing = 0``).
        reset_reason: why the state was reset before this frame (one of :data:`RESET_REASONS`), or ``None``
            when the frame continued the stream.
    """

    depth: np.ndarray
    raw: np.ndarray
    scale: float
    shift: float
    reset_reason: str | None


@dataclass
class _State:
    key: tuple[Any, ...]
    text: str
    stamp_s: float
    thumb: np.ndarray
    grey: np.ndarray
    latent: torch.Tensor
    depth: np.ndarray
    scale: float
    shift: float


@dataclass
class _Counters:
    frames: int = 0
    frames_since_reset: int = 0
    resets: dict[str, int] = field(default_factory=lambda: dict.fromkeys(RESET_REASONS, 0))
    agree_fraction: float = 1.0
    cut_score: float = 0.0
    model_s: float = 0.0
    bookkeeping_s: float = 0.0


def _thumbnail(image: np.ndarray, grid: tuple[int, int]) -> np.ndarray:
    """Mean-removed grey thumbnail (strided samples, values in [0, 1] before the mean is removed)."""
    if image.dtype == np.uint8:
        norm = 255.0
    elif image.dtype == np.uint16:
        norm = 65535.0
    else:
        norm = 1.0
    sy, sx = max(1, image.shape[0] // grid[1]), max(1, image.shape[1] // grid[0])
    grey = image[::sy, ::sx].astype(np.float32).mean(axis=2) / np.float32(norm)
    return grey - grey.mean()


MOTION_WIDTH = 128


def _grey(image: np.ndarray) -> tuple[np.ndarray, int]:
    """A grey image about :data:`MOTION_WIDTH` pixels wide (strided) and its stride, for motion estimation."""
    stride = max(1, image.shape[1] // MOTION_WIDTH)
    return image[::stride, ::stride].astype(np.float32).mean(axis=2), stride


def image_shift(prev: np.ndarray, cur: np.ndarray) -> tuple[int, int]:
    """The global translation ``(dy, dx)`` in pixels that maps ``prev`` onto ``cur`` (phase correlation).

    numpy's FFT on a Hann-windowed pair; integer pixels. Hand-written because it is a few lines of numpy and
    the only library version (scikit-image's ``phase_cross_correlation``) is not a dependency here.
    """
    h, w = cur.shape
    window = np.outer(np.hanning(h), np.hanning(w)).astype(np.float32)
    a = np.fft.rfft2((prev - prev.mean()) * window)
    b = np.fft.rfft2((cur - cur.mean()) * window)
    cross = b * np.conj(a)
    corr = np.fft.irfft2(cross / (np.abs(cross) + 1e-9), s=(h, w))
    dy, dx = np.unravel_index(int(np.argmax(corr)), corr.shape)
    return (int(dy) - h if dy > h // 2 else int(dy)), (int(dx) - w if dx > w // 2 else int(dx))


def image_flow(prev: np.ndarray, cur: np.ndarray) -> np.ndarray:
    """Dense optical flow ``[h, w, 2]`` float32 ``(dx, dy)`` from ``cur`` back to ``prev`` (grey, same shape).

    Pixel ``(y, x)`` of ``cur`` shows what ``prev`` shows at ``(y + dy, x + dx)``. OpenCV's DIS optical flow
    (Kroeger et al., ECCV 2016), preset ``FAST``: about 0.2 ms for a 128 x 96 pair on this CPU (``MEDIUM``,
    five times slower, and ``ULTRAFAST`` gave the same stream TAE on validation video).
    """
    def u8(grey: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(np.clip(grey + 0.5, 0, 255).astype(np.uint8))

    # A new instance per call (creating one takes microseconds): OpenCV's algorithm objects are not thread-safe.
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_FAST)
    return dis.calc(u8(cur), u8(prev), None)


def warp_by_flow(array: np.ndarray, flow: np.ndarray, stride: int = 1) -> np.ndarray:
    """``array`` (``[H, W]``) moved into the view of the image the backward ``flow`` starts from; NaN outside.

    ``flow`` is :func:`image_flow`'s, computed on images sampled every ``stride`` pixels from ``array``'s
    resolution (its pixel ``(i, j)`` is ``array``'s ``(i * stride, j * stride)``); it is interpolated to
    ``array``'s size and scaled by ``stride``. Bilinear sampling (a pixel on a depth edge mixes the two sides;
    the fusion's agreement test leaves such pixels alone).
    """
    h, w = array.shape
    if stride != 1:
        # cv2.resize aligns pixel centres, so a pixel reads the coarse flow up to stride / 2 pixels from where
        # its strided sample lies: a sub-pixel error for a smooth flow, at a sixth of an exact warpAffine's cost.
        flow = cv2.resize(flow, (w, h), interpolation=cv2.INTER_LINEAR)
        flow *= np.float32(stride)
    else:
        flow = flow.copy()
    flow += _pixel_grid(h, w)  # the flow becomes the sampling position
    return cv2.remap(np.asarray(array, dtype=np.float32), flow, None, cv2.INTER_LINEAR,
                     borderMode=cv2.BORDER_CONSTANT, borderValue=np.nan)


@functools.lru_cache(maxsize=4)
def _pixel_grid(h: int, w: int) -> np.ndarray:
    """Read-only float32 ``[H, W, 2]`` pixel coordinates ``(x, y)`` (cached: a stream keeps one image size)."""
    xs, ys = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    grid = np.stack([xs, ys], axis=-1)
    grid.flags.writeable = False
    return grid


def shift_image(array: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """``array`` moved by ``(dy, dx)`` pixels (content at (y, x) goes to (y + dy, x + dx)); NaN where uncovered."""
    out = np.full(array.shape, np.nan, dtype=np.float32)
    h, w = array.shape
    if abs(dy) >= h or abs(dx) >= w:
        return out
    src = array[max(0, -dy) : h - max(0, dy), max(0, -dx) : w - max(0, dx)]
    out[max(0, dy) : max(0, dy) + src.shape[0], max(0, dx) : max(0, dx) + src.shape[1]] = src
    return out


def robust_affine_fit(
    x: np.ndarray, y: np.ndarray, start: tuple[float, float], tolerance: float, iterations: int = 4
) -> tuple[float, float, float]:
    """Fit ``y ~ scale * x + shift`` with Tukey-biweight iteratively reweighted least squares.

    Returns ``(scale, shift, agree_fraction)``, the fraction of samples whose residual is below ``tolerance``.
    The residuals of the first iteration come from ``start`` (the previous mapping), so the pixels that agree
    with the previous frame lead the fit. Hand-written rather than :func:`iris_model.geometry.fit_scale_shift`
    because that fit's repeated-median start costs about 10 ms per call, more than the per-frame budget of
    the stream's bookkeeping; consecutive frames give a good start instead.
    """
    scale, shift = start
    a = np.stack([x, np.ones_like(x)], axis=1)
    for _ in range(iterations):
        r = y - (scale * x + shift)
        cutoff = max(3.0 * 1.4826 * float(np.median(np.abs(r))), tolerance)
        u = r / cutoff
        w = np.where(np.abs(u) < 1.0, (1.0 - u * u) ** 2, 0.0)
        if np.count_nonzero(w) < 3:
            break
        sw = np.sqrt(w)
        (scale, shift), *_ = np.linalg.lstsq(a * sw[:, None], y * sw, rcond=None)
    agree = float(np.mean(np.abs(y - (scale * x + shift)) < tolerance))
    return float(scale), float(shift), agree


class DepthStream:
    """Depth for the frames of one camera stream, warm-started and on a stable scale (see the module doc).

    Not thread-safe: one stream per camera, frames in stamp order.
    """

    def __init__(self, pipeline: IrisDepthPipeline, config: StreamConfig | None = None, *, seed: int = 0) -> None:
        self.pipeline = pipeline
        self.config = config or StreamConfig()
        self.seed = int(seed)
        self._state: _State | None = None
        self._pending_reason: str | None = "first"
        self._noise: torch.Tensor | None = None
        self._counters = _Counters()

    # ------------------------------------------------------------------ public
    @property
    def single_step(self) -> bool:
        """Whether the model predicts in one deterministic step (E2E-FT, Lotus: ``"single_step"`` in its
        ``model_index.json``). Such a model was trained from one fixed start (a zero latent, or Lotus-G's
        noise): any other start is out of its distribution, so no warm start applies and every frame starts
        as an independent one; the stable scale and the fusion still do."""
        return bool(self.pipeline.extra_settings.get("single_step", False))

    def reset(self, reason: str = "manual") -> None:
        """Forget the previous frame; the next frame starts fresh and reports ``reason``."""
        if reason not in RESET_REASONS:
            raise InputError(f"reset reason must be one of {RESET_REASONS}, got {reason!r}")
        self._state = None
        self._pending_reason = reason

    def stats(self) -> dict[str, float | int | str]:
        """Counters and the state in use, for diagnostics (``*_ms``: the last frame's times)."""
        c = self._counters
        out: dict[str, float | int | str] = {
            "warm_start": "n/a (single-step model)" if self.single_step else self.config.warm_start,
            "frames": c.frames,
            "frames_since_reset": c.frames_since_reset,
            "scale": self._state.scale if self._state else 1.0,
            "shift": self._state.shift if self._state else 0.0,
            "agree_fraction": c.agree_fraction,
            "cut_score": c.cut_score,
            "model_ms": c.model_s * 1e3,
            "bookkeeping_ms": c.bookkeeping_s * 1e3,
        }
        out.update({f"resets_{k}": v for k, v in c.resets.items()})
        return out

    def __call__(
        self,
        image: np.ndarray,
        text: str | None,
        stamp_s: float,
        *,
        num_inference_steps: int,
        ensemble_size: int = 1,
        processing_resolution: int | None = None,
        cancel: Callable[[], bool] | None = None,
        flow: np.ndarray | None = None,
    ) -> StreamFrame:
        """Depth of the next frame (``image``: ``H x W x 3`` RGB, uint8; ``stamp_s``: seconds).

        A change of text, steps, ensemble, resolution or image size, a stamp gap > ``max_gap_s``, a stamp that
        goes backwards, or a scene cut resets the state before this frame (reported in ``reset_reason``).
        The state changes only when the frame succeeds: a cancelled or failed frame leaves it as it was.

        ``flow``: the image motion since the previous frame when the caller knows it better than the stream's
        own estimate (a GPU optical-flow node, or the ground truth in ``benchmarks/streaming.py --true-motion``):
        ``[H, W, 2]`` float32 backward flow ``(dx, dy)`` in pixels at the image's size, as :func:`image_flow`
        gives it (pixel ``(y, x)`` shows what the previous image showed at ``(y + dy, x + dx)``); NaN where
        unknown. It replaces ``motion_compensation`` for this frame.
        """
        t_call = time.perf_counter()
        cfg = self.config
        image = np.asarray(image)
        if image.ndim != 3 or image.shape[2] != 3:
            raise InputError(f"image must be H x W x 3 RGB, got shape {image.shape}")
        if flow is not None:
            flow = np.asarray(flow, dtype=np.float32)
            if flow.shape != (*image.shape[:2], 2):
                raise InputError(f"flow must be H x W x 2 at the image's size {image.shape[:2]}, got {flow.shape}")
        stamp = float(stamp_s)
        if not math.isfinite(stamp):
            raise InputError(f"stamp must be finite, got {stamp_s!r}")
        txt = normalize_text(text)
        key = (int(num_inference_steps), int(ensemble_size), processing_resolution, image.shape[:2])
        thumb = _thumbnail(image, cfg.fit_grid)
        grey, stride = _grey(image)

        prev = self._state
        reason = self._pending_reason if prev is None else None
        cut_score = 0.0
        if prev is not None:
            if key != prev.key:
                reason = "parameters"
            elif txt != prev.text:
                reason = "description"
            elif stamp < prev.stamp_s or stamp - prev.stamp_s > cfg.max_gap_s:
                reason = "gap"
            else:
                cut_score = float(np.mean(np.abs(thumb - prev.thumb)))
                if cut_score > cfg.cut_threshold:
                    reason = "scene_cut"
        warm = prev if reason is None else None

        kwargs = self._model_kwargs(warm, num_inference_steps)
        t_model = time.perf_counter()
        out = self.pipeline(
            image, txt, ensemble_size=ensemble_size, processing_resolution=processing_resolution,
            output_latent=True, cancel=cancel, **kwargs,
        )
        model_s = time.perf_counter() - t_model
        raw = out.depth[0]
        latent = out.latent
        if latent is None or not np.isfinite(raw).all() or not bool(torch.isfinite(latent).all()):
            raise NonFiniteOutputError("the model produced NaN or inf; the stream keeps its previous state")
        if self._noise is None or tuple(self._noise.shape) != tuple(latent.shape):
            self._noise = self._fixed_noise(tuple(latent.shape))

        scale, shift, agree = 1.0, 0.0, 1.0
        if warm is not None:
            prev_depth, prev_grey = self._move_previous(warm, grey, stride, flow)
            scale, shift, agree = self._align(raw, warm, prev_depth)
            if agree < cfg.min_agree_fraction or not scale > 0:
                reason, scale, shift = "scene_cut", 1.0, 0.0
        depth = raw if reason is not None else (raw * np.float32(scale) + np.float32(shift)).astype(np.float32)
        if reason is None and warm is not None and (cfg.depth_smoothing > 0 or cfg.static_smoothing > 0):
            depth = self._fuse(depth, prev_depth, self._static_mask(prev_grey, grey, stride, raw.shape))

        c = self._counters
        c.frames += 1
        if reason is not None:
            c.resets[reason] += 1
            c.frames_since_reset = 0
        c.frames_since_reset += 1
        c.agree_fraction, c.cut_score = agree, cut_score
        self._state = _State(key, txt, stamp, thumb, grey, latent.detach(), depth, scale, shift)
        self._pending_reason = None
        c.model_s = model_s
        c.bookkeeping_s = time.perf_counter() - t_call - model_s
        return StreamFrame(depth=depth, raw=raw, scale=scale, shift=shift, reset_reason=reason)

    # ------------------------------------------------------------------ internals
    def _fixed_noise(self, shape: tuple[int, ...]) -> torch.Tensor:
        comps = self.pipeline.components
        generator = torch.Generator(device="cpu").manual_seed(self.seed)
        return randn_tensor(shape, generator=generator, device=comps.device, dtype=comps.dtype)

    def _model_kwargs(self, warm: _State | None, steps: int) -> dict[str, Any]:
        """The pipeline's noise / warm-start arguments for this frame."""
        cfg = self.config
        noise = self._noise
        if warm is None or noise is None or self.single_step:
            # A fresh start: the pipeline draws the noise from the seed (_fixed_noise repeats that draw), as
            # an independent frame with the same seed would.
            return {"num_inference_steps": steps, "generator": torch.Generator(device="cpu").manual_seed(self.seed)}
        if cfg.warm_start == "none":
            return {"num_inference_steps": steps, "latents": noise}
        if cfg.warm_start == "blend":
            w = cfg.blend_weight
            return {"num_inference_steps": steps, "latents": (1.0 - w) * noise + w * warm.latent}
        schedule = min(MAX_STEPS, max(steps, round(steps / cfg.strength)))
        return {"num_inference_steps": schedule, "latents": noise, "init_latents": warm.latent,
                "strength": steps / schedule}

    def _align(self, raw: np.ndarray, prev: _State, prev_depth: np.ndarray) -> tuple[float, float, float]:
        """This frame's (scale, shift) onto the previous output's scale, relaxed, and the agreeing fraction.

        ``prev_depth``: the previous output, moved by the image motion (NaN where it does not reach).
        """
        cfg = self.config
        sy, sx = max(1, raw.shape[0] // cfg.fit_grid[1]), max(1, raw.shape[1] // cfg.fit_grid[0])
        x = raw[::sy, ::sx].astype(np.float64).ravel()
        y = prev_depth[::sy, ::sx].astype(np.float64).ravel()
        finite = np.isfinite(x) & np.isfinite(y)
        x, y = x[finite], y[finite]
        if x.size < 3 or np.ptp(y) <= 0:
            return prev.scale, prev.shift, 0.0
        tolerance = cfg.agree_tolerance * float(np.ptp(y))
        scale, shift, agree = robust_affine_fit(x, y, (prev.scale, prev.shift), tolerance)
        w = cfg.scale_relax
        return (1.0 - w) * scale + w, (1.0 - w) * shift, agree


    def _move_previous(self, prev: _State, grey: np.ndarray, stride: int, flow: np.ndarray | None
                       ) -> tuple[np.ndarray, np.ndarray]:
        """The previous output (``[H, W]``) and grey image (the motion grid's) moved into this frame's view by
        the caller's ``flow`` or the image motion (``motion_compensation``); NaN where the previous frame did
        not see."""
        mode = self.config.motion_compensation
        if flow is not None:
            flow = np.where(np.isfinite(flow), flow, np.float32(-1e6))  # unknown: sampled outside, so NaN
            grid = flow[::stride, ::stride][: grey.shape[0], : grey.shape[1]] / np.float32(stride)
            return warp_by_flow(prev.depth, flow), warp_by_flow(prev.grey, np.ascontiguousarray(grid))
        if mode == "flow":
            flow = image_flow(prev.grey, grey)
            return warp_by_flow(prev.depth, flow, stride), warp_by_flow(prev.grey, flow)
        if mode == "shift":
            dy, dx = image_shift(prev.grey, grey)
            return shift_image(prev.depth, dy * stride, dx * stride), shift_image(prev.grey, dy, dx)
        return prev.depth, prev.grey

    def _static_mask(self, moved_grey: np.ndarray, grey: np.ndarray, stride: int, shape: tuple[int, ...]) -> np.ndarray:
        """``[H, W]`` bool: pixels whose grey value changed by at most ``static_tolerance`` from the previous
        image's moved into this view (``moved_grey``, NaN where uncovered: not static).

        There the scene did not change, so its depth should not either: the fusion holds the previous output
        there with ``static_smoothing`` (the model's own prediction of unchanged surroundings drifts when
        something else in view moves, and a per-frame affine alignment cannot undo a change of shape).
        """
        cfg = self.config
        with np.errstate(invalid="ignore"):
            static = np.abs(grey - moved_grey) <= np.float32(cfg.static_tolerance * 255.0)  # NaN: False
        full = np.repeat(np.repeat(static, stride, axis=0), stride, axis=1)
        h, w = shape[0], shape[1]
        if full.shape[0] < h or full.shape[1] < w:  # strided sampling leaves a partial last block
            full = np.pad(full, ((0, max(0, h - full.shape[0])), (0, max(0, w - full.shape[1]))), mode="edge")
        return full[:h, :w]

    def _fuse(self, depth: np.ndarray, prev: np.ndarray, static: np.ndarray) -> np.ndarray:
        """Blend the previous output into the pixels whose depth agrees with it (a per-pixel temporal filter).

        The weight of the previous output is ``static_smoothing`` where the image did not change (``static``),
        ``depth_smoothing`` elsewhere.
        """
        cfg = self.config
        hi, lo = float(np.fmax.reduce(prev, axis=None)), float(np.fmin.reduce(prev, axis=None))  # NaN-skipping
        if not math.isfinite(hi):
            return depth
        tol = np.float32(cfg.fuse_tolerance * (hi - lo))
        diff = prev - depth
        agree = np.abs(diff) < tol  # False where prev is NaN (not covered after the motion)
        diff *= np.where(static, np.float32(cfg.static_smoothing), np.float32(cfg.depth_smoothing))
        out = np.array(depth, dtype=np.float32)
        np.add(out, diff, out=out, where=agree)
        return out


class ScaleShiftFilter:
    """Temporal filter for the (scale, shift) of per-frame sparse-depth fits: ``metric = scale * rel + shift``.

    An exponential moving average with time constant ``time_constant_s`` (seconds). A fit whose mapped depths
    at the ends of the relative range (``rel`` = 0 and 1) differ from the filtered ones by more than
    ``max_jump`` (a fraction of the filtered far depth) is an outlier: it is rejected and the filtered values
    are returned, unless ``accept_after`` fits in a row were rejected that agree with each other, which means
    the scene really changed and the new fit restarts the filter. A stamp gap over ``max_gap_s`` or a
    backwards stamp restarts it too. ``rejected_total`` counts the rejected fits.
    """

    def __init__(self, time_constant_s: float = 0.5, max_jump: float = 0.25, accept_after: int = 3,
                 max_gap_s: float = 1.0) -> None:
        _check_range("time_constant_s", time_constant_s, 0.0, math.inf)
        _check_range("max_jump", max_jump, 0.0, math.inf, lo_open=True)
        _check_range("max_gap_s", max_gap_s, 0.0, math.inf, lo_open=True)
        if not isinstance(accept_after, int) or accept_after < 1:
            raise InputError(f"accept_after must be an int >= 1, got {accept_after!r}")
        self.time_constant_s = float(time_constant_s)
        self.max_jump = float(max_jump)
        self.accept_after = accept_after
        self.max_gap_s = float(max_gap_s)
        self.rejected_total = 0
        self.reset()

    def reset(self) -> None:
        self._value: tuple[float, float] | None = None
        self._stamp = -math.inf
        self._rejected_in_row = 0
        self._candidate: tuple[float, float] | None = None

    def update(self, scale: float, shift: float, stamp_s: float) -> tuple[float, float, bool]:
        """Feed one fit; return the filtered ``(scale, shift)`` and whether this fit was accepted."""
        if not all(math.isfinite(v) for v in (scale, shift, stamp_s)) or scale <= 0:
            raise InputError(f"scale must be finite and > 0, shift and stamp finite, got {scale}, {shift}, {stamp_s}")
        dt = stamp_s - self._stamp
        if self._value is None or dt < 0 or dt > self.max_gap_s:
            return self._restart(scale, shift, stamp_s)
        fs, fb = self._value
        if self._jump((scale, shift), (fs, fb)):
            candidate = self._candidate
            agrees = candidate is not None and not self._jump((scale, shift), candidate)
            self._rejected_in_row = self._rejected_in_row + 1 if agrees else 1
            self._candidate = (scale, shift)
            if self._rejected_in_row >= self.accept_after:
                return self._restart(scale, shift, stamp_s)
            self.rejected_total += 1
            return fs, fb, False
        self._rejected_in_row, self._candidate = 0, None
        alpha = 1.0 if self.time_constant_s == 0 else 1.0 - math.exp(-dt / self.time_constant_s)
        self._value = (fs + alpha * (scale - fs), fb + alpha * (shift - fb))
        self._stamp = stamp_s
        return (*self._value, True)

    def _jump(self, fit: tuple[float, float], ref: tuple[float, float]) -> bool:
        """Whether ``fit`` maps relative 0 or 1 more than ``max_jump`` (of ref's far depth) away from ``ref``."""
        near_jump = abs(fit[1] - ref[1])
        far_jump = abs((fit[0] + fit[1]) - (ref[0] + ref[1]))
        return max(near_jump, far_jump) > self.max_jump * max(abs(ref[0] + ref[1]), 1e-9)

    def _restart(self, scale: float, shift: float, stamp_s: float) -> tuple[float, float, bool]:
        self._value = (float(scale), float(shift))
        self._stamp = float(stamp_s)
        self._rejected_in_row = 0
        self._candidate = None
        return float(scale), float(shift), True
