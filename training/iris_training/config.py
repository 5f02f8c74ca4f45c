"""Training configuration: YAML files under ``training/configs/`` validated once into dataclasses.

``load_config(path, overrides)`` reads the YAML, applies ``key.sub=value`` overrides (values parsed as
YAML; list items by index, e.g. ``data.train.0.root=/data/hypersim``), and converts the result into
:class:`Config`, checking every type and range. Unknown keys are errors (a typo must not be ignored).
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from iris_model.depth_encoding import check_log_scale
from iris_model.errors import InputError

from .errors import ConfigError


@dataclass
class DatasetConfig:
    """One dataset: a registered ``name`` (hypersim, vkitti2, folder, nyuv2, ...), its ``root`` folder,
    ``captions`` (a ``captions.jsonl`` from ``iris-caption``), constructor ``options``, and for training its
    mixing ``probability`` and augmentation (``resolution`` [height, width], ``crop_scale``, ``hflip``)."""

    name: str
    root: str
    captions: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    probability: float = 1.0
    resolution: tuple[int, int] = (480, 640)
    crop_scale: tuple[float, float] = (1.0, 1.0)
    hflip: float = 0.5

    def __post_init__(self) -> None:
        if self.probability < 0:
            raise ConfigError(f"dataset {self.name}: probability must be >= 0")


@dataclass
class DataConfig:
    train: list[DatasetConfig]
    num_workers: int = 2

    def __post_init__(self) -> None:
        if not self.train:
            raise ConfigError("data.train needs at least one dataset")
        if sum(d.probability for d in self.train) <= 0:
            raise ConfigError("data.train probabilities must have a positive sum")
        if self.num_workers < 0:
            raise ConfigError("data.num_workers must be >= 0")


@dataclass
class ModelConfig:
    """Starting weights and what trains.

    ``init``: a pipeline folder loadable by ``IrisDepthPipeline.from_pretrained`` (Marigold, E2E-FT,
    Lotus-in-diffusers-layout, or Stable Diffusion 2 whose 4-channel ``conv_in`` is widened to 8), or
    ``tiny`` for a random tiny model (tests, CPU smoke runs). ``trainable``: fnmatch patterns over UNet
    parameter names (``["*"]`` = all). ``text_projection``: when the text encoder's width differs from the
    UNet's ``cross_attention_dim``, ``error`` stops with a message and ``linear`` adds a trained projection
    inside the UNet (diffusers' ``encoder_hid_proj``, so checkpoints load with no extra code).
    ``depth_log_scale``: the decoder's depth encoding the model trains to and saves
    (:mod:`iris_model.depth_encoding`: 0 = linear, Marigold's; k > 0 = log-spaced); ``None`` keeps the one of
    ``init``.
    """

    init: str
    tiny_seed: int = 0
    prediction_type: Literal["v_prediction", "epsilon", "sample"] = "v_prediction"
    trainable: list[str] = field(default_factory=lambda: ["*"])
    text_projection: Literal["error", "linear"] = "error"
    gradient_checkpointing: bool = False
    default_denoising_steps: int | None = None
    default_processing_resolution: int | None = None
    depth_log_scale: float | None = None

    def __post_init__(self) -> None:
        if self.depth_log_scale is not None:
            try:
                self.depth_log_scale = check_log_scale(self.depth_log_scale)
            except InputError as exc:
                raise ConfigError(f"model.{exc}") from None


@dataclass
class NoiseConfig:
    """Marigold's multi-resolution noise (``strength`` per level, annealed to 0 as t -> 0)."""

    multires: bool = True
    strength: float = 0.9
    annealed: bool = True

    def __post_init__(self) -> None:
        if not 0.0 <= self.strength <= 1.0:
            raise ConfigError("optim.noise.strength must be in [0, 1]")


@dataclass
class EmaConfig:
    enabled: bool = True
    decay: float = 0.999
    update_after_step: int = 0

    def __post_init__(self) -> None:
        if not 0.0 < self.decay < 1.0:
            raise ConfigError("optim.ema.decay must be in (0, 1)")


@dataclass
class OptimConfig:
    """The optimization. ``mode``: ``diffusion`` (Marigold: noisy latent, random t, latent MSE) or
    ``e2e_ft`` (single step at t = T - 1 from a zero latent; loss in depth space, latent space or both).
    ``batch_size`` is per process and micro-step: the effective batch is
    ``batch_size * gradient_accumulation * processes``. Learning rate: linear warm-up, then
    ``constant``, ``cosine`` or ``exponential`` decay to ``lr * lr_final_ratio`` at ``lr_decay_steps``."""

    max_steps: int
    mode: Literal["diffusion", "e2e_ft"] = "diffusion"
    batch_size: int = 2
    gradient_accumulation: int = 1
    lr: float = 3e-5
    lr_schedule: Literal["constant", "cosine", "exponential"] = "exponential"
    lr_warmup_steps: int = 100
    lr_decay_steps: int | None = None
    lr_final_ratio: float = 0.01
    weight_decay: float = 0.0
    adam_betas: tuple[float, float] = (0.9, 0.999)
    adam_eps: float = 1e-8
    max_grad_norm: float = 1.0
    mixed_precision: Literal["no", "fp16", "bf16"] = "no"
    caption_dropout: float = 0.1
    noise: NoiseConfig = field(default_factory=NoiseConfig)
    ema: EmaConfig = field(default_factory=EmaConfig)
    e2e_loss: Literal["depth", "latent", "both"] = "depth"
    #: E2E-FT depth loss: weight of MiDaS's multi-scale gradient-matching term (0 = off; MiDaS uses 0.5).
    gradient_loss_weight: float = 0.0
    #: E2E-FT depth loss: weight of the ``ambiguous`` pixels (depth only the caption fixes; synthetic scenes)
    #: relative to the others in its L1 term (1 = no extra weight).
    ambiguous_loss_weight: float = 1.0
    #: Put that extra weight only on samples that kept their caption (``caption_dropout`` ones get 1).
    ambiguous_weight_captioned_only: bool = False
    #: E2E-FT depth loss: mix a relative-error term into its L1 term: each pixel's weight is multiplied by
    #: ``1 + relative_loss_weight * r``, ``r`` its inverse depth over the image's mean inverse depth (mean 1,
    #: at most 10), so a near pixel counts as AbsRel counts it (0 = the plain L1 of the normalized depth,
    #: where a 2 m pixel of an 80 m outdoor scene weighs what a far one does).
    relative_loss_weight: float = 0.0
    #: E2E-FT depth loss: the quantiles its target is normalized by, per image (the latent target keeps
    #: Marigold's). 0.02 (``targets.MARIGOLD_QUANTILE``) is Marigold's 2nd / 98th percentile, which clips the
    #: nearest and farthest 2 % of the pixels; 0 maps the valid minimum and maximum to -1 and 1, so the target is
    #: the ground truth up to an affine map, as the evaluation scores it, and a small near object is not
    #: flattened onto the 2nd percentile.
    depth_target_quantile: float = 0.02
    #: E2E-FT depth loss: the frozen decoder the predicted latent goes through: the VAE's (``vae``) or the
    #: starting checkpoint's tiny decoder (``tiny``; the saved model then decodes with it by default). Train
    #: through the decoder the model will run with; a step is also cheaper (stage 10: 1.5-2.3 s on two CPU
    #: threads, against stage 9's 3.7 through the VAE, which also encoded the depth each step, since dropped).
    e2e_decoder: Literal["vae", "tiny"] = "vae"
    #: Train the tiny decoder along with the UNet at this learning rate (same warm-up and decay; its own EMA
    #: and checkpoint state), so that the predicted latent need not stay on the VAE's latent manifold; the saved
    #: model carries the trained decoder. None keeps it frozen. Needs ``e2e_decoder: tiny``.
    e2e_decoder_lr: float | None = None
    text_cache_size: int = 2048

    def __post_init__(self) -> None:
        for name in ("max_steps", "batch_size", "gradient_accumulation", "text_cache_size"):
            if getattr(self, name) < 1:
                raise ConfigError(f"optim.{name} must be >= 1")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise ConfigError("optim.lr must be a positive number")
        if not 0.0 <= self.caption_dropout <= 1.0:
            raise ConfigError("optim.caption_dropout must be a probability")
        if not (self.gradient_loss_weight >= 0 and math.isfinite(self.gradient_loss_weight)):
            raise ConfigError("optim.gradient_loss_weight must be a number >= 0")
        if not (self.ambiguous_loss_weight > 0 and math.isfinite(self.ambiguous_loss_weight)):
            raise ConfigError("optim.ambiguous_loss_weight must be a number > 0")
        if not (self.relative_loss_weight >= 0 and math.isfinite(self.relative_loss_weight)):
            raise ConfigError("optim.relative_loss_weight must be a number >= 0")
        if self.ambiguous_weight_captioned_only and self.ambiguous_loss_weight == 1.0:
            raise ConfigError("optim.ambiguous_weight_captioned_only needs optim.ambiguous_loss_weight != 1")
        if not 0.0 <= self.depth_target_quantile < 0.5:
            raise ConfigError("optim.depth_target_quantile must be in [0, 0.5)")
        shaped = (self.gradient_loss_weight != 0.0 or self.ambiguous_loss_weight != 1.0
                  or self.relative_loss_weight != 0.0 or self.depth_target_quantile != 0.02)
        if shaped and (self.mode != "e2e_ft" or self.e2e_loss == "latent"):
            raise ConfigError(
                "optim.gradient_loss_weight, ambiguous_loss_weight, relative_loss_weight and depth_target_quantile "
                "shape the depth loss: they need mode e2e_ft with e2e_loss depth or both"
            )
        if self.e2e_decoder == "tiny" and (self.mode != "e2e_ft" or self.e2e_loss == "latent"):
            raise ConfigError("optim.e2e_decoder tiny needs mode e2e_ft with e2e_loss depth or both")
        if self.e2e_decoder_lr is not None:
            if not (self.e2e_decoder_lr > 0 and math.isfinite(self.e2e_decoder_lr)):
                raise ConfigError("optim.e2e_decoder_lr must be a positive number (or unset: a frozen decoder)")
            if self.e2e_decoder != "tiny":
                raise ConfigError("optim.e2e_decoder_lr trains the tiny decoder: it needs optim.e2e_decoder tiny")
        if self.lr_warmup_steps < 0 or not 0 < self.lr_final_ratio <= 1:
            raise ConfigError("optim.lr_warmup_steps must be >= 0 and lr_final_ratio in (0, 1]")


@dataclass
class ValidationConfig:
    """Every ``every`` optimizer steps (0 = never), score up to ``max_samples`` images of ``dataset`` with
    the evaluation protocol, at each of ``steps`` denoising steps, with captions (``text: true``) or not."""

    every: int = 0
    dataset: DatasetConfig | None = None
    max_samples: int = 16
    steps: list[int] = field(default_factory=lambda: [1])
    text: bool = True
    processing_resolution: int | None = None
    ensemble_size: int = 1

    def __post_init__(self) -> None:
        if self.every < 0 or self.max_samples < 1:
            raise ConfigError("validation.every must be >= 0 and max_samples >= 1")
        if self.every and self.dataset is None:
            raise ConfigError("validation.every > 0 needs validation.dataset")


@dataclass
class LoggingConfig:
    log_every: int = 10
    checkpoint_every: int = 1000
    checkpoints_total_limit: int | None = 3
    progress_bar: bool = True

    def __post_init__(self) -> None:
        if self.log_every < 1 or self.checkpoint_every < 1:
            raise ConfigError("logging.log_every and checkpoint_every must be >= 1")


@dataclass
class Config:
    """A training run. ``output_dir`` receives ``checkpoints/``, ``logs/`` (TensorBoard), ``model/`` (final)
    and ``config.yaml``; ``resume``: ``auto`` (latest checkpoint in output_dir, if any), ``never``, or a
    checkpoint folder. ``imports``: Python modules imported first (to register extra datasets)."""

    output_dir: str
    model: ModelConfig
    data: DataConfig
    optim: OptimConfig
    validation: ValidationConfig = field(default_factory=ValidationConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)
    seed: int = 0
    resume: str = "auto"
    imports: list[str] = field(default_factory=list)


# ------------------------------------------------------------------------------------------ conversion
def _convert(tp: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in (a for a in args if a is not type(None)):
            try:
                return _convert(arg, value, where)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(errors[0] if len(errors) == 1 else f"{where}: {value!r} matches none of {args}")
    if origin is Literal:
        if value not in args:
            raise ConfigError(f"{where}: must be one of {list(args)}, got {value!r}")
        return value
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return build_dataclass(tp, value, where)
    if origin is list:
        if not isinstance(value, list):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        return [_convert(args[0], v, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is tuple:
        if not isinstance(value, (list, tuple)) or len(value) != len(args):
            raise ConfigError(f"{where}: expected a list of {len(args)}, got {value!r}")
        return tuple(_convert(a, v, f"{where}[{i}]") for i, (a, v) in enumerate(zip(args, value, strict=True)))
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        return dict(value)
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, str):  # YAML 1.1 reads "3e-5" (no dot) as a string
            with contextlib.suppress(ValueError):
                value = float(value)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return value
    raise ConfigError(f"{where}: unsupported type {tp}")  # pragma: no cover - a bug in this module


def build_dataclass(cls: type, data: Any, where: str) -> Any:
    """``cls(**data)`` with each value checked and converted to its field's type (YAML lists to tuples, numbers
    written as strings to floats, nested dataclasses); unknown keys and missing required ones raise
    :class:`ConfigError` naming ``where``."""
    if not isinstance(data, dict):
        raise ConfigError(f"{where or 'config'}: expected a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(f"{where or 'config'}: unknown key(s) {unknown}; known: {sorted(fields)}")
    kwargs = {}
    for name, f in fields.items():
        key = f"{where}.{name}" if where else name
        if name in data:
            kwargs[name] = _convert(hints[name], data[name], key)
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ConfigError(f"{key} is required")
    return cls(**kwargs)


def apply_override(data: dict[str, Any], assignment: str) -> None:
    """Apply ``a.b.0.c=value`` to nested dicts / lists (value parsed as YAML)."""
    if "=" not in assignment:
        raise ConfigError(f"override {assignment!r} must look like key.sub=value")
    path, raw = assignment.split("=", 1)
    keys = path.strip().split(".")
    node: Any = data
    for i, key in enumerate(keys):
        last = i == len(keys) - 1
        if isinstance(node, list):
            if not key.isdigit() or int(key) >= len(node):
                raise ConfigError(f"override {path}: {key!r} is not an index of a list of {len(node)}")
            if last:
                node[int(key)] = yaml.safe_load(raw)
            else:
                node = node[int(key)]
        elif isinstance(node, dict):
            if last:
                node[key] = yaml.safe_load(raw)
            else:
                node = node.setdefault(key, {})
        else:
            raise ConfigError(f"override {path}: {key!r} is inside a scalar")


def config_from_dict(data: dict[str, Any]) -> Config:
    return build_dataclass(Config, data, "")


def load_config(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> Config:
    """Read, override and validate a YAML configuration (see the module docstring)."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise ConfigError(f"cannot read config {path}: {exc}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML ({exc})") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    for assignment in overrides:
        apply_override(data, assignment)
    return config_from_dict(data)


def config_to_dict(cfg: Any) -> dict[str, Any]:
    """The plain-data form (tuples as lists), suitable for YAML and TensorBoard."""

    def plain(v: Any) -> Any:
        if isinstance(v, tuple):
            return [plain(x) for x in v]
        if isinstance(v, list):
            return [plain(x) for x in v]
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        return v

    return plain(dataclasses.asdict(cfg))
