"""Random-weight replicas of published Stable-Diffusion-2-based depth checkpoints (Marigold v1-1, Lotus-D/G).

There is no model hub here, so tests and benchmarks build the published *architectures* with random weights:
the components' configurations are those of the published checkpoints (Stable Diffusion 2's UNet, VAE and
OpenCLIP ViT-H text tower; Lotus's projection class embedding and channel counts), and Lotus replicas are
written in the layout Lotus's ``save_pretrained`` gives them (``model_index.json`` naming ``LotusGPipeline`` /
``LotusDPipeline``, a PNDM or DDIM scheduler, empty safety checker), so that loading them exercises the same
code a downloaded checkpoint goes through.

Sizes: ``full`` is the published width (UNet 865.9 M parameters, text encoder 340.4 M, VAE 83.7 M); ``half``
halves every width (same depth, same head count), for memory measurements on a small machine; ``small`` keeps
the block structure with tiny widths and a 2-layer text encoder, for tests. The tokenizer is the byte-level
CLIP tokenizer of :mod:`iris_model.testing` (the real CLIP BPE vocabulary is not needed to measure speed; a
description simply tokenizes into more tokens).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from diffusers import AutoencoderKL, DDIMScheduler, PNDMScheduler, UNet2DConditionModel
from transformers import CLIPTextConfig, CLIPTextModel

from .components import TorchComponents
from .lotus import LOTUS_PIPELINES, configure_lotus_components
from .pipeline import IrisDepthPipeline
from .schedulers import DEFAULT_SCHEDULER_CONFIG
from .testing import make_tiny_clip_tokenizer

KINDS = ("marigold-v1-1", "lotus-d", "lotus-g")
SIZES = ("full", "half", "small")

#: Stable Diffusion 2's UNet (as in Marigold v1-1, whose UNet takes image latent ++ depth latent: 8 channels).
SD2_UNET: dict[str, Any] = {
    "sample_size": 96,
    "in_channels": 4,
    "out_channels": 4,
    "down_block_types": ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"],
    "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"],
    "block_out_channels": [320, 640, 1280, 1280],
    "layers_per_block": 2,
    "attention_head_dim": [5, 10, 20, 20],  # diffusers' name; these are SD2's head counts
    "cross_attention_dim": 1024,
    "use_linear_projection": True,
    "norm_num_groups": 32,
    "flip_sin_to_cos": True,
    "freq_shift": 0,
}
#: Stable Diffusion 2's VAE (stride 8, 4 latent channels).
SD2_VAE: dict[str, Any] = {
    "in_channels": 3,
    "out_channels": 3,
    "down_block_types": ["DownEncoderBlock2D"] * 4,
    "up_block_types": ["UpDecoderBlock2D"] * 4,
    "block_out_channels": [128, 256, 512, 512],
    "layers_per_block": 2,
    "latent_channels": 4,
    "norm_num_groups": 32,
    "sample_size": 768,
    "scaling_factor": 0.18215,
}
#: The OpenCLIP ViT-H/14 text tower as Stable Diffusion 2 ships it (``CLIPTextModel``; 23 of its 24 layers).
VIT_H_TEXT: dict[str, Any] = {
    "vocab_size": 49408,
    "hidden_size": 1024,
    "intermediate_size": 4096,
    "num_hidden_layers": 23,
    "num_attention_heads": 16,
    "max_position_embeddings": 77,
    "hidden_act": "gelu",
    "projection_dim": 512,
    "bos_token_id": 49406,
    "eos_token_id": 49407,
    "pad_token_id": 1,
}
#: Stable Diffusion 2 base's scheduler, which Lotus's ``save_pretrained`` keeps (Lotus never calls it).
SD2_PNDM: dict[str, Any] = {
    "beta_start": 0.00085, "beta_end": 0.012, "beta_schedule": "scaled_linear", "num_train_timesteps": 1000,
    "prediction_type": "epsilon", "set_alpha_to_one": False, "skip_prk_steps": True, "steps_offset": 1,
}


def _scaled(size: str) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    unet, vae, text = dict(SD2_UNET), dict(SD2_VAE), dict(VIT_H_TEXT)
    if size == "half":
        unet["block_out_channels"] = [c // 2 for c in unet["block_out_channels"]]
        vae["block_out_channels"] = [c // 2 for c in vae["block_out_channels"]]
        text.update(hidden_size=512, intermediate_size=2048)
        unet["cross_attention_dim"] = 512
    elif size == "small":
        unet.update(block_out_channels=[32, 64, 64, 64], attention_head_dim=[1, 2, 2, 2], layers_per_block=1,
                    cross_attention_dim=64, norm_num_groups=16, sample_size=16)
        vae.update(block_out_channels=[16, 32, 32, 32], layers_per_block=1, norm_num_groups=8, sample_size=64)
        text.update(vocab_size=514, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                    num_attention_heads=2, bos_token_id=512, eos_token_id=513, pad_token_id=513)
    elif size != "full":
        raise ValueError(f"size must be one of {SIZES}, got {size!r}")
    return unet, vae, text


def replica_modules(kind: str, size: str = "full", seed: int = 0) -> tuple[Any, Any, Any]:
    """``(unet, vae, text_encoder)`` of ``kind`` at ``size`` with random weights (on the current default device).

    Build inside ``with torch.device("cuda"):`` to allocate them on a GPU directly.
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    unet_cfg, vae_cfg, text_cfg = _scaled(size)
    if kind == "marigold-v1-1":
        unet_cfg["in_channels"] = 8
    else:  # Lotus: a 4-d task embedding through a projection class embedding; G also sees the noisy latent
        unet_cfg.update(class_embed_type="projection", projection_class_embeddings_input_dim=4,
                        in_channels=8 if kind == "lotus-g" else 4)
    torch.manual_seed(seed)
    unet = UNet2DConditionModel(**unet_cfg).eval()
    vae = AutoencoderKL(**vae_cfg).eval()
    text = CLIPTextModel(CLIPTextConfig(**text_cfg)).eval()
    return unet, vae, text


def make_replica_pipeline(
    kind: str = "marigold-v1-1", size: str = "full", device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32, seed: int = 0, work_dir: Path | None = None,
) -> IrisDepthPipeline:
    """An in-memory replica pipeline (torch backend), built directly on ``device``."""
    import tempfile

    with torch.device(device):
        unet, vae, text = replica_modules(kind, size, seed)
    folder = Path(work_dir or tempfile.mkdtemp(prefix="iris-replica-"))
    tokenizer = make_tiny_clip_tokenizer(folder / "tokenizer_src")
    components = TorchComponents(unet, vae, text, device=device, dtype=dtype)
    if kind == "marigold-v1-1":
        return IrisDepthPipeline(components, tokenizer, DDIMScheduler(**DEFAULT_SCHEDULER_CONFIG),
                                 default_denoising_steps=4, default_processing_resolution=768)
    variant = kind.split("-")[1]
    configure_lotus_components(components, variant)
    return IrisDepthPipeline(components, tokenizer, PNDMScheduler(**SD2_PNDM), default_processing_resolution=768,
                             extra_settings={"lotus": variant})


def save_replica(kind: str, model_dir: Path, size: str = "small", seed: int = 0, scheduler: str = "pndm") -> Path:
    """Write a replica checkpoint in its published layout (for Lotus: as Lotus's ``save_pretrained`` writes it).

    ``scheduler`` (Lotus only): ``pndm`` (Stable Diffusion 2 base's, kept by Lotus's training script) or
    ``ddim`` (``prediction_type="sample"``, as Lotus's validation builds it).
    """
    model_dir = Path(model_dir)
    if kind == "marigold-v1-1":
        pipe = make_replica_pipeline(kind, size, seed=seed, work_dir=model_dir.parent)
        pipe.save_pretrained(model_dir)
        index = json.loads((model_dir / "model_index.json").read_text())
        index.update(_class_name="MarigoldDepthPipeline", default_denoising_steps=4, default_processing_resolution=768,
                     scale_invariant=True, shift_invariant=True)
        (model_dir / "model_index.json").write_text(json.dumps(index, indent=2, sort_keys=True) + "\n")
        return model_dir
    unet, vae, text = replica_modules(kind, size, seed)
    model_dir.mkdir(parents=True, exist_ok=True)
    unet.save_pretrained(str(model_dir / "unet"), safe_serialization=True)
    vae.save_pretrained(str(model_dir / "vae"), safe_serialization=True)
    text.save_pretrained(str(model_dir / "text_encoder"), safe_serialization=True)
    make_tiny_clip_tokenizer(model_dir.parent / f"{model_dir.name}-tokenizer-src").save_pretrained(
        str(model_dir / "tokenizer")
    )
    if scheduler == "pndm":
        PNDMScheduler(**SD2_PNDM).save_pretrained(str(model_dir / "scheduler"))
        scheduler_class = "PNDMScheduler"
    else:
        config = {k: v for k, v in SD2_PNDM.items() if k != "skip_prk_steps"}
        DDIMScheduler(**{**config, "prediction_type": "sample", "clip_sample": False}).save_pretrained(
            str(model_dir / "scheduler")
        )
        scheduler_class = "DDIMScheduler"
    class_name = next(name for name, v in LOTUS_PIPELINES.items() if v == kind.split("-")[1])
    index = {
        "_class_name": class_name,
        "_diffusers_version": "0.28.0.dev0",
        "feature_extractor": [None, None],
        "image_encoder": [None, None],
        "requires_safety_checker": False,
        "safety_checker": [None, None],
        "scheduler": ["diffusers", scheduler_class],
        "text_encoder": ["transformers", "CLIPTextModel"],
        "tokenizer": ["transformers", "CLIPTokenizer"],
        "unet": ["diffusers", "UNet2DConditionModel"],
        "vae": ["diffusers", "AutoencoderKL"],
    }
    (model_dir / "model_index.json").write_text(json.dumps(index, indent=2, sort_keys=True) + "\n")
    return model_dir
