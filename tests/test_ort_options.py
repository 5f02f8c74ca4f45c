"""ONNX Runtime memory settings: validated options, and the automatic choice by model size."""

from __future__ import annotations

import pytest

from iris_model import InputError
from iris_model.runtime.onnxruntime_backend import LARGE_MODEL_BYTES, OrtOptions, resolve_memory_settings

KEYS = ("cpu_arena", "memory_pattern", "prepacking")


def test_small_models_keep_onnxruntime_defaults():
    assert resolve_memory_settings(OrtOptions(), 60 << 20) == dict.fromkeys(KEYS, True)


def test_large_models_drop_the_arena_by_default():
    assert resolve_memory_settings(OrtOptions(), LARGE_MODEL_BYTES + 1) == {"cpu_arena": False, "memory_pattern": True,
                                                                            "prepacking": True}


def test_explicit_settings_win_over_the_automatic_choice():
    options = OrtOptions(cpu_arena=True, prepacking=False)
    assert resolve_memory_settings(options, 5 << 30) == {"cpu_arena": True, "memory_pattern": True,
                                                          "prepacking": False}
    assert resolve_memory_settings(options, 1 << 20) == {"cpu_arena": True, "memory_pattern": True,
                                                          "prepacking": False}


@pytest.mark.parametrize("name", KEYS)
def test_bad_values_are_refused(name):
    with pytest.raises(InputError, match=name):
        OrtOptions(**{name: "yes"})
