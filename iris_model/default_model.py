"""Where the embedded default model lives, and what happens when it is not there.

The trained default model is committed at ``iris_model/default_model/`` (diffusers layout, safetensors) and
installed with the package (setup.py lists its files as package data). After an install, a missing model is
an error (:class:`~iris_model.errors.ModelLoadError`): the install is incomplete and must be repaired, not
replaced silently by something else. Only a *source checkout* without the model (one from before the model
landed) gets a small *random-weight* checkpoint built in the user's cache instead, with a loud warning: its
depth is noise, it only exercises the plumbing.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
from pathlib import Path

from .errors import ModelLoadError

logger = logging.getLogger(__name__)

EMBEDDED_DIR = Path(__file__).resolve().parent / "default_model"
RANDOM_WARNING = (
    "no trained default model is embedded in this checkout: using a small RANDOM-WEIGHT checkpoint at %s. "
    "Its depth output is meaningless; it only exercises the pipeline. Pass a trained model directory instead."
)


def is_embedded_available() -> bool:
    return (EMBEDDED_DIR / "model_index.json").is_file()


def is_source_checkout() -> bool:
    """True when iris_model is imported from a source tree (editable install, colcon --symlink-install,
    PYTHONPATH), False for an installed copy (pip install ., colcon build)."""
    return (EMBEDDED_DIR.parent.parent / "setup.py").is_file()


def default_model_dir() -> Path:
    """The embedded trained model; in a source checkout without it, a cached random checkpoint (with a warning).

    Raises:
        ModelLoadError: the package is installed, but without the embedded model's ``model_index.json``.
    """
    if is_embedded_available():
        return EMBEDDED_DIR
    if not is_source_checkout():
        raise ModelLoadError(
            EMBEDDED_DIR,
            "the embedded default model is missing from this install (no model_index.json): the package was "
            "installed incompletely; reinstall it (pip install / colcon build) or pass a model directory",
        )
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "iris_ros" / "random-tiny-v1"
    if not (cache / "model_index.json").is_file():
        from .testing import save_tiny_checkpoint

        tmp = cache.with_name(cache.name + f".tmp{os.getpid()}")
        save_tiny_checkpoint(tmp / "model")
        cache.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(OSError):  # another process won the race; its copy is identical (same seed)
            (tmp / "model").rename(cache)
        shutil.rmtree(tmp, ignore_errors=True)
    logger.warning(RANDOM_WARNING, cache)
    return cache
