"""The in-memory adapters: same interfaces as the real ones, Prometheus-like lag and ages,
missing data where the scenario has gaps, relays with dead-man timers."""

from __future__ import annotations

import statistics
from datetime import date, timedelta

import pytest

from emsctl.adapters.base import Actuator, Collector, ForecastSource
from emsctl.config import Config, parse_config
from emsctl.model import LoadId
from emsctl.sim.adapters import SimForecast, SimHouse
from emsctl.sim.scenario import read_scenario
from tests.conftest import SCENARIOS
from tests.unit.sim_helpers import scenario


def ramp(minutes: int = 30) -> SimHouse:
    """House load = 100 W x minute index, so each minute's grid value is recognisable."""
    return SimHouse(
        scenario(minutes, lambda i: {"house_w": 100.0 * (i + 1), "outdoor_c": 10 + i}),
        parse_config({"sim": {"measurement_lag_min": 2}}),
    )


def test_the_sim_adapters_implement_the_real_adapters_protocols() -> None:
    house = ramp()
    assert isinstance(house.collector, Collector)
    for act in house.actuators.values():
        assert isinstance(act, Actuator)
    cfg = parse_config({"forecast": {"enabled": True}})
    assert isinstance(SimForecast(house.plant.scenario, cfg), ForecastSource)


def test_the_engine_sees_values_from_lag_minutes_ago_with_their_age() -> None:
    house = ramp()
    for _ in range(10):
        house.advance()
    snap = house.snapshot()
    assert snap.at == house.now
    # After minute index 9, lag 2 shows minute index 7: house 800 W, battery covers it.
    assert house.plant.index == 10
    assert snap.battery_w == pytest.approx(-800)
    assert snap.grid_w == pytest.approx(0)
    assert snap.ages_s["grid_w"] == 120
    assert snap.ages_s["soc_pct"] == 120


def test_viessmann_values_arrive_every_second_minute_and_age_in_between() -> None:
    house = ramp()
    ages = []
    outdoor = []
    for _ in range(8):
        house.advance()
        snap = house.snapshot()
        ages.append(snap.ages_s.get("outdoor_c"))
        outdoor.append(snap.outdoor_c)
    # Lag 2 and scrapes after even minute indices: 120 s old, then 180 s, then fresh again.
    assert ages[2:] == [120, 180, 120, 180, 120, 180]
    assert outdoor[2:] == [10, 10, 12, 12, 14, 14]


def test_a_collector_outage_ages_the_last_value_until_it_counts_as_missing() -> None:
    scn = read_scenario(SCENARIOS / "s8_data_gaps.csv")
    mask = scn.gaps["house_w"]
    # The longest run of missing grid data.
    best, start, run = (0, 0), None, 0
    for i, m in enumerate(mask):
        if m:
            start = i if run == 0 else start
            run += 1
            if run > best[0]:
                best = (run, start)
        else:
            run = 0
    length, first = best
    assert length >= 100  # the 150-minute outage
    house = SimHouse(scn, Config())  # lag 1, max_age 300 s
    seen = []
    while house.plant.index < first + 12:
        house.advance()
        if house.plant.index > first:
            snap = house.snapshot()
            seen.append((snap.grid_w, snap.ages_s.get("grid_w")))
    # Minute `first` is the first without data; with lag 1 its snapshot comes one tick later.
    values, ages = zip(*seen, strict=True)
    assert values[0] is not None and ages[0] == 60
    assert ages[1:7] == (120, 180, 240, 300, 360, 420)
    assert all(v is not None for v in values[1:5])  # up to max_age_s the old value holds
    assert all(v is None for v in values[5:])  # then it is missing, not zero
    assert snap.soc_pct is None or scn.gaps["pv_w"][first] == 0


def test_wb_a_reports_its_cars_power_and_wb_b_has_no_meter() -> None:
    house = SimHouse(
        scenario(
            10,
            lambda i: {
                "outdoor_c": 20,
                "car_a_plugged": 1,
                "car_a_need_wh": 5000,
                "car_b_plugged": 1,
                "car_b_need_wh": 5000,
            },
        ),
        Config(),
    )
    a = house.actuators[LoadId.WB_A]
    b = house.actuators[LoadId.WB_B]
    assert a.switch(True).relay_on is True
    b.switch(True)
    house.advance()
    ra, rb = a.read(), b.read()
    assert ra.power_w == pytest.approx(2000)
    assert rb.relay_on is True and rb.power_w is None
    assert house.plant.wb_b_w == pytest.approx(4000)


def test_a_relay_switched_on_with_a_dead_man_timer_switches_itself_off() -> None:
    house = ramp()
    sg = house.actuators[LoadId.SG_READY]
    sg.switch(True, deadman_s=180)
    for _ in range(3):
        house.advance()
        assert sg.read().relay_on is True
    house.advance()
    r = sg.read()
    assert r.relay_on is False
    assert r.source == "timer"


def test_renewing_the_dead_man_timer_keeps_the_relay_on() -> None:
    house = ramp()
    sg = house.actuators[LoadId.SG_READY]
    for _ in range(10):
        sg.switch(True, deadman_s=120)
        house.advance()
    assert sg.read().relay_on is True
    assert house.plant.sg_ready is True


def test_the_dhw_actuator_sets_the_boost_target() -> None:
    house = ramp()
    dhw = house.actuators[LoadId.DHW]
    assert dhw.read().relay_on is False
    assert dhw.switch(True).relay_on is True
    assert house.plant.dhw_boost is True
    dhw.switch(False)
    assert house.plant.dhw_boost is False


def test_the_simulated_forecast_is_the_pv_still_to_come_today() -> None:
    # 06:00Z start = 07:00 local (CET, March); 60 minutes of 6 kW then nothing.
    scn = scenario(24 * 60, lambda i: {"pv_w": 6000 if i < 60 else 0, "outdoor_c": 10})
    fc = SimForecast(scn, parse_config({"forecast": {"enabled": True}}))
    first = fc.forecast(scn.start)
    assert first is not None
    assert first.remaining_today_wh == pytest.approx(6000)
    half = fc.forecast(scn.time(30))
    assert half is not None
    assert half.remaining_today_wh == pytest.approx(3000)
    assert half.fetched_at == scn.start  # refreshed hourly like the cached real one


def test_a_noisy_forecast_errs_by_one_seeded_factor_per_local_day() -> None:
    # Three days of a constant 1 kW from 06:00Z; the forecast is asked at 06:00Z each day.
    scn = scenario(3 * 24 * 60, lambda i: {"pv_w": 1000, "outdoor_c": 10})
    noisy = {"forecast": {"enabled": True}, "sim": {"forecast_error": 0.35, "forecast_seed": 7}}
    perfect = SimForecast(scn, parse_config({"forecast": {"enabled": True}}))
    a = SimForecast(scn, parse_config(noisy))
    b = SimForecast(scn, parse_config(noisy))
    days = [scn.time(d * 1440) for d in range(3)]
    exact = [perfect.forecast(t) for t in days]
    got_a = [a.forecast(t) for t in days]
    # Not asked on the middle day (as in a replay skipping its ticks): the same third day.
    b.forecast(days[0])
    third = b.forecast(days[2])
    assert third is not None and got_a[2] is not None
    assert third.remaining_today_wh == pytest.approx(got_a[2].remaining_today_wh)
    ratios = []
    for e, x in zip(exact, got_a, strict=True):
        assert e is not None and x is not None
        ratios.append(x.remaining_today_wh / e.remaining_today_wh)
    assert len({round(r, 6) for r in ratios}) == 3  # one factor per day, not per run
    assert all(r != pytest.approx(1.0, abs=1e-3) for r in ratios)
    # Another seed, other errors.
    other = SimForecast(scn, parse_config({**noisy, "sim": {"forecast_error": 0.35}}))
    assert other.factor(days[0].date()) != pytest.approx(a.factor(days[0].date()))


def test_the_noisy_forecasts_factors_have_mean_one() -> None:
    scn = scenario(60, lambda i: {"pv_w": 1000, "outdoor_c": 10})
    fc = SimForecast(scn, parse_config({"sim": {"forecast_error": 0.35}}))
    factors = [fc.factor(date(2026, 1, 1) + timedelta(days=d)) for d in range(4000)]
    assert sum(factors) / len(factors) == pytest.approx(1.0, abs=0.02)
    assert 0.3 < statistics.pstdev(factors) < 0.45
