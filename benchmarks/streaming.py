"""Benchmark: streaming depth (``DepthStream``) against independent frames, on held-out synthetic video.

For each mode and number of denoising steps, over the same ``--sequences`` held-out synthetic sequences
(``iris_training.synthetic.video``, ``--split`` test, or val for choosing settings: walk, pan, orbit and
turn-into-a-new-room in turn) of ``--frames`` frames each, with the embedded default model (or ``--model-dir``):

- ``off``: every frame on its own (the same seed each frame, as the node runs today), the model's per-frame
  [0, 1] depth;
- ``stream``: :class:`iris_model.streaming.DepthStream` with its defaults (diffusers' 0.9 / 0.1 latent blend,
  stable scale, fusion along the optical flow);
- with ``--ablations``, at the default steps only: ``renoise`` (partial re-noising instead of the blend),
  ``nowarm`` (no warm start), ``nofuse`` (no fusion: warm start and stable scale only), ``nomotion`` (fusion
  without motion compensation), ``shift`` (a global image shift instead of the optical flow);
- with ``--true-motion``: the default stream given the exact image motion (from the true depth and poses), a
  ceiling for any pose-blind motion estimate;
- with ``--pose``: metric depth from a simulated scan, filtered over time, and fused along the true camera
  motion (``sparse``, ``sparse+stream``, ``sparse+pose``; docs/streaming.md).

Scores per segment of a sequence (a turn's cut starts a new one), averaged over segments:
TAE (Video Depth Anything's, with the ground-truth poses, after one depth alignment per segment), AbsRel and
delta1 after per-frame alignment, and after one alignment for the whole segment; the frame-to-frame jumps of
the output's scale (``|log(s_t+1 / s_t)|`` of each frame's least-squares scale to the ground truth, pooled over
segments: median and 90th percentile; the mean is left out, as one segment the model gets inverted decides it);
ms per frame (wall clock, model included); the true depth's own TAE (the metric's floor: reprojection to
the nearest pixel at depth edges). Ratios against ``off`` at the same steps come from the same run;
``stream k`` vs ``off 2k`` compares the stream with twice the steps. The stream's bookkeeping (everything but
the model call) is printed as a share of the model time. The last line is ``TAE stream/off: <ratio>`` at
``--default-steps``.

    python benchmarks/streaming.py --sequences 2 --frames 8            # quick, under a minute
    nice python benchmarks/streaming.py --sequences 12 --frames 30 --ablations --out DIR --plot FIG.png
    python benchmarks/streaming.py --split val --sequences 8 --frames 30 --pose --pose-sweep "0.9,0.3,0.3 0.95,0.5,0.2"
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "training"))

#: The default stream given the exact image motion of the synthetic video (``--true-motion``): a ceiling for
#: any pose-blind motion estimate.
TRUE_MOTION = "stream(true motion)"
#: The stream variant whose relative depth ``sparse+stream`` fits to the scan, as the node's ``sparse_aligned``.
SPARSE_STREAM = "stream(sparse_aligned)"

ABLATIONS = {
    "renoise": {"warm_start": "renoise"},
    "nowarm": {"warm_start": "none"},
    "nofuse": {"depth_smoothing": 0.0, "static_smoothing": 0.0},
    "nomotion": {"motion_compensation": "none"},
    "shift": {"motion_compensation": "shift"},
}


def true_flow(prev, cur) -> np.ndarray:
    """The exact backward image motion from frame ``cur`` to frame ``prev`` of a synthetic sequence:
    ``[H, W, 2]`` float32 ``(dx, dy)`` (:func:`iris_model.streaming.image_flow`'s convention), from ``cur``'s true
    depth and the two true poses (back-project, move into ``prev``'s camera, project); NaN where ``cur`` has no
    true depth or the point is behind ``prev``'s camera. Occlusions are not removed: a pixel that ``prev`` saw
    behind something still points there (the stream's agreement test leaves such pixels alone)."""
    k = np.asarray(cur.intrinsics, dtype=np.float64)
    h, w = cur.depth.shape
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
    z = np.where(cur.valid & (cur.depth > 0), cur.depth, np.nan)
    pts = np.stack([(xs - k[0, 2]) / k[0, 0] * z, (ys - k[1, 2]) / k[1, 1] * z, z], axis=-1)
    t = np.linalg.inv(prev.pose) @ cur.pose  # cur camera -> prev camera
    q = pts @ t[:3, :3].T + t[:3, 3]
    with np.errstate(invalid="ignore", divide="ignore"):
        ahead = q[..., 2] > 1e-6
        u = np.where(ahead, k[0, 0] * q[..., 0] / q[..., 2] + k[0, 2], np.nan)
        v = np.where(ahead, k[1, 1] * q[..., 1] / q[..., 2] + k[1, 2], np.nan)
    return np.stack([u - xs, v - ys], axis=-1).astype(np.float32)


def _run_mode(pipe, mode: str, steps: int, frames, seed: int, resolution: int | None, overrides: dict | None = None):
    """Depth per frame of one sequence in one mode (``off``, or a stream with ``overrides`` of its
    :class:`StreamConfig`; ``TRUE_MOTION``: the default stream given the exact image motion, :func:`true_flow`);
    (depths, ms per frame, bookkeeping s, model s)."""
    import torch

    from iris_model.streaming import DepthStream, StreamConfig

    stream = None if mode == "off" else DepthStream(pipe, StreamConfig(**(overrides or {})), seed=seed)
    depths, times, book, model = [], [], 0.0, 0.0
    for i, f in enumerate(frames):
        image = np.clip(f.rgb * 255.0 + 0.5, 0, 255).astype(np.uint8)
        flow = true_flow(frames[i - 1], f) if mode == TRUE_MOTION and i > 0 else None
        t0 = time.perf_counter()
        if stream is None:
            out = pipe(image, f.caption, num_inference_steps=steps, processing_resolution=resolution,
                       generator=torch.Generator().manual_seed(seed))
            depth = out.depth[0]
        else:
            frame = stream(image, f.caption, f.stamp_s, num_inference_steps=steps,
                           processing_resolution=resolution, flow=flow)
            depth = frame.depth
            stats = stream.stats()
            book += float(stats["bookkeeping_ms"]) / 1e3
            model += float(stats["model_ms"]) / 1e3
        times.append(time.perf_counter() - t0)
        depths.append(depth)
    return depths, times, book, model


def _segment_slices(frames) -> list[slice]:
    """The runs of consecutive frames with the same ``segment`` (a turn's cut starts a new one), in order."""
    out, start = [], 0
    while start < len(frames):
        end = start
        while end < len(frames) and frames[end].segment == frames[start].segment:
            end += 1
        out.append(slice(start, end))
        start = end
    return out


def _segment_scores(depths, frames) -> list[dict[str, float]]:
    """Scores of each segment. Predictions are clipped to the segment's ground-truth depth range (the
    Marigold protocol clips to the dataset's range): outdoors, where depth spans 1-80 m, a depth-space
    alignment can put the nearest pixels at or below zero, and the TAE's relative error there is unbounded."""
    from iris_model.metrics import sequence_metrics

    out = []
    for part in _segment_slices(frames):
        seg = frames[part]
        if len(seg) >= 2:
            gt = np.stack([f.depth for f in seg])
            valid = np.stack([f.valid for f in seg])
            lo, hi = float(gt[valid].min()), float(gt[valid].max())
            out.append(sequence_metrics(
                np.stack(depths[part]), gt, intrinsics=seg[0].intrinsics,
                poses=np.stack([f.pose for f in seg]), valid=valid, min_depth=0.999 * lo, max_depth=1.001 * hi,
            ))
    return out


def _sparse_and_pose(depths, frames, fuse: bool, config=None, filtered: bool = False) -> tuple[list[np.ndarray], float]:
    """Metric depth per frame from a least-squares fit to a simulated scan (16 rows of true depth, as the demo
    camera's ``sparse_depth``), optionally filtered over time as the node's ``stream`` mode does
    (``ScaleShiftFilter``, ``filtered``) or fused along the true camera motion (``PoseFusion(config)``, ``fuse``);
    and the fusion's total ms."""
    from iris_model.metrics import least_squares_scale_shift
    from iris_model.pose_fusion import PoseFusion
    from iris_model.streaming import ScaleShiftFilter

    fusion, scale_filter = PoseFusion(config), ScaleShiftFilter()
    out, ms = [], 0.0
    for d, f in zip(depths, frames, strict=True):
        if out and f.segment != frames[len(out) - 1].segment:
            fusion.reset()  # a cut, as a new description resets the stream
            scale_filter.reset()
        rows = np.linspace(8, d.shape[0] - 9, 16).astype(int)
        scan = np.zeros_like(f.valid)
        scan[rows] = f.valid[rows]
        scale, shift = least_squares_scale_shift(d, f.depth, scan)
        if filtered and scale > 0:  # the node rejects a frame whose fit is not > 0; here it keeps its own fit
            scale, shift, _ = scale_filter.update(scale, shift, f.stamp_s)
        metric = (scale * d.astype(np.float64) + shift).astype(np.float32)
        if fuse:
            t0 = time.perf_counter()
            metric = fusion(metric, f.intrinsics, f.pose, f.stamp_s)
            ms += (time.perf_counter() - t0) * 1e3
        out.append(metric)
    return out, ms


def per_frame_scale(depths, frames) -> np.ndarray:
    """Least-squares scale of each frame's prediction to its ground truth (meters per unit of output)."""
    from iris_model.metrics import least_squares_scale_shift, valid_mask

    scales = []
    for d, f in zip(depths, frames, strict=True):
        m = valid_mask(f.depth, f.valid, 1e-3, np.inf) & np.isfinite(d)
        scales.append(least_squares_scale_shift(d, f.depth, m)[0])
    return np.asarray(scales)


def output_scale(depth: np.ndarray, truth: np.ndarray) -> float:
    """s of the least-squares fit ``depth ~ s * truth + b`` over the pixels where both are finite and truth > 0
    (units of output per meter: the scale of the output in this frame, as the node's DDS test measures it);
    NaN with fewer than 2 such pixels."""
    from iris_model.metrics import least_squares_scale_shift

    m = np.isfinite(depth) & np.isfinite(truth) & (truth > 0)
    return least_squares_scale_shift(truth, depth, m)[0] if m.sum() >= 2 else float("nan")


def scale_jumps(depths, frames) -> np.ndarray:
    """Frame-to-frame jumps ``|log(s_t+1 / s_t)|`` of :func:`output_scale` within each segment, pooled: how much
    the output's scale moves between consecutive frames (0 = a steady scale). The absolute value of a scale is
    used: a frame the model gets inverted (a negative fit, e.g. a wall filling the view) still counts; a frame
    without a scale (NaN) leaves its two jumps out."""
    jumps = []
    for part in _segment_slices(frames):
        s = np.abs([output_scale(d, np.where(f.valid, f.depth, np.nan))
                    for d, f in zip(depths[part], frames[part], strict=True)])
        with np.errstate(divide="ignore", invalid="ignore"):
            j = np.abs(np.diff(np.log(s)))
        jumps.append(j[np.isfinite(j)])
    return np.concatenate(jumps) if jumps else np.zeros(0)


def _overrides(item: str) -> dict[str, float | bool | str]:
    """``"scale_relax=0.6,static_smoothing=0.8"`` -> StreamConfig overrides (numbers, true/false, or text)."""
    from dataclasses import fields

    from iris_model.streaming import StreamConfig

    names = {f.name for f in fields(StreamConfig)}
    out: dict[str, float | bool | str] = {}
    for pair in item.split(","):
        key, sep, value = pair.partition("=")
        if not sep or key not in names:
            raise ValueError(f"{pair!r} is not name=value with a StreamConfig field name ({', '.join(sorted(names))})")
        try:
            out[key] = float(value)
        except ValueError:
            out[key] = {"true": True, "false": False}.get(value.lower(), value)
    StreamConfig(**out)  # validated here, not after the video runs
    return out


def room_jumps(pipe, variants: dict[str, dict], seed: int, steps: int) -> dict[str, np.ndarray]:
    """Scale jumps of ``off`` and of each stream (``variants``: name -> StreamConfig overrides) in the demo camera's
    room: a static camera, two balls moving, 10 frames at 10 Hz from t = 5 s (later than the frames any test uses),
    128x96, one description."""
    import torch

    from iris_model.streaming import DepthStream, StreamConfig
    from iris_ros.demo_camera import SyntheticScene

    scene, text = SyntheticScene(128, 96), "a room with two balls"
    frames = [scene.render(5.0 + 0.4 * i) for i in range(10)]
    out = {}
    for name, overrides in {"off": None, **variants}.items():
        stream = None if overrides is None else DepthStream(pipe, StreamConfig(**overrides), seed=seed)
        scales = []
        for i, (rgb, truth) in enumerate(frames):
            if stream is None:
                depth = pipe(rgb, text, num_inference_steps=steps,
                             generator=torch.Generator().manual_seed(seed)).depth[0]
            else:
                depth = stream(rgb, text, 0.1 * i, num_inference_steps=steps).depth
            scales.append(abs(output_scale(depth, truth)))
        out[name] = np.abs(np.diff(np.log(scales)))
    return out


def jump_stats(jumps: np.ndarray) -> dict[str, float]:
    """Median and 90th percentile of pooled scale jumps (NaN when there are none)."""
    if jumps.size == 0:
        return {"scale_jump_median": float("nan"), "scale_jump_p90": float("nan")}
    return {"scale_jump_median": float(np.median(jumps)), "scale_jump_p90": float(np.percentile(jumps, 90))}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sequences", type=int, default=10)
    ap.add_argument("--frames", type=int, default=30)
    ap.add_argument("--steps", default="1,2,4", help="comma-separated denoising steps")
    ap.add_argument("--default-steps", type=int, default=None, help="steps of the last line (default: the model's)")
    ap.add_argument("--model-dir", default=None)
    ap.add_argument("--width", type=int, default=256)
    ap.add_argument("--height", type=int, default=192)
    ap.add_argument("--resolution", type=int, default=None, help="processing resolution (default: the model's)")
    ap.add_argument("--seed", type=int, default=0, help="the noise seed of every mode")
    ap.add_argument("--first-index", type=int, default=0, help="first held-out sequence index")
    ap.add_argument("--split", choices=("test", "val"), default="test",
                    help="held-out split of the video generator (val: for choosing settings)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--stream-sweep", default="",
                    help="extra streams at the default steps, space-separated StreamConfig overrides each, "
                         "e.g. 'scale_relax=0.6 static_smoothing=0.8,scale_relax=0.3'")
    ap.add_argument("--room", action="store_true",
                    help="also the demo camera's room (static camera, two balls moving; 10 frames at 10 Hz from "
                         "t = 5 s, 128x96): off's and each stream's scale jumps")
    ap.add_argument("--ablations", action="store_true", help="also the blend and no-warm-start streams")
    ap.add_argument("--no-double", action="store_true", help="skip off at 2k steps")
    ap.add_argument("--out", default=None, help="folder for results.json")
    ap.add_argument("--plot", default=None, help="PNG of per-frame scale and AbsRel over one sequence")
    ap.add_argument("--plot-sequence", type=int, default=0)
    ap.add_argument("--save-depths", action="store_true", help="with --out: every prediction (float16 .npz)")
    ap.add_argument("--true-motion", action="store_true",
                    help="also the default stream given the exact image motion from the true depth and poses "
                         "(a ceiling for the stream's own optical flow)")
    ap.add_argument("--pose", action="store_true",
                    help="also metric depth from a simulated 16-line scan per frame (sparse), the depths of the stream "
                         "the node runs under sparse_aligned with those fits filtered over time as it does "
                         "(sparse+stream), and sparse "
                         "fused along the true camera motion by PoseFusion (sparse+pose)")
    ap.add_argument("--pose-sweep", default="",
                    help="with --pose: also PoseFusion at these space-separated 'weight,tolerance[,nearer_tolerance]' "
                         "settings (nearer_tolerance left out: its default)")
    args = ap.parse_args(argv)
    if args.pose_sweep and not args.pose:
        ap.error("--pose-sweep needs --pose")
    try:
        stream_sweep = {f"stream({item})": _overrides(item) for item in args.stream_sweep.split()}
    except ValueError as exc:
        ap.error(f"--stream-sweep takes 'name=value,...' StreamConfig overrides: {exc}")
    from iris_model.pose_fusion import PoseFusionConfig

    try:
        settings = [tuple(map(float, item.split(","))) for item in args.pose_sweep.split()]
        if any(len(values) not in (2, 3) for values in settings):
            raise ValueError("two or three numbers each")
        sweep = [PoseFusionConfig(*values) for values in settings]
    except ValueError as exc:
        ap.error(f"--pose-sweep takes 'weight,tolerance[,nearer_tolerance]' settings: {exc}")

    import torch
    from iris_training.synthetic.video import generate_sequence

    from iris_model.default_model import default_model_dir
    from iris_model.pipeline import IrisDepthPipeline

    torch.set_num_threads(args.threads)
    pipe = IrisDepthPipeline.from_pretrained(args.model_dir or default_model_dir())
    steps_list = [int(s) for s in args.steps.split(",")]
    default_steps = args.default_steps or pipe.default_denoising_steps
    if default_steps not in steps_list:
        steps_list.append(default_steps)
    single_step = bool(pipe.extra_settings.get("single_step", False))
    if single_step:  # an E2E-FT model always runs one step: other step counts would repeat the same run
        steps_list, default_steps, args.no_double = [1], 1, True
        print("single-step model: every mode at 1 step (no warm start; the stream's scale and fusion only)")
    modes = ["off", "stream"]

    t0 = time.perf_counter()
    seqs = [generate_sequence(args.split, args.first_index + i, num_frames=args.frames, height=args.height,
                              width=args.width) for i in range(args.sequences)]
    gen_s = time.perf_counter() - t0
    print(f"{len(seqs)} sequences x {args.frames} frames ({', '.join(s.trajectory for s in seqs)}), "
          f"generated in {gen_s:.1f} s; model {args.model_dir or 'embedded default'}, "
          f"processing resolution {args.resolution or pipe.default_processing_resolution}", flush=True)

    from iris_model.streaming import SPARSE_FIT_SCALE_RELAX

    variants = {"stream": {}, **(ABLATIONS if args.ablations else {}), **stream_sweep}  # stream -> overrides
    if args.pose:  # the stream the node runs under sparse_aligned fits (iris_ros.processing.stream_config_for)
        variants[SPARSE_STREAM] = {"scale_relax": SPARSE_FIT_SCALE_RELAX}
    if args.true_motion:
        variants[TRUE_MOTION] = {}
    configs = [(m, k) for m in modes for k in steps_list]
    configs += [(m, default_steps) for m in variants if m != "stream"]
    if not args.no_double:
        configs += [("off", 2 * k) for k in steps_list if 2 * k not in steps_list and 2 * k <= 50]
    results: dict[str, dict[str, float]] = {}
    plot_data: dict[str, dict[str, list[float]]] = {}
    segments: dict[str, list[dict[str, float]]] = {}
    off_depths: list[list[np.ndarray]] = []  # off at the default steps, for --pose
    stream_depths: list[list[np.ndarray]] = []  # SPARSE_STREAM at the default steps, for --pose's sparse+stream
    for mode, steps in configs:
        scores, times, book, model = [], [], 0.0, 0.0
        saved, jumps = [], []
        for i, seq in enumerate(seqs):
            frames = list(seq.frames)
            depths, t, b, md = _run_mode(pipe, mode, steps, frames, args.seed, args.resolution, variants.get(mode))
            if mode in ("off", SPARSE_STREAM) and steps == default_steps:
                (off_depths if mode == "off" else stream_depths).append(depths)
            seg_scores = _segment_scores(depths, frames)
            jumps.append(scale_jumps(depths, frames))
            for s in seg_scores:
                s.update(sequence=i, trajectory=seq.trajectory, family=seq.scenes[0].family)
            scores += seg_scores
            saved.append(np.stack(depths).astype(np.float16))
            times += t
            book, model = book + b, model + md
            if i == args.plot_sequence and steps == default_steps:
                from iris_model.metrics import compute_metrics

                plot_data[mode] = {
                    "scale": per_frame_scale(depths, frames).tolist(),
                    "abs_rel_frame": [compute_metrics(d, f.depth, f.valid)["abs_rel"]
                                      for d, f in zip(depths, frames, strict=True)],
                }
        segments[f"{mode}@{steps}"] = scores
        if args.out and args.save_depths:
            Path(args.out).mkdir(parents=True, exist_ok=True)
            np.savez_compressed(Path(args.out) / f"depth_{mode}_{steps}.npz", *saved)
        metric_keys = ("tae", "abs_rel_frame", "abs_rel_seq", "delta1_frame", "delta1_seq")
        row = {k: float(np.mean([s[k] for s in scores])) for k in metric_keys}
        row["tae_median"] = float(np.median([s["tae"] for s in scores]))
        row["ms_per_frame"] = statistics.mean(times) * 1e3
        row.update(jump_stats(np.concatenate(jumps)))
        if model > 0:
            row["bookkeeping_share"] = book / model
            row["bookkeeping_ms"] = book / len(times) * 1e3
        results[f"{mode}@{steps}"] = row
        print(f"  {mode:8s} {steps:2d} steps: TAE {row['tae']:.3f} (median {row['tae_median']:.3f})  "
              f"AbsRel frame {row['abs_rel_frame']:.4f} seq {row['abs_rel_seq']:.4f}  "
              f"d1 frame {row['delta1_frame']:.3f} seq {row['delta1_seq']:.3f}  scale jump median "
              f"{row['scale_jump_median']:.4f} p90 {row['scale_jump_p90']:.4f}  {row['ms_per_frame']:.0f} ms/frame",
              flush=True)

    # The metric's floor: the true depth itself still scores a TAE (nearest-pixel reprojection at depth edges).
    truth_tae = [s["tae"] for seq in seqs for s in _segment_scores([f.depth for f in seq.frames], list(seq.frames))]
    floor = {"tae": float(np.mean(truth_tae)), "tae_median": float(np.median(truth_tae))}
    print(f"  the true depth itself: TAE {floor['tae']:.3f} (median {floor['tae_median']:.3f}), the metric's floor")

    print()
    if args.pose:
        pose_ms = 0.0
        runs = [("sparse", None), ("sparse+stream", None), ("sparse+pose", None)]
        runs += [(f"sparse+pose({c.weight:g}, {c.tolerance:g}, {c.nearer_tolerance:g})", c) for c in sweep]
        for name, config in runs:
            scores, jumps = [], []
            for seq, off, streamed in zip(seqs, off_depths, stream_depths, strict=True):
                depths = streamed if name == "sparse+stream" else off
                metric, ms = _sparse_and_pose(depths, list(seq.frames), fuse=name.startswith("sparse+pose"),
                                              config=config, filtered=name == "sparse+stream")
                scores += _segment_scores(metric, list(seq.frames))
                jumps.append(scale_jumps(metric, list(seq.frames)))
                if name == "sparse+pose":
                    pose_ms += ms
            key = f"{name}@{default_steps}"
            segments[key] = scores
            results[key] = {k: float(np.mean([s[k] for s in scores])) for k in
                            ("tae", "abs_rel_frame", "abs_rel_seq", "delta1_frame", "delta1_seq")}
            results[key]["tae_median"] = float(np.median([s["tae"] for s in scores]))
            source = SPARSE_STREAM if name == "sparse+stream" else "off"
            results[key]["ms_per_frame"] = results[f"{source}@{default_steps}"]["ms_per_frame"]
            results[key].update(jump_stats(np.concatenate(jumps)))
        n_frames = sum(len(s.frames) for s in seqs)
        results[f"sparse+pose@{default_steps}"]["fusion_ms"] = pose_ms / n_frames
    _table(["mode", "steps", "TAE (mean)", "TAE (median)", "AbsRel (per-frame aligned)", "AbsRel (sequence aligned)",
            "d1 (per-frame)", "d1 (sequence)", "scale jump (median)", "scale jump (p90)", "ms/frame"],
           [[*key.split("@"), f"{r['tae']:.3f}", f"{r['tae_median']:.3f}", f"{r['abs_rel_frame']:.4f}",
             f"{r['abs_rel_seq']:.4f}", f"{r['delta1_frame']:.3f}", f"{r['delta1_seq']:.3f}",
             f"{r['scale_jump_median']:.4f}", f"{r['scale_jump_p90']:.4f}",
             f"{r['ms_per_frame']:.0f}"] for key, r in results.items()])
    ratios: dict[str, dict[str, float]] = {}
    for key, r in results.items():
        mode, k = key.split("@")[0], int(key.split("@")[1])
        if mode == "off" or mode.startswith("sparse"):
            continue
        off, double = results[f"off@{k}"], results.get(f"off@{2 * k}")
        ratios[key] = {
            "tae": r["tae"] / off["tae"],
            "tae_median": r["tae_median"] / off["tae_median"],
            "abs_rel_seq": r["abs_rel_seq"] / off["abs_rel_seq"],
            "abs_rel_frame": r["abs_rel_frame"] / off["abs_rel_frame"],
            "scale_jump_median": r["scale_jump_median"] / off["scale_jump_median"],
            "scale_jump_p90": r["scale_jump_p90"] / off["scale_jump_p90"],
            "abs_rel_frame_vs_off_2k": r["abs_rel_frame"] / double["abs_rel_frame"] if double else float("nan"),
            "bookkeeping_share": r.get("bookkeeping_share", float("nan")),
        }
    _table(["mode", "steps", "TAE / off", "median TAE / off", "AbsRel seq / off", "AbsRel frame / off",
            "scale jump median / off", "scale jump p90 / off", "AbsRel frame / off at 2k", "bookkeeping / model time"],
           [[*key.split("@"), *(f"{q[k]:.3f}" for k in ("tae", "tae_median", "abs_rel_seq", "abs_rel_frame",
                                                         "scale_jump_median", "scale_jump_p90",
                                                         "abs_rel_frame_vs_off_2k")),
             f"{100 * q['bookkeeping_share']:.2f} %"] for key, q in ratios.items()])

    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "results.json").write_text(json.dumps({
            "args": vars(args), "trajectories": [s.trajectory for s in seqs], "results": results, "truth": floor,
            "ratios": ratios, "plot": plot_data, "segments": segments}, indent=2) + "\n")
    if args.plot and plot_data:
        _plot(Path(args.plot), plot_data, seqs[args.plot_sequence], default_steps)
    if args.pose:
        plain, fused = results[f"sparse@{default_steps}"], results[f"sparse+pose@{default_steps}"]
        print(f"sparse+pose / sparse: TAE {fused['tae'] / plain['tae']:.3f} (median "
              f"{fused['tae_median'] / plain['tae_median']:.3f}), AbsRel frame "
              f"{fused['abs_rel_frame'] / plain['abs_rel_frame']:.3f}, "
              f"seq {fused['abs_rel_seq'] / plain['abs_rel_seq']:.3f}; "
              f"fusion {fused['fusion_ms']:.1f} ms/frame = "
              f"{100 * fused['fusion_ms'] / plain['ms_per_frame']:.2f} % of off's frame time")
        filt = results[f"sparse+stream@{default_steps}"]
        print(f"sparse+stream / sparse: scale jump median "
              f"{filt['scale_jump_median'] / plain['scale_jump_median']:.3f}, "
              f"p90 {filt['scale_jump_p90'] / plain['scale_jump_p90']:.3f}; AbsRel frame "
              f"{filt['abs_rel_frame'] / plain['abs_rel_frame']:.3f}")
    if args.room:
        room = room_jumps(pipe, variants, args.seed, default_steps)
        print("demo camera's room (static camera, balls moving), scale jumps |log(s_t+1 / s_t)|:")
        for name, j in room.items():
            print(f"  {name:8s} mean {j.mean():.4f} median {np.median(j):.4f}  "
                  f"({j.mean() / room['off'].mean():.2f}x / {np.median(j) / np.median(room['off']):.2f}x off)")
    print(f"TAE stream/off: {ratios[f'stream@{default_steps}']['tae']:.3f}")
    return 0


def _table(header: list[str], rows: list[list[str]]) -> None:
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows:
        print("| " + " | ".join(row) + " |")
    print()


def _plot(path: Path, data: dict[str, dict[str, list[float]]], seq, steps: int) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no plot")
        return
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.4))
    t = [f.stamp_s for f in seq.frames]
    for mode, d in data.items():
        scale = np.asarray(d["scale"])
        axes[0].plot(t, scale / scale[0], marker=".", label=mode)
        axes[1].plot(t, d["abs_rel_frame"], marker=".", label=mode)
    axes[0].set(xlabel="time (s)", ylabel="per-frame scale / first frame's",
                title=f"output scale ({seq.trajectory}, {seq.rate_hz:.0f} Hz, {steps} steps)")
    axes[1].set(xlabel="time (s)", ylabel="AbsRel (per-frame aligned)", title="per-frame accuracy")
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    print(f"plot: {path}")


if __name__ == "__main__":
    raise SystemExit(main())
