"""Shared fixtures: tiny random checkpoints built offline, once per session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="module")
def one_torch_thread():
    """torch on one thread for a module: on 2 shared cores, OpenMP threads spinning against each other make
    small models many times slower than one thread."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random Iris checkpoint saved with save_pretrained (diffusers layout, safetensors)."""
    from iris_model.testing import save_tiny_checkpoint

    return save_tiny_checkpoint(tmp_path_factory.mktemp("tiny") / "model")



def _training_installed() -> bool:
    import importlib.util

    return importlib.util.find_spec("iris_training") is not None


def _needs_training(path: Path) -> bool:
    return "iris_training" in path.read_text()


# Without the training package (a colcon workspace builds iris_ros only), the test files that import it are left
# out instead of failing on ImportError, and the run's summary says so. (collect_ignore works on every pytest
# version ROS 2 ships, from Humble's 6.2 on; the pytest_ignore_collect hook changed its arguments in pytest 7.)
collect_ignore = (
    []
    if _training_installed()
    else sorted(p.name for p in Path(__file__).parent.glob("test_*.py") if _needs_training(p))
)


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    if collect_ignore:
        terminalreporter.write_line(
            f"iris_training is not installed (pip install -e training): {len(collect_ignore)} test files of it "
            "left out"
        )
