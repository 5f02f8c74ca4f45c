"""The optional tiny depth decoder (diffusers' AutoencoderTiny): declared in model_index.json, loaded, saved,
switchable, exported to ONNX and run by onnxruntime like the torch backend; its distillation entry point."""

from __future__ import annotations

import contextlib
import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from iris_model import IrisDepthPipeline, ModelLoadError
from iris_model.components import add_tiny_decoder, make_tiny_decoder
from iris_model.errors import InputError
from iris_model.testing import make_tiny_pipeline

H, W = 48, 64  # multiples of the tiny VAE's stride 4


def _image(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (H, W, 3), dtype=np.uint8)


def _tiny_for_test(seed: int = 0):
    torch.manual_seed(seed)
    return make_tiny_decoder(latent_channels=4, width=8, blocks=(1, 1, 1))  # stride 4, as the tiny VAE


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory, one_torch_thread):
    """(plain checkpoint, the same with a tiny decoder, the tiny decoder's own folder)."""
    root = tmp_path_factory.mktemp("tinydec")
    pipe = make_tiny_pipeline(seed=11, work_dir=root)
    plain = root / "plain"
    pipe.save_pretrained(plain)
    tiny_folder = root / "taesd_like"
    _tiny_for_test().save_pretrained(str(tiny_folder))
    with_tiny = root / "with_tiny"
    shutil.copytree(plain, with_tiny)
    add_tiny_decoder(with_tiny, tiny_folder)
    return plain, with_tiny, tiny_folder


def _run(pipe, **kwargs):
    return pipe(_image(), "a desk", num_inference_steps=2, processing_resolution=0,
                generator=torch.Generator().manual_seed(0), **kwargs)


def test_declared_in_model_index_and_used_by_default(checkpoints):
    plain, with_tiny, _ = checkpoints
    index = json.loads((with_tiny / "model_index.json").read_text())
    assert index["tiny_decoder"] == ["diffusers", "AutoencoderTiny"]
    assert (with_tiny / "tiny_decoder" / "diffusion_pytorch_model.safetensors").is_file()
    pipe = IrisDepthPipeline.from_pretrained(with_tiny)
    assert pipe.decoder == "tiny"
    assert "tiny_decoder" not in pipe.extra_settings
    assert IrisDepthPipeline.from_pretrained(plain).decoder == "vae"


def test_tiny_decode_is_the_autoencoder_tiny_read_out(checkpoints):
    _, with_tiny, _ = checkpoints
    pipe = IrisDepthPipeline.from_pretrained(with_tiny)
    out = _run(pipe, output_latent=True)
    # independent read-out: TAESD's decoder (tanh clamp, layers, [0, 1] -> [-1, 1]), channel mean, Marigold's map
    tiny = pipe.components.tiny_decoder
    with torch.no_grad():
        z = out.latent.float()
        rgb = tiny.decoder.layers(torch.tanh(z / 3) * 3) * 2 - 1
    expected = ((rgb.mean(1).clamp(-1, 1) + 1) / 2).numpy()
    assert np.abs(out.depth - expected).max() < 1e-5


def test_selectable_off_gives_the_vae_result(checkpoints):
    plain, with_tiny, _ = checkpoints
    vae_depth = _run(IrisDepthPipeline.from_pretrained(plain)).depth
    pipe = IrisDepthPipeline.from_pretrained(with_tiny)
    tiny_depth = _run(pipe).depth
    assert np.abs(tiny_depth - vae_depth).max() > 1e-3  # a random tiny decoder differs from the VAE
    pipe.set_decoder("vae")
    assert pipe.decoder == "vae"
    assert np.array_equal(_run(pipe).depth, vae_depth)
    pipe.set_decoder("tiny")
    assert np.array_equal(_run(pipe).depth, tiny_depth)
    off = IrisDepthPipeline.from_pretrained(with_tiny, tiny_decoder=False)
    assert off.decoder == "vae" and off.components.tiny_decoder is None
    assert np.array_equal(_run(off).depth, vae_depth)
    with pytest.raises(InputError, match="no tiny decoder"):
        off.set_decoder("tiny")


def test_save_load_round_trip(checkpoints, tmp_path, capfd):
    _, with_tiny, _ = checkpoints
    capfd.readouterr()
    pipe = IrisDepthPipeline.from_pretrained(with_tiny)
    assert "block_out_channels" not in capfd.readouterr().err  # no warning about AutoencoderTiny's own config
    pipe.save_pretrained(tmp_path / "again")
    index = json.loads((tmp_path / "again" / "model_index.json").read_text())
    assert index["tiny_decoder"] == ["diffusers", "AutoencoderTiny"]
    again = IrisDepthPipeline.from_pretrained(tmp_path / "again")
    assert again.decoder == "tiny"
    assert np.array_equal(_run(again).depth, _run(pipe).depth)


def test_user_provided_folder_for_a_checkpoint_without_one(checkpoints):
    plain, with_tiny, tiny_folder = checkpoints
    pipe = IrisDepthPipeline.from_pretrained(plain, tiny_decoder=tiny_folder)
    assert pipe.decoder == "tiny"
    assert np.array_equal(_run(pipe).depth, _run(IrisDepthPipeline.from_pretrained(with_tiny)).depth)
    with pytest.raises(ModelLoadError, match="declares no tiny_decoder"):
        IrisDepthPipeline.from_pretrained(plain, tiny_decoder=True)


def test_a_tiny_decoder_of_another_stride_is_refused(checkpoints, tmp_path):
    plain, _, _ = checkpoints
    wrong = tmp_path / "stride8"
    make_tiny_decoder(4, 8, (1, 1, 1, 1)).save_pretrained(str(wrong))
    with pytest.raises(ModelLoadError, match="stride 8"):
        IrisDepthPipeline.from_pretrained(plain, tiny_decoder=wrong)
    target = tmp_path / "ck"
    shutil.copytree(plain, target)
    with pytest.raises(ModelLoadError, match="stride 8"):
        add_tiny_decoder(target, wrong)


def test_declaring_another_class_is_refused(checkpoints, tmp_path):
    _, with_tiny, _ = checkpoints
    target = tmp_path / "bad"
    shutil.copytree(with_tiny, target)
    index = json.loads((target / "model_index.json").read_text())
    index["tiny_decoder"] = ["diffusers", "AutoencoderKL"]
    (target / "model_index.json").write_text(json.dumps(index))
    with pytest.raises(ModelLoadError, match="tiny_decoder"):
        IrisDepthPipeline.from_pretrained(target)


def test_onnx_export_and_onnxruntime_parity(checkpoints, tmp_path_factory):
    pytest.importorskip("onnxruntime")
    from iris_model.export import Manifest, cli
    from iris_model.export.tensorrt_build import component_precision, profile_shapes

    _, with_tiny, _ = checkpoints
    engine_dir = tmp_path_factory.mktemp("tiny_engine") / "engine"
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        rc = cli.main([str(with_tiny), "--out", str(engine_dir), "--height", str(H), "--width", str(W),
                       "--no-engines"])
    assert rc == 0, err.getvalue()
    manifest = Manifest.load(engine_dir)
    assert "tiny_decoder" in manifest.graph_names()
    assert (engine_dir / "onnx" / "tiny_decoder.onnx").is_file()
    # TensorRT (not runnable here) gets the tiny decoder's engine with the VAE decoder's profile, in fp32
    assert profile_shapes("tiny_decoder", manifest) == profile_shapes("vae_decoder", manifest)
    assert component_precision("tiny_decoder", "fp16") == "fp32"

    torch_pipe = IrisDepthPipeline.from_pretrained(with_tiny)
    ort_pipe = IrisDepthPipeline.from_pretrained(engine_dir, backend="onnxruntime")
    assert ort_pipe.decoder == "tiny"
    assert np.abs(_run(ort_pipe).depth - _run(torch_pipe).depth).max() < 1e-4
    latent = torch.randn(2, 4, H // 4, W // 4, generator=torch.Generator().manual_seed(1))
    assert torch.allclose(ort_pipe.components.decode(latent), torch_pipe.components.decode(latent), atol=1e-5)
    ort_pipe.set_decoder("vae")
    torch_pipe.set_decoder("vae")
    assert np.abs(_run(ort_pipe).depth - _run(torch_pipe).depth).max() < 1e-4
    # a user's TAESD-like folder for a checkpoint without one exports the same graph
    plain = checkpoints[0]
    user_dir = engine_dir.with_name("engine_user")
    with contextlib.redirect_stderr(io.StringIO()):
        assert cli.main([str(plain), "--out", str(user_dir), "--height", str(H), "--width", str(W), "--no-engines",
                         "--tiny-decoder", str(checkpoints[2])]) == 0
    user_pipe = IrisDepthPipeline.from_pretrained(user_dir, backend="onnxruntime")
    assert user_pipe.decoder == "tiny"
    torch_pipe.set_decoder("tiny")
    assert torch.allclose(user_pipe.components.decode(latent), torch_pipe.components.decode(latent), atol=1e-5)
    assert "tiny_decoder_sha256" in Manifest.load(user_dir).source
    off = IrisDepthPipeline.from_pretrained(engine_dir, backend="onnxruntime", tiny_decoder=False)
    assert off.decoder == "vae" and "tiny_decoder" not in off.components.graphs
    with pytest.raises(InputError, match="torch backend"):
        IrisDepthPipeline.from_pretrained(engine_dir, backend="onnxruntime", tiny_decoder=Path("x"))


def test_tensorrt_runs_the_tiny_decoder_engine(checkpoints, tmp_path):
    from iris_model.export.tensorrt_build import tensorrt_available

    if not tensorrt_available() or not torch.cuda.is_available():
        pytest.skip("TensorRT and an NVIDIA GPU are not available here: where they are, this test exports the "
                    "checkpoint with a tiny decoder, loads it on backend='tensorrt' and compares decode() with the "
                    "torch backend")
    from iris_model.export import cli

    _, with_tiny, _ = checkpoints
    engine_dir = tmp_path / "engine"
    assert cli.main([str(with_tiny), "--out", str(engine_dir), "--height", str(H), "--width", str(W)]) == 0
    trt_pipe = IrisDepthPipeline.from_pretrained(engine_dir, backend="tensorrt", device="cuda")
    torch_pipe = IrisDepthPipeline.from_pretrained(with_tiny)
    assert trt_pipe.decoder == "tiny"
    latent = torch.randn(2, 4, H // 4, W // 4, generator=torch.Generator().manual_seed(1))
    ours = trt_pipe.components.decode(latent.cuda()).cpu()
    assert torch.allclose(ours, torch_pipe.components.decode(latent), atol=1e-3)  # TF32 allowed in fp32 engines


def test_distillation_entry_point_trains_saves_and_resumes(checkpoints, tmp_path):
    from diffusers import AutoencoderTiny
    from iris_training.distill_decoder import main

    plain, _, _ = checkpoints
    out = tmp_path / "run"
    common = [str(plain), "--out", str(out), "--blocks", "1,1,1", "--width", "8", "--scenes", "2",
              "--val-scenes", "1", "--batch", "2", "--crop", "8", "--pairs", "4", "--save-every", "2",
              "--image-height", "48", "--image-width", "64"]
    assert main([*common, "--steps", "2"]) == 0
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [2]
    first = AutoencoderTiny.from_pretrained(str(out / "tiny_decoder"))
    assert main([*common, "--steps", "4", "--resume"]) == 0
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [2, 4]
    second = AutoencoderTiny.from_pretrained(str(out / "tiny_decoder"))
    changed = any(not torch.equal(a, b) for a, b in zip(first.decoder.parameters(), second.decoder.parameters(),
                                                          strict=True))
    assert changed
    target = tmp_path / "ck"
    shutil.copytree(plain, target)
    add_tiny_decoder(target, out / "tiny_decoder")
    assert IrisDepthPipeline.from_pretrained(target).decoder == "tiny"


def test_distillation_fine_tunes_on_the_model_s_own_latents(checkpoints, tmp_path):
    from diffusers import AutoencoderTiny
    from iris_training.distill_decoder import main

    plain, with_tiny, _ = checkpoints
    out = tmp_path / "run"
    assert main([str(plain), "--out", str(out), "--init", str(with_tiny / "tiny_decoder"), "--model-fraction", "1",
                 "--rgb-fraction", "0", "--scenes", "2", "--val-scenes", "1", "--batch", "2", "--crop", "8",
                 "--pairs", "4", "--steps", "2", "--save-every", "2", "--image-height", "48",
                 "--image-width", "64"]) == 0
    # The bank holds the pipeline's own final latents; every crop came from them, validation too.
    own = load_file(str(out / "model_latents.safetensors"))["model"]
    pipe = IrisDepthPipeline.from_pretrained(plain)
    from iris_training.synthetic.registered import open_synthetic

    scene = open_synthetic("", split="train", size=2, height=48, width=64)[0]
    expected = pipe(scene["rgb"], scene["caption"], output_latent=True, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(own[0], expected.latent[0], atol=1e-5)
    # Fine-tuned from the given decoder: same architecture, changed weights.
    start = AutoencoderTiny.from_pretrained(str(with_tiny / "tiny_decoder"))
    tuned = AutoencoderTiny.from_pretrained(str(out / "tiny_decoder"))
    assert start.config.decoder_block_out_channels == tuned.config.decoder_block_out_channels
    assert any(not torch.equal(a, b) for a, b in zip(start.decoder.parameters(), tuned.decoder.parameters(),
                                                     strict=True))


def test_decoder_fine_tunes_on_ground_truth_through_the_model_s_latents(checkpoints, tmp_path):
    from diffusers import AutoencoderTiny
    from iris_training.distill_decoder import ground_truth, main, validation_abs_rel
    from iris_training.synthetic.registered import open_synthetic

    plain, with_tiny, _ = checkpoints
    out = tmp_path / "run"
    assert main([str(plain), "--out", str(out), "--target", "depth", "--init", str(with_tiny / "tiny_decoder"),
                 "--empty-fraction", "0.5", "--ambiguous-weight", "2", "--scenes", "2", "--val-scenes", "1",
                 "--batch", "2", "--steps", "2", "--save-every", "2", "--lr", "1e-2", "--image-height", "48",
                 "--image-width", "64"]) == 0
    # Both text modes' own latents, as the pipeline computes them: with the caption and with empty text.
    pipe = IrisDepthPipeline.from_pretrained(plain)
    scene = open_synthetic("", split="train", size=2, height=48, width=64)[1]
    for name, text in (("model_latents", scene["caption"]), ("model_empty_latents", None)):
        bank = load_file(str(out / f"{name}.safetensors"))["model"]
        expected = pipe(scene["rgb"], text, output_latent=True, generator=torch.Generator().manual_seed(1)).latent
        assert torch.allclose(bank[1], expected[0], atol=1e-5), name
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [2] and 0 < log[0]["val_abs_rel"] < 10
    start = AutoencoderTiny.from_pretrained(str(with_tiny / "tiny_decoder"))
    tuned = AutoencoderTiny.from_pretrained(str(out / "tiny_decoder"))
    assert any(not torch.equal(a, b) for a, b in zip(start.decoder.parameters(), tuned.decoder.parameters(),
                                                     strict=True))
    # The validation score is iris-eval's: a decoder whose read-out is any affine map of the true depth scores 0,
    # and the normalized target spans [-1, 1] unclipped over the valid pixels.
    truth = ground_truth(open_synthetic("", split="val", size=1, height=48, width=64), 1)
    target = truth["target"][0]
    assert float(target[truth["valid"][0]].min()) == -1.0 and float(target[truth["valid"][0]].max()) == 1.0
    exact = lambda z: (0.5 * target - 0.2).expand(1, 3, *target.shape)  # noqa: E731
    assert validation_abs_rel(exact, torch.zeros(1, 4, 12, 16), truth) < 1e-6


def test_decoder_depth_loss_is_zero_for_an_affine_read_out_of_the_truth_and_not_for_a_wrong_one():
    from types import SimpleNamespace

    from iris_training.distill_decoder import depth_loss, ground_truth
    from iris_training.synthetic.registered import open_synthetic

    truth = ground_truth(open_synthetic("", split="train", size=3, height=48, width=64), 3)
    # Each latent holds its scene's index, so a stand-in decoder can read out that scene's depth.
    index = torch.arange(3, dtype=torch.float32)[:, None, None, None].expand(3, 4, 6, 8)
    bank = {"model": index, "model_empty": index}

    def student(read_out):
        decode = lambda z, return_dict=False: (read_out(z[:, 0, 0, 0].long())[:, None].expand(-1, 3, -1, -1),)  # noqa: E731
        return SimpleNamespace(decode=decode, config=SimpleNamespace(scaling_factor=1.0))

    exact = student(lambda i: 0.7 * truth["target"][i] + 0.1)  # any scale and shift of the normalized truth
    flipped = student(lambda i: truth["target"][i].flip(-2))  # the depth of the wrong rows
    gen = torch.Generator().manual_seed(0)
    for weights in ((0.0, 1.0), (0.5, 2.0)):  # (gradient, ambiguous)
        assert float(depth_loss(exact, bank, truth, 4, 0.5, *weights, gen)) < 1e-4
        assert float(depth_loss(flipped, bank, truth, 4, 0.5, *weights, gen)) > 0.05


def test_ship_writes_a_float16_checkpoint_with_the_tiny_decoder(checkpoints, tmp_path):
    from iris_training.ship import main as ship

    plain, with_tiny, _ = checkpoints
    out = tmp_path / "shipped"
    assert ship([str(plain), "--out", str(out), "--tiny-decoder", str(with_tiny / "tiny_decoder")]) == 0
    pipe = IrisDepthPipeline.from_pretrained(out)
    assert pipe.decoder == "tiny"
    assert load_file(str(out / "unet" / "diffusion_pytorch_model.safetensors"))["conv_in.weight"].dtype == torch.float16
    for config in out.glob("*/config.json"):
        assert "_name_or_path" not in json.loads(config.read_text()), config  # no path of the training machine
    image = _image(4)
    reference = IrisDepthPipeline.from_pretrained(plain, tiny_decoder=with_tiny / "tiny_decoder")
    ours = pipe(image, "a room", num_inference_steps=1, generator=torch.Generator().manual_seed(0)).depth
    theirs = reference(image, "a room", num_inference_steps=1, generator=torch.Generator().manual_seed(0)).depth
    assert np.abs(ours - theirs).max() < 1e-2  # float16 weights
    # Shipping a model that has its own tiny decoder (here: the shipped one, into itself) keeps that decoder as
    # it is, float32 and unchanged, and the float16 rest.
    tiny_file = out / "tiny_decoder" / "diffusion_pytorch_model.safetensors"
    before = load_file(str(tiny_file))
    assert all(t.dtype == torch.float32 for t in before.values())
    assert ship([str(out), "--out", str(out)]) == 0
    after = load_file(str(tiny_file))
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)
    assert IrisDepthPipeline.from_pretrained(out).decoder == "tiny"


def test_iris_depth_decoder_option(checkpoints, tmp_path):
    from PIL import Image

    from iris_model.cli import main

    plain, with_tiny, _ = checkpoints
    Image.fromarray(_image(3)).save(tmp_path / "a.png")

    def predict(model, name, *extra):
        assert main(["predict", str(tmp_path / "a.png"), "--model", str(model), "--steps", "1", "--resolution", "0",
                     "--out", str(tmp_path / name), *extra]) == 0
        return np.load(tmp_path / name / "a_depth.npy")

    vae = predict(plain, "plain")
    assert np.array_equal(predict(with_tiny, "vae", "--decoder", "vae"), vae)
    assert np.abs(predict(with_tiny, "auto") - vae).max() > 1e-3
