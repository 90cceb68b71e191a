"""Gen2 actuator (Plus 1 / Plus 1 PM, JSON-RPC with SHA-256 digest) against the emulator."""

from __future__ import annotations

import time

import httpx
import pytest

from emsctl.adapters.base import AuthFailed, BadResponse
from emsctl.adapters.shelly import manual_change, probe
from tests.support.shelly_emulator import ShellyGen2Emulator, running
from tests.support.shelly_fixtures import Gen2Factory, gen2_actuator

PLUS_1 = "SNSW-001X16EU"


def test_read_reports_output_power_and_source_of_a_plus_1_pm(gen2_emulator: Gen2Factory) -> None:
    emu = gen2_emulator(power_w=1875.4)
    with gen2_actuator(emu) as act:
        off = act.read()
        on = act.switch(True)
    assert (off.relay_on, off.power_w, off.source) == (False, 0.0, "init")
    assert (on.relay_on, on.power_w, on.source) == (True, 1875.4, "http")


def test_plus_1_without_meter_reports_no_power(gen2_emulator: Gen2Factory) -> None:
    emu = gen2_emulator(model=PLUS_1, device_id="shellyplus1-aabbccddeeff", power_w=4000)
    with gen2_actuator(emu, metered=False) as act:
        reading = act.switch(True)
    assert (reading.relay_on, reading.power_w) == (True, None)


def test_metered_config_on_a_plus_1_gives_no_power_rather_than_zero(
    gen2_emulator: Gen2Factory,
) -> None:
    emu = gen2_emulator(model=PLUS_1, power_w=4000)
    with gen2_actuator(emu, metered=True) as act:
        assert act.switch(True).power_w is None


def test_switch_sends_rpc_frames_and_reads_back(gen2_emulator: Gen2Factory) -> None:
    emu = gen2_emulator()
    with gen2_actuator(emu) as act:
        act.switch(True)
        assert emu.output is True
        act.switch(False)
        assert emu.output is False
    assert [(r.method, r.path, r.rpc_method) for r in emu.requests] == [
        ("POST", "/rpc", "Switch.Set"),
        ("POST", "/rpc", "Switch.GetStatus"),
        ("POST", "/rpc", "Switch.Set"),
        ("POST", "/rpc", "Switch.GetStatus"),
    ]
    assert emu.calls("Switch.Set")[0].params == {"id": 0, "on": True}
    assert emu.calls("Switch.Set")[1].params == {"id": 0, "on": False}


def test_dead_man_uses_toggle_after_and_fires_on_the_device(gen2_emulator: Gen2Factory) -> None:
    emu = gen2_emulator()
    with gen2_actuator(emu) as act:
        act.switch(True, deadman_s=300)
        assert emu.calls("Switch.Set")[-1].params == {"id": 0, "on": True, "toggle_after": 300}
        emu.advance(250)
        act.switch(True, deadman_s=300)  # renewed every tick
        emu.advance(250)
        assert act.read().relay_on is True
        emu.advance(51)
        reading = act.read()
    assert (reading.relay_on, reading.source) == (False, "timer")
    assert manual_change(True, reading) is False


def test_switch_off_never_sets_toggle_after(gen2_emulator: Gen2Factory) -> None:
    emu = gen2_emulator()
    with gen2_actuator(emu) as act:
        act.switch(True, deadman_s=60)
        act.switch(False, deadman_s=60)
    assert emu.calls("Switch.Set")[-1].params == {"id": 0, "on": False}
    emu.advance(120)
    assert emu.output is False


def test_button_press_is_a_manual_change_with_its_source(gen2_emulator: Gen2Factory) -> None:
    emu = gen2_emulator()
    with gen2_actuator(emu) as act:
        act.switch(True, deadman_s=300)
        emu.press_button(False)
        reading = act.read()
    assert (reading.relay_on, reading.source) == (False, "button")
    assert manual_change(act.commanded_on, reading) is True
    # a person's switching cancels our timer: nothing flips back later
    emu.advance(400)
    assert emu.output is False


def test_digest_auth_answers_the_challenge_once_then_reuses_the_nonce(
    gen2_emulator: Gen2Factory,
) -> None:
    emu = gen2_emulator(password="correct horse")
    with gen2_actuator(emu, "correct horse") as act:
        act.switch(True)
        act.read()
        act.switch(False)
    outcomes = [r.authorized for r in emu.requests]
    assert outcomes[0] is False  # the unauthenticated first try draws the challenge
    assert outcomes[1:] == [True] * 5
    assert emu.output is False


def test_expired_nonce_is_rechallenged_transparently(gen2_emulator: Gen2Factory) -> None:
    emu = gen2_emulator(password="pw", nonce_ttl_s=3600)
    with gen2_actuator(emu, "pw") as act:
        act.read()
        emu.advance(3601)
        assert act.switch(True).relay_on is True
    assert [r.authorized for r in emu.requests] == [False, True, False, True, True]


def test_firmware_wanting_a_fresh_nonce_per_request_still_works(
    gen2_emulator: Gen2Factory,
) -> None:
    emu = gen2_emulator(password="pw", single_use_nonces=True)
    with gen2_actuator(emu, "pw") as act:
        act.read()
        assert act.switch(True).relay_on is True
    assert [r.authorized for r in emu.requests] == [False, True] * 3


def test_wrong_password_fails_cleanly_and_quickly(gen2_emulator: Gen2Factory) -> None:
    emu = gen2_emulator(password="right")
    with gen2_actuator(emu, "wrong", timeout_s=2) as act:
        t0 = time.monotonic()
        with pytest.raises(AuthFailed) as err:
            act.switch(True)
        assert time.monotonic() - t0 < 2
    assert "password refused" in str(err.value)
    assert "EMS_SHELLY_WB_A_PASSWORD" in str(err.value)
    assert [r.authorized for r in emu.requests] == [False, False]  # challenge, one answer
    assert emu.output is False


def test_a_device_asking_for_md5_digest_is_refused_naming_it(
    gen2_emulator: Gen2Factory,
) -> None:
    """A downgrade: Gen2 firmware uses SHA-256; whoever asks for MD5 gets no answer with the
    password (a 401 challenge is all it sees), and the load needs a person."""
    emu = gen2_emulator(password="pw", digest_algorithm="MD5")
    with gen2_actuator(emu, "pw") as act:
        with pytest.raises(AuthFailed) as err:
            act.read()
        with pytest.raises(AuthFailed):
            act.switch(True)
    text = str(err.value)
    assert text.startswith(f"wb_a ({emu.host}): ")
    assert "MD5" in text and "SHA-256" in text
    assert [r.authorized for r in emu.requests] == [False, False], "no digest was sent"
    assert emu.output is False


def test_the_md5_emulator_accepts_an_md5_answer() -> None:
    """What the refusal above guards against is real: httpx's digest does MD5 when asked."""
    with running(ShellyGen2Emulator(password="pw", digest_algorithm="MD5")) as emu:
        frame = {"id": 1, "method": "Switch.GetStatus", "params": {"id": 0}}
        reply = httpx.post(
            f"{emu.url}/rpc", json=frame, auth=httpx.DigestAuth("admin", "pw"), timeout=5
        )
    assert reply.status_code == 200 and reply.json()["result"]["output"] is False
    assert [r.authorized for r in emu.requests] == [False, True]


def test_missing_password_names_the_variable_to_set(gen2_emulator: Gen2Factory) -> None:
    emu = gen2_emulator(password="right")
    with gen2_actuator(emu, None) as act, pytest.raises(AuthFailed) as err:
        act.read()
    assert "none is set" in str(err.value)
    assert "EMS_SHELLY_WB_A_PASSWORD or EMS_SHELLY_PASSWORD" in str(err.value)


def test_rpc_error_frame_is_bad_response_with_code(gen2_emulator: Gen2Factory) -> None:
    emu = gen2_emulator()
    with gen2_actuator(emu, channel=1) as act, pytest.raises(BadResponse) as err:
        act.read()
    assert "code -105" in str(err.value)


def test_info_and_probe_identify_a_gen2_device(gen2_emulator: Gen2Factory) -> None:
    emu = gen2_emulator(password="pw")
    info = probe(emu.host, timeout_s=2)
    assert (info.gen, info.model, info.device_id, info.auth_required) == (
        2,
        "SNSW-001P16EU",
        "shellyplus1pm-aabbccddeeff",
        True,
    )
    with gen2_actuator(emu, None) as act:  # /shelly needs no password
        assert act.info() == info
