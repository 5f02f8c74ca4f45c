"""The Iris depth node: camera images + a scene description in, REP 118 depth and point clouds out.

Topics (relative names; remap them or set a namespace):

- in: ``image`` (sensor_msgs/Image) or ``image/compressed`` (CompressedImage, ``compressed_input``),
  ``camera_info`` (cached, latest wins), ``description`` (std_msgs/String, reliable + transient_local,
  so a late-starting node still gets the last one), ``sparse_depth`` (32FC1 meters / 16UC1 millimeters,
  for ``depth_mode: sparse_aligned``), ``camera_pose`` (geometry_msgs/PoseStamped: the image's optical frame in
  a fixed frame, for ``temporal_mode: pose`` with ``pose_source: topic``; with ``tf`` the pose is looked up in TF);
- out, all stamped with the input image's header (stamp and frame_id): ``depth`` (32FC1), ``depth/camera_info``
  (intrinsics at the depth image's resolution), ``depth/colorized`` (rgb8, turbo), ``points`` (PointCloud2,
  organized XYZ or XYZRGB in the camera optical frame), ``/diagnostics`` at 1 Hz.

Units: in ``fixed_scale`` and ``sparse_aligned`` modes depth is meters along the optical axis (REP 118) and
points are meters. In ``relative`` mode (the default, since nothing about the scene's scale is known) both
carry the model's affine-invariant depth in [0, 1], larger = farther: unitless, NOT meters; the node says so
at start-up and in its diagnostics (``depth_units``).

Threading: callbacks only store messages. One worker thread takes the newest image from a
:class:`~iris_ros.frame_slot.LatestSlot` (older waiting images are dropped and counted), converts it, runs
the model, converts the result and publishes. Parameter changes and a new description apply from the
next frame the worker starts.

The node wires topics, parameters, threads, messages and diagnostics only: the per-frame work (model call,
depth modes, colorizing, points) is :class:`~iris_ros.processing.FrameProcessor` (no ROS), CameraInfo
geometry is :mod:`iris_ros.camera_info`, the output messages :mod:`iris_ros.messages`. Outputs nobody
subscribes to are not computed.
"""

from __future__ import annotations

if __name__ == "__main__":  # ``python -m iris_ros.depth_node``: a stop while the imports below run exits 0
    from iris_ros.entry import guard_start_up

    guard_start_up()

import contextlib
import ctypes
import os
import signal
import sys
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import numpy as np
import rclpy
import torch
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from geometry_msgs.msg import PoseStamped
from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor, SetParametersResult
from rclpy.exceptions import ParameterException
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from rclpy.signals import SignalHandlerOptions
from sensor_msgs.msg import CameraInfo, CompressedImage, Image, PointCloud2
from std_msgs.msg import String

from iris_model.errors import Cancelled, InputError, IrisError, ModelLoadError, NonFiniteOutputError

from .camera_info import CameraGeometry, CameraInfoError, CameraInfoFields, camera_geometry, check_camera_info
from .camera_pose import PoseHistory, StampedPose, pose_matrix
from .config import (
    DYNAMIC_PARAMETERS,
    PARAMETERS,
    TINY_DECODER_ARG,
    ConfigError,
    DescriptionError,
    NodeConfig,
    check_description,
    echo,
)
from .diagnostics import node_status, percentile_ms
from .frame_slot import LatestSlot
from .image_codec import (
    ImageConversionError,
    decode_compressed,
    decode_depth,
    decode_image,
    encode_depth,
    encode_rgb8,
)
from .messages import cloud_msg, depth_camera_info_msg, image_msg
from .messages import stamp_ns as stamp_ns_of
from .processing import FrameProcessor, FrameRejected

NODE_NAME = "iris_depth"
#: Descriptions are latched: the last one published reaches subscribers that start later.
DESCRIPTION_QOS = QoSProfile(
    history=HistoryPolicy.KEEP_LAST,
    depth=1,
    reliability=ReliabilityPolicy.RELIABLE,
    durability=DurabilityPolicy.TRANSIENT_LOCAL,
)
#: Outputs are reliable (every subscriber, reliable or best effort, connects) and keep only the newest frames.
OUTPUT_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=2, reliability=ReliabilityPolicy.RELIABLE)
RELIABLE_IMAGE_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=5, reliability=ReliabilityPolicy.RELIABLE)
SPARSE_HISTORY = 10
#: How long the worker waits for the sparse depth of a frame that has none yet: drivers publish the two
#: at about the same time, and the image can arrive first.
SPARSE_WAIT_S = 0.25
LOG_REPEAT_S = 5.0
MAX_LOG_CHARS = 4000
GIL_SWITCH_INTERVAL_S = 0.0005
STATS_WINDOW = 200
#: How long a stopping node waits for the frame in progress to reach the pipeline's next cancellation point
#: (between denoising steps, before decoding). One step of a large model on a CPU can take a minute; the
#: executable exits without the frame after this wait, well within launch's 5 s before it escalates.
STOP_GRACE_S = 1.0
#: Fast DDS sends the node's departure from the ROS graph (the update rmw_destroy_node publishes) from a
#: thread of its own. Exiting right after rclpy's shutdown lost it in 5 of 6 runs on a busy 2-core machine,
#: and peers then listed the node until the participant lease ran out (20 s); 0.1 s was enough in every run.
DDS_LINGER_S = 0.3


@dataclass
class _Frame:
    msg: Image | CompressedImage
    received: float  # time.monotonic() in the callback


_SkipFrame = FrameRejected  # the worker's name for a frame that is not published


def _descriptor(spec: Any) -> ParameterDescriptor:
    text = spec.description
    if spec.choices:
        text += f" (one of: {', '.join(spec.choices)})"
    desc = ParameterDescriptor(name=spec.name, description=text, read_only=not spec.dynamic)
    if spec.choices:
        desc.additional_constraints = "one of: " + ", ".join(spec.choices)
    if spec.range is not None:
        lo, hi = spec.range
        if spec.type is int:
            desc.integer_range = [IntegerRange(from_value=int(lo), to_value=int(hi), step=1)]
        else:
            desc.floating_point_range = [FloatingPointRange(from_value=float(lo), to_value=float(hi), step=0.0)]
    return desc


class IrisDepthNode(Node):
    """The depth node. ``pipeline`` injects a ready model (tests, benchmarks); else it is loaded from params.

    Raises :class:`~iris_model.errors.IrisError` (``ConfigError``, ``ModelLoadError``, ...) at construction
    when the parameters are invalid or the model cannot be loaded; :func:`main` turns that into a fatal log
    line and a non-zero exit code.
    """

    def __init__(self, *, pipeline: Any = None, node_name: str = NODE_NAME, **node_kwargs: Any) -> None:
        super().__init__(node_name, **node_kwargs)
        # The worker runs the Python-heavy model loop; with CPython's default 5 ms GIL switch interval the
        # executor thread then takes images slower than a 30 Hz camera sends them, and DDS's keep-last reader
        # history overwrites frames before the node can count them. A 0.5 ms interval keeps callbacks prompt.
        sys.setswitchinterval(min(sys.getswitchinterval(), GIL_SWITCH_INTERVAL_S))
        self._lock = threading.Lock()
        self._config = self._declare_and_read_parameters()
        cfg = self._config
        self.model_path: Path | str
        if pipeline is None:
            pipeline, self.model_path = self._load_pipeline(cfg)
        else:
            self.model_path = str(getattr(pipeline, "model_path", "<injected pipeline>"))
        self.pipeline = pipeline
        components = getattr(pipeline, "components", None)
        self.backend_name = str(getattr(components, "name", cfg.backend))
        self._model_device = getattr(components, "device", torch.device("cpu"))
        self.processor = FrameProcessor(pipeline, device=self._model_device)

        self._topic_description = ""
        self._camera_info: CameraInfo | None = None
        self._sparse: deque[Image] = deque(maxlen=SPARSE_HISTORY)
        self._sparse_arrived = threading.Condition()
        self._poses = PoseHistory()
        self._pose_arrived = threading.Condition(self._lock)
        self._bad_poses = 0
        self._tf: Any = None
        self._slot: LatestSlot[_Frame] = LatestSlot()
        self._worker = threading.Thread(target=self._run_worker, name="iris_depth_worker", daemon=True)
        self._received = 0
        self._processed = 0
        self._rejected: Counter[str] = Counter()
        self._latency: deque[float] = deque(maxlen=STATS_WINDOW)
        self._model_time: deque[float] = deque(maxlen=STATS_WINDOW)
        #: Per-frame seconds per stage of the last frames (the benchmark reads it).
        self.stage_times: deque[dict[str, float]] = deque(maxlen=STATS_WINDOW)
        self.last_stamp_processed: tuple[int, int] | None = None
        self._diag_last = (time.monotonic(), 0, 0)
        self._last_log: dict[str, float] = {}
        self._missing_info_logged = False
        self._stream_resets: Counter[str] = Counter()
        self._last_scale: tuple[float | None, float | None] = (None, None)
        self._temporal_stats: dict[str, str] = {}

        self._pub_depth = self.create_publisher(Image, "depth", OUTPUT_QOS)
        self._pub_info = self.create_publisher(CameraInfo, "depth/camera_info", OUTPUT_QOS)
        self._pub_color = self.create_publisher(Image, "depth/colorized", OUTPUT_QOS)
        self._pub_points = self.create_publisher(PointCloud2, "points", OUTPUT_QOS)
        self._pub_diag = self.create_publisher(DiagnosticArray, "/diagnostics", 10)

        image_qos = qos_profile_sensor_data if cfg.image_qos == "sensor_data" else RELIABLE_IMAGE_QOS
        if cfg.compressed_input:
            self.create_subscription(CompressedImage, "image/compressed", self._on_image, image_qos)
        else:
            self.create_subscription(Image, "image", self._on_image, image_qos)
        # Best effort subscriptions connect to best-effort and reliable publishers alike.
        self.create_subscription(CameraInfo, "camera_info", self._on_camera_info, qos_profile_sensor_data)
        self.create_subscription(Image, "sparse_depth", self._on_sparse, qos_profile_sensor_data)
        if cfg.pose_source == "topic":
            self.create_subscription(PoseStamped, "camera_pose", self._on_pose, qos_profile_sensor_data)
        else:
            from .tf_poses import TfPoses

            try:
                self._tf = TfPoses(self, cfg.fixed_frame)
            except IrisError as exc:
                self._name_logger(exc)
                raise
        self.create_subscription(String, "description", self._on_description, DESCRIPTION_QOS)
        self.add_on_set_parameters_callback(self._on_set_parameters)
        self.create_timer(1.0, self._publish_diagnostics)

        self._frame_started: float | None = None  # time.monotonic() when the worker took the frame in progress
        self._worker.start()
        self._announce_mode(cfg)
        self.get_logger().info(
            f"ready: model {self.model_path} on {self.backend_name}:{self._model_device}; "
            f"listening on {self.resolve_topic_name('image/compressed' if cfg.compressed_input else 'image')}"
        )

    # ------------------------------------------------------------------ start-up
    def _declare_and_read_parameters(self) -> NodeConfig:
        values = {}
        try:
            for spec in PARAMETERS:
                try:
                    param = self.declare_parameter(spec.name, spec.default, _descriptor(spec))
                except (ParameterException, TypeError, ValueError) as exc:
                    # rclpy's own message repeats the name and the range; say it once, as at run time.
                    given = self._parameter_overrides.get(spec.name)
                    if given is not None:
                        spec.check(given.value)
                    raise ConfigError(f"parameter {spec.name!r}: {echo(str(exc), 400)}") from exc
                values[spec.name] = param.value
            return NodeConfig.from_mapping(values)
        except IrisError as exc:
            self._name_logger(exc)
            raise

    def _name_logger(self, exc: BaseException) -> None:
        """Mark ``exc`` with this node's logger name, so that :func:`main`'s last line uses the same one."""
        exc.logger_name = self.get_logger().name  # type: ignore[attr-defined]

    def _load_pipeline(self, cfg: NodeConfig) -> tuple[Any, Path]:
        try:
            return self._load_pipeline_from(cfg)
        except (IrisError, _StopRequested) as exc:  # a stop during the load: main() says so as this node
            self._name_logger(exc)
            raise

    def _load_pipeline_from(self, cfg: NodeConfig) -> tuple[Any, Path]:
        from iris_model import IrisDepthPipeline
        from iris_model.default_model import default_model_dir, is_embedded_available, is_source_checkout

        if cfg.model_dir:
            path = Path(cfg.model_dir).expanduser()
        else:
            if not is_embedded_available() and is_source_checkout():
                self.get_logger().warning(
                    "no trained default model is embedded in this checkout: using a RANDOM-WEIGHT stand-in model; "
                    "its depth is meaningless. Set the model_dir parameter to a trained model."
                )
            try:
                path = default_model_dir()
            except IrisError:  # an install without its embedded model: the error names the path
                raise
            except Exception as exc:  # building the stand-in can fail on a read-only cache, a full disk, ...
                raise ModelLoadError("<default model>", f"{type(exc).__name__}: {exc}") from exc
        self.get_logger().info(
            f"loading model {path} (backend {cfg.backend}, device {cfg.device}, dtype {cfg.dtype}, "
            f"decoder {cfg.decoder})"
        )
        try:
            pipe = IrisDepthPipeline.from_pretrained(
                path,
                backend=cfg.backend,
                device=cfg.device,
                dtype=cfg.torch_dtype,
                tiny_decoder=TINY_DECODER_ARG[cfg.decoder],
            )
        except IrisError:
            raise
        except Exception as exc:  # e.g. torch's "CUDA not available": report it with the path, like the rest
            raise ModelLoadError(path, f"{type(exc).__name__}: {exc}") from exc
        return pipe, path

    def _announce_mode(self, cfg: NodeConfig) -> None:
        if cfg.depth_mode == "relative":
            self.get_logger().warning(
                "depth_mode=relative: 'depth' and 'points' carry relative depth in [0, 1] (larger = farther), "
                "NOT meters. Set depth_mode to fixed_scale (with scale/shift) or sparse_aligned for meters."
            )
        elif cfg.depth_mode == "fixed_scale":
            self.get_logger().info(f"depth_mode=fixed_scale: meters = {cfg.scale:g} * d + {cfg.shift:g}")
        else:
            self.get_logger().info(
                f"depth_mode=sparse_aligned: fitting each frame to {self.resolve_topic_name('sparse_depth')} "
                f"(stamps within {cfg.sparse_tolerance_s:g} s); frames without a match are not published"
            )
        if cfg.temporal_mode == "pose":
            where = (
                f"TF {cfg.fixed_frame} -> the image's frame_id"
                if cfg.pose_source == "tf"
                else self.resolve_topic_name("camera_pose")
            )
            self.get_logger().info(
                f"temporal_mode=pose: fusing the depth along the camera's motion from {where} (waiting up to "
                f"{cfg.pose_tolerance_s:g} s for the pose at each image's stamp); frames without one are "
                "published unfused"
            )

    # ------------------------------------------------------------------ callbacks (no heavy work here)
    def _on_image(self, msg: Image | CompressedImage) -> None:
        with self._lock:
            self._received += 1
        self._slot.put(_Frame(msg, time.monotonic()))

    def _on_camera_info(self, msg: CameraInfo) -> None:
        try:
            check_camera_info(CameraInfoFields.from_msg(msg))
        except CameraInfoError as exc:
            self._reject("bad_camera_info", f"ignoring CameraInfo on {self.resolve_topic_name('camera_info')}: {exc}")
            return
        with self._lock:
            self._camera_info = msg

    def _on_sparse(self, msg: Image) -> None:
        with self._sparse_arrived:
            self._sparse.append(msg)
            self._sparse_arrived.notify_all()

    def _on_pose(self, msg: PoseStamped) -> None:
        p, q = msg.pose.position, msg.pose.orientation
        try:
            matrix = pose_matrix((p.x, p.y, p.z), (q.x, q.y, q.z, q.w))
        except InputError as exc:
            with self._lock:
                self._bad_poses += 1  # a message, not a frame: counted apart from the frames
            self._log_limited(
                "warn", "bad_camera_pose", f"ignoring a pose on {self.resolve_topic_name('camera_pose')}: {exc}"
            )
            return
        with self._pose_arrived:
            self._poses.add(StampedPose(stamp_ns_of(msg.header.stamp), msg.header.frame_id, matrix))
            self._pose_arrived.notify_all()

    def _pose_for(self, frame_id: str, stamp_ns: int, tolerance_s: float) -> StampedPose | None:
        """The camera's pose at ``stamp_ns`` (``temporal_mode: pose``), or ``None`` (logged) if there is none.

        Odometry often publishes a frame's pose after the image: the node waits up to ``tolerance_s`` for a pose
        at or after the stamp (so that it can interpolate), in short slices so that a stop is not held up.
        """
        if self._tf is not None:
            pose = self._tf.at(frame_id, stamp_ns, tolerance_s, stop=self._stop_requested)
            why = self._tf.last_error
        else:
            deadline = time.monotonic() + tolerance_s
            with self._pose_arrived:
                while (self._poses.newest_stamp_ns() or -1) < stamp_ns and not self._slot.closed:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    self._pose_arrived.wait(min(left, 0.1))
                pose, have = self._poses.at(stamp_ns, tolerance_s), len(self._poses)
            where = self.resolve_topic_name("camera_pose")
            why = f"no pose on {where} around the image's stamp (within {tolerance_s:g} s; {have} poses kept)"
        if pose is None:
            self._log_limited("warn", "no_pose", f"temporal_mode=pose: frame published without fusion: {why}")
        return pose

    def _on_description(self, msg: String) -> None:
        try:
            text, warning = check_description(msg.data)
        except DescriptionError as exc:
            self._reject("bad_description", f"{exc}; keeping the previous description")
            return
        if warning:
            self._log_limited("warn", "nonascii:" + text[:64], warning)
        with self._lock:
            self._topic_description = text
        self.get_logger().info(f"description (applies from the next frame): {echo(text)}")

    def _on_set_parameters(self, params: list[Any]) -> SetParametersResult:
        changes = {}
        for p in params:
            if p.name not in DYNAMIC_PARAMETERS:
                return SetParametersResult(
                    successful=False,
                    reason=f"{echo(p.name)} cannot change at run time; restart the node to change it",
                )
            changes[p.name] = p.value
        with self._lock:
            try:
                new = self._config.with_changes(**changes)
            except InputError as exc:
                return SetParametersResult(successful=False, reason=str(exc))
            old, self._config = self._config, new
        changed_mode = new.depth_mode != old.depth_mode or new.temporal_mode != old.temporal_mode
        if changed_mode or (new.depth_mode == "fixed_scale" and new != old):
            self._announce_mode(new)
        shown = ", ".join(f"{name}={echo(value)}" for name, value in changes.items())
        self.get_logger().info(f"parameters changed (from the next frame): {shown}")
        return SetParametersResult(successful=True)

    # ------------------------------------------------------------------ helpers
    def _log_limited(self, level: str, key: str, text: str) -> None:
        """Log ``text`` unless the same ``key`` was logged in the last few seconds (floods stay readable)."""
        now = time.monotonic()
        key, text = key[:300], text[:MAX_LOG_CHARS]  # echoes are cut where they are made; this is the backstop
        with self._lock:
            last = self._last_log.get(key)
            if last is not None and now - last < LOG_REPEAT_S:
                return
            self._last_log[key] = now
            if len(self._last_log) > 256:
                self._last_log = {k: t for k, t in self._last_log.items() if now - t < LOG_REPEAT_S}
        # rclpy ties a severity to each call site (file and line): one call per level.
        if level == "error":
            self.get_logger().error(text)
        elif level == "warn":
            self.get_logger().warning(text)
        else:
            self.get_logger().info(text)

    def _reject(self, reason: str, text: str) -> None:
        with self._lock:
            self._rejected[reason] += 1
        self._log_limited("error", reason + ":" + text, f"[{reason}] {text}")

    def settings(self) -> tuple[NodeConfig, str]:
        """The configuration and the description the next frame will use."""
        with self._lock:
            cfg = self._config
            return cfg, cfg.description_override or self._topic_description

    # ------------------------------------------------------------------ worker
    def _run_worker(self) -> None:
        while not self._slot.closed:
            frame = self._slot.take(timeout=0.2)
            if frame is None:
                continue
            stamp = f"{frame.msg.header.stamp.sec}.{frame.msg.header.stamp.nanosec:09d}"
            self._frame_started = time.monotonic()
            self.get_logger().debug(f"frame {stamp}: started")
            try:
                self._process(frame)
                self.get_logger().debug(f"frame {stamp}: done in {time.monotonic() - self._frame_started:.3f} s")
            except ImageConversionError as exc:
                self._reject(exc.reason, f"image rejected: {exc}")
            except _SkipFrame as exc:
                self._reject(exc.reason, str(exc))
            except Cancelled:
                self.get_logger().info(f"frame {stamp} abandoned between denoising steps: the node is stopping")
                return
            except IrisError as exc:
                self._reject("model_input", f"frame rejected by the model: {exc}")
            except Exception as exc:  # keep the node alive; the traceback says where
                if self._slot.closed or not self.context.ok():
                    return  # shutting down: publishers may already be gone
                import traceback

                self._reject("internal_error", f"frame failed: {type(exc).__name__}: {exc}\n{traceback.format_exc()}")
            finally:
                self._frame_started = None

    def _stop_requested(self) -> bool:
        """The pipeline's ``cancel`` callback: True once :meth:`stop_worker` was called."""
        return self._slot.closed

    def frame_in_progress_s(self) -> float | None:
        """Seconds since the worker took the frame it is working on; None while it waits for one."""
        started = self._frame_started
        return None if started is None else time.monotonic() - started

    def _camera(self, width: int, height: int) -> tuple[CameraInfo, CameraGeometry] | None:
        """The latest CameraInfo and the depth image's K and P from it, or ``None`` (no info, or unusable)."""
        with self._lock:
            info = self._camera_info
        if info is None:
            if not self._missing_info_logged:
                self._missing_info_logged = True
                self.get_logger().warning(
                    f"no CameraInfo on {self.resolve_topic_name('camera_info')} yet: publishing depth without "
                    "depth/camera_info and points"
                )
            return None
        try:
            return info, camera_geometry(CameraInfoFields.from_msg(info), width, height)
        except CameraInfoError as exc:  # valid at its own size (checked in the callback), not at this image's
            self._reject("bad_camera_info", f"no points and depth/camera_info for this frame: {exc}")
            return None

    def _sparse_for(self, stamp_ns: int, tolerance_s: float) -> np.ndarray | None:
        """The decoded sparse depth (meters) nearest in stamp to ``stamp_ns`` within the tolerance, waiting up
        to :data:`SPARSE_WAIT_S` for it while none newer than the frame has arrived yet; ``None`` if none."""
        tolerance_ns = tolerance_s * 1e9
        deadline = time.monotonic() + SPARSE_WAIT_S
        with self._sparse_arrived:
            while True:
                best = min(self._sparse, key=lambda m: abs(stamp_ns_of(m.header.stamp) - stamp_ns), default=None)
                if best is not None and abs(stamp_ns_of(best.header.stamp) - stamp_ns) <= tolerance_ns:
                    break
                newer = any(stamp_ns_of(m.header.stamp) > stamp_ns + tolerance_ns for m in self._sparse)
                left = deadline - time.monotonic()
                if newer or left <= 0 or self._slot.closed:
                    raise FrameRejected(
                        "no_sparse_depth",
                        f"no sparse depth on {self.resolve_topic_name('sparse_depth')} within {tolerance_s:g} s "
                        "of its stamp (depth_mode=sparse_aligned)",
                    )
                self._sparse_arrived.wait(left)
        try:
            return decode_depth(best.encoding, best.height, best.width, best.step, best.is_bigendian, best.data)
        except ImageConversionError as exc:
            raise FrameRejected("bad_sparse_depth", f"sparse depth rejected: {exc}") from exc

    def _wanted(self, publisher: Any) -> bool:
        """Whether anyone subscribes to ``publisher``'s topic (outputs nobody reads are not computed)."""
        return publisher.get_subscription_count() > 0

    def _process(self, frame: _Frame) -> None:
        cfg, description = self.settings()
        msg = frame.msg
        header = msg.header
        t0 = time.perf_counter()
        if isinstance(msg, CompressedImage):
            image = decode_compressed(msg.format, msg.data)
        else:
            image = decode_image(msg.encoding, msg.height, msg.width, msg.step, msg.is_bigendian, msg.data)
        height, width = image.shape[:2]
        stamp = stamp_ns_of(header.stamp)
        sparse = None
        if cfg.depth_mode == "sparse_aligned":  # looked up after the model ran: a late message can still arrive

            def sparse() -> np.ndarray | None:
                return self._sparse_for(stamp, cfg.sparse_tolerance_s)

        # The CameraInfo sent with this image has usually arrived while the model ran: looked up after it, once.
        want_info, want_points = self._wanted(self._pub_info), self._wanted(self._pub_points)
        fusing = cfg.temporal_mode == "pose"
        camera: tuple[CameraInfo, CameraGeometry] | None = None

        def geometry() -> CameraGeometry | None:  # pose fusion's intrinsics
            nonlocal camera
            camera = self._camera(width, height)
            return camera[1] if camera else None

        def pose() -> StampedPose | None:
            return self._pose_for(header.frame_id, stamp, cfg.pose_tolerance_s)

        t1 = time.perf_counter()
        try:
            result = self.processor.depth(
                image,
                description,
                stamp * 1e-9,
                sparse,
                cfg,
                cancel=self._stop_requested,
                camera=geometry if fusing else None,
                pose=pose if fusing else None,
            )
        except NonFiniteOutputError as exc:
            self._reject("non_finite_output", f"frame not published: {exc}")
            return
        except FrameRejected as exc:
            self._reject(exc.reason, f"frame not published: {exc}")
            return
        if result.reset_reason is not None:
            self._on_stream_reset(result.reset_reason)
        times = {"decode": t1 - t0, **result.times}
        # Depth first (the product, and the first thing a consumer waits for), then what others listen to.
        t2 = time.perf_counter()
        if self._wanted(self._pub_depth):
            self._pub_depth.publish(image_msg(header, encode_depth(result.depth)))
        times["publish_depth"] = time.perf_counter() - t2
        if cfg.colorize and self._wanted(self._pub_color):
            self.processor.add_outputs(result, image, None, cfg, colorized=True, points=False)
            self._pub_color.publish(image_msg(header, encode_rgb8(result.colorized)))
        if not fusing and (want_info or want_points):
            camera = self._camera(width, height)
        if camera is not None:
            if want_info:
                self._pub_info.publish(depth_camera_info_msg(header, camera[0], camera[1]))
            if want_points:
                self.processor.add_outputs(result, image, camera[1], cfg, colorized=False, points=True)
                self._pub_points.publish(cloud_msg(header, result.cloud))
        times.update(result.times)
        times["total"] = time.perf_counter() - t0
        with self._lock:
            self._processed += 1
            self._latency.append(time.monotonic() - frame.received)
            self._model_time.append(times["model"])
            self.stage_times.append(times)
            self.last_stamp_processed = (int(header.stamp.sec), int(header.stamp.nanosec))
            self._last_scale = (result.scale, result.shift)
            self._temporal_stats = self.processor.stats()

    def _on_stream_reset(self, reason: str) -> None:
        with self._lock:
            self._stream_resets[reason] += 1
        self._log_limited("info", "stream_reset:" + reason, f"temporal_mode=stream: stream reset ({reason})")

    # ------------------------------------------------------------------ diagnostics
    def diagnostics(self) -> DiagnosticStatus:
        """The node's status now (also published on /diagnostics once a second)."""
        now = time.monotonic()
        cfg, description = self.settings()
        with self._lock:
            received, processed = self._received, self._processed
            rejected = dict(self._rejected)
            latency = list(self._latency)
            model = list(self._model_time)
            has_info = self._camera_info is not None
            temporal = dict(self._temporal_stats)
            resets = dict(self._stream_resets)
            bad_poses = self._bad_poses
            metric_scale, metric_shift = self._last_scale
            last_t, last_received, last_processed = self._diag_last
            self._diag_last = (now, received, processed)
        span = max(now - last_t, 1e-6)
        pct = percentile_ms
        values = {
            "frames_received": received,
            "frames_processed": processed,
            "frames_dropped": self._slot.dropped,
            "frames_rejected": sum(rejected.values()),
            **{f"rejected_{k}": v for k, v in sorted(rejected.items())},
            "latency_p50_ms": pct(latency, 50),
            "latency_p95_ms": pct(latency, 95),
            "model_p50_ms": pct(model, 50),
            "rate_hz": f"{(processed - last_processed) / span:.2f}",
            "input_rate_hz": f"{(received - last_received) / span:.2f}",
            "backend": self.backend_name,
            "device": str(self._model_device),
            "model_dir": str(self.model_path),
            "num_steps": cfg.num_steps or "model default",
            "ensemble_size": cfg.ensemble_size,
            "depth_mode": cfg.depth_mode,
            "depth_units": "meters" if cfg.is_metric else "relative [0, 1], NOT meters",
            "description": description,
            "temporal_mode": cfg.temporal_mode,
            **temporal,
            # After the stream's own counters, which restart with each new stream: the node's count since start.
            **{f"stream_resets_{k}": v for k, v in sorted(resets.items())},
        }
        if bad_poses:
            values["camera_pose_rejected"] = bad_poses
        if metric_scale is not None:  # meters = scale * d + shift, as used for the last frame
            values.update(metric_scale=f"{metric_scale:.6g}", metric_shift=f"{metric_shift:.6g}")
        return node_status(
            f"{self.get_fully_qualified_name()}: iris depth",
            f"{self.backend_name}:{self._model_device}",
            worker_alive=self._worker.is_alive(),
            images_without_info=bool(received) and not has_info,
            rejected=sum(rejected.values()),
            values=values,
        )

    def _publish_diagnostics(self) -> None:
        msg = DiagnosticArray()
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.status = [self.diagnostics()]
        self._pub_diag.publish(msg)

    # ------------------------------------------------------------------ shutdown
    def stop_worker(self, timeout: float = 10.0) -> bool:
        """Stop taking frames, cancel the frame in progress at the pipeline's next cancellation point
        (between denoising steps, before decoding; the frame is not published) and wait up to ``timeout`` s
        for the worker to end. Returns whether it has ended."""
        self._slot.close()
        if self._worker.is_alive() and threading.current_thread() is not self._worker:
            self._worker.join(timeout)
        return not self._worker.is_alive()

    def destroy_node(self) -> None:
        # No slot: __init__ failed before it (bad parameters); rclpy still destroys the node at shutdown.
        slot = getattr(self, "_slot", None)
        if slot is not None and not slot.closed:  # main() stops the worker itself first, with a short wait
            self.stop_worker()
        super().destroy_node()


class _StopRequested(BaseException):  # like KeyboardInterrupt: not an error, not an Exception
    """Raised in the main thread by SIGINT or SIGTERM while the node starts (the model may be loading)."""


class _StopSignals:
    """SIGINT and SIGTERM handling of the executable.

    During start-up a signal raises :class:`_StopRequested` in the main thread, which abandons the model
    load. Once the node runs, a signal only records itself and :meth:`wait` returns: the main thread then
    stops the node in order. Only one signal ever raises; later ones are recorded.
    """

    def __init__(self) -> None:
        self.signum: int | None = None
        self.raise_on_signal = True
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, self._handle)

    def _handle(self, signum: int, frame: Any) -> None:
        if self.signum is None:
            self.signum = signum
        if self.raise_on_signal:
            self.raise_on_signal = False
            raise _StopRequested(signum)

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name if self.signum is not None else "stop"

    def wait(self, running: Any) -> None:
        """Return once a signal arrived or ``running()`` is false. A signal interrupts the sleep at once
        (its handler runs in this, the main, thread), so a stop starts within milliseconds."""
        while self.signum is None and running():
            time.sleep(0.1)


def _spin(executor: SingleThreadedExecutor, failures: list[BaseException]) -> None:
    try:
        executor.spin()
    except ExternalShutdownException:
        pass
    except BaseException as exc:  # an exception escaping a callback; main() reports it and exits 1
        failures.append(exc)


def _exit_now(code: int) -> NoReturn:
    """End the process without the interpreter's teardown.

    Called once the node is destroyed and rclpy is shut down: the node has left the ROS graph (see
    :data:`DDS_LINGER_S`), rclpy's shutdown has flushed and closed the log file, and the node keeps no
    other state. What is left is CPython's finalization, which after torch and transformers takes seconds
    (past launch's 5 s limit before it sends SIGTERM) and can abort the process while a daemon worker is
    still inside a model step (``terminate called without an active exception``). Python's and C's stdio
    buffers are flushed first, as a normal exit would.
    """
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).fflush(None)  # rcutils writes console logs with C stdio
    os._exit(code)


def main(args: list[str] | None = None) -> NoReturn:
    """``depth_node`` executable: run the node until SIGINT or SIGTERM, then exit 0; exit 1 when it cannot
    start. A stop takes well under 5 s, also while a long frame is in progress (see :data:`STOP_GRACE_S`)."""
    logger = rclpy.logging.get_logger(NODE_NAME)
    stop = _StopSignals()
    code = 0
    node: IrisDepthNode | None = None
    executor: SingleThreadedExecutor | None = None
    try:
        try:
            # rclpy's own signal handlers are not installed: on SIGTERM they shut the context down under
            # the running model load (a traceback at the node's first create_publisher) and under the worker.
            rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
            node = IrisDepthNode()
            logger = node.get_logger()
            executor = SingleThreadedExecutor()
            executor.add_node(node)
            failures: list[BaseException] = []
            spinner = threading.Thread(target=_spin, args=(executor, failures), name="iris_depth_executor", daemon=True)
            spinner.start()
            stop.raise_on_signal = False
            stop.wait(spinner.is_alive)
            if failures:
                exc = failures[0]
                logger.fatal(f"executor stopped: {type(exc).__name__}: {exc}")
                code = 1
        except IrisError as exc:
            stop.raise_on_signal = False
            rclpy.logging.get_logger(getattr(exc, "logger_name", NODE_NAME)).fatal(f"cannot start: {exc}")
            code = 1
    except _StopRequested as exc:
        rclpy.logging.get_logger(getattr(exc, "logger_name", NODE_NAME)).info(f"{stop.name} during start-up: stopping")
    finally:
        stop.raise_on_signal = False
        if node is not None:
            busy = node.frame_in_progress_s()
            if busy is None:
                logger.info(f"{stop.name}: stopping")
            else:
                logger.info(f"{stop.name}: stopping; cancelling the frame in progress (started {busy:.1f} s ago)")
            if not node.stop_worker(timeout=STOP_GRACE_S):
                logger.info(
                    f"the frame in progress reached no cancellation point within {STOP_GRACE_S:g} s: exiting without it"
                )
        if executor is not None:
            executor.shutdown(timeout_sec=1.0)
        rclpy.try_shutdown()  # destroys the node (it leaves the ROS graph), then flushes and closes the log
        time.sleep(DDS_LINGER_S)
    _exit_now(code)


if __name__ == "__main__":
    main()
