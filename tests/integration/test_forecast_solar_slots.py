"""forecast.solar's shape per 15-minute slot, against the estimate emulator (real HTTP over
127.0.0.1): each hourly or irregular `watt_hours_period` value spread evenly over its period,
today and tomorrow, from the slot at hand on, consistent with the PV still to come today."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from freezegun import freeze_time

from emsctl import clock
from emsctl.adapters.forecast_solar import ForecastSolar
from emsctl.adapters.statestore import MemoryStateStore
from emsctl.model import FORECAST_SLOT_S, Forecast
from tests.support.cloud import config_for
from tests.support.forecast_emulator import ForecastEmulator, fixture_periods

DAY = date(2026, 6, 15)
BERLIN = ZoneInfo("Europe/Berlin")
SLOT = timedelta(seconds=FORECAST_SLOT_S)
TODAY_WH = 6660  # the fixture's watt_hours_day of its first day
TOMORROW_WH = sum(wh for _, wh in fixture_periods(1))


def local(hh: int, mm: int = 0, day: date = DAY) -> datetime:
    return datetime(day.year, day.month, day.day, hh, mm, tzinfo=BERLIN)


@pytest.fixture
def emu() -> Iterator[ForecastEmulator]:
    e = ForecastEmulator(day=DAY)
    yield e
    e.stop()


def _source(tmp_path: Path, emu: ForecastEmulator, **overrides: object) -> ForecastSolar:
    overrides.setdefault("refresh_s", 12 * 3600)
    overrides.setdefault("max_age_s", 12 * 3600)
    config = config_for(tmp_path, forecast=emu, forecast_overrides=dict(overrides))
    return ForecastSolar.from_config(config, MemoryStateStore(), rng=random.Random(7))


def _slot(fc: Forecast, at: datetime) -> float:
    assert fc.slots_start is not None
    k = int((at - fc.slots_start) / SLOT)
    return fc.slot_wh[k]


def _sum(fc: Forecast, start: datetime, end: datetime) -> float:
    """The slots that start in [start, end)."""
    assert fc.slots_start is not None
    lo = max(0, int((start - fc.slots_start) / SLOT))
    hi = int((end - fc.slots_start) / SLOT)
    return sum(fc.slot_wh[lo:hi])


def test_slots_start_at_the_current_slot_and_spread_each_period_evenly(
    emu: ForecastEmulator, tmp_path: Path
) -> None:
    with freeze_time(local(12, 7)):
        src = _source(tmp_path, emu)
        fc = src.forecast(clock.now())
    src.close()
    assert fc is not None
    assert fc.slots_start == local(12).astimezone(UTC)
    assert fc.slots_start.tzinfo == UTC
    # The hourly period 12:00-13:00 (742 Wh) gives each of its quarters a fourth.
    for mm in (0, 15, 30, 45):
        assert _slot(fc, local(12, mm)) == pytest.approx(742 / 4)
    # The last, irregular period 20:00:00-20:59:23 (19 Wh): its last slot holds 14 min 23 s.
    assert _slot(fc, local(20, 45)) == pytest.approx(19 * (14 * 60 + 23) / 3563)
    assert _slot(fc, local(21)) == 0
    # Today's slots, less the 7 minutes of the current one already gone, are what
    # remaining_today says; tomorrow's add up to the fixture's second day.
    today = _sum(fc, local(12), local(0, day=DAY + timedelta(days=1)))
    assert today - 742 / 4 * 7 / 15 == pytest.approx(fc.remaining_today_wh)
    tomorrow = DAY + timedelta(days=1)
    assert _sum(fc, local(0, day=tomorrow), local(0, day=tomorrow + timedelta(days=1))) == (
        pytest.approx(TOMORROW_WH)
    )
    # Nothing beyond the forecast's last period (tomorrow 21:01:05).
    assert fc.slots_start + len(fc.slot_wh) * SLOT <= local(21, 15, tomorrow)


def test_before_sunrise_the_slots_hold_the_whole_day(emu: ForecastEmulator, tmp_path: Path) -> None:
    with freeze_time(local(4)):
        src = _source(tmp_path, emu)
        fc = src.forecast(clock.now())
    src.close()
    assert fc is not None and fc.slots_start == local(4).astimezone(UTC)
    assert fc.slot_wh[0] == 0
    assert _sum(fc, local(4), local(0, day=DAY + timedelta(days=1))) == pytest.approx(TODAY_WH)
    assert sum(fc.slot_wh) == pytest.approx(TODAY_WH + TOMORROW_WH)
    # The sunrise period 06:20:17-07:00:00 (89 Wh) shares out by the seconds in each slot.
    assert _slot(fc, local(6, 15)) == pytest.approx(89 * (60 * 15 - 17 - 5 * 60) / (39 * 60 + 43))


def test_the_slots_move_on_with_the_clock_from_one_fetch(
    emu: ForecastEmulator, tmp_path: Path
) -> None:
    with freeze_time(local(12)) as frozen:
        src = _source(tmp_path, emu)
        first = src.forecast(clock.now())
        frozen.move_to(local(15, 40))
        later = src.forecast(clock.now())
    src.close()
    assert len(emu.requests) == 1
    assert first is not None and later is not None
    assert later.slots_start == local(15, 30).astimezone(UTC)
    assert first.slot_wh[14:] == later.slot_wh  # 14 slots on, the same forecast
    rest = _sum(later, local(15, 30), local(0, day=DAY + timedelta(days=1)))
    assert rest - later.slot_wh[0] * 10 / 15 == pytest.approx(later.remaining_today_wh)


def test_the_planes_slots_add_up(emu: ForecastEmulator, tmp_path: Path) -> None:
    planes = [
        {"declination": 30, "azimuth": 0, "kwp": 1.0},
        {"declination": 30, "azimuth": 90, "kwp": 2.0},
    ]
    with freeze_time(local(12)):
        one = _source(tmp_path, emu)
        single = one.forecast(clock.now())
        three = _source(tmp_path, emu, planes=planes)
        both = three.forecast(clock.now())
    one.close()
    three.close()
    assert single is not None and both is not None
    assert len(both.slot_wh) == len(single.slot_wh)
    for a, b in zip(single.slot_wh, both.slot_wh, strict=True):
        assert b == pytest.approx(3 * a)
