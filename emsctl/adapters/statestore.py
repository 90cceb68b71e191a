"""The small key/value persistence the cloud adapters need (call budgets, caches, IDs).

The SQLite store implements `StateStore`; `MemoryStateStore` serves tests and the simulator.
"""

from __future__ import annotations

import threading
from datetime import datetime
from typing import Protocol, runtime_checkable


@runtime_checkable
class StateStore(Protocol):
    """Strings by key, written with the time of writing. Values are small JSON documents.

    `kv_put` may report success (the SQLite store returns a bool); callers do not rely on it:
    a lost write costs at most a cache entry or one call of budget accounting.
    """

    def kv_get(self, key: str) -> str | None: ...

    def kv_put(self, key: str, value: str, at: datetime) -> object: ...


class MemoryStateStore:
    """A StateStore that lives as long as the process (tests, simulator, fallbacks)."""

    def __init__(self) -> None:
        self._values: dict[str, tuple[str, datetime]] = {}
        self._lock = threading.Lock()

    def kv_get(self, key: str) -> str | None:
        with self._lock:
            item = self._values.get(key)
        return None if item is None else item[0]

    def kv_put(self, key: str, value: str, at: datetime) -> bool:
        with self._lock:
            self._values[key] = (value, at)
        return True

    def written_at(self, key: str) -> datetime | None:
        with self._lock:
            item = self._values.get(key)
        return None if item is None else item[1]

    def keys(self) -> list[str]:
        with self._lock:
            return sorted(self._values)
