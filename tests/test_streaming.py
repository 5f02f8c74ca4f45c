"""DepthStream: warm start from the previous latent, a stable output scale, resets; ScaleShiftFilter."""

from __future__ import annotations

import math
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
import torch
from diffusers import DDIMScheduler

from iris_model import IrisDepthPipeline
from iris_model.errors import InputError, NonFiniteOutputError
from iris_model.streaming import (
    DepthStream,
    ScaleShiftFilter,
    StreamConfig,
    image_flow,
    image_shift,
    robust_affine_fit,
    shift_image,
    warp_by_flow,
)

TEXT = "a corridor with a red box on the left"


@pytest.fixture(scope="module")
def pipe(tiny_model_dir, one_torch_thread):
    return IrisDepthPipeline.from_pretrained(tiny_model_dir)


def _image(seed: int = 0, h: int = 48, w: int = 64) -> np.ndarray:
    """A blocky random image (8 x 8 pixel blocks), so that a shift by a pixel or two is a small change."""
    blocks = np.random.default_rng(seed).integers(0, 256, (h // 8, w // 8, 3), dtype=np.uint8)
    return np.kron(blocks, np.ones((8, 8, 1), dtype=np.uint8))


def _moved(image: np.ndarray, shift: int) -> np.ndarray:
    """The same view a few pixels to the side (a small camera motion)."""
    return np.roll(image, shift, axis=1)


class _Recorder:
    """Wraps a backend's ``denoise`` and records each call's timestep and depth-latent input."""

    def __init__(self, components) -> None:
        self.components = components
        self.original = components.denoise
        self.calls: list[tuple[int, torch.Tensor, torch.Tensor]] = []

    def __enter__(self) -> _Recorder:
        def denoise(latents, timestep, text):
            half = latents.shape[1] // 2
            self.calls.append((int(timestep), latents[:, :half].clone(), latents[:, half:].clone()))
            return self.original(latents, timestep, text)

        self.components.denoise = denoise
        return self

    def __exit__(self, *exc) -> None:
        self.components.denoise = self.original


# ---------------------------------------------------------------------- the pipeline's warm-start arguments
def test_init_latents_are_noised_to_the_trailing_timestep_and_finish_the_schedule(pipe):
    image = _image()
    shape = pipe(image, TEXT, num_inference_steps=1, output_latent=True,
                 generator=torch.Generator().manual_seed(0)).latent.shape
    x0 = torch.randn(shape, generator=torch.Generator().manual_seed(1))
    noise = torch.randn(shape, generator=torch.Generator().manual_seed(2))
    with _Recorder(pipe.components) as rec:
        out = pipe(image, TEXT, num_inference_steps=4, latents=noise, init_latents=x0, strength=0.5,
                   output_latent=True)

    # Independent expectation: a fresh diffusers DDIM scheduler with the same config, the closed-form
    # forward process x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) eps, then the last 2 of 4 trailing steps.
    ref = DDIMScheduler.from_config(pipe.scheduler.config)
    ref.set_timesteps(4)
    tail = [int(t) for t in ref.timesteps[2:]]
    assert [c[0] for c in rec.calls] == tail == [499, 249]
    abar = ref.alphas_cumprod[tail[0]]
    x = abar.sqrt() * x0 + (1 - abar).sqrt() * noise
    assert torch.allclose(rec.calls[0][2], x, atol=1e-6)
    image_latent = rec.calls[0][1]
    text = pipe.embed_text(TEXT)
    for t in tail:
        v = pipe.components.denoise(torch.cat([image_latent, x], dim=1), t, text)
        x = ref.step(v, t, x).prev_sample
    assert torch.allclose(out.latent, x, atol=1e-5)


def test_warm_start_arguments_are_checked(pipe):
    image = _image()
    with pytest.raises(InputError, match="strength"):
        pipe(image, TEXT, num_inference_steps=2, strength=0.5)
    with pytest.raises(InputError, match="strength"):
        pipe(image, TEXT, num_inference_steps=2, init_latents=torch.zeros(1, 4, 12, 16), strength=0.0)
    with pytest.raises(InputError, match="shape"):
        pipe(image, TEXT, num_inference_steps=2, init_latents=torch.zeros(1, 4, 3, 3), strength=0.5)
    with pytest.raises(InputError, match="NaN"):
        bad = torch.full((1, 4, 12, 16), float("nan"))
        pipe(image, TEXT, num_inference_steps=2, init_latents=bad, strength=0.5)


# ---------------------------------------------------------------------- DepthStream with the real pipeline
def _run(stream: DepthStream, frames, steps: int = 2, text: str = TEXT, dt: float = 0.1):
    return [stream(img, text, i * dt, num_inference_steps=steps) for i, img in enumerate(frames)]


def test_stream_is_reproducible_with_a_seed(pipe):
    base = _image()
    frames = [_moved(base, k) for k in range(3)]
    a = _run(DepthStream(pipe, seed=3), frames)
    b = _run(DepthStream(pipe, seed=3), frames)
    c = _run(DepthStream(pipe, seed=4), frames)
    assert [f.reset_reason for f in a] == ["first", None, None]
    for fa, fb in zip(a, b, strict=True):
        assert np.array_equal(fa.depth, fb.depth) and np.array_equal(fa.raw, fb.raw)
    assert np.abs(a[2].raw - c[2].raw).max() > 1e-3


def test_first_frame_is_the_independent_frame_with_the_same_seed(pipe):
    image = _image()
    frame = DepthStream(pipe, seed=5)(image, TEXT, 0.0, num_inference_steps=2)
    alone = pipe(image, TEXT, num_inference_steps=2, generator=torch.Generator().manual_seed(5)).depth[0]
    assert frame.reset_reason == "first" and (frame.scale, frame.shift) == (1.0, 0.0)
    assert np.array_equal(frame.depth, alone) and np.array_equal(frame.raw, alone)


@pytest.mark.parametrize("warm_start", ["renoise", "blend"])
def test_warm_start_uses_the_previous_latent(pipe, warm_start):
    base = _image()
    frames = [base, _moved(base, 1)]
    stream = DepthStream(pipe, StreamConfig(warm_start=warm_start), seed=0)
    first = stream(frames[0], TEXT, 0.0, num_inference_steps=2)
    prev_latent = pipe(frames[0], TEXT, num_inference_steps=2, output_latent=True,
                       generator=torch.Generator().manual_seed(0)).latent
    noise = torch.randn(prev_latent.shape, generator=torch.Generator().manual_seed(0))
    with _Recorder(pipe.components) as rec:
        second = stream(frames[1], TEXT, 0.1, num_inference_steps=2)
    assert first.reset_reason == "first" and second.reset_reason is None
    assert len(rec.calls) == 2  # k steps per frame in both modes

    if warm_start == "renoise":  # the last 2 steps of a 4-step schedule, from the re-noised previous latent
        expected = pipe(frames[1], TEXT, num_inference_steps=4, latents=noise, init_latents=prev_latent,
                        strength=0.5).depth[0]
    else:  # diffusers' recipe: 0.9 * fixed noise + 0.1 * previous latent, full schedule
        expected = pipe(frames[1], TEXT, num_inference_steps=2, latents=0.9 * noise + 0.1 * prev_latent).depth[0]
    assert np.allclose(second.raw, expected, atol=1e-6)

    # The same second frame without the previous latent (cold, same noise) differs: the latent matters.
    cold = pipe(frames[1], TEXT, num_inference_steps=2, latents=noise).depth[0]
    assert np.abs(second.raw - cold).max() > 1e-3
    none = DepthStream(pipe, StreamConfig(warm_start="none"), seed=0)
    _run(none, frames[:1])
    assert np.array_equal(none(frames[1], TEXT, 0.1, num_inference_steps=2).raw, cold)


@pytest.mark.parametrize("warm_start", ["renoise", "blend"])
def test_a_single_step_model_gets_no_warm_start(tiny_model_dir, one_torch_thread, warm_start):
    # An E2E-FT model predicts from a zero latent only; a blended or re-noised start would be out of its
    # distribution, so every frame is the model's own single-step prediction (the scale and fusion still run).
    single = IrisDepthPipeline.from_pretrained(tiny_model_dir)
    single.extra_settings["single_step"] = True
    base = _image()
    frames = [base, _moved(base, 1), _moved(base, 2)]
    stream = DepthStream(single, StreamConfig(warm_start=warm_start), seed=0)
    out = _run(stream, frames)
    assert out[0].reset_reason == "first" and out[1].reset_reason is None
    for frame, image in zip(out, frames, strict=True):
        assert np.array_equal(frame.raw, single(image, TEXT).depth[0])
    assert stream.stats()["warm_start"] == "n/a (single-step model)"


def test_stream_resets_on_description_cut_gap_and_parameters(pipe):
    base = _image()
    stream = DepthStream(pipe, seed=0)
    fresh = DepthStream(pipe, seed=0)
    script = [
        (_moved(base, 0), TEXT, 0.0, 2, "first"),
        (_moved(base, 1), TEXT, 0.1, 2, None),
        (_moved(base, 2), "an empty room", 0.2, 2, "description"),
        (_moved(base, 3), "an empty room", 0.3, 2, None),
        (_image(seed=9), "an empty room", 0.4, 2, "scene_cut"),  # another view altogether
        (_image(seed=9), "an empty room", 2.0, 2, "gap"),
        (_image(seed=9), "an empty room", 1.9, 2, "gap"),  # stamp went backwards
        (_image(seed=9), "an empty room", 2.0, 1, "parameters"),
        (_image(seed=9), "an empty room", 2.1, 1, None),
    ]
    for image, text, stamp, steps, reason in script:
        frame = stream(image, text, stamp, num_inference_steps=steps)
        assert frame.reset_reason == reason, (stamp, frame.reset_reason)
        if reason is not None:  # a reset frame is an independent first frame: no previous latent, own scale
            fresh.reset()
            alone = fresh(image, text, stamp, num_inference_steps=steps)
            assert np.array_equal(frame.depth, alone.depth) and (frame.scale, frame.shift) == (1.0, 0.0)
    stream.reset()
    assert stream(_image(seed=9), "an empty room", 2.2, num_inference_steps=1).reset_reason == "manual"
    stats = stream.stats()
    assert {k: stats[f"resets_{k}"] for k in ("first", "description", "scene_cut", "gap", "parameters", "manual")} \
        == {"first": 1, "description": 1, "scene_cut": 1, "gap": 2, "parameters": 1, "manual": 1}
    assert stats["frames"] == len(script) + 1 and stats["frames_since_reset"] == 1


def test_stream_rejects_bad_input(pipe):
    stream = DepthStream(pipe)
    with pytest.raises(InputError, match="H x W x 3"):
        stream(np.zeros((8, 8), np.uint8), TEXT, 0.0, num_inference_steps=1)
    with pytest.raises(InputError, match="stamp"):
        stream(_image(), TEXT, math.nan, num_inference_steps=1)
    with pytest.raises(InputError, match="reason"):
        stream.reset("because")
    for bad in ({"warm_start": "hot"}, {"strength": 0.0}, {"scale_relax": 1.0}, {"max_gap_s": -1.0},
                {"cut_threshold": math.nan}, {"fit_grid": (2, 2)}, {"static_smoothing": 1.0},
                {"static_tolerance": -0.1}):
        with pytest.raises(InputError):
            StreamConfig(**bad)


# ---------------------------------------------------------------------- the stable scale, on a stub model
class _StubPipeline:
    """Returns scripted per-frame depths min/max-normalized to [0, 1], as the real model's output is."""

    def __init__(self, depths: list[np.ndarray]) -> None:
        self.depths = list(depths)
        self.components = SimpleNamespace(device=torch.device("cpu"), dtype=torch.float32)
        self.extra_settings: dict = {}

    def __call__(self, image, text, **kwargs):
        d = self.depths.pop(0)
        raw = ((d - d.min()) / (d.max() - d.min())).astype(np.float32)
        return SimpleNamespace(depth=raw[None], latent=torch.zeros(1, 4, 2, 2))


def _scene(obj_depth: float | None) -> np.ndarray:
    """Background depths 2..6 (a ramp), optionally a near object in the lower right corner."""
    d = np.tile(np.linspace(2.0, 6.0, 64), (48, 1))
    if obj_depth is not None:
        d[30:, 48:] = obj_depth
    return d


def test_scale_stays_put_when_the_nearest_point_changes():
    depths = [_scene(None), _scene(None), _scene(0.5), _scene(0.5), _scene(None)]
    stream = DepthStream(_StubPipeline(depths), StreamConfig(warm_start="none", scale_relax=0.0,
                                                                depth_smoothing=0.0, static_smoothing=0.0))
    image = _image()
    frames = [stream(image, TEXT, 0.1 * i, num_inference_steps=1) for i in range(len(depths))]
    background = (slice(0, 30), slice(0, 48))
    first = frames[0].depth[background]
    for f in frames:
        assert f.reset_reason in ("first", None)
        # raw jumps when the near object appears (its per-frame normalization changes) ...
        # ... the stream's depth of the unchanged background does not.
        assert np.abs(f.depth[background] - first).max() < 1e-3
    assert np.abs(frames[2].raw[background] - frames[0].raw[background]).max() > 0.1
    # the object lands at its true place on the first frame's scale, d -> (d - 2) / 4, below 0 (nearer
    # than anything in the first frame)
    assert frames[2].depth[40, 60] == pytest.approx((0.5 - 2.0) / 4.0, abs=1e-3)


def test_scale_relaxes_toward_the_model_scale_at_the_set_rate():
    # the near object stays: the per-frame scale jumps once, the stream's scale follows it geometrically
    depths = [_scene(None)] + [_scene(0.5)] * 6
    relax = 0.2
    stream = DepthStream(_StubPipeline(depths), StreamConfig(warm_start="none", scale_relax=relax,
                                                             depth_smoothing=0.0, static_smoothing=0.0))
    frames = [stream(_image(), TEXT, 0.1 * i, num_inference_steps=1) for i in range(len(depths))]
    raw_scale = 1.0 / (6.0 - 0.5)  # raw = (d - 0.5) / 5.5 once the object is in view; frame 0: (d - 2) / 4
    # frame 0 maps d to (d - 2) / 4; frame k maps it to a mix, whose slope per meter moves by (1 - relax)^k
    slopes = [(f.depth[0, -1] - f.depth[0, 0]) / 4.0 for f in frames]
    for k in range(1, len(frames)):
        expected = raw_scale + (0.25 - raw_scale) * (1.0 - relax) ** k
        assert slopes[k] == pytest.approx(expected, rel=1e-3)


def test_fusion_averages_frame_to_frame_noise_at_the_set_weight():
    # a static scene whose predictions wobble by independent noise each frame: an exponential filter of
    # weight w keeps (1 - w) / (1 + w) of the noise variance
    rng = np.random.default_rng(0)
    truth = _scene(None)
    depths = [truth + rng.normal(0.0, 0.02, truth.shape) for _ in range(60)]
    w = 0.6
    stream = DepthStream(_StubPipeline(depths), StreamConfig(warm_start="none", depth_smoothing=w, static_smoothing=w,
                                                             scale_relax=0.0))
    frames = [stream(_image(), TEXT, 0.05 * i, num_inference_steps=1) for i in range(len(depths))]
    raw = np.mean([_noise_var(f.raw, truth) for f in frames[20:]])
    fused = np.mean([_noise_var(f.depth, truth) for f in frames[20:]])
    assert fused / raw == pytest.approx((1 - w) / (1 + w), rel=0.15)


def _noise_var(d: np.ndarray, truth: np.ndarray) -> float:
    """The variance left after the best affine fit of ``d`` to ``truth``."""
    a = np.stack([d.ravel(), np.ones(d.size)], axis=1)
    coef, *_ = np.linalg.lstsq(a, truth.ravel(), rcond=None)
    return float(np.var(a @ coef - truth.ravel()))


def test_fusion_holds_pixels_whose_image_did_not_change_harder():
    # the left half of the image stays put, the right half flickers between two greys (more than
    # static_tolerance): the exponential filter's weight is static_smoothing on the left, depth_smoothing on the
    # right, so (1 - w) / (1 + w) of the noise variance is left with the respective w
    rng = np.random.default_rng(3)
    truth = _scene(None)
    depths = [truth + rng.normal(0.0, 0.02, truth.shape) for _ in range(60)]
    images = []
    for i in range(len(depths)):
        img = _image()
        img[:, 32:] = 100 if i % 2 else 130
        images.append(img)
    moving, static = 0.3, 0.9
    cfg = StreamConfig(warm_start="none", depth_smoothing=moving, static_smoothing=static, scale_relax=0.0,
                       motion_compensation="none")
    stream = DepthStream(_StubPipeline(depths), cfg)
    frames = [stream(img, TEXT, 0.05 * i, num_inference_steps=1) for i, img in enumerate(images)]
    assert all(f.reset_reason is None for f in frames[1:])
    for cols, w in ((slice(0, 32), static), (slice(32, None), moving)):
        raw = np.mean([_noise_var(f.raw[:, cols], truth[:, cols]) for f in frames[20:]])
        fused = np.mean([_noise_var(f.depth[:, cols], truth[:, cols]) for f in frames[20:]])
        assert fused / raw == pytest.approx((1 - w) / (1 + w), rel=0.2)


def test_image_shift_finds_a_pan_and_shift_image_moves_content():
    rng = np.random.default_rng(1)
    base = np.kron(rng.random((12, 16)), np.ones((8, 8))).astype(np.float32)
    moved = np.roll(base, (3, -7), axis=(0, 1))
    assert image_shift(base, moved) == (3, -7)
    a = np.arange(12, dtype=np.float32).reshape(3, 4)
    out = shift_image(a, 1, -2)
    assert np.array_equal(out[1:, :2], a[:2, 2:]) and np.isnan(out[0]).all() and np.isnan(out[:, 2:]).all()


def _fused_error(views: list[tuple[np.ndarray, np.ndarray]], motion: str) -> float:
    """AbsRel of a stream's last fused depth, affinely aligned to the last view's true depth."""
    cfg = StreamConfig(warm_start="none", motion_compensation=motion, scale_relax=0.0, fuse_tolerance=1.0)
    stream = DepthStream(_StubPipeline([d for _, d in views]), cfg)
    frames = [stream(img, TEXT, 0.1 * i, num_inference_steps=1) for i, (img, _) in enumerate(views)]
    if motion != "none":  # without motion compensation the pan may read as a cut
        assert all(f.reset_reason is None for f in frames[1:])
    return _abs_rel_after_alignment(frames[-1].depth, views[-1][1])


def _abs_rel_after_alignment(d: np.ndarray, truth: np.ndarray) -> float:
    a = np.stack([d.ravel(), np.ones(d.size)], axis=1)
    coef, *_ = np.linalg.lstsq(a, truth.ravel(), rcond=None)
    return float(np.mean(np.abs(a @ coef - truth.ravel()) / truth.ravel()))


@pytest.mark.parametrize("motion", ["flow", "shift"])
def test_motion_compensation_keeps_a_pan_sharp(motion):
    # the camera pans: image and depth move 4 px a frame; the fused depth must follow the content
    rng = np.random.default_rng(2)
    wide_depth = np.kron(2.0 + 4.0 * rng.random((6, 20)), np.ones((8, 8)))
    wide_image = np.kron(rng.integers(0, 256, (6, 20, 3)), np.ones((8, 8, 1))).astype(np.uint8)
    views = [(wide_image[:, 4 * i : 4 * i + 64], wide_depth[:, 4 * i : 4 * i + 64]) for i in range(8)]
    sharp, smeared = _fused_error(views, motion), _fused_error(views, "none")
    assert sharp < 0.02 and smeared > 3 * sharp


def test_flow_compensation_follows_a_walk_forward_that_a_global_shift_cannot():
    # walking toward a wall: each view is the previous one magnified by 4 % about the centre (the image
    # expands, no single shift matches it); the depth patches are the wall's, magnified the same way
    rng = np.random.default_rng(4)
    size = (128, 96)
    base = cv2.resize(rng.integers(0, 256, (12, 16, 3)).astype(np.uint8), size, interpolation=cv2.INTER_CUBIC)
    base_depth = cv2.resize(2.0 + 4.0 * rng.random((6, 8)), size, interpolation=cv2.INTER_NEAREST)

    def view(array: np.ndarray, zoom: float, interpolation: int) -> np.ndarray:
        m = cv2.getRotationMatrix2D((size[0] / 2 - 0.5, size[1] / 2 - 0.5), 0.0, zoom)
        return cv2.warpAffine(array, m, size, flags=interpolation, borderMode=cv2.BORDER_REFLECT)

    views = [(view(base, 1.04**i, cv2.INTER_LINEAR), view(base_depth, 1.04**i, cv2.INTER_NEAREST))
             for i in range(8)]
    flow, shift = _fused_error(views, "flow"), _fused_error(views, "shift")
    assert flow < 0.03 and shift > 2 * flow
    # a caller's exact flow (each pixel's source in the previous, less magnified view) replaces the estimate
    ys, xs = np.mgrid[0 : size[1], 0 : size[0]].astype(np.float32)
    centre = np.array([size[0] / 2 - 0.5, size[1] / 2 - 0.5], np.float32)
    pixels = np.stack([xs, ys], axis=-1)
    exact = (pixels - centre) / np.float32(1.04) + centre - pixels
    cfg = StreamConfig(warm_start="none", motion_compensation="none", scale_relax=0.0, fuse_tolerance=1.0)
    stream = DepthStream(_StubPipeline([d for _, d in views]), cfg)
    for i, (img, _) in enumerate(views):
        last = stream(img, TEXT, 0.1 * i, num_inference_steps=1, flow=exact if i else None)
    assert last.reset_reason is None
    assert _abs_rel_after_alignment(last.depth, views[-1][1]) < 0.03
    with pytest.raises(InputError, match="flow must be"):
        stream(views[0][0], TEXT, 1.0, num_inference_steps=1, flow=exact[:10])


def test_image_flow_finds_a_translation_and_warp_by_flow_moves_content_like_shift_image():
    rng = np.random.default_rng(5)
    prev = cv2.resize(rng.random((12, 16)).astype(np.float32), (64, 48), interpolation=cv2.INTER_CUBIC) * 255
    cur = shift_image(prev, 2, -3)  # content moved down 2 and left 3
    flow = image_flow(np.nan_to_num(prev), np.nan_to_num(cur))
    inner = flow[8:-8, 8:-8].reshape(-1, 2)
    assert np.allclose(np.median(inner, axis=0), (3.0, -2.0), atol=0.25)  # (dx, dy) back to prev
    # at a stride of 2, a constant flow of (3, -2) grid pixels moves full-resolution content by (-6, 4)
    depth = rng.random((40, 60)).astype(np.float32)
    const = np.broadcast_to(np.array([3.0, -2.0], np.float32), (20, 30, 2)).copy()
    warped = warp_by_flow(depth, const, stride=2)
    expected = shift_image(depth, 4, -6)
    both = np.isfinite(warped) & np.isfinite(expected)
    assert both.mean() > 0.7 and np.allclose(warped[both], expected[both], atol=1e-5)
    assert np.isnan(warped[:4]).all() and np.isnan(warped[:, -6:]).all()


def test_non_finite_output_leaves_the_state_alone():
    bad = np.full((48, 64), np.nan)
    stream = DepthStream(_StubPipeline([_scene(None), bad, _scene(None)]), StreamConfig(warm_start="none"))
    stream(_image(), TEXT, 0.0, num_inference_steps=1)
    before = stream.stats()
    with np.errstate(invalid="ignore"), pytest.raises(NonFiniteOutputError):
        stream(_image(), TEXT, 0.1, num_inference_steps=1)
    assert stream.stats()["frames"] == before["frames"]
    assert stream(_image(), TEXT, 0.2, num_inference_steps=1).reset_reason is None


def test_robust_fit_ignores_pixels_that_disagree():
    rng = np.random.default_rng(0)
    x = rng.random(800)
    y = 3.0 * x + 0.5
    y[:200] += rng.uniform(1.0, 3.0, 200)  # a quarter of the pixels moved (disocclusions)
    scale, shift, agree = robust_affine_fit(x, y, (1.0, 0.0), tolerance=0.05)
    assert abs(scale - 3.0) < 1e-6 and abs(shift - 0.5) < 1e-6
    assert agree == pytest.approx(0.75)


# ---------------------------------------------------------------------- ScaleShiftFilter
def test_filter_smooths_rejects_outliers_and_restarts():
    f = ScaleShiftFilter(time_constant_s=0.5, max_jump=0.25, accept_after=3, max_gap_s=1.0)
    assert f.update(2.0, 1.0, 0.0) == (2.0, 1.0, True)
    s, b, ok = f.update(2.2, 1.0, 0.1)
    alpha = 1.0 - math.exp(-0.1 / 0.5)
    assert ok and s == pytest.approx(2.0 + alpha * 0.2) and b == pytest.approx(1.0)
    # a fit that puts the far end 2x farther is an outlier: rejected, the filtered values come back
    assert f.update(6.0, 1.0, 0.2) == (s, b, False)
    assert f.update(12.0, 1.0, 0.3) == (s, b, False)  # another outlier, not agreeing with the first
    assert f.update(6.0, 1.0, 0.4) == (s, b, False)
    assert f.update(6.1, 1.0, 0.5) == (s, b, False)
    assert f.update(6.0, 1.0, 0.6) == (6.0, 1.0, True)  # third agreeing one in a row: the scene changed
    assert f.rejected_total == 4
    assert f.update(2.0, 0.0, 2.0) == (2.0, 0.0, True)  # a stamp gap restarts too
    assert f.update(9.0, 0.0, 1.5) == (9.0, 0.0, True)  # as does a stamp that goes backwards
    with pytest.raises(InputError):
        f.update(-1.0, 0.0, 3.0)
    with pytest.raises(InputError):
        ScaleShiftFilter(accept_after=0)
