"""The depth node's parameters: names, defaults, ranges and meaning in one place, validated once.

:class:`NodeConfig` is what the node runs with. The node declares one ROS parameter per field (with a
``ParameterDescriptor`` built from :data:`PARAMETERS`: description, range, read-only unless dynamic),
validates the values it got into a :class:`NodeConfig` at start-up, and validates every run-time change
(``ros2 param set``) by building a new one. ``config/depth.yaml`` and the launch-file test use the same
table.

Units: ``scale`` and ``shift`` map the model's relative depth d in [0, 1] to meters as ``scale * d + shift``;
``max_range`` is meters along the optical axis (relative units in ``relative`` mode); ``sparse_tolerance_s``
is seconds.
"""

from __future__ import annotations

import dataclasses
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from iris_model.errors import InputError
from iris_model.pipeline import MAX_ENSEMBLE, MAX_PROCESSING_RESOLUTION
from iris_model.text import MAX_TEXT_CHARS

DEPTH_MODES = ("relative", "fixed_scale", "sparse_aligned")
IMAGE_QOS = ("sensor_data", "reliable")
DTYPES = ("fp32", "fp16", "bf16")
DECODERS = ("auto", "vae", "tiny")
#: decoder parameter -> IrisDepthPipeline.from_pretrained(tiny_decoder=...)
TINY_DECODER_ARG: dict[str, bool | None] = {"auto": None, "vae": False, "tiny": True}
TEMPORAL_MODES = ("off", "stream", "pose")
POSE_SOURCES = ("topic", "tf")
#: Longest accepted description (characters); the text encoder reads only its first ~77 tokens anyway.
MAX_DESCRIPTION_CHARS = MAX_TEXT_CHARS
MAX_STEPS = 50
#: Most characters of echoed input (a parameter value, an encoding, a description) in log lines and replies.
MAX_ECHO_CHARS = 200


def echo(value: Any, limit: int = MAX_ECHO_CHARS) -> str:
    """``repr(value)`` cut to about ``limit`` characters (saying how long it was): input echoed back in a log
    line or a reply stays readable, whatever its size."""
    text = repr(value)
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(text)} characters)"


class ConfigError(InputError):
    """A parameter value is out of range, of the wrong type, or not one of the allowed choices."""


class DescriptionError(InputError):
    """A scene description cannot be used (too long, control characters, not text)."""


def _param(
    default: Any,
    description: str,
    *,
    range: tuple[float, float] | None = None,
    choices: tuple[str, ...] | None = None,
    dynamic: bool = False,
) -> Any:
    return field(
        default=default,
        metadata={"description": description, "range": range, "choices": choices, "dynamic": dynamic},
    )


@dataclass(frozen=True)
class NodeConfig:
    """Validated settings of the depth node (see each field's ``description`` metadata)."""

    model_dir: str = _param("", "model directory (diffusers layout); empty = the embedded default model")
    backend: str = _param("torch", "runtime backend passed to IrisDepthPipeline.from_pretrained (torch, ...)")
    device: str = _param("cpu", "device for the backend, e.g. cpu, cuda, cuda:1")
    num_steps: int = _param(
        0, "denoising steps per frame, 1..50; 0 = the model's default", range=(0, MAX_STEPS), dynamic=True
    )
    ensemble_size: int = _param(1, "predictions per frame, aligned and averaged", range=(1, MAX_ENSEMBLE), dynamic=True)
    processing_resolution: int = _param(
        -1,
        "long side (px) the model works at; -1 = the model's default, 0 = the input size",
        range=(-1, MAX_PROCESSING_RESOLUTION),
    )
    seed: int = _param(
        0, "noise seed, the same for every frame so that output is stable between frames", range=(0, 2**31 - 1)
    )
    depth_mode: str = _param(
        "relative",
        "relative: model depth in [0, 1], unitless, NOT meters; fixed_scale: meters = scale * d + shift; "
        "sparse_aligned: meters from a per-frame robust fit to the sparse_depth topic",
        choices=DEPTH_MODES,
        dynamic=True,
    )
    scale: float = _param(1.0, "fixed_scale mode: meters per unit of relative depth", range=(1e-6, 1e6), dynamic=True)
    shift: float = _param(0.0, "fixed_scale mode: meters added after scaling", range=(-1e6, 1e6), dynamic=True)
    sparse_tolerance_s: float = _param(
        0.05,
        "sparse_aligned mode: largest stamp difference (s) between an image and its sparse depth",
        range=(0.0, 10.0),
    )
    cloud_stride: int = _param(
        1, "keep every n-th row and column of the point cloud (1 = full resolution)", range=(1, 64)
    )
    cloud_rgb: bool = _param(True, "color the point cloud with the camera image (XYZRGB), else XYZ")
    max_range: float = _param(0.0, "drop points farther than this along z (meters); 0 = keep all", range=(0.0, 1e6))
    colorize: bool = _param(True, "publish depth/colorized (turbo colormap, for RViz)")
    image_qos: str = _param(
        "sensor_data", "image subscription QoS: sensor_data (best effort) or reliable", choices=IMAGE_QOS
    )
    compressed_input: bool = _param(False, "subscribe to image/compressed (CompressedImage) instead of image")
    description_override: str = _param("", "when not empty, used instead of the description topic", dynamic=True)
    dtype: str = _param(
        "fp32",
        "precision of the model weights (torch backend): fp32, fp16 or bf16; the VAE stays fp32",
        choices=DTYPES,
    )
    decoder: str = _param(
        "auto",
        "depth decoder: auto (the checkpoint's tiny decoder when it has one, else its VAE decoder), vae or tiny",
        choices=DECODERS,
    )
    temporal_mode: str = _param(
        "off",
        "off: every frame on its own (the same seeded noise each frame, per-frame [0, 1] scale); stream: on a scale "
        "kept stable between frames, fused with the previous output (multi-step models also warm-started), sparse "
        "fits filtered over time; "
        "pose: metric depth fused with the previous output moved by the camera's known motion (see pose_source; "
        "needs depth_mode fixed_scale or sparse_aligned)",
        choices=TEMPORAL_MODES,
        dynamic=True,
    )
    pose_source: str = _param(
        "topic",
        "temporal_mode=pose: where the camera's pose at each image stamp comes from: topic (camera_pose, "
        "geometry_msgs/PoseStamped: the image's optical frame in a fixed frame) or tf (fixed_frame -> the image's "
        "frame_id, needs tf2_ros)",
        choices=POSE_SOURCES,
    )
    fixed_frame: str = _param("odom", "pose_source=tf: the world-fixed frame the camera's motion is looked up in")
    pose_tolerance_s: float = _param(
        0.05,
        "temporal_mode=pose: how long (s) the node waits for the camera's pose at an image's stamp (topic: for "
        "a pose at or after it; tf: for the transform), and with topic, the largest stamp difference of a pose "
        "used as it is when none after the stamp came",
        range=(0.0, 1.0),
    )

    def __post_init__(self) -> None:
        for spec in PARAMETERS:
            value = getattr(self, spec.name)
            if spec.type is float and isinstance(value, int) and not isinstance(value, bool):
                object.__setattr__(self, spec.name, float(value))
                value = float(value)
            spec.check(value)
        for name in ("backend", "device", "fixed_frame"):
            value = getattr(self, name)
            if not value.strip() or value != value.strip():
                raise ConfigError(f"parameter {name!r} must be a non-empty word, got {echo(value)}")
        if self.fixed_frame.startswith("/"):
            raise ConfigError(
                f"parameter 'fixed_frame': tf2 frame ids have no leading '/', got {echo(self.fixed_frame)}"
            )
        check_description(self.description_override)
        if self.temporal_mode == "pose" and not self.is_metric:
            raise ConfigError(
                "temporal_mode 'pose' fuses depth in meters along the camera's motion: it needs depth_mode "
                f"fixed_scale or sparse_aligned, not {self.depth_mode!r}"
            )

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> NodeConfig:
        """Build from ``{name: value}`` (e.g. a params file or the node's parameters); unknown names are refused."""
        unknown = sorted(set(values) - set(PARAMETER_NAMES))
        if unknown:
            raise ConfigError(f"unknown parameter(s) {echo(unknown)}; known: {sorted(PARAMETER_NAMES)}")
        return cls(**dict(values))

    def with_changes(self, **changes: Any) -> NodeConfig:
        """A validated copy with some fields changed (raises :class:`ConfigError`)."""
        unknown = sorted(set(changes) - set(PARAMETER_NAMES))
        if unknown:
            raise ConfigError(f"unknown parameter(s) {echo(unknown)}")
        return dataclasses.replace(self, **changes)

    @property
    def torch_dtype(self) -> Any:
        """``dtype`` as a ``torch.dtype`` (what ``IrisDepthPipeline.from_pretrained(dtype=...)`` takes)."""
        import torch

        return {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[self.dtype]

    @property
    def is_metric(self) -> bool:
        """Whether the published depth and points are in meters (False in ``relative`` mode)."""
        return self.depth_mode != "relative"


@dataclass(frozen=True)
class ParamSpec:
    """One node parameter: what the node declares and how a value is checked."""

    name: str
    default: Any
    type: type
    description: str
    range: tuple[float, float] | None
    choices: tuple[str, ...] | None
    dynamic: bool

    def check(self, value: Any) -> None:
        if self.type is bool:
            ok = isinstance(value, bool)
        elif self.type is int:
            ok = isinstance(value, int) and not isinstance(value, bool)
        elif self.type is float:
            ok = isinstance(value, float)
        else:
            ok = isinstance(value, str)
        if not ok:
            hint = ""
            if self.type is str and isinstance(value, bool):  # YAML 1.1 reads off/on/yes/no unquoted as booleans
                hint = f" (YAML reads off, on, yes and no as booleans: quote the value, e.g. {self.name}:='off')"
            raise ConfigError(f"parameter {self.name!r} must be {self.type.__name__}, got {echo(value)}{hint}")
        if self.range is not None:
            lo, hi = self.range
            if not lo <= value <= hi:  # also refuses NaN
                raise ConfigError(f"parameter {self.name!r} must be in [{lo:g}, {hi:g}], got {echo(value)}")
        if self.choices is not None and value not in self.choices:
            raise ConfigError(f"parameter {self.name!r} must be one of {list(self.choices)}, got {echo(value)}")


def _specs() -> tuple[ParamSpec, ...]:
    types = {"str": str, "int": int, "float": float, "bool": bool}
    return tuple(
        ParamSpec(
            name=f.name,
            default=f.default,
            type=types[f.type if isinstance(f.type, str) else f.type.__name__],
            description=f.metadata["description"],
            range=f.metadata["range"],
            choices=f.metadata["choices"],
            dynamic=f.metadata["dynamic"],
        )
        for f in dataclasses.fields(NodeConfig)
    )


PARAMETERS: tuple[ParamSpec, ...] = _specs()
PARAMETER_NAMES: tuple[str, ...] = tuple(p.name for p in PARAMETERS)
DYNAMIC_PARAMETERS: frozenset[str] = frozenset(p.name for p in PARAMETERS if p.dynamic)


def check_description(text: Any) -> tuple[str, str | None]:
    """Validate a scene description; return ``(text stripped, warning or None)``.

    Raises :class:`DescriptionError` for non-text, more than :data:`MAX_DESCRIPTION_CHARS` characters, or
    control characters. Non-ASCII text is accepted (the tokenizers read UTF-8) with a warning, because the
    text encoders were trained on English captions.
    """
    if not isinstance(text, str):
        raise DescriptionError(f"a description must be a string, got {type(text).__name__}")
    if len(text) > MAX_DESCRIPTION_CHARS:
        raise DescriptionError(
            f"description of {len(text)} characters refused: the limit is {MAX_DESCRIPTION_CHARS} "
            "(the text encoder reads only its first ~77 tokens)"
        )
    controls = sorted({hex(ord(c)) for c in text if unicodedata.category(c) == "Cc" and c not in "\t\n\r"})
    if controls:
        raise DescriptionError(f"description refused: it contains control characters {controls[:5]}")
    text = text.strip()
    warning = None
    if not text.isascii():
        extra = sorted({c for c in text if not c.isascii()})
        warning = (
            f"description contains {len(extra)} distinct non-ASCII character(s) ({''.join(extra[:10])!r}); it is "
            "used as given, but the text encoder was trained on English and may ignore them"
        )
    return text, warning
