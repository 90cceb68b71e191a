"""The DHW setpoint actuator against the API emulator: boost, restore, the owner's setpoint."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from freezegun import freeze_time

from emsctl import clock
from emsctl.adapters.base import BadResponse, CloudUsage, DeviceUnreachable, RateLimited
from emsctl.adapters.statestore import MemoryStateStore
from emsctl.adapters.viessmann import NOT_EXECUTABLE_HOLD, ViessmannDhw
from emsctl.config import Config
from emsctl.model import LoadId
from tests.support.cloud import config_for, login
from tests.support.viessmann_emulator import ViessmannEmulator

START = "2026-06-15 08:00:00"
TARGET = "heating.dhw.temperature.main"


@pytest.fixture
def emu() -> Iterator[ViessmannEmulator]:
    e = ViessmannEmulator()
    yield e
    e.stop()


@pytest.fixture
def config(emu: ViessmannEmulator, tmp_path: Path) -> Config:
    c = config_for(tmp_path, emu)
    login(c, emu)
    return c


@pytest.fixture
def store() -> MemoryStateStore:
    return MemoryStateStore()


def _writes(emu: ViessmannEmulator) -> list[float]:
    return [body["temperature"] for f, c, body in emu.commands if c == "setTargetTemperature"]


def test_reads_map_the_target_to_boost_normal_or_the_owners_setpoint(
    emu: ViessmannEmulator, config: Config, store: MemoryStateStore
) -> None:
    with freeze_time(START) as frozen:
        dhw = ViessmannDhw.from_config(config, store)
        assert dhw.load is LoadId.DHW
        r = dhw.read()
        assert (r.relay_on, r.foreign_setpoint, r.power_w, r.available) == (False, None, None, True)
        assert r.source == "viessmann"  # never written by us

        emu.owner_sets_target(60)
        frozen.tick(config.viessmann.check_interval_s)
        r = dhw.read()
        assert (r.relay_on, r.foreign_setpoint) == (True, None)

        emu.owner_sets_target(55)
        frozen.tick(config.viessmann.check_interval_s)
        r = dhw.read()
        assert (r.relay_on, r.foreign_setpoint) == (False, 55.0)
    dhw.close()


def test_boost_writes_whole_degrees_and_restore_writes_normal(
    emu: ViessmannEmulator, config: Config, store: MemoryStateStore
) -> None:
    with freeze_time(START) as frozen:
        dhw = ViessmannDhw.from_config(config, store)
        r = dhw.switch(True)
        assert (r.relay_on, r.source) == (True, "ems")
        assert emu.target == 60
        body = emu.commands[-1][2]
        assert body == {"temperature": 60} and isinstance(body["temperature"], int)

        frozen.tick(config.loads.dhw.min_write_interval_s)
        r = dhw.switch(False)
        assert (r.relay_on, r.source) == (False, "ems")
        assert emu.target == 50
        assert _writes(emu) == [60, 50]
        assert dhw.writes_total == 2
        # What `ems_cloud_calls{service="viessmann"}` and the budget gauge show.
        assert isinstance(dhw, CloudUsage) and dhw.cloud_service == "viessmann"
        assert dhw.calls_made == sum(dhw.calls_total.values()) >= 3
        assert dhw.budget_left == config.viessmann.daily_budget - dhw.calls_made
    dhw.close()


def test_switching_to_the_state_already_set_writes_nothing(
    emu: ViessmannEmulator, config: Config, store: MemoryStateStore
) -> None:
    dhw = ViessmannDhw.from_config(config, store)
    assert dhw.switch(False).relay_on is False
    assert _writes(emu) == []
    dhw.close()


def test_targets_outside_the_devices_range_are_clamped_to_its_constraints(
    emu: ViessmannEmulator, tmp_path: Path, store: MemoryStateStore
) -> None:
    config = config_for(
        tmp_path, emu, dhw={"normal_c": 48.6, "boost_c": 65, "min_write_interval_s": 0}
    )
    login(config, emu)
    emu.owner_sets_target(49)  # the device's normal, as our normal_c lands on it
    dhw = ViessmannDhw.from_config(config, store)
    r = dhw.switch(True)
    # The E8NEV allows 10..60 in steps of 1: 65 becomes 60, 48.6 becomes 49.
    assert emu.target == 60 and r.relay_on is True
    dhw.switch(False)
    assert emu.target == 49
    assert _writes(emu) == [60, 49]
    assert [c for c in emu.api_calls if c.status == 400] == [], "the emulator refused a value"
    dhw.close()


def test_writes_are_spaced_by_min_write_interval(
    emu: ViessmannEmulator, config: Config, store: MemoryStateStore
) -> None:
    with freeze_time(START) as frozen:
        dhw = ViessmannDhw.from_config(config, store)
        dhw.switch(True)
        frozen.tick(300)
        calls = len(emu.api_calls)
        with pytest.raises(RateLimited) as info:
            dhw.switch(False)
        assert info.value.retry_at == clock.now() + timedelta(
            seconds=config.loads.dhw.min_write_interval_s - 300
        )
        assert len(emu.api_calls) == calls, "a refused write must not cost a call"
        assert emu.target == 60
        frozen.tick(config.loads.dhw.min_write_interval_s - 300)
        assert dhw.switch(False).relay_on is False
        assert emu.target == 50
    dhw.close()


def test_the_owners_setpoint_is_never_overwritten(
    emu: ViessmannEmulator, config: Config, store: MemoryStateStore
) -> None:
    with freeze_time(START) as frozen:
        dhw = ViessmannDhw.from_config(config, store)
        dhw.switch(True)
        frozen.tick(1800)
        emu.owner_sets_target(55)  # the owner wants it this way, now
        # Even with a cached target (60, ours) the write path reads first.
        r = dhw.switch(False)
        assert r.foreign_setpoint == 55 and r.relay_on is False
        r = dhw.switch(True)
        assert r.foreign_setpoint == 55
        assert emu.target == 55
        assert _writes(emu) == [60]
        assert dhw.overrides_respected_total == 2
    dhw.close()


def test_a_boost_target_set_by_the_owner_is_not_taken_back(
    emu: ViessmannEmulator, config: Config, store: MemoryStateStore
) -> None:
    dhw = ViessmannDhw.from_config(config, store)
    emu.owner_sets_target(60)
    r = dhw.read()
    assert (r.relay_on, r.source) == (True, "viessmann")
    r = dhw.switch(False)
    assert r.relay_on is True  # left as the owner set it; the core sees a manual override
    assert emu.target == 60 and _writes(emu) == []
    dhw.close()


def test_after_a_restart_our_boost_is_recognised_and_restored(
    emu: ViessmannEmulator, config: Config, store: MemoryStateStore
) -> None:
    with freeze_time(START) as frozen:
        before = ViessmannDhw.from_config(config, store)
        before.switch(True)
        before.close()  # the daemon stops (crash, update) with the boost still set

        frozen.tick(3600)
        after = ViessmannDhw.from_config(config, store)
        r = after.read()
        assert (r.relay_on, r.source) == (True, "ems")
        r = after.switch(False)
        assert r.relay_on is False and emu.target == 50
        assert _writes(emu) == [60, 50]
    after.close()


def test_reads_use_the_cache_and_check_every_check_interval(
    emu: ViessmannEmulator, config: Config, store: MemoryStateStore
) -> None:
    with freeze_time(START) as frozen:
        dhw = ViessmannDhw.from_config(config, store)
        for _ in range(120):  # two hours of one-minute ticks
            assert dhw.read().relay_on is False
            frozen.tick(60)
    # Discovery once, then one check per 15 min: 1 + 8.
    assert len(emu.api_calls) == 9
    assert dhw.calls_total[("installations", "ok")] == 1
    dhw.close()


def test_one_time_charge_is_started_with_the_boost_when_configured(
    emu: ViessmannEmulator, tmp_path: Path, store: MemoryStateStore
) -> None:
    config = config_for(tmp_path, emu, viessmann_overrides={"one_time_charge": True})
    login(config, emu)
    dhw = ViessmannDhw.from_config(config, store)
    dhw.switch(True)
    assert ("heating.dhw.oneTimeCharge", "activate", {}) in emu.commands
    assert emu.state.one_time_charge is True
    dhw.close()


def test_offline_gateway_is_unreachable_and_retried_with_growing_pauses(
    emu: ViessmannEmulator, config: Config, store: MemoryStateStore
) -> None:
    with freeze_time(START) as frozen:
        dhw = ViessmannDhw.from_config(config, store)
        dhw.read()
        frozen.tick(config.viessmann.check_interval_s)
        emu.fail("gateway_offline", count=None)
        before = len(emu.api_calls)
        errors = 0
        for _ in range(120):
            try:
                dhw.read()
            except DeviceUnreachable as exc:
                errors += 1
                assert "offline" in str(exc)
            frozen.tick(60)
        assert errors == 120, "each tick reports the load unreachable"
        # 120, 240, 480, then every 900 s: 2 h of ticks cost a handful of calls, not 120.
        assert len(emu.api_calls) - before <= 11
        emu.clear_failures()
        frozen.tick(config.viessmann.check_interval_s)
        assert dhw.read().relay_on is False
    dhw.close()


@pytest.mark.parametrize(
    ("kind", "match"),
    [("500", "INTERNAL_ERROR"), ("502", "DEVICE_COMMUNICATION_ERROR")],
)
def test_server_errors_are_device_unreachable(
    emu: ViessmannEmulator, config: Config, store: MemoryStateStore, kind: str, match: str
) -> None:
    dhw = ViessmannDhw.from_config(config, store)
    dhw.client.device(clock.now())
    emu.fail(kind)
    with pytest.raises(DeviceUnreachable, match=match):
        dhw.read()
    dhw.close()


def test_a_write_refused_by_the_device_is_a_bad_response_and_not_counted_as_ours(
    emu: ViessmannEmulator, config: Config, store: MemoryStateStore
) -> None:
    with freeze_time(START) as frozen:
        dhw = ViessmannDhw.from_config(config, store)
        emu.state.target_executable = False
        with pytest.raises(BadResponse, match="not executable"):
            dhw.switch(True)
        emu.state.target_executable = True
        frozen.tick(NOT_EXECUTABLE_HOLD)
        # The failed attempt did not start the write interval.
        assert dhw.switch(True).relay_on is True
    dhw.close()


def _target_reads(emu: ViessmannEmulator) -> int:
    return sum(1 for c in emu.api_calls if c.method == "GET" and TARGET in c.path)


def test_a_target_the_heat_pump_does_not_accept_is_not_asked_for_again_every_tick(
    emu: ViessmannEmulator,
    config: Config,
    store: MemoryStateStore,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The lab's finding: while setTargetTemperature was not executable, every switch re-read
    the feature (59 reads in 61 s at a 1 s tick). The answer now holds for ten minutes."""
    with freeze_time(START) as frozen, caplog.at_level(logging.INFO, "emsctl.adapters"):
        dhw = ViessmannDhw.from_config(config, store)
        dhw.read()
        emu.state.target_executable = False
        frozen.tick(120)  # the cached target is no longer fresh enough for a write
        before = _target_reads(emu)
        for _ in range(61):
            with pytest.raises(BadResponse, match="not executable") as info:
                dhw.switch(True)
            frozen.tick(1)
        assert _target_reads(emu) - before == 1
        assert "not asked again before" in str(info.value)
        held = [r for r in caplog.records if "not executable" in r.getMessage()]
        assert len(held) == 1 and held[0].levelno == logging.WARNING

        # Ten minutes on it is asked again: still refused, one read, and no new log line.
        frozen.tick(NOT_EXECUTABLE_HOLD - timedelta(seconds=60))
        with pytest.raises(BadResponse):
            dhw.switch(True)
        assert _target_reads(emu) - before == 2
        assert len([r for r in caplog.records if "not executable" in r.getMessage()]) == 1

        emu.state.target_executable = True
        frozen.tick(NOT_EXECUTABLE_HOLD)
        assert dhw.switch(True).relay_on is True
        assert _writes(emu) == [60]
        assert any("accepts DHW targets again" in r.getMessage() for r in caplog.records)
    dhw.close()


def test_a_periodic_check_that_finds_the_target_executable_ends_the_hold(
    emu: ViessmannEmulator, tmp_path: Path, store: MemoryStateStore
) -> None:
    config = config_for(tmp_path, emu, viessmann_overrides={"check_interval_s": 300})
    login(config, emu)
    assert timedelta(seconds=300) < NOT_EXECUTABLE_HOLD
    with freeze_time(START) as frozen:
        dhw = ViessmannDhw.from_config(config, store)
        emu.state.target_executable = False
        with pytest.raises(BadResponse):
            dhw.switch(True)
        emu.state.target_executable = True
        frozen.tick(300)
        dhw.read()  # the periodic check sees the command executable again, before the hold ends
        assert dhw.switch(True).relay_on is True
    dhw.close()


def test_a_command_the_api_refuses_is_not_sent_again_every_tick(
    emu: ViessmannEmulator, config: Config, store: MemoryStateStore
) -> None:
    """The feature said executable, the command was refused all the same (400
    COMMAND_NOT_EXECUTABLE): the same hold, rather than a write attempt per tick."""
    with freeze_time(START) as frozen:
        dhw = ViessmannDhw.from_config(config, store)
        dhw.read()  # executable
        emu.state.target_executable = False
        for _ in range(30):
            with pytest.raises(BadResponse, match="COMMAND_NOT_EXECUTABLE"):
                dhw.switch(True)
            frozen.tick(1)
        refused = [c for c in emu.api_calls if c.method == "POST"]
        assert len(refused) == 1
    dhw.close()


def test_a_slow_api_times_out_as_unreachable(
    emu: ViessmannEmulator, tmp_path: Path, store: MemoryStateStore
) -> None:
    config = config_for(tmp_path, emu, viessmann_overrides={"timeout_s": 0.3})
    login(config, emu)
    dhw = ViessmannDhw.from_config(config, store)
    dhw.client.device(clock.now())
    emu.fail("slow", count=None, delay_s=1.0)
    with pytest.raises(DeviceUnreachable, match="timed out"):
        dhw.read()
    dhw.close()
