"""``iris-eval``: zero-shot depth evaluation with the standard protocol, per step count and with/without text.

Protocol (Marigold's, via :mod:`iris_model.metrics`): predict affine-invariant depth at the model's
processing resolution, resize to the ground truth, fit scale and shift by least squares over the valid
pixels, clip to the dataset's depth range, then AbsRel, SqRel, RMSE, RMSE-log and delta1..3 per image,
averaged over images. Every configuration sees the same noise (seeded per image), so "text on" and
"text off" rows are paired comparisons.

    iris-eval MODEL_DIR --dataset nyuv2 --root /data/nyuv2 --captions nyu_captions.jsonl \
        --steps 1,2,4,10 --text both --out results/nyu
    iris-eval MODEL_DIR --dataset synthetic --split test --count 100 --text both --out results/synthetic

``--dataset synthetic`` scores the scene generator's seeded split (rendered on demand, captions from the scene
graph; ``--split``, ``--count``, ``--scene-seed``, ``--scene-size``), adds the metrics on the ambiguous pixels
(depth only the caption fixes), the metrics per scene family and, with ``--text both``, the gain from the
caption, as :mod:`iris_training.claims` measures it.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from torch.utils.data import Dataset
from tqdm import tqdm

from iris_model import IrisDepthPipeline, IrisError
from iris_model.metrics import METRIC_NAMES, compute_metrics, mean_metrics

from .data.io import read_captions
from .data.registry import DATASETS, depth_range, open_dataset
from .errors import ConfigError, DataError

logger = logging.getLogger(__name__)

HEADERS = {
    "abs_rel": "AbsRel ↓", "sq_rel": "SqRel ↓", "rmse": "RMSE ↓", "rmse_log": "RMSE log ↓",
    "delta1": "δ1 ↑", "delta2": "δ2 ↑", "delta3": "δ3 ↑",
}


def evaluate_pipeline(
    pipe: IrisDepthPipeline,
    dataset: Dataset,
    steps: Sequence[int] = (1,),
    text_modes: Sequence[str] = ("off",),
    *,
    max_samples: int | None = None,
    single_step: bool = False,
    processing_resolution: int | None = None,
    ensemble_size: int = 1,
    seed: int = 0,
    depth_limits: tuple[float, float] | None = None,
    progress: bool = False,
    regions: dict[str, list[dict[str, Any]]] | None = None,
) -> list[dict[str, Any]]:
    """One result row per (steps, text) with the image-averaged metrics and the image count ``n``.

    Samples that mark ``ambiguous`` pixels (the synthetic scenes: depth only the caption fixes) are also scored
    on those pixels with the whole-image alignment (:func:`iris_training.claims.score`); pass a dict as
    ``regions`` to receive those rows under ``regions["ambiguous"]``, and, for samples that name their scene
    ``family``, the whole-image metrics per family under ``regions["families"]`` (rows with a ``family`` key).
    """
    from .claims import score
    for mode in text_modes:
        if mode not in ("on", "off"):
            raise ConfigError(f"text mode must be on or off, got {mode!r}")
    min_depth, max_depth = depth_limits or depth_range(dataset)
    count = len(dataset) if max_samples is None else min(max_samples, len(dataset))  # type: ignore[arg-type]
    if count < 1:
        raise DataError("the evaluation set is empty")
    # A single-step model runs one step whatever is asked: each text mode once.
    configs = list(dict.fromkeys((1 if single_step else s, mode) for s in steps for mode in text_modes))
    per_image: dict[tuple[int, str], list[dict[str, float]]] = {c: [] for c in configs}
    per_image_ambiguous: dict[tuple[int, str], list[dict[str, float]]] = {c: [] for c in configs}
    per_family: dict[tuple[int, str, str], list[dict[str, float]]] = {}
    for i in tqdm(range(count), desc="evaluating", disable=not progress):
        sample = dataset[i]
        rgb = torch.as_tensor(np.asarray(sample["rgb"]), dtype=torch.float32)
        gt = np.asarray(sample["depth"], dtype=np.float32)
        valid = np.asarray(sample["valid"], dtype=bool)
        if not valid.any():
            logger.warning("%s: no valid ground truth, skipped", sample["key"])
            continue
        for n_steps, mode in configs:
            text = None
            if mode == "on":
                text = sample["caption"]
                if not text:
                    raise DataError(
                        f"{sample['key']} has no caption: run iris-caption on the dataset and pass --captions "
                        "(or use --text off)"
                    )
            out = pipe(
                rgb, text, num_inference_steps=n_steps, single_step=single_step, ensemble_size=ensemble_size,
                processing_resolution=processing_resolution, generator=torch.Generator().manual_seed(seed + i),
            )
            if "ambiguous" in sample:
                whole, ambiguous = score(out.depth[0], gt, valid, np.asarray(sample["ambiguous"], dtype=bool),
                                         min_depth, max_depth)
                if ambiguous is not None:
                    per_image_ambiguous[(n_steps, mode)].append(ambiguous)
            else:
                whole = compute_metrics(out.depth[0], gt, valid, min_depth=min_depth, max_depth=max_depth)
            per_image[(n_steps, mode)].append(whole)
            if "family" in sample:
                per_family.setdefault((n_steps, mode, str(sample["family"])), []).append(whole)
    rows = []
    for (n_steps, mode), metrics in per_image.items():
        if not metrics:
            raise DataError("no image with valid ground truth was evaluated")
        rows.append({"steps": n_steps, "text": mode, "n": len(metrics), **mean_metrics(metrics)})
    if regions is not None:
        regions["ambiguous"] = [
            {"steps": n_steps, "text": mode, "n": len(metrics), **mean_metrics(metrics)}
            for (n_steps, mode), metrics in per_image_ambiguous.items() if metrics
        ]
        if per_family:
            regions["families"] = [
                {"steps": n_steps, "text": mode, "family": family, "n": len(metrics), **mean_metrics(metrics)}
                for (n_steps, mode, family), metrics in sorted(per_family.items())
            ]
    return rows


def text_effect(rows: list[dict[str, Any]], ambiguous: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """Per step count with both text modes: how much lower AbsRel is with the caption (a fraction of the
    text-free AbsRel) and how many points higher delta1 is, on whole images and on ambiguous pixels."""
    def by_key(table: list[dict[str, Any]]) -> dict[tuple[int, str], dict[str, Any]]:
        return {(r["steps"], r["text"]): r for r in table}

    whole, amb = by_key(rows), by_key(ambiguous or [])
    out = []
    for steps in sorted({r["steps"] for r in rows}):
        if (steps, "on") not in whole or (steps, "off") not in whole:
            continue
        on, off = whole[(steps, "on")], whole[(steps, "off")]
        entry: dict[str, Any] = {
            "steps": steps,
            "abs_rel_reduction": 1.0 - on["abs_rel"] / off["abs_rel"] if off["abs_rel"] > 0 else None,
            "delta1_gain_points": 100.0 * (on["delta1"] - off["delta1"]),
        }
        if (steps, "on") in amb and (steps, "off") in amb:
            a_on, a_off = amb[(steps, "on")], amb[(steps, "off")]
            entry["ambiguous_delta1_gain_points"] = 100.0 * (a_on["delta1"] - a_off["delta1"])
            entry["ambiguous_abs_rel_reduction"] = (
                1.0 - a_on["abs_rel"] / a_off["abs_rel"] if a_off["abs_rel"] > 0 else None
            )
        out.append(entry)
    return out


def markdown_table(rows: list[dict[str, Any]], title: str | None = None) -> str:
    """The rows as a Markdown table (metrics with 4 decimals; AbsRel etc. as fractions, not percent); rows with
    a ``family`` get a column for it."""
    family = bool(rows) and "family" in rows[0]
    head = ["steps", "text", *(["family"] if family else []), "images", *(HEADERS[m] for m in METRIC_NAMES)]
    lines = [f"### {title}", ""] if title else []
    lines.append("| " + " | ".join(head) + " |")
    lines.append("|" + "|".join(":---:" if name in ("text", "family") else "---:" for name in head) + "|")
    for r in rows:
        cells = [str(r["steps"]), r["text"], *([r["family"]] if family else []), str(r["n"]),
                 *(f"{r[m]:.4f}" for m in METRIC_NAMES)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def text_effect_table(effect: list[dict[str, Any]]) -> str:
    """:func:`text_effect` as Markdown (reductions in percent, delta1 gains in points)."""
    def pct(value: float | None) -> str:
        return "n/a" if value is None else f"{100 * value:.1f} %"

    lines = ["### with text vs without", "",
             "| steps | AbsRel lower by | δ1 gain (points) | ambiguous: AbsRel lower by | ambiguous: δ1 gain |",
             "|---:|---:|---:|---:|---:|"]
    for e in effect:
        amb_gain = e.get("ambiguous_delta1_gain_points")
        lines.append(f"| {e['steps']} | {pct(e['abs_rel_reduction'])} | {e['delta1_gain_points']:.1f} | "
                     f"{pct(e.get('ambiguous_abs_rel_reduction'))} | "
                     f"{'n/a' if amb_gain is None else f'{amb_gain:.1f}'} |")
    return "\n".join(lines) + "\n"


def _parse_steps(text: str) -> list[int]:
    try:
        steps = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise ConfigError(f"--steps must be comma-separated integers, got {text!r}") from None
    if not steps:
        raise ConfigError("--steps is empty")
    return steps


def _parse_options(items: list[str]) -> dict[str, Any]:
    options = {}
    for item in items:
        if "=" not in item:
            raise ConfigError(f"--option {item!r} must be key=value")
        key, value = item.split("=", 1)
        options[key] = yaml.safe_load(value)
    return options


DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="iris-eval", description=__doc__.split("\n\n")[0])
    p.add_argument("model_dir", help="an Iris checkpoint (diffusers layout), e.g. a training run's model/")
    p.add_argument("--dataset", required=True, choices=sorted({*DATASETS, "synthetic"}),
                   help="evaluation set reader; synthetic = the scene generator's seeded split (no download)")
    p.add_argument("--root", help="the dataset's folder (official layout); for synthetic an optional sample cache")
    p.add_argument("--captions", help="captions.jsonl from iris-caption (needed for --text on/both)")
    p.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                   help="reader option, e.g. split_file=eigen_test_files_with_gt.txt (repeatable)")
    p.add_argument("--steps", default="1,2,4,10", help="denoising step counts, comma-separated (default 1,2,4,10)")
    p.add_argument("--text", choices=("on", "off", "both"), default="both")
    p.add_argument("--single-step", action="store_true",
                   help="deterministic one-step prediction (E2E-FT checkpoints); --steps is then ignored")
    p.add_argument("--max-samples", type=int, help="evaluate only the first N images")
    p.add_argument("--ensemble", type=int, default=1, help="ensemble size (Marigold protocol uses 1 or 10)")
    p.add_argument("--processing-resolution", type=int, help="default: the model's")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--dtype", choices=sorted(DTYPES), default="fp32")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", help="write OUT.json and OUT.md (default: print only)")
    g = p.add_argument_group("synthetic scenes (--dataset synthetic)")
    g.add_argument("--split", choices=("train", "val", "test"), default="test")
    g.add_argument("--count", type=int, default=100, help="scenes in the split (default 100)")
    g.add_argument("--scene-seed", type=int, default=None, help="the generator's seed (default: the splits' own)")
    g.add_argument("--scene-size", default="256x192", help="WIDTHxHEIGHT of the rendered scenes (default 256x192)")
    return p


def _open_synthetic(args: argparse.Namespace) -> tuple[Dataset, dict[str, Any]]:
    from .synthetic.dataset import DEFAULT_SEED
    from .synthetic.registered import open_synthetic

    try:
        width, height = (int(v) for v in args.scene_size.lower().split("x"))
    except ValueError:
        raise ConfigError(f"--scene-size must be WIDTHxHEIGHT, got {args.scene_size!r}") from None
    if args.count < 1:
        raise ConfigError(f"--count must be >= 1, got {args.count}")
    seed = DEFAULT_SEED if args.scene_seed is None else args.scene_seed
    dataset = open_synthetic(args.root or "", split=args.split, size=args.count, height=height, width=width,
                             seed=seed)
    return dataset, {"split": args.split, "count": args.count, "seed": seed, "width": width, "height": height}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        steps = _parse_steps(args.steps)
        text_modes = ["on", "off"] if args.text == "both" else [args.text]
        synthetic: dict[str, Any] | None = None
        if args.dataset == "synthetic":  # the generator writes its own captions
            dataset, synthetic = _open_synthetic(args)
        else:
            if not args.root:
                raise ConfigError(f"--root is required for --dataset {args.dataset}")
            captions = read_captions(args.captions) if args.captions else None
            if "on" in text_modes and captions is None:
                raise ConfigError("--text on/both needs --captions captions.jsonl (from iris-caption)")
            dataset = open_dataset(args.dataset, args.root, captions=captions, **_parse_options(args.option))
        pipe = IrisDepthPipeline.from_pretrained(args.model_dir, device=args.device, dtype=DTYPES[args.dtype])
        single_step = args.single_step or bool(pipe.extra_settings.get("single_step", False))
        regions: dict[str, list[dict[str, Any]]] = {}
        rows = evaluate_pipeline(
            pipe, dataset, steps, text_modes, max_samples=args.max_samples, single_step=single_step,
            processing_resolution=args.processing_resolution, ensemble_size=args.ensemble, seed=args.seed,
            progress=True, regions=regions,
        )
    except IrisError as exc:
        print(f"iris-eval: error: {exc}", file=sys.stderr)
        return 2
    lo, hi = depth_range(dataset)
    title = f"{args.dataset} ({rows[0]['n']} images, depth {lo:g}..{hi:g} m), {Path(args.model_dir).name}"
    table = markdown_table(rows, title)
    effect = text_effect(rows, regions.get("ambiguous"))
    if regions.get("ambiguous"):
        table += "\n" + markdown_table(regions["ambiguous"], "ambiguous pixels only (depth the caption fixes), "
                                        "whole-image alignment")
    if regions.get("families"):
        table += "\n" + markdown_table(regions["families"], "per scene family")
    if effect:
        table += "\n" + text_effect_table(effect)
    print(table)
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        record = {
            "model": str(args.model_dir), "dataset": args.dataset,
            "root": None if args.root is None else str(args.root), "min_depth": lo,
            "max_depth": hi if math.isfinite(hi) else None, "ensemble": args.ensemble, "single_step": single_step,
            "seed": args.seed, "results": rows,
        }
        if synthetic is not None:
            record["synthetic"] = synthetic
        if regions.get("ambiguous"):
            record["ambiguous"] = regions["ambiguous"]
        if regions.get("families"):
            record["families"] = regions["families"]
        if effect:
            record["text_effect"] = effect
        out.with_suffix(".json").write_text(json.dumps(record, indent=2) + "\n")
        out.with_suffix(".md").write_text(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
