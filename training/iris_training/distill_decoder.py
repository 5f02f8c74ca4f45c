"""Distil a tiny depth decoder (diffusers' ``AutoencoderTiny``, TAESD's architecture) from a model's own VAE.

    python -m iris_training.distill_decoder MODEL_DIR --out RUN_DIR --steps 2000

The teacher is the checkpoint's VAE decoder; the student is the decoder half of an ``AutoencoderTiny`` that
reads the same (scaled, UNet-space) latents. Training data are the VAE encoder's latents of synthetic RGB images
and of synthetic depth maps (normalized to [-1, 1] per image as Marigold trains, repeated to 3 channels), the
latter lightly perturbed with Gaussian noise so the student also sees latents near the depth manifold, as a
denoiser's output is. A bank of random latent crops is decoded by the teacher once (``--pairs``; the teacher's
decode would otherwise be most of each step's cost); each step fits the student to the teacher's 3-channel
output (L1) and to its depth read-out (channel mean, clipped; L1, weighted) on a batch drawn from it.

``--target depth`` then fine-tunes a distilled student past its teacher (``--init``): the UNet stays frozen, and
the student learns to decode the checkpoint's own predicted latents (with the caption and, for
``--empty-fraction`` of a batch, with empty text) into the scenes' ground truth, with E2E-FT's affine-invariant
depth loss (L1 after a least-squares scale and shift, MiDaS's gradient term) against the unclipped normalized
depth. This is E2E-FT with the decoder as the trained part: the VAE decoder's round trip caps what a distilled
copy of it can show, and a decoder tuned on the real target need not keep that cap. Validation then reports
AbsRel against the ground truth (``val_abs_rel``) instead of the distance to the teacher.

Written to ``RUN_DIR``: ``tiny_decoder/`` (the student as a loadable ``AutoencoderTiny``, safetensors; its
encoder is unused and kept minimal), ``state/`` (optimizer and progress, pickle-free, for ``--resume``) and
``log.jsonl`` (loss and the validation error per save: the depth error against the teacher, or with ``--target
depth`` ``val_abs_rel``; the teacher's and the untrained student's AbsRel go to the log at the start). The VAE
latents are cached in ``RUN_DIR/latents.safetensors``, the teacher's crops in ``teacher_targets.safetensors``, the
model's own latents in ``model_latents.safetensors`` (with empty text: ``model_empty_latents.safetensors``; for
validation ``val_model_latents.safetensors``). Add the result to a checkpoint with
:func:`iris_model.components.add_tiny_decoder`.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

from iris_model.components import decode_to_depth, make_tiny_decoder
from iris_model.loading import load_torch_module, read_model_index
from iris_model.metrics import compute_metrics

from .losses import affine_invariant_loss, ambiguous_pixel_weight
from .state import load_optimizer, save_optimizer
from .targets import normalize_depth

logger = logging.getLogger(__name__)


def encode_bank(vae: Any, dataset: Any, count: int, batch: int = 4) -> tuple[torch.Tensor, torch.Tensor]:
    """(depth latents, RGB latents) ``[count, C, h, w]`` each: VAE latent mode times the scaling factor."""
    sf = float(vae.config.scaling_factor)
    depth_z, rgb_z = [], []
    start = time.time()
    for lo in range(0, count, batch):
        samples = [dataset[i] for i in range(lo, min(lo + batch, count))]
        rgb = torch.stack([s["rgb"] for s in samples]) * 2 - 1
        depth = normalize_depth(torch.stack([s["depth"] for s in samples]), torch.stack([s["valid"] for s in samples]))
        depth = depth[:, None].repeat(1, 3, 1, 1)
        with torch.inference_mode():
            depth_z.append(vae.encode(depth).latent_dist.mode() * sf)
            rgb_z.append(vae.encode(rgb).latent_dist.mode() * sf)
        if lo // batch % 10 == 0:
            logger.info("encoded %d/%d scenes (%.0f s)", min(lo + batch, count), count, time.time() - start)
    return torch.cat(depth_z), torch.cat(rgb_z)


def cached_bank(path: Path, count: int, make: Callable[[], dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """The first ``count`` rows of the tensors saved in ``path`` when it holds that many, else ``make()``'s,
    saved there for the next run (latents are the slow part of a restart)."""
    if path.is_file():
        bank = load_file(str(path))
        if min(v.shape[0] for v in bank.values()) >= count:
            return {k: v[:count] for k, v in bank.items()}
    bank = {k: v.contiguous() for k, v in make().items()}
    save_file(bank, str(path))
    return bank


def load_or_encode(path: Path, vae: Any, dataset: Any, count: int) -> dict[str, torch.Tensor]:
    """``{"depth", "rgb"}`` VAE latents of ``count`` scenes (:func:`encode_bank`), cached in ``path``."""
    return cached_bank(path, count, lambda: dict(zip(("depth", "rgb"), encode_bank(vae, dataset, count), strict=True)))


def model_latents(model_dir: Path, dataset: Any, count: int, caption: bool = True) -> torch.Tensor:
    """``[count, C, h, w]``: the checkpoint's own final depth latents (its default steps, with the caption or,
    with ``caption=False``, with empty text) on ``count`` scenes: what the tiny decoder reads in use, which need
    not lie where the VAE encoder's do."""
    from iris_model import IrisDepthPipeline

    pipe = IrisDepthPipeline.from_pretrained(model_dir)
    out, start = [], time.time()
    for i in range(count):
        s = dataset[i]
        # Processed at the image's own size, so that the decoded depth matches the ground truth pixel for pixel.
        out.append(pipe(s["rgb"], s["caption"] if caption else None, output_latent=True,
                        processing_resolution=max(s["rgb"].shape[-2:]),  # rgb is [3, H, W]
                        generator=torch.Generator().manual_seed(i)).latent.float())
        if i % 50 == 0:
            logger.info("model latents %d/%d (%.0f s)", i + 1, count, time.time() - start)
    return torch.cat(out)


def load_or_predict(path: Path, model_dir: Path, dataset: Any, count: int, caption: bool = True) -> torch.Tensor:
    """The model's own latents of ``count`` scenes (:func:`model_latents`), cached in ``path``."""
    return cached_bank(path, count, lambda: {"model": model_latents(model_dir, dataset, count, caption)})["model"]


def ground_truth(dataset: Any, count: int) -> dict[str, torch.Tensor]:
    """The first ``count`` scenes' ground truth: ``depth`` in meters and ``target`` (normalized to [-1, 1] by its
    valid minimum and maximum, unclipped) ``[count, H, W]`` float32, ``valid`` and ``ambiguous`` (depth only
    the caption fixes; all False where the dataset marks none) bool."""
    samples = [dataset[i] for i in range(count)]
    depth = torch.stack([torch.as_tensor(s["depth"], dtype=torch.float32) for s in samples])
    valid = torch.stack([torch.as_tensor(s["valid"], dtype=torch.bool) for s in samples])
    ambiguous = torch.stack([torch.as_tensor(s["ambiguous"], dtype=torch.bool) if "ambiguous" in s
                             else torch.zeros_like(valid[0]) for s in samples])
    return {"depth": depth, "target": normalize_depth(depth, valid, quantile=0.0), "valid": valid,
            "ambiguous": ambiguous}


def validation_abs_rel(decoder: Any, latents: torch.Tensor, truth: dict[str, torch.Tensor]) -> float:
    """Mean AbsRel (after the per-image least-squares alignment, as ``iris-eval`` scores) of ``decoder``'s depth
    read-out of ``latents`` against the ground truth in meters."""
    scores = []
    with torch.inference_mode():
        for z, gt, valid in zip(latents, truth["depth"], truth["valid"], strict=True):
            depth = decode_to_depth(decoder(z[None]))[0, 0]
            scores.append(compute_metrics(depth.numpy(), gt.numpy(), valid.numpy())["abs_rel"])
    return float(sum(scores) / len(scores))


def depth_loss(student: Any, bank: dict[str, torch.Tensor], truth: dict[str, torch.Tensor], batch: int,
               empty_fraction: float, gradient_weight: float, ambiguous_weight: float,
               gen: torch.Generator) -> torch.Tensor:
    """``--target depth``'s loss on a batch of whole scenes: the student's unclamped read-out (channel mean, as
    the E2E-FT trainer keeps gradients) of the model's latents, against the scenes' normalized ground truth."""
    pick = torch.randint(truth["target"].shape[0], (batch,), generator=gen)
    empty = torch.rand(batch, generator=gen) < empty_fraction
    z = torch.where(empty[:, None, None, None], bank["model_empty"][pick], bank["model"][pick])
    pred = student_decode(student, z).mean(1)
    weight = None
    if ambiguous_weight != 1.0:
        weight = ambiguous_pixel_weight(truth["ambiguous"][pick], ambiguous_weight, captioned=~empty)
    return affine_invariant_loss(pred, truth["target"][pick], truth["valid"][pick], gradient_weight,
                                 pixel_weight=weight)


def teacher_decode(vae: Any, latents: torch.Tensor) -> torch.Tensor:
    with torch.inference_mode():
        return vae.decode(latents / float(vae.config.scaling_factor), return_dict=False)[0]


def student_decode(student: Any, latents: torch.Tensor) -> torch.Tensor:
    """The student's 3-channel output for (scaled, UNet-space) ``latents``, divided by its own ``scaling_factor``
    first as the pipeline's tiny-decoder path does (1.0 for the decoders made here)."""
    return student.decode(latents / float(student.config.scaling_factor), return_dict=False)[0]


def draw_batch(bank: dict[str, torch.Tensor], batch: int, crop: int, rgb_fraction: float, noise: float,
               gen: torch.Generator, model_fraction: float = 0.0) -> torch.Tensor:
    """Random latent crops ``[batch, C, crop, crop]``: depth latents (noise-perturbed), some RGB latents and,
    with ``model_fraction``, the model's own predicted latents (``bank["model"]``)."""
    out = []
    for _ in range(batch):
        u = float(torch.rand((), generator=gen))
        kind = "rgb" if u < rgb_fraction else "model" if u < rgb_fraction + model_fraction else "depth"
        pool = bank[kind]
        i = int(torch.randint(pool.shape[0], (), generator=gen))
        z = pool[i]
        h, w = z.shape[1:]
        ch, cw = min(crop, h), min(crop, w)
        y = int(torch.randint(h - ch + 1, (), generator=gen))
        x = int(torch.randint(w - cw + 1, (), generator=gen))
        z = z[:, y : y + ch, x : x + cw]
        if kind == "depth" and noise > 0:
            z = z + torch.randn(z.shape, generator=gen) * noise * float(torch.rand((), generator=gen))
        out.append(z)
    return torch.stack(out)


def validation_error(student: Any, vae: Any, latents: torch.Tensor) -> float:
    """Mean absolute difference of the depth read-outs (in [0, 1]) of student and teacher on full latents."""
    with torch.inference_mode():
        errors = [
            (decode_to_depth(student_decode(student, z[None]))
             - decode_to_depth(teacher_decode(vae, z[None]))).abs().mean()
            for z in latents
        ]
    return float(torch.stack(errors).mean())


def load_or_build_targets(path: Path, vae: Any, bank: dict[str, torch.Tensor], count: int, crop: int,
                          rgb_fraction: float, noise: float, seed: int, chunk: int = 16,
                          model_fraction: float = 0.0) -> dict[str, torch.Tensor]:
    """``count`` latent crops and the teacher's decoded images of them, computed once (the teacher's decode is
    most of the cost of a step) and cached in ``path``; targets stored in float16."""
    if path.is_file():
        cached = load_file(str(path))
        if cached["latents"].shape[0] >= count and cached["latents"].shape[-1] == crop:
            return {k: v[:count] for k, v in cached.items()}
    gen = torch.Generator().manual_seed(seed)
    latents, targets = [], []
    start = time.time()
    for lo in range(0, count, chunk):
        z = draw_batch(bank, min(chunk, count - lo), crop, rgb_fraction, noise, gen, model_fraction)
        latents.append(z)
        targets.append(teacher_decode(vae, z).half())
        if lo // chunk % 10 == 0:
            logger.info("teacher decoded %d/%d crops (%.0f s)", lo + z.shape[0], count, time.time() - start)
    out = {"latents": torch.cat(latents).contiguous(), "targets": torch.cat(targets).contiguous()}
    save_file(out, str(path))
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("model_dir", type=Path, help="checkpoint whose VAE is the teacher")
    p.add_argument("--out", type=Path, required=True, help="run folder (resumable)")
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--crop", type=int, default=12, help="latent crop side (pixels = crop * VAE stride)")
    p.add_argument("--pairs", type=int, default=1600, help="latent crops decoded by the teacher once, trained on")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--width", type=int, default=32, help="decoder channel width (all blocks)")
    p.add_argument("--blocks", default="3,3,3,1", help="AutoencoderTiny num_decoder_blocks")
    p.add_argument("--scenes", type=int, default=400, help="synthetic training scenes encoded")
    p.add_argument("--val-scenes", type=int, default=16)
    p.add_argument("--image-height", type=int, default=192)
    p.add_argument("--image-width", type=int, default=256)
    p.add_argument("--rgb-fraction", type=float, default=0.2)
    p.add_argument("--latent-noise", type=float, default=0.3, help="largest std of the noise on depth latents")
    p.add_argument("--depth-weight", type=float, default=2.0)
    p.add_argument("--save-every", type=int, default=100)
    p.add_argument("--cache", default="", help="synthetic sample cache folder")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--resume", action="store_true", help="continue from RUN_DIR/state")
    p.add_argument("--init", type=Path, default=None, help="start from this AutoencoderTiny folder (fine-tuning)")
    p.add_argument("--model-fraction", type=float, default=0.0,
                   help="share of crops taken from the checkpoint's own predicted latents (validated on those)")
    p.add_argument("--target", choices=("teacher", "depth"), default="teacher",
                   help="teacher: distil the VAE decoder; depth: fine-tune on the ground truth through the model's "
                        "own latents (E2E-FT of the decoder, UNet frozen; start from a distilled one with --init)")
    p.add_argument("--empty-fraction", type=float, default=0.3,
                   help="--target depth: share of a batch decoded from the model's empty-text latents")
    p.add_argument("--gradient-weight", type=float, default=0.5,
                   help="--target depth: weight of MiDaS's gradient-matching term")
    p.add_argument("--ambiguous-weight", type=float, default=1.0,
                   help="--target depth: loss weight of caption-only pixels in captioned samples")
    args = p.parse_args(argv)
    if not 0.0 <= args.empty_fraction <= 1.0:
        p.error(f"--empty-fraction must be in [0, 1], got {args.empty_fraction}")
    if args.ambiguous_weight <= 0:
        p.error(f"--ambiguous-weight must be > 0, got {args.ambiguous_weight}")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.threads:
        torch.set_num_threads(args.threads)
    from .synthetic.registered import open_synthetic

    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    index = read_model_index(args.model_dir)
    vae = load_torch_module(args.model_dir, "vae", *index.components["vae"])
    blocks = tuple(int(b) for b in args.blocks.split(","))
    state_dir = out / "state"
    if args.resume and (state_dir / "progress.json").is_file():
        from diffusers import AutoencoderTiny

        student = AutoencoderTiny.from_pretrained(str(out / "tiny_decoder"), use_safetensors=True)
        progress = json.loads((state_dir / "progress.json").read_text())
    elif args.init is not None:
        from diffusers import AutoencoderTiny

        student = AutoencoderTiny.from_pretrained(str(args.init), use_safetensors=True)
        progress = {"step": 0}
    else:
        student = make_tiny_decoder(int(vae.config.latent_channels), args.width, blocks)
        progress = {"step": 0}
    student.train()
    student.encoder.requires_grad_(False)
    params = list(student.decoder.parameters())
    optimizer = torch.optim.AdamW(params, lr=args.lr, weight_decay=0.0)
    if progress["step"]:
        load_optimizer(optimizer, state_dir)

    size = dict(height=args.image_height, width=args.image_width)
    train = open_synthetic(args.cache, split="train", size=max(args.scenes, 1), **size)
    val = open_synthetic(args.cache, split="val", size=max(args.val_scenes, 1), **size)
    if args.target == "depth":  # decodes the model's latents only: no VAE encoding
        bank: dict[str, torch.Tensor] = {}
    else:
        bank = load_or_encode(out / "latents.safetensors", vae, train, args.scenes)
        val_bank = load_or_encode(out / "val_latents.safetensors", vae, val, args.val_scenes)["depth"]
    if args.model_fraction > 0 or args.target == "depth":
        bank["model"] = load_or_predict(out / "model_latents.safetensors", args.model_dir, train, args.scenes)
        val_bank = load_or_predict(out / "val_model_latents.safetensors", args.model_dir, val, args.val_scenes)
    if args.target == "depth":
        bank["model_empty"] = (load_or_predict(out / "model_empty_latents.safetensors", args.model_dir, train,
                                               args.scenes, caption=False) if args.empty_fraction > 0
                               else bank["model"])
        truth, val_truth = ground_truth(train, args.scenes), ground_truth(val, args.val_scenes)
        teacher_score = validation_abs_rel(lambda z: teacher_decode(vae, z), val_bank, val_truth)
        logger.info("validation AbsRel with the VAE decoder (the teacher): %.4f", teacher_score)
        if progress["step"] == 0:
            student.eval()
            start_score = validation_abs_rel(lambda z: student_decode(student, z), val_bank, val_truth)
            student.train()
            logger.info("validation AbsRel of the student before training: %.4f", start_score)
    else:
        pairs = load_or_build_targets(out / "teacher_targets.safetensors", vae, bank, args.pairs, args.crop,
                                      args.rgb_fraction, args.latent_noise, args.seed,
                                      model_fraction=args.model_fraction)
    gen = torch.Generator().manual_seed(args.seed + progress["step"])
    log = (out / "log.jsonl").open("a")
    start, step = time.time(), progress["step"]
    running = 0.0
    while step < args.steps:
        lr = args.lr * 0.5 * (1 + math.cos(math.pi * step / args.steps))  # cosine decay to 0
        for group in optimizer.param_groups:
            group["lr"] = lr
        if args.target == "depth":
            loss = depth_loss(student, bank, truth, args.batch, args.empty_fraction, args.gradient_weight,
                              args.ambiguous_weight, gen)
        else:
            pick = torch.randint(pairs["latents"].shape[0], (args.batch,), generator=gen)
            z, target = pairs["latents"][pick], pairs["targets"][pick].float()
            pred = student_decode(student, z)
            depth_t = target.mean(1).clamp(-1, 1)
            loss = F.l1_loss(pred, target) + args.depth_weight * F.l1_loss(pred.mean(1).clamp(-1, 1), depth_t)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        step += 1
        running += float(loss.detach())
        if step % args.save_every == 0 or step == args.steps:
            student.eval()
            if args.target == "depth":
                val_name = "val_abs_rel"
                val_err = validation_abs_rel(lambda z: student_decode(student, z), val_bank, val_truth)
            else:
                val_name, val_err = "val_depth_l1", validation_error(student, vae, val_bank)
            student.train()
            student.save_pretrained(str(out / "tiny_decoder"), safe_serialization=True)
            state_dir.mkdir(exist_ok=True)
            save_optimizer(optimizer, state_dir)
            (state_dir / "progress.json").write_text(json.dumps({"step": step}) + "\n")
            record = {"step": step, "loss": running / args.save_every, val_name: val_err, "lr": lr,
                      "elapsed_s": round(time.time() - start, 1)}
            log.write(json.dumps(record) + "\n")
            log.flush()
            logger.info("step %d loss %.4f %s %.4f (%.0f s)", step, record["loss"], val_name, val_err,
                        time.time() - start)
            running = 0.0
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
