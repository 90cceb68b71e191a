"""The plan page in a real browser: the chart with a stored plan's runs, and the runs in words."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from emsctl import clock
from tests.browser.conftest import Site
from tests.browser.test_webui_browser import CLIPPED_CHART_LABELS
from tests.support.plan_kit import store_measured, store_plan

pytestmark = pytest.mark.real


@pytest.mark.parametrize("width", [360, 1280])
def test_the_plan_page_shows_the_chart_and_the_runs(
    site_factory: Callable[..., Site], new_page: Callable[..., Any], artifacts: Path, width: int
) -> None:
    site = site_factory(planner={"enabled": True})
    now = clock.now()
    plan = store_plan(site.env.store, site.env.config, now - timedelta(minutes=5))
    store_measured(site.env.store, now)
    ahead = [
        r for r in plan["runs"] if datetime.fromisoformat(r["from"]) < now + timedelta(hours=24)
    ]
    # The list leaves out a run already over (the plan began in the slot before it was made).
    listed = [r for r in ahead if datetime.fromisoformat(r["until"]) > now]
    assert listed, "the sunny day gives the planner runs to place"

    page = new_page(width=width, height=900)
    page.goto(site.url + "/")
    page.get_by_role("link", name="Plan").click()
    expect(page).to_have_url(site.url + "/plan")
    expect(page.get_by_role("heading", name="Plan: the next 24 hours")).to_be_visible()
    shown = ".chart-wide" if width >= 600 else ".chart-narrow"
    svg = page.locator(f"{shown} svg.chart")
    expect(svg).to_be_visible()
    expect(svg.locator("rect.ch-band-plan title")).to_have_count(len(ahead))
    expect(svg.locator("path.ch-fc-pv")).to_have_count(1)
    expect(svg.locator("path.ch-soc")).to_have_count(1)  # measured, left of now
    box = svg.bounding_box()
    assert box is not None and box["width"] > 0.8 * min(width, 1100) - 60

    runs = page.locator("ul.plan-runs > li")
    expect(runs).to_have_count(len(listed))
    expect(runs.first).to_contain_text("kWh spare")
    expect(page.locator(".plan-made")).to_contain_text(re.compile(r"\((5|6) min ago\)"))

    overflow = page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0, f"the plan page at {width}px scrolls sideways by {overflow}px"
    assert page.evaluate(CLIPPED_CHART_LABELS) == []
    name = "plan-chart.png" if width >= 600 else "plan-chart-360.png"
    shot = artifacts / name
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
