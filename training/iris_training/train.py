"""``iris-train CONFIG.yaml [--set key=value ...]``: fine-tune a diffusion depth model into Iris.

The Marigold recipe made text-conditional, in one loop (read top to bottom):

1. config: YAML -> validated dataclasses (:mod:`iris_training.config`);
2. data: datasets mixed by probability, one dataset per batch, augmented; captions joined by key;
3. models: VAE and text encoder frozen; UNet (or the chosen parameters) trained; EMA of what trains;
4. loop, per micro-batch: encode rgb and normalized depth with the VAE; drop captions to "" with
   probability ``caption_dropout``; embed captions with the frozen text encoder (cached per caption);
   - ``diffusion``: random t, multi-resolution noise (annealed), DDPM forward process, UNet predicts
     v (or epsilon / sample), MSE over latent pixels whose footprint is all valid;
   - ``e2e_ft``: t = T - 1 from a zero latent, x0 through the inference scheduler's own formula, decoded
     by the VAE (or the checkpoint's tiny decoder, ``e2e_decoder: tiny``, frozen or trained along with
     ``e2e_decoder_lr``), affine-invariant L1 against the normalized depth (and/or latent MSE);
   backward, clip, step (accelerate: DDP, mixed precision, gradient accumulation), EMA, log,
   validate with the evaluation protocol, checkpoint (pipeline layout + pickle-free training state).

Run on many GPUs with ``accelerate launch -m iris_training.train CONFIG.yaml``; resume is automatic
from the newest complete checkpoint in ``output_dir`` (``resume: auto``).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import math
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import yaml
from accelerate import Accelerator
from accelerate.utils import ProjectConfiguration, set_seed
from diffusers import DDPMScheduler
from diffusers.training_utils import EMAModel
from torch.utils.data import DataLoader
from tqdm import tqdm

from iris_model import IrisError
from iris_model.depth_encoding import LOG_SCALE_KEY, check_log_scale, encode_depth
from iris_model.schedulers import default_scheduler

from .config import Config, OptimConfig, config_to_dict, load_config
from .data.io import read_captions
from .data.mixing import MixBatchSampler, TrainingMix
from .data.registry import open_dataset
from .data.sample import check_sample, collate_samples
from .data.transforms import AugmentConfig
from .errors import ConfigError, TrainingError
from .evaluate import evaluate_pipeline
from .losses import affine_invariant_loss, ambiguous_pixel_weight, masked_mse, relative_depth_weight
from .model import CaptionEncoder, Models, TinyDepthDecoder, build_pipeline, load_models, select_trainable
from .noise import annealed_strength, multi_res_noise_like
from .state import COMPLETE, load_training_state, mark_complete, save_training_state
from .targets import MARIGOLD_QUANTILE, latent_valid_mask, normalize_depth

logger = logging.getLogger("iris_training")


@dataclass
class TrainResult:
    """What a run did: losses per optimizer step (mean over processes), the fixed-batch probe loss before
    and after, the final step and the saved model folder."""

    losses: list[float] = field(default_factory=list)
    probe_before: float = math.nan
    probe_after: float = math.nan
    step: int = 0
    model_dir: Path | None = None
    validation: list[dict[str, Any]] = field(default_factory=list)
    pipeline: Any = None  # main process: the in-memory pipeline holding the saved weights


def lr_lambda(cfg: OptimConfig):
    """Learning-rate factor per optimizer step: linear warm-up, then constant / cosine / exponential decay."""
    decay_steps = cfg.lr_decay_steps or cfg.max_steps

    def factor(step: int) -> float:
        if step < cfg.lr_warmup_steps:
            return (step + 1) / cfg.lr_warmup_steps
        progress = min(1.0, (step - cfg.lr_warmup_steps) / max(1, decay_steps - cfg.lr_warmup_steps))
        if cfg.lr_schedule == "cosine":
            return cfg.lr_final_ratio + (1 - cfg.lr_final_ratio) * 0.5 * (1 + math.cos(math.pi * progress))
        if cfg.lr_schedule == "exponential":
            return cfg.lr_final_ratio**progress
        return 1.0

    return factor


def find_checkpoint(resume: str, output_dir: Path) -> Path | None:
    """The checkpoint folder to resume from: the newest complete one (``auto``), none, or the given one."""
    if resume == "never":
        return None
    if resume == "auto":
        complete = sorted(p.parent.parent for p in (output_dir / "checkpoints").glob(f"checkpoint-*/state/{COMPLETE}"))
        return complete[-1] if complete else None
    folder = Path(resume)
    if (folder / "state" / COMPLETE).is_file():
        return folder
    raise ConfigError(f"resume: {folder} is not a complete checkpoint (no state/{COMPLETE})")


def _flat(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flat(v, key + "/"))
        else:
            out[key] = v if isinstance(v, (int, float, str, bool)) else str(v)
    return out


def train(cfg: Config) -> TrainResult:
    # ------------------------------------------------------------------ setup
    for module in cfg.imports:
        importlib.import_module(module)  # lets a package register extra datasets
    o = cfg.optim
    if o.mode == "e2e_ft" and cfg.model.prediction_type == "epsilon":
        raise ConfigError("optim.mode e2e_ft needs prediction_type v_prediction or sample: at t = T - 1 the "
                          "zero-terminal-SNR schedule has alpha = 0, so x0 cannot be recovered from epsilon")
    out = Path(cfg.output_dir)
    accelerator = Accelerator(
        mixed_precision=o.mixed_precision,
        gradient_accumulation_steps=o.gradient_accumulation,
        log_with="tensorboard",
        project_config=ProjectConfiguration(project_dir=str(out), logging_dir=str(out / "logs")),
    )
    device, rank, main = accelerator.device, accelerator.process_index, accelerator.is_main_process
    if not main:
        logger.setLevel(logging.WARNING)  # one process reports
    logger.info("accelerate: %s, %d process(es), device %s, backend %s, mixed precision %s",
                accelerator.distributed_type, accelerator.num_processes, device, accelerator.state.backend,
                o.mixed_precision)
    set_seed(cfg.seed)  # python, numpy, torch: model construction is identical on every process
    generator = torch.Generator(device=device).manual_seed(cfg.seed * 1000 + rank)  # noise, t, dropout
    if main:
        out.mkdir(parents=True, exist_ok=True)
        (out / "config.yaml").write_text(yaml.safe_dump(config_to_dict(cfg), sort_keys=False))
        accelerator.init_trackers("iris", config=_flat(config_to_dict(cfg)))

    # ------------------------------------------------------------------ data
    datasets: list[Any] = []
    for d in cfg.data.train:
        captions = read_captions(d.captions) if d.captions else None
        ds: Any = open_dataset(d.name, d.root, captions=captions, **d.options)
        check_sample(ds[0])  # a plug-in dataset that breaks the sample-dict contract fails here, clearly
        logger.info("train set %s: %d samples from %s; captions file: %s", d.name, len(ds), d.root,
                    f"{d.captions} ({len(captions)} lines)" if captions else "none")
        datasets.append(ds)
    mix = TrainingMix(datasets, [AugmentConfig(d.resolution, d.crop_scale, d.hflip) for d in cfg.data.train],
                      seed=cfg.seed)
    sampler = MixBatchSampler([len(d) for d in datasets], [d.probability for d in cfg.data.train], o.batch_size,
                              seed=cfg.seed, num_replicas=accelerator.num_processes, rank=rank)
    loader = DataLoader(mix, batch_sampler=sampler, num_workers=cfg.data.num_workers, collate_fn=collate_samples,
                        pin_memory=device.type == "cuda")
    val_set: Any = None
    v = cfg.validation
    if v.every and main:
        vd = v.dataset
        assert vd is not None  # checked by ValidationConfig
        val_set = open_dataset(vd.name, vd.root, captions=read_captions(vd.captions) if vd.captions else None,
                               **vd.options)

    # ------------------------------------------------------------------ models
    models: Models = load_models(cfg.model)
    vae = models.vae.to(device).float().eval().requires_grad_(False)
    text_encoder = models.text_encoder.to(device).eval().requires_grad_(False)
    unet = models.unet.to(device).float()
    if cfg.model.gradient_checkpointing:
        unet.enable_gradient_checkpointing()
    params = select_trainable(unet, cfg.model.trainable)
    unet.train()
    base_scheduler: Any = default_scheduler(cfg.model.prediction_type)  # the same betas as inference
    noise_scheduler: Any = DDPMScheduler.from_config(base_scheduler.config)
    T = int(noise_scheduler.config.num_train_timesteps)
    x0_scheduler: Any = default_scheduler(cfg.model.prediction_type)  # the inference scheduler: E2E-FT's x0 formula
    x0_scheduler.set_timesteps(1, device=device)
    caption_encoder = CaptionEncoder(models.tokenizer, text_encoder, capacity=o.text_cache_size)
    with_tiny = o.e2e_decoder == "tiny"
    if with_tiny and models.tiny_decoder is None:
        raise ConfigError(f"optim.e2e_decoder tiny: {cfg.model.init} has no tiny decoder (model_index.json)")
    train_decoder = o.e2e_decoder_lr is not None
    tiny = models.tiny_decoder.to(device).requires_grad_(False) if with_tiny else None  # float32 as loaded
    decoder_params: list[torch.nn.Parameter] = []
    if tiny is not None and train_decoder:  # its decoder half only: the encoder is never run here
        decoder_params = list(tiny.decoder.requires_grad_(True).parameters())
    trained_tiny = tiny if decoder_params else None  # what the checkpoint state saves and resumes
    # The tiny decoder as a module whose forward is the decode, so that accelerate can wrap it (DDP) when it trains.
    decoder: torch.nn.Module | None = TinyDepthDecoder(tiny).train(train_decoder) if tiny is not None else None

    def decode_depth(x0: torch.Tensor) -> torch.Tensor:
        """``[B, H, W]``: the decoder's channel mean, unclamped (keeps gradients), in [-1, 1] units."""
        with torch.autocast(device.type, enabled=False):
            if decoder is not None:
                return decoder(x0)  # float32 inside, also where accelerate's prepare wrapped it in autocast
            return vae.decode(x0.float() / scale).sample.mean(1)
    scale, stride = models.scaling_factor, models.vae_scale_factor
    log_scale = (cfg.model.depth_log_scale if cfg.model.depth_log_scale is not None
                 else check_log_scale(models.extra_settings.get(LOG_SCALE_KEY, 0.0)))
    models.extra_settings.pop(LOG_SCALE_KEY, None)  # the saved model records the encoding it was trained to
    if log_scale:
        models.extra_settings[LOG_SCALE_KEY] = log_scale

    def depth_target(depth: torch.Tensor, valid: torch.Tensor, quantile: float) -> torch.Tensor:
        """``[B, H, W]`` in [-1, 1]: the normalized depth in the decoder's encoding (``model.depth_log_scale``)."""
        normalized = normalize_depth(depth, valid, quantile)
        return encode_depth((normalized + 1.0) / 2.0, log_scale) * 2.0 - 1.0
    for d in cfg.data.train:
        if d.resolution[0] % stride or d.resolution[1] % stride:
            raise ConfigError(f"data.train {d.name}: resolution {list(d.resolution)} must be a multiple of the "
                              f"VAE's stride {stride}")
    n_trainable = sum(p.numel() for p in params)
    logger.info("UNet: %.1f M of %.1f M parameters train%s; effective batch %d (%d x %d accumulation x %d processes)",
                n_trainable / 1e6, sum(p.numel() for p in unet.parameters()) / 1e6,
                f", tiny decoder: {sum(p.numel() for p in decoder_params) / 1e6:.2f} M at lr {o.e2e_decoder_lr:g}"
                if decoder_params else "",
                o.batch_size * o.gradient_accumulation * accelerator.num_processes, o.batch_size,
                o.gradient_accumulation, accelerator.num_processes)

    groups: list[dict[str, Any]] = [{"params": params}]
    if decoder_params:
        groups.append({"params": decoder_params, "lr": o.e2e_decoder_lr})
    optimizer = torch.optim.AdamW(groups, lr=o.lr, betas=o.adam_betas, eps=o.adam_eps, weight_decay=o.weight_decay)
    lr_scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda(o))  # the same factor for each group
    if decoder_params:
        unet, decoder, optimizer = accelerator.prepare(unet, decoder, optimizer)
        trained_modules = [unet, decoder]  # what accumulate() syncs
    else:
        unet, optimizer = accelerator.prepare(unet, optimizer)
        trained_modules = [unet]
    raw_unet = accelerator.unwrap_model(unet)
    trained = params + decoder_params  # what the optimizer steps, is clipped and is EMA-averaged
    ema = EMAModel(trained, decay=o.ema.decay, update_after_step=o.ema.update_after_step) if o.ema.enabled else None

    def encode(x: torch.Tensor) -> torch.Tensor:
        return vae.encode(x.float()).latent_dist.mode() * scale

    warned_no_ambiguous: list[bool] = []
    needs_depth_latent = o.mode == "diffusion" or o.e2e_loss in ("latent", "both")

    def compute_loss(batch: dict[str, Any], gen: torch.Generator, model: torch.nn.Module,
                     caption_dropout: float) -> torch.Tensor:
        rgb = batch["rgb"].to(device, non_blocking=True) * 2.0 - 1.0
        depth, valid = batch["depth"].to(device), batch["valid"].to(device)
        with torch.no_grad():
            rgb_latent = encode(rgb)
            depth_norm = depth_target(depth, valid, MARIGOLD_QUANTILE)  # [-1, 1] by the 2nd / 98th percentile
            # The depth latent is a target of the diffusion and latent losses only; E2E-FT's depth loss needs none.
            depth_latent = encode(depth_norm[:, None].expand(-1, 3, -1, -1)) if needs_depth_latent else None
            latent_mask = latent_valid_mask(valid, stride)
        b = rgb.shape[0]
        drop = torch.rand(b, generator=gen, device=gen.device) < caption_dropout
        captions = ["" if d else c for c, d in zip(batch["caption"], drop.tolist(), strict=True)]
        text, text_mask = caption_encoder(captions)
        if o.mode == "diffusion":
            t = torch.randint(0, T, (b,), generator=gen, device=gen.device).to(device)
            if o.noise.multires:
                strength = annealed_strength(o.noise.strength, t, T) if o.noise.annealed else o.noise.strength
                noise = multi_res_noise_like(depth_latent, strength, generator=gen)
            else:
                noise = torch.randn(depth_latent.shape, generator=gen, device=gen.device).to(device)
            noisy = noise_scheduler.add_noise(depth_latent, noise, t)
            pred = model(torch.cat([rgb_latent, noisy], 1), t, encoder_hidden_states=text,
                         encoder_attention_mask=text_mask).sample
            if cfg.model.prediction_type == "v_prediction":
                target = noise_scheduler.get_velocity(depth_latent, noise, t)
            elif cfg.model.prediction_type == "epsilon":
                target = noise
            else:
                target = depth_latent
            return masked_mse(pred, target, latent_mask)
        # E2E-FT: one deterministic step, exactly as the pipeline's single_step inference runs it.
        t_last = x0_scheduler.timesteps[0]
        zeros = torch.zeros_like(rgb_latent)  # the depth latent's shape: the VAE's latent channels
        pred = model(torch.cat([rgb_latent, zeros], 1), t_last.expand(b), encoder_hidden_states=text,
                     encoder_attention_mask=text_mask).sample
        x0 = x0_scheduler.step(pred.float(), t_last, zeros).pred_original_sample
        loss = x0.new_zeros(())
        if o.e2e_loss in ("latent", "both"):
            loss = loss + masked_mse(x0, depth_latent, latent_mask)
        if o.e2e_loss in ("depth", "both"):
            decoded = decode_depth(x0)
            weight = None
            if o.ambiguous_loss_weight != 1.0:
                if "ambiguous" in batch:
                    captioned = ~drop if o.ambiguous_weight_captioned_only else None
                    weight = ambiguous_pixel_weight(batch["ambiguous"].to(device), o.ambiguous_loss_weight,
                                                    captioned)
                elif not warned_no_ambiguous:
                    warned_no_ambiguous.append(True)
                    logger.warning("optim.ambiguous_loss_weight is set, but this dataset's samples have no "
                                   "'ambiguous' mask: their depth loss is unweighted")
            if o.relative_loss_weight > 0:
                relative = relative_depth_weight(depth, valid, o.relative_loss_weight)
                weight = relative if weight is None else weight * relative
            target = depth_norm if o.depth_target_quantile == MARIGOLD_QUANTILE else depth_target(
                depth, valid, o.depth_target_quantile)
            loss = loss + affine_invariant_loss(decoded, target, valid, o.gradient_loss_weight,
                                                pixel_weight=weight)
        return loss

    def inference_pipeline() -> Any:
        """The pipeline over the UNet as it is now; E2E-FT models record that they run single-step."""
        extra = {"single_step": True} if o.mode == "e2e_ft" else {}
        pipe = build_pipeline(models, raw_unet, cfg.model.prediction_type, extra, tiny_decoder=with_tiny)
        if o.mode == "e2e_ft":
            pipe.default_denoising_steps = 1
        return pipe

    def save_model(folder: Path) -> None:
        """The inference pipeline (EMA weights when EMA is on), loadable by iris_model and iris-export."""
        if ema is not None:
            ema.store(trained)
            ema.copy_to(trained)
        inference_pipeline().save_pretrained(folder)
        if ema is not None:
            ema.restore(trained)

    # ------------------------------------------------------------------ resume
    step, epoch, batch_in_epoch = 0, 0, 0
    checkpoint = find_checkpoint(cfg.resume, out)
    if checkpoint is not None:
        progress = load_training_state(checkpoint / "state", rank=rank, unet=raw_unet, optimizer=optimizer.optimizer,
                                       lr_scheduler=lr_scheduler, ema=ema, generator=generator,
                                       tiny_decoder=trained_tiny)
        if progress.get("num_processes") != accelerator.num_processes or progress.get("batch_size") != o.batch_size:
            raise TrainingError(
                f"{checkpoint} was written by {progress.get('num_processes')} processes with batch "
                f"{progress.get('batch_size')}; this run has {accelerator.num_processes} x {o.batch_size}"
            )
        step, epoch, batch_in_epoch = progress["step"], progress["epoch"], progress["batch_in_epoch"]
        logger.info("resumed from %s at step %d", checkpoint, step)

    def checkpoint_now() -> None:
        folder = out / "checkpoints" / f"checkpoint-{step:06d}"
        accelerator.wait_for_everyone()
        if main:
            save_model(folder / "model")
        progress = {"step": step, "epoch": epoch, "batch_in_epoch": batch_in_epoch, "batch_size": o.batch_size,
                    "num_processes": accelerator.num_processes, "config": config_to_dict(cfg)}
        save_training_state(folder / "state", is_main=main, rank=rank, unet=raw_unet, optimizer=optimizer.optimizer,
                            lr_scheduler=lr_scheduler, ema=ema, generator=generator, progress=progress,
                            tiny_decoder=trained_tiny)
        accelerator.wait_for_everyone()
        if main:
            mark_complete(folder / "state", progress)
            limit = cfg.logging.checkpoints_total_limit
            complete = sorted(p.parent.parent for p in (out / "checkpoints").glob(f"checkpoint-*/state/{COMPLETE}"))
            for old in complete[: -limit] if limit else []:
                shutil.rmtree(old, ignore_errors=True)

    def validate() -> list[dict[str, Any]]:
        if ema is not None:
            ema.store(trained)
            ema.copy_to(trained)
        raw_unet.eval()
        pipe = build_pipeline(models, raw_unet, cfg.model.prediction_type, tiny_decoder=with_tiny)
        rows = evaluate_pipeline(pipe, val_set, v.steps, ["on" if v.text else "off"], max_samples=v.max_samples,
                                 single_step=o.mode == "e2e_ft", processing_resolution=v.processing_resolution,
                                 ensemble_size=v.ensemble_size, seed=cfg.seed)
        raw_unet.train()
        if ema is not None:
            ema.restore(trained)
        for r in rows:
            accelerator.log({f"val/{k}_steps{r['steps']}": r[k] for k in ("abs_rel", "delta1", "rmse")}, step=step)
        logger.info("step %d validation: %s", step,
                    "; ".join(f"{r['steps']} steps AbsRel {r['abs_rel']:.4f} d1 {r['delta1']:.4f}" for r in rows))
        return rows

    # A fixed batch scored with fixed noise before and after: a loss that does not depend on sampling luck.
    probe_batch = collate_samples([mix[(0, i % len(datasets[0]), 0)] for i in range(o.batch_size)])

    def probe_loss() -> float:
        raw_unet.eval()
        with torch.no_grad():
            value = compute_loss(probe_batch, torch.Generator(device=device).manual_seed(12345), raw_unet, 0.0)
        raw_unet.train()
        return float(value)

    # ------------------------------------------------------------------ loop
    result = TrainResult(probe_before=probe_loss(), step=step)
    progress_bar = tqdm(total=o.max_steps, initial=step, disable=not (main and cfg.logging.progress_bar),
                        desc="training", dynamic_ncols=True)
    running = torch.zeros((), device=device)
    while step < o.max_steps:
        sampler.set_epoch(epoch, start_batch=batch_in_epoch)
        for batch in loader:
            batch_in_epoch += 1
            with accelerator.accumulate(*trained_modules):
                loss = compute_loss(batch, generator, unet, o.caption_dropout)
                accelerator.backward(loss)
                if accelerator.sync_gradients and o.max_grad_norm > 0:
                    accelerator.clip_grad_norm_(trained, o.max_grad_norm)
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
            running += loss.detach() / o.gradient_accumulation
            if not accelerator.sync_gradients:
                continue
            # ---- one optimizer step done
            step += 1
            lr_scheduler.step()
            if ema is not None:
                ema.step(trained)
            step_loss = float(accelerator.reduce(running, reduction="mean"))
            running.zero_()
            if not math.isfinite(step_loss):
                raise TrainingError(f"loss is {step_loss} at step {step}; lower optim.lr or use bf16 instead of fp16")
            result.losses.append(step_loss)
            progress_bar.update(1)
            progress_bar.set_postfix(loss=f"{step_loss:.4f}", lr=f"{lr_scheduler.get_last_lr()[0]:.2e}")
            if step % cfg.logging.log_every == 0 or step == o.max_steps:
                accelerator.log({"train/loss": step_loss, "train/lr": lr_scheduler.get_last_lr()[0],
                                 "train/epoch": epoch}, step=step)
            if v.every and step % v.every == 0:
                if main:
                    result.validation = validate()
                accelerator.wait_for_everyone()
            if step % cfg.logging.checkpoint_every == 0 or step == o.max_steps:
                checkpoint_now()
            if step >= o.max_steps:
                break
        else:
            epoch, batch_in_epoch = epoch + 1, 0
    progress_bar.close()

    result.step = step
    result.probe_after = probe_loss()
    if accelerator.num_processes > 1:  # DDP keeps replicas identical; make sure it did
        checksum = torch.stack([p.double().sum() for p in trained]).sum().reshape(1).to(device)
        sums = accelerator.gather(checksum)
        if not torch.allclose(sums, sums[0].expand_as(sums), rtol=1e-9, atol=0):
            raise TrainingError(f"the processes' trained weights diverged (checksums {sums.tolist()})")
        logger.info("all %d processes hold identical weights (checksum %.6f)", len(sums), float(sums[0]))
    accelerator.log({"train/probe_loss": result.probe_after}, step=step)
    accelerator.wait_for_everyone()
    if main:
        result.model_dir = out / "model"
        save_model(result.model_dir)
        if ema is not None:
            ema.copy_to(trained)  # training is over: keep the weights that were saved
        raw_unet.eval()
        result.pipeline = inference_pipeline()
        logger.info("done: step %d, fixed-batch loss %.4f -> %.4f, model in %s", step, result.probe_before,
                    result.probe_after, result.model_dir)
    accelerator.end_training()
    # accelerate keeps its settings (mixed precision, accumulation) in a process-wide singleton; clear it
    # so that train() can run again in this process with other settings (tests, notebooks).
    from accelerate.state import AcceleratorState

    AcceleratorState._reset_state(reset_partial_state=False)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="iris-train", description=__doc__.split("\n\n")[0])
    parser.add_argument("config", help="YAML configuration (see training/configs/)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config value, e.g. optim.max_steps=100 or data.train.0.root=/data "
                        "(repeatable)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        result = train(load_config(args.config, args.set))
    except IrisError as exc:
        print(f"iris-train: error: {exc}", file=sys.stderr)
        return 2
    if result.model_dir is not None:
        print(f"iris-train: {result.step} steps; fixed-batch loss {result.probe_before:.4f} -> "
              f"{result.probe_after:.4f}; model: {result.model_dir}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
