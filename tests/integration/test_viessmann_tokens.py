"""Access-token refresh, 401 handling and the revoked-login path, against the emulator."""

from __future__ import annotations

import json
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from freezegun import freeze_time

from emsctl import clock
from emsctl.adapters.base import AuthFailed
from emsctl.adapters.statestore import MemoryStateStore
from emsctl.adapters.viessmann import FEATURE_DHW_TARGET, ViessmannClient, ViessmannDhw
from emsctl.adapters.viessmann_auth import LOGIN_HINT, LoginRequired, token_path
from emsctl.cli import main
from emsctl.config import Config
from tests.support.cloud import config_for, login, write_config
from tests.support.viessmann_emulator import ViessmannEmulator

START = "2026-06-15 08:00:00"


@pytest.fixture
def emu() -> Iterator[ViessmannEmulator]:
    e = ViessmannEmulator()
    yield e
    e.stop()


@pytest.fixture
def config(emu: ViessmannEmulator, tmp_path: Path) -> Config:
    return config_for(tmp_path, emu)


def _refresh_token(config: Config) -> str:
    token: str = json.loads(token_path(config).read_text())["token"]["refresh_token"]
    return token


def test_expired_access_token_is_refreshed_before_the_call(
    emu: ViessmannEmulator, config: Config
) -> None:
    store = MemoryStateStore()
    with freeze_time(START) as frozen:
        login(config, emu)
        first_refresh = _refresh_token(config)
        client = ViessmannClient.from_config(config, store)
        client.feature(FEATURE_DHW_TARGET, clock.now())
        assert emu.token_calls["refresh_token"] == 0

        frozen.tick(3600 - 30)  # inside the leeway: refreshed before it runs out
        client.feature(FEATURE_DHW_TARGET, clock.now())
        assert emu.token_calls["refresh_token"] == 1
        assert [c.status for c in emu.api_calls] == [200, 200, 200]

    # The emulator rotates refresh tokens: the new one must be on disk, still 0600.
    assert _refresh_token(config) != first_refresh
    assert stat.S_IMODE(token_path(config).stat().st_mode) == 0o600
    assert client.calls_total[("token", "ok")] == 1
    client.close()


def test_refused_token_is_refreshed_once_and_the_call_retried(
    emu: ViessmannEmulator, config: Config
) -> None:
    login(config, emu)
    client = ViessmannClient.from_config(config, MemoryStateStore())
    client.device(clock.now())
    emu.fail("unauthorized")
    feature = client.feature(FEATURE_DHW_TARGET, clock.now())
    assert feature["feature"] == FEATURE_DHW_TARGET
    assert emu.token_calls["refresh_token"] == 1
    assert [c.status for c in emu.api_calls][-2:] == [401, 200]
    assert client.calls_total[("feature", "unauthorized")] == 1
    client.close()


def test_expired_token_body_with_http_200_counts_as_refused(
    emu: ViessmannEmulator, config: Config
) -> None:
    login(config, emu)
    client = ViessmannClient.from_config(config, MemoryStateStore())
    client.device(clock.now())
    emu.fail("expired_body")
    assert client.feature(FEATURE_DHW_TARGET, clock.now())["feature"] == FEATURE_DHW_TARGET
    assert emu.token_calls["refresh_token"] == 1
    client.close()


def test_persistent_401_fails_cleanly_after_one_refresh_and_one_retry(
    emu: ViessmannEmulator, config: Config
) -> None:
    login(config, emu)
    client = ViessmannClient.from_config(config, MemoryStateStore())
    client.device(clock.now())
    before = len(emu.api_calls)
    emu.fail("unauthorized", count=None)
    with pytest.raises(AuthFailed) as info:
        client.feature(FEATURE_DHW_TARGET, clock.now())
    assert not isinstance(info.value, LoginRequired)
    assert len(emu.api_calls) - before == 2
    assert emu.token_calls["refresh_token"] == 1
    client.close()


def test_revoked_refresh_token_makes_dhw_unavailable_until_a_new_login(
    emu: ViessmannEmulator, config: Config, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = MemoryStateStore()
    with freeze_time(START) as frozen:
        login(config, emu)
        dhw = ViessmannDhw.from_config(config, store)
        assert dhw.read().available
        emu.revoke_refresh_tokens()
        frozen.tick(3600 + 900)  # access token expired, periodic check due

        reading = dhw.read()
        assert reading.available is False
        assert reading.relay_on is None
        assert LOGIN_HINT in (reading.error or "")
        assert emu.token_calls["refresh_refused"] == 1

        # No more knocking on the IAM's door, tick after tick, nor after a restart.
        for _ in range(30):
            frozen.tick(60)
            assert dhw.read().available is False
        restarted = ViessmannDhw.from_config(config, store)
        assert restarted.read().available is False
        assert emu.token_calls["refresh_refused"] == 1
        token_doc = json.loads(token_path(config).read_text())
        assert token_doc["token"] is None and "invalid_grant" in token_doc["revoked_reason"]

        # The owner is told what to do.
        cfg_file = write_config(tmp_path, config)
        assert main(["viessmann", "status", "-c", str(cfg_file)]) == 1
        out = capsys.readouterr().out
        assert "emsctl viessmann login" in out

        # A new login is picked up by the running actuator, without a restart.
        login(config, emu)
        frozen.tick(1)
        reading = dhw.read()
        assert reading.available is True
        assert reading.relay_on is False
    dhw.close()
    restarted.close()


def test_without_any_login_the_dhw_load_is_unavailable_with_the_hint(
    emu: ViessmannEmulator, config: Config
) -> None:
    dhw = ViessmannDhw.from_config(config, MemoryStateStore())
    reading = dhw.read()
    assert reading.available is False
    assert "emsctl viessmann login" in (reading.error or "")
    assert emu.api_calls == [] and sum(emu.token_calls.values()) == 0
    dhw.close()


def test_missing_client_id_is_named_in_the_unavailable_reason(tmp_path: Path) -> None:
    from emsctl.config import parse_config

    config = parse_config({"store": {"path": str(tmp_path / "ems.db")}})
    dhw = ViessmannDhw.from_config(config, MemoryStateStore())
    reading = dhw.read()
    assert reading.available is False
    assert "client_id" in (reading.error or "")
