"""Lotus-D and Lotus-G checkpoints, in the layout Lotus publishes, through Iris's pipeline and backends.

Reference: EnVision-Research/Lotus ``pipeline.py`` (``LotusDPipeline.__call__``, ``LotusGPipeline.__call__``)
driven as its ``infer.py`` drives it. Their classes cannot be imported here: they live in that repository's
``pipeline.py`` (with its ``utils.image_utils`` and a ``tensorboard`` import), which is not an installed package
and which a test may not fetch. So :func:`lotus_reference` below re-implements their forward pass step by step
from that file, with diffusers' own modules and image processor:

1. ``rgb_in = uint8 / 127.5 - 1``; no resize (``processing_res=0``), no padding (Lotus pads nothing);
2. ``prompt_embeds = text_encoder(tokenizer(prompt, padding="do_not_pad", max_length, truncation=True))[0]``;
3. ``rgb_latents = vae.encode(rgb_in).latent_dist.<sample>() * scaling_factor`` — Lotus samples the posterior
   with the global RNG; the reference here takes the **mode**, as Iris does, so that both are deterministic;
4. task embedding ``[sin 1, sin 0, cos 1, cos 0]`` as ``class_labels``; ``t = 999``;
   Lotus-D: ``unet(rgb_latents, t, ...)``; Lotus-G: ``unet(cat([rgb_latents, noise]), t, ...)`` with
   ``noise = randn_tensor(shape, generator) * init_noise_sigma`` (``prepare_latents``), and the output is the
   clean latent (one step: ``latents = x0_pred``);
5. ``VaeImageProcessor.postprocess(vae.decode(x0 / scaling_factor), output_type="np")`` (per channel
   ``(x / 2 + 0.5).clamp(0, 1)``), then ``infer.py``'s ``pred.mean(axis=-1)``.

The replicas have Lotus's configuration structure (Stable Diffusion 2's blocks, ``class_embed_type="projection"``
with a 4-d input, 4 or 8 input channels) at small widths, with random weights.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from diffusers.image_processor import VaeImageProcessor
from diffusers.utils.torch_utils import randn_tensor

from iris_model import InputError, IrisDepthPipeline
from iris_model.lotus import task_embedding
from iris_model.replicas import replica_modules, save_replica

H, W = 64, 96  # at processing resolution 0 no resizing happens, and both sizes are multiples of the VAE stride


@pytest.fixture(scope="module")
def lotus_dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("lotus")
    return {
        "d": save_replica("lotus-d", root / "lotus-depth-d-v1-0", seed=1, scheduler="ddim"),
        "g": save_replica("lotus-g", root / "lotus-depth-g-v2-1-disparity", seed=2, scheduler="pndm"),
    }


@pytest.fixture(scope="module")
def image():
    return np.random.default_rng(7).integers(0, 256, (H, W, 3), dtype=np.uint8)


@torch.no_grad()
def lotus_reference(model_dir, variant, image, prompt, generator=None):
    """Lotus's own forward (see the module docstring), on the modules of ``model_dir`` loaded by diffusers."""
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTokenizer

    unet = UNet2DConditionModel.from_pretrained(model_dir / "unet").eval()
    vae = AutoencoderKL.from_pretrained(model_dir / "vae").eval()
    text_encoder = CLIPTextModel.from_pretrained(model_dir / "text_encoder").eval()
    tokenizer = CLIPTokenizer.from_pretrained(model_dir / "tokenizer")

    rgb_in = torch.tensor(image.astype(np.float32)).permute(2, 0, 1).unsqueeze(0) / 127.5 - 1.0
    ids = tokenizer(prompt, padding="do_not_pad", max_length=tokenizer.model_max_length, truncation=True,
                    return_tensors="pt").input_ids
    prompt_embeds = text_encoder(ids)[0]
    switch = torch.tensor([1, 0]).float().unsqueeze(0)
    task_emb = torch.cat([torch.sin(switch), torch.cos(switch)], dim=-1)
    t = torch.tensor([999]).long()[0]
    rgb_latents = vae.encode(rgb_in).latent_dist.mode() * vae.config.scaling_factor
    if variant == "g":
        shape = (1, unet.config.in_channels // 2, rgb_latents.shape[2], rgb_latents.shape[3])
        latents = randn_tensor(shape, generator=generator, dtype=prompt_embeds.dtype) * 1.0  # init_noise_sigma
        model_input = torch.cat([rgb_latents, latents], dim=1)
    else:
        model_input = rgb_latents
    x0 = unet(model_input, t, encoder_hidden_states=prompt_embeds, return_dict=False, class_labels=task_emb)[0]
    decoded = vae.decode(x0 / vae.config.scaling_factor, return_dict=False)[0]
    pred = VaeImageProcessor(vae_scale_factor=8).postprocess(decoded, output_type="np")[0]
    return pred.mean(axis=-1)


def test_task_embedding_is_lotus_switcher():
    expected = torch.tensor([[np.sin(1.0), 0.0, np.cos(1.0), 1.0]], dtype=torch.float32)
    assert torch.allclose(task_embedding(), expected)


def test_replicas_have_lotus_architecture():
    for kind, channels in (("lotus-d", 4), ("lotus-g", 8)):
        unet, _, _ = replica_modules(kind, "small")
        assert unet.config.in_channels == channels and unet.config.out_channels == 4
        assert unet.config.class_embed_type == "projection"
        assert unet.config.projection_class_embeddings_input_dim == 4


@pytest.mark.parametrize("prompt", ["", "a kitchen, the table close, a window far away"])
def test_lotus_d_matches_lotus_code(lotus_dirs, image, prompt, one_torch_thread):
    pipe = IrisDepthPipeline.from_pretrained(lotus_dirs["d"])
    assert pipe.lotus == "d" and pipe.extra_settings["prediction_space"] == "depth"
    ours = pipe(image, prompt, processing_resolution=0).depth[0]
    ref = lotus_reference(lotus_dirs["d"], "d", image, prompt)
    assert ours.shape == ref.shape == (H, W)
    assert np.abs(ours - ref).max() < 1e-5
    assert ref.std() > 1e-3  # not a constant map, so the comparison means something
    # What is left above is the input's rounding (uint8 / 255 * 2 - 1 here, uint8 / 127.5 - 1 in Lotus): fed
    # Lotus's own normalized image, the two agree to float32 rounding.
    lotus_rgb = torch.tensor(image.astype(np.float32)).permute(2, 0, 1).unsqueeze(0) / 127.5 - 1.0
    same_input = pipe(((lotus_rgb + 1.0) / 2.0).clamp(0, 1), prompt, processing_resolution=0).depth[0]
    assert np.abs(same_input - ref).max() < 1e-6


def test_lotus_g_matches_lotus_code_and_is_flipped_for_disparity(lotus_dirs, image, one_torch_thread):
    pipe = IrisDepthPipeline.from_pretrained(lotus_dirs["g"])  # PNDM scheduler as published; "-disparity" name
    assert pipe.lotus == "g" and pipe.extra_settings["prediction_space"] == "disparity"
    prompt = "a corridor, a door at the far end"
    ours = pipe(image, prompt, processing_resolution=0, generator=torch.Generator().manual_seed(42)).depth[0]
    ref = lotus_reference(lotus_dirs["g"], "g", image, prompt, torch.Generator().manual_seed(42))
    # Lotus's output is disparity (larger = nearer); Iris returns larger = farther.
    assert np.abs(ours - (1.0 - ref)).max() < 1e-5
    assert ref.std() > 1e-3
    as_depth = IrisDepthPipeline.from_pretrained(lotus_dirs["g"], prediction_space="depth")
    raw = as_depth(image, prompt, processing_resolution=0, generator=torch.Generator().manual_seed(42)).depth[0]
    assert np.abs(raw - ref).max() < 1e-5


def test_lotus_text_goes_through_cross_attention(lotus_dirs, image, one_torch_thread):
    pipe = IrisDepthPipeline.from_pretrained(lotus_dirs["d"])
    a = pipe(image, "", processing_resolution=0).depth[0]
    b = pipe(image, "a bright room with a sofa near the camera", processing_resolution=0).depth[0]
    assert np.abs(a - b).max() > 1e-4


def test_lotus_d_is_one_step_only(lotus_dirs, image):
    pipe = IrisDepthPipeline.from_pretrained(lotus_dirs["d"])
    with pytest.raises(InputError, match="one step"):
        pipe(image, "", single_step=False, num_inference_steps=2, processing_resolution=0)


def test_saved_lotus_pipeline_reloads_as_lotus(lotus_dirs, image, tmp_path, one_torch_thread):
    pipe = IrisDepthPipeline.from_pretrained(lotus_dirs["g"])
    pipe.save_pretrained(tmp_path / "saved")
    index = json.loads((tmp_path / "saved" / "model_index.json").read_text())
    assert index["lotus"] == "g" and index["prediction_space"] == "disparity"
    again = IrisDepthPipeline.from_pretrained(tmp_path / "saved")
    gen = [torch.Generator().manual_seed(1) for _ in range(2)]
    a = pipe(image, "", processing_resolution=0, generator=gen[0]).depth
    b = again(image, "", processing_resolution=0, generator=gen[1]).depth
    assert np.array_equal(a, b)


@pytest.mark.parametrize("variant", ["d"])  # Lotus-D: 4 input channels and the task embedding in the graph
def test_lotus_onnx_export_matches_torch(lotus_dirs, image, variant, tmp_path, one_torch_thread):
    pytest.importorskip("onnxruntime")
    from iris_model.export import ExportSettings, export_onnx

    export_onnx(lotus_dirs[variant], tmp_path / "engine", ExportSettings(H, W), progress=lambda m: None)
    torch_pipe = IrisDepthPipeline.from_pretrained(lotus_dirs[variant])
    ort_pipe = IrisDepthPipeline.from_pretrained(tmp_path / "engine", backend="onnxruntime", intra_op_threads=1)
    assert ort_pipe.lotus == variant
    assert ort_pipe.extra_settings["prediction_space"] == torch_pipe.extra_settings["prediction_space"]
    text = "a desk with a lamp"
    a = torch_pipe(image, text, processing_resolution=0, generator=torch.Generator().manual_seed(3)).depth
    b = ort_pipe(image, text, processing_resolution=0, generator=torch.Generator().manual_seed(3)).depth
    assert np.abs(a - b).max() < 1e-4
    # The memory settings reach the sessions: a small engine keeps ONNX Runtime's defaults, unless told otherwise.
    assert ort_pipe.components.memory_settings == {"cpu_arena": True, "memory_pattern": True, "prepacking": True}
    lean = IrisDepthPipeline.from_pretrained(tmp_path / "engine", backend="onnxruntime", cpu_arena=False,
                                             memory_pattern=False, prepacking=False)
    session = next(iter(lean.components.graphs["unet"]._sessions.values()))
    assert not session.get_session_options().enable_cpu_mem_arena
    assert not session.get_session_options().enable_mem_pattern
    c = lean(image, text, processing_resolution=0, generator=torch.Generator().manual_seed(3)).depth
    assert np.abs(a - c).max() < 1e-4


def test_cli_runs_a_lotus_checkpoint_with_a_prediction_space_override(lotus_dirs, image, tmp_path, one_torch_thread):
    from PIL import Image

    from iris_model.cli import main

    Image.fromarray(image).save(tmp_path / "frame.png")
    outputs = {}
    for space in ("auto", "depth"):
        rc = main(["predict", str(tmp_path / "frame.png"), "--model", str(lotus_dirs["g"]), "--resolution", "0",
                   "--prediction-space", space, "--out", str(tmp_path / space)])
        assert rc == 0
        outputs[space] = np.load(tmp_path / space / "frame_depth.npy")
    # the "-disparity" checkpoint is flipped by default and left as it is when told it predicts depth
    assert np.abs(outputs["auto"] - (1.0 - outputs["depth"])).max() < 1e-6
    # ... and it ran Lotus's one step (not the default 4 steps of a multi-step model)
    pipe = IrisDepthPipeline.from_pretrained(lotus_dirs["g"], prediction_space="depth")
    one = pipe(image, "", processing_resolution=0, generator=torch.Generator().manual_seed(0)).depth[0]
    assert np.abs(outputs["depth"] - one).max() < 1e-6
    rc = main(["predict", str(tmp_path / "frame.png"), "--model", str(lotus_dirs["d"]), "--resolution", "0",
               "--out", str(tmp_path / "d")])
    assert rc == 0 and (tmp_path / "d" / "frame_depth.npy").is_file()



def test_tensorrt_profiles_follow_the_exported_unet_input(tmp_path):
    """Lotus-D's engine profile takes 4 channels (what its ONNX UNet declares), Marigold's 8 (no TensorRT needed)."""
    from iris_model.export.manifest import GRAPHS, GraphEntry, Manifest, TensorSpec
    from iris_model.export.tensorrt_build import profile_shapes

    def manifest(channels):
        graphs = {name: GraphEntry(file=f"onnx/{name}.onnx", inputs=[], outputs=[], sha256="", external_data=False,
                                   op_types={}) for name in GRAPHS}
        graphs["unet"].inputs.append(TensorSpec("sample", ["batch", channels, "latent_height", "latent_width"],
                                                "float32"))
        return Manifest(source={}, exporter={}, opset=18, height=H, width=W, max_batch=2, vae_scale_factor=8,
                        latent_channels=4, scaling_factor=0.18215, text_hidden_size=64, max_text_tokens=77,
                        graphs=graphs)

    assert profile_shapes("unet", manifest(4))["sample"][1] == (1, 4, H // 8, W // 8)
    assert profile_shapes("unet", manifest(8))["sample"][1] == (1, 8, H // 8, W // 8)
