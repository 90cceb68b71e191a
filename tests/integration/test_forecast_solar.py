"""forecast.solar source against the estimate emulator: what it computes, how often it calls,
what it does during outages and rate limits."""

from __future__ import annotations

import itertools
import json
import random
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from freezegun import freeze_time

from emsctl import clock
from emsctl.adapters.base import BadResponse, CloudUsage, RateLimited
from emsctl.adapters.forecast_solar import ForecastSolar
from emsctl.adapters.statestore import MemoryStateStore
from emsctl.cli import main
from tests.support.cloud import config_for, write_config
from tests.support.forecast_emulator import ForecastEmulator

DAY = date(2026, 6, 15)
BERLIN = ZoneInfo("Europe/Berlin")
#: The fixture's first day summed after 12:00 local (periods ending 13:00 .. 20:59:23).
AFTER_NOON_WH = 742 + 665 + 569 + 474 + 378 + 265 + 147 + 64 + 19
DAY_WH = 6660  # the fixture's watt_hours_day for that day


def local(hh: int, mm: int = 0) -> datetime:
    return datetime(DAY.year, DAY.month, DAY.day, hh, mm, tzinfo=BERLIN)


@pytest.fixture
def emu() -> Iterator[ForecastEmulator]:
    e = ForecastEmulator(day=DAY)
    yield e
    e.stop()


def _source(
    tmp_path: Path,
    emu: ForecastEmulator,
    store: MemoryStateStore | None = None,
    **overrides: object,
) -> ForecastSolar:
    config = config_for(tmp_path, forecast=emu, forecast_overrides=dict(overrides))
    return ForecastSolar.from_config(config, store or MemoryStateStore(), rng=random.Random(7))


def test_remaining_today_counts_what_is_left_of_each_irregular_period(
    emu: ForecastEmulator, tmp_path: Path
) -> None:
    with freeze_time(local(12)) as frozen:
        src = _source(tmp_path, emu, refresh_s=12 * 3600, max_age_s=12 * 3600)
        fc = src.forecast(clock.now())
        assert fc is not None
        assert fc.fetched_at == clock.now()
        assert fc.remaining_today_wh == pytest.approx(AFTER_NOON_WH)

        frozen.move_to(local(12, 30))  # half of the 12:00-13:00 period is still to come
        fc = src.forecast(clock.now())
        assert fc is not None and fc.remaining_today_wh == pytest.approx(AFTER_NOON_WH - 742 / 2)

        # The last period runs 20:00:00 .. 20:59:23 (sunset): 29 min 23 s of it are left.
        frozen.move_to(local(20, 30))
        fc = src.forecast(clock.now())
        assert fc is not None and fc.remaining_today_wh == pytest.approx(19 * 1763 / 3563)

        frozen.move_to(local(21, 30))
        fc = src.forecast(clock.now())
        assert fc is not None and fc.remaining_today_wh == 0
    assert len(emu.requests) == 1, "answers come from the cache within refresh_s"
    assert emu.requests[0].query == "time=iso8601"
    assert emu.requests[0].user_agent.startswith("emsctl/")
    src.close()


def test_before_sunrise_the_whole_day_remains(emu: ForecastEmulator, tmp_path: Path) -> None:
    with freeze_time(local(4)):
        src = _source(tmp_path, emu)
        fc = src.forecast(clock.now())
    assert fc is not None and fc.remaining_today_wh == pytest.approx(DAY_WH)
    src.close()


def test_public_endpoint_takes_one_call_per_plane_and_adds_them(
    emu: ForecastEmulator, tmp_path: Path
) -> None:
    planes = [
        {"declination": 30, "azimuth": 0, "kwp": 1.0},
        {"declination": 30, "azimuth": 90, "kwp": 2.0},
    ]
    with freeze_time(local(12)):
        src = _source(tmp_path, emu, planes=planes)
        fc = src.forecast(clock.now())
    assert fc is not None and fc.remaining_today_wh == pytest.approx(3 * AFTER_NOON_WH)
    assert [r.path for r in emu.requests] == [
        "/estimate/52.16/4.47/30/0/1",
        "/estimate/52.16/4.47/30/90/2",
    ]
    # What `ems_cloud_calls{service="forecast_solar"}` shows.
    assert isinstance(src, CloudUsage)
    assert (src.cloud_service, src.calls_made, src.budget_left) == ("forecast_solar", 2, None)
    src.close()


def test_with_a_key_all_planes_come_in_one_call(emu: ForecastEmulator, tmp_path: Path) -> None:
    planes = [
        {"declination": 30, "azimuth": 0, "kwp": 1.0},
        {"declination": 30, "azimuth": 90, "kwp": 2.0},
    ]
    with freeze_time(local(12)):
        src = _source(tmp_path, emu, planes=planes, api_key="personal-key")
        fc = src.forecast(clock.now())
    assert fc is not None and fc.remaining_today_wh == pytest.approx(3 * AFTER_NOON_WH)
    assert [r.path for r in emu.requests] == ["/personal-key/estimate/52.16/4.47/30/0/1/30/90/2"]
    src.close()


def test_fetches_no_more_often_than_refresh_s_plus_jitter(
    emu: ForecastEmulator, tmp_path: Path
) -> None:
    with freeze_time(local(5)) as frozen:
        src = _source(tmp_path, emu, refresh_s=3600, jitter_s=600)
        for _ in range(12 * 60):  # twelve hours of one-minute ticks
            assert src.forecast(clock.now()) is not None
            frozen.tick(60)
    times = [r.at for r in emu.requests]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert 10 <= len(times) <= 12
    assert all(3600 <= g <= 3600 + 600 + 60 for g in gaps), gaps
    assert len(set(gaps)) > 1, "the random delay spreads the calls"
    assert max(emu.calls_in(t, t + 3600) for t in times) <= 2
    src.close()


def test_an_outage_is_bridged_by_the_cache_until_max_age(
    emu: ForecastEmulator, tmp_path: Path
) -> None:
    max_age = 6 * 3600
    with freeze_time(local(6)) as frozen:
        src = _source(tmp_path, emu, max_age_s=max_age)
        fetched = src.forecast(clock.now())
        assert fetched is not None
        emu.stop()  # forecast.solar is gone: connection refused
        for _ in range(max_age // 60):
            frozen.tick(60)
            fc = src.forecast(clock.now())
            assert fc is not None and fc.fetched_at == fetched.fetched_at
        frozen.tick(60)
        assert src.forecast(clock.now()) is None, "too old: the engine runs without a forecast"
    # Retries back off (15, 30, 60, 60 ... min): a handful of attempts, not one a minute.
    assert 4 <= src.calls_total["unreachable"] <= 8
    assert src.last_error is not None and "not reachable" in src.last_error
    src.close()


def test_a_restart_uses_the_stored_forecast_without_calling(
    emu: ForecastEmulator, tmp_path: Path
) -> None:
    store = MemoryStateStore()
    with freeze_time(local(9)) as frozen:
        first = _source(tmp_path, emu, store)
        first.forecast(clock.now())
        first.close()
        frozen.tick(1200)
        second = _source(tmp_path, emu, store)
        fc = second.forecast(clock.now())
    assert fc is not None and len(emu.requests) == 1
    second.close()


def test_a_changed_plane_does_not_use_the_old_planes_cache(
    emu: ForecastEmulator, tmp_path: Path
) -> None:
    store = MemoryStateStore()
    with freeze_time(local(9)):
        _source(tmp_path, emu, store).forecast(clock.now())
        bigger = _source(tmp_path, emu, store, planes=[{"declination": 30, "azimuth": 0, "kwp": 2}])
        assert bigger.cached() is None
        bigger.forecast(clock.now())
    assert len(emu.requests) == 2


def test_429_retry_at_is_honoured_with_no_call_before_it(
    emu: ForecastEmulator, tmp_path: Path
) -> None:
    with freeze_time(local(8)) as frozen:
        src = _source(tmp_path, emu, refresh_s=900)
        assert src.forecast(clock.now()) is not None
        emu.consume(11)  # other machines behind the same IP used up the hour's 12 calls
        frozen.tick(900)
        with pytest.raises(RateLimited) as info:
            src.refresh(clock.now())
        retry_at = info.value.retry_at
        assert retry_at is not None and retry_at == local(9)  # the first call ages out
        calls = len(emu.requests)
        while clock.now() < retry_at:
            fc = src.forecast(clock.now())
            assert fc is not None, "the cached forecast still serves"
            frozen.tick(60)
        assert len(emu.requests) == calls
        frozen.tick(60)
        src.forecast(clock.now())
        assert len(emu.requests) == calls + 1
        assert emu.requests[-1].status == 200
    src.close()


def test_remaining_allowance_zero_stops_calls_before_any_429(tmp_path: Path) -> None:
    emu = ForecastEmulator(day=DAY, public_limit=1)
    try:
        with freeze_time(local(8)) as frozen:
            src = _source(tmp_path, emu, refresh_s=900)
            src.forecast(clock.now())  # answers X-Ratelimit-Remaining: 0
            for _ in range(59):
                frozen.tick(60)
                src.forecast(clock.now())
            assert len(emu.requests) == 1
            frozen.tick(120)
            src.forecast(clock.now())
        assert [r.status for r in emu.requests] == [200, 200]
        assert emu.outcomes[429] == 0
        src.close()
    finally:
        emu.stop()


def test_our_hourly_cap_refuses_a_fetch_it_cannot_finish(
    emu: ForecastEmulator, tmp_path: Path
) -> None:
    planes = [
        {"declination": 30, "azimuth": 0, "kwp": 1.0},
        {"declination": 30, "azimuth": 90, "kwp": 2.0},
    ]
    with freeze_time(local(8)):
        src = _source(tmp_path, emu, planes=planes, hourly_limit=1)
        with pytest.raises(RateLimited, match="2 call"):
            src.refresh(clock.now())
        assert src.forecast(clock.now()) is None
    assert emu.requests == []
    assert src.skipped_total["budget"] >= 1
    src.close()


def test_maintenance_503_keeps_the_cached_forecast(emu: ForecastEmulator, tmp_path: Path) -> None:
    with freeze_time(local(7)) as frozen:
        src = _source(tmp_path, emu)
        first = src.forecast(clock.now())
        emu.mode = "503"
        frozen.tick(3600 + 1)
        fc = src.forecast(clock.now())
        assert fc is not None and first is not None and fc.fetched_at == first.fetched_at
        assert src.calls_total["unreachable"] == 1
    src.close()


def test_an_invalid_plane_is_reported_as_bad_input(emu: ForecastEmulator, tmp_path: Path) -> None:
    emu.mode = "422"
    with freeze_time(local(7)):
        src = _source(tmp_path, emu)
        with pytest.raises(BadResponse, match=r"HTTP 422: Invalid plane \(check forecast"):
            src.refresh(clock.now())
        assert src.forecast(clock.now()) is None
    assert src.calls_total["bad_response"] == 1
    src.close()


def test_forecast_show_prints_remaining_and_hours(
    emu: ForecastEmulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = config_for(tmp_path, forecast=emu)
    cfg_file = write_config(tmp_path, config)
    with freeze_time(local(12)):
        assert main(["forecast", "show", "-c", str(cfg_file)]) == 0
        out = capsys.readouterr().out
        assert f"remaining today: {AFTER_NOON_WH / 1000:.2f} kWh" in out
        assert "2026-06-15 12:00    0.74 kWh" in out
        assert "2026-06-16 07:00" in out  # tomorrow's hours too
        # Shown again from the database cache: no second call.
        assert main(["forecast", "show", "-c", str(cfg_file), "--json"]) == 0
        doc = json.loads(capsys.readouterr().out)
    assert doc["remaining_today_wh"] == AFTER_NOON_WH
    assert doc["usable"] is True
    assert len(emu.requests) == 1


def test_forecast_show_without_network_says_why(
    emu: ForecastEmulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = config_for(tmp_path, forecast=emu)
    cfg_file = write_config(tmp_path, config)
    emu.stop()
    assert main(["forecast", "show", "-c", str(cfg_file)]) == 1
    assert "no forecast: " in capsys.readouterr().out


def test_hours_are_local_hours(emu: ForecastEmulator, tmp_path: Path) -> None:
    with freeze_time(local(12)):
        src = _source(tmp_path, emu)
        src.forecast(clock.now())
        cached = src.cached()
    assert cached is not None
    hours = cached.hourly(DAY, BERLIN)
    assert hours[0][0] == local(6)
    assert sum(wh for _, wh in hours) == pytest.approx(DAY_WH)
    assert dict(hours)[local(11)] == pytest.approx(821)  # the period ending at 12:00
    assert hours[0][0].utcoffset() == timedelta(hours=2)
    src.close()


def test_forecast_show_without_a_usable_database_still_answers(
    emu: ForecastEmulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "state"
    blocker.write_text("")  # where the database's directory should be
    config = config_for(blocker, forecast=emu)
    cfg_file = write_config(tmp_path, config)
    with freeze_time(local(12)):
        assert main(["forecast", "show", "-c", str(cfg_file)]) == 0
    captured = capsys.readouterr()
    assert "the database is not usable" in captured.err
    assert f"remaining today: {AFTER_NOON_WH / 1000:.2f} kWh" in captured.out


def test_the_api_key_in_the_url_never_reaches_a_log_line(
    emu: ForecastEmulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # forecast.solar takes the key in the URL's path: at DEBUG, with every HTTP library's
    # logger talking, no line may show it.
    config = config_for(tmp_path, forecast=emu, forecast_overrides={"api_key": "personal-key"})
    cfg_file = write_config(tmp_path, config)
    with freeze_time(local(12)):
        assert main(["--log-level", "debug", "forecast", "show", "-c", str(cfg_file)]) == 0
    err = capsys.readouterr().err
    assert "DEBUG httpcore" in err
    assert "personal-key" not in err
    assert emu.requests[0].path.startswith("/personal-key/")
