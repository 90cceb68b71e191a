"""The tick log: every transition, command and chart sample the daemon writes, one
transaction per tick; kept (and journalled) through a database outage, pruned past retention."""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import Any, Protocol

from sqlalchemy import delete, func, select
from sqlalchemy.exc import OperationalError

from emsctl.model import LoadId, LoadStatus, Snapshot, State, Transition
from emsctl.store import journal
from emsctl.store.base import StoreBase, _cause
from emsctl.store.db import MEMORY
from emsctl.store.models import commands_table, forecasts_table, samples_table
from emsctl.store.rows import (
    INSERT_COMMAND,
    INSERT_TRANSITION,
    command_row,
    insert_sample,
    sample_rows,
    transition_row,
)

log = logging.getLogger(__name__)


@dataclass
class _TickRows:
    """What a tick recorded, for its one transaction."""

    commands: list[dict[str, Any]] = field(default_factory=list)
    samples: list[tuple[dict[str, Any], list[dict[str, Any]]]] = field(default_factory=list)


class _TickState(threading.local):
    rows: _TickRows | None = None


class TickLogPort(Protocol):
    """What the controller writes every tick."""

    def tick(self) -> AbstractContextManager[None]: ...

    def record_transitions(self, transitions: Sequence[Transition]) -> bool: ...

    def record_command(
        self,
        load: LoadId,
        on: bool,
        reason: str,
        ok: bool,
        error: str | None,
        latency_s: float | None,
        at: datetime,
        dry_run: bool = False,
        *,
        renew: bool = False,
    ) -> bool: ...

    def record_sample(
        self,
        at: datetime,
        snapshot: Snapshot,
        statuses: Mapping[LoadId, LoadStatus],
        *,
        surplus_w: float | None = None,
    ) -> bool: ...

    def prune(self, now: datetime) -> bool: ...

    @property
    def unsaved_transitions(self) -> int: ...


class TickLog(StoreBase):
    """The tick-time writes (see TickLogPort)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: Transitions a failed write left behind, written first by the next tick write.
        self._unsaved: deque[dict[str, Any]] = deque()
        self.max_unsaved = 10_000
        self.transitions_dropped = 0
        #: The writes of a tick in progress (per thread: the web UI's writes are its own).
        self._tick = _TickState()

    @contextmanager
    def tick(self) -> Iterator[None]:
        """One transaction for a tick: the transitions, commands and the sample this thread
        records inside the block are written together at its end (nested blocks join the
        outer one). The failure policy stays per kind: on an outage the transitions are kept
        (and journalled) for the next write, the command rows and the sample are dropped."""
        if self._tick.rows is not None:
            yield
            return
        self._tick.rows = _TickRows()
        try:
            yield
        finally:
            rows, self._tick.rows = self._tick.rows, None
            self._commit_tick(rows)

    def _commit_tick(self, rows: _TickRows) -> None:
        if not self._unsaved and not rows.commands and not rows.samples:
            return
        with self._lock:
            unsaved = list(self._unsaved)
            try:
                with self.engine.begin() as conn:
                    if unsaved:
                        conn.execute(INSERT_TRANSITION, unsaved)
                    if rows.commands:
                        conn.execute(INSERT_COMMAND, rows.commands)
                    for values, loads in rows.samples:
                        insert_sample(conn, values, loads)
            except OperationalError as exc:
                # Disk full, locked, an I/O error: the transitions wait (journalled).
                self._count("tick", exc)
                log.warning(
                    "store tick write failed (%s); %d transition(s) kept for the next write, "
                    "%d command(s) and %d sample(s) dropped; control goes on",
                    _cause(exc),
                    len(unsaved),
                    len(rows.commands),
                    len(rows.samples),
                )
                if unsaved and self.path != MEMORY:
                    journal.write(journal.journal_path(self.path), unsaved)
                return
            except Exception as exc:
                # A row the database refuses for what it holds: write the parts one by one
                # below, so that only the bad one is lost.
                self._count("tick", exc)
                log.warning("store tick write refused (%s); writing its parts one by one", exc)
            else:
                self._unsaved.clear()
                if unsaved and self.path != MEMORY:
                    journal.remove(journal.journal_path(self.path))
                return
        self._drain("record_transitions")
        for row in rows.commands:
            self._guard("record_command", partial(self._write_command, row), False)
        for values, loads in rows.samples:
            self._guard("record_sample", partial(self._write_sample, values, loads), False)

    def _write_command(self, row: dict[str, Any]) -> bool:
        with self.engine.begin() as conn:
            conn.execute(INSERT_COMMAND, row)
        return True

    def _write_sample(self, values: dict[str, Any], loads: list[dict[str, Any]]) -> bool:
        with self.engine.begin() as conn:
            insert_sample(conn, values, loads)
        return True

    def record_transitions(self, transitions: Sequence[Transition]) -> bool:
        """Store transitions in one transaction, in the given order. True when committed.

        When the write fails the store keeps them (in order, up to `max_unsaved`) and writes
        them before anything else with the next tick write: do not send them again.
        """
        refused = False
        for t in transitions:
            try:
                row = transition_row(t)
            except (TypeError, ValueError) as exc:  # a bug in the caller, not an outage
                self._count("record_transitions", exc)
                log.error("transition not storable, dropped: %s (%s)", t, exc)
                refused = True
                continue
            with self._lock:
                if len(self._unsaved) >= self.max_unsaved:
                    self._unsaved.popleft()
                    self.transitions_dropped += 1
                    log.error("database unavailable too long: dropped the oldest unsaved one")
                self._unsaved.append(row)
        if self._tick.rows is not None:
            return not refused  # written with the tick
        return self._drain("record_transitions") and not refused

    def _mark_pending_manual(self, load: str, on: bool, at: datetime) -> bool:
        with self._lock:
            for row in reversed(self._unsaved):
                if row["load"] == load and row["at"] <= at:
                    if row["target"] == str(State.MANUAL) and row["output_on"] is None:
                        row["output_on"] = on
                    return True
        return False

    @property
    def unsaved_transitions(self) -> int:
        """Transitions waiting for the database to accept writes again."""
        return len(self._unsaved)

    def _drain(self, op: str) -> bool:
        """Write the transitions not yet committed; True when none is left.

        An outage (locked, full, I/O error) keeps them for the next write; rows the database
        refuses for what they contain would block every later write, so they are dropped
        (logged and counted in `transitions_dropped`).
        """
        with self._lock:
            if not self._unsaved:
                return True
            rows = list(self._unsaved)
            try:
                with self.engine.begin() as conn:
                    conn.execute(INSERT_TRANSITION, rows)
            except OperationalError as exc:
                self._count(op, exc)
                log.warning(
                    "store %s failed (%s); %d transition(s) kept for the next write; "
                    "control goes on",
                    op,
                    _cause(exc),
                    len(rows),
                )
                if self.path != MEMORY:
                    journal.write(journal.journal_path(self.path), rows)
                return False
            except Exception as exc:
                self._count(op, exc)
                self.transitions_dropped += len(rows)
                self._unsaved.clear()
                log.exception("store refused %d transition(s); dropped them", len(rows))
                return False
            self._unsaved.clear()
            if self.path != MEMORY:
                journal.remove(journal.journal_path(self.path))
        if op != "record_transitions":
            log.info("wrote %d transition(s) kept during a database outage", len(rows))
        return True

    def record_command(
        self,
        load: LoadId,
        on: bool,
        reason: str,
        ok: bool,
        error: str | None,
        latency_s: float | None,
        at: datetime,
        dry_run: bool = False,
        *,
        renew: bool = False,
    ) -> bool:
        """Store one actuation. A successful dead-man renewal is not stored (it is no decision
        and would add a row per load per tick); a failed one is."""
        if renew and ok:
            return True
        row = command_row(load, on, reason, ok, error, latency_s, at, dry_run, renew)
        if self._tick.rows is not None:
            self._tick.rows.commands.append(row)
            return True
        if self._unsaved and not self._drain("record_command"):
            return False
        return self._guard("record_command", lambda: self._write_command(row), False)

    def record_sample(
        self,
        at: datetime,
        snapshot: Snapshot,
        statuses: Mapping[LoadId, LoadStatus],
        *,
        surplus_w: float | None = None,
    ) -> bool:
        """One row for the chart: the snapshot's measurements and each load's state/output."""
        values, loads = sample_rows(at, snapshot, statuses, surplus_w)
        if self._tick.rows is not None:
            self._tick.rows.samples.append((values, loads))
            return True
        if self._unsaved and not self._drain("record_sample"):
            return False
        return self._guard("record_sample", lambda: self._write_sample(values, loads), False)

    def prune(self, now: datetime) -> bool:
        """Delete samples older than the retention, with old failed renewals and forecasts.

        Cheap when there is nothing to delete; the daemon may call it every tick or hourly.
        """
        cutoff = now - self.retention

        def run() -> bool:
            with self.engine.begin() as conn:
                n = conn.execute(delete(samples_table).where(samples_table.c.at < cutoff)).rowcount
                n_cmd = conn.execute(
                    delete(commands_table).where(
                        commands_table.c.renew.is_(True), commands_table.c.at < cutoff
                    )
                ).rowcount
                newest = (
                    select(
                        forecasts_table.c.source_key,
                        func.max(forecasts_table.c.fetched_at).label("m"),
                    )
                    .group_by(forecasts_table.c.source_key)
                    .subquery()
                )
                n_fc = conn.execute(
                    delete(forecasts_table).where(
                        forecasts_table.c.fetched_at < cutoff,
                        forecasts_table.c.fetched_at
                        < select(newest.c.m)
                        .where(newest.c.source_key == forecasts_table.c.source_key)
                        .scalar_subquery(),
                    )
                ).rowcount
            if n or n_cmd or n_fc:
                log.info(
                    "pruned %d samples, %d renewals, %d forecasts older than %s",
                    n,
                    n_cmd,
                    n_fc,
                    cutoff.isoformat(),
                )
            return True

        return self._guard("prune", run, False)
