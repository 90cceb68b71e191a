"""`emsctl car`: what the owner sets lands in the database as the daemon reads it, and
`show`/`sessions` print it back (estimated energy marked)."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from pathlib import Path

import pytest
from freezegun import freeze_time

from emsctl import cli
from emsctl.cars.types import ChargingSession, OneOffTarget, SessionEnd, TargetSource
from emsctl.model import ChargeMode, LoadId
from emsctl.store import Store

ROOT = Path(__file__).resolve().parents[2]
HOUSE = str(ROOT / "configs" / "ems-config.yaml")
NOW = datetime(2026, 6, 29, 16, 0, tzinfo=UTC)  # Monday 18:00 local


def _car(db: Path, *argv: str) -> int:
    return cli.main(["car", *argv, "--db", str(db), "--config", HOUSE])


@freeze_time(NOW)
def test_target_mode_and_weekly_schedule_are_stored(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "ems.db"
    assert _car(db, "wb_a", "target", "--by", "07:00", "--kwh", "15") == 0
    assert "15.0 kWh by Tue 2026-06-30 07:00" in capsys.readouterr().out
    assert _car(db, "wb_b", "mode", "solar") == 0
    assert _car(db, "wb_b", "weekly", "mon-wed,fri", "--at", "06:45", "--kwh", "12") == 0
    with Store.open(db) as s:
        a, b = s.car_settings(LoadId.WB_A), s.car_settings(LoadId.WB_B)
    assert a.one_off == OneOffTarget(datetime(2026, 6, 30, 5, 0, tzinfo=UTC), 15_000.0, NOW, "cli")
    assert b.mode is ChargeMode.SOLAR
    assert [w.weekday for w in b.weekly] == [0, 1, 2, 4]
    assert {w.at for w in b.weekly} == {time(6, 45)} and {w.energy_wh for w in b.weekly} == {
        12_000.0
    }
    assert _car(db, "wb_b", "weekly", "tue", "--clear") == 0
    assert _car(db, "wb_b", "mode", "config") == 0
    assert _car(db, "wb_a", "target", "--clear") == 0
    with Store.open(db) as s:
        assert [w.weekday for w in s.car_settings(LoadId.WB_B).weekly] == [0, 2, 4]
        assert s.car_settings(LoadId.WB_B).mode is None
        assert s.car_settings(LoadId.WB_A).one_off is None


@freeze_time(NOW)
def test_show_and_sessions_print_what_is_stored(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "ems.db"
    with Store.open(db) as s:
        s.save_session(
            ChargingSession(
                load=LoadId.WB_B,
                started_at=NOW - timedelta(days=1, hours=5),
                last_draw_at=NOW - timedelta(days=1, hours=2),
                energy_wh=8_400.0,
                solar_wh=3_000.0,
                estimated=True,
                ended_at=NOW - timedelta(days=1, hours=2),
                ended_by=SessionEnd.STOPPED,
                deadline=NOW + timedelta(hours=13),
                target_wh=12_000.0,
                target_source=TargetSource.LEARNED,
            )
        )
    assert _car(db, "wb_b", "show") == 0
    out = capsys.readouterr().out
    assert "wb_b: mode solar+target (config)" in out
    assert "learned: nothing yet (without these: 20 kWh by 07:00 the next morning)" in out
    assert "~8.4 kWh (estimated)" in out and "stopped_drawing" in out
    assert _car(db, "wb_b", "sessions", "--days", "3") == 0
    assert "~8.4 kWh (estimated), 3.0 kWh from surplus" in capsys.readouterr().out
    assert _car(db, "wb_a", "sessions") == 0
    assert "no sessions in the last 14 days" in capsys.readouterr().out
