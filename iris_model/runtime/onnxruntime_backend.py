"""The ``onnxruntime`` backend: the four exported ONNX graphs of an ENGINE_DIR behind :class:`DepthComponents`.

Providers, in this order, whichever the installed onnxruntime has: TensorRT EP, CUDA EP, CPU EP (or the
list given). Tensors are passed to and from ONNX Runtime through I/O binding on the torch tensors' own
memory (``data_ptr``): no copies on the CPU, and on CUDA no round trip through the host.

The graphs are float32 with every axis but channels dynamic, so any processing resolution, batch and text
length runs, with results equal to the torch backend's to float32 rounding.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..components import TINY_DECODER
from ..errors import BackendUnavailableError, InputError, ModelLoadError
from ..export.manifest import Manifest, onnx_files, select_graphs

PREFERRED_PROVIDERS = ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider")
#: Above this total size of the ONNX files (weights included) the memory-saving session settings are the
#: default (see :class:`OrtOptions`); the full-size Marigold replica weighs 5.1 GB, the embedded model 60 MB.
LARGE_MODEL_BYTES = 1 << 30
GRAPH_OPTIMIZATION = {"disable": "ORT_DISABLE_ALL", "basic": "ORT_ENABLE_BASIC",
                      "extended": "ORT_ENABLE_EXTENDED", "all": "ORT_ENABLE_ALL"}


def _import_ort() -> Any:
    try:
        import onnxruntime
    except ImportError as exc:
        raise BackendUnavailableError(
            "onnxruntime is not installed: pip install onnxruntime (CPU) or onnxruntime-gpu (CUDA / TensorRT EP)"
        ) from exc
    return onnxruntime


@dataclass(frozen=True)
class OrtOptions:
    """Session settings (validated once).

    Attributes:
        providers: execution providers in priority order; ``None`` = :data:`PREFERRED_PROVIDERS` filtered by
            ``onnxruntime.get_available_providers()``.
        intra_op_threads: threads inside one operator; 0 = ONNX Runtime's default (one per physical core).
        inter_op_threads: threads across independent operators (parallel execution mode only); 0 = default.
        graph_optimization: ``disable``, ``basic``, ``extended`` or ``all``.
        io_binding: bind the torch tensors' memory directly (else: numpy arrays in, copies out).
        spin: let ORT's idle worker threads spin-wait (lower latency per call when nothing else needs the cores).
        fixed_shapes: one session per input shape with its dynamic axes pinned (faster steady state; each new
            shape, e.g. a description of another token length, costs a session build).
        cpu_arena: ONNX Runtime's CPU memory arena (``enable_cpu_mem_arena``). Each of the four sessions keeps
            its own arena at its peak, so the peaks add up across graphs; without it freed memory goes back
            to the system allocator and the text encoder, UNet and VAE reuse it in turn. ``None`` = off for
            an ENGINE_DIR whose graphs weigh more than :data:`LARGE_MODEL_BYTES`, on below (ORT's default).
        memory_pattern: pre-planned allocation per input shape (``enable_mem_pattern``); ``None`` = on.
        prepacking: let kernels keep a re-laid-out copy of their weights (``session.disable_prepacking`` off);
            ``None`` = on. (Measured with ``benchmarks/ort_memory.py``: on a half-width Marigold replica
            switching memory pattern or prepacking off saved nothing once the arena was off.)
    """

    providers: tuple[str, ...] | None = None
    intra_op_threads: int = 0
    inter_op_threads: int = 0
    graph_optimization: str = "all"
    io_binding: bool = True
    spin: bool = False
    fixed_shapes: bool = False
    cpu_arena: bool | None = None
    memory_pattern: bool | None = None
    prepacking: bool | None = None

    def __post_init__(self) -> None:
        for name in ("cpu_arena", "memory_pattern", "prepacking"):
            if getattr(self, name) not in (None, True, False):
                raise InputError(f"{name} must be True, False or None (automatic), got {getattr(self, name)!r}")
        for name in ("intra_op_threads", "inter_op_threads"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise InputError(f"{name} must be an int >= 0, got {value!r}")
        if self.graph_optimization not in GRAPH_OPTIMIZATION:
            raise InputError(f"graph_optimization must be one of {sorted(GRAPH_OPTIMIZATION)}, "
                             f"got {self.graph_optimization!r}")
        if self.providers is not None and (
            isinstance(self.providers, str) or not all(isinstance(p, str) for p in self.providers)
        ):
            raise InputError(f"providers must be a list of provider names, got {self.providers!r}")


def select_providers(requested: tuple[str, ...] | None, available: list[str]) -> list[str]:
    """The requested providers (default: TensorRT, CUDA, CPU) that this onnxruntime has, in order."""
    if requested is None:
        return [p for p in PREFERRED_PROVIDERS if p in available]
    missing = [p for p in requested if p not in available]
    if missing:
        raise BackendUnavailableError(
            f"onnxruntime here has no {', '.join(missing)} (available: {', '.join(available)}); "
            "the CUDA and TensorRT providers come with `pip install onnxruntime-gpu`"
        )
    return list(requested)


class _Graph:
    """One graph's ONNX Runtime session(s) and how to call them with torch tensors.

    With ``fixed_shapes`` a session is made per distinct input shape, its dynamic axes pinned with
    ``add_free_dimension_override_by_name`` so ONNX Runtime folds the shape arithmetic away (a camera of one
    size and a steady description hit one session); the ``max_sessions`` most recent are kept.
    """

    def __init__(
        self, ort: Any, path: Path, make_options: Callable[[], Any], providers: list[Any], io_binding: bool,
        axes: dict[str, list[int | str]], fixed_shapes: bool, max_sessions: int = 2,
    ) -> None:
        self.ort, self.path, self.make_options, self.providers = ort, path, make_options, providers
        self.io_binding, self.axes, self.fixed_shapes, self.max_sessions = io_binding, axes, fixed_shapes, max_sessions
        self._sessions: OrderedDict[tuple, Any] = OrderedDict()
        session = self._session(())  # the dynamic session: validates the graph at load time
        self.output_name = session.get_outputs()[0].name
        if fixed_shapes:
            self._sessions.clear()  # only shape-specialized sessions are kept from now on

    def _session(self, key: tuple) -> Any:
        session = self._sessions.get(key)
        if session is not None:
            self._sessions.move_to_end(key)
            return session
        options = self.make_options()
        for name, value in key:
            options.add_free_dimension_override_by_name(name, value)
        try:
            session = self.ort.InferenceSession(str(self.path), sess_options=options, providers=self.providers)
        except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph types
            raise ModelLoadError(self.path, f"onnxruntime cannot load the graph: {exc}") from exc
        self._sessions[key] = session
        while len(self._sessions) > self.max_sessions:
            self._sessions.popitem(last=False)
        return session

    def _key(self, inputs: dict[str, torch.Tensor]) -> tuple:
        if not self.fixed_shapes:
            return ()
        dims: dict[str, int] = {}
        for name, tensor in inputs.items():
            for axis, size in zip(self.axes[name], tensor.shape, strict=True):
                if isinstance(axis, str):
                    dims[axis] = int(size)
        return tuple(sorted(dims.items()))

    def __call__(self, inputs: dict[str, torch.Tensor], out: torch.Tensor) -> torch.Tensor:
        """Run on ``inputs`` (contiguous, matching the graph's dtypes) into the preallocated ``out``."""
        session = self._session(self._key(inputs))
        if not self.io_binding:
            feeds = {name: tensor.cpu().numpy() for name, tensor in inputs.items()}
            result = session.run([self.output_name], feeds)[0]
            return out.copy_(torch.from_numpy(result))
        binding = session.io_binding()
        for name, tensor in inputs.items():
            binding.bind_input(
                name, tensor.device.type, tensor.device.index or 0, _np_dtype(tensor.dtype), list(tensor.shape),
                tensor.data_ptr(),
            )
        binding.bind_output(
            self.output_name, out.device.type, out.device.index or 0, _np_dtype(out.dtype), list(out.shape),
            out.data_ptr(),
        )
        on_cuda = out.device.type == "cuda"
        if on_cuda:  # ORT runs on its own CUDA stream: the inputs torch produced must be complete first
            torch.cuda.current_stream(out.device).synchronize()
        session.run_with_iobinding(binding)
        if on_cuda:
            binding.synchronize_outputs()
        return out


def _engine_bytes(engine_dir: Path, manifest: Manifest) -> int:
    return sum(f.stat().st_size for g in manifest.graphs.values() for f in onnx_files(engine_dir / g.file)
               if f.is_file())


def resolve_memory_settings(options: OrtOptions, model_bytes: int) -> dict[str, bool]:
    """The arena / memory-pattern / prepacking settings for a model of ``model_bytes`` (``None`` = automatic)."""
    defaults = {"cpu_arena": model_bytes <= LARGE_MODEL_BYTES, "memory_pattern": True, "prepacking": True}
    return {name: default if getattr(options, name) is None else bool(getattr(options, name))
            for name, default in defaults.items()}


def _np_dtype(dtype: torch.dtype) -> Any:
    return {torch.float32: np.float32, torch.float16: np.float16, torch.int64: np.int64}[dtype]


class OnnxRuntimeComponents:
    """:class:`~iris_model.components.DepthComponents` over the exported graphs of an ENGINE_DIR.

    Torch tensors in and out on ``device`` (CPU, or CUDA with onnxruntime-gpu); float32 only (use the
    ``tensorrt`` backend for float16).
    """

    name = "onnxruntime"

    def __init__(
        self,
        engine_dir: str | Path,
        device: str | torch.device = "cpu",
        dtype: torch.dtype = torch.float32,
        manifest: Manifest | None = None,
        tiny_decoder: bool | None = None,
        **options: Any,
    ) -> None:
        ort = _import_ort()
        self.engine_dir = Path(engine_dir)
        self.manifest = manifest or Manifest.load(self.engine_dir)
        graph_names = select_graphs(self.manifest, tiny_decoder, self.engine_dir)
        if dtype != torch.float32:
            raise InputError(
                f"the onnxruntime backend runs the exported float32 graphs; got dtype={dtype}. "
                "Use dtype=torch.float32, or backend='tensorrt' for float16."
            )
        try:
            self.options = OrtOptions(**{k: tuple(v) if k == "providers" and v is not None else v
                                         for k, v in options.items()})
        except TypeError as exc:
            raise InputError(f"unknown onnxruntime backend option: {exc}") from exc
        self.device = torch.device(device)
        self.dtype = torch.float32
        available = ort.get_available_providers()
        self.providers = select_providers(self.options.providers, available)
        if self.device.type == "cuda" and "CUDAExecutionProvider" not in self.providers:
            raise BackendUnavailableError(
                f"device={self.device} needs onnxruntime's CUDA provider (have: {', '.join(available)}): "
                "pip install onnxruntime-gpu, or use device='cpu'"
            )
        if self.device.type not in ("cpu", "cuda"):
            raise InputError(f"the onnxruntime backend runs on cpu or cuda devices, got {self.device}")

        m = self.manifest
        self.vae_scale_factor = m.vae_scale_factor
        self.latent_channels = m.latent_channels
        self.text_hidden_size = m.text_hidden_size
        options = self.options
        self.memory_settings = resolve_memory_settings(options, _engine_bytes(self.engine_dir, m))

        def make_options() -> Any:
            session_options = ort.SessionOptions()
            session_options.graph_optimization_level = getattr(
                ort.GraphOptimizationLevel, GRAPH_OPTIMIZATION[options.graph_optimization]
            )
            session_options.intra_op_num_threads = options.intra_op_threads
            session_options.inter_op_num_threads = options.inter_op_threads
            session_options.log_severity_level = 3  # errors only: ORT's optimizer warnings are not actionable
            memory = self.memory_settings
            session_options.enable_cpu_mem_arena = memory["cpu_arena"]
            session_options.enable_mem_pattern = memory["memory_pattern"]
            if not memory["prepacking"]:
                session_options.add_session_config_entry("session.disable_prepacking", "1")
            if not options.spin:
                # ORT's worker threads otherwise spin after each run, stealing the cores from the torch code
                # (resize, scheduler, ensembling) that runs between graph calls.
                session_options.add_session_config_entry("session.intra_op.allow_spinning", "0")
                session_options.add_session_config_entry("session.inter_op.allow_spinning", "0")
            return session_options

        providers = [self._provider_entry(p) for p in self.providers]
        self.graphs: dict[str, _Graph] = {}
        for graph in graph_names:
            entry = m.graphs[graph]
            path = self.engine_dir / entry.file
            if not path.is_file():
                raise ModelLoadError(path, f"the {graph} graph is missing; re-run iris-export")
            axes = {spec.name: spec.shape for spec in entry.inputs}
            self.graphs[graph] = _Graph(
                ort, path, make_options, providers, options.io_binding, axes, options.fixed_shapes
            )
        self.tiny_decoder = self.graphs.get(TINY_DECODER)
        #: decode with the exported tiny decoder when there is one (``pipe.set_decoder``)
        self.use_tiny_decoder = self.tiny_decoder is not None

    def _provider_entry(self, provider: str) -> Any:
        device_id = self.device.index or 0
        if provider == "TensorrtExecutionProvider":
            cache = self.engine_dir / "ort_trt_cache"
            return (provider, {
                "device_id": device_id,
                "trt_engine_cache_enable": True,
                "trt_engine_cache_path": str(cache),
                "trt_timing_cache_enable": True,
                "trt_timing_cache_path": str(cache),
            })
        if provider == "CUDAExecutionProvider":
            return (provider, {"device_id": device_id})
        return provider

    @classmethod
    def from_engine_dir(
        cls, engine_dir: str | Path, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32,
        **options: Any,
    ) -> OnnxRuntimeComponents:
        return cls(engine_dir, device=device, dtype=dtype, **options)

    # ------------------------------------------------------------------ DepthComponents
    def _f32(self, tensor: torch.Tensor) -> torch.Tensor:
        return tensor.to(self.device, torch.float32).contiguous()

    def _empty(self, *shape: int) -> torch.Tensor:
        return torch.empty(shape, dtype=torch.float32, device=self.device)

    @torch.inference_mode()
    def encode_text(self, input_ids: torch.Tensor) -> torch.Tensor:
        ids = input_ids.to(self.device, torch.int64).contiguous()
        if ids.dim() != 2:
            raise InputError(f"input_ids must be [B, L], got {tuple(ids.shape)}")
        out = self._empty(ids.shape[0], ids.shape[1], self.text_hidden_size)
        return self.graphs["text_encoder"]({"input_ids": ids}, out)

    @torch.inference_mode()
    def encode_image(self, image: torch.Tensor) -> torch.Tensor:
        image = self._f32(image)
        b, _, h, w = image.shape
        f = self.vae_scale_factor
        if h % f or w % f:
            raise InputError(f"image size {h}x{w} must be a multiple of the VAE stride {f} (the pipeline pads it)")
        out = self._empty(b, self.latent_channels, h // f, w // f)
        return self.graphs["vae_encoder"]({"image": image}, out)

    @torch.inference_mode()
    def denoise(self, latents: torch.Tensor, timestep: int, text: torch.Tensor) -> torch.Tensor:
        sample = self._f32(latents)
        b, _, h, w = sample.shape
        inputs = {
            "sample": sample,
            "timestep": torch.tensor([int(timestep)], dtype=torch.int64, device=self.device),
            "encoder_hidden_states": self._f32(text),
        }
        return self.graphs["unet"](inputs, self._empty(b, self.latent_channels, h, w))

    @torch.inference_mode()
    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        latent = self._f32(latents)
        b, _, h, w = latent.shape
        f = self.vae_scale_factor
        graph = TINY_DECODER if self.use_tiny_decoder and self.tiny_decoder is not None else "vae_decoder"
        return self.graphs[graph]({"latent": latent}, self._empty(b, 1, h * f, w * f))
