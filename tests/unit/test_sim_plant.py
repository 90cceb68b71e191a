"""The plant's physics: energy balance every minute, inverter and battery limits, heat pump
thermostats with SG-Ready and DHW boost, cars that stop drawing when full."""

from __future__ import annotations

import pytest

from emsctl.config import Config, parse_config
from emsctl.model import LoadId
from emsctl.sim.plant import BUFFER, DHW, IDLE, Plant
from emsctl.sim.report import kpis
from emsctl.sim.scenario import load
from tests.unit.sim_helpers import scenario

CFG = Config()
EPS_W = 1e-6


def balance_error_w(p: Plant) -> float:
    """pv + import - export minus everything the minute's energy went to, in W."""
    left = p.pv_w + p.grid_w
    right = (
        p.house_w
        + p.heat_pump_w
        + p.wb_a_w
        + p.wb_b_w
        + p.curtailed_w
        + p.stored_delta_wh * 60.0
        + p.battery_loss_w
    )
    return left - right


@pytest.mark.parametrize(
    "name", ["s1_clear_summer", "s2_spring_fast_clouds", "s5_car_a_arrives_full"]
)
def test_the_energy_balance_closes_every_minute_while_outputs_switch(name: str) -> None:
    scn = load(name)
    p = Plant(scn, CFG)
    ac_max = CFG.sim.inverter_ac_w
    b = CFG.sim.battery
    while not p.done:
        i = p.index
        # Switch every output in its own rhythm so all paths of the model are exercised.
        p.sg_ready = (i // 47) % 2 == 0
        p.dhw_boost = (i // 89) % 3 == 0
        p.wb_a_on = (i // 31) % 2 == 1
        p.wb_b_on = (i // 53) % 2 == 0
        p.step()
        assert abs(balance_error_w(p)) < EPS_W, f"minute {i}"
        ac_out = p.pv_w - p.curtailed_w - p.battery_w
        assert -EPS_W <= ac_out <= ac_max + EPS_W, f"minute {i}: AC output {ac_out}"
        assert b.reserve_wh - 1e-9 <= p.stored_wh <= b.capacity_wh + 1e-9
        assert -b.max_discharge_w - EPS_W <= p.battery_w <= b.max_charge_w + EPS_W
        assert p.curtailed_w >= 0 and p.battery_loss_w >= 0
    k = kpis(p, CFG.tariff)
    assert abs(k.balance_error_kwh()) < 1e-9
    assert k.pv_kwh > 0 and k.heat_pump_kwh > 0 and k.wallbox_kwh > 0


def test_pv_above_the_ac_limit_charges_the_battery_and_the_rest_is_curtailed() -> None:
    scn = scenario(120, lambda i: {"pv_w": 6000, "house_w": 300, "outdoor_c": 20})
    p = Plant(scn, CFG)
    p.step()
    # Surplus 5.7 kW: the battery takes its 4 kW, 1.7 kW go to the grid, nothing is lost.
    assert p.battery_w == pytest.approx(4000)
    assert p.grid_w == pytest.approx(-1700)
    assert p.curtailed_w == 0
    while p.stored_wh < CFG.sim.battery.capacity_wh - 1e-6:
        p.step()
    p.step()
    # Battery full: the AC side carries 4.6 kW, the other 1.4 kW of PV are curtailed.
    assert p.battery_w == pytest.approx(0)
    assert p.curtailed_w == pytest.approx(1400)
    assert p.grid_w == pytest.approx(300 - 4600)


def test_dc_pv_above_the_limit_charges_even_when_the_house_takes_more_than_the_limit() -> None:
    # 5 kW PV, 5.3 kW load: the AC side is capped at 4.6 kW, the remaining 0.4 kW of PV can
    # only go into the battery; the house imports the difference.
    scn = scenario(5, lambda i: {"pv_w": 5000, "house_w": 5300, "outdoor_c": 20})
    p = Plant(scn, CFG)
    p.step()
    assert p.battery_w == pytest.approx(400)
    assert p.curtailed_w == 0
    assert p.grid_w == pytest.approx(700)


def test_the_battery_covers_a_deficit_until_its_reserve_then_the_grid_does() -> None:
    scn = scenario(24 * 60, lambda i: {"pv_w": 0, "house_w": 2000, "outdoor_c": 20})
    p = Plant(scn, CFG)
    p.step()
    assert p.battery_w == pytest.approx(-2000)
    assert p.grid_w == pytest.approx(0)
    while not p.done:
        p.step()
    assert p.stored_wh == pytest.approx(CFG.sim.battery.reserve_wh)
    assert p.grid_w == pytest.approx(2000)
    # 3.2 kWh left the store; the house got 95 % of it.
    k = kpis(p, CFG.tariff)
    assert k.battery_delta_kwh == pytest.approx(-3.2)
    assert k.battery_loss_kwh == pytest.approx(3.2 * 0.05, rel=1e-6)


def test_discharge_respects_its_power_limit() -> None:
    scn = scenario(3, lambda i: {"pv_w": 0, "house_w": 6000, "outdoor_c": 20})
    p = Plant(scn, CFG)
    p.step()
    assert p.battery_w == pytest.approx(-4000)
    assert p.grid_w == pytest.approx(2000)


def test_a_car_draws_its_wallbox_power_until_full_then_nothing() -> None:
    # Car A plugged from minute 10 accepting 1 kWh: 30 minutes at 2 kW.
    def row(i: int) -> dict[str, float]:
        plugged = 1 if i >= 10 else 0
        return {"outdoor_c": 20, "car_a_plugged": plugged, "car_a_need_wh": 1000 * plugged}

    p = Plant(scenario(60, row), CFG)
    p.wb_a_on = True
    drawn = []
    while not p.done:
        p.step()
        drawn.append(p.wb_a_w)
    assert drawn[:10] == [0.0] * 10
    assert drawn[10:40] == [pytest.approx(2000)] * 30
    assert drawn[40:] == [0.0] * 20
    k = kpis(p, CFG.tariff)
    assert k.car_wanted_kwh == pytest.approx(1.0)
    assert k.car_delivered_kwh == pytest.approx(1.0)
    assert k.car_unmet_kwh == pytest.approx(0.0)


def test_a_car_without_its_relay_on_draws_nothing_and_its_need_counts_as_unmet() -> None:
    # Plugged for 20 minutes, then it leaves with its 5 kWh still wanted.
    p = Plant(
        scenario(
            30,
            lambda i: {"outdoor_c": 20, "car_b_plugged": int(i < 20), "car_b_need_wh": 5000},
        ),
        CFG,
    )
    while not p.done:
        p.step()
        assert p.wb_b_w == 0
    k = kpis(p, CFG.tariff)
    assert k.car_unmet_kwh == pytest.approx(5.0)
    assert k.car_pending_kwh == 0.0
    assert k.cars_missed == {"wb_a": 0, "wb_b": 1}
    assert k.cost_with_unmet_eur == pytest.approx(k.cost_eur + 5.0 * 1.00)


def test_a_car_still_plugged_in_at_the_end_counts_as_pending_at_the_import_price() -> None:
    p = Plant(
        scenario(30, lambda i: {"outdoor_c": 20, "car_b_plugged": 1, "car_b_need_wh": 5000}),
        CFG,
    )
    while not p.done:
        p.step()
    k = kpis(p, CFG.tariff)
    assert k.car_unmet_kwh == 0.0
    assert k.car_pending_kwh == pytest.approx(5.0)
    assert k.cost_with_unmet_eur == pytest.approx(k.cost_eur + 5.0 * CFG.tariff.import_eur_kwh)


def test_a_new_plug_in_starts_a_new_session_with_its_own_need() -> None:
    def row(i: int) -> dict[str, float]:
        plugged = 1 if i < 10 or i >= 20 else 0
        return {"outdoor_c": 20, "car_a_plugged": plugged, "car_a_need_wh": 100 * plugged}

    p = Plant(scenario(40, row), CFG)
    p.wb_a_on = True
    while not p.done:
        p.step()
    k = kpis(p, CFG.tariff)
    assert k.car_wanted_kwh == pytest.approx(0.2)
    assert k.car_delivered_kwh == pytest.approx(0.2)


def cold_day(minutes: int, heat_w: float = 0.0, draw_w: float = 0.0) -> Plant:
    return Plant(
        scenario(
            minutes,
            lambda i: {"outdoor_c": 2.0, "heat_demand_w": heat_w, "dhw_draw_w": draw_w},
        ),
        CFG,
    )


def test_the_buffer_thermostat_heats_from_below_37_5_to_42_5() -> None:
    p = cold_day(600, heat_w=3000)
    modes = []
    temps = []
    while not p.done:
        p.step()
        modes.append(p.mode)
        temps.append(p.buffer_c)
    assert modes[0] == IDLE  # starts at 40 degC, between the thermostat points
    first_on = modes.index(BUFFER)
    # It switched on in the first minute that began below 37.5 degC.
    assert temps[first_on - 2] >= 37.5 > temps[first_on - 1]
    assert max(temps) == pytest.approx(42.5, abs=0.2)
    assert min(temps) == pytest.approx(37.5, abs=0.1)
    # At 2 degC outdoors the COP is 3.9: 2 kW electric give 7.8 kW of heat.
    assert p.cop(2.0) == pytest.approx(3.9)


def test_sg_ready_raises_the_buffer_target_by_5_k_and_the_compressor_then_idles() -> None:
    p = cold_day(240, heat_w=1000)
    p.sg_ready = True
    modes = []
    temps = []
    while not p.done:
        p.step()
        modes.append(p.mode)
        temps.append(p.buffer_c)
    assert modes[0] == BUFFER  # 40 degC is below the raised on-point 42.5
    assert max(temps) == pytest.approx(47.5, abs=0.2)
    assert modes[-1] == IDLE  # target reached: the compressor idles
    assert p.compressor_w == 0
    assert p.tallies[LoadId.SG_READY].energy_wh > 0  # the boost's compressor energy


def test_dhw_boost_heats_the_tank_to_60_and_the_compressor_serves_dhw_first() -> None:
    p = cold_day(300, heat_w=3000)
    p.buffer_c = 37.0  # the buffer calls for heat too
    p.dhw_boost = True
    p.step()
    assert p.mode == DHW  # DHW first
    top = p.dhw_c
    while not p.done:
        p.step()
        top = max(top, p.dhw_c)
    assert top == pytest.approx(60.0, abs=0.4)
    assert p.dhw_c < 60.0 or p.mode != DHW


def test_the_backup_heater_holds_the_minimum_when_the_heat_pump_cannot() -> None:
    # 12 kW of heat demand is more than the compressor's 7.8 kW: the buffer falls to its
    # minimum, where the backup heater holds it.
    p = cold_day(600, heat_w=12000)
    while not p.done:
        p.step()
    assert p.buffer_c == pytest.approx(35.0, abs=0.01)
    assert p.backup_w > 0
    assert p.totals.heating_violation_min == 0


def test_a_dhw_draw_beyond_the_backup_heater_counts_as_comfort_violation() -> None:
    p = cold_day(60, draw_w=30000)
    while not p.done:
        p.step()
    assert p.totals.dhw_violation_min > 0


def test_plant_parameters_come_from_the_config() -> None:
    cfg = parse_config(
        {
            "sim": {"inverter_ac_w": 3000, "battery": {"capacity_wh": 10000, "initial_wh": 5000}},
            "loads": {"wb_a": {"nominal_w": 3000}},
        }
    )
    scn = scenario(
        3,
        lambda i: {
            "pv_w": 6000,
            "house_w": 0,
            "outdoor_c": 20,
            "car_a_plugged": 1,
            "car_a_need_wh": 9000,
        },
    )
    p = Plant(scn, cfg)
    p.wb_a_on = True
    p.step()
    assert p.wb_a_w == 3000
    assert p.soc_pct == pytest.approx(100 * (5000 + 3000 * 0.95 / 60) / 10000)
    assert p.curtailed_w == 0  # 6 kW PV: 3 kW battery, 3 kW AC = limit
    assert p.grid_w == pytest.approx(0)
