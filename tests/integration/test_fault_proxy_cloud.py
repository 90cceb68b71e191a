"""The cloud adapters against their emulators through the fault proxy: a Viessmann API, its
token endpoint or forecast.solar that trickles, hangs or answers garbage gives a clean typed
error within the configured `timeout_s` (plus 1 s)."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

from emsctl import clock
from emsctl.adapters.base import AdapterError, BadResponse, DeviceUnreachable
from emsctl.adapters.forecast_solar import ForecastSolar
from emsctl.adapters.statestore import MemoryStateStore
from emsctl.adapters.viessmann import FEATURE_DHW_TARGET, ViessmannClient
from tests.support.cloud import config_for, login
from tests.support.fault_proxy import FaultProxy, Mode
from tests.support.forecast_emulator import ForecastEmulator
from tests.support.viessmann_emulator import API_PREFIX, ViessmannEmulator

TIMEOUT_S = 2.0
SLACK_S = 1.0
#: Without a total deadline a trickled call would last until the proxy cuts it after this.
CUT_S = 15.0


def _timed(call: Callable[[], Any]) -> tuple[AdapterError, float]:
    t0 = time.monotonic()
    with pytest.raises(AdapterError) as err:
        call()
    return err.value, time.monotonic() - t0


# --------------------------------------------------------------------------- Viessmann


@pytest.fixture
def viessmann(tmp_path: Path) -> Iterator[tuple[ViessmannEmulator, FaultProxy, ViessmannClient]]:
    """The emulator behind a proxy that carries the token endpoint and the API."""
    emu = ViessmannEmulator()
    with FaultProxy(emu.url, connection_lifetime_s=CUT_S) as proxy:
        config = config_for(
            tmp_path,
            emu,
            viessmann_overrides={
                "token_url": f"{proxy.url}/idp/v3/token",
                "api_base": f"{proxy.url}{API_PREFIX}",
                "timeout_s": TIMEOUT_S,
            },
        )
        login(config, emu)
        client = ViessmannClient.from_config(config, MemoryStateStore())
        try:
            yield emu, proxy, client
        finally:
            client.close()
            emu.stop()


@pytest.mark.parametrize("mode", [Mode.TRICKLE, Mode.HANG])
def test_a_slow_or_silent_viessmann_api_is_unreachable_within_the_timeout(
    viessmann: tuple[ViessmannEmulator, FaultProxy, ViessmannClient], mode: Mode
) -> None:
    _emu, proxy, client = viessmann
    assert client.feature(FEATURE_DHW_TARGET, clock.now())["feature"] == FEATURE_DHW_TARGET
    proxy.set_mode(mode, rate=1)
    error, took = _timed(lambda: client.feature(FEATURE_DHW_TARGET, clock.now()))
    assert isinstance(error, DeviceUnreachable), error
    assert str(error) == "viessmann: feature call timed out"
    assert took < TIMEOUT_S + SLACK_S, f"{mode}: {took:.1f} s"
    assert proxy.accepted[mode] == 1
    proxy.set_mode(Mode.PASS)
    assert client.feature(FEATURE_DHW_TARGET, clock.now())["feature"] == FEATURE_DHW_TARGET


def test_a_token_refresh_and_its_call_share_one_deadline(
    viessmann: tuple[ViessmannEmulator, FaultProxy, ViessmannClient],
) -> None:
    _emu, proxy, client = viessmann
    client.feature(FEATURE_DHW_TARGET, clock.now())
    proxy.set_mode(Mode.TRICKLE, rate=1)
    later = clock.now() + timedelta(hours=2)  # the access token has expired by then
    error, took = _timed(lambda: client.feature(FEATURE_DHW_TARGET, later))
    assert isinstance(error, DeviceUnreachable), error
    assert "IAM timed out on the refresh token" in str(error)
    assert took < TIMEOUT_S + SLACK_S
    assert client.calls_total[("token", "unreachable")] == 1


def test_viessmann_garbage_is_a_bad_response(
    viessmann: tuple[ViessmannEmulator, FaultProxy, ViessmannClient],
) -> None:
    _emu, proxy, client = viessmann
    client.feature(FEATURE_DHW_TARGET, clock.now())
    proxy.set_mode(Mode.GARBAGE)
    error, _took = _timed(lambda: client.feature(FEATURE_DHW_TARGET, clock.now()))
    assert isinstance(error, BadResponse), error
    assert "without a JSON object" in str(error)


# --------------------------------------------------------------------------- forecast.solar


@pytest.fixture
def forecast(tmp_path: Path) -> Iterator[tuple[FaultProxy, ForecastSolar]]:
    emu = ForecastEmulator(day=date.today())
    with FaultProxy(emu.url, connection_lifetime_s=CUT_S) as proxy:
        config = config_for(
            tmp_path, forecast=emu, forecast_overrides={"url": proxy.url, "timeout_s": TIMEOUT_S}
        )
        source = ForecastSolar.from_config(config, MemoryStateStore(), rng=random.Random(7))
        try:
            yield proxy, source
        finally:
            source.close()
            emu.stop()


@pytest.mark.parametrize("mode", [Mode.TRICKLE, Mode.HANG])
def test_a_slow_or_silent_forecast_service_is_unreachable_within_the_timeout(
    forecast: tuple[FaultProxy, ForecastSolar], mode: Mode
) -> None:
    proxy, source = forecast
    proxy.set_mode(mode, rate=1)
    error, took = _timed(lambda: source.refresh(clock.now()))
    assert isinstance(error, DeviceUnreachable), error
    assert str(error) == "forecast.solar: estimate request timed out"
    assert took < TIMEOUT_S + SLACK_S, f"{mode}: {took:.1f} s"
    proxy.set_mode(Mode.PASS)
    assert source.refresh(clock.now()).series


def test_forecast_garbage_is_a_bad_response(forecast: tuple[FaultProxy, ForecastSolar]) -> None:
    proxy, source = forecast
    proxy.set_mode(Mode.GARBAGE)
    error, _took = _timed(lambda: source.refresh(clock.now()))
    assert isinstance(error, BadResponse), error
    assert "no 'result' object" in str(error)
