"""iris-depth predict: outputs per image, clear errors for bad images and missing models."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from iris_model.cli import main


def test_predict_writes_all_outputs(tiny_model_dir, tmp_path):
    images = tmp_path / "imgs"
    images.mkdir()
    rng = np.random.default_rng(0)
    for i in range(2):
        Image.fromarray(rng.integers(0, 256, (30, 40, 3), dtype=np.uint8)).save(images / f"f{i}.png")
    out = tmp_path / "out"
    rc = main(["predict", str(images), "--model", str(tiny_model_dir), "--text", "a hallway", "--steps", "2",
               "--out", str(out), "--fov", "60", "--scale", "5", "--shift", "1"])
    assert rc == 0
    for i in range(2):
        depth = np.load(out / f"f{i}_depth.npy")
        assert depth.shape == (30, 40) and depth.dtype == np.float32
        png = np.asarray(Image.open(out / f"f{i}_depth.png"))
        assert png.dtype == np.uint16 or png.max() > 255
        assert png.min() >= 1  # 0 is reserved for invalid pixels
        assert np.allclose((png - 1.0) / 65534.0, depth, atol=1 / 65534.0)
        assert np.asarray(Image.open(out / f"f{i}_depth_color.png")).shape == (30, 40, 3)
        header = (out / f"f{i}.ply").read_bytes()[:200].decode("ascii", "ignore")
        assert "element vertex 1200" in header and "property uchar red" in header


def test_unreadable_image_is_reported_and_others_proceed(tiny_model_dir, tmp_path, caplog):
    good = tmp_path / "good.png"
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(good)
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not a png")
    rc = main(["predict", str(bad), str(good), "--model", str(tiny_model_dir), "--steps", "1",
               "--out", str(tmp_path / "o")])
    assert rc == 1
    assert "cannot read image" in caplog.text and str(bad) in caplog.text
    assert (tmp_path / "o" / "good_depth.npy").is_file()


def test_missing_model_is_a_clear_error(tmp_path, caplog):
    img = tmp_path / "a.png"
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(img)
    rc = main(["predict", str(img), "--model", str(tmp_path / "missing")])
    assert rc == 2
    assert "cannot load model" in caplog.text and "does not exist" in caplog.text


def _read_ply(path) -> np.ndarray:
    """The vertices of a binary little-endian PLY as a structured array (read from its own header)."""
    raw = path.read_bytes()
    end = raw.index(b"end_header\n") + len(b"end_header\n")
    header = raw[:end].decode("ascii").splitlines()
    assert header[:2] == ["ply", "format binary_little_endian 1.0"]
    types = {"float": "<f4", "uchar": "u1"}
    fields = [(line.split()[2], types[line.split()[1]]) for line in header if line.startswith("property")]
    count = int(next(line for line in header if line.startswith("element vertex")).split()[2])
    return np.frombuffer(raw[end:], dtype=fields, count=count)


def test_ply_points_are_metric_with_scale_shift_and_intrinsics(tiny_model_dir, tmp_path):
    rgb = np.random.default_rng(1).integers(0, 256, (12, 16, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / "a.png")
    out = tmp_path / "out"
    fx, fy, cx, cy, scale, shift = 20.0, 25.0, 7.0, 5.5, 4.0, 0.5
    rc = main(["predict", str(tmp_path / "a.png"), "--model", str(tiny_model_dir), "--steps", "1", "--out", str(out),
               "--fx", str(fx), "--fy", str(fy), "--cx", str(cx), "--cy", str(cy),
               "--scale", str(scale), "--shift", str(shift)])
    assert rc == 0
    depth = np.load(out / "a_depth.npy")
    cloud = _read_ply(out / "a.ply")
    assert len(cloud) == 12 * 16  # every pixel has depth >= shift > 0
    # Row-major pixels, pinhole back-projection in the optical frame (x right, y down, z forward).
    v, u = np.mgrid[0:12, 0:16]
    z = scale * depth.astype(np.float64) + shift
    np.testing.assert_allclose(cloud["z"], z.ravel(), rtol=1e-6)
    np.testing.assert_allclose(cloud["x"], ((u - cx) * z / fx).ravel(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(cloud["y"], ((v - cy) * z / fy).ravel(), rtol=1e-5, atol=1e-6)
    colors = np.stack([cloud["red"], cloud["green"], cloud["blue"]], axis=1)
    np.testing.assert_array_equal(colors, rgb.reshape(-1, 3))


def test_missing_input_is_an_error(tiny_model_dir, tmp_path, caplog):
    missing = tmp_path / "no_such.png"
    rc = main(["predict", str(missing), "--model", str(tiny_model_dir), "--out", str(tmp_path / "o")])
    assert rc == 2
    assert "no such image or directory" in caplog.text and str(missing) in caplog.text
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("given", [["--fx", "500"], ["--fx", "500", "--fy", "500", "--cx", "320"], ["--cy", "240"]])
def test_partial_intrinsics_are_refused(tiny_model_dir, tmp_path, caplog, given):
    img = tmp_path / "a.png"
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(img)
    rc = main(["predict", str(img), "--model", str(tiny_model_dir), "--out", str(tmp_path / "o"), *given])
    assert rc == 2
    assert "give all of --fx --fy --cx --cy" in caplog.text
    assert not (tmp_path / "o").exists()
