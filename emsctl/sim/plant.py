"""The simulated house, stepped one minute at a time: PV, inverter, battery, heat pump, cars.

Inputs come from a scenario row and from the four outputs the controller drives (SG-Ready
contact, DHW boost target, the two wallbox relays). State lives in plain floats because the
replay steps a year of minutes; the model and its parameters are described in
docs/simulator.md.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from emsctl.config import Config
from emsctl.model import LoadId
from emsctl.sim.scenario import Scenario

#: Heat-pump modes: what the compressor serves this minute.
IDLE, BUFFER, DHW = 0, 1, 2
_MIN = 1.0 / 60.0  # one minute in hours: W x _MIN = Wh
#: A car with less room than this is full (sums of minute energies leave float dust).
_FULL_WH = 1e-6


@dataclass(slots=True)
class LoadTally:
    """Runtime, energy and switching of one load's output over a run.

    A cycle is one stretch of minutes with the output on; it is short when it ended (the
    output went off) before `min_on_min` minutes, unless the controller marked its end as an
    early release or brake (`exempt`), which the rules allow.
    """

    min_on_min: float
    on: bool = False
    minutes: int = 0
    energy_wh: float = 0.0
    switch_ons: int = 0
    short_cycles: int = 0
    released_early: int = 0
    exempt: bool = False
    on_since: int = 0
    cycles_min: list[int] = field(default_factory=list)
    #: The minute of each switch-on (for the switch-ons per day).
    on_minutes: list[int] = field(default_factory=list)

    def edge(self, on: bool, minute: int) -> None:
        """The output changed at the start of `minute`."""
        if on:
            self.switch_ons += 1
            self.on_since = minute
            self.on_minutes.append(minute)
        else:
            ran = minute - self.on_since
            self.cycles_min.append(ran)
            if ran < self.min_on_min:
                if self.exempt:
                    self.released_early += 1
                else:
                    self.short_cycles += 1
        self.exempt = False
        self.on = on


@dataclass(slots=True)
class Totals:
    """Energy sums of a run, Wh. `pv` is the PV potential (curtailment included)."""

    pv: float = 0.0
    house: float = 0.0
    heat_pump: float = 0.0
    backup: float = 0.0
    wallbox: float = 0.0
    imported: float = 0.0
    exported: float = 0.0
    curtailed: float = 0.0
    battery_loss: float = 0.0
    car_wanted: float = 0.0
    car_delivered: float = 0.0
    heat_delivered: float = 0.0
    dhw_delivered: float = 0.0
    heating_violation_min: int = 0
    dhw_violation_min: int = 0


@dataclass(slots=True)
class CarTally:
    """One car's sessions as the scenario has them: how many, and the ones that left with
    energy still wanted (a missed target), each as (plug-in minute, leave minute, need Wh,
    short Wh)."""

    sessions: int = 0
    missed: list[tuple[int, int, float, float]] = field(default_factory=list)
    #: Energy the car took, and the part of it the PV covered beyond the house and the heat
    #: pump (the rest came from the battery or the grid).
    delivered_wh: float = 0.0
    solar_wh: float = 0.0
    _plugged_at: int = 0
    _need: float = 0.0

    def plug(self, minute: int, need_wh: float) -> None:
        self.sessions += 1
        self._plugged_at = minute
        self._need = need_wh

    def leave(self, minute: int, left_wh: float) -> None:
        if left_wh > 0.0:
            self.missed.append((self._plugged_at, minute, self._need, left_wh))

    @property
    def missed_wh(self) -> float:
        return sum(m[3] for m in self.missed)


class Plant:
    """The house's physics. Call `step()` once per scenario row.

    Controller inputs (set them before `step`): `sg_ready`, `dhw_boost`, `wb_a_on`, `wb_b_on`.
    After `step`, the attributes named like the Snapshot's measurements (`grid_w`, `pv_w`,
    `battery_w`, `soc_pct`, `compressor_w`, `outdoor_c`, `dhw_c`) describe the minute just
    simulated, and the flows of that minute (`house_w`, `heat_pump_w`, `wb_a_w`, `wb_b_w`,
    `curtailed_w`, `battery_loss_w`, `stored_delta_wh`) close its energy balance.
    """

    def __init__(self, scenario: Scenario, config: Config) -> None:
        sim = config.sim
        self.scenario = scenario
        self.config = config
        v = scenario.values
        self._pv = v["pv_w"]
        self._house = v["house_w"]
        self._outdoor = v["outdoor_c"]
        self._heat = v["heat_demand_w"]
        self._draw = v["dhw_draw_w"]
        self._a_plug = v["car_a_plugged"]
        self._a_need = v["car_a_need_wh"]
        self._b_plug = v["car_b_plugged"]
        self._b_need = v["car_b_need_wh"]
        self.minutes = scenario.minutes

        b = sim.battery
        self.capacity_wh = b.capacity_wh
        self._reserve = b.reserve_wh
        self._max_charge = b.max_charge_w
        self._max_discharge = b.max_discharge_w
        self._eff = b.efficiency
        self._ac_max = sim.inverter_ac_w
        hp = sim.heat_pump
        self._comp_w = hp.compressor_w
        self._cop = (hp.cop_base, hp.cop_slope, hp.cop_ref_c, hp.cop_min, hp.cop_max)
        self._dhw_pen = hp.dhw_cop_penalty
        self._dhw_cop_min = hp.dhw_cop_min
        self._backup_max = hp.backup_heater_w
        bu = sim.buffer
        self._buf_cap = bu.kwh_per_k * 1000.0  # Wh/K
        self._buf_loss = bu.loss_w_per_k
        self._buf_amb = bu.ambient_c
        self._buf_min = bu.min_c
        self._buf_on = bu.on_below_c
        self._buf_off = bu.off_at_c
        self._sg_raise = bu.sg_raise_k
        t = sim.dhw_tank
        self._dhw_cap = t.kwh_per_k * 1000.0
        self._dhw_loss = t.loss_w_per_k
        self._dhw_amb = t.ambient_c
        self._dhw_min = t.min_c
        self._dhw_on = t.on_below_c
        self._dhw_off = t.off_at_c
        self._boost_c = config.loads.dhw.boost_c
        self._boost_on = config.loads.dhw.boost_c - t.hysteresis_k
        self._tol = sim.comfort_tolerance_k
        self._wb_a_nom = config.loads.wb_a.nominal_w
        self._wb_b_nom = config.loads.wb_b.nominal_w

        # Controller inputs.
        self.sg_ready = False
        self.dhw_boost = False
        self.wb_a_on = False
        self.wb_b_on = False

        # State.
        self.index = 0
        self.stored_wh = b.initial_wh
        self.initial_stored_wh = b.initial_wh
        self.buffer_c = bu.initial_c
        self.dhw_c = t.initial_c
        self.mode = IDLE
        self._buf_call = False
        self._dhw_call = False
        self.car_a_plugged = False
        self.car_b_plugged = False
        self.car_a_left_wh = 0.0
        self.car_b_left_wh = 0.0

        # The minute just simulated.
        self.pv_w = 0.0
        self.house_w = 0.0
        self.outdoor_c = self._outdoor[0] if self.minutes else 0.0
        self.grid_w = 0.0
        self.battery_w = 0.0
        self.soc_pct = 100.0 * self.stored_wh / self.capacity_wh
        self.compressor_w = 0.0
        self.backup_w = 0.0
        #: The part of backup_w that held the DHW tank (the rest held the buffer).
        self.backup_dhw_w = 0.0
        self.heat_pump_w = 0.0
        self.wb_a_w = 0.0
        self.wb_b_w = 0.0
        self.curtailed_w = 0.0
        self.battery_loss_w = 0.0
        self.stored_delta_wh = 0.0

        self.totals = Totals()
        #: Car A's and car B's sessions (the wallboxes' cars).
        self.cars: dict[LoadId, CarTally] = {LoadId.WB_A: CarTally(), LoadId.WB_B: CarTally()}
        m = 60.0
        self.tallies: dict[LoadId, LoadTally] = {
            load: LoadTally(min_on_min=config.loads.get(load).min_on_s / m) for load in LoadId
        }

    # -- time ------------------------------------------------------------------------------

    @property
    def now(self) -> datetime:
        """The start of the next minute to simulate (= the end of the last one)."""
        return self.scenario.start + timedelta(minutes=self.index)

    @property
    def done(self) -> bool:
        return self.index >= self.minutes

    def next_lap(self) -> timedelta:
        """Start the scenario's days again after its end (the demo runs until stopped).

        Time goes on: the scenario is moved by its length in whole days, so the clock keeps
        its time of day and never runs back. The physics carries over (battery, temperatures,
        a car still plugged in). Returns the shift.
        """
        shift = timedelta(days=max(1, math.ceil(self.minutes / 1440)))
        self.scenario = replace(self.scenario, start=self.scenario.start + shift)
        self.index = 0
        return shift

    def cop(self, outdoor_c: float) -> float:
        base, slope, ref, lo, hi = self._cop
        c = base + slope * (outdoor_c - ref)
        return lo if c < lo else hi if c > hi else c

    # -- one minute --------------------------------------------------------------------------

    def step(self) -> None:
        """Simulate minute `index` with the current controller inputs, then advance."""
        i = self.index
        if i >= self.minutes:
            raise IndexError(f"scenario {self.scenario.name} has only {self.minutes} minutes")
        pv = self._pv[i]
        house = self._house[i]
        outdoor = self._outdoor[i]
        tot = self.totals

        # Cars: a session starts when the car is plugged; it accepts need_wh from then on.
        a_plug = self._a_plug[i] > 0.5
        if a_plug and not self.car_a_plugged:
            self.car_a_left_wh = self._a_need[i]
            tot.car_wanted += self.car_a_left_wh
            self.cars[LoadId.WB_A].plug(i, self.car_a_left_wh)
        elif not a_plug:
            if self.car_a_plugged:
                self.cars[LoadId.WB_A].leave(i, self.car_a_left_wh)
            self.car_a_left_wh = 0.0
        self.car_a_plugged = a_plug
        b_plug = self._b_plug[i] > 0.5
        if b_plug and not self.car_b_plugged:
            self.car_b_left_wh = self._b_need[i]
            tot.car_wanted += self.car_b_left_wh
            self.cars[LoadId.WB_B].plug(i, self.car_b_left_wh)
        elif not b_plug:
            if self.car_b_plugged:
                self.cars[LoadId.WB_B].leave(i, self.car_b_left_wh)
            self.car_b_left_wh = 0.0
        self.car_b_plugged = b_plug
        wb_a = 0.0
        if self.wb_a_on and self.car_a_left_wh > 0.0:
            wb_a = min(self._wb_a_nom, self.car_a_left_wh * 60.0)
            self.car_a_left_wh -= wb_a * _MIN
            if self.car_a_left_wh < _FULL_WH:
                self.car_a_left_wh = 0.0
        wb_b = 0.0
        if self.wb_b_on and self.car_b_left_wh > 0.0:
            wb_b = min(self._wb_b_nom, self.car_b_left_wh * 60.0)
            self.car_b_left_wh -= wb_b * _MIN
            if self.car_b_left_wh < _FULL_WH:
                self.car_b_left_wh = 0.0

        # Heat pump: its own thermostats at the start of the minute, DHW first.
        buf = self.buffer_c
        dhw = self.dhw_c
        if self.dhw_boost:
            d_on, d_off = self._boost_on, self._boost_c
        else:
            d_on, d_off = self._dhw_on, self._dhw_off
        if dhw < d_on:
            self._dhw_call = True
        elif dhw >= d_off:
            self._dhw_call = False
        raise_k = self._sg_raise if self.sg_ready else 0.0
        if buf < self._buf_on + raise_k:
            self._buf_call = True
        elif buf >= self._buf_off + raise_k:
            self._buf_call = False
        q_buf = 0.0
        q_dhw = 0.0
        comp = 0.0
        if self._dhw_call or self._buf_call:
            comp = self._comp_w
            base, slope, ref, lo, hi = self._cop
            cop = base + slope * (outdoor - ref)
            cop = lo if cop < lo else hi if cop > hi else cop
            if self._dhw_call:
                self.mode = DHW
                cop -= self._dhw_pen
                cop = max(cop, self._dhw_cop_min)
                q_dhw = comp * cop
            else:
                self.mode = BUFFER
                q_buf = comp * cop
        else:
            self.mode = IDLE
        buf += (
            (q_buf - self._heat[i] - self._buf_loss * (buf - self._buf_amb))
            * _MIN
            / (self._buf_cap)
        )
        dhw += (
            (q_dhw - self._draw[i] - self._dhw_loss * (dhw - self._dhw_amb))
            * _MIN
            / (self._dhw_cap)
        )
        # Backup heater (COP 1): only what it takes to hold the minimums, DHW first.
        backup = 0.0
        if dhw < self._dhw_min:
            backup = min(self._backup_max, (self._dhw_min - dhw) * self._dhw_cap * 60.0)
            dhw += backup * _MIN / self._dhw_cap
        backup_dhw = backup
        if buf < self._buf_min and backup < self._backup_max:
            extra = min(self._backup_max - backup, (self._buf_min - buf) * self._buf_cap * 60.0)
            buf += extra * _MIN / self._buf_cap
            backup += extra
        if buf < self._buf_min - self._tol:
            tot.heating_violation_min += 1
        if dhw < self._dhw_min - self._tol:
            tot.dhw_violation_min += 1
        self.buffer_c = buf
        self.dhw_c = dhw
        hp_w = comp + backup

        # Inverter and battery (self-consumption, DC-coupled, AC output capped).
        load = house + hp_w + wb_a + wb_b
        stored = self.stored_wh
        eff = self._eff
        ac_max = self._ac_max
        surplus = pv - load
        excess_dc = pv - ac_max
        want = surplus if surplus > excess_dc else excess_dc
        charge = 0.0
        discharge = 0.0
        if want > 0.0:
            room = (self.capacity_wh - stored) * 60.0 / eff
            charge = min(want, self._max_charge, room)
            charge = max(charge, 0.0)
        elif surplus < 0.0:
            avail = (stored - self._reserve) * eff * 60.0
            discharge = min(-surplus, self._max_discharge, avail, ac_max - pv)
            discharge = max(discharge, 0.0)
        ac = pv - charge + discharge
        curtail = 0.0
        if ac > ac_max:
            curtail = ac - ac_max
            ac = ac_max
        grid = load - ac
        delta = (charge * eff - discharge / eff) * _MIN
        loss = (charge - discharge) * _MIN - delta
        self.stored_wh = stored + delta

        # Publish the minute.
        self.pv_w = pv
        self.house_w = house
        self.outdoor_c = outdoor
        self.grid_w = grid
        self.battery_w = charge - discharge
        self.soc_pct = 100.0 * self.stored_wh / self.capacity_wh
        self.compressor_w = comp
        self.backup_w = backup
        self.backup_dhw_w = backup_dhw
        self.heat_pump_w = hp_w
        self.wb_a_w = wb_a
        self.wb_b_w = wb_b
        self.curtailed_w = curtail
        self.battery_loss_w = loss * 60.0
        self.stored_delta_wh = delta

        tot.pv += pv * _MIN
        tot.house += house * _MIN
        tot.heat_pump += hp_w * _MIN
        tot.backup += backup * _MIN
        tot.wallbox += (wb_a + wb_b) * _MIN
        tot.car_delivered += (wb_a + wb_b) * _MIN
        if wb_a or wb_b:
            # PV left after the house and the heat pump goes to the cars, A first.
            spare = pv - curtail - house - hp_w
            cars = self.cars
            for power, tally in ((wb_a, cars[LoadId.WB_A]), (wb_b, cars[LoadId.WB_B])):
                if power:
                    sun = min(power, spare) if spare > 0.0 else 0.0
                    spare -= sun
                    tally.delivered_wh += power * _MIN
                    tally.solar_wh += sun * _MIN
        if grid > 0.0:
            tot.imported += grid * _MIN
        else:
            tot.exported -= grid * _MIN
        tot.curtailed += curtail * _MIN
        tot.battery_loss += loss
        tot.heat_delivered += q_buf * _MIN
        tot.dhw_delivered += q_dhw * _MIN

        # Per-load outputs: what the controller asked for, and the energy it cost.
        tl = self.tallies
        t = tl[LoadId.SG_READY]
        if self.sg_ready != t.on:
            t.edge(self.sg_ready, i)
        if t.on:
            t.minutes += 1
            if q_buf:
                t.energy_wh += comp * _MIN
        t = tl[LoadId.DHW]
        if self.dhw_boost != t.on:
            t.edge(self.dhw_boost, i)
        if t.on:
            t.minutes += 1
            if q_dhw:
                t.energy_wh += comp * _MIN
        t = tl[LoadId.WB_A]
        if self.wb_a_on != t.on:
            t.edge(self.wb_a_on, i)
        if t.on:
            t.minutes += 1
            t.energy_wh += wb_a * _MIN
        t = tl[LoadId.WB_B]
        if self.wb_b_on != t.on:
            t.edge(self.wb_b_on, i)
        if t.on:
            t.minutes += 1
            t.energy_wh += wb_b * _MIN

        self.index = i + 1

    def run_baseline(self) -> None:
        """No EMS: thermostats at their normal setpoints, wallboxes on while a car is plugged."""
        a_plug = self._a_plug
        b_plug = self._b_plug
        step = self.step
        self.sg_ready = False
        self.dhw_boost = False
        for i in range(self.index, self.minutes):
            self.wb_a_on = a_plug[i] > 0.5
            self.wb_b_on = b_plug[i] > 0.5
            step()
