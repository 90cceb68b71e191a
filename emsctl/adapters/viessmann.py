"""Viessmann cloud: the API client (tokens, call budget, typed errors) and the DHW actuator.

The DHW load is a setpoint: "on" means the DHW target is at boost_c, "off" at normal_c. Any
other target was set by a person (ViCare app) and is never overwritten.
"""

from __future__ import annotations

import json
import logging
import math
import threading
from collections import Counter
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from emsctl import clock
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
from emsctl.adapters.viessmann_auth import (
    DEVICE,
    LOGIN_HINT,
    LoginRequired,
    OAuthSession,
    TokenFile,
    oauth_client,
    token_path,
    token_request_error,
)
from emsctl.config import Config, DhwConfig, ViessmannConfig
from emsctl.model import LoadId, LoadReading

log = logging.getLogger(__name__)

__all__ = [
    "LOGIN_HINT",
    "DeviceIds",
    "DhwTarget",
    "LoginRequired",
    "ViessmannClient",
    "ViessmannDhw",
]

FEATURE_DHW_TARGET = "heating.dhw.temperature.main"
FEATURE_DHW_ACTUAL = "heating.dhw.sensors.temperature.hotWaterStorage"
FEATURE_ONE_TIME_CHARGE = "heating.dhw.oneTimeCharge"
CMD_SET_TARGET = "setTargetTemperature"

#: Refresh the access token this long before the IAM says it expires.
TOKEN_LEEWAY_S = 60
#: A target read younger than this is trusted before a write; older ones are re-read first,
#: because the owner may have changed the target in the app since.
FRESH_BEFORE_WRITE = timedelta(seconds=60)

#: A DHW target the heat pump refused (setTargetTemperature not executable, or the command
#: itself refused) is not asked for again before this long: the refusal lasts (a defrost, a
#: running one-time charge, a mode that locks the target), and every try costs a call.
NOT_EXECUTABLE_HOLD = timedelta(minutes=10)

KV_BUDGET = "viessmann:calls"
KV_DEVICE = "viessmann:device"
KV_WRITTEN = "viessmann:dhw:written"

#: Device types that carry the DHW features (the gateway itself is "vitoconnect" or "tcu").
_HEATING_TYPES = ("heating",)


@dataclass(frozen=True, slots=True)
class DeviceIds:
    """Where the heat pump sits in the account: found once, then cached in the store."""

    installation_id: str
    gateway_serial: str
    device_id: str
    model: str | None = None

    def path(self) -> str:
        return (
            f"/features/installations/{self.installation_id}/gateways/{self.gateway_serial}"
            f"/devices/{self.device_id}/features"
        )


class ApiRefused(BadResponse):
    """The API answered 4xx with its error body (`errorType`, e.g. COMMAND_NOT_EXECUTABLE)."""

    def __init__(self, message: str, *, error_type: str) -> None:
        super().__init__(message, device=DEVICE)
        self.error_type = error_type


def _is_http_error_body(body: Any) -> int | None:
    """The error status a body claims (PyViCare checks `statusCode` in the JSON as well)."""
    if isinstance(body, dict):
        if body.get("error") == "EXPIRED TOKEN":
            return 401
        code = body.get("statusCode")
        if isinstance(code, int) and code >= 400:
            return code
    return None


class ViessmannClient:
    """Talks to the Viessmann IAM and API: every call counted against the budget, every
    failure one of the typed errors.

    `calls_total[(endpoint, result)]` counts the HTTP calls made (endpoint: token, installations,
    feature, command; result: ok, unauthorized, rate_limited, unreachable, bad_response);
    `skipped_total[reason]` counts calls we refused to make (budget, blocked, login).
    """

    def __init__(
        self,
        cfg: ViessmannConfig,
        store: StateStore,
        tokens: TokenFile,
        *,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.cfg = cfg
        self.store = store
        self.tokens = tokens
        self.budget = CallBudget(
            store,
            KV_BUDGET,
            [Window(cfg.burst_budget, 600), Window(cfg.daily_budget, 86400)],
            device=DEVICE,
        )
        self.calls_total: Counter[tuple[str, str]] = Counter()
        self.skipped_total: Counter[str] = Counter()
        self._transport = transport
        self._lock = threading.RLock()
        self._oauth: OAuthSession | None = None
        self._stamp: tuple[int, int] | None = None
        self._token: dict[str, Any] | None = None
        self._login_problem: str | None = None
        self._device: DeviceIds | None = None

    @classmethod
    def from_config(
        cls, config: Config, store: StateStore, *, transport: httpx.BaseTransport | None = None
    ) -> ViessmannClient:
        return cls(config.viessmann, store, TokenFile(token_path(config)), transport=transport)

    # ------------------------------------------------------------------ state for UI/metrics

    def budget_remaining(self, now: datetime | None = None) -> int:
        """Calls left of the daily budget (the 10-minute burst cap may still delay some)."""
        return max(0, self.cfg.daily_budget - self.budget.used(now or clock.now(), 86400))

    def budget_used(self, now: datetime | None = None) -> int:
        return self.budget.used(now or clock.now())

    def login_problem(self) -> str | None:
        """None while a login exists; else why not (without touching the network)."""
        with self._lock:
            try:
                self._load_token()
            except LoginRequired as exc:
                return exc.detail
            except AuthFailed as exc:
                return str(exc)
            return None

    def require_login(self) -> None:
        """Raise LoginRequired when there is no usable login (no network involved)."""
        with self._lock:
            self._load_token()

    def close(self) -> None:
        with self._lock:
            if self._oauth is not None:
                self._oauth.close()
                self._oauth = None

    # ------------------------------------------------------------------ tokens

    def _client(self) -> OAuthSession:
        if self._oauth is None:
            self._oauth = oauth_client(self.cfg, self._token, transport=self._transport)
        return self._oauth

    def _load_token(self) -> dict[str, Any]:
        """The current token, reloading the file when it changed (e.g. after a new login)."""
        if not self.cfg.client_id:
            raise LoginRequired("viessmann.client_id is not set in the configuration")
        stamp = self.tokens.stamp()
        if stamp != self._stamp or (self._token is None and self._login_problem is None):
            self._stamp = stamp
            record = self.tokens.load()
            self._token = None
            if record is None:
                self._login_problem = f"no Viessmann login yet ({self.tokens.path} is missing)"
            elif record.token is None or "refresh_token" not in record.token:
                why = record.revoked_reason or "the stored login holds no refresh token"
                when = f" at {record.revoked_at}" if record.revoked_at else ""
                self._login_problem = f"refused{when}: {why}"
            else:
                self._token = record.token
                self._login_problem = None
                if self._oauth is not None:
                    self._oauth.token = dict(record.token)
        if self._token is None:
            raise LoginRequired(self._login_problem or "no login")
        return self._token

    def _expired(self, token: dict[str, Any], now: datetime) -> bool:
        expires_at = token.get("expires_at")
        if not isinstance(expires_at, int | float):
            return True
        return float(expires_at) - TOKEN_LEEWAY_S <= now.timestamp()

    def _refresh(self, now: datetime, reserve: int) -> dict[str, Any]:
        token = self._load_token()
        self._spend(now, reserve, "token refresh")
        client = self._client()
        client.token = dict(token)
        try:
            new = client.refresh_token(self.cfg.token_url, refresh_token=token["refresh_token"])
        except Exception as exc:
            mapped = token_request_error(exc, "refresh token")
            if mapped is None:
                raise
            self.calls_total[("token", _result_of(mapped))] += 1
            if isinstance(mapped, LoginRequired):
                log.error("Viessmann refresh token refused: %s", mapped.detail)
                self.tokens.mark_revoked(mapped.detail, now)
                self._stamp = self.tokens.stamp()
                self._token = None
                self._login_problem = f"refused at {now.isoformat()}: {mapped.detail}"
            raise mapped from None
        self.calls_total[("token", "ok")] += 1
        saved = dict(new)
        if "refresh_token" not in saved:
            saved["refresh_token"] = token["refresh_token"]
        self.tokens.save(saved, now)
        self._stamp = self.tokens.stamp()
        self._token = saved
        return saved

    # ------------------------------------------------------------------ budget

    def _spend(self, now: datetime, reserve: int, what: str) -> None:
        try:
            self.budget.check(now, reserve=reserve, what=what)
        except RateLimited:
            blocked = self.budget.blocked_until(now) is not None
            self.skipped_total["blocked" if blocked else "budget"] += 1
            raise
        self.budget.record(now)

    def can_write(self, now: datetime) -> bool:
        """Whether a write could be sent now (budget left, no server-imposed block)."""
        return self.budget.blocked_until(now) is None and self.budget.remaining(now) > 0

    # ------------------------------------------------------------------ HTTP

    def _call(
        self,
        method: str,
        path: str,
        endpoint: str,
        now: datetime,
        *,
        reserve: int = 0,
        body: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """One API call: refresh the token when due, on 401 refresh once and retry once.

        All of it ends within `timeout_s` (a request still running then fails as timed out).
        """
        with self._lock, deadline.within(self.cfg.timeout_s):
            try:
                token = self._load_token()
            except LoginRequired:
                self.skipped_total["login"] += 1
                raise
            if self._expired(token, now):
                token = self._refresh(now, reserve)
            retried = False
            while True:
                self._spend(now, reserve, f"{endpoint} call")
                status, doc = self._send(method, path, endpoint, token, body)
                if status == 401:
                    if retried:
                        self.calls_total[(endpoint, "unauthorized")] += 1
                        raise AuthFailed("the API refused a freshly refreshed token", device=DEVICE)
                    self.calls_total[(endpoint, "unauthorized")] += 1
                    log.info("Viessmann API: token refused, refreshing once")
                    token = self._refresh(now, reserve)
                    retried = True
                    continue
                return self._judge(status, doc, endpoint, now)

    def _send(
        self,
        method: str,
        path: str,
        endpoint: str,
        token: dict[str, Any],
        body: dict[str, Any] | None,
    ) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {token['access_token']}"}
        if body is not None:
            headers["Content-Type"] = "application/json"
            headers["Accept"] = "application/vnd.siren+json"
        url = self.cfg.api_base.rstrip("/") + path
        try:
            resp = self._client().http.request(
                method,
                url,
                headers=headers,
                content=None if body is None else json.dumps(body),
            )
        except httpx.TimeoutException:
            self.calls_total[(endpoint, "unreachable")] += 1
            raise DeviceUnreachable(f"{endpoint} call timed out", device=DEVICE) from None
        except httpx.HTTPError as exc:
            self.calls_total[(endpoint, "unreachable")] += 1
            raise DeviceUnreachable(f"API not reachable: {exc}", device=DEVICE) from None
        try:
            doc: Any = resp.json()
        except ValueError:
            doc = None
        status = resp.status_code
        claimed = _is_http_error_body(doc)
        if status == 401 or claimed == 401:
            return 401, doc
        if claimed is not None and status < 400:
            status = claimed
        if status >= 400 and isinstance(doc, dict) and doc.get("statusCode") == 429:
            status = 429
        return status, doc

    def _judge(self, status: int, doc: Any, endpoint: str, now: datetime) -> dict[str, Any]:
        err = doc if isinstance(doc, dict) else {}
        kind = err.get("errorType") or ""
        msg = err.get("message") or ""
        extended = (
            err.get("extendedPayload") if isinstance(err.get("extendedPayload"), dict) else {}
        )
        assert isinstance(extended, dict)
        if status == 429:
            self.calls_total[(endpoint, "rate_limited")] += 1
            until = _limit_reset(extended, now, self.cfg.rate_limit_wait_s)
            self.budget.block(until, now)
            name = extended.get("name") or "rate limit"
            log.error("Viessmann API: %s exceeded; no call before %s", name, until.isoformat())
            raise RateLimited(
                f"Viessmann {name} exceeded (limit {extended.get('requestCountLimit', '?')}); "
                f"no call before {until:%Y-%m-%d %H:%M:%S}Z",
                device=DEVICE,
                retry_at=until,
            )
        if extended.get("reason") == "GATEWAY_OFFLINE":
            self.calls_total[(endpoint, "unreachable")] += 1
            raise DeviceUnreachable("the heat pump's gateway is offline", device=DEVICE)
        if status >= 500:
            self.calls_total[(endpoint, "unreachable")] += 1
            raise DeviceUnreachable(
                f"API answered HTTP {status} {kind} {msg}".rstrip(), device=DEVICE
            )
        if status >= 400:
            self.calls_total[(endpoint, "bad_response")] += 1
            raise ApiRefused(
                f"API answered HTTP {status} {kind} {msg}".rstrip(),
                error_type=str(kind or f"HTTP {status}"),
            )
        if not isinstance(doc, dict):
            self.calls_total[(endpoint, "bad_response")] += 1
            raise BadResponse(f"API answered HTTP {status} without a JSON object", device=DEVICE)
        self.calls_total[(endpoint, "ok")] += 1
        return doc

    # ------------------------------------------------------------------ API

    def device(self, now: datetime, *, reserve: int = 0) -> DeviceIds:
        """The heat pump's IDs: from the config, the store's cache, or one discovery call."""
        with self._lock:
            if self._device is not None:
                return self._device
            cfg = self.cfg
            if cfg.installation_id and cfg.gateway_serial and cfg.device_id:
                self._device = DeviceIds(cfg.installation_id, cfg.gateway_serial, cfg.device_id)
                return self._device
            cached = self.store.kv_get(KV_DEVICE)
            if cached:
                try:
                    d = json.loads(cached)
                    ids = DeviceIds(
                        str(d["installation_id"]),
                        str(d["gateway_serial"]),
                        str(d["device_id"]),
                        d.get("model"),
                    )
                    if self._matches_config(ids):
                        self._device = ids
                        return ids
                except (ValueError, KeyError, TypeError):
                    log.warning("ignoring a damaged cached Viessmann device record")
            doc = self._call(
                "GET",
                "/equipment/installations?includeGateways=true",
                "installations",
                now,
                reserve=reserve,
            )
            ids = self._pick_device(doc)
            self.store.kv_put(
                KV_DEVICE,
                json.dumps(
                    {
                        "installation_id": ids.installation_id,
                        "gateway_serial": ids.gateway_serial,
                        "device_id": ids.device_id,
                        "model": ids.model,
                    }
                ),
                now,
            )
            log.info(
                "Viessmann device found: installation %s, gateway %s, device %s (%s)",
                ids.installation_id,
                ids.gateway_serial,
                ids.device_id,
                ids.model or "?",
            )
            self._device = ids
            return ids

    def _matches_config(self, ids: DeviceIds) -> bool:
        cfg = self.cfg
        return (
            (not cfg.installation_id or cfg.installation_id == ids.installation_id)
            and (not cfg.gateway_serial or cfg.gateway_serial == ids.gateway_serial)
            and (not cfg.device_id or cfg.device_id == ids.device_id)
        )

    def _pick_device(self, doc: dict[str, Any]) -> DeviceIds:
        data = doc.get("data")
        if not isinstance(data, list):
            raise BadResponse("installations reply has no 'data' list", device=DEVICE)
        candidates: list[DeviceIds] = []
        for inst in data:
            if not isinstance(inst, dict):
                continue
            for gw in inst.get("gateways") or []:
                for dev in gw.get("devices") or []:
                    if dev.get("deviceType") not in _HEATING_TYPES:
                        continue
                    ids = DeviceIds(
                        str(inst.get("id")),
                        str(gw.get("serial")),
                        str(dev.get("id")),
                        dev.get("modelId"),
                    )
                    if self._matches_config(ids):
                        candidates.append(ids)
        if not candidates:
            raise BadResponse(
                "no heating device in this Viessmann account matches the configured "
                "installation_id/gateway_serial/device_id",
                device=DEVICE,
            )
        # The heat pump itself is device "0"; other heating devices are room controllers etc.
        candidates.sort(key=lambda c: c.device_id != "0")
        if len({(c.installation_id, c.gateway_serial, c.device_id) for c in candidates}) > 1:
            log.info(
                "several Viessmann heating devices found, using %s; set viessmann.device_id "
                "to choose",
                candidates[0],
            )
        return candidates[0]

    def feature(self, name: str, now: datetime, *, reserve: int = 0) -> dict[str, Any]:
        ids = self.device(now, reserve=reserve)
        doc = self._call("GET", f"{ids.path()}/{name}", "feature", now, reserve=reserve)
        data = doc.get("data")
        if not isinstance(data, dict) or data.get("feature") != name:
            raise BadResponse(f"feature {name}: reply carries no such feature", device=DEVICE)
        if data.get("isEnabled") is False:
            raise BadResponse(f"feature {name} is not enabled on this device", device=DEVICE)
        return data

    def execute(
        self, feature: str, command: str, params: dict[str, Any], now: datetime
    ) -> dict[str, Any]:
        """Run a feature command. Writes keep no reserve: they are what the budget is for."""
        ids = self.device(now)
        return self._call(
            "POST", f"{ids.path()}/{feature}/commands/{command}", "command", now, body=params
        )


def _limit_reset(extended: dict[str, Any], now: datetime, fallback_s: float) -> datetime:
    reset = extended.get("limitReset")
    if isinstance(reset, int | float) and reset > 0:
        until = datetime.fromtimestamp(reset / 1000.0, UTC)
        if until > now:
            return until
    return now + timedelta(seconds=fallback_s)


def _result_of(exc: AdapterError) -> str:
    return {
        "unreachable": "unreachable",
        "rate_limited": "rate_limited",
        "bad_response": "bad_response",
    }.get(exc.kind, "unauthorized")


# --------------------------------------------------------------------------- DHW


@dataclass(frozen=True, slots=True)
class DhwTarget:
    """The DHW target as last read, with the device's allowed range for writes."""

    value: float
    minimum: float
    maximum: float
    stepping: float
    executable: bool
    read_at: datetime

    def clamp(self, v: float) -> float:
        c = min(max(v, self.minimum), self.maximum)
        if self.stepping > 0:
            c = self.minimum + round((c - self.minimum) / self.stepping) * self.stepping
            c = min(c, self.maximum)
        return round(c, 3)


def parse_dhw_target(feature: dict[str, Any], now: datetime) -> DhwTarget:
    try:
        value = float(feature["properties"]["value"]["value"])
    except (KeyError, TypeError, ValueError):
        raise BadResponse(
            f"{FEATURE_DHW_TARGET}: no numeric properties.value.value", device=DEVICE
        ) from None
    cmd = (feature.get("commands") or {}).get(CMD_SET_TARGET) or {}
    constraints = ((cmd.get("params") or {}).get("temperature") or {}).get("constraints") or {}
    try:
        lo = float(constraints.get("min", 10))
        hi = float(constraints.get("max", 60))
        step = float(constraints.get("stepping", 1))
    except (TypeError, ValueError):
        raise BadResponse(f"{FEATURE_DHW_TARGET}: unreadable constraints", device=DEVICE) from None
    return DhwTarget(
        value=value,
        minimum=lo,
        maximum=hi,
        stepping=step,
        executable=bool(cmd.get("isExecutable", False)),
        read_at=now,
    )


def _same(a: float, b: float) -> bool:
    return math.isclose(a, b, abs_tol=0.05)


def _wire(v: float) -> int | float:
    """PyViCare sends whole degrees as int; the API's stepping is 1 on the Vitocal."""
    return int(v) if float(v).is_integer() else v


class ViessmannDhw:
    """The DHW setpoint load as an Actuator: on = target at boost_c, off = target at normal_c.

    Reads are cached: the target is re-read every `check_interval_s` (and right before a
    write), never once a tick. After a write the command's success is trusted and the cache
    takes the written value, saving a call; the next periodic check confirms it.
    `read()` reports `available=False` while no login exists; a target that is neither
    normal_c nor boost_c comes back as `foreign_setpoint` (the owner's) and is never
    overwritten. What we wrote last is kept in the store, so after a restart `source="ems"`
    still tells our boost apart from the owner's.
    """

    load = LoadId.DHW

    def __init__(
        self,
        client: ViessmannClient,
        dhw: DhwConfig,
        store: StateStore,
    ) -> None:
        self.client = client
        self.cfg = client.cfg
        self.dhw = dhw
        self.store = store
        self._lock = threading.RLock()
        self._target: DhwTarget | None = None
        self._next_check: datetime | None = None
        self._failures = 0
        self._last_error: AdapterError | None = None
        self._warned_clamp = False
        #: The heat pump refused a target: no new attempt (nor a read for one) before then.
        self._refused_until: datetime | None = None
        #: Why, while a refusal episode lasts (logged once, when it begins).
        self._refusal: str | None = None
        self.writes_total = 0
        self.overrides_respected_total = 0

    @classmethod
    def from_config(
        cls, config: Config, store: StateStore, *, transport: httpx.BaseTransport | None = None
    ) -> ViessmannDhw:
        return cls(
            ViessmannClient.from_config(config, store, transport=transport), config.loads.dhw, store
        )

    # ------------------------------------------------------------------ metrics view

    @property
    def calls_total(self) -> Counter[tuple[str, str]]:
        return self.client.calls_total

    @property
    def budget_remaining(self) -> int:
        return self.client.budget_remaining()

    # CloudUsage (emsctl.adapters.base)
    cloud_service = "viessmann"

    @property
    def calls_made(self) -> int:
        return sum(self.client.calls_total.values())

    @property
    def budget_left(self) -> int | None:
        return self.client.budget_remaining()

    @property
    def target(self) -> DhwTarget | None:
        return self._target

    def close(self) -> None:
        self.client.close()

    # ------------------------------------------------------------------ reading

    def _levels(self, t: DhwTarget) -> tuple[float, float]:
        normal, boost = t.clamp(self.dhw.normal_c), t.clamp(self.dhw.boost_c)
        if not self._warned_clamp and (
            not _same(normal, self.dhw.normal_c) or not _same(boost, self.dhw.boost_c)
        ):
            self._warned_clamp = True
            log.warning(
                "DHW targets %g/%g °C are outside the heat pump's range %g..%g (step %g): "
                "using %g/%g",
                self.dhw.normal_c,
                self.dhw.boost_c,
                t.minimum,
                t.maximum,
                t.stepping,
                normal,
                boost,
            )
        return normal, boost

    def _written(self) -> tuple[float, datetime] | None:
        raw = self.store.kv_get(KV_WRITTEN)
        if not raw:
            return None
        try:
            d = json.loads(raw)
            return float(d["target"]), datetime.fromisoformat(d["at"])
        except (ValueError, KeyError, TypeError):
            return None

    def _reading(self, t: DhwTarget) -> LoadReading:
        normal, boost = self._levels(t)
        on = _same(t.value, boost) and not _same(boost, normal)
        ours = self._written()
        source = "ems" if ours is not None and _same(ours[0], t.value) else "viessmann"
        foreign = None if on or _same(t.value, normal) else t.value
        return LoadReading(relay_on=on, power_w=None, source=source, foreign_setpoint=foreign)

    def _unavailable(self, exc: LoginRequired) -> LoadReading:
        return LoadReading(relay_on=None, available=False, error=str(exc))

    def _check(self, now: datetime, reserve: int) -> DhwTarget:
        """Read the target now (one call), resetting the error back-off on success."""
        try:
            t = parse_dhw_target(self.client.feature(FEATURE_DHW_TARGET, now, reserve=reserve), now)
        except LoginRequired:
            raise
        except AdapterError as exc:
            self._failures += 1
            if isinstance(exc, RateLimited) and exc.retry_at is not None:
                wait = max((exc.retry_at - now).total_seconds(), self.cfg.retry_after_error_s)
            else:
                wait = min(
                    self.cfg.check_interval_s,
                    self.cfg.retry_after_error_s * 2 ** (self._failures - 1),
                )
            self._next_check = now + timedelta(seconds=wait)
            self._last_error = exc
            raise
        self._failures = 0
        self._last_error = None
        self._target = t
        self._next_check = now + timedelta(seconds=self.cfg.check_interval_s)
        if t.executable and self._refusal is not None:
            log.info("the heat pump accepts DHW targets again")
            self._refused_until = None
            self._refusal = None
        return t

    def read(self) -> LoadReading:
        """The DHW load's state from the cached target; one call every check_interval_s."""
        now = clock.now()
        with self._lock:
            try:
                self.client.require_login()
            except LoginRequired as exc:
                return self._unavailable(exc)
            due = self._target is None or self._next_check is None or now >= self._next_check
            if not due:
                if self._last_error is not None:
                    return self._despite(self._last_error, now)
                assert self._target is not None
                return self._reading(self._target)
            try:
                t = self._check(now, self.cfg.read_reserve)
            except LoginRequired as exc:
                return self._unavailable(exc)
            except RateLimited as exc:
                # Our own budget saving calls for writes: the cached target is still the best
                # knowledge, and writes can go through. A server block means no writes either.
                if self._target is not None and self.client.can_write(now):
                    self._last_error = None
                    log.debug("DHW check postponed (%s); using the cached target", exc)
                    return self._reading(self._target)
                return self._despite(exc, now)
            return self._reading(t)

    def _despite(self, exc: AdapterError, now: datetime | None = None) -> LoadReading:
        """The reading while no call may be made (Viessmann's 429 block, or our budget used
        up): the target last read or written, with why and until when as the error.

        The heat pump is not unreachable then, and the owner should see what it does: a
        boost that is set stays set (the EMS cannot end it before the block ends), and no
        start is possible (a reading with an error never counts as reachable). Any other
        error, or nothing read yet (a restart during the block): raised as before.
        """
        t = self._target
        if not isinstance(exc, RateLimited) or t is None:
            raise exc
        blocked = self.client.budget.blocked_until(now or clock.now())
        if blocked is not None:
            why = (
                f"Viessmann refuses calls until {blocked:%Y-%m-%d %H:%M:%S}Z (rate limit, HTTP 429)"
            )
        else:
            why = str(exc).removeprefix(f"{DEVICE}: ")
        error = f"{DEVICE}: {why}; the DHW target stays at {t.value:g} °C meanwhile"
        return replace(self._reading(t), error=error)

    # ------------------------------------------------------------------ switching

    def switch(self, on: bool, *, deadman_s: int | None = None) -> LoadReading:
        """Set the DHW target to boost_c (on) or back to normal_c (off).

        Writes only on change, never sooner than min_write_interval_s after the last write,
        and never over a target the owner set (the reading then shows `foreign_setpoint`).
        `deadman_s` has no meaning for a setpoint and is ignored.
        """
        now = clock.now()
        with self._lock:
            t = self._target
            ours = self._written()
            cached_done = t is not None and _same(t.value, self._want(t, on))
            if not cached_done:
                # Before any call: a write that may not happen yet must not cost one.
                self._check_write_interval(ours, now)
                self._check_refusal(now)
            if t is None or now - t.read_at > FRESH_BEFORE_WRITE:
                t = self._check(now, 0)
            normal, boost = self._levels(t)
            want = self._want(t, on)
            if _same(t.value, want):
                return self._reading(t)
            is_ours = ours is not None and _same(ours[0], t.value)
            if not _same(t.value, normal) and not (_same(t.value, boost) and is_ours):
                # A target we did not set: the owner's choice. Leave it; the reading tells
                # the core, which treats it as a manual override.
                self.overrides_respected_total += 1
                log.info(
                    "DHW target is %g °C, set outside the EMS: not changing it to %g °C",
                    t.value,
                    want,
                )
                return self._reading(t)
            if _same(boost, normal):
                raise BadResponse(
                    f"boost_c {self.dhw.boost_c:g} and normal_c {self.dhw.normal_c:g} are the "
                    f"same within the heat pump's range {t.minimum:g}..{t.maximum:g}",
                    device=DEVICE,
                )
            self._check_write_interval(ours, now)
            if not t.executable:
                raise self._hold(now, f"{CMD_SET_TARGET} is not executable")
            try:
                self._write(t, want, now)
            except ApiRefused as exc:
                raise self._hold(now, f"{CMD_SET_TARGET} refused: {exc.error_type}") from None
            self._refused_until = None
            if self._refusal is not None:
                log.info("the heat pump accepts DHW targets again")
                self._refusal = None
            t = replace(t, value=want, read_at=now)
            self._target = t
            self._next_check = now + timedelta(seconds=self.cfg.check_interval_s)
            if on and self.cfg.one_time_charge:
                self._one_time_charge(now)
            return self._reading(t)

    def _hold(self, now: datetime, why: str) -> BadResponse:
        """The heat pump will not take a target now: neither ask nor read for one before
        NOT_EXECUTABLE_HOLD has passed (a periodic check that finds it executable ends the
        hold sooner). Logged once per episode, however long it lasts. Returns the error."""
        self._refused_until = now + NOT_EXECUTABLE_HOLD
        if self._refusal is None:
            log.warning(
                "the heat pump does not accept a DHW target now (%s): not asking again for "
                "%d min (the load shows the error meanwhile)",
                why,
                NOT_EXECUTABLE_HOLD.total_seconds() // 60,
            )
        else:
            log.debug("DHW target still refused (%s)", why)
        self._refusal = why
        return self._refused_error()

    def _refused_error(self) -> BadResponse:
        assert self._refused_until is not None
        return BadResponse(
            f"the heat pump does not accept a DHW target now ({self._refusal}); not asked "
            f"again before {self._refused_until:%H:%M:%S}Z",
            device=DEVICE,
        )

    def _check_refusal(self, now: datetime) -> None:
        if self._refused_until is not None and now < self._refused_until:
            raise self._refused_error()

    def _want(self, t: DhwTarget, on: bool) -> float:
        normal, boost = self._levels(t)
        return boost if on else normal

    def _check_write_interval(self, ours: tuple[float, datetime] | None, now: datetime) -> None:
        if ours is None:
            return
        since = (now - ours[1]).total_seconds()
        wait = self.dhw.min_write_interval_s - since
        if wait > 0:
            raise RateLimited(
                f"DHW target written {int(since)} s ago; next write allowed after "
                f"{self.dhw.min_write_interval_s:g} s",
                device=DEVICE,
                retry_at=now + timedelta(seconds=wait),
            )

    def _write(self, t: DhwTarget, want: float, now: datetime) -> None:
        previous = self.store.kv_get(KV_WRITTEN)
        # Remember the intent before sending: if the answer is lost, the device may still have
        # taken the value, and it must then count as ours (to be restored later), not the owner's.
        self.store.kv_put(KV_WRITTEN, json.dumps({"target": want, "at": now.isoformat()}), now)
        try:
            self.client.execute(
                FEATURE_DHW_TARGET, CMD_SET_TARGET, {"temperature": _wire(want)}, now
            )
        except (BadResponse, RateLimited, AuthFailed):
            # Definitely not applied: forget the intent. (DeviceUnreachable may hide a write
            # that went through, so the intent stays.)
            self.store.kv_put(KV_WRITTEN, previous or "", now)
            raise
        self.writes_total += 1
        log.info("DHW target set to %g °C (was %g °C)", want, t.value)

    def _one_time_charge(self, now: datetime) -> None:
        try:
            f = self.client.feature(FEATURE_ONE_TIME_CHARGE, now)
            active = bool(((f.get("properties") or {}).get("active") or {}).get("value"))
            cmd = (f.get("commands") or {}).get("activate") or {}
            if not active and cmd.get("isExecutable"):
                self.client.execute(FEATURE_ONE_TIME_CHARGE, "activate", {}, now)
                log.info("DHW one-time charge started")
        except AdapterError as exc:
            # The target is already raised; the charge is a bonus, not worth failing the switch.
            log.warning("DHW one-time charge not started: %s", exc)

    # ------------------------------------------------------------------ status for CLI

    def status(self, now: datetime) -> dict[str, Any]:
        """Login, device, target and actual temperature, budget (for `emsctl viessmann status`).

        Costs up to three calls (discovery when not cached, target, actual temperature).
        """
        out: dict[str, Any] = {
            "login": self.client.login_problem() or "ok",
            "token_file": str(self.client.tokens.path),
            "budget_used_24h": self.client.budget_used(now),
            "daily_budget": self.cfg.daily_budget,
            "budget_remaining": self.client.budget_remaining(now),
        }
        blocked = self.client.budget.blocked_until(now)
        if blocked is not None:
            out["blocked_until"] = blocked.isoformat()
        if out["login"] != "ok":
            return out
        ids = self.client.device(now)
        out["device"] = {
            "installation_id": ids.installation_id,
            "gateway_serial": ids.gateway_serial,
            "device_id": ids.device_id,
            "model": ids.model,
        }
        with self._lock:
            t = self._check(now, 0)
        normal, boost = self._levels(t)
        out["dhw_target_c"] = t.value
        out["dhw_range_c"] = [t.minimum, t.maximum, t.stepping]
        out["normal_c"], out["boost_c"] = normal, boost
        reading = self._reading(t)
        out["boost_active"] = reading.relay_on
        out["set_by"] = reading.source
        if reading.foreign_setpoint is not None:
            out["owner_setpoint_c"] = reading.foreign_setpoint
        try:
            actual = self.client.feature(FEATURE_DHW_ACTUAL, now)
            out["dhw_actual_c"] = float(actual["properties"]["value"]["value"])
        except (AdapterError, KeyError, TypeError, ValueError) as exc:
            out["dhw_actual_c"] = None
            out["dhw_actual_error"] = str(exc)
        out["budget_used_24h"] = self.client.budget_used(now)
        out["budget_remaining"] = self.client.budget_remaining(now)
        return out
