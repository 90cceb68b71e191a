"""StoreListener: every transition reaches the database, batched per tick, none lost on a
short outage."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import event

from emsctl.config import Config
from emsctl.model import LoadId, LoadReading, Snapshot, State, Transition
from emsctl.site import Site
from emsctl.store import Store, StoreListener

T0 = datetime(2026, 1, 15, 10, 0, tzinfo=UTC)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store.open(tmp_path / "ems.db")
    yield s
    s.close()


def tr(i: int) -> Transition:
    return Transition(T0 + timedelta(minutes=i), LoadId.WB_A, State.OFF, State.ARMING, "arm", ())


def count_commits(store: Store) -> list[int]:
    commits = [0]

    def on_commit(_conn: object) -> None:
        commits[0] += 1

    event.listen(store.engine, "commit", on_commit)
    return commits


def test_outside_a_batch_each_transition_is_written_at_once(store: Store) -> None:
    listener = StoreListener(store)
    listener.on_transition(tr(0))
    assert len(store.history(now=T0)) == 1
    assert listener.pending == 0


def test_a_batch_writes_the_ticks_transitions_in_one_transaction(store: Store) -> None:
    listener = StoreListener(store)
    commits = count_commits(store)
    with listener.batch():
        for i in range(3):
            listener.on_transition(tr(i))
        assert store.history(now=T0) == []
    assert commits[0] == 1
    assert [r.at for r in store.history(now=T0)] == [tr(i).at for i in (2, 1, 0)]


def test_failed_write_keeps_transitions_and_the_next_write_saves_them_in_order(
    store: Store,
) -> None:
    listener = StoreListener(store)
    broken = [True]

    def fail(conn, cursor, statement, *args):  # type: ignore[no-untyped-def]
        if broken[0] and statement.startswith("INSERT INTO transitions"):
            raise __import__("sqlite3").OperationalError("database or disk is full")

    event.listen(store.engine, "before_cursor_execute", fail)
    listener.on_transition(tr(0))
    listener.on_transition(tr(1))
    assert listener.pending == 2
    assert store.failures == 2
    assert store.history(now=T0) == []
    broken[0] = False
    listener.on_transition(tr(2))
    assert listener.pending == 0
    assert [r.at for r in store.history(now=T0)] == [tr(i).at for i in (2, 1, 0)]


def test_next_sample_write_saves_transitions_kept_during_an_outage(store: Store) -> None:
    listener = StoreListener(store)
    broken = [True]

    def fail(conn, cursor, statement, *args):  # type: ignore[no-untyped-def]
        if broken[0]:
            raise __import__("sqlite3").OperationalError("database is locked")

    event.listen(store.engine, "before_cursor_execute", fail)
    listener.on_transition(tr(0))
    assert store.record_sample(T0, Snapshot(at=T0), {}) is False
    assert listener.pending == 1
    broken[0] = False
    assert store.record_sample(T0, Snapshot(at=T0), {}) is True
    assert listener.pending == 0
    assert len(store.history(now=T0)) == 1


def test_unsaved_queue_is_bounded_and_counts_what_it_dropped(store: Store) -> None:
    store.max_unsaved = 2
    listener = StoreListener(store)
    with store.engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE transitions")  # every write now fails
    for i in range(3):
        listener.on_transition(tr(i))
    assert listener.pending == 2
    assert store.transitions_dropped == 1


def test_site_transitions_reach_the_store_through_the_listener(store: Store) -> None:
    cfg = Config()
    listener = StoreListener(store)
    site = Site(cfg, T0, listeners=[listener])
    now = T0
    for _ in range(6):
        snap = Snapshot(at=now, grid_w=-5000, soc_pct=95, pv_w=6000, battery_w=0,
                        compressor_w=1500, outdoor_c=5, dhw_c=45)  # fmt: skip
        readings = {load: LoadReading(relay_on=bool(mod.commanded_on))
                    for load, mod in site.statuses().items()}  # fmt: skip
        with listener.batch():
            result = site.step(snap, readings, now)
        for cmd in result.commands:
            site.confirm(cmd.load, cmd, LoadReading(relay_on=cmd.on), None, now)
        now += timedelta(minutes=1)
    stored = store.history(LoadId.SG_READY, now=now)
    assert [(r.source, r.target) for r in reversed(stored)] == [("off", "arming"), ("arming", "on")]
    assert site.status(LoadId.SG_READY).since == stored[0].at
    assert stored[0].measurements["soc_pct"] == 95


def test_rows_the_database_refuses_are_dropped_not_retried_for_ever(store: Store) -> None:
    refuse = [True]

    def integrity(conn, cursor, statement, *args):  # type: ignore[no-untyped-def]
        if refuse[0] and statement.startswith("INSERT INTO transitions"):
            refuse[0] = False
            raise __import__("sqlite3").IntegrityError("CHECK constraint failed")

    event.listen(store.engine, "before_cursor_execute", integrity)
    assert store.record_transitions([tr(0)]) is False
    assert store.transitions_dropped == 1
    assert store.unsaved_transitions == 0
    assert store.record_sample(T0, Snapshot(at=T0), {}) is True  # later writes are not blocked
    assert store.record_transitions([tr(1)]) is True


def test_a_tick_that_meets_an_outage_keeps_its_transitions_journalled_and_drops_the_rest(
    store: Store, tmp_path: Path
) -> None:
    listener = StoreListener(store)
    broken = [True]

    def fail(conn, cursor, statement, *args):  # type: ignore[no-untyped-def]
        if broken[0] and statement.startswith("INSERT"):
            raise __import__("sqlite3").OperationalError("database is locked")

    event.listen(store.engine, "before_cursor_execute", fail)
    with store.tick():
        listener.on_transition(tr(0))
        store.record_command(LoadId.WB_A, True, "start", True, None, 0.1, T0)
        store.record_sample(T0, Snapshot(at=T0), {})
    assert listener.pending == 1 and store.failures == 1
    assert (tmp_path / "ems.db.journal").exists()  # a crash now would not lose it
    broken[0] = False
    with store.tick():
        listener.on_transition(tr(1))
        store.record_sample(T0 + timedelta(minutes=1), Snapshot(at=T0), {})
    assert listener.pending == 0
    assert not (tmp_path / "ems.db.journal").exists()
    assert [r.at for r in store.history(now=T0)] == [tr(1).at, tr(0).at]
    assert store.commands(since=T0) == []  # the outage's command row was dropped
    assert len(store.samples(T0 - timedelta(hours=1), T0 + timedelta(hours=1))) == 1


def test_a_row_the_database_refuses_in_a_tick_costs_only_that_row(store: Store) -> None:
    def refuse(conn, cursor, statement, *args):  # type: ignore[no-untyped-def]
        if statement.startswith("INSERT INTO commands"):
            raise __import__("sqlite3").IntegrityError("CHECK constraint failed")

    event.listen(store.engine, "before_cursor_execute", refuse)
    listener = StoreListener(store)
    with store.tick():
        listener.on_transition(tr(0))
        store.record_command(LoadId.WB_A, True, "start", True, None, 0.1, T0)
        store.record_sample(T0, Snapshot(at=T0), {})
    assert len(store.history(now=T0)) == 1
    assert len(store.samples(T0 - timedelta(hours=1), T0 + timedelta(hours=1))) == 1
    assert store.failures == 2  # the tick's transaction, then the command on its own
