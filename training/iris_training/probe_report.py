"""Where the ambiguous-region gain is lost: the caption-only pixels per probe type, against two ceilings.

    python -m iris_training.probe_report iris_model/default_model --split val --count 100

Over the scenes of a synthetic split that hold an ambiguity probe (:mod:`iris_training.synthetic.ambiguity`),
grouped by the probes each holds (``pair``, ``backdrop`` or both), delta1 and AbsRel on the ambiguous pixels,
after the whole image's least-squares alignment (:func:`iris_training.claims.score`, the claims protocol), of:

- the model with the scene's caption and with empty text (its default steps; the gain is the difference);
- ``target``: the true depth normalized as the training target is (:func:`~iris_training.targets.normalize_depth`
  with ``--quantile``; Marigold's 2nd / 98th percentile clip by default), a ceiling for a model trained on it;
- ``VAE round trip``: that target encoded and decoded by the model's VAE (in the model's depth encoding), what
  its decoder shows from the latent its encoder gives (a ceiling for the latent target; E2E-FT can reach past it).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from iris_model import IrisDepthPipeline
from iris_model.depth_encoding import decode_depth, encode_depth

from .claims import score
from .synthetic.dataset import generate_sample
from .synthetic.registered import KeyedSynthetic
from .targets import normalize_depth

ROWS = ("caption", "empty text", "target", "VAE round trip")


def _ceilings(vae: torch.nn.Module, depth: np.ndarray, valid: np.ndarray, quantile: float, log_scale: float = 0.0
              ) -> tuple[np.ndarray, np.ndarray]:
    """The normalized target and its VAE round trip, ``[H, W]`` each (unitless, affine in depth).

    The round trip goes through the model's depth encoding (``depth_log_scale`` k, 0 = linear): the target is
    encoded as the decoder is trained to output it, and the decoded image is mapped back, as the pipeline does.
    """
    target = normalize_depth(torch.from_numpy(depth)[None], torch.from_numpy(valid)[None], quantile)
    with torch.no_grad():
        encoded = encode_depth((target + 1.0) / 2.0, log_scale) * 2.0 - 1.0
        image = encoded[:, None].expand(-1, 3, -1, -1)
        decoded = vae.decode(vae.encode(image).latent_dist.mode()).sample.mean(1)
        decoded = decode_depth(((decoded + 1.0) / 2.0).clamp(0.0, 1.0), log_scale) * 2.0 - 1.0
    return target[0].numpy(), decoded[0].numpy()


def report(model_dir: str, split: str, count: int, quantile: float = 0.02, seed: int = 0,
           height: int = 192, width: int = 256) -> dict[str, dict[str, dict[str, float]]]:
    """``{probes: {row: {"delta1", "abs_rel", "scenes"}}}`` over the first ``count`` scenes of ``split``."""
    pipe = IrisDepthPipeline.from_pretrained(model_dir)
    vae = pipe.components.vae
    lo, hi = KeyedSynthetic.min_depth, KeyedSynthetic.max_depth
    scores: dict[str, dict[str, list[dict[str, float]]]] = {}
    for i in range(count):
        s = generate_sample(split, i, height=height, width=width)
        if not s.ambiguous.any():
            continue
        key = "+".join(p for p in s.scene.probes if p in ("pair", "backdrop"))
        image = np.clip(s.rgb * 255.0 + 0.5, 0, 255).astype(np.uint8)
        preds = {
            "caption": pipe(image, s.caption, generator=torch.Generator().manual_seed(seed)).depth[0],
            "empty text": pipe(image, "", generator=torch.Generator().manual_seed(seed)).depth[0],
        }
        preds["target"], preds["VAE round trip"] = _ceilings(vae, s.depth, s.valid, quantile, pipe.depth_log_scale)
        for row, pred in preds.items():
            _, amb = score(pred, s.depth, s.valid, s.ambiguous, lo, hi)
            if amb is not None:
                scores.setdefault(key, {}).setdefault(row, []).append(amb)
    return {key: {row: {"delta1": float(np.mean([m["delta1"] for m in ms])),
                        "abs_rel": float(np.mean([m["abs_rel"] for m in ms])), "scenes": len(ms)}
                  for row, ms in rows.items()}
            for key, rows in sorted(scores.items())}


def markdown(result: dict[str, dict[str, dict[str, float]]]) -> str:
    lines = ["| probes | scenes | " + " | ".join(f"{r} δ1" for r in ROWS) + " | text gain (points) |",
             "|---|---:|" + "---:|" * (len(ROWS) + 1)]
    for key, rows in result.items():
        d1 = [rows[r]["delta1"] if r in rows else float("nan") for r in ROWS]
        gain = 100.0 * (d1[0] - d1[1])
        lines.append(f"| {key} | {rows[ROWS[0]]['scenes']} | " + " | ".join(f"{v:.3f}" for v in d1)
                     + f" | {gain:+.1f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("model_dir")
    p.add_argument("--split", choices=("train", "val", "test"), default="val")
    p.add_argument("--count", type=int, default=100, help="scenes of the split looked at (those with probes count)")
    p.add_argument("--quantile", type=float, default=0.02, help="the target's normalization quantile (0: min/max)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", type=Path, help="also write the figures as JSON")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    result = report(args.model_dir, args.split, args.count, args.quantile)
    print(markdown(result))
    if args.out:
        args.out.write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
