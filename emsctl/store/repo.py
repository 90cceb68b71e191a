"""The `Store`: the daemon's, the UI's and the CLI's single door to the SQLite database.

Open with `Store.open(path)` (checks the file, migrates to head, WAL + foreign keys) or
`Store.temporary()` / `Store.open(":memory:")` for the demo and tests.

Writes made every tick never raise: a full disk or a locked database is logged, counted in
`failures` (and `failures_by_op`) and reported by returning False, so control goes on.
    record_transitions(transitions) -> bool  (a failed batch is kept and written first by the
                                              next tick write: never resend it)
    record_command(load, on, reason, ok, error, latency_s, at, dry_run=False, *, renew=False)
                                             -> bool (successful renewals are not stored)
    record_sample(at, snapshot, statuses, *, surplus_w=None) -> bool
    prune(now) -> bool                      samples (and old renewals/forecasts) past retention
    put_forecast(source_key, fetched_at, payload_json) -> bool
    kv_put(key, value, at) -> bool
Reads that adapters use in a tick return None on failure: kv_get(key), latest_forecast(key).
Overrides are set by people and raise StoreError when they cannot be stored:
    add_override(load, mode, created_by, created_at, expires_at, detected=False, note=None) -> id
    clear_override(load, cleared_by, at) -> int
    active_overrides(now) -> dict[LoadId, Override]     the owner's, in force at `now`
    override_records(now=None, *, active_only=True, load=None) -> list[OverrideRecord]
Start-up: restore_statuses(now, config=None, *, record=True) -> dict[LoadId, LoadStatus]
(see emsctl.store.restore). Queries (raise SQLAlchemyError on failure, for the UI and CLI):
    history(load=None, since=None, until=None, limit=100, offset=0, *, now=None)
        -> list[HistoryRow]                   transitions and overrides merged, newest first
    samples(since, until=None) -> list[SampleRecord]          oldest first, for the chart
    commands(load=None, since=None, limit=100) -> list[CommandRecord]
    stats(days=7, config=None, now=None, load=None) -> list[DayStats]   see queries.py
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from datetime import datetime
from pathlib import Path

from sqlalchemy.exc import SQLAlchemyError

from emsctl.config import Config
from emsctl.model import (
    LoadId,
    LoadStatus,
)
from emsctl.store.base import DEFAULT_RETENTION_DAYS, _cause, _file_identity, _migrations, _tables
from emsctl.store.db import (
    HEAD_REVISION,
    MEMORY,
    StoreError,
    check_path,
    inspect_file,
    make_engine,
)
from emsctl.store.keyvalue import KeyValue
from emsctl.store.overrides import Overrides
from emsctl.store.reads import Reads
from emsctl.store.ticklog import TickLog

log = logging.getLogger(__name__)


class Store(TickLog, Overrides, KeyValue, Reads):
    """The daemon's, the UI's and the CLI's single door to the database: its parts
    (emsctl/store/ticklog.py, overrides.py, keyvalue.py, reads.py) over one StoreBase, each
    with the Protocol its users import."""

    @classmethod
    def open(
        cls,
        path: str | Path,
        *,
        create: bool = True,
        migrate_to_head: bool = True,
        retention_days: int = DEFAULT_RETENTION_DAYS,
        busy_timeout_s: float = 2.0,
    ) -> Store:
        """Open (or create) the database, refusing files it must not touch.

        Raises StoreError naming the path when the file is not SQLite, damaged, not an EMS
        database, written by a newer EMS, or cannot be created or written. A refused file is
        left exactly as it was.
        """
        spath = str(path)
        if spath == MEMORY:
            engine = make_engine(MEMORY, busy_timeout_s=busy_timeout_s)
            store = cls(engine, MEMORY, retention_days=retention_days)
            store._migrate(migrate_to_head)
            return store
        p = Path(path).expanduser()
        if check_path(p, create=create):
            info = inspect_file(p)
            unknown = [
                r
                for r in info.revisions
                if r != HEAD_REVISION and not _migrations().known_revision(r)
            ]
            if unknown:
                raise StoreError(
                    p,
                    f"its schema revision {', '.join(unknown)} is newer than this EMS knows "
                    f"(newest here: {_migrations().head_revision()}); "
                    "it was written by a newer EMS. "
                    "Install that version again or restore a backup; the file was left untouched.",
                )
            ours = {"alembic_version", *(t.name for t in _tables())}
            foreign = [t for t in info.tables if t not in ours]
            if info.tables and "alembic_version" not in info.tables:
                raise StoreError(
                    p,
                    "is an SQLite database but not an EMS one (tables: "
                    f"{', '.join(sorted(info.tables)[:8])}); it was left untouched.",
                )
            if foreign:
                log.warning("database %s has tables EMS does not know: %s", p, foreign)
        engine = make_engine(p, busy_timeout_s=busy_timeout_s)
        store = cls(engine, str(p), retention_days=retention_days)
        store._busy_timeout_s = busy_timeout_s
        try:
            store._migrate(migrate_to_head)
        except SQLAlchemyError as exc:
            engine.dispose()
            raise StoreError(p, f"cannot be opened or migrated ({_cause(exc)})") from exc
        except StoreError:
            engine.dispose()
            raise
        store._identity = _file_identity(p)
        if migrate_to_head:
            store._replay_journal()
        return store

    def reopen(self) -> None:
        """Open the database at the same path anew (created and migrated if it is gone).

        Raises StoreError when it cannot be created; the old connections stay closed.
        """
        self.engine.dispose()
        fresh = Store.open(
            self.path,
            retention_days=self.retention.days,
            busy_timeout_s=self._busy_timeout_s,
        )
        self.engine = fresh.engine
        self._identity = fresh._identity

    @classmethod
    def temporary(cls, *, retention_days: int = DEFAULT_RETENTION_DAYS) -> Store:
        """A fresh database in a temporary directory, removed by close() (demo, tests)."""
        tmp = tempfile.mkdtemp(prefix="ems-store-")
        try:
            store = cls.open(Path(tmp) / "ems.db", retention_days=retention_days)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        store._cleanup = lambda: shutil.rmtree(tmp, ignore_errors=True)
        return store

    def restore_statuses(
        self, now: datetime, config: Config | None = None, *, record: bool = True
    ) -> dict[LoadId, LoadStatus]:
        """Each load's status as the store last saw it, for a Site at start-up.

        See emsctl.store.restore for the rules (expired overrides are not revived). With
        `record`, state changes made here are stored as transitions with event "restore".
        """
        from emsctl.store.restore import restore

        statuses, changes = restore(self, now, config)
        if record and changes:
            self.record_transitions(changes)
        return statuses


__all__ = ["Store", "StoreError"]
