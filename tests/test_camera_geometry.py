"""iris_ros.camera_info (CameraInfo -> the depth image's K and P) and the node's points, against references.

Expected values come from re-implementations written here, independently of the code under test:

- :func:`image_geometry_kp`: image_geometry's ``PinholeCameraModel::fromCameraInfo`` (vision_opencv,
  ``image_geometry/src/pinhole_camera_model.cpp``), entry by entry on the flat row-major arrays;
- :func:`depth_image_proc_xyz`: depth_image_proc's ``convertDepth`` (image_pipeline,
  ``depth_image_proc/include/depth_image_proc/conversions.hpp``), a per-pixel float32 loop reading
  fx, fy, cx, cy from P as image_geometry's accessors do.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from iris_ros.camera_info import CameraInfoError, CameraInfoFields, camera_geometry, check_camera_info
from iris_ros.cloud_packing import pack_depth_cloud, unpack_cloud

K = [525.0, 0.0, 319.5, 0.0, 530.0, 239.5, 0.0, 0.0, 1.0]
#: A rectified right camera of a stereo pair: P differs from K (new focal length, principal point, Tx).
P = [500.0, 0.0, 330.25, -60.0, 0.0, 500.0, 242.75, 0.0, 0.0, 0.0, 1.0, 0.0]


def image_geometry_kp(
    k: list[float], p: list[float], roi: tuple[int, int, int, int], binning_x: int, binning_y: int
) -> tuple[list[float], list[float]]:
    """K and P as image_geometry's PinholeCameraModel adjusts them for ROI and binning."""
    k, p = list(k), list(p)
    x_offset, y_offset = roi[0], roi[1]
    if x_offset != 0 or y_offset != 0:
        k[2] -= x_offset
        k[5] -= y_offset
        p[2] -= x_offset
        p[6] -= y_offset
    if binning_x > 1:
        scale_x = 1.0 / binning_x
        k[0] *= scale_x
        k[2] *= scale_x
        p[0] *= scale_x
        p[2] *= scale_x
        p[3] *= scale_x
    if binning_y > 1:
        scale_y = 1.0 / binning_y
        k[4] *= scale_y
        k[5] *= scale_y
        p[5] *= scale_y
        p[6] *= scale_y
        p[7] *= scale_y
    return k, p


def depth_image_proc_xyz(depth: np.ndarray, p: list[float]) -> np.ndarray:
    """depth_image_proc's convertDepth for 32FC1 (meters), pixel by pixel, in float32 as it computes."""
    f32 = np.float32
    center_x, center_y = f32(p[2]), f32(p[6])  # model.cx(), model.cy(): P(0,2), P(1,2)
    constant_x, constant_y = f32(1.0 / p[0]), f32(1.0 / p[5])  # unit_scaling / model.fx(), / model.fy()
    out = np.empty((*depth.shape, 3), np.float32)
    for v in range(depth.shape[0]):
        for u in range(depth.shape[1]):
            d = f32(depth[v, u])
            if not math.isfinite(d):
                out[v, u] = np.nan
                continue
            out[v, u, 0] = (f32(u) - center_x) * d * constant_x
            out[v, u, 1] = (f32(v) - center_y) * d * constant_y
            out[v, u, 2] = d
    return out


def _fields(**kw) -> CameraInfoFields:
    return CameraInfoFields(**{"k": K, "p": P, "width": 640, "height": 480, **kw})


@pytest.mark.parametrize(
    ("roi", "bx", "by", "image"),
    [
        ((100, 50, 320, 240), 0, 0, (320, 240)),  # the issue's ROI crop
        ((0, 0, 0, 0), 2, 2, (320, 240)),  # 2x2 binning of the full image
        ((0, 0, 0, 0), 4, 2, (160, 240)),  # anisotropic binning
        ((64, 32, 512, 384), 2, 2, (256, 192)),  # ROI then binning
        ((0, 0, 640, 480), 1, 1, (640, 480)),  # a ROI that is the full image
    ],
)
def test_roi_and_binning_as_image_geometry(roi, bx, by, image) -> None:
    cam = camera_geometry(_fields(roi=roi, binning_x=bx, binning_y=by), *image)
    k, p = image_geometry_kp(K, P, roi, bx, by)
    np.testing.assert_allclose(cam.k.reshape(-1), k, rtol=0, atol=1e-12)
    np.testing.assert_allclose(cam.p.reshape(-1), p, rtol=0, atol=1e-12)
    assert (cam.width, cam.height) == image
    assert (cam.fx, cam.fy, cam.cx, cam.cy) == (p[0], p[5], p[2], p[6])  # what depth_image_proc reads


def test_the_issue_s_roi_case_keeps_the_focal_length() -> None:
    """640x480 CameraInfo, ROI offset (100, 50) size 320x240, a 320x240 image: fx stays 525, cx = cx0 - 100."""
    cam = camera_geometry(CameraInfoFields(k=K, p=[0.0] * 12, width=640, height=480, roi=(100, 50, 320, 240)), 320, 240)
    assert cam.k[0, 0] == 525.0 and cam.k[0, 2] == 319.5 - 100 and cam.k[1, 2] == 239.5 - 50
    assert cam.p[0, 0] == 525.0  # P all zeros: P = [K | 0], adjusted the same way


def test_a_remaining_size_difference_is_a_resize_after_roi_and_binning() -> None:
    """ROI 320x240 at (100, 50), binning 2 -> 160x120; the image is 80x60: a further resize by 0.5."""
    cam = camera_geometry(_fields(roi=(100, 50, 320, 240), binning_x=2, binning_y=2), 80, 60)
    k, p = image_geometry_kp(K, P, (100, 50, 320, 240), 2, 2)
    # Resizing maps pixel centers: u' = (u + 0.5) * s - 0.5 (hand-derived: f' = s f, c' = (c + 0.5) s - 0.5).
    s = 0.5
    assert cam.p[0, 0] == pytest.approx(p[0] * s) and cam.p[1, 1] == pytest.approx(p[5] * s)
    assert cam.p[0, 2] == pytest.approx((p[2] + 0.5) * s - 0.5) and cam.p[1, 2] == pytest.approx((p[6] + 0.5) * s - 0.5)
    assert cam.p[0, 3] == pytest.approx(p[3] * s)
    assert cam.k[0, 0] == pytest.approx(k[0] * s) and cam.k[0, 2] == pytest.approx((k[2] + 0.5) * s - 0.5)


def test_plain_resize_and_unset_size() -> None:
    cam = camera_geometry(_fields(), 320, 240)
    assert cam.k[0, 0] == 262.5 and cam.k[0, 2] == pytest.approx(159.5)  # (319.5 + 0.5) / 2 - 0.5
    same = camera_geometry(_fields(width=0, height=0), 320, 240)  # 0 x 0 = "the image's size": no resize
    np.testing.assert_array_equal(same.k.reshape(-1), K)


def test_intrinsics_overflowing_after_scaling_are_refused_with_the_reason() -> None:
    """Valid at its own 1x1 size, fx=1e37 overflows float32 once scaled to 128 x 96."""
    info = CameraInfoFields(k=[1e37, 0, 0, 0, 1e37, 0, 0, 0, 1], p=[0.0] * 12, width=1, height=1)
    check_camera_info(info)  # fine as sent
    with pytest.raises(CameraInfoError, match=r"at the image's 128 x 96.*float32"):
        camera_geometry(info, 128, 96)
    huge = CameraInfoFields(k=[1e308, 0, 0, 0, 1e308, 0, 0, 0, 1], p=[0.0] * 12, width=1, height=1)
    with pytest.raises(CameraInfoError, match="1e"):
        check_camera_info(huge)  # not even usable as sent: depth_image_proc computes in float


@pytest.mark.parametrize(
    ("kw", "words"),
    [
        ({"k": [0.0] * 9}, "focal lengths fx=0, fy=0"),
        ({"k": [500.0, 0, 319.5, 0, -1.0, 239.5, 0, 0, 1]}, "focal lengths"),
        ({"k": [float("nan"), 0, 319.5, 0, 510.0, 239.5, 0, 0, 1]}, "focal lengths"),
        ({"p": [0.0, 0, 1, 0, 0, 1, 1, 0, 0, 0, 1, 0]}, "CameraInfo P has focal lengths fx=0"),
        ({"k": [1.0, 2.0]}, "9 entries"),
        ({"p": [1.0] * 9}, "12 entries"),
        ({"roi": (400, 0, 320, 240)}, "does not fit"),
        ({"roi": (0, 0, 1, 1), "binning_x": 2}, "empty image"),
    ],
)
def test_unusable_camera_info_is_a_clear_error(kw, words) -> None:
    with pytest.raises(CameraInfoError, match=words):
        check_camera_info(_fields(**kw))


def test_points_equal_depth_image_proc_on_the_published_pair_with_p_not_k() -> None:
    rng = np.random.default_rng(3)
    depth = rng.uniform(0.3, 12.0, size=(24, 32)).astype(np.float32)
    depth[2, 5] = np.nan
    depth[7, 1] = np.inf
    cam = camera_geometry(_fields(roi=(64, 48, 256, 192), binning_x=8, binning_y=8), 32, 24)
    rgb = rng.integers(0, 256, size=(24, 32, 3)).astype(np.uint8)
    packed = pack_depth_cloud(depth, cam.fx, cam.fy, cam.cx, cam.cy, rgb=rgb)
    got = unpack_cloud(packed.fields, packed.point_step, packed.height, packed.width, packed.data)
    expected = depth_image_proc_xyz(depth, cam.p.reshape(-1).tolist())
    np.testing.assert_allclose(got["xyz"], expected, rtol=0, atol=1e-5, equal_nan=True)
    np.testing.assert_array_equal(got["rgb"], rgb)
    # With K instead of P the cloud would be elsewhere: the test can tell them apart.
    with_k = depth_image_proc_xyz(depth, [*cam.k[0], 0.0, *cam.k[1], 0.0, *cam.k[2], 0.0])
    assert np.nanmax(np.abs(with_k - expected)) > 0.1


def test_cloud_stride_and_max_range() -> None:
    depth = np.linspace(0.5, 5.0, 8 * 10, dtype=np.float32).reshape(8, 10)
    packed = pack_depth_cloud(depth, 20.0, 21.0, 4.5, 3.5, stride=3, max_range=4.0)
    xyz = unpack_cloud(packed.fields, packed.point_step, packed.height, packed.width, packed.data)["xyz"]
    assert xyz.shape == (3, 4, 3)
    full = depth_image_proc_xyz(depth, [20.0, 0, 4.5, 0, 0, 21.0, 3.5, 0, 0, 0, 1, 0])[::3, ::3]
    far = depth[::3, ::3] > 4.0
    np.testing.assert_allclose(xyz[~far], full[~far], atol=1e-5)
    assert np.isnan(xyz[far]).all() and far.any()
