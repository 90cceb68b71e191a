"""`emsctl db ...`, `emsctl history` and `emsctl stats` against a real database file."""

from __future__ import annotations

import csv
import io
import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from freezegun import freeze_time

from emsctl.cli import main
from emsctl.model import LoadId, Mode, Snapshot, State, Transition
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


@pytest.fixture(autouse=True)
def _logging_put_back() -> Iterator[None]:
    """main() points the root logger at this test's captured stderr; put it back, so that a
    later test's log lines do not go to a closed stream."""
    root = logging.getLogger()
    for handler in root.handlers[:]:  # left by an earlier in-process main() on a closed stream
        if getattr(getattr(handler, "stream", None), "closed", False):
            root.removeHandler(handler)
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


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
    assert (rc, out.strip()) == (0, f"{path}: migrated from empty to 0002")
    rc, out, _ = run(capsys, "db", "upgrade", "--db", path)
    assert "already at revision 0002" in out
    rc, out, _ = run(capsys, "db", "current", "--db", path)
    assert (rc, out.strip()) == (0, f"{path}: revision 0002 (newest)")
    rc, out, _ = run(capsys, "db", "check", "--db", path)
    assert (rc, "matches" in out) == (0, True)
    rc, out, _ = run(capsys, "db", "downgrade", "base", "--db", path)
    assert rc == 0
    rc, out, _ = run(capsys, "db", "current", "--db", path)
    assert "revision none (empty); newest is 0002" in out


def test_db_current_of_a_missing_file_fails_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "missing.db"
    rc, _, err = run(capsys, "db", "current", "--db", str(path))
    assert rc == 2  # the file named is bad input
    assert str(path) in err and "does not exist" in err
    assert not path.exists()


def test_history_refuses_a_file_that_is_not_a_database(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("shopping list\n", encoding="utf-8")
    rc, _, err = run(capsys, "history", "--db", str(path))
    assert rc == 2
    assert "is not an SQLite database" in err
    assert path.read_text(encoding="utf-8") == "shopping list\n"


# --------------------------------------------------------------------------- bad files, old data


def test_db_upgrade_and_downgrade_to_an_unknown_revision_is_one_line_and_changes_nothing(
    db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for action in ("upgrade", "downgrade"):
        rc, _, err = run(capsys, "db", action, "--db", str(db), "nonsense")
        assert rc == 2
        assert err.startswith(f"emsctl db {action}: revision 'nonsense': ")
        assert "(revisions: base, 0001, 0002, or head, -1, +1)" in err
        assert len(err.strip().splitlines()) == 1
    rc, _, err = run(capsys, "db", "downgrade", "--db", str(db), "-5")
    assert rc == 2 and "revision '-5'" in err
    rc, out, _ = run(capsys, "db", "current", "--db", str(db))
    assert "revision 0002 (newest)" in out


def test_a_damaged_database_is_named_in_one_line(
    db: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    raw = db.read_bytes()
    damaged = tmp_path / "damaged.db"
    damaged.write_bytes(raw[:4096] + b"\0" * (len(raw) - 4096))  # the header page survives
    rc, _, err = run(capsys, "history", "--db", str(damaged))
    assert rc == 2
    # Found by SQLite's integrity check, or already by reading the schema it needs.
    assert err.startswith(f"emsctl: database {damaged}: ")
    assert "is damaged (" in err or "malformed" in err
    assert len(err.strip().splitlines()) == 1


def test_a_read_failing_after_the_open_is_one_line_exit_1(
    db: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from sqlalchemy.exc import OperationalError

    def locked(*_a: object, **_k: object) -> None:
        raise OperationalError("SELECT", {}, Exception("database is locked\nmore"))

    monkeypatch.setattr(Store, "history", locked)
    monkeypatch.setattr(Store, "stats", locked)
    for cmd in ("history", "stats"):
        rc, _, err = run(capsys, cmd, "--db", str(db))
        assert rc == 1
        assert err.endswith(f"emsctl: database {db}: cannot be read (database is locked)\n")


def test_history_fallback_names_the_options_that_pick_a_period(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "old.db"
    with Store.open(path) as store:
        store.record_transitions(
            [Transition(NOW - timedelta(days=40), WA, State.OFF, State.ARMING, "arm", ())]
        )
    rc, out, err = run(capsys, "history", "--db", str(path), "--format", "csv")
    assert rc == 0 and out.count("wb_a") == 1
    assert err == (
        "nothing in the last 2 days; the database holds 2026-04-23 12:00 .. 2026-04-23 12:00 "
        "(showing that; --since/--until pick a period)\n"
    )


def test_stats_of_a_database_that_stopped_count_an_open_run_up_to_its_end(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The daemon stopped three days ago with WB A on: today it has not run for three days
    (without the end of the data it would show 24 h a day since)."""
    path = tmp_path / "stopped.db"
    start = NOW - timedelta(days=3, hours=2)  # 2026-05-30 10:00 local
    with Store.open(path) as store:
        store.record_transitions(
            [
                Transition(start, WA, State.OFF, State.ARMING, "arm", ()),
                Transition(start + timedelta(minutes=4), WA, State.ARMING, State.ON, "start", ()),
            ]
        )
        for minute in range(0, 61, 10):
            store.record_sample(start + timedelta(minutes=minute), Snapshot(at=start), {})
    rc, out, err = run(capsys, "stats", "--db", str(path), "--days", "7", "--load", "wb_a",
                       "--format", "json")  # fmt: skip
    assert rc == 0
    runtime = {r["day"]: r["runtime_s"] for r in json.loads(out)}
    assert runtime["2026-05-30"] == 56 * 60
    assert runtime["2026-05-31"] == runtime["2026-06-01"] == runtime["2026-06-02"] == 0
    assert err.endswith(
        "the database ends at 2026-05-30 11:00: a run still open then is counted up to it\n"
    )


def test_stats_for_more_days_than_the_database_holds_start_where_it_begins(
    db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """No rows of zeros for the years before the database (and no query over them)."""
    rc, out, err = run(capsys, "stats", "--db", str(db), "--days", "3660", "--format", "json")
    assert rc == 0
    assert sorted({r["day"] for r in json.loads(out)}) == [
        "2026-05-28", "2026-05-29", "2026-05-30", "2026-05-31", "2026-06-01", "2026-06-02"
    ]  # fmt: skip
    assert "the database begins 2026-05-28 12:00: showing the 6 day(s) since\n" in err


def test_stats_fallback_covers_every_local_day_the_database_touches(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Two hours across a local midnight are two days (not the one a 2 h timedelta has)."""
    path = tmp_path / "night.db"
    start = datetime(2026, 5, 10, 21, 0, tzinfo=UTC)  # 23:00 local
    with Store.open(path) as store:
        store.record_transitions([Transition(start, WA, State.OFF, State.ARMING, "arm", ())])
        store.record_sample(start + timedelta(hours=2), Snapshot(at=start), {})
    rc, out, err = run(capsys, "stats", "--db", str(path), "--load", "wb_a", "--format", "json")
    assert rc == 0
    assert [r["day"] for r in json.loads(out)] == ["2026-05-10", "2026-05-11"]
    assert "the database holds 2026-05-10 23:00 .. 2026-05-11 01:00" in err
    assert "--days counts back from today" in err


def test_history_and_stats_on_a_real_demo_database(tmp_path: Path) -> None:
    """`emsctl demo --db` writes a database of simulated days in the past; `history` and
    `stats` show them without options, and say what they show."""
    db = tmp_path / "demo.db"
    emsctl = [sys.executable, "-m", "emsctl.cli"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("EMS_")}
    env["EMS_CONFIG"] = str(tmp_path / "none.yaml")

    def call(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*emsctl, *argv], cwd=tmp_path, env=env, capture_output=True, text=True,
            timeout=120, check=False,
        )  # fmt: skip

    demo = call("demo", "--minutes", "60", "--speed", "0.005", "--db", str(db),
                "--web-port", "0", "--metrics-port", "0")  # fmt: skip
    assert demo.returncode == 0, demo.stderr[-2000:]
    history = call("history", "--db", str(db), "--format", "csv")
    assert history.returncode == 0, history.stderr
    assert "nothing in the last 2 days; the database holds " in history.stderr
    rows = list(csv.DictReader(io.StringIO(history.stdout)))
    assert rows, history.stdout
    stats = call("stats", "--db", str(db), "--format", "json")
    assert stats.returncode == 0, stats.stderr
    assert "nothing in the last 7 days; the database holds " in stats.stderr
    days = json.loads(stats.stdout)
    assert {r["day"] for r in days} == {rows[-1]["at_utc"][:10]}
    assert sum(r["switch_ons"] for r in days) >= 1
    assert all(r["runtime_s"] <= 3600 for r in days)
