"""IrisDepthPipeline's options and checks: defaults, validation messages, loading settings, cancel, timings.

The numeric behaviour against diffusers is in test_pipeline_parity.py; this file covers what a caller sets.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from iris_model import InputError, IrisDepthPipeline
from iris_model.errors import Cancelled


@pytest.fixture(scope="module")
def iris(tiny_model_dir, one_torch_thread):
    return IrisDepthPipeline.from_pretrained(tiny_model_dir)


def _image(h: int = 24, w: int = 32, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def test_defaults_when_the_model_gives_none(iris):
    bare = IrisDepthPipeline(iris.components, iris.tokenizer, iris.scheduler)
    assert (bare.default_denoising_steps, bare.default_processing_resolution) == (4, 768)
    native = IrisDepthPipeline(iris.components, iris.tokenizer, iris.scheduler, default_processing_resolution=0)
    assert native.default_processing_resolution == 0  # 0 = native size is a setting, not "unset"


def test_loading_reads_the_settings_and_passes_backend_options(tiny_model_dir, monkeypatch):
    import iris_model.runtime as runtime

    seen = {}
    real = runtime.load_components

    def spy(*args, **kwargs):
        seen.update(kwargs)
        kwargs.pop("threads")
        return real(*args, **kwargs)

    monkeypatch.setattr(runtime, "load_components", spy)
    pipe = IrisDepthPipeline.from_pretrained(tiny_model_dir, threads=3)
    assert seen["threads"] == 3
    assert (pipe.default_denoising_steps, pipe.default_processing_resolution) == (4, 64)
    assert pipe.extra_settings == {}  # the known keys of model_index.json are not "extra"


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"processing_resolution": 64.0}, "processing_resolution must be in [0, 4096], got 64.0"),
        ({"processing_resolution": 4097}, "processing_resolution must be in [0, 4096], got 4097"),
        ({"processing_resolution": -1}, "processing_resolution must be in [0, 4096], got -1"),
        ({"ensemble_size": 0}, "ensemble_size must be in [1, 32], got 0"),
        ({"ensemble_size": 33}, "ensemble_size must be in [1, 32], got 33"),
        ({"batch_size": -1}, "batch_size must be >= 0"),
        ({"num_inference_steps": 0}, "num_inference_steps must be in [1, 50], got 0"),
        ({"latents": torch.zeros(1, 4, 3, 4), "generator": torch.Generator()}, "give either latents or generator"),
    ],
)
def test_bad_options_are_refused_clearly(iris, kwargs, words):
    with pytest.raises(InputError) as info:
        iris(_image(), "a room", **kwargs)
    assert str(info.value) == words or str(info.value).startswith(words)


def test_bad_images_are_refused_clearly(iris):
    with pytest.raises(InputError, match=r"^float images must hold values in \[0, 1\]$"):
        iris(np.full((8, 8, 3), 2.0, np.float32), "a room", num_inference_steps=1)
    with pytest.raises(InputError, match=r"^no image given$"):
        iris([], "a room", num_inference_steps=1)
    with pytest.raises(InputError, match=r"^2 descriptions for 3 images$"):
        iris([_image()] * 3, ["a", "b"], num_inference_steps=1)


def test_thin_and_non_contiguous_images(iris):
    image = _image()
    flipped = image[:, ::-1]  # a view with a negative stride, as an image flipped by the caller
    a = iris(flipped, "a room", single_step=True).depth
    b = iris(np.ascontiguousarray(flipped), "a room", single_step=True).depth
    np.testing.assert_array_equal(a, b)
    assert iris(_image(20, 1), "a room", single_step=True).depth.shape == (1, 20, 1)
    assert iris(_image(1, 20), "a room", single_step=True).depth.shape == (1, 1, 20)


def test_cancel_is_asked_before_each_step_and_before_decoding(iris):
    calls = []
    iris(_image(), "a room", num_inference_steps=3, generator=torch.Generator().manual_seed(0),
         cancel=lambda: calls.append(1) and False)
    assert len(calls) == 3 + 1
    with pytest.raises(Cancelled):
        iris(_image(), "a room", num_inference_steps=3, cancel=lambda: True)


def test_timings_are_per_component_seconds_within_the_total(iris):
    t = iris(_image(), "a room", num_inference_steps=2, generator=torch.Generator().manual_seed(0)).timings
    parts = [t[k] for k in ("encode_text", "encode_image", "denoise", "decode")]
    assert all(p >= 0.0 for p in parts)
    assert t["denoise"] > 0.0
    assert sum(parts) <= t["total"]


def test_single_step_with_an_lcm_scheduler_gives_the_same_prediction(tiny_model_dir):
    # At t = T - 1 LCM's boundary condition gives c_skip ~ 2.5e-9 and c_out ~ 1, so from zero latents its
    # `denoised` is DDIM's x0 (pred_original_sample).
    pipe = IrisDepthPipeline.from_pretrained(tiny_model_dir)
    ddim = pipe(_image(), "a room", single_step=True, output_latent=True).latent
    pipe.set_scheduler("lcm")
    lcm = pipe(_image(), "a room", single_step=True, output_latent=True).latent
    assert torch.abs(lcm - ddim).max() < 1e-5
    assert torch.abs(ddim).max() > 0.1


def test_uncertainty_without_an_ensemble_is_zero(iris):
    out = iris(_image(), "a room", single_step=True, output_uncertainty=True)
    assert out.uncertainty is not None and out.uncertainty.shape == (1, 24, 32)
    assert not out.uncertainty.any()
    assert iris(_image(), "a room", single_step=True).uncertainty is None
