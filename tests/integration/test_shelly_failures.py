"""Every failure mode of a Shelly gives its typed error within the timeout, on both
generations, and retries happen only where they can help."""

from __future__ import annotations

import time

import pytest

from emsctl.adapters.base import AdapterError, BadResponse, DeviceUnreachable
from emsctl.adapters.shelly import ShellyActuator, reading_for_error
from emsctl.config import DeviceConfig
from emsctl.model import LoadId
from tests.support.http_stub import SilentServer, closed_port
from tests.support.shelly_emulator import Failure, ShellyEmulator
from tests.support.shelly_fixtures import Gen1Factory, Gen2Factory, gen1_actuator, gen2_actuator

TIMEOUT_S = 1.0


def _pair(
    gen: int, gen1_emulator: Gen1Factory, gen2_emulator: Gen2Factory, **device: object
) -> tuple[ShellyEmulator, ShellyActuator]:
    if gen == 1:
        emu1 = gen1_emulator(password="pw")
        return emu1, gen1_actuator(emu1, "pw", timeout_s=TIMEOUT_S, **device)
    emu2 = gen2_emulator(password="pw")
    return emu2, gen2_actuator(emu2, "pw", timeout_s=TIMEOUT_S, **device)


@pytest.mark.parametrize("gen", [1, 2])
@pytest.mark.parametrize(
    ("mode", "error", "text"),
    [
        (Failure.HTTP_500, BadResponse, "HTTP 500"),
        (Failure.HTML_PAGE, BadResponse, "HTML page"),
        (Failure.TRUNCATED_JSON, BadResponse, "no JSON"),
        (Failure.DISCONNECT, DeviceUnreachable, "connection failed"),
        (Failure.SLOW, DeviceUnreachable, f"no answer within {TIMEOUT_S:g} s"),
    ],
)
def test_failure_mode_gives_typed_error_within_the_timeout(
    gen: int,
    mode: Failure,
    error: type[AdapterError],
    text: str,
    gen1_emulator: Gen1Factory,
    gen2_emulator: Gen2Factory,
) -> None:
    emu, act = _pair(gen, gen1_emulator, gen2_emulator)
    emu.fail(mode, delay_s=3 * TIMEOUT_S)
    with act:
        for call in (act.read, lambda: act.switch(True, deadman_s=300)):
            t0 = time.monotonic()
            with pytest.raises(error) as err:
                call()
            assert time.monotonic() - t0 < TIMEOUT_S + 0.5
            assert text in str(err.value)
            assert str(err.value).startswith(f"{act.load.value} ({emu.host}): ")
    reading = reading_for_error(err.value)
    assert (reading.relay_on, reading.available, reading.reachable) == (None, True, False)


@pytest.mark.parametrize("gen", [1, 2])
def test_a_dropped_connection_is_retried_once(
    gen: int, gen1_emulator: Gen1Factory, gen2_emulator: Gen2Factory
) -> None:
    emu, act = _pair(gen, gen1_emulator, gen2_emulator, retries=1)
    emu.fail(Failure.DISCONNECT, times=1)
    with act:
        assert act.switch(True).relay_on is True
    assert [r.failure for r in emu.requests].count(Failure.DISCONNECT) == 1
    assert emu.output is True


@pytest.mark.parametrize("gen", [1, 2])
def test_without_retries_a_dropped_connection_fails(
    gen: int, gen1_emulator: Gen1Factory, gen2_emulator: Gen2Factory
) -> None:
    emu, act = _pair(gen, gen1_emulator, gen2_emulator, retries=0)
    emu.fail(Failure.DISCONNECT, times=1)
    with act, pytest.raises(DeviceUnreachable):
        act.read()


@pytest.mark.parametrize("gen", [1, 2])
def test_an_answer_is_never_retried(
    gen: int, gen1_emulator: Gen1Factory, gen2_emulator: Gen2Factory
) -> None:
    emu, act = _pair(gen, gen1_emulator, gen2_emulator, retries=3)
    emu.fail(Failure.HTTP_500, times=1)
    with act:
        with pytest.raises(BadResponse):
            act.read()
        assert len([r for r in emu.requests if r.failure]) == 1
        assert act.read().relay_on is False  # the device recovered; the next call works


@pytest.mark.parametrize("kind", ["shelly_gen1", "shelly_gen2"])
def test_nothing_listening_is_unreachable_after_bounded_retries(kind: str) -> None:
    from emsctl.adapters.shelly import ACTUATORS

    cfg = DeviceConfig(type=kind, host=f"127.0.0.1:{closed_port()}", timeout_s=2, retries=2)
    with ACTUATORS[kind](LoadId.WB_B, cfg) as act:
        t0 = time.monotonic()
        with pytest.raises(DeviceUnreachable) as err:
            act.switch(True)
        elapsed = time.monotonic() - t0
    assert "after 3 attempts" in str(err.value)
    assert 0.2 + 0.5 <= elapsed < 2  # the two pauses of the backoff, nothing more


@pytest.mark.parametrize("kind", ["shelly_gen1", "shelly_gen2"])
def test_hung_device_times_out_with_retries_inside_the_same_deadline(kind: str) -> None:
    from emsctl.adapters.shelly import ACTUATORS

    with SilentServer() as hung:
        cfg = DeviceConfig(type=kind, host=hung.host, timeout_s=TIMEOUT_S, retries=3)
        with ACTUATORS[kind](LoadId.WB_B, cfg) as act:
            t0 = time.monotonic()
            with pytest.raises(DeviceUnreachable):
                act.read()
            assert time.monotonic() - t0 < TIMEOUT_S + 0.5
