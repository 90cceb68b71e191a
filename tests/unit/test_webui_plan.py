"""The plan page: the stored plan's chart (runs at their times, measured lines left of now,
planned lines right of it), the runs in words, the plan's age, and why there is no plan."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from markupsafe import escape

from emsctl import clock
from emsctl.plan_worker import PLAN_KEY
from tests.support import webui_kit
from tests.support.plan_kit import store_measured, store_plan
from tests.support.webui_kit import PASSWORD, UiEnv, make_env, opened
from webui import plan as plan_page
from webui.chart import PLOT_H, TOP

frozen = webui_kit.frozen
env = webui_kit.env  # the planner off, as by default
PLANNER = {"enabled": True}


@pytest.fixture
def planned(tmp_path: Path, frozen: Any) -> Iterator[UiEnv]:
    """The UI of a daemon with the planner on."""
    with opened(tmp_path, planner=PLANNER) as e:
        yield e


def _wide(html: str) -> str:
    """The wide drawing's SVG (the page also holds a narrow one for phones)."""
    m = re.search(r'<div class="chart-wide">(<svg.*?</svg>)</div>', html, re.S)
    assert m, "no wide chart on the page"
    return m.group(1)


def _track(svg: str, row: int) -> tuple[float, float, float]:
    """x, width and y of the `row`-th band's track: the plot's span across."""
    tracks = re.findall(r'<rect class="ch-track" x="([\d.]+)" y="([\d.]+)" width="([\d.]+)"', svg)
    x, y, w = tracks[row]
    return float(x), float(w), float(y)


def _xs(svg: str, cls: str) -> list[float]:
    m = re.search(rf'<path class="{cls}" d="([^"]+)"', svg)
    assert m, f"no {cls} path"
    return [float(x) for x in re.findall(r"[MLZ]?(-?[\d.]+),-?[\d.]+", m.group(1))]


def _ys(svg: str, cls: str) -> list[float]:
    m = re.search(rf'<path class="{cls}" d="([^"]+)"', svg)
    assert m, f"no {cls} path"
    return [float(y) for y in re.findall(r"-?[\d.]+,(-?[\d.]+)", m.group(1))]


def _now_x(svg: str) -> float:
    m = re.search(r'<line class="ch-now" x1="([\d.]+)"', svg)
    assert m
    return float(m.group(1))


def test_each_planned_run_is_a_band_at_its_time_and_a_line_of_text(planned: UiEnv) -> None:
    now = clock.now()
    made = now - timedelta(minutes=10)
    plan = store_plan(planned.store, planned.config, made)
    runs = [
        r for r in plan["runs"] if datetime.fromisoformat(r["from"]) < now + timedelta(hours=24)
    ]
    assert runs, "the sunny day gives the planner runs to place"
    resp = planned.client.get("/plan")
    assert resp.status_code == 200
    html = resp.get_data(as_text=True)
    svg = _wide(html)
    loads = [x.value for x in planned.config.enabled_loads()]
    x0, width, _ = _track(svg, 0)
    start = now - timedelta(hours=6)  # the chart spans now - 6 h .. now + 24 h
    bands = re.findall(
        r'<rect class="ch-band-plan" x="([\d.]+)" y="([\d.]+)" width="([\d.]+)"[^>]*>'
        r"<title>([^<]*)</title>",
        svg,
    )
    # Drawn load by load, each load's runs in time order.
    by_band = sorted(runs, key=lambda r: (loads.index(r["load"]), r["from"]))
    assert len(bands) == len(runs)
    for r, (x, y, w, tip) in zip(by_band, bands, strict=True):
        t0 = datetime.fromisoformat(r["from"])
        t1 = datetime.fromisoformat(r["until"])
        want_x = x0 + (t0 - start) / timedelta(hours=30) * width
        want_w = (t1 - t0) / timedelta(hours=30) * width
        assert float(x) == pytest.approx(want_x, abs=0.1), tip
        assert float(w) == pytest.approx(want_w, abs=0.15), tip
        assert float(y) == _track(svg, loads.index(r["load"]))[2], "on its load's track"
        local = r["local"].split()[1].split("-")  # "Mon 17:30-18:00"
        assert tip.endswith(f"planned {local[0]} to {local[1]}")
    # In words, in local time, with the energy the plan found spare.
    first = runs[0]
    times = first["local"].split()[1].replace("-", "\N{EN DASH}")
    label = {"sg_ready": "Heat pump SG-Ready", "dhw": "Hot water boost"}[first["load"]]
    assert (
        f'<span class="load">{label}</span> <time>{times}</time>, '
        f"{first['spare_wh'] / 1000:.1f} kWh spare"
    ) in html
    assert html.count('<li class="run-') == len(runs)
    assert "Made 11:50 (10 min ago)" in html  # frozen at 12:00 local
    assert "Stale" not in html and "No plan" not in html


def test_the_plan_is_drawn_right_of_now_and_the_measurements_left_of_it(planned: UiEnv) -> None:
    now = clock.now()
    plan = store_plan(planned.store, planned.config, now)
    store_measured(planned.store, now)
    svg = _wide(planned.client.get("/plan").get_data(as_text=True))
    now_x = _now_x(svg)
    x0, width, _ = _track(svg, 0)
    assert now_x == pytest.approx(x0 + width * 6 / 30, abs=0.1)
    for cls in ("ch-fc-pv", "ch-use", "ch-plan-soc"):
        assert min(_xs(svg, cls)) >= now_x, cls
    for cls in ("ch-pv", "ch-soc"):
        xs = _xs(svg, cls)
        assert max(xs) <= now_x, cls
        assert min(xs) < x0 + 2, f"{cls} starts at the chart's left edge (6 h of samples)"
    # The measured SOC ends where the last sample is (store_measured's soc_end_pct).
    last_pct = 40.0
    assert _ys(svg, "ch-soc")[-1] == pytest.approx(TOP + PLOT_H * (1 - last_pct / 100), abs=0.2)
    # The expected SOC starts where the plan's first slot is.
    first_pct = plan["slots"][0]["soc_pct"]
    assert _ys(svg, "ch-plan-soc")[0] == pytest.approx(
        TOP + PLOT_H * (1 - first_pct / 100), abs=0.2
    )


def test_without_samples_there_is_no_measured_line(planned: UiEnv) -> None:
    store_plan(planned.store, planned.config, clock.now())
    html = planned.client.get("/plan").get_data(as_text=True)
    assert "Made 12:00 (just now)" in html
    svg = _wide(html)
    assert 'class="ch-fc-pv"' in svg
    assert '<path class="ch-pv"' not in svg and '<path class="ch-soc"' not in svg


def test_no_plan_yet_says_so_and_draws_the_measurements(planned: UiEnv) -> None:
    store_measured(planned.store, clock.now())
    html = planned.client.get("/plan").get_data(as_text=True)
    assert escape(plan_page.NOT_YET) in html
    svg = _wide(html)
    assert '<path class="ch-soc"' in svg and ">No plan yet</text>" in svg
    assert "<title>SG planned" not in svg and "Planned runs" not in html


def test_the_planner_off_in_the_config_is_said_even_with_an_old_plan_stored(
    env: UiEnv, tmp_path: Path
) -> None:
    cfg = make_env(tmp_path / "on", planner=PLANNER).config
    store_plan(env.store, cfg, clock.now())
    html = env.client.get("/plan").get_data(as_text=True)
    assert "No plan: the planner is off in the config (planner.enabled)" in html
    assert ">Planner off</text>" in _wide(html)
    assert "<title>SG planned" not in html and "Planned runs" not in html


def test_a_plan_older_than_stale_s_is_stale(planned: UiEnv) -> None:
    now = clock.now()
    limit = planned.config.planner.stale_s
    store_plan(planned.store, planned.config, now - timedelta(seconds=limit))
    html = planned.client.get("/plan").get_data(as_text=True)
    assert "Stale" not in html  # at the limit it is still in force
    store_plan(planned.store, planned.config, now - timedelta(seconds=limit + 60))
    html = planned.client.get("/plan").get_data(as_text=True)
    assert (
        "Stale: this plan was made 46 min ago, more than planner.stale_s (45 min); "
        "the rules act alone until a new plan is made."
    ) in html
    assert "Made 11:14 (46 min ago)" in html


def test_a_stored_plan_that_cannot_be_read_is_said(planned: UiEnv) -> None:
    planned.store.kv_put(PLAN_KEY, '{"made_at": "yesterday"}', clock.now())
    html = planned.client.get("/plan").get_data(as_text=True)
    assert escape(plan_page.UNREADABLE) in html


def test_the_plan_page_needs_a_login_when_a_password_is_set(tmp_path: Path, frozen: Any) -> None:
    with opened(tmp_path, password=PASSWORD, planner=PLANNER) as e:
        store_plan(e.store, e.config, clock.now())
        resp = e.client.get("/plan")
        assert resp.status_code == 302
        assert resp.headers["Location"] == "/login?next=/plan"
        assert e.login().status_code == 302
        html = e.client.get("/plan").get_data(as_text=True)
        assert "<title>SG planned" in html and "kWh spare" in html


def test_the_navigation_links_the_plan(planned: UiEnv) -> None:
    html = planned.client.get("/").get_data(as_text=True)
    assert '<a href="/plan">Plan</a>' in html
    html = planned.client.get("/plan").get_data(as_text=True)
    assert '<a href="/plan" aria-current="page">Plan</a>' in html


def test_a_run_going_on_is_marked_now_and_its_band_begins_left_of_now(planned: UiEnv) -> None:
    now = clock.now()
    t0 = now - timedelta(minutes=15)
    zero = {"import_wh": 0.0, "export_wh": 0.0, "curtailed_wh": 0.0}
    slots = [
        {
            "at": (t0 + timedelta(minutes=15 * k)).isoformat(),
            "pv_wh": 500.0,
            "load_wh": 100.0,
            "soc_pct": 60.0,
            **zero,
            "on": ["dhw"] if k < 2 else [],
        }
        for k in range(8)
    ]
    until = now + timedelta(minutes=15)
    run = {"load": "dhw", "from": t0.isoformat(), "until": until.isoformat(), "spare_wh": 480}
    plan = {"made_at": t0.isoformat(), "start": t0.isoformat(), "runs": [run], "slots": slots}
    planned.store.kv_put(PLAN_KEY, json.dumps(plan), t0)
    html = planned.client.get("/plan").get_data(as_text=True)
    assert "<time>11:45\N{EN DASH}12:15</time>, 0.5 kWh spare" in html
    assert '<span class="running">(now)</span>' in html
    assert "Made 11:45 (15 min ago)" in html
    svg = _wide(html)
    band = re.search(r'<rect class="ch-band-plan" x="([\d.]+)"[^>]*><title>DHW planned', svg)
    assert band and float(band.group(1)) < _now_x(svg)
    # 500 Wh in 15 minutes is 2 kW: the forecast PV's top is at 2 kW on a 0..2 kW axis.
    assert ">2 kW</text>" in svg and min(_ys(svg, "ch-fc-pv")) == pytest.approx(TOP, abs=0.1)
