"""``iris-depth predict IMAGE_OR_DIR... --text "..." --model DIR --steps N --ensemble K --out DIR``.

Per image it writes ``<name>_depth.png`` (16-bit, affine-invariant, larger is farther), ``<name>_depth.npy``
(float32 [0, 1]), ``<name>_depth_color.png`` (turbo, near = red) and, when intrinsics are given, a
``<name>.ply`` point cloud (camera optical frame; units are those of ``--scale``/``--shift``, meters when
they are metric, else the relative depth's units).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm"}
DTYPES = ("fp32", "fp16", "bf16")


def torch_dtype(name: str):
    """``fp32 | fp16 | bf16`` -> the torch dtype (the text encoder's and UNet's; the VAE stays float32)."""
    import torch

    table = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
    if name not in table:
        raise ValueError(f"dtype must be one of {', '.join(DTYPES)}, got {name!r}")
    return table[name]


def _collect(inputs: list[str]) -> list[Path]:
    files: list[Path] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            files.extend(sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES))
        elif path.exists():
            files.append(path)
        else:
            raise FileNotFoundError(f"no such image or directory: {path}")
    return files


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="iris-depth", description="Language-conditioned depth from images.")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("predict", help="predict depth for images or folders of images")
    p.add_argument("inputs", nargs="+", help="image files or directories")
    p.add_argument("--text", default="", help="scene description (default: none)")
    p.add_argument("--model", default=None, help="model directory (default: the embedded model)")
    p.add_argument("--backend", default="torch", help="torch | onnxruntime | tensorrt")
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, ...")
    p.add_argument("--dtype", default="fp32", choices=DTYPES,
                   help="precision of the text encoder and UNet (the VAE stays fp32); a NaN/inf result in half "
                        "precision is reported as an error, never written")
    p.add_argument("--prediction-space", default="auto", choices=("auto", "depth", "disparity"),
                   help="what the checkpoint predicts when its files do not say (Lotus: auto = from the name, "
                        "'...-disparity'); disparity is written flipped, larger is farther")
    p.add_argument("--steps", type=int, default=None, help="denoising steps 1..50 (default: the model's)")
    p.add_argument("--single-step", action="store_true", default=None,
                   help="deterministic one-step mode (E2E-FT style); default: as the model says (Lotus: one step)")
    p.add_argument("--ensemble", type=int, default=1, help="ensemble size")
    p.add_argument("--resolution", type=int, default=None, help="processing resolution (0 = native)")
    p.add_argument("--decoder", choices=("auto", "vae"), default="auto",
                   help="auto = the model's tiny decoder when it has one, else the VAE; vae = always the VAE decoder")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="iris_out", help="output directory")
    p.add_argument("--fov", type=float, default=None, help="horizontal field of view in degrees (for .ply)")
    for name in ("fx", "fy", "cx", "cy"):
        p.add_argument(f"--{name}", type=float, default=None, help="intrinsics in pixels (for .ply)")
    p.add_argument("--scale", type=float, default=1.0, help="metric = scale * depth + shift, for the .ply")
    p.add_argument("--shift", type=float, default=0.0)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    log = logging.getLogger("iris-depth")

    import torch
    from tqdm import tqdm

    from .default_model import default_model_dir
    from .errors import IrisError
    from .geometry import Intrinsics, affine_to_metric, depth_to_points
    from .outputs import save_colorized_png, save_depth_png16, save_ply
    from .pipeline import IrisDepthPipeline

    intrinsic_args = [args.fx, args.fy, args.cx, args.cy]
    if any(v is not None for v in intrinsic_args) and not all(v is not None for v in intrinsic_args):
        log.error("give all of --fx --fy --cx --cy, or --fov")
        return 2
    try:
        files = _collect(args.inputs)
    except FileNotFoundError as exc:
        log.error("%s", exc)
        return 2
    if not files:
        log.error("no images found in %s", " ".join(args.inputs))
        return 2
    try:
        model = Path(args.model) if args.model else default_model_dir()
        pipe = IrisDepthPipeline.from_pretrained(
            model, backend=args.backend, device=args.device, dtype=torch_dtype(args.dtype),
            prediction_space=None if args.prediction_space == "auto" else args.prediction_space,
            tiny_decoder=False if args.decoder == "vae" else None,
        )
    except IrisError as exc:
        log.error("%s", exc)
        return 2

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    failures = 0
    for path in tqdm(files, desc="iris-depth", unit="img", disable=len(files) < 2):
        try:
            with Image.open(path) as img:
                rgb = np.asarray(img.convert("RGB"))
        except (OSError, UnidentifiedImageError) as exc:
            log.error("cannot read image %s: %s", path, exc)
            failures += 1
            continue
        try:
            result = pipe(
                rgb, args.text, num_inference_steps=args.steps, single_step=args.single_step,
                ensemble_size=args.ensemble, processing_resolution=args.resolution,
                generator=torch.Generator(device=args.device).manual_seed(args.seed),
            )
        except IrisError as exc:
            log.error("%s: %s", path, exc)
            failures += 1
            continue
        depth = result.depth[0]
        stem = out / path.stem
        np.save(f"{stem}_depth.npy", depth)
        save_depth_png16(Path(f"{stem}_depth.png"), depth)
        save_colorized_png(Path(f"{stem}_depth_color.png"), depth)
        h, w = depth.shape
        intr = None
        if args.fx is not None:
            intr = Intrinsics(args.fx, args.fy, args.cx, args.cy, w, h)
        elif args.fov is not None:
            intr = Intrinsics.from_fov(w, h, args.fov)
        if intr is not None:
            points = depth_to_points(affine_to_metric(depth, args.scale, args.shift), intr)
            save_ply(Path(f"{stem}.ply"), points, rgb)
    log.info("wrote %d of %d images to %s", len(files) - failures, len(files), out)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
