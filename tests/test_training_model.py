"""Training building blocks: starting-weight adaptation, text batching, targets, noise, losses, state files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("iris_training", reason="the training package is not installed (pip install -e training)")

from diffusers import UNet2DConditionModel
from iris_training.config import ModelConfig
from iris_training.errors import ConfigError, TrainingError
from iris_training.losses import (
    MAX_RELATIVE_WEIGHT,
    affine_invariant_loss,
    ambiguous_pixel_weight,
    masked_mse,
    relative_depth_weight,
)
from iris_training.model import CaptionEncoder, load_models, select_trainable, widen_conv_in
from iris_training.noise import annealed_strength, multi_res_noise_like
from iris_training.state import load_ema, load_optimizer, save_ema, save_optimizer
from iris_training.targets import latent_valid_mask, normalize_depth

from iris_model import IrisDepthPipeline
from iris_model.schedulers import default_scheduler
from iris_model.testing import make_tiny_pipeline

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _sd_like_dir(tmp: Path, text_width: int = 32) -> Path:
    """A Stable-Diffusion-like checkpoint: 4-channel UNet input, text encoder of ``text_width``."""
    pipe = make_tiny_pipeline(seed=1, work_dir=tmp)
    if text_width != 32:
        pipe.components.text_encoder = make_tiny_pipeline(seed=2, cross_attention_dim=text_width,
                                                          work_dir=tmp).components.text_encoder
    unet = pipe.components.unet
    config = {k: v for k, v in unet.config.items() if not k.startswith("_")}
    config["in_channels"] = 4
    pipe.components.unet = UNet2DConditionModel.from_config(config)
    pipe.save_pretrained(tmp / "sd")
    return tmp / "sd"


def test_sd_unet_is_widened_the_marigold_way(tmp_path):
    sd = _sd_like_dir(tmp_path)
    original = IrisDepthPipeline.from_pretrained(sd).components.unet
    models = load_models(ModelConfig(init=str(sd)))
    assert models.unet.config.in_channels == 8 and models.unet.conv_in.in_channels == 8
    x = torch.randn(1, 4, 8, 8)
    text = torch.randn(1, 5, 32)
    with torch.no_grad():
        expected = original(x, 10, encoder_hidden_states=text).sample
        # [image latent, depth latent] = [x, x] sees the old weights twice, halved: the same activation.
        got = models.unet(torch.cat([x, x], 1), 10, encoder_hidden_states=text).sample
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-4)


def test_widen_conv_in_keeps_config_in_sync():
    unet = UNet2DConditionModel(sample_size=8, in_channels=4, out_channels=4, layers_per_block=1,
                                block_out_channels=(32, 64), down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
                                up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"), cross_attention_dim=16,
                                attention_head_dim=8, norm_num_groups=8)
    w = unet.conv_in.weight.clone()
    widen_conv_in(unet)
    torch.testing.assert_close(unet.conv_in.weight[:, :4], w / 2)
    torch.testing.assert_close(unet.conv_in.weight[:, 4:], w / 2)
    assert UNet2DConditionModel.from_config(unet.config).conv_in.in_channels == 8


def test_text_width_mismatch_fails_clearly_or_gets_a_projection(tmp_path):
    sd = _sd_like_dir(tmp_path, text_width=48)
    with pytest.raises(TrainingError, match=r"48-wide.*32.*text_projection"):
        load_models(ModelConfig(init=str(sd)))
    models = load_models(ModelConfig(init=str(sd), text_projection="linear"))
    assert models.unet.encoder_hid_proj.in_features == 48 and models.unet.encoder_hid_proj.out_features == 32
    # The projection lives in the UNet: a saved pipeline loads and runs in iris_model with no extra code.
    from iris_training.model import build_pipeline

    build_pipeline(models, models.unet, "v_prediction").save_pretrained(tmp_path / "proj")
    loaded = IrisDepthPipeline.from_pretrained(tmp_path / "proj")
    assert loaded.components.unet.encoder_hid_proj.in_features == 48
    out = loaded(np.zeros((16, 16, 3), np.uint8), "a chair", num_inference_steps=1)
    assert out.depth.shape == (1, 16, 16) and np.isfinite(out.depth).all()


def test_trainable_patterns():
    unet = make_tiny_pipeline().components.unet
    chosen = select_trainable(unet, ["*attn2*"])
    names = [n for n, p in unet.named_parameters() if p.requires_grad]
    assert chosen and len(chosen) == len(names) and all("attn2" in n for n in names)
    with pytest.raises(ConfigError, match="matches no"):
        select_trainable(unet, ["nothing*"])


def test_padded_captions_give_what_inference_gives():
    pipe = make_tiny_pipeline(seed=3)
    unet = pipe.components.unet
    encoder = CaptionEncoder(pipe.tokenizer, pipe.components.text_encoder, capacity=8)
    captions = ["", "a long description of a sofa left of a lamp"]
    states, mask = encoder(captions)
    assert mask is not None and mask.shape == states.shape[:2] and mask[0].sum() == 2
    torch.testing.assert_close(states[0, :2], pipe.embed_text(None)[0])  # the empty prompt inference uses
    x = torch.randn(2, 8, 8, 8)
    with torch.no_grad():
        batched = unet(x, 500, encoder_hidden_states=states, encoder_attention_mask=mask).sample
        for i, c in enumerate(captions):
            alone = unet(x[i : i + 1], 500, encoder_hidden_states=pipe.embed_text(c)).sample
            torch.testing.assert_close(batched[i : i + 1], alone, atol=1e-5, rtol=1e-4)
    assert encoder.cache.misses == 2
    encoder(captions)
    assert encoder.cache.misses == 2 and encoder.cache.hits == 2


def test_depth_normalization_uses_the_2nd_and_98th_percentiles():
    depth = torch.arange(1, 101, dtype=torch.float32).reshape(1, 10, 10)
    valid = torch.ones_like(depth, dtype=torch.bool)
    valid[0, 0, 0] = False
    depth[0, 0, 0] = float("nan")
    n = normalize_depth(depth, valid)
    d = depth[valid]
    lo, hi = torch.quantile(d, 0.02), torch.quantile(d, 0.98)
    assert n.min() == -1 and n.max() == 1 and n[0, 0, 0] == 1  # invalid NaN -> far
    torch.testing.assert_close(n[0, 5, 5], (depth[0, 5, 5] - lo) / (hi - lo) * 2 - 1)
    mask = latent_valid_mask(valid, 4)
    assert mask.shape == (1, 1, 2, 2) and not mask[0, 0, 0, 0] and mask[0, 0, 1, 1]


def test_unclipped_depth_target_scores_a_perfect_prediction_as_perfect():
    # a near object covering 1 % of the image: the 2nd percentile falls on the floor behind it
    depth = torch.linspace(2.0, 6.0, 100).reshape(1, 10, 10)
    depth[0, 0, 0] = 0.5
    valid = torch.ones_like(depth, dtype=torch.bool)
    clipped, exact = normalize_depth(depth, valid), normalize_depth(depth, valid, quantile=0.0)
    assert clipped[0, 0, 0] == clipped[0, 0, 1] == -1  # flattened onto the 2nd percentile
    assert exact.min() == -1 and exact.max() == 1
    torch.testing.assert_close(exact, (depth - 0.5) / 5.5 * 2 - 1)
    truth = 3.0 * depth + 1.0  # any affine map of the true depth is a perfect affine-invariant prediction
    assert affine_invariant_loss(truth, exact, valid, gradient_weight=0.5) < 1e-5
    assert affine_invariant_loss(truth, clipped, valid) > 1e-3


def test_multi_resolution_noise():
    x = torch.zeros(64, 4, 16, 16)
    g = torch.Generator().manual_seed(0)
    plain = multi_res_noise_like(x, strength=0.0, generator=g)
    pyramid = multi_res_noise_like(x, strength=0.9, generator=torch.Generator().manual_seed(0))
    assert abs(float(pyramid.std()) - 1) < 1e-3 and abs(float(plain.mean())) < 0.05
    # Low frequencies: neighbouring pixels correlate far more with the pyramid.
    def corr(n):
        return float(torch.corrcoef(torch.stack([n[..., :-1].flatten(), n[..., 1:].flatten()]))[0, 1])

    assert corr(pyramid) > corr(plain) + 0.3
    t = torch.tensor([0, 500, 999])
    torch.testing.assert_close(annealed_strength(0.9, t, 1000), torch.tensor([0.0, 0.45, 0.8991]))
    per_sample = multi_res_noise_like(torch.zeros(3, 4, 16, 16), annealed_strength(0.9, t, 1000),
                                      generator=torch.Generator().manual_seed(1))
    assert per_sample.shape == (3, 4, 16, 16)


def test_losses():
    g = torch.Generator().manual_seed(0)
    target = torch.rand(2, 16, 16, generator=g)
    mask = torch.rand(2, 16, 16, generator=g) > 0.3
    pred = (3.0 * target - 0.7).requires_grad_(True)
    assert float(affine_invariant_loss(pred, target, mask).detach()) < 1e-5  # any scale and shift is free
    noisy = (target + 0.1 * torch.randn(2, 16, 16, generator=g)).requires_grad_(True)
    loss = affine_invariant_loss(noisy, target, mask)
    loss.backward()
    assert float(loss.detach()) > 0.01 and noisy.grad is not None and noisy.grad[~mask].abs().max() == 0
    p, t = torch.ones(1, 4, 2, 2), torch.zeros(1, 4, 2, 2)
    m = torch.tensor([[[[True, False], [False, False]]]])
    assert float(masked_mse(p, t, m)) == 1.0
    zero = masked_mse(p.requires_grad_(True), t, torch.zeros_like(m))
    assert float(zero.detach()) == 0.0 and zero.requires_grad


def test_ambiguous_weight_can_spare_the_samples_whose_caption_was_dropped():
    amb = torch.zeros(2, 2, 3, dtype=torch.bool)
    amb[:, 0, :2] = True
    w = ambiguous_pixel_weight(amb, 6.0)
    assert w[amb].eq(6.0).all() and w[~amb].eq(1.0).all()
    spared = ambiguous_pixel_weight(amb, 6.0, captioned=torch.tensor([True, False]))
    torch.testing.assert_close(spared[0], w[0])
    assert spared[1].eq(1.0).all()  # the caption-free sample: no extra weight anywhere


def test_relative_weight_weighs_pixels_as_abs_rel_does():
    depth = torch.tensor([[[1.0, 2.0, 4.0, 100.0]], [[3.0, 3.0, 3.0, float("nan")]]])  # meters
    valid = torch.tensor([[[True, True, True, False]], [[True, True, True, True]]])
    w = relative_depth_weight(depth, valid, 2.0)
    r = (w - 1.0) / 2.0
    inv = 1.0 / depth[0, 0, :3]
    torch.testing.assert_close(r[0, 0, :3], inv / inv.mean())  # inverse depth over the image's mean: mean 1
    assert r[0, 0, 3] == 0 and r[1, 0, 3] == 0  # off valid, or no depth: no extra weight
    torch.testing.assert_close(r[1, 0, :3], torch.ones(3))  # a flat image: every pixel alike
    # An L1 weighted so equals AbsRel's weighting: an error of 1 % of the depth costs alike at 1 m and 4 m.
    err = 0.01 * depth[0, 0, :3]
    cost = r[0, 0, :3] * err
    torch.testing.assert_close(cost, cost[0].expand(3))
    # One pixel at the camera's feet cannot take the image's loss.
    near = torch.full((1, 1, 100), 50.0)
    near[0, 0, 0] = 0.01
    assert relative_depth_weight(near, torch.ones_like(near, dtype=torch.bool), 1.0).max() == 1.0 + MAX_RELATIVE_WEIGHT


def test_single_step_x0_is_minus_v_at_the_last_timestep():
    sched = default_scheduler("v_prediction")
    sched.set_timesteps(1)
    v = torch.randn(1, 4, 4, 4)
    x0 = sched.step(v, sched.timesteps[0], torch.zeros_like(v)).pred_original_sample
    assert int(sched.timesteps[0]) == 999
    torch.testing.assert_close(x0, -v)  # zero terminal SNR: alpha_bar(T-1) = 0


def test_optimizer_and_ema_state_round_trip_without_pickle(tmp_path):
    from diffusers.training_utils import EMAModel

    model = torch.nn.Linear(3, 2)
    opt = torch.optim.AdamW(model.parameters(), lr=0.1)
    ema = EMAModel(model.parameters(), decay=0.9)
    for _ in range(3):
        model(torch.randn(4, 3)).sum().backward()
        opt.step()
        opt.zero_grad()
        ema.step(model.parameters())
    save_optimizer(opt, tmp_path)
    save_ema(ema, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ema.json", "ema.safetensors", "optimizer.json",
                                                          "optimizer.safetensors"]
    fresh = torch.nn.Linear(3, 2)
    opt2 = torch.optim.AdamW(fresh.parameters(), lr=0.5)
    ema2 = EMAModel(fresh.parameters(), decay=0.5)
    load_optimizer(opt2, tmp_path)
    load_ema(ema2, tmp_path)
    a, b = opt.state_dict(), opt2.state_dict()
    assert a["param_groups"][0]["lr"] == b["param_groups"][0]["lr"] == 0.1
    for i in a["state"]:
        for k in a["state"][i]:
            torch.testing.assert_close(a["state"][i][k], b["state"][i][k])
    assert ema2.decay == 0.9 and ema2.optimization_step == 3
    for s1, s2 in zip(ema.shadow_params, ema2.shadow_params, strict=True):
        torch.testing.assert_close(s1, s2)


def _gradient_term_by_hand(pred: np.ndarray, target: np.ndarray, mask: np.ndarray, scales: int) -> float:
    """MiDaS's gradient-matching term, pixel by pixel: per image a least-squares scale and shift, the residual,
    then at each level the absolute x and y differences between valid neighbours over the level's valid count."""
    total = 0.0
    for level in range(scales):
        step = 2**level
        count, level_sum = 0, 0.0
        for b in range(pred.shape[0]):
            a = np.stack([pred[b][mask[b]], np.ones(int(mask[b].sum()))], 1)
            (s, c), *_ = np.linalg.lstsq(a, target[b][mask[b]], rcond=None)
            r = (s * pred[b] + c - target[b])[::step, ::step]
            m = mask[b][::step, ::step]
            count += int(m.sum())
            for i in range(r.shape[0]):
                for j in range(r.shape[1]):
                    if j + 1 < r.shape[1] and m[i, j] and m[i, j + 1]:
                        level_sum += abs(r[i, j + 1] - r[i, j])
                    if i + 1 < r.shape[0] and m[i, j] and m[i + 1, j]:
                        level_sum += abs(r[i + 1, j] - r[i, j])
        total += level_sum / max(count, 1)
    return total


def test_gradient_matching_term_is_midas_s_and_zero_for_an_affine_prediction():
    g = torch.Generator().manual_seed(1)
    target = torch.rand(2, 12, 16, generator=g, dtype=torch.float64)
    mask = torch.rand(2, 12, 16, generator=g) > 0.25
    pred = target + 0.2 * torch.rand(2, 12, 16, generator=g, dtype=torch.float64)
    plain = affine_invariant_loss(pred, target, mask)
    with_grad = affine_invariant_loss(pred, target, mask, gradient_weight=0.5, scales=3)
    by_hand = _gradient_term_by_hand(pred.numpy(), target.numpy(), mask.numpy(), scales=3)
    assert float(with_grad - plain) == pytest.approx(0.5 * by_hand, rel=1e-4)
    affine = (2.0 * target + 0.3).requires_grad_(True)
    assert float(affine_invariant_loss(affine, target, mask, gradient_weight=0.5).detach()) < 1e-5
    noisy = pred.clone().requires_grad_(True)
    affine_invariant_loss(noisy, target, mask, gradient_weight=0.5).backward()
    assert noisy.grad[~mask].abs().max() == 0  # invalid pixels get no gradient


def test_pixel_weights_make_the_l1_term_a_weighted_mean():
    g = torch.Generator().manual_seed(2)
    target = torch.rand(1, 8, 8, generator=g, dtype=torch.float64)
    mask = torch.ones(1, 8, 8, dtype=torch.bool)
    pred = target + 0.3 * torch.rand(1, 8, 8, generator=g, dtype=torch.float64)
    weight = torch.ones(1, 8, 8)
    weight[:, :4] = 5.0
    a = np.stack([pred[0].numpy().ravel(), np.ones(64)], 1)
    (s, c), *_ = np.linalg.lstsq(a, target[0].numpy().ravel(), rcond=None)
    r = np.abs(s * pred[0].numpy() + c - target[0].numpy())
    expected = (5.0 * r[:4].sum() + r[4:].sum()) / (5.0 * 32 + 32)
    assert float(affine_invariant_loss(pred, target, mask, pixel_weight=weight)) == pytest.approx(expected, rel=1e-5)
    assert float(affine_invariant_loss(pred, target, mask, pixel_weight=torch.ones(1, 8, 8))) == pytest.approx(
        float(affine_invariant_loss(pred, target, mask)), rel=1e-6)
