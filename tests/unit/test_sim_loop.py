"""The demo's house runs on after its scenario: the next lap starts a whole day later, time
never runs back, the plant's state carries over and the measurements stay fresh."""

from __future__ import annotations

from datetime import timedelta
from itertools import pairwise

from emsctl.config import parse_config
from emsctl.sim.adapters import SimHouse
from emsctl.sim.scenario import load


def test_a_looping_house_goes_on_with_fresh_data_and_a_new_forecast() -> None:
    config = parse_config({"forecast": {"enabled": True}})
    scenario = load("s2_spring_fast_clouds")
    house = SimHouse(scenario, config, loop=True)
    assert house.forecaster is not None
    start = house.now
    first_day = house.forecaster.forecast(start)
    assert first_day is not None
    times = []
    stored: list[float] = []
    for _ in range(scenario.minutes + 30):
        house.advance()
        times.append(house.now)
        stored.append(house.plant.stored_wh)
    assert house.laps == 1 and not house.done
    assert all(b - a == timedelta(minutes=1) for a, b in pairwise(times))
    assert house.now == start + timedelta(days=1, minutes=30)
    snap = house.snapshot()
    assert snap.grid_w is not None and snap.soc_pct is not None  # not stale after the lap
    # The battery was not reset to its initial charge across the lap: the plant carried on.
    end, after = stored[scenario.minutes - 1], stored[scenario.minutes]
    assert abs(after - end) <= 4000 / 60 + 1e-6
    assert end != config.sim.battery.initial_wh
    fc = house.forecaster.forecast(house.now)
    assert fc is not None and fc.remaining_today_wh > 0.9 * first_day.remaining_today_wh


def test_without_loop_the_house_is_done_at_the_scenarios_end() -> None:
    config = parse_config({})
    scenario = load("s2_spring_fast_clouds")
    house = SimHouse(scenario, config)
    for _ in range(scenario.minutes):
        house.advance()
    assert house.done and house.laps == 0
