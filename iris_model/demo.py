"""The README's main job without ROS: depth for the shipped demo frames with the embedded default model.

The frames (``iris_model/demo_data``) are three views of a walk down a corridor from the project's synthetic
generator, a held-out scene, with its caption, intrinsics and true depth (``python -m iris_training.demo_frames``
renders them). ``iris-depth predict`` runs on them with the caption; then each prediction is aligned to the true
depth (least-squares scale and shift, as every affine-invariant depth model is scored) and compared, next to the
same frames run without a description.

Writes to ``out/demo``: per frame the 16-bit depth PNG, the colorized depth PNG, the .npy, a .ply, and
``frame*_compare.png`` (input | predicted depth | true depth, one log-depth color scale; near = red); prints AbsRel and
δ1 per frame.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
from pathlib import Path

import numpy as np
from PIL import Image

DEMO_DATA = Path(__file__).resolve().parent / "demo_data"


def load_demo_frames(folder: Path = DEMO_DATA) -> list[dict]:
    """The demo frames' metadata (``frames.json``): image and true-depth file names, caption, intrinsics (px)."""
    return json.loads((folder / "frames.json").read_text())["frames"]


def true_depth(folder: Path, frame: dict) -> np.ndarray:
    """A demo frame's true planar depth in meters (camera optical frame), NaN where nothing was hit."""
    mm = np.asarray(Image.open(folder / frame["depth_mm"]), dtype=np.float32)
    return np.where(mm > 0, mm / 1000.0, np.nan).astype(np.float32)


def compare_image(rgb: np.ndarray, depth: np.ndarray, truth: np.ndarray) -> tuple[np.ndarray, dict[str, float]]:
    """Input | predicted depth aligned to the truth | true depth, side by side on one (log-depth) color scale; the
    per-image metrics (AbsRel, δ1, ...) after the least-squares scale and shift."""
    from .colorize import colorize_depth
    from .metrics import align_scale_shift, compute_metrics, valid_mask

    valid = valid_mask(truth, None, 1e-3, np.inf)
    aligned = align_scale_shift(depth, truth, valid)
    # Log depth on the truth's range: a corridor's depth spans 1-15 m, and a linear scale would paint
    # everything within a few meters the same red.
    lo, hi = (float(v) for v in np.percentile(np.log(truth[valid]), [1.0, 99.0]))
    log_pred = np.log(np.clip(aligned, float(np.nanmin(truth)), None)).astype(np.float32)
    panels = [rgb, colorize_depth(log_pred, lo, hi), colorize_depth(np.log(truth), lo, hi)]
    return np.concatenate(panels, axis=1), compute_metrics(aligned, truth, valid, align=False)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="out/demo")
    parser.add_argument("--model", default=None, help="model directory (default: the embedded model)")
    parser.add_argument("--text", default=None, help="description (default: the frames' own caption)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    from .cli import main as cli_main

    out = Path(args.out)
    frames_dir = out / "frames"
    frames_dir.mkdir(parents=True, exist_ok=True)
    frames = load_demo_frames()
    for f in frames:
        shutil.copyfile(DEMO_DATA / f["image"], frames_dir / f["image"])
    first = frames[0]  # one walk: one caption and one camera for all frames
    text = first["caption"] if args.text is None else args.text
    print(f"description: {text}")
    cli_args = ["predict", str(frames_dir), "--text", text, "--out", str(out)]
    cli_args += [a for k in ("fx", "fy", "cx", "cy") for a in (f"--{k}", str(first[k]))]
    if args.model:
        cli_args += ["--model", args.model]
    rc = cli_main(cli_args)
    if rc != 0:
        return rc
    from .default_model import default_model_dir
    from .pipeline import IrisDepthPipeline

    # The same frames without a description, to show what the text changed.
    pipe = IrisDepthPipeline.from_pretrained(args.model or default_model_dir())
    print("against the true depth, after a least-squares scale and shift:")
    for f in frames:
        stem = Path(f["image"]).stem
        rgb = np.asarray(Image.open(DEMO_DATA / f["image"]).convert("RGB"))
        truth = true_depth(DEMO_DATA, f)
        picture, m = compare_image(rgb, np.load(out / f"{stem}_depth.npy"), truth)
        Image.fromarray(picture).save(out / f"{stem}_compare.png")
        _, bare = compare_image(rgb, pipe(rgb, "").depth[0], truth)
        print(f"{stem}: AbsRel {m['abs_rel']:.3f}, delta1 {m['delta1']:.3f} with the description "
              f"(without one: {bare['abs_rel']:.3f}, {bare['delta1']:.3f})")
    print(f"results in {out}/ (frame*_compare.png: input | depth | truth; *.ply for point clouds)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
