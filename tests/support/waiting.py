"""Polling for a condition in tests that drive a process or a server from outside."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


def wait_until(cond: Callable[[], Any], timeout_s: float, what: str) -> Any:
    """`cond()`'s first truthy value, polled every 0.1 s; AssertionError naming `what` when
    none comes within `timeout_s`."""
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        value = cond()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")
