"""The perfect-foresight optimum of the simulated plant: a linear program over 15-minute slots.

Given a scenario and the configuration's plant (`sim`) and tariff, `solve_optimum` finds the
cheapest way the house could have run with every minute of PV, load, weather, heat demand and
car session known in advance: heat-pump power split between the buffer and the DHW tank, the
backup heater, each car's charge power, battery charge and discharge, import, export and
curtailment, all continuous. It solves a rolling horizon (48 h solved, the first 24 h kept,
the end states carried on) with HiGHS and returns the kept decisions' energy sums and cost. It
is the lower bound that `emsctl simulate --optimum` sets against the EMS and the baseline; the
model, its limits and how it differs from the 1-minute plant are in docs/simulator.md.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

import highspy
import numpy as np
from numpy.typing import NDArray

from emsctl.config import Config
from emsctl.sim.report import ratios
from emsctl.sim.scenario import Scenario

log = logging.getLogger(__name__)

Vec = NDArray[np.float64]
Idx = NDArray[np.int64]

#: A car's energy still wanted at the end of a window costs the import price (it can be charged
#: later, at worst from the grid), less this when later windows follow (a tie goes to waiting
#: for what they see) and plus this at the scenario's end (a tie goes to charging now).
PENDING_TIE_EUR_KWH = 1e-3
#: Penalty per kWh of heat the plant could not supply (a temperature below its minimum): far
#: above any energy price, so the program uses it only where the physics leaves no choice.
HEAT_SHORT_EUR_KWH = 10.0

# Per-slot variable blocks of one window, in column order.
_IMP, _EXP, _CURT, _CH, _DIS, _HPB, _HPD, _BKB, _BKD, _SOC, _TB, _TD, _SB, _SD = range(14)
_BLOCKS = 14
# Per-slot constraint blocks, in row order (session rows follow).
_R_BAL, _R_AC, _R_PV, _R_BAT, _R_BUF, _R_DHW, _R_COMP, _R_BACKUP = range(8)
_ROW_BLOCKS = 8


class OptimumError(Exception):
    """The linear program could not be solved (names the window)."""


@dataclass(frozen=True, slots=True)
class Sessions:
    """Car sessions of a scenario (both wallboxes) and the slots each can charge in.

    A session is a run of plugged minutes; it wants the need the scenario gives at its first
    minute. Pairs are (session, slot) with the most energy the car can take in that slot:
    its wallbox's power for the minutes it is plugged there.
    """

    car: Idx
    first_min: Idx
    end_min: Idx  # exclusive
    need_kwh: Vec
    #: False for a session still plugged in when the scenario ends (its rest is pending).
    leaves: NDArray[np.bool_]
    pair_session: Idx
    pair_slot: Idx
    #: Upper bound of the pair's average charge power over the slot, kW.
    pair_max_kw: Vec

    @property
    def count(self) -> int:
        return len(self.need_kwh)


@dataclass(frozen=True, slots=True)
class Slots:
    """A scenario at slot resolution: mean powers (kW), mean COPs and the car sessions."""

    start: datetime
    slot_min: int
    hours: Vec
    pv_kw: Vec
    house_kw: Vec
    heat_kw: Vec
    draw_kw: Vec
    cop: Vec
    cop_dhw: Vec
    sessions: Sessions

    @property
    def count(self) -> int:
        return len(self.hours)


@dataclass(frozen=True, slots=True)
class OptimumSeries:
    """The kept decisions per slot: mean powers in kW over the slot, states at its end."""

    hours: Vec
    pv_kw: Vec
    house_kw: Vec
    import_kw: Vec
    export_kw: Vec
    curtail_kw: Vec
    charge_kw: Vec
    discharge_kw: Vec
    hp_buffer_kw: Vec
    hp_dhw_kw: Vec
    backup_buffer_kw: Vec
    backup_dhw_kw: Vec
    cars_kw: Vec
    stored_kwh: Vec
    buffer_c: Vec
    dhw_c: Vec
    heat_short_kw: Vec
    #: Energy each session of `Slots.sessions` was given, kWh.
    session_kwh: Vec


@dataclass(frozen=True, slots=True)
class OptimumResult:
    """The optimum's figures over a scenario, with the same definitions as the replay's KPIs
    (docs/simulator.md): energies kWh, ratios 0..1, money EUR."""

    slot_min: int
    horizon_h: float
    keep_h: float
    windows: int
    pv_kwh: float
    house_kwh: float
    heat_pump_kwh: float
    backup_heater_kwh: float
    wallbox_kwh: float
    import_kwh: float
    export_kwh: float
    curtailed_kwh: float
    battery_delta_kwh: float
    battery_loss_kwh: float
    self_consumption: float
    autarky: float
    cost_eur: float
    cost_with_unmet_eur: float
    car_wanted_kwh: float
    car_delivered_kwh: float
    car_unmet_kwh: float
    car_pending_kwh: float
    #: Heat the plant could not supply at slot resolution (temperatures held by the penalty).
    heat_short_kwh: float
    #: Wall time of aggregation, model building and solving, seconds.
    solve_s: float
    series: OptimumSeries | None = field(default=None, repr=False, compare=False)

    def to_json(self) -> dict[str, Any]:
        return {
            name: getattr(self, name)
            for name in self.__dataclass_fields__
            if name not in ("series", "solve_s")
        }


# --------------------------------------------------------------------------- aggregation


def _col(scenario: Scenario, name: str) -> Vec:
    return np.frombuffer(scenario.values[name], dtype=np.float64)


def _slot_means(x: Vec, starts: Idx, counts: Vec) -> Vec:
    return np.add.reduceat(x, starts) / counts


def _cops(outdoor: Vec, config: Config) -> tuple[Vec, Vec]:
    hp = config.sim.heat_pump
    cop = np.clip(hp.cop_base + hp.cop_slope * (outdoor - hp.cop_ref_c), hp.cop_min, hp.cop_max)
    cop_dhw = np.maximum(cop - hp.dhw_cop_penalty, hp.dhw_cop_min)
    return cop, cop_dhw


def _car_sessions(plugged: Vec, need_wh: Vec) -> tuple[Idx, Idx, Vec]:
    """(first minute, end minute, need kWh) of each run of plugged minutes."""
    on = np.concatenate(([False], plugged > 0.5, [False]))
    edges = np.flatnonzero(on[1:] != on[:-1])
    first = edges[0::2].astype(np.int64)
    end = edges[1::2].astype(np.int64)
    return first, end, need_wh[first] / 1000.0


def sessions_of(scenario: Scenario, config: Config, slot_min: int) -> Sessions:
    """Both cars' sessions and the (session, slot) pairs they can charge in, vectorised."""
    minutes = scenario.minutes
    firsts: list[Idx] = []
    ends: list[Idx] = []
    needs: list[Vec] = []
    cars: list[Idx] = []
    noms: list[Vec] = []
    wallboxes = (
        ("car_a", config.loads.wb_a.nominal_w),
        ("car_b", config.loads.wb_b.nominal_w),
    )
    for k, (prefix, nominal_w) in enumerate(wallboxes):
        first, end, need = _car_sessions(
            _col(scenario, f"{prefix}_plugged"), _col(scenario, f"{prefix}_need_wh")
        )
        firsts.append(first)
        ends.append(end)
        needs.append(need)
        cars.append(np.full(len(first), k, dtype=np.int64))
        noms.append(np.full(len(first), nominal_w / 1000.0))
    first = np.concatenate(firsts)
    end = np.concatenate(ends)
    nominal_kw = np.concatenate(noms)
    s_first = first // slot_min
    s_last = (end - 1) // slot_min
    n_slots = s_last - s_first + 1
    pair_session = np.repeat(np.arange(len(first), dtype=np.int64), n_slots)
    offset = np.arange(len(pair_session), dtype=np.int64) - np.repeat(
        np.cumsum(n_slots) - n_slots, n_slots
    )
    pair_slot = s_first[pair_session] + offset
    lo = np.maximum(first[pair_session], pair_slot * slot_min)
    hi = np.minimum(end[pair_session], (pair_slot + 1) * slot_min)
    slot_len = np.minimum((pair_slot + 1) * slot_min, minutes) - pair_slot * slot_min
    return Sessions(
        car=np.concatenate(cars),
        first_min=first,
        end_min=end,
        need_kwh=np.concatenate(needs),
        leaves=end < minutes,
        pair_session=pair_session,
        pair_slot=pair_slot,
        pair_max_kw=nominal_kw[pair_session] * (hi - lo) / slot_len,
    )


def aggregate(scenario: Scenario, config: Config, slot_min: int = 15) -> Slots:
    """The scenario's minutes as slot means (the last slot may be shorter)."""
    minutes = scenario.minutes
    starts = np.arange(0, minutes, slot_min, dtype=np.int64)
    counts = np.diff(np.append(starts, minutes)).astype(np.float64)
    mean = _slot_means
    cop, cop_dhw = _cops(_col(scenario, "outdoor_c"), config)
    return Slots(
        start=scenario.start,
        slot_min=slot_min,
        hours=counts / 60.0,
        pv_kw=mean(_col(scenario, "pv_w"), starts, counts) / 1000.0,
        house_kw=mean(_col(scenario, "house_w"), starts, counts) / 1000.0,
        heat_kw=mean(_col(scenario, "heat_demand_w"), starts, counts) / 1000.0,
        draw_kw=mean(_col(scenario, "dhw_draw_w"), starts, counts) / 1000.0,
        cop=mean(cop, starts, counts),
        cop_dhw=mean(cop_dhw, starts, counts),
        sessions=sessions_of(scenario, config, slot_min),
    )


# --------------------------------------------------------------------------- one window


@dataclass(slots=True)
class _State:
    """What one window hands the next: the stores at the boundary and each session's energy."""

    stored_kwh: float
    buffer_c: float
    dhw_c: float
    delivered_kwh: Vec


@dataclass(frozen=True, slots=True)
class _Plant:
    """The plant's parameters in the program's units (kW, kWh, kWh/K, kW/K)."""

    ac_kw: float
    capacity_kwh: float
    reserve_kwh: float
    charge_kw: float
    discharge_kw: float
    eff: float
    comp_kw: float
    backup_kw: float
    buf_cap: float
    buf_loss: float
    buf_amb: float
    buf_min: float
    buf_max: float
    dhw_cap: float
    dhw_loss: float
    dhw_amb: float
    dhw_min: float
    dhw_max: float
    import_eur: float
    feed_in_eur: float
    unmet_eur: float

    @classmethod
    def of(cls, config: Config) -> _Plant:
        sim = config.sim
        b, hp, bu, t = sim.battery, sim.heat_pump, sim.buffer, sim.dhw_tank
        tariff = config.tariff
        return cls(
            ac_kw=sim.inverter_ac_w / 1000.0,
            capacity_kwh=b.capacity_wh / 1000.0,
            reserve_kwh=b.reserve_wh / 1000.0,
            charge_kw=b.max_charge_w / 1000.0,
            discharge_kw=b.max_discharge_w / 1000.0,
            eff=b.efficiency,
            comp_kw=hp.compressor_w / 1000.0,
            backup_kw=hp.backup_heater_w / 1000.0,
            buf_cap=bu.kwh_per_k,
            buf_loss=bu.loss_w_per_k / 1000.0,
            buf_amb=bu.ambient_c,
            buf_min=bu.min_c,
            # The highest the heat pump's own thermostat heats to: SG-Ready's raised setpoint.
            buf_max=max(bu.off_at_c + bu.sg_raise_k, bu.initial_c),
            dhw_cap=t.kwh_per_k,
            dhw_loss=t.loss_w_per_k / 1000.0,
            dhw_amb=t.ambient_c,
            dhw_min=t.min_c,
            # The highest the tank is heated to: the boost target.
            dhw_max=max(config.loads.dhw.boost_c, t.off_at_c, t.initial_c),
            import_eur=tariff.import_eur_kwh,
            feed_in_eur=tariff.feed_in_eur_kwh,
            unmet_eur=tariff.unmet_car_eur_kwh,
        )


@dataclass(frozen=True, slots=True)
class _Window:
    """Slots s0..s1-1 of the scenario; `final` when s1 is the scenario's end."""

    s0: int
    s1: int
    final: bool
    pairs: Idx  # indices into Sessions' pair arrays
    sessions: Idx  # sessions with a pair in the window (sorted)

    @property
    def n(self) -> int:
        return self.s1 - self.s0


def _new_highs() -> Any:
    """A silent HiGHS instance.

    highspy's public `Highs` enables its callbacks in the constructor, which makes HiGHS write
    its banner to the process's standard output before any option can be set (and would spoil
    `emsctl simulate --json -`); the extension's own class takes the option first.
    """
    cls = getattr(getattr(highspy, "_core", None), "_Highs", None) or highspy.Highs
    h = cls()
    h.setOptionValue("output_flag", False)
    return h


class _Lp:
    """Columns, rows and triplets of one window's program, built block by block."""

    def __init__(self, n_col: int, n_row: int) -> None:
        self.cost = np.zeros(n_col)
        self.col_lo = np.zeros(n_col)
        self.col_hi = np.full(n_col, np.inf)
        self.row_lo = np.zeros(n_row)
        self.row_hi = np.zeros(n_row)
        self._rows: list[Idx] = []
        self._cols: list[Idx] = []
        self._vals: list[Vec] = []

    def add(self, rows: Idx, cols: Idx, vals: Vec | float) -> None:
        self._rows.append(rows)
        self._cols.append(cols)
        self._vals.append(np.broadcast_to(np.asarray(vals, dtype=np.float64), rows.shape))

    def solve(self, label: str) -> Vec:
        rows = np.concatenate(self._rows)
        cols = np.concatenate(self._cols)
        vals = np.concatenate(self._vals)
        order = np.lexsort((rows, cols))
        n_col = len(self.cost)
        lp = highspy.HighsLp()
        lp.num_col_ = n_col
        lp.num_row_ = len(self.row_lo)
        lp.col_cost_ = self.cost
        lp.col_lower_ = self.col_lo
        lp.col_upper_ = self.col_hi
        lp.row_lower_ = self.row_lo
        lp.row_upper_ = self.row_hi
        lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
        lp.a_matrix_.start_ = np.searchsorted(cols[order], np.arange(n_col + 1)).astype(np.int32)
        lp.a_matrix_.index_ = rows[order].astype(np.int32)
        lp.a_matrix_.value_ = vals[order]
        h = _new_highs()
        h.passModel(lp)
        h.run()
        status = h.getModelStatus()
        if status != highspy.HighsModelStatus.kOptimal:
            raise OptimumError(f"{label}: HiGHS ended with {h.modelStatusToString(status)}")
        return np.asarray(h.getSolution().col_value, dtype=np.float64)


def _block(n: int, block: int) -> Idx:
    """Column (or row) indices of one per-slot block of a window of n slots."""
    return np.arange(block * n, (block + 1) * n, dtype=np.int64)


def _bounds_and_cost(lp: _Lp, sl: Slots, w: _Window, p: _Plant) -> None:
    """Bounds and cost of the per-slot columns."""
    n = w.n
    h = sl.hours[w.s0 : w.s1]
    lp.cost[_block(n, _IMP)] = p.import_eur * h
    lp.cost[_block(n, _EXP)] = -p.feed_in_eur * h
    # The backup heater only holds minimum temperatures: its kWh are charged once more at the
    # import price so that it never beats the compressor, nor turns surplus into heat.
    lp.cost[_block(n, _BKB)] = p.import_eur * h
    lp.cost[_block(n, _BKD)] = p.import_eur * h
    lp.cost[_block(n, _SB)] = HEAT_SHORT_EUR_KWH * h
    lp.cost[_block(n, _SD)] = HEAT_SHORT_EUR_KWH * h
    upper = (
        (_CURT, sl.pv_kw[w.s0 : w.s1]),
        (_CH, p.charge_kw),
        (_DIS, p.discharge_kw),
        (_HPB, p.comp_kw),
        (_HPD, p.comp_kw),
        (_BKB, p.backup_kw),
        (_BKD, p.backup_kw),
        (_SOC, p.capacity_kwh),
        (_TB, p.buf_max),
        (_TD, p.dhw_max),
    )
    for block, hi in upper:
        lp.col_hi[_block(n, block)] = hi
    lp.col_lo[_block(n, _SOC)] = p.reserve_kwh
    lp.col_lo[_block(n, _TB)] = p.buf_min
    lp.col_lo[_block(n, _TD)] = p.dhw_min


def _balance_rows(lp: _Lp, sl: Slots, w: _Window, p: _Plant) -> None:
    """Power balance, the inverter's AC limit and what only PV can feed, per slot (kW)."""
    n = w.n
    pv = sl.pv_kw[w.s0 : w.s1]
    bal = _block(n, _R_BAL)
    for block, sign in (
        (_IMP, 1.0),
        (_EXP, -1.0),
        (_CURT, -1.0),
        (_CH, -1.0),
        (_DIS, 1.0),
        (_HPB, -1.0),
        (_HPD, -1.0),
        (_BKB, -1.0),
        (_BKD, -1.0),
    ):
        lp.add(bal, _block(n, block), sign)
    lp.row_lo[bal] = lp.row_hi[bal] = sl.house_kw[w.s0 : w.s1] - pv
    ac = _block(n, _R_AC)
    for block, sign in ((_CURT, -1.0), (_CH, -1.0), (_DIS, 1.0)):
        lp.add(ac, _block(n, block), sign)
    lp.row_lo[ac] = -p.ac_kw - pv
    lp.row_hi[ac] = p.ac_kw - pv
    # Self-consumption mode: the battery charges from PV only and discharges only into the
    # house's consumption, so what is exported, stored or curtailed is PV.
    own = _block(n, _R_PV)
    for block in (_EXP, _CH, _CURT):
        lp.add(own, _block(n, block), 1.0)
    lp.row_lo[own] = -np.inf
    lp.row_hi[own] = pv
    for row_block, a, b, hi in (
        (_R_COMP, _HPB, _HPD, p.comp_kw),
        (_R_BACKUP, _BKB, _BKD, p.backup_kw),
    ):
        rows = _block(n, row_block)
        lp.add(rows, _block(n, a), 1.0)
        lp.add(rows, _block(n, b), 1.0)
        lp.row_lo[rows] = -np.inf
        lp.row_hi[rows] = hi


def _store_rows(lp: _Lp, sl: Slots, w: _Window, p: _Plant, state: _State) -> None:
    """Battery, buffer and tank: each slot's end state from the one before (explicit Euler)."""
    n = w.n
    h = sl.hours[w.s0 : w.s1]
    t = np.arange(1, n, dtype=np.int64)
    bat = _block(n, _R_BAT)
    lp.add(bat, _block(n, _SOC), 1.0)
    lp.add(bat[t], _SOC * n + t - 1, -1.0)
    lp.add(bat, _block(n, _CH), -p.eff * h)
    lp.add(bat, _block(n, _DIS), h / p.eff)
    lp.row_lo[bat[0]] = lp.row_hi[bat[0]] = state.stored_kwh
    thermal = (
        (_R_BUF, _TB, _HPB, _BKB, _SB, sl.cop, sl.heat_kw, p.buf_cap, p.buf_loss, p.buf_amb),
        (_R_DHW, _TD, _HPD, _BKD, _SD, sl.cop_dhw, sl.draw_kw, p.dhw_cap, p.dhw_loss, p.dhw_amb),
    )
    starts = (state.buffer_c, state.dhw_c)
    for (row_block, temp, hp, bk, short, cop, demand, cap, loss, amb), t0 in zip(
        thermal, starts, strict=True
    ):
        rows = _block(n, row_block)
        keep = 1.0 - loss * h / cap  # the share of the temperature above ambient kept
        lp.add(rows, _block(n, temp), 1.0)
        lp.add(rows[t], temp * n + t - 1, -keep[t])
        lp.add(rows, _block(n, hp), -h * cop[w.s0 : w.s1] / cap)
        lp.add(rows, _block(n, bk), -h / cap)
        lp.add(rows, _block(n, short), -h / cap)
        rhs = h / cap * (loss * amb - demand[w.s0 : w.s1])
        rhs[0] += keep[0] * t0
        lp.row_lo[rows] = lp.row_hi[rows] = rhs


def _car_rows(lp: _Lp, sl: Slots, w: _Window, p: _Plant, state: _State) -> None:
    """Each car's charge power per slot it is plugged in, and per session: the energy given
    plus the shortfall is what it still wants. A shortfall when the car leaves costs the
    unmet price; one still plugged in at the window's end, about the import price
    (`PENDING_TIE_EUR_KWH`)."""
    n = w.n
    se = sl.sessions
    base_col = _BLOCKS * n
    n_pairs = len(w.pairs)
    pair_cols = base_col + np.arange(n_pairs, dtype=np.int64)
    short_cols = base_col + n_pairs + np.arange(len(w.sessions), dtype=np.int64)
    slot = se.pair_slot[w.pairs] - w.s0
    lp.col_hi[pair_cols] = se.pair_max_kw[w.pairs]
    lp.add(_R_BAL * n + slot, pair_cols, -1.0)
    rows = _ROW_BLOCKS * n + np.arange(len(w.sessions), dtype=np.int64)
    pair_rows = rows[np.searchsorted(w.sessions, se.pair_session[w.pairs])]
    lp.add(pair_rows, pair_cols, sl.hours[se.pair_slot[w.pairs]])
    lp.add(rows, short_cols, 1.0)
    lp.row_lo[rows] = lp.row_hi[rows] = np.maximum(
        se.need_kwh[w.sessions] - state.delivered_kwh[w.sessions], 0.0
    )
    end_slot = (se.end_min[w.sessions] - 1) // sl.slot_min
    leaves = se.leaves[w.sessions] & (end_slot < w.s1)
    tie = PENDING_TIE_EUR_KWH if w.final else -PENDING_TIE_EUR_KWH
    lp.cost[short_cols] = np.where(leaves, p.unmet_eur, p.import_eur + tie)


def _solve_window(sl: Slots, w: _Window, p: _Plant, state: _State) -> Vec:
    n_col = _BLOCKS * w.n + len(w.pairs) + len(w.sessions)
    n_row = _ROW_BLOCKS * w.n + len(w.sessions)
    lp = _Lp(n_col, n_row)
    _bounds_and_cost(lp, sl, w, p)
    _balance_rows(lp, sl, w, p)
    _store_rows(lp, sl, w, p, state)
    _car_rows(lp, sl, w, p, state)
    return lp.solve(f"slots {w.s0}..{w.s1 - 1}")


# --------------------------------------------------------------------------- rolling horizon

#: Series of the kept decisions: (name in OptimumSeries, column block).
_SERIES_BLOCKS: tuple[tuple[str, int], ...] = (
    ("import_kw", _IMP),
    ("export_kw", _EXP),
    ("curtail_kw", _CURT),
    ("charge_kw", _CH),
    ("discharge_kw", _DIS),
    ("hp_buffer_kw", _HPB),
    ("hp_dhw_kw", _HPD),
    ("backup_buffer_kw", _BKB),
    ("backup_dhw_kw", _BKD),
    ("stored_kwh", _SOC),
    ("buffer_c", _TB),
    ("dhw_c", _TD),
)


def _windows(sl: Slots, horizon: int, keep: int) -> list[tuple[_Window, int]]:
    """The rolling horizon: each window and the first slot after the part of it kept."""
    se = sl.sessions
    order = np.argsort(se.pair_slot, kind="stable")
    sorted_slots = se.pair_slot[order]
    out: list[tuple[_Window, int]] = []
    s0 = 0
    n = sl.count
    while s0 < n:
        s1 = min(s0 + horizon, n)
        final = s1 == n
        a, b = np.searchsorted(sorted_slots, [s0, s1])
        pairs = np.sort(order[a:b])
        sessions = np.unique(se.pair_session[pairs])
        out.append((_Window(s0, s1, final, pairs, sessions), n if final else s0 + keep))
        s0 = out[-1][1]
    return out


def _keep(
    x: Vec, sl: Slots, w: _Window, kept_to: int, series: dict[str, Vec], state: _State
) -> None:
    """Copy the kept part of a window's solution into the series; carry the state on."""
    n = w.n
    k = kept_to - w.s0
    for name, block in _SERIES_BLOCKS:
        series[name][w.s0 : kept_to] = x[block * n : block * n + k]
    series["heat_short_kw"][w.s0 : kept_to] = x[_SB * n : _SB * n + k] + x[_SD * n : _SD * n + k]
    se = sl.sessions
    pair_x = x[_BLOCKS * n : _BLOCKS * n + len(w.pairs)]
    slots = se.pair_slot[w.pairs]
    kept = slots < kept_to
    np.add.at(series["cars_kw"], slots[kept], pair_x[kept])
    np.add.at(
        state.delivered_kwh, se.pair_session[w.pairs][kept], pair_x[kept] * sl.hours[slots[kept]]
    )
    state.stored_kwh = float(x[_SOC * n + k - 1])
    state.buffer_c = float(x[_TB * n + k - 1])
    state.dhw_c = float(x[_TD * n + k - 1])


def _start_state(config: Config, sessions: Sessions) -> _State:
    sim = config.sim
    return _State(
        stored_kwh=sim.battery.initial_wh / 1000.0,
        buffer_c=sim.buffer.initial_c,
        dhw_c=sim.dhw_tank.initial_c,
        delivered_kwh=np.zeros(sessions.count),
    )


def solve_series(
    scenario: Scenario,
    config: Config,
    *,
    slot_min: int = 15,
    horizon_h: float = 48.0,
    keep_h: float = 24.0,
) -> tuple[Slots, OptimumSeries, int]:
    """Solve the rolling horizon; the slots, the kept decisions and the number of windows."""
    if scenario.minutes == 0:
        raise OptimumError(f"scenario {scenario.name} has no minutes")
    horizon = max(1, round(horizon_h * 60 / slot_min))
    keep = max(1, min(horizon, round(keep_h * 60 / slot_min)))
    sl = aggregate(scenario, config, slot_min)
    series, windows = solve_rolling(sl, _Plant.of(config), config, horizon, keep)
    return sl, series, windows


def solve_rolling(
    sl: Slots, p: _Plant, config: Config, horizon: int, keep: int
) -> tuple[OptimumSeries, int]:
    """The rolling horizon over given slots and plant (windows of `horizon` slots, the first
    `keep` kept): the kept decisions and the number of windows. `bench/control_reach.py`
    passes restricted slots and plants."""
    state = _start_state(config, sl.sessions)
    names = [name for name, _ in _SERIES_BLOCKS] + ["heat_short_kw", "cars_kw"]
    series = {name: np.zeros(sl.count) for name in names}
    windows = _windows(sl, horizon, keep)
    for w, kept_to in windows:
        x = _solve_window(sl, w, p, state)
        _keep(x, sl, w, kept_to, series, state)
    kept = OptimumSeries(
        hours=sl.hours,
        pv_kw=sl.pv_kw,
        house_kw=sl.house_kw,
        session_kwh=state.delivered_kwh,
        **series,
    )
    return kept, len(windows)


def solve_optimum(
    scenario: Scenario,
    config: Config,
    *,
    slot_min: int = 15,
    horizon_h: float = 48.0,
    keep_h: float = 24.0,
    keep_series: bool = True,
) -> OptimumResult:
    """The perfect-foresight optimum of the plant over the scenario (see the module's doc)."""
    t0 = time.perf_counter()
    sl, s, windows = solve_series(
        scenario, config, slot_min=slot_min, horizon_h=horizon_h, keep_h=keep_h
    )
    wall = time.perf_counter() - t0
    result = _figures(sl, s, config, wall, windows, horizon_h, keep_h)
    log.debug(
        "optimum of %s: %d windows solved in %.1f s, cost %.2f EUR",
        scenario.name,
        windows,
        wall,
        result.cost_eur,
    )
    return replace(result, series=s) if keep_series else result


def _figures(
    sl: Slots,
    s: OptimumSeries,
    config: Config,
    wall: float,
    windows: int,
    horizon_h: float,
    keep_h: float,
) -> OptimumResult:
    h = s.hours

    def kwh(x: Vec) -> float:
        return float(np.dot(x, h))

    tariff = config.tariff
    se = sl.sessions
    left = np.maximum(se.need_kwh - s.session_kwh, 0.0)
    unmet = float(left[se.leaves].sum())
    pending = float(left[~se.leaves].sum())
    pv = kwh(s.pv_kw)
    imp, exp, curt = kwh(s.import_kw), kwh(s.export_kw), kwh(s.curtail_kw)
    backup = kwh(s.backup_buffer_kw + s.backup_dhw_kw)
    heat_pump = kwh(s.hp_buffer_kw + s.hp_dhw_kw) + backup
    house = kwh(s.house_kw)
    wallbox = kwh(s.cars_kw)
    consumption = house + heat_pump + wallbox
    start_kwh = config.sim.battery.initial_wh / 1000.0
    delta = float(s.stored_kwh[-1]) - start_kwh
    r = ratios(
        tariff,
        pv=pv,
        imported=imp,
        exported=exp,
        curtailed=curt,
        consumption=consumption,
        unmet=unmet,
        pending=pending,
    )
    return OptimumResult(
        slot_min=sl.slot_min,
        horizon_h=horizon_h,
        keep_h=keep_h,
        windows=windows,
        pv_kwh=pv,
        house_kwh=house,
        heat_pump_kwh=heat_pump,
        backup_heater_kwh=backup,
        wallbox_kwh=wallbox,
        import_kwh=imp,
        export_kwh=exp,
        curtailed_kwh=curt,
        battery_delta_kwh=delta,
        battery_loss_kwh=kwh(s.charge_kw - s.discharge_kw) - delta,
        self_consumption=r.self_consumption,
        autarky=r.autarky,
        cost_eur=r.cost_eur,
        cost_with_unmet_eur=r.cost_with_unmet_eur,
        car_wanted_kwh=float(se.need_kwh.sum()),
        car_delivered_kwh=wallbox,
        car_unmet_kwh=unmet,
        car_pending_kwh=pending,
        heat_short_kwh=kwh(s.heat_short_kw),
        solve_s=wall,
    )
