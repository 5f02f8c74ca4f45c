"""CameraInfo numbers at the edges: which entries are the focal lengths, limits, messages, P's translations.

Expected values from the CameraInfo definition: K = [fx 0 cx; 0 fy cy; 0 0 1] and P = [fx' 0 cx' Tx;
0 fy' cy' Ty; 0 0 1 0], row-major; a resize by (sx, sy) scales fx, Tx by sx and fy, Ty by sy, and moves the
principal point as pixel centers move, c' = (c + 0.5) * s - 0.5.
"""

from __future__ import annotations

import pytest

from iris_ros.camera_info import CameraInfoError, intrinsics_for_image, scaled_projection

K = [500.0, 0.0, 319.5, 0.0, 510.0, 239.5, 0.0, 0.0, 1.0]


def _k(fx: float, fy: float, cx: float = 319.5, cy: float = 239.5) -> list[float]:
    return [fx, 0.0, cx, 0.0, fy, cy, 0.0, 0.0, 1.0]


@pytest.mark.parametrize("k", [_k(500.0, 0.0), _k(0.0, 510.0), _k(500.0, -2.0), _k(500.0, float("inf"))])
def test_either_focal_length_unusable_is_refused(k):
    with pytest.raises(CameraInfoError) as info:
        intrinsics_for_image(k, 640, 480, 640, 480)
    assert "they must be finite and > 0 (an all-zero K means the camera is not calibrated)" in str(info.value)


def test_small_focal_lengths_are_accepted_and_read_from_k0_and_k4():
    intr = intrinsics_for_image(_k(0.5, 0.25, cx=3.0, cy=2.0), 8, 6, 8, 6)
    assert (intr.fx, intr.fy, intr.cx, intr.cy) == (0.5, 0.25, 3.0, 2.0)


def test_messages_for_malformed_k():
    with pytest.raises(CameraInfoError, match=r"^CameraInfo K is not 9 numbers: "):
        intrinsics_for_image(["a"] * 9, 640, 480, 640, 480)
    with pytest.raises(CameraInfoError, match=r"^unusable CameraInfo: intrinsics must be finite"):
        intrinsics_for_image(_k(500.0, 510.0, cx=float("nan")), 640, 480, 640, 480)


def test_projection_translations_scale_and_unset_size_means_image_size():
    p = [500.0, 0.0, 319.5, -25.0, 0.0, 510.0, 239.5, 7.0, 0.0, 0.0, 1.0, 0.0]
    out = scaled_projection(p, 640, 480, 320, 120)
    assert out.shape == (12,)
    assert out.tolist() == [250.0, 0.0, 159.5, -12.5, 0.0, 127.5, 59.5, 1.75, 0.0, 0.0, 1.0, 0.0]
    assert scaled_projection(p, 0, 0, 640, 480).tolist() == p
    assert scaled_projection([[*p[:4]], [*p[4:8]], [*p[8:]]], 640, 480, 640, 480).tolist() == p


def test_k_rescaled_by_hand():
    # 640 x 480 -> 320 x 120: sx = 0.5, sy = 0.25; cx' = (319.5 + 0.5) * 0.5 - 0.5, cy' = (239.5 + 0.5) * 0.25 - 0.5.
    intr = intrinsics_for_image(K, 640, 480, 320, 120)
    assert (intr.fx, intr.fy, intr.cx, intr.cy, intr.width, intr.height) == (250.0, 127.5, 159.5, 59.5, 320, 120)
    same = intrinsics_for_image(K, 0, 0, 320, 120)  # unset size: K is for the image as it comes
    assert (same.fx, same.fy, same.cx, same.cy) == (500.0, 510.0, 319.5, 239.5)
