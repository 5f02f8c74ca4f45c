"""iris_model: language-conditioned diffusion depth estimation, ROS-free.

``IrisDepthPipeline.from_pretrained(model_dir)(image, text)`` gives affine-invariant depth
(float32, [0, 1], larger is farther). See :mod:`iris_model.pipeline` for the conventions.
"""

from .errors import (
    BackendUnavailableError,
    Cancelled,
    InputError,
    IrisError,
    ModelLoadError,
    NonFiniteOutputError,
)
from .pipeline import IrisDepthOutput, IrisDepthPipeline

__all__ = [
    "BackendUnavailableError",
    "Cancelled",
    "InputError",
    "IrisDepthOutput",
    "IrisDepthPipeline",
    "IrisError",
    "ModelLoadError",
    "NonFiniteOutputError",
]
__version__ = "0.1.0"
