"""Writing depth results to files: 16-bit PNG, .npy, colorized PNG, binary PLY point clouds."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from .colorize import colorize_depth

PNG16_INVALID = 0
PNG16_LEVELS = 65534  # valid depth uses the codes 1..65535


def encode_depth_png16(depth: np.ndarray) -> np.ndarray:
    """Affine-invariant depth in [0, 1] (larger is farther) -> uint16 codes: ``0`` = invalid (NaN / inf),
    ``1 + round(depth * 65534)`` otherwise, so the nearest valid value (code 1) stays apart from invalid pixels."""
    depth = np.asarray(depth, dtype=np.float64)
    valid = np.isfinite(depth)
    codes = np.full(depth.shape, PNG16_INVALID, dtype=np.uint16)
    codes[valid] = (1 + np.rint(np.clip(depth[valid], 0.0, 1.0) * PNG16_LEVELS)).astype(np.uint16)
    return codes


def decode_depth_png16(codes: np.ndarray) -> np.ndarray:
    """Inverse of :func:`encode_depth_png16`: float32 depth in [0, 1], NaN where the code is 0."""
    codes = np.asarray(codes)
    depth = (codes.astype(np.float32) - 1.0) / np.float32(PNG16_LEVELS)
    depth[codes == PNG16_INVALID] = np.nan
    return depth


def save_depth_png16(path: Path, depth: np.ndarray) -> None:
    """Write depth as a 16-bit PNG with :func:`encode_depth_png16`'s codes (0 = invalid)."""
    Image.fromarray(encode_depth_png16(depth)).save(path)


def load_depth_png16(path: Path) -> np.ndarray:
    """Read a PNG written by :func:`save_depth_png16` back as float32 depth (NaN = invalid)."""
    with Image.open(path) as img:
        return decode_depth_png16(np.asarray(img))


def save_colorized_png(path: Path, depth: np.ndarray) -> None:
    Image.fromarray(colorize_depth(depth)).save(path)


def save_ply(path: Path, points: np.ndarray, colors: np.ndarray | None = None) -> int:
    """Write finite points (``[..., 3]`` float32, meters) and optional ``[..., 3]`` uint8 colors as binary PLY.

    Hand-written because PLY's header is a few lines and no small library is a dependency here already.
    Returns the number of points written.
    """
    pts = points.reshape(-1, 3)
    keep = np.isfinite(pts).all(axis=1)
    pts = pts[keep].astype("<f4")
    fields = [("x", "<f4"), ("y", "<f4"), ("z", "<f4")]
    header = ["ply", "format binary_little_endian 1.0", f"element vertex {len(pts)}",
              "property float x", "property float y", "property float z"]
    if colors is not None:
        cols = colors.reshape(-1, 3)[keep].astype(np.uint8)
        fields += [("red", "u1"), ("green", "u1"), ("blue", "u1")]
        header += ["property uchar red", "property uchar green", "property uchar blue"]
    header.append("end_header")
    record = np.empty(len(pts), dtype=fields)
    record["x"], record["y"], record["z"] = pts[:, 0], pts[:, 1], pts[:, 2]
    if colors is not None:
        record["red"], record["green"], record["blue"] = cols[:, 0], cols[:, 1], cols[:, 2]
    with open(path, "wb") as handle:
        handle.write(("\n".join(header) + "\n").encode("ascii"))
        handle.write(record.tobytes())
    return len(pts)
