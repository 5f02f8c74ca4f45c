"""CameraInfo numbers at the edges: which entries are the focal lengths, limits, messages, P's translations.

Complements ``test_camera_geometry.py`` (ROI, binning, isotropic resize, against image_geometry). Expected
values from the CameraInfo definition: K = [fx 0 cx; 0 fy cy; 0 0 1] and P = [fx' 0 cx' Tx; 0 fy' cy' Ty;
0 0 1 0], row-major; points are computed from P (image_geometry's ``fx()`` = P[0], ``fy()`` = P[5]); a
resize by (sx, sy) scales fx, Tx by sx and fy, Ty by sy, and moves the principal point as pixel centers
move, c' = (c + 0.5) * s - 0.5; binning divides the y entries of P (fy, cy, Ty) by binning_y.
"""

from __future__ import annotations

import numpy as np
import pytest

from iris_ros.camera_info import CameraInfoError, CameraInfoFields, camera_geometry

K = [500.0, 0.0, 319.5, 0.0, 510.0, 239.5, 0.0, 0.0, 1.0]
#: fx != fy and both translations set, so a swapped or unscaled entry shows.
P = [500.0, 0.0, 319.5, -25.0, 0.0, 510.0, 239.5, 7.0, 0.0, 0.0, 1.0, 0.0]
NO_P = [0.0] * 12  # drivers that fill only K


def _k(fx: float, fy: float, cx: float = 319.5, cy: float = 239.5) -> list[float]:
    return [fx, 0.0, cx, 0.0, fy, cy, 0.0, 0.0, 1.0]


def _info(k: object = K, p: object = P, width: int = 640, height: int = 480, **kw) -> CameraInfoFields:
    return CameraInfoFields(k=k, p=p, width=width, height=height, **kw)


@pytest.mark.parametrize(
    ("k", "p"),
    [
        (_k(500.0, 0.0), NO_P),  # fy alone zero (K[4])
        (_k(0.0, 510.0), NO_P),  # fx alone zero
        (_k(500.0, float("inf")), NO_P),
        (K, [500.0, 0.0, 319.5, 0.0, 0.0, 0.0, 239.5, 0.0, 0.0, 0.0, 1.0, 0.0]),  # P's fy (P[5]) zero, K fine
    ],
)
def test_either_focal_length_unusable_is_refused(k, p):
    with pytest.raises(CameraInfoError) as info:
        camera_geometry(_info(k, p), 640, 480)
    assert "they must be finite and > 0 (an all-zero K means the camera is not calibrated)" in str(info.value)


def test_small_focal_lengths_are_accepted_and_fy_read_from_k4_or_p5():
    cam = camera_geometry(_info(_k(0.5, 0.25, cx=3.0, cy=2.0), NO_P, 8, 6), 8, 6)
    assert (cam.fx, cam.fy, cam.cx, cam.cy) == (0.5, 0.25, 3.0, 2.0)  # P = [K | 0]: fy is K[4]
    p = [0.5, 0.0, 3.0, 0.0, 0.0, 0.75, 2.5, 0.0, 0.0, 0.0, 1.0, 0.0]
    cam = camera_geometry(_info(_k(0.5, 0.25, cx=3.0, cy=2.0), p, 8, 6), 8, 6)
    assert (cam.fx, cam.fy, cam.cx, cam.cy) == (0.5, 0.75, 3.0, 2.5)  # P set: fy is P[5], cy is P[6]


def test_messages_for_malformed_matrices():
    with pytest.raises(CameraInfoError, match=r"^CameraInfo K is not 9 numbers: "):
        camera_geometry(_info(["a"] * 9), 640, 480)
    with pytest.raises(CameraInfoError, match=r"^CameraInfo P is not 12 numbers: "):
        camera_geometry(_info(p=["a"] * 12), 640, 480)
    with pytest.raises(CameraInfoError, match=r"^CameraInfo K holds nan .*every entry must be finite"):
        camera_geometry(_info(_k(500.0, 510.0, cx=float("nan"))), 640, 480)


def test_anisotropic_resize_scales_k_p_and_both_translations_by_hand():
    # 640 x 480 -> 320 x 120: sx = 0.5, sy = 0.25; cx' = (319.5 + 0.5) * 0.5 - 0.5, cy' = (239.5 + 0.5) * 0.25 - 0.5.
    cam = camera_geometry(_info(), 320, 120)
    assert cam.p.shape == (3, 4) and cam.k.shape == (3, 3)
    assert cam.p.reshape(-1).tolist() == [250.0, 0.0, 159.5, -12.5, 0.0, 127.5, 59.5, 1.75, 0.0, 0.0, 1.0, 0.0]
    assert cam.k.reshape(-1).tolist() == [250.0, 0.0, 159.5, 0.0, 127.5, 59.5, 0.0, 0.0, 1.0]
    intr = cam.intrinsics()
    assert (intr.fx, intr.fy, intr.cx, intr.cy, intr.width, intr.height) == (250.0, 127.5, 159.5, 59.5, 320, 120)


def test_binning_divides_ty():
    # binning 2 x 2 of 640 x 480 -> 320 x 240, no resize: Ty = 7 / 2, Tx = -25 / 2.
    cam = camera_geometry(_info(binning_x=2, binning_y=2), 320, 240)
    assert (cam.p[0, 3], cam.p[1, 3]) == (-12.5, 3.5)


@pytest.mark.parametrize(("width", "height"), [(0, 0), (640, 0), (0, 480)])
def test_unset_size_means_the_image_s_size(width, height):
    """A width or height of 0 (some drivers leave them unset): K and P are for the image as it comes."""
    cam = camera_geometry(_info(width=width, height=height), 320, 120)
    assert cam.p.reshape(-1).tolist() == P and cam.k.reshape(-1).tolist() == K
    assert (cam.width, cam.height) == (320, 120)


def test_nested_rows_are_accepted():
    rows_k = [K[0:3], K[3:6], K[6:9]]
    rows_p = [P[0:4], P[4:8], P[8:12]]
    cam = camera_geometry(_info(rows_k, rows_p), 640, 480)
    np.testing.assert_array_equal(cam.p.reshape(-1), P)
    np.testing.assert_array_equal(cam.k.reshape(-1), K)
