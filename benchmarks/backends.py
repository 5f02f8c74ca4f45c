"""Latency of each available backend (torch, onnxruntime, tensorrt): per component and end to end.

    python benchmarks/backends.py                       # tiny random checkpoint, exported on the fly
    python benchmarks/backends.py --model MODEL_DIR --engine-dir ENGINE_DIR --height 480 --width 640 \
        --steps 4 --ensemble 1 --runs 20 --device cuda

Every backend is measured in the same process, round-robin (run i of every backend, then run i + 1 ...),
so that a change in machine load hits all of them alike; the table gives medians in milliseconds and each
backend's speed-up over torch from this same run (torch median / backend median, > 1 = faster than torch).

Per component: one call with the shapes of this configuration (batch = ensemble size): ``text`` encodes the
description uncached, ``image`` the VAE encoder, ``unet`` ONE denoising step, ``decode`` the VAE decoder.
End to end: the whole pipeline call on an image of exactly ``height x width`` at processing resolution
``max(height, width)`` (no resizing), the description's embedding cached as in deployment.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from iris_model import IrisDepthPipeline
from iris_model.cli import DTYPES, torch_dtype
from iris_model.errors import IrisError

COMPONENTS = ("text", "image", "unet", "decode")
TEXT = "a cluttered office, a chair close on the left, a window far behind"


def _parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", type=Path, default=None,
                   help="checkpoint (default: a tiny random checkpoint created in a temp dir)")
    p.add_argument("--engine-dir", type=Path, default=None,
                   help="ENGINE_DIR from iris-export (default: exported from --model into a temp dir)")
    p.add_argument("--height", type=int, default=96)
    p.add_argument("--width", type=int, default=128)
    p.add_argument("--steps", type=int, default=4)
    p.add_argument("--ensemble", type=int, default=1)
    p.add_argument("--runs", type=int, default=15, help="timed runs per measurement (median reported)")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--device", default="cpu", help="torch device for torch (and onnxruntime / tensorrt outputs)")
    p.add_argument("--backends", default="torch,onnxruntime,tensorrt")
    p.add_argument("--dtype", default="fp32", choices=DTYPES,
                   help="precision of the text encoder and UNet for torch and tensorrt (the VAE stays fp32); "
                        "onnxruntime runs the float32 graphs")
    p.add_argument("--threads", type=int, default=0,
                   help="CPU threads for torch (torch.set_num_threads) and onnxruntime (intra-op); 0 = each one's "
                        "default")
    p.add_argument("--ort-threads", type=int, default=None, help="onnxruntime intra-op threads (default: --threads)")
    p.add_argument("--ort-sweep", action="store_true",
                   help="also measure onnxruntime variants: 1 thread, no I/O binding, basic graph optimization, "
                        "fixed-shape sessions")
    return p.parse_args()


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed(fn: Callable[[], Any], device: torch.device) -> float:
    _sync(device)
    t0 = time.perf_counter()
    fn()
    _sync(device)
    return time.perf_counter() - t0


def _load(args: argparse.Namespace, model_dir: Path, engine_dir: Path | None) -> dict[str, IrisDepthPipeline]:
    wanted = [b.strip() for b in args.backends.split(",") if b.strip()]
    pipes: dict[str, IrisDepthPipeline] = {}
    for backend in wanted:
        try:
            if backend == "torch":
                pipes["torch"] = IrisDepthPipeline.from_pretrained(
                    model_dir, device=args.device, dtype=torch_dtype(args.dtype)
                )
            elif backend == "onnxruntime":
                assert engine_dir is not None
                pipes["onnxruntime"] = IrisDepthPipeline.from_pretrained(
                    engine_dir, backend="onnxruntime", device=args.device, intra_op_threads=args.ort_threads
                )
                if args.ort_sweep:
                    for label, options in [
                        ("ort 1 thread", {"intra_op_threads": 1}),
                        ("ort no io-binding", {"io_binding": False, "intra_op_threads": args.ort_threads}),
                        ("ort basic opt", {"graph_optimization": "basic", "intra_op_threads": args.ort_threads}),
                        ("ort fixed shapes", {"fixed_shapes": True, "intra_op_threads": args.ort_threads}),
                    ]:  # (spinning threads are left out: in a round-robin they steal the cores of the next backend)
                        pipes[label] = IrisDepthPipeline.from_pretrained(
                            engine_dir, backend="onnxruntime", device=args.device, **options
                        )
            elif backend == "tensorrt":
                assert engine_dir is not None
                pipes["tensorrt"] = IrisDepthPipeline.from_pretrained(
                    engine_dir, backend="tensorrt", device="cuda", dtype=torch_dtype(args.dtype)
                )
            else:
                print(f"unknown backend {backend!r}: skipped")
        except IrisError as exc:
            print(f"{backend}: not available here ({exc})")
    return pipes


def main() -> int:
    args = _parse()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.ort_threads is None:
        args.ort_threads = args.threads
    work = Path(tempfile.mkdtemp(prefix="iris-bench-"))
    model_dir = args.model
    if model_dir is None:
        from iris_model.testing import save_tiny_checkpoint

        model_dir = save_tiny_checkpoint(work / "model")
        print(f"--model not given: using a tiny RANDOM checkpoint created in {model_dir}")
    engine_dir = args.engine_dir
    wants_engines = any(b in args.backends for b in ("onnxruntime", "tensorrt"))
    if engine_dir is None and wants_engines:
        from iris_model.export import ExportSettings, export_onnx

        engine_dir = work / "engine"
        t0 = time.perf_counter()
        export_onnx(model_dir, engine_dir, ExportSettings(args.height, args.width, max_batch=max(4, args.ensemble)),
                    progress=lambda message: None)
        print(f"--engine-dir not given: exported {model_dir} at {args.height}x{args.width} into {engine_dir} "
              f"({time.perf_counter() - t0:.0f} s)")

    pipes = _load(args, model_dir, engine_dir)
    if not pipes:
        print("no backend available")
        return 1
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (args.height, args.width, 3), dtype=np.uint8)
    resolution = max(args.height, args.width)
    E = args.ensemble

    # Inputs of this configuration's shapes for the per-component timings.
    first = next(iter(pipes.values()))
    f, C = first.components.vae_scale_factor, first.components.latent_channels
    if args.height % f or args.width % f:
        print(f"--height and --width must be multiples of the VAE stride {f}")
        return 1
    ids = first.text_embeddings.token_ids(TEXT)
    g = torch.Generator().manual_seed(0)
    rgb = torch.rand(E, 3, args.height, args.width, generator=g) * 2 - 1
    unet_channels = C if first.lotus == "d" else 2 * C  # Lotus-D's UNet sees the image latent alone
    sample = torch.randn(E, unet_channels, args.height // f, args.width // f, generator=g)

    calls: dict[str, dict[str, Callable[[], Any]]] = {}
    for name, pipe in pipes.items():
        comps, device = pipe.components, pipe.components.device
        text = pipe.embed_text(TEXT).expand(E, -1, -1).to(device)
        dev_ids, dev_rgb, dev_sample = ids.to(device), rgb.to(device), sample.to(device)
        calls[name] = {
            "text": lambda c=comps, x=dev_ids: c.encode_text(x),
            "image": lambda c=comps, x=dev_rgb: c.encode_image(x),
            "unet": lambda c=comps, x=dev_sample, t=text: c.denoise(x, 999, t),
            "decode": lambda c=comps, x=dev_sample: c.decode(x[:, :C]),
            "end-to-end": lambda p=pipe: p(image, TEXT, num_inference_steps=args.steps, ensemble_size=E,
                                            processing_resolution=resolution),
        }
    times: dict[str, dict[str, list[float]]] = {n: {k: [] for k in calls[n]} for n in calls}
    for run in range(args.warmup + args.runs):
        for name in calls:  # round-robin across backends
            device = pipes[name].components.device
            for key, fn in calls[name].items():
                elapsed = _timed(fn, device)
                if run >= args.warmup:
                    times[name][key].append(elapsed)

    med = {n: {k: 1000 * statistics.median(v) for k, v in t.items()} for n, t in times.items()}
    print()
    print(f"resolution {args.height}x{args.width}, steps {args.steps}, ensemble {E}, dtype {args.dtype}, "
          f"median of {args.runs} runs "
          f"(+{args.warmup} warm-up), torch threads {torch.get_num_threads()}, onnxruntime intra-op threads "
          f"{args.ort_threads or 'default'}, device {args.device}")
    header = f"{'backend':<20}" + "".join(f"{k + ' ms':>15}" for k in (*COMPONENTS, "end-to-end")) + f"{'vs torch':>10}"
    print(header)
    print("-" * len(header))
    base = med.get("torch", {}).get("end-to-end")
    for name, m in med.items():
        ratio = f"{base / m['end-to-end']:.2f}x" if base else "n/a"
        print(f"{name:<20}" + "".join(f"{m[k]:>15.2f}" for k in (*COMPONENTS, "end-to-end")) + f"{ratio:>10}")
    if base:
        print()
        print("per component vs torch: " + "; ".join(
            f"{name}: " + ", ".join(f"{k} {med['torch'][k] / m[k]:.2f}x" for k in COMPONENTS)
            for name, m in med.items() if name != "torch"
        ))
    return 0


if __name__ == "__main__":
    sys.exit(main())
