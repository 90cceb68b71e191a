"""The replay with the real Site: early releases fire on the plant's behaviour, flapping
clouds cause no short cycles, skipping quiet ticks changes nothing, and the CLI reports."""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
import yaml

from emsctl.cli import main
from emsctl.config import Config, parse_config
from emsctl.model import LoadId, State, Transition
from emsctl.sim.cli import _window, default_config
from emsctl.sim.runner import Trace, run_baseline, run_ems
from emsctl.sim.scenario import load, read_scenario_text
from tests.conftest import SCENARIOS
from tests.unit.sim_helpers import scenario, scenario_csv

HOUSE_CONFIG = Path(__file__).resolve().parents[2] / "configs" / "ems-config.yaml"


#: Cars that wait for surplus by day and charge in a night window whatever happens: where the
#: car rules (not charging, exclusion, brake) act. The package default charges at plug-in.
#: The cars on surplus by day with a night window: the window rules alone (rule 15), without
#: charging by target.
SURPLUS_CARS: dict[str, Any] = {
    "loads": {
        wb: {
            "charging": {"enabled": False},
            "fallback": {
                "enabled": True,
                "from": "22:00",
                "until": "06:30",
                "beats_brake": False,
                "ignores_exclusion": False,
            },
        }
        for wb in ("wb_a", "wb_b")
    }
}


def only(*loads: LoadId, **extra: Any) -> Config:
    """The default config with only `loads` enabled."""
    data: dict[str, Any] = {"loads": {x.value: {"enabled": x in loads} for x in LoadId}}
    for key, value in extra.items():
        data[key] = value
    return parse_config(data)


def releases(transitions: list[Transition], load: LoadId) -> list[Transition]:
    return [t for t in transitions if t.load is load and str(t.event) == "release"]


def test_a_car_that_becomes_full_stops_drawing_and_wb_a_is_released_as_not_charging() -> None:
    # A sunny hour after hour with a full battery; car A accepts 1.5 kWh (45 min at 2 kW).
    scn = scenario(
        240,
        lambda i: {
            "pv_w": 5000,
            "house_w": 300,
            "outdoor_c": 20,
            "car_a_plugged": 1,
            "car_a_need_wh": 1500,
        },
    )
    cfg = parse_config(
        {
            "loads": {
                "sg_ready": {"enabled": False},
                "dhw": {"enabled": False},
                "wb_b": {"enabled": False},
                # Rule 11 on surplus, as without charging by target.
                "wb_a": {"fallback": {"enabled": False}, "charging": {"enabled": False}},
            },
            "sim": {"battery": {"initial_wh": 7600}},
        }
    )
    trace = Trace(0, scn.minutes)
    run = run_ems(scn, cfg, trace=trace)
    drawing = list(trace.draws[LoadId.WB_A])
    first, last = drawing.index(1), len(drawing) - 1 - drawing[::-1].index(1)
    assert last - first + 1 == 45  # the car took its 1.5 kWh and stopped drawing
    rel = releases(run.transitions, LoadId.WB_A)
    assert rel
    assert all("car not charging" in t.reasons[0] for t in rel)
    # Later tries (after each hour of cooldown) find the car still full.
    assert all((b.at - a.at).total_seconds() >= 3600 for a, b in pairwise(rel))
    released_at = scn.index_of(rel[0].at)
    # Released once the meter showed < 100 W for 5 minutes (plus the measurement lag).
    assert last < released_at <= last + 8
    assert trace.outputs[LoadId.WB_A][released_at + 1] == 0
    assert run.plant.tallies[LoadId.WB_A].short_cycles == 0
    assert run.kpis.car_delivered_kwh == pytest.approx(1.5)


def test_a_car_that_arrives_full_draws_nothing_and_the_rule_fires_in_s5() -> None:
    run = run_ems(load("s5_car_a_arrives_full"), parse_config(SURPLUS_CARS))
    rel = releases(run.transitions, LoadId.WB_A)
    assert rel, "WB A was never released as not charging"
    assert all("car not charging" in t.reasons[0] for t in rel)
    assert run.kpis.loads["wb_a"].energy_kwh == 0.0  # car A wanted nothing


def test_sg_ready_ends_with_the_compressor_idle_and_is_released_early() -> None:
    # A cold sunny day, battery well charged: SG-Ready starts, the buffer heats to the raised
    # target (47.5 degC), the compressor stops, and the idle rule releases SG-Ready.
    scn = scenario(
        360,
        lambda i: {"pv_w": 5500, "house_w": 300, "outdoor_c": 5, "heat_demand_w": 800},
    )
    cfg = only(LoadId.SG_READY, sim={"battery": {"initial_wh": 6000}})
    trace = Trace(0, scn.minutes)
    run = run_ems(scn, cfg, trace=trace)
    rel = releases(run.transitions, LoadId.SG_READY)
    assert len(rel) >= 1
    assert rel[0].reasons[0].startswith("compressor idle")
    assert rel[0].target is State.COOLDOWN
    i = scn.index_of(rel[0].at)
    on = list(trace.outputs[LoadId.SG_READY])
    heating = list(trace.draws[LoadId.SG_READY])
    started = on.index(1)
    # The compressor heated under SG-Ready, then idled for the rule's 5 minutes.
    assert sum(heating[started:i]) > 30
    assert not any(heating[i - 5 : i])
    assert run.plant.tallies[LoadId.SG_READY].short_cycles == 0


def test_flapping_clouds_cause_no_cycle_shorter_than_a_minimum_runtime() -> None:
    for cfg in (Config(), parse_config(SURPLUS_CARS)):
        run = run_ems(load("s2_spring_fast_clouds"), cfg)
        starts = sum(1 for t in run.transitions if str(t.event) == "start")
        assert starts >= 3  # the day does switch loads
        for load_id, k in run.kpis.loads.items():
            assert k.short_cycles == 0, load_id


@pytest.mark.parametrize(
    "name",
    [
        "s2_spring_fast_clouds",
        "s5_car_a_arrives_full",
        str(SCENARIOS / "s3_winter_low_pv.csv"),  # low SOC: nights under the brake
        str(SCENARIOS / "s8_data_gaps.csv"),  # missing data: fail-safe watch
    ],
)
@pytest.mark.parametrize("config", ["package defaults", "night window", "house"])
def test_skipping_quiet_ticks_gives_exactly_the_same_transitions(name: str, config: str) -> None:
    scn = load(name)
    if config == "package defaults":
        cfg = default_config()
    elif config == "house":
        # Charging by target (awaiting relays on through skipped ticks), a noisy forecast.
        data = yaml.safe_load(HOUSE_CONFIG.read_text())
        data["sim"] = {"forecast_error": 0.35}
        cfg = parse_config(data)
    else:
        cfg = parse_config({**SURPLUS_CARS, "forecast": {"enabled": True}})
    full = run_ems(scn, cfg, skip_quiet=False)
    fast = run_ems(scn, cfg)
    assert fast.skipped_ticks > scn.minutes // 5

    def key(ts: list[Transition]) -> list[tuple[object, ...]]:
        return [(t.at, t.load, t.source, t.target, str(t.event), t.reasons) for t in ts]

    assert key(fast.transitions) == key(full.transitions)
    assert fast.kpis == full.kpis


def test_the_report_closes_the_energy_balance_for_both_runs() -> None:
    scn = load("s1_clear_summer")
    cfg = default_config()
    for run in (run_ems(scn, cfg), run_baseline(scn, cfg)):
        k = run.kpis
        assert abs(k.balance_error_kwh()) < 1e-6
        assert 0.0 <= k.self_consumption <= 1.0
        assert 0.0 <= k.autarky <= 1.0
        assert k.car_unmet_kwh + k.car_pending_kwh == pytest.approx(
            k.car_wanted_kwh - k.car_delivered_kwh
        )


def test_emsctl_simulate_prints_the_table_and_writes_json_and_plot(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "report.json"
    png = tmp_path / "day.png"
    rc = main(["simulate", "s2_spring_fast_clouds", "--json", str(out), "--plot", str(png)])
    assert rc == 0
    captured = capsys.readouterr()
    assert "self-consumption" in captured.out
    assert "cycles < min runtime" in captured.out
    assert "%" not in captured.err  # no progress bar when stderr is not a terminal
    data = json.loads(out.read_text())
    assert data["scenario"] == "s2_spring_fast_clouds"
    assert data["minutes"] == 1440
    assert set(data["runs"]) == {"ems", "baseline"}
    keys = {
        "pv_kwh", "house_kwh", "heat_pump_kwh", "wallbox_kwh", "import_kwh", "export_kwh",
        "curtailed_kwh", "battery_delta_kwh", "battery_loss_kwh", "self_consumption",
        "autarky", "cost_eur", "cost_with_unmet_eur", "car_wanted_kwh", "car_delivered_kwh",
        "car_unmet_kwh", "heating_comfort_violation_min", "dhw_comfort_violation_min", "loads",
    }  # fmt: skip
    for k in data["runs"].values():
        assert keys <= set(k)
        assert set(k["loads"]) == {"sg_ready", "dhw", "wb_a", "wb_b"}
        for per_load in k["loads"].values():
            assert {"runtime_h", "energy_kwh", "switch_ons", "short_cycles"} <= set(per_load)
        lhs = k["pv_kwh"] + k["import_kwh"]
        rhs = sum(
            k[x]
            for x in (
                "house_kwh", "heat_pump_kwh", "wallbox_kwh", "export_kwh", "curtailed_kwh",
                "battery_delta_kwh", "battery_loss_kwh",
            )
        )  # fmt: skip
        assert lhs == pytest.approx(rhs, abs=1e-6)
    assert png.stat().st_size > 10_000
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_emsctl_simulate_reports_a_bad_scenario_and_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("timestamp,pv\n", encoding="utf-8")
    assert main(["simulate", str(bad)]) == 2
    assert "line 1: bad header" in capsys.readouterr().err


def test_json_on_stdout_keeps_stdout_pure_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["simulate", "s1_clear_summer", "--json", "-"]) == 0
    captured = capsys.readouterr()
    data = json.loads(captured.out)
    assert data["runs"]["ems"]["pv_kwh"] == pytest.approx(data["runs"]["baseline"]["pv_kwh"])
    assert "self-consumption" in captured.err


def test_the_site_ticks_at_the_configured_control_interval() -> None:
    scn = load("s2_spring_fast_clouds")
    cfg = parse_config({"control": {"interval_s": 180}})
    run = run_ems(scn, cfg, skip_quiet=False)
    assert run.transitions
    # Ticks come at the end of minutes 3, 6, 9 ... of the scenario.
    assert all((t.at - scn.start).total_seconds() % 180 == 0 for t in run.transitions)


def test_the_default_plot_window_is_the_sunniest_local_day_even_after_a_dst_change() -> None:
    cfg = Config()
    tz = cfg.control.tz
    start = datetime(2026, 3, 25, 23, 0, tzinfo=UTC)  # local midnight (CET)

    def row(i: int) -> dict[str, float]:
        local = (start + timedelta(minutes=i)).astimezone(tz)
        # 31 March, after the switch to summer time, is the sunny one.
        return {"pv_w": 5000 if (local.month, local.day) == (3, 31) else 100}

    scn = read_scenario_text(scenario_csv(10 * 1440, row, start))
    args = argparse.Namespace(plot_from=None, plot_days=1.0)
    first, count = _window(scn, cfg, args)
    assert count == 1440
    local = scn.time(first).astimezone(tz)
    assert (local.month, local.day, local.hour, local.minute) == (3, 31, 0, 0)


def test_wallboxes_charging_all_day_keep_their_relays_on_through_skipped_ticks() -> None:
    # The house's config: both wallboxes charge whenever a car is plugged. Their dead-man
    # timers (300 s) must be renewed on skipped ticks too, or the relays would switch off by
    # themselves and come back as "timer" events.
    scn = load("s1_clear_summer")
    cfg = parse_config(yaml.safe_load(HOUSE_CONFIG.read_text()))
    run = run_ems(scn, cfg)
    assert run.skipped_ticks > scn.minutes // 2
    for wb in (LoadId.WB_A, LoadId.WB_B):
        assert run.kpis.loads[wb.value].switch_ons == 1
        # On from the first start (after on_delay_s and the settling of the other box) to the end.
        assert run.kpis.loads[wb.value].runtime_h > scn.minutes / 60 - 0.25
        events = [str(t.event) for t in run.transitions if t.load is wb]
        assert events == ["arm", "start"]  # and nothing after: no timer, no manual, no release
    # As much car energy as charging from plug-in without EMS (the day ends mid-session).
    base = run_baseline(scn, cfg)
    assert run.kpis.car_delivered_kwh == pytest.approx(base.kpis.car_delivered_kwh, abs=0.01)


def test_the_report_gives_each_loads_most_switch_ons_in_one_local_day() -> None:
    # Without EMS the wallbox follows the plug: car B comes three times on the first local day
    # (Berlin) and once on the second; 23:30 UTC on day one is already day two in Berlin.
    start = datetime(2026, 3, 20, 0, 0, tzinfo=UTC)
    visits = [(6 * 60, 30), (10 * 60, 30), (14 * 60, 30), (23 * 60 + 30, 20)]

    def row(i: int) -> dict[str, float]:
        plugged = any(a <= i < a + n for a, n in visits)
        return {"car_b_plugged": 1.0 if plugged else 0.0, "outdoor_c": 10.0}

    scn = read_scenario_text(scenario_csv(2 * 1440, row, start))
    kpi = run_baseline(scn, default_config()).kpis.loads[LoadId.WB_B.value]
    assert kpi.switch_ons == 4
    assert kpi.max_switch_ons_per_day == 3
