"""Register an editable (``pip install -e``) checkout of iris_ros in the ament index of a prefix.

A regular ``pip install .`` installs what ``ros2 launch`` / ``ros2 run`` need from setup.py's
``data_files``: ``share/ament_index/resource_index/packages/iris_ros``, ``share/iris_ros/{package.xml,
launch, config}`` (config: params YAML, RViz config, Fast DDS profile) and the launchers
``lib/iris_ros/{depth_node, demo_camera}``. An editable install does not: setuptools' PEP 660 editable wheels
leave data files out. This fills the gap after ``pip install -e .``:

    python -m iris_ros.ament_install            # into the running venv (sys.prefix)
    export AMENT_PREFIX_PATH=$VIRTUAL_ENV:$AMENT_PREFIX_PATH

launch and config files are symlinked to the checkout (edits apply at once, like the editable package);
the launchers are copied (they locate the venv from their own path).
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

PACKAGE = "iris_ros"
# What setup.py's data_files install into share/iris_ros/config: params, RViz config, Fast DDS profile.
CONFIG_SUFFIXES = (".yaml", ".rviz", ".xml")


def checkout_root() -> Path | None:
    """The source checkout this iris_ros is imported from, or None for a regular (non-editable) install."""
    root = Path(__file__).resolve().parents[1]
    if (root / "setup.py").is_file() and (root / "launch").is_dir() and (root / "scripts" / "ros_executables").is_dir():
        return root
    return None


def _link(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    if dst.is_symlink() or dst.exists():
        dst.unlink()
    dst.symlink_to(src)


def install(prefix: Path, root: Path) -> list[Path]:
    """Create the ament layout of iris_ros under ``prefix`` from the checkout at ``root``; return what was made."""
    made = []
    marker = prefix / "share" / "ament_index" / "resource_index" / "packages" / PACKAGE
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.touch()
    made.append(marker)
    share = prefix / "share" / PACKAGE
    sources = [root / "package.xml", *sorted((root / "launch").glob("*.launch.py"))]
    sources += [p for p in sorted((root / "config").iterdir()) if p.suffix in CONFIG_SUFFIXES]
    for src in sources:
        dst = share / src.relative_to(root)
        _link(src, dst)
        made.append(dst)
    lib = prefix / "lib" / PACKAGE
    lib.mkdir(parents=True, exist_ok=True)
    for src in sorted((root / "scripts" / "ros_executables").iterdir()):
        dst = lib / src.name
        if dst.is_symlink() or dst.exists():
            dst.unlink()
        shutil.copy2(src, dst)
        dst.chmod(0o755)
        made.append(dst)
    return made


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m iris_ros.ament_install", description=__doc__.split("\n\n")[0])
    parser.add_argument("--prefix", default=sys.prefix, help="install prefix (default: the running venv)")
    args = parser.parse_args(argv)
    root = checkout_root()
    if root is None:
        print(
            "iris_ros is not imported from a source checkout: a regular pip install already installed the "
            "ament files; nothing to do."
        )
        return 0
    prefix = Path(args.prefix).resolve()
    made = install(prefix, root)
    print(f"registered {PACKAGE} ({root}) in {prefix}: {len(made)} files. Then:")
    print(f"  export AMENT_PREFIX_PATH={prefix}${{AMENT_PREFIX_PATH:+:$AMENT_PREFIX_PATH}}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
