"""Model directories: the diffusers layout round-trips; missing or corrupt parts fail with path and reason."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from iris_model import IrisDepthPipeline, ModelLoadError
from iris_model.testing import make_tiny_pipeline


def _copy(src, tmp_path):
    dst = tmp_path / "model"
    shutil.copytree(src, dst)
    return dst


def test_save_load_roundtrip_gives_same_output(tmp_path):
    pipe = make_tiny_pipeline(seed=3, work_dir=tmp_path)
    pipe.save_pretrained(tmp_path / "saved")
    loaded = IrisDepthPipeline.from_pretrained(tmp_path / "saved")
    image = np.random.default_rng(0).integers(0, 256, (40, 40, 3), dtype=np.uint8)
    a = pipe(image, "a desk", generator=torch.Generator().manual_seed(0)).depth
    b = loaded(image, "a desk", generator=torch.Generator().manual_seed(0)).depth
    assert np.array_equal(a, b)
    index = json.loads((tmp_path / "saved" / "model_index.json").read_text())
    assert index["unet"] == ["diffusers", "UNet2DConditionModel"]
    assert (tmp_path / "saved" / "unet" / "diffusion_pytorch_model.safetensors").is_file()
    assert not list((tmp_path / "saved").rglob("*.bin"))


def test_missing_directory(tmp_path):
    with pytest.raises(ModelLoadError, match="does not exist") as err:
        IrisDepthPipeline.from_pretrained(tmp_path / "nope")
    assert str(tmp_path / "nope") in str(err.value)


def test_missing_model_index(tiny_model_dir, tmp_path):
    d = _copy(tiny_model_dir, tmp_path)
    (d / "model_index.json").unlink()
    with pytest.raises(ModelLoadError, match=r"model_index\.json is missing"):
        IrisDepthPipeline.from_pretrained(d)


def test_missing_component(tiny_model_dir, tmp_path):
    d = _copy(tiny_model_dir, tmp_path)
    shutil.rmtree(d / "vae")
    with pytest.raises(ModelLoadError, match="vae") as err:
        IrisDepthPipeline.from_pretrained(d)
    assert str(d / "vae") in str(err.value)


def test_corrupt_weights_name_the_file(tiny_model_dir, tmp_path):
    d = _copy(tiny_model_dir, tmp_path)
    weights = d / "unet" / "diffusion_pytorch_model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.raises(ModelLoadError, match="corrupt safetensors") as err:
        IrisDepthPipeline.from_pretrained(d)
    assert str(weights) in str(err.value)


def test_pickled_weights_are_refused(tiny_model_dir, tmp_path):
    d = _copy(tiny_model_dir, tmp_path)
    weights = d / "unet" / "diffusion_pytorch_model.safetensors"
    weights.rename(weights.with_suffix(".bin"))
    with pytest.raises(ModelLoadError, match="pickled"):
        IrisDepthPipeline.from_pretrained(d)


def test_untrusted_library_is_refused(tiny_model_dir, tmp_path):
    d = _copy(tiny_model_dir, tmp_path)
    index = json.loads((d / "model_index.json").read_text())
    index["unet"] = ["os", "system"]
    (d / "model_index.json").write_text(json.dumps(index))
    with pytest.raises(ModelLoadError, match="library 'os'"):
        IrisDepthPipeline.from_pretrained(d)


def test_malformed_json(tiny_model_dir, tmp_path):
    d = _copy(tiny_model_dir, tmp_path)
    (d / "model_index.json").write_text("{not json")
    with pytest.raises(ModelLoadError, match="not valid JSON"):
        IrisDepthPipeline.from_pretrained(d)


def test_external_text_encoder_reference(tiny_model_dir, tmp_path):
    d = _copy(tiny_model_dir, tmp_path)
    shutil.rmtree(d / "text_encoder")
    (d / "text_encoder").mkdir()
    (d / "text_encoder" / "iris_external.json").write_text('{"python_package": "no_such_pkg_xyz", "subdir": "m"}')
    with pytest.raises(ModelLoadError, match=r"no_such_pkg_xyz.*not installed"):
        IrisDepthPipeline.from_pretrained(d)


def test_scheduler_switch_keeps_prediction_type(tiny_model_dir):
    pipe = IrisDepthPipeline.from_pretrained(tiny_model_dir)
    image = np.full((32, 32, 3), 128, dtype=np.uint8)
    for kind in ("ddpm", "lcm", "ddim"):
        pipe.set_scheduler(kind)
        assert pipe.scheduler.config.prediction_type == "v_prediction"
        out = pipe(image, "x", num_inference_steps=2, generator=torch.Generator().manual_seed(0))
        assert np.isfinite(out.depth).all()


def test_half_precision_storage_loads_back_in_float32(tmp_path):
    pipe = make_tiny_pipeline(seed=4, work_dir=tmp_path)
    pipe.save_pretrained(tmp_path / "full")
    pipe.save_pretrained(tmp_path / "half", weights_dtype=torch.float16)
    full = (tmp_path / "full" / "unet" / "diffusion_pytorch_model.safetensors").stat().st_size
    half = (tmp_path / "half" / "unet" / "diffusion_pytorch_model.safetensors").stat().st_size
    assert half < 0.6 * full
    loaded = IrisDepthPipeline.from_pretrained(tmp_path / "half")
    for name in ("unet", "vae", "text_encoder"):
        assert next(getattr(loaded.components, name).parameters()).dtype == torch.float32
    assert next(pipe.components.unet.parameters()).dtype == torch.float32  # the original is untouched
    image = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    a = pipe(image, "x", generator=torch.Generator().manual_seed(0)).depth
    b = loaded(image, "x", generator=torch.Generator().manual_seed(0)).depth
    assert np.abs(a - b).max() < 5e-2  # fp16 rounding of the weights only


def _overwrite_tensor_data(weights, count=4 << 20):
    """Overwrite up to ``count`` bytes after the safetensors header with 0xFF (NaN in float32/float16)."""
    raw = bytearray(weights.read_bytes())
    start = 8 + int.from_bytes(raw[:8], "little")
    end = min(len(raw), start + count)
    raw[start:end] = b"\xff" * (end - start)
    weights.write_bytes(bytes(raw))


def test_nan_weights_under_an_intact_header_fail_at_load_naming_the_file(tiny_model_dir, tmp_path):
    d = _copy(tiny_model_dir, tmp_path)
    weights = d / "unet" / "diffusion_pytorch_model.safetensors"
    _overwrite_tensor_data(weights)
    from safetensors import safe_open

    with safe_open(str(weights), framework="pt") as handle:  # the header still parses: only the data is bad
        assert len(list(handle.keys())) > 10
    with pytest.raises(ModelLoadError, match="NaN/inf") as err:
        IrisDepthPipeline.from_pretrained(d)
    assert str(weights) in str(err.value)


@pytest.mark.parametrize("where", ["unet", "decoder"])
def test_non_finite_output_raises_instead_of_returning_depth(tmp_path, where):
    from iris_model.errors import NonFiniteOutputError

    pipe = make_tiny_pipeline(seed=5, work_dir=tmp_path)
    if where == "unet":
        module = pipe.components.unet.conv_out
        value = float("nan")
    else:  # an overflowing decoder: +inf would be clipped to a valid-looking 1 without the check
        module = pipe.components.vae.decoder.conv_out
        value = float("inf")
    with torch.no_grad():
        module.bias.fill_(value)
    image = np.full((32, 32, 3), 100, dtype=np.uint8)
    with pytest.raises(NonFiniteOutputError, match="non-finite"):
        pipe(image, "x", num_inference_steps=1, generator=torch.Generator().manual_seed(0))


def _rename_to_variant(model_dir, variant):
    for file in list(model_dir.rglob("*.safetensors")):
        file.rename(file.with_name(file.name.replace(".safetensors", f".{variant}.safetensors")))


def test_variant_only_checkpoint_loads_and_variant_is_chosen_explicitly(tmp_path):
    image = np.random.default_rng(1).integers(0, 256, (32, 32, 3), dtype=np.uint8)

    def run(pipe):
        return pipe(image, "x", num_inference_steps=1, generator=torch.Generator().manual_seed(0)).depth

    plain = make_tiny_pipeline(seed=6, work_dir=tmp_path)
    half = make_tiny_pipeline(seed=7, work_dir=tmp_path)
    only = tmp_path / "only_fp16"
    half.save_pretrained(only, weights_dtype=torch.float16)
    _rename_to_variant(only, "fp16")  # the layout from_pretrained(..., variant="fp16") downloads
    assert not [p for p in only.rglob("*.safetensors") if ".fp16." not in p.name]
    reference = run(IrisDepthPipeline.from_pretrained(only, variant="fp16"))
    assert np.array_equal(run(IrisDepthPipeline.from_pretrained(only)), reference)
    assert np.abs(reference - run(half)).max() < 5e-2  # the fp16-rounded weights of `half`

    both = tmp_path / "both"
    plain.save_pretrained(both)
    half.save_pretrained(tmp_path / "tmp_half", weights_dtype=torch.float16)
    _rename_to_variant(tmp_path / "tmp_half", "fp16")
    for name in ("unet", "vae", "text_encoder"):
        for file in (tmp_path / "tmp_half" / name).glob("*.fp16.safetensors"):
            shutil.copy2(file, both / name / file.name)
    assert np.array_equal(run(IrisDepthPipeline.from_pretrained(both)), run(plain))
    assert np.array_equal(run(IrisDepthPipeline.from_pretrained(both, variant="fp16")), reference)


def test_several_variants_without_plain_weights_ask_for_one(tiny_model_dir, tmp_path):
    d = _copy(tiny_model_dir, tmp_path)
    for file in list((d / "unet").glob("*.safetensors")):
        shutil.copy2(file, file.with_name(file.name.replace(".safetensors", ".bf16.safetensors")))
        file.rename(file.with_name(file.name.replace(".safetensors", ".fp16.safetensors")))
    with pytest.raises(ModelLoadError, match="bf16, fp16: pass variant="):
        IrisDepthPipeline.from_pretrained(d)
    assert IrisDepthPipeline.from_pretrained(d, variant="bf16") is not None
    with pytest.raises(ModelLoadError, match="no 'int8' variant"):
        IrisDepthPipeline.from_pretrained(d, variant="int8")


def test_loading_shows_no_progress_bar(tiny_model_dir, capfd):
    from transformers.utils import logging as hf_logging

    assert hf_logging.is_progress_bar_enabled()
    IrisDepthPipeline.from_pretrained(tiny_model_dir)
    err = capfd.readouterr().err
    assert "Loading weights" not in err and "\r" not in err
    assert hf_logging.is_progress_bar_enabled()  # the user's setting is restored
