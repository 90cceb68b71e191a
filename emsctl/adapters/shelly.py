"""Shelly relays behind one Actuator: Gen1 over its HTTP API (`/relay/N`, `/status`, Basic
auth) and Gen2 over JSON-RPC (`POST /rpc`, digest auth with SHA-256 as the firmware does it;
a challenge for any other algorithm is refused).

Every call has one total deadline (`timeout_s`, retries and the digest challenge included,
however slowly the device answers: emsctl/adapters/deadline.py); only connection errors and
timeouts are retried. A switch is always followed by a read-back, and the reading is what the
device reports, not what we asked for.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Generator
from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from urllib.request import parse_http_list, parse_keqv_list

import httpx

from emsctl import clock
from emsctl.adapters import deadline
from emsctl.adapters.base import AdapterError, AuthFailed, BadResponse, DeviceUnreachable
from emsctl.adapters.credentials import ALL_LOADS_VAR, Credentials, load_var
from emsctl.config import DeviceConfig, LoadConfig
from emsctl.model import LoadId, LoadReading

log = logging.getLogger(__name__)

#: Gen2 firmware knows one user only.
GEN2_USER = "admin"
#: The digest algorithm of Gen2 firmware; a device asking for another one is not answered.
GEN2_DIGEST = "SHA-256"
#: Pause before retry n (seconds); kept short because the whole call shares one deadline.
BACKOFF_S = (0.2, 0.5, 1.0, 1.0, 1.0)
#: Below this much time left, another attempt cannot finish; give up instead.
MIN_ATTEMPT_S = 0.05
_RPC_IDS = itertools.count(1)


# --------------------------------------------------------------------------- override data


class SourceKind(StrEnum):
    """Who changed the output last, as far as the device's `source` tells."""

    NETWORK = "network"  # an HTTP/WebSocket/MQTT/cloud call: us, an app or home automation
    TIMER = "timer"  # the device's own timer: our dead-man ran out
    LOCAL = "local"  # the button or the switch input at the device: a person
    STARTUP = "startup"  # power-up restore
    UNKNOWN = "unknown"


_SOURCES: dict[str, SourceKind] = {
    "http": SourceKind.NETWORK,
    "http_in": SourceKind.NETWORK,
    "ws_in": SourceKind.NETWORK,
    "ws": SourceKind.NETWORK,
    "mqtt": SourceKind.NETWORK,
    "cloud": SourceKind.NETWORK,
    "coap": SourceKind.NETWORK,
    "ui": SourceKind.NETWORK,
    "schedule": SourceKind.NETWORK,
    "timer": SourceKind.TIMER,
    "input": SourceKind.LOCAL,
    "button": SourceKind.LOCAL,
    "switch": SourceKind.LOCAL,
    "loopback": SourceKind.LOCAL,
    "init": SourceKind.STARTUP,
}


def classify_source(source: str | None) -> SourceKind:
    """Map a Shelly `source` (Gen1 relays[].source, Gen2 Switch `source`) to a kind."""
    if not source:
        return SourceKind.UNKNOWN
    return _SOURCES.get(source.lower(), SourceKind.UNKNOWN)


def manual_change(commanded_on: bool | None, reading: LoadReading) -> bool:
    """True when the output differs from what EMS last commanded and the device's own timer
    (our dead-man) did not do it: someone pressed the button or used an app."""
    if commanded_on is None or reading.relay_on is None:
        return False
    if reading.relay_on == commanded_on:
        return False
    return classify_source(reading.source) is not SourceKind.TIMER


def reading_for_error(exc: AdapterError) -> LoadReading:
    """What the controller records when a device could not be read: unreachable for this
    tick, or (wrong password) unavailable until a person fixes it."""
    return LoadReading(error=str(exc), available=not isinstance(exc, AuthFailed))


# --------------------------------------------------------------------------- probe


@dataclass(frozen=True, slots=True)
class DeviceInfo:
    """`GET /shelly`: what the device says it is (never needs a password)."""

    host: str
    gen: int
    model: str
    device_id: str
    mac: str
    firmware: str
    auth_required: bool
    name: str | None = None


def parse_info(host: str, doc: Any) -> DeviceInfo:
    if not isinstance(doc, dict):
        raise BadResponse("/shelly did not return an object", device=host)
    try:
        if "gen" in doc:  # Gen2 and later
            return DeviceInfo(
                host=host,
                gen=int(doc["gen"]),
                model=str(doc["model"]),
                device_id=str(doc["id"]),
                mac=str(doc["mac"]),
                firmware=str(doc.get("fw_id") or doc.get("ver") or ""),
                auth_required=bool(doc["auth_en"]),
                name=doc.get("name"),
            )
        return DeviceInfo(  # Gen1 has no `gen` key
            host=host,
            gen=1,
            model=str(doc["type"]),
            device_id=str(doc.get("hostname") or doc["mac"]),
            mac=str(doc["mac"]),
            firmware=str(doc.get("fw", "")),
            auth_required=bool(doc["auth"]),
            name=doc.get("name"),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise BadResponse(f"/shelly lacks {exc} (not a Shelly?)", device=host) from None


def probe(
    host: str, *, timeout_s: float = 5.0, transport: httpx.BaseTransport | None = None
) -> DeviceInfo:
    """Ask a host which Shelly it is (`GET /shelly`)."""
    with deadline.client(
        timeout_s, base_url=f"http://{host}", timeout=timeout_s, transport=transport
    ) as client:
        response = _send(client, host, "GET", "/shelly", timeout_s=timeout_s, retries=0)
        return parse_info(host, _json(host, response))


# --------------------------------------------------------------------------- HTTP plumbing


def _send(
    client: httpx.Client,
    device: str,
    method: str,
    path: str,
    *,
    timeout_s: float,
    retries: int,
    params: dict[str, Any] | None = None,
    json_body: dict[str, Any] | None = None,
) -> httpx.Response:
    """One call with one total deadline (every request of it, however slow the device);
    retries connection errors and timeouts only."""
    with deadline.within(timeout_s) as end:
        attempt = 0
        while True:
            remaining = max(end - deadline.monotonic(), MIN_ATTEMPT_S)
            try:
                return client.request(
                    method, path, params=params, json=json_body, timeout=httpx.Timeout(remaining)
                )
            except httpx.ProtocolError as exc:
                if "Digest" in str(exc):  # a malformed WWW-Authenticate header
                    raise BadResponse(f"{path}: bad auth challenge: {exc}", device=device) from None
                error: Exception = exc
            except httpx.TransportError as exc:
                error = exc
            except httpx.HTTPError as exc:  # pragma: no cover - invalid URL and the like
                raise DeviceUnreachable(f"{path}: {exc}", device=device) from None
            attempt += 1
            pause = BACKOFF_S[min(attempt, len(BACKOFF_S)) - 1]
            left = end - deadline.monotonic()
            if attempt > retries or left - pause < MIN_ATTEMPT_S:
                what = (
                    f"no answer within {timeout_s:g} s"
                    if isinstance(error, httpx.TimeoutException)
                    else f"connection failed ({error or type(error).__name__})"
                )
                tries = f" after {attempt} attempts" if attempt > 1 else ""
                raise DeviceUnreachable(f"{method} {path}: {what}{tries}", device=device) from None
            log.debug(
                "%s: %s %s failed (%r); retrying in %.1f s", device, method, path, error, pause
            )
            clock.sleep(pause)


def _json(device: str, response: httpx.Response) -> Any:
    path = response.request.url.path
    try:
        return response.json()
    except ValueError:
        snippet = response.content[:80].decode("utf-8", "replace").strip()
        kind = "an HTML page" if snippet.lower().startswith(("<!doctype", "<html")) else "no JSON"
        raise BadResponse(
            f"{path}: HTTP {response.status_code} with {kind}: {snippet!r}", device=device
        ) from None


def _check_status(device: str, response: httpx.Response, *, password: str | None, var: str) -> None:
    path = response.request.url.path
    if response.status_code == httpx.codes.UNAUTHORIZED:
        if password is None:
            raise AuthFailed(
                f"{path}: the device asks for a password and none is set "
                f"(set {var} or {ALL_LOADS_VAR}, see docs/adapters.md)",
                device=device,
            )
        raise AuthFailed(f"{path}: password refused (check {var})", device=device)
    if not response.is_success:
        snippet = response.content[:120].decode("utf-8", "replace").strip()
        raise BadResponse(f"{path}: HTTP {response.status_code}: {snippet!r}", device=device)


def _bool(value: Any, what: str, device: str) -> bool:
    if not isinstance(value, bool):
        raise BadResponse(f"{what} is {value!r}, not true/false", device=device)
    return value


def _watts(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


# --------------------------------------------------------------------------- actuators


class ShellyActuator:
    """What both generations share: client, deadlines, read-back after switching."""

    generation = 0

    def __init__(
        self,
        load: LoadId,
        device: DeviceConfig,
        *,
        password: str | None = None,
        metered: bool = False,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if not device.host:
            raise ValueError(f"{load}: a Shelly device needs a host")
        self.load = load
        self.host = device.host
        self.channel = device.channel
        self.timeout_s = device.timeout_s
        self.retries = device.retries
        #: Only a metering device (Plus 1 PM) reports the load's power.
        self.metered = metered
        self.password = password or None
        #: The output EMS last commanded and the device accepted (None before any command).
        self.commanded_on: bool | None = None
        self.last_reading: LoadReading | None = None
        self._name = f"{load.value} ({self.host})"
        self._client = deadline.client(
            self.timeout_s,
            base_url=f"http://{self.host}",
            timeout=httpx.Timeout(self.timeout_s),
            auth=self._auth(device),
            transport=transport,
            headers={"User-Agent": "emsctl"},
        )

    def _auth(self, device: DeviceConfig) -> httpx.Auth | None:
        raise NotImplementedError

    def _call(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        json_body: dict[str, Any] | None = None,
    ) -> Any:
        response = _send(
            self._client,
            self._name,
            method,
            path,
            timeout_s=self.timeout_s,
            retries=self.retries,
            params=params,
            json_body=json_body,
        )
        _check_status(self._name, response, password=self.password, var=load_var(self.load))
        return _json(self._name, response)

    # -- Actuator -----------------------------------------------------------------------

    def read(self) -> LoadReading:
        reading = self._read()
        self.last_reading = reading
        return reading

    def switch(self, on: bool, *, deadman_s: int | None = None) -> LoadReading:
        """Command the output (ON with the device's own off-timer when deadman_s is given;
        OFF never gets a timer), then re-read what the device really did."""
        timer = int(deadman_s) if on and deadman_s and deadman_s > 0 else None
        self._command(on, timer)
        self.commanded_on = on
        reading = self.read()
        if reading.relay_on is not on:
            log.warning(
                "%s: commanded %s, device reports %s (source %s)",
                self._name,
                "on" if on else "off",
                "on" if reading.relay_on else "off",
                reading.source,
            )
        return reading

    def info(self) -> DeviceInfo:
        return parse_info(self.host, self._call("GET", "/shelly"))

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> ShellyActuator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.load.value!r}, host={self.host!r})"

    # -- per generation -----------------------------------------------------------------

    def _read(self) -> LoadReading:
        raise NotImplementedError

    def _command(self, on: bool, timer_s: int | None) -> None:
        raise NotImplementedError


class ShellyGen1Actuator(ShellyActuator):
    """Shelly 1 / 1PM (Gen1): `GET /relay/N?turn=on|off[&timer=s]`, `GET /status`.

    HTTP Basic auth when a password is configured (user from `device.username`). The Shelly
    1's `meters[0].power` is no measurement; power is read only when `metered`.
    """

    generation = 1

    def _auth(self, device: DeviceConfig) -> httpx.Auth | None:
        return httpx.BasicAuth(device.username, self.password) if self.password else None

    def _read(self) -> LoadReading:
        doc = self._call("GET", "/status")
        n = self.channel
        try:
            relay = doc["relays"][n]
        except (KeyError, IndexError, TypeError):
            raise BadResponse(f"/status has no relays[{n}]", device=self._name) from None
        if not isinstance(relay, dict):
            raise BadResponse(f"/status relays[{n}] is not an object", device=self._name)
        ison = _bool(relay.get("ison"), f"/status relays[{n}].ison", self._name)
        source = relay.get("source") if isinstance(relay.get("source"), str) else None
        power = None
        if self.metered:
            try:
                power = _watts(doc["meters"][n]["power"])
            except (KeyError, IndexError, TypeError):
                power = None
            if power is None:
                log.warning("%s: /status has no meters[%d].power", self._name, n)
        return LoadReading(relay_on=ison, power_w=power, source=source)

    def _command(self, on: bool, timer_s: int | None) -> None:
        params: dict[str, Any] = {"turn": "on" if on else "off"}
        if timer_s is not None:
            params["timer"] = timer_s
        relay = self._call("GET", f"/relay/{self.channel}", params=params)
        if not isinstance(relay, dict) or "ison" not in relay:
            raise BadResponse(
                f"/relay/{self.channel} answered {relay!r:.80}, not a relay object",
                device=self._name,
            )


class ShellyGen2Actuator(ShellyActuator):
    """Shelly Plus 1 / Plus 1 PM (Gen2+): JSON-RPC frames by `POST /rpc`.

    POST rather than `GET /rpc/Method?...`: parameters keep their JSON types, and the reply
    is a documented frame with `result` or `error{code,message}`. Digest auth (SHA-256,
    user admin) is httpx's RFC 7616 implementation; it answers the 401 challenge once and
    reuses the nonce with a growing nc afterwards. A challenge for MD5 (or anything but
    SHA-256) is refused before any answer is computed: `AuthFailed` naming the device.
    """

    generation = 2

    def _auth(self, device: DeviceConfig) -> httpx.Auth | None:
        return Sha256DigestAuth(GEN2_USER, self.password, self._name) if self.password else None

    def rpc(self, method: str, params: dict[str, Any] | None = None) -> Any:
        """One JSON-RPC call; returns its `result`."""
        frame: dict[str, Any] = {"id": next(_RPC_IDS), "src": "emsctl", "method": method}
        if params is not None:
            frame["params"] = params
        doc = self._call("POST", "/rpc", json_body=frame)
        if not isinstance(doc, dict):
            raise BadResponse(f"{method}: reply is not an object: {doc!r:.80}", device=self._name)
        if "error" in doc:
            err = doc["error"] if isinstance(doc["error"], dict) else {}
            code, message = err.get("code"), err.get("message", doc["error"])
            if code == httpx.codes.UNAUTHORIZED:
                raise AuthFailed(f"{method}: password refused", device=self._name)
            raise BadResponse(f"{method} failed: code {code}: {message}", device=self._name)
        if "result" in doc:
            return doc["result"]
        if "id" in doc or "src" in doc:
            raise BadResponse(f"{method}: frame without result or error", device=self._name)
        # Some firmware answers with the bare result object (as GET /rpc/<Method> does).
        return doc

    def _read(self) -> LoadReading:
        status = self.rpc("Switch.GetStatus", {"id": self.channel})
        if not isinstance(status, dict):
            raise BadResponse(f"Switch.GetStatus result is {status!r:.80}", device=self._name)
        output = _bool(status.get("output"), "Switch.GetStatus output", self._name)
        source = status.get("source") if isinstance(status.get("source"), str) else None
        if status.get("errors"):
            log.warning("%s: device reports errors %s", self._name, status["errors"])
        power = _watts(status.get("apower")) if self.metered else None
        if self.metered and power is None:
            log.warning("%s: Switch.GetStatus has no apower (not a Plus 1 PM?)", self._name)
        return LoadReading(relay_on=output, power_w=power, source=source)

    def _command(self, on: bool, timer_s: int | None) -> None:
        params: dict[str, Any] = {"id": self.channel, "on": on}
        if timer_s is not None:
            params["toggle_after"] = timer_s
        result = self.rpc("Switch.Set", params)
        if not isinstance(result, dict) or "was_on" not in result:
            raise BadResponse(f"Switch.Set answered {result!r:.80}", device=self._name)

    def info(self) -> DeviceInfo:
        # Shelly.GetDeviceInfo never needs auth either; /shelly is the same object.
        return parse_info(self.host, self._call("GET", "/shelly"))


def digest_algorithm(response: httpx.Response) -> str | None:
    """The algorithm of the digest challenge httpx would answer (its first `Digest` header);
    RFC 7616 makes a missing one MD5. None when there is no digest challenge."""
    for header in response.headers.get_list("www-authenticate"):
        scheme, _, rest = header.partition(" ")
        if scheme.lower() == "digest":
            fields = parse_keqv_list(parse_http_list(rest))
            return str(fields.get("algorithm") or "MD5")
    return None


class Sha256DigestAuth(httpx.DigestAuth):
    """httpx's digest, answering only a SHA-256 challenge as Gen2 firmware sends it.

    A device (or whoever stands in its place) asking for MD5 would get a response computed
    with the weaker hash, open to offline guessing of the password; it gets none, and the
    call fails with `AuthFailed` naming the device.
    """

    def __init__(self, username: str, password: str, device: str) -> None:
        super().__init__(username, password)
        self.device = device

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        flow = super().auth_flow(request)
        outgoing = next(flow)
        while True:
            response = yield outgoing
            if response.status_code == httpx.codes.UNAUTHORIZED:
                algorithm = digest_algorithm(response)
                if algorithm is not None and algorithm.upper() != GEN2_DIGEST:
                    raise AuthFailed(
                        f"the device asks for digest authentication with {algorithm}, not "
                        f"{GEN2_DIGEST} as Shelly Gen2 firmware does: refused, the password is "
                        "not sent (is this really the Shelly? check the host and the device)",
                        device=self.device,
                    )
            try:
                outgoing = flow.send(response)
            except StopIteration:
                return


ACTUATORS: dict[str, type[ShellyActuator]] = {
    "shelly_gen1": ShellyGen1Actuator,
    "shelly_gen2": ShellyGen2Actuator,
}


def make_actuator(
    load: LoadId,
    load_config: LoadConfig,
    credentials: Credentials | None = None,
    *,
    transport: httpx.BaseTransport | None = None,
) -> ShellyActuator:
    """The actuator for a load whose device is a Shelly. Raises ValueError otherwise."""
    device = load_config.device
    cls = ACTUATORS.get(device.type)
    if cls is None:
        raise ValueError(f"{load}: device type {device.type!r} is not a Shelly")
    password = credentials.shelly_password(load) if credentials else None
    return cls(
        load,
        device,
        password=password,
        metered=load_config.power_source == "meter",
        transport=transport,
    )
