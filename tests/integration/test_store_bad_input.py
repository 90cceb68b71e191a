"""Bad database files stop start-up with a clear message and stay untouched; a locked or full
database during a tick is logged and counted while control goes on."""

from __future__ import annotations

import hashlib
import logging
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import event

from emsctl.config import Config
from emsctl.controller import Controller, Devices
from emsctl.model import LoadId, LoadReading, LoadStatus, Snapshot, State, Transition
from emsctl.site import Site
from emsctl.store import Store, StoreError, StoreListener

T0 = datetime(2026, 1, 15, 10, 0, tzinfo=UTC)


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def siblings(path: Path) -> list[str]:
    return sorted(p.name for p in path.parent.iterdir())


# --------------------------------------------------------------------------- refused files


def test_text_file_is_refused_and_left_untouched(tmp_path: Path) -> None:
    path = tmp_path / "ems.db"
    path.write_text("# notes, not a database\n" * 50, encoding="utf-8")
    before = digest(path)
    with pytest.raises(StoreError) as err:
        Store.open(path)
    msg = str(err.value)
    assert str(path) in msg and "not an SQLite database" in msg
    assert digest(path) == before
    assert siblings(path) == ["ems.db"]  # no -wal/-shm either


def test_damaged_sqlite_file_is_refused_and_left_untouched(tmp_path: Path) -> None:
    path = tmp_path / "ems.db"
    with Store.open(path) as store:
        store.record_transitions(
            [Transition(T0, LoadId.WB_A, State.OFF, State.ARMING, "arm", ("x" * 500,))] * 50
        )
    raw = bytearray(path.read_bytes())
    page = 4096
    assert len(raw) > 4 * page
    raw[page : 3 * page] = b"\xa5" * (2 * page)  # overwrite b-tree pages, keep the header
    path.write_bytes(bytes(raw))
    before = digest(path)
    with pytest.raises(StoreError) as err:
        Store.open(path)
    assert str(path) in str(err.value)
    assert "damaged" in str(err.value) or "not a usable" in str(err.value)
    assert digest(path) == before


def test_database_of_a_newer_schema_is_refused_with_its_revision(tmp_path: Path) -> None:
    path = tmp_path / "ems.db"
    Store.open(path).close()
    conn = sqlite3.connect(path)
    conn.execute("UPDATE alembic_version SET version_num = '0042_future'")
    conn.commit()
    conn.close()
    before = digest(path)
    with pytest.raises(StoreError) as err:
        Store.open(path)
    msg = str(err.value)
    assert "0042_future" in msg and "newer" in msg and str(path) in msg
    assert digest(path) == before


def test_foreign_sqlite_database_is_refused_and_left_untouched(tmp_path: Path) -> None:
    path = tmp_path / "photos.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE albums (id INTEGER PRIMARY KEY, name TEXT)")
    conn.commit()
    conn.close()
    before = digest(path)
    with pytest.raises(StoreError, match="not an EMS one"):
        Store.open(path)
    assert digest(path) == before


@pytest.mark.parametrize(
    ("make", "expect"),
    [
        (lambda tmp: tmp / "missing-dir" / "ems.db", "does not exist"),
        (lambda tmp: tmp / "a-file" / "ems.db", "does not exist"),
        (lambda tmp: Path("/proc/ems-test/ems.db"), "does not exist"),
        (lambda tmp: Path("/proc/ems.db"), "cannot be"),
        (lambda tmp: tmp, "not a regular file"),
    ],
    ids=["no-directory", "parent-is-a-file", "no-dir-in-proc", "proc", "a-directory"],
)
def test_unusable_path_stops_start_up_naming_it(tmp_path: Path, make, expect: str) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "a-file").write_text("x", encoding="utf-8")
    path = make(tmp_path)
    with pytest.raises(StoreError) as err:
        Store.open(path)
    assert str(path) in str(err.value)
    assert expect in str(err.value)


def test_missing_file_is_not_created_when_create_is_false(tmp_path: Path) -> None:
    path = tmp_path / "ems.db"
    with pytest.raises(StoreError, match="does not exist"):
        Store.open(path, create=False)
    assert not path.exists()


# --------------------------------------------------------------------------- during a tick


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store.open(tmp_path / "ems.db", busy_timeout_s=0.05)
    yield s
    s.close()


@pytest.fixture
def lock(store: Store) -> Iterator[sqlite3.Connection]:
    """Another process's write transaction holding the database."""
    conn = sqlite3.connect(store.path, isolation_level=None, timeout=0)
    conn.execute("BEGIN IMMEDIATE")
    yield conn
    conn.rollback()
    conn.close()


def sample_args(at: datetime) -> tuple[datetime, Snapshot, dict[LoadId, LoadStatus]]:
    return at, Snapshot(at=at, grid_w=-100.0), {LoadId.WB_A: LoadStatus(LoadId.WB_A, State.OFF, at)}


def test_locked_database_fails_the_write_without_raising_and_counts_it(
    store: Store, lock: sqlite3.Connection, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="emsctl.store.repo"):
        assert store.record_sample(*sample_args(T0)) is False
        assert store.record_command(LoadId.WB_A, True, "start", True, None, 0.1, T0) is False
    assert store.failures == 2
    assert store.failures_by_op == {"record_sample": 1, "record_command": 1}
    assert "locked" in (store.last_error or "")
    assert "control goes on" in caplog.text
    lock.rollback()
    assert store.record_sample(*sample_args(T0)) is True


def test_full_disk_fails_the_write_without_raising_and_counts_it(store: Store) -> None:
    store.engine.dispose()

    @event.listens_for(store.engine, "connect")
    def _small_disk(dbapi_conn, _rec):  # type: ignore[no-untyped-def]
        pages = dbapi_conn.execute("PRAGMA page_count").fetchone()[0]
        dbapi_conn.execute(f"PRAGMA max_page_count = {pages + 2}")

    results = [store.record_sample(*sample_args(T0 + timedelta(minutes=i))) for i in range(400)]
    assert results[0] is True
    assert False in results
    assert store.failures == results.count(False)
    assert "full" in (store.last_error or "")


class _Collector:
    def collect(self, at: datetime) -> Snapshot:
        return Snapshot(at=at, grid_w=-5000, soc_pct=95, pv_w=6000, battery_w=0,
                        compressor_w=1500, outdoor_c=5, dhw_c=45)  # fmt: skip

    def close(self) -> None:
        pass


class _Relay:
    def __init__(self) -> None:
        self.on = False
        self.switches = 0

    def read(self) -> LoadReading:
        return LoadReading(relay_on=self.on)

    def switch(self, on: bool, *, deadman_s: int | None = None) -> LoadReading:
        self.on = on
        self.switches += 1
        return self.read()

    def close(self) -> None:
        pass


def test_ticks_go_on_while_the_database_is_locked_and_transitions_follow_later(
    store: Store, lock: sqlite3.Connection
) -> None:
    cfg = Config()
    listener = StoreListener(store)
    site = Site(cfg, T0, listeners=[listener])
    relays = {load: _Relay() for load in LoadId}
    clock_now = [T0]
    ctl = Controller(cfg, site, Devices(_Collector(), dict(relays)), store=store,
                     now=lambda: clock_now[0])  # fmt: skip
    for _ in range(6):
        report = ctl.tick()
        assert report.at == clock_now[0]
        clock_now[0] += timedelta(minutes=1)
    assert site.status(LoadId.SG_READY).state is State.ON
    assert relays[LoadId.SG_READY].on  # the load was switched despite the store
    assert store.failures >= 6  # samples (and transitions) failed each tick
    assert listener.pending >= 2
    lock.rollback()
    ctl.tick()  # no new transition: the tick's sample write saves the kept ones first
    assert listener.pending == 0
    stored = store.history(LoadId.SG_READY, now=clock_now[0])
    assert [(r.source, r.target) for r in reversed(stored)] == [("off", "arming"), ("arming", "on")]
