"""A faithful stand-in for forecast.solar's estimate endpoint (docs/cloud.md).

Answers with the real public reply (fixtures/forecast_solar/estimate_public_response.json),
its two days moved to the test's day and the next, values scaled by the plane's kWp (the
fixture is read as one kWp). Enforces the rate limit per zone (12 an hour public, 60 with a
key) with the `X-Ratelimit-*` headers the client library reads, and answers 429 with the
fixture's body and `retry-at` when exceeded. Failure modes: 422, 500, 503, slow.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from werkzeug.wrappers import Request, Response

from tests.conftest import FIXTURES
from tests.support.loopback_wsgi import LoopbackServer

FORECAST = FIXTURES / "forecast_solar"
PUBLIC = FORECAST / "estimate_public_response.json"
FIXTURE_DAYS = ("2024-04-26", "2024-04-27")
FIXTURE_TZ = ZoneInfo("Europe/Amsterdam")


def fixture(name: str) -> Any:
    return json.loads((FORECAST / name).read_text(encoding="utf-8"))


def fixture_periods(day_index: int = 0) -> list[tuple[str, float]]:
    """The fixture's `watt_hours_period` entries of one day, unshifted (for expected values)."""
    doc = json.loads(PUBLIC.read_text(encoding="utf-8"))
    prefix = FIXTURE_DAYS[day_index]
    return [
        (k, float(v)) for k, v in doc["result"]["watt_hours_period"].items() if k.startswith(prefix)
    ]


@dataclass
class Request_:
    at: float
    path: str
    query: str
    status: int
    user_agent: str


class ForecastEmulator:
    """The estimate endpoint on a loopback server."""

    def __init__(
        self,
        *,
        day: date,
        keys: tuple[str, ...] = ("personal-key",),
        public_limit: int = 12,
        key_limit: int = 60,
        period_s: int = 3600,
    ) -> None:
        self.day = day
        self.keys = keys
        self.public_limit = public_limit
        self.key_limit = key_limit
        self.period_s = period_s
        self.mode: str | None = None  # None | "422" | "500" | "503" | "slow"
        self.slow_s = 2.0
        self.requests: list[Request_] = []
        self.outcomes: Counter[int] = Counter()
        self._calls: dict[str, list[float]] = {}
        self._lock = threading.Lock()
        self._template = json.loads(PUBLIC.read_text(encoding="utf-8"))
        self.server = LoopbackServer(self._app)
        self.url = self.server.url

    def stop(self) -> None:
        self.server.stop()

    @staticmethod
    def now() -> float:
        return time.time()

    def forecast_config(self, **overrides: Any) -> dict[str, Any]:
        cfg: dict[str, Any] = {
            "enabled": True,
            "url": self.url,
            "latitude": 52.16,
            "longitude": 4.47,
            "planes": [{"declination": 30, "azimuth": 0, "kwp": 1.0}],
            "jitter_s": 0,
        }
        cfg.update(overrides)
        return cfg

    def consume(self, n: int, zone: str = "IP ADDRESS") -> None:
        """Other clients behind the same IP address use up part of the shared allowance."""
        with self._lock:
            self._calls.setdefault(zone, []).extend([self.now()] * n)

    def calls_in(self, start: float, end: float) -> int:
        with self._lock:
            return sum(1 for r in self.requests if start <= r.at < end)

    # ------------------------------------------------------------------ WSGI

    def _app(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        with self._lock:
            status, body, headers = self._answer(request)
            self.requests.append(
                Request_(
                    self.now(),
                    request.path,
                    request.query_string.decode(),
                    status,
                    request.headers.get("User-Agent", ""),
                )
            )
            self.outcomes[status] += 1
            mode = self.mode
        if mode == "slow":
            time.sleep(self.slow_s)
        resp = Response(json.dumps(body), status=status, mimetype="application/json")
        for k, v in headers.items():
            resp.headers[k] = v
        return resp(environ, start_response)

    def _answer(self, request: Request) -> tuple[int, Any, dict[str, str]]:
        parts = [p for p in request.path.split("/") if p]
        key: str | None = None
        if len(parts) >= 2 and parts[1] == "estimate":
            key = parts[0]
            parts = parts[1:]
        if not parts or parts[0] != "estimate":
            return 404, _message(404, "Not found"), {}
        if key is not None and key not in self.keys:
            return 401, _message(401, "Invalid API key"), {}
        zone = "API key" if key else "IP ADDRESS"
        limit = self.key_limit if key else self.public_limit
        now = self.now()
        calls = [t for t in self._calls.get(zone, []) if t > now - self.period_s]
        if len(calls) >= limit:
            retry = datetime.fromtimestamp(calls[0] + self.period_s, UTC).astimezone(FIXTURE_TZ)
            body = fixture("error_429_ratelimit_response.json")
            body["message"]["ratelimit"]["retry-at"] = retry.isoformat()
            body["message"]["ratelimit"]["limit"] = limit
            body["message"]["ratelimit"]["zone"] = zone
            self._calls[zone] = calls
            return 429, body, {"X-Ratelimit-Retry-At": retry.isoformat()}
        calls.append(now)
        self._calls[zone] = calls
        headers = {
            "X-Ratelimit-Limit": str(limit),
            "X-Ratelimit-Period": str(self.period_s),
            "X-Ratelimit-Remaining": str(limit - len(calls)),
        }
        if self.mode in ("500", "503"):
            code = int(self.mode)
            return code, _message(code, "Service Unavailable"), headers
        if self.mode == "422":
            # What the server says about a plane it cannot model (e.g. a location at sea).
            return 422, _message(422, "Invalid plane"), headers
        try:
            lat, lon = float(parts[1]), float(parts[2])
            planes = parts[3:]
            if not planes or len(planes) % 3:
                raise ValueError("plane needs declination/azimuth/kwp")
            groups = [tuple(float(x) for x in planes[i : i + 3]) for i in range(0, len(planes), 3)]
        except (IndexError, ValueError) as exc:
            return 400, _message(400, f"Bad request: {exc}"), headers
        if not -90 <= lat <= 90 or not -180 <= lon <= 180:
            return 422, _message(422, "Invalid location"), headers
        if key is None and len(groups) > 1:
            return 400, _message(400, "Multiple planes need an API key"), headers
        for dec, az, kwp in groups:
            if not 0 <= dec <= 90 or not -180 <= az <= 180 or kwp <= 0:
                return 422, _message(422, "Invalid plane"), headers
        scale = sum(g[2] for g in groups)
        iso = request.args.get("time", "") == "iso8601"
        body = self._estimate(scale, iso, zone, limit, limit - len(calls), now)
        return 200, body, headers

    def _estimate(
        self, scale: float, iso: bool, zone: str, limit: int, remaining: int, now: float
    ) -> dict[str, Any]:
        shifts = {FIXTURE_DAYS[0]: self.day, FIXTURE_DAYS[1]: self.day + timedelta(days=1)}

        def moved(ts: str) -> str:
            d = shifts[ts[:10]].isoformat()
            text = d + ts[10:]
            if iso:
                return text
            # The API's default format: local time, no zone.
            return text[:19].replace("T", " ")

        result = {}
        for name, series in self._template["result"].items():
            if name == "watt_hours_day":
                result[name] = {shifts[k].isoformat(): round(v * scale) for k, v in series.items()}
            else:
                result[name] = {moved(k): round(v * scale) for k, v in series.items()}
        local = datetime.fromtimestamp(now, UTC).astimezone(FIXTURE_TZ)
        message = json.loads(json.dumps(self._template["message"]))
        message["info"]["time"] = local.isoformat(timespec="seconds")
        message["info"]["time_utc"] = datetime.fromtimestamp(now, UTC).isoformat(timespec="seconds")
        message["ratelimit"] = {
            "zone": zone,
            "period": self.period_s,
            "limit": limit,
            "remaining": remaining,
        }
        return {"result": result, "message": message}


def _message(code: int, text: str) -> dict[str, Any]:
    return {
        "result": None,
        "message": {"code": code, "type": "error", "text": text, "pid": "emulator"},
    }
