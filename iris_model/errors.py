"""Error types of iris_model. Everything the package raises on bad input derives from :class:`IrisError`."""

from __future__ import annotations


class IrisError(Exception):
    """Base class of every error iris_model raises on purpose."""


class ModelLoadError(IrisError):
    """A model directory or one of its components is missing, malformed or not loadable.

    The message always names the offending path and the reason.
    """

    def __init__(self, path: object, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"cannot load model from {self.path}: {reason}")


class InputError(IrisError, ValueError):
    """An input (image, text, intrinsics, parameter) is not acceptable."""


class BackendUnavailableError(IrisError):
    """A runtime backend was asked for but its library is not installed or usable here."""


class NonFiniteOutputError(IrisError):
    """A model produced NaN or infinite values (corrupt weights, or half precision overflowing).

    Such an output is never returned as depth: callers count and report it instead.
    """


class Cancelled(IrisError):  # noqa: N818 - names what happened, as concurrent.futures.CancelledError does
    """A prediction was abandoned between denoising steps because its ``cancel`` callback said so."""
