"""Precision plumbing: ``--dtype`` end to end through ``iris-depth``, the VAE kept in float32, and a non-finite
result in half precision reported as an error instead of being written as depth."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from iris_model import IrisDepthPipeline, NonFiniteOutputError
from iris_model.cli import main


@pytest.fixture(scope="module")
def image_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("img") / "frame.png"
    rng = np.random.default_rng(3)
    Image.fromarray(rng.integers(0, 256, (40, 56, 3), dtype=np.uint8)).save(path)
    return path


def _predict(model_dir, image, out, dtype):
    rc = main(["predict", str(image), "--model", str(model_dir), "--steps", "2", "--dtype", dtype,
               "--out", str(out)])
    return rc, out / f"{image.stem}_depth.npy"


def test_bf16_end_to_end_through_the_cli(tiny_model_dir, image_file, tmp_path, one_torch_thread):
    rc32, f32 = _predict(tiny_model_dir, image_file, tmp_path / "fp32", "fp32")
    rc16, b16 = _predict(tiny_model_dir, image_file, tmp_path / "bf16", "bf16")
    assert rc32 == 0 and rc16 == 0
    d32, d16 = np.load(f32), np.load(b16)
    assert d16.shape == d32.shape == (40, 56) and d16.dtype == np.float32
    assert np.isfinite(d16).all() and d16.min() >= 0 and d16.max() <= 1
    # bf16 keeps 8 bits of mantissa: the map follows the fp32 one closely but not bit for bit (it did run in bf16).
    assert not np.array_equal(d16, d32)
    assert np.abs(d16 - d32).mean() < 0.05
    assert np.corrcoef(d16.ravel(), d32.ravel())[0, 1] > 0.95


def test_half_precision_keeps_the_vae_in_float32(tiny_model_dir):
    pipe = IrisDepthPipeline.from_pretrained(tiny_model_dir, dtype=torch.bfloat16)
    comps = pipe.components
    assert next(comps.unet.parameters()).dtype == torch.bfloat16
    assert next(comps.text_encoder.parameters()).dtype == torch.bfloat16
    assert next(comps.vae.parameters()).dtype == torch.float32


def test_unknown_dtype_is_refused(tiny_model_dir, image_file, tmp_path):
    with pytest.raises(SystemExit):
        main(["predict", str(image_file), "--model", str(tiny_model_dir), "--dtype", "fp8", "--out", str(tmp_path)])


@pytest.fixture(scope="module")
def overflowing_model_dir(tmp_path_factory):
    """A checkpoint whose UNet output is ~1e5 in magnitude: finite in float32, beyond float16's 65504."""
    from iris_model.testing import make_tiny_pipeline

    root = tmp_path_factory.mktemp("overflow")
    pipe = make_tiny_pipeline(seed=1, work_dir=root)
    with torch.no_grad():
        pipe.components.unet.conv_out.weight.mul_(2e5)
        pipe.components.unet.conv_out.bias.mul_(2e5)
    pipe.save_pretrained(root / "model")
    return root / "model"


def test_fp16_overflow_is_reported_not_written(overflowing_model_dir, image_file, tmp_path, caplog,
                                                one_torch_thread):
    rc32, f32 = _predict(overflowing_model_dir, image_file, tmp_path / "fp32", "fp32")
    assert rc32 == 0 and np.isfinite(np.load(f32)).all()  # the same weights are fine in float32
    rc16, f16 = _predict(overflowing_model_dir, image_file, tmp_path / "fp16", "fp16")
    assert rc16 == 1
    assert not f16.exists() and not (tmp_path / "fp16" / f"{image_file.stem}_depth.png").exists()
    assert "non-finite" in caplog.text and "half precision" in caplog.text


def test_non_finite_latent_raises_in_the_pipeline(tiny_model_dir):
    pipe = IrisDepthPipeline.from_pretrained(tiny_model_dir)
    image = np.zeros((32, 32, 3), np.uint8)
    latents = torch.full((1, 4, 8, 8), float("nan"))
    with pytest.raises(NonFiniteOutputError, match="non-finite"):
        pipe(image, "a room", latents=latents, num_inference_steps=1, processing_resolution=32)
