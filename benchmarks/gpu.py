"""One-shot device check: a full-size Marigold-v1-1 replica on a GPU, precision, speed; one table.

    python benchmarks/gpu.py                  # on a CUDA machine (sized for under 8 minutes; not yet run on one)
    python benchmarks/gpu.py --cpu --small    # the same code path on the CPU with a small replica (tests)

What it does, in this order:

1. builds the Marigold-v1-1 replica (Stable Diffusion 2 UNet with 8 input channels, VAE, ViT-H text tower; random
   weights, real configurations: :mod:`iris_model.replicas`) directly on the device;
2. precision: the same frame (768x576, 4 steps, same noise) in fp16 and bf16 against fp32: max and mean
   absolute depth difference and whether the output is finite (a NaN/inf output raises
   ``NonFiniteOutputError``, reported as such);
3. speed: end-to-end pipeline time (median of ``--runs`` after warm-up, CUDA synchronized) for 1 and 4 steps
   at 512x512, 640x480 and 768x576 (processing resolution = the long side, so no resizing) in fp32, fp16 and
   fp16 + ``torch.compile`` of the UNet;
4. the tiny decoder, when the model's components have one (``tiny_decoder``);
5. ONNX Runtime's CUDA provider, when the installed onnxruntime has it: the embedded default model exported and
   timed against torch;
6. the embedded default model's frame time (640x480, its default steps and resolution) in fp32 and fp16.

``--small`` uses a small replica and 64x64 / 64x48 frames (48x64 for the default model).

On the device machine of this workplace (torch, transformers and onnxruntime, no diffusers) diffusers travels
as a wheel, and the default model's text encoder as a small folder: ``benchmarks/gpu_wheels.sh`` prepares both
under ``.whl/`` and prints the one command to run there.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from iris_model import IrisDepthPipeline, IrisError, NonFiniteOutputError
from iris_model.components import TorchComponents

DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
TEXT = "an office, a desk close on the left, a window far behind"


def _parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cpu", action="store_true", help="run on the CPU (no GPU needed)")
    p.add_argument("--small", action="store_true", help="a small replica and small frames instead of full size")
    p.add_argument("--runs", type=int, default=None, help="timed runs per figure (default 5 on a GPU, 1 on --cpu)")
    p.add_argument("--no-compile", action="store_true", help="skip the torch.compile rows")
    p.add_argument("--no-default-model", action="store_true", help="skip the embedded default model")
    return p.parse_args(argv)


class Table:
    """Rows of (section, configuration, figure, value), printed once at the end."""

    def __init__(self) -> None:
        self.rows: list[tuple[str, str, str, str]] = []

    def add(self, section: str, config: str, figure: str, value: str) -> None:
        self.rows.append((section, config, figure, value))
        print(f"  {section:<10} {config:<34} {figure:<22} {value}", flush=True)

    def print(self, header: str) -> None:
        widths = [max(len(r[i]) for r in [("section", "configuration", "figure", "value"), *self.rows])
                  for i in range(4)]
        line = "| " + " | ".join(f"{{:<{w}}}" for w in widths) + " |"
        print("\n" + header)
        print(line.format("section", "configuration", "figure", "value"))
        print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
        for row in self.rows:
            print(line.format(*row))


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _median_ms(fn: Callable[[], Any], device: torch.device, runs: int, warmup: int) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(runs):
        _sync(device)
        t0 = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - t0)
    return 1000 * statistics.median(times)


def _frame(height: int, width: int) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)


def _variant(base: IrisDepthPipeline, dtype: torch.dtype) -> IrisDepthPipeline:
    """The same weights in another precision (UNet and text encoder cast; the float32 VAE shared)."""
    c = base.components
    comps = TorchComponents(copy.deepcopy(c.unet), c.vae, copy.deepcopy(c.text_encoder), c.device, dtype)
    return IrisDepthPipeline(comps, base.tokenizer, base.scheduler,
                             default_denoising_steps=base.default_denoising_steps,
                             default_processing_resolution=base.default_processing_resolution)


def _predict(pipe: IrisDepthPipeline, image: np.ndarray, steps: int, seed: int = 0) -> np.ndarray:
    gen = torch.Generator(device=pipe.components.device).manual_seed(seed)
    return pipe(image, TEXT, num_inference_steps=steps, processing_resolution=max(image.shape[:2]),
                generator=gen).depth[0]


def precision_rows(table: Table, pipes: dict[str, IrisDepthPipeline], size: tuple[int, int]) -> None:
    image = _frame(*size)
    reference = _predict(pipes["fp32"], image, 4)
    for name in ("fp16", "bf16"):
        try:
            depth = _predict(pipes[name], image, 4)
        except NonFiniteOutputError as exc:
            table.add("precision", f"{name} vs fp32, {size[1]}x{size[0]}, 4 steps", "finite", f"NO: {exc}")
            continue
        diff = np.abs(depth - reference)
        table.add("precision", f"{name} vs fp32, {size[1]}x{size[0]}, 4 steps", "finite", "yes")
        table.add("precision", f"{name} vs fp32, {size[1]}x{size[0]}, 4 steps", "max / mean abs diff",
                  f"{diff.max():.4f} / {diff.mean():.5f}")


def speed_rows(table: Table, pipes: dict[str, IrisDepthPipeline], sizes: list[tuple[int, int]], runs: int,
               compile_unet: bool) -> None:
    device = pipes["fp32"].components.device
    variants = ["fp32", "fp16"] + (["fp16+compile"] if compile_unet else [])
    times: dict[tuple[str, tuple[int, int], int], float] = {}
    for name in variants:
        pipe = pipes[name]
        for size in sizes:
            image = _frame(*size)
            for steps in (1, 4):
                try:
                    ms = _median_ms(lambda p=pipe, i=image, s=steps: _predict(p, i, s), device, runs,
                                    warmup=3 if name.endswith("compile") else 1)
                except Exception as exc:  # a compile failure must not lose the rest of the table
                    table.add("speed", f"{name}, {size[1]}x{size[0]}, {steps} step(s)", "end-to-end ms",
                              f"failed: {type(exc).__name__}: {str(exc)[:120]}")
                    continue
                times[(name, size, steps)] = ms
                extra = ""
                if name != "fp32" and ("fp32", size, steps) in times:
                    extra = f"  ({times[('fp32', size, steps)] / ms:.2f}x fp32"
                    if name == "fp16+compile" and ("fp16", size, steps) in times:
                        extra += f", {times[('fp16', size, steps)] / ms:.2f}x fp16"
                    extra += ")"
                table.add("speed", f"{name}, {size[1]}x{size[0]}, {steps} step(s)", "end-to-end ms",
                          f"{ms:.1f}{extra}")


def tiny_decoder_rows(table: Table, pipe: IrisDepthPipeline, size: tuple[int, int], runs: int, label: str) -> None:
    """VAE decoder against the tiny decoder (``AutoencoderTiny``) on one latent, when the model has one."""
    comps = pipe.components
    if getattr(comps, "tiny_decoder", None) is None:
        table.add("decoder", f"{label}: tiny decoder", "present", "no (this checkpoint has none)")
        return
    f = comps.vae_scale_factor
    latent = torch.randn(1, comps.latent_channels, size[0] // f, size[1] // f, device=comps.device)
    times = {}
    for use_tiny in (False, True):
        comps.use_tiny_decoder = use_tiny
        times[use_tiny] = _median_ms(lambda: comps.decode(latent), comps.device, runs, 1)
    comps.use_tiny_decoder = True
    table.add("decoder", f"{label}: VAE / tiny decoder, {size[1]}x{size[0]}", "decode ms",
              f"{times[False]:.1f} / {times[True]:.1f} ({times[False] / times[True]:.1f}x)")


def default_model_rows(table: Table, device: torch.device, runs: int, ort_cuda: bool, size: tuple[int, int]) -> None:
    from iris_model.default_model import default_model_dir

    image = _frame(*size)
    model = default_model_dir()
    for name in ("fp32", "fp16"):
        try:
            pipe = IrisDepthPipeline.from_pretrained(model, device=device, dtype=DTYPES[name])
        except IrisError as exc:
            table.add("default", f"embedded model, {name}", "loads", f"no: {exc}")
            return
        steps = pipe.default_denoising_steps
        ms = _median_ms(lambda p=pipe, s=steps: _predict(p, image, s), device, runs, 1)
        table.add("default", f"embedded model {name}, {size[1]}x{size[0]}, {steps} steps", "frame ms", f"{ms:.1f}")
        if name == "fp32":
            tiny_decoder_rows(table, pipe, size, runs, "embedded model")
    if not ort_cuda:
        table.add("onnxrt", "CUDAExecutionProvider", "present", "no (onnxruntime here has no CUDA provider)")
        return
    import tempfile

    from iris_model.export import ExportSettings, export_onnx

    engine = Path(tempfile.mkdtemp(prefix="iris-gpu-engine-"))
    export_onnx(model, engine, ExportSettings(*size), progress=lambda message: None)
    pipe = IrisDepthPipeline.from_pretrained(engine, backend="onnxruntime", device=device,
                                             providers=["CUDAExecutionProvider"])
    steps = pipe.default_denoising_steps
    ms = _median_ms(lambda: _predict(pipe, image, steps), device, runs, 1)
    table.add("onnxrt", f"embedded model, CUDA provider, {size[1]}x{size[0]}, {steps} steps", "frame ms", f"{ms:.1f}")


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    t_start = time.perf_counter()
    if not args.cpu and not torch.cuda.is_available():
        print("no CUDA device visible: run with --cpu (and --small) on a machine without a GPU")
        return 2
    device = torch.device("cpu" if args.cpu else "cuda")
    runs = args.runs or (1 if args.cpu else 5)
    size_name = "small" if args.small else "full"
    sizes = [(64, 64), (48, 64)] if args.small else [(512, 512), (480, 640), (576, 768)]
    try:
        import onnxruntime

        ort_line = f"onnxruntime {onnxruntime.__version__} ({', '.join(onnxruntime.get_available_providers())})"
        ort_cuda = "CUDAExecutionProvider" in onnxruntime.get_available_providers() and device.type == "cuda"
    except ImportError:
        ort_line, ort_cuda = "onnxruntime not installed", False
    import diffusers
    import transformers

    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    header = (f"device check: {gpu}; torch {torch.__version__}, diffusers {diffusers.__version__}, transformers "
              f"{transformers.__version__}, {ort_line}; Marigold-v1-1 replica ({size_name}, random weights), "
              f"median of {runs} run(s)")
    print(header, flush=True)
    table = Table()

    from iris_model.replicas import make_replica_pipeline

    t0 = time.perf_counter()
    base = make_replica_pipeline("marigold-v1-1", size_name, device=device)
    _sync(device)
    comps = base.components
    counts = [sum(p.numel() for p in m.parameters()) / 1e6 for m in (comps.unet, comps.text_encoder, comps.vae)]
    table.add("model", f"replica built on {device.type}", "UNet / text / VAE M", "{:.1f} / {:.1f} / {:.1f}".format(
        *counts))
    table.add("model", f"replica built on {device.type}", "build s", f"{time.perf_counter() - t0:.1f}")

    pipes = {"fp32": base, "fp16": _variant(base, torch.float16), "bf16": _variant(base, torch.bfloat16)}
    sections: list[tuple[str, Callable[[], None]]] = [
        ("precision", lambda: precision_rows(table, pipes, sizes[-1])),
    ]
    if not args.no_compile:
        compiled = _variant(base, torch.float16)
        compiled.components.unet = torch.compile(compiled.components.unet)
        pipes["fp16+compile"] = compiled
    sections.append(("speed", lambda: speed_rows(table, pipes, sizes, runs, not args.no_compile)))
    sections.append(("decoder", lambda: tiny_decoder_rows(table, base, sizes[-1], runs, "replica")))
    if not args.no_default_model:
        frame = (48, 64) if args.small else (480, 640)
        sections.append(("default", lambda: default_model_rows(table, device, runs, ort_cuda, frame)))
    for name, section in sections:
        try:
            section()
        except Exception as exc:  # one failing section must not lose the others' figures
            traceback.print_exc()
            table.add(name, "section", "failed", f"{type(exc).__name__}: {str(exc)[:160]}")
    table.add("total", "this script", "wall s", f"{time.perf_counter() - t_start:.0f}")
    table.print(header)
    return 0


if __name__ == "__main__":
    sys.exit(main())
