"""The 16-bit depth PNG: invalid pixels get a code of their own, valid depth keeps 65534 levels."""

from __future__ import annotations

import numpy as np
from PIL import Image

from iris_model.outputs import decode_depth_png16, encode_depth_png16, load_depth_png16, save_depth_png16


def test_codes_by_hand():
    depth = np.array([[np.nan, 0.0, 1.0], [0.5, np.inf, 1e-9]], dtype=np.float32)
    # 0 = invalid; valid depth d -> 1 + round(d * 65534): 0 -> 1, 1 -> 65535, 0.5 -> 1 + 32767
    assert encode_depth_png16(depth).tolist() == [[0, 1, 65535], [32768, 0, 1]]


def test_nearest_valid_value_is_distinguishable_from_invalid(tmp_path):
    depth = np.array([[0.0, np.nan], [-np.inf, 0.25]], dtype=np.float32)
    save_depth_png16(tmp_path / "d.png", depth)
    raw = np.asarray(Image.open(tmp_path / "d.png"))
    assert raw.dtype == np.uint16
    assert raw[0, 0] != raw[0, 1]
    back = load_depth_png16(tmp_path / "d.png")
    assert np.isnan(back[0, 1]) and np.isnan(back[1, 0])
    assert back[0, 0] == 0.0 and abs(back[1, 1] - 0.25) <= 0.5 / 65534


def test_round_trip_error_is_half_a_level():
    depth = np.random.default_rng(0).random((64, 64)).astype(np.float32)
    back = decode_depth_png16(encode_depth_png16(depth))
    assert np.isfinite(back).all()
    assert np.abs(back - depth).max() <= 0.5 / 65534 + 1e-7
