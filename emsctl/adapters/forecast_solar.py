"""forecast.solar: PV energy still expected today, for the engine's strategic layer (rule 14),
and the forecast's shape per 15-minute slot (today and tomorrow) for planning.

Fetches the estimate for the configured planes at most every refresh_s (plus a random delay),
within the free tier's hourly limit and the server's rate-limit headers, and caches it in
the store: during an outage the cached forecast serves while younger than max_age_s, after
that the engine runs without one.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import random
import threading
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import httpx

from emsctl import __version__
from emsctl.adapters import deadline
from emsctl.adapters.base import (
    AdapterError,
    AuthFailed,
    BadResponse,
    DeviceUnreachable,
    RateLimited,
)
from emsctl.adapters.budget import CallBudget, Window
from emsctl.adapters.statestore import StateStore
from emsctl.config import Config, ForecastConfig
from emsctl.model import FORECAST_SLOT_S, Forecast

log = logging.getLogger(__name__)

DEVICE = "forecast.solar"
#: Free tier: 12 calls an hour per IP address; a personal key: 60.
PUBLIC_HOURLY_LIMIT = 12
KEY_HOURLY_LIMIT = 60
#: When the server says we are limited but names no time.
DEFAULT_BLOCK = timedelta(hours=1)

#: One plane's `watt_hours_period`: (end of the period, Wh produced in it), sorted by time.
Series = tuple[tuple[datetime, float], ...]


@dataclass(frozen=True, slots=True)
class CachedForecast:
    """A fetched forecast: one `watt_hours_period` series per request (plane or plane set).

    Each value is the energy of the period that ends at its timestamp and starts at the
    previous timestamp of the same day; timestamps are irregular at sunrise and sunset.
    """

    fetched_at: datetime
    series: tuple[Series, ...]
    place: str | None = None

    def energy_between(self, start: datetime, end: datetime) -> float:
        """Wh expected in [start, end), periods cut proportionally at the edges."""
        total = 0.0
        for points in self.series:
            prev: datetime | None = None
            for ts, wh in points:
                begin = prev if prev is not None and prev.date() == ts.date() else ts
                prev = ts
                if wh <= 0:
                    continue
                if begin >= ts:
                    # A point without a period (first value of a day): count it where it is.
                    if start <= ts < end:
                        total += wh
                    continue
                lo, hi = max(begin, start), min(ts, end)
                if hi > lo:
                    total += wh * (hi - lo).total_seconds() / (ts - begin).total_seconds()
        return total

    def slot_energies(self, start: datetime, count: int) -> list[float]:
        """Wh expected in each of `count` FORECAST_SLOT_S slots from `start`.

        Each `watt_hours_period` value is spread evenly over its period (constant power from
        the previous timestamp to its own), exactly as `energy_between` cuts periods, so
        today's slots from the current one on add up to `remaining_today` plus the part of the
        current slot already gone. A value without a period counts in the slot of its time.
        """
        out = [0.0] * count
        t0 = start.timestamp()
        for points in self.series:
            prev: datetime | None = None
            for ts, wh in points:
                begin = prev if prev is not None and prev.date() == ts.date() else ts
                prev = ts
                if wh > 0:
                    _spread(out, t0, begin.timestamp(), ts.timestamp(), wh)
        return out

    def slot_span(self) -> tuple[datetime, int]:
        """The first slot (UTC) that holds energy, or the slot of `fetched_at` if earlier, and
        the number of slots to the end of the last period."""
        times = [ts for points in self.series for ts, _ in points]
        first = min([self.fetched_at, *times]).timestamp()
        last = max([self.fetched_at, *times]).timestamp()
        lo = math.floor(first / FORECAST_SLOT_S)
        hi = math.floor(last / FORECAST_SLOT_S) + 1
        return datetime.fromtimestamp(lo * FORECAST_SLOT_S, UTC), hi - lo

    def days(self, tz: tzinfo) -> set[date]:
        return {ts.astimezone(tz).date() for points in self.series for ts, _ in points}

    def remaining_today(self, now: datetime, tz: tzinfo) -> float | None:
        """Wh from `now` to local midnight; None when the forecast says nothing about today."""
        today = now.astimezone(tz).date()
        if today not in self.days(tz):
            return None
        midnight = datetime.combine(today + timedelta(days=1), time(0), tz)
        return self.energy_between(now, midnight)

    def hourly(self, day: date, tz: tzinfo) -> list[tuple[datetime, float]]:
        """Wh per local hour of `day` (hours without PV are left out)."""
        out: list[tuple[datetime, float]] = []
        start = datetime.combine(day, time(0), tz)
        for h in range(25):
            # Walk in UTC so a DST day gets its 23 or 25 hours.
            t0 = (start.astimezone(UTC) + timedelta(hours=h)).astimezone(tz)
            if t0.date() != day:
                break
            wh = self.energy_between(t0, t0 + timedelta(hours=1))
            if wh > 0.5:
                out.append((t0, wh))
        return out

    def to_json(self) -> str:
        return json.dumps(
            {
                "fetched_at": self.fetched_at.isoformat(),
                "place": self.place,
                "series": [[[ts.isoformat(), wh] for ts, wh in points] for points in self.series],
            },
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, text: str) -> CachedForecast:
        d = json.loads(text)
        return cls(
            fetched_at=datetime.fromisoformat(d["fetched_at"]),
            place=d.get("place"),
            series=tuple(
                tuple((datetime.fromisoformat(ts), float(wh)) for ts, wh in points)
                for points in d["series"]
            ),
        )


def _spread(out: list[float], t0: float, begin: float, end: float, wh: float) -> None:
    """Add `wh`, produced at constant power over [begin, end), to the slots of `out` (slot 0
    starting at `t0`); a period without length counts in the slot of `end`."""
    slot = FORECAST_SLOT_S
    if begin >= end:
        k = math.floor((end - t0) / slot)
        if 0 <= k < len(out):
            out[k] += wh
        return
    rate = wh / (end - begin)
    k = max(0, math.floor((begin - t0) / slot))
    while k < len(out):
        lo = max(begin, t0 + k * slot)
        hi = min(end, t0 + (k + 1) * slot)
        if hi <= lo:
            break
        out[k] += rate * (hi - lo)
        k += 1


def parse_estimate(doc: Any, fallback_tz: tzinfo) -> tuple[Series, str | None]:
    """The `watt_hours_period` series and place of one estimate reply."""
    if not isinstance(doc, dict) or not isinstance(doc.get("result"), dict):
        raise BadResponse("estimate reply has no 'result' object", device=DEVICE)
    periods = doc["result"].get("watt_hours_period")
    if not isinstance(periods, dict):
        raise BadResponse("estimate reply has no result.watt_hours_period", device=DEVICE)
    info = (doc.get("message") or {}).get("info") or {}
    tz = fallback_tz
    if isinstance(info.get("timezone"), str):
        # An unknown zone name leaves the configured zone in place.
        with contextlib.suppress(ZoneInfoNotFoundError, ValueError):
            tz = ZoneInfo(info["timezone"])
    points: list[tuple[datetime, float]] = []
    for key, value in periods.items():
        try:
            ts = datetime.fromisoformat(str(key).replace(" ", "T"))
            wh = float(value)
        except (TypeError, ValueError):
            raise BadResponse(
                f"watt_hours_period entry {key!r}: {value!r} is not a time and a number",
                device=DEVICE,
            ) from None
        if ts.tzinfo is None:
            # The API's default time format has no zone: it is the location's local time.
            ts = ts.replace(tzinfo=tz)
        points.append((ts, wh))
    points.sort(key=lambda p: p[0])
    place = info.get("place") if isinstance(info.get("place"), str) else None
    return tuple(points), place


def _retry_at(resp: httpx.Response, doc: Any) -> datetime | None:
    text = resp.headers.get("X-Ratelimit-Retry-At")
    if not text and isinstance(doc, dict):
        rl = (doc.get("message") or {}).get("ratelimit") or {}
        text = rl.get("retry-at") if isinstance(rl, dict) else None
    if not text:
        return None
    try:
        at = datetime.fromisoformat(str(text).replace(" ", "T"))
    except ValueError:
        return None
    return at if at.tzinfo else at.replace(tzinfo=UTC)


class ForecastSolar:
    """The ForecastSource for the engine, with the store as cache.

    `calls_total[result]` counts HTTP calls (ok, rate_limited, unreachable, bad_response,
    auth); `skipped_total[reason]` counts fetches we did not attempt (budget, blocked).
    """

    def __init__(
        self,
        cfg: ForecastConfig,
        tz: tzinfo,
        store: StateStore,
        *,
        transport: httpx.BaseTransport | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.cfg = cfg
        self.tz = tz
        self.store = store
        self.cache_key = "forecast:" + self._planes_hash()
        limit = cfg.hourly_limit or (KEY_HOURLY_LIMIT if cfg.api_key else PUBLIC_HOURLY_LIMIT)
        self.budget = CallBudget(store, "forecast:calls", [Window(limit, 3600)], device=DEVICE)
        self.calls_total: Counter[str] = Counter()
        self.skipped_total: Counter[str] = Counter()
        self.last_error: str | None = None
        self._rng = rng or random.Random()
        self._lock = threading.Lock()
        self._raw: str | None = None
        self._cache: CachedForecast | None = None
        self._next_fetch: datetime | None = None
        self._failures = 0
        # The slots of the cached forecast they were computed from (see `_slots`).
        self._slot_source: CachedForecast | None = None
        self._slot_base = datetime.fromtimestamp(0, UTC)
        self._slot_wh: list[float] = []
        self._slot_view: tuple[int, datetime, tuple[float, ...]] | None = None
        # Each request ends within timeout_s, however slowly the service answers.
        self._http = deadline.client(
            cfg.timeout_s,
            timeout=httpx.Timeout(cfg.timeout_s, connect=min(cfg.timeout_s, 5.0)),
            headers={"User-Agent": f"emsctl/{__version__}", "Accept": "application/json"},
            transport=transport,
        )

    @classmethod
    def from_config(
        cls,
        config: Config,
        store: StateStore,
        *,
        transport: httpx.BaseTransport | None = None,
        rng: random.Random | None = None,
    ) -> ForecastSolar:
        return cls(config.forecast, config.control.tz, store, transport=transport, rng=rng)

    def close(self) -> None:
        self._http.close()

    def _planes_hash(self) -> str:
        c = self.cfg
        ident = {
            "url": c.url,
            "key": bool(c.api_key),
            "lat": c.latitude,
            "lon": c.longitude,
            "planes": [[p.declination, p.azimuth, p.kwp] for p in c.planes],
        }
        return hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:16]

    # ------------------------------------------------------------------ cache

    def cached(self) -> CachedForecast | None:
        """The last stored forecast (whatever its age)."""
        raw = self.store.kv_get(self.cache_key)
        if raw != self._raw:
            self._raw = raw
            self._cache = None
            if raw:
                try:
                    self._cache = CachedForecast.from_json(raw)
                except (ValueError, KeyError, TypeError) as exc:
                    log.warning("ignoring a damaged cached forecast: %s", exc)
        return self._cache

    def usable(self, now: datetime) -> CachedForecast | None:
        """The cached forecast while younger than max_age_s."""
        c = self.cached()
        if c is None or (now - c.fetched_at).total_seconds() > self.cfg.max_age_s:
            return None
        return c

    def next_fetch_at(self, now: datetime) -> datetime:
        """When the next fetch may happen: refresh_s after the last (plus jitter), or later if
        the server or our budget says so."""
        if self._next_fetch is None:
            c = self.cached()
            self._next_fetch = (
                now
                if c is None
                else c.fetched_at + timedelta(seconds=self.cfg.refresh_s + self._jitter())
            )
        at = self._next_fetch
        blocked = self.budget.blocked_until(now)
        if blocked is not None and blocked > at:
            at = blocked
        return at

    def _jitter(self) -> float:
        return self._rng.uniform(0, self.cfg.jitter_s) if self.cfg.jitter_s > 0 else 0.0

    # ------------------------------------------------------------------ ForecastSource

    # CloudUsage (emsctl.adapters.base)
    cloud_service = "forecast_solar"
    #: The service limits calls per hour, which the CallBudget keeps; no daily budget to show.
    budget_left = None

    @property
    def calls_made(self) -> int:
        return sum(self.calls_total.values())

    def forecast(self, now: datetime) -> Forecast | None:
        """Fetch when due (errors are logged, never raised), then answer from the cache."""
        with self._lock:
            if self.cfg.enabled and now >= self.next_fetch_at(now):
                try:
                    self.refresh(now)
                except AdapterError as exc:
                    log.warning("forecast not refreshed: %s", exc)
            c = self.usable(now)
            if c is None:
                return None
            remaining = c.remaining_today(now, self.tz)
            if remaining is None:
                return None
            start, slots = self._slots(c, now)
            return Forecast(
                fetched_at=c.fetched_at,
                remaining_today_wh=remaining,
                slots_start=start,
                slot_wh=slots,
            )

    def _slots(self, c: CachedForecast, now: datetime) -> tuple[datetime, tuple[float, ...]]:
        """The forecast's slots from the one holding `now` on; computed once per fetched
        forecast, the tuple once per slot."""
        if self._slot_source is not c:
            start, count = c.slot_span()
            self._slot_source = c
            self._slot_base = start
            self._slot_wh = c.slot_energies(start, count)
            self._slot_view = None
        k = max(0, math.floor((now - self._slot_base).total_seconds() / FORECAST_SLOT_S))
        view = self._slot_view
        if view is None or view[0] != k:
            at = self._slot_base + timedelta(seconds=k * FORECAST_SLOT_S)
            view = self._slot_view = (k, at, tuple(self._slot_wh[k:]))
        return view[1], view[2]

    # ------------------------------------------------------------------ fetching

    def _urls(self) -> list[str]:
        c = self.cfg
        base = c.url.rstrip("/")
        where = f"{c.latitude:g}/{c.longitude:g}"

        def plane(p: Any) -> str:
            return f"{p.declination:g}/{p.azimuth:g}/{p.kwp:g}"

        if c.api_key:
            # With a key one call covers every plane.
            return [f"{base}/{c.api_key}/estimate/{where}/" + "/".join(plane(p) for p in c.planes)]
        # The public endpoint takes one plane per call.
        return [f"{base}/estimate/{where}/{plane(p)}" for p in c.planes]

    def refresh(self, now: datetime) -> CachedForecast:
        """Fetch every plane now and store the result; raises AdapterError (cache untouched)."""
        urls = self._urls()
        try:
            self._afford(now, len(urls))
            series: list[Series] = []
            place: str | None = None
            for url in urls:
                points, where = self._fetch(url, now)
                series.append(points)
                place = place or where
        except AdapterError as exc:
            self._failed(now, exc)
            raise
        fc = CachedForecast(fetched_at=now, series=tuple(series), place=place)
        self.store.kv_put(self.cache_key, fc.to_json(), now)
        self._failures = 0
        self.last_error = None
        self._next_fetch = now + timedelta(seconds=self.cfg.refresh_s + self._jitter())
        today = fc.remaining_today(now, self.tz)
        log.info(
            "forecast fetched: %.1f kWh still expected today, next fetch at %s",
            (today or 0) / 1000,
            self._next_fetch.isoformat(timespec="seconds"),
        )
        return fc

    def _afford(self, now: datetime, calls: int) -> None:
        """Refuse a fetch that the hourly allowance cannot finish (all planes or none)."""
        blocked = self.budget.blocked_until(now)
        if blocked is not None:
            self.skipped_total["blocked"] += 1
            raise RateLimited(
                f"rate limited until {blocked.isoformat(timespec='seconds')}",
                device=DEVICE,
                retry_at=blocked,
            )
        limit = min(w.limit for w in self.budget.windows)
        if calls > limit:
            self.skipped_total["budget"] += 1
            raise RateLimited(
                f"{calls} call(s) needed for the configured planes but the hourly limit is "
                f"{limit}: use fewer planes, an API key, or a higher forecast.hourly_limit",
                device=DEVICE,
            )
        if self.budget.remaining(now) < calls:
            self.skipped_total["budget"] += 1
            retry = self.budget.next_free(now, reserve=calls - 1)
            raise RateLimited(
                f"{calls} call(s) needed but the hourly allowance is used up",
                device=DEVICE,
                retry_at=retry,
            )

    def _fetch(self, url: str, now: datetime) -> tuple[Series, str | None]:
        self.budget.record(now)
        try:
            resp = self._http.get(url, params={"time": "iso8601"})
        except httpx.TimeoutException:
            self.calls_total["unreachable"] += 1
            raise DeviceUnreachable("estimate request timed out", device=DEVICE) from None
        except httpx.HTTPError as exc:
            self.calls_total["unreachable"] += 1
            raise DeviceUnreachable(f"not reachable: {exc}", device=DEVICE) from None
        try:
            doc: Any = resp.json()
        except ValueError:
            doc = None
        self._note_limits(resp, doc, now)
        code = resp.status_code
        text = ""
        if isinstance(doc, dict):
            text = str((doc.get("message") or {}).get("text") or "")
        if code == 429:
            self.calls_total["rate_limited"] += 1
            until = _retry_at(resp, doc) or now + DEFAULT_BLOCK
            self.budget.block(until, now)
            raise RateLimited(
                f"rate limit reached; no call before {until.isoformat(timespec='seconds')}",
                device=DEVICE,
                retry_at=until,
            )
        if code in (401, 403):
            self.calls_total["auth"] += 1
            raise AuthFailed(f"HTTP {code}: the API key was refused {text}".rstrip(), device=DEVICE)
        if code >= 500:
            self.calls_total["unreachable"] += 1
            raise DeviceUnreachable(f"HTTP {code} {text}".rstrip(), device=DEVICE)
        if code >= 400:
            self.calls_total["bad_response"] += 1
            raise BadResponse(
                f"HTTP {code}: {text or 'request refused'} (check forecast.latitude, longitude "
                "and planes)",
                device=DEVICE,
            )
        try:
            points, place = parse_estimate(doc, self.tz)
        except BadResponse:
            self.calls_total["bad_response"] += 1
            raise
        self.calls_total["ok"] += 1
        return points, place

    def _note_limits(self, resp: httpx.Response, doc: Any, now: datetime) -> None:
        """Honour what the server says about its limits even before it refuses us."""
        remaining: Any = resp.headers.get("X-Ratelimit-Remaining")
        period: Any = resp.headers.get("X-Ratelimit-Period")
        if remaining is None and isinstance(doc, dict):
            rl = (doc.get("message") or {}).get("ratelimit") or {}
            if isinstance(rl, dict):
                remaining, period = rl.get("remaining"), rl.get("period", period)
        try:
            left = None if remaining is None else int(remaining)
        except (TypeError, ValueError):
            left = None
        if left is not None and left <= 0 and resp.status_code < 400:
            until = _retry_at(resp, doc)
            if until is None:
                try:
                    until = now + timedelta(seconds=float(period or 3600))
                except (TypeError, ValueError):
                    until = now + DEFAULT_BLOCK
            log.info("forecast.solar allowance used up; no call before %s", until.isoformat())
            self.budget.block(until, now)

    def _failed(self, now: datetime, exc: AdapterError) -> None:
        self._failures += 1
        self.last_error = str(exc)
        wait = min(self.cfg.refresh_s, self.cfg.retry_after_error_s * 2 ** (self._failures - 1))
        at = now + timedelta(seconds=wait)
        if isinstance(exc, RateLimited) and exc.retry_at is not None and exc.retry_at > at:
            at = exc.retry_at
        self._next_fetch = at


def hourly_table(fc: CachedForecast, days: Sequence[date], tz: tzinfo) -> list[tuple[str, float]]:
    """Rows `("YYYY-MM-DD HH:00", Wh)` for `forecast show`."""
    rows: list[tuple[str, float]] = []
    for d in days:
        for t0, wh in fc.hourly(d, tz):
            rows.append((t0.strftime("%Y-%m-%d %H:%M"), wh))
    return rows
