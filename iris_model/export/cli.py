"""``iris-export``: a checkpoint -> ENGINE_DIR with ONNX graphs (and TensorRT engines where TensorRT runs).

Examples::

    iris-export MODEL_DIR --out ENGINE_DIR --height 480 --width 640             # ONNX (+ fp32 engines on a GPU)
    iris-export MODEL_DIR --out ENGINE_DIR --height 480 --width 640 --fp16      # + float16 graphs / engines
    iris-export ENGINE_DIR --engines-only --fp16                                 # build engines on the target

Then ``IrisDepthPipeline.from_pretrained(ENGINE_DIR, backend="onnxruntime" | "tensorrt")``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..errors import IrisError


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="iris-export",
        description="Export an Iris checkpoint to ONNX (text encoder, VAE encoder, UNet, VAE decoder) and, where "
        "TensorRT and an NVIDIA GPU are present, build TensorRT engines.",
    )
    p.add_argument("model_dir", type=Path, help="checkpoint (diffusers layout); with --engines-only an ENGINE_DIR")
    p.add_argument("--out", type=Path, help="ENGINE_DIR to write (required unless --engines-only)")
    p.add_argument("--height", type=int, help="image height in pixels the engines are built for (multiple of the "
                   "VAE stride, 8 for Stable-Diffusion VAEs)")
    p.add_argument("--width", type=int, help="image width in pixels (same rule)")
    p.add_argument("--max-batch", type=int, default=4, help="largest batch (ensemble members x cameras) per "
                   "engine call; larger batches are split (default 4)")
    p.add_argument("--opt-batch", type=int, default=1, help="batch size the TensorRT engines are tuned for")
    precision = p.add_mutually_exclusive_group()
    precision.add_argument("--fp16", action="store_true", help="also write float16 text-encoder/UNet graphs and "
                           "build float16 engines (the VAE stays float32)")
    precision.add_argument("--bf16", action="store_true", help="build bfloat16 engines (GPUs with sm >= 80)")
    p.add_argument("--opset", type=int, default=None, help="ONNX opset (default 18; 17..24)")
    p.add_argument("--tiny-decoder", default=None, metavar="DIR|off",
                   help="export this AutoencoderTiny folder (e.g. TAESD) as the tiny decoder graph; 'off' = none; "
                        "default: the checkpoint's own tiny_decoder/ when it has one")
    p.add_argument("--no-engines", action="store_true", help="write the ONNX graphs only")
    p.add_argument("--engines-only", action="store_true", help="build engines for an existing ENGINE_DIR")
    p.add_argument("--workspace-gb", type=float, default=None, help="TensorRT workspace limit in GiB")
    p.add_argument("--device", type=int, default=0, help="CUDA device index for building engines")
    return p


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from .tensorrt_build import TENSORRT_MISSING, ensure_engines, tensorrt_available

    precision = "fp16" if args.fp16 else "bf16" if args.bf16 else "fp32"
    try:
        if args.engines_only:
            engine_dir = args.model_dir
        else:
            if args.out is None or args.height is None or args.width is None:
                _parser().error("--out, --height and --width are required (unless --engines-only)")
            from .onnx_export import DEFAULT_OPSET, ExportSettings, export_onnx

            settings = ExportSettings(
                height=args.height, width=args.width, max_batch=args.max_batch,
                opset=args.opset or DEFAULT_OPSET, fp16=args.fp16,
            )
            tiny: bool | Path | None = None
            if args.tiny_decoder is not None:
                tiny = False if args.tiny_decoder == "off" else Path(args.tiny_decoder)
            export_onnx(args.model_dir, args.out, settings, progress=_say, tiny_decoder=tiny)
            engine_dir = args.out
        if args.no_engines:
            _say(f"done: {engine_dir} (ONNX only, as asked)")
            return 0
        if not tensorrt_available():
            if args.engines_only:
                _say(f"iris-export: error: {TENSORRT_MISSING}")
                return 1
            _say(f"done: {engine_dir} holds the ONNX graphs. No TensorRT engines: {TENSORRT_MISSING}. Engines are "
                 "built on the target machine by `iris-export ENGINE_DIR --engines-only` or on the first load with "
                 "backend='tensorrt'.")
            return 0
        import torch

        if not torch.cuda.is_available():
            _say(f"done: {engine_dir} holds the ONNX graphs. No TensorRT engines: no CUDA GPU visible here.")
            return 0 if not args.engines_only else 1
        workspace = None if args.workspace_gb is None else int(args.workspace_gb * (1 << 30))
        paths = ensure_engines(engine_dir, precision, args.device, args.opt_batch, workspace, True, _say)
        _say(f"done: {engine_dir} with engines " + ", ".join(p.name for p in paths.values()))
        return 0
    except IrisError as exc:
        _say(f"iris-export: error: {exc}")
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
