"""The car tables in a real SQLite file: the same behaviour as the replay's memory store,
settings and sessions surviving a restart, and an old database upgraded with its data."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, time, timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine, event

from emsctl.cars.keeper import CarKeeper
from emsctl.cars.memory import MemoryCarStore
from emsctl.cars.port import CarStorePort
from emsctl.cars.types import (
    CarSettings,
    ChargingSession,
    OneOffTarget,
    SessionEnd,
    TargetSource,
    WeeklyTarget,
)
from emsctl.config import parse_config
from emsctl.model import ChargeMode, LoadId, Snapshot
from emsctl.store import Store, StoreError, migrate

T0 = datetime(2026, 6, 1, 16, 0, tzinfo=UTC)
A, B = LoadId.WB_A, LoadId.WB_B


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[CarStorePort]:
    if request.param == "memory":
        yield MemoryCarStore()
        return
    s = Store.open(tmp_path / "ems.db")
    try:
        yield s
    finally:
        s.close()


def _session(**kw: object) -> ChargingSession:
    base: dict[str, object] = {
        "load": A,
        "started_at": T0,
        "last_draw_at": T0,
        "deadline": T0 + timedelta(hours=15),
        "target_wh": 12_000.0,
        "target_source": TargetSource.DEFAULT,
    }
    base.update(kw)
    return ChargingSession(**base)  # type: ignore[arg-type]


def test_settings_start_empty_and_keep_what_the_owner_set(store: CarStorePort) -> None:
    assert store.car_settings(A) == CarSettings()
    store.set_car_mode(A, ChargeMode.SOLAR, "ui", T0)
    one = OneOffTarget(T0 + timedelta(hours=14), 15_000.0, T0, "ui")
    store.set_one_off_target(A, one, "ui", T0)
    store.set_weekly_target(A, 4, WeeklyTarget(4, time(6, 30), 8_000.0), "cli", T0)
    store.set_weekly_target(A, 0, WeeklyTarget(0, time(7, 0), 12_000.0), "cli", T0)
    got = store.car_settings(A)
    assert got.mode is ChargeMode.SOLAR
    assert got.one_off == one
    assert got.weekly == (WeeklyTarget(0, time(7), 12_000.0), WeeklyTarget(4, time(6, 30), 8_000.0))
    assert store.car_settings(B) == CarSettings()
    # Replacing and clearing.
    store.set_weekly_target(A, 4, WeeklyTarget(4, time(7, 15), 9_000.0), "cli", T0)
    store.set_weekly_target(A, 0, None, "cli", T0)
    store.set_one_off_target(A, None, "ui", T0)
    store.set_car_mode(A, None, "ui", T0)
    assert store.car_settings(A) == CarSettings(weekly=(WeeklyTarget(4, time(7, 15), 9_000.0),))
    with pytest.raises(ValueError, match="weekday 7"):
        store.set_weekly_target(A, 7, None, "cli", T0)


def test_sessions_are_saved_updated_and_listed_newest_first(store: CarStorePort) -> None:
    first = _session(energy_wh=1_000.0)
    store.save_session(first)
    assert first.id is not None
    first.energy_wh = 9_500.0
    first.solar_wh = 4_000.0
    first.last_draw_at = T0 + timedelta(hours=5)
    first.ended_at, first.ended_by = first.last_draw_at, SessionEnd.STOPPED
    store.save_session(first)
    second = _session(load=B, started_at=T0 + timedelta(days=1), estimated=True)
    store.save_session(second)
    assert store.open_session(A) is None
    assert store.open_session(B) == second
    got = store.car_sessions()
    assert [s.id for s in got] == [second.id, first.id]
    assert got[1] == first
    assert store.car_sessions(A) == [first]
    assert store.car_sessions(since=T0 + timedelta(hours=1)) == [second]
    assert store.car_sessions(limit=1) == [second]


def test_settings_and_an_open_session_survive_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "ems.db"
    one = OneOffTarget(T0 + timedelta(hours=15), 10_000.0, T0, "cli")
    weekly = WeeklyTarget(2, time(6, 45), 12_000.0)
    with Store.open(path) as s:
        s.set_car_mode(B, ChargeMode.NOW, "ui", T0)
        s.set_one_off_target(B, one, "cli", T0)
        s.set_weekly_target(B, 2, weekly, "cli", T0)
        s.save_session(_session(load=B, energy_wh=3_300.0, estimated=True))
    with Store.open(path) as s:
        assert s.car_settings(B) == CarSettings(ChargeMode.NOW, one, (weekly,))
        again = s.open_session(B)
        assert again is not None and again.energy_wh == 3_300.0 and again.estimated


def test_the_settings_read_of_every_tick_is_one_query(tmp_path: Path) -> None:
    with Store.open(tmp_path / "ems.db") as s:
        s.set_car_mode(A, ChargeMode.SOLAR, "ui", T0)
        s.set_one_off_target(A, OneOffTarget(T0 + timedelta(hours=9), 5_000.0, T0), "ui", T0)
        for day in range(5):
            s.set_weekly_target(A, day, WeeklyTarget(day, time(7), 9_000.0), "cli", T0)
            s.set_weekly_target(A, day, WeeklyTarget(day, time(7, 30), 9_500.0), "cli", T0)
        statements: list[str] = []

        def seen(conn: object, cur: object, sql: str, *rest: object) -> None:
            if not sql.startswith("BEGIN"):
                statements.append(sql)

        event.listen(s.engine, "before_cursor_execute", seen)
        got = s.car_settings(A)
        assert len(statements) == 1, statements
        assert got.mode is ChargeMode.SOLAR and got.one_off is not None
        assert [(w.weekday, w.at) for w in got.weekly] == [(d, time(7, 30)) for d in range(5)]
        statements.clear()
        assert s.car_settings(B) == CarSettings()  # neither a settings row nor targets
        assert len(statements) == 1


def _break(path: Path, table: str) -> None:
    conn = sqlite3.connect(path)
    conn.execute(f"DROP TABLE {table}")
    conn.commit()
    conn.close()


@pytest.mark.parametrize(
    ("table", "read"),
    [
        ("car_targets", lambda s: s.car_settings(A)),
        ("charging_sessions", lambda s: s.car_sessions(A)),
        ("charging_sessions", lambda s: s.open_session(A)),
    ],
)
def test_a_read_that_fails_raises_instead_of_answering_nothing(
    tmp_path: Path, table: str, read: Callable[[Store], object]
) -> None:
    """Empty settings would stand for the config's mode (an owner's "off" would charge), no
    sessions for a wallbox that never charged: the caller must know the database failed."""
    path = tmp_path / "ems.db"
    Store.open(path).close()
    _break(path, table)
    with Store.open(path, migrate_to_head=False) as s:
        with pytest.raises(StoreError, match="could not read"):
            read(s)
        assert s.failures == 1


def test_a_session_that_cannot_be_saved_does_not_stop_the_tick(tmp_path: Path) -> None:
    path = tmp_path / "ems.db"
    Store.open(path).close()
    _break(path, "charging_sessions")
    with Store.open(path, migrate_to_head=False) as s:
        session = _session()
        assert s.save_session(session) == 0
        assert session.id is None  # inserted again at its next save
        assert (s.failures, s.failures_by_op["save_session"]) == (1, 1)


def test_the_daemon_keeps_the_owners_mode_through_a_failed_read(tmp_path: Path) -> None:
    path = tmp_path / "ems.db"
    cfg = parse_config({"loads": {"wb_a": {"device": {"type": "sim"}}, "wb_b": {"enabled": False}}})
    with Store.open(path) as s:
        s.set_car_mode(A, ChargeMode.OFF, "ui", T0)
        keeper = CarKeeper(cfg, s, T0)
        snap = Snapshot(at=T0, grid_w=-3000.0, soc_pct=80.0, pv_w=5000.0)
        assert keeper.plans(T0, snap, {})[A].mode is ChargeMode.OFF
        _break(path, "car_targets")
        later = T0 + timedelta(minutes=1)
        assert keeper.plans(later, snap, {})[A].mode is ChargeMode.OFF
        assert s.failures_by_op["the charging settings"] == 1


def test_an_owners_setting_that_cannot_be_stored_raises(tmp_path: Path) -> None:
    path = tmp_path / "ems.db"
    s = Store.open(path)
    s.close()
    conn = sqlite3.connect(path)
    conn.execute("DROP TABLE car_settings")
    conn.commit()
    conn.close()
    with Store.open(path, migrate_to_head=False) as s, pytest.raises(StoreError, match="mode"):
        s.set_car_mode(A, ChargeMode.OFF, "ui", T0)


def test_a_database_of_the_first_schema_is_upgraded_with_its_data(tmp_path: Path) -> None:
    path = tmp_path / "ems.db"
    engine = create_engine(f"sqlite:///{path}")
    migrate.upgrade(engine, "0001")
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO kv (key, value, updated_at) VALUES ('x', 'kept', '2026-06-01 10:00:00')"
        )
    engine.dispose()
    with Store.open(path) as s:
        assert s.revision() == migrate.head_revision() == "0002"
        assert s.kv_get("x") == "kept"
        s.save_session(_session())
        assert len(s.car_sessions()) == 1
