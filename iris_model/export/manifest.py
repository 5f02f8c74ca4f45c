"""``manifest.json`` of an exported ENGINE_DIR: what was exported, from which checkpoint, by which tools.

Layout of an ENGINE_DIR (written by :func:`iris_model.export.export_onnx`)::

    manifest.json                  this file: shapes, dtypes, opset, source hash, exporter versions
    model_index.json tokenizer/ scheduler/   copied from the checkpoint (the pipeline loads them as usual)
    unet/ vae/ text_encoder/       config.json only (no weights: they live in the graphs)
    onnx/<graph>.onnx              text_encoder, vae_encoder, unet, vae_decoder (+ .onnx.data when > 2 GB), and
                                   tiny_decoder when the checkpoint has one
    onnx/<graph>.fp16.onnx         with --fp16: float16 text encoder and UNet for TensorRT's strongly typed build
    engines/<key>.engine + .json   TensorRT engines, keyed by GPU, TensorRT version, shape and precision
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ModelLoadError
from ..loading import MODEL_INDEX, OPTIONAL_COMPONENTS, REQUIRED_COMPONENTS, resolve_component_dir

MANIFEST = "manifest.json"
FORMAT_VERSION = 1
GRAPHS = ("text_encoder", "vae_encoder", "unet", "vae_decoder")
#: exported when the checkpoint has them; backends use them unless told not to
OPTIONAL_GRAPHS = ("tiny_decoder",)


@dataclass(frozen=True)
class TensorSpec:
    """One graph input or output: ``shape`` holds ints for fixed axes and names for dynamic ones."""

    name: str
    shape: list[int | str]
    dtype: str


@dataclass(frozen=True)
class GraphEntry:
    """One exported ONNX graph (paths relative to ENGINE_DIR)."""

    file: str
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    sha256: str
    external_data: bool
    op_types: dict[str, int]
    fp16_file: str | None = None


@dataclass
class Manifest:
    """Everything a backend needs to run the exported graphs, and what they were made from."""

    source: dict[str, str]  # {"path": ..., "sha256": content hash of the checkpoint}
    exporter: dict[str, str]  # library -> version
    opset: int
    height: int  # exported image size, pixels (the TensorRT profiles' optimum and maximum)
    width: int
    max_batch: int
    vae_scale_factor: int
    latent_channels: int
    scaling_factor: float
    text_hidden_size: int
    max_text_tokens: int
    graphs: dict[str, GraphEntry]
    format_version: int = FORMAT_VERSION
    notes: dict[str, str] = field(default_factory=dict)

    def graph_names(self) -> tuple[str, ...]:
        """The required graphs and the optional ones this ENGINE_DIR holds, in build order."""
        return GRAPHS + tuple(g for g in OPTIONAL_GRAPHS if g in self.graphs)

    @property
    def latent_height(self) -> int:
        return self.height // self.vae_scale_factor

    @property
    def latent_width(self) -> int:
        return self.width // self.vae_scale_factor

    def save(self, engine_dir: Path) -> Path:
        path = Path(engine_dir) / MANIFEST
        path.write_text(json.dumps(asdict(self), indent=2, sort_keys=True) + "\n")
        return path

    @classmethod
    def load(cls, engine_dir: str | Path) -> Manifest:
        """Read ``engine_dir/manifest.json``; a plain checkpoint gets a message telling to run iris-export."""
        engine_dir = Path(engine_dir)
        path = engine_dir / MANIFEST
        if not path.is_file():
            hint = ""
            if (engine_dir / "unet").is_dir() and any((engine_dir / "unet").glob("*.safetensors")):
                hint = " This is a plain checkpoint (safetensors weights);"
            raise ModelLoadError(
                path,
                f"manifest.json is missing.{hint} The onnxruntime and tensorrt backends run exported graphs: run "
                f"`iris-export {engine_dir} --out ENGINE_DIR --height H --width W` and load ENGINE_DIR "
                "(or use backend='torch').",
            )
        try:
            raw = json.loads(path.read_text())
            if raw.get("format_version") != FORMAT_VERSION:
                raise ValueError(f"format_version {raw.get('format_version')!r}, expected {FORMAT_VERSION}")
            graphs = {
                name: GraphEntry(
                    **{
                        **entry,
                        "inputs": [TensorSpec(**t) for t in entry["inputs"]],
                        "outputs": [TensorSpec(**t) for t in entry["outputs"]],
                    }
                )
                for name, entry in raw.pop("graphs").items()
            }
            manifest = cls(graphs=graphs, **raw)
        except (OSError, ValueError, TypeError, KeyError, AttributeError) as exc:
            raise ModelLoadError(path, f"malformed manifest ({exc}); re-run iris-export") from exc
        missing = [g for g in GRAPHS if g not in manifest.graphs]
        if missing:
            raise ModelLoadError(path, f"graphs missing from the manifest: {missing}; re-run iris-export")
        return manifest


def select_graphs(manifest: Manifest, tiny_decoder: bool | None, engine_dir: Path) -> tuple[str, ...]:
    """The graphs a backend loads: the required four, plus the tiny decoder when exported, unless
    ``tiny_decoder=False`` (``True`` insists on it)."""
    names = manifest.graph_names()
    if tiny_decoder is True and "tiny_decoder" not in names:
        raise ModelLoadError(engine_dir, "tiny_decoder=True, but this ENGINE_DIR has no tiny_decoder graph "
                                         "(export a checkpoint that has one)")
    if tiny_decoder is False:
        names = tuple(n for n in names if n != "tiny_decoder")
    return names


def sha256_files(paths: Iterable[Path], root: Path | None = None) -> str:
    """SHA-256 over the files' relative names and contents, in the given order."""
    digest = hashlib.sha256()
    for path in paths:
        name = str(path.relative_to(root)) if root is not None else path.name
        digest.update(name.encode() + b"\0")
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        digest.update(b"\0")
    return digest.hexdigest()


def onnx_files(onnx_path: Path) -> list[Path]:
    """An ONNX file and its external-data file when it has one."""
    data = onnx_path.with_name(onnx_path.name + ".data")
    return [onnx_path, data] if data.is_file() else [onnx_path]


def checkpoint_sha256(model_dir: Path) -> str:
    """Content hash of a checkpoint: model_index.json and every file of every component (external ones
    resolved to the installed package they point to)."""
    model_dir = Path(model_dir)
    digest = hashlib.sha256()
    digest.update(sha256_files([model_dir / MODEL_INDEX], model_dir).encode())
    optional = [name for name in OPTIONAL_COMPONENTS if (model_dir / name).is_dir()]
    for name in (*REQUIRED_COMPONENTS, *optional):
        folder = resolve_component_dir(model_dir, name)
        files = sorted(p for p in folder.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
        digest.update(name.encode() + b"\0" + sha256_files(files, folder).encode())
    return digest.hexdigest()


def library_versions() -> dict[str, Any]:
    """Versions of the libraries that shape the exported graphs."""
    from importlib.metadata import PackageNotFoundError, version

    out: dict[str, Any] = {}
    for dist in ("torch", "onnx", "onnxscript", "onnx-ir", "onnxruntime", "diffusers", "transformers"):
        try:
            out[dist] = version(dist)
        except PackageNotFoundError:
            out[dist] = "not installed"
    from .. import __version__

    out["iris_model"] = __version__
    return out
