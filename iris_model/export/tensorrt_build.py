"""TensorRT engines from the exported ONNX graphs, with the ``tensorrt`` Python API (10.x / 11.x).

- Parsing: ``OnnxParser.parse_from_file`` (external weights next to the graph are found by the parser).
- Precision: ``fp32`` (TF32 allowed); ``fp16`` builds a *strongly typed* network from the float16 graphs
  that ``iris-export --fp16`` writes (TensorRT 10.12 deprecated the weakly typed FP16/BF16 builder flags in
  favour of strong typing); ``bf16`` uses the BF16 builder flag where this TensorRT still has it and the
  GPU has BF16 (compute capability >= 8.0). The VAE is always built in fp32, as the torch backend keeps it.
- One optimization profile per engine: batch 1..max_batch (optimum ``opt_batch``), text length
  1..max tokens, latent size from 1 up to a square of the exported long side (optimum = the exported size).
- A timing cache per GPU and TensorRT version (``engines/timing_cache_sm<XY>_trt<version>.bin``), loaded
  before and saved after every build, so rebuilding is fast.
- Engine files are keyed by GPU compute capability + TensorRT version + shape + precision (see
  :func:`engine_key`), with a JSON side file; :func:`plan_engine` decides load / build / refuse, so a stale
  engine is rebuilt from ONNX and never loaded.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import BackendUnavailableError, InputError, ModelLoadError
from .manifest import Manifest

if TYPE_CHECKING:
    import tensorrt as trt

logger = logging.getLogger(__name__)

TENSORRT_MISSING = (
    "TensorRT is not installed: pip install tensorrt (its libraries come from NVIDIA's own package index, "
    "on a machine with an NVIDIA GPU) / or use the onnxruntime backend"
)
PRECISIONS = ("fp32", "fp16", "bf16")
VAE_GRAPHS = ("vae_encoder", "vae_decoder", "tiny_decoder")  # built in fp32, as the torch backend runs them
DEFAULT_OPT_TOKENS = 16  # typical short scene descriptions; longer ones run too, tuned a little less


class EngineBuildError(ModelLoadError):
    """TensorRT could not parse a graph or build an engine (the message holds TensorRT's errors)."""


def tensorrt_available() -> bool:
    """Real TensorRT importable (``tensorrt-stubs`` alone installs an empty ``tensorrt`` namespace)."""
    try:
        import tensorrt
    except ImportError:
        return False
    return hasattr(tensorrt, "Builder")


def require_tensorrt() -> None:
    if not tensorrt_available():
        raise BackendUnavailableError(TENSORRT_MISSING)


@dataclass(frozen=True)
class GpuTarget:
    """What an engine is specific to: the GPU architecture and the TensorRT version that built it."""

    compute_capability: tuple[int, int]
    tensorrt_version: str

    @property
    def sm(self) -> str:
        return f"sm{self.compute_capability[0]}{self.compute_capability[1]}"

    @property
    def has_bf16(self) -> bool:
        return self.compute_capability >= (8, 0)

    @classmethod
    def current(cls, device_index: int = 0) -> GpuTarget:
        """The GPU ``device_index`` and the installed TensorRT."""
        require_tensorrt()
        import tensorrt as trt
        import torch

        if not torch.cuda.is_available():
            raise BackendUnavailableError("the tensorrt backend needs an NVIDIA GPU with CUDA (none visible here)")
        major, minor = torch.cuda.get_device_capability(device_index)
        return cls((int(major), int(minor)), str(trt.__version__))


def component_precision(component: str, precision: str) -> str:
    """The precision an engine of ``component`` is built in (the VAE stays fp32)."""
    if precision not in PRECISIONS:
        raise InputError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    return "fp32" if component in VAE_GRAPHS else precision


def engine_key(component: str, target: GpuTarget, height: int, width: int, max_batch: int, precision: str) -> str:
    """The engine's file name: everything that makes an engine unusable elsewhere is in it."""
    return (
        f"{component}_{target.sm}_trt{target.tensorrt_version}_{height}x{width}_b{max_batch}_"
        f"{component_precision(component, precision)}.engine"
    )


Shape = tuple[int, ...]


def profile_shapes(
    component: str, manifest: Manifest, opt_batch: int = 1, opt_tokens: int = DEFAULT_OPT_TOKENS
) -> dict[str, tuple[Shape, Shape, Shape]]:
    """(min, opt, max) shape of every input of ``component``'s engine."""
    m = manifest
    if not 1 <= opt_batch <= m.max_batch:
        raise InputError(f"opt_batch must be in [1, {m.max_batch}], got {opt_batch}")
    nb, ob = m.max_batch, opt_batch
    nt = m.max_text_tokens
    ot = max(1, min(opt_tokens, nt))
    f, c, d = m.vae_scale_factor, m.latent_channels, m.text_hidden_size
    lh, lw = m.latent_height, m.latent_width
    # Up to a square of the exported long side, so any aspect ratio at that processing resolution fits;
    # the optimum is the exported size itself.
    top = max(lh, lw)
    if component == "text_encoder":
        return {"input_ids": ((1, 1), (ob, ot), (nb, nt))}
    if component == "vae_encoder":
        return {"image": ((1, 3, f, f), (ob, 3, lh * f, lw * f), (nb, 3, top * f, top * f))}
    if component == "unet":
        # 2C input channels, or C for a UNet that sees the image latent alone (Lotus-D), as exported
        sample = [spec.shape[1] for spec in m.graphs["unet"].inputs if spec.name == "sample" and len(spec.shape) == 4]
        uc = sample[0] if sample and isinstance(sample[0], int) else 2 * c
        return {
            "sample": ((1, uc, 1, 1), (ob, uc, lh, lw), (nb, uc, top, top)),
            "timestep": ((1,), (1,), (1,)),
            "encoder_hidden_states": ((1, 1, d), (ob, ot, d), (nb, nt, d)),
        }
    if component in ("vae_decoder", "tiny_decoder"):
        return {"latent": ((1, c, 1, 1), (ob, c, lh, lw), (nb, c, top, top))}
    raise InputError(f"unknown component {component!r}")


# ---------------------------------------------------------------------------------------------- planning
@dataclass(frozen=True)
class EngineRecord:
    """The JSON side file of an engine (``<key>.json``)."""

    key: str
    component: str
    compute_capability: list[int]
    tensorrt_version: str
    height: int
    width: int
    max_batch: int
    precision: str
    onnx_file: str
    onnx_sha256: str
    built_at: str
    build_seconds: float


@dataclass(frozen=True)
class EnginePlan:
    """What to do for one component: ``load`` the engine, ``build`` it from ONNX, or ``refuse``."""

    action: str
    component: str
    engine_path: Path
    onnx_path: Path
    reason: str


def onnx_for(manifest: Manifest, engine_dir: Path, component: str, precision: str) -> tuple[Path, str]:
    """The ONNX file an engine is built from, and the hash recorded for it (fp16: the float16 graph)."""
    entry = manifest.graphs[component]
    if component_precision(component, precision) == "fp16" and entry.fp16_file:
        return engine_dir / entry.fp16_file, entry.sha256 + "+fp16"
    if component_precision(component, precision) == "fp16":
        return engine_dir / entry.file.replace(".onnx", ".fp16.onnx"), entry.sha256 + "+fp16"
    return engine_dir / entry.file, entry.sha256


def plan_engine(
    engine_dir: Path, manifest: Manifest, component: str, target: GpuTarget, precision: str
) -> EnginePlan:
    """Decide, without TensorRT, whether ``component``'s engine for ``target`` can be loaded.

    An engine is loaded only when its file carries the expected key *and* its side file confirms the GPU,
    TensorRT version and the hash of the ONNX it was built from. Anything else is rebuilt from the ONNX,
    or refused with the reason when the ONNX is not there.
    """
    engine_dir = Path(engine_dir)
    key = engine_key(component, target, manifest.height, manifest.width, manifest.max_batch, precision)
    engine_path = engine_dir / "engines" / key
    onnx_path, onnx_hash = onnx_for(manifest, engine_dir, component, precision)
    fp32_onnx = engine_dir / manifest.graphs[component].file
    can_build = onnx_path.is_file() or (onnx_path != fp32_onnx and fp32_onnx.is_file())

    reason = ""
    if engine_path.is_file():
        record = read_record(engine_path)
        if record is None:
            reason = f"{engine_path.name} has no readable side file {engine_path.with_suffix('.json').name}"
        elif tuple(record.compute_capability) != target.compute_capability:
            reason = f"{engine_path.name} was built for sm{''.join(map(str, record.compute_capability))}"
        elif record.tensorrt_version != target.tensorrt_version:
            reason = f"{engine_path.name} was built by TensorRT {record.tensorrt_version}"
        elif record.onnx_sha256 != onnx_hash:
            reason = f"{engine_path.name} was built from another export (ONNX hash differs)"
        else:
            return EnginePlan("load", component, engine_path, onnx_path, "engine matches this GPU and TensorRT")
    else:
        others = sorted(p.name for p in (engine_dir / "engines").glob(f"{component}_*.engine"))
        reason = f"no engine {key}" + (f" (found only: {', '.join(others)})" if others else "")
    wanted = f"{target.sm}, TensorRT {target.tensorrt_version}"
    if can_build:
        return EnginePlan("build", component, engine_path, onnx_path, f"{reason}; building for {wanted}")
    return EnginePlan(
        "refuse", component, engine_path, onnx_path,
        f"{reason}, and {fp32_onnx} to build one for {wanted} is missing: copy the onnx/ folder along with the "
        "engines, or re-run iris-export on this machine",
    )


def read_record(engine_path: Path) -> EngineRecord | None:
    try:
        return EngineRecord(**json.loads(engine_path.with_suffix(".json").read_text()))
    except (OSError, ValueError, TypeError):
        return None


def timing_cache_path(engine_dir: Path, target: GpuTarget) -> Path:
    return Path(engine_dir) / "engines" / f"timing_cache_{target.sm}_trt{target.tensorrt_version}.bin"


# ---------------------------------------------------------------------------------------------- building
def _progress_monitor(say: Callable[[str], None]) -> trt.IProgressMonitor:
    """A TensorRT progress monitor that reports top-level build phases through ``say``."""
    import tensorrt as trt

    class Progress(trt.IProgressMonitor):
        def __init__(self) -> None:
            trt.IProgressMonitor.__init__(self)
            self._started: dict[str, float] = {}

        def phase_start(self, phase_name: str, parent_phase: str | None, num_steps: int) -> None:
            self._started[phase_name] = time.perf_counter()
            if parent_phase is None:
                say(f"  {phase_name} ({num_steps} steps)")

        def step_complete(self, phase_name: str, step: int) -> bool:
            return True  # never cancel

        def phase_finish(self, phase_name: str) -> None:
            started = self._started.pop(phase_name, None)
            if started is not None and not self._started:
                say(f"  {phase_name} done in {time.perf_counter() - started:.1f} s")

    return Progress()


def _parse(
    trt_logger: trt.ILogger, builder: trt.Builder, onnx_path: Path, strongly_typed: bool
) -> tuple[trt.INetworkDefinition, trt.OnnxParser]:
    """The parsed network, and its parser, which owns the weights and must live until the build is done."""
    import tensorrt as trt

    flags = 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED) if strongly_typed else 0
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, trt_logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = "; ".join(str(parser.get_error(i).desc()) for i in range(parser.num_errors))
        raise EngineBuildError(onnx_path, f"TensorRT's ONNX parser failed: {errors}")
    return network, parser


def build_engine(
    engine_dir: Path,
    manifest: Manifest,
    plan: EnginePlan,
    target: GpuTarget,
    precision: str,
    opt_batch: int = 1,
    workspace_bytes: int | None = None,
    say: Callable[[str], None] | None = None,
) -> Path:
    """Build ``plan.component``'s engine, write it and its side file, update the timing cache."""
    require_tensorrt()
    import tensorrt as trt

    say = say or (lambda message: print(message, file=sys.stderr, flush=True))
    component, onnx_path = plan.component, plan.onnx_path
    precision = component_precision(component, precision)
    if precision == "fp16" and not onnx_path.is_file():
        from .onnx_export import convert_fp16

        say(f"{component}: writing the float16 graph {onnx_path.name}")
        convert_fp16(engine_dir / manifest.graphs[component].file, onnx_path)
    t0 = time.perf_counter()
    say(f"{component}: building {plan.engine_path.name} ({plan.reason})")

    trt_logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(trt_logger)
    network, parser = _parse(trt_logger, builder, onnx_path, strongly_typed=precision == "fp16")
    config = builder.create_builder_config()
    if workspace_bytes is not None:
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, workspace_bytes)
    if precision == "bf16":
        bf16_flag = getattr(trt.BuilderFlag, "BF16", None)
        if bf16_flag is None or not target.has_bf16:
            raise BackendUnavailableError(
                f"bf16 engines need a GPU with BF16 (compute capability >= 8.0, this is {target.sm}) and a "
                f"TensorRT with the BF16 builder flag (this is {target.tensorrt_version}); use fp16"
            )
        config.set_flag(bf16_flag)
    profile = builder.create_optimization_profile()
    shapes = profile_shapes(component, manifest, opt_batch)
    for index in range(network.num_inputs):
        tensor = network.get_input(index)
        dims = [int(tensor.shape[i]) for i in range(len(tensor.shape))]
        if tensor.name not in shapes:
            raise EngineBuildError(onnx_path, f"unexpected graph input {tensor.name!r}; re-run iris-export")
        if -1 in dims:  # static inputs (the timestep) take no profile
            low, opt, high = shapes[tensor.name]
            profile.set_shape(tensor.name, trt.Dims(list(low)), trt.Dims(list(opt)), trt.Dims(list(high)))
    config.add_optimization_profile(profile)

    cache_path = timing_cache_path(engine_dir, target)
    cache_path.parent.mkdir(parents=True, exist_ok=True)
    cache = config.create_timing_cache(cache_path.read_bytes() if cache_path.is_file() else b"")
    if not config.set_timing_cache(cache, ignore_mismatch=False):
        say(f"  timing cache {cache_path.name} does not match this GPU; starting a fresh one")
        config.set_timing_cache(config.create_timing_cache(b""), ignore_mismatch=False)
    monitor = _progress_monitor(say)  # kept referenced until the build returns, as TensorRT requires
    if hasattr(config, "progress_monitor"):
        config.progress_monitor = monitor

    serialized = builder.build_serialized_network(network, config)
    del parser, monitor  # only now: the network used the parser's weights, the build reported progress
    if serialized is None:
        raise EngineBuildError(onnx_path, f"TensorRT failed to build the {component} engine (see its log above)")
    plan.engine_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = plan.engine_path.with_suffix(".engine.tmp")
    with open(tmp, "wb") as handle:
        handle.write(memoryview(serialized))
    tmp.replace(plan.engine_path)
    with open(cache_path, "wb") as handle:
        handle.write(memoryview(config.get_timing_cache().serialize()))

    _, onnx_hash = onnx_for(manifest, engine_dir, component, precision)
    seconds = time.perf_counter() - t0
    record = EngineRecord(
        key=plan.engine_path.name,
        component=component,
        compute_capability=list(target.compute_capability),
        tensorrt_version=target.tensorrt_version,
        height=manifest.height,
        width=manifest.width,
        max_batch=manifest.max_batch,
        precision=precision,
        onnx_file=str(onnx_path.relative_to(engine_dir)),
        onnx_sha256=onnx_hash,
        built_at=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        build_seconds=round(seconds, 1),
    )
    plan.engine_path.with_suffix(".json").write_text(json.dumps(asdict(record), indent=2) + "\n")
    say(f"{component}: {plan.engine_path.name} built in {seconds:.1f} s ({plan.engine_path.stat().st_size >> 20} MiB)")
    return plan.engine_path


def ensure_engines(
    engine_dir: str | Path,
    precision: str = "fp32",
    device_index: int = 0,
    opt_batch: int = 1,
    workspace_bytes: int | None = None,
    build: bool = True,
    say: Callable[[str], None] | None = None,
    manifest: Manifest | None = None,
    tiny_decoder: bool | None = None,
) -> dict[str, Path]:
    """Make sure every component has an engine for this GPU and TensorRT; build what is missing or stale.

    Returns component -> engine path. With ``build=False`` a missing or stale engine is refused instead. The
    tiny decoder's engine is included when the ENGINE_DIR has its graph, unless ``tiny_decoder=False``.
    """
    engine_dir = Path(engine_dir)
    manifest = manifest or Manifest.load(engine_dir)
    target = GpuTarget.current(device_index)
    out: dict[str, Path] = {}
    from .manifest import select_graphs

    for component in select_graphs(manifest, tiny_decoder, engine_dir):
        plan = plan_engine(engine_dir, manifest, component, target, precision)
        if plan.action == "refuse" or (plan.action == "build" and not build):
            raise ModelLoadError(plan.engine_path, plan.reason)
        if plan.action == "build":
            build_engine(engine_dir, manifest, plan, target, precision, opt_batch, workspace_bytes, say)
        out[component] = plan.engine_path
    return out


def describe(engine_paths: dict[str, Path]) -> dict[str, Any]:
    """Side-file records of built engines (for logs and the CLI summary)."""
    return {name: (asdict(r) if (r := read_record(p)) else None) for name, p in engine_paths.items()}
