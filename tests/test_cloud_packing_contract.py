"""PointCloud2 packing at the edges: input dtypes, empty widths, other field layouts, big-endian clouds.

The expected bytes are built here with numpy's explicit byte orders (sensor_msgs/PointField: FLOAT32 = 7,
UINT32 = 6), not with the packer.
"""

from __future__ import annotations

import numpy as np
import pytest

from iris_model.errors import InputError
from iris_ros.cloud_packing import FieldSpec, pack_depth_cloud, pack_xyz, pack_xyzrgb, unpack_cloud

FLOAT32, UINT32 = 7, 6


def test_float64_points_are_packed_as_float32():
    pts = np.arange(2 * 3 * 3, dtype=np.float64).reshape(2, 3, 3) / 4.0
    native = "<" if np.little_endian else ">"
    xyz = pack_xyz(pts)
    assert xyz.data.dtype == np.uint8 and xyz.data.size == 2 * 3 * 12
    np.testing.assert_array_equal(xyz.data.view(native + "f4").reshape(2, 3, 3), pts)
    rgb = pack_xyzrgb(pts, np.zeros((2, 3, 3), np.uint8))
    assert rgb.data.dtype == np.uint8 and rgb.data.size == 2 * 3 * 16
    np.testing.assert_array_equal(rgb.data.view(native + "f4").reshape(2, 3, 4)[..., :3], pts)


def test_float64_depth_is_back_projected_in_float32():
    # Values exact in float32: X = (u - 1) * z / 2, Y = (v - 0.5) * z / 4, Z = z (depth_image_proc's formula).
    depth = np.arange(1, 7, dtype=np.float64).reshape(2, 3) / 4.0
    packed = pack_depth_cloud(depth, 2.0, 4.0, 1.0, 0.5)
    xyz = unpack_cloud(packed.fields, packed.point_step, 2, 3, packed.data, is_bigendian=packed.is_bigendian)["xyz"]
    v, u = np.mgrid[0:2, 0:3]
    np.testing.assert_array_equal(xyz, np.stack([(u - 1) * depth / 2, (v - 0.5) * depth / 4, depth], axis=-1))


def test_empty_width_is_refused():
    # (An empty height is in test_cloud_packing.py.)
    with pytest.raises(InputError, match="points must not be empty"):
        pack_xyz(np.zeros((3, 0, 3), np.float32))
    with pytest.raises(InputError, match="depth must be a non-empty H x W array"):
        pack_depth_cloud(np.zeros((3, 0), np.float32), 1.0, 1.0, 0.0, 0.0)


def _cloud(order: str, with_rgb: bool) -> tuple[list[FieldSpec], bytes, np.ndarray, np.ndarray]:
    """A 2 x 2 cloud laid out as PCL's PointXYZRGB: x y z at 0 4 8, padding, rgb at 16, point_step 32."""
    xyz = np.array([[[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], [[-1.0, 0.5, 2.5], [np.nan, np.nan, np.nan]]], np.float32)
    colors = np.array([[[255, 0, 10], [1, 2, 3]], [[0, 128, 255], [9, 9, 9]]], np.uint8)
    dtype = np.dtype(
        {
            "names": ["x", "y", "z", "rgb"],
            "formats": [order + "f4"] * 3 + [order + "u4"],
            "offsets": [0, 4, 8, 16],
            "itemsize": 32,
        }
    )
    rec = np.zeros(4, dtype)
    rec["x"], rec["y"], rec["z"] = xyz[..., 0].ravel(), xyz[..., 1].ravel(), xyz[..., 2].ravel()
    c = colors.reshape(-1, 3).astype(np.uint32)
    rec["rgb"] = (c[:, 0] << 16) | (c[:, 1] << 8) | c[:, 2]
    fields = [FieldSpec("x", 0, FLOAT32), FieldSpec("y", 4, FLOAT32), FieldSpec("z", 8, FLOAT32)]
    if with_rgb:
        fields.append(FieldSpec("rgb", 16, FLOAT32))
    return fields, rec.tobytes(), xyz, colors


@pytest.mark.parametrize("big", [False, True])
def test_unpack_reads_other_layouts_in_either_byte_order(big):
    fields, data, xyz, colors = _cloud(">" if big else "<", with_rgb=True)
    back = unpack_cloud(fields, 32, 2, 2, data, is_bigendian=big)
    assert back["xyz"].dtype == np.float32 and back["rgb"].dtype == np.uint8
    np.testing.assert_array_equal(back["xyz"], xyz)
    np.testing.assert_array_equal(back["rgb"], colors)


def test_unpack_refuses_missing_or_non_float_coordinates():
    fields, data, _, _ = _cloud("<", with_rgb=False)
    with pytest.raises(InputError, match="cloud has no FLOAT32 field 'z'"):
        unpack_cloud(fields[:2], 32, 2, 2, data, is_bigendian=False)
    with pytest.raises(InputError, match="cloud has no FLOAT32 field 'y'"):
        unpack_cloud([fields[0], FieldSpec("y", 4, UINT32), fields[2]], 32, 2, 2, data, is_bigendian=False)
