"""CPU smoke training of a tiny model on toy data: loss goes down, checkpoints reload exactly, resume is exact."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("iris_training", reason="the training package is not installed (pip install -e training)")

from iris_training.config import load_config
from iris_training.errors import ConfigError, TrainingError
from iris_training.toy import write_toy_dataset
from iris_training.train import train
from safetensors.torch import load_file

from iris_model import IrisDepthPipeline

TINY = Path(__file__).resolve().parents[1] / "training" / "configs" / "tiny_cpu.yaml"
PICKLE_SUFFIXES = {".bin", ".pt", ".pth", ".pkl", ".ckpt"}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def toy_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("toy")
    write_toy_dataset(root, count=12, size=(32, 32), seed=0)
    return root


def _cfg(out: Path, toy: Path, *overrides: str):
    return load_config(TINY, [f"output_dir={out}", f"data.train.0.root={toy}", f"validation.dataset.root={toy}",
                              *overrides])


@pytest.fixture(scope="module")
def run(tmp_path_factory, toy_root):
    out = tmp_path_factory.mktemp("run")
    result = train(_cfg(out, toy_root, "optim.max_steps=30", "validation.every=15", "logging.checkpoint_every=15"))
    return out, result


def test_loss_goes_down(run):
    _, result = run
    assert result.step == 30 and len(result.losses) == 30
    assert all(np.isfinite(result.losses))
    print(f"\nfixed-batch loss {result.probe_before:.4f} -> {result.probe_after:.4f}; "
          f"mean step loss first 10 {np.mean(result.losses[:10]):.4f}, last 10 {np.mean(result.losses[-10:]):.4f}")
    assert result.probe_after < 0.7 * result.probe_before


def _image(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (32, 40, 3), dtype=np.uint8)


@pytest.mark.parametrize("text", [None, "wall receding to the left, yellow square in front at right top"])
def test_checkpoint_reloads_with_the_same_output(run, text):
    out, result = run
    loaded = IrisDepthPipeline.from_pretrained(out / "model")
    for steps in (1, 4):
        a = result.pipeline(_image(), text, num_inference_steps=steps, generator=torch.Generator().manual_seed(3))
        b = loaded(_image(), text, num_inference_steps=steps, generator=torch.Generator().manual_seed(3))
        assert a.depth.shape == (1, 32, 40)
        np.testing.assert_allclose(a.depth, b.depth, atol=1e-5)
    # The text reaches the UNet: the trained model answers differently with and without it.
    with_text = loaded(_image(), "yellow square in front at left bottom", generator=torch.Generator().manual_seed(3))
    without = loaded(_image(), None, generator=torch.Generator().manual_seed(3))
    assert np.abs(with_text.depth - without.depth).max() > 1e-4


def test_output_layout_is_pickle_free_and_complete(run):
    out, result = run
    files = [p for p in out.rglob("*") if p.is_file()]
    assert not [p for p in files if p.suffix in PICKLE_SUFFIXES]
    checkpoints = sorted(p.name for p in (out / "checkpoints").iterdir())
    assert checkpoints == ["checkpoint-000015", "checkpoint-000030"]  # checkpoints_total_limit: 2
    index = json.loads((out / "model" / "model_index.json").read_text())
    assert index["scheduler"] == ["diffusers", "DDIMScheduler"] and index["prediction_type"] == "depth"
    sched = json.loads((out / "model" / "scheduler" / "scheduler_config.json").read_text())
    assert sched["timestep_spacing"] == "trailing" and sched["prediction_type"] == "v_prediction"
    assert (out / "model" / "unet" / "diffusion_pytorch_model.safetensors").is_file()
    # The last checkpoint's model is the final model (EMA weights), its state the raw weights.
    final = load_file(str(out / "model" / "unet" / "diffusion_pytorch_model.safetensors"))
    last = load_file(str(out / "checkpoints" / "checkpoint-000030" / "model" / "unet" /
                         "diffusion_pytorch_model.safetensors"))
    raw = load_file(str(out / "checkpoints" / "checkpoint-000030" / "state" / "unet.safetensors"))
    assert all(torch.equal(final[k], last[k]) for k in final)
    assert any(not torch.equal(final[k], raw[k]) for k in final)  # EMA (decay 0.9) differs from the raw weights
    assert list((out / "logs").rglob("events.out.tfevents.*"))  # TensorBoard scalars
    assert {r["steps"] for r in result.validation} == {1, 2}
    assert all(0 < r["abs_rel"] < 10 and 0 <= r["delta1"] <= 1 for r in result.validation)


def test_resume_continues_exactly(tmp_path, toy_root):
    common = ("optim.max_steps=8", "optim.gradient_accumulation=2", "validation.every=0",
              "logging.checkpoint_every=4", "logging.checkpoints_total_limit=null")
    full = train(_cfg(tmp_path / "a", toy_root, *common))
    (tmp_path / "b" / "checkpoints").mkdir(parents=True)
    name = "checkpoint-000004"
    shutil.copytree(tmp_path / "a" / "checkpoints" / name, tmp_path / "b" / "checkpoints" / name)
    resumed = train(_cfg(tmp_path / "b", toy_root, *common))
    assert resumed.losses == pytest.approx(full.losses[4:], rel=1e-5, abs=1e-7)
    a = load_file(str(tmp_path / "a" / "model" / "unet" / "diffusion_pytorch_model.safetensors"))
    b = load_file(str(tmp_path / "b" / "model" / "unet" / "diffusion_pytorch_model.safetensors"))
    assert max(float((a[k] - b[k]).abs().max()) for k in a) < 1e-6


# depth alone needs no VAE encoding of the depth; the relative-error weight changes only the depth loss's weights;
# a log-spaced target (model.depth_log_scale) is recorded in the saved model, whose pipeline then inverts it
@pytest.mark.parametrize("e2e_loss, extra", [("depth", ()), ("both", ()),
                                             ("depth", ("optim.relative_loss_weight=1.0",)),
                                             ("both", ("model.depth_log_scale=10",))])
def test_e2e_ft_mode_trains_single_step(tmp_path, toy_root, e2e_loss, extra):
    result = train(_cfg(tmp_path, toy_root, "optim.mode=e2e_ft", f"optim.e2e_loss={e2e_loss}", "optim.max_steps=20",
                        "optim.ema.enabled=false", "validation.every=0", "logging.checkpoint_every=100", *extra))
    print(f"\nE2E-FT ({e2e_loss}) fixed-batch loss {result.probe_before:.4f} -> {result.probe_after:.4f}")
    assert result.probe_after < 0.8 * result.probe_before
    index = json.loads((tmp_path / "model" / "model_index.json").read_text())
    assert index["single_step"] is True and index["default_denoising_steps"] == 1
    assert index.get("depth_log_scale", 0) == (10 if "model.depth_log_scale=10" in extra else 0)
    loaded = IrisDepthPipeline.from_pretrained(tmp_path / "model")
    a = result.pipeline(_image(1), "wall receding to the top", single_step=True)
    b = loaded(_image(1), "wall receding to the top", single_step=True)
    np.testing.assert_allclose(a.depth, b.depth, atol=1e-5)


def test_a_log_spaced_target_changes_what_the_depth_loss_sees(tmp_path, toy_root):
    common = ("optim.mode=e2e_ft", "optim.e2e_loss=depth", "optim.max_steps=1", "optim.ema.enabled=false",
              "validation.every=0", "logging.checkpoint_every=100")
    linear = train(_cfg(tmp_path / "linear", toy_root, *common))
    logged = train(_cfg(tmp_path / "log", toy_root, *common, "model.depth_log_scale=10"))
    assert abs(logged.probe_before - linear.probe_before) > 1e-3  # same start, same batch: another target


def test_e2e_ft_through_the_tiny_decoder_trains_the_unet_and_ships_the_decoder_unchanged(tmp_path, toy_root):
    init = _init_with_tiny_decoder(tmp_path)
    common = (f"model.init={init}", "optim.mode=e2e_ft", "optim.max_steps=20", "optim.ema.enabled=false",
              "validation.every=0", "logging.checkpoint_every=100")
    result = train(_cfg(tmp_path / "run", toy_root, *common, "optim.e2e_decoder=tiny"))
    print(f"\nE2E-FT through the tiny decoder: fixed-batch loss {result.probe_before:.4f} -> {result.probe_after:.4f}")
    assert result.probe_after < 0.8 * result.probe_before
    # The loss went through the tiny decoder, not the VAE's: the same start scores differently.
    through_vae = train(_cfg(tmp_path / "vae", toy_root, *common[:-2], "optim.max_steps=1", "validation.every=0",
                             "logging.checkpoint_every=100"))
    assert abs(through_vae.probe_before - result.probe_before) > 1e-3
    # The saved model decodes with that decoder by default, and the decoder itself stayed frozen.
    saved = tmp_path / "run" / "model"
    loaded = IrisDepthPipeline.from_pretrained(saved)
    assert loaded.decoder == "tiny"
    start = load_file(str(init / "tiny_decoder" / "diffusion_pytorch_model.safetensors"))
    end = load_file(str(saved / "tiny_decoder" / "diffusion_pytorch_model.safetensors"))
    assert start.keys() == end.keys() and all(torch.equal(start[k], end[k]) for k in start)
    np.testing.assert_allclose(result.pipeline(_image(1), "a wall").depth, loaded(_image(1), "a wall").depth,
                               atol=1e-5)
    # A start without a tiny decoder is refused up front.
    with pytest.raises(ConfigError, match="no tiny decoder"):
        train(_cfg(tmp_path / "none", toy_root, "optim.mode=e2e_ft", "optim.e2e_decoder=tiny"))


def _init_with_tiny_decoder(tmp_path: Path) -> Path:
    from iris_model.components import add_tiny_decoder, make_tiny_decoder
    from iris_model.testing import make_tiny_pipeline

    init = tmp_path / "init"
    make_tiny_pipeline(seed=0, work_dir=tmp_path).save_pretrained(init)
    make_tiny_decoder(4, 8, (1, 1, 1)).save_pretrained(str(tmp_path / "tiny"))
    add_tiny_decoder(init, tmp_path / "tiny")
    return init


def test_e2e_ft_trains_the_tiny_decoder_along_and_resumes_it_exactly(tmp_path, toy_root):
    init = _init_with_tiny_decoder(tmp_path)
    common = (f"model.init={init}", "optim.mode=e2e_ft", "optim.e2e_decoder=tiny", "optim.e2e_decoder_lr=1e-3",
              "optim.max_steps=8", "validation.every=0", "logging.checkpoint_every=4",
              "logging.checkpoints_total_limit=null")
    full = train(_cfg(tmp_path / "a", toy_root, *common))
    frozen = train(_cfg(tmp_path / "frozen", toy_root, *common[:3], *common[4:]))
    # The decoder trained: its saved weights moved (EMA on, as in the recipe), and the loss differs from the run
    # that kept it frozen from the first step on.
    file = "tiny_decoder/diffusion_pytorch_model.safetensors"
    start, end = load_file(str(init / file)), load_file(str(tmp_path / "a" / "model" / file))
    assert start.keys() == end.keys()
    assert any(not torch.equal(start[k], end[k]) for k in start if k.startswith("decoder."))
    # Only the decoder half trains: the encoder, never run by the depth loss, is left as it was.
    encoder = [k for k in start if k.startswith("encoder.")]
    assert encoder and all(torch.equal(start[k], end[k]) for k in encoder)
    assert full.losses[0] == pytest.approx(frozen.losses[0], rel=1e-6)
    assert abs(full.losses[-1] - frozen.losses[-1]) > 1e-6
    # The saved model decodes with the trained decoder: the in-memory pipeline and the reloaded one agree.
    loaded = IrisDepthPipeline.from_pretrained(tmp_path / "a" / "model")
    assert loaded.decoder == "tiny"
    np.testing.assert_allclose(full.pipeline(_image(1), "a wall").depth, loaded(_image(1), "a wall").depth,
                               atol=1e-5)
    # Resuming restores the decoder's weights, optimizer moments and EMA with the UNet's.
    name = "checkpoint-000004"
    assert (tmp_path / "a" / "checkpoints" / name / "state" / "tiny_decoder.safetensors").is_file()
    (tmp_path / "b" / "checkpoints").mkdir(parents=True)
    shutil.copytree(tmp_path / "a" / "checkpoints" / name, tmp_path / "b" / "checkpoints" / name)
    resumed = train(_cfg(tmp_path / "b", toy_root, *common))
    assert resumed.losses == pytest.approx(full.losses[4:], rel=1e-5, abs=1e-7)
    b = load_file(str(tmp_path / "b" / "model" / file))
    assert max(float((end[k] - b[k]).abs().max()) for k in end) < 1e-6
    # A frozen-decoder checkpoint cannot silently resume a run that trains the decoder.
    (tmp_path / "c" / "checkpoints").mkdir(parents=True)
    shutil.copytree(tmp_path / "frozen" / "checkpoints" / name, tmp_path / "c" / "checkpoints" / name)
    with pytest.raises(TrainingError, match="no tiny decoder state"):
        train(_cfg(tmp_path / "c", toy_root, *common))


def test_e2e_ft_refuses_epsilon(tmp_path, toy_root):
    with pytest.raises(ConfigError, match="epsilon"):
        train(_cfg(tmp_path, toy_root, "optim.mode=e2e_ft", "model.prediction_type=epsilon"))
