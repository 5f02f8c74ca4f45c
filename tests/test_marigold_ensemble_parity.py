"""The README's parity claim for ensembles: equal to diffusers' MarigoldDepthPipeline with one-member batches."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from diffusers import MarigoldDepthPipeline

from iris_model import IrisDepthPipeline


@pytest.mark.parametrize("ensemble", [3, 5])
def test_ensembles_match_marigold_with_batch_size_one(tiny_model_dir, one_torch_thread, ensemble):
    iris = IrisDepthPipeline.from_pretrained(tiny_model_dir)
    c = iris.components
    marigold = MarigoldDepthPipeline(
        unet=c.unet, vae=c.vae, scheduler=iris.scheduler, text_encoder=c.text_encoder, tokenizer=iris.tokenizer,
        prediction_type="depth", default_denoising_steps=4, default_processing_resolution=64,
    )
    marigold.set_progress_bar_config(disable=True)
    image = np.random.default_rng(0).integers(0, 256, (45, 70, 3), dtype=np.uint8)
    ours = iris(image, "", num_inference_steps=4, ensemble_size=ensemble, batch_size=1,
                generator=torch.Generator().manual_seed(7)).depth
    ref = marigold(image, num_inference_steps=4, ensemble_size=ensemble, batch_size=1,
                   generator=torch.Generator().manual_seed(7), output_type="np").prediction[..., 0]
    assert np.abs(ours - ref).max() < 1e-5
