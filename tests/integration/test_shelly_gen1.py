"""Gen1 actuator (Shelly 1 / 1PM) against the emulator over loopback."""

from __future__ import annotations

import pytest

from emsctl.adapters.base import AuthFailed
from emsctl.adapters.shelly import ShellyGen1Actuator, manual_change, probe
from emsctl.model import LoadId
from tests.support.shelly_fixtures import Gen1Factory, gen1_actuator


def test_read_reports_relay_and_source_but_no_power_for_a_shelly_1(
    gen1_emulator: Gen1Factory,
) -> None:
    emu = gen1_emulator(power_w=2000)
    with gen1_actuator(emu) as act:
        reading = act.read()
    # The Shelly 1 reports meters[0].power = 81.5 whatever happens: not a measurement.
    assert (reading.relay_on, reading.power_w, reading.source) == (False, None, "init")
    assert reading.reachable


def test_switch_on_and_off_reads_back_the_device_state(gen1_emulator: Gen1Factory) -> None:
    emu = gen1_emulator()
    with gen1_actuator(emu) as act:
        on = act.switch(True)
        assert emu.output is True
        off = act.switch(False)
        assert emu.output is False
    assert (on.relay_on, on.source) == (True, "http")
    assert (off.relay_on, off.source) == (False, "http")
    assert act.commanded_on is False
    # command, then the re-read of /status, each time
    assert [r.path for r in emu.requests] == ["/relay/0", "/status", "/relay/0", "/status"]
    assert [r.query.get("turn") for r in emu.calls(path="/relay/0")] == ["on", "off"]


def test_dead_man_timer_is_set_on_switch_on_and_fires_on_the_device(
    gen1_emulator: Gen1Factory,
) -> None:
    emu = gen1_emulator()
    with gen1_actuator(emu) as act:
        act.switch(True, deadman_s=300)
        assert emu.calls(path="/relay/0")[-1].query == {"turn": "on", "timer": "300"}
        emu.advance(200)
        assert act.read().relay_on is True
        act.switch(True, deadman_s=300)  # renewal restarts the timer
        assert emu.timer_remaining_s == 300
        emu.advance(299)
        assert act.read().relay_on is True
        emu.advance(2)
        reading = act.read()
    assert (reading.relay_on, reading.source) == (False, "timer")
    # The dead-man firing is not a person's doing.
    assert manual_change(True, reading) is False


def test_switch_off_never_sets_a_timer(gen1_emulator: Gen1Factory) -> None:
    emu = gen1_emulator()
    with gen1_actuator(emu) as act:
        act.switch(True, deadman_s=300)
        act.switch(False, deadman_s=300)
    assert emu.calls(path="/relay/0")[-1].query == {"turn": "off"}
    assert emu.timer_remaining_s is None
    emu.advance(1000)
    assert emu.output is False


def test_button_press_shows_as_manual_change_with_input_source(
    gen1_emulator: Gen1Factory,
) -> None:
    emu = gen1_emulator()
    with gen1_actuator(emu) as act:
        act.switch(False)
        emu.press_button()
        reading = act.read()
    assert (reading.relay_on, reading.source) == (True, "input")
    assert manual_change(act.commanded_on, reading) is True


def test_basic_auth_with_the_right_password(gen1_emulator: Gen1Factory) -> None:
    emu = gen1_emulator(password="s3cret", username="owner")
    with gen1_actuator(emu, "s3cret", username="owner") as act:
        assert act.switch(True).relay_on is True
    assert all(r.authorized for r in emu.requests)


@pytest.mark.parametrize("password", ["wrong", None])
def test_refused_or_missing_password_is_auth_failed(
    gen1_emulator: Gen1Factory, password: str | None
) -> None:
    emu = gen1_emulator(password="s3cret")
    with gen1_actuator(emu, password) as act, pytest.raises(AuthFailed) as err:
        act.switch(True)
    assert emu.output is False
    assert "EMS_SHELLY_SG_READY_PASSWORD" in str(err.value)
    assert len(emu.requests) == 1  # no retry after a refusal


def test_metered_gen1_reports_power_from_its_meter(gen1_emulator: Gen1Factory) -> None:
    emu = gen1_emulator(model="SHSW-PM", power_w=1234.5)
    with gen1_actuator(emu, metered=True) as act:
        assert act.read().power_w == 0.0
        assert act.switch(True).power_w == 1234.5


def test_info_and_probe_identify_a_gen1_device(gen1_emulator: Gen1Factory) -> None:
    emu = gen1_emulator(password="pw")
    info = probe(emu.host, timeout_s=2)
    assert (info.gen, info.model, info.auth_required) == (1, "SHSW-1", True)
    with gen1_actuator(emu, "pw") as act:
        assert act.info() == info


def test_actuator_satisfies_the_actuator_protocol(gen1_emulator: Gen1Factory) -> None:
    from emsctl.adapters.base import Actuator

    emu = gen1_emulator()
    with gen1_actuator(emu, load=LoadId.WB_B) as act:
        assert isinstance(act, Actuator)
        assert isinstance(act, ShellyGen1Actuator)
        assert act.load is LoadId.WB_B
