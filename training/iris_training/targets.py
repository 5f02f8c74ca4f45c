"""What the UNet learns from: Marigold's depth normalization and its latent-space validity mask."""

from __future__ import annotations

import torch
import torch.nn.functional as F

MARIGOLD_QUANTILE = 0.02  # Marigold's normalization: the 2nd / 98th percentile map to -1 / 1


def normalize_depth(depth: torch.Tensor, valid: torch.Tensor, quantile: float = MARIGOLD_QUANTILE) -> torch.Tensor:
    """Per-image affine normalization of ``depth [B, H, W]`` (meters) to [-1, 1], as Marigold trains.

    The ``quantile`` and ``1 - quantile`` depths over valid pixels (2nd / 98th percentile) map to -1 and
    1; values beyond are clipped. Invalid pixels keep their clipped value if finite and become +1 (far)
    otherwise; the loss ignores them. An image without valid pixels comes out all +1.
    """
    out = torch.empty_like(depth, dtype=torch.float32)
    for i in range(depth.shape[0]):
        d = depth[i].float()
        v = valid[i] & torch.isfinite(d)
        if v.sum() < 2:
            out[i] = 1.0
            continue
        lo, hi = torch.quantile(d[v], torch.tensor([quantile, 1.0 - quantile], device=d.device))
        scale = torch.clamp(hi - lo, min=1e-6)
        n = ((d - lo) / scale) * 2.0 - 1.0
        out[i] = torch.where(torch.isfinite(n), n.clamp(-1.0, 1.0), torch.ones_like(n))
    return out


def latent_valid_mask(valid: torch.Tensor, factor: int) -> torch.Tensor:
    """``[B, 1, h, w]``: latent pixels whose whole ``factor x factor`` footprint is valid (Marigold)."""
    invalid = (~valid).float()[:, None]
    return F.max_pool2d(invalid, kernel_size=factor, stride=factor) < 0.5
