"""One control tick: collect -> evaluate -> step machines -> actuate -> persist -> publish.

The only orchestrator of adapters, site, store and metrics. Nothing an adapter or the store
raises stops a tick: a failing device is marked for that tick and the others go on.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from datetime import time as dt_time
from typing import Protocol

from emsctl import clock
from emsctl.adapters.base import (
    Actuator,
    AdapterError,
    AuthFailed,
    CloudUsage,
    Collector,
    ForecastSource,
)
from emsctl.cars.keeper import CarKeeper
from emsctl.cars.port import CarStorePort
from emsctl.cars.types import MAX_TARGET_KWH, OneOffTarget, WeeklyTarget
from emsctl.config import Config
from emsctl.model import (
    OUTPUT_ON,
    ChargeMode,
    Command,
    Event,
    LoadId,
    LoadReading,
    Mode,
    Override,
    PlanWord,
    Snapshot,
    State,
    Transition,
)
from emsctl.plan_worker import PlanWorker
from emsctl.plausibility import SocMemory, screen, screen_reading
from emsctl.site import Site, TickResult
from emsctl.status import CarSettingError, LoadView, PlanView, StatusReport, UnknownLoad
from emsctl.store import DatabasePort, OverridePort, TickLogPort

log = logging.getLogger(__name__)

#: A difference between wall and monotonic time below this is jitter or NTP slewing.
CLOCK_STEP_TOLERANCE = timedelta(seconds=10)


class StorePort(TickLogPort, OverridePort, DatabasePort, Protocol):
    """What the controller needs of the store: the tick's writes, the overrides, and the
    database file it watches (emsctl.store.Store provides them)."""


class MetricsPort(Protocol):
    """What the controller reports to the metrics exporter (emsctl.metrics.Metrics)."""

    def observe_tick(self, report: StatusReport, result: TickResult, seconds: float) -> None: ...

    def count_error(self, where: str, kind: str) -> None: ...

    def count_command(self, load: LoadId, ok: bool) -> None: ...

    def count_tick_failure(self) -> None: ...

    def set_store_failures(self, n: int) -> None: ...

    def set_cloud(self, service: str, calls: int, budget_remaining: int | None = None) -> None: ...


@dataclass
class Devices:
    """The adapters one controller drives."""

    collector: Collector
    actuators: dict[LoadId, Actuator]
    forecast: ForecastSource | None = None


class Controller:
    """Runs ticks; thread-safe to read `latest()` and call `request_tick()` from the web UI."""

    def __init__(
        self,
        config: Config,
        site: Site,
        devices: Devices,
        *,
        store: StorePort | None = None,
        metrics: MetricsPort | None = None,
        dry_run: bool = False,
        now: Callable[[], datetime] = clock.now,
        monotonic: Callable[[], float] | None = None,
        cars: CarStorePort | None = None,
        planner: PlanWorker | None = None,
    ) -> None:
        self.config = config
        self.site = site
        self.devices = devices
        self.store = store
        self.metrics = metrics
        self.dry_run = dry_run
        self._now = now
        #: With a monotonic clock, wall-clock steps between ticks are found and re-based.
        self._monotonic = monotonic
        self._last_clock: tuple[datetime, float] | None = None
        self._soc_memory = SocMemory(config.control.max_age_s)
        #: Measurements that are implausible right now (one log line per episode).
        self._implausible: set[str] = set()
        self._latest: StatusReport | None = None
        self._lock = threading.Lock()
        self.wake = threading.Event()
        self.ticks = 0
        #: The owner's changes since the last tick, applied at the next tick's start (in order).
        self._changes: list[tuple[LoadId, Override | None]] = []
        #: A new configuration (and its devices, None: keep them) waiting for the next tick.
        self._next_config: tuple[Config, Devices | None] | None = None
        #: Charging by target (rule 17), over the store's car tables.
        self._car_store = cars
        self.cars: CarKeeper | None = CarKeeper(config, cars, now()) if cars is not None else None
        #: The day-ahead plan (rule 19), made off the tick.
        self.planner = planner

    # -- the web UI's handle ------------------------------------------------------------------

    def latest(self) -> StatusReport | None:
        with self._lock:
            return self._latest

    def request_tick(self) -> None:
        self.wake.set()

    def now(self) -> datetime:
        return self._now()

    def set_override(
        self, load: LoadId, mode: Mode, by: str, expires_at: datetime | None = None
    ) -> int | None:
        """The owner's Force on / Force off / Auto for a load, stored before this returns and
        applied at the next tick's start (which is asked for now). Auto also ends a manual
        hold. Returns the stored override's id (None for Auto or without a store).

        Raises UnknownLoad for a load the running configuration does not drive, and the
        store's StoreError when it cannot be stored (then nothing changes).
        """
        config = self.config
        if load not in config.enabled_loads():
            enabled = ", ".join(x.value for x in config.enabled_loads())
            raise UnknownLoad(
                f"load {load.value!r} is not driven by the running configuration "
                f"(enabled: {enabled})"
            )
        now = self._now()
        oid: int | None = None
        override: Override | None = None
        if mode is Mode.AUTO:
            if self.store is not None:
                self.store.clear_override(load, cleared_by=by, at=now)
        else:
            if self.store is not None:
                oid = self.store.add_override(
                    load, mode, created_by=by, created_at=now, expires_at=expires_at
                )
            override = Override(mode, now, expires_at, by)
        with self._lock:
            self._changes.append((load, override))
        log.info("%s: %s by %s", load.value, mode.value, by)
        self.wake.set()
        return oid

    # -- charging by target ----------------------------------------------------------------

    def _car_store_for(self, load: LoadId) -> CarStorePort:
        config = self.config
        cfg = config.loads.get(load)
        if load not in config.enabled_loads() or cfg.car_charging is None:
            raise CarSettingError(
                f"{load.value} does not charge by target "
                f"(loads.{load.value}.charging.enabled is false, or it is not a wallbox)"
            )
        if self._car_store is None:
            raise CarSettingError("charging targets need the database, and EMS runs without one")
        return self._car_store

    def set_car_mode(self, load: LoadId, mode: ChargeMode | None, by: str) -> None:
        """The wallbox's charging mode (None: the config's), applied at the next tick."""
        self._car_store_for(load).set_car_mode(load, mode, by, self._now())
        log.info("%s: charging mode %s by %s", load.value, mode.value if mode else "config", by)
        self.wake.set()

    def set_car_target(
        self, load: LoadId, by_time: datetime | None, energy_wh: float | None, by: str
    ) -> None:
        """The one-off target of the wallbox's current session (`by_time` None: clear it)."""
        store = self._car_store_for(load)
        now = self._now()
        target = one_off_target(by_time, energy_wh, now, by)
        store.set_one_off_target(load, target, by, now)
        log.info("%s: one-off target %s by %s", load.value, target or "cleared", by)
        self.wake.set()

    def set_weekly_target(
        self,
        load: LoadId,
        weekday: int,
        at: dt_time | None,
        energy_wh: float | None,
        by: str,
    ) -> None:
        """One weekday of the wallbox's weekly schedule (`at` None: none that day)."""
        store = self._car_store_for(load)
        entry = weekly_target(weekday, at, energy_wh)
        store.set_weekly_target(load, weekday, entry, by, self._now())
        self.wake.set()

    def end_manual(self, load: LoadId, by: str) -> None:
        """End a person's manual hold (and any override): the load is automatic again."""
        self.set_override(load, Mode.AUTO, by)

    def reconfigure(self, config: Config, devices: Devices | None = None) -> None:
        """Run with `config` (and `devices`, None: keep the current ones) from the next tick's
        start on; each load keeps its state, timers and override."""
        with self._lock:
            self._next_config = (config, devices)
        self.wake.set()

    # -- one tick -------------------------------------------------------------------------------

    def tick(self) -> StatusReport:
        """One full control cycle. Adapter and store failures are contained here."""
        started = time.perf_counter()
        now = self._now()
        errors: dict[str, str] = {}
        # The tick's transitions, commands and sample go to the database in one transaction.
        with self.store.tick() if self.store is not None else nullcontext():
            self._apply_changes(now)
            self._follow_clock_step(now)
            snapshot = self._collect(now, errors)
            readings = self._read_all(errors)
            snapshot = self._screen(snapshot, readings)
            plans = self.cars.plans(now, snapshot, readings) if self.cars is not None else None
            words = self._plan(now, snapshot)
            result = self.site.step(snapshot, readings, now, plans, words)
            self._after_transitions(result.transitions, now)
            self._actuate(result.commands, now, errors)
            if self.store is not None:
                self._check_database(now, errors)
                self.store.record_sample(
                    now, snapshot, self.site.statuses(), surplus_w=result.decision.surplus_w
                )
        seconds = time.perf_counter() - started
        report = self._report(now, snapshot, result, errors, seconds)
        with self._lock:
            self._latest = report
        self.ticks += 1
        if self.metrics is not None:
            self.metrics.observe_tick(report, result, seconds)
            self._cloud_metrics()
        return report

    def _plan(self, now: datetime, snapshot: Snapshot) -> dict[LoadId, PlanWord] | None:
        """Feed the planner this tick's consumption, offer it the inputs, and return the
        plan's words for the engine (None without a planner)."""
        worker = self.planner
        if worker is None:
            return None
        s = snapshot
        if s.pv_w is not None and s.grid_w is not None and s.battery_w is not None:
            worker.planner.profile.add(now, s.pv_w + s.grid_w - s.battery_w)
        worker.offer(now, snapshot, self.site.views(), self.site.statuses)
        return worker.words(now)

    def _follow_clock_step(self, now: datetime) -> None:
        """Re-base every stored time when the wall clock stepped since the last tick.

        NTP setting the clock of a Pi after boot, or a person changing it, must not stretch a
        minimum runtime, lock a load out or end an override early: what counts is the time that
        really passed, which the monotonic clock measures.
        """
        if self._monotonic is None:
            return
        mono = self._monotonic()
        last, self._last_clock = self._last_clock, (now, mono)
        if last is None:
            return
        step = (now - last[0]) - timedelta(seconds=mono - last[1])
        if abs(step) < CLOCK_STEP_TOLERANCE:
            return
        log.warning(
            "wall clock stepped by %+.0f s (%.0f s passed since the last tick); re-basing "
            "runtimes, holds and overrides by the step",
            step.total_seconds(),
            mono - last[1],
        )
        self.site.rebase(step)
        if self.store is not None:
            try:
                self.store.shift_overrides(step, now)
            except Exception as exc:  # the store must never stop control
                log.warning("cannot re-base the stored overrides: %s", exc)

    def _screen(self, snapshot: Snapshot, readings: dict[LoadId, LoadReading]) -> Snapshot:
        """Rule 16: implausible values become missing (readings are screened in place)."""
        limits = self.config.plausibility
        snapshot, bad = screen(snapshot, limits)
        snapshot = self._soc_memory.update(snapshot, "soc_pct" in bad)
        for load, reading in readings.items():
            screened, implausible = screen_reading(reading, limits)
            if implausible:
                bad[f"{load.value}.power_w"] = reading.power_w or 0.0
                readings[load] = screened
        self._note_implausible(bad)
        return snapshot

    def _note_implausible(self, bad: dict[str, float]) -> None:
        """Count every implausible value; log an episode once when it starts and when it ends."""
        for name, value in bad.items():
            if self.metrics is not None:
                self.metrics.count_error(name, "implausible")
            if name not in self._implausible:
                log.warning(
                    "%s: implausible value %r, treated as missing until it is plausible again "
                    "(plausibility.* in the config)",
                    name,
                    value,
                )
        for name in self._implausible - bad.keys():
            log.info("%s: plausible again", name)
        self._implausible = set(bad)

    def _check_database(self, now: datetime, errors: dict[str, str]) -> None:
        """A database deleted or replaced under the daemon is made anew and given the state.

        Without this SQLite goes on writing into the deleted file, and the next start finds
        no state: the owner's overrides gone, EMS's own relays taken for a person's.
        """
        assert self.store is not None
        try:
            problem = self.store.file_problem()
            if problem is None:
                return
            log.error("the database %s; creating it anew with the current state", problem)
            self.store.reopen()
        except Exception as exc:  # the store must never stop control
            log.error("cannot re-create the database: %s; control goes on", exc)
            errors["store"] = f"database gone, cannot re-create it: {exc}"
            return
        if self.metrics is not None:
            self.metrics.count_error("store", "file_replaced")
        self._persist_state(now)

    def _persist_state(self, now: datetime) -> None:
        """Write every load's state and every override in force, as a restart would need."""
        assert self.store is not None
        note = "database re-created while EMS ran: state carried over"
        rows = [
            Transition(
                at=st.since,
                load=load,
                source=st.state,
                target=st.state,
                event="restore",
                reasons=(note,),
            )
            for load, st in self.site.statuses().items()
        ]
        self.store.record_transitions(rows)
        for load, st in self.site.statuses().items():
            ov = st.override
            if ov is not None and ov.mode is not Mode.AUTO and ov.active(now):
                self.store.add_override(
                    load, ov.mode, ov.created_by, ov.created_at, ov.expires_at, note=note
                )
            if st.state is State.MANUAL:
                on = bool(st.reading.relay_on)
                self.store.add_override(
                    load,
                    Mode.FORCE_ON if on else Mode.FORCE_OFF,
                    "by hand (carried over)",
                    st.since,
                    st.manual_until,
                    detected=True,
                    note=note,
                )

    def _cloud_metrics(self) -> None:
        """Call counts of the cloud adapters (they keep plain counters of their own)."""
        if self.metrics is None:
            return
        for device in (self.devices.actuators.get(LoadId.DHW), self.devices.forecast):
            if isinstance(device, CloudUsage):
                self.metrics.set_cloud(device.cloud_service, device.calls_made, device.budget_left)

    def _error(self, errors: dict[str, str], where: str, exc: AdapterError) -> None:
        errors[where] = str(exc)
        if self.metrics is not None:
            self.metrics.count_error(where, exc.kind)

    def _apply_changes(self, now: datetime) -> None:
        """A new configuration first (its loads are the ones overrides apply to), then the
        owner's overrides in the order they were made."""
        with self._lock:
            changes, self._changes = self._changes, []
            next_config, self._next_config = self._next_config, None
        if next_config is not None:
            self._reconfigure(*next_config, now)
        for load, override in changes:
            if load in self.site.loads:
                self.site.set_override(load, override, now)

    def _reconfigure(self, config: Config, devices: Devices | None, now: datetime) -> None:
        site = Site(
            config, now, self.site.statuses(), listeners=self.site.listeners, dry_run=self.dry_run
        )
        site.watch = dict(self.site.watch)
        self.config, self.site = config, site
        if self.cars is not None:
            self.cars.configure(config, now)
        if devices is not None:
            previous, self.devices = self.devices, devices
            close_devices(previous)

    def _collect(self, now: datetime, errors: dict[str, str]) -> Snapshot:
        try:
            snapshot = self.devices.collector.collect(now)
        except AdapterError as exc:
            log.warning("collector: %s", exc)
            self._error(errors, "prometheus", exc)
            snapshot = Snapshot(at=now)
        if self.devices.forecast is not None:
            try:
                snapshot = replace(snapshot, forecast=self.devices.forecast.forecast(now))
            except AdapterError as exc:
                self._error(errors, "forecast", exc)
        return snapshot

    def _read_all(self, errors: dict[str, str]) -> dict[LoadId, LoadReading]:
        readings: dict[LoadId, LoadReading] = {}
        for load, record in self.site.statuses().items():
            if load not in self.devices.actuators:
                # No device to ask: the load is whatever the EMS decided (decide-only loads).
                on = record.commanded_on
                if on is None:
                    on = record.state in OUTPUT_ON
                readings[load] = LoadReading(relay_on=on, source="ems")
        for load, actuator in self.devices.actuators.items():
            try:
                readings[load] = actuator.read()
            except AdapterError as exc:
                self._error(errors, load.value, exc)
                readings[load] = LoadReading(
                    error=str(exc), available=not isinstance(exc, AuthFailed)
                )
        return readings

    def _actuate(self, commands: list[Command], now: datetime, errors: dict[str, str]) -> None:
        for cmd in commands:
            actuator = self.devices.actuators.get(cmd.load)
            if self.dry_run or actuator is None:
                if not cmd.renew:
                    log.info(
                        "%s: would switch %s (dry run): %s",
                        cmd.load.value,
                        "on" if cmd.on else "off",
                        cmd.reason,
                    )
                self.site.confirm(cmd.load, cmd, None, None, now)
                self._record_command(cmd, True, None, 0.0, now)
                continue
            t0 = time.perf_counter()
            try:
                reading = actuator.switch(cmd.on, deadman_s=cmd.deadman_s)
            except AdapterError as exc:
                latency = time.perf_counter() - t0
                self._error(errors, cmd.load.value, exc)
                self.site.confirm(cmd.load, cmd, None, str(exc), now)
                self._record_command(cmd, False, str(exc), latency, now)
                continue
            latency = time.perf_counter() - t0
            ok = reading.relay_on == cmd.on
            err = None if ok else f"read back {reading.relay_on} after switching {cmd.on}"
            self.site.confirm(cmd.load, cmd, reading, err, now)
            self._record_command(cmd, ok, err, latency, now)

    def _record_command(
        self, cmd: Command, ok: bool, error: str | None, latency: float, now: datetime
    ) -> None:
        if self.metrics is not None and not cmd.renew:
            self.metrics.count_command(cmd.load, ok)
        if self.store is not None:
            self.store.record_command(
                cmd.load, cmd.on, cmd.reason, ok, error, latency, now, self.dry_run, renew=cmd.renew
            )

    def _after_transitions(self, transitions: list[Transition], now: datetime) -> None:
        """Detected manual overrides are stored like the owner's, marked as detected."""
        if self.store is None:
            return
        for t in transitions:
            if t.event == Event.DETECT_MANUAL.value:
                record = self.site.status(t.load)
                reading = record.reading
                on = bool(reading.relay_on)
                source = reading.source or "device"
                try:
                    self.store.add_override(
                        t.load,
                        Mode.FORCE_ON if on else Mode.FORCE_OFF,
                        f"by hand ({source})",
                        now,
                        record.manual_until,
                        detected=True,
                        note="; ".join(t.reasons),
                    )
                except Exception as exc:  # the store must never stop control
                    log.warning("cannot store the detected override: %s", exc)

    def _report(
        self,
        now: datetime,
        snapshot: Snapshot,
        result: TickResult,
        errors: dict[str, str],
        seconds: float,
    ) -> StatusReport:
        views: dict[LoadId, LoadView] = {}
        for load, st in self.site.statuses().items():
            v = result.decision.verdicts.get(load)
            ov = st.override
            blocked = None
            if ov is not None and ov.mode is Mode.FORCE_ON and st.state is not State.FORCED_ON:
                blocked = "; ".join(v.reasons) if v else None
            views[load] = LoadView(
                load=load,
                state=st.state,
                since=st.since,
                output_on=st.state in OUTPUT_ON
                or (st.state is State.MANUAL and bool(st.reading.relay_on)),
                reasons=v.reasons if v else (),
                relay_on=st.reading.relay_on,
                power_w=st.reading.power_w,
                source=st.reading.source,
                error=st.reading.error,
                override_mode=ov.mode if ov else None,
                override_until=ov.expires_at if ov else None,
                override_by=ov.created_by if ov else None,
                manual_until=st.manual_until,
                cooldown_until=st.cooldown_until,
                gate_pct=v.gate_pct if v else None,
                blocked_by=blocked,
                car=self.cars.view(load, now) if self.cars is not None else None,
            )
        fc = snapshot.forecast
        return StatusReport(
            at=now,
            snapshot=snapshot,
            loads=views,
            surplus_w=result.decision.surplus_w,
            max_age_s=self.config.control.max_age_s,
            dry_run=self.dry_run,
            tick_ms=seconds * 1000.0,
            errors=errors,
            forecast_remaining_wh=fc.remaining_today_wh if fc else None,
            forecast_fetched_at=fc.fetched_at if fc else None,
            plan=self._plan_view(now),
        )

    def _plan_view(self, now: datetime) -> PlanView | None:
        worker = self.planner
        if worker is None:
            return None
        planner = worker.planner
        # The planner thread swaps `plan` whole: read it once for this view.
        latest = planner.plan
        plan = latest if planner.fresh(latest, now) else None
        runs: tuple[tuple[LoadId, datetime, datetime], ...] = ()
        soc = None
        on_now: frozenset[LoadId] = frozenset()
        failed = planner.failed
        if plan is not None:
            runs = tuple(
                (b.load, plan.slot_start(b.first), plan.slot_start(b.last + 1)) for b in plan.blocks
            )
            i = plan.slot_of(now)
            if 0 <= i < len(plan.soc_pct):
                soc = plan.soc_pct[i]
                on_now = frozenset(b.load for b in plan.blocks if b.first <= i <= b.last)
        elif failed is None:
            failed = "stale" if latest is not None else "no plan yet"
        return PlanView(
            made_at=latest.made_at if latest is not None else None,
            failed=failed,
            compute_s=worker.last_seconds,
            plans_made=planner.made,
            errors=worker.errors,
            runs=runs,
            soc_pct=soc,
            on_now=on_now,
        )

    def switch_all_off(self, now: datetime) -> None:
        """`on_exit: all_off`: switch off every load the EMS drives (not a person's)."""
        for load, st in self.site.statuses().items():
            if st.state not in OUTPUT_ON:
                continue
            cmd = Command(load=load, on=False, reason="EMS stopping (on_exit: all_off)")
            self._actuate([cmd], now, {})

    def close(self) -> None:
        if self.planner is not None:
            self.planner.stop()
        close_devices(self.devices)


def check_energy(energy_wh: float | None) -> None:
    """A target's energy: more than 0, at most MAX_TARGET_KWH."""
    if energy_wh is None or not 0 < energy_wh <= MAX_TARGET_KWH * 1000:
        shown = "nothing" if energy_wh is None else f"{energy_wh / 1000:g} kWh"
        raise CarSettingError(
            f"energy {shown}: expected more than 0 and at most {MAX_TARGET_KWH:g} kWh"
        )


def check_target(by_time: datetime, energy_wh: float | None, now: datetime) -> None:
    """A one-off target: in the future, within a week, with a sensible energy."""
    if by_time.tzinfo is None:
        raise CarSettingError("target time without a time zone")
    if by_time <= now:
        raise CarSettingError(f"target time {by_time.isoformat()} is not in the future")
    if by_time - now > timedelta(days=7):
        raise CarSettingError(f"target time {by_time.isoformat()} is more than a week ahead")
    check_energy(energy_wh)


def close_devices(devices: Devices) -> None:
    """Close the collector's and the actuators' connections; errors are only logged."""
    closers: list[Collector | Actuator] = [devices.collector, *devices.actuators.values()]
    for closer in closers:
        try:
            closer.close()
        except Exception as exc:  # closing must not mask the reason we stop or reload
            log.debug("close: %s", exc)


def one_off_target(
    by_time: datetime | None, energy_wh: float | None, now: datetime, by: str
) -> OneOffTarget | None:
    """The owner's one-off target as given (`by_time` None: clear it), or CarSettingError."""
    if by_time is None:
        return None
    check_target(by_time, energy_wh, now)
    assert energy_wh is not None
    return OneOffTarget(by_time, energy_wh, now, by)


def weekly_target(weekday: int, at: dt_time | None, energy_wh: float | None) -> WeeklyTarget | None:
    """One weekday of the weekly schedule as given (`at` None: none that day), or
    CarSettingError."""
    if not 0 <= weekday <= 6:
        raise CarSettingError(f"weekday {weekday}: expected 0 (Monday) to 6 (Sunday)")
    if at is None:
        return None
    check_energy(energy_wh)
    assert energy_wh is not None
    return WeeklyTarget(weekday, at, energy_wh)
