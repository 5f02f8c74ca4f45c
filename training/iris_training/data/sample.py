"""The sample dict every dataset yields (documented in :mod:`iris_training.data`), its check and collate."""

from __future__ import annotations

from typing import Any, TypedDict

import numpy as np
import torch

from ..errors import DataError

SAMPLE_KEYS = ("rgb", "depth", "valid", "caption", "intrinsics", "key")


class Sample(TypedDict):
    rgb: Any  # float32 [3, H, W] in [0, 1]
    depth: Any  # float32 [H, W], meters (planar)
    valid: Any  # bool [H, W]
    caption: str
    intrinsics: Any  # float32 [3, 3]
    key: str


def _np(value: Any) -> np.ndarray:
    return value.detach().cpu().numpy() if torch.is_tensor(value) else np.asarray(value)


def check_sample(sample: dict[str, Any]) -> None:
    """Raise :class:`DataError` unless ``sample`` follows the sample-dict contract (types, shapes, ranges)."""
    missing = [k for k in SAMPLE_KEYS if k not in sample]
    if missing:
        raise DataError(f"sample lacks keys {missing}")
    rgb, depth, valid, k = (_np(sample[n]) for n in ("rgb", "depth", "valid", "intrinsics"))
    if rgb.dtype != np.float32 or rgb.ndim != 3 or rgb.shape[0] != 3:
        raise DataError(f"rgb must be float32 [3, H, W], got {rgb.dtype} {rgb.shape}")
    h, w = rgb.shape[1:]
    if not (np.isfinite(rgb).all() and rgb.min() >= 0.0 and rgb.max() <= 1.0):
        raise DataError("rgb values must be finite and in [0, 1]")
    if depth.dtype != np.float32 or depth.shape != (h, w):
        raise DataError(f"depth must be float32 [{h}, {w}], got {depth.dtype} {depth.shape}")
    if valid.dtype != np.bool_ or valid.shape != (h, w):
        raise DataError(f"valid must be bool [{h}, {w}], got {valid.dtype} {valid.shape}")
    if valid.any():
        d = depth[valid]
        if not (np.isfinite(d).all() and (d > 0).all()):
            raise DataError("depth must be finite and > 0 wherever valid is True")
    if k.dtype != np.float32 or k.shape != (3, 3):
        raise DataError(f"intrinsics must be float32 [3, 3], got {k.dtype} {k.shape}")
    if not isinstance(sample["caption"], str) or not isinstance(sample["key"], str):
        raise DataError("caption and key must be str")


def collate_samples(samples: list[dict[str, Any]]) -> dict[str, Any]:
    """Stack a list of same-size samples into a batch of tensors (captions and keys stay lists of str)."""
    if not samples:
        raise DataError("empty batch")
    sizes = {tuple(_np(s["depth"]).shape) for s in samples}
    if len(sizes) > 1:
        raise DataError(f"samples of one batch must share a size, got {sorted(sizes)}")

    def stack(name: str, dtype: torch.dtype) -> torch.Tensor:
        return torch.stack([torch.as_tensor(_np(s[name])).to(dtype) for s in samples])

    batch = {
        "rgb": stack("rgb", torch.float32),
        "depth": stack("depth", torch.float32),
        "valid": stack("valid", torch.bool),
        "intrinsics": stack("intrinsics", torch.float32),
        "caption": [str(s["caption"]) for s in samples],
        "key": [str(s["key"]) for s in samples],
    }
    if all("ambiguous" in s for s in samples):  # optional: the synthetic scenes' caption-only pixels
        batch["ambiguous"] = stack("ambiguous", torch.bool)
    return batch
