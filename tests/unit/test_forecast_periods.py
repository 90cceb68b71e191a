"""Energy arithmetic over forecast.solar's irregular `watt_hours_period` series."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from emsctl.adapters.base import BadResponse
from emsctl.adapters.forecast_solar import CachedForecast, parse_estimate
from emsctl.adapters.viessmann import DhwTarget

BERLIN = ZoneInfo("Europe/Berlin")


def _fc(*series: list[tuple[str, float]]) -> CachedForecast:
    return CachedForecast(
        fetched_at=datetime(2026, 3, 29, 0, 0, tzinfo=UTC),
        series=tuple(tuple((datetime.fromisoformat(t), wh) for t, wh in s) for s in series),
    )


def test_periods_start_at_the_previous_timestamp_of_the_same_day() -> None:
    fc = _fc(
        [
            ("2026-06-01T05:20:00+02:00", 0),
            ("2026-06-01T06:00:00+02:00", 40),  # 40 min long
            ("2026-06-01T07:00:00+02:00", 120),
            ("2026-06-02T05:21:00+02:00", 0),  # a new day: no period across the night
            ("2026-06-02T06:00:00+02:00", 39),
        ]
    )
    at = datetime(2026, 6, 1, 5, 40, tzinfo=BERLIN)
    assert fc.energy_between(at, at + timedelta(minutes=10)) == pytest.approx(10)
    night = datetime(2026, 6, 1, 22, 0, tzinfo=BERLIN)
    assert fc.energy_between(night, night + timedelta(hours=7)) == pytest.approx(0)
    assert fc.remaining_today(at, BERLIN) == pytest.approx(20 + 120)


def test_remaining_today_is_none_when_the_forecast_has_no_today() -> None:
    fc = _fc([("2026-06-01T12:00:00+02:00", 100)])
    assert fc.remaining_today(datetime(2026, 6, 2, 8, 0, tzinfo=BERLIN), BERLIN) is None


def test_dst_day_has_23_local_hours_and_loses_no_energy() -> None:
    # 29 March 2026: clocks go from 02:00 to 03:00 in Berlin.
    fc = _fc(
        [
            ("2026-03-29T00:00:00+01:00", 0),
            ("2026-03-29T04:00:00+02:00", 100),  # 00:00 CET .. 04:00 CEST is 3 real hours
        ]
    )
    hours = fc.hourly(date(2026, 3, 29), BERLIN)
    assert [t.hour for t, _ in hours] == [0, 1, 3]
    assert sum(wh for _, wh in hours) == pytest.approx(100)


def test_several_series_add_up() -> None:
    a = [("2026-06-01T11:00:00+02:00", 0), ("2026-06-01T12:00:00+02:00", 300)]
    b = [("2026-06-01T11:00:00+02:00", 0), ("2026-06-01T12:00:00+02:00", 100)]
    fc = _fc(a, b)
    at = datetime(2026, 6, 1, 11, 30, tzinfo=BERLIN)
    assert fc.remaining_today(at, BERLIN) == pytest.approx(200)
    assert CachedForecast.from_json(fc.to_json()) == fc


def test_zone_less_timestamps_are_read_in_the_locations_zone() -> None:
    doc = {
        "result": {"watt_hours_period": {"2026-06-01 12:00:00": 5, "2026-06-01 13:00:00": 7}},
        "message": {"code": 0, "info": {"timezone": "Europe/Lisbon", "place": "Lisboa"}},
    }
    points, place = parse_estimate(doc, BERLIN)
    assert place == "Lisboa"
    assert points[0][0] == datetime(2026, 6, 1, 11, 0, tzinfo=UTC)
    assert [wh for _, wh in points] == [5, 7]


@pytest.mark.parametrize(
    "doc",
    [
        None,
        {"result": "Rate limit for API calls reached."},
        {"result": {"watts": {}}},
        {"result": {"watt_hours_period": {"yesterday": 5}}},
    ],
)
def test_replies_without_usable_periods_are_bad_responses(doc: object) -> None:
    with pytest.raises(BadResponse):
        parse_estimate(doc, BERLIN)


def test_dhw_targets_are_clamped_to_range_and_stepping() -> None:
    t = DhwTarget(50, 10, 60, 1, True, datetime(2026, 1, 1, tzinfo=UTC))
    assert [t.clamp(v) for v in (65, 5, 48.6, 52.4, 60)] == [60, 10, 49, 52, 60]
    half = DhwTarget(50, 10, 60, 0.5, True, datetime(2026, 1, 1, tzinfo=UTC))
    assert half.clamp(52.3) == 52.5
