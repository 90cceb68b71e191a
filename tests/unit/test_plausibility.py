"""Rule 16: a glitch (register overflow, 1e308, NaN) is a missing value, never a reason to act."""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from dataclasses import replace

import pytest

from emsctl.config import ConfigError, PlausibilityConfig, parse_config
from emsctl.model import Event, LoadReading, Release, Snapshot, State
from emsctl.plausibility import SocMemory, screen, screen_reading
from emsctl.store import Store

from .corekit import DHW, SG, T0, WA, decide, s, snap, status, statuses, verdict
from .test_controller import Rig

LIMITS = PlausibilityConfig()


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("soc_pct", 6553.5),  # 0xFFFF / 10
        ("soc_pct", -0.5),
        ("grid_w", -4_294_967_295.0),  # an unsigned register read as signed
        ("grid_w", 1e308),
        ("grid_w", math.nan),
        ("grid_l2_w", 30_000.0),  # beyond a 63 A phase
        ("pv_w", math.inf),
        ("battery_w", -1e11),
        ("outdoor_c", 3276.7),
        ("compressor_w", 65535.0),
    ],
)
def test_an_implausible_value_is_missing(field: str, value: float) -> None:
    screened, bad = screen(replace(snap(), **{field: value}), LIMITS)
    assert getattr(screened, field) is None
    assert list(bad) == [field]


def test_plausible_values_pass_unchanged_including_the_limits_themselves() -> None:
    given = replace(snap(grid=-50_000, soc=100.0), grid_l1_w=-20_000.0, pv_w=0.0)
    screened, bad = screen(given, LIMITS)
    assert screened is given
    assert bad == {}


def test_a_device_reading_with_an_implausible_power_keeps_its_relay_state() -> None:
    r, implausible = screen_reading(LoadReading(relay_on=True, power_w=1e308), LIMITS)
    assert implausible and r.relay_on is True and r.power_w is None
    ok = LoadReading(relay_on=True, power_w=1980.0)
    assert screen_reading(ok, LIMITS) == (ok, False)


def test_limits_are_configurable_and_checked_with_their_key_path() -> None:
    cfg = parse_config({"plausibility": {"grid_w": {"min": -20000, "max": 20000}}})
    assert screen(snap(grid=-25_000), cfg.plausibility)[1] == {"grid_w": -25_000}
    with pytest.raises(ConfigError, match=r"plausibility\.soc_pct.*must be below"):
        parse_config({"plausibility": {"soc_pct": {"min": 100, "max": 0}}})
    with pytest.raises(ConfigError, match=r"plausibility\.grid_w\.max"):
        parse_config({"plausibility": {"grid_w": {"min": 0, "max": math.inf}}})


# --------------------------------------------------------------------------- the brake


def test_the_soc_memory_offers_the_last_plausible_soc_for_max_age_only() -> None:
    mem = SocMemory(max_age_s=300)
    assert mem.update(snap(soc=30.0), implausible=False).soc_held_pct is None
    glitch = replace(snap(T0 + s(120)), soc_pct=None)
    assert mem.update(glitch, implausible=True).soc_held_pct == 30.0
    # A value that is merely missing (no answer) is not a glitch: nothing is held.
    assert mem.update(glitch, implausible=False).soc_held_pct is None
    late = replace(snap(T0 + s(301)), soc_pct=None)
    assert mem.update(late, implausible=True).soc_held_pct is None


def test_the_brake_judges_the_last_plausible_soc() -> None:
    sts = statuses(
        status(SG, State.ON, since=T0 - s(60)),
        status(WA, State.ON, since=T0 - s(120), power_w=2000),
    )
    glitch = replace(snap(grid=-5000, soc=None), soc_held_pct=40.0)
    d = decide(glitch, sts)
    for load in (SG, WA):
        v = verdict(d, load)
        assert v.event is Event.BRAKE
        assert v.release is Release.BRAKE
        assert v.reasons[0] == "emergency brake: last plausible soc 40% < 45%"
    # Above the brake, the glitch only holds: nothing starts, nothing is shed.
    calm = decide(replace(glitch, soc_held_pct=60.0), sts)
    assert verdict(calm, SG).event is None
    assert not verdict(calm, DHW).start_ok


# --------------------------------------------------------------------------- in the controller


@pytest.fixture
def store() -> Iterator[Store]:
    st = Store.temporary()
    yield st
    st.close()


def test_a_soc_of_6553_5_percent_starts_nothing(store: Store) -> None:
    """The finding: 0xFFFF/10 read as 6553.5 % defeated the brake and SG-Ready started."""
    rig = Rig(store)
    rig.collector.values["soc_pct"] = 30.0  # below the brake: nothing may run
    rig.minutes(3)
    rig.collector.values["soc_pct"] = 6553.5
    rig.minutes(20)
    assert all(st.state is State.OFF for st in rig.ctl.site.statuses().values())
    assert not any(on for r in rig.relays.values() for on, _ in r.switches)


def test_1e308_is_neither_a_surplus_nor_exported(store: Store) -> None:
    rig = Rig(store)
    rig.collector.values["grid_w"] = -1e308
    rig.minutes(15)
    assert all(st.state is State.OFF for st in rig.ctl.site.statuses().values())
    text = rig.metric_text()
    assert "e+308" not in text
    assert 'ems_adapter_errors_total{kind="implausible",where="grid_w"} 15.0' in text


def test_an_episode_is_logged_once_and_its_end_too(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    rig = Rig(store)
    with caplog.at_level(logging.INFO, logger="emsctl.controller"):
        rig.collector.values["soc_pct"] = 6553.5
        rig.minutes(5)
        rig.collector.values["soc_pct"] = 70.0
        rig.minutes(2)
    lines = [r.getMessage() for r in caplog.records if "soc_pct" in r.getMessage()]
    assert len(lines) == 2
    assert "implausible value 6553.5" in lines[0]
    assert "plausible again" in lines[1]


def test_an_implausible_meter_reading_is_not_a_charging_car(store: Store) -> None:
    rig = Rig(store)
    relay = rig.relays[next(iter(rig.relays))]
    original = relay.read

    def lying() -> LoadReading:
        return replace(original(), power_w=1e308)

    relay.read = lying  # type: ignore[method-assign]
    rig.minutes(2)
    for st in rig.ctl.site.statuses().values():
        assert st.reading.power_w is None or st.reading.power_w < 1e6
    assert isinstance(rig.ctl.latest().snapshot, Snapshot)  # type: ignore[union-attr]
