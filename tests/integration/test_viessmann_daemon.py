"""The DHW load as the daemon drives it: the real controller and site ticking over the real
ViessmannDhw against the cloud emulator, with a Prometheus stand-in that reports surplus. These
are the lab's findings of issue 14, seen the way the owner and Viessmann see them."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from freezegun import freeze_time

from emsctl import clock
from emsctl.adapters.statestore import MemoryStateStore
from emsctl.adapters.viessmann import ViessmannDhw
from emsctl.config import Config, parse_config
from emsctl.controller import Controller, Devices
from emsctl.model import LoadId, Snapshot, State
from emsctl.site import Site
from emsctl.status import LoadView
from tests.support.cloud import login
from tests.support.viessmann_emulator import ViessmannEmulator

START = "2026-06-15 10:00:00"
TARGET = "heating.dhw.temperature.main"


class House:
    """What Prometheus would say: a sunny morning with 5 kW of export, or import."""

    def __init__(self) -> None:
        self.grid_w = -5000.0

    def collect(self, at: datetime) -> Snapshot:
        return Snapshot(
            at=at,
            grid_w=self.grid_w,
            soc_pct=90.0,
            battery_w=0.0,
            pv_w=6000.0,
            outdoor_c=8.0,
            compressor_w=1500.0,
            dhw_c=45.0,
        )

    def close(self) -> None:
        pass


class Daemon:
    def __init__(self, config: Config, dhw: ViessmannDhw) -> None:
        self.house = House()
        self.dhw = dhw
        self.errors: dict[str, str] = {}
        self.controller = Controller(
            config,
            Site(config, clock.now()),
            Devices(collector=self.house, actuators={LoadId.DHW: dhw}),
        )

    def tick(self) -> LoadView:
        report = self.controller.tick()
        self.errors = report.errors
        return report.loads[LoadId.DHW]


@pytest.fixture
def emu() -> Iterator[ViessmannEmulator]:
    e = ViessmannEmulator()
    yield e
    e.stop()


def _config(tmp_path: Path, emu: ViessmannEmulator, interval_s: float, **dhw: Any) -> Config:
    return parse_config(
        {
            "store": {"path": str(tmp_path / "ems.db")},
            "viessmann": emu.viessmann_config(),
            "control": {
                "interval_s": interval_s,
                "priority": ["dhw"],
                "exclusive": [],
                "timezone": "Europe/Berlin",
            },
            "loads": {
                "dhw": {"device": {"type": "viessmann_dhw"}, **dhw},
                "sg_ready": {"enabled": False},
                "wb_a": {"enabled": False},
                "wb_b": {"enabled": False},
            },
        },
        "test",
    )


def _target_reads(emu: ViessmannEmulator) -> int:
    return sum(1 for c in emu.api_calls if c.method == "GET" and TARGET in c.path)


def _writes(emu: ViessmannEmulator) -> list[float]:
    return [b["temperature"] for _f, c, b in emu.commands if c == "setTargetTemperature"]


def test_a_target_the_heat_pump_refuses_is_not_read_again_every_tick(
    emu: ViessmannEmulator, tmp_path: Path
) -> None:
    """Found: 59 reads of the feature in 61 s at a 1 s tick while setTargetTemperature was
    not executable (one a minute at the real interval), until the 10-minute budget ran out."""
    config = _config(tmp_path, emu, 1, on_delay_s=1, min_write_interval_s=0)
    with freeze_time(START) as frozen:
        login(config, emu)
        emu.state.target_executable = False
        daemon = Daemon(config, ViessmannDhw.from_config(config, MemoryStateStore()))
        for _ in range(61):
            view = daemon.tick()
            frozen.tick(1)
        assert _target_reads(emu) <= 2
        assert "not executable" in daemon.errors["dhw"]  # the boost command's failure
        assert "not asked again before" in daemon.errors["dhw"]
        assert view.relay_on is False and emu.target == 50 and _writes(emu) == []

        emu.state.target_executable = True  # the heat pump accepts it again
        for _ in range(11 * 60):
            view = daemon.tick()
            frozen.tick(1)
        assert emu.target == 60 and _writes(emu) == [60]
        assert (view.state, view.relay_on, view.error) == (State.ON, True, None)
        # Eleven minutes of 1 s ticks: one read per hold, the periodic checks, discovery.
        assert len(emu.api_calls) <= 6
    daemon.dhw.close()


def test_during_a_429_the_boost_shows_as_still_set_and_until_when(
    emu: ViessmannEmulator, tmp_path: Path
) -> None:
    """docs/cloud.md said "unreachable", the API said "on" with an error. What is true: the
    heat pump keeps the target, the EMS cannot change it before the reset, and says so."""
    config = _config(tmp_path, emu, 60)
    with freeze_time(START) as frozen:
        login(config, emu)
        daemon = Daemon(config, ViessmannDhw.from_config(config, MemoryStateStore()))
        for _ in range(20):
            view = daemon.tick()
            frozen.tick(60)
        assert (view.state, view.relay_on, emu.target) == (State.ON, True, 60)

        reset = clock.now() + timedelta(hours=2)
        emu.fail("rate_limit", limit_reset_ms=int(reset.timestamp() * 1000))
        frozen.tick(config.viessmann.check_interval_s)
        daemon.house.grid_w = 1500.0  # the surplus is gone: the boost should end
        calls = len(emu.api_calls)
        until = f"Viessmann refuses calls until {reset:%Y-%m-%d %H:%M:%S}Z"
        for _ in range(90):
            view = daemon.tick()
            # Every tick: the boost is still set, and why it stays so, with the time.
            assert view.relay_on is True, view
            assert view.error is not None and until in view.error
            assert "the DHW target stays at 60 °C" in view.error
            frozen.tick(60)
        assert view.state is not State.ON  # the EMS wants it off ...
        assert emu.target == 60  # ... and cannot, before the reset
        assert len(emu.api_calls) == calls + 1  # the call that drew the 429, no other

        frozen.move_to(reset + timedelta(seconds=1))
        for _ in range(3):
            view = daemon.tick()
            frozen.tick(60)
        assert emu.target == 50 and (view.relay_on, view.error) == (False, None)
    daemon.dhw.close()


def test_a_restored_login_keeps_a_boost_that_is_still_wanted(
    emu: ViessmannEmulator, tmp_path: Path
) -> None:
    """Found: after a login is restored the boost is ended and started again (50, then 60
    written) although the target already was what the EMS wants."""
    config = _config(tmp_path, emu, 60)
    with freeze_time(START) as frozen:
        login(config, emu)
        daemon = Daemon(config, ViessmannDhw.from_config(config, MemoryStateStore()))
        for _ in range(20):
            daemon.tick()
            frozen.tick(60)
        assert _writes(emu) == [60]
        emu.revoke_refresh_tokens()
        emu.expire_access_tokens()
        frozen.tick(config.viessmann.check_interval_s)
        for _ in range(20):
            view = daemon.tick()
            frozen.tick(60)
        assert view.state is State.UNAVAILABLE
        login(config, emu)
        for _ in range(40):
            view = daemon.tick()
            frozen.tick(60)
        assert view.relay_on is True and emu.target == 60
        assert _writes(emu) == [60], "the boost still set was rewritten"
    daemon.dhw.close()
