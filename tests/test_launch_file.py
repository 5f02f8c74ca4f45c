"""launch/depth.launch.py, config/depth.yaml, config/iris.rviz and the ROS executables' install layout.

``launch`` and ``launch_ros`` are not on PyPI (they come with a ROS 2 install), so the test that loads the
launch description through them skips here. The launch file imports them only inside the functions that build
actions, so everything else imports it as a plain module and calls its argument logic (``plan`` and the
functions under it), or runs ``_launch_setup`` with recording stand-ins for the two action classes to see
that nothing is created when an argument is bad. The rest reads the files (``ast``, YAML), checks them
against setup.py, the node's parameter table and topic names, and installs the package into a throw-away
venv to see that the launchers and config land where launch_ros looks for them.
"""

from __future__ import annotations

import ast
import functools
import importlib.util
import os
import shutil
import subprocess
import sys
import types
from pathlib import Path
from typing import ClassVar

import pytest
import yaml
from source_tree import SETUPTOOLS_NOISE, base_python, copy_source, make_venv, share_dependencies

from iris_ros.config import PARAMETER_NAMES, NodeConfig
from iris_ros.demo_camera import parse_args as demo_args

REPO = Path(__file__).resolve().parents[1]
LAUNCH = REPO / "launch" / "depth.launch.py"
PARAMS = REPO / "config" / "depth.yaml"
RVIZ = REPO / "config" / "iris.rviz"
PROFILE = REPO / "config" / "fastdds_large_messages.xml"
LAUNCHERS = REPO / "scripts" / "ros_executables"
REQUIRED_ARGUMENTS = {
    "image_topic",
    "camera_info_topic",
    "description_topic",
    "sparse_depth_topic",
    "camera_pose_topic",
    "model_dir",
    "backend",
    "num_steps",
    "params_file",
    "namespace",
    "rviz",
    "fastdds_profile",
}
SHARED_FILES = (
    "launch/depth.launch.py",
    "config/depth.yaml",
    "config/iris.rviz",
    "config/fastdds_large_messages.xml",
    "package.xml",
)


def _calls(tree: ast.AST, name: str) -> list[ast.Call]:
    return [n for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id == name]


def _kw(call: ast.Call, key: str) -> ast.expr | None:
    return next((k.value for k in call.keywords if k.arg == key), None)


def _const(node: ast.expr | None) -> object:
    return node.value if isinstance(node, ast.Constant) else None


@pytest.fixture(scope="module")
def launch_tree() -> ast.Module:
    return ast.parse(LAUNCH.read_text(), filename=str(LAUNCH))


@functools.cache
def _launch_module() -> types.ModuleType:
    """The launch file imported as a plain module (it needs launch/launch_ros only inside its functions)."""
    spec = importlib.util.spec_from_file_location("iris_depth_launch", LAUNCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def lf() -> types.ModuleType:
    return _launch_module()


def _args(**given: str) -> dict[str, str]:
    """Launch configurations as launch hands them to the OpaqueFunction: every argument, as strings."""
    args = {name: default or "" for name, (default, _) in _launch_module().ARGUMENTS.items()}
    args.update(params_file=str(PARAMS), fastdds_profile=str(PROFILE))
    args.update(given)
    return args


def _setup_py() -> tuple[dict[str, str], list[tuple[str, str]]]:
    """(console scripts name -> target, data_files (destination, source expression as text)) from setup.py."""
    tree = ast.parse((REPO / "setup.py").read_text())
    setup = next(c for c in _calls(tree, "setup"))
    entry = ast.literal_eval(_kw(setup, "entry_points"))  # type: ignore[arg-type]
    scripts = dict(s.replace(" ", "").split("=", 1) for s in entry["console_scripts"])
    data = []
    for item in _kw(setup, "data_files").elts:  # type: ignore[union-attr]
        dest, src = item.elts
        data.append((ast.unparse(dest), ast.unparse(src)))
    return scripts, data


LAUNCH_SKIP = (
    "launch and launch_ros come with a ROS 2 install and are not on PyPI (not installed here): with ROS 2 "
    "sourced, this test loads depth.launch.py through launch.launch_description_sources and checks its arguments"
)


def test_launch_description_loads_with_launch_ros() -> None:
    try:
        import launch_ros  # noqa: F401
        from launch.launch_description_sources import get_launch_description_from_python_launch_file
    except ImportError:  # also when `launch` resolves to this repo's launch/ folder (a namespace package)
        pytest.skip(LAUNCH_SKIP)
    description = get_launch_description_from_python_launch_file(str(LAUNCH))
    names = {a.name for a in description.get_launch_arguments()}
    assert names >= REQUIRED_ARGUMENTS


def test_launch_file_imports_launch_only_inside_functions(launch_tree: ast.Module) -> None:
    top, inner = set(), set()
    for statement in launch_tree.body:
        for node in ast.walk(statement):
            names = set()
            if isinstance(node, ast.ImportFrom):
                names = {node.module.split(".")[0]}  # type: ignore[union-attr]
            elif isinstance(node, ast.Import):
                names = {a.name.split(".")[0] for a in node.names}
            (inner if isinstance(statement, ast.FunctionDef) else top).update(names)
    # Module level: the standard library only, so that the file imports without a ROS 2 install.
    assert top <= set(sys.stdlib_module_names) | {"__future__"}, top
    # A venv install is started by a system `ros2 launch`: the file must not import iris_ros or other venv packages.
    assert inner <= {"launch", "launch_ros", "ament_index_python"}, inner
    assert any(isinstance(n, ast.FunctionDef) and n.name == "generate_launch_description" for n in launch_tree.body)


def test_launch_arguments_are_the_issue_s_with_sensible_defaults(lf: types.ModuleType) -> None:
    assert set(lf.ARGUMENTS) >= REQUIRED_ARGUMENTS, REQUIRED_ARGUMENTS - set(lf.ARGUMENTS)
    assert all(description for _, description in lf.ARGUMENTS.values())
    assert lf.ARGUMENTS["rviz"][0] == "false" and lf.ARGUMENTS["namespace"][0] == "iris"
    # Empty model_dir/backend/num_steps mean "keep the params file's value".
    assert lf.ARGUMENTS["model_dir"][0] == lf.ARGUMENTS["backend"][0] == lf.ARGUMENTS["num_steps"][0] == ""
    assert lf.node_overrides(_args()) == {}
    # Under the default namespace, the default inputs are demo_camera's, so the two work together untouched.
    demo = demo_args([])
    remapped = dict(lf.plan(_args(), {}, lambda name: False)["remappings"])
    assert remapped["image"] == demo.image_topic
    assert remapped["image/compressed"] == demo.image_topic + "/compressed"
    assert remapped["camera_info"] == demo.camera_info_topic
    assert remapped["description"] == demo.description_topic
    assert remapped["sparse_depth"] == demo.sparse_depth_topic
    assert remapped["camera_pose"] == demo.pose_topic


def test_every_launch_configuration_used_is_declared(launch_tree: ast.Module, lf: types.ModuleType) -> None:
    used = set()
    for node in ast.walk(launch_tree):  # config["name"], config.get("name"), args.get("name")
        if (
            isinstance(node, ast.Subscript)
            and isinstance(node.value, ast.Name)
            and node.value.id in ("config", "args")
            and isinstance(node.slice, ast.Constant)
        ):
            used.add(node.slice.value)
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "get"
            and isinstance(node.func.value, ast.Name)
            and node.func.value.id in ("config", "args")
            and node.args
            and isinstance(node.args[0], ast.Constant)
        ):
            used.add(node.args[0].value)
    assert used and used <= set(lf.ARGUMENTS), used - set(lf.ARGUMENTS)


def test_default_inputs_follow_the_namespace(lf: types.ModuleType) -> None:
    one = dict(lf.plan(_args(namespace="robot1/iris"), {}, lambda name: False)["remappings"])
    two = dict(lf.plan(_args(namespace="/robot2/iris/"), {}, lambda name: False)["remappings"])
    assert one["description"] == "/robot1/iris/description"
    assert one["image"] == "/robot1/camera/image_raw" and one["camera_info"] == "/robot1/camera/camera_info"
    assert one["sparse_depth"] == "/robot1/camera/sparse_depth" and one["camera_pose"] == "/robot1/camera/pose"
    assert two["description"] == "/robot2/iris/description" and two["image"] == "/robot2/camera/image_raw"
    assert not set(one.values()) & set(two.values())  # two robots share no input
    flat = dict(lf.plan(_args(namespace=""), {}, lambda name: False)["remappings"])
    assert flat["description"] == "/description" and flat["image"] == "/camera/image_raw"
    # A topic given explicitly wins over the namespace's default.
    given = dict(lf.plan(_args(namespace="robot1/iris", image_topic="/cam/rgb"), {}, lambda name: False)["remappings"])
    assert given["image"] == "/cam/rgb" and given["image/compressed"] == "/cam/rgb/compressed"
    assert given["description"] == "/robot1/iris/description"


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({"num_steps": "abc"}, "num_steps:='abc' is not an integer"),
        ({"num_steps": "-1"}, "num_steps:=-1 is outside 0..50"),
        ({"num_steps": "51"}, "num_steps:=51 is outside 0..50"),
        ({"num_steps": "2.5"}, "num_steps:='2.5' is not an integer"),
        ({"rviz": "maybe"}, "rviz:='maybe' is not true or false"),
        ({"params_file": "/nonexistent/depth.yaml"}, "params_file:='/nonexistent/depth.yaml': no such file"),
        ({"fastdds_profile": "/nonexistent/p.xml"}, "fastdds_profile:='/nonexistent/p.xml': no such file"),
    ],
)
def test_a_bad_argument_is_named(lf: types.ModuleType, given: dict[str, str], message: str) -> None:
    with pytest.raises(lf.LaunchArgumentError) as info:
        lf.plan(_args(**given), {}, lambda name: True)
    assert message in str(info.value)


def test_echoed_values_are_cut_short(lf: types.ModuleType) -> None:
    with pytest.raises(lf.LaunchArgumentError) as info:
        lf.plan(_args(num_steps="x" * 100_000), {}, lambda name: True)
    assert "num_steps:=" in str(info.value) and len(str(info.value)) < 300


def test_num_steps_range_is_the_node_parameter_range(lf: types.ModuleType) -> None:
    from iris_ros.config import PARAMETERS

    (spec,) = [p for p in PARAMETERS if p.name == "num_steps"]
    assert tuple(lf.NUM_STEPS_RANGE) == tuple(spec.range)


def test_valid_overrides_are_typed(lf: types.ModuleType) -> None:
    assert lf.node_overrides(_args(num_steps="0")) == {"num_steps": 0}  # the model's default, as the parameter
    assert lf.node_overrides(_args(num_steps=" 4 ", backend="onnxruntime", model_dir="/m")) == {
        "num_steps": 4,
        "backend": "onnxruntime",
        "model_dir": "/m",
    }
    assert lf.parse_bool("rviz", "True") is True and lf.parse_bool("rviz", "0") is False


def test_rviz_needs_rviz2_and_is_checked_only_when_asked_for(lf: types.ModuleType) -> None:
    asked: list[str] = []

    def has_package(name: str) -> bool:
        asked.append(name)
        return False

    assert lf.plan(_args(rviz="false"), {}, has_package)["rviz"] is False
    assert asked == []
    with pytest.raises(lf.LaunchArgumentError, match="rviz2 is not installed"):
        lf.plan(_args(rviz="true"), {}, has_package)
    assert asked == ["rviz2"]
    assert lf.plan(_args(rviz="true"), {}, lambda name: name == "rviz2")["rviz"] is True


def test_fastdds_profile_is_set_unless_the_user_set_one(lf: types.ModuleType) -> None:
    assert lf.plan(_args(), {}, lambda name: False)["env"] == {"FASTDDS_DEFAULT_PROFILES_FILE": str(PROFILE)}
    mine = {"FASTDDS_DEFAULT_PROFILES_FILE": "/etc/my_profile.xml"}
    assert lf.plan(_args(), mine, lambda name: False)["env"] == {}
    assert lf.plan(_args(fastdds_profile=""), {}, lambda name: False)["env"] == {}


class _Recorder:
    """Stand-in for a launch action class: records what would be created, in order."""

    made: ClassVar[list[tuple[str, dict]]] = []

    def __init__(self, **kwargs: object) -> None:
        self.made.append((type(self).__name__, kwargs))


@pytest.fixture
def recording_actions(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, dict]]:
    """``launch.actions.LogInfo`` and ``launch_ros.actions.Node`` as recorders (launch is not installable here)."""
    made: list[tuple[str, dict]] = []
    classes = {name: type(name, (_Recorder,), {"made": made}) for name in ("LogInfo", "Node")}
    for module, attribute in (("launch.actions", "LogInfo"), ("launch_ros.actions", "Node")):
        package = types.ModuleType(module.split(".")[0])
        sub = types.ModuleType(module)
        setattr(sub, attribute, classes[attribute])
        package.actions = sub  # type: ignore[attr-defined]
        monkeypatch.setitem(sys.modules, module.split(".")[0], package)
        monkeypatch.setitem(sys.modules, module, sub)
    return made


def test_launch_setup_starts_nothing_when_rviz2_is_missing(
    lf: types.ModuleType, recording_actions: list, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The real ament index lookup (ament_index_python from the ROS 2 wheels), on a prefix without rviz2."""
    pytest.importorskip("ament_index_python", reason="ament_index_python comes with the ROS 2 wheels")
    monkeypatch.setenv("AMENT_PREFIX_PATH", str(tmp_path))
    monkeypatch.delenv("FASTDDS_DEFAULT_PROFILES_FILE", raising=False)
    context = types.SimpleNamespace(launch_configurations=_args(rviz="true", num_steps="3"))
    with pytest.raises(lf.LaunchArgumentError, match="rviz2"):
        lf._launch_setup(context)
    assert recording_actions == []

    context.launch_configurations["rviz"] = "false"
    actions = lf._launch_setup(context)
    assert [kind for kind, _ in recording_actions] == ["LogInfo", "Node"] and len(actions) == 2
    node = recording_actions[1][1]
    assert (node["package"], node["executable"], node["namespace"]) == ("iris_ros", "depth_node", "iris")
    assert node["parameters"] == [str(PARAMS), {"num_steps": 3}]
    assert node["additional_env"] == {"FASTDDS_DEFAULT_PROFILES_FILE": str(PROFILE)}


def test_launch_setup_starts_rviz_with_the_installed_config(
    lf: types.ModuleType, recording_actions: list, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    pytest.importorskip("ament_index_python", reason="ament_index_python comes with the ROS 2 wheels")
    index = tmp_path / "share" / "ament_index" / "resource_index" / "packages"
    index.mkdir(parents=True)
    (index / "rviz2").touch()
    (index / "iris_ros").touch()
    (tmp_path / "share" / "iris_ros" / "config").mkdir(parents=True)
    shutil.copyfile(RVIZ, tmp_path / "share" / "iris_ros" / "config" / "iris.rviz")
    monkeypatch.setenv("AMENT_PREFIX_PATH", str(tmp_path))
    monkeypatch.setenv("FASTDDS_DEFAULT_PROFILES_FILE", "/etc/my_profile.xml")
    lf._launch_setup(types.SimpleNamespace(launch_configurations=_args(rviz="true", namespace="robot1/iris")))
    kinds = [(kind, kwargs.get("package")) for kind, kwargs in recording_actions]
    assert kinds == [("LogInfo", None), ("Node", "iris_ros"), ("Node", "rviz2")]
    rviz = recording_actions[2][1]
    # The installed config, its topics moved to the launch's namespace (a file of its own).
    assert rviz["arguments"][0] == "-d"
    shown = Path(rviz["arguments"][1])
    assert shown.read_text() == lf.rviz_config_text(RVIZ.read_text(), "robot1/iris", "/robot1/camera/image_raw")
    assert _rviz_topics(shown.read_text())["Points"] == "/robot1/iris/points"
    shown.unlink()
    assert rviz["additional_env"] is None and recording_actions[1][1]["additional_env"] is None  # the user's wins
    assert "/etc/my_profile.xml" in recording_actions[0][1]["msg"]


def test_node_package_and_executable_exist_in_setup_py(launch_tree: ast.Module) -> None:
    nodes = {(_const(_kw(c, "package")), _const(_kw(c, "executable"))) for c in _calls(launch_tree, "Node")}
    assert nodes == {("iris_ros", "depth_node"), ("rviz2", "rviz2")}
    scripts, data_files = _setup_py()
    assert scripts["depth_node"] == "iris_ros.entry:depth_node"
    assert scripts["demo_camera"] == "iris_ros.entry:demo_camera"
    assert ("'lib/' + package_name", "glob('scripts/ros_executables/*')") in data_files
    # One way into lib/iris_ros (the launchers as data files): no setup.cfg sending entry scripts there too.
    setup_cfg = REPO / "setup.cfg"
    assert not setup_cfg.exists() or "lib/" not in setup_cfg.read_text()
    for exe in ("depth_node", "demo_camera"):
        launcher = LAUNCHERS / exe
        assert launcher.is_file() and os.access(launcher, os.X_OK), f"{launcher} missing or not executable"
        text = launcher.read_text()
        assert text.startswith("#!/usr/bin/env python3\n")
        assert f"from iris_ros.entry import {exe}" in text and f"sys.exit({exe}())" in text


def test_launch_remappings_name_the_node_s_topics(lf: types.ModuleType) -> None:
    remapped = {source for source, _ in lf.remappings(_args())}
    assert {"image", "image/compressed", "camera_info", "description", "sparse_depth", "camera_pose"} == remapped
    node_src = (REPO / "iris_ros" / "depth_node.py").read_text()
    for topic in remapped:
        assert f'"{topic}"' in node_src, f"the node subscribes to no topic named {topic!r}"


def test_data_files_ship_launch_and_config(launch_tree: ast.Module) -> None:
    _, data_files = _setup_py()
    sources = " ".join(src for _, src in data_files)
    for pattern in ("launch/*.launch.py", "config/*.yaml", "config/*.rviz", "config/*.xml"):
        assert pattern in sources, pattern
    text = ast.unparse(launch_tree)
    assert "depth.yaml" in text and "fastdds_large_messages.xml" in text and "iris.rviz" in text
    for shared in SHARED_FILES:
        assert (REPO / shared).is_file(), shared


def test_params_file_holds_exactly_the_node_s_parameters_with_its_defaults() -> None:
    doc = yaml.safe_load(PARAMS.read_text())
    assert list(doc) == ["/**"]
    params = doc["/**"]["ros__parameters"]
    assert list(params) == list(PARAMETER_NAMES)
    cfg = NodeConfig.from_mapping(params)  # validates every value
    assert cfg == NodeConfig()


def test_rviz_config_shows_camera_depth_and_points_best_effort() -> None:
    doc = yaml.safe_load(RVIZ.read_text())
    manager = doc["Visualization Manager"]
    displays = {d["Name"]: d for d in manager["Displays"]}
    demo = demo_args([])
    assert manager["Global Options"]["Fixed Frame"] == demo.frame_id
    expected = {
        "Camera": ("rviz_default_plugins/Image", demo.image_topic),
        "Depth (colorized)": ("rviz_default_plugins/Image", "/iris/depth/colorized"),
        "Points": ("rviz_default_plugins/PointCloud2", "/iris/points"),
    }
    for name, (cls, topic) in expected.items():
        assert displays[name]["Class"] == cls
        assert displays[name]["Topic"]["Value"] == topic
        assert displays[name]["Topic"]["Reliability Policy"] == "Best Effort"
        assert displays[name]["Enabled"] is True
    assert displays["Points"]["Color Transformer"] == "RGB8"


def _rviz_topics(text: str) -> dict[str, str]:
    displays = yaml.safe_load(text)["Visualization Manager"]["Displays"]
    return {d["Name"]: d["Topic"]["Value"] for d in displays if "Topic" in d}


def test_rviz_topics_follow_the_launch_namespace_and_camera(lf: types.ModuleType) -> None:
    namespace = lf.ARGUMENTS["namespace"][0]
    text = RVIZ.read_text()
    assert f"/{namespace}/points" in text and f"/{namespace}/depth/colorized" in text
    # The default launch shows the file as it is.
    image = dict(lf.remappings({"namespace": namespace}))["image"]
    assert lf.rviz_config_text(text, namespace, image) == text
    # Another namespace and the camera topics that follow it: every display moves.
    image = dict(lf.remappings({"namespace": "robot1/iris"}))["image"]
    assert _rviz_topics(lf.rviz_config_text(text, "robot1/iris", image)) == {
        "Camera": "/robot1/camera/image_raw",
        "Depth (colorized)": "/robot1/iris/depth/colorized",
        "Points": "/robot1/iris/points",
    }
    moved = _rviz_topics(lf.rviz_config_text(text, "", "/my_cam/image_raw"))
    assert moved == {"Camera": "/my_cam/image_raw", "Depth (colorized)": "/depth/colorized", "Points": "/points"}


def test_launcher_re_executes_with_the_python_of_its_venv(tmp_path: Path) -> None:
    """In <venv>/lib/iris_ros/ and started by another interpreter, the launcher execs <venv>/bin/python."""
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "lib" / "iris_ros").mkdir(parents=True)
    (venv / "pyvenv.cfg").write_text("home = /usr/bin\n")
    marker = tmp_path / "argv.txt"
    fake_python = venv / "bin" / "python"
    fake_python.write_text(f'#!/bin/sh\nprintf "%s\\n" "$0" "$@" > {marker}\n')
    fake_python.chmod(0o755)
    launcher = venv / "lib" / "iris_ros" / "depth_node"
    shutil.copy2(LAUNCHERS / "depth_node", launcher)
    env = {k: v for k, v in os.environ.items() if k != "IRIS_ROS_LAUNCHER_REEXEC"}
    proc = subprocess.run([sys.executable, str(launcher), "--ros-args", "-p", "num_steps:=2"], env=env, timeout=60)
    assert proc.returncode == 0
    assert marker.read_text().split("\n")[:5] == [str(fake_python), str(launcher), "--ros-args", "-p", "num_steps:=2"]


def test_pip_install_puts_launchers_where_launch_ros_finds_them(tmp_path: Path) -> None:
    """pip-install into a fresh venv; with AMENT_PREFIX_PATH=<venv>, <prefix>/lib/iris_ros/<exe> runs from a
    shell whose python3 is not the venv's (the launcher re-executes into the venv)."""
    ament = pytest.importorskip("ament_index_python", reason="ament_index_python comes with the ROS 2 wheels")
    src = copy_source(tmp_path / "src", with_model=False)
    venv = make_venv(tmp_path / "venv", with_pip=False)
    share_dependencies(venv)
    pip = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-v",  # setuptools' own output, to check that it warns about nothing
            "--no-deps",
            "--no-build-isolation",
            "--ignore-installed",  # else pip first uninstalls the running environment's own iris_ros
            "--prefix",
            str(venv),
            str(src),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert pip.returncode == 0, pip.stdout + pip.stderr
    for noise in SETUPTOOLS_NOISE:
        assert noise not in pip.stdout + pip.stderr, noise
    for exe in ("depth_node", "demo_camera"):
        path = venv / "lib" / "iris_ros" / exe
        assert path.is_file() and os.access(path, os.X_OK), f"{path} missing or not executable"
    for shared in SHARED_FILES:
        assert (venv / "share" / "iris_ros" / shared).is_file(), shared

    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "IRIS_ROS_LAUNCHER_REEXEC")}
    env["AMENT_PREFIX_PATH"] = str(venv)
    found = subprocess.run(
        [sys.executable, "-c", "from ament_index_python.packages import get_package_prefix as g; print(g('iris_ros'))"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert found.stdout.strip() == str(venv), found.stderr
    assert ament is not None
    # The way launch_ros runs it: <prefix>/lib/<package>/<executable>, here from a python without numpy.
    run = subprocess.run(
        [base_python(), str(venv / "lib" / "iris_ros" / "demo_camera"), "--help"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "usage: demo_camera" in run.stdout and "--source" in run.stdout


def test_ament_install_registers_an_editable_checkout(tmp_path: Path) -> None:
    """After `pip install -e` (no data files), `python -m iris_ros.ament_install` makes the package findable."""
    pytest.importorskip("ament_index_python", reason="ament_index_python comes with the ROS 2 wheels")
    from iris_ros.ament_install import checkout_root, install

    assert checkout_root() == REPO
    prefix = tmp_path / "venv"
    install(prefix, REPO)
    install(prefix, REPO)  # idempotent
    assert os.access(prefix / "lib" / "iris_ros" / "depth_node", os.X_OK)
    assert (prefix / "share" / "iris_ros" / "launch" / "depth.launch.py").resolve() == LAUNCH
    assert (prefix / "share" / "iris_ros" / "config" / "depth.yaml").read_text() == PARAMS.read_text()
    for shared in SHARED_FILES:
        assert (prefix / "share" / "iris_ros" / shared).resolve() == REPO / shared, shared
    env = {**os.environ, "AMENT_PREFIX_PATH": str(prefix)}
    code = "from ament_index_python.packages import get_package_share_directory as g; print(g('iris_ros'))"
    found = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert found.stdout.strip() == str(prefix / "share" / "iris_ros"), found.stderr
