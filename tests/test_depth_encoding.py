"""Log-spaced depth encoding (``"depth_log_scale"`` in model_index.json): the map, the pipeline's inversion,
loading and saving, and the ONNX export keeping it."""

from __future__ import annotations

import json
import math
import shutil

import numpy as np
import pytest
import torch

from iris_model import IrisDepthPipeline
from iris_model.depth_encoding import LOG_SCALE_KEY, check_log_scale, decode_depth, encode_depth
from iris_model.errors import InputError, ModelLoadError

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_the_map_keeps_the_ends_spreads_the_near_range_and_inverts():
    d = torch.linspace(0.0, 1.0, 101, dtype=torch.float64)
    y = encode_depth(d, 10.0)
    assert float(y[0]) == 0.0 and float(y[-1]) == pytest.approx(1.0, abs=1e-12)
    assert bool((y[1:] > y[:-1]).all())
    # By hand: log(1 + 10 * 0.1) / log(11) = log(2) / log(11).
    assert float(y[10]) == pytest.approx(math.log(2.0) / math.log(11.0), rel=1e-12)
    # The nearest tenth of the range takes 29 % of the output instead of 10 %.
    assert float(y[10]) > 0.28
    torch.testing.assert_close(decode_depth(y, 10.0), d, rtol=0, atol=1e-12)
    assert decode_depth(y, 0.0) is y and encode_depth(d, 0.0) is d


@pytest.mark.parametrize("bad", [-1.0, float("nan"), float("inf"), "ten", None])
def test_a_bad_log_scale_is_refused_with_its_name(bad):
    with pytest.raises(InputError, match=LOG_SCALE_KEY):
        check_log_scale(bad)


def _with_log_scale(src, dst, value):
    shutil.copytree(src, dst)
    index = json.loads((dst / "model_index.json").read_text())
    index[LOG_SCALE_KEY] = value
    (dst / "model_index.json").write_text(json.dumps(index))
    return dst


def _image() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (48, 64, 3), dtype=np.uint8)


def test_the_pipeline_returns_the_decoded_depth_of_a_log_spaced_checkpoint(tiny_model_dir, tmp_path):
    linear = IrisDepthPipeline.from_pretrained(tiny_model_dir)
    log_dir = _with_log_scale(tiny_model_dir, tmp_path / "log", 10.0)
    logged = IrisDepthPipeline.from_pretrained(log_dir)
    assert logged.depth_log_scale == 10.0 and linear.depth_log_scale == 0.0
    # At the processing resolution, so that no resize sits between the decoder and the output.
    kwargs = dict(num_inference_steps=2, processing_resolution=64, generator=torch.Generator().manual_seed(0))
    a = linear(_image(), "a wall", **kwargs)
    kwargs["generator"] = torch.Generator().manual_seed(0)
    b = logged(_image(), "a wall", **kwargs)
    torch.testing.assert_close(b.latent, a.latent, rtol=0, atol=0)  # the same model up to the read-out
    expected = decode_depth(torch.from_numpy(a.depth).double(), 10.0).numpy()
    np.testing.assert_allclose(b.depth, expected, rtol=0, atol=1e-6)
    assert not np.allclose(a.depth, b.depth, atol=1e-3)
    # save_pretrained keeps the encoding
    logged.save_pretrained(tmp_path / "saved")
    assert json.loads((tmp_path / "saved" / "model_index.json").read_text())[LOG_SCALE_KEY] == 10.0
    assert IrisDepthPipeline.from_pretrained(tmp_path / "saved").depth_log_scale == 10.0


def test_a_checkpoint_with_a_bad_log_scale_does_not_load(tiny_model_dir, tmp_path):
    bad = _with_log_scale(tiny_model_dir, tmp_path / "bad", -2)
    with pytest.raises(ModelLoadError, match=LOG_SCALE_KEY):
        IrisDepthPipeline.from_pretrained(bad)


def test_the_onnx_export_keeps_the_encoding_and_matches_torch(tiny_model_dir, tmp_path):
    pytest.importorskip("onnxruntime")
    from iris_model.export import ExportSettings, export_onnx

    log_dir = _with_log_scale(tiny_model_dir, tmp_path / "log", 10.0)
    onnx_dir = tmp_path / "onnx"
    export_onnx(log_dir, onnx_dir, ExportSettings(height=48, width=64))
    assert json.loads((onnx_dir / "model_index.json").read_text())[LOG_SCALE_KEY] == 10.0
    torch_pipe = IrisDepthPipeline.from_pretrained(log_dir)
    ort_pipe = IrisDepthPipeline.from_pretrained(onnx_dir, backend="onnxruntime")
    kwargs = dict(num_inference_steps=1, processing_resolution=64)
    a = torch_pipe(_image(), "a wall", generator=torch.Generator().manual_seed(0), **kwargs)
    b = ort_pipe(_image(), "a wall", generator=torch.Generator().manual_seed(0), **kwargs)
    np.testing.assert_allclose(b.depth, a.depth, atol=1e-4)
