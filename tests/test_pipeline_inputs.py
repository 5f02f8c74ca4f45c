"""Images the pipeline cannot process are refused up front with the reason, not a traceback from the resize."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from iris_model import InputError
from iris_model.testing import make_tiny_pipeline


@pytest.fixture(scope="module")
def pipe(tmp_path_factory, one_torch_thread):
    return make_tiny_pipeline(seed=0, work_dir=tmp_path_factory.mktemp("inputs"))


@pytest.mark.parametrize(("height", "width", "resolution"), [(1, 8192, 64), (3000, 3, 64), (1, 8192, 4096)])
def test_extreme_aspect_ratios_are_refused_with_the_reason(pipe, height, width, resolution):
    image = np.zeros((height, width, 3), dtype=np.uint8)
    with pytest.raises(InputError, match=r"aspect ratio .* processing_resolution") as err:
        pipe(image, "x", num_inference_steps=1, processing_resolution=resolution)
    assert f"{width}x{height}" in str(err.value)


@pytest.mark.parametrize(("height", "width", "resolution"), [(1, 64, 64), (3, 3000, 1024), (3, 3000, 0)])
def test_the_most_extreme_processable_ratios_still_run(pipe, height, width, resolution):
    # short * resolution // long >= 1: the resize keeps at least one pixel, padding does the rest
    image = np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)
    out = pipe(image, "x", num_inference_steps=1, processing_resolution=resolution,
               generator=torch.Generator().manual_seed(0))
    assert out.depth.shape == (1, height, width)
    assert np.isfinite(out.depth).all()
