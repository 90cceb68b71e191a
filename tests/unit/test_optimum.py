"""The perfect-foresight optimum (emsctl/sim/optimum.py) on short scenarios: cheaper than the
baseline, physically consistent slot by slot, repeatable, and shown by `emsctl simulate
--optimum`. The year's figure against the reference is checked in bench/bench_optimum.py."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from emsctl.config import Config
from emsctl.sim.cli import default_config
from emsctl.sim.optimum import OptimumResult, OptimumSeries, aggregate, solve_optimum
from emsctl.sim.report import Report, render_table
from emsctl.sim.runner import run_baseline
from emsctl.sim.scenario import Scenario, load, read_scenario
from tests.unit.sim_helpers import scenario

ROOT = Path(__file__).resolve().parents[2]
WINTER = ROOT / "tests" / "fixtures" / "scenarios" / "s3_winter_low_pv.csv"
TOL = 1e-6


@pytest.fixture(scope="module")
def cfg() -> Config:
    return default_config()


@pytest.fixture(scope="module")
def summer() -> Scenario:
    return load("s1_clear_summer")


@pytest.fixture(scope="module")
def winter() -> Scenario:
    return read_scenario(WINTER)


@pytest.fixture(scope="module")
def solved(summer: Scenario, winter: Scenario, cfg: Config) -> dict[str, OptimumResult]:
    """Each scenario solved once; the winter days also with a short rolling horizon (several
    windows, states carried across)."""
    return {
        "summer": solve_optimum(summer, cfg),
        "winter": solve_optimum(winter, cfg),
        "winter_rolling": solve_optimum(winter, cfg, horizon_h=12, keep_h=5),
    }


CASES = ("summer", "winter", "winter_rolling")


def _series(r: OptimumResult) -> OptimumSeries:
    assert r.series is not None
    return r.series


@pytest.mark.parametrize("name", ["summer", "winter"])
def test_the_optimum_costs_no_more_than_the_baseline(
    name: str, solved: dict[str, OptimumResult], summer: Scenario, winter: Scenario, cfg: Config
) -> None:
    scn = summer if name == "summer" else winter
    base = run_baseline(scn, cfg).kpis
    opt = solved[name]
    assert opt.cost_with_unmet_eur <= base.cost_with_unmet_eur
    assert opt.import_kwh <= base.import_kwh
    # The same car energy: the baseline charges at full power from plug-in, the optimum
    # pays 1 EUR for each kWh a car leaves without.
    assert opt.car_unmet_kwh == pytest.approx(base.car_unmet_kwh, abs=1e-3)
    assert opt.car_delivered_kwh + opt.car_pending_kwh == pytest.approx(
        base.car_delivered_kwh + base.car_pending_kwh, abs=1e-3
    )


@pytest.mark.parametrize("name", CASES)
def test_the_energy_balance_closes_in_every_slot(
    name: str, solved: dict[str, OptimumResult]
) -> None:
    s = _series(solved[name])
    supply = s.pv_kw - s.curtail_kw - s.charge_kw + s.discharge_kw + s.import_kw - s.export_kw
    demand = (
        s.house_kw + s.hp_buffer_kw + s.hp_dhw_kw + s.backup_buffer_kw + s.backup_dhw_kw + s.cars_kw
    )
    assert np.abs(supply - demand).max() < TOL
    r = solved[name]
    balance = (r.pv_kwh + r.import_kwh) - (
        r.house_kwh
        + r.heat_pump_kwh
        + r.wallbox_kwh
        + r.export_kwh
        + r.curtailed_kwh
        + r.battery_delta_kwh
        + r.battery_loss_kwh
    )
    assert abs(balance) < 1e-4


@pytest.mark.parametrize("name", CASES)
def test_battery_and_inverter_stay_within_their_limits(
    name: str, solved: dict[str, OptimumResult], cfg: Config
) -> None:
    s = _series(solved[name])
    b = cfg.sim.battery
    assert s.stored_kwh.min() >= b.reserve_wh / 1000 - TOL
    assert s.stored_kwh.max() <= b.capacity_wh / 1000 + TOL
    assert s.charge_kw.max() <= b.max_charge_w / 1000 + TOL
    assert s.discharge_kw.max() <= b.max_discharge_w / 1000 + TOL
    # The stored energy follows charge and discharge with the efficiency both ways.
    before = np.concatenate(([b.initial_wh / 1000], s.stored_kwh[:-1]))
    step = (s.charge_kw * b.efficiency - s.discharge_kw / b.efficiency) * s.hours
    assert np.abs(s.stored_kwh - before - step).max() < TOL
    ac = s.pv_kw - s.curtail_kw - s.charge_kw + s.discharge_kw
    assert np.abs(ac).max() <= cfg.sim.inverter_ac_w / 1000 + TOL
    # Only PV is exported, stored or curtailed (self-consumption mode).
    assert (s.export_kw + s.charge_kw + s.curtail_kw - s.pv_kw).max() <= TOL


@pytest.mark.parametrize("name", CASES)
def test_thermal_states_stay_within_their_bounds(
    name: str, solved: dict[str, OptimumResult], cfg: Config
) -> None:
    s = _series(solved[name])
    bu, t = cfg.sim.buffer, cfg.sim.dhw_tank
    assert s.buffer_c.min() >= bu.min_c - TOL
    assert s.buffer_c.max() <= bu.off_at_c + bu.sg_raise_k + TOL
    assert s.dhw_c.min() >= t.min_c - TOL
    assert s.dhw_c.max() <= cfg.loads.dhw.boost_c + TOL
    comp = cfg.sim.heat_pump.compressor_w / 1000
    assert (s.hp_buffer_kw + s.hp_dhw_kw).max() <= comp + TOL
    assert solved[name].heat_short_kwh == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize("name", CASES)
def test_cars_never_get_more_than_they_need(
    name: str,
    solved: dict[str, OptimumResult],
    summer: Scenario,
    winter: Scenario,
    cfg: Config,
) -> None:
    scn = summer if name == "summer" else winter
    sessions = aggregate(scn, cfg).sessions
    s = _series(solved[name])
    assert sessions.count > 0
    assert (s.session_kwh <= sessions.need_kwh + TOL).all()
    assert s.session_kwh.sum() > 0
    wallboxes = (cfg.loads.wb_a.nominal_w + cfg.loads.wb_b.nominal_w) / 1000
    assert s.cars_kw.max() <= wallboxes + TOL
    assert float(np.dot(s.cars_kw, s.hours)) == pytest.approx(s.session_kwh.sum(), abs=1e-6)


def test_cars_charge_only_while_plugged_in(cfg: Config) -> None:
    # Car A plugged from minute 20 to 49 (30 minutes) wanting 5 kWh: at 2 kW it can take 1 kWh.
    def row(i: int) -> dict[str, float]:
        plugged = 20 <= i < 50
        return {
            "house_w": 300.0,
            "outdoor_c": 5.0,
            "car_a_plugged": float(plugged),
            "car_a_need_wh": 5000.0 if plugged else 0.0,
        }

    scn = scenario(60, row)
    sl = aggregate(scn, cfg)
    se = sl.sessions
    assert list(se.pair_slot) == [1, 2, 3]
    assert se.pair_max_kw == pytest.approx([2.0 * 10 / 15, 2.0, 2.0 * 5 / 15])
    r = solve_optimum(scn, cfg)
    s = _series(r)
    assert s.cars_kw[0] == 0.0
    assert r.car_delivered_kwh == pytest.approx(1.0)
    assert r.car_unmet_kwh == pytest.approx(4.0)
    assert r.cost_with_unmet_eur == pytest.approx(
        r.cost_eur + 4.0 * cfg.tariff.unmet_car_eur_kwh, abs=1e-9
    )


def test_slot_means_keep_the_energy(summer: Scenario, cfg: Config) -> None:
    sl = aggregate(summer, cfg)
    assert sl.count == summer.minutes // 15
    for col, kw in (("pv_w", sl.pv_kw), ("house_w", sl.house_kw), ("dhw_draw_w", sl.draw_kw)):
        minute_kwh = sum(summer.values[col]) / 60_000
        assert float(np.dot(kw, sl.hours)) == pytest.approx(minute_kwh, rel=1e-12)


def test_a_second_solve_gives_the_same_result(
    winter: Scenario, cfg: Config, solved: dict[str, OptimumResult]
) -> None:
    again = solve_optimum(winter, cfg, horizon_h=12, keep_h=5)
    first = solved["winter_rolling"]
    assert again.to_json() == first.to_json()
    a, b = _series(again), _series(first)
    for name in ("import_kw", "export_kw", "charge_kw", "hp_buffer_kw", "cars_kw", "dhw_c"):
        assert np.array_equal(getattr(a, name), getattr(b, name)), name


def test_the_rolling_horizon_solves_several_windows(solved: dict[str, OptimumResult]) -> None:
    rolling, whole = solved["winter_rolling"], solved["winter"]
    assert whole.windows == 1
    # Two days, 12 h solved and 5 h kept at a time: windows from 0, 5, .., 40 h; the last
    # one reaches the end and is kept whole.
    assert rolling.windows == 9
    # Less foresight never makes it cheaper than one program over both days.
    assert rolling.cost_with_unmet_eur >= whole.cost_with_unmet_eur - 1e-6


def test_no_pv_means_no_export(cfg: Config) -> None:
    # A few dark hours with the battery half full and little to power: what it holds is never
    # sold, not even at the end where it has no further use.
    def row(i: int) -> dict[str, float]:
        return {
            "house_w": 200.0,
            "outdoor_c": -3.0,
            "heat_demand_w": 1500.0,
            "dhw_draw_w": 6000.0 if i % 100 == 0 else 0.0,
            "car_b_plugged": float(i >= 120),
            "car_b_need_wh": 500.0 if i >= 120 else 0.0,
        }

    r = solve_optimum(scenario(240, row), cfg)
    s = _series(r)
    assert r.pv_kwh == 0.0
    assert s.export_kw.max() == 0.0
    assert r.export_kwh == 0.0
    assert r.curtailed_kwh == 0.0
    assert r.car_delivered_kwh == pytest.approx(0.5)
    assert r.battery_delta_kwh < 0.0  # the stored energy went into the house and the car


def test_temperatures_follow_the_heat_balance(
    solved: dict[str, OptimumResult], winter: Scenario, cfg: Config
) -> None:
    sl = aggregate(winter, cfg)
    s = _series(solved["winter_rolling"])
    h = s.hours
    bu, t = cfg.sim.buffer, cfg.sim.dhw_tank
    for temps, start, heat, demand, cap, loss, amb in (
        (
            s.buffer_c,
            bu.initial_c,
            sl.cop * s.hp_buffer_kw + s.backup_buffer_kw,
            sl.heat_kw,
            bu.kwh_per_k,
            bu.loss_w_per_k / 1000,
            bu.ambient_c,
        ),
        (
            s.dhw_c,
            t.initial_c,
            sl.cop_dhw * s.hp_dhw_kw + s.backup_dhw_kw,
            sl.draw_kw,
            t.kwh_per_k,
            t.loss_w_per_k / 1000,
            t.ambient_c,
        ),
    ):
        before = np.concatenate(([start], temps[:-1]))
        expected = before + h / cap * (heat - demand - loss * (before - amb))
        assert np.abs(temps - expected).max() < TOL
    assert s.hp_buffer_kw.sum() > 0 and s.hp_dhw_kw.sum() > 0


def test_slot_cops_are_the_plants(winter: Scenario, cfg: Config) -> None:
    from emsctl.sim.plant import Plant

    plant = Plant(winter, cfg)
    hp = cfg.sim.heat_pump
    sl = aggregate(winter, cfg)
    outdoor = winter.values["outdoor_c"]
    for k in (0, 50, sl.count - 1):
        minutes = outdoor[k * 15 : (k + 1) * 15]
        cops = [plant.cop(x) for x in minutes]
        assert sl.cop[k] == pytest.approx(sum(cops) / 15, rel=1e-12)
        dhw = [max(c - hp.dhw_cop_penalty, hp.dhw_cop_min) for c in cops]
        assert sl.cop_dhw[k] == pytest.approx(sum(dhw) / 15, rel=1e-12)


def _report(opt: OptimumResult | None, summer: Scenario, cfg: Config) -> Report:
    base = run_baseline(summer, cfg).kpis
    ems = replace(base, cost_with_unmet_eur=base.cost_with_unmet_eur - 0.1)
    return Report("s1", summer.minutes, {"ems": ems, "baseline": base}, optimum=opt)


def test_the_report_shows_the_share_of_the_gap(
    solved: dict[str, OptimumResult], summer: Scenario, cfg: Config
) -> None:
    opt = solved["summer"]
    report = _report(opt, summer, cfg)
    base = report.runs["baseline"].cost_with_unmet_eur
    share = 0.1 / (base - opt.cost_with_unmet_eur)
    doc = json.loads(report.dumps())
    assert doc["runs"]["ems"]["gap_captured"] == pytest.approx(share)
    assert doc["runs"]["baseline"]["gap_captured"] == 0.0
    assert doc["optimum"]["cost_eur"] == pytest.approx(opt.cost_eur)
    assert "series" not in doc["optimum"]
    text = render_table(report)
    assert "perfect-foresight optimum" in text
    assert f"{share:.1%}" in text.splitlines()[-1]


def test_without_the_optimum_the_report_is_unchanged(summer: Scenario, cfg: Config) -> None:
    doc = json.loads(_report(None, summer, cfg).dumps())
    assert set(doc) == {"scenario", "minutes", "runs"}
    assert all("gap_captured" not in run for run in doc["runs"].values())
    assert "optimum" not in render_table(_report(None, summer, cfg))


def test_simulate_optimum_writes_clean_json_to_stdout(tmp_path: Path) -> None:
    # A fresh process: the solver library must not write to stdout (it would spoil the JSON).
    code = "import sys; from emsctl.cli import main; sys.exit(main(sys.argv[1:]))"
    done = subprocess.run(
        [sys.executable, "-c", code, "simulate", "s1_clear_summer", "--optimum", "--json", "-"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert doc["optimum"]["windows"] == 1
    assert doc["runs"]["baseline"]["gap_captured"] == 0.0
    assert "share of the cost gap captured" in done.stderr
