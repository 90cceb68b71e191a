"""A reload (SIGHUP) that drops or adds a load reaches the web UI: its pages and /api/status show
the new set of loads, and an override for a load the running configuration no longer drives
is refused with a message saying so. The daemon runs in this process on the simulated house,
its web UI served by waitress on 127.0.0.1 and asked over HTTP."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from emsctl.config import Config, load_config
from emsctl.controller import Controller, Devices
from emsctl.daemon import Daemon, RunOptions
from emsctl.sim.adapters import SimHouse
from emsctl.sim.scenario import load
from tests.support.waiting import wait_until

ALL = {"sg_ready", "dhw", "wb_a", "wb_b"}


def _write(path: Path, tmp: Path, *, wb_b: bool) -> None:
    cfg: dict[str, Any] = {
        "store": {"path": str(tmp / "ems.db")},
        "loads": {
            "wb_b": {"enabled": wb_b},
        },
        "webui": {"bind": "127.0.0.1", "port": 0},
        "metrics": {"enabled": False},
        "forecast": {"enabled": False},
    }
    path.write_text(yaml.safe_dump(cfg))


class Rig:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.path = tmp / "ems.yaml"
        _write(self.path, tmp, wb_b=True)
        house = SimHouse(load("s2_spring_fast_clouds"), load_config(self.path), loop=True)
        for _ in range(10 * 60):  # daylight
            house.advance()

        def devices(_config: Config, _store: Any) -> Devices:
            # Every load's simulated device, whichever the configuration drives.
            return Devices(
                collector=house.collector, actuators=dict(house.actuators), forecast=None
            )

        def after_tick(_ctl: Controller) -> None:
            house.advance()

        self.daemon = Daemon(
            RunOptions(
                config_path=str(self.path),
                devices=devices,
                now=lambda: house.now,
                tick_wall_s=0.05,
                after_tick=after_tick,
                banner=lambda _head, _urls: None,
            )
        )
        self.daemon.start()
        server = self.daemon.web_server
        assert server is not None
        self.http = httpx.Client(base_url=f"http://127.0.0.1:{server.port}", timeout=10)
        self.thread = threading.Thread(target=self.daemon.loop, daemon=True)
        self.thread.start()

    def reload(self, *, wb_b: bool) -> None:
        """What the SIGHUP handler does, after the file changed."""
        _write(self.path, self.tmp, wb_b=wb_b)
        ctl = self.daemon.controller
        assert ctl is not None
        self.daemon.reload.set()
        ctl.wake.set()

    def loads_in_status(self) -> set[str]:
        resp = self.http.get("/api/status")
        return set(resp.json()["loads"]) if resp.status_code == 200 else set()

    def override(self, load_id: str, mode: str) -> httpx.Response:
        token = self.http.get("/api/session").json()["csrf_token"]
        return self.http.post(
            f"/api/loads/{load_id}/override",
            json={"mode": mode, "duration": "1h"},
            headers={"X-CSRFToken": token},
        )

    def close(self) -> None:
        self.daemon.stop.set()
        ctl = self.daemon.controller
        if ctl is not None:
            ctl.wake.set()
        self.thread.join(timeout=20)
        self.http.close()
        self.daemon.shutdown()


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    r = Rig(tmp_path)
    try:
        yield r
    finally:
        r.close()


def test_a_reload_that_drops_and_adds_a_load_reaches_the_pages_and_the_api(rig: Rig) -> None:
    wait_until(lambda: rig.loads_in_status() == ALL, 20, "all four loads")
    assert "Wallbox B" in rig.http.get("/").text

    rig.reload(wb_b=False)
    wait_until(lambda: rig.loads_in_status() == ALL - {"wb_b"}, 20, "wb_b gone after reload")
    assert "Wallbox B" not in rig.http.get("/").text
    assert 'value="wb_b"' not in rig.http.get("/history").text  # the load filter
    refused = rig.override("wb_b", "force_on")
    assert refused.status_code == 400
    assert refused.json()["error"] == "load 'wb_b' is disabled in the configuration"
    form = rig.http.post(
        "/loads/wb_b/override",
        data={"mode": "force_on", "duration": "1h", "csrf_token": _form_token(rig)},
    )
    assert form.status_code == 400 and "disabled in the configuration" in form.text

    rig.reload(wb_b=True)
    wait_until(lambda: rig.loads_in_status() == ALL, 20, "wb_b back after reload")
    accepted = rig.override("wb_b", "force_off")
    assert accepted.status_code in (200, 201), accepted.text
    wait_until(
        lambda: rig.http.get("/api/status").json()["loads"]["wb_b"]["state"] == "forced_off",
        20,
        "the override applied",
    )


def _form_token(rig: Rig) -> str:
    page = rig.http.get("/").text
    marker = 'name="csrf_token" value="'
    start = page.index(marker) + len(marker)
    return page[start : page.index('"', start)]
