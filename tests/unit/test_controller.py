"""The controller's tick with in-memory devices and a real SQLite store: faults stay contained,
overrides flow from the store to the site, and the metrics tell what happened."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client import generate_latest

from emsctl.adapters.base import AuthFailed, DeviceUnreachable
from emsctl.config import Config, parse_config
from emsctl.controller import Controller, Devices
from emsctl.metrics import Metrics
from emsctl.model import LoadId, LoadReading, Mode, Snapshot, State
from emsctl.site import Site
from emsctl.status import UnknownLoad
from emsctl.store import Store, StoreError, StoreListener

T0 = datetime(2026, 5, 10, 9, 0, tzinfo=UTC)


class FakeCollector:
    """A Prometheus that answers with settable values, or fails."""

    def __init__(self) -> None:
        self.values: dict[str, float | None] = {
            "grid_w": -5000.0,
            "soc_pct": 80.0,
            "battery_w": 0.0,
            "outdoor_c": 8.0,
            "compressor_w": 0.0,
        }
        self.fail: Exception | None = None

    def collect(self, at: datetime) -> Snapshot:
        if self.fail is not None:
            raise self.fail
        return Snapshot(at=at, **self.values)  # type: ignore[arg-type]

    def close(self) -> None:
        pass


class FakeRelay:
    """A relay that switches when told, or fails the way a device does."""

    def __init__(self, load: LoadId) -> None:
        self.load = load
        self.on = False
        self.fail: Exception | None = None
        self.switches: list[tuple[bool, int | None]] = []

    def read(self) -> LoadReading:
        if self.fail is not None:
            raise self.fail
        return LoadReading(relay_on=self.on, source="http")

    def switch(self, on: bool, *, deadman_s: int | None = None) -> LoadReading:
        if self.fail is not None:
            raise self.fail
        self.on = on
        self.switches.append((on, deadman_s))
        return self.read()

    def close(self) -> None:
        pass


def _config() -> Config:
    return parse_config(
        {
            "loads": {
                "dhw": {"enabled": False},
                "wb_b": {"enabled": False},
                "sg_ready": {"min_on_s": 600},
                "wb_a": {"no_car": {"enabled": False}},
            },
            "control": {"priority": ["sg_ready", "wb_a"], "exclusive": []},
        }
    )


class Rig:
    def __init__(self, store: Store, *, dry_run: bool = False) -> None:
        self.now = T0
        self.config = _config()
        self.collector = FakeCollector()
        self.relays = {load: FakeRelay(load) for load in (LoadId.SG_READY, LoadId.WB_A)}
        self.store = store
        self.metrics = Metrics()
        site = Site(self.config, self.now, listeners=[StoreListener(store)], dry_run=dry_run)
        self.ctl = Controller(
            self.config,
            site,
            Devices(collector=self.collector, actuators=dict(self.relays)),  # type: ignore[arg-type]
            store=store,
            metrics=self.metrics,
            dry_run=dry_run,
            now=lambda: self.now,
        )

    def minutes(self, n: int) -> None:
        for _ in range(n):
            self.ctl.tick()
            self.now += timedelta(minutes=1)

    def metric_text(self) -> str:
        return generate_latest(self.metrics.registry).decode()


@pytest.fixture
def store() -> Iterator[Store]:
    s = Store.temporary()
    yield s
    s.close()


def test_a_morning_of_ticks_switches_with_deadman_and_records_everything(store: Store) -> None:
    rig = Rig(store)
    rig.minutes(12)
    # arm at 09:00, start after on_delay 4 min (09:04), WB A after settle (3 min) at 09:07.
    assert rig.relays[LoadId.SG_READY].switches[0] == (True, 300)
    assert rig.relays[LoadId.WB_A].on
    rows = store.history(since=T0 - timedelta(hours=1), now=rig.now)
    starts = [r for r in rows if r.kind == "transition" and r.target == "on"]
    assert {r.load for r in starts} == {"sg_ready", "wb_a"}
    text = rig.metric_text()
    assert 'ems_load_output_on{load="wb_a"} 1.0' in text
    assert 'ems_commands_total{load="sg_ready",result="ok"} 1.0' in text
    assert "ems_ticks_total 12.0" in text
    # Running relays get a dead-man renewal every tick after the switch-on.
    assert len(rig.relays[LoadId.SG_READY].switches) > 3
    assert all(d == 300 for on, d in rig.relays[LoadId.SG_READY].switches if on)


def test_prometheus_down_is_counted_and_nothing_starts(store: Store) -> None:
    rig = Rig(store)
    rig.collector.fail = DeviceUnreachable("connection refused", device="prometheus")
    rig.minutes(6)
    assert not any(r.on for r in rig.relays.values())
    report = rig.ctl.latest()
    assert report is not None and "prometheus" in report.errors
    assert 'ems_adapter_errors_total{kind="unreachable",where="prometheus"} 6.0' in (
        rig.metric_text()
    )


def test_one_unreachable_relay_does_not_stop_the_other(store: Store) -> None:
    rig = Rig(store)
    rig.relays[LoadId.SG_READY].fail = DeviceUnreachable("timed out", device="sg_ready")
    rig.minutes(8)
    assert rig.relays[LoadId.WB_A].on
    view = rig.ctl.latest().loads[LoadId.SG_READY]  # type: ignore[union-attr]
    assert view.error is not None and "timed out" in view.error


def test_refused_password_shows_the_load_unavailable(store: Store) -> None:
    rig = Rig(store)
    rig.relays[LoadId.WB_A].fail = AuthFailed("wrong password", device="wb_a")
    rig.minutes(2)
    assert rig.ctl.latest().loads[LoadId.WB_A].state is State.UNAVAILABLE  # type: ignore[union-attr]


def test_dry_run_decides_and_records_but_switches_nothing(store: Store) -> None:
    rig = Rig(store, dry_run=True)
    rig.minutes(10)
    assert rig.relays[LoadId.SG_READY].switches == []
    assert rig.ctl.site.status(LoadId.SG_READY).state is State.ON
    cmds = store.commands(since=T0 - timedelta(hours=1)) if hasattr(store, "commands") else []
    assert any(getattr(c, "dry_run", False) for c in cmds)


def test_an_override_is_stored_at_once_and_applied_at_the_next_tick(store: Store) -> None:
    rig = Rig(store)
    rig.minutes(1)
    oid = rig.ctl.set_override(LoadId.WB_A, Mode.FORCE_OFF, "owner", rig.now + timedelta(hours=1))
    # Stored before the call returns (a crash now keeps it), applied at the next tick's start.
    assert oid is not None
    assert store.active_overrides(rig.now)[LoadId.WB_A].mode is Mode.FORCE_OFF
    assert rig.ctl.site.status(LoadId.WB_A).state is not State.FORCED_OFF
    assert rig.ctl.wake.is_set()
    rig.minutes(1)
    assert rig.ctl.site.status(LoadId.WB_A).state is State.FORCED_OFF
    rig.ctl.set_override(LoadId.WB_A, Mode.AUTO, "owner")
    assert LoadId.WB_A not in store.active_overrides(rig.now)
    rig.minutes(1)
    assert rig.ctl.site.status(LoadId.WB_A).state is not State.FORCED_OFF


def test_overrides_are_not_read_back_from_the_store_every_tick(store: Store) -> None:
    """The store is the record, the controller the way in: a row written behind its back
    (only the web UI wrote overrides, and it now calls the controller) changes nothing."""
    rig = Rig(store)
    rig.minutes(1)
    store.add_override(LoadId.WB_A, Mode.FORCE_OFF, "owner", rig.now, None)
    rig.minutes(2)
    assert rig.ctl.site.status(LoadId.WB_A).state is not State.FORCED_OFF


def test_an_override_for_a_load_not_driven_is_refused_and_nothing_is_stored(
    store: Store,
) -> None:
    rig = Rig(store)  # dhw and wb_b are disabled in this config
    with pytest.raises(UnknownLoad, match="'wb_b' is not driven by the running configuration"):
        rig.ctl.set_override(LoadId.WB_B, Mode.FORCE_ON, "owner")
    assert store.active_overrides(rig.now) == {}


def test_an_override_the_store_refuses_changes_nothing(store: Store) -> None:
    rig = Rig(store)
    rig.minutes(1)
    store.close()  # every write fails from here on
    with pytest.raises(StoreError):
        rig.ctl.set_override(LoadId.WB_A, Mode.FORCE_OFF, "owner")
    rig.store = Store.temporary()
    rig.ctl.store = rig.store
    rig.minutes(1)
    assert rig.ctl.site.status(LoadId.WB_A).state is not State.FORCED_OFF


def test_a_person_switching_is_stored_as_a_detected_override_and_auto_ends_it(
    store: Store,
) -> None:
    rig = Rig(store)
    rig.minutes(1)
    rig.relays[LoadId.WB_A].on = True  # someone pressed the button
    rig.minutes(1)
    assert rig.ctl.site.status(LoadId.WB_A).state is State.MANUAL
    recs = store.override_records(rig.now, active_only=True)
    assert [(r.load, r.mode, r.detected) for r in recs] == [(LoadId.WB_A, Mode.FORCE_ON, True)]
    rig.ctl.end_manual(LoadId.WB_A, "owner")  # the owner presses Auto
    assert store.override_records(rig.now, active_only=True) == []
    rig.minutes(1)
    assert rig.ctl.site.status(LoadId.WB_A).state is not State.MANUAL


def test_switch_all_off_turns_off_only_what_the_ems_drives(store: Store) -> None:
    rig = Rig(store)
    rig.minutes(12)
    assert rig.relays[LoadId.SG_READY].on and rig.relays[LoadId.WB_A].on
    rig.ctl.switch_all_off(rig.now)
    assert not rig.relays[LoadId.SG_READY].on and not rig.relays[LoadId.WB_A].on


def _reasons_of(store: Store, load: LoadId, now: datetime) -> list[str]:
    rows = store.history(since=T0 - timedelta(hours=1), now=now)
    return ["; ".join(r.reasons) for r in rows if r.kind == "transition" and r.load == load.value]


def test_a_manual_hold_that_runs_out_is_recorded_as_expired_not_as_the_owners_doing(
    store: Store,
) -> None:
    rig = Rig(store)
    rig.minutes(1)
    rig.relays[LoadId.WB_A].on = True  # someone pressed the button
    rig.minutes(1)
    assert rig.ctl.site.status(LoadId.WB_A).state is State.MANUAL
    rig.minutes(int(rig.config.control.manual_hold_s // 60) + 2)
    assert rig.ctl.site.status(LoadId.WB_A).state is not State.MANUAL
    reasons = _reasons_of(store, LoadId.WB_A, rig.now)
    assert not any("by the owner" in r for r in reasons), reasons
    assert any("manual hold expired" in r for r in reasons), reasons


def test_a_timed_override_that_runs_out_is_recorded_as_ended_not_as_the_owners_doing(
    store: Store,
) -> None:
    rig = Rig(store)
    rig.minutes(1)
    rig.ctl.set_override(LoadId.WB_A, Mode.FORCE_OFF, "owner", rig.now + timedelta(minutes=5))
    rig.minutes(8)
    assert rig.ctl.site.status(LoadId.WB_A).state is not State.FORCED_OFF
    reasons = _reasons_of(store, LoadId.WB_A, rig.now)
    assert not any("set to Auto by the owner" in r for r in reasons), reasons
    assert any("override ended" in r for r in reasons), reasons


def test_no_deadman_renewal_is_tried_after_a_failed_read(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    rig = Rig(store)
    rig.minutes(8)
    relay = rig.relays[LoadId.SG_READY]
    assert relay.on
    tries = 0
    switch = relay.switch

    def counting(on: bool, *, deadman_s: int | None = None) -> LoadReading:
        nonlocal tries
        tries += 1
        return switch(on, deadman_s=deadman_s)

    relay.switch = counting  # type: ignore[method-assign]
    relay.fail = DeviceUnreachable("timed out", device="sg_ready")
    with caplog.at_level("DEBUG", logger="emsctl"):
        rig.minutes(5)
    # Each tick's read failed: no renewal waited out a second timeout.
    assert tries == 0
    relay.fail = None
    caplog.clear()
    rig.minutes(2)
    assert tries >= 1  # renewals again once the device answers


def test_a_failing_command_is_logged_once_until_it_works_again(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    rig = Rig(store)
    rig.collector.values["compressor_w"] = 1500.0  # running: no early release
    rig.minutes(1)
    relay = rig.relays[LoadId.SG_READY]
    read = relay.read
    relay.read = lambda: LoadReading(relay_on=relay.on, source="http")  # type: ignore[method-assign]

    def refuse(on: bool, *, deadman_s: int | None = None) -> LoadReading:
        raise DeviceUnreachable("timed out", device="sg_ready")

    relay.switch = refuse  # type: ignore[method-assign]
    with caplog.at_level("INFO", logger="emsctl.site"):
        rig.minutes(15)
    failed = [r for r in caplog.records if "failed" in r.getMessage()]
    assert len(failed) == 1, [r.getMessage() for r in failed]
    assert failed[0].levelname == "WARNING" and "switching on failed" in failed[0].getMessage()
    del relay.switch
    relay.read = read  # type: ignore[method-assign]
    caplog.clear()
    with caplog.at_level("INFO", logger="emsctl.site"):
        rig.minutes(2)
    assert any("worked again" in r.getMessage() for r in caplog.records)


class CloudRelay(FakeRelay):
    """A device behind a cloud that counts its calls (emsctl.adapters.base.CloudUsage)."""

    cloud_service = "viessmann"
    calls_made = 7
    budget_left = 1443


class CloudForecast:
    cloud_service = "forecast_solar"
    calls_made = 3
    budget_left = None

    def forecast(self, now: datetime) -> None:
        return None


def test_the_cloud_clients_call_counts_are_exported(store: Store) -> None:
    rig = Rig(store)
    rig.ctl.devices.actuators[LoadId.DHW] = CloudRelay(LoadId.DHW)
    rig.ctl.devices.forecast = CloudForecast()  # type: ignore[assignment]
    rig.minutes(1)
    text = rig.metric_text()
    assert 'ems_cloud_calls{service="viessmann"} 7.0' in text
    assert 'ems_cloud_calls{service="forecast_solar"} 3.0' in text
    assert "ems_viessmann_budget_remaining 1443.0" in text


def test_a_tick_writes_its_transitions_commands_and_sample_in_one_transaction(
    store: Store,
) -> None:
    from sqlalchemy import event

    rig = Rig(store)
    rig.minutes(3)
    commits: list[int] = []
    event.listen(store.engine, "commit", lambda _conn: commits.append(1))
    before = store.history(since=T0 - timedelta(hours=1), now=rig.now)
    # SG-Ready starts now (4 minutes on surplus): a transition, a command and the sample.
    rig.minutes(2)
    rows = store.history(since=T0 - timedelta(hours=1), now=rig.now)
    new = [r for r in rows if r.kind == "transition"][: len(rows) - len(before)]
    assert any(r.target == "on" for r in new)
    assert store.commands(since=T0) != []
    assert len(commits) == 2  # one per tick


def _counts(store: Store) -> dict[str, int]:
    with store.engine.connect() as conn:
        return {
            table: conn.exec_driver_sql(f"SELECT count(*) FROM {table}").scalar_one()
            for table in ("transitions", "commands", "samples")
        }


def test_one_tick_with_several_transitions_commits_once(store: Store) -> None:
    from sqlalchemy import event

    rig = Rig(store)
    rig.minutes(1)
    for load in (LoadId.SG_READY, LoadId.WB_A):  # stored now, applied at the next tick's start
        rig.ctl.set_override(load, Mode.FORCE_ON, "owner", rig.now + timedelta(hours=1))
    before = _counts(store)
    commits: list[object] = []
    event.listen(store.engine, "commit", commits.append)
    rig.minutes(1)
    after = _counts(store)
    # Two forced starts: two transitions, two switch-on commands, and the tick's sample ...
    assert {k: after[k] - before[k] for k in after} == {
        "transitions": 2,
        "commands": 2,
        "samples": 1,
    }
    assert len(commits) == 1  # ... in one transaction


def test_a_person_switching_on_counts_as_output_on_although_the_tick_commits_later(
    store: Store,
) -> None:
    rig = Rig(store)
    rig.minutes(1)
    rig.relays[LoadId.WB_A].on = True  # someone pressed the button
    rig.minutes(1)
    with store.engine.connect() as conn:
        rows = conn.exec_driver_sql(
            "SELECT output_on FROM transitions WHERE load = 'wb_a' AND target = 'manual'"
        ).all()
    # The detected override says which way the relay went, on the tick's pending transition.
    assert rows == [(1,)]
