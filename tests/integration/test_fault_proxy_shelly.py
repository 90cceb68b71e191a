"""The Shelly actuators against the emulators through the fault proxy: a device that trickles,
hangs, answers garbage or drops the answer gives a clean typed error within its timeout
(plus 1 s), and the same actuator works again once the device does."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from emsctl.adapters.base import AdapterError, BadResponse, DeviceUnreachable
from emsctl.adapters.shelly import ShellyActuator, ShellyGen1Actuator, ShellyGen2Actuator
from emsctl.config import DeviceConfig
from emsctl.model import LoadId
from tests.support.fault_proxy import FaultProxy, Mode
from tests.support.shelly_emulator import ShellyEmulator
from tests.support.shelly_fixtures import Gen1Factory, Gen2Factory

TIMEOUT_S = 1.5
#: What a call may take beyond its timeout (the acceptance of issue 14).
SLACK_S = 1.0
#: Without a total deadline a trickled call would last until the proxy cuts it after this.
CUT_S = 12.0


def _actuator(gen: str, host: str, password: str | None = "pw", retries: int = 1) -> ShellyActuator:
    cfg = DeviceConfig(type=f"shelly_{gen}", host=host, timeout_s=TIMEOUT_S, retries=retries)
    if gen == "gen1":
        return ShellyGen1Actuator(LoadId.SG_READY, cfg, password=password)
    return ShellyGen2Actuator(LoadId.WB_A, cfg, password=password, metered=True)


@pytest.fixture(params=["gen1", "gen2"])
def rig(
    request: pytest.FixtureRequest, gen1_emulator: Gen1Factory, gen2_emulator: Gen2Factory
) -> Iterator[tuple[ShellyEmulator, FaultProxy, ShellyActuator]]:
    """An emulator with a password (Gen2: digest, two requests per call), behind a proxy that
    the actuator talks to."""
    emu: ShellyEmulator = (gen1_emulator if request.param == "gen1" else gen2_emulator)(
        password="pw"
    )
    with (
        FaultProxy(emu.host, connection_lifetime_s=CUT_S) as proxy,
        _actuator(request.param, proxy.host) as act,
    ):
        yield emu, proxy, act


def _timed(call: object) -> tuple[AdapterError, float]:
    t0 = time.monotonic()
    with pytest.raises(AdapterError) as err:
        call()  # type: ignore[operator]
    return err.value, time.monotonic() - t0


@pytest.mark.parametrize("mode", [Mode.TRICKLE, Mode.HANG])
def test_a_slow_or_silent_device_is_unreachable_within_its_timeout(
    rig: tuple[ShellyEmulator, FaultProxy, ShellyActuator], mode: Mode
) -> None:
    emu, proxy, act = rig
    assert act.read().relay_on is False  # through the proxy, as it is
    proxy.set_mode(mode, rate=1)
    for call in (act.read, lambda: act.switch(True)):
        error, took = _timed(call)
        assert isinstance(error, DeviceUnreachable), error
        assert f"no answer within {TIMEOUT_S:g} s" in str(error)
        assert str(error).startswith(f"{act.load.value} ({proxy.host}): ")
        assert took < TIMEOUT_S + SLACK_S, f"{mode}: {took:.1f} s"
    assert proxy.accepted[mode] >= 1
    proxy.set_mode(Mode.PASS)
    assert act.read().relay_on is emu.output  # the next tick finds it again


def test_garbage_is_a_bad_response(rig: tuple[ShellyEmulator, FaultProxy, ShellyActuator]) -> None:
    _emu, proxy, act = rig
    act.read()
    proxy.set_mode(Mode.GARBAGE)
    error, took = _timed(act.read)
    assert isinstance(error, BadResponse), error
    assert "no JSON" in str(error) or "401" in str(error)
    assert took < TIMEOUT_S + SLACK_S


def test_an_answer_cut_off_is_unreachable_after_the_retries(
    rig: tuple[ShellyEmulator, FaultProxy, ShellyActuator],
) -> None:
    _emu, proxy, act = rig
    act.read()
    proxy.set_mode(Mode.CLOSE, cut_after=5)
    error, took = _timed(act.read)
    assert isinstance(error, DeviceUnreachable), error
    assert "connection failed" in str(error)
    assert took < TIMEOUT_S + SLACK_S


def test_retries_share_the_one_deadline_when_the_device_trickles(
    gen2_emulator: Gen2Factory,
) -> None:
    emu = gen2_emulator()
    with (
        FaultProxy(emu.host, mode=Mode.TRICKLE, rate=1, connection_lifetime_s=CUT_S) as proxy,
        _actuator("gen2", proxy.host, None, retries=3) as act,
    ):
        error, took = _timed(act.read)
    assert isinstance(error, DeviceUnreachable)
    assert took < TIMEOUT_S + SLACK_S
