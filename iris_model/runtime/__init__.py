"""Runtime backends: the same four components on torch, ONNX Runtime or TensorRT.

``load_components(model_dir, backend, ...)`` is the one switch; every backend returns an object that
satisfies :class:`iris_model.components.DepthComponents`, and :class:`iris_model.IrisDepthPipeline` runs
its single denoising loop over it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from ..components import DepthComponents, TorchComponents
from ..errors import InputError
from ..loading import ModelIndex

BACKENDS = ("torch", "onnxruntime", "tensorrt")


def load_components(
    model_dir: Path,
    backend: str,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
    index: ModelIndex | None = None,
    variant: str | None = None,
    tiny_decoder: bool | str | Path | None = None,
    **options: Any,
) -> DepthComponents:
    """Load the four components of ``model_dir`` on ``backend``.

    ``torch`` reads a checkpoint; ``onnxruntime`` and ``tensorrt`` read an ENGINE_DIR written by
    ``iris-export`` (a plain checkpoint gets a :class:`~iris_model.errors.ModelLoadError` saying so).
    ``options`` are the backend's own (see ``OrtOptions`` and ``TensorRTComponents``). ``variant`` picks
    diffusers weight variants (``*.fp16.safetensors``) of a checkpoint, so it applies to ``torch`` only.
    """
    if variant is not None and backend != "torch":
        raise InputError(f"variant= selects checkpoint weights (torch backend); {backend} runs exported graphs")
    if backend == "torch":
        if options:
            raise InputError(f"unknown torch backend options: {sorted(options)}")
        return TorchComponents.from_pretrained(
            model_dir, device=device, dtype=dtype, index=index, variant=variant, tiny_decoder=tiny_decoder
        )
    if isinstance(tiny_decoder, (str, Path)):
        raise InputError(f"tiny_decoder=<folder> is for the torch backend; {backend} runs the tiny decoder that "
                         "iris-export exported from the checkpoint (add it to the checkpoint, then export)")
    if backend == "onnxruntime":
        from .onnxruntime_backend import OnnxRuntimeComponents

        return OnnxRuntimeComponents.from_engine_dir(
            model_dir, device=device, dtype=dtype, tiny_decoder=tiny_decoder, **options
        )
    if backend == "tensorrt":
        from .tensorrt_backend import TensorRTComponents

        return TensorRTComponents.from_engine_dir(
            model_dir, device=device, dtype=dtype, tiny_decoder=tiny_decoder, **options
        )
    raise InputError(f"backend must be one of {BACKENDS}, got {backend!r}")
