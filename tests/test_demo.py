"""``python -m iris_model.demo``: the README's picture and figures come from it, on the shipped frames."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from scipy.stats import spearmanr

from iris_model import demo
from iris_model.default_model import EMBEDDED_DIR, is_embedded_available

pytestmark = pytest.mark.skipif(not is_embedded_available(), reason=f"no trained default model at {EMBEDDED_DIR}")


def test_demo_frames_are_shipped_with_caption_intrinsics_and_truth():
    frames = demo.load_demo_frames()
    assert len(frames) == 3
    for f in frames:
        rgb = np.asarray(Image.open(demo.DEMO_DATA / f["image"]))
        truth = demo.true_depth(demo.DEMO_DATA, f)
        assert rgb.shape == (*truth.shape, 3) and rgb.dtype == np.uint8
        assert f["caption"] and f["fx"] > 0 and 0 < f["cx"] < rgb.shape[1] and 0 < f["cy"] < rgb.shape[0]
        valid = np.isfinite(truth)
        assert valid.mean() > 0.9 and 0.1 < truth[valid].min() < truth[valid].max() < 80.0  # meters


def test_demo_runs_the_model_on_them_and_its_depth_orders_the_corridor(tmp_path, capsys, one_torch_thread):
    assert demo.main(["--out", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    for f in demo.load_demo_frames():
        stem = f["image"].removesuffix(".png")
        depth = np.load(tmp_path / f"{stem}_depth.npy")
        truth = demo.true_depth(demo.DEMO_DATA, f)
        valid = np.isfinite(truth)
        # Near and far in the right order almost everywhere (0.81-0.88 measured): walls recede, boxes are nearer.
        assert spearmanr(depth[valid], truth[valid])[0] > 0.7
        picture = np.asarray(Image.open(tmp_path / f"{stem}_compare.png"))
        assert picture.shape == (truth.shape[0], 3 * truth.shape[1], 3)
        assert f"{stem}: AbsRel" in printed and "with the description (without one:" in printed
