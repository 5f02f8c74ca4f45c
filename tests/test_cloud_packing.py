"""iris_ros.cloud_packing (PointCloud2 bytes), without ROS (CameraInfo geometry: test_camera_geometry.py)."""

from __future__ import annotations

import numpy as np
import pytest

from iris_model.errors import InputError
from iris_model.geometry import Intrinsics, depth_to_points
from iris_ros.cloud_packing import FLOAT32, XYZ_FIELDS, XYZRGB_FIELDS, pack_xyz, pack_xyzrgb, unpack_cloud

RNG = np.random.default_rng(1)


def _points(h: int = 6, w: int = 9) -> np.ndarray:
    pts = RNG.normal(size=(h, w, 3)).astype(np.float32)
    pts[1, 2] = np.nan  # an invalid point stays NaN in place (organized cloud)
    return pts


def test_xyz_layout_and_round_trip() -> None:
    pts = _points()
    packed = pack_xyz(pts)
    assert (packed.height, packed.width, packed.point_step, packed.row_step) == (6, 9, 12, 108)
    assert [(f.name, f.offset, f.datatype, f.count) for f in packed.fields] == [
        ("x", 0, FLOAT32, 1),
        ("y", 4, FLOAT32, 1),
        ("z", 8, FLOAT32, 1),
    ]
    assert packed.data.dtype == np.uint8 and packed.data.size == 6 * 9 * 12
    assert packed.is_dense is False
    back = unpack_cloud(packed.fields, packed.point_step, packed.height, packed.width, packed.data)
    np.testing.assert_array_equal(back["xyz"], pts)
    assert "rgb" not in back


def test_xyzrgb_packs_rgb_as_0x00rrggbb_bits_in_a_float32_field_named_rgb() -> None:
    pts = _points()
    rgb = RNG.integers(0, 256, size=(6, 9, 3)).astype(np.uint8)
    packed = pack_xyzrgb(pts, rgb)
    assert packed.fields == XYZRGB_FIELDS
    assert packed.fields[3].name == "rgb" and packed.fields[3].offset == 12 and packed.fields[3].datatype == FLOAT32
    assert (packed.point_step, packed.row_step) == (16, 16 * 9)
    # Read the raw bytes as PCL/RViz do: float32 x y z, then the 4 bytes of rgb as a uint32.
    order = ">" if packed.is_bigendian else "<"
    raw = packed.data.view(
        np.dtype([("x", order + "f4"), ("y", order + "f4"), ("z", order + "f4"), ("rgb", order + "u4")])
    )
    raw = raw.reshape(6, 9)
    expected = (rgb[..., 0].astype(np.uint32) << 16) | (rgb[..., 1].astype(np.uint32) << 8) | rgb[..., 2]
    np.testing.assert_array_equal(raw["rgb"], expected)
    np.testing.assert_array_equal(raw["x"], pts[..., 0])
    np.testing.assert_array_equal(raw["z"], pts[..., 2])
    back = unpack_cloud(packed.fields, 16, 6, 9, packed.data)
    np.testing.assert_array_equal(back["rgb"], rgb)
    np.testing.assert_array_equal(back["xyz"], pts)


@pytest.mark.parametrize(("h", "w"), [(1, 1), (1, 2), (2, 1), (7, 3)])
def test_xyzrgb_any_size_and_non_contiguous_colors(h: int, w: int) -> None:
    pts = RNG.normal(size=(h, w, 3)).astype(np.float32)
    rgb = RNG.integers(0, 256, size=(2 * h, 2 * w, 3)).astype(np.uint8)[::2, ::2]  # a decimated image
    packed = pack_xyzrgb(pts, rgb)
    back = unpack_cloud(packed.fields, 16, h, w, packed.data)
    np.testing.assert_array_equal(back["rgb"], rgb)
    np.testing.assert_array_equal(back["xyz"], pts)


@pytest.mark.parametrize("little", [True, False])
def test_colors_are_the_0x00rrggbb_word_in_either_host_byte_order(monkeypatch, little: bool) -> None:
    """The word's value is the same on either host; the big-endian branch (which reads OpenCV's widened pixels
    as big-endian words) is checked here by pretending to be a big-endian host."""
    import iris_ros.cloud_packing as cloud_packing

    monkeypatch.setattr(cloud_packing, "_LITTLE", little)
    rgb = RNG.integers(0, 256, size=(5, 7, 3)).astype(np.uint8)
    expected = (rgb[..., 0].astype(np.uint32) << 16) | (rgb[..., 1].astype(np.uint32) << 8) | rgb[..., 2]
    words = cloud_packing.color_words(rgb)
    assert words.shape == (5, 7)
    np.testing.assert_array_equal(words, expected)
    np.testing.assert_array_equal(cloud_packing.color_words(rgb[::2, ::3]), expected[::2, ::3])  # strided input


def test_nan_and_every_float_bit_pattern_survive_the_interleave() -> None:
    """OpenCV moves the coordinates as 32-bit words: NaN, infinities, -0.0 and denormals come back bit for bit."""
    special = np.array([np.nan, np.inf, -np.inf, -0.0, 1e-45, 3.4e38], np.float32)
    pts = RNG.normal(size=(6, 9, 3)).astype(np.float32)
    pts.reshape(-1)[: special.size * 8] = np.tile(special, 8)
    pts.view(np.uint32).reshape(-1)[-1] = 0x7FC0_1234  # a NaN with a payload
    for packed in (pack_xyz(pts), pack_xyzrgb(pts, RNG.integers(0, 256, size=(6, 9, 3)).astype(np.uint8))):
        back = unpack_cloud(packed.fields, packed.point_step, 6, 9, packed.data)["xyz"]
        np.testing.assert_array_equal(back.view(np.uint32), pts.view(np.uint32))


def test_a_strided_cloud_from_depth_takes_the_colors_of_its_pixels() -> None:
    from iris_ros.cloud_packing import pack_depth_cloud

    depth = RNG.uniform(0.5, 4.0, size=(10, 14)).astype(np.float32)
    rgb = RNG.integers(0, 256, size=(10, 14, 3)).astype(np.uint8)
    packed = pack_depth_cloud(depth, 20.0, 21.0, 6.5, 4.5, rgb=rgb, stride=3)
    back = unpack_cloud(packed.fields, packed.point_step, packed.height, packed.width, packed.data)
    np.testing.assert_array_equal(back["rgb"], rgb[::3, ::3])
    np.testing.assert_array_equal(back["xyz"][..., 2], depth[::3, ::3])


def test_packing_refuses_bad_shapes() -> None:
    with pytest.raises(InputError, match="H x W x 3"):
        pack_xyz(np.zeros((4, 3), np.float32))
    with pytest.raises(InputError, match="empty"):
        pack_xyz(np.zeros((0, 3, 3), np.float32))
    with pytest.raises(InputError, match="uint8"):
        pack_xyzrgb(np.zeros((2, 2, 3), np.float32), np.zeros((2, 2, 3), np.float32))
    with pytest.raises(InputError, match="shape"):
        pack_xyzrgb(np.zeros((2, 2, 3), np.float32), np.zeros((2, 3, 3), np.uint8))
    with pytest.raises(InputError, match="bytes"):
        unpack_cloud(XYZ_FIELDS, 12, 2, 2, np.zeros(47, np.uint8))


def test_packed_cloud_back_projects_like_depth_image_proc() -> None:
    """Points from depth + K, packed and read back, satisfy X = (u - cx) z / fx, Y = (v - cy) z / fy."""
    intr = Intrinsics(fx=50.0, fy=55.0, cx=15.5, cy=11.0, width=32, height=24)
    depth = RNG.uniform(0.5, 4.0, size=(24, 32)).astype(np.float32)
    depth[3, 4] = np.nan
    packed = pack_xyzrgb(depth_to_points(depth, intr), np.zeros((24, 32, 3), np.uint8))
    xyz = unpack_cloud(packed.fields, packed.point_step, packed.height, packed.width, packed.data)["xyz"]
    v, u = np.mgrid[0:24, 0:32].astype(np.float32)
    np.testing.assert_allclose(xyz[..., 2], depth, rtol=1e-6)
    np.testing.assert_allclose(xyz[..., 0], (u - intr.cx) * depth / intr.fx, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(xyz[..., 1], (v - intr.cy) * depth / intr.fy, rtol=1e-5, atol=1e-6)
    assert np.isnan(xyz[3, 4]).all()
