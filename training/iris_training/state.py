"""Training state for resuming (optimizer, EMA, learning-rate schedule, RNGs, progress), pickle-free.

accelerate's ``save_state`` writes the optimizer, scheduler and RNG states with ``torch.save`` and reads
them back with ``torch.load`` (pickle) even with ``safe_serialization=True`` (that flag covers model
weights only). The project never unpickles, so the state is stored here instead: every tensor in one
safetensors file per part (optimizer state flattened to ``"<param index>.<name>"`` keys) and every
other value in JSON.

Layout of ``checkpoint-NNNNNN/state/``::

    progress.json                 step, epoch, batches consumed, config
    unet.safetensors              the UNet being trained (raw weights, not the EMA average)
    tiny_decoder.safetensors      the tiny decoder, where it trains along (``optim.e2e_decoder_lr``)
    optimizer.safetensors/.json   per-parameter tensors / param groups and scalar state
    ema.safetensors/.json         EMA shadow parameters / decay settings and step
    lr_scheduler.json             LambdaLR.state_dict()
    rng_rank<R>.safetensors/.json torch (CPU, CUDA, the run's generator), numpy and Python RNGs per process
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from .errors import TrainingError

COMPLETE = "progress.json"  # written last: a state folder without it is incomplete and ignored


def _write_json(path: Path, obj: Any) -> None:
    path.write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n")


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise TrainingError(f"corrupt training state {path}: {exc}") from exc


def _contiguous(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.detach().contiguous().cpu() for k, v in tensors.items()}


# ------------------------------------------------------------------------------------------- optimizer
def save_optimizer(optimizer: torch.optim.Optimizer, folder: Path) -> None:
    state = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for index, values in state["state"].items():
        for name, value in values.items():
            if torch.is_tensor(value):
                tensors[f"{index}.{name}"] = value
            else:
                scalars.setdefault(str(index), {})[name] = value
    save_file(_contiguous(tensors), str(folder / "optimizer.safetensors"))
    _write_json(folder / "optimizer.json", {"param_groups": state["param_groups"], "scalars": scalars})


def load_optimizer(optimizer: torch.optim.Optimizer, folder: Path) -> None:
    meta = _read_json(folder / "optimizer.json")
    tensors = load_file(str(folder / "optimizer.safetensors"))
    state: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        index, name = key.split(".", 1)
        state.setdefault(int(index), {})[name] = value
    for index, values in meta["scalars"].items():
        state.setdefault(int(index), {}).update(values)
    groups = meta["param_groups"]
    for group in groups:
        for k in ("betas",):
            if k in group and isinstance(group[k], list):
                group[k] = tuple(group[k])
    try:
        optimizer.load_state_dict({"state": state, "param_groups": groups})
    except (ValueError, KeyError) as exc:
        raise TrainingError(f"optimizer state in {folder} does not fit this run: {exc}") from exc


# ------------------------------------------------------------------------------------------------- EMA
def save_ema(ema: Any, folder: Path) -> None:
    state = ema.state_dict()
    shadow = state.pop("shadow_params")
    save_file(_contiguous({str(i): p for i, p in enumerate(shadow)}), str(folder / "ema.safetensors"))
    _write_json(folder / "ema.json", state)


def load_ema(ema: Any, folder: Path) -> None:
    state = _read_json(folder / "ema.json")
    tensors = load_file(str(folder / "ema.safetensors"))
    if len(tensors) != len(ema.shadow_params):
        raise TrainingError(f"EMA state in {folder} has {len(tensors)} tensors, this run {len(ema.shadow_params)}")
    device = ema.shadow_params[0].device
    state["shadow_params"] = [tensors[str(i)].to(device) for i in range(len(tensors))]
    ema.load_state_dict(state)


# ------------------------------------------------------------------------------------------------ RNGs
def save_rng(folder: Path, rank: int, generator: torch.Generator) -> None:
    tensors = {"torch_cpu": torch.get_rng_state(), "generator": generator.get_state()}
    if torch.cuda.is_available():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"cuda_{i}"] = s
    np_state: Any = np.random.get_state()
    tensors["numpy_keys"] = torch.from_numpy(np.asarray(np_state[1], dtype=np.int64))
    save_file(_contiguous(tensors), str(folder / f"rng_rank{rank}.safetensors"))
    py_version, py_state, py_gauss = random.getstate()
    _write_json(
        folder / f"rng_rank{rank}.json",
        {"numpy": [np_state[0], int(np_state[2]), int(np_state[3]), float(np_state[4])],
         "python": [py_version, list(py_state), py_gauss]},
    )


def load_rng(folder: Path, rank: int, generator: torch.Generator) -> None:
    path = folder / f"rng_rank{rank}.safetensors"
    if not path.is_file():
        raise TrainingError(f"{path} missing: resume with the same number of processes as the saved run")
    tensors = load_file(str(path))
    meta = _read_json(folder / f"rng_rank{rank}.json")
    torch.set_rng_state(tensors["torch_cpu"])
    generator.set_state(tensors["generator"])
    cuda_keys = sorted((k for k in tensors if k.startswith("cuda_")), key=lambda k: int(k.split("_")[1]))
    cuda = [tensors[k] for k in cuda_keys]
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda[: torch.cuda.device_count()])
    name, pos, has_gauss, gauss = meta["numpy"]
    np.random.set_state((name, tensors["numpy_keys"].numpy().astype(np.uint32), pos, has_gauss, gauss))
    version, internal, py_gauss = meta["python"]
    random.setstate((version, tuple(internal), py_gauss))


# ------------------------------------------------------------------------------------------ whole state
def save_training_state(
    folder: Path,
    *,
    is_main: bool,
    rank: int,
    unet: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    lr_scheduler: Any,
    ema: Any | None,
    generator: torch.Generator,
    progress: dict[str, Any],
    tiny_decoder: torch.nn.Module | None = None,
) -> None:
    """Write the state (main process: shared parts; every process: its RNGs). Call on all processes;
    ``progress.json`` (main process, last) marks the folder complete after a barrier by the caller."""
    folder.mkdir(parents=True, exist_ok=True)
    save_rng(folder, rank, generator)
    if is_main:
        save_file(_contiguous(unet.state_dict()), str(folder / "unet.safetensors"))
        if tiny_decoder is not None:
            save_file(_contiguous(tiny_decoder.state_dict()), str(folder / "tiny_decoder.safetensors"))
        save_optimizer(optimizer, folder)
        _write_json(folder / "lr_scheduler.json", lr_scheduler.state_dict())
        if ema is not None:
            save_ema(ema, folder)


def mark_complete(folder: Path, progress: dict[str, Any]) -> None:
    _write_json(folder / COMPLETE, progress)


def load_training_state(
    folder: Path,
    *,
    rank: int,
    unet: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    lr_scheduler: Any,
    ema: Any | None,
    generator: torch.Generator,
    tiny_decoder: torch.nn.Module | None = None,
) -> dict[str, Any]:
    """Restore everything :func:`save_training_state` wrote; returns the progress record."""
    if not (folder / COMPLETE).is_file():
        raise TrainingError(f"{folder} is not a complete training state ({COMPLETE} missing)")
    progress = _read_json(folder / COMPLETE)
    weights = load_file(str(folder / "unet.safetensors"))
    try:
        unet.load_state_dict(weights)
    except RuntimeError as exc:
        raise TrainingError(f"UNet weights in {folder} do not fit this run's model: {exc}") from exc
    if tiny_decoder is not None:
        path = folder / "tiny_decoder.safetensors"
        if not path.is_file():
            raise TrainingError(f"{folder} has no tiny decoder state, but this run trains the tiny decoder")
        try:
            tiny_decoder.load_state_dict(load_file(str(path)))
        except RuntimeError as exc:
            raise TrainingError(f"tiny decoder weights in {folder} do not fit this run's: {exc}") from exc
    load_optimizer(optimizer, folder)
    lr_scheduler.load_state_dict(_read_json(folder / "lr_scheduler.json"))
    if ema is not None:
        if not (folder / "ema.json").is_file():
            raise TrainingError(f"{folder} has no EMA state but this run uses EMA")
        load_ema(ema, folder)
    load_rng(folder, rank, generator)
    return progress
