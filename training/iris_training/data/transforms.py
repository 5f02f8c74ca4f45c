"""Augmentations that keep color, depth, the pixel masks and intrinsics consistent.

Pixel masks: ``valid`` always; ``ambiguous`` (the synthetic scenes' pixels whose depth only the caption fixes)
when the sample has it.

Geometry convention: pixel centers at integer coordinates, so resizing by s maps u -> (u + 0.5) s - 0.5
(the convention of bilinear / nearest-exact interpolation with ``align_corners=False``) and the principal
point moves with it. Depth and mask are resized with nearest-exact sampling: averaging depths across an
edge would invent surfaces, and a valid pixel must stay a measured one. Depth values (meters) never change.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import ConfigError

#: Per-pixel boolean masks, moved with the depth (``valid`` is required, the others optional).
PIXEL_MASKS = ("valid", "ambiguous")


def _t(value: Any) -> torch.Tensor:
    return value if torch.is_tensor(value) else torch.from_numpy(np.ascontiguousarray(value))


def _masks(sample: dict[str, Any]) -> list[str]:
    return [name for name in PIXEL_MASKS if name in sample]


def resize_sample(sample: dict[str, Any], height: int, width: int) -> dict[str, Any]:
    """Resize to ``height`` x ``width``: color bilinear (antialiased), depth and mask nearest, K scaled."""
    rgb = _t(sample["rgb"]).float()
    h, w = rgb.shape[1:]
    if (h, w) == (height, width):
        return dict(sample)
    rgb = F.interpolate(rgb[None], size=(height, width), mode="bilinear", align_corners=False,
                        antialias=True)[0].clamp(0.0, 1.0)
    depth = F.interpolate(_t(sample["depth"]).float()[None, None], size=(height, width), mode="nearest-exact")[0, 0]
    masks = {
        name: F.interpolate(_t(sample[name]).float()[None, None], size=(height, width), mode="nearest-exact")[0, 0]
        .numpy() > 0.5
        for name in _masks(sample)
    }
    sx, sy = width / w, height / h
    k = np.array(sample["intrinsics"], dtype=np.float32, copy=True)
    k[0, 0] *= sx
    k[1, 1] *= sy
    k[0, 2] = (k[0, 2] + 0.5) * sx - 0.5
    k[1, 2] = (k[1, 2] + 0.5) * sy - 0.5
    return {**sample, "rgb": rgb.numpy(), "depth": depth.numpy(), **masks, "intrinsics": k}


def crop_sample(sample: dict[str, Any], top: int, left: int, height: int, width: int) -> dict[str, Any]:
    """The window ``[top:top+height, left:left+width]``; the principal point shifts by the offset."""
    k = np.array(sample["intrinsics"], dtype=np.float32, copy=True)
    k[0, 2] -= left
    k[1, 2] -= top
    rows, cols = slice(top, top + height), slice(left, left + width)
    return {
        **sample,
        "rgb": np.ascontiguousarray(np.asarray(sample["rgb"])[:, rows, cols]),
        "depth": np.ascontiguousarray(np.asarray(sample["depth"])[rows, cols]),
        **{name: np.ascontiguousarray(np.asarray(sample[name])[rows, cols]) for name in _masks(sample)},
        "intrinsics": k,
    }


def hflip_sample(sample: dict[str, Any]) -> dict[str, Any]:
    """Mirror left-right; column u becomes W - 1 - u, so cx does too."""
    width = np.asarray(sample["depth"]).shape[1]
    k = np.array(sample["intrinsics"], dtype=np.float32, copy=True)
    k[0, 2] = width - 1 - k[0, 2]
    return {
        **sample,
        "rgb": np.ascontiguousarray(np.asarray(sample["rgb"])[:, :, ::-1]),
        "depth": np.ascontiguousarray(np.asarray(sample["depth"])[:, ::-1]),
        **{name: np.ascontiguousarray(np.asarray(sample[name])[:, ::-1]) for name in _masks(sample)},
        "intrinsics": k,
    }


@dataclass(frozen=True)
class AugmentConfig:
    """Training augmentation.

    Attributes:
        resolution: output (height, width) in pixels; every sample of a dataset comes out this size.
        crop_scale: (min, max) side length of the random crop, as a fraction of the largest crop of the
            output's aspect ratio that fits the image; (1, 1) = resize to cover, then crop the excess.
        hflip: probability of a horizontal flip.
    """

    resolution: tuple[int, int]
    crop_scale: tuple[float, float] = (1.0, 1.0)
    hflip: float = 0.5

    def __post_init__(self) -> None:
        if len(self.resolution) != 2 or min(self.resolution) < 8:
            raise ConfigError(f"resolution must be [height, width] >= 8, got {self.resolution}")
        lo, hi = self.crop_scale
        if not 0.05 <= lo <= hi <= 1.0:
            raise ConfigError(f"crop_scale must satisfy 0.05 <= min <= max <= 1, got {self.crop_scale}")
        if not 0.0 <= self.hflip <= 1.0:
            raise ConfigError(f"hflip must be a probability, got {self.hflip}")


def augment(sample: dict[str, Any], cfg: AugmentConfig, rng: np.random.Generator) -> dict[str, Any]:
    """Random crop of the output's aspect ratio, resize to ``cfg.resolution``, random flip."""
    out_h, out_w = cfg.resolution
    h, w = np.asarray(sample["depth"]).shape
    aspect = out_w / out_h
    # Largest window of the output's aspect ratio inside the image, then shrink it by the random scale.
    max_h = min(h, w / aspect)
    scale = rng.uniform(*cfg.crop_scale)
    crop_h = max(1, min(h, round(max_h * scale)))
    crop_w = max(1, min(w, round(max_h * scale * aspect)))
    top = int(rng.integers(0, h - crop_h + 1))
    left = int(rng.integers(0, w - crop_w + 1))
    sample = crop_sample(sample, top, left, crop_h, crop_w)
    sample = resize_sample(sample, out_h, out_w)
    if rng.random() < cfg.hflip:
        sample = hflip_sample(sample)
    return sample
