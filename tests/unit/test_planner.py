"""The day-ahead planner (rule 19): the battery model, the spare energy, the placement of runs,
when a new plan is made, and what the plan tells the engine."""

from __future__ import annotations

import itertools
import math
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from emsctl.model import (
    FORECAST_SLOT_S,
    Forecast,
    LoadId,
    LoadStatus,
    ReasonCode,
    Snapshot,
    State,
)
from emsctl.planner import FlexLoad, PlanInput, make_plan, simulate, spare, word
from emsctl.planner.driver import Planner
from emsctl.planner.types import SLOT_H, BatteryModel

from .corekit import SG, decide, make_config, snap, status, statuses, verdict

BAT = BatteryModel(
    capacity_wh=8000,
    reserve_wh=800,
    max_charge_w=4000,
    max_discharge_w=4000,
    efficiency=0.95,
    inverter_ac_w=4600,
)
#: Midnight in Berlin (CEST) on a summer day, a slot boundary.
DAY0 = datetime(2026, 6, 14, 22, 0, tzinfo=UTC)
SLOTS = 96


def bell(peak_w: float, n: int = SLOTS, first: int = 24, last: int = 80) -> list[float]:
    """PV Wh per slot: a half sine from slot `first` to `last` (06:00 to 20:00 local)."""
    out = []
    for k in range(n):
        k_day = k % SLOTS
        if first <= k_day < last:
            out.append(peak_w * math.sin(math.pi * (k_day - first) / (last - first)) * SLOT_H)
        else:
            out.append(0.0)
    return out


def flat(w: float, n: int = SLOTS) -> list[float]:
    return [w * SLOT_H] * n


def plan_input(
    pv: list[float],
    load: list[float],
    stored_wh: float,
    loads: tuple[FlexLoad, ...],
    min_spare: float = 0.7,
) -> PlanInput:
    n = len(pv)
    return PlanInput(
        start=DAY0,
        pv_wh=tuple(pv),
        load_wh=tuple(load),
        day=tuple(k // SLOTS for k in range(n)),
        stored_wh=stored_wh,
        battery=BAT,
        loads=loads,
        min_spare=min_spare,
    )


SG_FLEX = FlexLoad(LoadId.SG_READY, 2000, block_slots=2, gap_slots=4, blocks=(2, 2))
DHW_FLEX = FlexLoad(LoadId.DHW, 2000, block_slots=1, gap_slots=4, blocks=(1, 1))


# -- the battery ---------------------------------------------------------------------------


@settings(max_examples=60, deadline=None, derandomize=True, database=None)
@given(
    st.lists(st.floats(0, 2500), min_size=8, max_size=40),
    st.lists(st.floats(0, 1500), min_size=8, max_size=40),
    st.floats(0, 8000),
)
def test_the_battery_model_keeps_its_bounds_and_the_balance(
    pv: list[float], load: list[float], stored: float
) -> None:
    n = min(len(pv), len(load))
    pv, load = pv[:n], load[:n]
    f = simulate(pv, load, stored, BAT)
    before = min(max(stored, 0.0), BAT.capacity_wh)
    for k in range(n):
        s = f.stored[k]
        assert -1e-6 <= s <= BAT.capacity_wh + 1e-6
        assert min(f.imported[k], f.exported[k]) == 0.0  # never both in one slot
        assert f.curtailed[k] >= 0.0
        # Energy in = energy out: what the battery took or gave is its change over eta.
        delta = s - before
        battery_ac = delta / BAT.efficiency if delta > 0 else delta * BAT.efficiency
        inflow = pv[k] + f.imported[k]
        outflow = load[k] + f.exported[k] + f.curtailed[k] + battery_ac
        assert math.isclose(inflow, outflow, abs_tol=1e-6), (k, inflow, outflow)
        if delta < -1e-9:
            assert s >= BAT.reserve_wh - 1e-6  # never discharged below the reserve
        before = s


def test_pv_above_the_ac_limit_is_clipped_only_when_the_battery_is_full() -> None:
    pv = [6000 * SLOT_H] * 8
    f = simulate(pv, flat(300, 8), 7000, BAT)
    assert f.curtailed[0] == 0.0  # the battery takes the DC above 4.6 kW
    assert f.stored[-1] == BAT.capacity_wh
    assert f.curtailed[-1] > 0.0
    assert f.exported[-1] == (4600 - 300) * SLOT_H


def test_incremental_simulation_equals_a_full_one() -> None:
    pv, load = bell(5000), flat(500)
    full = simulate(pv, load, 3000, BAT)
    load2 = load[:]
    load2[50] += 500
    again = simulate(pv, load2, 3000, BAT)
    part = simulate(pv, load2, 3000, BAT, 50, full)
    assert part == again


# -- spare energy ---------------------------------------------------------------------------


def test_energy_is_spare_before_noon_on_a_day_the_battery_fills_anyway() -> None:
    pv, load = bell(6000), flat(400)
    f = simulate(pv, load, 2000, BAT)
    free = spare(f, BAT)
    full = next(k for k, s in enumerate(f.stored) if s >= BAT.capacity_wh - 1)
    morning = full - 6
    assert f.exported[morning] == 0.0 and f.curtailed[morning] == 0.0
    assert free[morning] > 0.0  # taken from a battery that fills later anyway
    assert all(free[k] == 0.0 for k in range(0, 20))  # the night before: nothing spare


def test_nothing_is_spare_on_a_day_the_battery_will_not_fill() -> None:
    pv, load = bell(1500, first=34, last=66), flat(400)
    f = simulate(pv, load, 1000, BAT)
    assert max(f.stored) < BAT.capacity_wh - 100
    assert max(spare(f, BAT)) == 0.0


# -- placing runs ---------------------------------------------------------------------------


def _check_blocks(inp: PlanInput) -> None:
    plan = make_plan(inp, DAY0)
    busy: set[int] = set()
    for flex in inp.loads:
        own = plan.blocks_of(flex.load)
        for day, allowed in enumerate(flex.blocks):
            assert sum(1 for b in own if inp.day[b.first] == day) <= allowed
        for b in own:
            assert b.slots == flex.block_slots
            assert inp.day[b.first] == inp.day[b.last]
            assert b.spare_wh >= inp.min_spare * flex.power_w * SLOT_H * b.slots - 1e-6
        for a, b in itertools.pairwise(own):
            assert b.first - a.last > flex.gap_slots
        for b in own:
            slots = set(range(b.first, b.last + 1))
            assert not slots & busy  # the compressor runs one load at a time
            busy |= slots


@settings(max_examples=40, deadline=None, derandomize=True, database=None)
@given(
    st.floats(0, 9000),
    st.floats(100, 1500),
    st.floats(0, 8000),
    st.integers(0, 3),
    st.integers(0, 2),
    st.floats(0.1, 1.0),
)
def test_plans_never_break_starts_runtimes_or_the_compressors_exclusion(
    peak: float, base: float, stored: float, sg_blocks: int, dhw_blocks: int, min_spare: float
) -> None:
    sg = FlexLoad(LoadId.SG_READY, 2000, 2, 4, (sg_blocks, sg_blocks))
    dhw = FlexLoad(LoadId.DHW, 2000, 1, 4, (dhw_blocks, 0))
    inp = plan_input(bell(peak, 2 * SLOTS), flat(base, 2 * SLOTS), stored, (sg, dhw), min_spare)
    _check_blocks(inp)


def test_sunny_day_runs_come_before_the_clipping_so_the_battery_takes_it() -> None:
    # 7 kWp on a clear day: PV above 4.6 kW at noon, the battery full by late morning.
    pv, load = bell(6800), flat(400)
    inp = plan_input(pv, load, 4000, (SG_FLEX, DHW_FLEX))
    plan = make_plan(inp, DAY0)
    assert plan.blocks, plan
    without = simulate(pv, load, 4000, BAT)
    clipped = [k for k, c in enumerate(without.curtailed) if c > 0]
    assert clipped  # the day clips without the runs
    # A run before the clipping leaves the battery room to take it.
    assert min(b.first for b in plan.blocks) < clipped[0]
    assert sum(plan.curtailed_wh) < sum(without.curtailed) - 100
    assert sum(plan.import_wh) <= sum(without.imported) + 1e-6
    # Every run uses energy that would have been exported or clipped.
    assert sum(plan.export_wh) + sum(plan.curtailed_wh) < sum(without.exported) + sum(
        without.curtailed
    )


def test_a_winter_day_with_a_little_sun_places_sg_ready_in_the_afternoon() -> None:
    # Short day, 2.8 kW peak at 13:00 local, the battery nearly full from the morning.
    pv = bell(2800, first=34, last=70)
    inp = plan_input(pv, flat(350), 7000, (FlexLoad(LoadId.SG_READY, 2000, 2, 4, (1,)),))
    plan = make_plan(inp, DAY0)
    (block,) = plan.blocks
    local = plan.slot_start(block.first).astimezone(make_config().control.tz)
    assert 12 <= local.hour <= 16, local


def test_a_day_the_battery_will_not_fill_gets_no_run() -> None:
    inp = plan_input(bell(1500, first=34, last=66), flat(400), 1000, (SG_FLEX, DHW_FLEX))
    plan = make_plan(inp, DAY0)
    assert plan.blocks == ()
    assert plan.full_slot is None


# -- the engine's word ---------------------------------------------------------------------


def test_words_say_planned_hold_or_spare() -> None:
    tz = make_config().control.tz
    plan = make_plan(plan_input(bell(6800), flat(400), 4000, (SG_FLEX,)), DAY0)
    first = plan.blocks_of(SG)[0]
    at = plan.slot_start(first.first) + timedelta(minutes=5)
    w = word(plan, SG, at, nominal_w=2000, start_fraction=0.25, min_spare=0.7, tz=tz)
    assert w is not None and w.on and not w.hold
    assert w.start_w == 500 and w.tolerated_w == 1500
    assert w.text.startswith("planned ")
    # At night: no run (there is no surplus to start one on).
    night = DAY0 + timedelta(hours=2)
    w = word(plan, SG, night, nominal_w=2000, start_fraction=0.25, min_spare=0.7, tz=tz)
    assert w is not None and not w.on
    assert (
        word(
            plan,
            SG,
            DAY0 - timedelta(hours=1),
            nominal_w=2000,
            start_fraction=0.25,
            min_spare=0.7,
            tz=tz,
        )
        is None
    )


def test_the_will_not_fill_word_says_how_full_it_gets() -> None:
    tz = make_config().control.tz
    plan = make_plan(plan_input(bell(1500, first=34, last=66), flat(400), 1000, (SG_FLEX,)), DAY0)
    noon = DAY0 + timedelta(hours=12)
    w = word(plan, SG, noon, nominal_w=2000, start_fraction=0.25, min_spare=0.7, tz=tz)
    assert w is not None and w.hold
    assert "will not fill" in w.text


def test_a_planned_load_starts_on_less_surplus_and_says_why() -> None:
    from emsctl.model import PlanWord

    cfg = make_config({"planner": {"enabled": True}})
    now = datetime(2026, 6, 15, 10, 0, tzinfo=UTC)
    arming = status(SG, State.ARMING, since=now - timedelta(minutes=10))
    plain = verdict(decide(snap(now, grid=-800, soc=80), statuses(arming), cfg, now), SG)
    assert not plain.start_ok and ReasonCode.NO_SURPLUS in plain.codes
    arming.planned = PlanWord(True, False, 500, 1500, "planned 12:00-12:30: battery full")
    v = verdict(decide(snap(now, grid=-800, soc=80), statuses(arming), cfg, now), SG)
    assert v.start_ok
    assert ReasonCode.PLANNED in v.codes and "planned 12:00-12:30: battery full" in v.reasons


def test_the_plans_hold_keeps_a_load_off_unless_the_battery_is_full() -> None:
    from emsctl.model import PlanWord

    cfg = make_config({"planner": {"enabled": True}})
    now = datetime(2026, 6, 15, 10, 0, tzinfo=UTC)
    arming = status(SG, State.ARMING, since=now - timedelta(minutes=10))
    arming.planned = PlanWord(False, True, 500, 0, "plan: the battery needs the surplus now")
    held = verdict(decide(snap(now, grid=-3000, soc=80), statuses(arming), cfg, now), SG)
    assert not held.start_ok and ReasonCode.PLAN_HOLD in held.codes
    full = verdict(decide(snap(now, grid=-3000, soc=96), statuses(arming), cfg, now), SG)
    assert full.start_ok and ReasonCode.PLAN_HOLD not in full.codes


def test_a_planned_run_keeps_on_while_the_surplus_gives_its_start_share() -> None:
    from emsctl.model import PlanWord

    cfg = make_config({"planner": {"enabled": True}})
    now = datetime(2026, 6, 15, 10, 0, tzinfo=UTC)
    on = status(SG, State.ON, since=now - timedelta(hours=1), relay_on=True)
    on.on_since = now - timedelta(hours=1)
    # The compressor draws 2 kW; the grid imports 1 kW: 1 kW of surplus under the load.
    cloudy = snap(now, grid=1000, soc=80, compressor=2000)
    assert not verdict(decide(cloudy, statuses(on), cfg, now), SG).keep_ok
    on.planned = PlanWord(True, False, 500, 1500, "planned 12:00-13:00: battery full")
    assert verdict(decide(cloudy, statuses(on), cfg, now), SG).keep_ok
    # A cloud that takes it all still stops it the ordinary way.
    dark = snap(now, grid=1800, soc=80, compressor=2000)
    assert not verdict(decide(dark, statuses(on), cfg, now), SG).keep_ok


# -- when to plan ---------------------------------------------------------------------------


def _forecast(fetched: datetime, peak: float = 6800) -> Forecast:
    return Forecast(
        fetched_at=fetched,
        remaining_today_wh=0.0,
        slots_start=DAY0,
        slot_wh=tuple(bell(peak, 2 * SLOTS)),
    )


def _statuses(cfg_loads: list[LoadId], at: datetime) -> dict[LoadId, LoadStatus]:
    return {load: LoadStatus(load=load, state=State.OFF, since=at) for load in cfg_loads}


def test_the_planner_plans_again_when_due_the_forecast_changes_or_a_run_begins() -> None:
    cfg = make_config({"planner": {"enabled": True}})
    planner = Planner(cfg)
    now = DAY0 + timedelta(hours=8)
    sts = _statuses(list(LoadId), now)
    fc = _forecast(now)
    snapshot = Snapshot(at=now, soc_pct=50.0, forecast=fc)
    assert planner.update(now, snapshot, sts) is not None
    assert planner.made == 1
    later = now + timedelta(minutes=5)
    assert not planner.due(later, fc, sts)
    cloudy = _forecast(later, peak=2000)
    assert planner.due(later, cloudy, sts)  # a new forecast
    sts[SG] = LoadStatus(load=SG, state=State.ON, since=later)
    assert planner.due(later, fc, sts)  # a run began
    assert planner.due(now + timedelta(seconds=FORECAST_SLOT_S), fc, _statuses(list(LoadId), now))
    planner.update(later, Snapshot(at=later, soc_pct=50.0, forecast=cloudy), sts)
    assert planner.made == 2


def test_without_the_days_shape_there_is_no_plan_and_the_rules_act_alone() -> None:
    cfg = make_config({"planner": {"enabled": True}})
    planner = Planner(cfg)
    now = DAY0 + timedelta(hours=8)
    bare = Forecast(fetched_at=now, remaining_today_wh=10000.0)
    assert (
        planner.update(
            now, Snapshot(at=now, soc_pct=50.0, forecast=bare), _statuses(list(LoadId), now)
        )
        is None
    )
    assert planner.failed == "no forecast of the day's shape"
    assert planner.words(now) == {}


def test_a_stale_plan_is_not_used() -> None:
    cfg = make_config({"planner": {"enabled": True}})
    planner = Planner(cfg)
    now = DAY0 + timedelta(hours=8)
    planner.update(
        now, Snapshot(at=now, soc_pct=50.0, forecast=_forecast(now)), _statuses(list(LoadId), now)
    )
    assert planner.current(now + timedelta(seconds=cfg.planner.stale_s)) is not None
    assert planner.current(now + timedelta(seconds=cfg.planner.stale_s + 1)) is None
    assert planner.words(now + timedelta(seconds=cfg.planner.stale_s + 1)) == {}


def test_a_load_that_used_its_starts_today_gets_no_run_today() -> None:
    cfg = make_config({"planner": {"enabled": True}})
    planner = Planner(cfg)
    now = DAY0 + timedelta(hours=7)
    sts = _statuses(list(LoadId), now)
    today = now.astimezone(cfg.control.tz).date()
    sts[SG].starts_today, sts[SG].starts_day = 4, today
    sts[LoadId.DHW].starts_today, sts[LoadId.DHW].starts_day = 4, today
    plan = planner.update(now, Snapshot(at=now, soc_pct=40.0, forecast=_forecast(now)), sts)
    assert plan is not None
    for b in plan.blocks:
        assert plan.slot_start(b.first).astimezone(cfg.control.tz).date() != today, b
    assert plan.blocks  # tomorrow's runs are planned


def test_a_run_going_on_stays_in_the_plan_until_its_minimum_runtime() -> None:
    cfg = make_config({"planner": {"enabled": True}})
    planner = Planner(cfg)
    now = DAY0 + timedelta(hours=10, minutes=5)
    sts = _statuses(list(LoadId), now)
    sts[SG] = LoadStatus(load=SG, state=State.ON, since=now - timedelta(minutes=10))
    sts[SG].on_since = now - timedelta(minutes=10)
    plan = planner.update(now, Snapshot(at=now, soc_pct=60.0, forecast=_forecast(now)), sts)
    assert plan is not None
    run = plan.blocks_of(SG)[0]
    # On for 10 of its 30 minutes, 5 minutes into this slot: 20 minutes to go end in the
    # next slot, so the run holds this slot and the next.
    assert (run.first, run.slots) == (0, 2)
    w = planner.words(now)[SG]
    assert w.on and w.text.startswith("planned ")


def test_no_run_is_planned_below_the_loads_soc_gate() -> None:
    # A sunny morning from a near-empty battery: energy is spare from sunrise on (the battery
    # fills by noon anyway), but the gate (50 % = 4 kWh) holds until the battery reaches it.
    pv, load = bell(6800), flat(400)
    base = plan_input(pv, load, 900, ())
    # Runs only before 08:15 local (slot 33): "today" ends there for this test.
    morning = replace(base, day=tuple(0 if k < 33 else 1 for k in range(SLOTS)))
    flows = simulate(pv, load, 900, BAT)
    for gate_wh, expect_early in ((0.0, True), (4000.0, False)):
        flex = FlexLoad(LoadId.SG_READY, 2000, 2, 4, (1, 0), gate_wh=gate_wh)
        plan = make_plan(replace(morning, loads=(flex,)), DAY0)
        early = [b for b in plan.blocks if flows.stored[b.first - 1] < 4000]
        assert bool(early) == expect_early, (gate_wh, plan.blocks)


def test_a_car_waiting_for_the_sun_is_served_before_any_heat_pump_run() -> None:
    from emsctl.planner.types import CarClaim

    # A day with spare energy for about one car charge: with the car's claim, no heat-pump run
    # takes what the car keeper waits for.
    pv, load = bell(4200, first=36, last=64), flat(300)
    alone = make_plan(plan_input(pv, load, 7000, (SG_FLEX,)), DAY0)
    assert alone.blocks
    car = CarClaim(power_w=4000, need_wh=20000, until=SLOTS)
    inp = replace(plan_input(pv, load, 7000, (SG_FLEX,)), cars=(car,))
    with_car = make_plan(inp, DAY0)
    assert with_car.blocks == ()
    # The car's claim is in the expected consumption.
    assert sum(with_car.load_wh) > sum(load) + 5000
