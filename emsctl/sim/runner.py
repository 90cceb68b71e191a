"""Replay a scenario through the plant: once with the real Site (engine and machines) driving
the in-memory adapters, once as the no-EMS baseline, and compare.
"""

from __future__ import annotations

import logging
import time
from array import array
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from datetime import time as dtime

from emsctl.adapters.base import AdapterError
from emsctl.cars.keeper import CarKeeper
from emsctl.cars.memory import MemoryCarStore
from emsctl.cars.types import OneOffTarget
from emsctl.config import Config, LoadConfig, WallboxConfig
from emsctl.engine import effective_gate, forecast_shift
from emsctl.engine.facts import due_key
from emsctl.model import (
    ChargeMode,
    Forecast,
    LoadId,
    LoadReading,
    PlanWord,
    Snapshot,
    State,
    Transition,
)
from emsctl.planner.driver import Planner
from emsctl.planner.types import Block
from emsctl.sim.adapters import V_BAT, V_COMP, V_GRID, V_OUT, V_PV, V_SOC, SimHouse, SimRelay
from emsctl.sim.plant import BUFFER, DHW, Plant
from emsctl.sim.report import Kpis, Report, kpis
from emsctl.sim.scenario import Scenario
from emsctl.site import LoadFacts, Site

log = logging.getLogger(__name__)

#: Called with the number of minutes simulated so far.
Progress = Callable[[int], None]
#: How many minutes pass between progress calls.
PROGRESS_EVERY = 1440


class Trace:
    """Minute series of one window of a run, for the plot: PV, house (all consumption), grid,
    SOC and each load's output."""

    def __init__(self, first: int, count: int) -> None:
        self.first = first
        self.last = first + count
        self.index: array[int] = array("l")
        self.pv_w: array[float] = array("d")
        self.consumption_w: array[float] = array("d")
        self.house_w: array[float] = array("d")
        self.grid_w: array[float] = array("d")
        self.soc_pct: array[float] = array("d")
        self.outputs: dict[LoadId, array[int]] = {load: array("b") for load in LoadId}
        self.draws: dict[LoadId, array[int]] = {load: array("b") for load in LoadId}

    def record(self, p: Plant) -> None:
        i = p.index - 1
        if not self.first <= i < self.last:
            return
        self.index.append(i)
        self.pv_w.append(p.pv_w - p.curtailed_w)
        self.house_w.append(p.house_w)
        self.consumption_w.append(p.house_w + p.heat_pump_w + p.wb_a_w + p.wb_b_w)
        self.grid_w.append(p.grid_w)
        self.soc_pct.append(p.soc_pct)
        o = self.outputs
        o[LoadId.SG_READY].append(p.sg_ready)
        o[LoadId.DHW].append(p.dhw_boost)
        o[LoadId.WB_A].append(p.wb_a_on)
        o[LoadId.WB_B].append(p.wb_b_on)
        d = self.draws
        d[LoadId.SG_READY].append(p.sg_ready and p.mode == BUFFER)
        d[LoadId.DHW].append(p.dhw_boost and p.mode == DHW)
        d[LoadId.WB_A].append(p.wb_a_w > 0)
        d[LoadId.WB_B].append(p.wb_b_w > 0)


@dataclass
class RunResult:
    """One run: its KPIs, the plant it ended with, and (EMS run) the transitions."""

    name: str
    kpis: Kpis
    plant: Plant
    wall_s: float
    transitions: list[Transition] = field(default_factory=list)
    trace: Trace | None = None
    command_errors: int = 0
    #: EMS run: ticks left out because nothing could change (QuietTicks).
    skipped_ticks: int = 0
    #: EMS run with charging by target: the sessions and settings it kept.
    cars: MemoryCarStore | None = None
    keeper: CarKeeper | None = None
    #: EMS run with the planner: when each plan was made and its runs.
    plans: list[tuple[datetime, tuple[Block, ...]]] = field(default_factory=list)


def run_baseline(
    scenario: Scenario,
    config: Config,
    *,
    trace: Trace | None = None,
    progress: Progress | None = None,
) -> RunResult:
    """No EMS: thermostats at normal setpoints, cars charge at full power from plug-in."""
    t0 = time.perf_counter()
    plant = Plant(scenario, config)
    if trace is None and progress is None:
        plant.run_baseline()
    else:
        a_plug = scenario.values["car_a_plugged"]
        b_plug = scenario.values["car_b_plugged"]
        for i in range(scenario.minutes):
            plant.wb_a_on = a_plug[i] > 0.5
            plant.wb_b_on = b_plug[i] > 0.5
            plant.step()
            if trace is not None:
                trace.record(plant)
            if progress is not None and plant.index % PROGRESS_EVERY == 0:
                progress(plant.index)
    wall = time.perf_counter() - t0
    return RunResult("baseline", kpis(plant, config.tariff), plant, wall, trace=trace)


_OFF = State.OFF
#: How far ahead a quiet tick must be sure a charge for a target goes on.
_GAP = timedelta(minutes=5)
_ON = State.ON
_COOLDOWN = State.COOLDOWN

#: Events that may end a run before its minimum runtime (docs/decision-logic.md rules 5, 6, 10, 11).
_EARLY = frozenset({"release", "brake"})


class _Collect:
    """Transition listener keeping every transition of the run, and telling the plant's
    tallies which off-switchings were early releases or brakes."""

    def __init__(self, plant: Plant) -> None:
        self.plant = plant
        self.transitions: list[Transition] = []

    def on_transition(self, t: Transition) -> None:
        self.transitions.append(t)
        if str(t.event) in _EARLY:
            self.plant.tallies[t.load].exempt = True


class QuietTicks:
    """Says when a tick cannot change anything, so the replay may skip the Site for it.

    The design allows it ("ticks where nothing can change need not send events"). The test is
    deliberately narrow: fresh grid and SOC data, no timed condition being watched, no override
    and no command in flight, and every load either off (or in a cooldown that has not ended)
    with a start impossible, or a wallbox on inside its fallback window with nothing there that
    could stop it. A start is impossible when the emergency brake holds (it blocks every start,
    the fallback's too unless `fallback.beats_brake`), or the load is outside its fallback
    window and its SOC gate (the lowest the forecast could make it), its start threshold or (SG-
    Ready) the outdoor limit is not met. A wallbox charging in its window keeps running unless
    the window ends, the brake holds without `beats_brake`, or an exclusive peer is on without
    `ignores_exclusion`; the car-not-charging rule does not watch it there. The in-memory
    devices change only on our commands and their own dead-man timers, which a skipped tick
    renews (`renew` lists the relays) as the Site's renewal command would, so no manual change
    can go unseen. tests/unit/test_sim_runner.py checks that a replay with skipping makes
    exactly the transitions of one without.
    """

    def __init__(self, site: Site, config: Config) -> None:
        self.site = site
        self.config = config
        self.brake_soc = config.control.brake_soc
        self.skipped = 0
        self._tz = config.control.tz
        # Per load: its config and, for a wallbox with a fallback, a table of the local
        # minutes of the day inside its window.
        self.loads: list[tuple[LoadId, LoadConfig, bytearray | None]] = []
        #: Loads whose night window goes on under the brake (fallback.beats_brake).
        self._beats_brake: set[LoadId] = set()
        #: Loads whose window charging no exclusive peer can stop (no peer, or
        #: fallback.ignores_exclusion).
        self._unbound: set[LoadId] = set()
        #: Relays on in their window on the last quiet tick, with their dead-man time.
        self.renew: list[tuple[LoadId, int]] = []
        for load in config.enabled_loads():
            cfg = config.loads.get(load)
            window = None
            if isinstance(cfg, WallboxConfig) and cfg.fallback.enabled:
                fb = cfg.fallback
                window = bytearray(fb.covers(dtime(m // 60, m % 60)) for m in range(1440))
                if fb.beats_brake:
                    self._beats_brake.add(load)
                peers = any(load in group for group in config.control.exclusive)
                if fb.ignores_exclusion or not peers:
                    self._unbound.add(load)
            self.loads.append((load, cfg, window))
        self._offset_hour = -1
        self._offset_s = 0
        #: The snapshot `check` had to build this tick, if any.
        self.made: Snapshot | None = None
        #: Wallboxes charging by target, and what the car keeper says of each this tick
        #: (CarKeeper.quiet): "awaiting", "held", or "" when the tick may change something.
        self.car_loads: frozenset[LoadId] = frozenset()
        self.car_quiet: Callable[[LoadId], str] = lambda load: ""
        self._due_keys = frozenset(due_key(load) for load in config.enabled_loads())
        #: The plan's word on each load this tick (rule 19): a planned load starts on less.
        self.words: Mapping[LoadId, PlanWord] = {}

    def _charges_on(self, load: LoadId, m: LoadFacts, braked: bool, now: datetime) -> bool:
        """Whether a wallbox charging for its target (or in mode now) goes on through the
        next tick whatever the surplus: nothing the rules watch can stop it there."""
        charging = self.config.loads.get(load).car_charging
        plan = m.plan
        if charging is None or plan is None or not charging.ignores_exclusion:
            return False
        if braked and not charging.beats_brake:
            return False
        if plan.mode is ChargeMode.NOW:
            return True
        deadline = plan.deadline
        return (
            plan.mode is ChargeMode.SOLAR_TARGET
            and deadline is not None
            and now + _GAP < deadline
            and self.site.watch.get(due_key(load)) == deadline
        )

    def _local_minute(self, now: datetime) -> int:
        ts = int(now.timestamp())
        hour = ts // 3600
        if hour != self._offset_hour:  # the zone's offset changes only on the hour
            off = now.astimezone(self._tz).utcoffset()
            self._offset_s = int(off.total_seconds()) if off is not None else 0
            self._offset_hour = hour
        return ((ts + self._offset_s) // 60) % 1440

    def __call__(self, snapshot: Snapshot, now: datetime) -> bool:
        """Whether the tick with this snapshot is quiet."""
        return self.check(
            snapshot.grid_w,
            snapshot.soc_pct,
            snapshot.battery_w,
            snapshot.outdoor_c,
            now,
            lambda: snapshot,
        )

    def check(
        self,
        grid: float | None,
        soc: float | None,
        battery: float | None,
        outdoor: float | None,
        now: datetime,
        snapshot: Callable[[], Snapshot],
    ) -> bool:
        """The same test on the bare values; `snapshot()` is called only when the forecast's
        gate shift must be known, and its result kept in `made` for the tick."""
        if grid is None or soc is None:
            return False
        watch = self.site.watch
        # A target's due memory (a deadline, not a timer) leaves a tick quiet; other watched
        # conditions are timers running out.
        if watch and (len(watch) > len(self._due_keys) or not watch.keys() <= self._due_keys):
            return False
        braked = soc < self.brake_soc
        surplus = -grid + (battery or 0.0)
        shift = -1.0  # computed once, when first needed
        minute = -1
        models = self.site.views()
        renew = self.renew
        renew.clear()
        for load, cfg, window in self.loads:
            m = models[load]
            if m.override is not None or m.command_pending:
                return False
            state = m.state
            if load in self.car_loads:
                # Charging by target: an awaiting relay stays on whatever the brake and the
                # exclusion say; a held car may start only as any load that is off.
                car = self.car_quiet(load)
                if state == _ON and car == "awaiting":
                    if cfg.device.deadman_s:
                        renew.append((load, cfg.device.deadman_s))
                    continue
                if state == _ON and car == "charging" and self._charges_on(load, m, braked, now):
                    if cfg.device.deadman_s:
                        renew.append((load, cfg.device.deadman_s))
                    continue
                if state != _OFF or car != "held":
                    return False
            elif state == _ON:
                if window is None or load not in self._unbound:
                    return False
                if braked and load not in self._beats_brake:
                    return False
                if minute < 0:
                    minute = self._local_minute(now)
                if not window[minute]:
                    return False
                if cfg.device.deadman_s:
                    renew.append((load, cfg.device.deadman_s))
                continue
            if state == _COOLDOWN:
                if m.cooldown_until is None or now >= m.cooldown_until:
                    return False
                continue
            if state != _OFF:
                return False
            if braked and load not in self._beats_brake:
                continue
            if window is not None:
                if minute < 0:
                    minute = self._local_minute(now)
                if window[minute]:
                    return False
            threshold = cfg.start_threshold_w
            word = self.words.get(load)
            if word is not None and word.on:
                threshold = min(threshold, word.start_w)
            if surplus < threshold:
                continue
            if shift < 0:
                snap = self.made = snapshot()
                shift = forecast_shift(snap, self.config)[0] if snap.forecast else 0.0
            if soc < min(cfg.gate_pct, effective_gate(cfg, self.config, shift)):
                continue
            max_out = cfg.outdoor_limit_c
            if max_out is not None and outdoor is not None and outdoor > max_out:
                continue
            return False
        self.skipped += 1
        return True


def tick_minutes(config: Config) -> int:
    """The control interval in whole scenario minutes (the plant steps one minute)."""
    return max(1, round(config.control.interval_s / 60.0))


def run_ems(
    scenario: Scenario,
    config: Config,
    *,
    trace: Trace | None = None,
    progress: Progress | None = None,
    skip_quiet: bool = True,
) -> RunResult:
    """The Site (engine and machines) drives the simulated house every
    `control.interval_s` (rounded to whole minutes; the default is every minute).

    `skip_quiet` leaves out the ticks where nothing can change (see QuietTicks)."""
    t0 = time.perf_counter()
    house = SimHouse(scenario, config)
    plant = house.plant
    collected = _Collect(plant)
    site = Site(config, house.now, listeners=[collected])
    cars = MemoryCarStore()
    keeper: CarKeeper | None = CarKeeper(config, cars, house.now)
    if keeper is not None and not keeper.cars:
        keeper = None
    owner = _OwnerPlans(scenario, config, cars) if config.sim.owner == "plans" else None
    enabled = config.enabled_loads()
    actuators = [(load, house.actuators[load]) for load in enabled]
    errors = 0
    advance = house.advance
    snapshot = house.snapshot
    step = site.step
    confirm = site.confirm
    quiet = QuietTicks(site, config) if skip_quiet else None
    meters: dict[LoadId, float | None] = {}
    rest: float | None = None
    tick_now = plant.now
    if quiet is not None and keeper is not None:
        quiet.car_loads = frozenset(keeper.cars)
        metered = [load for load, car in keeper.cars.items() if car.watch.metered]
        car_quiet = keeper.quiet

        forecaster = house.forecaster

        def forecast() -> Forecast | None:
            return forecaster.forecast(tick_now) if forecaster is not None else None

        def check_car(load: LoadId) -> str:
            return car_quiet(load, tick_now, meters.get(load), rest, forecast)

        quiet.car_quiet = check_car
    every = tick_minutes(config)
    planning = _Planning(config, site, house) if config.planner.enabled else None
    visible = house.collector.visible
    relays = {load: act for load, act in house.actuators.items() if isinstance(act, SimRelay)}
    for _ in range(scenario.minutes):
        advance()
        index = plant.index
        now: datetime = plant.now
        tick_now = now
        skip = index % every != 0
        if planning is not None:
            planning.minute(now, skip)
            if quiet is not None:
                quiet.words = planning.words
        if not skip and quiet is not None:
            # A cheap look at the bare values first: most ticks need no Snapshot at all.
            quiet.made = None
            v = visible(index * 60.0)
            if keeper is not None:
                known = v[V_COMP] or 0.0
                for load in metered:
                    meters[load] = power = relays[load].read().power_w
                    known += power or 0.0
                rest = keeper.rest_w(v[V_GRID], v[V_PV], v[V_BAT], known)
            skip = quiet.check(v[V_GRID], v[V_SOC], v[V_BAT], v[V_OUT], now, snapshot)
            if skip:
                for load, deadman_s in quiet.renew:
                    relays[load].renew(deadman_s)
                if keeper is not None:
                    keeper.skipped(now, rest, known, meters, v[V_GRID], v[V_BAT])
        if skip:
            if trace is not None:
                trace.record(plant)
            if progress is not None and index % PROGRESS_EVERY == 0:
                progress(index)
            continue
        snap = (quiet.made if quiet is not None else None) or snapshot()
        readings = {load: act.read() for load, act in actuators}
        plans = None
        if keeper is not None:
            if owner is not None:
                owner.tell(index, now)
            plans = keeper.plans(now, snap, readings)
        result = step(snap, readings, now, plans, planning.words if planning else None)
        for cmd in result.commands:
            act = house.actuators[cmd.load]
            reading: LoadReading | None
            try:
                reading = act.switch(cmd.on, deadman_s=cmd.deadman_s)
                error = None
            except AdapterError as exc:  # the sim's own adapters do not fail; kept for parity
                reading, error = None, str(exc)
                errors += 1
            confirm(cmd.load, cmd, reading, error, now)
        if trace is not None:
            trace.record(plant)
        if progress is not None and plant.index % PROGRESS_EVERY == 0:
            progress(plant.index)
    wall = time.perf_counter() - t0
    return RunResult(
        "ems",
        kpis(plant, config.tariff),
        plant,
        wall,
        transitions=collected.transitions,
        trace=trace,
        command_errors=errors,
        skipped_ticks=quiet.skipped if quiet is not None else 0,
        cars=cars if keeper is not None else None,
        keeper=keeper,
        plans=planning.made if planning is not None else [],
    )


class _Planning:
    """Rule 19 in the replay: the planner on the daemon's clock, fed only with what the
    daemon would know (the forecast as it stands, the consumption measured so far)."""

    def __init__(self, config: Config, site: Site, house: SimHouse) -> None:
        self.planner = Planner(config)
        self.profile = self.planner.profile
        self.site = site
        self.house = house
        self.plant = house.plant
        self.words: dict[LoadId, PlanWord] = {}
        self.made: list[tuple[datetime, tuple[Block, ...]]] = []
        self._slot = -1
        self.tz = config.control.tz
        self.refresh = timedelta(seconds=config.forecast.refresh_s)
        self._fc: Forecast | None = None
        self._fc_next = datetime.min.replace(tzinfo=UTC)

    def minute(self, now: datetime, skip: bool) -> None:
        """The minute just simulated enters the profile; on a tick, plan when due."""
        p = self.plant
        self.profile.add(now - _MINUTE, p.house_w + p.heat_pump_w + p.wb_a_w + p.wb_b_w)
        if skip:
            return
        planner = self.planner
        forecaster = self.house.forecaster
        fc = self._fc
        if forecaster is not None and (fc is None or now >= self._fc_next):
            # The forecast changes only when it is fetched again (refresh_s, local midnight).
            fc = self._fc = forecaster.forecast(now)
            if fc is not None:
                local = now.astimezone(self.tz)
                midnight = datetime.combine(local.date() + _DAY, dtime(0), tzinfo=self.tz)
                self._fc_next = min(fc.fetched_at + self.refresh, midnight)
        views = self.site.views()
        slot = int(now.timestamp()) // 900
        if planner.due(now, fc, views):
            plan = planner.update(now, self.house.snapshot(), views)
            if plan is not None:
                self.made.append((now, plan.blocks))
        elif slot == self._slot:
            return
        self._slot = slot
        self.words = planner.words(now)


_MINUTE = timedelta(minutes=1)
_DAY = timedelta(days=1)


class _OwnerPlans:
    """`sim.owner: plans`: at each plug-in the owner sets the session's true departure and
    need as a one-off target (what an owner who plans every trip would tell EMS)."""

    def __init__(self, scenario: Scenario, config: Config, cars: MemoryCarStore) -> None:
        self.cars = cars
        self.scenario = scenario
        self.columns = [
            (LoadId.WB_A, scenario.values["car_a_plugged"], scenario.values["car_a_need_wh"]),
            (LoadId.WB_B, scenario.values["car_b_plugged"], scenario.values["car_b_need_wh"]),
        ]
        self.done = -1

    def tell(self, index: int, now: datetime) -> None:
        """Set the targets of the plug-ins since the last call (up to minute `index`)."""
        for i in range(self.done + 1, min(index + 1, self.scenario.minutes)):
            for load, plugged, need in self.columns:
                if plugged[i] > 0.5 and (i == 0 or plugged[i - 1] <= 0.5):
                    leave = i
                    while leave < len(plugged) and plugged[leave] > 0.5:
                        leave += 1
                    target = OneOffTarget(self.scenario.time(leave), need[i], now, "owner")
                    self.cars.set_one_off_target(load, target, "owner", now)
        self.done = max(self.done, index)


def compare(ems: RunResult, baseline: RunResult, scenario: Scenario) -> Report:
    return Report(
        scenario=scenario.name,
        minutes=scenario.minutes,
        runs={"ems": ems.kpis, "baseline": baseline.kpis},
        wall_s={"ems": ems.wall_s, "baseline": baseline.wall_s},
    )
