"""The wallbox cards' charging by target, in front of the real Controller on the simulated
house: mode, target and weekly schedule through the forms and the JSON API; bad values are
refused with a message naming the field, and nothing is stored."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import time
from pathlib import Path

import pytest

from emsctl.config import parse_config
from emsctl.controller import Controller, Devices
from emsctl.model import ChargeMode, LoadId
from emsctl.sim.adapters import SimHouse
from emsctl.sim.scenario import load
from emsctl.site import Site
from emsctl.store import Store, StoreListener
from webui import create_app


class Rig:
    def __init__(self, tmp: Path, **charging: object) -> None:
        self.config = parse_config(
            {
                "store": {"path": str(tmp / "ems.db")},
                "loads": {
                    "sg_ready": {"device": {"type": "sim"}},
                    "dhw": {"device": {"type": "sim"}},
                    "wb_a": {"device": {"type": "sim"}, "charging": dict(charging)},
                    "wb_b": {"device": {"type": "sim"}},
                },
            }
        )
        self.house = SimHouse(load("s2_spring_fast_clouds"), self.config)
        for _ in range(10 * 60):
            self.house.advance()
        self.store = Store.open(self.config.store.path)
        site = Site(self.config, self.house.now, listeners=[StoreListener(self.store)])
        devices = Devices(collector=self.house.collector, actuators=dict(self.house.actuators))
        self.ctl = Controller(
            self.config,
            site,
            devices,
            store=self.store,
            now=lambda: self.house.now,
            cars=self.store,
        )
        self.client = create_app(self.config, self.store, self.ctl).test_client()
        self.token = self.client.get("/api/session").get_json()["csrf_token"]

    def tick(self) -> None:
        self.ctl.tick()
        self.house.advance()

    def api(self, path: str, body: object) -> tuple[int, dict[str, object]]:
        r = self.client.post(path, json=body, headers={"X-CSRFToken": self.token})
        return r.status_code, r.get_json()

    def form(self, path: str, **fields: str) -> tuple[int, str]:
        r = self.client.post(path, data={"csrf_token": self.token, **fields})
        return r.status_code, r.get_data(as_text=True)


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    r = Rig(tmp_path)
    yield r
    r.store.close()


def test_the_wallbox_cards_show_charging_by_target(rig: Rig) -> None:
    rig.tick()
    page = rig.client.get("/").get_data(as_text=True)
    assert page.count('class="car"') == 2  # wb_a and wb_b, not the heat pump's loads
    assert "Solar + target" in page and "as configured" in page
    status = rig.client.get("/api/status").get_json()
    car = status["loads"]["wb_a"]["car"]
    assert car["mode"] == "solar+target" and car["mode_from"] == "config"
    assert status["loads"]["sg_ready"]["car"] is None


def test_a_target_set_in_the_form_is_stored_and_shown_with_its_expected_finish(rig: Rig) -> None:
    rig.tick()
    code, _ = rig.form("/cars/wb_a/target", by="07:00", kwh="12")
    assert code == 302
    one = rig.store.car_settings(LoadId.WB_A).one_off
    assert one is not None and one.energy_wh == 12_000
    assert one.by.astimezone(rig.config.control.tz).time() == time(7, 0)
    assert one.by > rig.house.now
    for _ in range(5):
        rig.tick()
    car = rig.client.get("/api/status").get_json()["loads"]["wb_a"]["car"]
    assert car["target"]["source"] == "one-off"
    assert car["target"]["energy_wh"] == 12_000
    page = rig.client.get("/").get_data(as_text=True)
    assert "12.0 kWh by" in page and "your target" in page


def test_mode_and_weekly_schedule_through_the_api(rig: Rig) -> None:
    assert rig.api("/api/cars/wb_b/mode", {"mode": "now"})[0] == 200
    assert rig.store.car_settings(LoadId.WB_B).mode is ChargeMode.NOW
    code, body = rig.api("/api/cars/wb_b/weekly", {"weekday": "fri", "at": "06:30", "kwh": 9})
    assert code == 200, body
    weekly = rig.store.car_settings(LoadId.WB_B).weekly
    assert [(w.weekday, w.at, w.energy_wh) for w in weekly] == [(4, time(6, 30), 9000.0)]
    assert rig.api("/api/cars/wb_b/weekly", {"weekday": 4, "clear": True})[0] == 200
    assert rig.store.car_settings(LoadId.WB_B).weekly == ()
    assert rig.api("/api/cars/wb_b/mode", {"mode": "config"})[0] == 200
    assert rig.store.car_settings(LoadId.WB_B).mode is None
    assert rig.api("/api/cars/wb_b/target", {"by": "05:00", "kwh": 3})[0] == 200
    assert rig.api("/api/cars/wb_b/target", {"clear": True})[0] == 200
    assert rig.store.car_settings(LoadId.WB_B).one_off is None


@pytest.mark.parametrize(
    ("path", "body", "says"),
    [
        ("/api/cars/wb_a/target", {"by": "25:00", "kwh": 3}, "by '25:00'"),
        ("/api/cars/wb_a/target", {"by": "07:00", "kwh": -3}, "kWh -3"),
        ("/api/cars/wb_a/target", {"by": "07:00", "kwh": 0}, "kWh 0"),
        ("/api/cars/wb_a/target", {"by": "07:00", "kwh": 400}, "at most 300"),
        ("/api/cars/wb_a/target", {"by": "07:00", "kwh": "lots"}, "expected a number"),
        ("/api/cars/wb_a/target", {"by": "07:00", "percent": 80}, "battery_kwh"),
        ("/api/cars/wb_a/target", {"by": "07:00", "kwh": 3, "when": 1}, "unknown field"),
        ("/api/cars/wb_a/mode", {"mode": "turbo"}, "mode 'turbo'"),
        ("/api/cars/sg_ready/mode", {"mode": "now"}, "does not charge by target"),
        ("/api/cars/wb_x/mode", {"mode": "now"}, "unknown wallbox"),
        ("/api/cars/wb_a/weekly", {"weekday": "someday", "at": "07:00", "kwh": 3}, "weekday"),
        ("/api/cars/wb_a/weekly", {"weekday": 1, "at": "7", "kwh": 3}, "HH:MM"),
        ("/api/cars/wb_a/mode", [1, 2], "JSON object"),
    ],
)
def test_bad_values_are_refused_and_nothing_is_stored(
    rig: Rig, path: str, body: object, says: str
) -> None:
    before = (rig.store.car_settings(LoadId.WB_A), rig.store.car_settings(LoadId.WB_B))
    code, answer = rig.api(path, body)
    assert code == 400, answer
    assert says in str(answer["error"])
    assert (rig.store.car_settings(LoadId.WB_A), rig.store.car_settings(LoadId.WB_B)) == before


def test_a_bad_form_value_is_refused_with_its_message(rig: Rig) -> None:
    code, text = rig.form("/cars/wb_a/target", by="7 o'clock", kwh="3")
    assert code == 400 and "expected a local time as HH:MM" in text
    assert rig.store.car_settings(LoadId.WB_A).one_off is None


def test_a_target_in_the_past_of_a_week_ahead_is_refused_by_the_controller(rig: Rig) -> None:
    from datetime import timedelta

    from emsctl.status import CarSettingError

    now = rig.house.now
    with pytest.raises(CarSettingError, match="not in the future"):
        rig.ctl.set_car_target(LoadId.WB_A, now - timedelta(minutes=1), 3000.0, "test")
    with pytest.raises(CarSettingError, match="more than a week"):
        rig.ctl.set_car_target(LoadId.WB_A, now + timedelta(days=8), 3000.0, "test")


def test_percent_targets_need_the_battery_size(tmp_path: Path) -> None:
    rig = Rig(tmp_path, battery_kwh=50)
    try:
        code, body = rig.api("/api/cars/wb_a/target", {"by": "07:00", "percent": 30})
        assert code == 200, body
        one = rig.store.car_settings(LoadId.WB_A).one_off
        assert one is not None and one.energy_wh == 15_000
    finally:
        rig.store.close()


def test_the_card_lists_the_last_sessions_without_the_house_loads_taken_for_cars(
    rig: Rig,
) -> None:
    from datetime import timedelta

    from emsctl.cars.types import ChargingSession, SessionEnd

    now = rig.house.now
    for hours, wh, end in ((30, 11_200.0, SessionEnd.STOPPED), (5, 0.0, SessionEnd.NO_CAR)):
        rig.store.save_session(
            ChargingSession(
                load=LoadId.WB_B,
                started_at=now - timedelta(hours=hours),
                last_draw_at=now - timedelta(hours=hours - 3),
                energy_wh=wh,
                estimated=True,
                ended_at=now - timedelta(hours=hours - 3),
                ended_by=end,
            )
        )
    rig.tick()
    page = rig.client.get("/").get_data(as_text=True)
    assert "~11.2 kWh" in page and "full (or left while charging)" in page
    assert "no_car" not in page
