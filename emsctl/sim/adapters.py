"""In-memory adapters over the plant: the same Collector, Actuator and ForecastSource
interfaces as the real Prometheus, Shelly and Viessmann adapters, so the core runs unchanged.

`SimHouse` bundles a plant with its collector and actuators and advances them together; its
forecast is `SimForecast` (emsctl/sim/forecast.py).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Final

from emsctl.config import Config
from emsctl.model import Forecast, LoadId, LoadReading, Snapshot
from emsctl.sim.forecast import SimForecast
from emsctl.sim.plant import Plant
from emsctl.sim.scenario import Scenario

#: Measurements the simulated collector reports, in the order of its sample lists.
_NAMES: Final = ("grid_w", "pv_w", "battery_w", "soc_pct", "compressor_w", "outdoor_c", "dhw_c")
#: Positions in the value lists of `SimCollector.visible` (and its samples).
V_GRID, V_PV, V_BAT, V_SOC, V_COMP, V_OUT, V_DHW = range(7)
#: Which measurements come from the Viessmann exporter (scraped less often).
_VIESSMANN: Final = (V_COMP, V_OUT, V_DHW)
_NONE7: Final[list[float | None]] = [None] * 7
_NEVER: Final[list[float]] = [float("-inf")] * 7


class SimCollector:
    """Measurements as Prometheus would give them: each with its sample time, `lag` minutes
    behind the plant, the Viessmann values refreshed only every `viessmann_scrape_min`
    minutes, and nothing where the scenario's cell was empty (the last sample then ages
    until `control.max_age_s` makes it missing).
    """

    def __init__(self, plant: Plant, config: Config) -> None:
        self.plant = plant
        self.lag = config.sim.measurement_lag_min
        self.scrape = config.sim.viessmann_scrape_min
        self.max_age_s = config.control.max_age_s
        gaps = plant.scenario.gaps
        self._pv_gap = gaps.get("pv_w")
        self._house_gap = gaps.get("house_w")
        self._out_gap = gaps.get("outdoor_c")
        self._origin = plant.scenario.start
        # The latest present sample of each measurement (value, time in s from the origin)
        # as it stood after each of the last lag+1 minutes.
        self._values: list[float | None] = list(_NONE7)
        self._times: list[float] = list(_NEVER)
        self._ring: deque[tuple[list[float | None], list[float]]] = deque(maxlen=self.lag + 1)
        #: Seconds from the origin to the start of the plant's current lap (the demo loops).
        self._lap_s = 0.0
        self.closed = False

    def next_lap(self, shift: timedelta) -> None:
        """The plant starts its scenario again `shift` later: sample times go on from there."""
        self._lap_s += shift.total_seconds()

    def record(self) -> None:
        """Take the samples of the minute the plant just simulated."""
        p = self.plant
        i = p.index - 1
        t = self._lap_s + p.index * 60.0  # samples are stamped at the end of their minute
        values = list(self._values)
        times = list(self._times)
        if self._house_gap is None or not self._house_gap[i]:
            values[V_GRID] = p.grid_w
            times[V_GRID] = t
        if self._pv_gap is None or not self._pv_gap[i]:
            # The inverter's values arrive together; a collector outage loses all of them.
            values[V_PV] = p.pv_w
            values[V_BAT] = p.battery_w
            values[V_SOC] = p.soc_pct
            times[V_PV] = times[V_BAT] = times[V_SOC] = t
        if i % self.scrape == 0:
            values[V_COMP] = p.compressor_w
            values[V_DHW] = p.dhw_c
            times[V_COMP] = times[V_DHW] = t
            if self._out_gap is None or not self._out_gap[i]:
                values[V_OUT] = p.outdoor_c
                times[V_OUT] = t
        self._values = values
        self._times = times
        self._ring.append((values, times))

    def visible(self, now_s: float) -> list[float | None]:
        """The values `collect` would report `now_s` seconds after the scenario start, in
        the order grid, PV, battery, SOC, compressor, outdoor, DHW (for the replay's cheap
        look before a Snapshot is built)."""
        if not self._ring:
            return list(_NONE7)
        values, times = self._ring[0] if len(self._ring) <= self.lag else self._ring[-1 - self.lag]
        max_age = self.max_age_s
        return [
            v if v is not None and now_s - t <= max_age else None
            for v, t in zip(values, times, strict=True)
        ]

    def collect(self, at: datetime, forecast: Forecast | None = None) -> Snapshot:
        """The snapshot at `at` (normally the plant's `now`), with `forecast` attached."""
        if not self._ring:
            return Snapshot(at=at, forecast=forecast)
        values, times = self._ring[0] if len(self._ring) <= self.lag else self._ring[-1 - self.lag]
        now_s = (at - self._origin).total_seconds()
        max_age = self.max_age_s
        seen: list[float | None] = list(_NONE7)
        ages: dict[str, float] = {}
        for k, name in enumerate(_NAMES):
            v = values[k]
            if v is None:
                continue
            age = now_s - times[k]
            ages[name] = age
            if age <= max_age:
                seen[k] = v
        return Snapshot(
            at=at,
            grid_w=seen[V_GRID],
            pv_w=seen[V_PV],
            battery_w=seen[V_BAT],
            soc_pct=seen[V_SOC],
            compressor_w=seen[V_COMP],
            outdoor_c=seen[V_OUT],
            dhw_c=seen[V_DHW],
            ages_s=ages,
            forecast=forecast,
        )

    def close(self) -> None:
        self.closed = True


class SimRelay:
    """A Shelly relay switching one of the plant's loads (SG-Ready contact, a wallbox).

    Honours the dead-man timer like the device: switched on with `deadman_s`, it switches
    itself off that long after the last renewal and then reports source "timer".
    A wallbox with a meter (WB A's Plus 1 PM) reports the power its car draws.
    """

    def __init__(self, load: LoadId, house: SimHouse, *, metered: bool) -> None:
        self.load = load
        self.house = house
        self.metered = metered
        self.attr = {LoadId.SG_READY: "sg_ready", LoadId.WB_A: "wb_a_on", LoadId.WB_B: "wb_b_on"}[
            load
        ]
        self._power_attr = {LoadId.WB_A: "wb_a_w", LoadId.WB_B: "wb_b_w"}.get(load)
        self.source = "init"
        self.deadline: datetime | None = None
        self.switches = 0

    @property
    def on(self) -> bool:
        value: bool = getattr(self.house.plant, self.attr)
        return value

    def read(self) -> LoadReading:
        power = None
        if self.metered and self._power_attr is not None:
            power = float(getattr(self.house.plant, self._power_attr))
        return LoadReading(relay_on=self.on, power_w=power, source=self.source)

    def switch(self, on: bool, *, deadman_s: int | None = None) -> LoadReading:
        if on != self.on:
            self.switches += 1
        setattr(self.house.plant, self.attr, on)
        self.source = "http"
        self.deadline = self.house.now + timedelta(seconds=deadman_s) if on and deadman_s else None
        return self.read()

    def renew(self, deadman_s: int) -> None:
        """Re-arm the running relay's auto-off timer, as the Site's renewal command does."""
        self.source = "http"
        self.deadline = self.house.now + timedelta(seconds=deadman_s)

    def expire(self, now: datetime) -> None:
        """The device's own auto-off timer."""
        if self.deadline is not None and now >= self.deadline:
            setattr(self.house.plant, self.attr, False)
            self.source = "timer"
            self.deadline = None

    def close(self) -> None:
        self.deadline = None


class SimDhwSetpoint:
    """The Viessmann DHW target: on = the boost target, off = the normal target."""

    def __init__(self, house: SimHouse) -> None:
        self.load = LoadId.DHW
        self.house = house
        self.writes = 0

    def read(self) -> LoadReading:
        return LoadReading(relay_on=self.house.plant.dhw_boost)

    def switch(self, on: bool, *, deadman_s: int | None = None) -> LoadReading:
        if on != self.house.plant.dhw_boost:
            self.writes += 1
        self.house.plant.dhw_boost = on
        return self.read()

    def close(self) -> None:
        pass


class SimHouse:
    """A plant with its collector and actuators, advanced one minute at a time."""

    def __init__(self, scenario: Scenario, config: Config, *, loop: bool = False) -> None:
        self.config = config
        #: Start the scenario's days again at its end instead of being done (the demo).
        self.loop = loop
        self.laps = 0
        self.plant = Plant(scenario, config)
        self.collector = SimCollector(self.plant, config)
        meters = {
            load: config.loads.get(load).power_source == "meter"
            for load in (LoadId.SG_READY, LoadId.WB_A, LoadId.WB_B)
        }
        self.relays: dict[LoadId, SimRelay] = {
            load: SimRelay(load, self, metered=meters[load])
            for load in (LoadId.SG_READY, LoadId.WB_A, LoadId.WB_B)
        }
        self.dhw = SimDhwSetpoint(self)
        self.actuators: Mapping[LoadId, SimRelay | SimDhwSetpoint] = {
            LoadId.SG_READY: self.relays[LoadId.SG_READY],
            LoadId.DHW: self.dhw,
            LoadId.WB_A: self.relays[LoadId.WB_A],
            LoadId.WB_B: self.relays[LoadId.WB_B],
        }
        self.forecaster = SimForecast(scenario, config) if config.forecast.enabled else None

    @property
    def now(self) -> datetime:
        return self.plant.now

    @property
    def done(self) -> bool:
        return self.plant.done

    def advance(self) -> None:
        """Simulate one minute: dead-man timers, then the plant, then the samples."""
        for relay in self.relays.values():
            if relay.deadline is not None:
                relay.expire(self.plant.now)
        self.plant.step()
        self.collector.record()
        if self.loop and self.plant.done:
            shift = self.plant.next_lap()
            self.collector.next_lap(shift)
            if self.forecaster is not None:
                self.forecaster.next_lap(shift)
            self.laps += 1

    def snapshot(self) -> Snapshot:
        """What the controller sees now (with the forecast when one is configured)."""
        now = self.plant.now
        fc = self.forecaster.forecast(now) if self.forecaster is not None else None
        return self.collector.collect(now, fc)
