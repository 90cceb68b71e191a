"""How much of the gap between no EMS and the perfect-foresight optimum this house's controls
can reach: the optimum restricted step by step to what EMS can command and know, and the best
SG-Ready schedule that perfect foresight could find for the heat pump's real thermostat.

Steps (cost incl. unmet car energy, and the share of the gap each reaches):

1. the optimum (`emsctl simulate --optimum`'s linear program);
2. the same with the cars charged minute by minute as EMS charged them (it cannot know when
   they leave) and EMS's unmet car energy;
3. and with the buffer and the DHW tank never below the heat pump's own switch-on temperatures
   (EMS can raise the thermostats' setpoints, never lower them);
4. the program of step 3 as an hourly model-predictive controller that knows PV only from the
   replay's noisy forecast, its plan run on a battery in the inverter's self-consumption mode
   (heat-pump power still continuous);
5. a dynamic program over SG-Ready on/off per 15-minute slot on the heat pump's real thermostat
   (hysteresis, DHW first, compressor on or off), with perfect foresight, the DHW and the cars
   as EMS ran them; its schedule then replayed in the simulator with EMS doing everything else;
6. (`--joint`) SG-Ready and the DHW boost chosen together by a dynamic program on a coarser grid
   that simulates the tank too, a calendar month at a time, replayed the same way.

Steps 1-4 build their programs with `emsctl.sim.optimum`'s own window helpers, so that they
differ from the optimum only in what they restrict. An experiment for docs/performance.md
("What this house's controls can reach"), not part of `make bench`. The year takes about 8
minutes (13 with `--daily-cop`) and 2 GB (the dynamic program's value table).

    python bench/control_reach.py                 # the year, the house's configuration
    python bench/control_reach.py --days 14 --from-day 60
    python bench/control_reach.py --daily-cop     # and what the hours' COP is worth
    python bench/control_reach.py --joint         # and the boost chosen too (85 more minutes)
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from array import array
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import timedelta
from itertools import pairwise
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from emsctl.config import Config, load_config
from emsctl.sim import optimum as opt
from emsctl.sim import plant as plant_mod
from emsctl.sim.forecast import SimForecast
from emsctl.sim.runner import Trace, run_baseline, run_ems
from emsctl.sim.scenario import Scenario, read_scenario

ROOT = Path(__file__).resolve().parents[1]
YEAR = ROOT / "bench" / "data" / "year_2026.csv.gz"
HOUSE_CONFIG = ROOT / "configs" / "ems-config.yaml"

Vec = NDArray[np.float64]

#: The dynamic program's grid: buffer temperature (°C) and stored battery energy (Wh).
BUFFER_GRID_C = (33.0, 0.1, 161)  # first, step, count: 33.0 .. 49.0
STORED_STEP_WH = 200.0
SLOT_MIN = 15


@dataclass(frozen=True)
class EmsMinutes:
    """What EMS did in each minute of its replay, for the steps that hold parts of it fixed."""

    cars_w: Vec
    dhw_mode: NDArray[np.bool_]
    #: The backup heater's power for the DHW tank (the buffer's is the model's own).
    backup_dhw_w: Vec
    grid_w: Vec
    sg: Vec
    boost: Vec
    cost_with_unmet_eur: float
    unmet_kwh: float


class _Recorder(Trace):
    def __init__(self, minutes: int) -> None:
        super().__init__(0, minutes)
        self.cars = array("d")
        self.mode = array("b")
        self.backup = array("d")
        self.grid = array("d")

    def record(self, p: plant_mod.Plant) -> None:
        self.cars.append(p.wb_a_w + p.wb_b_w)
        self.mode.append(p.mode)
        self.backup.append(p.backup_dhw_w)
        self.grid.append(p.grid_w)


@contextmanager
def _before_each_minute(hook: Callable[[plant_mod.Plant], None]) -> Iterator[None]:
    """Call `hook` with the plant just before it simulates each minute (after the dead-man
    timers and the last tick's commands: what it sees is what the minute runs with)."""
    original = plant_mod.Plant.step

    def step(self: plant_mod.Plant) -> None:
        hook(self)
        original(self)

    plant_mod.Plant.step = step  # type: ignore[method-assign]
    try:
        yield
    finally:
        plant_mod.Plant.step = original  # type: ignore[method-assign]


def ems_minutes(scn: Scenario, cfg: Config) -> EmsMinutes:
    rec = _Recorder(scn.minutes)
    sg = array("b")
    boost = array("b")

    def note(p: plant_mod.Plant) -> None:
        sg.append(p.sg_ready)
        boost.append(p.dhw_boost)

    with _before_each_minute(note):
        k = run_ems(scn, cfg, trace=rec).kpis
    return EmsMinutes(
        cars_w=np.asarray(rec.cars),
        dhw_mode=np.asarray(rec.mode) == plant_mod.DHW,
        backup_dhw_w=np.asarray(rec.backup),
        grid_w=np.asarray(rec.grid),
        sg=np.asarray(sg, dtype=np.float64),
        boost=np.asarray(boost, dtype=np.float64),
        cost_with_unmet_eur=k.cost_with_unmet_eur,
        unmet_kwh=k.car_unmet_kwh,
    )


# --------------------------------------------------------------------------- steps 1-4


def _slots(scn: Scenario, cfg: Config, cars_w: Vec | None) -> opt.Slots:
    """The optimum's slots; with `cars_w`, the cars as a fixed load and no sessions to serve."""
    sl = opt.aggregate(scn, cfg, SLOT_MIN)
    if cars_w is None:
        return sl
    starts = np.arange(0, scn.minutes, SLOT_MIN, dtype=np.int64)
    counts = np.diff(np.append(starts, scn.minutes)).astype(np.float64)
    cars_kw = opt._slot_means(cars_w, starts, counts) / 1000.0
    sessions = replace(sl.sessions, need_kwh=np.zeros_like(sl.sessions.need_kwh))
    return replace(sl, house_kw=sl.house_kw + cars_kw, sessions=sessions)


def _plant(cfg: Config, floors: bool) -> opt._Plant:
    p = opt._Plant.of(cfg)
    if not floors:
        return p
    return replace(p, buf_min=cfg.sim.buffer.on_below_c, dhw_min=cfg.sim.dhw_tank.on_below_c)


def rolling_lp(scn: Scenario, cfg: Config, cars_w: Vec | None, floors: bool) -> float:
    """Steps 1-3: the optimum's rolling 48 h program, restricted; its cost without unmet."""
    sl = _slots(scn, cfg, cars_w)
    s, windows = opt.solve_rolling(sl, _plant(cfg, floors), cfg, 192, 96)
    return opt._figures(sl, s, cfg, 0.0, windows, 48.0, 24.0).cost_with_unmet_eur


def mpc(scn: Scenario, cfg: Config, cars_w: Vec, *, every: int = 4, horizon: int = 144) -> float:
    """Step 4: re-plan every `every` slots from the forecast of that time; run the plan's heat
    pump on the slots' true PV with the inverter's self-consumption battery. Cost, no unmet."""
    sl = _slots(scn, cfg, cars_w)
    p = _plant(cfg, floors=True)
    fc = SimForecast(scn, cfg)
    b = cfg.sim.battery
    stored = b.initial_wh / 1000.0
    buf, dhw = cfg.sim.buffer.initial_c, cfg.sim.dhw_tank.initial_c
    cap, reserve, eff = b.capacity_wh / 1000, b.reserve_wh / 1000, b.efficiency
    ch_max, dis_max = b.max_charge_w / 1000, b.max_discharge_w / 1000
    ac_max = cfg.sim.inverter_ac_w / 1000
    tariff = cfg.tariff
    none = np.zeros(0, dtype=np.int64)
    n = sl.count
    cost = 0.0
    for t0 in range(0, n, every):
        s1 = min(n, t0 + horizon)
        pv_plan = sl.pv_kw.copy()
        f = fc.forecast(scn.start + timedelta(minutes=SLOT_MIN * t0))
        # Without a forecast (forecast.enabled off) the plan sees the true PV.
        if f is not None and f.slots_start is not None and f.slot_wh:
            k0 = round((f.slots_start - scn.start).total_seconds() / (SLOT_MIN * 60))
            fpv = np.asarray(f.slot_wh) * (60 / SLOT_MIN) / 1000.0
            s1 = max(min(s1, k0 + len(fpv)), min(n, t0 + every))
            a = max(t0, k0)
            pv_plan[a:s1] = fpv[a - k0 : s1 - k0]
        w = opt._Window(t0, s1, s1 == n, none, none)
        x = opt._solve_window(
            replace(sl, pv_kw=pv_plan), w, p, opt._State(stored, buf, dhw, np.zeros(0))
        )
        m = w.n
        for j in range(min(every, n - t0)):
            s, h = t0 + j, sl.hours[t0 + j]
            heat_pump = sum(x[block * m + j] for block in (opt._HPB, opt._HPD, opt._BKB, opt._BKD))
            buf, dhw = x[opt._TB * m + j], x[opt._TD * m + j]
            load = sl.house_kw[s] + heat_pump
            pv = sl.pv_kw[s]
            surplus = pv - load
            want = max(surplus, pv - ac_max)
            ch = dis = 0.0
            if want > 0:
                ch = max(0.0, min(want, ch_max, (cap - stored) / eff / h))
            elif surplus < 0:
                dis = max(0.0, min(-surplus, dis_max, (stored - reserve) * eff / h, ac_max - pv))
            grid = load - min(pv - ch + dis, ac_max)
            stored += (ch * eff - dis / eff) * h
            price = tariff.import_eur_kwh if grid > 0 else tariff.feed_in_eur_kwh
            cost += grid * h * price
    return cost


# --------------------------------------------------------------------------- step 5


class MinutePlant:
    """The simulator's heat pump (buffer side), battery and grid, vectorised over many states at
    once; the DHW's compressor use, the backup heater's minutes and the cars are given per
    minute (as EMS ran them). `test_control_reach.py` checks it against `emsctl.sim.plant`."""

    def __init__(
        self, scn: Scenario, cfg: Config, ems: EmsMinutes, *, daily_cop: bool = False
    ) -> None:
        def col(name: str) -> Vec:
            return np.asarray(scn.values[name], dtype=np.float64)

        sim = cfg.sim
        hp, bu, ba = sim.heat_pump, sim.buffer, sim.battery
        self.minutes = scn.minutes
        self.pv, self.house, self.heat = col("pv_w"), col("house_w"), col("heat_demand_w")
        outdoor = col("outdoor_c")
        self.cop = np.clip(
            hp.cop_base + hp.cop_slope * (outdoor - hp.cop_ref_c), hp.cop_min, hp.cop_max
        )
        if daily_cop:
            # Each day's mean: what the hours' COP is worth to the schedule, by its absence.
            day = np.arange(self.minutes) // 1440
            self.cop = (np.bincount(day, self.cop) / np.bincount(day))[day]
        self.cars, self.dhw_mode, self.backup = ems.cars_w, ems.dhw_mode, ems.backup_dhw_w
        self.comp_w, self.backup_max = hp.compressor_w, hp.backup_heater_w
        self.cap = bu.kwh_per_k * 1000.0
        self.loss, self.amb, self.floor = bu.loss_w_per_k, bu.ambient_c, bu.min_c
        self.on, self.off, self.raise_k = bu.on_below_c, bu.off_at_c, bu.sg_raise_k
        self.capacity, self.reserve = ba.capacity_wh, ba.reserve_wh
        self.ch_max, self.dis_max, self.eff = ba.max_charge_w, ba.max_discharge_w, ba.efficiency
        self.ac = sim.inverter_ac_w
        self.imp = cfg.tariff.import_eur_kwh / 60_000.0
        self.exp = cfg.tariff.feed_in_eur_kwh / 60_000.0
        self.initial = (bu.initial_c, 0.0, float(ba.initial_wh))

    def run(
        self, first: int, last: int, sg: Vec, buf: Vec, call: Vec, stored: Vec
    ) -> tuple[Vec, Vec, Vec, Vec]:
        """Minutes first..last-1 with SG-Ready `sg` (one value per minute, or per state) from
        the states (buffer °C, thermostat calling 0/1, stored Wh): (cost EUR, end states)."""
        cost = np.zeros_like(buf)
        for i in range(first, last):
            raised = self.raise_k * sg[i - first]
            call = np.where(
                buf < self.on + raised, 1.0, np.where(buf >= self.off + raised, 0.0, call)
            )
            if self.dhw_mode[i]:
                comp: Vec | float = self.comp_w
                q: Vec | float = 0.0
            else:
                comp = self.comp_w * call
                q = comp * self.cop[i]
            buf = buf + (q - self.heat[i] - self.loss * (buf - self.amb)) / 60.0 / self.cap
            extra = np.where(
                buf < self.floor,
                np.minimum(self.backup_max - self.backup[i], (self.floor - buf) * self.cap * 60.0),
                0.0,
            )
            buf = buf + extra / 60.0 / self.cap
            load = self.house[i] + self.cars[i] + comp + self.backup[i] + extra
            spent, stored = self._grid(i, load, stored)
            cost = cost + spent
        return cost, buf, call, stored

    def _grid(self, i: int, load: Vec, stored: Vec) -> tuple[Vec, Vec]:
        """Minute i's inverter and battery (self-consumption mode): (grid cost EUR, stored Wh)."""
        eff = self.eff
        pv = self.pv[i]
        surplus = pv - load
        want = np.maximum(surplus, pv - self.ac)
        room = (self.capacity - stored) * 60.0 / eff
        charge = np.where(want > 0.0, np.clip(np.minimum(want, self.ch_max), None, room), 0.0)
        charge = np.maximum(charge, 0.0)
        avail = np.minimum((stored - self.reserve) * eff * 60.0, self.ac - pv)
        dis = np.where(
            (want <= 0.0) & (surplus < 0.0),
            np.maximum(np.minimum(np.minimum(-surplus, self.dis_max), avail), 0.0),
            0.0,
        )
        grid = load - np.minimum(pv - charge + dis, self.ac)
        stored = stored + (charge * eff - dis / eff) / 60.0
        return np.where(grid > 0.0, grid * self.imp, grid * self.exp), stored

    def cost_of(self, sg_minutes: Vec) -> float:
        """The grid cost of one SG-Ready schedule (a value per minute) from the start state."""
        b0, c0, e0 = self.initial
        cost, *_ = self.run(
            0, self.minutes, sg_minutes, np.array([b0]), np.array([c0]), np.array([e0])
        )
        return float(cost[0])


def _interp(v: Vec, buf: Vec, call: Vec, stored: Vec, reserve: float) -> Vec:
    b0, db, nb = BUFFER_GRID_C
    ne = v.shape[2]
    fb = np.clip((buf - b0) / db, 0.0, nb - 1.000001)
    ib = fb.astype(np.int64)
    wb = fb - ib
    fe = np.clip((stored - reserve) / STORED_STEP_WH, 0.0, ne - 1.000001)
    ie = fe.astype(np.int64)
    we = fe - ie
    c = call.astype(np.int64)
    low = (1 - we) * v[c, ib, ie] + we * v[c, ib, ie + 1]
    high = (1 - we) * v[c, ib + 1, ie] + we * v[c, ib + 1, ie + 1]
    return np.asarray((1 - wb) * low + wb * high)


def best_sg(mp: MinutePlant) -> tuple[Vec, float]:
    """Step 5: SG-Ready on or off per slot, by backward induction over (thermostat calling,
    buffer °C, stored Wh) and a forward pass from the start state: (per-minute schedule, cost)."""
    b0, db, nb = BUFFER_GRID_C
    ne = int((mp.capacity - mp.reserve) / STORED_STEP_WH) + 1
    call_g, buf_g, stored_g = (
        a.ravel()
        for a in np.meshgrid(
            np.arange(2.0),
            b0 + db * np.arange(nb),
            mp.reserve + STORED_STEP_WH * np.arange(ne),
            indexing="ij",
        )
    )
    n = -(-mp.minutes // SLOT_MIN)
    values = np.zeros((n + 1, 2, nb, ne), dtype=np.float32)
    on, off = np.ones(SLOT_MIN), np.zeros(SLOT_MIN)
    for s in range(n - 1, -1, -1):
        first, last = s * SLOT_MIN, min((s + 1) * SLOT_MIN, mp.minutes)
        best = None
        for sg in (off, on):
            cost, b, c, e = mp.run(first, last, sg, buf_g, call_g, stored_g)
            v = cost + _interp(values[s + 1], b, c, e, mp.reserve)
            best = v if best is None else np.minimum(best, v)
        assert best is not None
        values[s] = best.reshape(2, nb, ne)
    schedule = np.zeros(mp.minutes)
    b_, c_, e_ = (np.full(2, x) for x in mp.initial)
    both = np.array([0.0, 1.0])
    total = 0.0
    for s in range(n):
        first, last = s * SLOT_MIN, min((s + 1) * SLOT_MIN, mp.minutes)
        sg = np.repeat(both[None, :], last - first, axis=0)
        cost, b, c, e = mp.run(first, last, sg, b_, c_, e_)
        k = int(np.argmin(cost + _interp(values[s + 1], b, c, e, mp.reserve)))
        schedule[first:last] = both[k]
        total += float(cost[k])
        b_, c_, e_ = (np.full(2, x[k]) for x in (b, c, e))
    return schedule, total


def replay_with_sg(
    scn: Scenario, cfg: Config, sg_minutes: Vec, boost_minutes: Vec | None = None
) -> tuple[float, float]:
    """The simulator with SG-Ready's contact (and, when given, the DHW boost) set each minute
    by the schedule, EMS driving the rest (its own commands for them are overridden):
    (cost incl. unmet, unmet kWh)."""

    def force(p: plant_mod.Plant) -> None:
        if p.index < len(sg_minutes):
            p.sg_ready = bool(sg_minutes[p.index])
            if boost_minutes is not None:
                p.dhw_boost = bool(boost_minutes[p.index])

    with _before_each_minute(force):
        k = run_ems(scn, cfg).kpis
    return k.cost_with_unmet_eur, k.car_unmet_kwh


# --------------------------------------------------------------------------- step 6

#: The joint program's coarser grid: buffer and tank °C (first, step, count), stored Wh step.
JOINT_BUFFER_C = (33.0, 0.5, 33)
JOINT_TANK_C = (44.0, 0.5, 35)
JOINT_STORED_STEP_WH = 800.0


class JointPlant(MinutePlant):
    """MinutePlant with the DHW tank simulated too (its thermostat, the boost's band, draws,
    losses, its backup heater), so that the boost can be chosen as well; only the cars are
    given. `test_control_reach.py` checks it against `emsctl.sim.plant` like MinutePlant."""

    def __init__(self, scn: Scenario, cfg: Config, ems: EmsMinutes) -> None:
        super().__init__(scn, cfg, ems)
        hp, t = cfg.sim.heat_pump, cfg.sim.dhw_tank
        self.draw = np.asarray(scn.values["dhw_draw_w"], dtype=np.float64)
        self.cop_dhw = np.maximum(self.cop - hp.dhw_cop_penalty, hp.dhw_cop_min)
        self.t_cap = t.kwh_per_k * 1000.0
        self.t_loss, self.t_amb, self.t_floor = t.loss_w_per_k, t.ambient_c, t.min_c
        self.t_on, self.t_off = t.on_below_c, t.off_at_c
        self.boost_c = cfg.loads.dhw.boost_c
        self.boost_on = self.boost_c - t.hysteresis_k
        self.t_initial = t.initial_c

    def run_joint(
        self, first: int, last: int, sg: Vec, boost: Vec, states: tuple[Vec, ...]
    ) -> tuple[Vec, tuple[Vec, ...]]:
        """Minutes first..last-1 with SG-Ready and the boost per minute, from the states
        (buffer °C, buffer calling, tank °C, tank calling, stored Wh): (cost EUR, end states)."""
        buf, b_call, tank, t_call, stored = states
        cost = np.zeros_like(buf)
        for i in range(first, last):
            boosted = boost[i - first] > 0.5
            t_on, t_off = (self.boost_on, self.boost_c) if boosted else (self.t_on, self.t_off)
            t_call = np.where(tank < t_on, 1.0, np.where(tank >= t_off, 0.0, t_call))
            raised = self.raise_k * sg[i - first]
            b_call = np.where(
                buf < self.on + raised, 1.0, np.where(buf >= self.off + raised, 0.0, b_call)
            )
            comp = self.comp_w * np.maximum(t_call, b_call)
            q_tank = comp * t_call * self.cop_dhw[i]
            q_buf = comp * (1.0 - t_call) * self.cop[i]
            buf = buf + (q_buf - self.heat[i] - self.loss * (buf - self.amb)) / 60.0 / self.cap
            tank = tank + (q_tank - self.draw[i] - self.t_loss * (tank - self.t_amb)) / (
                60.0 * self.t_cap
            )
            backup = np.where(
                tank < self.t_floor,
                np.minimum(self.backup_max, (self.t_floor - tank) * self.t_cap * 60.0),
                0.0,
            )
            tank = tank + backup / 60.0 / self.t_cap
            extra = np.where(
                buf < self.floor,
                np.minimum(self.backup_max - backup, (self.floor - buf) * self.cap * 60.0),
                0.0,
            )
            buf = buf + extra / 60.0 / self.cap
            load = self.house[i] + self.cars[i] + comp + backup + extra
            spent, stored = self._grid(i, load, stored)
            cost = cost + spent
        return cost, (buf, b_call, tank, t_call, stored)

    def start(self, n: int = 1) -> tuple[Vec, ...]:
        b0, _, e0 = self.initial
        return tuple(np.full(n, x) for x in (b0, 0.0, self.t_initial, 0.0, e0))

    def joint_cost_of(self, sg_minutes: Vec, boost_minutes: Vec) -> float:
        cost, _ = self.run_joint(0, self.minutes, sg_minutes, boost_minutes, self.start())
        return float(cost[0])


def _interp_joint(v: Vec, states: tuple[Vec, ...], reserve: float) -> Vec:
    buf, b_call, tank, t_call, stored = states
    axes = []
    for x, (first, step, count) in (
        (buf, JOINT_BUFFER_C),
        (tank, JOINT_TANK_C),
        (stored - reserve, (0.0, JOINT_STORED_STEP_WH, v.shape[3])),
    ):
        f = np.clip((x - first) / step, 0.0, count - 1.000001)
        i = f.astype(np.int64)
        axes.append((i, f - i))
    (ib, wb), (it, wt), (ie, we) = axes
    k = b_call.astype(np.int64) * 2 + t_call.astype(np.int64)
    out = np.zeros_like(buf)
    for db, fb in ((0, 1 - wb), (1, wb)):
        for dt, ft in ((0, 1 - wt), (1, wt)):
            for de, fe in ((0, 1 - we), (1, we)):
                out = out + fb * ft * fe * v[k, ib + db, it + dt, ie + de]
    return out


def best_sg_and_boost(jp: JointPlant) -> tuple[Vec, Vec, float]:
    """Step 6: SG-Ready and the DHW boost on or off per slot, both chosen, by backward
    induction on the coarser grid and an exact forward pass: (SG, boost per minute, cost)."""
    nb, nt = JOINT_BUFFER_C[2], JOINT_TANK_C[2]
    ne = int((jp.capacity - jp.reserve) / JOINT_STORED_STEP_WH) + 1
    grid = np.meshgrid(
        np.arange(2.0),
        np.arange(2.0),
        JOINT_BUFFER_C[0] + JOINT_BUFFER_C[1] * np.arange(nb),
        JOINT_TANK_C[0] + JOINT_TANK_C[1] * np.arange(nt),
        jp.reserve + JOINT_STORED_STEP_WH * np.arange(ne),
        indexing="ij",
    )
    b_call, t_call, buf, tank, stored = (a.ravel() for a in grid)
    states = (buf, b_call, tank, t_call, stored)
    n = -(-jp.minutes // SLOT_MIN)
    values = np.zeros((n + 1, 4, nb, nt, ne), dtype=np.float32)
    actions = [(a, b) for a in (0.0, 1.0) for b in (0.0, 1.0)]
    for s in range(n - 1, -1, -1):
        first, last = s * SLOT_MIN, min((s + 1) * SLOT_MIN, jp.minutes)
        best = None
        for a, b in actions:
            cost, end = jp.run_joint(
                first, last, np.full(last - first, a), np.full(last - first, b), states
            )
            v = cost + _interp_joint(values[s + 1], end, jp.reserve)
            best = v if best is None else np.minimum(best, v)
        assert best is not None
        values[s] = best.reshape(4, nb, nt, ne)
    sg_min, boost_min = np.zeros(jp.minutes), np.zeros(jp.minutes)
    now = jp.start()
    total = 0.0
    for s in range(n):
        first, last = s * SLOT_MIN, min((s + 1) * SLOT_MIN, jp.minutes)
        options = []
        for a, b in actions:
            cost, end = jp.run_joint(
                first, last, np.full(last - first, a), np.full(last - first, b), now
            )
            options.append(
                (
                    float((cost + _interp_joint(values[s + 1], end, jp.reserve))[0]),
                    float(cost[0]),
                    end,
                    a,
                    b,
                )
            )
        _, cost_k, now, a, b = min(options, key=lambda o: o[0])
        sg_min[first:last], boost_min[first:last] = a, b
        total += cost_k
    return sg_min, boost_min, total


# --------------------------------------------------------------------------- report


def months(scn: Scenario) -> list[tuple[int, int]]:
    """(first minute, minutes) of each calendar month (UTC) the scenario touches."""
    cuts = [0]
    for i in range(1440, scn.minutes, 1440):
        if scn.time(i).month != scn.time(i - 1440).month:
            cuts.append(i)
    cuts.append(scn.minutes)
    return [(a, b - a) for a, b in pairwise(cuts)]


def joint_gain(scn: Scenario, cfg: Config) -> float:
    """Step 6 over the scenario, a month at a time (the joint program's value table for a
    year would take 6.5 GB): the sum of what the best SG-Ready and boost schedules, replayed,
    save against EMS on the same month run from the same start."""
    gain = 0.0
    for first, count in months(scn):
        part = scn.slice(first, count)
        ems = ems_minutes(part, cfg)
        sg, boost, _ = best_sg_and_boost(JointPlant(part, cfg, ems))
        saved = ems.cost_with_unmet_eur - replay_with_sg(part, cfg, sg, boost)[0]
        print(f"{part.time(0):%Y-%m}: joint schedule saves {saved:.2f} EUR", file=sys.stderr)
        gain += saved
    return gain


def reach(
    scn: Scenario, cfg: Config, *, daily_cop: bool = False, joint: bool = False
) -> list[tuple[str, float]]:
    """Each step's cost incl. unmet car energy, the baseline and EMS among them."""
    t0 = time.perf_counter()
    base = run_baseline(scn, cfg).kpis.cost_with_unmet_eur
    ems = ems_minutes(scn, cfg)
    unmet_eur = ems.unmet_kwh * cfg.tariff.unmet_car_eur_kwh
    rows = [("no EMS", base), ("optimum", rolling_lp(scn, cfg, None, floors=False))]
    rows.append(("cars as EMS charged them", rolling_lp(scn, cfg, ems.cars_w, False) + unmet_eur))
    rows.append(("tanks above the thermostats", rolling_lp(scn, cfg, ems.cars_w, True) + unmet_eur))
    rows.append(("MPC on the forecast, inverter's battery", mpc(scn, cfg, ems.cars_w) + unmet_eur))
    mp = MinutePlant(scn, cfg, ems)
    schedule, dp_cost = best_sg(mp)
    rows.append(("best SG-Ready schedule (model)", dp_cost + unmet_eur))
    rows.append(("best SG-Ready schedule, replayed", replay_with_sg(scn, cfg, schedule)[0]))
    if daily_cop:
        schedule, _ = best_sg(MinutePlant(scn, cfg, ems, daily_cop=True))
        label = "best SG-Ready schedule for each day's mean COP, replayed"
        rows.append((label, replay_with_sg(scn, cfg, schedule)[0]))
    if joint:
        label = "best SG-Ready and boost schedules, month by month, replayed"
        rows.append((label, ems.cost_with_unmet_eur - joint_gain(scn, cfg)))
    rows.append(("EMS", ems.cost_with_unmet_eur))
    print(f"reach computed in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenario", type=Path, default=YEAR)
    parser.add_argument("--config", type=Path, default=HOUSE_CONFIG)
    parser.add_argument("--days", type=int, default=0, help="only this many days")
    parser.add_argument("--from-day", type=int, default=0)
    parser.add_argument(
        "--daily-cop",
        action="store_true",
        help="also the schedule found with each day's mean COP (what the hours' COP is worth)",
    )
    parser.add_argument(
        "--joint",
        action="store_true",
        help="also SG-Ready and the DHW boost chosen together (about 85 more minutes a year)",
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    scn = read_scenario(args.scenario)
    if args.days:
        scn = scn.slice(args.from_day * 1440, args.days * 1440)
    cfg = load_config(args.config)
    rows = reach(scn, cfg, daily_cop=args.daily_cop, joint=args.joint)
    base, best = rows[0][1], rows[1][1]
    print(f"\n| {scn.name} | cost incl. unmet EUR | share of the gap |\n|---|---|---|")
    for label, cost in rows:
        print(f"| {label} | {cost:,.1f} | {(base - cost) / (base - best):.1%} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
