"""The simulated PV forecast: the scenario's own PV per 15-minute slot, today and tomorrow,
issued every `forecast.refresh_s` like the cached forecast.solar one, and as wrong as a real
day-ahead forecast when `sim.forecast_error` > 0.

Error model (log errors, each seeded by `sim.forecast_seed` and the local date alone, so a
replay that skips ticks sees the same forecasts as one that asks every minute):

- Day: a day ahead, the whole local day is off by one factor exp(s*z - s^2/2), z standard
  normal, s = `sim.forecast_error`: log-normal with mean 1 and spread s.
- Shape: on top of it each local hour has an error s_h*x(hour), s_h =
  `sim.forecast_shape_error`, x an AR(1) process of unit variance with a correlation time of
  SHAPE_CORRELATION_H hours. The shape errors are normalised per day so that a day-ahead
  forecast's daily total is off by the day factor alone: they move energy between the hours,
  and `forecast_error` keeps meaning the spread of the daily energy error.
- Lead time: a forecast issued at time t for a slot whose middle is L hours later carries the
  fraction w(L) of both log errors: w(L)^2 = 1 - (1 - NOWCAST_VARIANCE_SHARE) *
  exp(-L / LEAD_TIME_H): 0.95 at 12 h, 0.99 at 24 h; for the slot at hand the error
  variance is NOWCAST_VARIANCE_SHARE of the day-ahead one. Each refresh is such an intraday
  update: the same error, shrunk as its slot comes nearer (a forecast never changes its mind,
  it only gets closer to the truth). The day part stays exactly mean 1 at any w; the shape
  part is mean 1 at w = 1 (per day) and w = 0; in between it errs low by about
  w(1 - w)*s_h^2/2 of the energy (under 1 % with the defaults).

Issue times lie on a grid of `forecast.refresh_s` from the scenario's start (at most the 15
minutes in which forecast.solar's data can change), never on the ticks that asked.
"""

from __future__ import annotations

import logging
import math
import random
from array import array
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from itertools import accumulate

from emsctl.config import Config
from emsctl.model import FORECAST_SLOT_S, Forecast
from emsctl.sim.scenario import Scenario

log = logging.getLogger(__name__)

SLOT_MIN = FORECAST_SLOT_S // 60
#: Correlation time of the hourly shape errors (AR(1) on the log error per hour), hours.
SHAPE_CORRELATION_H = 3.0
#: The share of a day-ahead forecast's error variance still left for the slot just ahead.
NOWCAST_VARIANCE_SHARE = 0.25
#: The time constant with which that variance grows to the day-ahead one, hours.
LEAD_TIME_H = 6.0


def lead_weight(lead_h: float) -> float:
    """The fraction of the day-ahead (log) error that a forecast `lead_h` hours ahead keeps."""
    lead = max(0.0, lead_h)
    return math.sqrt(1.0 - (1.0 - NOWCAST_VARIANCE_SHARE) * math.exp(-lead / LEAD_TIME_H))


def shape_process(rng: random.Random, hours: int) -> list[float]:
    """`hours` values of an AR(1) process of unit variance (correlation time
    SHAPE_CORRELATION_H), started from its stationary distribution."""
    phi = math.exp(-1.0 / SHAPE_CORRELATION_H)
    innovation = math.sqrt(1.0 - phi * phi)
    x = [rng.gauss(0.0, 1.0)]
    for _ in range(hours - 1):
        x.append(phi * x[-1] + innovation * rng.gauss(0.0, 1.0))
    return x


@dataclass(slots=True)
class _Day:
    """One local day's errors: the day's standard normal and the normalised log shape error
    of each of its slots (from the day's first slot, local midnight)."""

    z: float
    shape: list[float]


@dataclass(slots=True)
class _Issue:
    """One issued forecast: slot energies from slot `first` (indices from the slot grid's
    origin) to the end of tomorrow, the factor of each against the truth, and their running
    sums (for the PV still to come today)."""

    at: datetime
    first: int
    wh: list[float]
    factors: list[float] | None
    sums: list[float]
    #: The slots from the last asked slot on, as handed out: (slot, its start, the tuple).
    view: tuple[int, datetime, tuple[float, ...]] | None = field(default=None)


class SimForecast:
    """The ForecastSource of the simulator (see the module docstring for its errors)."""

    def __init__(self, scenario: Scenario, config: Config) -> None:
        self.minutes = scenario.minutes
        self.tz = config.control.tz
        self.refresh_s = float(config.forecast.refresh_s)
        self.error = config.sim.forecast_error
        self.shape_error = config.sim.forecast_shape_error
        self.seed = config.sim.forecast_seed
        pv = scenario.values["pv_w"]
        # Wh of PV from the scenario start to the start of each minute.
        self._cum = array("d", [0.0, *accumulate(w / 60.0 for w in pv)])
        self._set_start(scenario.start)

    # ------------------------------------------------------------------ grid

    def _set_start(self, start: datetime) -> None:
        self.start = start
        # Slots are FORECAST_SLOT_S long on the UTC grid; slot 0 starts at or before `start`.
        epoch = start.timestamp()
        self._off_min = int((epoch % FORECAST_SLOT_S) // 60)
        self._slot0 = datetime.fromtimestamp(epoch - self._off_min * 60, UTC)
        cum = self._cum
        n = self.minutes

        def at(slot: int) -> float:
            return cum[min(n, max(0, slot * SLOT_MIN - self._off_min))]

        count = -(-(n + self._off_min) // SLOT_MIN)
        self._truth = [at(j + 1) - at(j) for j in range(count)]
        self._issue: tuple[int, _Issue] | None = None
        self._midnights: dict[date, int] = {}
        self._days: dict[date, _Day] = {}
        self._today = (0, -1)  # minute indices [local midnight, next local midnight)

    def next_lap(self, shift: timedelta) -> None:
        """The scenario's days start again `shift` later (the demo loops): forecast anew."""
        self._set_start(self.start + shift)

    def _index(self, seconds: float) -> int:
        i = int(seconds // 60)
        return max(0, min(self.minutes, i))

    def _midnight_slot(self, day: date) -> int:
        """The slot that starts at `day`'s local midnight."""
        m = self._midnights.get(day)
        if m is None:
            midnight = datetime.combine(day, time(0), self.tz)
            m = int((midnight - self._slot0).total_seconds() // FORECAST_SLOT_S)
            if len(self._midnights) > 16:
                self._midnights.clear()
            self._midnights[day] = m
        return m

    def _local_midnight(self, day: date) -> int:
        """The minute index of `day`'s local midnight (clamped to the scenario)."""
        midnight = datetime.combine(day, time(0), self.tz)
        return self._index((midnight - self.start).total_seconds())

    def _minute_of_slot(self, slot: int) -> int:
        return max(0, min(self.minutes, slot * SLOT_MIN - self._off_min))

    # ------------------------------------------------------------------ errors

    def _z(self, day: date) -> float:
        return random.Random(f"{self.seed}:{day.isoformat()}").gauss(0.0, 1.0)

    def factor(self, day: date) -> float:
        """A day-ahead forecast's factor on `day`'s energy: seeded by the day itself, so it does
        not depend on which ticks asked (a replay skipping quiet ticks sees the same)."""
        s = self.error
        return math.exp(s * self._z(day) - s * s / 2.0) if s > 0 else 1.0

    def _day(self, day: date) -> _Day:
        d = self._days.get(day)
        if d is None:
            if len(self._days) > 8:
                self._days.clear()
            d = self._days[day] = self._make_day(day)
        return d

    def _make_day(self, day: date) -> _Day:
        first = self._midnight_slot(day)
        n = self._midnight_slot(day + timedelta(days=1)) - first
        s = self.shape_error
        if s <= 0:
            return _Day(self._z(day), [0.0] * n)
        hours = -(-n * SLOT_MIN // 60)
        x = shape_process(random.Random(f"{self.seed}:{day.isoformat()}:shape"), max(1, hours))
        raw = [s * x[k * SLOT_MIN // 60] for k in range(n)]
        truth = self._truth
        total = weighted = 0.0
        for k, e in enumerate(raw):
            j = first + k
            if 0 <= j < len(truth):
                total += truth[j]
                weighted += truth[j] * math.exp(e)
        norm = math.log(weighted / total) if total > 0 else 0.0
        return _Day(self._z(day), [e - norm for e in raw])

    # ------------------------------------------------------------------ issues

    def _issued(self, grid: int) -> _Issue:
        cached = self._issue
        if cached is not None and cached[0] == grid:
            return cached[1]
        at = self.start + timedelta(seconds=grid * self.refresh_s)
        since = (at - self._slot0).total_seconds()
        first = max(0, int(since // FORECAST_SLOT_S))
        today = at.astimezone(self.tz).date()
        ends = [self._midnight_slot(today + timedelta(days=n)) for n in (1, 2)]
        end = min(ends[1], len(self._truth))
        truth = self._truth[first:end] if first < end else []
        if self.error > 0 and truth:
            wh, factors = self._noisy(first, since, today, ends, truth)
        else:
            wh, factors = truth, None
        issue = _Issue(at, first, wh, factors, [0.0, *accumulate(wh)])
        self._issue = (grid, issue)
        return issue

    def _noisy(
        self, first: int, since: float, today: date, ends: list[int], truth: list[float]
    ) -> tuple[list[float], list[float]]:
        """The issued slot energies and their factors against the truth."""
        sigma = self.error
        wh: list[float] = []
        factors: list[float] = []
        err = self._day(today)
        base = self._midnight_slot(today)
        for k, p in enumerate(truth):
            j = first + k
            if j == ends[0]:
                err, base = self._day(today + timedelta(days=1)), ends[0]
            if p <= 0:
                wh.append(0.0)
                factors.append(1.0)
                continue
            w = lead_weight(((j + 0.5) * FORECAST_SLOT_S - since) / 3600.0)
            sw = w * sigma
            f = math.exp(sw * err.z - sw * sw / 2.0 + w * err.shape[j - base])
            wh.append(p * f)
            factors.append(f)
        return wh, factors

    # ------------------------------------------------------------------ ForecastSource

    def forecast(self, now: datetime) -> Forecast | None:
        seconds = (now - self.start).total_seconds()
        issue = self._issued(math.floor(seconds / self.refresh_s))
        i = self._index(seconds)
        slot = (i + self._off_min) // SLOT_MIN
        view = issue.view
        if view is None or view[0] != slot:
            k = max(0, slot - issue.first)
            start = self._slot0 + timedelta(seconds=(issue.first + k) * FORECAST_SLOT_S)
            view = issue.view = (slot, start, tuple(issue.wh[k:]))
        lo, midnight = self._today
        if not lo <= i < midnight:
            day = now.astimezone(self.tz).date()
            lo = self._local_midnight(day)
            midnight = self._local_midnight(day + timedelta(days=1))
            self._today = (lo, midnight)
        cum = self._cum
        if issue.factors is None:
            remaining = cum[midnight] - cum[i]
        else:
            remaining = self._remaining(issue, i, slot, midnight)
        return Forecast(
            fetched_at=issue.at,
            remaining_today_wh=remaining,
            slots_start=view[1],
            slot_wh=view[2],
        )

    def _remaining(self, issue: _Issue, i: int, slot: int, midnight: int) -> float:
        """Today's remaining slots of the issue, the current one from minute `i` on (its true
        profile within the slot, times the slot's factor)."""
        factors = issue.factors
        assert factors is not None
        k = slot - issue.first
        n = len(issue.wh)
        if not 0 <= k < n:
            return 0.0
        cum = self._cum
        slot_end = self._minute_of_slot(slot + 1)
        partial = factors[k] * (cum[min(slot_end, midnight)] - cum[i])
        last = min(n, -(-(midnight + self._off_min) // SLOT_MIN) - issue.first)
        rest = issue.sums[last] - issue.sums[k + 1] if last > k + 1 else 0.0
        return partial + rest
