"""``demo_camera``: a camera for people without one. Publishes images, a matching CameraInfo, a scene
description and (for the synthetic scene) LiDAR-like sparse depth, so the whole depth loop runs on a laptop.

Sources (``--source``):

- ``synthetic`` (default): a procedurally drawn room (checkered floor, walls, two moving balls) rendered
  by ray casting in numpy, so its true depth is known: ``sparse_depth`` carries it on 16 scan lines
  (32FC1, meters, NaN elsewhere), which makes ``depth_mode: sparse_aligned`` work out of the box, and its
  camera's pose (fixed: the optical frame at the origin of ``odom``) on ``/camera/pose``
  (geometry_msgs/PoseStamped) for ``temporal_mode: pose``;
- a folder: every image in it that Pillow reads (png, jpg, ...), in name order, looped;
- a file: a still image (repeated) or a multi-frame file Pillow reads (animated GIF / PNG / WebP,
  multi-page TIFF). Other video formats (mp4, ...) are not read: OpenCV is not a dependency; convert
  them first (e.g. ``ffmpeg -i in.mp4 -vf fps=10 frames/%05d.png``) and pass the folder.

CameraInfo for files comes from ``--fov`` (horizontal field of view, principal point at the center).
Default topics match ``launch/depth.launch.py``: ``/camera/image_raw``, ``/camera/camera_info``,
``/camera/sparse_depth``, ``/iris/description``; frame ``camera_optical_frame`` (x right, y down, z forward).

The renderer is ROS-free (:class:`SyntheticScene`); rclpy is imported only by :func:`main`.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from iris_model.geometry import Intrinsics

from .image_codec import ImageConversionError, as_rgb8, encode_depth, encode_rgb8

DEFAULT_DESCRIPTION = "an indoor room with a checkered floor, grey walls and two balls in front of the camera"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".gif", ".ppm", ".pgm")


class SyntheticScene:
    """A room seen from a camera 1 m above the floor, in the camera optical frame (meters).

    Floor y = +1.0, ceiling y = -1.5, side walls x = +-3, back wall z = 7; two balls move on circles.
    :meth:`render` returns the color image and the exact planar depth (z) of every pixel.
    """

    def __init__(self, width: int = 640, height: int = 480, fov_deg: float = 70.0) -> None:
        self.intrinsics = Intrinsics.from_fov(width, height, fov_deg)
        k = self.intrinsics
        u = (np.arange(width, dtype=np.float32) - k.cx) / k.fx
        v = (np.arange(height, dtype=np.float32) - k.cy) / k.fy
        self._dx, self._dy = np.meshgrid(u, v)  # ray direction (dx, dy, 1): a point at depth z is z * ray

    def balls(self, t: float) -> list[tuple[np.ndarray, float, np.ndarray]]:
        """(center, radius, RGB color in [0, 1]) of each ball at time ``t`` seconds."""
        return [
            (np.array([1.2 * math.sin(0.6 * t), 0.45, 3.2 + 0.9 * math.cos(0.6 * t)]), 0.55, np.array([0.9, 0.3, 0.2])),
            (np.array([-1.4, 0.6 - 0.25 * abs(math.sin(1.3 * t)), 4.8]), 0.4, np.array([0.2, 0.5, 0.9])),
        ]

    def render(self, t: float) -> tuple[np.ndarray, np.ndarray]:
        """``(rgb uint8 [H, W, 3], depth float32 [H, W] meters)`` at time ``t``."""
        dx, dy = self._dx, self._dy
        big = np.float32(1e9)
        with np.errstate(divide="ignore", invalid="ignore"):
            planes = {
                "floor": np.where(dy > 1e-6, 1.0 / dy, big),
                "ceiling": np.where(dy < -1e-6, -1.5 / dy, big),
                "right": np.where(dx > 1e-6, 3.0 / dx, big),
                "left": np.where(dx < -1e-6, -3.0 / dx, big),
                "back": np.full_like(dx, 7.0),
            }
        depth = np.minimum.reduce(list(planes.values())).astype(np.float32)
        color = np.zeros((*dx.shape, 3), dtype=np.float32)
        x, y = dx * depth, dy * depth
        for name, z in planes.items():
            hit = z == depth
            if name == "floor":
                checker = (np.floor(x * 2.0) + np.floor(z * 2.0)) % 2
                base = np.where(checker[..., None] > 0, [0.75, 0.72, 0.65], [0.35, 0.3, 0.28])
            elif name == "ceiling":
                base = np.broadcast_to(np.array([0.85, 0.85, 0.9], dtype=np.float32), color.shape)
            elif name == "back":
                stripe = (np.floor(y * 3.0) % 2)[..., None]
                base = np.where(stripe > 0, [0.55, 0.6, 0.55], [0.5, 0.55, 0.5])
            else:
                base = np.broadcast_to(np.array([0.6, 0.58, 0.62], dtype=np.float32), color.shape)
            color[hit] = base[hit]
        ray_sq = dx * dx + dy * dy + 1.0
        for center, radius, rgb in self.balls(t):
            b = dx * center[0] + dy * center[1] + center[2]  # ray . center (ray not normalized)
            disc = b * b - ray_sq * (center @ center - radius * radius)
            s = np.where(disc > 0, (b - np.sqrt(np.maximum(disc, 0))) / ray_sq, big)
            hit = (s > 0) & (s < depth)
            depth = np.where(hit, s, depth).astype(np.float32)
            nx, ny, nz = (dx * s - center[0]) / radius, (dy * s - center[1]) / radius, (s - center[2]) / radius
            light = np.clip(-0.4 * nx - 0.7 * ny - 0.6 * nz, 0.0, 1.0)
            color[hit] = (rgb[None, :] * (0.25 + 0.75 * light[hit, None])).astype(np.float32)
        fog = np.exp(-0.08 * depth)[..., None]  # a little depth cue for people looking at the image
        rgb8 = np.clip(color * (0.4 + 0.6 * fog) * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return rgb8, depth

    def sparse_depth(self, depth: np.ndarray, lines: int = 16, column_step: int = 2) -> np.ndarray:
        """LiDAR-like samples of ``depth``: ``lines`` rows, every ``column_step``-th column; NaN elsewhere."""
        sparse = np.full_like(depth, np.nan)
        rows = np.linspace(depth.shape[0] * 0.15, depth.shape[0] * 0.95, lines).astype(int)
        sparse[rows, ::column_step] = depth[rows, ::column_step]
        return sparse


def _pillow_frames(path: Path) -> Iterator[np.ndarray]:
    from PIL import Image, ImageSequence

    with Image.open(path) as img:
        for frame in ImageSequence.Iterator(img):
            yield np.asarray(frame.convert("RGB"))


def file_frames(source: Path, size: tuple[int, int] | None) -> Iterator[np.ndarray]:
    """Endless RGB frames from a folder of images or one (multi-frame) image file, resized to ``size``."""
    from PIL import Image

    if source.is_dir():
        files = sorted(p for p in source.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise ImageConversionError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in {source}")
    elif source.is_file():
        files = [source]
    else:
        raise ImageConversionError(f"{source} is neither a folder nor a file")
    while True:
        for path in files:
            try:
                frames = list(_pillow_frames(path))
            except Exception as exc:  # Pillow's decoders raise many types on unreadable files
                raise ImageConversionError(f"cannot read {path}: {type(exc).__name__}: {exc}") from exc
            for frame in frames:
                if size is not None and (frame.shape[1], frame.shape[0]) != size:
                    frame = np.asarray(Image.fromarray(frame).resize(size, Image.Resampling.BILINEAR))
                yield as_rgb8(frame)


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="demo_camera", description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", default="synthetic", help="'synthetic', a folder of images, or an image file")
    parser.add_argument("--rate", type=float, default=10.0, help="frames per second (default 10)")
    parser.add_argument("--width", type=int, default=0, help="frame width (synthetic default 640; files: native)")
    parser.add_argument("--height", type=int, default=0, help="frame height (synthetic default 480)")
    parser.add_argument("--fov", type=float, default=70.0, help="horizontal field of view in degrees (default 70)")
    parser.add_argument("--count", type=int, default=0, help="stop after this many frames (0 = run until Ctrl-C)")
    parser.add_argument("--description", default=DEFAULT_DESCRIPTION, help="scene description to publish")
    parser.add_argument("--frame-id", default="camera_optical_frame")
    parser.add_argument("--image-topic", default="/camera/image_raw")
    parser.add_argument("--camera-info-topic", default="/camera/camera_info")
    parser.add_argument("--sparse-depth-topic", default="/camera/sparse_depth")
    parser.add_argument("--description-topic", default="/iris/description")
    parser.add_argument("--pose-topic", default="/camera/pose", help="the camera's pose (synthetic source)")
    parser.add_argument("--no-sparse", action="store_true", help="do not publish sparse depth (synthetic source)")
    args = parser.parse_args(argv)
    if not args.rate > 0:
        parser.error("--rate must be > 0")
    if args.width < 0 or args.height < 0 or (args.width > 0) != (args.height > 0):
        parser.error("give both --width and --height (> 0), or neither")
    return args


def main(argv: list[str] | None = None) -> int:
    """Publish frames until Ctrl-C (or ``--count``)."""
    import rclpy
    from geometry_msgs.msg import PoseStamped
    from rclpy.executors import ExternalShutdownException
    from rclpy.qos import qos_profile_sensor_data
    from rclpy.utilities import remove_ros_args
    from sensor_msgs.msg import CameraInfo, Image
    from std_msgs.msg import String

    from .depth_node import DESCRIPTION_QOS

    argv = sys.argv if argv is None else ["demo_camera", *argv]
    args = parse_args(remove_ros_args(argv)[1:])
    rclpy.init(args=argv)
    node = rclpy.create_node("demo_camera")
    log = node.get_logger()
    size = (args.width, args.height) if args.width else None
    scene = None
    frames: Iterator[np.ndarray] | None = None
    if args.source == "synthetic":
        w, h = size or (640, 480)
        scene = SyntheticScene(w, h, args.fov)
    else:
        try:
            frames = file_frames(Path(args.source).expanduser(), size)
            first = next(frames)
        except ImageConversionError as exc:
            log.fatal(str(exc))
            node.destroy_node()
            rclpy.try_shutdown()
            return 1
        frames = _chain(first, frames)

    pub_image = node.create_publisher(Image, args.image_topic, qos_profile_sensor_data)
    pub_info = node.create_publisher(CameraInfo, args.camera_info_topic, qos_profile_sensor_data)
    pub_sparse = node.create_publisher(Image, args.sparse_depth_topic, qos_profile_sensor_data)
    pub_desc = node.create_publisher(String, args.description_topic, DESCRIPTION_QOS)
    pub_pose = node.create_publisher(PoseStamped, args.pose_topic, qos_profile_sensor_data)
    pub_desc.publish(String(data=args.description))
    log.info(
        f"publishing {args.source} frames at {args.rate:g} Hz on {pub_image.topic_name}, "
        f"description on {pub_desc.topic_name}: {args.description!r}"
    )

    state = {"n": 0, "t0": time.monotonic()}

    def tick() -> None:
        stamp = node.get_clock().now().to_msg()
        if scene is not None:
            rgb, depth = scene.render(time.monotonic() - state["t0"])
        else:
            rgb, depth = next(frames), None  # type: ignore[arg-type]
        height, width = rgb.shape[:2]
        intr = scene.intrinsics if scene is not None else Intrinsics.from_fov(width, height, args.fov)
        msg = Image()
        msg.header.stamp, msg.header.frame_id = stamp, args.frame_id
        fields = encode_rgb8(rgb)
        msg.height, msg.width, msg.step, msg.encoding = fields.height, fields.width, fields.step, fields.encoding
        msg.data = fields.data
        info = CameraInfo()
        info.header = msg.header
        info.width, info.height = width, height
        info.distortion_model = "plumb_bob"
        info.d = [0.0] * 5
        info.k = intr.k().reshape(-1).tolist()
        info.r = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
        info.p = [intr.fx, 0.0, intr.cx, 0.0, 0.0, intr.fy, intr.cy, 0.0, 0.0, 0.0, 1.0, 0.0]
        # Sparse depth and CameraInfo first: a depth node can then pair them with the image at once.
        if scene is not None and depth is not None and not args.no_sparse:
            sparse = encode_depth(scene.sparse_depth(depth))
            smsg = Image()
            smsg.header = msg.header
            smsg.height, smsg.width, smsg.step = sparse.height, sparse.width, sparse.step
            smsg.encoding, smsg.is_bigendian, smsg.data = sparse.encoding, sparse.is_bigendian, sparse.data
            pub_sparse.publish(smsg)
        if scene is not None:  # the synthetic camera does not move: its optical frame at odom's origin
            pose = PoseStamped()
            pose.header.stamp, pose.header.frame_id = stamp, "odom"
            pose.pose.orientation.w = 1.0
            pub_pose.publish(pose)
        pub_info.publish(info)
        pub_image.publish(msg)
        state["n"] += 1
        if args.count and state["n"] >= args.count:
            raise _Done

    node.create_timer(1.0 / args.rate, tick)
    try:
        rclpy.spin(node)
    except (_Done, KeyboardInterrupt, ExternalShutdownException):
        pass
    except Exception:
        if context_ok(node):
            raise  # a real error; otherwise Ctrl-C / SIGTERM landed while a frame was being published
    finally:
        if context_ok(node):
            log.info(f"published {state['n']} frames")
        else:  # after Ctrl-C the ROS context is gone and with it /rosout
            print(f"demo_camera: published {state['n']} frames", file=sys.stderr)
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


def context_ok(node: object) -> bool:
    return bool(node.context.ok())  # type: ignore[attr-defined]


class _Done(Exception):  # noqa: N818 - stops rclpy.spin after --count frames
    pass


def _chain(first: np.ndarray, rest: Iterator[np.ndarray]) -> Iterator[np.ndarray]:
    yield first
    yield from rest


if __name__ == "__main__":
    raise SystemExit(main())
