"""The database file underneath every part of the store: opening it (refusing files it must
not touch, migrating, replaying an outage journal), its identity (deleted or replaced under a
running daemon) and reopening, closing, and the failure policy of tick-time writes (log,
count, go on)."""

from __future__ import annotations

import logging
import shutil
import tempfile
import threading
from collections import Counter
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol, Self, TypeVar

from sqlalchemy import Engine, Table
from sqlalchemy.exc import DBAPIError, OperationalError, SQLAlchemyError

from emsctl.ownership import give_to_directory_owner
from emsctl.store import journal
from emsctl.store.db import (
    HEAD_REVISION,
    MEMORY,
    StoreError,
    check_path,
    inspect_file,
    make_engine,
)
from emsctl.store.models import metadata
from emsctl.store.rows import INSERT_TRANSITION

log = logging.getLogger(__name__)

T = TypeVar("T")

DEFAULT_RETENTION_DAYS = 30


class DatabasePort(Protocol):
    """The database file as the daemon watches it."""

    path: str
    failures: int

    def file_problem(self) -> str | None: ...

    def reopen(self) -> None: ...

    def close(self) -> None: ...


class StoreBase:
    """One SQLite database; the parts of the store (tick log, overrides, key/value, reads)
    share it. Thread-safe: each call uses its own connection."""

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
        self._lock = threading.Lock()
        #: (device, inode) of the database file: a file deleted or replaced under a running
        #: daemon is noticed (SQLite would go on writing to the unlinked inode).
        self._identity: tuple[int, int] | None = None
        self._busy_timeout_s = 2.0

    # ------------------------------------------------------------------ the file itself

    @classmethod
    def open(
        cls,
        path: str | Path,
        *,
        create: bool = True,
        migrate_to_head: bool = True,
        retention_days: int = DEFAULT_RETENTION_DAYS,
        busy_timeout_s: float = 2.0,
    ) -> Self:
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
        existed = check_path(p, create=create)
        if existed:
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
        if not existed:
            give_to_directory_owner(p)
        store._identity = _file_identity(p)
        if migrate_to_head:
            store._replay_journal()
        return store

    def reopen(self) -> None:
        """Open the database at the same path anew (created and migrated if it is gone).

        Raises StoreError when it cannot be created; the old connections stay closed.
        """
        self.engine.dispose()
        fresh = type(self).open(
            self.path,
            retention_days=self.retention.days,
            busy_timeout_s=self._busy_timeout_s,
        )
        self.engine = fresh.engine
        self._identity = fresh._identity

    @classmethod
    def temporary(cls, *, retention_days: int = DEFAULT_RETENTION_DAYS) -> Self:
        """A fresh database in a temporary directory, removed by close() (demo, tests)."""
        tmp = tempfile.mkdtemp(prefix="ems-store-")
        try:
            store = cls.open(Path(tmp) / "ems.db", retention_days=retention_days)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        store._cleanup = lambda: shutil.rmtree(tmp, ignore_errors=True)
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
                    conn.execute(INSERT_TRANSITION, rows)
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

    def _mark_pending_manual(self, load: str, on: bool, at: datetime) -> bool:
        """Say which way a person switched on the load's `manual` transition while that
        still waits for its tick's transaction (see Overrides.add_override). True when the
        load's latest transition up to `at` is waiting, so the database holds none newer.
        The tick log keeps such transitions; the base keeps none."""
        return False

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

    def __enter__(self) -> Self:
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


def _file_identity(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_dev, st.st_ino)


def _tables() -> Iterable[Table]:
    return metadata.sorted_tables


def _cause(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None)
    return str(orig if orig is not None else exc).splitlines()[0]


def _migrations() -> Any:
    """The Alembic side of the store, imported only when a migration may be due."""
    from emsctl.store import migrate

    return migrate
