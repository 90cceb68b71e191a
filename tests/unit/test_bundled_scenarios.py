"""The bundled scenarios say what docs/simulator.md says they show: a real replay of each."""

from __future__ import annotations

from pathlib import Path

import pytest

from emsctl.config import Config, load_config, parse_config
from emsctl.sim.runner import run_baseline, run_ems
from emsctl.sim.scenario import bundled_scenarios, load

ROOT = Path(__file__).resolve().parents[2]
HOUSE = ROOT / "configs" / "ems-config.yaml"


def test_every_bundled_scenario_is_described() -> None:
    doc = (ROOT / "docs" / "simulator.md").read_text(encoding="utf-8")
    for name in bundled_scenarios():
        assert f"| `{name}` |" in doc, name


def _gain(name: str, cfg: Config) -> float:
    scn = load(name)
    ems = run_ems(scn, cfg).kpis
    base = run_baseline(scn, cfg).kpis
    # A relay that is off when a car is plugged in waits out the on-delay (4 min) before the
    # window's charge starts; the relay then stays on. At most one such delay per car here.
    assert ems.car_unmet_kwh <= base.car_unmet_kwh + 2 * 4000 * 4 / 60 / 1000
    return base.cost_with_unmet_eur - ems.cost_with_unmet_eur


@pytest.mark.parametrize("config", ["defaults", "house"])
def test_the_april_week_shows_the_ems_saving_on_its_own(config: str) -> None:
    cfg = parse_config({}) if config == "defaults" else load_config(HOUSE)
    assert _gain("s6_april_week", cfg) > 0.3


@pytest.mark.parametrize(
    "name", ["s1_clear_summer", "s2_spring_fast_clouds", "s5_car_a_arrives_full"]
)
def test_with_the_package_defaults_no_bundled_day_costs_more(name: str) -> None:
    assert _gain(name, parse_config({})) > 0
