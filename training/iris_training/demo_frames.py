"""Render the demo frames shipped in ``iris_model/demo_data`` (what ``python -m iris_model.demo`` reads).

Three frames of a walk down a corridor of the synthetic generator (a held-out ``test`` sequence, seed 4242, no
split's training scene), with the caption, the intrinsics and the true planar depth (meters) of each, so the
demo and the README can show the model on the kind of scene it was trained on, next to the truth::

    python -m iris_training.demo_frames                 # -> iris_model/demo_data
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from PIL import Image

from .synthetic.video import generate_sequence

#: The sequence and frames shipped: corridor walk ``INDEX`` of the test split under ``SEED``, these frames.
SEED, INDEX, FRAMES = 4242, 5, (0, 6, 12)
DEFAULT_OUT = Path(__file__).resolve().parents[2] / "iris_model" / "demo_data"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    seq = generate_sequence("test", INDEX, num_frames=max(FRAMES) + 1, seed=SEED, trajectory="walk",
                            family="corridor", rate_hz=10.0)
    args.out.mkdir(parents=True, exist_ok=True)
    meta = {"source": f"iris_training.synthetic.video.generate_sequence('test', {INDEX}, seed={SEED}, "
                      "trajectory='walk', family='corridor', rate_hz=10.0)", "frames": []}
    for n, i in enumerate(FRAMES):
        frame = seq.frames[i]
        name = f"frame{n}"
        Image.fromarray((frame.rgb * 255).round().astype(np.uint8)).save(args.out / f"{name}.png")
        # True depth as 16-bit millimeters, 0 = no geometry (the sky or beyond range).
        mm = np.where(frame.valid, np.clip(np.round(frame.depth * 1000.0), 1, 65535), 0).astype(np.uint16)
        Image.fromarray(mm).save(args.out / f"{name}_depth_mm.png")
        k = frame.intrinsics
        meta["frames"].append({"image": f"{name}.png", "depth_mm": f"{name}_depth_mm.png", "caption": frame.caption,
                               "stamp_s": round(frame.stamp_s, 6), "fx": k[0, 0], "fy": k[1, 1],
                               "cx": k[0, 2], "cy": k[1, 2]})
    (args.out / "frames.json").write_text(json.dumps(meta, indent=2) + "\n")
    print(f"{len(FRAMES)} demo frames written to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
