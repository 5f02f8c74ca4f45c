"""Lotus checkpoints (EnVision-Research/Lotus) as they are published, on Iris's one denoising loop.

What Lotus's own inference (``infer.py`` and ``pipeline.py`` there) does, and how Iris maps it:

- the UNet gets a task embedding as class labels (``class_embed_type="projection"``): the switcher ``[1, 0]``
  ("predict the annotation") as ``cat(sin, cos)`` = ``[sin 1, sin 0, cos 1, cos 0]``. Iris: the torch
  components' ``class_labels`` (and a constant inside the exported UNet graph);
- one step at t = 999 whose UNet output *is* the clean latent (``prediction_type="sample"``). Iris: the
  single-step path with a DDIM scheduler set to ``prediction_type="sample"`` (its ``pred_original_sample`` is
  then the model output unchanged);
- Lotus-D (``LotusDPipeline``) feeds the image latent alone (4 input channels); Lotus-G (``LotusGPipeline``) feeds
  image latent ++ Gaussian noise (8 channels). Iris: :class:`~iris_model.pipeline._RunSettings` ``image_only`` and
  ``noisy_start``;
- the decoded image is mapped to [0, 1] per channel, clipped, then averaged over channels (Marigold averages
  first, then clips). Iris: the components' ``depth_readout = "lotus"``;
- the prompt goes through the CLIP text encoder into cross-attention, exactly Iris's text path (Lotus passes
  ``""``; Iris passes the scene description).

Two differences, on purpose: the VAE latent is the posterior's mode (Lotus samples it with the global RNG,
so its own output is not reproducible), and resizing follows Iris's (Marigold's) image processor.

Output convention. Lotus's ``*-disparity`` checkpoints (``lotus-depth-g-v2-0-disparity``,
``lotus-depth-g-v2-1-disparity``, ``lotus-depth-d-v2-0-disparity``; Lotus evaluates them with
``--disparity``, aligning in disparity space) predict affine-invariant *disparity*, larger = nearer; the
``v1-0`` depth checkpoints predict affine-invariant depth. Iris outputs larger = farther, so a disparity
prediction ``p`` is returned as ``1 - p``: still in [0, 1] and ordered like depth, but affine in inverse depth,
not in depth (fit metric scale and shift to ``1 / (1 - output)`` for such a model).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch

from .errors import InputError

logger = logging.getLogger(__name__)

#: ``model_index.json`` class name -> Lotus variant (``d``: image latent alone, ``g``: image latent ++ noise).
LOTUS_PIPELINES = {"LotusDPipeline": "d", "LotusGPipeline": "g"}
PREDICTION_SPACES = ("depth", "disparity")
#: Lotus's timestep: the last training timestep.
LOTUS_TIMESTEP = 999


def lotus_variant(index_raw: dict[str, Any]) -> str | None:
    """``"d"``, ``"g"`` or ``None`` for a parsed ``model_index.json`` (Lotus's class name, or Iris's ``lotus`` key)."""
    variant = index_raw.get("lotus") or LOTUS_PIPELINES.get(str(index_raw.get("_class_name", "")))
    if variant not in (None, "d", "g"):
        raise InputError(f"lotus must be 'd' or 'g', got {variant!r}")
    return variant


def task_embedding(batch: int = 1, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32):
    """Lotus's depth/normal prediction switcher ``[sin 1, sin 0, cos 1, cos 0]`` as ``[batch, 4]``."""
    switch = torch.tensor([[1.0, 0.0]], device=device)
    return torch.cat([torch.sin(switch), torch.cos(switch)], dim=-1).to(dtype).expand(batch, -1)


def configure_lotus_components(components: Any, variant: str | None) -> None:
    """Give torch components Lotus's class labels and read-out (no-op for other checkpoints)."""
    if variant is None:
        return
    components.class_labels = task_embedding(device=components.device)
    components.depth_readout = "lotus"


def lotus_scheduler(scheduler: Any) -> Any:
    """Lotus's one-step x0 prediction as a DDIM scheduler: same betas, ``prediction_type="sample"``, no clipping.

    Published Lotus checkpoints keep Stable Diffusion 2 base's PNDM scheduler, which Lotus never calls.
    """
    from diffusers import DDIMScheduler

    keep = {k: v for k, v in scheduler.config.items() if not k.startswith("_") and k != "skip_prk_steps"}
    return DDIMScheduler.from_config({**keep, "prediction_type": "sample", "clip_sample": False, "thresholding": False})


def prediction_space(model_dir: Path, index_raw: dict[str, Any], requested: str | None = None) -> str:
    """Whether a checkpoint predicts ``depth`` or ``disparity``.

    ``requested`` wins; then ``"prediction_space"`` in ``model_index.json``; then, for Lotus checkpoints, whose
    files do not say it, the published name (``...-disparity``) in the folder's path (a Hugging Face cache
    folder ``models--jingheya--lotus-depth-g-v2-1-disparity/snapshots/<hash>`` carries it).
    """
    space = requested or index_raw.get("prediction_space")
    if space is None and lotus_variant(index_raw):
        space = "disparity" if any("disparity" in part for part in Path(model_dir).resolve().parts) else "depth"
        logger.info("Lotus checkpoint %s taken to predict %s (from its name); pass prediction_space= to override",
                    model_dir, space)
    space = space or "depth"
    if space not in PREDICTION_SPACES:
        raise InputError(f"prediction_space must be one of {PREDICTION_SPACES}, got {space!r}")
    return space
