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
        # Near and far in the right order almost everywhere (stage 14: 0.96-0.97): walls recede, boxes are nearer.
        assert spearmanr(depth[valid], truth[valid])[0] > 0.7
        picture = np.asarray(Image.open(tmp_path / f"{stem}_compare.png"))
        assert picture.shape == (truth.shape[0], 3 * truth.shape[1], 3)
        assert f"{stem}: AbsRel" in printed and "with the description (without one:" in printed


@pytest.mark.parametrize("temporal_mode", ["off", "stream", "pose"])
def test_demo_run_passes_string_parameters_that_yaml_keeps_strings(temporal_mode, tmp_path):
    """rcl reads each ``-p name:=value`` as YAML, where an unquoted ``off`` is the boolean False: the demo's node
    arguments must reach the node as the parameter types it declares."""
    import argparse

    import yaml

    from iris_ros.config import PARAMETERS
    from iris_ros.demo_run import node_arguments

    args = argparse.Namespace(depth_mode="sparse_aligned", temporal_mode=temporal_mode, model_dir="some/model")
    argv = node_arguments(args, tmp_path / "missing.yaml")
    values = dict(a.split(":=", 1) for a, flag in zip(argv[1:], argv[:-1], strict=True) if flag == "-p")
    types = {spec.name: spec.type for spec in PARAMETERS}
    parsed = {name: yaml.safe_load(text) for name, text in values.items()}
    assert parsed["temporal_mode"] == temporal_mode
    assert all(isinstance(v, types[name]) for name, v in parsed.items()), parsed


def test_a_boolean_for_a_string_parameter_says_to_quote_it():
    from iris_ros.config import ConfigError, NodeConfig

    with pytest.raises(ConfigError, match=r"quote the value, e.g. temporal_mode:='off'"):
        NodeConfig(temporal_mode=False)
