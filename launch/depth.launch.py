"""Start the Iris depth node (and optionally RViz).

    ros2 launch iris_ros depth.launch.py                      # defaults from config/depth.yaml
    ros2 launch iris_ros depth.launch.py rviz:=true image_topic:=/my_cam/image_raw \\
        camera_info_topic:=/my_cam/camera_info model_dir:=/path/to/model num_steps:=2
    ros2 launch iris_ros depth.launch.py namespace:=robot1/iris   # inputs /robot1/camera/..., /robot1/iris/description

``model_dir``, ``backend`` and ``num_steps`` left empty keep the values of ``params_file``; given, they
override it. Topics in the node's namespace (default ``iris``): ``depth``, ``depth/camera_info``,
``depth/colorized``, ``points``. Input topics left empty follow the namespace: the description is
``<namespace>/description``, the camera topics ``camera/image_raw`` and ``camera/camera_info`` next to it
(in the namespace's parent: ``/camera/...`` for ``iris``, ``/robot1/camera/...`` for ``robot1/iris``).

Every argument is checked before anything starts: a bad value (``num_steps:=abc``), ``rviz:=true`` without
rviz2 installed or a missing file ends the launch with a message naming the argument, and no process runs.
The node and RViz get ``FASTDDS_DEFAULT_PROFILES_FILE=<fastdds_profile>`` (camera-sized messages through
shared memory) unless that variable is already set in the environment; ``fastdds_profile:=''`` turns it off.

This file imports only the standard library at module level (``launch``/``launch_ros`` inside the functions
that build actions), so its argument logic is plain functions that can be tested without a ROS 2 install.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Mapping

ECHO_LIMIT = 200  # characters of a user's value repeated in an error message
PROFILE_VARIABLE = "FASTDDS_DEFAULT_PROFILES_FILE"
NUM_STEPS_RANGE = (0, 50)  # as the node parameter: 0 = the model's default

# name -> (default, description). Empty topic defaults follow the namespace (default_topics()).
ARGUMENTS: dict[str, tuple[str | None, str]] = {
    "image_topic": ("", "camera image topic (sensor_msgs/Image); empty = camera/image_raw beside the namespace"),
    "camera_info_topic": (
        "",
        "camera info topic (sensor_msgs/CameraInfo); empty = camera/camera_info beside the namespace",
    ),
    "description_topic": ("", "scene description topic (std_msgs/String, latched); empty = <namespace>/description"),
    "sparse_depth_topic": (
        "",
        "sparse metric depth (32FC1 m / 16UC1 mm) for depth_mode sparse_aligned; empty = camera/sparse_depth "
        "beside the namespace",
    ),
    "camera_pose_topic": (
        "",
        "the camera optical frame's pose (geometry_msgs/PoseStamped) for temporal_mode pose; empty = camera/pose "
        "beside the namespace",
    ),
    "model_dir": ("", "model directory; empty = params_file's value (default: embedded model)"),
    "backend": ("", "runtime backend (torch, onnxruntime, tensorrt); empty = params_file's value"),
    "num_steps": ("", "denoising steps 1..50, 0 = the model's default; empty = params_file's value"),
    "params_file": (None, "YAML file with the node's parameters (default: the installed config/depth.yaml)"),
    "namespace": ("iris", "namespace of the node and of its output topics"),
    "rviz": ("false", "start rviz2 with config/iris.rviz (true/false); rviz2 must be installed"),
    "fastdds_profile": (
        None,
        f"Fast DDS XML profile for the node and RViz, exported as {PROFILE_VARIABLE} unless that variable is "
        "already set; empty = none (default: the installed config/fastdds_large_messages.xml)",
    ),
}


class LaunchArgumentError(ValueError):
    """A launch argument's value is not usable; the message names the argument."""


def _echo(value: str) -> str:
    return repr(value if len(value) <= ECHO_LIMIT else value[:ECHO_LIMIT] + "...")


def parse_bool(name: str, value: str) -> bool:
    """``true``/``false`` (also ``1``/``0``, any case), as launch's IfCondition reads them."""
    lowered = value.strip().lower()
    if lowered in ("true", "1"):
        return True
    if lowered in ("false", "0"):
        return False
    raise LaunchArgumentError(f"launch argument {name}:={_echo(value)} is not true or false")


def parse_int(name: str, value: str, low: int, high: int) -> int:
    try:
        number = int(value.strip())
    except ValueError:
        raise LaunchArgumentError(f"launch argument {name}:={_echo(value)} is not an integer") from None
    if not low <= number <= high:
        raise LaunchArgumentError(f"launch argument {name}:={number} is outside {low}..{high}")
    return number


def _absolute(namespace: str) -> str:
    """``namespace`` as an absolute name without a trailing slash: ``/robot1/iris``; ``""`` for the root."""
    parts = [p for p in namespace.strip("/").split("/") if p]
    return "/" + "/".join(parts) if parts else ""


def default_topics(namespace: str) -> dict[str, str]:
    """Input topics that follow the namespace: the description inside it, the camera's beside it."""
    inside = _absolute(namespace)
    beside = inside.rsplit("/", 1)[0]  # the parent namespace: "" for "/iris", "/robot1" for "/robot1/iris"
    return {
        "image_topic": f"{beside}/camera/image_raw",
        "camera_info_topic": f"{beside}/camera/camera_info",
        "sparse_depth_topic": f"{beside}/camera/sparse_depth",
        "camera_pose_topic": f"{beside}/camera/pose",
        "description_topic": f"{inside}/description",
    }


def node_overrides(args: Mapping[str, str]) -> dict[str, object]:
    """Node parameters given as launch arguments (empty ones keep the params file's values)."""
    overrides: dict[str, object] = {name: args[name] for name in ("model_dir", "backend") if args.get(name)}
    if args.get("num_steps"):
        overrides["num_steps"] = parse_int("num_steps", args["num_steps"], *NUM_STEPS_RANGE)
    return overrides


def remappings(args: Mapping[str, str]) -> list[tuple[str, str]]:
    given = {name: value for name, value in args.items() if name.endswith("_topic") and value}
    topics = {**default_topics(args.get("namespace", "")), **given}
    return [
        ("image", topics["image_topic"]),
        ("image/compressed", topics["image_topic"] + "/compressed"),
        ("camera_info", topics["camera_info_topic"]),
        ("description", topics["description_topic"]),
        ("sparse_depth", topics["sparse_depth_topic"]),
        ("camera_pose", topics["camera_pose_topic"]),
    ]


def rviz_config_text(text: str, namespace: str, image_topic: str) -> str:
    """``config/iris.rviz`` (written for the default namespace ``iris`` and ``/camera/image_raw``) with its
    topics moved to this launch's: the node's outputs in ``namespace``, the camera image it subscribes to.
    RViz has no namespace of its own for display topics, so the file is rewritten (as nav2_bringup does)."""
    text = text.replace("Value: /iris/", f"Value: {_absolute(namespace)}/")
    return text.replace("Value: /camera/image_raw\n", f"Value: {image_topic}\n")


def dds_environment(profile: str, environ: Mapping[str, str]) -> dict[str, str]:
    """The environment the node and RViz get on top of the launch's: the profile, unless the user set one."""
    if environ.get(PROFILE_VARIABLE) or not profile:
        return {}
    if not os.path.isfile(profile):
        raise LaunchArgumentError(f"launch argument fastdds_profile:={_echo(profile)}: no such file")
    return {PROFILE_VARIABLE: profile}


def plan(
    args: Mapping[str, str], environ: Mapping[str, str], has_package: Callable[[str], bool]
) -> dict[str, object]:
    """Check every argument and say what to start; raises LaunchArgumentError before anything starts.

    Returns ``overrides`` (node parameters), ``remappings``, ``env`` (additional environment) and ``rviz``.
    """
    params_file = args.get("params_file", "")
    if not os.path.isfile(params_file):
        raise LaunchArgumentError(f"launch argument params_file:={_echo(params_file)}: no such file")
    rviz = parse_bool("rviz", args.get("rviz", "false"))
    if rviz and not has_package("rviz2"):
        raise LaunchArgumentError(
            "launch argument rviz:=true, but the package rviz2 is not installed (install it, e.g. "
            "apt install ros-$ROS_DISTRO-rviz2, or launch with rviz:=false); nothing was started"
        )
    return {
        "overrides": node_overrides(args),
        "remappings": remappings(args),
        "env": dds_environment(args.get("fastdds_profile", ""), environ),
        "rviz": rviz,
    }


def _has_package(name: str) -> bool:
    """Whether ``ros2 run`` / launch_ros can find the package ``name`` (in the ament index of a sourced prefix)."""
    from ament_index_python.packages import PackageNotFoundError, get_package_prefix

    try:
        get_package_prefix(name)
    except PackageNotFoundError:
        return False
    return True


def _launch_setup(context, *args, **kwargs):
    """The actions, built once every argument has been checked (nothing runs when one is bad)."""
    from launch.actions import LogInfo
    from launch_ros.actions import Node

    config = dict(context.launch_configurations)
    steps = plan(config, os.environ, _has_package)
    env = steps["env"] or None
    profile = env[PROFILE_VARIABLE] if env else os.environ.get(PROFILE_VARIABLE, "none")
    actions = [
        LogInfo(msg=f"Fast DDS profile ({PROFILE_VARIABLE}): {profile}"),
        Node(
            package="iris_ros",
            executable="depth_node",
            name="iris_depth",
            namespace=config.get("namespace", ""),
            output="screen",
            emulate_tty=True,
            parameters=[config["params_file"], steps["overrides"]],
            remappings=steps["remappings"],
            additional_env=env,
        ),
    ]
    if steps["rviz"]:
        from ament_index_python.packages import get_package_share_directory

        template = os.path.join(get_package_share_directory("iris_ros"), "config", "iris.rviz")
        with open(template, encoding="utf-8") as f:
            text = rviz_config_text(f.read(), config.get("namespace", ""), dict(steps["remappings"])["image"])
        with tempfile.NamedTemporaryFile("w", prefix="iris_", suffix=".rviz", delete=False) as f:
            f.write(text)
        rviz_config = f.name
        actions.append(
            Node(
                package="rviz2",
                executable="rviz2",
                name="rviz2",
                arguments=["-d", rviz_config],
                additional_env=env,
            )
        )
    return actions


def generate_launch_description():
    from launch import LaunchDescription
    from launch.actions import DeclareLaunchArgument, OpaqueFunction
    from launch.substitutions import PathJoinSubstitution
    from launch_ros.substitutions import FindPackageShare

    config = PathJoinSubstitution([FindPackageShare("iris_ros"), "config"])
    defaults = {
        "params_file": PathJoinSubstitution([config, "depth.yaml"]),
        "fastdds_profile": PathJoinSubstitution([config, "fastdds_large_messages.xml"]),
    }
    arguments = [
        DeclareLaunchArgument(name, default_value=defaults.get(name, default), description=description)
        for name, (default, description) in ARGUMENTS.items()
    ]
    return LaunchDescription([*arguments, OpaqueFunction(function=_launch_setup)])
