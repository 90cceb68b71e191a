"""Store repository: what each write keeps, overrides' life cycle, kv, forecasts, retention."""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from emsctl.model import (
    LoadId,
    LoadReading,
    LoadStatus,
    Mode,
    Override,
    Snapshot,
    State,
    Transition,
)
from emsctl.store import LoadSample, Store
from emsctl.store.db import PAGE_CACHE_KIB
from emsctl.store.models import db_time

T0 = datetime(2026, 6, 1, 10, 0, tzinfo=UTC)
WA, WB, SG = LoadId.WB_A, LoadId.WB_B, LoadId.SG_READY


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "ems.db"


@pytest.fixture
def store(db: Path) -> Iterator[Store]:
    s = Store.open(db)
    yield s
    s.close()


def rows(db: Path, sql: str) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(db)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def tr(minutes: float, load: LoadId, source: State, target: State, event: str, *reasons: str):
    return Transition(
        at=T0 + timedelta(minutes=minutes),
        load=load,
        source=source,
        target=target,
        event=event,
        reasons=reasons,
        measurements={"soc_pct": 72.04, "grid_w": -2100.46, "pv_w": None},
    )


def test_open_sets_wal_foreign_keys_and_migrates_to_head(store: Store, db: Path) -> None:
    assert rows(db, "PRAGMA journal_mode") == [("wal",)]
    assert rows(db, "SELECT version_num FROM alembic_version") == [("0002",)]
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL


def test_transition_is_stored_as_utc_text_with_reasons_and_compact_measurements(
    store: Store, db: Path
) -> None:
    berlin = datetime(2026, 6, 1, 12, 0, tzinfo=__import__("zoneinfo").ZoneInfo("Europe/Berlin"))
    t = Transition(
        at=berlin,
        load=WA,
        source=State.ARMING,
        target=State.ON,
        event="start",
        reasons=("export 2.1 kW ≥ start 2.0 kW for 4m00s", "soc 72% ≥ gate 70%"),
        measurements={"soc_pct": 72.04, "grid_w": -2100.46, "pv_w": None, "x": float("nan")},
    )
    assert store.record_transitions([t])
    (at, load, source, target, event, reasons, output_on, meas) = rows(
        db,
        "SELECT at, load, source, target, event, reasons, output_on, measurements FROM transitions",
    )[0]
    assert at == "2026-06-01 10:00:00.000000"
    assert (load, source, target, event, output_on) == ("wb_a", "arming", "on", "start", 1)
    assert json.loads(str(reasons)) == list(t.reasons)
    assert json.loads(str(meas)) == {"soc_pct": 72.0, "grid_w": -2100.5}


def test_output_on_column_follows_state_and_manual_relay_reading(store: Store, db: Path) -> None:
    manual_on = Transition(
        at=T0,
        load=WA,
        source=State.OFF,
        target=State.MANUAL,
        event="detect_manual",
        reasons=("switched on by button",),
        measurements={"relay_on": 1.0},
    )
    store.record_transitions(
        [
            tr(0, WA, State.ON, State.DISARMING, "weaken"),
            tr(1, WA, State.DISARMING, State.OFF, "shed"),
            tr(2, WB, State.OFF, State.FORCED_ON, "force_on"),
            tr(3, SG, State.OFF, State.MANUAL, "detect_manual"),
            manual_on,
        ]
    )
    got = rows(db, "SELECT target, output_on FROM transitions ORDER BY id")
    assert got == [("disarming", 1), ("off", 0), ("forced_on", 1), ("manual", None), ("manual", 1)]


def test_naive_timestamp_is_refused_counted_and_not_raised(store: Store) -> None:
    naive = Transition(
        at=datetime(2026, 6, 1, 10, 0), load=WA, source=State.OFF, target=State.ARMING, event="arm",
        reasons=(),
    )  # fmt: skip
    assert store.record_transitions([naive]) is False
    assert store.failures == 1
    assert store.failures_by_op["record_transitions"] == 1
    assert "naive" in (store.last_error or "")


def test_command_keeps_result_error_and_latency_but_not_successful_renewals(
    store: Store, db: Path
) -> None:
    assert store.record_command(WA, True, "start", True, None, 0.0123, T0, False)
    assert store.record_command(WB, False, "shed", False, "timeout after 5 s", 5.002, T0, True)
    assert store.record_command(WA, True, "renew", True, None, 0.01, T0, renew=True)
    assert store.record_command(WA, True, "renew", False, "unreachable", 5.0, T0, renew=True)
    got = rows(db, 'SELECT load, "on", ok, error, latency_ms, dry_run, renew FROM commands')
    assert got == [
        ("wb_a", 1, 1, None, 12.3, 0, 0),
        ("wb_b", 0, 0, "timeout after 5 s", 5002.0, 1, 0),
        ("wb_a", 1, 0, "unreachable", 5000.0, 0, 1),
    ]
    recs = store.commands(load=WB)
    assert len(recs) == 1
    assert recs[0].latency_s == pytest.approx(5.002)
    assert recs[0].dry_run and not recs[0].ok


def test_sample_stores_measurements_rounded_and_one_row_per_load(store: Store, db: Path) -> None:
    snap = Snapshot(at=T0, grid_w=-2000.4, soc_pct=71.26, pv_w=4000.6, outdoor_c=4.44)
    statuses = {
        WA: LoadStatus(WA, State.ON, T0, reading=LoadReading(relay_on=True, power_w=1980.4)),
        WB: LoadStatus(WB, State.OFF, T0, reading=LoadReading(relay_on=False)),
        SG: LoadStatus(SG, State.OFF, T0),
    }
    assert store.record_sample(T0, snap, statuses, surplus_w=2100.7)
    (sample,) = store.samples(T0 - timedelta(minutes=1))
    assert sample.at == T0
    assert sample.values["grid_w"] == -2000.0
    assert sample.values["soc_pct"] == 71.3
    assert sample.values["outdoor_c"] == 4.4
    assert sample.values["battery_w"] is None  # missing stays missing, never zero
    assert sample.values["surplus_w"] == 2101.0
    assert sample.loads["wb_a"].state == "on"
    assert sample.loads["wb_a"].output_on is True
    assert sample.loads["wb_a"].power_w == 1980.0
    assert sample.loads["sg_ready"].output_on is None
    assert rows(db, "SELECT count(*) FROM sample_loads") == [(3,)]


def test_samples_are_returned_oldest_first_within_the_window(store: Store) -> None:
    for m in range(5):
        at = T0 + timedelta(minutes=m)
        store.record_sample(at, Snapshot(at=at, grid_w=float(m)), {})
    got = store.samples(T0 + timedelta(minutes=1), T0 + timedelta(minutes=4))
    assert [s.values["grid_w"] for s in got] == [1.0, 2.0, 3.0]


def test_samples_share_equal_load_states_and_read_values_like_a_dict(store: Store) -> None:
    """A day of samples for the chart: equal states are one object, not 1,440 copies."""
    for m in range(4):
        at = T0 + timedelta(minutes=m)
        wb_on = m >= 2
        statuses = {
            SG: LoadStatus(SG, State.ON, T0, reading=LoadReading(relay_on=True)),
            WA: LoadStatus(
                WA,
                State.ON if wb_on else State.OFF,
                at,
                reading=LoadReading(relay_on=wb_on, power_w=2000.0 if wb_on else 0.0),
            ),
        }
        store.record_sample(at, Snapshot(at=at, grid_w=-float(m), pv_w=3000.0), statuses)
    a, b, c, d = store.samples(T0)
    assert a.loads is b.loads and c.loads is d.loads  # equal sets of states: one mapping
    assert a.loads["sg_ready"] is c.loads["sg_ready"]  # equal states: one LoadSample
    assert a.loads != c.loads
    assert c.loads["wb_a"] == LoadSample(state="on", output_on=True, power_w=2000.0)
    values = d.values
    assert values["grid_w"] == -3.0 and values["pv_w"] == 3000.0
    assert values["battery_w"] is None and values.get("battery_w", 1.0) is None
    assert values.get("no_such", 1.0) == 1.0
    with pytest.raises(KeyError):
        values["no_such"]
    assert dict(values) == {**dict.fromkeys(values), "grid_w": -3.0, "pv_w": 3000.0}
    assert values == dict(values) and len(values) == len(dict(values))


def test_prune_deletes_samples_past_retention_with_their_load_rows(db: Path) -> None:
    with Store.open(db, retention_days=30) as store:
        for days in (31, 30, 29, 1):
            at = T0 - timedelta(days=days)
            store.record_sample(at, Snapshot(at=at), {WA: LoadStatus(WA, State.OFF, at)})
        store.record_command(WA, True, "renew", False, "down", 1.0, T0 - timedelta(days=40),
                             renew=True)  # fmt: skip
        store.record_command(WA, True, "start", True, None, 0.1, T0 - timedelta(days=40))
        assert store.prune(T0)
    # Exactly 30 days old is not older than the retention: kept.
    assert rows(db, "SELECT count(*) FROM samples") == [(3,)]
    assert rows(db, "SELECT count(*) FROM sample_loads") == [(3,)]
    assert rows(db, "SELECT reason FROM commands") == [("start",)]  # decisions stay


def test_kv_round_trip_and_overwrite(store: Store) -> None:
    assert store.kv_get("viessmann.budget") is None
    assert store.kv_put("viessmann.budget", '{"calls": 3}', T0)
    assert store.kv_put("viessmann.budget", '{"calls": 4}', T0 + timedelta(minutes=1))
    assert store.kv_get("viessmann.budget") == '{"calls": 4}'
    with store.engine.connect() as conn:  # one row, stamped with the second write
        assert conn.exec_driver_sql("SELECT key, updated_at FROM kv").all() == [
            ("viessmann.budget", db_time(T0 + timedelta(minutes=1)))
        ]
    assert store.kv_delete("viessmann.budget")
    assert store.kv_get("viessmann.budget") is None


def test_latest_forecast_per_source_and_prune_keeps_the_newest(store: Store) -> None:
    assert store.latest_forecast("fs:49,8") is None
    store.put_forecast("fs:49,8", T0 - timedelta(days=40), '{"old": true}')
    store.put_forecast("fs:49,8", T0 - timedelta(days=35), '{"newer": true}')
    store.put_forecast("other", T0 - timedelta(days=50), '{"other": true}')
    store.prune(T0)
    assert store.latest_forecast("fs:49,8") == (T0 - timedelta(days=35), '{"newer": true}')
    assert store.latest_forecast("other") == (T0 - timedelta(days=50), '{"other": true}')
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM forecasts").scalar() == 2


# --------------------------------------------------------------------------- overrides


def test_override_is_active_until_it_expires(store: Store) -> None:
    store.add_override(WB, Mode.FORCE_ON, "ui:anna", T0, T0 + timedelta(hours=1))
    assert store.active_overrides(T0 + timedelta(minutes=59)) == {
        WB: Override(Mode.FORCE_ON, T0, T0 + timedelta(hours=1), "ui:anna")
    }
    assert store.active_overrides(T0 + timedelta(hours=1)) == {}


def test_new_override_supersedes_the_active_one_and_records_who(store: Store) -> None:
    first = store.add_override(WB, Mode.FORCE_ON, "ui:anna", T0, None)
    second = store.add_override(WB, Mode.FORCE_OFF, "ui:ben", T0 + timedelta(minutes=5), None)
    assert second != first
    active = store.active_overrides(T0 + timedelta(minutes=6))
    assert active[WB].mode is Mode.FORCE_OFF
    recs = store.override_records(active_only=False, load=WB)
    old = next(r for r in recs if r.id == first)
    assert old.cleared_by == "ui:ben"
    assert old.cleared_at == T0 + timedelta(minutes=5)


def test_clear_override_ends_it_and_says_who(store: Store) -> None:
    store.add_override(WA, Mode.FORCE_ON, "ui:anna", T0, None)
    assert store.clear_override(WA, "ui:ben", T0 + timedelta(minutes=3)) == 1
    assert store.clear_override(WA, "ui:ben", T0 + timedelta(minutes=4)) == 0
    assert store.active_overrides(T0 + timedelta(minutes=5)) == {}
    (rec,) = store.override_records(active_only=False)
    assert (rec.cleared_by, rec.cleared_at) == ("ui:ben", T0 + timedelta(minutes=3))


def test_detected_override_is_kept_but_not_handed_to_the_engine(store: Store) -> None:
    store.add_override(WA, "manual", "device", T0, T0 + timedelta(hours=4), detected=True,
                       note="switched on by button")  # fmt: skip
    assert store.active_overrides(T0 + timedelta(hours=1)) == {}
    (rec,) = store.override_records(T0 + timedelta(hours=1))
    assert rec.detected and rec.mode == "manual" and rec.override is None
    assert rec.note == "switched on by button"


@pytest.mark.parametrize(
    ("mode", "detected", "expires"),
    [
        (Mode.AUTO, False, None),
        ("manual", False, None),
        ("sideways", True, None),
        (Mode.FORCE_ON, False, T0 - timedelta(seconds=1)),
    ],
)
def test_bad_override_is_refused_with_value_error(
    store: Store, mode: str, detected: bool, expires: datetime | None
) -> None:
    with pytest.raises(ValueError):
        store.add_override(WA, mode, "ui", T0, expires, detected=detected)
    assert store.override_records(active_only=False) == []


# --------------------------------------------------------------------------- history


def test_history_merges_transitions_and_override_life_newest_first(store: Store) -> None:
    store.record_transitions(
        [
            tr(0, WA, State.OFF, State.ARMING, "arm", "export 2.1 kW"),
            tr(4, WA, State.ARMING, State.ON, "start", "export 2.1 kW for 4m"),
        ]
    )
    store.add_override(WB, Mode.FORCE_ON, "ui:anna", T0 + timedelta(minutes=1),
                       T0 + timedelta(minutes=31))  # fmt: skip
    store.add_override(WA, Mode.FORCE_OFF, "ui:anna", T0 + timedelta(minutes=10), None)
    store.clear_override(WA, "ui:ben", T0 + timedelta(minutes=20))
    got = store.history(now=T0 + timedelta(hours=1))
    assert [(r.at - T0, r.load, r.kind, r.event, r.by) for r in got] == [
        (timedelta(minutes=31), "wb_b", "override_expired", "expired", None),
        (timedelta(minutes=20), "wb_a", "override_cleared", "cleared", "ui:ben"),
        (timedelta(minutes=10), "wb_a", "override", "set", "ui:anna"),
        (timedelta(minutes=4), "wb_a", "transition", "start", None),
        (timedelta(minutes=1), "wb_b", "override", "set", "ui:anna"),
        (timedelta(minutes=0), "wb_a", "transition", "arm", None),
    ]
    assert got[3].reasons == ("export 2.1 kW for 4m",)
    assert got[3].measurements == {"soc_pct": 72.0, "grid_w": -2100.5}


def test_history_filters_by_load_and_time_and_pages(store: Store) -> None:
    store.record_transitions(
        [tr(m, WA if m % 2 else WB, State.OFF, State.ARMING, "arm") for m in range(10)]
    )
    only_a = store.history(WA, now=T0 + timedelta(hours=1))
    assert [r.at.minute for r in only_a] == [9, 7, 5, 3, 1]
    window = store.history(since=T0 + timedelta(minutes=3), until=T0 + timedelta(minutes=6),
                           now=T0)  # fmt: skip
    assert [r.at.minute for r in window] == [5, 4, 3]
    page2 = store.history(limit=3, offset=3, now=T0)
    assert [r.at.minute for r in page2] == [6, 5, 4]


def test_an_override_not_yet_expired_has_no_expiry_row(store: Store) -> None:
    store.add_override(WB, Mode.FORCE_ON, "ui", T0, T0 + timedelta(hours=1))
    assert [r.kind for r in store.history(now=T0 + timedelta(minutes=30))] == ["override"]


def test_temporary_store_is_removed_on_close() -> None:
    store = Store.temporary()
    path = Path(store.path)
    assert path.exists()
    store.record_transitions([tr(0, WA, State.OFF, State.ARMING, "arm")])
    store.close()
    assert not path.parent.exists()


def test_every_connection_keeps_a_small_page_cache(store: Store) -> None:
    """The daemon keeps its connections for years: with SQLite's default of 2 MB each, the
    cache would fill with every page the ticks write."""
    with store.engine.connect() as a, store.engine.connect() as b:
        for conn in (a, b):
            assert conn.exec_driver_sql("PRAGMA cache_size").scalar() == -PAGE_CACHE_KIB
    assert PAGE_CACHE_KIB <= 1024


def test_memory_store_is_shared_across_threads() -> None:
    import threading

    with Store.open(":memory:") as store:
        t = threading.Thread(
            target=lambda: store.record_transitions([tr(0, WA, State.OFF, State.ARMING, "arm")])
        )
        t.start()
        t.join()
        assert len(store.history(now=T0)) == 1


def test_detected_override_tells_the_manual_transition_which_way_the_relay_went(
    store: Store, db: Path
) -> None:
    store.record_transitions([tr(0, WA, State.ON, State.MANUAL, "detect_manual")])
    store.add_override(WA, Mode.FORCE_ON, "by hand (button)", T0, T0 + timedelta(hours=4),
                       detected=True)  # fmt: skip
    store.record_transitions([tr(10, WB, State.OFF, State.MANUAL, "detect_manual")])
    store.add_override(WB, Mode.FORCE_OFF, "by hand (app)", T0 + timedelta(minutes=10), None,
                       detected=True)  # fmt: skip
    assert rows(db, "SELECT load, output_on FROM transitions ORDER BY id") == [
        ("wb_a", 1),
        ("wb_b", 0),
    ]
    assert store.active_overrides(T0 + timedelta(minutes=11)) == {}  # the machine's, not ours


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root: a command run with sudo")
def test_a_database_created_by_root_belongs_to_the_state_directorys_owner(tmp_path: Path) -> None:
    # `sudo emsctl ...` before the service (a dynamic user) ever ran: the service must be
    # able to write the database it finds.
    state = tmp_path / "state"
    state.mkdir()
    os.chown(state, 61234, 61235)
    Store.open(state / "ems.db").close()
    info = (state / "ems.db").stat()
    assert (info.st_uid, info.st_gid) == (61234, 61235)
