"""Peak memory and frame time of one frame on torch and on ONNX Runtime's CPU provider, per session setting.

    python benchmarks/ort_memory.py --model MODEL_DIR --engine-dir ENGINE_DIR --height 576 --width 768 --steps 1

Each configuration runs in a fresh process (peak resident memory, ``ru_maxrss``, is per process): it loads the
pipeline, predicts one frame (the first, with ONNX Runtime's first-run allocations) and a second one, and
reports the peak and both frame times. ``ort-defaults`` is ONNX Runtime's own behaviour (CPU arena, memory
pattern and weight prepacking on), ``ort-auto`` is the backend's default for this model size (see
``OrtOptions`` in ``iris_model/runtime/onnxruntime_backend.py``), the others switch one setting at a time.
Ratios are against torch in this same run.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

CONFIGS: dict[str, dict | None] = {
    "torch": None,
    "ort-defaults": {"cpu_arena": True, "memory_pattern": True, "prepacking": True},
    "ort-auto": {},
    "ort-arena-off": {"cpu_arena": False, "memory_pattern": True, "prepacking": True},
    "ort-arena-pattern-off": {"cpu_arena": False, "memory_pattern": False, "prepacking": True},
    "ort-prepacking-off": {"cpu_arena": True, "memory_pattern": True, "prepacking": False},
}

CHILD = r"""
import json, resource, sys, time
import numpy as np, torch
from iris_model import IrisDepthPipeline
args = json.loads(sys.argv[1])
torch.set_num_threads(args["threads"] or torch.get_num_threads())
if args["options"] is None:
    pipe = IrisDepthPipeline.from_pretrained(args["model"])
else:
    pipe = IrisDepthPipeline.from_pretrained(args["engine"], backend="onnxruntime",
                                             intra_op_threads=args["threads"], **args["options"])
image = np.random.default_rng(0).integers(0, 256, (args["height"], args["width"], 3), dtype=np.uint8)
times = []
for _ in range(2):
    t0 = time.perf_counter()
    pipe(image, "a room", num_inference_steps=args["steps"], processing_resolution=max(args["height"], args["width"]),
         generator=torch.Generator().manual_seed(0))
    times.append(time.perf_counter() - t0)
settings = getattr(pipe.components, "memory_settings", None)
print(json.dumps({"peak_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, "times": times,
                  "settings": settings}))
"""


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", type=Path, required=True, help="checkpoint (for torch)")
    p.add_argument("--engine-dir", type=Path, required=True, help="its iris-export ENGINE_DIR (for onnxruntime)")
    p.add_argument("--height", type=int, default=576)
    p.add_argument("--width", type=int, default=768)
    p.add_argument("--steps", type=int, default=1)
    p.add_argument("--threads", type=int, default=0, help="torch / onnxruntime intra-op threads; 0 = default")
    p.add_argument("--configs", default=",".join(CONFIGS), help="comma-separated subset of: " + ", ".join(CONFIGS))
    args = p.parse_args()
    rows = {}
    for name in [c.strip() for c in args.configs.split(",") if c.strip()]:
        payload = json.dumps({"model": str(args.model), "engine": str(args.engine_dir), "options": CONFIGS[name],
                              "height": args.height, "width": args.width, "steps": args.steps,
                              "threads": args.threads})
        done = subprocess.run([sys.executable, "-c", CHILD, payload], capture_output=True, text=True)
        if done.returncode:
            print(f"{name}: failed\n{done.stderr[-2000:]}")
            continue
        rows[name] = json.loads(done.stdout.strip().splitlines()[-1])
        print(f"{name}: done", flush=True)
    base = rows.get("torch", {}).get("peak_gib")
    print(f"\n{args.height}x{args.width}, {args.steps} step(s); peak resident memory per process, frame times")
    print(f"{'configuration':<22}{'peak GiB':>10}{'vs torch':>10}{'frame 1 s':>11}{'frame 2 s':>11}  settings")
    for name, r in rows.items():
        ratio = f"{r['peak_gib'] / base:.2f}x" if base else "n/a"
        print(f"{name:<22}{r['peak_gib']:>10.2f}{ratio:>10}{r['times'][0]:>11.1f}{r['times'][1]:>11.1f}  "
              f"{r['settings'] or ''}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
