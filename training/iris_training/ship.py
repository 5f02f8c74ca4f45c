"""Copy a trained checkpoint into the package as the embedded default model (``iris_model/default_model``).

``python -m iris_training.ship runs/default_e2e_refine/model [--tiny-decoder DIR]`` stores the weights as float16
safetensors (half the size; they load back in float32), keeps the MiniLM text encoder as a reference to its
installed package, drops the training machine's paths from the configs, keeps the model's tiny decoder (or adds
the one given) in float32, and checks the result loads and fits the 50 MB budget. The model card (README.md) is
written by hand beside it.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import torch

from iris_model import IrisDepthPipeline
from iris_model.components import add_tiny_decoder
from iris_model.default_model import EMBEDDED_DIR

BUDGET_BYTES = 50 * 1024 * 1024


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", type=Path, help="trained checkpoint (pipeline layout)")
    parser.add_argument("--out", type=Path, default=EMBEDDED_DIR)
    parser.add_argument("--tiny-decoder", type=Path, default=None,
                        help="an AutoencoderTiny folder (iris_training.distill_decoder) to ship as tiny_decoder/")
    args = parser.parse_args(argv)
    pipe = IrisDepthPipeline.from_pretrained(args.model)
    card = args.out / "README.md"
    saved_card = card.read_text() if card.is_file() else None
    if args.out.exists():
        shutil.rmtree(args.out)
    pipe.save_pretrained(args.out, weights_dtype=torch.float16)  # the model's own tiny decoder stays float32
    if saved_card is not None:
        card.write_text(saved_card)
    if args.tiny_decoder is not None:
        add_tiny_decoder(args.out, args.tiny_decoder)
    for config in args.out.glob("*/config.json"):
        # diffusers records where the weights were loaded from: a path on the training machine, not the user's.
        data = json.loads(config.read_text())
        if data.pop("_name_or_path", None) is not None:
            config.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    size = sum(p.stat().st_size for p in args.out.rglob("*") if p.is_file())
    if size > BUDGET_BYTES:
        raise SystemExit(f"{args.out} is {size / 2**20:.1f} MB, over the 50 MB budget")
    IrisDepthPipeline.from_pretrained(args.out)
    print(f"default model written to {args.out} ({size / 2**20:.1f} MB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
