"""Installs as a roboticist makes them: pip with Humble's setuptools (59.6), and a colcon workspace.

The two ``slow`` tests make one throw-away venv with setuptools 59.6.0 and wheel 0.37.1 (Ubuntu 22.04's, what
ROS 2 Humble builds with) and colcon-common-extensions from PyPI (pip's cache makes later runs fast). It sees
this environment's packages (torch, rclpy, ...) after its own, so nothing heavy is installed again. Then:
- ``pip install --no-build-isolation`` of a copy of the source tree into a prefix: every file of the embedded
  model is installed, byte for byte, and the installed model loads and predicts; with its model_index.json
  deleted, the installed copy refuses to start (no random-weight fallback);
- ``colcon build`` of a workspace holding a copy of the repository: launchers, console scripts on PATH after
  ``source install/setup.bash``, share files, the model, no setuptools deprecation warnings; then
  ``colcon test`` runs pytest on real test files, and a failing test makes ``colcon test-result`` fail; then
  ``colcon build --symlink-install``: the launchers link to the sources, the scripts still run.
"""

from __future__ import annotations

import filecmp
import os
import re
import runpy
import subprocess
import textwrap
from pathlib import Path

import pytest
from source_tree import REPO, SETUPTOOLS_NOISE, copy_source, make_venv, share_dependencies, site_packages

from iris_model import default_model
from iris_model.errors import ModelLoadError

MODEL = REPO / "iris_model" / "default_model"
LAUNCHERS = REPO / "scripts" / "ros_executables"
TOOLS = ("setuptools==59.6.0", "wheel==0.37.1", "colcon-common-extensions")
# Fast test files that colcon test runs in the workspace (the pip-install test inside is left to the main run).
COLCON_TESTS = ("tests/test_launch_file.py", "tests/test_geometry.py", "-k", "not pip_install")


def _model_files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def _clean_env(**extra: str) -> dict[str, str]:
    """This environment minus what points into the checkout or a ROS prefix."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "AMENT_PREFIX_PATH", "COLCON_PREFIX_PATH")}
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", OMP_NUM_THREADS="1", **extra)
    return env


def _run(cmd: list[str], timeout: float = 600, **kwargs: object) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kwargs)  # type: ignore[call-overload]


# ---------------------------------------------------------------------------------------------- fast checks


def test_an_install_without_its_model_is_an_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    site = tmp_path / "site-packages" / "iris_model"
    (site / "default_model").mkdir(parents=True)
    monkeypatch.setattr(default_model, "EMBEDDED_DIR", site / "default_model")
    assert not default_model.is_source_checkout()
    with pytest.raises(ModelLoadError, match="missing from this install"):
        default_model.default_model_dir()


def test_a_checkout_without_the_model_gets_a_loud_random_stand_in(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    checkout = tmp_path / "checkout"
    (checkout / "iris_model").mkdir(parents=True)
    (checkout / "setup.py").touch()
    monkeypatch.setattr(default_model, "EMBEDDED_DIR", checkout / "iris_model" / "default_model")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert default_model.is_source_checkout()
    path = default_model.default_model_dir()
    assert (path / "model_index.json").is_file() and path.is_relative_to(tmp_path / "cache")
    assert "RANDOM-WEIGHT" in caplog.text


def test_this_checkout_embeds_the_model() -> None:
    assert default_model.is_embedded_available() and default_model.is_source_checkout()
    assert {"model_index.json", "README.md"} <= set(_model_files(MODEL))


# ---------------------------------------------------------------------------------------------- installs


@pytest.fixture(scope="module")
def tools(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A venv with Humble's setuptools and colcon (from PyPI, through pip's cache), seeing this venv's packages."""
    venv = make_venv(tmp_path_factory.mktemp("tools") / "venv", with_pip=True)
    pip = _run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check", *TOOLS])
    assert pip.returncode == 0, f"installing {TOOLS} from PyPI failed:\n{pip.stdout}{pip.stderr}"
    share_dependencies(venv)
    return venv


@pytest.mark.slow
def test_setuptools_59_installs_every_model_file_and_it_loads(tools: Path, tmp_path: Path) -> None:
    python = str(tools / "bin" / "python")
    version = _run([python, "-c", "import setuptools; print(setuptools.__version__)"], env=_clean_env())
    assert version.stdout.strip() == "59.6.0", version.stdout + version.stderr
    src = copy_source(tmp_path / "src")
    prefix = tmp_path / "prefix"
    pip = _run(
        [python, "-m", "pip", "install", "-v", "--no-deps", "--no-build-isolation", "--prefix", str(prefix), str(src)],
        env=_clean_env(),
    )
    assert pip.returncode == 0, pip.stdout + pip.stderr
    for noise in SETUPTOOLS_NOISE[1:]:  # setuptools 59 + wheel 0.37 warn "setup.py install is deprecated" themselves
        assert noise not in pip.stdout + pip.stderr, noise
    installed = next((prefix / "lib").glob("python3*/site-packages")) / "iris_model" / "default_model"
    assert _model_files(installed) == _model_files(MODEL)
    assert (installed.parent / "demo_data" / "frames.json").is_file()  # what python -m iris_model.demo reads
    mismatch = filecmp.cmpfiles(MODEL, installed, _model_files(MODEL), shallow=False)[1:]
    assert mismatch == ([], []), mismatch
    for exe in ("depth_node", "demo_camera"):
        assert (prefix / "lib" / "iris_ros" / exe).read_bytes() == (LAUNCHERS / exe).read_bytes()
    assert (prefix / "share" / "iris_ros" / "config" / "fastdds_large_messages.xml").is_file()

    check = textwrap.dedent(
        """
        import sys
        import numpy as np
        import torch
        from iris_model import IrisDepthPipeline, default_model
        from iris_model.errors import ModelLoadError

        assert default_model.EMBEDDED_DIR.is_relative_to(sys.argv[1]), default_model.EMBEDDED_DIR
        assert not default_model.is_source_checkout()
        pipe = IrisDepthPipeline.from_pretrained(default_model.default_model_dir())
        rgb = np.random.default_rng(0).integers(0, 256, (48, 64, 3), dtype=np.uint8)
        depth = pipe(rgb, "a room", num_inference_steps=1, generator=torch.Generator().manual_seed(0)).depth[0]
        assert depth.shape == (48, 64) and np.isfinite(depth).all() and depth.std() > 0
        (default_model.EMBEDDED_DIR / "model_index.json").unlink()
        try:
            default_model.default_model_dir()
        except ModelLoadError as exc:
            print("refused:", exc)
        """
    )
    env = _clean_env(PYTHONPATH=str(installed.parents[1]))
    run = _run([python, "-c", check, str(prefix)], env=env, cwd=tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "refused: cannot load model from" in run.stdout and "missing from this install" in run.stdout


@pytest.mark.slow
def test_colcon_build_and_test_in_a_workspace(tools: Path, tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    src = copy_source(ws / "src" / "iris_ros", with_tests=True)
    colcon = str(tools / "bin" / "colcon")
    env = _clean_env(COLCON_HOME=str(tmp_path / "colcon_home"), PATH=f"{tools / 'bin'}{os.pathsep}{os.environ['PATH']}")
    build = _run([colcon, "build", "--packages-select", "iris_ros"], env=env, cwd=ws)
    log = (ws / "log" / "latest_build" / "iris_ros" / "stdout_stderr.log").read_text()
    assert build.returncode == 0, build.stdout + build.stderr + log
    for noise in SETUPTOOLS_NOISE:
        assert noise not in log + build.stderr, noise

    prefix = ws / "install" / "iris_ros"
    assert sorted(p.name for p in (prefix / "lib" / "iris_ros").iterdir()) == ["demo_camera", "depth_node"]
    for exe in ("depth_node", "demo_camera"):  # the launchers, not setuptools' entry scripts
        launcher = prefix / "lib" / "iris_ros" / exe
        assert launcher.read_bytes() == (LAUNCHERS / exe).read_bytes() and os.access(launcher, os.X_OK)
    assert (prefix / "share" / "ament_index" / "resource_index" / "packages" / "iris_ros").is_file()
    for shared in ("package.xml", "launch/depth.launch.py", "config/iris.rviz", "config/fastdds_large_messages.xml"):
        assert (prefix / "share" / "iris_ros" / shared).is_file(), shared
    model = site_packages(prefix) / "iris_model" / "default_model"
    assert _model_files(model) == _model_files(MODEL)

    # The console scripts are on PATH in a sourced workspace.
    script = "source install/setup.bash && command -v iris-depth iris-export && iris-depth --help"
    sourced = _run(["bash", "-c", script], env=env, cwd=ws)
    assert sourced.returncode == 0, sourced.stdout + sourced.stderr
    assert str(prefix / "bin" / "iris-depth") in sourced.stdout and "usage: iris-depth" in sourced.stdout

    # colcon test runs pytest (not unittest), on real test files, and reports what ran.
    test = _run([colcon, "test", "--packages-select", "iris_ros", "--pytest-args", *COLCON_TESTS], env=env, cwd=ws)
    assert test.returncode == 0, test.stdout + test.stderr
    result = _run([colcon, "test-result", "--all"], env=env, cwd=ws)
    assert result.returncode == 0, result.stdout + result.stderr
    summary = result.stdout.strip().splitlines()[-1]  # "Summary: N tests, 0 errors, 0 failures, M skipped"
    ran = int(summary.split("Summary: ")[1].split()[0])
    assert ran >= 20 and " 0 errors, 0 failures" in summary, result.stdout

    # A failing test fails colcon test (with --return-code-on-test-failure) and colcon test-result.
    (src / "tests" / "test_colcon_probe.py").write_text("def test_colcon_sees_this_failure():\n    assert 1 == 2\n")
    probe = ["--return-code-on-test-failure", "--pytest-args", "tests/test_colcon_probe.py"]
    failing = _run([colcon, "test", "--packages-select", "iris_ros", *probe], env=env, cwd=ws)
    assert failing.returncode != 0, failing.stdout + failing.stderr
    result = _run([colcon, "test-result", "--verbose"], env=env, cwd=ws)
    assert result.returncode != 0 and "test_colcon_sees_this_failure" in result.stdout, result.stdout

    # --symlink-install: the same layout, linked to the sources.
    build = _run([colcon, "build", "--symlink-install", "--packages-select", "iris_ros"], env=env, cwd=ws)
    log = (ws / "log" / "latest_build" / "iris_ros" / "stdout_stderr.log").read_text()
    assert build.returncode == 0, build.stdout + build.stderr + log
    for noise in SETUPTOOLS_NOISE:
        assert noise not in log + build.stderr, noise
    for exe in ("depth_node", "demo_camera"):
        assert (prefix / "lib" / "iris_ros" / exe).resolve() == src / "scripts" / "ros_executables" / exe
    where = "python -c 'import iris_model; print(iris_model.__file__)'"
    script = f"source install/setup.bash && iris-depth --help && {where}"
    sourced = _run(["bash", "-c", script], env=env, cwd=ws)
    assert sourced.returncode == 0 and "usage: iris-depth" in sourced.stdout, sourced.stdout + sourced.stderr
    assert Path(sourced.stdout.strip().splitlines()[-1]).resolve() == src / "iris_model" / "__init__.py"


@pytest.fixture
def setup_kwargs(monkeypatch: pytest.MonkeyPatch) -> dict:
    """What setup.py passes to setuptools.setup(), run from the repository root."""
    import setuptools

    captured: dict = {}
    monkeypatch.setattr(setuptools, "setup", lambda **kwargs: captured.update(kwargs))
    monkeypatch.chdir(REPO)
    runpy.run_path("setup.py", run_name="__main__")
    return captured


def test_package_data_lists_every_model_file(setup_kwargs: dict) -> None:
    listed = setup_kwargs["package_data"]["iris_model"]
    demo = REPO / "iris_model" / "demo_data"
    expected = [f"default_model/{name}" for name in _model_files(MODEL)]
    expected += [f"demo_data/{name}" for name in _model_files(demo)]
    assert sorted(listed) == sorted(expected) and "demo_data/frames.json" in listed
    assert not any("*" in entry for entry in listed)  # explicit files: no glob that old setuptools reads otherwise
    assert not setup_kwargs.get("include_package_data")


def test_colcon_finds_pytest_in_the_test_extra(setup_kwargs: dict) -> None:
    """colcon-core runs pytest when pytest is named in extras_require['test'] (has_test_dependency), else unittest."""
    names = [re.split(r"[ <>=!\[]", requirement)[0] for requirement in setup_kwargs["extras_require"]["test"]]
    assert "pytest" in names and "hypothesis" in names
