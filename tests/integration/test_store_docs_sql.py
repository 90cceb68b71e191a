"""The SQL that docs/operations.md ("Database") gives the owner runs in the real `sqlite3`
shell against a real EMS database and answers the question it claims to answer."""

from __future__ import annotations

import csv
import io
import re
import subprocess
from datetime import timedelta
from pathlib import Path

import pytest

from emsctl import clock
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
    assert len(database_queries()) == 7


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
