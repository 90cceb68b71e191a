"""`emsctl car`: what the owner sets lands in the database as the daemon reads it, and
`show`/`sessions` print it back (estimated energy marked)."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from freezegun import freeze_time

from emsctl import cli
from emsctl.cars.types import ChargingSession, OneOffTarget, SessionEnd, TargetSource
from emsctl.model import ChargeMode, LoadId
from emsctl.store import Store

ROOT = Path(__file__).resolve().parents[2]
HOUSE = str(ROOT / "configs" / "ems-config.yaml")
NOW = datetime(2026, 6, 29, 16, 0, tzinfo=UTC)  # Monday 18:00 local


def _car(db: Path, *argv: str, config: str = HOUSE) -> int:
    return cli.main(["car", *argv, "--db", str(db), "--config", config])


@pytest.fixture
def db(tmp_path: Path) -> Path:
    """An EMS database as the daemon (or `emsctl db upgrade`) made it."""
    path = tmp_path / "ems.db"
    Store.open(path).close()
    return path


@freeze_time(NOW)
def test_target_mode_and_weekly_schedule_are_stored(
    db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
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
    db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
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
    assert "~8.4 kWh (estimated)" in out and "ended Sun 16:00 (stopped_drawing)" in out
    assert _car(db, "wb_b", "sessions", "--days", "3") == 0
    assert "~8.4 kWh (estimated), 3.0 kWh from surplus" in capsys.readouterr().out
    assert _car(db, "wb_a", "sessions") == 0
    assert "no sessions in the last 14 days" in capsys.readouterr().out


@freeze_time(NOW)
def test_sessions_list_start_last_draw_end_and_target_without_draws_that_were_no_car(
    db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with Store.open(db) as s:
        for started, end, wh in (
            (NOW - timedelta(days=2), SessionEnd.NOT_FOUND, 6_100.0),
            (NOW - timedelta(days=1), SessionEnd.NO_CAR, 120.0),
            (NOW - timedelta(hours=3), None, 2_500.0),
        ):
            s.save_session(
                ChargingSession(
                    load=LoadId.WB_A,
                    started_at=started,
                    last_draw_at=started + timedelta(hours=2),
                    energy_wh=wh,
                    solar_wh=wh / 2,
                    ended_at=None if end is None else started + timedelta(hours=5),
                    ended_by=end,
                    deadline=started + timedelta(hours=15),
                    target_wh=15_000.0,
                    target_source=TargetSource.ONE_OFF,
                )
            )
    assert _car(db, "wb_a", "sessions") == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines == [
        "2026-06-29 Mon 15:00 .. last draw Mon 17:00, open: 2.5 kWh, 1.2 kWh from surplus; "
        "target 15.0 kWh by Tue 06:00, one-off",
        "2026-06-27 Sat 18:00 .. last draw Sat 20:00, ended Sat 23:00 (not_found): 6.1 kWh, "
        "3.0 kWh from surplus; target 15.0 kWh by Sun 09:00, one-off",
    ]
    assert _car(db, "wb_a", "sessions", "--days", "1") == 0
    assert len(capsys.readouterr().out.splitlines()) == 1


@pytest.mark.parametrize(
    ("local_now", "expected"),
    [
        (datetime(2026, 6, 30, 3, 0, tzinfo=UTC), "by Tue 2026-06-30 07:00"),  # 05:00 local
        (datetime(2026, 6, 30, 5, 0, tzinfo=UTC), "by Wed 2026-07-01 07:00"),  # 07:00 local
        # The night the clocks go back: 07:00 CET is 06:00 UTC.
        (datetime(2026, 10, 25, 0, 0, tzinfo=UTC), "by Sun 2026-10-25 07:00"),
    ],
)
def test_a_one_off_target_is_due_at_the_next_time_of_day_to_come(
    db: Path, capsys: pytest.CaptureFixture[str], local_now: datetime, expected: str
) -> None:
    with freeze_time(local_now):
        assert _car(db, "wb_a", "target", "--by", "07:00", "--kwh", "15") == 0
    assert expected in capsys.readouterr().out
    with Store.open(db) as s:
        one = s.car_settings(LoadId.WB_A).one_off
    assert one is not None and one.by.astimezone(ZoneInfo("Europe/Berlin")).hour == 7
    assert one.by > local_now and one.by - local_now <= timedelta(hours=24)


@freeze_time(NOW)
def test_percent_is_of_the_configured_battery(
    db: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("loads:\n  wb_b:\n    charging: {battery_kwh: 60}\n")
    assert _car(db, "wb_b", "target", "--by", "07:00", "--percent", "80", config=str(cfg)) == 0
    assert _car(db, "wb_b", "weekly", "sat,sun", "--at", "09:30", "--percent", "25",
                config=str(cfg)) == 0  # fmt: skip
    with Store.open(db) as s:
        got = s.car_settings(LoadId.WB_B)
    assert got.one_off is not None and got.one_off.energy_wh == pytest.approx(48_000.0)
    assert [(w.weekday, w.at, w.energy_wh) for w in got.weekly] == [
        (5, time(9, 30), pytest.approx(15_000.0)),
        (6, time(9, 30), pytest.approx(15_000.0)),
    ]


def test_a_missing_database_is_refused_and_not_created(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Settings written to a new file at a mistyped path would never reach the daemon."""
    db = tmp_path / "typo.db"
    assert _car(db, "wb_a", "mode", "off") == 2
    err = capsys.readouterr().err
    assert f"database {db}: does not exist" in err and "Traceback" not in err
    assert not db.exists()


@freeze_time(NOW)
def test_clear_takes_no_time_or_energy(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _car(db, "wb_a", "target", "--by", "07:00", "--kwh", "15") == 0
    assert _car(db, "wb_a", "target", "--clear", "--kwh", "15") == 2
    assert "--clear takes no --kwh" in capsys.readouterr().err
    assert _car(db, "wb_a", "weekly", "mon", "--clear", "--at", "07:00") == 2
    with Store.open(db) as s:
        assert s.car_settings(LoadId.WB_A).one_off is not None  # nothing cleared


@pytest.mark.parametrize(
    ("action", "says"),
    [
        (["mode"], "next tick"),
        (["target"], "next tick"),
        (["weekly"], "next tick"),
        (["sessions"], "estimated"),
    ],
)
def test_the_help_says_when_a_running_ems_applies_a_change(
    action: list[str], says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main(["car", "wb_a", *action, "--help"])
    assert exc.value.code == 0
    assert says in " ".join(capsys.readouterr().out.split())


def test_history_help_names_the_session_listing(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.main(["history", "--help"])
    assert "emsctl car WALLBOX sessions" in " ".join(capsys.readouterr().out.split())
