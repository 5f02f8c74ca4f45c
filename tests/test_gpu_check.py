"""``benchmarks/gpu.py --cpu --small``: the device check's code path runs end to end on a CPU and prints its table.

On a GPU (``python benchmarks/gpu.py``) the same script measures the full-size replica; see docs/performance.md.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu.py"


def _load():
    spec = importlib.util.spec_from_file_location("iris_gpu_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_gpu_check_cpu_small_prints_its_table(capsys, one_torch_thread):
    rc = _load().main(["--cpu", "--small", "--runs", "1", "--no-compile", "--no-default-model"])
    out = capsys.readouterr().out
    assert rc == 0
    table = out[out.index("| section"):]
    assert "failed" not in table
    for dtype in ("fp16", "bf16"):
        assert re.search(rf"\| precision \| {dtype} vs fp32, 64x48, 4 steps +\| finite +\| yes", table)
        diff = re.search(rf"{dtype} vs fp32, 64x48, 4 steps +\| max / mean abs diff \| ([0-9.]+) / ([0-9.]+)", table)
        assert diff and 0 < float(diff.group(1)) < 0.5  # half precision differs, but only a little
    for dtype in ("fp32", "fp16"):
        for size in ("64x64", "64x48"):
            for steps in (1, 4):
                row = re.search(rf"\| speed +\| {dtype}, {size}, {steps} step\(s\) +\| end-to-end ms +\| ([0-9.]+)",
                                table)
                assert row and float(row.group(1)) > 0
    assert "replica: tiny decoder" in table and "| total" in table


def test_gpu_check_without_a_gpu_says_so(capsys):
    import pytest
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is visible here: `python benchmarks/gpu.py` runs the full device check instead")
    assert _load().main([]) == 2
    assert "no CUDA device" in capsys.readouterr().out


def test_full_size_replica_has_marigold_v1_1_parameter_counts():
    """The replica the device check builds has the published checkpoint's size (counted on the meta device, no
    memory): UNet 865.9 M, VAE 83.7 M, ViT-H text tower 340.4 M parameters, as Marigold v1-1's components."""
    import torch

    from iris_model.replicas import replica_modules

    with torch.device("meta"):
        unet, vae, text = replica_modules("marigold-v1-1", "full")
    counts = [round(sum(p.numel() for p in m.parameters()) / 1e6, 1) for m in (unet, vae, text)]
    assert counts == [865.9, 83.7, 340.4]
    assert unet.config.in_channels == 8 and unet.config.cross_attention_dim == text.config.hidden_size == 1024
