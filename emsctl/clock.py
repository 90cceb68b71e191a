"""The only place that reads wall time; everything else takes `now` as an argument.

freezegun patches `datetime.now` and `time.monotonic` here in tests.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime


def now() -> datetime:
    """Current time, timezone-aware UTC."""
    return datetime.now(UTC)


def monotonic() -> float:
    """Seconds from an arbitrary origin, for scheduling and durations."""
    return time.monotonic()


def sleep(seconds: float) -> None:
    """Wait; a separate function so tests can replace it."""
    if seconds > 0:
        time.sleep(seconds)
