"""The embedded default model: real depth on held-out synthetic scenes, and text that matters."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from iris_model import IrisDepthPipeline
from iris_model.default_model import EMBEDDED_DIR, is_embedded_available
from iris_model.metrics import compute_metrics

pytestmark = pytest.mark.skipif(
    not is_embedded_available(),
    reason=f"no trained default model is embedded at {EMBEDDED_DIR}: train it with training/configs/default_model.yaml",
)

SCENES = 8


@pytest.fixture(scope="module")
def model_and_scenes():
    from iris_training.synthetic.registered import open_synthetic

    pipe = IrisDepthPipeline.from_pretrained(EMBEDDED_DIR)
    scenes = open_synthetic("", split="test", size=SCENES, height=96, width=128)
    return pipe, [scenes[i] for i in range(SCENES)]


def test_weights_fit_the_size_budget():
    files = [p for p in EMBEDDED_DIR.rglob("*") if p.is_file()]
    assert sum(p.stat().st_size for p in files) <= 50 * 1024 * 1024
    assert all(p.suffix != ".bin" for p in files)
    assert (EMBEDDED_DIR / "README.md").is_file()  # the model card


def test_beats_a_constant_depth_baseline(model_and_scenes):
    pipe, scenes = model_and_scenes
    ours, constant = [], []
    for i, s in enumerate(scenes):
        gt, valid = s["depth"].numpy(), s["valid"].numpy()
        pred = pipe(s["rgb"], s["caption"], generator=torch.Generator().manual_seed(i)).depth[0]  # default steps
        ours.append(compute_metrics(pred, gt, valid, 1e-3, 80.0)["abs_rel"])
        # The best constant (the least-squares fit of a flat map is the mean depth).
        flat = np.full_like(gt, float(gt[valid].mean()))
        constant.append(compute_metrics(flat, gt, valid, 1e-3, 80.0, align=False)["abs_rel"])
    assert np.mean(ours) < 0.7 * np.mean(constant), (np.mean(ours), np.mean(constant))


def test_text_changes_the_output(model_and_scenes):
    pipe, scenes = model_and_scenes
    s = scenes[0]
    # The same start for all three (a single-step model always starts from zeros): only the text differs.
    shape = pipe(s["rgb"], "", output_latent=True).latent.shape
    start = {} if pipe.extra_settings.get("single_step") else {
        "latents": torch.randn(shape, generator=torch.Generator().manual_seed(0))}
    with_text = pipe(s["rgb"], s["caption"], **start).depth[0]
    without = pipe(s["rgb"], "", **start).depth[0]
    other = pipe(s["rgb"], scenes[1]["caption"], **start).depth[0]
    assert np.abs(with_text - without).mean() > 1e-3
    assert np.abs(with_text - other).mean() > 1e-3
