"""``sensor_msgs/Image`` and ``CompressedImage`` fields <-> numpy arrays, without ROS.

The node hands the raw message fields (encoding, height, width, step, is_bigendian, data) to these
functions, so every check here is tested without rclpy. Everything a malformed message can cause comes out
as :class:`ImageConversionError` (an :class:`iris_model.errors.InputError`) with a message that says what
was wrong; nothing else is raised on bad fields.

cv_bridge is not used: it is not on PyPI and drags in OpenCV. The conversions are plain numpy views
(one copy at most per image) and follow cv_bridge's conventions: ``step`` is the row length in bytes
(rows may be padded), 16-bit data is in the byte order given by ``is_bigendian``.

Writing ``msg.data``: rclpy stores ``uint8[]`` fields as ``array.array('B')``; assigning anything else
goes through a per-element check in the generated setter, so :func:`ros_bytes` builds the
``array.array`` directly from the numpy buffer (one memcpy).
"""

from __future__ import annotations

import array
import io
import sys
from dataclasses import dataclass
from typing import Any

import numpy as np

from iris_model.errors import InputError

from .config import echo

#: Largest accepted width or height, in pixels.
MAX_SIDE = 8192
#: Largest accepted ``data`` buffer, in bytes (8192 x 8192 rgba16).
MAX_BYTES = MAX_SIDE * MAX_SIDE * 8


class ImageConversionError(InputError):
    """An image message cannot be converted: unsupported encoding, inconsistent fields, too large, corrupt.

    ``reason`` is a short key for counters: ``unsupported_encoding``, ``empty_image``, ``too_large``,
    ``bad_layout`` (step / data length inconsistent), ``bad_data`` (not bytes, not decodable).
    """

    def __init__(self, message: str, reason: str = "bad_data") -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class _Layout:
    channels: int
    itemsize: int
    #: indices of R, G, B in the pixel (or (0,) for mono)
    rgb: tuple[int, ...]


#: Color/mono encodings the node accepts as camera input (names as in sensor_msgs/image_encodings.hpp).
COLOR_ENCODINGS: dict[str, _Layout] = {
    "rgb8": _Layout(3, 1, (0, 1, 2)),
    "bgr8": _Layout(3, 1, (2, 1, 0)),
    "rgba8": _Layout(4, 1, (0, 1, 2)),
    "bgra8": _Layout(4, 1, (2, 1, 0)),
    "mono8": _Layout(1, 1, (0,)),
    "rgb16": _Layout(3, 2, (0, 1, 2)),
    "bgr16": _Layout(3, 2, (2, 1, 0)),
    "rgba16": _Layout(4, 2, (0, 1, 2)),
    "bgra16": _Layout(4, 2, (2, 1, 0)),
    "mono16": _Layout(1, 2, (0,)),
}

#: Depth encodings accepted for ``sparse_depth``: 32FC1 in meters, 16UC1 (or mono16) in millimeters.
DEPTH_ENCODINGS = ("32FC1", "16UC1", "mono16")

_NATIVE_BIG = sys.byteorder == "big"


def _as_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ImageConversionError(f"image {name} must be an integer, got {type(value).__name__}", "bad_layout")
    value = int(value)
    if value < 0:
        raise ImageConversionError(f"image {name} must be >= 0, got {value}", "bad_layout")
    return value


def _bytes_from_sequence(data: Any) -> np.ndarray:
    """A plain Python sequence of ints (a message built by hand) as uint8, checking every value."""
    try:
        values = np.asarray(data)
    except (TypeError, ValueError, OverflowError) as exc:
        raise ImageConversionError(f"image data is not a byte buffer: {exc}") from exc
    if values.ndim != 1 or (values.size and not np.issubdtype(values.dtype, np.integer)):
        raise ImageConversionError(f"image data must be a flat sequence of bytes, got {values.dtype} {values.shape}")
    if values.size and (values.min() < 0 or values.max() > 255):
        raise ImageConversionError("image data values must be bytes in [0, 255]")
    return values.astype(np.uint8)


def _buffer(data: Any) -> np.ndarray:
    """The message's ``data`` as a 1-D uint8 array, without copying when it supports the buffer protocol."""
    try:
        buf = np.frombuffer(data, dtype=np.uint8)
    except (TypeError, ValueError, BufferError):
        buf = _bytes_from_sequence(data)
    if buf.size > MAX_BYTES:
        raise ImageConversionError(f"image data has {buf.size} bytes, more than the limit of {MAX_BYTES}", "too_large")
    return buf


def _rows(
    encoding: str, height: Any, width: Any, step: Any, is_bigendian: Any, data: Any, channels: int, itemsize: int
) -> np.ndarray:
    """Check the fields and return an ``[H, W, C]`` view in native byte order (a copy only for byte swaps)."""
    height = _as_int("height", height)
    width = _as_int("width", width)
    step = _as_int("step", step)
    big_endian = is_bigendian if isinstance(is_bigendian, bool) else _as_int("is_bigendian", is_bigendian) != 0
    if height == 0 or width == 0:
        raise ImageConversionError(f"empty {encoding} image ({width} x {height})", "empty_image")
    if height > MAX_SIDE or width > MAX_SIDE:
        raise ImageConversionError(
            f"{encoding} image of {width} x {height} is larger than {MAX_SIDE} x {MAX_SIDE}", "too_large"
        )
    row_bytes = width * channels * itemsize
    if step < row_bytes:
        raise ImageConversionError(
            f"{encoding} image step {step} is less than width * bytes per pixel = {width} * {channels * itemsize}",
            "bad_layout",
        )
    expected = step * height
    if expected > MAX_BYTES:
        raise ImageConversionError(
            f"{encoding} image needs {expected} bytes, more than the limit of {MAX_BYTES}", "too_large"
        )
    buf = _buffer(data)
    if buf.size != expected:
        raise ImageConversionError(
            f"{encoding} image data has {buf.size} bytes but step * height = {step} * {height} = {expected}",
            "bad_layout",
        )
    rows = buf.reshape(height, step)[:, :row_bytes]
    if itemsize == 1:
        return rows.reshape(height, width, channels)
    # A sliced row keeps its last axis contiguous, so numpy can reinterpret it as wider items in place.
    dtype = np.dtype({2: np.uint16, 4: np.float32}[itemsize]).newbyteorder(">" if big_endian else "<")
    pixels = rows.view(dtype).reshape(height, width, channels)
    return pixels.astype(dtype.newbyteorder("="), copy=False)


def decode_image(encoding: Any, height: Any, width: Any, step: Any, is_bigendian: Any, data: Any) -> np.ndarray:
    """A camera image's fields to ``H x W x 3`` RGB (or ``H x W`` mono), uint8 or uint16, C-contiguous.

    Accepts the encodings in :data:`COLOR_ENCODINGS`; alpha is dropped, BGR reordered to RGB, 16-bit data
    is returned as native uint16 (full range 0..65535). Raises :class:`ImageConversionError` for anything
    else: unknown or unsupported encodings, zero or oversized dimensions, ``step`` shorter than a row, a
    ``data`` length other than ``step * height``.
    """
    if not isinstance(encoding, str):
        raise ImageConversionError(
            f"image encoding must be a string, got {type(encoding).__name__}", "unsupported_encoding"
        )
    layout = COLOR_ENCODINGS.get(encoding)
    if layout is None:
        raise ImageConversionError(
            f"unsupported image encoding {echo(encoding)}; supported: {', '.join(COLOR_ENCODINGS)}",
            "unsupported_encoding",
        )
    pixels = _rows(encoding, height, width, step, is_bigendian, data, layout.channels, layout.itemsize)
    if layout.channels == 1:
        return np.ascontiguousarray(pixels[..., 0])
    if layout.rgb == (0, 1, 2):
        return np.ascontiguousarray(pixels[..., :3])
    return np.ascontiguousarray(pixels[..., 2::-1])


def decode_depth(encoding: Any, height: Any, width: Any, step: Any, is_bigendian: Any, data: Any) -> np.ndarray:
    """A depth image's fields to ``H x W`` float32 meters; invalid samples (0, negative, NaN, inf) are NaN.

    ``32FC1`` is read as meters (REP 118), ``16UC1`` / ``mono16`` as millimeters with 0 = no return.
    """
    if not isinstance(encoding, str):
        raise ImageConversionError(
            f"depth encoding must be a string, got {type(encoding).__name__}", "unsupported_encoding"
        )
    if encoding == "32FC1":
        depth = _rows(encoding, height, width, step, is_bigendian, data, 1, 4)[..., 0]
        depth = np.array(depth, dtype=np.float32)
    elif encoding in ("16UC1", "mono16"):
        mm = _rows(encoding, height, width, step, is_bigendian, data, 1, 2)[..., 0]
        depth = mm.astype(np.float32) * np.float32(1e-3)
    else:
        raise ImageConversionError(
            f"unsupported depth encoding {echo(encoding)}; supported: 32FC1 (meters), 16UC1 (millimeters)",
            "unsupported_encoding",
        )
    with np.errstate(invalid="ignore"):
        depth[~(np.isfinite(depth) & (depth > 0))] = np.nan
    return depth


def decode_compressed(format: Any, data: Any) -> np.ndarray:
    """A ``sensor_msgs/CompressedImage`` (JPEG, PNG, anything Pillow reads) to ``H x W x 3`` uint8 RGB.

    16-bit grayscale PNGs come back as ``H x W`` uint16. The size is checked from the header before the
    pixels are decoded, so a small file that claims a huge image is refused without allocating it.
    """
    from PIL import Image, UnidentifiedImageError

    if isinstance(format, str) and "compresseddepth" in format.lower():
        raise ImageConversionError(
            f"compressedDepth images ({echo(format)}) are not supported as camera input; publish the color image",
            "unsupported_encoding",
        )
    buf = _buffer(data)
    if buf.size == 0:
        raise ImageConversionError("compressed image has no data", "empty_image")
    try:
        with Image.open(io.BytesIO(buf.tobytes())) as img:
            width, height = img.size
            if width < 1 or height < 1 or width > MAX_SIDE or height > MAX_SIDE:
                raise ImageConversionError(
                    f"compressed image of {width} x {height} is empty or larger than {MAX_SIDE} x {MAX_SIDE}",
                    "too_large",
                )
            if img.mode in ("I;16", "I;16B", "I;16L", "I"):
                out = np.asarray(img)
                if out.dtype != np.uint16:
                    out = np.clip(out, 0, 65535).astype(np.uint16)
                return np.ascontiguousarray(out)
            return np.ascontiguousarray(np.asarray(img.convert("RGB")))
    except ImageConversionError:
        raise
    except (UnidentifiedImageError, Image.DecompressionBombError) as exc:
        raise ImageConversionError(f"cannot decode compressed image (format {echo(format)}): {exc}") from exc
    except Exception as exc:
        # Pillow's decoders fed corrupt bytes raise a zoo of types (OSError, SyntaxError, struct.error,
        # IndexError, ...); all of them mean "this message is not a readable image".
        raise ImageConversionError(
            f"cannot decode compressed image (format {echo(format)}): {type(exc).__name__}: {exc}"
        ) from exc


def as_rgb8(image: np.ndarray) -> np.ndarray:
    """``H x W x 3`` uint8 RGB from a :func:`decode_image` result (mono is repeated, 16-bit shifted)."""
    if image.dtype == np.uint16:
        image = (image >> 8).astype(np.uint8)
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    return image


@dataclass(frozen=True)
class ImageFields:
    """The fields of a ``sensor_msgs/Image`` to publish (``data`` is ready for ``msg.data``)."""

    encoding: str
    height: int
    width: int
    step: int
    is_bigendian: int
    data: array.array


def ros_bytes(arr: np.ndarray) -> array.array:
    """The bytes of ``arr`` as ``array.array('B')``: what rclpy stores for ``uint8[]``, built in one memcpy."""
    out = array.array("B")
    out.frombytes(memoryview(np.ascontiguousarray(arr)).cast("B"))  # type: ignore[arg-type]
    return out


def encode_rgb8(rgb: np.ndarray) -> ImageFields:
    """``H x W x 3`` uint8 RGB to ``rgb8`` fields."""
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ImageConversionError(f"rgb8 needs an H x W x 3 uint8 array, got {rgb.dtype} {rgb.shape}")
    h, w = rgb.shape[:2]
    return ImageFields("rgb8", h, w, w * 3, 0, ros_bytes(rgb))


def encode_depth(depth: np.ndarray) -> ImageFields:
    """``H x W`` float32 depth to ``32FC1`` fields (native byte order, as rclpy publishers do)."""
    depth = np.asarray(depth)
    if depth.ndim != 2:
        raise ImageConversionError(f"32FC1 needs an H x W array, got shape {depth.shape}")
    depth = depth.astype(np.float32, copy=False)
    h, w = depth.shape
    return ImageFields("32FC1", h, w, w * 4, int(_NATIVE_BIG), ros_bytes(depth))


def resample_sparse(sparse: np.ndarray, height: int, width: int) -> np.ndarray:
    """Move sparse samples (``H_s x W_s``, NaN = none) onto an ``height x width`` grid, nearest pixel.

    Sparse depth cannot be interpolated (averaging a sample with "no sample" is meaningless), so each
    valid sample goes to the pixel whose center is nearest to its own (pixel centers map as
    ``u' = (u + 0.5) * sx - 0.5``); where several land on one pixel the nearest (smallest) depth wins.
    """
    sparse = np.asarray(sparse, dtype=np.float32)
    if sparse.shape == (height, width):
        return sparse
    out = np.full((height, width), np.nan, dtype=np.float32)
    rows, cols = np.nonzero(np.isfinite(sparse))
    if rows.size == 0:
        return out
    sy, sx = height / sparse.shape[0], width / sparse.shape[1]
    v = np.clip(np.rint((rows + 0.5) * sy - 0.5), 0, height - 1).astype(np.intp)
    u = np.clip(np.rint((cols + 0.5) * sx - 0.5), 0, width - 1).astype(np.intp)
    values = sparse[rows, cols]
    order = np.argsort(-values)  # write far first so that near samples overwrite them
    out[v[order], u[order]] = values[order]
    return out
