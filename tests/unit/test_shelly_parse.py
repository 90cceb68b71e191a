"""Pure parts of the Shelly adapter: device identification, override evidence, the factory."""

from __future__ import annotations

import json

import pytest

from emsctl.adapters.base import AuthFailed, BadResponse, DeviceUnreachable
from emsctl.adapters.credentials import Credentials
from emsctl.adapters.shelly import (
    ShellyGen1Actuator,
    ShellyGen2Actuator,
    SourceKind,
    classify_source,
    make_actuator,
    manual_change,
    parse_info,
    reading_for_error,
)
from emsctl.config import parse_config
from emsctl.model import LoadId, LoadReading
from tests.conftest import FIXTURES

SHELLY = FIXTURES / "shelly"


def _load(name: str) -> dict:
    return json.loads((SHELLY / name).read_text())


def test_gen1_is_recognised_by_its_missing_gen_key() -> None:
    shelly = _load("gen1_plug_s_SHPLG-S_fw1.14.0_aioshelly_dump.json")["shelly"]
    info = parse_info("h", shelly)
    assert (info.gen, info.model, info.auth_required, info.mac) == (
        1,
        "SHPLG-S",
        False,
        "AABBCCDDEEFF",
    )


@pytest.mark.parametrize(
    ("fixture", "gen", "model", "auth"),
    [
        ("gen2_plus1pm_GET_shelly.json", 2, "SNSW-001P16EU", False),
        ("gen2_plus2pm_auth_enabled_GET_shelly.json", 2, "SNSW-102P16EU", True),
        ("gen4_mini1_S4SW-001X8EU_Shelly.GetDeviceInfo.result.json", 4, "S4SW-001X8EU", False),
    ],
)
def test_gen2_and_later_report_gen_model_and_auth(
    fixture: str, gen: int, model: str, auth: bool
) -> None:
    info = parse_info("h", _load(fixture))
    assert (info.gen, info.model, info.auth_required) == (gen, model, auth)


def test_something_else_on_the_port_is_a_bad_response() -> None:
    with pytest.raises(BadResponse, match="not a Shelly"):
        parse_info("h", {"hello": "world"})
    with pytest.raises(BadResponse):
        parse_info("h", ["not", "an", "object"])


@pytest.mark.parametrize(
    ("source", "kind"),
    [
        ("http", SourceKind.NETWORK),
        ("WS_in", SourceKind.NETWORK),
        ("timer", SourceKind.TIMER),
        ("input", SourceKind.LOCAL),
        ("button", SourceKind.LOCAL),
        ("init", SourceKind.STARTUP),
        ("something-new", SourceKind.UNKNOWN),
        (None, SourceKind.UNKNOWN),
    ],
)
def test_sources_are_classified(source: str | None, kind: SourceKind) -> None:
    assert classify_source(source) is kind


def test_manual_change_means_differs_from_command_and_not_our_timer() -> None:
    on_by_button = LoadReading(relay_on=True, source="input")
    off_by_timer = LoadReading(relay_on=False, source="timer")
    off_by_app = LoadReading(relay_on=False, source="WS_in")
    assert manual_change(False, on_by_button) is True
    assert manual_change(True, on_by_button) is False
    assert manual_change(True, off_by_timer) is False
    assert manual_change(True, off_by_app) is True
    assert manual_change(None, on_by_button) is False  # never commanded: nothing to compare
    assert manual_change(True, LoadReading(error="x")) is False


def test_errors_become_readings_and_a_refused_password_makes_the_load_unavailable() -> None:
    gone = reading_for_error(DeviceUnreachable("timeout", device="wb_a"))
    refused = reading_for_error(AuthFailed("password refused", device="wb_a"))
    assert (gone.error, gone.available, gone.reachable) == ("wb_a: timeout", True, False)
    assert (refused.available, refused.relay_on) == (False, None)


def test_factory_picks_the_generation_meter_and_password() -> None:
    config = parse_config(
        {
            "loads": {
                "sg_ready": {"device": {"type": "shelly_gen1", "host": "10.0.0.5"}},
                "wb_a": {"device": {"type": "shelly_gen2", "host": "10.0.0.6:8080"}},
                "wb_b": {"device": {"type": "shelly_gen2", "host": "10.0.0.7"}},
            }
        }
    )
    creds = Credentials.load(environ={"EMS_SHELLY_WB_A_PASSWORD": "a"})
    actuators = {
        load: make_actuator(load, config.loads.get(load), creds)
        for load in (LoadId.SG_READY, LoadId.WB_A, LoadId.WB_B)
    }
    try:
        sg, wb_a, wb_b = actuators.values()
        assert isinstance(sg, ShellyGen1Actuator) and not sg.metered
        assert isinstance(wb_a, ShellyGen2Actuator) and wb_a.metered and wb_a.password == "a"
        assert wb_a.host == "10.0.0.6:8080"
        assert isinstance(wb_b, ShellyGen2Actuator) and not wb_b.metered
        assert wb_b.password is None
    finally:
        for a in actuators.values():
            a.close()
    with pytest.raises(ValueError, match="not a Shelly"):
        make_actuator(LoadId.DHW, config.loads.dhw, creds)
