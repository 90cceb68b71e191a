"""The SQL that docs/operations.md ("Database") gives the owner runs in the real `sqlite3`
shell against a real EMS database and answers the question it claims to answer."""

from __future__ import annotations

import csv
import io
import re
import subprocess
from datetime import time, timedelta
from pathlib import Path

import pytest

from emsctl import clock
from emsctl.cars.types import (
    ChargingSession,
    OneOffTarget,
    SessionEnd,
    TargetSource,
    WeeklyTarget,
)
from emsctl.model import LoadId, LoadReading, LoadStatus, Mode, Snapshot, State, Transition
from emsctl.store import Store
from tests.conftest import need_binary

DOC = Path(__file__).resolve().parents[2] / "docs" / "operations.md"
SG, WA = LoadId.SG_READY, LoadId.WB_A


def database_queries() -> list[str]:
    text = DOC.read_text(encoding="utf-8")
    section = text.split("\n## Database", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```sql\n(.*?)```", section, flags=re.S)


@pytest.fixture(scope="module")
def answers(tmp_path_factory: pytest.TempPathFactory) -> list[list[dict[str, str]]]:
    sqlite3_bin = need_binary("sqlite3", hint="apt-get install sqlite3")
    db = tmp_path_factory.mktemp("docs") / "ems.db"
    now = clock.now()  # the shell's queries are relative to the real 'now'
    t0 = now - timedelta(hours=5)

    def at(minutes: float):  # type: ignore[no-untyped-def]
        return t0 + timedelta(minutes=minutes)

    with Store.open(db) as store:
        store.record_transitions(
            [
                Transition(at(0), WA, State.OFF, State.ARMING, "arm", ("export 2.1 kW",)),
                Transition(at(4), WA, State.ARMING, State.ON, "start", ("export for 4m",)),
                Transition(at(40), WA, State.ON, State.DISARMING, "weaken", ("import",)),
                Transition(at(64), WA, State.DISARMING, State.OFF, "shed", ("import 6m",)),
                Transition(at(0), SG, State.ARMING, State.ON, "start", ("surplus",)),
                Transition(at(20), SG, State.ON, State.COOLDOWN, "release", ("buffer full",)),
                Transition(at(90), SG, State.COOLDOWN, State.OFF, "cooldown_end", ()),
                Transition(at(100), SG, State.ARMING, State.ON, "start", ("surplus",)),
                Transition(at(140), SG, State.ON, State.DISARMING, "weaken", ("import",)),
                Transition(at(146), SG, State.DISARMING, State.OFF, "shed", ("import 6m",)),
            ]
        )
        store.add_override(LoadId.WB_B, Mode.FORCE_ON, "ui:anna", at(10), at(250))
        store.record_command(WA, True, "start", False, "device unreachable", 5.0, at(4))
        for m in range(0, 240, 5):
            snap = Snapshot(at=at(m), grid_w=-1000.0 - m, soc_pct=60 + m / 10, pv_w=3000.0)
            status = LoadStatus(WA, State.OFF, at(m), reading=LoadReading(False))
            store.record_sample(at(m), snap, {WA: status})
        base = {"last_draw_at": at(200), "deadline": at(400), "target_wh": 15_000.0}
        for load, started, wh, solar, end, estimated in (
            (WA, at(30), 9_000.0, 4_000.0, SessionEnd.STOPPED, False),
            (LoadId.WB_B, at(60), 6_000.0, 1_000.0, None, True),
            (LoadId.WB_B, at(70), 0.0, 0.0, SessionEnd.NO_CAR, True),
        ):
            session = ChargingSession(
                load=load,
                started_at=started,
                energy_wh=wh,
                solar_wh=solar,
                ended_by=end,
                ended_at=at(200) if end else None,
                estimated=estimated,
                target_source=TargetSource.LEARNED,
                **base,  # type: ignore[arg-type]
            )
            store.save_session(session)
        store.set_one_off_target(WA, OneOffTarget(at(400), 12_000.0, at(10), "ui"), "ui", at(10))
        store.set_weekly_target(
            LoadId.WB_B, 4, WeeklyTarget(4, time(6, 45), 9_000.0), "cli", at(11)
        )
    out = []
    for sql in database_queries():
        run = subprocess.run(
            [sqlite3_bin, "-readonly", "-bail", "-csv", "-header", str(db), sql],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert run.returncode == 0 and not run.stderr, f"{sql}\n{run.stderr}"
        out.append(list(csv.DictReader(io.StringIO(run.stdout))))
    return out


def test_the_section_has_the_promised_queries() -> None:
    assert len(database_queries()) == 11
    cars = DOC.read_text(encoding="utf-8").split("\n### Charging sessions and targets\n", 1)[1]
    cars = cars.split("\n## ", 1)[0]
    assert len(re.findall(r"```sql\n", cars)) == 4
    assert "emsctl car wb_a target --by 07:00 --kwh 15" in cars


def test_when_did_wb_a_run_lists_its_starts_and_stops(answers) -> None:  # type: ignore[no-untyped-def]
    rows = answers[0]
    assert [(r["change"], r["event"]) for r in rows] == [
        ("arming -> on", "start"),
        ("disarming -> off", "shed"),
    ]
    assert rows[1]["reasons"] == '["import 6m"]'


def test_why_sg_ready_stopped_counts_each_reason(answers) -> None:  # type: ignore[no-untyped-def]
    assert {(r["event"], r["times"]) for r in answers[1]} == {("release", "1"), ("shed", "1")}


def test_hours_per_day_add_up_to_the_runs(answers) -> None:  # type: ignore[no-untyped-def]
    hours = {}
    for r in answers[2]:
        hours[r["load"]] = hours.get(r["load"], 0.0) + float(r["hours_on"])
    assert hours == pytest.approx({"wb_a": 1.0, "sg_ready": 1.1}, abs=0.011)


def test_switch_ons_of_sg_ready(answers) -> None:  # type: ignore[no-untyped-def]
    assert sum(int(r["switch_ons"]) for r in answers[3]) == 2


def test_who_forced_a_load(answers) -> None:  # type: ignore[no-untyped-def]
    (row,) = answers[4]
    assert (row["load"], row["mode"], row["created_by"]) == ("wb_b", "force_on", "ui:anna")


def test_failed_commands(answers) -> None:  # type: ignore[no-untyped-def]
    (row,) = answers[5]
    assert (row["load"], row["wanted"], row["error"]) == ("wb_a", "on", "device unreachable")


def test_quarter_hours_of_the_last_day(answers) -> None:  # type: ignore[no-untyped-def]
    rows = answers[6]
    assert 16 <= len(rows) <= 17  # 4 hours of 5-minute samples
    assert all(r["quarter"][-2:] in ("00", "15", "30", "45") for r in rows)


def test_charging_sessions_leave_out_what_was_no_car(answers) -> None:  # type: ignore[no-untyped-def]
    rows = answers[7]
    assert [(r["load"], r["ended"], r["energy"]) for r in rows] == [
        ("wb_b", "open", "estimated"),
        ("wb_a", "stopped_drawing", "metered"),
    ]
    assert rows[1]["kwh"] == "9.0" and rows[1]["from_surplus_kwh"] == "4.0"


def test_car_energy_per_week(answers) -> None:  # type: ignore[no-untyped-def]
    kwh: dict[str, float] = {}
    for r in answers[8]:  # the sessions may fall on two weeks early on a Monday
        kwh[r["load"]] = kwh.get(r["load"], 0.0) + float(r["kwh"])
    assert sum(int(r["sessions"]) for r in answers[8]) == 2
    assert kwh == {"wb_a": 9.0, "wb_b": 6.0}


def test_estimated_against_metered(answers) -> None:  # type: ignore[no-untyped-def]
    assert [
        (r["load"], r["energy"], r["sessions"], r["kwh"], r["draws_not_a_car"]) for r in answers[9]
    ] == [("wb_a", "metered", "1", "9.0", "0"), ("wb_b", "estimated", "1", "6.0", "1")]


def test_targets_in_force(answers) -> None:  # type: ignore[no-untyped-def]
    rows = {(r["load"], r["kind"]): r for r in answers[10]}
    assert rows[("wb_b", "weekly")]["day_or_time"] == "Fri"
    assert rows[("wb_b", "weekly")]["at_local"] == "06:45"
    assert rows[("wb_a", "one-off")]["kwh"] == "12.0"
