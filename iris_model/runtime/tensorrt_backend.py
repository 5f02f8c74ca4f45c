"""The ``tensorrt`` backend: native TensorRT engines behind :class:`DepthComponents` (TensorRT 10.x / 11.x).

Engines come from ENGINE_DIR/engines, keyed by GPU, TensorRT version, shape and precision; a missing or
stale one is built from the exported ONNX on load (see :mod:`iris_model.export.tensorrt_build`).

Execution uses TensorRT's name-based tensor API (``num_io_tensors``, ``get_tensor_name``,
``set_input_shape``, ``set_tensor_address``, ``execute_async_v3``) on a dedicated CUDA stream. Device
memory comes from torch (``torch.empty(...).data_ptr()``), as pycuda is not used: every input and output
buffer is allocated and bound once per input shape (batch, text length, latent size) and reused, so a
steady stream of frames of one size allocates nothing in this backend and rebinds nothing. Inputs are
copied into the bound buffers on the stream; the UNet's output buffer is handed to the scheduler as it is
(valid until the next ``denoise`` call, which is how the pipeline's loop uses it), the once-per-frame
outputs are copied out so that cached text embeddings and batched results stay valid.

Sizes: the engines' profiles take batch 1..max_batch (larger batches are split) and images from one latent
pixel up to a square of the exported long side, optimal at the exported ``height x width``: any image the
pipeline resizes to ``processing_resolution <= max(height, width)`` runs, whatever its aspect ratio; a
larger one gets an :class:`~iris_model.errors.InputError` that says which resolution to use.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from ..components import TINY_DECODER
from ..errors import BackendUnavailableError, InputError, ModelLoadError
from ..export.manifest import Manifest
from ..export.tensorrt_build import PRECISIONS, ensure_engines, require_tensorrt

if TYPE_CHECKING:
    import tensorrt as trt

logger = logging.getLogger(__name__)

DTYPE_PRECISION = {torch.float32: "fp32", torch.float16: "fp16", torch.bfloat16: "bf16"}


def _shape(dims: trt.Dims) -> tuple[int, ...]:
    return tuple(int(dims[i]) for i in range(len(dims)))


def _torch_dtype(dtype: trt.DataType) -> torch.dtype:
    import tensorrt as trt

    table = {
        trt.DataType.FLOAT: torch.float32,
        trt.DataType.HALF: torch.float16,
        trt.DataType.BF16: torch.bfloat16,
        trt.DataType.INT64: torch.int64,
        trt.DataType.INT32: torch.int32,
        trt.DataType.BOOL: torch.bool,
    }
    if dtype not in table:
        raise ModelLoadError("engine", f"unsupported TensorRT I/O data type {dtype}")
    return table[dtype]


class TrtEngine:
    """One engine and its execution context, with I/O buffers preallocated and bound per input shape."""

    def __init__(
        self, runtime: trt.Runtime, path: Path, device: torch.device, stream: torch.cuda.Stream, max_shapes: int = 8
    ) -> None:
        import tensorrt as trt

        engine = runtime.deserialize_cuda_engine(path.read_bytes())
        if engine is None:
            raise ModelLoadError(path, "TensorRT cannot deserialize this engine (corrupt, or from another "
                                       "GPU / TensorRT version); delete it to have it rebuilt from ONNX")
        context = engine.create_execution_context()
        if context is None:
            raise ModelLoadError(path, "TensorRT could not create an execution context (out of GPU memory?)")
        self.path = path
        self.engine: trt.ICudaEngine = engine
        self.context: trt.IExecutionContext = context
        self.device = device
        self.stream = stream
        names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
        self.inputs = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        self.outputs = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.OUTPUT]
        self.dtypes = {n: _torch_dtype(engine.get_tensor_dtype(n)) for n in names}
        self.ranges = {
            n: [_shape(dims) for dims in engine.get_tensor_profile_shape(n, 0)] for n in self.inputs
        }
        self._buffers: OrderedDict[tuple, dict[str, torch.Tensor]] = OrderedDict()
        self._bound: tuple | None = None
        self._max_shapes = max_shapes

    def check(self, shapes: dict[str, tuple[int, ...]]) -> str | None:
        """Why these input shapes are outside the engine's profile, or ``None`` when they fit."""
        for name, shape in shapes.items():
            low, _, high = self.ranges[name]
            if len(shape) != len(low) or any(not lo <= s <= hi for s, lo, hi in zip(shape, low, high, strict=True)):
                return f"{name} shape {shape} outside the engine's range {low}..{high}"
        return None

    def _bind(self, shapes: dict[str, tuple[int, ...]]) -> dict[str, torch.Tensor]:
        key = tuple(shapes[n] for n in self.inputs)
        buffers = self._buffers.get(key)
        if buffers is None:
            problem = self.check(shapes)
            if problem:
                raise InputError(f"{self.path.name}: {problem}")
            buffers = {}
            for name in self.inputs:
                if not self.context.set_input_shape(name, shapes[name]):
                    raise InputError(f"{self.path.name}: TensorRT refused input shape {name}={shapes[name]}")
                buffers[name] = torch.empty(shapes[name], dtype=self.dtypes[name], device=self.device)
            for name in self.outputs:
                shape = _shape(self.context.get_tensor_shape(name))
                buffers[name] = torch.empty(shape, dtype=self.dtypes[name], device=self.device)
            self._buffers[key] = buffers
            if len(self._buffers) > self._max_shapes:  # bound the memory kept for rarely seen shapes
                old_key, _ = self._buffers.popitem(last=False)
                if old_key == self._bound:
                    self._bound = None
            self._bound = None
        else:
            self._buffers.move_to_end(key)
        if self._bound != key:
            for name in self.inputs:
                self.context.set_input_shape(name, shapes[name])
            for name, tensor in buffers.items():
                self.context.set_tensor_address(name, tensor.data_ptr())
            self._bound = key
        return buffers

    def run(self, inputs: dict[str, torch.Tensor | int]) -> dict[str, torch.Tensor]:
        """Copy ``inputs`` (tensors, or ints for one-element inputs) into the bound buffers and execute.

        Returns the engine's own output buffers, valid until the next call with the same shapes."""
        shapes = {n: (tuple(v.shape) if isinstance(v, torch.Tensor) else (1,)) for n, v in inputs.items()}
        buffers = self._bind(shapes)
        current = torch.cuda.current_stream(self.device)
        self.stream.wait_stream(current)  # inputs were produced, and old outputs read, on the caller's stream
        with torch.cuda.stream(self.stream):
            for name, value in inputs.items():
                if isinstance(value, torch.Tensor):
                    buffers[name].copy_(value, non_blocking=True)
                else:
                    buffers[name].fill_(value)
            if not self.context.execute_async_v3(self.stream.cuda_stream):
                raise RuntimeError(f"TensorRT execution of {self.path.name} failed")
        current.wait_stream(self.stream)
        return {name: buffers[name] for name in self.outputs}


class TensorRTComponents:
    """:class:`~iris_model.components.DepthComponents` over the TensorRT engines of an ENGINE_DIR.

    Args:
        engine_dir: an ENGINE_DIR written by ``iris-export``.
        device: a CUDA device (``"cpu"``, the pipeline's default, means ``cuda:0``).
        dtype: picks the engines' precision when ``precision`` is not given (float32 -> fp32, float16 -> fp16,
            bfloat16 -> bf16). The tensors crossing this interface are float32 either way.
        precision: ``fp32``, ``fp16`` or ``bf16`` (text encoder and UNet; the VAE is fp32).
        build: build missing or stale engines from the ONNX (else refuse them).
        opt_batch: the batch size the engines are tuned for.
        workspace_gb: TensorRT's workspace memory pool limit, GiB (default: TensorRT's).
        tiny_decoder: ``None`` decodes with the tiny decoder's engine when the ENGINE_DIR has its graph,
            ``False`` always with the VAE decoder's, ``True`` insists on the tiny one.
    """

    name = "tensorrt"

    def __init__(
        self,
        engine_dir: str | Path,
        device: str | torch.device = "cuda",
        dtype: torch.dtype = torch.float32,
        precision: str | None = None,
        build: bool = True,
        opt_batch: int = 1,
        workspace_gb: float | None = None,
        progress: Callable[[str], None] | None = None,
        tiny_decoder: bool | None = None,
    ) -> None:
        require_tensorrt()
        import tensorrt as trt

        if not torch.cuda.is_available():
            raise BackendUnavailableError("the tensorrt backend needs an NVIDIA GPU with CUDA (none visible here)")
        device = torch.device(device)
        if device.type == "cpu":
            logger.info("the tensorrt backend runs on CUDA: using cuda:0 for device='cpu'")
            device = torch.device("cuda", 0)
        if device.type != "cuda":
            raise InputError(f"the tensorrt backend runs on a CUDA device, got {device}")
        self.device = torch.device("cuda", device.index or 0)
        if precision is None:
            if dtype not in DTYPE_PRECISION:
                raise InputError(f"dtype must be one of {list(DTYPE_PRECISION)}, got {dtype}")
            precision = DTYPE_PRECISION[dtype]
        if precision not in PRECISIONS:
            raise InputError(f"precision must be one of {PRECISIONS}, got {precision!r}")
        self.precision = precision
        self.dtype = torch.float32
        self.engine_dir = Path(engine_dir)
        self.manifest = Manifest.load(self.engine_dir)
        m = self.manifest
        self.vae_scale_factor = m.vae_scale_factor
        self.latent_channels = m.latent_channels
        self.max_batch = m.max_batch
        self.max_side = max(m.height, m.width)

        workspace = None if workspace_gb is None else int(workspace_gb * (1 << 30))
        with torch.cuda.device(self.device):
            paths = ensure_engines(
                self.engine_dir, precision, self.device.index or 0, opt_batch, workspace, build, progress, m,
                tiny_decoder,
            )
            self._trt_logger = trt.Logger(trt.Logger.WARNING)
            self._runtime = trt.Runtime(self._trt_logger)
            self.stream = torch.cuda.Stream(self.device)
            self.engines = {
                name: TrtEngine(self._runtime, path, self.device, self.stream) for name, path in paths.items()
            }
        #: decode with the tiny decoder's engine when the ENGINE_DIR has one (``pipe.set_decoder``)
        self.tiny_decoder = self.engines.get(TINY_DECODER)
        self.use_tiny_decoder = self.tiny_decoder is not None

    @classmethod
    def from_engine_dir(
        cls, engine_dir: str | Path, device: str | torch.device = "cuda", dtype: torch.dtype = torch.float32,
        **options: Any,
    ) -> TensorRTComponents:
        try:
            return cls(engine_dir, device=device, dtype=dtype, **options)
        except TypeError as exc:
            if "unexpected keyword" in str(exc):
                raise InputError(f"unknown tensorrt backend option: {exc}") from exc
            raise

    # ------------------------------------------------------------------ helpers
    def _check_size(self, height: int, width: int) -> None:
        if max(height, width) > self.max_side:
            f = self.vae_scale_factor
            raise InputError(
                f"the TensorRT engines take images up to {self.max_side} pixels on a side (exported at "
                f"{self.manifest.height}x{self.manifest.width}); this one is processed at {height}x{width}. Pass "
                f"processing_resolution <= {self.max_side} (0 = native size only for images that small), or "
                f"re-export with larger --height/--width (multiples of {f})"
            )

    def _chunks(self, batch: int) -> list[slice]:
        return [slice(i, min(i + self.max_batch, batch)) for i in range(0, batch, self.max_batch)]

    def _run(self, engine: str, inputs: dict[str, torch.Tensor | int], copy: bool) -> torch.Tensor:
        """Run ``engine``, splitting batches larger than the engines' max_batch."""
        runner = self.engines[engine]
        first = next(v for v in inputs.values() if isinstance(v, torch.Tensor))
        chunks = self._chunks(first.shape[0])
        outs = []
        for part in chunks:
            sliced = {k: (v[part] if isinstance(v, torch.Tensor) and k != "timestep" else v) for k, v in inputs.items()}
            (out,) = runner.run(sliced).values()
            outs.append(out.clone() if copy or len(chunks) > 1 else out)
        result = outs[0] if len(outs) == 1 else torch.cat(outs)
        return result if result.dtype == torch.float32 else result.float()

    # ------------------------------------------------------------------ DepthComponents
    @torch.inference_mode()
    def encode_text(self, input_ids: torch.Tensor) -> torch.Tensor:
        ids = input_ids.to(self.device, torch.int64)
        if ids.dim() != 2 or ids.shape[1] > self.manifest.max_text_tokens:
            raise InputError(f"input_ids must be [B, L<={self.manifest.max_text_tokens}], got {tuple(ids.shape)}")
        return self._run("text_encoder", {"input_ids": ids}, copy=True)

    @torch.inference_mode()
    def encode_image(self, image: torch.Tensor) -> torch.Tensor:
        image = image.to(self.device)
        self._check_size(image.shape[2], image.shape[3])
        return self._run("vae_encoder", {"image": image}, copy=True)

    @torch.inference_mode()
    def denoise(self, latents: torch.Tensor, timestep: int, text: torch.Tensor) -> torch.Tensor:
        f = self.vae_scale_factor
        self._check_size(latents.shape[2] * f, latents.shape[3] * f)
        inputs: dict[str, torch.Tensor | int] = {
            "sample": latents.to(self.device),
            "timestep": int(timestep),
            "encoder_hidden_states": text.to(self.device),
        }
        return self._run("unet", inputs, copy=False)

    @torch.inference_mode()
    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        f = self.vae_scale_factor
        self._check_size(latents.shape[2] * f, latents.shape[3] * f)
        engine = TINY_DECODER if self.use_tiny_decoder and self.tiny_decoder is not None else "vae_decoder"
        return self._run(engine, {"latent": latents.to(self.device)}, copy=True)
