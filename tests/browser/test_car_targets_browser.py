"""Charging by target in the browser: the owner sets a target for car A's session on the
wallbox card, sees its expected finish, and finds both again after EMS restarts (the real
Controller on the simulated house, the real database file)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from emsctl.config import Config, parse_config
from emsctl.controller import Controller, Devices
from emsctl.model import LoadId
from emsctl.sim.adapters import SimHouse
from emsctl.sim.scenario import load
from emsctl.site import Site
from emsctl.store import Store, StoreListener
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


def _card(page: Any) -> Any:
    return page.locator("#card-wb_a")


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
    form = card.locator("form.car-form").nth(1)
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
