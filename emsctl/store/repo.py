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

import json
import logging
import math
import shutil
import tempfile
import threading
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, Row, Table, delete, func, insert, select, update
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import DBAPIError, OperationalError, SQLAlchemyError

from emsctl import clock
from emsctl.config import Config
from emsctl.model import (
    MEASUREMENTS,
    OUTPUT_ON,
    LoadId,
    LoadStatus,
    Mode,
    Override,
    Snapshot,
    State,
    Transition,
)
from emsctl.store import journal, queries
from emsctl.store.db import (
    HEAD_REVISION,
    MEMORY,
    StoreError,
    check_path,
    inspect_file,
    make_engine,
)
from emsctl.store.models import (
    commands_table,
    forecasts_table,
    kv_table,
    metadata,
    overrides_table,
    sample_loads_table,
    samples_table,
    transitions_table,
)
from emsctl.store.records import (
    CommandRecord,
    DayStats,
    HistoryRow,
    OverrideRecord,
    SampleRecord,
)

log = logging.getLogger(__name__)

T = TypeVar("T")

DEFAULT_RETENTION_DAYS = 30
#: Measurements whose unit is watts: stored as whole watts (compact in SQLite).
_WATTS = frozenset({*(m for m in MEASUREMENTS if m.endswith("_w")), "surplus_w", "power_w"})
#: Keys a transition's measurements may use to say whether a manual output is on.
_OUTPUT_KEYS = ("relay_on", "output_on")


def _compact(values: Mapping[str, float | None]) -> str | None:
    """Measurements as short JSON: missing and non-finite values are left out."""
    out: dict[str, float] = {}
    for key, value in values.items():
        if value is None or isinstance(value, bool):
            continue
        v = float(value)
        if math.isfinite(v):
            out[key] = round(v, 1)
    return json.dumps(out, separators=(",", ":")) if out else None


def _output_on(t: Transition) -> bool | None:
    if t.target in OUTPUT_ON:
        return True
    if t.target is State.MANUAL:
        for key in _OUTPUT_KEYS:
            value = t.measurements.get(key)
            if value is not None:
                return bool(value)
        return None
    if t.target is State.UNAVAILABLE:
        return None
    return False


# Statements built once: the tick's writes reuse them.
_INSERT_TRANSITION = insert(transitions_table)
_INSERT_COMMAND = insert(commands_table)
_INSERT_SAMPLE = insert(samples_table)
_INSERT_SAMPLE_LOAD = insert(sample_loads_table)


def _transition_row(t: Transition) -> dict[str, Any]:
    if t.at.tzinfo is None:
        raise ValueError(f"naive datetime {t.at.isoformat()} (the store needs aware UTC)")
    return {
        "at": t.at,
        "load": str(t.load),
        "source": str(t.source),
        "target": str(t.target),
        "event": str(t.event),
        "reasons": json.dumps(list(t.reasons), ensure_ascii=False),
        "output_on": _output_on(t),
        "measurements": _compact(t.measurements),
        # Kept for a state's planned end; transitions do not carry one (yet).
        "until": None,
    }


def _rounded(name: str, value: float | None) -> float | None:
    if value is None or not math.isfinite(value):
        return None
    return float(round(value)) if name in _WATTS else round(value, 1)


@dataclass
class _TickRows:
    """What a tick recorded, for its one transaction."""

    commands: list[dict[str, Any]] = field(default_factory=list)
    samples: list[tuple[dict[str, Any], list[dict[str, Any]]]] = field(default_factory=list)


class _TickState(threading.local):
    rows: _TickRows | None = None


def _insert_sample(conn: Connection, values: dict[str, Any], loads: list[dict[str, Any]]) -> None:
    key = conn.execute(_INSERT_SAMPLE, values).inserted_primary_key
    if key is None:  # pragma: no cover - SQLite always reports the rowid
        raise RuntimeError("no id for the new sample")
    if loads:
        conn.execute(_INSERT_SAMPLE_LOAD, [{**row, "sample_id": key[0]} for row in loads])


def _file_identity(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_dev, st.st_ino)


class Store:
    """Repository over one SQLite database. Thread-safe: each call uses its own connection."""

    def __init__(
        self,
        engine: Engine,
        path: str,
        *,
        retention_days: int = DEFAULT_RETENTION_DAYS,
        cleanup: Callable[[], None] | None = None,
    ) -> None:
        self.engine = engine
        self.path = path
        self.retention = timedelta(days=retention_days)
        #: Failed writes/reads since start (the tick went on regardless).
        self.failures = 0
        self.failures_by_op: Counter[str] = Counter()
        self.last_error: str | None = None
        self._cleanup = cleanup
        #: Transitions a failed write left behind, written first by the next tick write.
        self._unsaved: deque[dict[str, Any]] = deque()
        self._lock = threading.Lock()
        self.max_unsaved = 10_000
        self.transitions_dropped = 0
        #: (device, inode) of the database file: a file deleted or replaced under a running
        #: daemon is noticed (SQLite would go on writing to the unlinked inode).
        self._identity: tuple[int, int] | None = None
        self._busy_timeout_s = 2.0
        #: The writes of a tick in progress (per thread: the web UI's writes are its own).
        self._tick = _TickState()

    # ------------------------------------------------------------------ opening

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

    def _replay_journal(self) -> None:
        """Write the transitions an earlier run kept in its outage journal, then remove it."""
        path = journal.journal_path(self.path)
        rows = journal.read(path)
        if not rows and not path.exists():
            return
        if rows:
            try:
                with self.engine.begin() as conn:
                    conn.execute(_INSERT_TRANSITION, rows)
            except SQLAlchemyError as exc:
                raise StoreError(
                    self.path, f"cannot write the outage journal {path} ({_cause(exc)})"
                ) from exc
            log.warning(
                "wrote %d transition(s) from the outage journal %s (kept while the database "
                "was unavailable)",
                len(rows),
                path,
            )
        journal.remove(path)

    # ------------------------------------------------------------------ the file itself

    def file_problem(self) -> str | None:
        """Why the database file is no longer the one opened (deleted, replaced), or None."""
        if self._identity is None:
            return None
        now = _file_identity(Path(self.path))
        if now is None:
            return "was deleted"
        if now != self._identity:
            return "was replaced by another file"
        return None

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

    def _migrate(self, to_head: bool) -> None:
        if to_head and self._revision_sql() != HEAD_REVISION:
            migrate = _migrations()
            before = migrate.current_revision(self.engine)
            migrate.upgrade(self.engine)
            after = migrate.current_revision(self.engine)
            if before != after:
                log.info("database %s migrated from %s to %s", self.path, before, after)

    def _revision_sql(self) -> str | None:
        """The database's schema revision read with plain SQL (None: not yet migrated)."""
        try:
            with self.engine.connect() as conn:
                rows = conn.exec_driver_sql("SELECT version_num FROM alembic_version").all()
        except OperationalError:  # no version table yet: a new database
            return None
        return str(rows[0][0]) if len(rows) == 1 else None

    def close(self) -> None:
        self.engine.dispose()
        if self._cleanup is not None:
            self._cleanup()
            self._cleanup = None

    def __enter__(self) -> Store:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def revision(self) -> str | None:
        rev: str | None = _migrations().current_revision(self.engine)
        return rev

    # ------------------------------------------------------------------ failure policy

    def _guard(self, op: str, fn: Callable[[], T], default: T) -> T:
        """Run a tick-time operation; on any failure log, count and return `default`."""
        try:
            return fn()
        except (OperationalError, DBAPIError) as exc:
            # Disk full, database locked, I/O error: the tick goes on without this write.
            self._count(op, exc)
            log.warning("store %s failed (%s); control goes on", op, _cause(exc))
        except Exception as exc:  # a bug here must not stop control either
            self._count(op, exc)
            log.exception("store %s failed unexpectedly; control goes on", op)
        return default

    def _count(self, op: str, exc: BaseException) -> None:
        self.failures += 1
        self.failures_by_op[op] += 1
        self.last_error = f"{op}: {_cause(exc)}"

    # ------------------------------------------------------------------ tick writes

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
                        conn.execute(_INSERT_TRANSITION, unsaved)
                    if rows.commands:
                        conn.execute(_INSERT_COMMAND, rows.commands)
                    for values, loads in rows.samples:
                        _insert_sample(conn, values, loads)
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
            conn.execute(_INSERT_COMMAND, row)
        return True

    def _write_sample(self, values: dict[str, Any], loads: list[dict[str, Any]]) -> bool:
        with self.engine.begin() as conn:
            _insert_sample(conn, values, loads)
        return True

    def record_transitions(self, transitions: Sequence[Transition]) -> bool:
        """Store transitions in one transaction, in the given order. True when committed.

        When the write fails the store keeps them (in order, up to `max_unsaved`) and writes
        them before anything else with the next tick write: do not send them again.
        """
        refused = False
        for t in transitions:
            try:
                row = _transition_row(t)
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
                    conn.execute(_INSERT_TRANSITION, rows)
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
        row = {
            "at": at,
            "load": str(load),
            "on": on,
            "reason": reason,
            "ok": ok,
            "error": error,
            "latency_ms": None if latency_s is None else round(latency_s * 1000.0, 1),
            "dry_run": dry_run,
            "renew": renew,
        }

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
        values: dict[str, Any] = {
            name: _rounded(name, getattr(snapshot, name)) for name in MEASUREMENTS
        }
        values["at"] = at
        values["surplus_w"] = _rounded("surplus_w", surplus_w)
        loads = [
            {
                "load": str(load),
                "state": str(status.state),
                "output_on": status.reading.relay_on,
                "power_w": _rounded("power_w", status.reading.power_w),
            }
            for load, status in statuses.items()
        ]
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

    # ------------------------------------------------------------------ kv and forecasts

    def kv_get(self, key: str) -> str | None:
        def read() -> str | None:
            with self.engine.connect() as conn:
                value: str | None = conn.execute(
                    select(kv_table.c.value).where(kv_table.c.key == key)
                ).scalar_one_or_none()
                return value

        return self._guard("kv_get", read, None)

    def kv_put(self, key: str, value: str, at: datetime) -> bool:
        def write() -> bool:
            upsert = sqlite_insert(kv_table).values(key=key, value=value, updated_at=at)
            with self.engine.begin() as conn:
                conn.execute(
                    upsert.on_conflict_do_update(
                        index_elements=[kv_table.c.key],
                        set_={
                            "value": upsert.excluded.value,
                            "updated_at": upsert.excluded.updated_at,
                        },
                    )
                )
            return True

        return self._guard("kv_put", write, False)

    def kv_delete(self, key: str) -> bool:
        def write() -> bool:
            with self.engine.begin() as conn:
                conn.execute(delete(kv_table).where(kv_table.c.key == key))
            return True

        return self._guard("kv_delete", write, False)

    def put_forecast(self, source_key: str, fetched_at: datetime, payload_json: str) -> bool:
        def write() -> bool:
            with self.engine.begin() as conn:
                conn.execute(
                    insert(forecasts_table),
                    [{"source_key": source_key, "fetched_at": fetched_at, "payload": payload_json}],
                )
            return True

        return self._guard("put_forecast", write, False)

    def latest_forecast(self, source_key: str) -> tuple[datetime, str] | None:
        def read() -> tuple[datetime, str] | None:
            with self.engine.connect() as conn:
                row = conn.execute(
                    select(forecasts_table.c.fetched_at, forecasts_table.c.payload)
                    .where(forecasts_table.c.source_key == source_key)
                    .order_by(forecasts_table.c.fetched_at.desc(), forecasts_table.c.id.desc())
                    .limit(1)
                ).first()
                return None if row is None else (row[0], row[1])

        return self._guard("latest_forecast", read, None)

    # ------------------------------------------------------------------ overrides

    def add_override(
        self,
        load: LoadId,
        mode: Mode | str,
        created_by: str,
        created_at: datetime,
        expires_at: datetime | None,
        detected: bool = False,
        note: str | None = None,
    ) -> int:
        """Store an override (it supersedes the load's active one). Returns its id.

        `mode` is Mode.FORCE_ON or Mode.FORCE_OFF; a detected one (a person's switching seen
        at the device, the machine's manual hold) says which way the relay went (it also
        marks the load's `manual` transition as output on/off) or is "manual" when unknown.
        Mode.AUTO is not an override: use clear_override. Raises StoreError when it cannot be
        stored.
        """
        mode = str(mode)
        allowed = {str(Mode.FORCE_ON), str(Mode.FORCE_OFF)} | ({"manual"} if detected else set())
        if mode not in allowed:
            hint = "; for Auto call clear_override" if mode == str(Mode.AUTO) else ""
            raise ValueError(f"override mode {mode!r} is not one of {sorted(allowed)}{hint}")
        if expires_at is not None and expires_at <= created_at:
            raise ValueError(f"override expires ({expires_at}) before it starts ({created_at})")
        try:
            with self.engine.begin() as conn:
                self._clear(conn, load, created_by, created_at)
                result = conn.execute(
                    insert(overrides_table).values(
                        load=str(load),
                        mode=str(mode),
                        created_by=created_by,
                        created_at=created_at,
                        expires_at=expires_at,
                        detected=detected,
                        note=note,
                    )
                )
                new_id = int(result.lastrowid)  # the INTEGER PRIMARY KEY is the rowid
                if detected and mode in (str(Mode.FORCE_ON), str(Mode.FORCE_OFF)):
                    self._mark_manual_output(conn, load, mode == str(Mode.FORCE_ON), created_at)
        except SQLAlchemyError as exc:
            self._count("add_override", exc)
            raise StoreError(self.path, f"could not store the override ({_cause(exc)})") from exc
        log.info(
            "override %s %s by %s until %s%s",
            load,
            mode,
            created_by,
            expires_at.isoformat() if expires_at else "released",
            " (detected)" if detected else "",
        )
        return new_id

    def clear_override(self, load: LoadId, cleared_by: str, at: datetime) -> int:
        """End the load's active override(s); returns how many. Raises StoreError on failure."""
        try:
            with self.engine.begin() as conn:
                n = self._clear(conn, load, cleared_by, at)
        except SQLAlchemyError as exc:
            self._count("clear_override", exc)
            raise StoreError(self.path, f"could not clear the override ({_cause(exc)})") from exc
        if n:
            log.info("override of %s cleared by %s", load, cleared_by)
        return n

    @staticmethod
    def _mark_manual_output(conn: Connection, load: LoadId, on: bool, at: datetime) -> None:
        """A detected override says which way the person switched: record it on the `manual`
        transition it belongs to, so runtime statistics count a relay switched on by hand."""
        latest = (
            select(func.max(transitions_table.c.id))
            .where(transitions_table.c.load == str(load), transitions_table.c.at <= at)
            .scalar_subquery()
        )
        conn.execute(
            update(transitions_table)
            .where(
                transitions_table.c.id == latest,
                transitions_table.c.target == str(State.MANUAL),
                transitions_table.c.output_on.is_(None),
            )
            .values(output_on=on)
        )

    @staticmethod
    def _clear(conn: Connection, load: LoadId, by: str, at: datetime) -> int:
        result = conn.execute(
            update(overrides_table)
            .where(
                overrides_table.c.load == str(load),
                overrides_table.c.cleared_at.is_(None),
                (overrides_table.c.expires_at.is_(None)) | (overrides_table.c.expires_at > at),
            )
            .values(cleared_at=at, cleared_by=by)
        )
        return int(result.rowcount or 0)

    def shift_overrides(self, step: timedelta, now: datetime) -> int:
        """Move the overrides in force by a wall-clock step (`now` is after the step).

        An owner's "Force off for 4 h" keeps its four hours when NTP or a person sets the
        clock; without this a step back hides it (created "in the future") and a step forward
        ends it early. Returns how many were moved; raises StoreError on failure.
        """
        before = now - step
        rows = self.override_records(before, active_only=True, limit=1000)
        try:
            with self.engine.begin() as conn:
                for rec in rows:
                    conn.execute(
                        update(overrides_table)
                        .where(overrides_table.c.id == rec.id)
                        .values(
                            created_at=rec.created_at + step,
                            expires_at=None if rec.expires_at is None else rec.expires_at + step,
                        )
                    )
        except SQLAlchemyError as exc:
            self._count("shift_overrides", exc)
            raise StoreError(self.path, f"could not re-base overrides ({_cause(exc)})") from exc
        return len(rows)

    def override_records(
        self,
        now: datetime | None = None,
        *,
        active_only: bool = True,
        load: LoadId | None = None,
        limit: int = 100,
    ) -> list[OverrideRecord]:
        """Overrides newest first; with active_only, those in force at `now`."""
        q = select(overrides_table).order_by(
            overrides_table.c.created_at.desc(), overrides_table.c.id.desc()
        )
        if load is not None:
            q = q.where(overrides_table.c.load == str(load))
        if active_only:
            at = now or clock.now()
            q = q.where(
                overrides_table.c.cleared_at.is_(None),
                (overrides_table.c.expires_at.is_(None)) | (overrides_table.c.expires_at > at),
                overrides_table.c.created_at <= at,
            )
        with self.engine.connect() as conn:
            rows = conn.execute(q.limit(limit)).all()
        return [_override_record(r) for r in rows if _known_load(r.load)]

    def active_overrides(self, now: datetime) -> dict[LoadId, Override]:
        """The owner's override in force per load at `now` (not expired, not cleared).

        Detected manual holds are not included: the machines keep those as `manual`."""
        out: dict[LoadId, Override] = {}
        for rec in self.override_records(now, active_only=True, limit=1000):
            ov = None if rec.detected else rec.override
            if ov is not None:
                out.setdefault(rec.load, ov)  # newest first: the latest wins
        return out

    # ------------------------------------------------------------------ restore

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

    # ------------------------------------------------------------------ queries

    def history(
        self,
        load: LoadId | str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 100,
        offset: int = 0,
        *,
        now: datetime | None = None,
    ) -> list[HistoryRow]:
        """Transitions and overrides merged, newest first."""
        with self.engine.connect() as conn:
            return queries.history(
                conn,
                load=None if load is None else str(load),
                since=since,
                until=until,
                limit=limit,
                offset=offset,
                now=now or clock.now(),
            )

    def samples(self, since: datetime, until: datetime | None = None) -> list[SampleRecord]:
        """Ticks in [since, until), oldest first (the UI's 24 h chart)."""
        with self.engine.connect() as conn:
            return queries.samples(conn, since, until)

    def commands(
        self,
        load: LoadId | str | None = None,
        since: datetime | None = None,
        limit: int = 100,
    ) -> list[CommandRecord]:
        with self.engine.connect() as conn:
            return queries.commands(conn, None if load is None else str(load), since, limit)

    def stats(
        self,
        days: int = 7,
        config: Config | None = None,
        now: datetime | None = None,
        load: LoadId | str | None = None,
        data_until: datetime | None = None,
    ) -> list[DayStats]:
        """Per load and local day (config's time zone): runtime, energy, switch-ons, short
        cycles, why it stopped. The last `days` days, today included. A run still open at the
        end counts until `now`, or until `data_until` when the database ends earlier (a copy,
        a demo's database, a daemon that stopped): nothing is known after that."""
        cfg = config or Config()
        at = now or clock.now()
        open_until = at if data_until is None else min(at, data_until)
        specs = [
            queries.LoadSpec(str(x), cfg.loads.get(x).nominal_w, cfg.loads.get(x).min_on_s, order=i)
            for i, x in enumerate(cfg.control.priority)
            if load is None or str(x) == str(load)
        ]
        bounds = queries.day_bounds(at, days, cfg.control.tz)
        with self.engine.connect() as conn:
            return queries.day_stats(conn, bounds, specs, now=open_until)

    def span(self) -> tuple[datetime, datetime] | None:
        """The first and the last time the database holds anything for (None: empty)."""
        lo: list[datetime] = []
        hi: list[datetime] = []
        with self.engine.connect() as conn:
            for col in (transitions_table.c.at, samples_table.c.at):
                first, last = conn.execute(select(func.min(col), func.max(col))).one()
                if first is not None:
                    lo.append(first)
                    hi.append(last)
        return (min(lo), max(hi)) if lo else None

    # ------------------------------------------------------------------ helpers for restore

    def _last_transitions(self) -> dict[str, Row[Any]]:
        t = transitions_table.c
        with self.engine.connect() as conn:
            last = select(func.max(t.id)).group_by(t.load)
            rows = conn.execute(select(transitions_table).where(t.id.in_(last))).all()
        return {r.load: r for r in rows}

    def _transitions_of(self, load: str, after_id: int = 0) -> list[Row[Any]]:
        t = transitions_table.c
        with self.engine.connect() as conn:
            return list(
                conn.execute(
                    select(transitions_table).where(t.load == load, t.id > after_id).order_by(t.id)
                ).all()
            )

    def _run_edge(self, load: str, *, start: bool) -> datetime | None:
        """When the load's latest run began (start) or ended, as the machines count runs."""
        with self.engine.connect() as conn:
            return queries.run_edge(conn, load, [str(s) for s in OUTPUT_ON], start=start)


def _tables() -> Iterable[Table]:
    return metadata.sorted_tables


def _known_load(value: str) -> bool:
    try:
        LoadId(value)
    except ValueError:
        log.warning("the store names an unknown load %r; ignored", value)
        return False
    return True


def _override_record(r: Row[Any]) -> OverrideRecord:
    return OverrideRecord(
        id=r.id,
        load=LoadId(r.load),
        mode=r.mode,
        created_by=r.created_by,
        created_at=r.created_at,
        expires_at=r.expires_at,
        cleared_at=r.cleared_at,
        cleared_by=r.cleared_by,
        detected=r.detected,
        note=r.note,
    )


def _cause(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None)
    return str(orig if orig is not None else exc).splitlines()[0]


__all__ = ["Store", "StoreError"]


def _migrations() -> Any:
    """The Alembic side of the store, imported only when a migration may be due."""
    from emsctl.store import migrate

    return migrate
