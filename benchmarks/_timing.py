"""Timing shared by the benchmark scripts: wall and CPU seconds of one call.

CPU seconds are this process' (``time.process_time``: every thread of it, children not): on a
machine shared with others, wall time moves with their load, CPU time much less, so the
benchmarks report both.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


def timed(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[Any, float, float]:
    """``(fn(*args, **kwargs), wall seconds, CPU seconds of this process)``."""
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - wall, time.process_time() - cpu
