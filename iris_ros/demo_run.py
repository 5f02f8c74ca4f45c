"""The README's main job: the demo camera through the depth node, outputs written to disk.

Starts ``demo_camera`` and ``depth_node`` as separate processes (real DDS on this machine), listens to the
node's outputs like any other subscriber, and after ``--frames`` depth images writes to ``--out``:
``colorized_NNN.png`` (what RViz would show), ``depth_NNN.npy`` (the 32FC1 image), ``points.ply`` (the last
point cloud, camera optical frame) and ``summary.json`` (stamps, units, the node's diagnostics). Then it stops
both processes with SIGINT, as Ctrl-C would.

Works with the PyPI ROS 2 wheels alone (no ``ros2 launch``): ``python -m iris_ros.demo_run``.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

NAMESPACE = "/iris"


def _spawn(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", *args], env=env, stdout=log.open("w"), stderr=subprocess.STDOUT)


def _stop(proc: subprocess.Popen, timeout: float = 10.0) -> int | None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode


def node_arguments(args: argparse.Namespace, params: Path) -> list[str]:
    """``python -m`` arguments of the depth node for this demo: its remappings and parameters.

    ``-p`` values are read as YAML, where ``off``, ``on``, ``yes`` and ``no`` are booleans: string values are
    quoted so that ``temporal_mode:=off`` stays the string the parameter is.
    """
    node_args = ["iris_ros.depth_node", "--ros-args", "-r", f"__ns:={NAMESPACE}",
                 "-r", "image:=/camera/image_raw", "-r", "camera_info:=/camera/camera_info",
                 "-r", f"description:={NAMESPACE}/description", "-r", "sparse_depth:=/camera/sparse_depth",
                 "-r", "camera_pose:=/camera/pose",
                 "-p", f"depth_mode:='{args.depth_mode}'", "-p", f"temporal_mode:='{args.temporal_mode}'"]
    if args.model_dir:
        node_args += ["-p", f"model_dir:='{args.model_dir}'"]
    if params.is_file():
        node_args[2:2] = ["--params-file", str(params)]
    return node_args


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("out/demo_ros"))
    parser.add_argument("--frames", type=int, default=5, help="depth images to collect")
    parser.add_argument("--rate", type=float, default=2.0, help="demo camera frames per second")
    parser.add_argument("--source", default="", help="demo_camera --source (default: its synthetic room)")
    parser.add_argument("--description", default="", help="demo_camera --description (default: its own)")
    parser.add_argument("--model-dir", default="", help="depth_node model_dir (default: the embedded model)")
    parser.add_argument("--depth-mode", default="sparse_aligned", choices=("relative", "fixed_scale", "sparse_aligned"))
    parser.add_argument("--temporal-mode", default="off", choices=("off", "stream", "pose"),
                        help="depth_node temporal_mode (pose: fused with demo_camera's camera pose; metric modes only)")
    parser.add_argument("--timeout", type=float, default=300.0, help="give up after this many seconds")
    args = parser.parse_args(argv)

    import rclpy
    from diagnostic_msgs.msg import DiagnosticArray
    from PIL import Image as PILImage
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import Image, PointCloud2

    from iris_model.outputs import save_ply

    from .cloud_packing import unpack_cloud
    from .image_codec import decode_depth, decode_image

    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env.setdefault("ROS_DOMAIN_ID", str(50 + os.getpid() % 50))
    env.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    env.setdefault("OMP_NUM_THREADS", "1")
    config = Path(__file__).resolve().parent.parent / "config"
    # 640x480 images and depth exceed Fast DDS's default 512 KB shared-memory segment; without this profile
    # most best-effort frames are lost in fragmented UDP (see the XML file's comment).
    profile = config / "fastdds_large_messages.xml"
    if profile.is_file():
        env.setdefault("FASTDDS_DEFAULT_PROFILES_FILE", str(profile))
    os.environ.update({k: env[k] for k in ("ROS_DOMAIN_ID", "ROS_AUTOMATIC_DISCOVERY_RANGE",
                                            "FASTDDS_DEFAULT_PROFILES_FILE") if k in env})

    node_args = node_arguments(args, config / "depth.yaml")
    camera_args = ["iris_ros.demo_camera", "--rate", str(args.rate)]
    if args.source:
        camera_args += ["--source", args.source]
    if args.description:
        camera_args += ["--description", args.description]

    print(f"starting depth_node and demo_camera (ROS_DOMAIN_ID={env['ROS_DOMAIN_ID']}); logs in {out}/")
    node = _spawn(node_args, env, out / "depth_node.log")
    camera = _spawn(camera_args, env, out / "demo_camera.log")

    rclpy.init()
    listener = rclpy.create_node("iris_demo_listener")
    got: dict[str, Any] = {"depth": [], "color": [], "cloud": None, "diag": None}
    qos = QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE)
    listener.create_subscription(Image, f"{NAMESPACE}/depth", lambda m: got["depth"].append(m), qos)
    listener.create_subscription(Image, f"{NAMESPACE}/depth/colorized", lambda m: got["color"].append(m), qos)
    listener.create_subscription(PointCloud2, f"{NAMESPACE}/points", lambda m: got.__setitem__("cloud", m), qos)

    def on_diag(msg: DiagnosticArray) -> None:
        for status in msg.status:
            if "iris" in status.name.lower():
                got["diag"] = {kv.key: kv.value for kv in status.values} | {"message": status.message}

    listener.create_subscription(DiagnosticArray, "/diagnostics", on_diag, 10)
    start = time.monotonic()
    rc = 0
    try:
        while len(got["depth"]) < args.frames:
            rclpy.spin_once(listener, timeout_sec=0.2)
            if node.poll() is not None:
                print(f"depth_node exited with code {node.returncode}; see {out}/depth_node.log", file=sys.stderr)
                return 1
            if time.monotonic() - start > args.timeout:
                print(f"timed out after {args.timeout:.0f} s with {len(got['depth'])} depth images", file=sys.stderr)
                rc = 1
                break
        deadline = time.monotonic() + 3.0
        while time.monotonic() < deadline and (got["cloud"] is None or got["diag"] is None):
            rclpy.spin_once(listener, timeout_sec=0.2)
    finally:
        listener.destroy_node()
        rclpy.shutdown()
        _stop(camera)
        node_rc = _stop(node)

    stamps = []
    for i, msg in enumerate(got["depth"]):
        depth = decode_depth(msg.encoding, msg.height, msg.width, msg.step, msg.is_bigendian, msg.data)
        np.save(out / f"depth_{i:03d}.npy", depth)
        stamps.append(msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9)
    for i, msg in enumerate(got["color"]):
        rgb = decode_image(msg.encoding, msg.height, msg.width, msg.step, msg.is_bigendian, msg.data)
        PILImage.fromarray(rgb).save(out / f"colorized_{i:03d}.png")
    n_points = 0
    if got["cloud"] is not None:
        c = got["cloud"]
        cloud = unpack_cloud(c.fields, c.point_step, c.height, c.width, c.data, c.is_bigendian)
        n_points = save_ply(out / "points.ply", cloud["xyz"], cloud.get("rgb"))
    last = decode_depth(got["depth"][-1].encoding, got["depth"][-1].height, got["depth"][-1].width,
                        got["depth"][-1].step, got["depth"][-1].is_bigendian, got["depth"][-1].data) \
        if got["depth"] else np.empty((0, 0), np.float32)
    finite = last[np.isfinite(last)]
    summary = {
        "depth_images": len(got["depth"]),
        "colorized_images": len(got["color"]),
        "size": list(last.shape),
        "frame_id": got["depth"][-1].header.frame_id if got["depth"] else None,
        "depth_mode": args.depth_mode,
        "last_depth_range": [float(finite.min()), float(finite.max())] if finite.size else None,
        "points_in_last_cloud": n_points,
        "stamps": stamps,
        "diagnostics": got["diag"],
        "depth_node_exit_code": node_rc,
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    units = "m" if args.depth_mode != "relative" else "(relative, not meters)"
    print(f"received {len(got['depth'])} depth images {summary['size']} in frame {summary['frame_id']}; "
          f"last depth range {summary['last_depth_range']} {units}; {n_points} points in the last cloud")
    if got["diag"]:
        d = got["diag"]
        print("node diagnostics: " + ", ".join(f"{k}={d[k]}" for k in sorted(d) if k in (
            "frames_received", "frames_processed", "frames_dropped", "latency_p50_ms", "latency_p95_ms",
            "backend", "num_steps", "description", "model_dir")))
    print(f"wrote {out}/colorized_*.png (look at these), depth_*.npy, points.ply, summary.json")
    return rc if node_rc in (0, None) else 1


if __name__ == "__main__":
    raise SystemExit(main())
