"""iris-depth predict: outputs per image, clear errors for bad images and missing models."""

from __future__ import annotations

import numpy as np
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
