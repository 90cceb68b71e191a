"""bench/control_reach.py: its minute models are the simulator's plant, its dynamic programs find
schedules no worse than the simple ones, and each restriction of the optimum costs more."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bench.control_reach import (
    EmsMinutes,
    JointPlant,
    MinutePlant,
    best_sg,
    best_sg_and_boost,
    ems_minutes,
    months,
    mpc,
    replay_with_sg,
    rolling_lp,
)
from emsctl.config import Config, load_config
from emsctl.sim import plant as plant_mod
from emsctl.sim.scenario import Scenario, read_scenario

ROOT = Path(__file__).resolve().parents[2]
YEAR = ROOT / "bench" / "data" / "year_2026.csv.gz"


@pytest.fixture(scope="module")
def house() -> tuple[Scenario, Config, EmsMinutes]:
    # Early March: heating every day, some sun, a car plugged in.
    scn = read_scenario(YEAR).slice(60 * 1440, 3 * 1440)
    cfg = load_config(ROOT / "configs" / "ems-config.yaml")
    return scn, cfg, ems_minutes(scn, cfg)


@pytest.fixture(scope="module")
def one_day() -> tuple[Scenario, Config, EmsMinutes]:
    scn = read_scenario(YEAR).slice(62 * 1440, 1440)  # sunny, boosts and SG-Ready runs
    cfg = load_config(ROOT / "configs" / "ems-config.yaml")
    return scn, cfg, ems_minutes(scn, cfg)


def _grid_cost(cfg: Config, grid_w: np.ndarray) -> float:
    t = cfg.tariff
    return float(np.where(grid_w > 0, grid_w * t.import_eur_kwh, grid_w * t.feed_in_eur_kwh).sum())


def test_the_minute_model_reproduces_the_simulators_grid_cost(house):
    scn, cfg, ems = house
    assert ems.sg.any() and ems.dhw_mode.any()
    mp = MinutePlant(scn, cfg, ems)
    assert mp.cost_of(ems.sg) == pytest.approx(_grid_cost(cfg, ems.grid_w) / 60_000, rel=1e-9)


def test_the_best_schedule_beats_the_simple_ones_and_costs_what_it_says(house):
    scn, cfg, ems = house
    mp = MinutePlant(scn, cfg, ems)
    schedule, cost = best_sg(mp)
    assert set(np.unique(schedule)) <= {0.0, 1.0}
    # Whole slots: one decision per 15 minutes.
    assert (schedule.reshape(-1, 15) == schedule[::15, None]).all()
    assert cost == pytest.approx(mp.cost_of(schedule), rel=1e-9)
    slots = np.repeat(ems.sg.reshape(-1, 15).mean(axis=1) > 0.5, 15).astype(float)
    for other in (np.zeros(scn.minutes), np.ones(scn.minutes), slots):
        assert cost <= mp.cost_of(other) + 1e-9


def test_replaying_emss_own_schedule_gives_emss_run_and_restores_the_plant(house):
    scn, cfg, ems = house
    step = plant_mod.Plant.step
    cost, unmet = replay_with_sg(scn, cfg, ems.sg)
    assert plant_mod.Plant.step is step
    assert cost == pytest.approx(ems.cost_with_unmet_eur, abs=1e-9)
    assert unmet == pytest.approx(ems.unmet_kwh, abs=1e-9)
    forced_off, _ = replay_with_sg(scn, cfg, np.zeros(scn.minutes))
    assert forced_off != pytest.approx(cost)


def test_each_restriction_of_the_optimum_costs_at_least_as_much(house):
    scn, cfg, ems = house
    unmet_eur = ems.unmet_kwh * cfg.tariff.unmet_car_eur_kwh
    free = rolling_lp(scn, cfg, None, floors=False)
    cars = rolling_lp(scn, cfg, ems.cars_w, floors=False) + unmet_eur
    floors = rolling_lp(scn, cfg, ems.cars_w, floors=True) + unmet_eur
    assert free <= cars + 1e-6
    assert cars <= floors + 1e-6
    assert floors < ems.cost_with_unmet_eur
    # The controller knows PV only from the forecast and cannot steer the battery.
    assert mpc(scn, cfg, ems.cars_w) + unmet_eur >= floors - 0.01 * abs(floors)


def test_the_daily_mean_cop_keeps_each_days_mean_and_drops_its_hours(house):
    scn, cfg, ems = house
    hourly = MinutePlant(scn, cfg, ems).cop.reshape(-1, 1440)
    daily = MinutePlant(scn, cfg, ems, daily_cop=True).cop.reshape(-1, 1440)
    assert np.ptp(hourly, axis=1).min() > 0.1
    assert np.ptp(daily, axis=1).max() < 1e-12
    assert daily.mean(axis=1) == pytest.approx(hourly.mean(axis=1), rel=1e-12)


def test_the_joint_model_reproduces_the_simulator_with_the_tank_as_well(house):
    scn, cfg, ems = house
    assert ems.boost.any()
    jp = JointPlant(scn, cfg, ems)
    expected = _grid_cost(cfg, ems.grid_w) / 60_000
    assert jp.joint_cost_of(ems.sg, ems.boost) == pytest.approx(expected, rel=1e-9)
    cost, _ = replay_with_sg(scn, cfg, ems.sg, ems.boost)
    assert cost == pytest.approx(ems.cost_with_unmet_eur, abs=1e-9)


def test_the_joint_schedule_beats_the_simple_ones_and_costs_what_it_says(one_day):
    scn, cfg, ems = one_day
    jp = JointPlant(scn, cfg, ems)
    sg, boost, cost = best_sg_and_boost(jp)
    assert cost == pytest.approx(jp.joint_cost_of(sg, boost), rel=1e-9)

    def slots(x: np.ndarray) -> np.ndarray:
        return np.repeat(x.reshape(-1, 15).mean(axis=1) > 0.5, 15).astype(float)

    off = np.zeros(scn.minutes)
    for other_sg, other_boost in ((off, off), (slots(ems.sg), slots(ems.boost)), (sg, off)):
        assert cost <= jp.joint_cost_of(other_sg, other_boost) + 1e-9


def test_the_year_splits_into_its_twelve_months():
    scn = read_scenario(YEAR)
    parts = months(scn)
    assert len(parts) == 12
    assert sum(count for _, count in parts) == scn.minutes
    assert [scn.time(first).day for first, _ in parts] == [1] * 12
    assert [scn.time(first).month for first, _ in parts] == list(range(1, 13))
