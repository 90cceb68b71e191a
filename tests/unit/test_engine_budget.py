"""Engine rules 1, 2, 8 and 14 at their boundaries: SOC gates, the surplus budget, per-phase
export and the forecast's gate shift. Every case sits just below, at or just above a threshold
of tests/unit/corekit.py's config (the house's numbers)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from emsctl.engine import effective_gate, forecast_shift
from emsctl.model import Event, Forecast, State

from .corekit import (
    CFG,
    DHW,
    SG,
    T0,
    WA,
    WB,
    decide,
    loads_patch,
    make_config,
    snap,
    status,
    statuses,
    verdict,
)

# --------------------------------------------------------------------------- rule 1: gates


@pytest.mark.parametrize(("soc", "ok"), [(49.9, False), (50.0, True), (50.1, True)])
def test_sg_ready_starts_only_at_or_above_its_50_percent_gate(soc: float, ok: bool) -> None:
    d = decide(snap(grid=-2500, soc=soc))
    v = verdict(d, SG)
    assert v.start_ok is ok
    assert v.event is (Event.ARM if ok else None)
    if not ok:
        assert "soc 49.9% < gate 50%" in v.reasons


@pytest.mark.parametrize(("soc", "ok"), [(69.9, False), (70.0, True), (70.1, True)])
def test_wb_a_starts_only_at_or_above_its_70_percent_gate(soc: float, ok: bool) -> None:
    # sg_ready and dhw reserve 2 kW each first: 6 kW leaves 2 kW for WB A.
    d = decide(snap(grid=-6000, soc=soc))
    assert verdict(d, WA).start_ok is ok


@pytest.mark.parametrize(("soc", "ok"), [(89.9, False), (90.0, True)])
def test_wb_b_starts_only_at_or_above_its_90_percent_gate(soc: float, ok: bool) -> None:
    # At 90 % every load is eligible: SG-Ready, DHW and WB A reserve 6 kW; 10 kW leaves 4 kW.
    d = decide(snap(grid=-10000, soc=soc))
    assert verdict(d, WB).start_ok is ok


@pytest.mark.parametrize(("soc", "keeps"), [(47.1, True), (47.0, True), (46.9, False)])
def test_running_load_keeps_down_to_gate_minus_hysteresis(soc: float, keeps: bool) -> None:
    # sg_ready gate 50 %, hysteresis 3: the stop condition holds below 47 %.
    sts = statuses(status(SG, State.ON, since=T0.replace(hour=8)))
    v = verdict(decide(snap(grid=-500, soc=soc), sts), SG)
    assert v.keep_ok is keeps
    assert v.event is (None if keeps else Event.WEAKEN)
    if not keeps:
        assert "soc 46.9% < gate 50% - 3" in v.reasons


def test_gate_reason_shows_the_decimal_that_decides() -> None:
    # A whole-number display would read "soc 70% < gate 70%", which looks like a bug.
    v = verdict(decide(snap(grid=-6000, soc=69.96)), WA)
    assert "soc 70.0% < gate 70%" not in v.reason
    assert "< gate 70%" in v.reason


# --------------------------------------------------------------------------- rule 2: surplus


@pytest.mark.parametrize(
    ("grid", "battery", "ok"),
    [
        (-1999, 0, False),
        (-2000, 0, True),
        (-2001, 0, True),
        (-1000, 1000, True),  # battery charging counts as surplus
        (-1000, 999, False),
        (-2500, -501, False),  # battery discharge counts against it
        (-2500, -500, True),
        (500, 2500, True),  # importing while the battery charges: still a surplus of 2 kW
    ],
)
def test_start_needs_surplus_of_export_plus_charging_at_least_start_w(
    grid: float, battery: float, ok: bool
) -> None:
    d = decide(snap(grid=grid, battery=battery, soc=60))
    assert d.surplus_w == -grid + battery
    assert verdict(d, SG).start_ok is ok
    assert verdict(d, SG).surplus_w == -grid + battery


def test_start_threshold_is_start_w_when_set() -> None:
    cfg = make_config(loads_patch(sg_ready={"start_w": 1500}))
    assert verdict(decide(snap(grid=-1500, soc=60), cfg=cfg), SG).start_ok
    assert not verdict(decide(snap(grid=-1499, soc=60), cfg=cfg), SG).start_ok


def test_missing_battery_reading_counts_as_zero() -> None:
    d = decide(snap(grid=-2000, battery=None, soc=60))
    assert d.surplus_w == 2000
    assert verdict(d, SG).start_ok


@pytest.mark.parametrize(
    ("surplus", "ok_sg", "ok_dhw", "ok_wa", "ok_wb"),
    [
        (3999, True, False, False, False),
        (4000, True, True, False, False),
        (5999, True, True, False, False),
        (6000, True, True, True, False),
        (9999, True, True, True, False),
        (10000, True, True, True, True),
    ],
)
def test_candidates_reserve_their_start_w_in_priority_order(
    surplus: float, ok_sg: bool, ok_dhw: bool, ok_wa: bool, ok_wb: bool
) -> None:
    d = decide(snap(grid=-surplus, soc=95))
    assert [verdict(d, x).start_ok for x in (SG, DHW, WA, WB)] == [ok_sg, ok_dhw, ok_wa, ok_wb]


def test_ineligible_load_reserves_nothing() -> None:
    # WB A is below its gate at 60 %: its 2 kW stay available (WB B is gated too).
    d = decide(snap(grid=-4000, soc=60))
    assert verdict(d, SG).start_ok and verdict(d, DHW).start_ok


@pytest.mark.parametrize(("grid", "keeps"), [(299, True), (300, True), (301, False)])
def test_running_load_keeps_while_import_is_within_max_import(grid: float, keeps: bool) -> None:
    # WB A alone, metered at 2 kW: budget = surplus + 2 kW; keeps if budget - 2 kW >= -300 W.
    sts = statuses(status(WA, State.ON, since=T0.replace(hour=8), power_w=2000))
    v = verdict(decide(snap(grid=grid, soc=80), sts), WA)
    assert v.keep_ok is keeps
    assert v.event is (None if keeps else Event.WEAKEN)
    if not keeps:
        assert v.reasons[0].startswith("surplus 1.7 kW < load 2.0 kW - tolerated import 300 W")
    else:
        assert "surplus covers the load (2.0 kW)" in v.reasons


def test_lowest_priority_running_load_fails_first() -> None:
    # SG-Ready (compressor 2 kW) and WB A (meter 2 kW) run; 1 kW import.
    # Budget 3 kW: SG-Ready keeps (3 - 2 = 1 kW left), WB A fails (1 - 2 = -1 kW < -300 W).
    sts = statuses(
        status(SG, State.ON, since=T0.replace(hour=8)),
        status(WA, State.ON, since=T0.replace(hour=8), power_w=2000),
    )
    d = decide(snap(grid=1000, soc=80, compressor=2000), sts)
    assert verdict(d, SG).keep_ok
    assert not verdict(d, WA).keep_ok


def test_running_load_that_cannot_be_covered_even_alone_frees_its_budget_for_the_others() -> None:
    # SG-Ready 2 kW and WB A nearly done at 100 W; 2 kW import. Budget = -2000 + 2000 + 100 =
    # 100 W: SG-Ready fails even with WB A gone (100 - 2000 < -300); WB A is judged without
    # SG-Ready's power (100 - 100 = 0 >= -300) and keeps.
    sts = statuses(
        status(SG, State.ON, since=T0.replace(hour=8)),
        status(WA, State.ON, since=T0.replace(hour=8), power_w=100),
    )
    d = decide(snap(grid=2000, soc=80, compressor=2000), sts)
    assert not verdict(d, SG).keep_ok
    assert verdict(d, WA).keep_ok


def test_no_candidate_starts_on_the_power_of_a_running_load_that_is_leaving() -> None:
    # WB B (4 kW, no meter) runs with 500 W import: it fails. Its 4 kW are still drawn until
    # it has gone, so SG-Ready (2 kW) sees the measured surplus (-500 W), not 3.5 kW.
    sts = statuses(status(WB, State.ON, since=T0.replace(hour=8)))
    d = decide(snap(grid=500, soc=95), sts)
    assert not verdict(d, WB).keep_ok
    assert not verdict(d, SG).start_ok
    assert "surplus -500 W < start 2.0 kW" in verdict(d, SG).reasons


def test_running_load_is_not_preempted_by_a_higher_priority_one() -> None:
    # WB A runs on 2 kW; 500 W export left: SG-Ready (2 kW) may not start.
    sts = statuses(status(WA, State.ON, since=T0.replace(hour=8), power_w=2000))
    d = decide(snap(grid=-500, soc=80), sts)
    assert verdict(d, WA).keep_ok
    assert not verdict(d, SG).start_ok
    assert "surplus 500 W < start 2.0 kW" in verdict(d, SG).reasons


def test_running_loads_power_is_available_to_itself_not_to_candidates() -> None:
    # WB A runs on 2 kW with 2 kW export on top: SG-Ready gets exactly the 2 kW export.
    sts = statuses(status(WA, State.ON, since=T0.replace(hour=8), power_w=2000))
    assert verdict(decide(snap(grid=-2000, soc=80), sts), SG).start_ok
    assert not verdict(decide(snap(grid=-1999, soc=80), sts), SG).start_ok


@pytest.mark.parametrize(("meter_w", "sg_keeps"), [(1700, True), (1699, False), (None, True)])
def test_own_power_of_a_metered_load_is_its_meter_else_nominal(
    meter_w: float | None, sg_keeps: bool
) -> None:
    # SG-Ready and WB A run, 2 kW import. SG-Ready keeps iff -2000 + WB A's own >= -300, i.e.
    # WB A's own power >= 1700 W. Without a meter reading WB A counts its nominal 2 kW.
    sts = statuses(
        status(SG, State.ON, since=T0.replace(hour=8)),
        status(WA, State.ON, since=T0.replace(hour=8), power_w=meter_w),
    )
    d = decide(snap(grid=2000, soc=80, compressor=2000), sts)
    assert verdict(d, SG).keep_ok is sg_keeps


@pytest.mark.parametrize(("compressor", "sg_keeps"), [(1700, True), (1699, False), (None, True)])
def test_own_power_of_a_heat_pump_load_is_the_compressor_else_nominal(
    compressor: float | None, sg_keeps: bool
) -> None:
    # A load's own power shows in the judgement of the loads above it. With WB A first in
    # priority and 2 kW import, WB A keeps iff -2000 + SG-Ready's own >= -300 W.
    cfg = make_config({"control": {"priority": ["wb_a", "sg_ready", "dhw", "wb_b"]}})
    sts = statuses(
        status(SG, State.ON, since=T0.replace(hour=8)),
        status(WA, State.ON, since=T0.replace(hour=8), power_w=2000),
    )
    d = decide(snap(grid=2000, soc=80, compressor=compressor), sts, cfg)
    assert verdict(d, WA).keep_ok is sg_keeps


def test_compressor_power_is_counted_once_for_both_heat_pump_loads() -> None:
    # SG-Ready, DHW (sharing a 2 kW compressor) and WB A (metered 2 kW) run; 300 W import:
    # budget = -300 + 2000 + 2000 = 3700 (not 5700). The compressor is DHW's, the lower
    # heat-pump load: SG-Ready owns nothing (3700 left), DHW keeps (1700), WB A keeps
    # (1700 - 2000 = -300). With 301 W import WB A fails, which it would not if the
    # compressor were counted twice.
    sts = statuses(
        status(SG, State.ON, since=T0.replace(hour=8)),
        status(DHW, State.ON, since=T0.replace(hour=8)),
        status(WA, State.ON, since=T0.replace(hour=8), power_w=2000),
    )
    d = decide(snap(grid=300, soc=80, compressor=2000), sts)
    assert all(verdict(d, x).keep_ok for x in (SG, DHW, WA))
    assert "surplus covers the load (0 W)" in verdict(d, SG).reasons
    assert "surplus covers the load (2.0 kW)" in verdict(d, DHW).reasons
    d = decide(snap(grid=301, soc=80, compressor=2000), sts)
    assert verdict(d, SG).keep_ok and verdict(d, DHW).keep_ok
    assert not verdict(d, WA).keep_ok


def test_a_failing_heat_pump_pair_leaves_lowest_priority_first() -> None:
    # SG-Ready and DHW share the 2 kW compressor; 2 kW import. DHW owns the compressor and
    # fails (-2000 + 2000 - 2000 < -300); SG-Ready, owning nothing, keeps for now: shedding
    # goes in reverse priority, and SG-Ready takes the compressor once DHW is gone.
    sts = statuses(
        status(SG, State.ON, since=T0.replace(hour=8)),
        status(DHW, State.ON, since=T0.replace(hour=8)),
    )
    d = decide(snap(grid=2000, soc=80, compressor=2000), sts)
    assert verdict(d, SG).keep_ok
    assert not verdict(d, DHW).keep_ok
    sts = statuses(status(SG, State.ON, since=T0.replace(hour=8)))
    assert not verdict(decide(snap(grid=2000, soc=80, compressor=2000), sts), SG).keep_ok


def test_load_without_power_source_counts_its_nominal_power() -> None:
    # SG-Ready (2 kW) and WB B (no meter: nominal 4 kW) run with 300 W import: budget =
    # -300 + 2000 + 4000 = 5700; SG-Ready keeps (3700 left), WB B: 3700 - 4000 = -300 keeps.
    sts = statuses(
        status(SG, State.ON, since=T0.replace(hour=8)),
        status(WB, State.ON, since=T0.replace(hour=8)),
    )
    assert verdict(decide(snap(grid=300, soc=95, compressor=2000), sts), WB).keep_ok
    assert not verdict(decide(snap(grid=301, soc=95, compressor=2000), sts), WB).keep_ok


# --------------------------------------------------------------------------- rule 8: per-phase

PHASED = make_config(loads_patch(wb_a={"phase": "L1"}))


@pytest.mark.parametrize(
    ("l1", "battery", "ok"),
    [
        (-1999, 0, False),
        (-2000, 0, True),
        (-1000, 3000, True),  # a third of the battery's charging is L1's
        (-1000, 2997, False),
    ],
)
def test_single_phase_load_starts_on_its_phase_surplus(l1: float, battery: float, ok: bool) -> None:
    # Total surplus 10 kW; SG-Ready and DHW are in cooldown, so WB A is the only candidate.
    sts = statuses(
        status(SG, State.COOLDOWN, cooldown_until=T0.replace(hour=12)),
        status(DHW, State.COOLDOWN, cooldown_until=T0.replace(hour=12)),
    )
    d = decide(snap(grid=-10000 + battery, battery=battery, soc=80, l1=l1), sts, PHASED)
    v = verdict(d, WA)
    assert v.start_ok is ok
    if not ok:
        assert any(r.startswith("L1 export") for r in v.reasons)
    assert d.notes == ()


def test_phase_surplus_never_exceeds_the_total_budget() -> None:
    sts = statuses(
        status(SG, State.COOLDOWN, cooldown_until=T0.replace(hour=12)),
        status(DHW, State.COOLDOWN, cooldown_until=T0.replace(hour=12)),
    )
    d = decide(snap(grid=-1999, soc=80, l1=-5000), sts, PHASED)
    assert not verdict(d, WA).start_ok


def test_single_phase_load_without_phase_data_judges_the_total_and_says_so() -> None:
    sts = statuses(
        status(SG, State.COOLDOWN, cooldown_until=T0.replace(hour=12)),
        status(DHW, State.COOLDOWN, cooldown_until=T0.replace(hour=12)),
    )
    d = decide(snap(grid=-2000, soc=80, l1=None), sts, PHASED)
    assert verdict(d, WA).start_ok
    assert d.notes == ("wb_a: no L1 data, judging the total export",)


@pytest.mark.parametrize(("l1", "keeps"), [(299, True), (300, True), (301, False)])
def test_running_single_phase_load_keeps_while_its_phase_import_is_tolerated(
    l1: float, keeps: bool
) -> None:
    # The total exports 3 kW. L1 is measured with WB A drawing 2 kW on it: the phase's
    # import while WB A runs may reach max_import_w (300 W), as for the total.
    sts = statuses(status(WA, State.ON, since=T0.replace(hour=8), power_w=2000))
    v = verdict(decide(snap(grid=-3000, soc=80, l1=l1), sts, PHASED), WA)
    assert v.keep_ok is keeps
    if not keeps:
        assert v.reasons[0] == "L1 surplus 1.7 kW < load 2.0 kW - tolerated import 300 W"


def test_running_single_phase_load_without_phase_data_notes_the_fallback() -> None:
    sts = statuses(status(WA, State.ON, since=T0.replace(hour=8), power_w=2000))
    d = decide(snap(grid=300, soc=80), sts, PHASED)
    assert verdict(d, WA).keep_ok
    assert d.notes == ("wb_a: no L1 data, judging the total export",)


@pytest.mark.parametrize("phase", ["L2", "L3"])
def test_each_phase_reads_its_own_grid_value(phase: str) -> None:
    cfg = make_config(loads_patch(sg_ready={"phase": phase}))
    other = {"l1": -5000, "l2": 0.0, "l3": 0.0}
    other["l" + phase[1]] = -2000
    assert verdict(decide(snap(grid=-6000, soc=60, **other), cfg=cfg), SG).start_ok
    other["l" + phase[1]] = -1999
    assert not verdict(decide(snap(grid=-6000, soc=60, **other), cfg=cfg), SG).start_ok


def test_snapshot_rejects_an_unknown_phase() -> None:
    with pytest.raises(ValueError, match="unknown phase"):
        snap().phase_w("L4")


# --------------------------------------------------------------------------- rule 14: forecast


def _fc(wh: float) -> Forecast:
    return Forecast(fetched_at=T0, remaining_today_wh=wh)


@pytest.mark.parametrize(("remaining", "shift"), [(4799, 0.0), (4800, 15.0), (20000, 15.0)])
def test_forecast_shifts_gates_when_remaining_pv_reaches_margin_times_battery_room(
    remaining: float, shift: float
) -> None:
    # soc 60 %: room 8 kWh x 40 % = 3.2 kWh; margin 1.5 -> 4.8 kWh needed.
    got, why = forecast_shift(snap(soc=60, forecast=_fc(remaining)), CFG)
    assert got == shift
    if shift:
        assert why == (
            f"forecast {remaining / 1000:.1f} kWh left today >= 1.5 x battery room 3.2 kWh"
        )
    else:
        assert why is None


def test_no_forecast_or_no_soc_or_zero_shift_means_no_shift() -> None:
    assert forecast_shift(snap(soc=60, forecast=None), CFG) == (0.0, None)
    assert forecast_shift(snap(soc=None, forecast=_fc(1e6)), CFG) == (0.0, None)
    cfg = make_config({"control": {"forecast_gate_shift_pct": 0}})
    assert forecast_shift(snap(soc=60, forecast=_fc(1e6)), cfg) == (0.0, None)


def test_full_battery_has_no_room_and_any_forecast_shifts() -> None:
    assert forecast_shift(snap(soc=100, forecast=_fc(0)), CFG)[0] == 15.0


@pytest.mark.parametrize(
    ("gate", "expected"),
    [
        (90.0, 75.0),  # plain shift
        (70.0, 55.0),
        (66.0, 51.0),  # lands exactly on the floor: brake 45 + 2 x 3
        (60.0, 51.0),  # would be 45: clamped to the floor
        (50.0, 50.0),  # below the floor already: unchanged, never raised
    ],
)
def test_shifted_gate_never_comes_within_two_hysteresis_of_the_brake(
    gate: float, expected: float
) -> None:
    cfg = make_config(loads_patch(wb_a={"gate_pct": gate}))
    assert effective_gate(cfg.loads.wb_a, cfg, 15.0) == expected
    assert effective_gate(cfg.loads.wb_a, cfg, 0.0) == gate


def test_forecast_lets_wb_a_start_below_its_configured_gate_and_says_why() -> None:
    d = decide(snap(grid=-6000, soc=60, forecast=_fc(4800)))
    v = verdict(d, WA)
    assert v.start_ok
    assert v.gate_pct == 55.0
    assert "forecast 4.8 kWh left today >= 1.5 x battery room 3.2 kWh: gate 70% -> 55%" in v.reasons
    # SG-Ready's gate (50 %) is below the floor: untouched, and no forecast reason.
    assert verdict(d, SG).gate_pct == 50.0
    assert not any("forecast" in r for r in verdict(d, SG).reasons)
    # Without the forecast the same house keeps WB A waiting.
    assert not verdict(decide(snap(grid=-6000, soc=60)), WA).start_ok


def test_forecast_reason_is_not_given_where_a_person_or_the_owner_decides() -> None:
    from emsctl.model import Mode, Override

    sts = statuses(
        status(WA, State.OFF, relay_on=True),  # switched on by hand now
        status(WB, State.OFF, override=Override(Mode.FORCE_OFF, created_at=T0)),
        status(DHW, State.MANUAL, relay_on=True, manual_until=T0 + timedelta(hours=1)),
    )
    cfg = make_config(loads_patch(dhw={"gate_pct": 70}))
    d = decide(snap(grid=-6000, soc=60, forecast=_fc(4800)), sts, cfg)
    for load in (WA, WB, DHW):
        assert not any("forecast" in r for r in verdict(d, load).reasons), load


@pytest.mark.parametrize(("soc", "keeps"), [(52.0, True), (51.9, False)])
def test_shifted_gate_also_moves_the_keep_threshold(soc: float, keeps: bool) -> None:
    # Gate 70 -> 55 with the forecast; keep down to 55 - 3 = 52 %. Room at 52 %: 3.84 kWh,
    # x 1.5 = 5.76 kWh; a 10 kWh forecast keeps the shift.
    sts = statuses(status(WA, State.ON, since=T0.replace(hour=8), power_w=2000))
    v = verdict(decide(snap(grid=-500, soc=soc, forecast=_fc(10000)), sts), WA)
    assert v.keep_ok is keeps


# --------------------------------------------------------------------------- formatting
