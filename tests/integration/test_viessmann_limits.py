"""Viessmann's limits: 429 back-off until the named reset, and our own daily call budget."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from freezegun import freeze_time

from emsctl import clock
from emsctl.adapters.base import AdapterError, RateLimited
from emsctl.adapters.statestore import MemoryStateStore
from emsctl.adapters.viessmann import ViessmannDhw
from emsctl.cli import main
from emsctl.config import Config
from tests.support.cloud import config_for, login, write_config
from tests.support.viessmann_emulator import ViessmannEmulator

START = "2026-06-15 04:00:00"


@pytest.fixture
def emu() -> Iterator[ViessmannEmulator]:
    e = ViessmannEmulator()
    yield e
    e.stop()


def test_429_stops_every_call_until_the_reset_the_api_names_even_after_restart(
    emu: ViessmannEmulator, tmp_path: Path
) -> None:
    config = config_for(tmp_path, emu)
    store = MemoryStateStore()
    with freeze_time(START) as frozen:
        login(config, emu)
        dhw = ViessmannDhw.from_config(config, store)
        dhw.read()
        reset = clock.now() + timedelta(hours=5, minutes=3)
        emu.fail("rate_limit", limit_reset_ms=int(reset.timestamp() * 1000))
        frozen.tick(config.viessmann.check_interval_s)
        reading = dhw.read()
        assert reading.error == (
            f"viessmann: Viessmann refuses calls until {reset:%Y-%m-%d %H:%M:%S}Z (rate limit, "
            "HTTP 429); the DHW target stays at 50 °C meanwhile"
        )
        assert dhw.client.budget.blocked_until(clock.now()) == reset
        calls = len(emu.api_calls)
        tokens = sum(emu.token_calls.values())

        restarted = ViessmannDhw.from_config(config, store)
        while clock.now() < reset - timedelta(seconds=60):
            # The running actuator knows the target and says so, with the block's end; the
            # restarted one knows nothing yet: unreachable until the reset.
            reading = dhw.read()
            assert reading.relay_on is False and reading.error is not None
            assert f"{reset:%Y-%m-%d %H:%M:%S}Z" in reading.error
            with pytest.raises(RateLimited):
                restarted.read()
            with pytest.raises(RateLimited):
                restarted.switch(True)
            frozen.tick(60)
        assert len(emu.api_calls) == calls, "no API call before the reset"
        assert sum(emu.token_calls.values()) == tokens, "no token call either"
        assert restarted.client.skipped_total["blocked"] > 0

        frozen.tick(120)
        assert restarted.switch(True).relay_on is True
        assert emu.target == 60
    dhw.close()
    restarted.close()


def test_during_a_429_a_boost_shows_as_still_set_with_the_reset_time(
    emu: ViessmannEmulator, tmp_path: Path
) -> None:
    """What the owner should see while Viessmann blocks the account: the target the heat pump
    keeps (the EMS cannot change it), and until when — not a heat pump that is unreachable."""
    config = config_for(tmp_path, emu)
    store = MemoryStateStore()
    with freeze_time(START) as frozen:
        login(config, emu)
        dhw = ViessmannDhw.from_config(config, store)
        assert dhw.switch(True).relay_on is True
        reset = clock.now() + timedelta(hours=2)
        emu.fail("rate_limit", limit_reset_ms=int(reset.timestamp() * 1000))
        frozen.tick(config.viessmann.check_interval_s)
        calls = len(emu.api_calls)
        for _ in range(30):
            reading = dhw.read()
            assert (reading.relay_on, reading.source, reading.available) == (True, "ems", True)
            assert reading.error is not None and f"{reset:%Y-%m-%d %H:%M:%S}Z" in reading.error
            assert reading.reachable is False  # nothing may be started on it
            with pytest.raises(RateLimited):
                dhw.switch(False)  # the boost cannot be ended before the reset
            frozen.tick(60)
        assert len(emu.api_calls) == calls + 1  # the one call that drew the 429
        assert emu.target == 60

        frozen.move_to(reset + timedelta(seconds=1))
        assert dhw.switch(False).relay_on is False
        assert emu.target == 50
        reading = dhw.read()
        assert (reading.relay_on, reading.error) == (False, None)
    dhw.close()


def test_429_without_a_reset_time_waits_the_configured_pause(
    emu: ViessmannEmulator, tmp_path: Path
) -> None:
    config = config_for(tmp_path, emu)
    login(config, emu)
    dhw = ViessmannDhw.from_config(config, MemoryStateStore())
    emu.fail("rate_limit", limit_reset_ms=1)  # a reset in the past is no information
    now = clock.now()
    with pytest.raises(RateLimited) as info:
        dhw.read()
    assert info.value.retry_at is not None
    wait = (info.value.retry_at - now).total_seconds()
    assert config.viessmann.rate_limit_wait_s - 5 <= wait <= config.viessmann.rate_limit_wait_s + 5
    dhw.close()


@pytest.mark.parametrize("budget", [300, 40])
def test_a_simulated_day_of_ticks_never_exceeds_the_daily_budget(
    emu: ViessmannEmulator, tmp_path: Path, budget: int
) -> None:
    reserve = min(30, budget // 4)
    config = config_for(
        tmp_path,
        emu,
        viessmann_overrides={"daily_budget": budget, "read_reserve": reserve},
        dhw={"min_write_interval_s": 900},
    )
    store = MemoryStateStore()
    # The controller's pattern: read every tick; the engine asks for a boost at these minutes.
    boost_on = {9 * 60, 11 * 60, 13 * 60 + 30, 16 * 60}
    boost_off = {10 * 60, 12 * 60 + 30, 15 * 60, 17 * 60 + 45}
    switched: list[tuple[int, bool]] = []
    refused = 0
    start = datetime(2026, 6, 15, 0, 0, tzinfo=UTC)
    with freeze_time(start) as frozen:
        login(config, emu)
        dhw = ViessmannDhw.from_config(config, store)
        for minute in range(2 * 1440):  # two days: the rolling window must hold across midnight
            m = minute % 1440
            with contextlib.suppress(AdapterError):  # the controller reports these
                dhw.read()
            if m in boost_on or m in boost_off:
                try:
                    r = dhw.switch(m in boost_on)
                    switched.append((minute, bool(r.relay_on)))
                except RateLimited:
                    refused += 1
            assert dhw.budget_remaining >= 0
            frozen.tick(60)
    worst = emu.max_calls_in_any(86400)
    assert worst <= budget, f"{worst} calls in one 24 h window, budget {budget}"
    assert emu.max_calls_in_any(600) <= config.viessmann.burst_budget
    assert [c for c in emu.api_calls if c.status == 429] == []
    if budget == 300:
        # Every requested switch went through: reads gave way to writes, not the reverse.
        assert refused == 0
        assert [on for _, on in switched] == [
            m in boost_on for m in sorted(boost_on | boost_off)
        ] * 2
    else:
        # Demand exceeds a 40-call budget (24 token refreshes alone): some switches wait, and
        # the periodic checks, not the writes, gave way first.
        assert refused > 0
        assert len(switched) >= 4
        assert dhw.client.skipped_total["budget"] > 0
    total = sum(n for (endpoint, _), n in dhw.calls_total.items())
    assert total == len(emu.api_calls) + emu.token_calls["refresh_token"]
    if budget == 300:
        # Checks every 15 min, refreshes every hour, 8 writes: well within the budget.
        assert 96 <= worst <= 140
    dhw.close()


def test_status_cli_reports_budget_use(
    emu: ViessmannEmulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config: Config = config_for(tmp_path, emu)
    login(config, emu)
    cfg_file = write_config(tmp_path, config)
    assert main(["viessmann", "status", "-c", str(cfg_file)]) == 0
    out = capsys.readouterr().out
    assert "login:         ok" in out
    assert "DHW target:    50 °C (normal" in out
    assert "DHW actual:    50.2 °C" in out
    assert f"of {config.viessmann.daily_budget} used" in out
    # The CLI shares the daemon's store: its calls count in the same budget.
    assert main(["viessmann", "status", "-c", str(cfg_file), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["budget_used_24h"] == 5  # discovery once, then target + actual twice
    assert doc["device"]["device_id"] == "0"
