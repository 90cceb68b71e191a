"""The database underneath every part of the store: its engine and file, the failure policy
of tick-time writes (log, count, go on) and the file's identity (deleted or replaced)."""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol, Self, TypeVar

from sqlalchemy import Engine, Table
from sqlalchemy.exc import DBAPIError, OperationalError

from emsctl.store.db import HEAD_REVISION
from emsctl.store.models import metadata

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
