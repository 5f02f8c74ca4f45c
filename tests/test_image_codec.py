"""iris_ros.image_codec: Image / CompressedImage fields <-> numpy, without ROS."""

from __future__ import annotations

import array
import contextlib
import io
import zlib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from iris_model.errors import InputError
from iris_ros.image_codec import (
    COLOR_ENCODINGS,
    MAX_SIDE,
    ImageConversionError,
    as_rgb8,
    decode_compressed,
    decode_depth,
    decode_image,
    encode_depth,
    encode_rgb8,
    resample_sparse,
    ros_bytes,
)

RNG = np.random.default_rng(0)


def _pixels(h: int, w: int, channels: int, dtype: type) -> np.ndarray:
    hi = 256 if dtype == np.uint8 else 65536
    return RNG.integers(0, hi, size=(h, w, channels)).astype(dtype)


def _fields(pixels: np.ndarray, pad: int = 0, big_endian: bool = False) -> tuple[int, int, int, int, bytes]:
    """(height, width, step, is_bigendian, data) of an [H, W, C] array with ``pad`` bytes after each row."""
    h, w = pixels.shape[:2]
    dtype = pixels.dtype.newbyteorder(">" if big_endian else "<")
    rows = pixels.astype(dtype).reshape(h, -1).view(np.uint8)
    rows = np.concatenate([rows, np.full((h, pad), 0xAB, dtype=np.uint8)], axis=1)
    return h, w, rows.shape[1], int(big_endian), rows.tobytes()


#: The camera encodings the node documents, written out from sensor_msgs/image_encodings.hpp (not from the
#: codec's table): channel letters in memory order and bits per channel.
SPEC = {
    "rgb8": ("rgb", 8), "bgr8": ("bgr", 8), "rgba8": ("rgba", 8), "bgra8": ("bgra", 8), "mono8": ("m", 8),
    "rgb16": ("rgb", 16), "bgr16": ("bgr", 16), "rgba16": ("rgba", 16), "bgra16": ("bgra", 16), "mono16": ("m", 16),
}


def test_the_documented_encodings_are_the_supported_ones() -> None:
    assert set(COLOR_ENCODINGS) == set(SPEC)


@pytest.mark.parametrize("encoding", sorted(SPEC))
@pytest.mark.parametrize("pad", [0, 3])
@pytest.mark.parametrize("big_endian", [False, True])
def test_every_supported_encoding_decodes_to_rgb(encoding: str, pad: int, big_endian: bool) -> None:
    order, bits = SPEC[encoding]
    dtype = np.uint8 if bits == 8 else np.uint16
    pixels = _pixels(5, 7, len(order), dtype)
    h, w, step, be, data = _fields(pixels, pad, big_endian)
    out = decode_image(encoding, h, w, step, be, data)
    expected = pixels[..., 0] if order == "m" else np.stack([pixels[..., order.index(c)] for c in "rgb"], axis=-1)
    assert out.dtype == dtype
    assert out.flags.c_contiguous
    np.testing.assert_array_equal(out, expected)


def test_16_bit_channels_from_known_bytes() -> None:
    """One pixel whose channels in memory order are 0x0102, 0x0304, 0x0506 (alpha 0x0708), bytes by hand."""
    little = bytes([0x02, 0x01, 0x04, 0x03, 0x06, 0x05])
    big = bytes([0x01, 0x02, 0x03, 0x04, 0x05, 0x06])
    for data, be in ((little, 0), (big, 1)):
        assert decode_image("rgb16", 1, 1, 6, be, data)[0, 0].tolist() == [0x0102, 0x0304, 0x0506]
        assert decode_image("bgr16", 1, 1, 6, be, data)[0, 0].tolist() == [0x0506, 0x0304, 0x0102]
    alpha_little, alpha_big = little + bytes([0x08, 0x07]), big + bytes([0x07, 0x08])
    for data, be in ((alpha_little, 0), (alpha_big, 1)):
        assert decode_image("rgba16", 1, 1, 8, be, data)[0, 0].tolist() == [0x0102, 0x0304, 0x0506]
        assert decode_image("bgra16", 1, 1, 8, be, data)[0, 0].tolist() == [0x0506, 0x0304, 0x0102]
    assert decode_image("mono16", 1, 1, 2, 0, little[:2])[0, 0] == 0x0102
    assert decode_image("mono16", 1, 1, 2, 1, big[:2])[0, 0] == 0x0102
    # Two pixels in a padded row: the second pixel starts 6 bytes in, the padding is ignored.
    row = little + bytes([0x12, 0x11, 0x14, 0x13, 0x16, 0x15]) + bytes(4)
    two = decode_image("rgb16", 1, 2, 16, 0, row)
    assert two.tolist() == [[[0x0102, 0x0304, 0x0506], [0x1112, 0x1314, 0x1516]]]
    assert as_rgb8(two).tolist() == [[[0x01, 0x03, 0x05], [0x11, 0x13, 0x15]]]


def test_bgr8_is_reordered_to_rgb() -> None:
    data = bytes([10, 20, 30])  # one pixel B=10 G=20 R=30
    np.testing.assert_array_equal(decode_image("bgr8", 1, 1, 3, 0, data)[0, 0], [30, 20, 10])
    np.testing.assert_array_equal(decode_image("bgra8", 1, 1, 4, 0, bytes([10, 20, 30, 99]))[0, 0], [30, 20, 10])


def test_accepts_the_buffer_types_rclpy_and_users_give() -> None:
    pixels = _pixels(2, 3, 3, np.uint8)
    raw = pixels.tobytes()
    for data in (raw, bytearray(raw), array.array("B", raw), memoryview(raw), list(raw), pixels.reshape(-1)):
        np.testing.assert_array_equal(decode_image("rgb8", 2, 3, 9, 0, data), pixels)


@pytest.mark.parametrize(
    ("fields", "reason", "words"),
    [
        (("bayer_rggb8", 2, 2, 2, 0, bytes(4)), "unsupported_encoding", "unsupported image encoding 'bayer_rggb8'"),
        (("yuv422", 2, 2, 4, 0, bytes(8)), "unsupported_encoding", "unsupported image encoding 'yuv422'"),
        (("32FC1", 2, 2, 8, 0, bytes(16)), "unsupported_encoding", "unsupported image encoding '32FC1'"),
        (("RGB8", 2, 2, 6, 0, bytes(12)), "unsupported_encoding", "supported: rgb8"),
        (("rgb8", 0, 4, 12, 0, b""), "empty_image", "empty rgb8 image (4 x 0)"),
        (("rgb8", 4, 0, 0, 0, b""), "empty_image", "empty"),
        (("rgb8", 2, 2, 5, 0, bytes(10)), "bad_layout", "step 5 is less than"),
        (("rgb8", 2, 2, 6, 0, bytes(11)), "bad_layout", "11 bytes but step * height = 6 * 2 = 12"),
        (("rgb8", 2, 2, 6, 0, bytes(13)), "bad_layout", "13 bytes"),
        (("mono16", 2, 2, 4, 0, bytes(7)), "bad_layout", "7 bytes"),
        (("rgb8", MAX_SIDE + 1, 1, 3, 0, b""), "too_large", "larger than"),
        (("rgb8", -1, 2, 6, 0, b""), "bad_layout", "height must be >= 0"),
        (("rgb8", 2.0, 2, 6, 0, bytes(12)), "bad_layout", "height must be an integer"),
        ((None, 2, 2, 6, 0, bytes(12)), "unsupported_encoding", "encoding must be a string"),
        (("rgb8", 1, 1, 3, 0, [1, 2, 300]), "bad_data", "[0, 255]"),
        (("rgb8", 1, 1, 3, 0, "abc"), "bad_data", "byte"),
    ],
)
def test_bad_fields_give_a_clear_error(fields: tuple, reason: str, words: str) -> None:
    with pytest.raises(ImageConversionError) as info:
        decode_image(*fields)
    assert words in str(info.value)
    assert info.value.reason == reason
    assert isinstance(info.value, InputError)


def test_huge_claimed_size_is_refused_before_reading_data() -> None:
    with pytest.raises(ImageConversionError, match="larger than 8192 x 8192"):
        decode_image("rgba16", 8193, 8193, 8193 * 8, 0, b"")
    with pytest.raises(ImageConversionError, match="more than the limit"):
        decode_image("rgba16", 8192, 8192, 8192 * 8 + 8, 0, b"")


# Every field random and mostly inconsistent: the codec may only ever raise its own error type.
_ENCODINGS = st.one_of(
    st.sampled_from([*COLOR_ENCODINGS, "32FC1", "16UC1", "bayer_rggb8", "yuv422", "", "rgb8 "]),
    st.text(max_size=12),
)
_SIDES = st.one_of(st.integers(-3, 40), st.sampled_from([0, MAX_SIDE, MAX_SIDE + 1, 2**32 - 1, -(2**31)]))
_DATA = st.one_of(
    st.binary(max_size=600),
    st.lists(st.integers(-5, 300), max_size=40),
    st.just(None),
    st.text(max_size=20),
    st.builds(lambda n: array.array("B", bytes(n)), st.integers(0, 600)),
    st.builds(lambda n: np.zeros(n, dtype=np.float32), st.integers(0, 50)),
)


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    encoding=_ENCODINGS,
    height=_SIDES,
    width=_SIDES,
    step=st.one_of(st.integers(-3, 200), st.just(2**40)),
    is_bigendian=st.one_of(st.integers(-1, 3), st.booleans()),
    data=_DATA,
)
def test_random_malformed_images_raise_only_image_conversion_error(
    encoding: str, height: int, width: int, step: int, is_bigendian: int, data: object
) -> None:
    for decode in (decode_image, decode_depth):
        try:
            out = decode(encoding, height, width, step, is_bigendian, data)
        except ImageConversionError:
            continue
        # Accepted: the fields were consistent after all, and the result has the size they claim.
        assert out.shape[:2] == (height, width)


@settings(max_examples=100, deadline=None)
@given(
    fmt=st.sampled_from(["jpeg", "png", "", "16UC1; compressedDepth", "rgb8; jpeg compressed bgr8"]),
    data=st.one_of(st.binary(max_size=300), st.just(b"\x89PNG\r\n\x1a\n" + bytes(40))),
)
def test_random_compressed_bytes_raise_only_image_conversion_error(fmt: str, data: bytes) -> None:
    with contextlib.suppress(ImageConversionError):
        decode_compressed(fmt, data)


def _encoded(img: Image.Image, fmt: str) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt)
    return buf.getvalue()


def test_compressed_png_and_jpeg_decode_to_rgb8() -> None:
    pixels = _pixels(6, 8, 3, np.uint8)
    np.testing.assert_array_equal(decode_compressed("png", _encoded(Image.fromarray(pixels), "PNG")), pixels)
    smooth = np.tile(np.linspace(0, 255, 32, dtype=np.uint8)[None, :, None], (16, 1, 3))
    jpeg = decode_compressed("jpeg", _encoded(Image.fromarray(smooth), "JPEG"))
    assert jpeg.shape == (16, 32, 3) and jpeg.dtype == np.uint8
    assert np.abs(jpeg.astype(int) - smooth).max() < 12  # lossy, but the same picture
    gray16 = (np.arange(12, dtype=np.uint16).reshape(3, 4) * 5000).astype(np.uint16)
    out = decode_compressed("png", _encoded(Image.fromarray(gray16), "PNG"))
    np.testing.assert_array_equal(out, gray16)


def test_compressed_errors_are_clear() -> None:
    with pytest.raises(ImageConversionError, match="cannot decode compressed image"):
        decode_compressed("jpeg", b"not a jpeg at all")
    with pytest.raises(ImageConversionError, match="no data"):
        decode_compressed("png", b"")
    with pytest.raises(ImageConversionError, match="compressedDepth"):
        decode_compressed("16UC1; compressedDepth", b"\x00" * 20)
    # A tiny PNG header that claims a 20000 x 20000 image is refused from the header alone.
    big = _encoded(Image.new("L", (1, 1)), "PNG")
    ihdr = big.index(b"IHDR")
    claimed = big[: ihdr + 4] + (20000).to_bytes(4, "big") * 2 + big[ihdr + 12 :]
    with pytest.raises(ImageConversionError):
        decode_compressed("png", claimed)


def test_depth_decoding_units_and_invalid_values() -> None:
    meters = np.array([[1.5, 0.0, np.nan], [np.inf, -2.0, 7.25]], dtype=np.float32)
    for big in (False, True):
        h, w, step, be, data = _fields(meters[..., None], pad=4, big_endian=big)
        out = decode_depth("32FC1", h, w, step, be, data)
        np.testing.assert_array_equal(out, [[1.5, np.nan, np.nan], [np.nan, np.nan, 7.25]])
    mm = np.array([[1500, 0, 65535]], dtype=np.uint16)
    h, w, step, be, data = _fields(mm[..., None])
    out = decode_depth("16UC1", h, w, step, be, data)
    np.testing.assert_allclose(out, [[1.5, np.nan, 65.535]], rtol=1e-6)
    with pytest.raises(ImageConversionError, match="unsupported depth encoding 'rgb8'"):
        decode_depth("rgb8", 1, 1, 3, 0, bytes(3))


def test_encoders_round_trip_through_the_decoders() -> None:
    rgb = _pixels(4, 5, 3, np.uint8)
    f = encode_rgb8(rgb)
    assert (f.encoding, f.height, f.width, f.step) == ("rgb8", 4, 5, 15)
    assert isinstance(f.data, array.array) and f.data.typecode == "B"
    np.testing.assert_array_equal(decode_image(f.encoding, f.height, f.width, f.step, f.is_bigendian, f.data), rgb)
    depth = RNG.uniform(0.5, 9.0, size=(4, 5)).astype(np.float32)
    d = encode_depth(depth)
    assert (d.encoding, d.step) == ("32FC1", 20)
    np.testing.assert_array_equal(decode_depth(d.encoding, d.height, d.width, d.step, d.is_bigendian, d.data), depth)
    with pytest.raises(ImageConversionError):
        encode_rgb8(np.zeros((2, 2), np.uint8))
    assert bytes(ros_bytes(np.arange(3, dtype=np.uint16))) == np.arange(3, dtype=np.uint16).tobytes()


def test_as_rgb8() -> None:
    np.testing.assert_array_equal(as_rgb8(np.array([[0x1234]], np.uint16))[0, 0], [0x12, 0x12, 0x12])
    rgb = _pixels(2, 2, 3, np.uint8)
    assert as_rgb8(rgb) is rgb


def test_resample_sparse_keeps_samples_and_nearest_wins() -> None:
    sparse = np.full((4, 4), np.nan, np.float32)
    sparse[0, 0], sparse[3, 3] = 2.0, 5.0
    out = resample_sparse(sparse, 8, 8)
    assert np.isfinite(out).sum() == 2
    assert out[0, 0] == 2.0 or out[1, 1] == 2.0
    assert out[7, 7] == 5.0 or out[6, 6] == 5.0
    dense = np.array([[1.0, 3.0], [2.0, 4.0]], np.float32)
    down = resample_sparse(dense, 1, 1)
    assert down[0, 0] == 1.0  # four samples on one pixel: the nearest
    assert resample_sparse(dense, 2, 2) is dense


# ------------------------------------------------------------------------ limits, reasons and edge cases
def _reason(call, *args) -> tuple[str, str]:
    with pytest.raises(ImageConversionError) as info:
        call(*args)
    return info.value.reason, str(info.value)


def test_each_field_is_named_in_its_error() -> None:
    assert _reason(decode_image, "rgb8", 2, 2.0, 6, 0, bytes(12)) == (
        "bad_layout", "image width must be an integer, got float")
    assert _reason(decode_image, "rgb8", 2, 2, -6, 0, bytes(12)) == ("bad_layout", "image step must be >= 0, got -6")
    assert _reason(decode_image, "rgb8", 2, 2, 6, "0", bytes(12)) == (
        "bad_layout", "image is_bigendian must be an integer, got str")
    assert _reason(decode_image, "rgb16", 2, 2, 11, 0, bytes(24))[1] == (
        "rgb16 image step 11 is less than width * bytes per pixel = 2 * 6")
    assert _reason(decode_image, 5, 1, 1, 3, 0, bytes(3)) == (
        "unsupported_encoding", "image encoding must be a string, got int")
    assert _reason(decode_depth, 5, 1, 1, 4, 0, bytes(4)) == (
        "unsupported_encoding", "depth encoding must be a string, got int")
    assert _reason(decode_depth, "32FC1", 1, 1, 4, 0, bytes(3))[1].startswith("32FC1 image data has 3 bytes")
    assert _reason(decode_depth, "16UC1", 1, 1, 2, 0, bytes(3))[1].startswith("16UC1 image data has 3 bytes")
    assert _reason(decode_image, "rgb8", 1, 1, 3, 0, [[1], [1, 2]])[1].startswith("image data is not a byte buffer: ")
    assert _reason(decode_depth, "8UC1", 1, 1, 1, 0, bytes(1)) == (
        "unsupported_encoding", "unsupported depth encoding '8UC1'; supported: 32FC1 (meters), 16UC1 (millimeters)")
    message = _reason(decode_image, "nv12", 1, 1, 3, 0, bytes(3))[1]
    assert message.endswith("supported: " + ", ".join(sorted(SPEC, key=list(COLOR_ENCODINGS).index)))


def test_is_bigendian_may_be_a_bool() -> None:
    data = bytes([0x01, 0x02])
    assert decode_image("mono16", 1, 1, 2, True, data)[0, 0] == 0x0102
    assert decode_image("mono16", 1, 1, 2, False, data)[0, 0] == 0x0201


def test_size_limits_are_reasons_for_the_counters() -> None:
    reason, message = _reason(decode_image, "rgba16", 8192, 8192, 8192 * 8 + 8, 0, b"")
    assert reason == "too_large" and "more than the limit of 536870912" in message
    # Exactly the limit is allowed: the claimed layout passes, and the (short) data is what is refused.
    assert _reason(decode_image, "rgba16", 8192, 8192, 8192 * 8, 0, b"")[0] == "bad_layout"
    huge = np.zeros(8192 * 8192 * 8 + 1, np.uint8)
    reason, message = _reason(decode_image, "rgb8", 1, 1, 3, 0, huge)
    assert (reason, message) == ("too_large", "image data has 536870913 bytes, more than the limit of 536870912")
    exactly = np.zeros(8192 * 8192 * 8, np.uint8)  # at the limit: not too large, just the wrong size here
    assert _reason(decode_image, "rgb8", 1, 1, 3, 0, exactly)[0] == "bad_layout"


def test_plain_lists_of_bytes() -> None:
    out = decode_image("rgb8", 1, 2, 6, 0, [0, 1, 2, 253, 254, 255])
    assert out.dtype == np.uint8 and out.tolist() == [[[0, 1, 2], [253, 254, 255]]]
    assert _reason(decode_image, "rgb8", 1, 1, 3, 0, [0, 1, 256]) == (
        "bad_data", "image data values must be bytes in [0, 255]")
    assert _reason(decode_image, "rgb8", 1, 1, 3, 0, [[0, 1, 2]])[0] == "bad_data"
    assert "flat sequence of bytes" in _reason(decode_image, "rgb8", 1, 1, 3, 0, [[0, 1, 2]])[1]
    assert _reason(decode_image, "rgb8", 1, 1, 3, 0, [1.5, 2.0, 3.0])[0] == "bad_data"


def test_depth_encodings_and_sub_meter_depth() -> None:
    mm = np.array([[500, 0, 1]], dtype="<u2")
    for encoding in ("16UC1", "mono16"):
        out = decode_depth(encoding, 1, 3, 6, 0, mm.tobytes())
        assert out.dtype == np.float32
        np.testing.assert_allclose(out, [[0.5, np.nan, 0.001]], rtol=1e-6)
    meters = np.array([[0.25, 0.999]], dtype="<f4")
    out = decode_depth("32FC1", 1, 2, 8, 0, meters.tobytes())
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, meters)


def test_compressed_reasons_limits_and_modes() -> None:
    reason, message = _reason(decode_compressed, "16UC1; compressedDepth", b"\x00" * 20)
    assert reason == "unsupported_encoding" and "not supported as camera input" in message
    assert _reason(decode_compressed, "png", b"") == ("empty_image", "compressed image has no data")
    one = decode_compressed("png", _encoded(Image.fromarray(np.full((1, 1, 3), 7, np.uint8)), "PNG"))
    assert one.shape == (1, 1, 3) and one.dtype == np.uint8
    tiny = _encoded(Image.new("L", (1, 1)), "PNG")
    ihdr = tiny.index(b"IHDR")  # chunk: length, "IHDR", width, height, 5 more bytes, CRC of type + data
    for w, h in ((8193, 1), (1, 8193)):
        body = b"IHDR" + w.to_bytes(4, "big") + h.to_bytes(4, "big") + tiny[ihdr + 12 : ihdr + 17]
        claimed = tiny[: ihdr] + body + zlib.crc32(body).to_bytes(4, "big") + tiny[ihdr + 21 :]
        reason, message = _reason(decode_compressed, "png", claimed)
        assert reason == "too_large" and f"compressed image of {w} x {h} is empty or larger than 8192 x 8192" in message
    assert decode_compressed("png", _encoded(Image.new("L", (8192, 1)), "PNG")).shape == (1, 8192, 3)
    assert decode_compressed("png", _encoded(Image.new("L", (1, 8192)), "PNG")).shape == (8192, 1, 3)
    # Color modes other than RGB come back as H x W x 3 RGB.
    rgba = np.array([[[10, 20, 30, 40]]], np.uint8)
    np.testing.assert_array_equal(decode_compressed("png", _encoded(Image.fromarray(rgba), "PNG")), [[[10, 20, 30]]])
    gray = np.array([[0, 200]], np.uint8)
    np.testing.assert_array_equal(decode_compressed("png", _encoded(Image.fromarray(gray), "PNG")),
                                  [[[0, 0, 0], [200, 200, 200]]])
    # 16-bit and 32-bit integer images: native uint16, clipped to 0..65535.
    big16 = Image.frombytes("I;16B", (2, 1), np.array([1, 60000], ">u2").tobytes())
    out = decode_compressed("tiff", _encoded(big16, "TIFF"))
    assert out.dtype == np.uint16 and out.tolist() == [[1, 60000]]
    int32 = Image.fromarray(np.array([[-5, 70000, 1234]], dtype=np.int32))
    out = decode_compressed("tiff", _encoded(int32, "TIFF"))
    assert out.dtype == np.uint16 and out.tolist() == [[0, 65535, 1234]]
    message = _reason(decode_compressed, "jpeg", b"\xff\xd8\xff" + bytes(30))[1]
    assert message.startswith("cannot decode compressed image (format 'jpeg'): ")


def test_encoders_check_dtype_and_declare_byte_order() -> None:
    with pytest.raises(ImageConversionError, match=r"rgb8 needs an H x W x 3 uint8 array, got float32 \(2, 2, 3\)"):
        encode_rgb8(np.zeros((2, 2, 3), np.float32))
    assert encode_rgb8(np.zeros((2, 2, 3), np.uint8)).is_bigendian == 0
    with pytest.raises(ImageConversionError, match=r"32FC1 needs an H x W array, got shape \(2, 2, 1\)"):
        encode_depth(np.zeros((2, 2, 1), np.float32))
    d = encode_depth(np.array([[1.5]], dtype=np.float64))
    assert d.is_bigendian == int(not np.little_endian)
    assert bytes(d.data) == np.array([1.5], dtype="=f4").tobytes()
    assert as_rgb8(np.array([[0xFFFF, 0x00FF]], np.uint16)).dtype == np.uint8


def test_resample_sparse_positions_by_hand() -> None:
    # Pixel centers map as u' = (u + 0.5) * s - 0.5: with s = 3, rows 0, 1 -> 1, 4; with s = 4.5, columns
    # 0, 1 -> 1.75, 6.25 -> 2, 6.
    sparse = np.array([[1.0, np.nan], [np.nan, 2.0]], dtype=np.float64)
    out = resample_sparse(sparse, 6, 9)
    assert out.dtype == np.float32 and out.shape == (6, 9)
    assert np.isfinite(out).sum() == 2
    assert out[1, 2] == 1.0 and out[4, 6] == 2.0
    tall = np.full((2, 3), np.nan)
    tall[1, 2] = 4.0
    out = resample_sparse(tall, 6, 9)  # rows: (1 + 0.5) * 3 - 0.5 = 4; columns: (2 + 0.5) * 3 - 0.5 = 7
    assert np.flatnonzero(np.isfinite(out)).tolist() == [4 * 9 + 7]
    column = np.full((4, 1), np.nan)
    column[3, 0] = 5.0
    down = resample_sparse(column, 2, 1)  # (3 + 0.5) * 0.5 - 0.5 = 1.25 -> the last row
    assert down.tolist() == [[pytest.approx(np.nan, nan_ok=True)], [5.0]]
    single = resample_sparse(np.array([[np.nan, np.nan, 3.0]]), 1, 4)  # (2 + 0.5) * 4 / 3 - 0.5 = 2.83 -> 3
    assert np.flatnonzero(np.isfinite(single)).tolist() == [3] and single[0, 3] == 3.0
    none = resample_sparse(np.full((2, 2), np.nan), 3, 3)
    assert none.dtype == np.float32 and np.isnan(none).all()
    same = resample_sparse(np.ones((2, 2), np.float64), 2, 2)
    assert same.dtype == np.float32
