"""iris_ros.config (the node's parameters, validated once) and iris_ros.frame_slot (newest-frame mailbox)."""

from __future__ import annotations

import threading
import time

import pytest

from iris_model.errors import InputError
from iris_ros.config import (
    DEPTH_MODES,
    DYNAMIC_PARAMETERS,
    MAX_DESCRIPTION_CHARS,
    PARAMETER_NAMES,
    PARAMETERS,
    ConfigError,
    DescriptionError,
    NodeConfig,
    check_description,
)
from iris_ros.frame_slot import LatestSlot


def test_defaults_are_valid_and_relative() -> None:
    cfg = NodeConfig()
    assert cfg.model_dir == "" and cfg.backend == "torch" and cfg.depth_mode == "relative"
    assert cfg.is_metric is False
    assert cfg.image_qos == "sensor_data"
    assert NodeConfig.from_mapping({}) == cfg


def test_parameter_table_matches_the_dataclass() -> None:
    assert tuple(f for f in NodeConfig.__dataclass_fields__) == PARAMETER_NAMES
    by_name = {p.name: p for p in PARAMETERS}
    for spec in PARAMETERS:
        assert spec.description, spec.name
        assert getattr(NodeConfig(), spec.name) == spec.default
        assert isinstance(spec.default, spec.type)
    assert by_name["depth_mode"].choices == DEPTH_MODES
    assert by_name["num_steps"].range == (0, 50)


def test_the_issue_s_run_time_parameters_are_the_dynamic_ones() -> None:
    dynamic = {"num_steps", "ensemble_size", "depth_mode", "scale", "shift", "description_override", "temporal_mode"}
    assert dynamic == DYNAMIC_PARAMETERS


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"num_steps": 51}, "'num_steps' must be in [0, 50]"),
        ({"num_steps": -1}, "num_steps"),
        ({"ensemble_size": 0}, "ensemble_size"),
        ({"processing_resolution": -2}, "processing_resolution"),
        ({"depth_mode": "metric"}, "must be one of ['relative', 'fixed_scale', 'sparse_aligned']"),
        ({"scale": 0.0}, "'scale' must be in"),
        ({"scale": float("nan")}, "scale"),
        ({"shift": float("inf")}, "shift"),
        ({"cloud_stride": 0}, "cloud_stride"),
        ({"max_range": -1.0}, "max_range"),
        ({"image_qos": "best_effort"}, "image_qos"),
        ({"num_steps": 2.0}, "'num_steps' must be int"),
        ({"num_steps": True}, "'num_steps' must be int"),
        ({"colorize": 1}, "'colorize' must be bool"),
        ({"model_dir": 3}, "'model_dir' must be str"),
        ({"backend": ""}, "'backend' must be a non-empty word"),
        ({"device": " cpu"}, "device"),
        ({"description_override": "x" * (MAX_DESCRIPTION_CHARS + 1)}, "limit is"),
    ],
)
def test_invalid_values_are_refused_with_the_name_and_the_rule(changes: dict, words: str) -> None:
    with pytest.raises(ConfigError if "description_override" not in changes else InputError) as info:
        NodeConfig().with_changes(**changes)
    assert words in str(info.value)


def test_valid_changes_and_int_to_float() -> None:
    cfg = NodeConfig().with_changes(depth_mode="fixed_scale", scale=3, shift=-0.5, num_steps=50)
    assert cfg.scale == 3.0 and isinstance(cfg.scale, float)
    assert cfg.is_metric
    assert NodeConfig().with_changes(processing_resolution=-1, max_range=0.0).max_range == 0.0


def test_unknown_parameter_names_are_refused() -> None:
    with pytest.raises(ConfigError, match="unknown parameter"):
        NodeConfig.from_mapping({"num_step": 2})
    with pytest.raises(ConfigError, match="unknown parameter"):
        NodeConfig().with_changes(model_delay_s=1.0)


def test_description_rules() -> None:
    assert check_description("  a kitchen with a table  ") == ("a kitchen with a table", None)
    assert check_description("") == ("", None)
    text, warning = check_description("une cuisine équipée, 厨房")
    assert text == "une cuisine équipée, 厨房"
    assert warning is not None and "non-ASCII" in warning
    with pytest.raises(DescriptionError, match="20000 characters refused"):
        check_description("a" * 20000)
    with pytest.raises(DescriptionError, match="control characters"):
        check_description("a room\x00with a NUL")
    with pytest.raises(DescriptionError, match="must be a string"):
        check_description(b"bytes")
    assert check_description("two\nlines\tand a tab")[1] is None


# ---------------------------------------------------------------------------------------------- frame slot
def test_slot_keeps_only_the_newest_and_counts_drops() -> None:
    slot: LatestSlot[int] = LatestSlot()
    assert slot.take(timeout=0.0) is None
    for i in range(10):
        slot.put(i)
    assert len(slot) == 1
    assert slot.dropped == 9
    assert slot.take(timeout=0.0) == 9
    assert slot.take(timeout=0.0) is None
    assert slot.put(10) is None and slot.put(11) == 10
    assert slot.dropped == 10


def test_slot_wakes_a_waiting_taker_and_close_releases_it() -> None:
    slot: LatestSlot[str] = LatestSlot()
    got = []
    taker = threading.Thread(target=lambda: got.append(slot.take(timeout=5.0)))
    taker.start()
    time.sleep(0.05)
    slot.put("frame")
    taker.join(2.0)
    assert got == ["frame"]

    waiter = threading.Thread(target=lambda: got.append(slot.take(timeout=30.0)))
    t0 = time.monotonic()
    waiter.start()
    time.sleep(0.05)
    slot.close()
    waiter.join(2.0)
    assert not waiter.is_alive() and time.monotonic() - t0 < 2.0
    assert got[-1] is None and slot.closed


def test_slot_under_a_fast_producer_loses_nothing_but_counted_frames() -> None:
    slot: LatestSlot[int] = LatestSlot()
    taken: list[int] = []
    done = threading.Event()

    def consume() -> None:
        while not (done.is_set() and len(slot) == 0):
            item = slot.take(timeout=0.01)
            if item is not None:
                taken.append(item)
                time.sleep(0.001)  # a slow consumer

    worker = threading.Thread(target=consume)
    worker.start()
    for i in range(2000):
        slot.put(i)
    done.set()
    worker.join(5.0)
    assert taken == sorted(taken) and taken[-1] == 1999  # in order, and the newest always arrives
    assert len(taken) + slot.dropped == 2000


def test_echoed_values_are_cut_to_a_couple_of_hundred_characters() -> None:
    from iris_ros.config import MAX_ECHO_CHARS, echo
    from iris_ros.image_codec import ImageConversionError, decode_image

    assert echo("kitchen") == "'kitchen'"
    long = echo("x" * 1_000_000)
    assert len(long) < MAX_ECHO_CHARS + 40 and long.endswith("(1000002 characters)")
    with pytest.raises(ConfigError) as info:
        NodeConfig(depth_mode="m" * 1_000_000)
    assert len(str(info.value)) < 400
    with pytest.raises(ImageConversionError) as info:
        decode_image("e" * 1_000_000, 2, 2, 6, 0, bytes(12))
    assert len(str(info.value)) < 600


def test_dtype_is_one_of_three_precisions_and_read_only() -> None:
    import torch

    assert NodeConfig().dtype == "fp32" and NodeConfig().torch_dtype == torch.float32
    assert NodeConfig(dtype="bf16").torch_dtype == torch.bfloat16
    assert NodeConfig(dtype="fp16").torch_dtype == torch.float16
    with pytest.raises(ConfigError, match="'dtype' must be one of"):
        NodeConfig(dtype="int8")
    assert "dtype" not in DYNAMIC_PARAMETERS
