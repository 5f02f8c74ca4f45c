"""The four model components behind one interface, so every runtime backend shares one denoising loop.

A backend implements :class:`DepthComponents` (torch here; ONNX Runtime and TensorRT in
``iris_model.runtime``). Tensors crossing this interface are torch tensors on ``self.device``; a backend
that runs elsewhere converts at its boundary. Shapes (B batch, L tokens, D text width, h = H / stride):

- ``encode_text(ids [B, L] int64) -> [B, L, D]``                       frozen text encoder, last hidden state
- ``encode_image(rgb [B, 3, H, W] in [-1, 1]) -> [B, C, h, w]``        VAE encoder, latent mode * scaling factor
- ``denoise(latents [B, 2C, h, w], t, text [B, L, D]) -> [B, C, h, w]`` UNet on image latent ++ depth latent
- ``decode(latents [B, C, h, w]) -> [B, 1, H, W] in [0, 1]``           VAE decoder, channel mean, clipped, 0 = near

A checkpoint may carry a tiny decoder (diffusers ``AutoencoderTiny``, TAESD's architecture, in ``tiny_decoder/``)
distilled from its VAE decoder: when present, ``decode`` uses it unless ``use_tiny_decoder`` is set False.
"""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import torch

from .errors import ModelLoadError
from .loading import (
    EXTERNAL_REF,
    MODEL_INDEX,
    OPTIONAL_COMPONENTS,
    ModelIndex,
    load_torch_module,
    read_model_index,
    resolve_component_dir,
)
from .lotus import configure_lotus_components, lotus_variant


@runtime_checkable
class DepthComponents(Protocol):
    """What a runtime backend provides. See the module docstring for shapes and units."""

    name: str
    device: torch.device
    dtype: torch.dtype
    vae_scale_factor: int
    latent_channels: int

    def encode_text(self, input_ids: torch.Tensor) -> torch.Tensor: ...

    def encode_image(self, image: torch.Tensor) -> torch.Tensor: ...

    def denoise(self, latents: torch.Tensor, timestep: int, text: torch.Tensor) -> torch.Tensor: ...

    def decode(self, latents: torch.Tensor) -> torch.Tensor: ...


TINY_DECODER = "tiny_decoder"


def make_tiny_decoder(latent_channels: int = 4, width: int = 32, blocks: tuple[int, ...] = (3, 3, 3, 1)) -> Any:
    """A fresh diffusers ``AutoencoderTiny`` whose decoder (TAESD's, ``width`` channels throughout, one 2x
    upsampling between blocks, so stride ``2 ** (len(blocks) - 1)``) decodes UNet-space latents.

    Only the decoder is used (the VAE encodes); the encoder is kept minimal to keep the file small.
    """
    from diffusers import AutoencoderTiny

    return AutoencoderTiny(
        latent_channels=latent_channels,
        decoder_block_out_channels=(width,) * len(blocks),
        num_decoder_blocks=blocks,
        encoder_block_out_channels=(8,) * len(blocks),
        num_encoder_blocks=(1,) * len(blocks),
    ).eval()


def tiny_decoder_stride(config: Any) -> int:
    """Pixels per latent pixel of an ``AutoencoderTiny`` decoder (one upsampling between its blocks)."""
    blocks = config.num_decoder_blocks
    return int(config.upsampling_scaling_factor) ** (len(blocks) - 1)


def check_tiny_decoder(config: Any, latent_channels: int, vae_scale_factor: int, where: object) -> None:
    """Refuse a tiny decoder that does not read this VAE's latents (channels) at its stride."""
    channels, stride = int(config.latent_channels), tiny_decoder_stride(config)
    if channels != latent_channels or stride != vae_scale_factor:
        raise ModelLoadError(
            where, f"the tiny decoder takes {channels}-channel latents at stride {stride}; this model's VAE makes "
            f"{latent_channels}-channel latents at stride {vae_scale_factor}"
        )


def load_tiny_decoder(folder: Path) -> Any:
    """An ``AutoencoderTiny`` from a folder of its own (config.json + safetensors), e.g. a TAESD download."""
    if (folder / TINY_DECODER).is_dir() and not (folder / "config.json").is_file():
        folder = folder / TINY_DECODER
    return load_torch_module(folder.parent, folder.name, *OPTIONAL_COMPONENTS[TINY_DECODER])


def add_tiny_decoder(model_dir: str | Path, tiny_dir: str | Path) -> None:
    """Copy an ``AutoencoderTiny`` folder into a checkpoint as ``tiny_decoder/`` and declare it in
    ``model_index.json`` (after checking that it loads and fits the checkpoint's VAE)."""
    model_dir, tiny_dir = Path(model_dir), Path(tiny_dir)
    index = read_model_index(model_dir)
    vae_config = json.loads((resolve_component_dir(model_dir, "vae") / "config.json").read_text())
    tiny = load_tiny_decoder(tiny_dir)
    check_tiny_decoder(tiny.config, int(vae_config["latent_channels"]),
                       2 ** (len(vae_config["block_out_channels"]) - 1), tiny_dir)
    target = model_dir / TINY_DECODER
    if target.exists():
        shutil.rmtree(target)
    tiny.save_pretrained(str(target), safe_serialization=True)
    raw = dict(index.raw)
    raw[TINY_DECODER] = list(OPTIONAL_COMPONENTS[TINY_DECODER])
    (model_dir / MODEL_INDEX).write_text(json.dumps(raw, indent=2, sort_keys=True) + "\n")


def decode_to_depth(decoded_rgb: torch.Tensor, readout: str = "marigold") -> torch.Tensor:
    """The depth read-out of a decoded 3-channel image in [0, 1].

    ``marigold``: channel mean, clipped to [-1, 1], mapped to [0, 1]. ``lotus``: each channel mapped to [0, 1]
    and clipped, then the mean (Lotus's ``postprocess`` then ``mean(axis=-1)``).

    A non-finite value becomes NaN rather than being clipped to a valid-looking 0 or 1, so that the
    pipeline's finiteness check sees a decoder that overflowed.
    """
    if readout == "lotus":
        rgb = torch.where(torch.isfinite(decoded_rgb), decoded_rgb, torch.full_like(decoded_rgb, float("nan")))
        return ((rgb + 1.0) / 2.0).clamp(0.0, 1.0).mean(dim=1, keepdim=True)
    depth = decoded_rgb.mean(dim=1, keepdim=True)
    depth = torch.where(torch.isfinite(depth), depth, torch.full_like(depth, float("nan")))
    return (depth.clamp(-1.0, 1.0) + 1.0) / 2.0


class TorchComponents:
    """The reference backend: diffusers / transformers modules on CPU or CUDA.

    ``dtype`` applies to the text encoder and UNet; the VAE stays in float32 because Stable-Diffusion
    VAEs overflow in float16.
    """

    name = "torch"

    def __init__(
        self,
        unet: Any,
        vae: Any,
        text_encoder: Any,
        device: str | torch.device = "cpu",
        dtype: torch.dtype = torch.float32,
        external_refs: dict[str, dict[str, str]] | None = None,
        tiny_decoder: Any | None = None,
    ) -> None:
        self.device = torch.device(device)
        self.dtype = dtype
        # Cast only when asked: diffusers warns on any .to(dtype), even a no-op one.
        self.unet = unet.to(self.device) if dtype == torch.float32 else unet.to(self.device, dtype)
        self.vae = vae.to(self.device)
        self.text_encoder = (
            text_encoder.to(self.device) if dtype == torch.float32 else text_encoder.to(self.device, dtype)
        )
        self.vae_scale_factor = 2 ** (len(self.vae.config.block_out_channels) - 1)
        self.latent_channels = int(self.vae.config.latent_channels)
        self.scaling_factor = float(self.vae.config.scaling_factor)
        self.external_refs = dict(external_refs or {})
        self.tiny_decoder = None if tiny_decoder is None else tiny_decoder.to(self.device)
        if self.tiny_decoder is not None:
            check_tiny_decoder(self.tiny_decoder.config, self.latent_channels, self.vae_scale_factor, "tiny_decoder")
        #: decode with the tiny decoder when there is one; set False (``pipe.set_decoder("vae")``) for the VAE's
        self.use_tiny_decoder = self.tiny_decoder is not None
        # Lotus checkpoints (see iris_model.lotus): the task embedding as UNet class labels, Lotus's read-out.
        self.class_labels: torch.Tensor | None = None
        self.depth_readout = "marigold"

    @classmethod
    def from_pretrained(
        cls,
        model_dir: str | Path,
        device: str | torch.device = "cpu",
        dtype: torch.dtype = torch.float32,
        index: ModelIndex | None = None,
        variant: str | None = None,
        tiny_decoder: bool | str | Path | None = None,
    ) -> TorchComponents:
        """Load the weight-carrying components; ``variant`` (e.g. ``"fp16"``) as diffusers' ``from_pretrained``.

        ``tiny_decoder``: ``None`` loads the checkpoint's ``tiny_decoder/`` when ``model_index.json`` declares
        one, ``False`` never loads it, a folder path loads that ``AutoencoderTiny`` (e.g. TAESD for a Stable
        Diffusion 2 based checkpoint such as Marigold) in its place.
        """
        model_dir = Path(model_dir)
        index = index or read_model_index(model_dir)
        modules = {
            name: load_torch_module(model_dir, name, *index.components[name], variant=variant)
            for name in ("unet", "vae", "text_encoder")
        }
        tiny = None
        if tiny_decoder is True and TINY_DECODER not in index.components:
            raise ModelLoadError(model_dir, "tiny_decoder=True, but model_index.json declares no tiny_decoder")
        if isinstance(tiny_decoder, (str, Path)):
            tiny = load_tiny_decoder(Path(tiny_decoder))
        elif tiny_decoder is not False and TINY_DECODER in index.components:
            tiny = load_torch_module(model_dir, TINY_DECODER, *index.components[TINY_DECODER], variant=variant)
        refs = {}
        for name in ("text_encoder", "tokenizer"):
            ref = model_dir / name / EXTERNAL_REF
            if ref.is_file():
                refs[name] = json.loads(ref.read_text())
        components = cls(modules["unet"], modules["vae"], modules["text_encoder"], device, dtype, refs, tiny)
        configure_lotus_components(components, lotus_variant(index.raw))
        return components

    def save_pretrained(self, model_dir: Path, weights_dtype: torch.dtype | None = None) -> None:
        """Write the three weight-carrying components (safetensors); external ones as references only.

        ``weights_dtype=torch.float16`` stores half-size files; they load back in float32 unless asked otherwise.
        The tiny decoder, when there is one, is stored as it is: it is small (about 1 MB), and halving it
        would only round the decoder the model runs with.
        """
        modules = [("unet", self.unet), ("vae", self.vae), ("text_encoder", self.text_encoder)]
        if self.tiny_decoder is not None:
            modules.append((TINY_DECODER, self.tiny_decoder))
        for name, module in modules:
            target = model_dir / name
            if name in self.external_refs:
                target.mkdir(parents=True, exist_ok=True)
                (target / EXTERNAL_REF).write_text(json.dumps(self.external_refs[name], indent=2) + "\n")
                continue
            cast = weights_dtype is not None and name != TINY_DECODER
            if cast and weights_dtype != next(module.parameters()).dtype:
                module = copy.deepcopy(module).to(weights_dtype)
            module.save_pretrained(str(target), safe_serialization=True)

    @torch.inference_mode()
    def encode_text(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.text_encoder(input_ids.to(self.device))[0]

    @torch.inference_mode()
    def encode_image(self, image: torch.Tensor) -> torch.Tensor:
        posterior = self.vae.encode(image.to(self.device, torch.float32)).latent_dist
        return (posterior.mode() * self.scaling_factor).to(self.dtype)

    @torch.inference_mode()
    def denoise(self, latents: torch.Tensor, timestep: int, text: torch.Tensor) -> torch.Tensor:
        t = torch.tensor(timestep, device=self.device, dtype=torch.long)
        labels = None if self.class_labels is None else self.class_labels.to(self.dtype).expand(latents.shape[0], -1)
        return self.unet(
            latents.to(self.dtype), t, encoder_hidden_states=text.to(self.dtype), class_labels=labels,
            return_dict=False,
        )[0]

    @torch.inference_mode()
    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        latents = latents.to(torch.float32)
        if self.tiny_decoder is not None and self.use_tiny_decoder:
            sf = float(self.tiny_decoder.config.scaling_factor)
            return decode_to_depth(self.tiny_decoder.decode(latents / sf, return_dict=False)[0], self.depth_readout)
        rgb = self.vae.decode(latents / self.scaling_factor, return_dict=False)[0]
        return decode_to_depth(rgb, self.depth_readout)


def copy_component(model_dir: Path, name: str, target_dir: Path) -> None:
    """Copy a light component (tokenizer, scheduler) folder or its external reference as it is."""
    src = model_dir / name
    dst = target_dir / name
    if (src / EXTERNAL_REF).is_file():
        dst.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src / EXTERNAL_REF, dst / EXTERNAL_REF)
    else:
        shutil.copytree(resolve_component_dir(model_dir, name), dst, dirs_exist_ok=True)
