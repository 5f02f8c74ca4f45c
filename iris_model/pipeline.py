"""The Iris depth pipeline: (RGB image, scene description) -> affine-invariant depth.

One denoising loop, shared by every runtime backend (see :mod:`iris_model.components`):

1. the description goes through the frozen text encoder (cached by text);
2. the image is resized (long side = ``processing_resolution``), padded to the latent stride and encoded
   by the VAE; each image is repeated ``ensemble_size`` times;
3. a depth latent starts from noise (or zeros in single-step mode) and is denoised by the UNet, which
   sees the image latent concatenated to it and the text through cross-attention;
4. the VAE decodes the depth latent; padding is removed, ensemble members are aligned and merged
   (Marigold's affine-invariant ensembling), and the result is resized back to the input size.

Output convention: float32 depth in [0, 1] per image, **larger is farther** (0 = nearest point of the
scene, 1 = farthest). It is affine-invariant: metric depth = scale * depth + shift for unknown
scale > 0 and shift, which :mod:`iris_model.geometry` recovers from known distances.

With ``text=""`` (or ``None``) the pipeline reproduces diffusers' ``MarigoldDepthPipeline`` on the same
weights and noise; image processing and ensembling are diffusers' own code.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from diffusers.pipelines.marigold.marigold_image_processing import MarigoldImageProcessor
from diffusers.pipelines.marigold.pipeline_marigold_depth import MarigoldDepthPipeline
from diffusers.utils.torch_utils import randn_tensor

from .components import DepthComponents
from .depth_encoding import LOG_SCALE_KEY, check_log_scale, decode_depth
from .errors import Cancelled, InputError, ModelLoadError, NonFiniteOutputError
from .loading import ModelIndex, read_model_index, write_model_index
from .lotus import lotus_scheduler, lotus_variant
from .lotus import prediction_space as resolve_prediction_space
from .schedulers import check_steps, convert_scheduler
from .text import TextEmbeddingCache, normalize_text

logger = logging.getLogger(__name__)

MAX_ENSEMBLE = 32
MAX_PROCESSING_RESOLUTION = 4096


@dataclass
class IrisDepthOutput:
    """Pipeline result.

    Attributes:
        depth: ``[N, H, W]`` float32 in [0, 1], larger is farther, affine-invariant, at input resolution.
        uncertainty: ``[N, H, W]`` ensemble spread (same units as depth) when asked for, else ``None``.
        latent: the final depth latents ``[N * E, C, h, w]`` when asked for, else ``None``.
        timings: seconds spent per component in this call (``encode_text``, ``encode_image``, ``denoise``,
            ``decode``, ``total``).
    """

    depth: np.ndarray
    uncertainty: np.ndarray | None = None
    latent: torch.Tensor | None = None
    timings: dict[str, float] = field(default_factory=dict)


@dataclass
class _RunSettings:
    """The per-call options of :meth:`IrisDepthPipeline.__call__`, validated there, as one group sees them."""

    steps: int
    ensemble_size: int
    resolution: int
    single_step: bool
    generator: torch.Generator | None = None
    latents: torch.Tensor | None = None
    batch_size: int = 0
    output_uncertainty: bool = False
    match_input_resolution: bool = True
    resample_in: str = "bilinear"
    resample_out: str = "bilinear"
    ensembling_kwargs: dict[str, Any] | None = None
    cancel: Callable[[], bool] | None = None
    init_latents: torch.Tensor | None = None
    strength: float = 1.0

    # What the checkpoint needs (set by the pipeline, not by callers; see iris_model.lotus):
    image_only: bool = False  # the UNet sees the image latent alone (Lotus-D)
    noisy_start: bool = False  # a single step starts from noise, not zeros (Lotus-G)
    disparity: bool = False  # the model predicts disparity: return 1 - prediction (larger is farther)
    log_scale: float = 0.0  # the decoder's output is log-spaced depth (iris_model.depth_encoding); 0 = linear

    def check_cancel(self) -> None:
        if self.cancel is not None and self.cancel():
            raise Cancelled("prediction cancelled")


def _check_finite(prediction: torch.Tensor, latent: torch.Tensor) -> None:
    """Refuse a NaN/inf depth (corrupt weights, half precision overflowing): it must never be published.

    The final latent is checked as well: a decoder that clamps its read-out (graphs exported before
    :func:`~iris_model.components.decode_to_depth` kept NaN) would turn an inf into a valid-looking 0 or 1.
    """
    for name, tensor in (("depth latent", latent), ("decoded depth", prediction)):
        if not bool(torch.isfinite(tensor).all()):
            bad = int((~torch.isfinite(tensor)).sum())
            raise NonFiniteOutputError(
                f"the model produced a non-finite {name} ({bad} of {tensor.numel()} values NaN or inf): "
                "corrupt weights, or half precision overflowing (try dtype float32)"
            )


def _check_aspect_ratio(height: int, width: int, resolution: int) -> None:
    """Refuse an image whose short side the resize (long side -> ``resolution``) would shrink to 0 pixels."""
    if resolution <= 0:
        return
    long_side, short_side = max(height, width), min(height, width)
    if short_side * resolution // long_side == 0:
        raise InputError(
            f"image of {width}x{height} pixels (width x height): its aspect ratio {long_side / short_side:.0f}:1 "
            f"leaves no pixel on the short side at processing_resolution {resolution} (the resize needs "
            f"long side <= {resolution} x short side); crop the image or raise processing_resolution"
        )


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, (list, tuple)) else [value]


class IrisDepthPipeline:
    """Text-conditioned latent-diffusion depth estimation over any :class:`DepthComponents` backend."""

    def __init__(
        self,
        components: DepthComponents,
        tokenizer: Any,
        scheduler: Any,
        *,
        default_denoising_steps: int | None = None,
        default_processing_resolution: int | None = None,
        text_cache_size: int = 16,
        extra_settings: dict[str, Any] | None = None,
    ) -> None:
        self.components = components
        self.tokenizer = tokenizer
        self.scheduler = scheduler
        self.default_denoising_steps = default_denoising_steps or 4
        self.default_processing_resolution = (
            default_processing_resolution if default_processing_resolution is not None else 768
        )
        self.extra_settings = dict(extra_settings or {})
        self.lotus = lotus_variant(self.extra_settings)
        self.depth_log_scale = check_log_scale(self.extra_settings.get(LOG_SCALE_KEY, 0.0))
        if self.lotus:
            self.extra_settings.setdefault("single_step", True)  # Lotus predicts x0 in one step at t = 999
        self.text_embeddings = TextEmbeddingCache(tokenizer, components.encode_text, capacity=text_cache_size)
        self.image_processor = MarigoldImageProcessor(vae_scale_factor=components.vae_scale_factor)

    # ------------------------------------------------------------------ loading and saving
    @classmethod
    def from_pretrained(
        cls,
        model_dir: str | Path,
        backend: str = "torch",
        device: str | torch.device = "cpu",
        dtype: torch.dtype = torch.float32,
        prediction_space: str | None = None,
        variant: str | None = None,
        tiny_decoder: bool | str | Path | None = None,
        **backend_options: Any,
    ) -> IrisDepthPipeline:
        """Load a model directory (diffusers layout) onto a backend (``torch``, ``onnxruntime``, ``tensorrt``).

        Marigold, E2E-FT and Lotus checkpoints load as published. ``prediction_space`` (``depth`` or
        ``disparity``) says what the checkpoint predicts when its files do not (see :mod:`iris_model.lotus`);
        disparity predictions are returned flipped, larger = farther.

        ``variant`` (e.g. ``"fp16"``) loads ``*.fp16.safetensors`` as diffusers does; a checkpoint holding only
        one variant's files loads without it. ``tiny_decoder``: ``None`` decodes with the checkpoint's tiny
        decoder when it has one, ``False`` always with the VAE, a folder (torch backend) with that
        ``AutoencoderTiny`` (e.g. TAESD for Stable-Diffusion-2-based checkpoints); see :meth:`set_decoder`.

        Raises :class:`~iris_model.errors.ModelLoadError` with the path and the reason when anything is
        missing or corrupt, and :class:`~iris_model.errors.BackendUnavailableError` for a backend whose
        library is not installed.
        """
        from .loading import load_scheduler, load_tokenizer
        from .runtime import load_components

        model_dir = Path(model_dir)
        index: ModelIndex = read_model_index(model_dir)
        components = load_components(
            model_dir, backend, device=device, dtype=dtype, index=index, variant=variant, tiny_decoder=tiny_decoder,
            **backend_options,
        )
        tokenizer = load_tokenizer(model_dir, *index.components["tokenizer"])
        scheduler = load_scheduler(model_dir, *index.components["scheduler"])
        known = {"_class_name", "_diffusers_version", "prediction_type", "default_denoising_steps",
                 "default_processing_resolution", *index.components}
        extra = {k: v for k, v in index.raw.items() if k not in known}
        lotus = lotus_variant(index.raw)
        if lotus:
            scheduler = lotus_scheduler(scheduler)
            extra["lotus"] = lotus
            for unused in ("safety_checker", "feature_extractor", "image_encoder", "requires_safety_checker"):
                extra.pop(unused, None)
        try:
            space = resolve_prediction_space(model_dir, index.raw, prediction_space)
        except InputError as exc:
            raise ModelLoadError(model_dir, str(exc)) from exc
        if lotus or space != "depth":
            extra["prediction_space"] = space
        try:
            return cls(
                components,
                tokenizer,
                scheduler,
                default_denoising_steps=index.default_denoising_steps,
                default_processing_resolution=index.default_processing_resolution,
                extra_settings=extra,
            )
        except InputError as exc:
            raise ModelLoadError(model_dir, str(exc)) from exc

    def save_pretrained(self, model_dir: str | Path, weights_dtype: torch.dtype | None = None) -> None:
        """Write the pipeline in the diffusers layout (torch backend only; weights as safetensors).

        ``weights_dtype`` (e.g. ``torch.float16``) stores the weights in that precision to halve the files.
        """
        save = getattr(self.components, "save_pretrained", None)
        if save is None:
            raise InputError(f"the {self.components.name} backend cannot save weights; load with backend='torch'")
        model_dir = Path(model_dir)
        model_dir.mkdir(parents=True, exist_ok=True)
        save(model_dir, weights_dtype=weights_dtype)
        refs = getattr(self.components, "external_refs", {})
        if "tokenizer" in refs:
            import json

            from .loading import EXTERNAL_REF

            (model_dir / "tokenizer").mkdir(exist_ok=True)
            (model_dir / "tokenizer" / EXTERNAL_REF).write_text(json.dumps(refs["tokenizer"], indent=2) + "\n")
        else:
            self.tokenizer.save_pretrained(str(model_dir / "tokenizer"))
        self.scheduler.save_pretrained(str(model_dir / "scheduler"))
        comps = self.components
        objects = {
            "unet": comps.unet,  # type: ignore[attr-defined]
            "vae": comps.vae,  # type: ignore[attr-defined]
            "text_encoder": comps.text_encoder,  # type: ignore[attr-defined]
            "tokenizer": self.tokenizer,
            "scheduler": self.scheduler,
        }
        if getattr(comps, "tiny_decoder", None) is not None:
            objects["tiny_decoder"] = comps.tiny_decoder  # type: ignore[attr-defined]
        settings = {
            "prediction_type": "depth",
            "default_denoising_steps": self.default_denoising_steps,
            "default_processing_resolution": self.default_processing_resolution,
            **self.extra_settings,
        }
        write_model_index(model_dir, objects, settings)

    def set_decoder(self, kind: str) -> None:
        """Decode with the ``tiny`` decoder (when the model has one) or the full ``vae`` decoder."""
        if kind not in ("tiny", "vae"):
            raise InputError(f"decoder must be 'tiny' or 'vae', got {kind!r}")
        has_tiny = getattr(self.components, "tiny_decoder", None) is not None
        if kind == "tiny" and not has_tiny:
            raise InputError("this model has no tiny decoder (see tiny_decoder= of from_pretrained)")
        if has_tiny:
            self.components.use_tiny_decoder = kind == "tiny"  # type: ignore[attr-defined]

    @property
    def decoder(self) -> str:
        """``tiny`` or ``vae``: which decoder turns depth latents into depth."""
        return "tiny" if getattr(self.components, "use_tiny_decoder", False) else "vae"

    def set_scheduler(self, kind: str) -> None:
        """Switch to ``ddim``, ``ddpm`` or ``lcm`` with the same noise schedule and prediction type."""
        self.scheduler = convert_scheduler(self.scheduler, kind)

    # ------------------------------------------------------------------ inference
    def embed_text(self, text: str | None) -> torch.Tensor:
        """The cached text embedding ``[1, L, D]`` of a description (``None`` / ``""`` = unconditional)."""
        return self.text_embeddings(text)

    def _sync(self) -> None:
        if self.components.device.type == "cuda":
            torch.cuda.synchronize(self.components.device)

    def __call__(
        self,
        image: Any,
        text: str | Sequence[str | None] | None = None,
        *,
        num_inference_steps: int | None = None,
        ensemble_size: int = 1,
        processing_resolution: int | None = None,
        single_step: bool | None = None,
        generator: torch.Generator | None = None,
        latents: torch.Tensor | None = None,
        batch_size: int = 0,
        output_uncertainty: bool = False,
        output_latent: bool = False,
        match_input_resolution: bool = True,
        resample_method_input: str = "bilinear",
        resample_method_output: str = "bilinear",
        ensembling_kwargs: dict[str, Any] | None = None,
        cancel: Callable[[], bool] | None = None,
        init_latents: torch.Tensor | None = None,
        strength: float = 1.0,
    ) -> IrisDepthOutput:
        """Predict depth for one image or a list of images.

        Args:
            image: an ``H x W x 3`` (or ``H x W``) uint8/uint16/float array, a PIL image, a ``[3, H, W]`` or
                ``[N, 3, H, W]`` tensor in [0, 1], or a list of these.
            text: one description for all images, or one per image; ``None``/``""`` = no description.
            num_inference_steps: denoising steps, 1..50 (default: the model's ``default_denoising_steps``).
            ensemble_size: predictions per image, aligned and merged (Marigold ensembling).
            processing_resolution: long side the image is resized to before encoding; 0 = native size;
                default: the model's ``default_processing_resolution``.
            single_step: deterministic one-step prediction (t = T - 1, zero noise), as E2E-FT and Lotus;
                ``None`` follows the model (``"single_step": true`` in ``model_index.json`` for E2E-FT-trained
                checkpoints), else False.
            generator: seeds the initial noise. ``latents`` gives it explicitly instead (``[N * E, C, h, w]``).
            batch_size: most ensemble members per UNet call; 0 = all of a group in one call.
            cancel: called before each denoising step and before decoding; when it returns True the call
                stops there and raises :class:`~iris_model.errors.Cancelled` (a node shutting down mid-frame).
            init_latents: a clean depth latent ``[N * E, C, h, w]`` to start from (warm start, e.g. the previous
                video frame's ``latent``), as diffusers' image-to-image pipelines do: it is noised with the
                scheduler's ``add_noise`` to the first timestep run and only the trailing ``strength`` part of
                the ``num_inference_steps`` schedule is run (``int(steps * strength)`` steps, at least 1). The
                noise is ``latents`` when given, else drawn from ``generator``.
            strength: fraction of the schedule run from ``init_latents``, in (0, 1]; 1 = all steps (from
                pure noise under a zero-terminal-SNR schedule). Needs ``init_latents`` when below 1.
        """
        t_start = time.perf_counter()
        if single_step is None:
            single_step = bool(self.extra_settings.get("single_step", False))
        steps = 1 if single_step else check_steps(
            self.default_denoising_steps if num_inference_steps is None else num_inference_steps
        )
        if not isinstance(ensemble_size, int) or not 1 <= ensemble_size <= MAX_ENSEMBLE:
            raise InputError(f"ensemble_size must be in [1, {MAX_ENSEMBLE}], got {ensemble_size!r}")
        resolution = self.default_processing_resolution if processing_resolution is None else processing_resolution
        if not isinstance(resolution, int) or not 0 <= resolution <= MAX_PROCESSING_RESOLUTION:
            raise InputError(f"processing_resolution must be in [0, {MAX_PROCESSING_RESOLUTION}], got {resolution!r}")
        if batch_size < 0:
            raise InputError("batch_size must be >= 0")
        if latents is not None and generator is not None:
            raise InputError("give either latents or generator, not both")
        if not isinstance(strength, (int, float)) or not 0.0 < strength <= 1.0:
            raise InputError(f"strength must be in (0, 1], got {strength!r}")
        if strength < 1.0 and init_latents is None:
            raise InputError("strength < 1 needs init_latents to start from")
        if init_latents is not None and single_step:
            raise InputError("init_latents cannot be used with single_step (it always starts at t = T - 1)")

        images = self._load_images(image)
        if len({tuple(img.shape[2:]) for img in images}) > 1:
            raise InputError("images in one call must share a size; call once per size")
        _check_aspect_ratio(*images[0].shape[2:], resolution)
        texts = [normalize_text(t) for t in _as_list(text)]
        if len(texts) == 1:
            texts = texts * len(images)
        if len(texts) != len(images):
            raise InputError(f"{len(texts)} descriptions for {len(images)} images")

        # Images that share a description and a size are one group: one batched pass through each model.
        groups: dict[tuple[str, tuple[int, int]], list[int]] = {}
        for i, (img, txt) in enumerate(zip(images, texts, strict=True)):
            groups.setdefault((txt, tuple(img.shape[2:])), []).append(i)
        if (latents is not None or init_latents is not None) and len(groups) > 1:
            raise InputError("explicit latents need all images to share one description and size")

        run = _RunSettings(
            steps=steps, ensemble_size=ensemble_size, resolution=resolution, single_step=single_step,
            generator=generator, latents=latents, batch_size=batch_size, output_uncertainty=output_uncertainty,
            match_input_resolution=match_input_resolution, resample_in=resample_method_input,
            resample_out=resample_method_output, ensembling_kwargs=ensembling_kwargs, cancel=cancel,
            init_latents=init_latents, strength=float(strength),
        )
        self._model_hooks(run)
        timings = {"encode_text": 0.0, "encode_image": 0.0, "denoise": 0.0, "decode": 0.0}
        depth: list[np.ndarray | None] = [None] * len(images)
        uncertainty: list[np.ndarray | None] = [None] * len(images)
        out_latents = []
        for (txt, _), members in groups.items():
            t0 = time.perf_counter()
            embedding = self.embed_text(txt)
            self._sync()
            timings["encode_text"] += time.perf_counter() - t0
            batch = torch.cat([images[i] for i in members], dim=0)
            pred, unc, lat = self._run_group(batch, embedding, run, timings)
            for k, i in enumerate(members):
                depth[i] = pred[k]
                uncertainty[i] = None if unc is None else unc[k]
            out_latents.append(lat)
        timings["total"] = time.perf_counter() - t_start
        return IrisDepthOutput(
            depth=np.stack(depth).astype(np.float32),  # type: ignore[arg-type]
            uncertainty=np.stack(uncertainty).astype(np.float32) if output_uncertainty else None,  # type: ignore[arg-type]
            latent=torch.cat(out_latents) if output_latent else None,
            timings=timings,
        )

    def _warm_start(
        self, run: _RunSettings, noise: torch.Tensor, steps: int, device: torch.device, dtype: torch.dtype
    ) -> tuple[torch.Tensor, int]:
        """``init_latents`` noised to the first timestep run, and that timestep's index in the schedule.

        As diffusers' image-to-image pipelines: ``int(steps * strength)`` trailing steps are run (the small
        epsilon keeps e.g. 6 * (2 / 6) from rounding down), at least one.
        """
        init = run.init_latents
        assert init is not None
        if tuple(init.shape) != tuple(noise.shape):
            raise InputError(f"init_latents must have shape {tuple(noise.shape)}, got {tuple(init.shape)}")
        if not bool(torch.isfinite(init).all()):
            raise InputError("init_latents hold NaN or inf")
        run_steps = min(steps, max(1, int(steps * run.strength + 1e-6)))
        start_index = steps - run_steps
        self.scheduler.set_timesteps(steps, device=device)
        t_start = self.scheduler.timesteps[start_index : start_index + 1]
        noisy = self.scheduler.add_noise(init.to(device, dtype), noise, t_start.repeat(init.shape[0]))
        return noisy, start_index

    def _model_hooks(self, run: _RunSettings) -> None:
        """Set the run settings the checkpoint itself needs (Lotus-D/G input, disparity or log-spaced output)."""
        run.image_only = self.lotus == "d"
        run.noisy_start = self.lotus == "g"
        run.disparity = self.extra_settings.get("prediction_space") == "disparity"
        run.log_scale = self.depth_log_scale
        if run.image_only and not run.single_step:
            raise InputError("Lotus-D predicts in one step from the image alone: single_step=False is not possible")

    def _load_images(self, image: Any) -> list[torch.Tensor]:
        """Each input image as a ``[1, 3, H, W]`` float tensor in [0, 1] (CPU)."""
        items: list[Any] = []
        for item in _as_list(image):
            if torch.is_tensor(item) and item.dim() == 4:
                items.extend(item[i] for i in range(item.shape[0]))
            else:
                items.append(item)
        if not items:
            raise InputError("no image given")
        out = []
        for item in items:
            if isinstance(item, np.ndarray) and item.ndim == 3 and item.shape[2] == 4:
                item = item[..., :3]
            if isinstance(item, np.ndarray) and item.ndim == 3 and item.shape[2] == 3:
                item = np.ascontiguousarray(item)
            try:
                tensor = self.image_processor.load_image_canonical(item, torch.device("cpu"), torch.float32)
            except ValueError as exc:
                raise InputError(f"unsupported image: {exc}") from exc
            h, w = tensor.shape[2:]
            if h < 1 or w < 1:
                raise InputError(f"empty image ({h} x {w})")
            if tensor.min() < 0 or tensor.max() > 1:
                raise InputError("float images must hold values in [0, 1]")
            out.append(tensor)
        return out

    def _run_group(
        self, image: torch.Tensor, text_embedding: torch.Tensor, run: _RunSettings, timings: dict[str, float]
    ) -> tuple[np.ndarray, np.ndarray | None, torch.Tensor]:
        steps, ensemble_size, resolution, single_step = run.steps, run.ensemble_size, run.resolution, run.single_step
        generator, latents, batch_size = run.generator, run.latents, run.batch_size
        comps = self.components
        device, dtype = comps.device, comps.dtype
        num_images = image.shape[0]
        original_resolution = image.shape[2:]
        # Marigold's preprocessing: [0, 1] -> [-1, 1], long side to `resolution`, pad to the latent stride.
        image = image * 2.0 - 1.0
        if resolution > 0:
            image = self.image_processor.resize_to_max_edge(image, resolution, run.resample_in)
        image, padding = self.image_processor.pad_image(image, comps.vae_scale_factor)
        image = image.to(device)

        total = num_images * ensemble_size
        chunk = batch_size or total

        t0 = time.perf_counter()
        image_latent = torch.cat([comps.encode_image(image[i : i + chunk]) for i in range(0, num_images, chunk)])
        image_latent = image_latent.to(dtype).repeat_interleave(ensemble_size, dim=0)  # [N*E, C, h, w]
        self._sync()
        timings["encode_image"] += time.perf_counter() - t0

        if latents is not None:
            if tuple(latents.shape) != tuple(image_latent.shape):
                raise InputError(f"latents must have shape {tuple(image_latent.shape)}, got {tuple(latents.shape)}")
            pred_latent = latents.to(device, dtype)
        elif single_step and not run.noisy_start:
            pred_latent = torch.zeros_like(image_latent)
        else:
            pred_latent = randn_tensor(image_latent.shape, generator=generator, device=device, dtype=dtype)

        start_index = 0
        if run.init_latents is not None:
            pred_latent, start_index = self._warm_start(run, pred_latent, steps, device, dtype)

        text = text_embedding.to(device, dtype)
        t0 = time.perf_counter()
        results = []
        for i in range(0, total, chunk):
            batch_image = image_latent[i : i + chunk]
            batch_pred = pred_latent[i : i + chunk]
            # A contiguous copy, as diffusers' Marigold: a stride-0 view takes other CPU kernels (1e-6 apart).
            batch_text = text.repeat(batch_image.shape[0], 1, 1)
            self.scheduler.set_timesteps(steps, device=device)
            if single_step:
                run.check_cancel()
                t_final = self.scheduler.config.num_train_timesteps - 1
                noise = comps.denoise(_unet_input(run, batch_image, batch_pred), t_final, batch_text)
                out = self.scheduler.step(noise, torch.tensor(t_final, device=device), batch_pred)
                batch_pred = getattr(out, "pred_original_sample", None)
                if batch_pred is None:
                    batch_pred = out.denoised
            else:
                if start_index and hasattr(self.scheduler, "set_begin_index"):
                    self.scheduler.set_begin_index(start_index)
                for t in self.scheduler.timesteps[start_index:]:
                    run.check_cancel()
                    noise = comps.denoise(_unet_input(run, batch_image, batch_pred), int(t), batch_text)
                    batch_pred = self.scheduler.step(noise, t, batch_pred, generator=generator).prev_sample
            results.append(batch_pred)
        pred_latent = torch.cat(results)
        self._sync()
        timings["denoise"] += time.perf_counter() - t0

        run.check_cancel()
        t0 = time.perf_counter()
        prediction = torch.cat([comps.decode(pred_latent[i : i + chunk]) for i in range(0, total, chunk)])
        prediction = prediction.float().cpu()
        timings["decode"] += time.perf_counter() - t0
        _check_finite(prediction, pred_latent)
        prediction = decode_depth(prediction, run.log_scale)
        if run.disparity:
            prediction = 1.0 - prediction

        prediction = self.image_processor.unpad_image(prediction, padding)  # [N*E, 1, PH, PW]
        uncertainty = None
        if ensemble_size > 1:
            prediction = prediction.reshape(num_images, ensemble_size, *prediction.shape[1:])
            merged = [
                MarigoldDepthPipeline.ensemble_depth(
                    prediction[i], True, True, run.output_uncertainty, **(run.ensembling_kwargs or {})
                )
                for i in range(num_images)
            ]
            prediction = torch.cat([m[0] for m in merged], dim=0)
            if run.output_uncertainty:
                uncertainty = torch.cat([m[1] for m in merged], dim=0)
        elif run.output_uncertainty:
            uncertainty = torch.zeros_like(prediction)
        if run.match_input_resolution:
            prediction = self.image_processor.resize_antialias(
                prediction, original_resolution, run.resample_out, is_aa=False
            )
            if uncertainty is not None:
                uncertainty = self.image_processor.resize_antialias(
                    uncertainty, original_resolution, run.resample_out, is_aa=False
                )
        depth_np = prediction[:, 0].numpy()
        unc_np = None if uncertainty is None else uncertainty[:, 0].numpy()
        return depth_np, unc_np, pred_latent


def _unet_input(run: _RunSettings, image_latent: torch.Tensor, pred_latent: torch.Tensor) -> torch.Tensor:
    """The UNet's input: image latent ++ current latent (Marigold, Lotus-G), or the image latent alone (Lotus-D)."""
    return image_latent if run.image_only else torch.cat([image_latent, pred_latent], dim=1)
