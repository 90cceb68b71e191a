"""Opening the SQLite file safely: check it before touching it, then build the engine.

`inspect_file` reads a file without changing it (is it SQLite, is it intact, which schema
revision); `make_engine` sets the per-connection pragmas (WAL, foreign keys, busy timeout,
synchronous=FULL) and emits BEGIN itself so that DDL and DML are truly transactional.
"""

from __future__ import annotations

import getpass
import logging
import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL
from sqlalchemy.pool import StaticPool

log = logging.getLogger(__name__)

MEMORY = ":memory:"
SQLITE_HEADER = b"SQLite format 3\x00"
VERSION_TABLE = "alembic_version"
#: The newest migration in migrations/versions (a test keeps it equal to Alembic's head). A
#: database already at this revision opens without importing Alembic, which saves the daemon
#: about 11 MB of memory for its whole life.
HEAD_REVISION = "0002"
#: SQLite's page cache per connection, in KiB.
PAGE_CACHE_KIB = 512


class StoreError(Exception):
    """The database cannot be used as asked; the message names the file and what to do."""

    def __init__(self, path: str | Path, problem: str) -> None:
        self.path = str(path)
        self.problem = problem
        super().__init__(f"database {self.path}: {problem}")


@dataclass(frozen=True, slots=True)
class FileInfo:
    """What an existing database file holds, read without modifying it."""

    exists: bool
    tables: tuple[str, ...] = ()
    revisions: tuple[str, ...] = ()


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # pragma: no cover - no passwd entry
        return f"uid {os.getuid()}"


def check_path(path: Path, *, create: bool) -> bool:
    """Refuse paths SQLite could not use, with a message naming the cause. True if it exists."""
    parent = path.parent
    if path.exists():
        if not path.is_file():
            raise StoreError(path, "is not a regular file")
        try:
            with path.open("rb") as fh:
                head = fh.read(len(SQLITE_HEADER))
        except OSError as exc:
            raise StoreError(path, f"cannot be read ({exc.strerror})") from None
        if head and head != SQLITE_HEADER:
            raise StoreError(
                path,
                f"is not an SQLite database (it starts with {head[:8]!r}); it was left "
                "untouched. Point store.path at the EMS database or move this file away.",
            )
        if not os.access(path, os.W_OK):
            raise StoreError(path, f"is not writable by {_user()}")
        if not os.access(parent, os.W_OK | os.X_OK):
            raise StoreError(
                path,
                f"its directory {parent} is not writable by {_user()} "
                "(SQLite keeps its -wal and -shm files next to the database)",
            )
        return True
    if not create:
        raise StoreError(path, "does not exist (`emsctl db upgrade` creates it)")
    if not parent.is_dir():
        raise StoreError(path, f"cannot be created: directory {parent} does not exist")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise StoreError(
            path, f"cannot be created: directory {parent} is not writable by {_user()}"
        )
    # The history tells when the house is empty: readable by its owner only, whatever the
    # umask (SQLite gives its -wal and -shm files the database's mode).
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        pass
    except OSError as exc:
        raise StoreError(path, f"cannot be created ({exc.strerror})") from None
    return False


def inspect_file(path: Path) -> FileInfo:
    """Integrity check, table names and schema revision of an existing file (read only)."""
    uri = path.resolve().as_uri() + "?mode=rw"
    try:
        conn = sqlite3.connect(uri, uri=True)
    except sqlite3.Error as exc:
        raise StoreError(path, f"cannot be opened ({exc})") from None
    try:
        rows = conn.execute("PRAGMA quick_check(5)").fetchall()
        problems = [str(r[0]) for r in rows if r[0] != "ok"]
        if problems:
            raise StoreError(
                path,
                "is damaged (" + "; ".join(problems) + "); it was left untouched. "
                "Restore a backup (docs/operations.md, section Database).",
            )
        tables = tuple(
            r[0]
            for r in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            )
        )
        revisions: tuple[str, ...] = ()
        if VERSION_TABLE in tables:
            revisions = tuple(
                str(r[0]) for r in conn.execute(f"SELECT version_num FROM {VERSION_TABLE}")
            )
        return FileInfo(exists=True, tables=tables, revisions=revisions)
    except sqlite3.DatabaseError as exc:
        raise StoreError(
            path, f"is not a usable SQLite database ({exc}); it was left untouched."
        ) from None
    finally:
        conn.close()


def make_engine(path: str | Path, *, busy_timeout_s: float = 2.0) -> Engine:
    """An engine whose connections use WAL, foreign keys and explicit transactions."""
    memory = str(path) == MEMORY
    if memory:
        # One shared connection: every thread must see the same in-memory database.
        engine = create_engine(
            "sqlite://", poolclass=StaticPool, connect_args={"check_same_thread": False}
        )
    else:
        engine = create_engine(
            URL.create("sqlite", database=str(path)),
            connect_args={"check_same_thread": False},
        )
    timeout_ms = int(busy_timeout_s * 1000)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # The driver's own implicit transactions skip DDL; we emit BEGIN in "begin" below.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        try:
            cur.execute("PRAGMA foreign_keys = ON")
            cur.execute(f"PRAGMA busy_timeout = {timeout_ms}")
            if not memory:
                cur.execute("PRAGMA journal_mode = WAL")
                # A committed transition survives a power cut, not only a killed process.
                cur.execute("PRAGMA synchronous = FULL")
                # SQLite's page cache (2 MB per connection by default) fills with every page
                # the ticks write, and the daemon keeps a few connections for years. The OS
                # caches the file anyway: at 512 KiB ticks and pages take no longer
                # (docs/performance.md, "Memory").
                cur.execute(f"PRAGMA cache_size = -{PAGE_CACHE_KIB}")
        finally:
            cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN")

    return engine
