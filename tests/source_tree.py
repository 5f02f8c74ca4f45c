"""Helpers for the install tests: a copy of what setup.py builds from, and a venv that sees this one's packages."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# What setup.py, MANIFEST.in and package.xml read; the tests, pytest.ini and ruff.toml for colcon test.
PACKAGE_FILES = ("setup.py", "MANIFEST.in", "package.xml", "resource", "launch", "config", "scripts")
PACKAGES = ("iris_ros", "iris_model")
# What setuptools printed about this package before it declared its data properly.
SETUPTOOLS_NOISE = (
    "SetuptoolsDeprecationWarning",
    "is absent from the packages configuration",
    "as data is deprecated",
)


def copy_source(dest: Path, *, with_model: bool = True, with_tests: bool = False) -> Path:
    """Copy the package's source tree (optionally without the embedded model, or with the tests) to ``dest``."""
    dest.mkdir(parents=True, exist_ok=True)
    skip = ["__pycache__", "*.egg-info"] + ([] if with_model else ["default_model"])
    names = PACKAGE_FILES + PACKAGES + (("tests", "pytest.ini") if with_tests else ())
    for name in names:
        path = REPO / name
        if path.is_dir():
            shutil.copytree(path, dest / name, ignore=shutil.ignore_patterns(*skip))
        else:
            shutil.copy2(path, dest / name)
    return dest


def base_python() -> str:
    """The interpreter this venv was made from (a new venv made with it does not inherit this one's packages)."""
    return getattr(sys, "_base_executable", sys.executable)


def site_packages(venv: Path) -> Path:
    return next((venv / "lib").glob("python3*/site-packages"))


def share_dependencies(venv: Path) -> None:
    """Let ``venv`` import this environment's packages (torch, rclpy, ...) after its own, without reinstalling.

    A ``.pth`` line only appends a folder to sys.path: the editable-install hooks of this environment are
    not run, so this checkout's iris_ros is not importable through it, only what the venv installs itself.
    """
    deps = [p for p in sys.path if p.endswith("site-packages") and Path(p).is_dir()]
    (site_packages(venv) / "iris_test_deps.pth").write_text("\n".join(deps) + "\n")


def make_venv(venv: Path, *, with_pip: bool) -> Path:
    cmd = [base_python(), "-m", "venv", str(venv)] + ([] if with_pip else ["--without-pip"])
    subprocess.run(cmd, check=True, timeout=300)
    return venv
