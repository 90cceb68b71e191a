"""A stand-in for the daemon's controller, as the web UI sees it: a report and a tick request.

It publishes a StatusReport built from model objects and, on each tick, applies the overrides
it finds in the real store the way the controller does: Force on becomes `forced_on` unless
the load is held back (brake, exclusion), Force off becomes `forced_off`, Auto restores the
load's own state. With `tick_delay_s` the tick runs on its own thread a little later, like
the daemon's tick loop, so the page sees a stored-but-not-yet-applied override first.
Charging by target is played by tests.support.fake_cars: the wallboxes' cards get a CarView.
"""

from __future__ import annotations

import threading
from dataclasses import replace
from datetime import datetime, time, timedelta

from emsctl import clock
from emsctl.config import Config
from emsctl.model import OUTPUT_ON, ChargeMode, LoadId, Mode, Snapshot, State
from emsctl.status import LoadView, StatusReport, UnknownLoad
from emsctl.store import Store
from tests.support.fake_cars import FakeCars


def house_snapshot(at: datetime) -> Snapshot:
    """A sunny noon in spring: exporting, battery charging, the compressor value stale."""
    return Snapshot(
        at=at,
        grid_w=-1850.0,
        grid_l1_w=-900.0,
        grid_l2_w=-500.0,
        grid_l3_w=-450.0,
        soc_pct=78.0,
        pv_w=5230.0,
        battery_w=1400.0,
        compressor_w=None,
        outdoor_c=9.5,
        dhw_c=47.0,
        ages_s={
            "grid_w": 12.0,
            "grid_l1_w": 12.0,
            "grid_l2_w": 12.0,
            "grid_l3_w": 12.0,
            "soc_pct": 12.0,
            "pv_w": 12.0,
            "battery_w": 12.0,
            "compressor_w": 540.0,
            "outdoor_c": 95.0,
            "dhw_c": 95.0,
        },
    )


def base_views(at: datetime, loads: list[LoadId]) -> dict[LoadId, LoadView]:
    """Each load in its own (Auto) state."""
    own = {
        LoadId.SG_READY: LoadView(
            load=LoadId.SG_READY,
            state=State.ON,
            since=at - timedelta(minutes=42),
            output_on=True,
            reasons=("soc 78% >= gate 50%", "surplus 3.2 kW >= start 2.0 kW"),
            relay_on=True,
            power_w=None,
            source=None,
            error=None,
            gate_pct=50,
        ),
        LoadId.DHW: LoadView(
            load=LoadId.DHW,
            state=State.COOLDOWN,
            since=at - timedelta(minutes=20),
            output_on=False,
            reasons=("compressor idle for 5m: tank full",),
            relay_on=False,
            power_w=None,
            source=None,
            error=None,
            cooldown_until=at + timedelta(minutes=40),
            gate_pct=50,
        ),
        LoadId.WB_A: LoadView(
            load=LoadId.WB_A,
            state=State.ARMING,
            since=at - timedelta(minutes=2),
            output_on=False,
            reasons=("export 1.9 kW >= start 1.8 kW for 2m00s",),
            relay_on=False,
            power_w=0.0,
            source="init",
            error=None,
            gate_pct=70,
        ),
        LoadId.WB_B: LoadView(
            load=LoadId.WB_B,
            state=State.OFF,
            since=at - timedelta(hours=3),
            output_on=False,
            reasons=("soc 78% < gate 90%",),
            relay_on=False,
            power_w=None,
            source=None,
            error=None,
            gate_pct=90,
        ),
    }
    return {load: own[load] for load in loads}


class FakeController:
    """Implements emsctl.status.ControllerHandle over a real Store."""

    def __init__(
        self,
        config: Config,
        store: Store,
        *,
        tick_delay_s: float | None = None,
        blocked: dict[LoadId, str] | None = None,
        publish: bool = True,
    ) -> None:
        self.config = config
        self.store = store
        self.tick_delay_s = tick_delay_s
        self.blocked = dict(blocked or {})
        self.tick_requests = 0
        self.ticks = 0
        self._lock = threading.Lock()
        self._report: StatusReport | None = None
        self._timers: list[threading.Timer] = []
        #: The controller's clock when a test sets it (None: the wall clock).
        self.clock: datetime | None = None
        self.cars = FakeCars(config, self.now)
        if publish:
            self.tick()

    def now(self) -> datetime:
        """The daemon's controller answers with its own clock: the wall clock here, unless a
        test set `clock` (the demo's simulated time runs apart from the wall clock too)."""
        return clock.now() if self.clock is None else self.clock

    def latest(self) -> StatusReport | None:
        with self._lock:
            return self._report

    def publish(self, report: StatusReport | None) -> None:
        with self._lock:
            self._report = report

    def set_override(
        self, load: LoadId, mode: Mode, by: str, expires_at: datetime | None = None
    ) -> int | None:
        """As the real controller: refuse a load not driven, store, then tick."""
        if load not in self.config.enabled_loads():
            raise UnknownLoad(f"load {load.value!r} is not driven by the running configuration")
        now = self.now()
        oid = None
        if mode is Mode.AUTO:
            self.store.clear_override(load, cleared_by=by, at=now)
        else:
            oid = self.store.add_override(
                load, mode, created_by=by, created_at=now, expires_at=expires_at
            )
        self.request_tick()
        return oid

    def set_car_mode(self, load: LoadId, mode: ChargeMode | None, by: str) -> None:
        self.cars.set_car_mode(load, mode, by)
        self.request_tick()

    def set_car_target(
        self, load: LoadId, by_time: datetime | None, energy_wh: float | None, by: str
    ) -> None:
        self.cars.set_car_target(load, by_time, energy_wh, by)
        self.request_tick()

    def set_weekly_target(
        self, load: LoadId, weekday: int, at: time | None, energy_wh: float | None, by: str
    ) -> None:
        self.cars.set_weekly_target(load, weekday, at, energy_wh, by)
        self.request_tick()

    def request_tick(self) -> None:
        with self._lock:
            self.tick_requests += 1
        if self.tick_delay_s is None:
            self.tick()
        else:
            t = threading.Timer(self.tick_delay_s, self.tick)
            t.daemon = True
            self._timers.append(t)
            t.start()

    def tick(self) -> StatusReport:
        """One tick: read the stored overrides and publish the loads accordingly."""
        now = self.now()
        loads = self.config.enabled_loads()
        views = {
            load: replace(v, car=self.cars.view(load, now))
            for load, v in base_views(now, loads).items()
        }
        overrides = self.store.active_overrides(now)
        for load, ov in overrides.items():
            if load not in views:
                continue
            v = views[load]
            fields = {
                "override_mode": ov.mode,
                "override_until": ov.expires_at,
                "override_by": ov.created_by,
            }
            if ov.mode is Mode.FORCE_ON and load in self.blocked:
                views[load] = replace(v, blocked_by=self.blocked[load], **fields)  # type: ignore[arg-type]
            elif ov.mode is Mode.FORCE_ON:
                views[load] = replace(
                    v,
                    state=State.FORCED_ON,
                    since=ov.created_at,
                    output_on=State.FORCED_ON in OUTPUT_ON,
                    relay_on=True,
                    power_w=2010.0 if load is LoadId.WB_A else None,
                    reasons=("forced on by the owner",),
                    **fields,  # type: ignore[arg-type]
                )
            elif ov.mode is Mode.FORCE_OFF:
                views[load] = replace(
                    v,
                    state=State.FORCED_OFF,
                    since=ov.created_at,
                    output_on=False,
                    relay_on=False,
                    reasons=("forced off by the owner",),
                    **fields,  # type: ignore[arg-type]
                )
        report = StatusReport(
            at=now,
            snapshot=house_snapshot(now),
            loads=views,
            surplus_w=3250.0,
            max_age_s=self.config.control.max_age_s,
            tick_ms=7.5,
        )
        with self._lock:
            self.ticks += 1
            self._report = report
        return report

    def close(self) -> None:
        for t in self._timers:
            t.cancel()
