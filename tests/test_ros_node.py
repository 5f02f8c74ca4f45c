"""The depth node with real rclpy over Fast DDS on loopback (PyPI ROS 2 Kilted wheels); nothing of ROS mocked.

Each test starts its own ``IrisDepthNode`` in a namespace of its own, with a tiny random-weight pipeline
injected (the node's test hook: ``IrisDepthNode(pipeline=...)``), and talks to it through topics and the
parameter service from a second node, exactly as other ROS nodes would. The start-up and SIGINT tests run
the executable as a subprocess. The module uses a ROS domain of its own (from the pid) on localhost only.
"""

from __future__ import annotations

import itertools
import math
import os
import signal
import subprocess
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import pytest

os.environ["ROS_DOMAIN_ID"] = str(120 + os.getpid() % 100)
os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
os.environ.pop("ROS_LOCALHOST_ONLY", None)

rclpy = pytest.importorskip(
    "rclpy", reason="rclpy (ROS 2 Python wheels) not installed: pip install -r requirements/runtime.txt"
)

import torch  # noqa: E402
from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402
from geometry_msgs.msg import PoseStamped  # noqa: E402
from rcl_interfaces.msg import Log, Parameter, ParameterType, ParameterValue  # noqa: E402
from rcl_interfaces.srv import SetParameters  # noqa: E402
from rclpy.exceptions import InvalidHandle  # noqa: E402
from rclpy.executors import MultiThreadedExecutor  # noqa: E402
from rclpy.parameter import Parameter as RclpyParameter  # noqa: E402
from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data  # noqa: E402
from sensor_msgs.msg import CameraInfo, CompressedImage, Image, PointCloud2  # noqa: E402
from std_msgs.msg import Header, String  # noqa: E402

from iris_model.geometry import Intrinsics  # noqa: E402
from iris_model.testing import make_tiny_pipeline  # noqa: E402
from iris_ros.cloud_packing import unpack_cloud  # noqa: E402
from iris_ros.config import echo  # noqa: E402
from iris_ros.demo_camera import SyntheticScene  # noqa: E402
from iris_ros.depth_node import DESCRIPTION_QOS, IrisDepthNode  # noqa: E402
from iris_ros.image_codec import decode_depth, encode_depth, encode_rgb8  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
RELIABLE = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE)
W, H = 128, 96
K_BIG = Intrinsics.from_fov(2 * W, 2 * H, 70.0)  # the CameraInfo is for twice the image size (binning)
_stamps = itertools.count(1)


def _stamp_key(msg: Any) -> tuple[int, int]:
    return (int(msg.header.stamp.sec), int(msg.header.stamp.nanosec))


class _Headed:
    def __init__(self, header: Any) -> None:
        self.header = header


class Harness:
    """A test node with an executor thread: publishes inputs, collects outputs, waits for conditions."""

    def __init__(self, context: Any) -> None:
        self.context = context
        self.node = rclpy.create_node("iris_test_harness", context=context)
        self.executor = MultiThreadedExecutor(num_threads=3, context=context)
        self.executor.add_node(self.node)
        self.cond = threading.Condition()
        self.msgs: dict[str, list[Any]] = defaultdict(list)
        self.thread = threading.Thread(target=self._spin, daemon=True)
        self.thread.start()
        self.listen("/rosout", Log, QoSProfile(depth=500, reliability=ReliabilityPolicy.RELIABLE))
        self.listen("/diagnostics", DiagnosticArray, RELIABLE)

    def _spin(self) -> None:
        """executor.spin(), but a node that a finished test destroys while the executor is building its wait
        set (rclpy's InvalidHandle: "destruction was requested") must not end the spinning for later tests."""
        while self.context.ok():
            try:
                self.executor.spin_once(timeout_sec=0.1)
            except InvalidHandle:
                continue
            except Exception:
                if not self.context.ok():
                    return  # the module's teardown shut the context down mid-wait
                raise

    def listen(self, topic: str, msg_type: Any, qos: Any = RELIABLE, headers_only: bool = False) -> None:
        """Collect messages on ``topic`` (only their headers with ``headers_only``: no payload piles up here)."""

        def store(msg: Any) -> None:
            with self.cond:
                self.msgs[topic].append(_Headed(msg.header) if headers_only else msg)
                self.cond.notify_all()

        self.node.create_subscription(msg_type, topic, store, qos)

    def wait(self, predicate: Any, timeout: float = 10.0) -> Any:
        with self.cond:
            return self.cond.wait_for(predicate, timeout)

    def find(self, topic: str, stamp: tuple[int, int]) -> Any:
        with self.cond:
            return next((m for m in self.msgs[topic] if _stamp_key(m) == stamp), None)

    def wait_stamp(self, topic: str, stamp: tuple[int, int], timeout: float = 10.0) -> Any:
        assert self.wait(lambda: any(_stamp_key(m) == stamp for m in self.msgs[topic]), timeout), (
            f"no message with stamp {stamp} on {topic}"
        )
        return self.find(topic, stamp)

    def log_lines(self, node_name: str) -> list[str]:
        with self.cond:
            return [m.msg for m in self.msgs["/rosout"] if m.name.endswith(node_name)]

    def wait_log(self, node_name: str, words: str, timeout: float = 10.0, since: int = 0) -> str:
        """The first log line of ``node_name`` holding ``words`` among /rosout messages number ``since`` on."""

        def lines() -> list[str]:
            return [m.msg for m in self.msgs["/rosout"][since:] if m.name.endswith(node_name)]

        ok = self.wait(lambda: any(words in line for line in lines()), timeout)
        assert ok, f"no log line with {words!r} from {node_name}; got {self.log_lines(node_name)[-8:]}"
        return next(line for line in lines() if words in line)

    def diagnostics(self, node_name: str, predicate: Any = None, timeout: float = 5.0) -> dict[str, str]:
        """Values of the next /diagnostics status of ``node_name`` (that satisfies ``predicate``)."""
        start = len(self.msgs["/diagnostics"])

        def found() -> dict[str, str] | None:
            for arr in self.msgs["/diagnostics"][start:]:
                for status in arr.status:
                    if node_name in status.name:
                        values = {kv.key: kv.value for kv in status.values}
                        if predicate is None or predicate(values):
                            return values
            return None

        if not self.wait(lambda: found() is not None, timeout):
            seen = [
                {kv.key: kv.value for kv in status.values}
                for arr in self.msgs["/diagnostics"][start:]
                for status in arr.status
                if node_name in status.name
            ]
            raise AssertionError(f"no matching diagnostics from {node_name}; last seen: {seen[-1:] or 'none'}")
        with self.cond:
            result = found()
        assert result is not None
        return result

    def set_parameters(self, fqn: str, **values: Any) -> list[Any]:
        """Set parameters through the node's real parameter service (what ``ros2 param set`` does)."""
        client = self.node.create_client(SetParameters, f"{fqn}/set_parameters")
        try:
            assert client.wait_for_service(timeout_sec=10.0)
            request = SetParameters.Request()
            for name, value in values.items():
                pv = ParameterValue()
                if isinstance(value, str):
                    pv.type, pv.string_value = ParameterType.PARAMETER_STRING, value
                elif isinstance(value, float):
                    pv.type, pv.double_value = ParameterType.PARAMETER_DOUBLE, value
                else:
                    pv.type, pv.integer_value = ParameterType.PARAMETER_INTEGER, value
                request.parameters.append(Parameter(name=name, value=pv))
            future = client.call_async(request)
            deadline = time.monotonic() + 10.0
            while not future.done() and time.monotonic() < deadline:
                time.sleep(0.01)
            assert future.done(), "parameter service did not answer"
            return list(future.result().results)
        finally:
            self.node.destroy_client(client)

    def close(self) -> None:
        self.executor.shutdown(timeout_sec=2.0)
        self.node.destroy_node()


@pytest.fixture(scope="module")
def ros() -> Any:
    torch.set_num_threads(1)  # 2 shared cores: OpenMP spinning makes more threads far slower here
    context = rclpy.Context()
    rclpy.init(context=context)
    harness = Harness(context)
    yield harness
    harness.close()
    rclpy.shutdown(context=context)


@pytest.fixture(scope="module")
def tiny_pipe() -> Any:
    return make_tiny_pipeline(seed=0)


def poll(predicate: Any, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


class Rig:
    """One depth node under test (own namespace) plus the harness publishers feeding it."""

    def __init__(
        self,
        ros: Harness,
        ns: str,
        pipeline: Any,
        pub_qos: Any = qos_profile_sensor_data,
        headers_only: bool = False,
        outputs: tuple[str, ...] = ("depth", "depth/camera_info", "depth/colorized", "points"),
        **params: Any,
    ):
        self.ros, self.ns, self.name = ros, ns, f"iris_depth_{ns}"
        overrides = [RclpyParameter(k, value=v) for k, v in params.items()]
        self.node = IrisDepthNode(
            pipeline=pipeline, node_name=self.name, namespace=ns, context=ros.context, parameter_overrides=overrides
        )
        ros.executor.add_node(self.node)
        n = ros.node
        self.pub_image = n.create_publisher(Image, f"/{ns}/image", pub_qos)
        self.pub_info = n.create_publisher(CameraInfo, f"/{ns}/camera_info", qos_profile_sensor_data)
        self.pub_sparse = n.create_publisher(Image, f"/{ns}/sparse_depth", qos_profile_sensor_data)
        self.pub_desc = n.create_publisher(String, f"/{ns}/description", DESCRIPTION_QOS)
        kinds = {"depth": Image, "depth/camera_info": CameraInfo, "depth/colorized": Image, "points": PointCloud2}
        node_pubs = {
            "depth": self.node._pub_depth,
            "depth/camera_info": self.node._pub_info,
            "depth/colorized": self.node._pub_color,
            "points": self.node._pub_points,
        }
        for topic in outputs:
            ros.listen(f"/{ns}/{topic}", kinds[topic], headers_only=headers_only)
        # Wait for discovery both ways, so that no test message goes to a reader that does not exist yet.
        raw_image = [] if params.get("compressed_input") else [self.pub_image]
        for pub in (
            *raw_image,
            self.pub_info,
            self.pub_sparse,
            self.pub_desc,
            *(node_pubs[t] for t in outputs),
        ):
            assert poll(lambda p=pub: p.get_subscription_count() > 0), f"{pub.topic_name} not matched"

    def topic(self, name: str) -> str:
        return f"/{self.ns}/{name}"

    def send_image(
        self,
        rgb: np.ndarray,
        stamp: tuple[int, int] | None = None,
        frame_id: str = "cam_optical",
        info: bool = True,
        **raw: Any,
    ) -> tuple[int, int]:
        stamp = stamp or (next(_stamps), 0)
        msg = Image()
        msg.header.stamp.sec, msg.header.stamp.nanosec = stamp
        msg.header.frame_id = frame_id
        fields = encode_rgb8(rgb)
        msg.height, msg.width, msg.step, msg.encoding, msg.data = (
            fields.height,
            fields.width,
            fields.step,
            fields.encoding,
            fields.data,
        )
        for key, value in raw.items():
            setattr(msg, key, value)
        if info:
            self.pub_info.publish(camera_info(msg.header))
        self.pub_image.publish(msg)
        return stamp

    def destroy(self) -> None:
        self.ros.executor.remove_node(self.node)
        self.node.destroy_node()


def camera_info(header: Any, k: Intrinsics = K_BIG) -> CameraInfo:
    info = CameraInfo()
    info.header = header
    info.width, info.height = k.width, k.height
    info.k = k.k().reshape(-1).tolist()
    info.p = [k.fx, 0.0, k.cx, 0.0, 0.0, k.fy, k.cy, 0.0, 0.0, 0.0, 1.0, 0.0]
    return info


def sparse_msg(depth: np.ndarray, stamp: tuple[int, int]) -> Image:
    """A 32FC1 sparse depth message (meters, NaN = no sample)."""
    msg = Image()
    msg.header.stamp.sec, msg.header.stamp.nanosec = stamp
    msg.header.frame_id = "cam_optical"
    f = encode_depth(depth)
    msg.height, msg.width, msg.step, msg.encoding, msg.is_bigendian, msg.data = (
        f.height,
        f.width,
        f.step,
        f.encoding,
        f.is_bigendian,
        f.data,
    )
    return msg


@pytest.fixture(scope="module")
def scene_rgb() -> np.ndarray:
    return SyntheticScene(W, H).render(1.0)[0]


def _depth_array(msg: Image) -> np.ndarray:
    return decode_depth(msg.encoding, msg.height, msg.width, msg.step, msg.is_bigendian, msg.data)


def _raw_depth(msg: Image) -> np.ndarray:
    """32FC1 values as published (relative depth is in [0, 1]; decode_depth would NaN the zeros)."""
    assert msg.encoding == "32FC1"
    return np.frombuffer(msg.data, dtype=">f4" if msg.is_bigendian else "<f4").reshape(msg.height, msg.width)


# ------------------------------------------------------------------------------------------------------ tests
def test_outputs_share_the_input_stamp_and_frame_and_points_back_project(ros: Harness, tiny_pipe: Any, scene_rgb):
    rig = Rig(ros, "main", tiny_pipe, cloud_stride=2)
    try:
        rig.pub_desc.publish(String(data="a room with two balls"))
        ros.wait_log(rig.name, "a room with two balls")
        stamp = rig.send_image(scene_rgb, frame_id="camera_optical_frame")
        depth = ros.wait_stamp(rig.topic("depth"), stamp)
        info = ros.wait_stamp(rig.topic("depth/camera_info"), stamp)
        colored = ros.wait_stamp(rig.topic("depth/colorized"), stamp)
        cloud = ros.wait_stamp(rig.topic("points"), stamp)
        for msg in (depth, info, colored, cloud):
            assert msg.header.frame_id == "camera_optical_frame"

        assert (depth.encoding, depth.height, depth.width) == ("32FC1", H, W)
        z = _raw_depth(depth)
        assert np.isfinite(z).all() and z.min() >= 0.0 and z.max() <= 1.0 and z.std() > 1e-4
        # depth/camera_info: the CameraInfo's K (for 2W x 2H) rescaled to the depth image's resolution.
        intr = K_BIG.scaled(W, H)
        assert (info.width, info.height) == (W, H)
        np.testing.assert_allclose(np.asarray(info.k).reshape(3, 3), intr.k(), rtol=1e-9)
        np.testing.assert_allclose(np.asarray(info.p).reshape(3, 4)[:, :3], intr.k(), rtol=1e-9)
        assert (colored.encoding, colored.height, colored.width) == ("rgb8", H, W)

        # points: organized, decimated by cloud_stride=2, XYZRGB; X = (u - cx) z / fx etc. from depth and K.
        assert (cloud.height, cloud.width) == (math.ceil(H / 2), math.ceil(W / 2))
        assert [f.name for f in cloud.fields] == ["x", "y", "z", "rgb"] and cloud.is_dense is False
        got = unpack_cloud(cloud.fields, cloud.point_step, cloud.height, cloud.width, cloud.data, cloud.is_bigendian)
        k = np.asarray(info.k).reshape(3, 3)
        fx, fy, cx, cy = k[0, 0], k[1, 1], k[0, 2], k[1, 2]
        v, u = np.mgrid[0:H:2, 0:W:2].astype(np.float64)
        zs = z[::2, ::2].astype(np.float64)
        np.testing.assert_allclose(got["xyz"][..., 2], zs, rtol=1e-6)
        np.testing.assert_allclose(got["xyz"][..., 0], (u - cx) * zs / fx, rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(got["xyz"][..., 1], (v - cy) * zs / fy, rtol=1e-4, atol=1e-6)
        np.testing.assert_array_equal(got["rgb"], scene_rgb[::2, ::2])

        diag = ros.diagnostics(rig.name, lambda d: d["frames_processed"] == "1")
        assert diag["description"] == "a room with two balls"
        assert diag["depth_units"].startswith("relative") and diag["backend"] == "torch"
        for key in ("latency_p50_ms", "latency_p95_ms", "rate_hz", "frames_dropped", "num_steps", "depth_mode"):
            assert key in diag
    finally:
        rig.destroy()


def test_metric_modes_scale_depth_as_configured_at_run_time(ros: Harness, tiny_pipe: Any, scene_rgb):
    rig = Rig(ros, "metric", tiny_pipe)
    fqn = f"/metric/{rig.name}"
    try:
        rel = _raw_depth(ros.wait_stamp(rig.topic("depth"), rig.send_image(scene_rgb))).astype(np.float64)

        # Refused changes leave the node as it was (validated like at start-up).
        bad = ros.set_parameters(fqn, depth_mode="meters")
        assert not bad[0].successful and "depth_mode" in bad[0].reason
        assert not ros.set_parameters(fqn, scale=-2.0)[0].successful
        assert not ros.set_parameters(fqn, model_dir="/elsewhere")[0].successful  # read-only after start

        # fixed_scale: meters = scale * d + shift, from the next frame on.
        assert all(r.successful for r in ros.set_parameters(fqn, depth_mode="fixed_scale", scale=2.5, shift=0.5))
        metric = ros.wait_stamp(rig.topic("depth"), rig.send_image(scene_rgb))
        np.testing.assert_allclose(_depth_array(metric), 2.5 * rel + 0.5, rtol=1e-5)
        assert ros.diagnostics(rig.name, lambda d: d["depth_mode"] == "fixed_scale")["depth_units"] == "meters"

        # sparse_aligned without sparse depth: the frame is not published, and that is said and counted.
        assert ros.set_parameters(fqn, depth_mode="sparse_aligned")[0].successful
        lonely = rig.send_image(scene_rgb)
        ros.wait_log(rig.name, "no sparse depth")
        assert ros.find(rig.topic("depth"), lonely) is None
        assert (
            int(ros.diagnostics(rig.name, lambda d: "rejected_no_sparse_depth" in d)["rejected_no_sparse_depth"]) >= 1
        )

        # A scene with known sparse depth: LiDAR-like samples of 3 * d + 1 meters (a few of them wrong).
        truth = 3.0 * rel + 1.0
        sparse = np.full((H, W), np.nan, np.float32)
        sparse[::6, ::3] = truth[::6, ::3]
        sparse[0, :6:3] = 40.0  # outliers (reflections): the robust fit ignores them
        stamp = (next(_stamps), 500)
        rig.pub_sparse.publish(sparse_msg(sparse, stamp))
        time.sleep(0.3)  # sparse depth arrives before the image it belongs to
        rig.send_image(scene_rgb, stamp=(stamp[0], stamp[1] + 1000))  # 1 us later: within the tolerance
        aligned = _depth_array(ros.wait_stamp(rig.topic("depth"), (stamp[0], stamp[1] + 1000)))
        np.testing.assert_allclose(aligned, truth, rtol=2e-3)
        cloud = ros.wait_stamp(rig.topic("points"), (stamp[0], stamp[1] + 1000))
        xyz = unpack_cloud(cloud.fields, cloud.point_step, cloud.height, cloud.width, cloud.data)["xyz"]
        np.testing.assert_allclose(xyz[..., 2], aligned, rtol=1e-6)
    finally:
        rig.destroy()


def test_a_description_published_before_the_node_starts_reaches_it(ros: Harness, tiny_pipe: Any):
    pub = ros.node.create_publisher(String, "/late/description", DESCRIPTION_QOS)
    pub.publish(String(data="a warehouse aisle, shelves on both sides"))
    time.sleep(0.2)
    rig = Rig(ros, "late", tiny_pipe)  # starts after the description was published, and only once
    try:
        ros.wait_log(rig.name, "a warehouse aisle")
        diag = ros.diagnostics(rig.name, lambda d: d["description"] != "")
        assert diag["description"] == "a warehouse aisle, shelves on both sides"
        # description_override wins over the topic, at run time.
        assert ros.set_parameters(f"/late/{rig.name}", description_override="an office")[0].successful
        assert ros.diagnostics(rig.name, lambda d: d["description"] == "an office")
    finally:
        rig.destroy()
        ros.node.destroy_publisher(pub)


def test_compressed_input_by_parameter(ros: Harness, tiny_pipe: Any, scene_rgb):
    import io

    from PIL import Image as PILImage

    rig = Rig(ros, "jpeg", tiny_pipe, compressed_input=True)
    try:
        pub = ros.node.create_publisher(CompressedImage, "/jpeg/image/compressed", qos_profile_sensor_data)
        assert poll(lambda: pub.get_subscription_count() > 0)
        buf = io.BytesIO()
        PILImage.fromarray(scene_rgb).save(buf, format="PNG")
        msg = CompressedImage(format="png", data=buf.getvalue())
        msg.header.stamp.sec, msg.header.frame_id = next(_stamps), "cam_optical"
        rig.pub_info.publish(camera_info(msg.header))
        pub.publish(msg)
        stamp = _stamp_key(msg)
        depth = ros.wait_stamp(rig.topic("depth"), stamp)
        assert (depth.width, depth.height) == (W, H)
        cloud = ros.wait_stamp(rig.topic("points"), stamp)
        rgb = unpack_cloud(cloud.fields, cloud.point_step, cloud.height, cloud.width, cloud.data)["rgb"]
        np.testing.assert_array_equal(rgb, scene_rgb)  # PNG is lossless: the colors are the camera's
        ros.node.destroy_publisher(pub)
    finally:
        rig.destroy()


BAD_IMAGES = [
    ({"encoding": "bayer_rggb8"}, "unsupported image encoding 'bayer_rggb8'"),
    ({"encoding": "yuv422"}, "unsupported image encoding 'yuv422'"),
    ({"encoding": "32FC1"}, "unsupported image encoding '32FC1'"),
    ({"encoding": "8UC3"}, "unsupported image encoding '8UC3'"),
    ({"encoding": "nv21"}, "unsupported image encoding 'nv21'"),
    ({"height": 0, "width": 0, "step": 0}, "empty rgb8 image (0 x 0)"),
    ({"step": 3 * W - 1}, f"step {3 * W - 1} is less than"),
    ({"step": 3 * W + 1}, "but step * height"),
    ({"height": H + 1}, "but step * height"),
]


def test_bad_input_is_logged_and_the_node_keeps_processing(ros: Harness, tiny_pipe: Any, scene_rgb):
    rig = Rig(ros, "bad", tiny_pipe)
    try:

        def good_frame_still_works() -> None:
            stamp = rig.send_image(scene_rgb)
            ros.wait_stamp(rig.topic("depth"), stamp)

        good_frame_still_works()
        for fields, words in BAD_IMAGES:
            since = len(ros.msgs["/rosout"])  # this frame's own log line, not an earlier one with the same words
            rig.send_image(scene_rgb, **fields)
            line = ros.wait_log(rig.name, words, since=since)
            assert "image rejected" in line
            good_frame_still_works()

        rig.pub_desc.publish(String(data="a kitchen"))
        ros.wait_log(rig.name, "'a kitchen'")
        rig.pub_desc.publish(String(data="x" * 20000))
        ros.wait_log(rig.name, "description of 20000 characters refused")
        good_frame_still_works()
        rig.pub_desc.publish(String(data="une cuisine équipée"))
        ros.wait_log(rig.name, "non-ASCII")
        good_frame_still_works()

        zero = CameraInfo()
        zero.header.frame_id = "cam_optical"
        zero.width, zero.height = W, H  # K all zeros: an uncalibrated camera
        rig.pub_info.publish(zero)
        ros.wait_log(rig.name, "focal lengths fx=0, fy=0")
        stamp = rig.send_image(scene_rgb, info=False)
        ros.wait_stamp(rig.topic("depth"), stamp)
        ros.wait_stamp(rig.topic("points"), stamp)  # the last good CameraInfo is still in use

        diag = ros.diagnostics(rig.name, lambda d: "rejected_bad_camera_info" in d)
        assert int(diag["rejected_unsupported_encoding"]) == 5
        assert int(diag["rejected_empty_image"]) == 1
        assert int(diag["rejected_bad_layout"]) == 3
        assert int(diag["rejected_bad_description"]) == 1
        assert diag["description"] == "une cuisine équipée"
        assert int(diag["frames_processed"]) == len(BAD_IMAGES) + 4
    finally:
        rig.destroy()


# ------------------------------------------------------------------ camera geometry (image_pipeline conventions)
def test_roi_and_binning_camera_info_and_points_match_depth_image_proc(ros: Harness, tiny_pipe: Any, scene_rgb):
    """A CameraInfo for a 4W x 4H sensor, ROI (offset, 2W x 2H), binning 2, P != K (rectified): depth_image_proc
    on the node's own depth + depth/camera_info gives the node's points, and K/P follow image_geometry."""
    from test_camera_geometry import depth_image_proc_xyz, image_geometry_kp

    rig = Rig(ros, "roi", tiny_pipe, depth_mode="fixed_scale", scale=4.0, shift=0.5)
    try:
        info = CameraInfo()
        info.header.frame_id = "cam_optical"
        info.width, info.height = 4 * W, 4 * H
        k = [300.0, 0.0, 2 * W - 0.5, 0.0, 310.0, 2 * H - 0.5, 0.0, 0.0, 1.0]
        p = [290.0, 0.0, 2 * W + 3.25, -17.0, 0.0, 290.0, 2 * H - 4.75, 0.0, 0.0, 0.0, 1.0, 0.0]
        info.k, info.p = k, p
        info.binning_x = info.binning_y = 2
        roi = (W // 2, H // 4, 2 * W, 2 * H)
        info.roi.x_offset, info.roi.y_offset, info.roi.width, info.roi.height = roi
        rig.pub_info.publish(info)
        time.sleep(0.2)
        stamp = rig.send_image(scene_rgb, info=False)
        depth_msg = ros.wait_stamp(rig.topic("depth"), stamp)
        out_info = ros.wait_stamp(rig.topic("depth/camera_info"), stamp)
        cloud = ros.wait_stamp(rig.topic("points"), stamp)
        want_k, want_p = image_geometry_kp(k, p, roi, 2, 2)
        assert (out_info.width, out_info.height) == (W, H)
        np.testing.assert_allclose(out_info.k, want_k, atol=1e-12)
        np.testing.assert_allclose(out_info.p, want_p, atol=1e-12)
        assert out_info.roi.width == 0 and out_info.binning_x == 0  # K and P already describe this image
        got = unpack_cloud(cloud.fields, cloud.point_step, cloud.height, cloud.width, cloud.data)["xyz"]
        expected = depth_image_proc_xyz(_depth_array(depth_msg), list(out_info.p))
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5, equal_nan=True)
    finally:
        rig.destroy()


def test_camera_info_unusable_at_the_image_size_is_bad_camera_info_with_the_reason(
    ros: Harness, tiny_pipe: Any, scene_rgb
):
    rig = Rig(ros, "overflow", tiny_pipe)
    try:
        info = CameraInfo()
        info.width, info.height = 1, 1  # fine at 1x1; fx overflows float32 once scaled to W x H
        info.k = [1e37, 0.0, 0.0, 0.0, 1e37, 0.0, 0.0, 0.0, 1.0]
        rig.pub_info.publish(info)
        time.sleep(0.2)
        since = len(ros.msgs["/rosout"])
        stamp = rig.send_image(scene_rgb, info=False)
        ros.wait_stamp(rig.topic("depth"), stamp)  # depth is still published
        line = ros.wait_log(rig.name, "bad_camera_info", since=since)
        assert f"at the image's {W} x {H}" in line and "float32" in line
        diag = ros.diagnostics(rig.name, lambda d: "rejected_bad_camera_info" in d)
        assert "rejected_model_input" not in diag
        assert ros.find(rig.topic("points"), stamp) is None
    finally:
        rig.destroy()


# ------------------------------------------------------------------ what reaches the model (issue 15)
def test_the_description_reaches_the_model_and_changes_the_depth(ros: Harness, tiny_pipe: Any, scene_rgb):
    from test_processing import Recording

    rec = Recording(tiny_pipe)
    rig = Rig(ros, "text", rec)
    try:
        plain = _raw_depth(ros.wait_stamp(rig.topic("depth"), rig.send_image(scene_rgb)))
        assert rec.calls[-1]["text"] is None
        rig.pub_desc.publish(String(data="a corridor with a box"))
        ros.wait_log(rig.name, "a corridor with a box")
        described = _raw_depth(ros.wait_stamp(rig.topic("depth"), rig.send_image(scene_rgb)))
        assert rec.calls[-1]["text"] == "a corridor with a box"
        assert np.abs(described - plain).max() > 1e-3  # the same image, another description: other depth
        assert ros.set_parameters(f"/text/{rig.name}", description_override="an office")[0].successful
        ros.wait_stamp(rig.topic("depth"), rig.send_image(scene_rgb))
        assert rec.calls[-1]["text"] == "an office"
    finally:
        rig.destroy()


def test_num_steps_and_ensemble_size_changes_reach_the_model(ros: Harness, tiny_pipe: Any, scene_rgb):
    from test_processing import Recording

    rec = Recording(tiny_pipe)
    rig = Rig(ros, "steps", rec, outputs=("depth",))
    try:
        ros.wait_stamp(rig.topic("depth"), rig.send_image(scene_rgb))
        assert rec.calls[-1]["num_inference_steps"] is None and rec.calls[-1]["ensemble_size"] == 1
        assert all(r.successful for r in ros.set_parameters(f"/steps/{rig.name}", num_steps=2, ensemble_size=3))
        ros.wait_stamp(rig.topic("depth"), rig.send_image(scene_rgb))
        assert (rec.calls[-1]["num_inference_steps"], rec.calls[-1]["ensemble_size"]) == (2, 3)
        assert ros.set_parameters(f"/steps/{rig.name}", num_steps=1)[0].successful
        ros.wait_stamp(rig.topic("depth"), rig.send_image(scene_rgb))
        assert (rec.calls[-1]["num_inference_steps"], rec.calls[-1]["ensemble_size"]) == (1, 3)
    finally:
        rig.destroy()


def test_sparse_depth_outside_the_tolerance_is_not_used_and_other_resolutions_are(
    ros: Harness, tiny_pipe: Any, scene_rgb
):
    rig = Rig(ros, "tolerance", tiny_pipe, sparse_tolerance_s=0.05)
    fqn = f"/tolerance/{rig.name}"
    try:
        rel = _raw_depth(ros.wait_stamp(rig.topic("depth"), rig.send_image(scene_rgb))).astype(np.float64)
        truth = 2.0 * rel + 0.5
        assert ros.set_parameters(fqn, depth_mode="sparse_aligned")[0].successful
        # Half-resolution samples: low-res pixel (r, c) lands on full-res pixel (2r, 2c) (nearest center).
        low = np.full((H // 2, W // 2), np.nan, np.float32)
        low[::3, ::3] = truth[::6, ::6]

        sec = next(_stamps)
        rig.pub_sparse.publish(sparse_msg(low, (sec, 0)))
        time.sleep(0.3)
        late = rig.send_image(scene_rgb, stamp=(sec, 200_000_000))  # 0.2 s after the sparse depth: too far
        ros.wait_log(rig.name, "no sparse depth")
        diag = ros.diagnostics(rig.name, lambda d: "rejected_no_sparse_depth" in d)
        assert int(diag["rejected_no_sparse_depth"]) == 1
        assert ros.find(rig.topic("depth"), late) is None

        sec = next(_stamps)
        rig.pub_sparse.publish(sparse_msg(low, (sec, 0)))
        time.sleep(0.3)
        near = rig.send_image(scene_rgb, stamp=(sec, 40_000_000))  # 0.04 s: within the tolerance
        aligned = _depth_array(ros.wait_stamp(rig.topic("depth"), near))
        np.testing.assert_allclose(aligned, truth, rtol=2e-3)
    finally:
        rig.destroy()


# ------------------------------------------------------------------ what is never published, what is skipped
def test_a_non_finite_model_output_is_counted_and_not_published(ros: Harness, tiny_pipe: Any, scene_rgb):
    from test_processing import Recording

    nan = np.full((H, W), np.nan, np.float32)
    rig = Rig(ros, "nan", Recording(tiny_pipe, output=nan))
    try:
        stamp = rig.send_image(scene_rgb)
        diag = ros.diagnostics(rig.name, lambda d: "rejected_non_finite_output" in d, timeout=20.0)
        assert int(diag["rejected_non_finite_output"]) == 1 and diag["frames_processed"] == "0"
        line = ros.wait_log(rig.name, "non_finite_output")
        assert "not published" in line
        time.sleep(0.3)
        for topic in ("depth", "depth/camera_info", "depth/colorized", "points"):
            assert ros.find(rig.topic(topic), stamp) is None, topic
    finally:
        rig.destroy()


def test_outputs_nobody_subscribes_to_are_not_computed(ros: Harness, tiny_pipe: Any, scene_rgb):
    rig = Rig(ros, "lonely", tiny_pipe, outputs=("depth",))
    try:
        ros.wait_stamp(rig.topic("depth"), rig.send_image(scene_rgb))
        stages = rig.node.stage_times[-1]
        assert "colorize" not in stages and "points" not in stages
        ros.listen(rig.topic("points"), PointCloud2)
        assert poll(lambda: rig.node._pub_points.get_subscription_count() > 0)
        stamp = rig.send_image(scene_rgb)
        ros.wait_stamp(rig.topic("points"), stamp)
        assert "points" in rig.node.stage_times[-1] and "colorize" not in rig.node.stage_times[-1]
    finally:
        rig.destroy()


def test_echoed_input_is_cut_short(ros: Harness, tiny_pipe: Any, scene_rgb):
    """A 1 MB encoding string or parameter value is not echoed back whole in a log line or a reply."""
    rig = Rig(ros, "echo", tiny_pipe, outputs=("depth",))
    try:
        since = len(ros.msgs["/rosout"])
        rig.send_image(scene_rgb, encoding="x" * 1_000_000)
        line = ros.wait_log(rig.name, "unsupported image encoding", since=since)
        assert len(line) < 600 and "1000002 characters" in line
        reply = ros.set_parameters(f"/echo/{rig.name}", description_override="y" * 1_000_000)[0]
        assert not reply.successful and len(reply.reason) < 600
        reply = ros.set_parameters(f"/echo/{rig.name}", depth_mode="z" * 1_000_000)[0]
        assert not reply.successful and len(reply.reason) < 600 and "depth_mode" in reply.reason
        ros.wait_stamp(rig.topic("depth"), rig.send_image(scene_rgb))  # and the node keeps working
    finally:
        rig.destroy()


def _assert_finite_depth_and_read_only(ros: Harness, rig: Rig, scene_rgb, **change: Any) -> None:
    """The node publishes finite, non-flat depth, and refuses ``change`` of a read-only parameter."""
    z = _raw_depth(ros.wait_stamp(rig.topic("depth"), rig.send_image(scene_rgb), timeout=60.0))
    assert np.isfinite(z).all() and z.std() > 1e-4
    reply = ros.set_parameters(f"/{rig.ns}/{rig.name}", **change)[0]
    assert not reply.successful and "read-only" in reply.reason


def test_bf16_end_to_end_through_the_node_on_cpu(ros: Harness, tiny_model_dir: Path, scene_rgb):
    """dtype=bf16 (read-only) loads the checkpoint's UNet and text encoder in bfloat16 and publishes finite depth."""
    rig = Rig(ros, "bf16", None, outputs=("depth",), model_dir=str(tiny_model_dir), dtype="bf16")
    try:
        components = rig.node.pipeline.components
        assert next(components.unet.parameters()).dtype == torch.bfloat16
        assert next(components.vae.parameters()).dtype == torch.float32  # the VAE stays fp32
        _assert_finite_depth_and_read_only(ros, rig, scene_rgb, dtype="fp32")
    finally:
        rig.destroy()


@pytest.mark.parametrize("decoder", ["auto", "vae", "tiny"])
def test_decoder_parameter_picks_the_depth_decoder(ros: Harness, scene_rgb, decoder: str):
    """The embedded default model carries a tiny decoder: ``auto`` and ``tiny`` decode with it, ``vae`` with the
    VAE decoder; the parameter is read-only."""
    from iris_model.default_model import default_model_dir

    rig = Rig(ros, f"dec_{decoder}", None, outputs=("depth",), model_dir=str(default_model_dir()), decoder=decoder)
    try:
        assert rig.node.pipeline.decoder == ("vae" if decoder == "vae" else "tiny")
        _assert_finite_depth_and_read_only(ros, rig, scene_rgb, decoder="vae")
    finally:
        rig.destroy()


def _scale_to_truth(depth: np.ndarray, truth: np.ndarray) -> float:
    """s of the least-squares fit depth ~ s * truth + b (truth in meters): the output's scale in this frame."""
    valid = np.isfinite(depth) & np.isfinite(truth) & (truth < 100)
    a = np.stack([truth[valid], np.ones(int(valid.sum()))], axis=1)
    (s, _), *_ = np.linalg.lstsq(a, depth[valid].astype(np.float64), rcond=None)
    return float(s)


def test_temporal_stream_keeps_the_metric_scale_steadier_than_off_on_moving_video(ros: Harness):
    """Moving-camera synthetic video (the first 4 test-split sequences: a walk, a pan, an orbit and a turn, 12
    frames each at 128x96; the turn's 8 before its cut), each frame with a scan of 4 rows of its true depth with
    2 % range noise on sparse_depth, through the node with the embedded default model in sparse_aligned mode: per
    frame, the scale s of the published meters ~ s * ground truth + b; its frame-to-frame jumps
    |log(s_t+1 / s_t)| within each sequence are smaller with temporal_mode=stream (the sparse fits filtered over
    time, outliers rejected) than with off (each frame's own fit), in the median and in the mean over all
    sequences, while the meters stay as accurate (AbsRel against the ground truth): a filter that held one fit
    steady but wrong would fail."""
    from iris_training.synthetic.video import generate_sequence

    from iris_model import IrisDepthPipeline
    from iris_model.default_model import default_model_dir

    seqs = [generate_sequence("test", i, num_frames=12, height=H, width=W) for i in range(4)]
    rng = np.random.default_rng(0)
    rows = np.linspace(8, H - 9, 4).astype(int)
    clips = []  # per sequence, (frame, its scan) up to a turn's cut into a new room (a new segment)
    for seq in seqs:
        clip = []
        for f in (f for f in seq.frames if f.segment == 0):
            scan = np.full((H, W), np.nan, np.float32)
            noise = 1.0 + 0.02 * rng.standard_normal((len(rows), W))
            scan[rows] = np.where(f.valid[rows], f.depth[rows] * noise, np.nan)
            clip.append((f, scan))
        clips.append(clip)
    rig = Rig(ros, "stream", IrisDepthPipeline.from_pretrained(default_model_dir()), outputs=("depth",),
              depth_mode="sparse_aligned", sparse_tolerance_s=0.01)
    fqn = f"/stream/{rig.name}"
    try:
        jumps: dict[str, list[np.ndarray]] = {"off": [], "stream": []}
        abs_rel: dict[str, list[float]] = {"off": [], "stream": []}
        for mode in jumps:
            assert ros.set_parameters(fqn, temporal_mode=mode)[0].successful
            for clip in clips:
                caption = clip[0][0].caption
                since = len(ros.msgs["/rosout"])
                rig.pub_desc.publish(String(data=caption))
                shown = echo(caption)[:40]  # as the node's log line shows it
                ros.wait_log(rig.name, f"description (applies from the next frame): {shown}", since=since)
                sec = next(_stamps) * 100  # a stamp gap: each sequence starts afresh
                scales = []
                for f, scan in clip:
                    ns = round(f.stamp_s * 1e9)
                    stamp = (sec + ns // 1_000_000_000, ns % 1_000_000_000)
                    rig.pub_sparse.publish(sparse_msg(scan, stamp))
                    time.sleep(0.05)  # the scan before the image it belongs to
                    rig.send_image((f.rgb * 255).round().astype(np.uint8), stamp=stamp)
                    depth = _raw_depth(ros.wait_stamp(rig.topic("depth"), stamp, timeout=60.0))
                    scales.append(_scale_to_truth(depth, np.where(f.valid, f.depth, np.nan)))
                    ok = f.valid & np.isfinite(depth)
                    abs_rel[mode].append(float(np.mean(np.abs(depth[ok] - f.depth[ok]) / f.depth[ok])))
                jumps[mode].append(np.abs(np.diff(np.log(np.abs(scales)))))
        pooled = {m: np.concatenate(j) for m, j in jumps.items()}
        rel = {m: float(np.mean(r)) for m, r in abs_rel.items()}
        print({m: (round(float(np.median(j)), 4), round(float(j.mean()), 4), round(rel[m], 4))
               for m, j in pooled.items()})
        # The embedded model (v2, stage 14; tiny decoder) here: off median 0.0059 / mean 0.0231 / AbsRel 0.1605,
        # stream 0.0054 / 0.0083 / 0.1614 (stage 12: 0.0084 / 0.0166 / 0.1552 and 0.0047 / 0.0068 / 0.1536). The
        # scan's noise hardly matters (a fit to 512 samples); what jumps is the model's per-frame depth along the
        # scanned rows, which the filter averages and whose outliers it rejects: the mean falls to a third. The
        # median of these ~40 jumps is the model's own frame-to-frame wobble, which the stage-14 model's per-frame
        # fits already keep low: 0.92x here, 0.64x on 10 validation sequences the same way (0.0045 against
        # 0.0070), so the median is held to "smaller" and the mean to half. In relative mode the stream's scale is
        # not reliably steadier than off's with this model (docs/streaming.md, "The scale, frame to frame").
        assert np.median(pooled["stream"]) < np.median(pooled["off"])
        assert pooled["stream"].mean() < 0.5 * pooled["off"].mean()
        assert rel["stream"] < 1.05 * rel["off"]
        diag = ros.diagnostics(rig.name, lambda d: d.get("temporal_mode") == "stream" and "stream_scale" in d)
        assert int(diag["stream_frames_since_reset"]) == len(clips[-1])
        # One stream since the mode was switched on, restarted by each new sequence's description; no fit of a
        # scan with 2 % noise is an outlier.
        assert diag["stream_resets_first"] == "1" and diag["stream_resets_description"] == str(len(seqs) - 1)
        assert diag["stream_sparse_fits_rejected"] == "0"
    finally:
        rig.destroy()


def _pose_msg(matrix: np.ndarray, stamp: tuple[int, int], frame_id: str = "odom") -> PoseStamped:
    """The camera optical frame's pose (camera-to-world 4x4) as a PoseStamped in ``frame_id``."""
    from scipy.spatial.transform import Rotation

    msg = PoseStamped()
    msg.header.stamp.sec, msg.header.stamp.nanosec = stamp
    msg.header.frame_id = frame_id
    msg.pose.position.x, msg.pose.position.y, msg.pose.position.z = (float(v) for v in matrix[:3, 3])
    q = Rotation.from_matrix(matrix[:3, :3]).as_quat()  # x, y, z, w
    o = msg.pose.orientation
    o.x, o.y, o.z, o.w = (float(v) for v in q)
    return msg


def test_pose_mode_fuses_metric_depth_along_the_camera_motion(ros: Harness):
    """A walk through a synthetic room (12 frames), each frame with its true pose on camera_pose and a scan of
    16 rows of true depth on sparse_depth, through the node with the embedded default model in sparse_aligned
    mode: the temporal alignment error (TAE, with the true poses) is lower with temporal_mode=pose than with
    off, per-frame AbsRel no worse; every frame after the first is counted as fused. Then without poses:
    frames are still published, unfused, and counted as such."""
    from iris_training.synthetic.video import generate_sequence

    from iris_model import IrisDepthPipeline
    from iris_model.default_model import default_model_dir
    from iris_model.metrics import temporal_alignment_error

    seq = generate_sequence("test", 1, num_frames=12, trajectory="walk", family="room", rate_hz=15.0)
    frames = seq.frames
    k = frames[0].intrinsics
    h, w = frames[0].depth.shape
    pipe = IrisDepthPipeline.from_pretrained(default_model_dir())
    rig = Rig(ros, "posefuse", pipe, outputs=("depth",), depth_mode="sparse_aligned", sparse_tolerance_s=0.01)
    pub_pose = ros.node.create_publisher(PoseStamped, rig.topic("camera_pose"), qos_profile_sensor_data)
    assert poll(lambda: pub_pose.get_subscription_count() > 0)
    fqn = f"/posefuse/{rig.name}"
    info = camera_info(
        Header(frame_id="cam_optical"), Intrinsics(fx=k[0, 0], fy=k[1, 1], cx=k[0, 2], cy=k[1, 2], width=w, height=h)
    )
    rows = np.linspace(8, h - 9, 16).astype(int)
    try:
        depths: dict[str, list[np.ndarray]] = {}
        for mode, send_poses in (("off", True), ("pose", True), ("pose", False)):
            assert ros.set_parameters(fqn, temporal_mode=mode)[0].successful
            sec = next(_stamps) * 100
            out = []
            for i, f in enumerate(frames):
                stamp = (sec, int(i / seq.rate_hz * 1e9))
                scan = np.full((h, w), np.nan, np.float32)
                scan[rows] = np.where(f.valid[rows], f.depth[rows], np.nan)
                rig.pub_sparse.publish(sparse_msg(scan, stamp))
                if send_poses:
                    pub_pose.publish(_pose_msg(f.pose, stamp))
                info.header.stamp.sec, info.header.stamp.nanosec = stamp
                rig.pub_info.publish(info)
                time.sleep(0.05)  # the scan, pose and info before the image they belong to
                rig.send_image((f.rgb * 255).round().astype(np.uint8), stamp=stamp, info=False)
                out.append(_raw_depth(ros.wait_stamp(rig.topic("depth"), stamp, timeout=60.0)))
            depths[f"{mode}{'' if send_poses else ' without poses'}"] = out
        poses = np.stack([f.pose for f in frames])
        valid = np.stack([f.valid for f in frames])
        truth = np.stack([f.depth for f in frames])
        figures = {}
        for name, out in depths.items():
            d = np.nan_to_num(np.stack(out), nan=0.0)
            ok = valid & (d > 0)
            figures[name] = (
                temporal_alignment_error(d, k, poses, valid),
                float(np.mean(np.abs(d[ok] - truth[ok]) / truth[ok])),
            )
        print({name: (round(tae, 3), round(rel, 4)) for name, (tae, rel) in figures.items()})
        (tae_off, rel_off), (tae_pose, rel_pose) = figures["off"], figures["pose"]
        assert tae_pose < 0.8 * tae_off
        assert rel_pose < 1.02 * rel_off
        # Without poses nothing is fused: the output is the per-frame metric depth, as with off.
        np.testing.assert_allclose(figures["pose without poses"][0], tae_off, rtol=1e-3)
        diag = ros.diagnostics(rig.name, lambda d: "pose_frames_unfused_no_pose" in d)
        assert diag["pose_frames_fused"] == str(len(frames) - 1)  # all but the first, which starts the filter
        assert diag["pose_frames_unfused_restart"] == "1"
        assert diag["pose_frames_unfused_no_pose"] == str(len(frames))
        assert diag["pose_fixed_frame"] == "odom"
        ros.wait_log(rig.name, "frame published without fusion: no pose on /posefuse/camera_pose")
    finally:
        ros.node.destroy_publisher(pub_pose)
        rig.destroy()


def test_pose_source_tf_without_tf2_ros_fails_at_start_up_naming_it(ros: Harness, tiny_pipe: Any):
    """tf2_ros is not on PyPI: here pose_source=tf must stop the node at start-up with a reason that says what
    to install or use instead (with ROS 2 sourced, the node starts and listens on TF)."""
    import importlib.util

    from iris_ros.config import ConfigError

    overrides = [RclpyParameter("pose_source", value="tf")]
    if importlib.util.find_spec("tf2_ros") is not None:  # pragma: no cover - a ROS 2 install
        node = IrisDepthNode(
            pipeline=tiny_pipe, node_name="tf_source", context=ros.context, parameter_overrides=overrides
        )
        try:
            assert node._tf is not None and node._tf.fixed_frame == "odom"
            assert node._pose_for("cam_optical", 10**9, 0.0) is None  # nothing on TF yet: no pose, said why
            assert "odom" in node._tf.last_error
        finally:
            node.destroy_node()
        return
    with pytest.raises(ConfigError, match=r"needs tf2_ros .*pose_source 'topic'"):
        IrisDepthNode(pipeline=tiny_pipe, node_name="tf_source", context=ros.context, parameter_overrides=overrides)


class SlowPipeline:
    """The tiny pipeline behind a fixed delay: a model far slower than the camera."""

    def __init__(self, pipe: Any, delay_s: float) -> None:
        self.pipe, self.delay_s = pipe, delay_s
        self.components = pipe.components

    def __call__(self, image: Any, **kwargs: Any) -> Any:
        time.sleep(self.delay_s)
        return self.pipe(image, **kwargs)


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024.0
    raise RuntimeError("no VmRSS")


FLOOD_W, FLOOD_H = 320, 240
FLOOD_FRAMES, FLOOD_HZ, FLOOD_DELAY_S = 600, 30.0, 0.3
#: The sender runs at most this many frames ahead of what the node's image callback has taken: fewer than the
#: reader's keep-last history (5), so no frame can be overwritten inside DDS, where the node could not count it.
FLOOD_AHEAD = 4


def _counts(node: IrisDepthNode) -> dict[str, int]:
    """The node's frame counters now, from its diagnostics read in process (this also restarts the window of
    the ``rate_hz`` values it publishes; the flood test reads none)."""
    values = {kv.key: kv.value for kv in node.diagnostics().values}
    return {k: int(values[f"frames_{k}"]) for k in ("received", "processed", "dropped", "rejected")}


def test_flood_keeps_memory_bounded_counts_drops_and_processes_the_newest(ros: Harness, tiny_pipe: Any):
    """600 frames of 320 x 240 at up to 30 Hz into a model that needs at least 0.3 s per frame.

    No bound depends on how fast this machine is: the sender paces itself at 30 Hz but never runs more than
    FLOOD_AHEAD frames ahead of the node's image callback (on a loaded machine it then sends slower, and the
    flood is still ~10x what the model takes), and every bound below follows from counts and measured times.
    """
    from iris_ros.depth_node import RELIABLE_IMAGE_QOS

    assert RELIABLE_IMAGE_QOS.depth >= FLOOD_AHEAD + 1
    rig = Rig(
        ros,
        "flood",
        SlowPipeline(tiny_pipe, FLOOD_DELAY_S),
        pub_qos=QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE),
        headers_only=True,
        image_qos="reliable",
    )
    try:
        rgb = SyntheticScene(FLOOD_W, FLOOD_H).render(0.0)[0]
        warm = rig.send_image(rgb)
        ros.wait_stamp(rig.topic("depth"), warm)
        assert poll(lambda: _counts(rig.node)["processed"] == 1)
        base = _counts(rig.node)
        rss_start = _rss_mb()
        sent: list[tuple[int, int]] = []
        held_s = 0.0  # time the sender waited for the node's callback to catch up
        t0 = time.monotonic()
        for i in range(FLOOD_FRAMES):
            pause = t0 + i / FLOOD_HZ - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            wait_from = time.monotonic()
            assert poll(lambda i=i: _counts(rig.node)["received"] - base["received"] >= i - FLOOD_AHEAD, 30.0), (
                f"the node's image callback took no frame for 30 s (frame {i})"
            )
            held_s += time.monotonic() - wait_from
            sent.append(rig.send_image(rgb, stamp=(100000 + i, 0), info=(i % 10 == 0)))
            if i == FLOOD_FRAMES // 2:
                rss_mid = _rss_mb()
        t_sent = time.monotonic()
        at_last_send = _counts(rig.node)
        last = ros.wait_stamp(rig.topic("depth"), sent[-1], timeout=60.0)
        t_done = time.monotonic()
        rss_end = _rss_mb()
        assert _stamp_key(last) == sent[-1]  # the newest frame is the one that was processed last

        # Every frame reached the node (the sender never outran its callback by more than DDS keeps), and
        # every frame that reached it was processed, dropped or rejected: the last one was processed, so the
        # counts add up as soon as the worker has counted it (right after publishing all its outputs).
        def accounted(c: dict[str, int]) -> bool:
            return c["processed"] + c["dropped"] + c["rejected"] == c["received"]

        poll(lambda: accounted(_counts(rig.node)), 10.0)
        final = _counts(rig.node)
        got = {k: final[k] - base[k] for k in final}
        print(f"flood: sent {FLOOD_FRAMES} in {t_sent - t0:.1f} s (sender held {held_s:.1f} s), counts {got}")
        assert got["received"] == FLOOD_FRAMES, got
        assert accounted(got), got
        assert got["rejected"] == 0, got

        processed = [_stamp_key(m) for m in ros.msgs[rig.topic("depth")] if _stamp_key(m)[0] >= 100000]
        assert processed == sorted(processed) and len(processed) == got["processed"]
        # Each processed frame held the worker for at least FLOOD_DELAY_S, one after the other, between the first
        # send and the last depth: so at most this many could be processed; all the others were dropped.
        assert got["processed"] <= (t_done - t0) / FLOOD_DELAY_S + 1, got
        # The worker was never idle while frames came in (measured per-frame times, with half for overheads) ...
        frame_s = max(t["total"] for t in list(rig.node.stage_times)[-got["processed"] :])
        assert got["processed"] >= 0.5 * (t_sent - t0) / frame_s - 1, (got, frame_s)
        # ... and no backlog: after the last send the node finished at most the frame in progress, the one
        # waiting in its slot and those still in flight in DDS (a FIFO would go on through hundreds).
        assert final["processed"] - at_last_send["processed"] <= FLOOD_AHEAD + 3, (at_last_send, final)
        # Nothing piles up: during the second half of the flood RSS grows by far less than what a queue of the
        # frames sent in that half (230 kB each) would hold.
        second_half_mb = (FLOOD_FRAMES // 2) * FLOOD_W * FLOOD_H * 3 / 2**20
        print(f"RSS MB: start {rss_start:.1f} mid {rss_mid:.1f} end {rss_end:.1f}; 2nd half sent {second_half_mb:.0f}")
        assert rss_end - rss_mid < second_half_mb / 2, (rss_start, rss_mid, rss_end)
    finally:
        rig.destroy()


# --------------------------------------------------------------------------------------- the executable
def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])
    env["OMP_NUM_THREADS"] = "1"
    return env


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["-p", "model_dir:=/nonexistent/iris-model"], ["cannot load model from /nonexistent/iris-model"]),
        (["-p", "depth_mode:=meters"], ["cannot start", "depth_mode", "relative"]),
        # The reason once, in the node's own words (not rclpy's "... out of range ... value: 99: num_steps").
        (["-p", "num_steps:=99"], ["cannot start: parameter 'num_steps' must be in [0, 50], got 99\n"]),
    ],
)
def test_start_up_failure_is_fatal_with_the_reason_and_a_non_zero_exit(args: list[str], words: list[str]) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "iris_ros.depth_node", "--ros-args", "-r", "__ns:=/robot", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=_env(),
        cwd=REPO,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out
    assert "FATAL" in out and all(w in out for w in words), out
    assert "Traceback" not in out, out
    # One logger name for every line of the node, the FATAL one included.
    names = {line.split("] [")[2].split("]")[0] for line in out.splitlines() if line.startswith("[") and "] [" in line}
    assert names == {"robot.iris_depth"}, out


def test_executable_shuts_down_cleanly_on_sigint(tiny_model_dir: Path) -> None:
    launcher = REPO / "scripts" / "ros_executables" / "depth_node"
    proc = subprocess.Popen(
        [sys.executable, str(launcher), "--ros-args", "-r", "__ns:=/sigint", "-p", f"model_dir:={tiny_model_dir}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=_env(),
        cwd=REPO,
    )
    lines: list[str] = []
    ready = threading.Event()

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            if "ready:" in line:
                ready.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert ready.wait(90.0), "".join(lines)
        time.sleep(0.5)  # spinning now (a Ctrl-C during start-up is a clean stop as well)
        proc.send_signal(signal.SIGINT)
        rc = proc.wait(timeout=20.0)
    finally:
        if proc.poll() is None:
            proc.kill()
    reader.join(5.0)
    out = "".join(lines)
    assert rc == 0, out
    assert "Traceback" not in out, out
    assert f"loading model {tiny_model_dir}" in out
