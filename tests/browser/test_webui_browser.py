"""The owner's view in a real browser: buttons, live refresh, login, history filters, layout."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable
from datetime import datetime, time, timedelta
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from emsctl import clock
from emsctl.model import LoadId, LoadReading, LoadStatus, Mode, Snapshot, State, Transition
from tests.browser.conftest import Site
from tests.support.webui_kit import PASSWORD

pytestmark = pytest.mark.real

WB_A = LoadId.WB_A
#: The history's samples come every 5 minutes (fewer writes, a faster test): a control
#: interval of 4 minutes makes that a normal sample rate rather than a string of outages.
SPARSE = {"interval_s": 240}


def _card(page: Any, load: str) -> Any:
    return page.locator(f"#card-{load}")


def test_force_on_for_wb_a_changes_the_card_and_auto_clears_it(
    site: Site, new_page: Callable[..., Any]
) -> None:
    page = new_page()
    page.goto(site.url + "/")
    card = _card(page, "wb_a")
    expect(card.locator(".pill")).to_have_text("arming")
    expect(card.get_by_role("button", name="Auto")).to_have_attribute("aria-pressed", "true")

    card.get_by_role("button", name="Force on").click()
    # The controller ticks shortly after; the card follows on the page's next (fast) poll.
    expect(card.locator(".pill")).to_have_text("forced on")
    expect(card.locator(".live")).to_have_class(re.compile(r"\bc-blue\b"))
    expect(card.locator(".override")).to_contain_text("Force on until")
    expect(card.locator(".power")).to_have_text("2.0 kW")
    expect(card.get_by_role("button", name="Force on")).to_have_attribute("aria-pressed", "true")
    expect(card.locator(".msg")).to_have_text("Applied.")
    stored = site.env.store.active_overrides(clock.now())[WB_A]
    assert stored.mode is Mode.FORCE_ON and stored.created_by == "ui"
    assert stored.expires_at is not None
    assert timedelta(minutes=59) < stored.expires_at - stored.created_at <= timedelta(hours=1)
    assert site.env.controller.tick_requests == 1

    card.get_by_role("button", name="Auto").click()
    expect(card.locator(".pill")).to_have_text("arming")
    expect(card.locator(".override")).to_have_count(0)
    expect(card.get_by_role("button", name="Auto")).to_have_attribute("aria-pressed", "true")
    assert WB_A not in site.env.store.active_overrides(clock.now())
    assert site.env.controller.tick_requests == 2
    # The other cards were not touched.
    expect(_card(page, "wb_b").locator(".pill")).to_have_text("off")


def test_force_off_until_midnight_stores_the_next_local_midnight(
    site: Site, new_page: Callable[..., Any]
) -> None:
    page = new_page()
    page.goto(site.url + "/")
    card = _card(page, "sg_ready")
    card.locator('select[name="duration"]').select_option("midnight")
    card.get_by_role("button", name="Force off").click()
    expect(card.locator(".pill")).to_have_text("forced off")
    expect(card.locator(".override")).to_contain_text("until midnight")
    stored = site.env.store.active_overrides(clock.now())[LoadId.SG_READY]
    tz = site.env.config.control.tz
    local = stored.created_at.astimezone(tz)
    midnight = datetime.combine(local.date() + timedelta(days=1), time(0), tzinfo=tz)
    assert stored.mode is Mode.FORCE_OFF and stored.expires_at == midnight


def test_a_held_back_force_on_is_explained_on_the_card(
    site_factory: Callable[..., Site], new_page: Callable[..., Any]
) -> None:
    site = site_factory(blocked={WB_A: "emergency brake: soc 43% < 45%"})
    page = new_page()
    page.goto(site.url + "/")
    card = _card(page, "wb_a")
    card.get_by_role("button", name="Force on").click()
    expect(card.locator(".blocked")).to_have_text(
        "Force on held back: emergency brake: soc 43% < 45%"
    )
    expect(card.locator(".pill")).to_have_text("arming")


def test_login_and_logout(site_factory: Callable[..., Site], new_page: Callable[..., Any]) -> None:
    site = site_factory(password=PASSWORD)
    page = new_page()
    page.goto(site.url + "/history")
    expect(page).to_have_url(re.compile(r"/login\?next=/history$"))
    page.get_by_label("Your name").fill("anna")
    page.get_by_label("Password").fill("not it")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("alert")).to_have_text("Wrong password.")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(site.url + "/history")
    expect(page.locator(".who")).to_have_text("anna")

    page.goto(site.url + "/")
    _card(page, "wb_b").get_by_role("button", name="Force on").click()
    expect(_card(page, "wb_b").locator(".override")).to_contain_text("by anna")
    assert site.env.store.active_overrides(clock.now())[LoadId.WB_B].created_by == "anna"

    page.get_by_role("button", name="Log out").click()
    expect(page).to_have_url(re.compile(r"/login$"))
    expect(page.locator(".flash")).to_have_text("Logged out.")
    page.goto(site.url + "/")
    expect(page).to_have_url(re.compile(r"/login\?next=/$"))


def _fill_history(site: Site, pv_peak_w: float = 5600.0) -> None:
    now = clock.now()
    k = pv_peak_w / 5600
    ts = []
    for i, load in enumerate((LoadId.WB_A, LoadId.WB_B, LoadId.SG_READY)):
        for day in (0, 2):
            at = now - timedelta(days=day, hours=1, minutes=10 * i)
            ts.append(
                Transition(at, load, State.OFF, State.ARMING, "arm", (f"{load} arm day {day}",))
            )
    site.env.store.record_transitions(sorted(ts, key=lambda t: t.at))

    def st(load: LoadId, state: State, on: bool, at: datetime) -> LoadStatus:
        return LoadStatus(load, state, at, reading=LoadReading(relay_on=on))

    for m in range(0, 24 * 60, 5):
        at = now - timedelta(minutes=24 * 60 - m)
        sun = max(0.0, 1 - abs(m - 780) / 420)  # a day's PV bell, noon at minute 780
        wb_a = 600 <= m < 840
        sg = 540 <= m < 700
        wb_b = 1300 <= m < 1340
        site.env.store.record_sample(
            at,
            Snapshot(
                at=at,
                pv_w=5600 * sun * k,
                grid_w=350 - 2600 * sun * k + (1900 if wb_a else 0),
                soc_pct=min(100.0, 30 + m / 11),
            ),
            {
                LoadId.SG_READY: st(LoadId.SG_READY, State.ON if sg else State.OFF, sg, at),
                LoadId.WB_A: st(LoadId.WB_A, State.ON if wb_a else State.OFF, wb_a, at),
                LoadId.WB_B: st(LoadId.WB_B, State.FORCED_ON if wb_b else State.OFF, wb_b, at),
            },
        )


def test_history_filters_by_load_and_period(
    site_factory: Callable[..., Site], new_page: Callable[..., Any]
) -> None:
    site = site_factory(control=SPARSE)
    _fill_history(site)
    page = new_page()
    page.goto(site.url + "/history")
    rows = page.locator("ol.history > li")
    expect(rows).to_have_count(6)
    expect(page.locator(".chart-wide svg.chart path.ch-pv")).to_have_count(1)
    expect(page.locator(".chart-wide svg.chart rect.ch-band-on:has(title)")).to_have_count(2)

    page.get_by_label("Load", exact=True).select_option("wb_b")
    page.get_by_role("button", name="Show").click()
    expect(page).to_have_url(re.compile(r"load=wb_b"))
    expect(rows).to_have_count(2)
    for text in rows.all_inner_texts():
        assert "Wallbox B" in text

    today = clock.now().astimezone(site.env.config.control.tz).date()
    page.get_by_label("From").fill((today - timedelta(days=1)).isoformat())
    page.get_by_role("button", name="Show").click()
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("wb_b arm day 0")

    page.get_by_label("Load", exact=True).select_option("")
    page.get_by_role("button", name="Show").click()
    expect(rows).to_have_count(3)


def test_the_page_refreshes_itself(site: Site, new_page: Callable[..., Any]) -> None:
    page = new_page()
    page.goto(site.url + "/")
    expect(_card(page, "wb_a").locator(".pill")).to_have_text("arming")
    # Someone else (another phone, the CLI) forces WB A; this page learns it by polling.
    now = clock.now()
    site.env.store.add_override(WB_A, Mode.FORCE_ON, "ben", now, None)
    site.env.controller.tick()
    expect(_card(page, "wb_a").locator(".pill")).to_have_text("forced on", timeout=15_000)
    expect(_card(page, "wb_a").locator(".override")).to_contain_text("until released · by ben")


#: Screenshots shown in the README.
DOC_IMAGES = Path(__file__).resolve().parents[2] / "docs" / "img"

#: The visible chart's axis labels that stick out of the drawing (an SVG clips them).
CLIPPED_CHART_LABELS = """
() => [...document.querySelectorAll("svg.chart")]
  .filter((svg) => svg.getBoundingClientRect().width > 0)
  .flatMap((svg) => {
    const box = svg.getBoundingClientRect();
    return [...svg.querySelectorAll("text")]
      .filter((t) => {
        const r = t.getBoundingClientRect();
        return r.left < box.left - 0.5 || r.right > box.right + 0.5;
      })
      .map((t) => t.textContent);
  })
"""


@pytest.mark.parametrize("width", [360, 1280])
def test_status_and_history_fit_the_screen_and_are_captured(
    site_factory: Callable[..., Site], new_page: Callable[..., Any], artifacts: Path, width: int
) -> None:
    site = site_factory(control=SPARSE)
    _fill_history(site)
    now = clock.now()
    site.env.store.add_override(WB_A, Mode.FORCE_ON, "anna", now, now + timedelta(hours=4))
    site.env.controller.tick()
    page = new_page(width=width, height=800)
    for name, path in (("status", "/"), ("history", "/history")):
        page.goto(site.url + path)
        page.wait_for_load_state("networkidle")
        overflow = page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0, f"{name} at {width}px scrolls sideways by {overflow}px"
        clipped = page.evaluate(CLIPPED_CHART_LABELS)
        assert clipped == [], f"{name} at {width}px: chart labels cut off at the edge: {clipped}"
        shot = artifacts / f"{name}-{width}.png"
        page.screenshot(path=str(shot), full_page=True)
        assert shot.stat().st_size > 10_000
        # The README's pictures are these, made anew with EMS_UPDATE_SCREENSHOTS=1.
        if os.environ.get("EMS_UPDATE_SCREENSHOTS") == "1":
            DOC_IMAGES.mkdir(exist_ok=True)
            shutil.copyfile(shot, DOC_IMAGES / shot.name)
    # On a phone the buttons are big enough for a thumb.
    page.goto(site.url + "/")
    button = _card(page, "wb_a").get_by_role("button", name="Force on").bounding_box()
    assert button is not None and button["height"] >= 40


def test_a_dull_days_chart_labels_fit_on_a_phone(
    site_factory: Callable[..., Site], new_page: Callable[..., Any]
) -> None:
    # A 1.4 kW day puts the axis in half kilowatts: the longest labels ("-0.5 kW", "1.5 kW").
    site = site_factory(control=SPARSE)
    _fill_history(site, pv_peak_w=1400.0)
    page = new_page(width=360, height=800)
    page.goto(site.url + "/history")
    labels = page.locator(".chart-narrow svg.chart text.ch-label").all_text_contents()
    assert "1.5 kW" in labels
    assert page.evaluate(CLIPPED_CHART_LABELS) == []
