"""Rolling-window call allowances for cloud APIs, persisted so a restart cannot reset them.

Viessmann blocks an account for a day when it exceeds its quota, and forecast.solar limits
calls per hour: we count every call we make and refuse to make one the window cannot afford.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from emsctl.adapters.base import RateLimited
from emsctl.adapters.statestore import StateStore

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Window:
    """At most `limit` calls in any `seconds` long interval."""

    limit: int
    seconds: float


class CallBudget:
    """Counts calls per rolling window and honours blocks imposed by the server.

    State lives in the StateStore under `key` as JSON `{"calls": [epoch s...], "blocked_until":
    epoch s | null}`. It is read and written through on every use, so a CLI command and the
    daemon sharing one store also share one budget.
    """

    def __init__(self, store: StateStore, key: str, windows: list[Window], *, device: str) -> None:
        if not windows:
            raise ValueError("a budget needs at least one window")
        self._store = store
        self._key = key
        self._windows = sorted(windows, key=lambda w: w.seconds)
        self._device = device
        self._horizon = max(w.seconds for w in windows)

    @property
    def windows(self) -> list[Window]:
        return list(self._windows)

    # ------------------------------------------------------------------ persistence

    def _load(self) -> tuple[list[float], float | None]:
        raw = self._store.kv_get(self._key)
        if not raw:
            return [], None
        try:
            doc = json.loads(raw)
            calls = sorted(float(x) for x in doc.get("calls", []))
            blocked = doc.get("blocked_until")
            return calls, None if blocked is None else float(blocked)
        except (ValueError, TypeError, AttributeError):
            # A damaged record must not stop the house; the next write replaces it.
            log.warning(
                "%s: unreadable call budget record under %r; starting afresh", self, self._key
            )
            return [], None

    def _save(self, calls: list[float], blocked: float | None, now: datetime) -> None:
        doc = {"calls": [round(c, 3) for c in calls], "blocked_until": blocked}
        self._store.kv_put(self._key, json.dumps(doc, separators=(",", ":")), now)

    def _pruned(self, now: datetime) -> tuple[list[float], float | None]:
        calls, blocked = self._load()
        t = now.timestamp()
        calls = [c for c in calls if c > t - self._horizon]
        if blocked is not None and blocked <= t:
            blocked = None
        return calls, blocked

    # ------------------------------------------------------------------ queries

    def used(self, now: datetime, seconds: float | None = None) -> int:
        """Calls made in the last `seconds` (default: the longest window)."""
        calls, _ = self._pruned(now)
        span = self._horizon if seconds is None else seconds
        t = now.timestamp()
        return sum(1 for c in calls if c > t - span)

    def remaining(self, now: datetime) -> int:
        """Calls still allowed now: the tightest window decides."""
        calls, _ = self._pruned(now)
        t = now.timestamp()
        return min(w.limit - sum(1 for c in calls if c > t - w.seconds) for w in self._windows)

    def blocked_until(self, now: datetime) -> datetime | None:
        _, blocked = self._pruned(now)
        return None if blocked is None else datetime.fromtimestamp(blocked, UTC)

    def next_free(self, now: datetime, reserve: int = 0) -> datetime:
        """The earliest time at which a call leaving `reserve` spare would be allowed."""
        calls, blocked = self._pruned(now)
        t = now.timestamp()
        at = t if blocked is None else blocked
        for w in self._windows:
            inside = [c for c in calls if c > t - w.seconds]
            excess = len(inside) - (w.limit - reserve - 1)
            if excess <= 0:
                continue
            if excess > len(inside):
                # Even an empty window cannot keep that reserve: the best is a whole window on.
                at = max(at, (inside[-1] if inside else t) + w.seconds)
            else:
                # The window frees a slot when its `excess`-th oldest call ages out.
                at = max(at, inside[excess - 1] + w.seconds)
        return datetime.fromtimestamp(at, UTC)

    # ------------------------------------------------------------------ gate

    def check(self, now: datetime, *, reserve: int = 0, what: str = "call") -> None:
        """Raise RateLimited unless one more call fits while keeping `reserve` calls spare."""
        calls, blocked = self._pruned(now)
        t = now.timestamp()
        if blocked is not None:
            until = datetime.fromtimestamp(blocked, UTC)
            raise RateLimited(
                f"{what} refused: the server asked us to wait until {until:%Y-%m-%d %H:%M:%S}Z",
                device=self._device,
                retry_at=until,
            )
        for w in self._windows:
            inside = sum(1 for c in calls if c > t - w.seconds)
            if inside >= w.limit - reserve:
                retry = self.next_free(now, reserve)
                kept = f" keeping {reserve} for writes" if reserve else ""
                raise RateLimited(
                    f"{what} refused: {inside} of {w.limit} calls used in the last "
                    f"{_span(w.seconds)}{kept}",
                    device=self._device,
                    retry_at=retry,
                )

    def record(self, now: datetime) -> None:
        """Count one call made at `now`."""
        calls, blocked = self._pruned(now)
        calls.append(now.timestamp())
        self._save(calls, blocked, now)

    def block(self, until: datetime, now: datetime) -> None:
        """The server refused us until `until`: no call before then, even after a restart."""
        calls, blocked = self._pruned(now)
        new = until.timestamp()
        self._save(calls, new if blocked is None else max(blocked, new), now)

    def __str__(self) -> str:
        return self._device


def _span(seconds: float) -> str:
    td = timedelta(seconds=seconds)
    if seconds % 3600 == 0:
        return f"{int(seconds // 3600)} h"
    if seconds % 60 == 0:
        return f"{int(seconds // 60)} min"
    return str(td)
