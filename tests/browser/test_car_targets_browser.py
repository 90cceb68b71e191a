"""Charging by target in the browser: the owner sets a target for car A's session on the
wallbox card, sees its expected finish, and finds both again after EMS restarts (the real
Controller on the simulated house, the real database file); and, in front of the fake
controller, the card on a phone after logging in: the learned habit copied into the weekly
schedule, a day corrected, a target for WB B, nothing scrolling sideways."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from emsctl.cars.types import TargetSource
from emsctl.config import Config, parse_config
from emsctl.controller import Controller, Devices
from emsctl.model import LoadId
from emsctl.sim.adapters import SimHouse
from emsctl.sim.scenario import load
from emsctl.site import Site
from emsctl.store import Store, StoreListener
from tests.browser.conftest import Site as UiSite
from tests.support.webui_kit import PASSWORD
from webui import create_app
from webui.serve import WebServer, serve


class Daemon:
    """What `emsctl run` builds, on the April week's simulated house: car A is plugged in
    from the first minute and wants 14 kWh by 06:54."""

    def __init__(self, db: Path, minutes: int) -> None:
        self.config: Config = parse_config(
            {
                "store": {"path": str(db)},
                "loads": {
                    "sg_ready": {"device": {"type": "sim"}},
                    "dhw": {"device": {"type": "sim"}},
                    "wb_a": {"device": {"type": "sim"}},
                    "wb_b": {"enabled": False},
                },
                "control": {"priority": ["sg_ready", "dhw", "wb_a"], "exclusive": []},
            }
        )
        self.house = SimHouse(load("s6_april_week"), self.config)
        for _ in range(minutes):
            self.house.advance()
        self.store = Store.open(db)
        restored = self.store.restore_statuses(self.house.now, self.config)
        site = Site(self.config, self.house.now, restored, listeners=[StoreListener(self.store)])
        devices = Devices(collector=self.house.collector, actuators=dict(self.house.actuators))
        self.ctl = Controller(
            self.config,
            site,
            devices,
            store=self.store,
            now=lambda: self.house.now,
            cars=self.store,
        )
        self.server: WebServer = serve(
            create_app(self.config, self.store, self.ctl), "127.0.0.1", 0
        )
        self.server.start()
        self.stopped = False

    def ticks(self, n: int) -> None:
        for _ in range(n):
            self.ctl.tick()
            self.house.advance()

    def stop(self) -> None:
        if not self.stopped:
            self.stopped = True
            self.server.close()
            self.store.close()


@pytest.fixture
def daemons() -> Iterator[Callable[[Path, int], Daemon]]:
    made: list[Daemon] = []

    def make(db: Path, minutes: int) -> Daemon:
        d = Daemon(db, minutes)
        made.append(d)
        return d

    yield make
    for d in made:
        d.stop()


pytestmark = pytest.mark.real


def _card(page: Any, load: str = "wb_a") -> Any:
    return page.locator(f"#card-{load}")


def test_a_target_set_on_the_card_shows_its_finish_and_survives_a_restart(
    tmp_path: Path,
    daemons: Callable[[Path, int], Daemon],
    new_page: Callable[..., Any],
    artifacts: Path,
) -> None:
    db = tmp_path / "ems.db"
    ems = daemons(db, 30)
    ems.ticks(10)  # the relay kept on for a car sees car A: a session, charging
    page = new_page(width=420, height=1400)
    page.goto(ems.server.url + "/")
    card = _card(page)
    expect(card.locator(".car-session")).to_contain_text("this session")
    card.locator("summary").click()
    form = card.locator("form.car-target-form")
    form.locator('input[name="by"]').fill("06:30")
    form.locator('input[name="kwh"]').fill("9")
    form.get_by_role("button", name="Set target").click()
    expect(page.locator("body")).to_contain_text("wb_a: 9.0 kWh by")
    one = ems.store.car_settings(LoadId.WB_A).one_off
    assert one is not None and one.energy_wh == 9000.0
    ems.ticks(2)
    page.reload()
    card = _card(page)
    expect(card.locator(".car-target")).to_contain_text(re.compile(r"9\.0 kWh by 06:30 · your"))
    expect(card.locator(".car-plan")).to_contain_text("expected finish")
    page.screenshot(path=str(artifacts / "car-target.png"), full_page=True)

    # EMS restarts: the target and the session's energy come back from the database.
    energy = ems.store.open_session(LoadId.WB_A)
    assert energy is not None
    ems.stop()
    again = daemons(db, 45)
    again.ticks(2)
    page.goto(again.server.url + "/")
    card = _card(page)
    expect(card.locator(".car-target")).to_contain_text(re.compile(r"9\.0 kWh by 06:30 · your"))
    expect(card.locator(".car-plan")).to_contain_text("expected finish")
    session = again.store.open_session(LoadId.WB_A)
    assert session is not None and session.id == energy.id
    assert session.energy_wh >= energy.energy_wh


def test_on_a_phone_the_owner_confirms_the_learned_habit_and_sets_a_target(
    site_factory: Callable[..., UiSite], new_page: Callable[..., Any], artifacts: Path
) -> None:
    site = site_factory(password=PASSWORD)
    # A Monday noon, whatever day the test runs: WB A's habit is learned for Mon-Fri.
    site.env.controller.clock = datetime(2026, 6, 1, 10, 0, tzinfo=UTC)
    site.env.controller.tick()
    cars = site.env.controller.cars
    page = new_page(width=360, height=800)
    page.goto(site.url + "/")
    page.get_by_label("Your name").fill("anna")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    a = _card(page, "wb_a")
    expect(a.locator(".car-learned")).to_contain_text("learned: Mon-Fri ~11 kWh")
    expect(a.locator(".car-learned")).to_contain_text("confirm or correct")
    expect(a.locator(".car-target")).to_contain_text("· learned")

    # The learned habit into the weekly schedule, by 06:45 instead of the default 07:00.
    a.locator("summary").click()
    rows = a.locator(".week-row")
    expect(rows).to_have_count(7)
    expect(a.locator(".week-learned")).to_have_count(5)
    offer = a.locator("form.car-learned-form")
    expect(offer).to_contain_text("Learned: Mon-Fri 11.0 kWh")
    a.screenshot(path=str(artifacts / "car-card-learned-360.png"))
    offer.locator('input[name="at"]').fill("06:45")
    offer.get_by_role("button", name="Copy to the schedule").click()
    expect(page.locator(".flash")).to_contain_text(
        "wb_a: Mon-Fri 11.0 kWh by 06:45 in the weekly schedule"
    )
    weekly = cars.store.car_settings(LoadId.WB_A).weekly
    assert [(w.weekday, w.at.strftime("%H:%M"), w.energy_wh) for w in weekly] == [
        (d, "06:45", 11_000.0) for d in range(5)
    ]
    assert {by for _, _, by in cars.calls} == {"anna"}
    a = _card(page, "wb_a")
    expect(a.locator(".car-target")).to_contain_text("11.0 kWh by")
    expect(a.locator(".car-target")).to_contain_text("06:45 · weekly")

    # Friday corrected: a car that needs more at the end of the week.
    a.locator("summary").click()
    expect(a.locator(".week-set")).to_have_count(5)
    expect(a.locator("form.car-learned-form")).to_have_count(0)
    friday = a.locator('.week-row[data-weekday="4"]')
    friday.get_by_label("Fri: kWh").fill("16")
    friday.get_by_role("button", name="Save").click()
    expect(page.locator(".flash")).to_contain_text("wb_a: Fri 06:45 16.0 kWh")
    assert cars.store.car_settings(LoadId.WB_A).weekly_for(4) is not None
    assert cars.store.car_settings(LoadId.WB_A).weekly_for(4).energy_wh == 16_000  # type: ignore[union-attr]

    # WB B: this session's target, and the plan that follows from it.
    b = _card(page, "wb_b")
    b.locator("summary").click()
    form = b.locator("form.car-target-form")
    form.locator('input[name="by"]').fill("06:30")
    form.locator('input[name="kwh"]').fill("15")
    form.get_by_role("button", name="Set target").click()
    expect(page.locator(".flash")).to_contain_text("wb_b: 15.0 kWh by")
    b = _card(page, "wb_b")
    expect(b.locator(".car-target")).to_contain_text(
        re.compile(r"15\.0 kWh by .*06:30 · your target")
    )
    expect(b.locator(".car-plan")).to_contain_text(re.compile(r"10\.8 kWh to go · must start by"))
    expect(b.locator(".car-plan")).to_contain_text("expected finish")
    expect(b.locator(".car-session")).to_contain_text("~4.2 kWh (estimated)")
    one = cars.store.car_settings(LoadId.WB_B).one_off
    assert one is not None and one.energy_wh == 15_000
    tz = site.env.config.control.tz
    assert one.by.astimezone(tz).strftime("%H:%M") == "06:30"
    assert cars.view(LoadId.WB_B, one.set_at).target_source is TargetSource.ONE_OFF  # type: ignore[union-attr]

    # The forms follow the ticks (WB B's target form offers to clear the target just set),
    # but what the owner has begun to type stays: WB A's Saturday, across the page's polls.
    a = _card(page, "wb_a")
    a.locator("summary").click()
    saturday = a.locator('.week-row[data-weekday="5"]').get_by_label("Sat: kWh")
    saturday.fill("7")
    b.locator("summary").click()  # the focus leaves the half-filled form
    for _ in range(2):
        with page.expect_response(lambda r: "/partials/status" in r.url):
            pass
    expect(b.locator("form.car-target-form").get_by_role("button", name="Clear")).to_have_count(1)
    expect(saturday).to_have_value("7")

    # Everything open, on a 360 px phone: nothing scrolls sideways.
    for wallbox in ("wb_a", "wb_b"):
        details = _card(page, wallbox).locator("details.car-settings")
        if details.get_attribute("open") is None:
            details.locator("summary").click()
    overflow = page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0, f"the wallbox cards scroll sideways by {overflow}px"
    button = _card(page, "wb_a").get_by_role("button", name="Set target").bounding_box()
    assert button is not None and button["height"] >= 40
    shot = artifacts / "car-card-360.png"
    _card(page, "wb_a").screenshot(path=str(shot))
    assert shot.stat().st_size > 10_000
