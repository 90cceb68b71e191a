"""The car tables in a real SQLite file: the same behaviour as the replay's memory store,
settings and sessions surviving a restart, and an old database upgraded with its data."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, time, timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine

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
from emsctl.model import ChargeMode, LoadId
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
    with Store.open(path) as s:
        s.set_car_mode(B, ChargeMode.NOW, "ui", T0)
        s.save_session(_session(load=B, energy_wh=3_300.0, estimated=True))
    with Store.open(path) as s:
        assert s.car_settings(B).mode is ChargeMode.NOW
        again = s.open_session(B)
        assert again is not None and again.energy_wh == 3_300.0 and again.estimated


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
