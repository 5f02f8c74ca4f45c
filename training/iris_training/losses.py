"""Training losses: masked latent MSE (diffusion), the affine-invariant depth loss (E2E-FT) and MiDaS's
multi-scale gradient-matching term on the aligned depth (sharper edges)."""

from __future__ import annotations

import torch


def masked_mse(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean squared error over latent pixels where ``mask [B, 1, h, w]`` is True (all channels).

    Returns a zero that still depends on ``pred`` when nothing is valid, so every DDP rank runs backward.
    """
    mask = mask.expand_as(pred)
    if not mask.any():
        return pred.sum() * 0.0
    diff = (pred.float() - target.float())[mask]
    return (diff * diff).mean()


def fit_scale_shift(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-image least-squares ``scale, shift`` (``[B]`` each) minimizing ``|scale * pred + shift - target|^2``.

    The 2 x 2 normal equations in closed form (MiDaS), differentiable; images with fewer than two valid
    pixels, or a constant prediction, get scale 1 and shift 0.
    """
    m = mask.float()
    a00 = (m * pred * pred).sum((1, 2))
    a01 = (m * pred).sum((1, 2))
    a11 = m.sum((1, 2))
    b0 = (m * pred * target).sum((1, 2))
    b1 = (m * target).sum((1, 2))
    det = a00 * a11 - a01 * a01
    ok = (det.abs() > 1e-6) & (a11 >= 2)
    safe = torch.where(ok, det, torch.ones_like(det))
    scale = torch.where(ok, (a11 * b0 - a01 * b1) / safe, torch.ones_like(det))
    shift = torch.where(ok, (-a01 * b0 + a00 * b1) / safe, torch.zeros_like(det))
    return scale, shift


def ambiguous_pixel_weight(ambiguous: torch.Tensor, weight: float,
                           captioned: torch.Tensor | None = None) -> torch.Tensor:
    """Per-pixel loss weight ``[B, H, W]``: ``weight`` on the ``ambiguous [B, H, W]`` pixels (depth only the
    caption fixes), 1 elsewhere.

    With ``captioned [B]`` (bool: the sample kept its caption), the extra weight goes to captioned samples only:
    a sample whose caption was dropped cannot know those depths, and stressing them there may teach the
    caption-free path to guess them from the image (at 10 % dropout it made no measurable difference:
    training/README.md).
    """
    amb = ambiguous.float()
    if captioned is not None:
        amb = amb * captioned.to(amb.device, torch.float32)[:, None, None]
    return 1.0 + (weight - 1.0) * amb


#: The most a pixel's relative weight may be, in units of its image's mean (a sliver of floor at the camera's
#: feet would otherwise take the loss of a whole image).
MAX_RELATIVE_WEIGHT = 10.0


def relative_depth_weight(depth: torch.Tensor, valid: torch.Tensor, weight: float) -> torch.Tensor:
    """Per-pixel loss weight ``[B, H, W]``: ``1 + weight * r`` with ``r`` the inverse of ``depth [B, H, W]``
    (meters) over its image's mean inverse depth on ``valid`` (mean 1, clipped to :data:`MAX_RELATIVE_WEIGHT`),
    0 for ``r`` off ``valid``.

    An L1 on the normalized depth weighs a centimeter alike at every depth; AbsRel, and a robot's costmap,
    weigh it by ``1 / depth``. The mean is per image, so each image keeps its share of the batch's loss.
    """
    d = depth.float()
    ok = valid & torch.isfinite(d) & (d > 0)
    inv = torch.where(ok, 1.0 / d.clamp(min=1e-6), torch.zeros_like(d))
    count = ok.sum((1, 2), keepdim=True).clamp(min=1)
    mean = inv.sum((1, 2), keepdim=True) / count
    r = (inv / mean.clamp(min=1e-12)).clamp(max=MAX_RELATIVE_WEIGHT)
    return 1.0 + weight * r


def affine_invariant_loss(
    pred: torch.Tensor,
    target: torch.Tensor,
    mask: torch.Tensor,
    gradient_weight: float = 0.0,
    scales: int = 4,
    pixel_weight: torch.Tensor | None = None,
) -> torch.Tensor:
    """E2E-FT's depth loss: L1 between the least-squares aligned ``pred [B, H, W]`` and ``target`` on ``mask``,
    plus ``gradient_weight`` times MiDaS's gradient-matching term.

    ``pixel_weight [B, H, W]`` (optional) weights the L1 term per pixel (a weighted mean over ``mask``), e.g. to
    stress the pixels only the caption can explain; the alignment stays the plain least-squares fit.

    The term (Ranftl et al., "Towards Robust Monocular Depth Estimation", eq. 11) is the L1 norm of the x and y
    differences of the aligned residual ``R = scale * pred + shift - target``, over ``scales`` levels (each
    keeping every 2nd pixel of the one before), counting a difference only where both pixels are valid,
    normalized by the valid pixel count per level. It is zero wherever the prediction's depth edges sit where
    the target's are, however large the residual, so it sharpens edges without fighting the L1 term.
    Hand-written: no installed library has it (kornia's gradients are neither masked nor scale-invariant).
    Computed in float32 (the alignment's normal equations lose too much in half precision).
    """
    pred, target = pred.float(), target.float()
    if not mask.any():
        return pred.sum() * 0.0
    scale, shift = fit_scale_shift(pred, target, mask)
    residual = scale[:, None, None] * pred + shift[:, None, None] - target
    if pixel_weight is None:
        loss = residual.abs()[mask].mean()
    else:
        w = pixel_weight.float()[mask]
        loss = (w * residual.abs()[mask]).sum() / w.sum().clamp(min=1e-12)
    if gradient_weight <= 0:
        return loss
    grad = pred.new_zeros(())
    r, m = residual, mask
    for _ in range(scales):
        mx = m[:, :, 1:] & m[:, :, :-1]
        my = m[:, 1:, :] & m[:, :-1, :]
        total = (r[:, :, 1:] - r[:, :, :-1]).abs()[mx].sum() + (r[:, 1:, :] - r[:, :-1, :]).abs()[my].sum()
        grad = grad + total / m.sum().clamp(min=1)
        r, m = r[:, ::2, ::2], m[:, ::2, ::2]
    return loss + gradient_weight * grad
