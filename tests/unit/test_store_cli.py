"""`emsctl db ...`, `emsctl history` and `emsctl stats` against a real database file."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from freezegun import freeze_time

from emsctl.cli import main
from emsctl.model import LoadId, Mode, State, Transition
from emsctl.store import Store

NOW = datetime(2026, 6, 2, 10, 0, tzinfo=UTC)  # 12:00 in Berlin
WA = LoadId.WB_A


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "ems.db"
    with Store.open(path) as store:
        start = NOW - timedelta(hours=3)
        store.record_transitions(
            [
                Transition(start, WA, State.OFF, State.ARMING, "arm", ("export 2.1 kW",)),
                Transition(start + timedelta(minutes=4), WA, State.ARMING, State.ON, "start",
                           ("export 2.1 kW for 4m",)),
                Transition(start + timedelta(minutes=10), WA, State.ON, State.OFF, "brake",
                           ("soc 44% < brake 45%",)),
            ]
        )  # fmt: skip
        store.add_override(LoadId.WB_B, Mode.FORCE_ON, "ui:anna", NOW - timedelta(hours=1), None)
        store.record_transitions(
            [Transition(NOW - timedelta(days=5), WA, State.OFF, State.ARMING, "arm", ("old",))]
        )
    return path


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    with freeze_time(NOW):
        rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def test_history_json_lists_transitions_and_overrides_of_the_period(
    db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rc, out, _ = run(capsys, "history", "--db", str(db), "--since", "2d", "--format", "json")
    assert rc == 0
    rows = json.loads(out)
    assert [(r["kind"], r["load"], r["event"]) for r in rows] == [
        ("override", "wb_b", "set"),
        ("transition", "wb_a", "brake"),
        ("transition", "wb_a", "start"),
        ("transition", "wb_a", "arm"),
    ]
    assert rows[1]["reasons"] == ["soc 44% < brake 45%"]
    assert rows[0]["by"] == "ui:anna"


def test_history_csv_for_one_load_with_absolute_since(
    db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rc, out, _ = run(capsys, "history", "--db", str(db), "--load", "wb_a", "--since",
                     "2026-05-01", "--format", "csv")  # fmt: skip
    assert rc == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [r["event"] for r in rows] == ["brake", "start", "arm", "arm"]
    assert rows[0]["at_utc"] == "2026-06-02T07:10:00+00:00"


def test_history_table_shows_local_time_and_why(
    db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rc, out, _ = run(capsys, "history", "--db", str(db), "--since", "1d")
    assert rc == 0
    assert "2026-06-02 09:10" in out  # 07:10 UTC in Berlin summer time
    assert "soc 44% < brake 45%" in out
    assert "on -> off" in out


def test_history_with_unparseable_since_is_bad_input(
    db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rc, _, err = run(capsys, "history", "--db", str(db), "--since", "yesterday-ish")
    assert rc == 2
    assert "yesterday-ish" in err


def test_stats_json_per_day_with_runtime_switch_ons_short_cycles_and_stops(
    db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rc, out, _ = run(capsys, "stats", "--db", str(db), "--days", "1", "--load", "wb_a",
                     "--format", "json")  # fmt: skip
    assert rc == 0
    (day,) = json.loads(out)
    assert day == {
        "day": "2026-06-02",
        "load": "wb_a",
        "runtime_s": 360.0,
        "energy_wh": 200.0,
        "energy_measured": False,
        "switch_ons": 1,
        "short_cycles": 1,
        "stops": {"brake": 1},
        "stop_reasons": {"brake": ["soc 44% < brake 45%"]},
    }


def test_stats_table_and_csv(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, _ = run(capsys, "stats", "--db", str(db), "--days", "2")
    assert rc == 0
    assert "brake x1" in out
    rc, out, _ = run(capsys, "stats", "--db", str(db), "--days", "2", "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert len(rows) == 8
    wa = next(r for r in rows if r["day"] == "2026-06-02" and r["load"] == "wb_a")
    assert (wa["runtime_s"], wa["switch_ons"], wa["stops"]) == ("360", "1", "brake x1")


def test_history_finds_the_database_through_the_config(
    db: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = tmp_path / "ems.yaml"
    cfg.write_text(f"store:\n  path: {db}\n", encoding="utf-8")
    rc, out, _ = run(capsys, "history", "--config", str(cfg), "--format", "json")
    assert rc == 0
    assert len(json.loads(out)) == 4


def test_db_upgrade_current_downgrade_and_check(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = str(tmp_path / "new.db")
    rc, out, _ = run(capsys, "db", "upgrade", "--db", path)
    assert (rc, out.strip()) == (0, f"{path}: migrated from empty to 0001")
    rc, out, _ = run(capsys, "db", "upgrade", "--db", path)
    assert "already at revision 0001" in out
    rc, out, _ = run(capsys, "db", "current", "--db", path)
    assert (rc, out.strip()) == (0, f"{path}: revision 0001 (newest)")
    rc, out, _ = run(capsys, "db", "check", "--db", path)
    assert (rc, "matches" in out) == (0, True)
    rc, out, _ = run(capsys, "db", "downgrade", "base", "--db", path)
    assert rc == 0
    rc, out, _ = run(capsys, "db", "current", "--db", path)
    assert "revision none (empty); newest is 0001" in out


def test_db_current_of_a_missing_file_fails_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "missing.db"
    rc, _, err = run(capsys, "db", "current", "--db", str(path))
    assert rc == 1
    assert str(path) in err and "does not exist" in err
    assert not path.exists()


def test_history_refuses_a_file_that_is_not_a_database(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("shopping list\n", encoding="utf-8")
    rc, _, err = run(capsys, "history", "--db", str(path))
    assert rc == 1
    assert "is not an SQLite database" in err
    assert path.read_text(encoding="utf-8") == "shopping list\n"
