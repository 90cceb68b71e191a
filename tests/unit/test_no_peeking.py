"""No peeking: what EMS decides up to a moment depends only on what it could know by then.

The replay runs a scenario twice, the second time with the house load, the car sessions and
the hot-water draws changed after a moment T; every decision before T must be the same
(`sim.owner: none`: habits learned from the replay's own past sessions only). The forecast is
left as it is: it is the scenario's own PV with a day-ahead error, which the daemon has too.
"""

from __future__ import annotations

from array import array
from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from emsctl.config import parse_config
from emsctl.sim.runner import run_ems
from emsctl.sim.scenario import Scenario, read_scenario
from tests.conftest import untraced

ROOT = Path(__file__).resolve().parents[2]
YEAR = ROOT / "bench" / "data" / "year_2026.csv.gz"
HOUSE = ROOT / "configs" / "ems-config.yaml"


def _altered(scn: Scenario, t: int) -> Scenario:
    """The scenario with its future (minutes from `t` on) rewritten."""
    values = {k: array("d", v) for k, v in scn.values.items()}
    n = scn.minutes
    for i in range(t, n):
        values["house_w"][i] = values["house_w"][i] * 1.7 + 250.0
        values["dhw_draw_w"][i] = values["dhw_draw_w"][(i + 720) % n]
        # Car A comes and goes on another day's pattern; car B stays away.
        j = (i + 1440 * 3) % n
        values["car_a_plugged"][i] = values["car_a_plugged"][j]
        values["car_a_need_wh"][i] = values["car_a_need_wh"][j] * 1.3
        values["car_b_plugged"][i] = 0.0
    return replace(scn, values=values)


@pytest.mark.parametrize("planner", [False, True], ids=["rules", "planner"])
def test_decisions_before_a_moment_do_not_depend_on_what_comes_after_it(planner: bool) -> None:
    raw = yaml.safe_load(HOUSE.read_text())
    raw.setdefault("sim", {})["owner"] = "none"
    # With the planner: its house-load profile is learned from the past minutes only.
    raw.setdefault("planner", {})["enabled"] = planner
    cfg = parse_config(raw, "house, owner none")
    with untraced():
        scn = read_scenario(YEAR).slice(120 * 1440, 28 * 1440)  # May, with sun and cars
        t = 21 * 1440 + 11 * 60  # day 22, 13:00 local
        moment = scn.time(t)
        first = run_ems(scn, cfg)
        second = run_ems(_altered(scn, t), cfg)

    def before(run: object) -> list[tuple[object, ...]]:
        return [
            (x.at, x.load, x.source, x.target, x.event, x.reasons)
            for x in run.transitions  # type: ignore[attr-defined]
            if x.at < moment
        ]

    a, b = before(first), before(second)
    if planner:
        plans = [p for p in first.plans if p[0] < moment]
        assert len(plans) > 21 * 90  # every 15 minutes, and more
        assert plans == [p for p in second.plans if p[0] < moment]
        assert any(blocks for _, blocks in plans)
        assert any("planned " in x[5][0] for x in a if x[5])
    assert len(a) > 400  # three weeks of decisions, cars included
    assert {x[1].value for x in a} >= {"wb_a", "wb_b", "sg_ready"}
    assert a == b
    # ...and the future did change: the test would see peeking.
    after = [x for x in second.transitions if x.at >= moment]
    assert [(x.at, x.load, x.event) for x in after] != [
        (x.at, x.load, x.event) for x in first.transitions if x.at >= moment
    ]
