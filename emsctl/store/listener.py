"""StoreListener: the machines' transition listener that persists every transition.

    listener = StoreListener(store)
    site = Site(config, now, restored=store.restore_statuses(now, config), listeners=[listener])
    with listener.batch():             # one transaction for the tick's transitions
        result = site.step(snapshot, readings, now)

Outside `batch()` each transition is written at once. A write that fails (disk full, database
locked) keeps the transitions queued, in order, and retries them with the next write, so a
short outage loses nothing; the queue is bounded (`max_pending`), oldest dropped first.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager

from emsctl.model import Transition
from emsctl.store.repo import Store

log = logging.getLogger(__name__)


class StoreListener:
    """Writes each machine transition to the store; never raises into the machine."""

    def __init__(self, store: Store, *, max_pending: int = 10_000) -> None:
        self.store = store
        self.max_pending = max_pending
        self.dropped = 0
        self._pending: deque[Transition] = deque()
        self._depth = 0

    @property
    def pending(self) -> int:
        """Transitions not yet committed."""
        return len(self._pending)

    def on_transition(self, t: Transition) -> None:
        if len(self._pending) >= self.max_pending:
            self._pending.popleft()
            self.dropped += 1
            log.error("store unavailable too long: dropped the oldest unsaved transition")
        self._pending.append(t)
        if self._depth == 0:
            self.flush()

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Collect transitions and write them in one transaction at the end of the block."""
        self._depth += 1
        try:
            yield
        finally:
            self._depth -= 1
            if self._depth == 0:
                self.flush()

    def flush(self) -> bool:
        """Write what is queued. True when nothing is left pending."""
        if not self._pending:
            return True
        batch = list(self._pending)
        if self.store.record_transitions(batch):
            for _ in batch:
                self._pending.popleft()
            return True
        log.warning("%d transition(s) kept for the next write", len(self._pending))
        return False
