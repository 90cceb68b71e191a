"""Charging by target for the house's wallboxes: each tick, watch each car's draw, keep its
charging session (in the store), learn its habits from the ended sessions and hand the
engine a plan (emsctl.model.CarPlan). The daemon's controller and the replay both use it.

A relay wallbox sees a car only while the relay is on, so while no car is known to be
there the plan keeps the relay on (`awaiting`): a car that comes draws at once and is seen
within a tick; one that need not charge now is then held (switched off at once), and
charged on surplus or from its target's latest start on. A session ends when the car stops
drawing with the relay on (full, or gone while charging), or when the relay comes on for it
and it draws nothing (gone while held: "not found", counted), or when it stayed off past
its target (presumed gone).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TypeVar

from emsctl.cars.draw import STEP_SHARE, DrawWatch
from emsctl.cars.habits import Habits, learn
from emsctl.cars.plan import Target, target_in_force
from emsctl.cars.port import CarStorePort
from emsctl.cars.types import CarSettings, ChargingSession, SessionEnd, TargetSource
from emsctl.config import CarCharging, Config, LoadConfig
from emsctl.engine.target import latest_start
from emsctl.model import (
    CarPlan,
    ChargeMode,
    Forecast,
    LoadId,
    LoadReading,
    Snapshot,
)
from emsctl.status import CarView

log = logging.getLogger(__name__)

T = TypeVar("T")


def _safely(call: Callable[[], T], fallback: T) -> T:
    """A store read or write that fails is logged; control goes on without it."""
    try:
        return call()
    except Exception as exc:  # the store must never stop control
        log.warning("car charging: the store failed: %s", exc)
        return fallback


#: A session held (relay off) this long past its target's deadline is presumed gone.
GONE_AFTER = timedelta(hours=1)
#: A change of the known loads' power that makes a tick useless for judging an estimated draw.
KNOWN_STEP_W = 500.0
#: An estimated draw shorter than this that stops by itself was not a car.
MIN_ESTIMATED_S = 600.0
#: The longest gap between two ticks counted as charging time (a longer one is an outage).
MAX_GAP_S = 300.0
#: How long after a car came to the relay kept on for it a hold is still "at once".
HOLD_FOR = timedelta(seconds=180)
#: How often an open session's energy is written while the car draws.
SAVE_EVERY = timedelta(minutes=5)
#: How far ahead a quiet tick must be sure nothing falls due.
MAX_GAP = timedelta(seconds=MAX_GAP_S)


@dataclass(slots=True)
class _Car:
    """What the keeper knows of one wallbox between ticks."""

    load: LoadId
    cfg: LoadConfig
    charging: CarCharging
    watch: DrawWatch
    session: ChargingSession | None = None
    habits: Habits = field(default_factory=Habits)
    settings: CarSettings = field(default_factory=CarSettings)
    #: The plan of the last tick asked to keep the relay on for a car to come.
    awaiting: bool = False
    #: A car came to the relay kept on for it: until then it is held at once if it need not
    #: charge (the measurements show its draw a scrape later than the relay's meter).
    hold_until: datetime | None = None
    probes_failed: int = 0
    #: Estimated draws that the step down at switch-off showed to be no car.
    false_draws: int = 0
    last_seen: datetime | None = None
    #: When the relay's last run began (the draw watch forgets it at switch-off).
    run_since: datetime | None = None
    #: When the open session was last written to the store.
    saved_at: datetime | None = None
    target: Target | None = None
    #: What `target` was resolved from: it holds until one of these changes or it passes.
    target_key: tuple[object, ...] = ()
    plan: CarPlan | None = None


class CarKeeper:
    """The wallboxes' charging by target, over a CarStorePort."""

    def __init__(self, config: Config, store: CarStorePort, now: datetime) -> None:
        self.store = store
        self.config = config
        self.cars: dict[LoadId, _Car] = {}
        self._known_w: float | None = None
        self.configure(config, now)

    # -- set-up ---------------------------------------------------------------------------

    def configure(self, config: Config, now: datetime) -> None:
        """(Re)read the config; a wallbox keeps its session and draw watch across a reload."""
        self.config = config
        cars: dict[LoadId, _Car] = {}
        for load in config.enabled_loads():
            cfg = config.loads.get(load)
            charging = cfg.car_charging
            if charging is None:
                continue
            old = self.cars.get(load)
            metered = cfg.power_source == "meter"
            below = cfg.no_car_rule.below_w if cfg.no_car_rule is not None else 100.0
            if old is not None and old.watch.metered == metered:
                old.cfg, old.charging = cfg, charging
                old.watch.nominal_w, old.watch.below_w = cfg.nominal_w, below
                cars[load] = old
                continue
            car = _Car(load, cfg, charging, DrawWatch(cfg.nominal_w, metered, below))
            car.session = self._open_session(load)
            self._relearn(car, now)
            cars[load] = car
        self.cars = cars

    def _open_session(self, load: LoadId) -> ChargingSession | None:
        def read() -> ChargingSession | None:
            return self.store.open_session(load)

        return _safely(read, None)

    def _relearn(self, car: _Car, now: datetime) -> None:
        since = now - timedelta(days=car.charging.learn_days)

        def read() -> list[ChargingSession]:
            return self.store.car_sessions(car.load, since, 10_000)

        sessions: list[ChargingSession] = _safely(read, [])
        car.habits = learn(sessions, car.charging, self.config.control.tz, now)

    # -- the tick -------------------------------------------------------------------------

    def plans(
        self, now: datetime, snapshot: Snapshot, readings: dict[LoadId, LoadReading]
    ) -> dict[LoadId, CarPlan]:
        """Observe this tick's draws, keep the sessions, and make each wallbox's plan."""
        rest = self._rest_w(snapshot, readings)
        out: dict[LoadId, CarPlan] = {}
        for load, car in self.cars.items():
            car.settings = self._settings(car)
            reading = readings.get(load)
            self._observe(car, now, snapshot, reading, rest)
            car.plan = out[load] = self._plan(car, now, snapshot)
        return out

    def _settings(self, car: _Car) -> CarSettings:
        def read() -> CarSettings:
            return self.store.car_settings(car.load)

        return _safely(read, car.settings)

    def _rest_w(self, snap: Snapshot, readings: dict[LoadId, LoadReading]) -> float | None:
        """The house's consumption less what EMS knows the power of (the compressor, a
        metered wallbox), for the draw of a wallbox without a meter; None in a tick where
        one of those changed by kilowatts: the meters answer at once, the house's
        measurements a scrape later, so the difference would look like a car."""
        known = snap.compressor_w or 0.0
        for load, car in self.cars.items():
            r = readings.get(load)
            if car.watch.metered and r is not None and r.power_w is not None:
                known += r.power_w
        last, self._known_w = self._known_w, known
        if snap.grid_w is None or snap.pv_w is None:
            return None
        if last is not None and abs(known - last) >= KNOWN_STEP_W:
            return None
        return snap.pv_w + snap.grid_w - (snap.battery_w or 0.0) - known

    def _observe(
        self,
        car: _Car,
        now: datetime,
        snap: Snapshot,
        reading: LoadReading | None,
        rest: float | None,
    ) -> None:
        relay = reading.relay_on if reading is not None and reading.reachable else None
        meter = reading.power_w if reading is not None else None
        watch = car.watch
        watch.observe(now, relay, meter, rest)
        if watch.on_since is not None:
            car.run_since = watch.on_since
        dt = 0.0 if car.last_seen is None else (now - car.last_seen).total_seconds()
        car.last_seen = now
        if not relay:
            car.hold_until = None
        s = car.session
        if (
            watch.off_verdict is False
            and s is not None
            and car.run_since is not None
            and s.started_at >= car.run_since
        ):
            # The house's consumption did not fall when the relay went off: what looked like
            # a car was another load starting.
            car.false_draws += 1
            s.energy_wh = s.solar_wh = 0.0
            self._end(car, s, SessionEnd.NO_CAR, s.started_at, now)
            return
        if watch.drawing:
            if s is None:
                s = car.session = self._open(car, now)
                if car.awaiting:
                    car.hold_until = now + HOLD_FOR
            power = watch.power_w or car.cfg.nominal_w
            since = watch.drawing_since
            if since is not None and since < now and s.last_draw_at < since:
                # The draw began before it was confirmed: those minutes were charging too.
                dt = (now - since).total_seconds()
            self._account(car, s, now, power, dt, snap)
        elif s is not None and relay and watch.drawing is False:
            drew_in_run = watch.on_since is not None and s.last_draw_at >= watch.on_since
            short = (s.last_draw_at - s.started_at).total_seconds() < MIN_ESTIMATED_S
            if drew_in_run and s.estimated and short:
                # Minutes of an estimated draw that then stopped: a house load, not a car.
                car.false_draws += 1
                s.energy_wh = s.solar_wh = 0.0
                self._end(car, s, SessionEnd.NO_CAR, s.started_at, now)
            elif drew_in_run:
                self._end(car, s, SessionEnd.STOPPED, s.last_draw_at, now)
            else:
                car.probes_failed += 1
                log.info("%s: switched on for the car, it drew nothing: gone", car.load.value)
                self._end(car, s, SessionEnd.NOT_FOUND, now, now)
        elif (
            s is not None
            and relay is False
            and s.deadline is not None
            and now >= s.deadline + GONE_AFTER
        ):
            self._end(car, s, SessionEnd.DEADLINE, s.deadline, now)

    def _open(self, car: _Car, now: datetime) -> ChargingSession:
        target = self._target(car, now, arrived=now)
        s = ChargingSession(
            load=car.load,
            started_at=now,
            last_draw_at=now,
            estimated=car.watch.estimated,
            deadline=target.deadline,
            target_wh=target.energy_wh,
            target_source=target.source,
        )
        log.info(
            "%s: a car draws: session started (target %s, %.1f kWh, %s)",
            car.load.value,
            target.deadline.isoformat(timespec="minutes"),
            target.energy_wh / 1000.0,
            target.source.value,
        )
        return s

    def _end(
        self, car: _Car, s: ChargingSession, how: SessionEnd, at: datetime, now: datetime
    ) -> None:
        s.ended_at = at
        s.ended_by = how
        self._save(s)
        car.session = None
        log.info(
            "%s: session ended (%s), %.1f kWh%s",
            car.load.value,
            how.value,
            s.energy_wh / 1000.0,
            " (estimated)" if s.estimated else "",
        )
        one = car.settings.one_off
        if one is not None and one.set_at <= now:
            # A one-off target is for the session it was set in.
            def clear() -> None:
                self.store.set_one_off_target(car.load, None, "ems", now)

            _safely(clear, None)
            car.settings = CarSettings(car.settings.mode, None, car.settings.weekly)
        self._relearn(car, now)

    def _save(self, s: ChargingSession) -> None:
        def write() -> int:
            return self.store.save_session(s)

        _safely(write, 0)

    def _target(self, car: _Car, now: datetime, *, arrived: datetime | None) -> Target:
        return target_in_force(
            car.settings,
            car.habits,
            car.charging,
            self.config.control.tz,
            now,
            arrived=arrived,
        )

    def _plan(self, car: _Car, now: datetime, snapshot: Snapshot) -> CarPlan:
        s = car.session
        mode = car.settings.mode or car.charging.mode
        key = (car.settings, s.started_at if s else None, id(car.habits))
        target = car.target
        if _held_past(car, now, key):
            # Held through its target's time: the car is presumed gone GONE_AFTER later
            # (_observe). Following the next target instead would hold the relay off for a
            # car that may have left, and no car coming after it would be seen.
            assert s is not None and s.deadline is not None
            source = s.target_source or TargetSource.DEFAULT
            target = car.target = Target(s.deadline, s.target_wh or 0.0, source)
        elif target is None or key != car.target_key or now >= target.deadline:
            target = car.target = self._target(car, now, arrived=s.started_at if s else None)
            car.target_key = key
            if s is not None and (s.deadline, s.target_wh) != (target.deadline, target.energy_wh):
                # The session is charged for the target in force: the owner's change, or the
                # next one once a target has passed.
                s.deadline, s.target_wh = target.deadline, target.energy_wh
                s.target_source = target.source
                self._save(s)
        got = s.energy_wh if s is not None else 0.0
        need = max(0.0, target.energy_wh - got)
        awaiting = s is None and mode in (ChargeMode.SOLAR, ChargeMode.SOLAR_TARGET)
        car.awaiting = awaiting
        return CarPlan(
            mode=mode,
            deadline=target.deadline if mode is ChargeMode.SOLAR_TARGET and s else None,
            need_wh=need,
            sun_ahead=_sun_ahead(snapshot, target, need, now, car.charging.sun_share),
            source=target.source.value,
            drawing=car.watch.drawing,
            power_w=car.watch.power_w,
            awaiting=awaiting,
            hold=car.hold_until is not None and now <= car.hold_until,
        )

    # -- the replay's quiet ticks ----------------------------------------------------------

    def rest_w(
        self, grid: float | None, pv: float | None, battery: float | None, known: float
    ) -> float | None:
        """`_rest_w` on bare values, without remembering anything (for `quiet`)."""
        if grid is None or pv is None:
            return None
        last = self._known_w
        if last is not None and abs(known - last) >= KNOWN_STEP_W:
            return None
        return pv + grid - (battery or 0.0) - known

    def quiet(
        self,
        load: LoadId,
        now: datetime,
        meter_w: float | None,
        rest: float | None,
        forecast: Callable[[], Forecast | None],
    ) -> str:
        """What a tick would change for this wallbox's car: "" when something, else "awaiting"
        (no car, the relay kept on, none coming now), "held" (a car held with the relay off,
        nothing due before the next tick) or "charging" (a car drawing on and on; whether the
        rules may stop it, the replay's QuietTicks judge). The replay skips a tick only when
        every load is quiet, and then calls `skipped`."""
        car = self.cars[load]
        w = car.watch
        if w.off_verdict is not None or w._off_at is not None or w._rising:
            return ""
        s = car.session
        if s is not None and w._was_on and w.drawing:
            return "charging" if _draws_on(car, now, meter_w, rest) else ""
        if s is None:
            return "awaiting" if _none_coming(car, meter_w, rest) else ""
        return "held" if self._nothing_due(car, s, now, forecast) else ""

    def _nothing_due(
        self,
        car: _Car,
        s: ChargingSession,
        now: datetime,
        forecast: Callable[[], Forecast | None],
    ) -> bool:
        """A held car (relay off) whose charge does not fall due before the next tick."""
        if car.watch._was_on or s.deadline is None or now >= s.deadline + GONE_AFTER - MAX_GAP:
            return False
        plan = car.plan
        if plan is None or not plan.sun_ahead or car.target is None:
            return False
        start = latest_start(plan, car.cfg, car.charging)
        if start is not None and now >= start - MAX_GAP:
            return False
        if car.target.deadline - now <= timedelta(hours=24) + MAX_GAP:
            # The forecast may end the wait on any tick: only with room to spare (the PV
            # still to come falls by at most a few hundred Wh in the gap).
            fc = forecast()
            share = car.charging.sun_share
            if fc is not None and fc.remaining_today_wh - 1000.0 < share * plan.need_wh:
                return False
        return True

    def skipped(
        self,
        now: datetime,
        rest: float | None,
        known: float,
        meters: dict[LoadId, float | None],
        grid: float | None,
        battery: float | None,
    ) -> None:
        """A tick the replay skipped: what `plans` would have noted of it (for a charging car
        its energy too)."""
        self._known_w = known
        for load, car in self.cars.items():
            dt = 0.0 if car.last_seen is None else (now - car.last_seen).total_seconds()
            car.last_seen = now
            w = car.watch
            w._prev_at, w._now = w._now, now
            if rest is not None:
                w._last_w = rest
                if not w._was_on:
                    w._base_w = rest
                elif w.drawing and not w.metered:
                    w._low = False
            s = car.session
            if s is not None and w._was_on and w.drawing:
                if w.metered:
                    w.power_w = meters.get(load)
                power = w.power_w or car.cfg.nominal_w
                snap = Snapshot(at=now, grid_w=grid, battery_w=battery)
                self._account(car, s, now, power, dt, snap)

    def _account(
        self,
        car: _Car,
        s: ChargingSession,
        now: datetime,
        power: float,
        dt: float,
        snap: Snapshot,
    ) -> None:
        """A tick of charging: the session's energy, its part from surplus, the last draw."""
        wh = power * min(dt, MAX_GAP_S) / 3600.0
        s.energy_wh += wh
        s.solar_wh += wh * _solar_share(snap, power)
        s.last_draw_at = now
        if s.id is None or car.saved_at is None or (now - car.saved_at) >= SAVE_EVERY:
            # A write a tick would cost the database a commit a minute for little: a
            # restart loses at most these minutes of the session's energy.
            self._save(s)
            car.saved_at = now

    # -- for the owner --------------------------------------------------------------------

    def view(self, load: LoadId, now: datetime) -> CarView | None:
        car = self.cars.get(load)
        if car is None:
            return None
        s = car.session
        plan = car.plan
        target = car.target
        mode = car.settings.mode or car.charging.mode
        start = latest_start(plan, car.cfg, car.charging) if plan is not None else None
        finish = None
        if plan is not None and target is not None and s is not None:
            power = car.watch.power_w or car.cfg.nominal_w
            begin = max(now, start) if start is not None and not car.watch.drawing else now
            finish = begin + timedelta(hours=plan.need_wh / power) if plan.need_wh > 0 else now
        return CarView(
            mode=mode,
            mode_from="owner" if car.settings.mode is not None else "config",
            target_source=target.source if target else None,
            deadline=target.deadline if target else None,
            target_wh=target.energy_wh if target else None,
            need_wh=plan.need_wh if plan else 0.0,
            latest_start=start,
            expected_finish=finish,
            session_started=s.started_at if s else None,
            session_wh=s.energy_wh if s else None,
            estimated=car.watch.estimated,
            drawing=car.watch.drawing,
            learned=car.habits.describe(),
            learned_days=tuple(
                (d, h.energy_wh)
                for d, h in sorted(car.habits.days.items())
                if h.energy_wh is not None
            ),
            one_off=car.settings.one_off,
            weekly=car.settings.weekly,
            battery_kwh=car.charging.battery_kwh,
            probes_failed=car.probes_failed,
            gone_at=_gone_at(car, now),
        )


def _gone_at(car: _Car, now: datetime) -> datetime | None:
    """When a session held through its target's time ends as gone (None: it is not)."""
    s = car.session
    if s is None or s.deadline is None or now < s.deadline or car.watch._was_on:
        return None
    return s.deadline + GONE_AFTER


def _held_past(car: _Car, now: datetime, key: tuple[object, ...]) -> bool:
    """The open session's target has passed with the relay off, and the owner changed
    nothing since (a restart counts as no change)."""
    if _gone_at(car, now) is None:
        return False
    return not car.target_key or key[0] == car.target_key[0]


def _sun_ahead(snap: Snapshot, target: Target, need_wh: float, now: datetime, share: float) -> bool:
    """Whether there is surplus to wait for before the target: the forecast's PV still to
    come today against the car's need (a target beyond tomorrow has another day of sun).
    Without a forecast (none configured, or none fetched) there is nothing to base the wait
    on: the car charges as it comes, from the surplus first while there is some."""
    if target.deadline - now > timedelta(hours=24):
        return True
    fc = snap.forecast
    if fc is None:
        return False
    return fc.remaining_today_wh >= share * need_wh


def _draws_on(car: _Car, now: datetime, meter_w: float | None, rest: float | None) -> bool:
    """A charging car that goes on drawing this tick: no hold pending, no step down, its
    meter (or the house's consumption) still showing it."""
    w = car.watch
    if car.hold_until is not None and now <= car.hold_until + MAX_GAP:
        return False
    if w.metered:
        return meter_w is not None and meter_w >= w.below_w
    if rest is None:
        return True
    if w._low or rest < STEP_SHARE * w.nominal_w:
        return False
    last = w._last_w
    return last is None or not w._is_step(last - rest)


def _none_coming(car: _Car, meter_w: float | None, rest: float | None) -> bool:
    """No car at the relay kept on for one, and none coming this tick."""
    w = car.watch
    if not car.awaiting or not w._was_on or w.drawing is not False:
        return False
    if w.metered:
        return meter_w is not None and meter_w < w.below_w
    last = w._last_w
    return rest is not None and last is not None and not w._is_step(rest - last)


def _solar_share(snap: Snapshot, power: float) -> float:
    """The share of the car's power this tick that came from surplus (not from the grid or
    the battery)."""
    if snap.grid_w is None or power <= 0:
        return 0.0
    bought = max(0.0, snap.grid_w) + max(0.0, -(snap.battery_w or 0.0))
    return max(0.0, min(1.0, (power - bought) / power))
