#!/usr/bin/env bash
# Create (or update) ./.venv with everything Iris ROS needs; IRIS_DEV=1 adds the test and lint tools.
# Idempotent: each part is skipped while the files that define it are unchanged.
# torch is pinned to 2.13.0 (CPU build): an unpinned torch pulls gigabytes of CUDA wheels.
set -euo pipefail
cd "$(dirname "$0")/.."

pip_install() {
  # pip, minus the harmless "Location ... is ignored" notices about local index folders; fails when pip fails.
  # setuptools' editable builds end with an InformationOnly note ("Editable installation. Please be careful with
  # folders ... with the same name as your package"), which is not about this project: that one is ignored.
  if ! PYTHONWARNINGS="ignore:Editable installation" python -m pip install -q --disable-pip-version-check "$@" 2>&1 \
      | { grep -v '^WARNING: Location' || true; }; then
    echo "setup_venv: pip install $* failed" >&2
    exit 1
  fi
}

stamp_ok() { [ "$(cat ".venv/.stamp-$1" 2>/dev/null)" = "$2" ]; }

[ -x .venv/bin/python ] || "${PYTHON:-python3}" -m venv .venv
. .venv/bin/activate

base=$(cat setup.py MANIFEST.in requirements/runtime.txt training/pyproject.toml | sha256sum | cut -d' ' -f1)
if ! stamp_ok base "$base"; then
  pip_install --upgrade pip
  pip_install torch==2.13.0
  pip_install -r requirements/runtime.txt
  pip_install -e '.[onnx,text]'
  pip_install -e ./training
  # Editable installs leave out setup.py's data_files (the ament index marker, share/iris_ros, the
  # lib/iris_ros launchers); put them into the venv so that ros2 launch / launch_ros find the package.
  python -m iris_ros.ament_install
  python -c "import torch, diffusers, transformers, rclpy, iris_model, iris_ros, iris_training"
  echo "$base" > .venv/.stamp-base
fi

if [ "${IRIS_DEV:-0}" = 1 ]; then
  dev=$(cat requirements/dev.txt | sha256sum | cut -d' ' -f1)
  if ! stamp_ok dev "$dev"; then
    pip_install -r requirements/dev.txt
    # tensorrt-stubs declares a dependency on the tensorrt wheel, whose install downloads from NVIDIA's own
    # index; the stubs alone are what mypy needs.
    pip_install --no-deps tensorrt-stubs==10.13.0.35.1
    echo "$dev" > .venv/.stamp-dev
  fi
fi
