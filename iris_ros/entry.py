"""The executables' entry points, light to import, so that SIGINT and SIGTERM are handled from the start.

``depth_node`` and ``demo_camera`` import torch, transformers and rclpy before their ``main()`` can install
its signal handling: seconds on a small machine, during which Ctrl-C would print a ``KeyboardInterrupt``
traceback (and launch would escalate). Here a stop before ``main()`` takes over ends the process at once
with exit code 0: nothing has been created yet (no ROS context, node or file) that would need tearing down.
"""

from __future__ import annotations

import os
import signal
import sys
from typing import Any


def _stop_while_importing(signum: int, frame: Any) -> None:
    name = os.path.basename(sys.argv[0]) or "iris_ros"
    os.write(2, f"{name}: {signal.Signals(signum).name} while starting (importing its libraries): exiting\n".encode())
    os._exit(0)


def guard_start_up() -> None:
    """Until ``main()`` installs its own: SIGINT or SIGTERM ends the process at once, exit code 0."""
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, _stop_while_importing)


def depth_node() -> None:
    """The ``depth_node`` executable (:func:`iris_ros.depth_node.main` replaces these handlers)."""
    guard_start_up()
    from .depth_node import main

    main()


def demo_camera() -> int:
    """The ``demo_camera`` executable."""
    guard_start_up()
    from .demo_camera import main

    signal.signal(signal.SIGINT, signal.default_int_handler)  # its main() stops on KeyboardInterrupt
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    return main()
