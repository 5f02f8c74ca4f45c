"""What ``temporal_mode: pose`` costs per frame: ``PoseFusion`` next to the model, at camera image sizes.

    python benchmarks/pose_fusion.py --sizes 256x192,640x480 --threads 1

For each size: the model (embedded default model, its default steps, caption on) on one image of that size,
median of ``--model-runs``; then the fusion of ``--frames`` frames of metric depth while the camera walks forward
and sideways (every frame fused with the previous output: the re-projection, hole filling and blend), median per
frame; and their ratio. The fusion works at the depth image's size (the input image's), the model at its own
processing resolution, so the ratio grows with the image.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from iris_model import IrisDepthPipeline
from iris_model.default_model import default_model_dir
from iris_model.pose_fusion import PoseFusion


def fusion_ms(width: int, height: int, frames: int) -> float:
    k = np.array([[0.8 * width, 0, (width - 1) / 2], [0, 0.8 * width, (height - 1) / 2], [0, 0, 1]])
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:height, 0:width]
    scene = (2.0 + 3.0 * yy / height + 0.5 * np.sin(xx / 17.0)).astype(np.float32)  # a tilted, wavy surface
    fusion, times = PoseFusion(), []
    for i in range(frames):
        pose = np.eye(4)
        pose[:3, 3] = [0.01 * i, 0.0, 0.03 * i]  # 3 cm forward, 1 cm right per frame
        depth = (scene - 0.03 * i) * (1 + 0.02 * rng.standard_normal(scene.shape)).astype(np.float32)
        t0 = time.perf_counter()
        fusion(depth, k, pose, 0.05 * i)
        times.append(time.perf_counter() - t0)
        if i and not fusion.continued:
            raise RuntimeError("the benchmark's frames were not fused")
    return statistics.median(times[1:]) * 1e3


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", default="256x192,640x480", help="WIDTHxHEIGHT, comma-separated")
    p.add_argument("--frames", type=int, default=30)
    p.add_argument("--model-runs", type=int, default=3)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    pipe = IrisDepthPipeline.from_pretrained(default_model_dir())
    print(f"{'size':>9} {'model ms':>9} {'fusion ms':>10} {'fusion / model':>15}")
    for size in args.sizes.split(","):
        width, height = (int(v) for v in size.lower().split("x"))
        image = np.random.default_rng(1).integers(0, 256, (height, width, 3), dtype=np.uint8)
        pipe(image, "a room")  # warm-up
        model = []
        for _ in range(args.model_runs):
            t0 = time.perf_counter()
            pipe(image, "a room")
            model.append(time.perf_counter() - t0)
        model_ms = statistics.median(model) * 1e3
        fuse_ms = fusion_ms(width, height, args.frames)
        print(f"{size:>9} {model_ms:9.1f} {fuse_ms:10.2f} {100 * fuse_ms / model_ms:14.2f}%")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
