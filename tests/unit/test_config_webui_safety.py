"""The web UI switches the heat pump and the cars: never on the network without a login."""

from __future__ import annotations

from pathlib import Path

import pytest
from werkzeug.security import generate_password_hash

from emsctl.config import ConfigError, is_loopback, load_config, parse_config

SHIPPED = Path(__file__).resolve().parents[2] / "configs" / "ems-config.yaml"
HASH = generate_password_hash("correct horse", method="pbkdf2:sha256:1000")


@pytest.mark.parametrize("bind", ["0.0.0.0", "::", "192.168.178.20", "ems.local"])
def test_a_network_address_without_a_password_is_refused_with_its_key(bind: str) -> None:
    with pytest.raises(ConfigError, match=r"webui\.bind: .*password_hash"):
        parse_config({"webui": {"bind": bind}})


@pytest.mark.parametrize("bind", ["127.0.0.1", "::1", "localhost", "127.0.0.53"])
def test_loopback_needs_no_password(bind: str) -> None:
    assert parse_config({"webui": {"bind": bind}}).webui.bind == bind


def test_a_network_address_with_a_password_or_a_disabled_ui_is_fine() -> None:
    assert parse_config({"webui": {"bind": "0.0.0.0", "password_hash": HASH}}).webui.bind
    assert not parse_config({"webui": {"bind": "0.0.0.0", "enabled": False}}).webui.enabled


@pytest.mark.parametrize("bad", ["", "secret", "pbkdf2:sha256", "plain$text$here", "scrypt:$$"])
def test_a_password_hash_that_no_login_could_match_is_refused(bad: str) -> None:
    with pytest.raises(ConfigError, match=r"webui\.password_hash: .*hash-password"):
        parse_config({"webui": {"password_hash": bad}})


@pytest.mark.parametrize("bind", ["not an address", "300.1.1.1.1", "-x", "a" * 300])
def test_an_invalid_bind_address_is_refused(bind: str) -> None:
    with pytest.raises(ConfigError, match=r"(webui|metrics)\.bind"):
        parse_config({"webui": {"bind": bind, "password_hash": HASH}, "metrics": {"bind": bind}})


def test_the_shipped_config_keeps_the_control_panel_on_this_machine() -> None:
    cfg = load_config(SHIPPED)
    assert cfg.webui.password_hash is None
    assert is_loopback(cfg.webui.bind)
