"""The web UI in front of the real Controller on the simulated house (the demo's set-up):
an override posted through the API is applied on the next tick, in the controller's time."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from emsctl.config import parse_config
from emsctl.controller import Controller, Devices
from emsctl.model import LoadId, State
from emsctl.sim.adapters import SimHouse
from emsctl.sim.scenario import load
from emsctl.site import Site
from emsctl.store import Store, StoreListener
from webui import create_app


class DemoRig:
    def __init__(self, tmp: Path) -> None:
        self.config = parse_config(
            {
                "store": {"path": str(tmp / "ems.db")},
                "loads": {
                    k: {"device": {"type": "sim"}} for k in ("sg_ready", "dhw", "wb_a", "wb_b")
                },
            }
        )
        self.house = SimHouse(load("s2_spring_fast_clouds"), self.config)
        for _ in range(10 * 60):  # to 10:00 UTC: daylight
            self.house.advance()
        self.store = Store.open(self.config.store.path)
        site = Site(self.config, self.house.now, listeners=[StoreListener(self.store)])
        devices = Devices(
            collector=self.house.collector, actuators=dict(self.house.actuators), forecast=None
        )
        self.ctl = Controller(
            self.config, site, devices, store=self.store, now=lambda: self.house.now
        )
        self.app = create_app(self.config, self.store, self.ctl)
        self.client = self.app.test_client()

    def tick(self) -> None:
        self.ctl.tick()
        self.house.advance()


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[DemoRig]:
    r = DemoRig(tmp_path)
    yield r
    r.store.close()


def test_force_on_through_the_api_is_applied_in_simulated_time(rig: DemoRig) -> None:
    rig.tick()
    token = rig.client.get("/api/session").get_json()["csrf_token"]
    resp = rig.client.post(
        "/api/loads/wb_b/override",
        json={"mode": "force_on", "duration": "1h"},
        headers={"X-CSRFToken": token},
    )
    assert resp.status_code in (200, 201), resp.get_data(as_text=True)
    assert rig.ctl.wake.is_set()  # the daemon's loop runs a tick right away
    rec = rig.store.override_records(rig.house.now)[0]
    # Stamped in the controller's (simulated) time, so it is in force for the controller.
    assert rec.created_at == rig.house.now
    rig.tick()
    st = rig.ctl.site.status(LoadId.WB_B)
    assert st.state in (State.FORCED_ON, State.OFF), st
    if st.state is State.OFF:  # WB A was running: it makes way first, WB B starts next tick
        rig.tick()
    assert rig.ctl.site.status(LoadId.WB_B).state is State.FORCED_ON
    status = rig.client.get("/api/status").get_json()
    assert status["loads"]["wb_b"]["state"] == "forced_on"
    page = rig.client.get("/").get_data(as_text=True)
    assert "may be stuck" not in page  # ages are measured in the controller's time
