"""The depth node's ``/diagnostics`` status: level, message and key/value pairs from a snapshot of its state.

The node gathers the numbers (counters, timings, settings) under its lock; this module only turns them into
a ``diagnostic_msgs/DiagnosticStatus``: ERROR when the worker thread stopped, WARN when frames or messages
were rejected or no CameraInfo arrived while images did, else OK.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from diagnostic_msgs.msg import DiagnosticStatus, KeyValue


def percentile_ms(seconds: Sequence[float], q: float) -> str:
    """The ``q``-th percentile of durations in seconds, as milliseconds with one decimal ("nan" if none)."""
    return f"{np.percentile(seconds, q) * 1e3:.1f}" if len(seconds) else "nan"


def node_status(
    name: str,
    hardware_id: str,
    *,
    worker_alive: bool,
    images_without_info: bool,
    rejected: int,
    values: Mapping[str, Any],
) -> DiagnosticStatus:
    """A DiagnosticStatus with the level and message the node's state calls for, and ``values`` as strings."""
    status = DiagnosticStatus()
    status.name, status.hardware_id = name, hardware_id
    problems = []
    if not worker_alive:
        problems.append("worker thread stopped")
    if images_without_info:
        problems.append("no camera_info (no points)")
    if rejected:
        problems.append(f"{rejected} frames/messages rejected")
    if not worker_alive:
        status.level = DiagnosticStatus.ERROR
    elif problems:
        status.level = DiagnosticStatus.WARN
    else:
        status.level = DiagnosticStatus.OK
    status.message = "; ".join(problems) or "ok"
    status.values = [KeyValue(key=k, value=str(v)) for k, v in values.items()]
    return status
