"""Training configuration files: the shipped YAMLs validate; bad values are errors that name the key."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("iris_training", reason="the training package is not installed (pip install -e training)")

from iris_training.config import load_config
from iris_training.errors import ConfigError

CONFIGS = Path(__file__).resolve().parents[1] / "training" / "configs"


def test_paper_config():
    cfg = load_config(CONFIGS / "iris_sd2.yaml")
    o = cfg.optim
    assert o.batch_size * o.gradient_accumulation == 32 and o.lr == pytest.approx(3e-5) and o.max_steps == 30000
    assert cfg.model.prediction_type == "v_prediction" and o.caption_dropout == pytest.approx(0.1)
    assert [d.name for d in cfg.data.train] == ["hypersim", "vkitti2"]
    assert [d.probability for d in cfg.data.train] == [0.9, 0.1]
    assert all(d.captions for d in cfg.data.train)
    assert o.noise.multires and o.noise.annealed and o.ema.enabled
    assert cfg.validation.dataset is not None and cfg.validation.dataset.name == "nyuv2"


def test_tiny_config_and_overrides(tmp_path):
    cfg = load_config(CONFIGS / "tiny_cpu.yaml", ["optim.max_steps=7", f"data.train.0.root={tmp_path}",
                                                  "optim.noise.multires=false", "data.train.0.resolution=[16, 24]"])
    assert cfg.model.init == "tiny" and cfg.optim.max_steps == 7 and cfg.data.train[0].root == str(tmp_path)
    assert cfg.optim.noise.multires is False and cfg.data.train[0].resolution == (16, 24)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("optim.max_step=3", r"unknown key\(s\) \['max_step'\]"),
        ("optim.lr=-1", "optim.lr"),
        ("optim.caption_dropout=1.5", "caption_dropout"),
        ("optim.mode=distill", "optim.mode: must be one of"),
        ("optim.batch_size=two", "optim.batch_size: expected an integer"),
        ("data.train=[]", "at least one dataset"),
        ("data.train.0.resolution=[32]", r"data.train\[0\].resolution"),
        ("validation.dataset=null", "validation.dataset"),
        ("optim.noise.strength=2", "strength"),
        ("data.train.5.root=x", "not an index"),
        ("nonsense", "key.sub=value"),
    ],
)
def test_bad_values_name_the_key(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config(CONFIGS / "tiny_cpu.yaml", [override])


def test_missing_required_and_bad_yaml(tmp_path):
    (tmp_path / "a.yaml").write_text("output_dir: x\nmodel: {init: tiny}\n")
    with pytest.raises(ConfigError, match="data is required"):
        load_config(tmp_path / "a.yaml")
    (tmp_path / "b.yaml").write_text("output_dir: [unclosed\n")
    with pytest.raises(ConfigError, match="invalid YAML"):
        load_config(tmp_path / "b.yaml")


def test_depth_loss_options_need_the_e2e_depth_loss():
    from iris_training.config import OptimConfig

    OptimConfig(max_steps=1, mode="e2e_ft", gradient_loss_weight=0.5, ambiguous_loss_weight=3.0)
    with pytest.raises(ConfigError, match="need mode e2e_ft"):
        OptimConfig(max_steps=1, mode="diffusion", gradient_loss_weight=0.5)
    with pytest.raises(ConfigError, match="need mode e2e_ft"):
        OptimConfig(max_steps=1, mode="e2e_ft", e2e_loss="latent", ambiguous_loss_weight=2.0)
    with pytest.raises(ConfigError, match="gradient_loss_weight"):
        OptimConfig(max_steps=1, mode="e2e_ft", gradient_loss_weight=-1.0)
    with pytest.raises(ConfigError, match="ambiguous_loss_weight"):
        OptimConfig(max_steps=1, mode="e2e_ft", ambiguous_loss_weight=0.0)
    OptimConfig(max_steps=1, mode="e2e_ft", relative_loss_weight=1.0)
    with pytest.raises(ConfigError, match="relative_loss_weight"):
        OptimConfig(max_steps=1, mode="e2e_ft", relative_loss_weight=-1.0)
    with pytest.raises(ConfigError, match="relative_loss_weight"):
        OptimConfig(max_steps=1, mode="diffusion", relative_loss_weight=1.0)
    OptimConfig(max_steps=1, mode="e2e_ft", ambiguous_loss_weight=6.0, ambiguous_weight_captioned_only=True)
    with pytest.raises(ConfigError, match="ambiguous_weight_captioned_only"):
        OptimConfig(max_steps=1, mode="e2e_ft", ambiguous_weight_captioned_only=True)  # nothing to restrict
    from iris_training.targets import MARIGOLD_QUANTILE

    assert OptimConfig(max_steps=1).depth_target_quantile == MARIGOLD_QUANTILE  # the default changes nothing
    OptimConfig(max_steps=1, mode="e2e_ft", depth_target_quantile=0.0)
    with pytest.raises(ConfigError, match="need mode e2e_ft"):
        OptimConfig(max_steps=1, mode="diffusion", depth_target_quantile=0.0)
    with pytest.raises(ConfigError, match="depth_target_quantile"):
        OptimConfig(max_steps=1, mode="e2e_ft", depth_target_quantile=0.5)
    OptimConfig(max_steps=1, mode="e2e_ft", e2e_decoder="tiny")
    for mode, loss in (("diffusion", "depth"), ("e2e_ft", "latent")):  # no depth loss to decode for
        with pytest.raises(ConfigError, match="e2e_decoder tiny needs"):
            OptimConfig(max_steps=1, mode=mode, e2e_loss=loss, e2e_decoder="tiny")
    OptimConfig(max_steps=1, mode="e2e_ft", e2e_decoder="tiny", e2e_decoder_lr=1e-4)
    with pytest.raises(ConfigError, match=r"needs optim\.e2e_decoder tiny"):
        OptimConfig(max_steps=1, mode="e2e_ft", e2e_decoder_lr=1e-4)  # the VAE decoder stays frozen
    for lr in (0.0, -1e-4, float("nan")):
        with pytest.raises(ConfigError, match="e2e_decoder_lr must be a positive number"):
            OptimConfig(max_steps=1, mode="e2e_ft", e2e_decoder="tiny", e2e_decoder_lr=lr)


def test_model_depth_log_scale_is_validated_once():
    from iris_training.config import ModelConfig

    assert ModelConfig(init="tiny").depth_log_scale is None  # keep the starting model's encoding
    assert ModelConfig(init="tiny", depth_log_scale=10).depth_log_scale == 10.0
    for bad in (-1.0, float("nan"), "ten"):
        with pytest.raises(ConfigError, match=r"model\.depth_log_scale"):
            ModelConfig(init="tiny", depth_log_scale=bad)
