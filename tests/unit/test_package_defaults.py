"""The package defaults are safe to run: what an owner gets for every key left out.

Never leave a plugged car uncharged by the next morning, and be at least as good as no EMS on
the year of the house (bench/data/year_2026.csv.gz, a real replay of 525,600 minutes).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from emsctl.config import parse_config
from emsctl.model import LoadId
from emsctl.sim.cli import default_config
from emsctl.sim.runner import Trace, run_baseline, run_ems
from emsctl.sim.scenario import read_scenario, read_scenario_text
from tests.conftest import untraced
from tests.unit.sim_helpers import scenario_csv

YEAR = Path(__file__).resolve().parents[2] / "bench" / "data" / "year_2026.csv.gz"


def test_simulate_without_config_runs_the_package_defaults() -> None:
    assert default_config() == parse_config({})


def test_a_car_plugged_in_on_a_dark_evening_with_an_empty_battery_is_full_by_morning() -> None:
    # 18:00 UTC in March, no sun, the battery at its reserve (under the brake): car B wants
    # 20 kWh (5 h at 4 kW) and leaves at 06:00 UTC (07:00 local, the default target).
    text = scenario_csv(
        12 * 60 + 30,
        lambda i: {
            "house_w": 400,
            "outdoor_c": 6,
            "car_b_plugged": int(i < 12 * 60),
            "car_b_need_wh": 20_000,
        },
        start=datetime(2026, 3, 19, 18, 0, tzinfo=UTC),
    )
    scn = read_scenario_text(text, "dark evening")
    cfg = parse_config({"sim": {"battery": {"initial_wh": 800}}})
    run = run_ems(scn, cfg, trace=Trace(0, scn.minutes))
    assert run.kpis.car_unmet_kwh == 0.0
    assert run.kpis.loads[LoadId.WB_B.value].energy_kwh == 20.0


def test_the_year_with_package_defaults_beats_no_ems_and_delivers_every_car_kwh() -> None:
    with untraced():
        scn = read_scenario(YEAR)
        cfg = default_config()
        ems = run_ems(scn, cfg).kpis
        base = run_baseline(scn, cfg).kpis
    assert ems.car_unmet_kwh <= base.car_unmet_kwh
    assert ems.cost_with_unmet_eur < base.cost_with_unmet_eur
    assert ems.heating_comfort_violation_min <= base.heating_comfort_violation_min
    assert ems.dhw_comfort_violation_min <= base.dhw_comfort_violation_min
