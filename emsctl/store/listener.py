"""StoreListener: the machines' transition listener that persists every transition.

    listener = StoreListener(store)
    site = Site(config, now, restored=store.restore_statuses(now, config), listeners=[listener])
    with listener.batch():             # one transaction for the tick's transitions
        result = site.step(snapshot, readings, now)

The controller's tick runs inside `Store.tick()`, which makes the tick's transitions, commands
and sample one transaction; `batch()` is the same for a caller that holds only the listener.
Outside either each transition is written at once. A write that fails (disk full, database
locked) leaves the transitions with the store, which writes them, in order, before its next
tick write (the controller's sample every tick): a short outage loses nothing. The store's
queue is bounded (`TickLog.max_unsaved`), the oldest dropped first and counted.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from emsctl.model import Transition
from emsctl.store.ticklog import TickLogPort

log = logging.getLogger(__name__)


class StoreListener:
    """Writes each machine transition to the store; never raises into the machine."""

    def __init__(self, store: TickLogPort) -> None:
        self.store = store
        self._batch: list[Transition] = []
        self._depth = 0

    @property
    def pending(self) -> int:
        """Transitions not yet committed (in this batch or kept by the store)."""
        return len(self._batch) + self.store.unsaved_transitions

    def on_transition(self, t: Transition) -> None:
        self._batch.append(t)
        if self._depth == 0:
            self.flush()

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Collect transitions and write them in one transaction at the end of the block,
        together with whatever else this thread records in it (`Store.tick`)."""
        self._depth += 1
        with self.store.tick():
            try:
                yield
            finally:
                self._depth -= 1
                if self._depth == 0:
                    self.flush()

    def flush(self) -> bool:
        """Hand the collected transitions to the store. True when all are committed."""
        batch, self._batch = self._batch, []
        if not batch and not self.store.unsaved_transitions:
            return True
        return self.store.record_transitions(batch)
