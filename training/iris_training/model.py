"""The models a run starts from: load a pipeline folder, adapt it to Iris, choose what trains.

Adaptations, each logged:
- a Stable Diffusion UNet (4 input channels) gets Marigold's 8-channel ``conv_in``: the image latent and
  the depth latent share the pretrained weights, duplicated and halved so the first activations keep
  their scale;
- a text encoder whose width differs from the UNet's ``cross_attention_dim`` either stops the run
  (``text_projection: error``) or gets a trained linear projection inside the UNet (``linear``: diffusers'
  ``encoder_hid_proj``, so ``iris_model`` and ``iris-export`` load the result like any UNet).
"""

from __future__ import annotations

import fnmatch
import logging
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from diffusers import UNet2DConditionModel

from iris_model import IrisDepthPipeline
from iris_model.components import TorchComponents
from iris_model.schedulers import default_scheduler
from iris_model.text import TextEmbeddingCache

from .config import ModelConfig
from .errors import ConfigError, TrainingError

logger = logging.getLogger(__name__)


@dataclass
class Models:
    """Everything a run needs from the starting weights (modules on CPU, float32)."""

    unet: Any  # diffusers UNet2DConditionModel (typed Any: its decorators defeat mypy)
    vae: Any
    text_encoder: Any
    tokenizer: Any
    external_refs: dict[str, dict[str, str]] = field(default_factory=dict)
    default_denoising_steps: int | None = None
    default_processing_resolution: int | None = None
    extra_settings: dict[str, Any] = field(default_factory=dict)
    tiny_decoder: Any | None = None  # the checkpoint's AutoencoderTiny depth decoder, when it declares one

    @property
    def vae_scale_factor(self) -> int:
        return 2 ** (len(self.vae.config.block_out_channels) - 1)

    @property
    def scaling_factor(self) -> float:
        return float(self.vae.config.scaling_factor)


def widen_conv_in(unet: Any) -> Any:
    """Marigold's 4 -> 8 input channels: ``[image latent, depth latent]`` both see the old weights / 2."""
    old = unet.conv_in
    new = torch.nn.Conv2d(
        old.in_channels * 2, old.out_channels, old.kernel_size, old.stride, old.padding,
        dtype=old.weight.dtype, device=old.weight.device,
    )
    with torch.no_grad():
        new.weight.copy_(old.weight.repeat(1, 2, 1, 1) * 0.5)
        if old.bias is not None and new.bias is not None:
            new.bias.copy_(old.bias)
    unet.conv_in = new
    unet.register_to_config(in_channels=old.in_channels * 2)
    return unet


def add_text_projection(unet: Any, text_width: int) -> Any:
    """A UNet like ``unet`` with a linear ``encoder_hid_proj`` from ``text_width`` to its cross-attention width."""
    config = {k: v for k, v in unet.config.items() if not k.startswith("_")}
    config.update(encoder_hid_dim=text_width, encoder_hid_dim_type="text_proj")
    new = UNet2DConditionModel.from_config(config)
    missing, unexpected = new.load_state_dict(unet.state_dict(), strict=False)
    if unexpected or any(not k.startswith("encoder_hid_proj.") for k in missing):
        raise TrainingError(f"could not add a text projection (missing {missing}, unexpected {unexpected})")
    return new


def text_width(text_encoder: Any, tokenizer: Any) -> int:
    """The text encoder's output width, measured on the empty prompt (works for any architecture)."""
    cache = TextEmbeddingCache(tokenizer, lambda ids: text_encoder(ids.to(text_encoder.device))[0], capacity=1)
    return int(cache("").shape[-1])


def unet_text_width(unet: Any) -> int:
    """The width of the text states the UNet accepts (its projection's input, if it has one)."""
    if unet.config.encoder_hid_dim_type == "text_proj" and unet.config.encoder_hid_dim:
        return int(unet.config.encoder_hid_dim)
    return int(unet.config.cross_attention_dim)


def load_models(cfg: ModelConfig) -> Models:
    """Load ``cfg.init`` (or build the tiny random model) and adapt it as the module docstring says."""
    if cfg.init == "tiny":
        from iris_model.testing import make_tiny_pipeline

        with tempfile.TemporaryDirectory(prefix="iris-tiny-") as tmp:
            pipe = make_tiny_pipeline(seed=cfg.tiny_seed, prediction_type=cfg.prediction_type, work_dir=Path(tmp))
    else:
        pipe = IrisDepthPipeline.from_pretrained(cfg.init, backend="torch", device="cpu", dtype=torch.float32)
    comps = pipe.components
    if not isinstance(comps, TorchComponents):
        raise TrainingError(f"{cfg.init}: training needs the torch backend's modules")
    init_prediction = getattr(pipe.scheduler.config, "prediction_type", None)
    if init_prediction and init_prediction != cfg.prediction_type:
        logger.warning("starting weights were trained for %s; this run trains %s", init_prediction,
                       cfg.prediction_type)

    unet = comps.unet
    latent = int(comps.latent_channels)
    if unet.config.in_channels == latent:
        logger.info("UNet has %d input channels (Stable Diffusion): widening conv_in to %d as Marigold does",
                    latent, 2 * latent)
        unet = widen_conv_in(unet)
    elif unet.config.in_channels != 2 * latent:
        raise TrainingError(
            f"{cfg.init}: UNet has {unet.config.in_channels} input channels; expected {latent} (Stable Diffusion) "
            f"or {2 * latent} (image latent + depth latent)"
        )
    if unet.config.out_channels != latent:
        raise TrainingError(f"{cfg.init}: UNet predicts {unet.config.out_channels} channels, the VAE has {latent}")

    width = text_width(comps.text_encoder, pipe.tokenizer)
    expected = unet_text_width(unet)
    if width != expected:
        if cfg.text_projection == "error":
            raise TrainingError(
                f"the text encoder outputs {width}-wide states but the UNet's cross-attention takes {expected}; "
                "use a matching encoder, or set model.text_projection: linear to learn a projection"
            )
        logger.info("adding a learned linear text projection %d -> %d inside the UNet", width, expected)
        unet = add_text_projection(unet, width)

    return Models(
        unet=unet,
        vae=comps.vae,
        text_encoder=comps.text_encoder,
        tokenizer=pipe.tokenizer,
        external_refs=dict(comps.external_refs),
        default_denoising_steps=cfg.default_denoising_steps or pipe.default_denoising_steps,
        default_processing_resolution=cfg.default_processing_resolution
        if cfg.default_processing_resolution is not None
        else pipe.default_processing_resolution,
        extra_settings=dict(pipe.extra_settings),
        tiny_decoder=getattr(comps, "tiny_decoder", None),
    )


def select_trainable(unet: Any, patterns: list[str]) -> list[torch.nn.Parameter]:
    """Enable gradients for UNet parameters whose names match any fnmatch pattern; freeze the rest."""
    chosen = []
    for name, param in unet.named_parameters():
        on = any(fnmatch.fnmatchcase(name, p) for p in patterns)
        param.requires_grad_(on)
        if on:
            chosen.append(param)
    if not chosen:
        raise ConfigError(f"model.trainable {patterns} matches no UNet parameter")
    return chosen


class TinyDepthDecoder(torch.nn.Module):
    """A checkpoint's tiny decoder (diffusers ``AutoencoderTiny``) as a module whose ``forward`` is the depth
    decode: a scaled latent ``[B, 4, h, w]`` -> ``[B, H, W]``, the channel mean in [-1, 1] units, unclamped so
    that gradients pass. A module of its own so that accelerate can prepare it (DDP) when it trains. It runs in
    float32 even under mixed precision (accelerate's prepare wraps ``forward`` in its autocast), as at inference."""

    def __init__(self, tiny: Any) -> None:
        super().__init__()
        self.tiny = tiny

    def forward(self, latent: torch.Tensor) -> torch.Tensor:
        with torch.autocast(latent.device.type, enabled=False):
            return self.tiny.decode(latent.float() / float(self.tiny.config.scaling_factor)).sample.mean(1)


def build_pipeline(
    models: Models, unet: Any, prediction_type: str, extra: dict[str, Any] | None = None,
    tiny_decoder: bool = False,
) -> IrisDepthPipeline:
    """An inference pipeline over the given UNet (shared, not copied) and the frozen parts.

    Its scheduler is Iris's default (DDIM, trailing spacing) with the trained prediction type. With
    ``tiny_decoder`` it decodes (and saves) the starting checkpoint's tiny decoder, for a UNet trained through it.
    """
    device = next(unet.parameters()).device
    dtype = next(unet.parameters()).dtype
    comps = TorchComponents(unet, models.vae, models.text_encoder, device=device, dtype=dtype,
                            external_refs=models.external_refs,
                            tiny_decoder=models.tiny_decoder if tiny_decoder else None)
    return IrisDepthPipeline(
        comps,
        models.tokenizer,
        default_scheduler(prediction_type),
        default_denoising_steps=models.default_denoising_steps,
        default_processing_resolution=models.default_processing_resolution,
        extra_settings={**models.extra_settings, **(extra or {})},
    )


class CaptionEncoder:
    """Captions -> padded text states for a batch, through the frozen encoder, cached by caption.

    Tokenization and encoding are ``iris_model``'s own (:class:`~iris_model.text.TextEmbeddingCache`), so the
    empty caption gives exactly the embedding inference uses for ``text=None``. Captions of different
    token lengths are zero-padded and masked (``encoder_attention_mask``): masked tokens get a -10000
    attention bias, so each image sees only its own tokens, as at inference.
    """

    def __init__(self, tokenizer: Any, text_encoder: Any, capacity: int) -> None:
        self.text_encoder = text_encoder

        def encode(ids: torch.Tensor) -> torch.Tensor:
            return text_encoder(ids.to(text_encoder.device))[0]

        self.cache = TextEmbeddingCache(tokenizer, encode, capacity=capacity)

    def __call__(self, captions: list[str]) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``([B, L, D] states, [B, L] mask or None when all captions have the same length)``."""
        states = [self.cache(c) for c in captions]
        length = max(s.shape[1] for s in states)
        if all(s.shape[1] == length for s in states):
            return torch.cat(states).clone(), None
        batch = states[0].new_zeros(len(states), length, states[0].shape[-1])
        mask = torch.zeros(len(states), length, dtype=torch.bool, device=batch.device)
        for i, s in enumerate(states):
            batch[i, : s.shape[1]] = s[0]
            mask[i, : s.shape[1]] = True
        return batch, mask
