"""Rule 17 in the engine: a wallbox's plan (mode, target, what the car does) and what it asks
of the start, the keeping, the brake, the exclusion and the budget."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

from emsctl.engine import evaluate
from emsctl.engine.facts import due_key
from emsctl.model import CarPlan, ChargeMode, Event, LoadStatus, ReasonCode, Release, State
from tests.unit.corekit import (
    CFG,
    WA,
    WB,
    decide,
    make_config,
    s,
    snap,
    status,
    statuses,
    verdict,
)

#: Monday 1 June 2026 12:00 UTC (14:00 local).
NOW = datetime(2026, 6, 1, 12, 0, tzinfo=snap().at.tzinfo)
#: Charging by target on both wallboxes, no window.
CARS = make_config(
    {
        "loads": {
            wb: {"fallback": {"enabled": False}, "charging": {"enabled": True}}
            for wb in ("wb_a", "wb_b")
        }
    }
)


def plan(mode: ChargeMode = ChargeMode.SOLAR_TARGET, **kw: object) -> CarPlan:
    base: dict[str, object] = {"deadline": NOW + timedelta(hours=12), "need_wh": 6000.0}
    base.update(kw)
    return CarPlan(mode, **base)  # type: ignore[arg-type]


def planned(st: LoadStatus, p: CarPlan) -> LoadStatus:
    return replace(st, plan=p)


def codes(d: object, load: object = WA) -> tuple[ReasonCode, ...]:
    return verdict(d, load).codes  # type: ignore[arg-type]


def test_mode_off_starts_nothing_and_stops_a_running_charge() -> None:
    off = plan(ChargeMode.OFF)
    d = decide(snap(NOW, grid=-5000, soc=95), statuses(planned(status(WA), off)), CARS, NOW)
    assert not verdict(d, WA).start_ok and ReasonCode.MODE_OFF in codes(d)
    running = planned(status(WA, State.ON, since=NOW - s(3600), power_w=2000), off)
    d = decide(snap(NOW, grid=-5000, soc=95), statuses(running), CARS, NOW)
    assert verdict(d, WA).event is Event.WEAKEN and ReasonCode.MODE_OFF in codes(d)


def test_mode_now_charges_regardless_of_surplus_brake_and_peer() -> None:
    now = plan(ChargeMode.NOW)
    sts = statuses(planned(status(WA), now), status(WB, State.ON, since=NOW - s(3600)))
    d = decide(snap(NOW, grid=3000, soc=30), sts, CARS, NOW)
    assert verdict(d, WA).start_ok and ReasonCode.MODE_NOW in codes(d)
    running = planned(status(WA, State.ON, since=NOW - s(60), power_w=2000), now)
    d = decide(snap(NOW, grid=3000, soc=30), statuses(running), CARS, NOW)
    assert verdict(d, WA).event is None  # not braked, kept


def test_mode_solar_waits_for_surplus_and_ignores_a_window() -> None:
    cfg = make_config({"loads": {"wb_a": {"fallback": {"enabled": True}}}})  # all day
    solar = plan(ChargeMode.SOLAR)
    d = decide(snap(NOW, grid=500, soc=95), statuses(planned(status(WA), solar)), cfg, NOW)
    assert not verdict(d, WA).start_ok and ReasonCode.NO_SURPLUS in codes(d)
    assert ReasonCode.CHARGING_WINDOW not in codes(d)


def test_before_its_latest_start_a_target_waits_for_surplus() -> None:
    p = plan()  # 6 kWh by 02:00 UTC: latest start 19:00 UTC (6 h x 1.25... at 2 kW: 3.75 h + 0.5)
    d = decide(snap(NOW, grid=500, soc=95), statuses(planned(status(WA), p)), CARS, NOW)
    assert not verdict(d, WA).start_ok
    assert codes(d)[0] is ReasonCode.TARGET_PLANNED
    assert "surplus until" in verdict(d, WA).reasons[0]


def test_from_its_latest_start_a_target_charges_below_the_brake_and_stays_due() -> None:
    p = plan(deadline=NOW + timedelta(hours=4))  # latest start 3 h 45 min + 30 min before
    sts = statuses(planned(status(WA), p))
    d = decide(snap(NOW, grid=2000, soc=30), sts, CARS, NOW)
    assert verdict(d, WA).start_ok and codes(d)[0] is ReasonCode.TARGET_DUE
    assert d.watch[due_key(WA)] == p.deadline
    # Charging: the need shrinks and the latest start moves later, but it stays due.
    later = replace(p, need_wh=1000.0, drawing=True)
    running = planned(status(WA, State.ON, since=NOW, power_w=2000), later)
    d2 = decide(
        snap(NOW + s(600), grid=2000, soc=30), statuses(running), CARS, NOW + s(600), d.watch
    )
    assert verdict(d2, WA).event is None and ReasonCode.TARGET_DUE in codes(d2)
    # Met while the car still draws: it charges on until it is full.
    met = replace(later, need_wh=0.0)
    running = planned(status(WA, State.ON, since=NOW, power_w=2000), met)
    d3 = decide(
        snap(NOW + s(900), grid=2000, soc=60), statuses(running), CARS, NOW + s(900), d.watch
    )
    assert verdict(d3, WA).event is None
    assert "energy reached, the car still draws" in verdict(d3, WA).reason
    # Past the deadline the memory is over: surplus rules again.
    gone = replace(met, deadline=NOW + s(60))
    d4 = decide(
        snap(NOW + s(120), grid=2000, soc=60),
        statuses(planned(status(WA, State.ON, since=NOW, power_w=2000), gone)),
        CARS,
        NOW + s(120),
        {due_key(WA): gone.deadline},
    )
    assert verdict(d4, WA).event is Event.WEAKEN


def test_a_met_target_is_said_and_no_target_says_nothing() -> None:
    met = plan(need_wh=0.0)
    d = decide(snap(NOW, grid=500, soc=95), statuses(planned(status(WA), met)), CARS, NOW)
    assert codes(d)[0] is ReasonCode.TARGET_MET
    bare = plan(deadline=None)
    d = decide(snap(NOW, grid=500, soc=95), statuses(planned(status(WA), bare)), CARS, NOW)
    assert ReasonCode.TARGET_MET not in codes(d) and ReasonCode.TARGET_PLANNED not in codes(d)
    # A running wallbox says it too.
    running = planned(status(WA, State.ON, since=NOW - s(3600), power_w=2000), met)
    d = decide(snap(NOW, grid=-3000, soc=95), statuses(running), CARS, NOW)
    assert ReasonCode.TARGET_MET in codes(d)


def test_no_sun_ahead_makes_the_target_due_at_once() -> None:
    p = plan(sun_ahead=False)
    d = decide(snap(NOW, grid=500, soc=95), statuses(planned(status(WA), p)), CARS, NOW)
    assert verdict(d, WA).start_ok
    assert "no surplus expected before it" in verdict(d, WA).reasons[0]


def test_an_awaiting_relay_stays_on_past_the_brake_and_binds_no_peer() -> None:
    wait = CarPlan(ChargeMode.SOLAR_TARGET, awaiting=True)
    a = planned(status(WA, State.ON, since=NOW - s(3600), power_w=0.0), wait)
    d = decide(snap(NOW, grid=1000, soc=30), statuses(a), CARS, NOW)
    assert verdict(d, WA).event is None and ReasonCode.AWAITING_CAR in codes(d)
    # WB B may start on surplus beside it: the awaiting relay draws nothing.
    b = status(WB, State.ARMING, since=NOW - s(600))
    d = decide(snap(NOW, grid=-12000, soc=95), statuses(a, b), CARS, NOW)
    assert verdict(d, WB).event is Event.START


def test_a_car_that_came_and_need_not_charge_is_held_at_once() -> None:
    came = plan(hold=True, drawing=True)
    st = planned(status(WA, State.ON, since=NOW - s(7200), power_w=2000), came)
    d = decide(snap(NOW, grid=2000, soc=95), statuses(st), CARS, NOW)
    v = verdict(d, WA)
    assert v.event is Event.RELEASE and v.release is Release.HOLD and v.cooldown_s == 0
    assert v.codes[0] is ReasonCode.CAR_HELD
    # With surplus to cover it, it charges on.
    d = decide(snap(NOW, grid=-3000, soc=95), statuses(st), CARS, NOW)
    assert verdict(d, WA).event is None


def test_an_unmetered_wallbox_counts_its_estimated_draw() -> None:
    # WB B running with no car drawing (estimated): its own power is 0, so the surplus left
    # for WB A is what the grid shows.
    idle = CarPlan(ChargeMode.SOLAR_TARGET, drawing=False, deadline=NOW + timedelta(hours=12))
    b = planned(status(WB, State.ON, since=NOW - s(3600)), idle)
    d = evaluate(snap(NOW, grid=-1500, soc=95), statuses(b), CARS, NOW)
    assert "surplus covers the load (0 W)" in verdict(d, WB).reasons
    drawing = replace(idle, drawing=True)
    d = evaluate(snap(NOW, grid=-1500, soc=95), statuses(replace(b, plan=drawing)), CARS, NOW)
    assert "surplus covers the load (4.0 kW)" in verdict(d, WB).reasons


def test_a_car_gone_at_its_target_start_is_released_to_look_again_sooner() -> None:
    due = plan(deadline=NOW + timedelta(hours=3), drawing=False)
    st = planned(status(WA, State.ON, since=NOW - s(600), power_w=0.0), due)
    watch = {f"{WA.value}.not_drawing": NOW - s(400), due_key(WA): due.deadline}
    d = decide(snap(NOW, grid=0, soc=95), statuses(st), CARS, NOW, watch)
    v = verdict(d, WA)
    assert v.event is Event.RELEASE and v.release is Release.CAR_NOT_CHARGING
    assert v.cooldown_s == CFG.loads.wb_a.charging.probe_retry_s


def test_a_target_beyond_a_day_names_its_weekday() -> None:
    p = plan(deadline=NOW + timedelta(days=2, hours=1))
    d = decide(snap(NOW, grid=500, soc=95), statuses(planned(status(WA), p)), CARS, NOW)
    assert verdict(d, WA).reasons[0].startswith("target Wed 15:00: 6.0 kWh to go")
