"""The Iris paper's claims, measured in miniature on the synthetic test split.

``python -m iris_training.claims --text-model runs/default_text/model --notext-model runs/default_notext/model
--text-run runs/default_text --notext-run runs/default_notext --out docs``

1. Text vs no text: AbsRel and delta1 of (a) the text-trained model with its caption, (b) the same model with
   empty text, (c) the same recipe trained without captions (empty text).
2. Steps: the same at 1, 2, 4, 10 and 25 DDIM steps.
3. Training: validation AbsRel against training steps for the text and the text-free run (read from the
   runs' TensorBoard logs).
4. Where text matters: the metrics on the ambiguous pixels alone (depth fixed by the caption only); the
   scale and shift are fitted on the whole image, as the protocol does, then scored on those pixels.

Writes ``claims.md`` (tables), ``claims.json`` and the plots ``claims_steps.png`` and ``claims_training.png``.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from iris_model import IrisDepthPipeline
from iris_model.metrics import align_scale_shift, compute_metrics, mean_metrics

logger = logging.getLogger(__name__)

STEPS = (1, 2, 4, 10, 25)
VARIANTS = {
    "a": ("text model, with caption", "text", True),
    "b": ("text model, empty text", "text", False),
    "c": ("text-free model, empty text", "notext", False),
}


def score(pred: np.ndarray, gt: np.ndarray, valid: np.ndarray, ambiguous: np.ndarray,
          min_depth: float, max_depth: float) -> tuple[dict[str, float], dict[str, float] | None]:
    """Protocol metrics on the whole image, and on the ambiguous pixels with the whole-image alignment."""
    whole = compute_metrics(pred, gt, valid, min_depth, max_depth)
    amb = valid & ambiguous
    if amb.sum() < 10:
        return whole, None
    aligned = align_scale_shift(pred, gt, valid)
    return whole, compute_metrics(aligned, gt, amb, min_depth, max_depth, align=False)


def evaluate(pipes: dict[str, IrisDepthPipeline], dataset: Any, steps: tuple[int, ...], count: int,
             seed: int) -> dict[str, dict[int, dict[str, dict[str, float]]]]:
    results: dict[str, dict[int, dict[str, list[dict[str, float]]]]] = {
        v: {s: {"all": [], "ambiguous": []} for s in steps} for v in VARIANTS
    }
    start = time.time()
    for i in range(count):
        sample = dataset[i]
        gt = np.asarray(sample["depth"], dtype=np.float64)
        valid = np.asarray(sample["valid"], dtype=bool)
        ambiguous = np.asarray(sample["ambiguous"], dtype=bool)
        rgb = torch.as_tensor(sample["rgb"])
        for variant, (_, model, with_text) in VARIANTS.items():
            if model not in pipes:
                continue
            text = sample["caption"] if with_text else ""
            for s in steps:
                depth = pipes[model](rgb, text, num_inference_steps=s,
                                     generator=torch.Generator().manual_seed(seed + i)).depth[0]
                whole, amb = score(depth, gt, valid, ambiguous, dataset.min_depth, dataset.max_depth)
                results[variant][s]["all"].append(whole)
                if amb is not None:
                    results[variant][s]["ambiguous"].append(amb)
        if (i + 1) % 10 == 0:
            logger.info("evaluated %d/%d test scenes (%.0f s)", i + 1, count, time.time() - start)
    return {
        v: {s: {region: (mean_metrics(rows) | {"n": len(rows)}) for region, rows in per.items() if rows}
            for s, per in by_steps.items()}
        for v, by_steps in results.items() if VARIANTS[v][1] in pipes
    }


def read_validation_curve(run_dir: Path, tag: str) -> list[tuple[int, float]]:
    """(step, value) of a scalar from a run's TensorBoard logs (``val/abs_rel_steps4``, say)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    points: dict[int, float] = {}
    for events in sorted(run_dir.rglob("events.out.tfevents.*")):
        acc = EventAccumulator(str(events))
        acc.Reload()
        if tag in acc.Tags().get("scalars", []):
            points.update({e.step: e.value for e in acc.Scalars(tag)})
    return sorted(points.items())


def _kept_reading(report: Path) -> list[str]:
    """The hand-written ``## Reading`` section of an existing report (kept when the tables are regenerated)."""
    if not report.is_file():
        return []
    kept: list[str] = []
    for line in report.read_text().splitlines():
        if line.startswith("## "):
            if kept:
                break
            if line.startswith("## Reading"):
                kept.append(line)
        elif kept:
            kept.append(line)
    return kept


def write_report(out: Path, table: dict[str, Any], curves: dict[str, list[tuple[int, float]]], meta: dict[str, Any]
                 ) -> None:
    import matplotlib

    matplotlib.use("Agg")
    out.mkdir(parents=True, exist_ok=True)
    (out / "claims.json").write_text(json.dumps({"meta": meta, "table": table, "curves": curves}, indent=2) + "\n")
    lines = [
        "# The Iris claims in miniature: what language buys a small diffusion depth model",
        "",
        f"Synthetic test split: {meta['count']} scenes at {meta['width']}x{meta['height']} "
        f"(seeded, generated on demand); metrics with the project's protocol (least-squares scale and shift per "
        f"image, depth range {meta['min_depth']}..{meta['max_depth']} m). Regenerate with:",
        "",
        "```bash",
        meta["command"],
        "```",
        "",
        *_kept_reading(out / "claims.md"),
    ]
    for region, title in (("all", "Whole image"), ("ambiguous", "Ambiguous regions only (depth fixed by the text)")):
        lines += [f"## {title}", "", "| variant | steps | AbsRel ↓ | δ1 ↑ | RMSE ↓ | n |", "|---|---|---|---|---|---|"]
        for v, (label, _, _) in VARIANTS.items():
            for s, per in table.get(v, {}).items():
                if region in per:
                    m = per[region]
                    lines.append(f"| ({v}) {label} | {s} | {m['abs_rel']:.4f} | {m['delta1']:.4f} | "
                                 f"{m['rmse']:.3f} | {m['n']} |")
        lines.append("")
    several_steps = len(meta["steps"]) > 1
    if several_steps or any(curves.values()):
        lines += ["## Plots", ""]
    if several_steps:
        lines += ["![metrics against steps](claims_steps.png)", ""]
    if any(curves.values()):
        lines += ["![validation AbsRel during training](claims_training.png)", ""]
    (out / "claims.md").write_text("\n".join(lines))
    if several_steps:
        _plot_steps(out, table)
    if any(curves.values()):
        _plot_curves(out, curves, meta["curve_tag"])


def _plot_steps(out: Path, table: dict[str, Any]) -> None:
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for ax, region in zip(axes, ("all", "ambiguous"), strict=True):
        for v, (label, _, _) in VARIANTS.items():
            if v not in table:
                continue
            xs = [s for s in table[v] if region in table[v][s]]
            ax.plot(xs, [table[v][s][region]["abs_rel"] for s in xs], marker="o", label=f"({v}) {label}")
        ax.set_xscale("log")
        ax.set_xticks(list(STEPS), [str(s) for s in STEPS])
        ax.set_xlabel("DDIM steps")
        ax.set_ylabel("AbsRel")
        ax.set_title("whole image" if region == "all" else "ambiguous regions")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "claims_steps.png", dpi=110)
    plt.close(fig)


def _plot_curves(out: Path, curves: dict[str, list[tuple[int, float]]], tag: str) -> None:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for name, pts in curves.items():
        if pts:
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker=".", label=name)
    ax.set_xlabel("training step")
    ax.set_ylabel(f"validation {tag.split('/')[-1]}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "claims_training.png", dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--text-model", type=Path, required=True)
    parser.add_argument("--notext-model", type=Path, default=None,
                        help="the caption-free twin (variant c); without it only (a) and (b) are measured")
    parser.add_argument("--text-run", type=Path, default=None, help="training run folder (for the curves)")
    parser.add_argument("--notext-run", type=Path, default=None)
    parser.add_argument("--count", type=int, default=100, help="test scenes")
    parser.add_argument("--steps", default=",".join(map(str, STEPS)))
    parser.add_argument("--height", type=int, default=96)
    parser.add_argument("--width", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--curve-tag", default="val/abs_rel_steps4", help="validation scalar of the runs' logs")
    parser.add_argument("--out", type=Path, default=Path("docs"))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.threads:
        torch.set_num_threads(args.threads)
    from .synthetic.registered import open_synthetic

    steps = tuple(int(s) for s in args.steps.split(","))
    dataset = open_synthetic("", split="test", size=args.count, height=args.height, width=args.width)
    pipes = {"text": IrisDepthPipeline.from_pretrained(args.text_model)}
    if args.notext_model is not None:
        pipes["notext"] = IrisDepthPipeline.from_pretrained(args.notext_model)
    table = evaluate(pipes, dataset, steps, args.count, args.seed)
    curves = {}
    for name, run in (("text run (val with captions)", args.text_run), ("text-free run", args.notext_run)):
        if run is not None:
            curves[name] = read_validation_curve(run, args.curve_tag)
    meta = {"count": args.count, "height": args.height, "width": args.width, "steps": steps,
            "min_depth": dataset.min_depth, "max_depth": dataset.max_depth, "curve_tag": args.curve_tag,
            "command": "python -m iris_training.claims " + " ".join(argv if argv is not None else sys.argv[1:])}
    write_report(args.out, table, curves, meta)
    print((args.out / "claims.md").read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
