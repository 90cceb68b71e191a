"""Faithful Shelly emulators on 127.0.0.1: Gen1 (Shelly 1 / 1PM) and Gen2 (Plus 1 / Plus 1 PM).

Built from the documented protocol (docs/adapters.md) and the real bodies in tests/fixtures/shelly:
- Gen1: `GET /shelly`, `/status`, `/relay/N?turn=on|off|toggle[&timer=s]`, HTTP Basic auth on
  everything but /shelly when a password is set.
- Gen2: `GET /shelly`, `GET /rpc/<Method>?k=v`, `POST /rpc/<Method>` (JSON params, bare result),
  `POST /rpc` (JSON-RPC frame), and the WebSocket `/rpc` that aioshelly speaks. Digest auth
  with SHA-256, realm = device id, user admin: the RFC 7616 header over HTTP (nonce valid for
  `nonce_ttl_s`, nc must grow), the JSON `auth` object in POST /rpc and WebSocket frames.
  Unprotected: /shelly and Shelly.GetDeviceInfo.
- A manual clock (`advance()`) drives the devices' flip-back timers (Gen1 `timer`, Gen2
  `toggle_after`), so a test can watch the dead-man fire without waiting.
- Failure modes per test: HTTP 500, an HTML page, truncated JSON, a dropped connection, a slow
  answer; a wrong password is just a different `password`.

The server runs aiohttp in a background thread; state is guarded by a lock so the test thread
can press buttons and set power while requests are served.
"""

from __future__ import annotations

import asyncio
import base64
import copy
import hashlib
import itertools
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any
from urllib.request import parse_http_list, parse_keqv_list

from aiohttp import WSMsgType, web

from tests.conftest import FIXTURES

SHELLY = FIXTURES / "shelly"
LOOPBACK = "127.0.0.1"
#: HA2 of the JSON `auth` object: the firmware hashes this constant, not method and URI.
RPC_HA2 = hashlib.sha256(b"dummy_method:dummy_uri").hexdigest()
HTML_ERROR_PAGE = (
    "<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head>"
    "<body><h1>Bad Gateway</h1><p>The device did not answer.</p></body></html>"
)


def _fixture(name: str) -> Any:
    return json.loads((SHELLY / name).read_text(encoding="utf-8"))


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class Failure(StrEnum):
    HTTP_500 = "http_500"
    HTML_PAGE = "html_page"  # status 200, text/html: a captive portal or a proxy's page
    TRUNCATED_JSON = "truncated_json"  # valid HTTP, the JSON cut in half
    DISCONNECT = "disconnect"  # headers promise more than is sent, then the socket closes
    SLOW = "slow"  # answers after `delay_s`


FAILURE_KEY = web.RequestKey("failure", Failure)


@dataclass
class _FailurePlan:
    mode: Failure
    remaining: int | None  # None: until cleared
    delay_s: float
    paths: tuple[str, ...] | None


@dataclass
class EmulatorRequest:
    """One request as the emulator saw it (for assertions on what the client sent)."""

    method: str
    path: str
    query: dict[str, str]
    transport: str  # "http" or "ws"
    rpc_method: str | None = None
    params: dict[str, Any] | None = None
    authorized: bool | None = None  # None: no auth needed
    failure: Failure | None = None


@dataclass
class _Nonce:
    issued_at: float
    last_nc: int = 0
    uses: int = 0


@dataclass
class EmulatorClock:
    """The device's own clock: unix seconds, moved only by `advance()`."""

    now: float = 1_707_326_936.0  # the Plus 1PM dump's sys.unixtime


@dataclass
class _Relay:
    output: bool = False
    source: str = "init"
    timer_started: float | None = None
    timer_duration: float = 0.0
    timer_target: bool | None = None


@dataclass
class ShellyEmulator:
    """Common machinery; use ShellyGen1Emulator or ShellyGen2Emulator."""

    password: str | None = None
    power_w: float = 0.0
    model: str = ""
    device_id: str = ""
    mac: str = "AABBCCDDEEFF"
    clock: EmulatorClock = field(default_factory=EmulatorClock)
    requests: list[EmulatorRequest] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.RLock()
        self._relay = _Relay()
        self._failures: list[_FailurePlan] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self.port = 0

    # -- lifecycle ------------------------------------------------------------------------

    @property
    def host(self) -> str:
        """What goes into the config's `device.host`."""
        return f"{LOOPBACK}:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    def start(self) -> ShellyEmulator:
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._thread = threading.Thread(
            target=loop.run_forever, name=f"shelly-emulator-{self.model}", daemon=True
        )
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._serve(), loop).result(timeout=10)
        return self

    async def _serve(self) -> None:
        app = web.Application(middlewares=[self._failure_middleware])
        self._routes(app)
        self._runner = web.AppRunner(
            app, access_log=None, handle_signals=False, shutdown_timeout=0.2
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, LOOPBACK, 0)
        await site.start()
        self.port = int(self._runner.addresses[0][1])

    async def _shutdown(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        # Handlers still sleeping in a SLOW failure would otherwise die with the loop.
        others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in others:
            task.cancel()
        await asyncio.gather(*others, return_exceptions=True)

    def close(self) -> None:
        if self._loop is None:
            return
        asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._loop.close()
        self._loop = None

    def __enter__(self) -> ShellyEmulator:
        return self.start() if self._loop is None else self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _routes(self, app: web.Application) -> None:
        raise NotImplementedError

    # -- what a test controls -------------------------------------------------------------

    @property
    def output(self) -> bool:
        with self._lock:
            self._run_timers()
            return self._relay.output

    @property
    def source(self) -> str:
        with self._lock:
            self._run_timers()
            return self._relay.source

    @property
    def timer_remaining_s(self) -> float | None:
        with self._lock:
            self._run_timers()
            r = self._relay
            if r.timer_started is None:
                return None
            return r.timer_started + r.timer_duration - self.clock.now

    def set_power(self, watts: float) -> None:
        """What the load draws while the relay is on (reported only by metering models)."""
        with self._lock:
            self.power_w = watts

    def press_button(self, on: bool | None = None, *, source: str | None = None) -> None:
        """A person at the device: toggles (or sets) the output; cancels a running timer."""
        with self._lock:
            self._run_timers()
            target = (not self._relay.output) if on is None else on
            self._set_output(target, source or self.local_source, timer_s=None)

    local_source = "input"

    def advance(self, seconds: float) -> None:
        """Move the device's clock; flip-back timers that expire fire."""
        with self._lock:
            self.clock.now += seconds
            self._run_timers()

    def fail(
        self,
        mode: Failure,
        *,
        times: int | None = None,
        delay_s: float = 3.0,
        paths: tuple[str, ...] | None = None,
    ) -> None:
        """Make the next `times` requests (all when None) to `paths` (all when None) fail."""
        with self._lock:
            self._failures.append(_FailurePlan(mode, times, delay_s, paths))

    def clear_failures(self) -> None:
        with self._lock:
            self._failures.clear()

    def calls(
        self, rpc_method: str | None = None, path: str | None = None
    ) -> list[EmulatorRequest]:
        with self._lock:
            return [
                r
                for r in self.requests
                if (rpc_method is None or r.rpc_method == rpc_method)
                and (path is None or r.path == path)
            ]

    # -- device behaviour -----------------------------------------------------------------

    def _run_timers(self) -> None:
        r = self._relay
        if r.timer_started is not None and self.clock.now >= r.timer_started + r.timer_duration:
            target = bool(r.timer_target)
            r.timer_started, r.timer_target, r.timer_duration = None, None, 0.0
            r.output = target
            r.source = "timer"

    def _set_output(self, on: bool, source: str, *, timer_s: float | None) -> bool:
        """Apply a switch; returns the previous output. A new command replaces any timer."""
        r = self._relay
        was_on = r.output
        r.output = on
        r.source = source
        if timer_s is not None and timer_s > 0:
            r.timer_started, r.timer_duration, r.timer_target = self.clock.now, timer_s, not on
        else:
            r.timer_started, r.timer_target, r.timer_duration = None, None, 0.0
        return was_on

    def _drawn_w(self) -> float:
        return self.power_w if self._relay.output else 0.0

    # -- failures -------------------------------------------------------------------------

    def _take_failure(self, path: str) -> _FailurePlan | None:
        with self._lock:
            for plan in self._failures:
                if plan.paths is not None and path not in plan.paths:
                    continue
                if plan.remaining is not None:
                    plan.remaining -= 1
                    if plan.remaining <= 0:
                        self._failures.remove(plan)
                return plan
        return None

    @web.middleware
    async def _failure_middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        if request.headers.get("Upgrade", "").lower() == "websocket":
            return await handler(request)
        plan = self._take_failure(request.path)
        if plan is None:
            return await handler(request)
        request[FAILURE_KEY] = plan.mode
        if plan.mode is Failure.SLOW:
            await asyncio.sleep(plan.delay_s)
            return await handler(request)
        if plan.mode in (Failure.HTTP_500, Failure.HTML_PAGE):
            self._record(request, "http")
        if plan.mode is Failure.HTTP_500:
            return web.Response(status=500, text="500 Internal Server Error")
        if plan.mode is Failure.HTML_PAGE:
            return web.Response(status=200, text=HTML_ERROR_PAGE, content_type="text/html")
        answer = await handler(request)
        body = answer.body if isinstance(answer, web.Response) else b""
        data = bytes(body) if isinstance(body, bytes | bytearray) else b"{}"
        half = data[: len(data) // 2]
        # Keep the device's headers (a digest challenge must survive), replace the body.
        headers = {
            k: v
            for k, v in answer.headers.items()
            if k.lower() not in ("content-length", "content-type")
        }
        if plan.mode is Failure.TRUNCATED_JSON:
            return web.Response(
                status=answer.status, body=half, headers=headers, content_type="application/json"
            )
        # DISCONNECT: promise the whole body (at least two bytes), send half, hang up.
        stream = web.StreamResponse(status=answer.status, headers=headers)
        stream.content_type = "application/json"
        stream.content_length = max(len(data), 2)
        await stream.prepare(request)
        await stream.write(half)
        if request.transport is not None:
            request.transport.close()
        return stream

    def _record(self, request: web.Request, transport: str, **kw: Any) -> EmulatorRequest:
        rec = EmulatorRequest(
            method=request.method,
            path=request.path,
            query=dict(request.query),
            transport=transport,
            failure=request.get(FAILURE_KEY),
            **kw,
        )
        with self._lock:
            self.requests.append(rec)
        return rec


# =========================================================================== Gen1


@dataclass
class ShellyGen1Emulator(ShellyEmulator):
    """Shelly 1 (SHSW-1, no meter: reports a meaningless constant power) or 1PM (SHSW-PM)."""

    model: str = "SHSW-1"
    device_id: str = "shelly1-AABBCC"
    username: str = "admin"
    #: What a Shelly 1 reports in meters[0].power whatever the load does (evcc's sample).
    meter_junk_w: float = 81.5

    def _routes(self, app: web.Application) -> None:
        app.router.add_get("/shelly", self._shelly)
        app.router.add_get("/status", self._status)
        app.router.add_get("/relay/{n}", self._relay_call)

    @property
    def metered(self) -> bool:
        return self.model == "SHSW-PM"

    def _authorized(self, request: web.Request) -> bool:
        if self.password is None:
            return True
        header = request.headers.get("Authorization", "")
        scheme, _, blob = header.partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            user, _, pw = base64.b64decode(blob, validate=True).decode("utf-8").partition(":")
        except (ValueError, UnicodeDecodeError):
            return False
        return user == self.username and pw == self.password

    def _deny(self) -> web.Response:
        return web.Response(
            status=401,
            text="401 Unauthorized",
            headers={"WWW-Authenticate": f'Basic realm="{self.device_id}"'},
        )

    async def _shelly(self, request: web.Request) -> web.Response:
        self._record(request, "http")
        body = {
            "type": self.model,
            "mac": self.mac,
            "auth": self.password is not None,
            "fw": "20230913-112003/v1.14.0-gcb84623",
            "discoverable": True,
            "longid": 1,
            "num_outputs": 1,
            "num_meters": 1,
        }
        return web.json_response(body)

    def _relay_object(self) -> dict[str, Any]:
        r = self._relay
        remaining = (
            max(0, round(r.timer_started + r.timer_duration - self.clock.now))
            if r.timer_started is not None
            else 0
        )
        obj: dict[str, Any] = {
            "ison": r.output,
            "has_timer": r.timer_started is not None,
            "timer_started": int(r.timer_started) if r.timer_started is not None else 0,
            "timer_duration": int(r.timer_duration),
            "timer_remaining": remaining,
        }
        if self.metered:
            obj["overpower"] = False
        obj["source"] = r.source
        return obj

    async def _status(self, request: web.Request) -> web.Response:
        ok = self._authorized(request)
        self._record(request, "http", authorized=ok if self.password else None)
        if not ok:
            return self._deny()
        fixture = (
            "gen1_shelly1pm_SHSW-PM_GET_status.json"
            if self.metered
            else "gen1_shelly1_SHSW-1_GET_status.json"
        )
        body = _fixture(fixture)
        with self._lock:
            self._run_timers()
            body["relays"] = [self._relay_object()]
            body["unixtime"] = int(self.clock.now)
            if self.metered:
                body["meters"][0]["power"] = round(self._drawn_w(), 2)
                body["meters"][0]["timestamp"] = int(self.clock.now)
            else:
                body["meters"] = [{"power": self.meter_junk_w, "is_valid": True}]
        return web.json_response(body)

    async def _relay_call(self, request: web.Request) -> web.Response:
        ok = self._authorized(request)
        self._record(request, "http", authorized=ok if self.password else None)
        if not ok:
            return self._deny()
        if request.match_info["n"] != "0":
            return web.Response(status=404, text="Not Found")
        turn = request.query.get("turn")
        timer = request.query.get("timer")
        with self._lock:
            self._run_timers()
            if turn is not None:
                if turn not in ("on", "off", "toggle"):
                    return web.Response(status=400, text="Bad turn!")
                target = (not self._relay.output) if turn == "toggle" else turn == "on"
                try:
                    timer_s = float(timer) if timer else None
                except ValueError:
                    return web.Response(status=400, text="Bad timer!")
                self._set_output(target, "http", timer_s=timer_s)
            body = self._relay_object()
        return web.json_response(body)


# =========================================================================== Gen2


class RpcError(Exception):
    def __init__(self, code: int, message: str, http_status: int = 500) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.http_status = http_status


@dataclass
class ShellyGen2Emulator(ShellyEmulator):
    """Shelly Plus 1 PM (SNSW-001P16EU, metered) or Plus 1 (SNSW-001X16EU, no meter)."""

    model: str = "SNSW-001P16EU"
    device_id: str = "shellyplus1pm-aabbccddeeff"
    #: Firmware 1.x: a nonce stays valid for an hour and may be reused with a growing nc.
    nonce_ttl_s: float = 3600.0
    #: Emulate firmware that wants a fresh challenge for every HTTP request.
    single_use_nonces: bool = False
    #: The digest algorithm the HTTP challenge names: real firmware says SHA-256; "MD5" plays
    #: an impostor (or a man in the middle) asking for the weaker one, and accepts it.
    digest_algorithm: str = "SHA-256"
    local_source = "button"

    def __post_init__(self) -> None:
        super().__post_init__()
        self._nonces: dict[str, _Nonce] = {}
        self._nonce_seq = itertools.count(1)

    @property
    def metered(self) -> bool:
        return self.model in ("SNSW-001P16EU", "SNSW-001P8EU")

    @property
    def app(self) -> str:
        return "Plus1PM" if self.metered else "Plus1"

    def _routes(self, app: web.Application) -> None:
        app.router.add_get("/shelly", self._shelly)
        app.router.add_get("/rpc", self._websocket)
        app.router.add_post("/rpc", self._post_frame)
        app.router.add_get("/rpc/{method}", self._get_method)
        app.router.add_post("/rpc/{method}", self._post_method)

    # -- RPC methods --------------------------------------------------------------------

    def device_info(self) -> dict[str, Any]:
        info = _fixture("gen2_plus1pm_GET_shelly.json")
        info.update(
            id=self.device_id,
            mac=self.mac,
            model=self.model,
            app=self.app,
            auth_en=self.password is not None,
            auth_domain=self.device_id if self.password is not None else None,
        )
        return info

    def _switch_status(self) -> dict[str, Any]:
        r = self._relay
        if self.metered:
            status = _fixture("gen2_plus1pm_Switch.GetStatus_id0.result.json")
            watts = round(self._drawn_w(), 1)
            status["apower"] = watts
            status["current"] = round(watts / status["voltage"], 3)
            status["aenergy"]["minute_ts"] = int(self.clock.now)
        else:
            plain = _fixture("gen4_mini1_S4SW-001X8EU_Shelly.GetStatus.result.json")["switch:0"]
            status = copy.deepcopy(plain)
        status["output"] = r.output
        status["source"] = r.source
        if r.timer_started is not None:
            status["timer_started_at"] = round(r.timer_started, 2)
            status["timer_duration"] = r.timer_duration
        return status

    def _dispatch(self, method: str, params: dict[str, Any], source: str) -> Any:
        with self._lock:
            self._run_timers()
            if method == "Shelly.GetDeviceInfo":
                return self.device_info()
            if method == "Shelly.GetStatus":
                dump = _fixture("gen2_plus1pm_SNSW-001P16EU_fw1.1.0_aioshelly_dump.json")
                status = dump["status"]
                status["switch:0"] = self._switch_status()
                status["sys"]["unixtime"] = int(self.clock.now)
                return status
            if method == "Shelly.GetConfig":
                dump = _fixture("gen2_plus1pm_SNSW-001P16EU_fw1.1.0_aioshelly_dump.json")
                return dump["config"]
            if method in ("Switch.GetStatus", "Switch.Set", "Switch.Toggle"):
                if params.get("id") != 0:
                    raise RpcError(-105, f"Argument 'id', value {params.get('id')} not found!")
                if method == "Switch.GetStatus":
                    return self._switch_status()
                if method == "Switch.Toggle":
                    return {
                        "was_on": self._set_output(not self._relay.output, source, timer_s=None)
                    }
                on = params.get("on")
                if not isinstance(on, bool):
                    raise RpcError(-103, "Missing or bad argument 'on'!")
                after = params.get("toggle_after")
                if after is not None and (
                    isinstance(after, bool) or not isinstance(after, int | float)
                ):
                    raise RpcError(-103, "Bad argument 'toggle_after'!")
                return {"was_on": self._set_output(on, source, timer_s=after)}
        raise RpcError(404, f"No handler for {method}", http_status=404)

    # -- auth -----------------------------------------------------------------------------

    def issue_nonce(self, value: int | None = None) -> int:
        """A fresh challenge nonce (decimal, like the firmware's); `value` forces one."""
        with self._lock:
            nonce = int(self.clock.now) + next(self._nonce_seq) if value is None else value
            self._nonces[str(nonce)] = _Nonce(issued_at=self.clock.now)
            return nonce

    def _challenge(self, *, stale: bool = False) -> web.Response:
        nonce = self.issue_nonce()
        header = (
            f'Digest qop="auth", realm="{self.device_id}", nonce="{nonce}", '
            f"algorithm={self.digest_algorithm}"
        )
        if stale:
            header += ", stale=true"
        return web.Response(status=401, headers={"WWW-Authenticate": header})

    def _ha1(self) -> str:
        return sha256_hex(f"admin:{self.device_id}:{self.password}")

    def _hex(self, text: str) -> str:
        """The digest of the HTTP challenge's algorithm."""
        if self.digest_algorithm.upper() == "MD5":
            return hashlib.md5(text.encode("utf-8")).hexdigest()
        return sha256_hex(text)

    def _nonce_ok(self, nonce: str, nc: int) -> tuple[bool, bool]:
        """(accepted, stale): the nonce is ours, fresh, and nc grows."""
        with self._lock:
            state = self._nonces.get(nonce)
            if state is None:
                return False, False
            if self.clock.now - state.issued_at > self.nonce_ttl_s:
                del self._nonces[nonce]
                return False, True
            if self.single_use_nonces and state.uses > 0:
                return False, True
            if nc <= state.last_nc:
                return False, False
            state.last_nc = nc
            state.uses += 1
            return True, False

    def _check_header(self, request: web.Request) -> tuple[bool, bool]:
        """RFC 7616 `Authorization: Digest ...` (what httpx.DigestAuth and curl send)."""
        header = request.headers.get("Authorization", "")
        scheme, _, rest = header.partition(" ")
        if scheme.lower() != "digest":
            return False, False
        fields = parse_keqv_list(parse_http_list(rest))
        try:
            nc_text, nonce = fields["nc"], fields["nonce"]
            if (
                fields["username"] != "admin"
                or fields["realm"] != self.device_id
                or fields.get("algorithm", "MD5").upper() != self.digest_algorithm.upper()
                or fields.get("qop") != "auth"
                or fields["uri"] != request.raw_path
            ):
                return False, False
            ha1 = self._hex(f"admin:{self.device_id}:{self.password}")
            ha2 = self._hex(f"{request.method}:{fields['uri']}")
            expected = self._hex(f"{ha1}:{nonce}:{nc_text}:{fields['cnonce']}:auth:{ha2}")
            nc = int(nc_text, 16)
        except (KeyError, ValueError):
            return False, False
        if fields["response"] != expected:
            return False, False
        return self._nonce_ok(nonce, nc)

    def _check_auth_object(self, auth: Any) -> tuple[bool, bool]:
        """The JSON-RPC `auth` object (WebSocket frames, POST /rpc body)."""
        if not isinstance(auth, dict):
            return False, False
        try:
            nonce, cnonce = auth["nonce"], auth["cnonce"]
            nc = int(auth.get("nc", 1))
            if (
                auth["username"] != "admin"
                or auth["realm"] != self.device_id
                or auth.get("algorithm", "SHA-256") != "SHA-256"
            ):
                return False, False
            expected = sha256_hex(f"{self._ha1()}:{nonce}:{nc}:{cnonce}:auth:{RPC_HA2}")
        except (KeyError, TypeError, ValueError):
            return False, False
        if auth["response"] != expected:
            return False, False
        return self._nonce_ok(str(nonce), nc)

    def _needs_auth(self, method: str) -> bool:
        return self.password is not None and method != "Shelly.GetDeviceInfo"

    # -- HTTP forms -----------------------------------------------------------------------

    async def _shelly(self, request: web.Request) -> web.Response:
        self._record(request, "http")
        return web.json_response(self.device_info())

    def _http_call(
        self, request: web.Request, method: str, params: dict[str, Any], auth_obj: Any = None
    ) -> tuple[Any, web.Response | None]:
        """Run one call from HTTP; returns (result, None) or (None, an error response)."""
        authorized: bool | None = None
        if self._needs_auth(method):
            ok, stale = self._check_header(request)
            if not ok and auth_obj is not None:
                ok, stale = self._check_auth_object(auth_obj)
            authorized = ok
            self._record(request, "http", rpc_method=method, params=params, authorized=ok)
            if not ok:
                return None, self._challenge(stale=stale)
        else:
            self._record(request, "http", rpc_method=method, params=params, authorized=authorized)
        try:
            return self._dispatch(method, params, source="http"), None
        except RpcError as err:
            body = {"code": err.code, "message": err.message}
            return None, web.json_response(body, status=err.http_status)

    async def _get_method(self, request: web.Request) -> web.Response:
        params: dict[str, Any] = {}
        for key, value in request.query.items():
            try:
                params[key] = json.loads(value)
            except ValueError:
                params[key] = value
        result, error = self._http_call(request, request.match_info["method"], params)
        return error if error is not None else web.json_response(result)

    async def _post_method(self, request: web.Request) -> web.Response:
        raw = await request.read()
        try:
            params = json.loads(raw) if raw else {}
        except ValueError:
            return web.json_response({"code": -103, "message": "Bad JSON"}, status=400)
        if not isinstance(params, dict):
            return web.json_response({"code": -103, "message": "Bad params"}, status=400)
        result, error = self._http_call(request, request.match_info["method"], params)
        return error if error is not None else web.json_response(result)

    async def _post_frame(self, request: web.Request) -> web.Response:
        try:
            frame = json.loads(await request.read())
            method = frame["method"]
            params = frame.get("params") or {}
            if not isinstance(method, str) or not isinstance(params, dict):
                raise ValueError
        except (ValueError, KeyError, TypeError):
            return web.json_response({"code": -103, "message": "Bad request frame"}, status=400)
        result, error = self._http_call(request, method, params, frame.get("auth"))
        if error is not None and error.status == 401:
            return error
        reply: dict[str, Any] = {"id": frame.get("id"), "src": self.device_id}
        if frame.get("src") is not None:
            reply["dst"] = frame["src"]
        if error is not None:
            reply["error"] = json.loads(error.body)  # type: ignore[arg-type]
        else:
            reply["result"] = result
        return web.json_response(reply)

    # -- WebSocket (aioshelly's transport) ------------------------------------------------

    async def _websocket(self, request: web.Request) -> web.StreamResponse:
        if request.headers.get("Upgrade", "").lower() != "websocket":
            return web.Response(status=404, text="Not Found")
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        async for msg in ws:
            if msg.type is not WSMsgType.TEXT:
                continue
            try:
                frame = json.loads(msg.data)
            except ValueError:
                continue
            await ws.send_str(json.dumps(self._ws_reply(request, frame)))
        return ws

    def _ws_reply(self, request: web.Request, frame: dict[str, Any]) -> dict[str, Any]:
        method = frame.get("method")
        params = frame.get("params") or {}
        reply: dict[str, Any] = {"id": frame.get("id"), "src": self.device_id}
        if frame.get("src") is not None:
            reply["dst"] = frame["src"]
        if not isinstance(method, str) or not isinstance(params, dict):
            reply["error"] = {"code": -103, "message": "Bad request frame"}
            return reply
        authorized: bool | None = None
        if self._needs_auth(method):
            ok, _stale = self._check_auth_object(frame.get("auth"))
            authorized = ok
            if not ok:
                self._record(request, "ws", rpc_method=method, params=params, authorized=False)
                challenge = {
                    "auth_type": "digest",
                    "nonce": self.issue_nonce(),
                    "nc": 1,
                    "realm": self.device_id,
                    "algorithm": "SHA-256",
                }
                reply["error"] = {"code": 401, "message": json.dumps(challenge)}
                return reply
        self._record(request, "ws", rpc_method=method, params=params, authorized=authorized)
        try:
            reply["result"] = self._dispatch(method, params, source="WS_in")
        except RpcError as err:
            reply["error"] = {"code": err.code, "message": err.message}
        return reply


@contextmanager
def running(emulator: ShellyEmulator) -> Iterator[ShellyEmulator]:
    emulator.start()
    try:
        yield emulator
    finally:
        emulator.close()
