"""A database deleted under the running daemon, and a crash during a database outage.

Deleted: SQLite would go on writing into the unlinked file and the next start would find no
state. The controller notices, makes the file anew and writes the state into it.
Outage then crash: the transitions held in memory are also in a journal file beside the
database, which the next start writes into it.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from prometheus_client import generate_latest

from emsctl.controller import Controller, Devices
from emsctl.metrics import Metrics
from emsctl.model import LoadId, Mode, State
from emsctl.site import Site
from emsctl.store import Store, StoreListener
from emsctl.store.journal import journal_path
from emsctl.store.journal import read as read_journal
from emsctl.store.journal import write as write_journal
from tests.unit.test_controller import T0, FakeCollector, FakeRelay, _config

ROOT = Path(__file__).resolve().parents[2]


class FileRig:
    """The controller on a real database file."""

    def __init__(self, db: Path) -> None:
        self.now = T0
        self.config = _config()
        self.store = Store.open(db)
        self.collector = FakeCollector()
        self.relays = {load: FakeRelay(load) for load in (LoadId.SG_READY, LoadId.WB_A)}
        self.metrics = Metrics()
        site = Site(self.config, self.now, listeners=[StoreListener(self.store)])
        self.ctl = Controller(
            self.config,
            site,
            Devices(collector=self.collector, actuators=dict(self.relays)),  # type: ignore[arg-type]
            store=self.store,
            metrics=self.metrics,
            now=lambda: self.now,
        )

    def minutes(self, n: int) -> None:
        for _ in range(n):
            self.ctl.tick()
            self.now += timedelta(minutes=1)


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[FileRig]:
    r = FileRig(tmp_path / "ems.db")
    yield r
    r.store.close()


def _delete(db: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)


def test_a_deleted_database_is_made_anew_with_the_state_a_restart_needs(
    rig: FileRig, tmp_path: Path
) -> None:
    db = tmp_path / "ems.db"
    rig.collector.values["compressor_w"] = 2000.0  # the compressor works: no early release
    rig.minutes(12)  # SG-Ready runs on the EMS's decision
    rig.ctl.set_override(LoadId.WB_A, Mode.FORCE_OFF, "owner", rig.now + timedelta(hours=4))
    rig.minutes(2)
    assert rig.ctl.site.status(LoadId.SG_READY).state is State.ON
    assert rig.ctl.site.status(LoadId.WB_A).state is State.FORCED_OFF
    on_since = rig.ctl.site.status(LoadId.SG_READY).since

    _delete(db)
    rig.minutes(1)
    assert db.exists()
    assert 'ems_adapter_errors_total{kind="file_replaced",where="store"} 1.0' in (
        generate_latest(rig.metrics.registry).decode()
    )
    rig.minutes(1)
    rig.store.close()

    # What the next start would restore from the new file.
    with Store.open(db) as again:
        restored = again.restore_statuses(rig.now, rig.config, record=False)
    sg = restored[LoadId.SG_READY]
    assert sg.state is State.ON  # EMS's own, not a person's
    assert sg.since == on_since  # its minimum runtime is not started again
    wb = restored[LoadId.WB_A]
    assert wb.state is State.FORCED_OFF
    assert wb.override is not None and wb.override.mode is Mode.FORCE_OFF


def test_a_replaced_database_file_is_noticed_too(rig: FileRig, tmp_path: Path) -> None:
    db = tmp_path / "ems.db"
    rig.minutes(2)
    _delete(db)
    with Store.open(db):  # someone puts an empty database there
        pass
    assert rig.store.file_problem() == "was replaced by another file"
    rig.minutes(1)
    assert rig.store.file_problem() is None


def test_an_intact_database_is_left_alone(rig: FileRig) -> None:
    engine = rig.store.engine
    rig.minutes(3)
    assert rig.store.file_problem() is None
    assert rig.store.engine is engine


CRASH = textwrap.dedent(
    """
    import os, sqlite3, sys
    from datetime import UTC, datetime, timedelta
    from sqlalchemy import event
    from emsctl.model import LoadId, State, Transition
    from emsctl.store import Store, StoreListener

    store = Store.open(sys.argv[1])
    def fail(conn, cursor, statement, *args):
        if statement.startswith("INSERT INTO transitions"):
            raise sqlite3.OperationalError("disk I/O error")
    event.listen(store.engine, "before_cursor_execute", fail)
    listener = StoreListener(store)
    t0 = datetime(2026, 1, 15, 10, 0, tzinfo=UTC)
    for i in range(3):
        listener.on_transition(
            Transition(t0 + timedelta(minutes=i), LoadId.WB_A, State.OFF, State.ARMING,
                       "arm", (f"reason {i}",))
        )
    assert listener.pending == 3
    os._exit(9)  # a crash: nothing is closed or flushed
    """
)


def test_transitions_kept_during_an_outage_survive_a_crash(tmp_path: Path) -> None:
    db = tmp_path / "ems.db"
    res = subprocess.run(
        [sys.executable, "-c", CRASH, str(db)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert res.returncode == 9, res.stderr
    assert journal_path(db).exists()
    with Store.open(db) as store:
        t0 = datetime(2026, 1, 15, 10, 0, tzinfo=UTC)
        rows = store.history(now=t0 + timedelta(days=1), since=t0 - timedelta(days=1))
        assert [r.reasons for r in reversed(rows)] == [("reason 0",), ("reason 1",), ("reason 2",)]
    assert not journal_path(db).exists()  # written, then removed


def test_the_journal_is_cleared_once_the_database_takes_the_writes_again(tmp_path: Path) -> None:
    db = tmp_path / "ems.db"
    with Store.open(db) as store:
        write_journal(journal_path(db), [])
        store.record_transitions([])
        assert journal_path(db).exists()  # nothing was held: no reason to touch it
    # A journal left by an earlier run is written at start and removed.
    Store.open(db).close()
    assert not journal_path(db).exists()


def test_a_torn_last_line_loses_only_that_line(tmp_path: Path) -> None:
    path = tmp_path / "j"
    row = {"at": T0, "load": "wb_a", "reasons": "[]"}
    assert write_journal(path, [row, row])
    with path.open("a") as f:
        f.write('{"at": {"$dt": "2026-01')
    assert read_journal(path) == [row, row]


def test_a_new_database_and_its_wal_are_readable_by_their_owner_only(tmp_path: Path) -> None:
    import os
    import stat

    old = os.umask(0o022)
    try:
        with Store.open(tmp_path / "ems.db") as store:
            store.record_sample(T0, FakeCollector().collect(T0), {})
            modes = {
                p.name: stat.S_IMODE(p.stat().st_mode)
                for p in tmp_path.iterdir()
                if p.name.startswith("ems.db")
            }
    finally:
        os.umask(old)
    assert modes["ems.db"] == 0o600
    assert all(m == 0o600 for m in modes.values()), modes
