"""The tiny depth decoder against the VAE decoder: decode speed and the accuracy it costs, in one run.

    python benchmarks/tiny_decoder.py --model iris_model/default_model --tiny RUN_DIR/tiny_decoder \
        --height 192 --width 256 --scenes 30 --threads 1

Speed: the two decoders alternate on the same latent (``height/stride x width/stride``), medians in
milliseconds and their ratio (VAE / tiny, > 1 = the tiny decoder is faster). Accuracy: the full pipeline
(model's default steps, caption on) on synthetic test scenes of ``width x height``, once per decoder with the
same noise, scored with ``iris-eval``'s protocol; the AbsRel cost is tiny / VAE - 1. ``--tiny`` defaults to
the checkpoint's own ``tiny_decoder/``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "training"))

from iris_model import IrisDepthPipeline


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", type=Path, default=Path("iris_model/default_model"))
    p.add_argument("--tiny", type=Path, default=None, help="AutoencoderTiny folder (default: the checkpoint's)")
    p.add_argument("--height", type=int, default=192)
    p.add_argument("--width", type=int, default=256)
    p.add_argument("--runs", type=int, default=10)
    p.add_argument("--scenes", type=int, default=30, help="synthetic test scenes for the AbsRel cost (0 = skip)")
    p.add_argument("--steps", type=int, default=None, help="denoising steps (default: the model's)")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    pipe = IrisDepthPipeline.from_pretrained(args.model, tiny_decoder=args.tiny if args.tiny else None)
    if pipe.decoder != "tiny":
        print(f"{args.model} has no tiny decoder: pass --tiny FOLDER", file=sys.stderr)
        return 2
    comps = pipe.components
    f = comps.vae_scale_factor
    latent = torch.randn(1, comps.latent_channels, args.height // f, args.width // f,
                         generator=torch.Generator().manual_seed(0))
    times: dict[str, list[float]] = {"vae": [], "tiny": []}
    for run in range(args.runs + 1):
        for kind in ("vae", "tiny"):
            pipe.set_decoder(kind)
            t0 = time.perf_counter()
            comps.decode(latent)
            if run:  # the first round warms up
                times[kind].append(1000 * (time.perf_counter() - t0))
    vae_ms, tiny_ms = statistics.median(times["vae"]), statistics.median(times["tiny"])
    print(f"decode {args.width}x{args.height}, {args.threads} thread(s), median of {args.runs}: "
          f"VAE {vae_ms:.1f} ms, tiny {tiny_ms:.1f} ms, speed-up {vae_ms / tiny_ms:.2f}x")
    if args.scenes:
        from iris_training.evaluate import evaluate_pipeline
        from iris_training.synthetic.registered import open_synthetic

        dataset = open_synthetic("", split="test", size=args.scenes, height=args.height, width=args.width)
        steps = [args.steps or pipe.default_denoising_steps]
        rows = {}
        for kind in ("vae", "tiny"):
            pipe.set_decoder(kind)
            (rows[kind],) = evaluate_pipeline(pipe, dataset, steps, ["on"], max_samples=args.scenes)
        vae, tiny = rows["vae"], rows["tiny"]
        cost = 100 * (tiny["abs_rel"] / vae["abs_rel"] - 1)
        print(f"pipeline on {vae['n']} synthetic test scenes ({steps[0]} steps, caption): AbsRel VAE "
              f"{vae['abs_rel']:.4f} tiny {tiny['abs_rel']:.4f} (cost {cost:+.1f} %), "
              f"delta1 VAE {vae['delta1']:.4f} tiny {tiny['delta1']:.4f}")
    print(f"tiny decoder speed-up: {vae_ms / tiny_ms:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
