"""check-config refuses every value the daemon cannot run with: infinite, NaN or absurd."""

from __future__ import annotations

import math
from typing import Any

import pytest

from emsctl.config import ConfigError, parse_config


@pytest.mark.parametrize(
    ("data", "key"),
    [
        ({"store": {"retention_days": 1_000_000}}, "store.retention_days"),  # OverflowError
        ({"prometheus": {"timeout_s": math.inf}}, "prometheus.timeout_s"),  # every tick stalls
        ({"prometheus": {"timeout_s": 3600}}, "prometheus.timeout_s"),
        ({"loads": {"sg_ready": {"on_delay_s": math.inf}}}, "loads.sg_ready.on_delay_s"),
        ({"loads": {"wb_a": {"min_on_s": math.nan}}}, "loads.wb_a.min_on_s"),
        ({"loads": {"wb_b": {"nominal_w": 1e308}}}, "loads.wb_b.nominal_w"),
        ({"control": {"interval_s": -math.inf}}, "control.interval_s"),
        ({"control": {"manual_hold_s": 1e12}}, "control.manual_hold_s"),
        ({"control": {"forecast_margin": math.nan}}, "control.forecast_margin"),
        ({"tariff": {"import_eur_kwh": math.inf}}, "tariff.import_eur_kwh"),
        ({"loads": {"wb_a": {"device": {"deadman_s": 10**9}}}}, "loads.wb_a.device.deadman_s"),
    ],
)
def test_values_the_daemon_cannot_run_with_are_refused(data: dict[str, Any], key: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config(data)
    assert key in str(err.value)


def test_the_bounds_leave_room_for_every_real_house() -> None:
    cfg = parse_config(
        {
            "store": {"retention_days": 3650},
            "control": {"manual_hold_s": 7 * 86400, "interval_s": 10},
            "loads": {"wb_b": {"nominal_w": 22_000}},
        }
    )
    assert cfg.store.retention_days == 3650


@pytest.mark.parametrize(
    "entry",
    [
        "ems.example.org:8080",
        "*",
        "*.example.org",
        "",
        "http://ems",
        "a b",
        "ems/ui",
        "192.168.178.300",
        "[::1]:8080",
    ],
)
def test_an_allowed_host_that_is_not_a_host_name_is_refused_with_its_key(entry: str) -> None:
    """A port, a scheme or a wildcard there never matches a Host header (or, for '*', would
    defeat the check against DNS rebinding): refused at start, naming the key."""
    with pytest.raises(ConfigError, match=r"webui\.allowed_hosts.*entry 2.*is not a host name"):
        parse_config({"webui": {"allowed_hosts": ["ems.example.org", entry]}})


def test_host_names_as_browsers_send_them_are_allowed() -> None:
    hosts = ["ems.example.org", "ems-pi", "xn--bcher-kva.example", "ems.local.", "ems_pi"]
    assert parse_config({"webui": {"allowed_hosts": hosts}}).webui.allowed_hosts == hosts


def test_an_ip_address_is_accepted_though_it_needs_no_entry() -> None:
    """Every IP address is answered anyway: listing one does no harm, it must not stop
    the start (an IPv6 address is not a host name but is a fine entry)."""
    hosts = ["192.168.178.20", "::1", "fe80::1", "2001:db8::5"]
    assert parse_config({"webui": {"allowed_hosts": hosts}}).webui.allowed_hosts == hosts
