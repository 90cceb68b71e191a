"""The simulated forecast's shape (15-minute slots, today and tomorrow) and its errors: exact
with `sim.forecast_error` 0; otherwise a daily factor, correlated hourly shape errors and an
error that shrinks with lead time, all seeded per day and never by the ticks that asked."""

from __future__ import annotations

import math
import random
import statistics
from array import array
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from emsctl.config import parse_config
from emsctl.model import FORECAST_SLOT_S, Forecast
from emsctl.sim.adapters import SimForecast
from emsctl.sim.forecast import NOWCAST_VARIANCE_SHARE, SHAPE_CORRELATION_H, lead_weight
from emsctl.sim.forecast import SimForecast as SimForecastImpl
from emsctl.sim.scenario import Scenario

BERLIN = ZoneInfo("Europe/Berlin")
SLOT = timedelta(seconds=FORECAST_SLOT_S)
#: Local midnight of 1 April 2026 (CEST all through the days used here).
START = datetime(2026, 4, 1, tzinfo=BERLIN).astimezone(UTC)


def pv(minute_of_day: int) -> float:
    """A clear day from 06:00 to 20:00 local, 5 kW at its peak."""
    m = minute_of_day - 360
    return 5000.0 * math.sin(math.pi * m / 840) if 0 <= m < 840 else 0.0


def year(days: int, start: datetime = START) -> Scenario:
    values = array("d", (pv(i % 1440) for i in range(days * 1440)))
    return Scenario(name="clear", source="test", start=start, values={"pv_w": values})


def sim(scn: Scenario, error: float = 0.0, **sim_cfg: Any) -> SimForecast:
    cfg: dict[str, Any] = {
        "control": {"timezone": "Europe/Berlin"},
        "forecast": {"enabled": True, **sim_cfg.pop("forecast", {})},
        "sim": {"forecast_error": error, **sim_cfg},
    }
    return SimForecast(scn, parse_config(cfg))


def local(day: int, hh: int = 0, mm: int = 0) -> datetime:
    """Local time `hh:mm` on day `day` of the scenario."""
    d = date(2026, 4, 1) + timedelta(days=day)
    return datetime(d.year, d.month, d.day, hh, mm, tzinfo=BERLIN)


def day_slots(fc: Forecast, day: int) -> list[float]:
    """The 96 slots of scenario day `day` in `fc`."""
    assert fc.slots_start is not None
    k = int((local(day) - fc.slots_start) / SLOT)
    assert k >= 0
    return list(fc.slot_wh[k : k + 96])


def truth_slots(day: int) -> list[float]:
    return [sum(pv(s * 15 + m) / 60.0 for m in range(15)) for s in range(96)]


def asked(fc: SimForecast, at: datetime) -> Forecast:
    got = fc.forecast(at)
    assert got is not None
    return got


def test_the_sims_forecast_class_is_the_adapters() -> None:
    assert SimForecast is SimForecastImpl


def test_with_error_0_the_slots_are_the_scenarios_pv_today_and_tomorrow() -> None:
    scn = year(4)
    fc = sim(scn)
    f = asked(fc, local(1, 9, 7))
    assert f.slots_start == local(1, 9).astimezone(UTC)
    assert f.slots_start is not None and f.slots_start.tzinfo == UTC
    # From the current slot to the end of tomorrow, nothing more.
    assert f.slots_start + len(f.slot_wh) * SLOT == local(3).astimezone(UTC)
    assert sum(day_slots(f, 2)) == pytest.approx(sum(pv(m) for m in range(1440)) / 60)
    assert day_slots(f, 2) == pytest.approx(truth_slots(2))
    # Today's remaining slots, less the 7 minutes gone of the current one, are the exact
    # remainder (bit for bit what it was before the slots existed: the minutes' sum).
    cum = [0.0]
    for w in scn.values["pv_w"]:
        cum.append(cum[-1] + w / 60.0)
    now = int((local(1, 9, 7) - START) / timedelta(minutes=1))
    end = int((local(2) - START) / timedelta(minutes=1))
    assert f.remaining_today_wh == cum[end] - cum[now]
    gone = cum[now] - cum[now - 7]
    today = sum(f.slot_wh[: int((local(2) - local(1, 9)) / SLOT)])
    assert today - gone == pytest.approx(f.remaining_today_wh)


def test_the_slots_end_with_the_scenario() -> None:
    scn = year(2)
    f = asked(sim(scn), local(1, 12))
    assert f.slots_start is not None
    assert f.slots_start + len(f.slot_wh) * SLOT == scn.end


def test_noisy_remaining_is_todays_remaining_slots_with_the_current_one_cut() -> None:
    scn = year(3)
    fc = sim(scn, 0.35)
    for hh, mm in ((5, 0), (9, 7), (13, 44), (19, 59), (23, 30)):
        f = asked(fc, local(1, hh, mm))
        assert f.slots_start is not None
        today = int((local(2) - f.slots_start) / SLOT)
        # The current slot's forecast spread like the true PV within it.
        k = int((local(1, hh, mm) - START) / timedelta(minutes=1))
        s0 = k - mm % 15
        true_slot = sum(scn.values["pv_w"][s0 : s0 + 15]) / 60
        true_left = sum(scn.values["pv_w"][k : s0 + 15]) / 60
        cut = f.slot_wh[0] * (true_left / true_slot) if true_slot > 0 else 0.0
        assert f.remaining_today_wh == pytest.approx(cut + sum(f.slot_wh[1:today]))


def test_the_forecasts_do_not_depend_on_which_ticks_asked() -> None:
    scn = year(5)
    every = sim(scn, 0.35)
    some = sim(scn, 0.35)
    rng = random.Random(3)
    minutes = sorted(rng.sample(range(5 * 1440), 300))
    by_minute = {i: asked(every, START + timedelta(minutes=i)) for i in range(5 * 1440)}
    for i in minutes:
        got = asked(some, START + timedelta(minutes=i))
        assert got == by_minute[i]
    # Backwards, too (the forecaster keeps no state that the order of asking changes).
    for i in reversed(minutes[::7]):
        assert asked(some, START + timedelta(minutes=i)) == by_minute[i]


def test_another_seed_gives_other_errors_and_error_0_none() -> None:
    scn = year(3)
    at = local(1, 12)
    a = day_slots(asked(sim(scn, 0.35, forecast_seed=1), at), 2)
    b = day_slots(asked(sim(scn, 0.35, forecast_seed=2), at), 2)
    exact = day_slots(asked(sim(scn, 0.0, forecast_seed=1), at), 2)
    assert a != pytest.approx(b)
    assert exact == pytest.approx(truth_slots(2))
    assert a != pytest.approx(exact)


def _day_ahead_errors(fc: SimForecast, days: int) -> tuple[list[float], list[list[float]]]:
    """Per day from the second: the log error of the day's energy as forecast at 12:00 the day
    before, and the log errors of its hours between 08:00 and 18:00 less the day's."""
    truth = truth_slots(0)
    daily: list[float] = []
    hourly: list[list[float]] = []
    for d in range(1, days):
        got = day_slots(asked(fc, local(d - 1, 12)), d)
        day = math.log(sum(got) / sum(truth))
        daily.append(day)
        hours = []
        for h in range(8, 18):
            f = sum(got[h * 4 : h * 4 + 4])
            t = sum(truth[h * 4 : h * 4 + 4])
            hours.append(math.log(f / t) - day)
        hourly.append(hours)
    return daily, hourly


def _within_day() -> tuple[float, float]:
    """The spread of a unit AR(1) hour (08:00 to 18:00) less the day's PV-weighted mean, and
    the correlation of two such neighbouring hours."""
    phi = math.exp(-1 / SHAPE_CORRELATION_H)
    truth = truth_slots(0)
    hours = [sum(truth[h * 4 : h * 4 + 4]) for h in range(24)]
    a = [p / sum(hours) for p in hours]

    def rho(i: int, j: int) -> float:
        return float(phi ** abs(i - j))

    mean_var = sum(a[i] * a[j] * rho(i, j) for i in range(24) for j in range(24))
    with_mean = [sum(a[i] * rho(h, i) for i in range(24)) for h in range(24)]

    def cov(g: int, h: int) -> float:
        return rho(g, h) - with_mean[g] - with_mean[h] + mean_var

    var = statistics.fmean(cov(h, h) for h in range(8, 18))
    lag1 = statistics.fmean(cov(h, h + 1) for h in range(8, 17))
    return math.sqrt(var), lag1 / var


def test_a_day_ahead_the_daily_error_has_the_configured_spread_and_mean_one() -> None:
    days = 200
    fc = sim(year(days), 0.35)
    daily, hourly = _day_ahead_errors(fc, days)
    factors = [math.exp(x) for x in daily]
    assert statistics.fmean(factors) == pytest.approx(1.0, abs=0.06)
    # Leads of 18 to 32 hours (the daylight hours) keep 98 to 100 % of the error.
    assert statistics.pstdev(daily) == pytest.approx(0.35 * 0.99, rel=0.12)
    # The hours' shape errors: forecast_shape_error times an AR(1) less its day's mean (the
    # shape moves energy within the day), correlated over hours.
    share, neighbours = _within_day()
    within = [x for hours in hourly for x in hours]
    assert statistics.pstdev(within) == pytest.approx(0.25 * share, rel=0.15)
    lag1 = [(h[i], h[i + 1]) for h in hourly for i in range(len(h) - 1)]
    corr = statistics.correlation([a for a, _ in lag1], [b for _, b in lag1])
    assert corr == pytest.approx(neighbours, abs=0.12)


def test_without_shape_error_the_day_is_off_by_its_factor_alone() -> None:
    fc = sim(year(3), 0.35, forecast_shape_error=0)
    got = day_slots(asked(fc, local(1, 12)), 2)
    ratios = [g / t for g, t in zip(got, truth_slots(2), strict=True) if t > 0]
    assert max(ratios) == pytest.approx(min(ratios), rel=0.02)  # one factor, lead aside
    assert fc.factor(date(2026, 4, 3)) == pytest.approx(ratios[len(ratios) // 2], rel=0.02)


def test_a_forecast_for_the_next_hour_errs_less_than_one_for_tomorrow() -> None:
    days = 120
    fc = sim(year(days), 0.35)
    truth = truth_slots(0)
    near: list[float] = []
    far: list[float] = []
    for d in range(1, days):
        for hh in (10, 13, 16):
            slot = hh * 4
            today = asked(fc, local(d, hh))  # issued on the hour: the slot is 0-15 min ahead
            yesterday = asked(fc, local(d - 1, hh))  # issued 24 h before
            assert today.slots_start == local(d, hh).astimezone(UTC)
            near.append(math.log(today.slot_wh[0] / truth[slot]))
            far.append(math.log(day_slots(yesterday, d)[slot] / truth[slot]))
    ratio = statistics.pstdev(near) / statistics.pstdev(far)
    expected = lead_weight(0.125) / lead_weight(24.125)
    assert expected == pytest.approx(math.sqrt(NOWCAST_VARIANCE_SHARE), abs=0.03)
    assert ratio == pytest.approx(expected, abs=0.08)


def test_lead_weight_grows_to_the_day_ahead_error() -> None:
    w = [lead_weight(h) for h in (0, 1, 3, 6, 12, 24, 36)]
    assert w == sorted(w)
    assert w[0] == pytest.approx(math.sqrt(NOWCAST_VARIANCE_SHARE))
    assert w[-2] > 0.99
    assert lead_weight(-5) == w[0]


@pytest.mark.parametrize("refresh_s", [900, 3600])
def test_a_forecast_is_issued_every_refresh_s_and_holds_until_the_next(refresh_s: int) -> None:
    scn = year(2)
    fc = sim(scn, 0.35, forecast={"refresh_s": refresh_s})
    target = local(1, 15)  # the forecast for 15:00-15:15 on day 1
    seen: dict[datetime, float] = {}
    for i in range(1440, 1440 + 15 * 60):  # day 1, 00:00 to 15:00, every minute
        now = START + timedelta(minutes=i)
        f = asked(fc, now)
        assert f.fetched_at <= now < f.fetched_at + timedelta(seconds=refresh_s)
        assert (f.fetched_at - START).total_seconds() % refresh_s == 0
        assert f.slots_start is not None
        value = f.slot_wh[int((target - f.slots_start) / SLOT)]
        assert seen.setdefault(f.fetched_at, value) == value  # fixed between refreshes
    assert len(seen) == 15 * 3600 // refresh_s
    assert len(set(seen.values())) == len(seen)  # each refresh updates it


def test_a_looping_demo_forecasts_its_new_days() -> None:
    scn = year(2)
    fc = sim(scn, 0.35)
    before = asked(fc, local(1, 12))
    fc.next_lap(timedelta(days=2))
    after = asked(fc, local(3, 12))
    assert after.slots_start == local(3, 12).astimezone(UTC)
    assert after.fetched_at == local(3, 12).astimezone(UTC)
    assert len(after.slot_wh) == len(before.slot_wh)
