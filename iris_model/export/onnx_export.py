"""A checkpoint -> four ONNX graphs (text encoder, VAE encoder, UNet, VAE decoder) + ENGINE_DIR layout, and a
fifth (``tiny_decoder``) when the checkpoint has a tiny decoder.

Exporter: ``torch.onnx.export(..., dynamo=True)`` (torch.export + onnxscript), the exporter torch 2.9+
maintains; the TorchScript one is deprecated. Opset 18 (the dynamo exporter's native opset, inside
TensorRT's range 9..24): scaled-dot-product attention lowers to MatMul/Softmax and GroupNorm to
InstanceNormalization, both in TensorRT's ONNX support matrix (see :mod:`.trt_ops`).

Graph I/O (B batch, L tokens, D text width, C latent channels, f VAE stride, h = H / f):

- ``text_encoder``: ``input_ids [B, L] int64 -> hidden_states [B, L, D]``
- ``vae_encoder``:  ``image [B, 3, H, W] in [-1, 1] -> latent [B, C, h, w]`` (latent mode * scaling factor)
- ``unet``:         ``sample [B, 2C, h, w], timestep [1] int64, encoder_hidden_states [B, L, D] -> [B, C, h, w]``
- ``vae_decoder``:  ``latent [B, C, h, w] -> depth [B, 1, H, W]`` in [0, 1] (/ scaling, channel mean, clamp)
- ``tiny_decoder``: as ``vae_decoder``, through the checkpoint's ``AutoencoderTiny`` (optional)

Every axis but channels is dynamic in the ONNX graphs, so ONNX Runtime runs any processing resolution
exactly as torch does. ``--height/--width`` fix the TensorRT profiles (optimum and maximum size) and
become the ENGINE_DIR's ``default_processing_resolution`` (their long side), so a camera image of that
aspect ratio is processed at exactly the exported size; other aspect ratios are resized by the pipeline
(long side = processing resolution) and padded to the latent stride, which gives a size inside the
TensorRT profile's range (see :mod:`iris_model.runtime.tensorrt_backend`).
"""

from __future__ import annotations

import json
import logging
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..components import TorchComponents, copy_component, decode_to_depth
from ..errors import InputError, ModelLoadError
from ..loading import MODEL_INDEX, read_model_index
from ..lotus import lotus_variant, prediction_space
from ..pipeline import MAX_ENSEMBLE, MAX_PROCESSING_RESOLUTION
from .manifest import (
    GRAPHS,
    OPTIONAL_GRAPHS,
    GraphEntry,
    Manifest,
    TensorSpec,
    checkpoint_sha256,
    library_versions,
    onnx_files,
    sha256_files,
)
from .trt_ops import check_trt_support

logger = logging.getLogger(__name__)

DEFAULT_OPSET = 18
MIN_OPSET = 17
#: protobuf's limit: larger graphs keep their weights in an external ``.onnx.data`` file.
PROTOBUF_LIMIT = 2**31 - 1
FP16_GRAPHS = ("text_encoder", "unet")  # the VAE stays float32 (Stable-Diffusion VAEs overflow in float16)


# ---------------------------------------------------------------------------------------------- graphs
class TextEncoderGraph(torch.nn.Module):
    """``input_ids [B, L] int64 -> last hidden state [B, L, D]`` (as ``TorchComponents.encode_text``)."""

    def __init__(self, text_encoder: torch.nn.Module) -> None:
        super().__init__()
        self.text_encoder = text_encoder

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.text_encoder(input_ids)[0]


class VaeEncoderGraph(torch.nn.Module):
    """``image [B, 3, H, W] in [-1, 1] -> latent mode * scaling factor [B, C, h, w]``."""

    def __init__(self, vae: torch.nn.Module, scaling_factor: float) -> None:
        super().__init__()
        self.vae = vae
        self.scaling_factor = scaling_factor

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.vae.encode(image).latent_dist.mode() * self.scaling_factor


class UNetGraph(torch.nn.Module):
    """``(sample [B, 2C, h, w], timestep [1] int64, text [B, L, D]) -> model output [B, C, h, w]``.

    Lotus-D's UNet takes ``[B, C, h, w]`` (the image latent alone). Constant class labels (Lotus's task
    embedding) are part of the graph, so its inputs stay the same for every checkpoint.
    """

    def __init__(self, unet: torch.nn.Module, class_labels: torch.Tensor | None = None) -> None:
        super().__init__()
        self.unet = unet
        self.class_labels = class_labels

    def forward(self, sample: torch.Tensor, timestep: torch.Tensor, encoder_hidden_states: torch.Tensor):
        labels = None if self.class_labels is None else self.class_labels.expand(sample.shape[0], -1)
        return self.unet(
            sample, timestep, encoder_hidden_states=encoder_hidden_states, class_labels=labels, return_dict=False
        )[0]


class VaeDecoderGraph(torch.nn.Module):
    """``latent [B, C, h, w] -> depth [B, 1, H, W] in [0, 1]`` (as ``TorchComponents.decode``)."""

    def __init__(self, vae: torch.nn.Module, scaling_factor: float, readout: str = "marigold") -> None:
        super().__init__()
        self.vae = vae
        self.scaling_factor = scaling_factor
        self.readout = readout

    def forward(self, latent: torch.Tensor) -> torch.Tensor:
        return decode_to_depth(self.vae.decode(latent / self.scaling_factor, return_dict=False)[0], self.readout)


class TinyDecoderGraph(torch.nn.Module):
    """``latent [B, C, h, w] -> depth [B, 1, H, W] in [0, 1]`` through the tiny decoder (``AutoencoderTiny``)."""

    def __init__(self, tiny: torch.nn.Module, readout: str = "marigold") -> None:
        super().__init__()
        self.tiny = tiny
        self.scaling_factor = float(tiny.config.scaling_factor)
        self.readout = readout

    def forward(self, latent: torch.Tensor) -> torch.Tensor:
        return decode_to_depth(self.tiny.decode(latent / self.scaling_factor, return_dict=False)[0], self.readout)


# ---------------------------------------------------------------------------------------------- settings
@dataclass(frozen=True)
class ExportSettings:
    """What ``iris-export`` was asked for. Sizes in pixels of the (processing-resolution) image."""

    height: int
    width: int
    max_batch: int = 4
    opset: int = DEFAULT_OPSET
    fp16: bool = False

    def validate(self, vae_scale_factor: int) -> None:
        for name in ("height", "width"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= MAX_PROCESSING_RESOLUTION:
                raise InputError(f"{name} must be an int in [1, {MAX_PROCESSING_RESOLUTION}], got {value!r}")
            if value % vae_scale_factor:
                raise InputError(
                    f"{name} must be a multiple of the VAE stride {vae_scale_factor}, got {value} "
                    f"(e.g. {value + (-value) % vae_scale_factor})"
                )
        if isinstance(self.max_batch, bool) or not isinstance(self.max_batch, int) or not 1 <= self.max_batch <= 64:
            raise InputError(f"max_batch must be an int in [1, 64], got {self.max_batch!r}")
        if not MIN_OPSET <= self.opset <= 24:
            raise InputError(f"opset must be in [{MIN_OPSET}, 24] (TensorRT parses up to 24), got {self.opset}")


# ---------------------------------------------------------------------------------------------- export
def _dtype_name(elem_type: int) -> str:
    import onnx

    return str(onnx.helper.tensor_dtype_to_np_dtype(elem_type))


def _specs(values: Any) -> list[TensorSpec]:
    out = []
    for value in values:
        tensor_type = value.type.tensor_type
        shape: list[int | str] = [d.dim_param if d.dim_param else int(d.dim_value) for d in tensor_type.shape.dim]
        out.append(TensorSpec(value.name, shape, _dtype_name(tensor_type.elem_type)))
    return out


def _save_onnx(program: Any, path: Path) -> bool:
    """Save an ONNXProgram; weights go to ``<path>.data`` when the graph would pass protobuf's 2 GB limit."""
    weight_bytes = sum(int(t.nbytes) for t in program.exported_program.state_dict.values())
    weight_bytes += sum(int(t.nbytes) for t in program.exported_program.constants.values() if torch.is_tensor(t))
    external = weight_bytes > PROTOBUF_LIMIT - (64 << 20)  # keep a margin for the graph itself
    for stale in onnx_files(path):
        stale.unlink(missing_ok=True)
    program.save(str(path), external_data=external)
    return external


def _export_graph(
    module: torch.nn.Module, args: tuple, input_names: list[str], output_names: list[str],
    dynamic_shapes: dict[str, Any], path: Path, opset: int, output_dims: dict[int, str] | None = None,
) -> bool:
    with warnings.catch_warnings():
        # The exporter warns about its own internals (pytree deprecations, unused axis names); not ours to fix.
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", UserWarning)
        program = torch.onnx.export(
            module.eval(), args, None, dynamo=True, opset_version=opset, input_names=input_names,
            output_names=output_names, dynamic_shapes=dynamic_shapes, optimize=True, verbose=False,
        )
    if program is None:  # pragma: no cover - dynamo=True always returns the program
        raise RuntimeError("torch.onnx.export returned no program")
    if output_dims:  # name the symbolic output axes the exporter left as s<N> (annotation only)
        import onnx_ir as ir

        output = program.model.graph.outputs[0]
        dims = list(output.shape.dims)
        for axis, name in output_dims.items():
            dims[axis] = ir.SymbolicDim(name)
        output.shape = ir.Shape(dims)
    return _save_onnx(program, path)


def convert_fp16(src: Path, dst: Path) -> bool:
    """A float16 copy of a graph (float32 I/O kept) for TensorRT's strongly typed build.

    Uses ONNX Runtime's maintained converter (``onnxruntime.transformers.float16``); its output is not
    topologically sorted (the I/O casts are appended), so onnx-ir sorts it before saving."""
    import onnx
    import onnx_ir as ir
    from onnxruntime.transformers.float16 import convert_float_to_float16

    model = onnx.load(str(src), load_external_data=True)
    large = len(onnx_files(src)) > 1
    half = convert_float_to_float16(model, keep_io_types=True, disable_shape_infer=large)
    half_ir = ir.from_proto(half)
    half_ir.graph.sort()
    for stale in onnx_files(dst):
        stale.unlink(missing_ok=True)
    external = large or half.ByteSize() > PROTOBUF_LIMIT - (64 << 20)
    ir.save(half_ir, str(dst), external_data=dst.name + ".data" if external else None)
    return external


def export_onnx(
    model_dir: str | Path,
    out_dir: str | Path,
    settings: ExportSettings,
    progress: Callable[[str], None] | None = None,
    tiny_decoder: bool | str | Path | None = None,
) -> Manifest:
    """Export a checkpoint's four components to ``out_dir/onnx`` and lay out a loadable ENGINE_DIR.

    ``tiny_decoder`` as in :meth:`TorchComponents.from_pretrained`: the checkpoint's own is exported as a fifth
    graph unless ``False``; a folder (e.g. TAESD for a Stable-Diffusion-2-based checkpoint) is exported instead.

    ``IrisDepthPipeline.from_pretrained(out_dir, backend="onnxruntime")`` loads the result. Raises
    :class:`ModelLoadError` for an unreadable checkpoint and :class:`InputError` for bad settings.
    """
    import onnx

    say = progress or (lambda message: logger.info("%s", message))
    model_dir, out_dir = Path(model_dir), Path(out_dir)
    if model_dir.resolve() == out_dir.resolve():
        raise InputError("the output directory must differ from the model directory")
    index = read_model_index(model_dir)
    if (model_dir / "manifest.json").is_file():
        raise ModelLoadError(model_dir, "this is already an exported ENGINE_DIR; export from the checkpoint")
    comps = TorchComponents.from_pretrained(
        model_dir, device="cpu", dtype=torch.float32, index=index, tiny_decoder=tiny_decoder
    )
    settings.validate(comps.vae_scale_factor)
    text_config = comps.text_encoder.config
    hidden = int(text_config.hidden_size)
    max_tokens = int(getattr(text_config, "max_position_embeddings", 77))
    from ..loading import load_tokenizer

    tokenizer = load_tokenizer(model_dir, *index.components["tokenizer"])
    max_tokens = min(max_tokens, int(getattr(tokenizer, "model_max_length", max_tokens)))

    out_dir.mkdir(parents=True, exist_ok=True)
    onnx_dir = out_dir / "onnx"
    onnx_dir.mkdir(exist_ok=True)
    say(f"source {model_dir}: hashing the checkpoint")
    source_hash = checkpoint_sha256(model_dir)

    f, C = comps.vae_scale_factor, comps.latent_channels
    Dim = torch.export.Dim
    # Dynamic axes. The ranges only steer torch.export's shape reasoning; ONNX Runtime does not enforce them.
    batch = Dim("batch", min=1, max=max(settings.max_batch, MAX_ENSEMBLE // 2))
    tokens = Dim("tokens", min=1, max=max_tokens)
    max_latent = max(256, settings.height // f, settings.width // f)
    lh, lw = Dim("latent_height", min=1, max=max_latent), Dim("latent_width", min=1, max=max_latent)
    # Example latent sizes not divisible by the UNet's overall stride, so that diffusers traces the path
    # that forwards explicit upsample sizes, which is right for every size (the other path is right only
    # for multiples of the stride).
    up = 2 ** int(getattr(comps.unet, "num_upsamplers", 0))
    ex_h, ex_w = 2 * up + 1, 2 * up + 3
    ex_b, ex_l = 2, min(5, max_tokens)
    gen = torch.Generator().manual_seed(0)
    sf = comps.scaling_factor
    renamed = {"vae_encoder": {2: "latent_height", 3: "latent_width"}}
    jobs: list[tuple[str, torch.nn.Module, tuple, list[str], list[str], dict[str, Any]]] = [
        (
            "text_encoder", TextEncoderGraph(comps.text_encoder),
            (torch.randint(0, int(text_config.vocab_size), (ex_b, ex_l), generator=gen),),
            ["input_ids"], ["hidden_states"], {"input_ids": {0: batch, 1: tokens}},
        ),
        (
            "vae_encoder", VaeEncoderGraph(comps.vae, sf),
            (torch.rand(ex_b, 3, ex_h * f, ex_w * f, generator=gen) * 2 - 1,),
            ["image"], ["latent"], {"image": {0: batch, 2: f * lh, 3: f * lw}},
        ),
        (
            "unet", UNetGraph(comps.unet, comps.class_labels),
            (
                torch.randn(ex_b, int(comps.unet.config.in_channels), ex_h, ex_w, generator=gen),
                torch.tensor([999], dtype=torch.int64),
                torch.randn(ex_b, ex_l, hidden, generator=gen),
            ),
            ["sample", "timestep", "encoder_hidden_states"], ["model_output"],
            {"sample": {0: batch, 2: lh, 3: lw}, "timestep": None, "encoder_hidden_states": {0: batch, 1: tokens}},
        ),
        (
            "vae_decoder", VaeDecoderGraph(comps.vae, sf, comps.depth_readout),
            (torch.randn(ex_b, C, ex_h, ex_w, generator=gen),),
            ["latent"], ["depth"], {"latent": {0: batch, 2: lh, 3: lw}},
        ),
    ]
    if comps.tiny_decoder is not None:
        jobs.append((
            "tiny_decoder", TinyDecoderGraph(comps.tiny_decoder, comps.depth_readout),
            (torch.randn(ex_b, C, ex_h, ex_w, generator=gen),),
            ["latent"], ["depth"], {"latent": {0: batch, 2: lh, 3: lw}},
        ))
    graphs: dict[str, GraphEntry] = {}
    for number, (name, module, args, inputs, outputs, dynamic) in enumerate(jobs, 1):
        path = onnx_dir / f"{name}.onnx"
        t0 = time.perf_counter()
        say(f"[{number}/{len(jobs)}] exporting {name} (opset {settings.opset})")
        try:
            external = _export_graph(module, args, inputs, outputs, dynamic, path, settings.opset, renamed.get(name))
        except Exception as exc:
            raise ModelLoadError(model_dir / name, f"ONNX export of {name} failed: {exc}") from exc
        onnx.checker.check_model(str(path), full_check=True)
        header = onnx.load(str(path), load_external_data=False)
        report = check_trt_support(header)
        if not report.ok:
            raise ModelLoadError(path, "graph leaves TensorRT's ONNX support: " + "; ".join(report.problems))
        fp16_file = None
        if settings.fp16 and name in FP16_GRAPHS:
            half_path = onnx_dir / f"{name}.fp16.onnx"
            convert_fp16(path, half_path)
            onnx.checker.check_model(str(half_path), full_check=True)
            half_report = check_trt_support(onnx.load(str(half_path), load_external_data=False))
            if not half_report.ok:
                problems = "; ".join(half_report.problems)
                raise ModelLoadError(half_path, f"fp16 graph leaves TensorRT's support: {problems}")
            fp16_file = f"onnx/{half_path.name}"
        graphs[name] = GraphEntry(
            file=f"onnx/{path.name}",
            inputs=_specs(header.graph.input),
            outputs=_specs(header.graph.output),
            sha256=sha256_files(onnx_files(path), out_dir),
            external_data=external,
            op_types=report.op_counts,
            fp16_file=fp16_file,
        )
        say(f"[{number}/{len(jobs)}] {name}: {sum(report.op_counts.values())} nodes, checker passed, "
            f"{time.perf_counter() - t0:.1f} s")

    _write_loadable_layout(model_dir, out_dir, comps, index.raw, settings)
    manifest = Manifest(
        source={"path": str(model_dir.resolve()), "sha256": source_hash, **_tiny_source(tiny_decoder)},
        exporter={**library_versions(), "exporter": "torch.onnx.export(dynamo=True)"},
        opset=settings.opset,
        height=settings.height,
        width=settings.width,
        max_batch=settings.max_batch,
        vae_scale_factor=f,
        latent_channels=C,
        scaling_factor=sf,
        text_hidden_size=hidden,
        max_text_tokens=max_tokens,
        graphs=graphs,
        notes={"fp16": "text_encoder, unet" if settings.fp16 else "none"},
    )
    assert set(GRAPHS) <= set(manifest.graphs) <= set(GRAPHS) | set(OPTIONAL_GRAPHS)
    manifest.save(out_dir)
    say(f"wrote {out_dir / 'manifest.json'}")
    return manifest


def _tiny_source(tiny_decoder: bool | str | Path | None) -> dict[str, str]:
    """The manifest's record of a tiny decoder taken from outside the checkpoint (path and content hash)."""
    if not isinstance(tiny_decoder, (str, Path)):
        return {}
    folder = Path(tiny_decoder)
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    return {"tiny_decoder_path": str(folder.resolve()), "tiny_decoder_sha256": sha256_files(files, folder)}


def _write_loadable_layout(
    model_dir: Path, out_dir: Path, comps: TorchComponents, index_raw: dict[str, Any], settings: ExportSettings
) -> None:
    """model_index.json, tokenizer/, scheduler/ and the three model configs, so the pipeline loads out_dir."""
    for name in ("tokenizer", "scheduler"):
        copy_component(model_dir, name, out_dir)
    comps.unet.save_config(str(out_dir / "unet"))
    comps.vae.save_config(str(out_dir / "vae"))
    if comps.tiny_decoder is not None:
        comps.tiny_decoder.save_config(str(out_dir / "tiny_decoder"))
    comps.text_encoder.config.save_pretrained(str(out_dir / "text_encoder"))
    raw = dict(index_raw)
    if lotus_variant(raw):  # the ENGINE_DIR's name no longer says whether the checkpoint predicts disparity
        raw["prediction_space"] = prediction_space(model_dir, index_raw)
    # The exported size is what the TensorRT engines are tuned for: process images at its long side.
    raw["default_processing_resolution"] = max(settings.height, settings.width)
    (out_dir / MODEL_INDEX).write_text(json.dumps(raw, indent=2, sort_keys=True) + "\n")
