"""A faithful stand-in for the Viessmann IAM and IoT API (docs/cloud.md).

IAM: authorize (redirects with a code, as after a successful browser login), token endpoint
for authorization_code (the PKCE verifier is checked against the S256 challenge) and
refresh_token grants; refresh tokens can be revoked (400 invalid_grant). API: installations,
the feature list of the real Vitocal 200-S E8NEV dump, single features, and commands with
the dump's constraints. Failure modes: 401 / EXPIRED TOKEN body, 429 with limitReset,
500, 502, gateway offline. Every request is counted; the day limit is enforced like the
real one, so a test can see the budget being broken.

The command success body was never captured (tests/fixtures/README.md): it is answered as
`{"data": {"success": true, "reason": "COMMAND_EXECUTION_SUCCESS"}}`, and the client must not
depend on it.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import secrets
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from werkzeug.wrappers import Request, Response

from tests.conftest import FIXTURES
from tests.support.loopback_wsgi import LoopbackServer

VIESSMANN = FIXTURES / "viessmann"
FEATURES_FILE = VIESSMANN / "vitocal200s_E8NEV_features_2023.json"

INSTALLATION_ID = 2512345
GATEWAY_SERIAL = "7633107093013212"
DEVICE_ID = "0"
API_PREFIX = "/iot/v2"
CODE_TTL_S = 600


def fixture(name: str) -> Any:
    return json.loads((VIESSMANN / name).read_text(encoding="utf-8"))


def s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


@dataclass
class _Code:
    client_id: str
    redirect_uri: str
    challenge: str
    method: str
    scope: str
    issued: float
    used: bool = False


@dataclass
class _Refresh:
    client_id: str
    scope: str
    revoked: bool = False


@dataclass
class Call:
    at: float
    method: str
    path: str
    status: int


@dataclass
class Failure:
    """A failure mode for the next `count` API calls (None: until cleared)."""

    kind: str  # unauthorized | expired_body | rate_limit | 500 | 502 | gateway_offline | slow
    count: int | None = 1
    limit_reset_ms: int | None = None
    delay_s: float = 0.0


@dataclass
class _State:
    dhw_target: float = 50.0
    dhw_actual: float = 50.2
    one_time_charge: bool = False
    target_executable: bool = True
    features: list[dict[str, Any]] = field(default_factory=list)


class ViessmannEmulator:
    """IAM and API on one loopback server. Thread-safe; counters are for assertions."""

    def __init__(
        self,
        *,
        client_id: str = "ems-test-client",
        redirect_uri: str = "http://localhost:4200/",
        access_ttl_s: int = 3600,
        rotate_refresh_tokens: bool = True,
        day_limit: int = 1450,
        features_file: Path = FEATURES_FILE,
    ) -> None:
        self.client_id = client_id
        self.redirect_uri = redirect_uri
        self.access_ttl_s = access_ttl_s
        self.rotate_refresh_tokens = rotate_refresh_tokens
        self.day_limit = day_limit
        self._lock = threading.RLock()
        self._codes: dict[str, _Code] = {}
        self._refresh: dict[str, _Refresh] = {}
        self._access: dict[str, float] = {}  # token -> expires at
        self.failures: list[Failure] = []
        self.state = _State(features=copy.deepcopy(json.loads(features_file.read_text())["data"]))
        self.api_calls: list[Call] = []
        self.token_calls: Counter[str] = Counter()  # by grant_type / outcome
        self._token_times: list[float] = []
        self.authorize_calls = 0
        self.commands: list[tuple[str, str, dict[str, Any]]] = []
        self.server = LoopbackServer(self._app)
        self.url = self.server.url
        self._rewrite_uris()

    # ------------------------------------------------------------------ config helpers

    @property
    def auth_url(self) -> str:
        return f"{self.url}/idp/v3/authorize"

    @property
    def token_url(self) -> str:
        return f"{self.url}/idp/v3/token"

    @property
    def api_base(self) -> str:
        return f"{self.url}{API_PREFIX}"

    def viessmann_config(self, **overrides: Any) -> dict[str, Any]:
        """The `viessmann:` section pointing at this emulator."""
        cfg: dict[str, Any] = {
            "enabled": True,
            "client_id": self.client_id,
            "redirect_uri": self.redirect_uri,
            "auth_url": self.auth_url,
            "token_url": self.token_url,
            "api_base": self.api_base,
        }
        cfg.update(overrides)
        return cfg

    def stop(self) -> None:
        self.server.stop()

    @staticmethod
    def now() -> float:
        # Looked up at call time so freezegun's patched clock is what the emulator sees.
        return time.time()

    # ------------------------------------------------------------------ test controls

    def fail(self, kind: str, count: int | None = 1, **kw: Any) -> None:
        with self._lock:
            self.failures.append(Failure(kind, count, **kw))

    def clear_failures(self) -> None:
        with self._lock:
            self.failures.clear()

    def revoke_refresh_tokens(self) -> None:
        """What the account owner's password change or Viessmann's expiry does."""
        with self._lock:
            for r in self._refresh.values():
                r.revoked = True

    def expire_access_tokens(self) -> None:
        with self._lock:
            for tok in self._access:
                self._access[tok] = 0.0

    def owner_sets_target(self, value: float) -> None:
        """The owner changes the DHW target in the ViCare app."""
        with self._lock:
            self.state.dhw_target = float(value)

    @property
    def target(self) -> float:
        with self._lock:
            return self.state.dhw_target

    def api_calls_in(self, start: float, end: float) -> int:
        with self._lock:
            return sum(1 for c in self.api_calls if start <= c.at < end)

    def max_calls_in_any(self, window_s: float) -> int:
        """The largest number of API calls and token refreshes in any window of that length
        (the one-time code exchange of a login is a person's act, not the daemon's)."""
        with self._lock:
            times = sorted([c.at for c in self.api_calls] + self._token_times)
        best, lo = 0, 0
        for hi, t in enumerate(times):
            while times[lo] <= t - window_s:
                lo += 1
            best = max(best, hi - lo + 1)
        return best

    def browser_login(self, authorize_url: str) -> str:
        """Play the owner's browser: open the URL, log in, return where we are sent."""
        import httpx

        resp = httpx.get(authorize_url, follow_redirects=False, timeout=5)
        if resp.status_code != 302:
            raise AssertionError(f"authorize answered {resp.status_code}: {resp.text}")
        return resp.headers["Location"]

    # ------------------------------------------------------------------ WSGI

    def _app(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        try:
            response = self._dispatch(request)
        except Exception as exc:  # a bug in the emulator must show up in the test
            response = _json({"error": f"emulator crashed: {exc!r}"}, 599)
        return response(environ, start_response)

    def _dispatch(self, request: Request) -> Response:
        path = request.path
        if path == "/idp/v3/authorize" and request.method == "GET":
            return self._authorize(request)
        if path == "/idp/v3/token" and request.method == "POST":
            return self._token(request)
        if path.startswith(API_PREFIX + "/"):
            return self._api(request, path[len(API_PREFIX) :])
        return _json({"error": "not found"}, 404)

    # ------------------------------------------------------------------ IAM

    def _authorize(self, request: Request) -> Response:
        q = request.args
        with self._lock:
            self.authorize_calls += 1
            if q.get("client_id") != self.client_id:
                return _json({"error": "invalid_client"}, 400)
            if q.get("redirect_uri") != self.redirect_uri:
                return _json({"error": "invalid_request", "error_description": "redirect_uri"}, 400)
            if q.get("response_type") != "code":
                return _json({"error": "unsupported_response_type"}, 400)
            if q.get("code_challenge_method") != "S256" or not q.get("code_challenge"):
                return _json({"error": "invalid_request", "error_description": "PKCE S256"}, 400)
            code = secrets.token_urlsafe(24)
            self._codes[code] = _Code(
                client_id=self.client_id,
                redirect_uri=self.redirect_uri,
                challenge=q["code_challenge"],
                method="S256",
                scope=q.get("scope", ""),
                issued=self.now(),
            )
        params = {"code": code}
        if "state" in q:
            params["state"] = q["state"]
        return Response(
            status=302, headers={"Location": f"{self.redirect_uri}?{urlencode(params)}"}
        )

    def _token(self, request: Request) -> Response:
        form = request.form
        grant = form.get("grant_type", "")
        with self._lock:
            if grant == "refresh_token":
                self._token_times.append(self.now())
            if request.headers.get("Authorization"):
                # A public client sends no secret; Basic auth here means a misconfigured client.
                self.token_calls["rejected_client_auth"] += 1
                return _json({"error": "invalid_client"}, 401)
            if form.get("client_id") != self.client_id:
                self.token_calls["invalid_client"] += 1
                return _json({"error": "invalid_client"}, 401)
            if grant == "authorization_code":
                return self._grant_code(form)
            if grant == "refresh_token":
                return self._grant_refresh(form)
            self.token_calls["unsupported"] += 1
            return _json({"error": "unsupported_grant_type"}, 400)

    def _grant_code(self, form: Any) -> Response:
        code = self._codes.get(form.get("code", ""))
        if code is None or code.used or self.now() - code.issued > CODE_TTL_S:
            self.token_calls["code_invalid"] += 1
            return _json({"error": "invalid_grant", "error_description": "unknown code"}, 400)
        code.used = True
        if form.get("redirect_uri") != code.redirect_uri:
            self.token_calls["code_invalid"] += 1
            return _json({"error": "invalid_grant", "error_description": "redirect_uri"}, 400)
        verifier = form.get("code_verifier", "")
        if not verifier or s256(verifier) != code.challenge:
            self.token_calls["pkce_failed"] += 1
            return _json(
                {"error": "invalid_grant", "error_description": "code_verifier mismatch"}, 400
            )
        self.token_calls["authorization_code"] += 1
        return _json(self._issue(code.scope, refresh=None))

    def _grant_refresh(self, form: Any) -> Response:
        rt = form.get("refresh_token", "")
        rec = self._refresh.get(rt)
        if rec is None or rec.revoked:
            self.token_calls["refresh_refused"] += 1
            return _json(
                {"error": "invalid_grant", "error_description": "refresh token revoked"}, 400
            )
        self.token_calls["refresh_token"] += 1
        if self.rotate_refresh_tokens:
            rec.revoked = True
            return _json(self._issue(rec.scope, refresh=None))
        return _json(self._issue(rec.scope, refresh=rt))

    def _issue(self, scope: str, refresh: str | None) -> dict[str, Any]:
        access = secrets.token_urlsafe(32)
        self._access[access] = self.now() + self.access_ttl_s
        doc: dict[str, Any] = {
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": self.access_ttl_s,
            "scope": scope,
        }
        if "offline_access" in scope.split():
            if refresh is None:
                refresh = secrets.token_urlsafe(32)
                self._refresh[refresh] = _Refresh(self.client_id, scope)
            doc["refresh_token"] = refresh
        return doc

    # ------------------------------------------------------------------ API

    def _api(self, request: Request, path: str) -> Response:
        with self._lock:
            now = self.now()
            window = [c for c in self.api_calls if c.at > now - 86400]
            status, resp = self._api_locked(request, path, now, len(window))
            self.api_calls.append(Call(now, request.method, request.full_path, status))
            delay = next((f.delay_s for f in self.failures if f.kind == "slow"), 0.0)
        if delay:
            time.sleep(delay)
        return resp

    def _take_failure(self, kinds: tuple[str, ...]) -> Failure | None:
        for f in self.failures:
            if f.kind in kinds:
                if f.count is not None:
                    f.count -= 1
                    if f.count <= 0:
                        self.failures.remove(f)
                return f
        return None

    def _api_locked(
        self, request: Request, path: str, now: float, used: int
    ) -> tuple[int, Response]:
        f = self._take_failure(("rate_limit",))
        if f is not None or used >= self.day_limit:
            body = fixture("error_rate_limit.json")
            reset = f.limit_reset_ms if f and f.limit_reset_ms else int((now + 3600) * 1000)
            body["extendedPayload"]["limitReset"] = reset
            body["extendedPayload"]["requestCountLimit"] = self.day_limit
            return 429, _json(body, 429)
        auth = request.headers.get("Authorization", "")
        token = auth.removeprefix("Bearer ").strip() if auth.startswith("Bearer ") else ""
        f = self._take_failure(("unauthorized", "expired_body"))
        if f is not None and f.kind == "expired_body":
            # Seen in the wild with HTTP 200 (PyViCare reads the body, not the status).
            return 200, _json(fixture("error_expired_token.json"), 200)
        expires = self._access.get(token)
        if f is not None or expires is None or expires <= now:
            return 401, _json(fixture("error_expired_token.json"), 401)
        f = self._take_failure(("500", "502", "gateway_offline"))
        if f is not None:
            name, code = {
                "500": ("error_500.json", 500),
                "502": ("error_502.json", 502),
                "gateway_offline": ("error_gateway_offline.json", 400),
            }[f.kind]
            return code, _json(fixture(name), code)
        if path == "/equipment/installations" and request.method == "GET":
            return 200, _json(self._installations(request.args.get("includeGateways") == "true"))
        prefix = (
            f"/features/installations/{INSTALLATION_ID}/gateways/{GATEWAY_SERIAL}"
            f"/devices/{DEVICE_ID}/features"
        )
        if not path.startswith(prefix):
            return 404, _json(_error(404, "NOT_FOUND", f"no such resource {path}"), 404)
        rest = path[len(prefix) :].strip("/")
        if not rest and request.method == "GET":
            return 200, _json({"data": [self._feature(f["feature"]) for f in self.state.features]})
        parts = rest.split("/")
        if len(parts) == 1 and request.method == "GET":
            feat = self._feature(parts[0])
            if feat is None:
                return 404, _json(_error(404, "FEATURE_NOT_FOUND", parts[0]), 404)
            return 200, _json({"data": feat})
        if len(parts) == 3 and parts[1] == "commands" and request.method == "POST":
            return self._command(parts[0], parts[2], request)
        return 404, _json(_error(404, "NOT_FOUND", path), 404)

    def _installations(self, gateways: bool) -> dict[str, Any]:
        inst: dict[str, Any] = {
            "id": INSTALLATION_ID,
            "description": "Home",
            "aggregatedStatus": "WorksProperly",
        }
        if gateways:
            inst["gateways"] = [
                {
                    "serial": GATEWAY_SERIAL,
                    "version": "1.1.0.0",
                    "gatewayType": "VitoconnectOpto1",
                    "installationId": INSTALLATION_ID,
                    "devices": [
                        {
                            "gatewaySerial": GATEWAY_SERIAL,
                            "id": "gateway",
                            "deviceType": "vitoconnect",
                            "modelId": "Heatbox1",
                            "status": "Online",
                            "roles": ["type:gateway;VitoconnectOpto1"],
                        },
                        {
                            "gatewaySerial": GATEWAY_SERIAL,
                            "id": DEVICE_ID,
                            "deviceType": "heating",
                            "modelId": "E3_Vitocal_16",
                            "status": "Online",
                            "roles": ["type:heatpump", "type:E3"],
                        },
                    ],
                }
            ]
        return {"data": [inst]}

    def _rewrite_uris(self) -> None:
        old = "https://api.viessmann.com/iot/v1/equipment/installations/#######/gateways/################"
        new = f"{self.api_base}/features/installations/{INSTALLATION_ID}/gateways/{GATEWAY_SERIAL}"
        text = json.dumps(self.state.features).replace(old, new)
        text = text.replace("################", GATEWAY_SERIAL)
        self.state.features = json.loads(text)

    def _raw(self, name: str) -> dict[str, Any] | None:
        return next((f for f in self.state.features if f["feature"] == name), None)

    def _feature(self, name: str) -> dict[str, Any] | None:
        """A feature as the API shows it now (DHW values follow the emulated state)."""
        feat = self._raw(name)
        if feat is None:
            return None
        feat = copy.deepcopy(feat)
        st = self.state
        if name == "heating.dhw.temperature.main":
            feat["properties"]["value"]["value"] = _num(st.dhw_target)
            feat["commands"]["setTargetTemperature"]["isExecutable"] = st.target_executable
        elif name == "heating.dhw.sensors.temperature.hotWaterStorage":
            feat["properties"]["value"]["value"] = st.dhw_actual
        elif name == "heating.dhw.oneTimeCharge":
            feat["properties"]["active"]["value"] = st.one_time_charge
            feat["commands"]["activate"]["isExecutable"] = not st.one_time_charge
            feat["commands"]["deactivate"]["isExecutable"] = st.one_time_charge
        return feat

    def _command(self, name: str, command: str, request: Request) -> tuple[int, Response]:
        feat = self._feature(name)
        if feat is None:
            return 404, _json(_error(404, "FEATURE_NOT_FOUND", name), 404)
        cmd = feat.get("commands", {}).get(command)
        if cmd is None:
            return 404, _json(_error(404, "COMMAND_NOT_FOUND", command), 404)
        if not cmd.get("isExecutable"):
            return 400, _json(_error(400, "COMMAND_NOT_EXECUTABLE", command), 400)
        if not request.content_type or "application/json" not in request.content_type:
            return 400, _json(_error(400, "VALIDATION_ERROR", "expected JSON"), 400)
        try:
            body = json.loads(request.get_data(as_text=True) or "{}")
        except ValueError:
            return 400, _json(_error(400, "VALIDATION_ERROR", "body is not JSON"), 400)
        for pname, spec in (cmd.get("params") or {}).items():
            if pname not in body:
                if spec.get("required"):
                    return 400, _json(_error(400, "VALIDATION_ERROR", f"{pname} missing"), 400)
                continue
            value = body[pname]
            c = spec.get("constraints") or {}
            if spec.get("type") == "number":
                if isinstance(value, bool) or not isinstance(value, int | float):
                    return 400, _json(_error(400, "VALIDATION_ERROR", f"{pname} not a number"), 400)
                if value < c.get("min", value) or value > c.get("max", value):
                    return 400, _json(
                        _error(400, "VALIDATION_ERROR", f"{pname} {value} out of range"), 400
                    )
                step = c.get("stepping")
                steps = (value - c.get("min", 0)) / step if step else 0
                if abs(steps - round(steps)) > 1e-9:
                    return 400, _json(
                        _error(400, "VALIDATION_ERROR", f"{pname} {value} off stepping {step}"),
                        400,
                    )
        self.commands.append((name, command, body))
        if name == "heating.dhw.temperature.main" and command == "setTargetTemperature":
            self.state.dhw_target = float(body["temperature"])
        elif name == "heating.dhw.oneTimeCharge":
            self.state.one_time_charge = command == "activate"
        return 200, _json({"data": {"success": True, "reason": "COMMAND_EXECUTION_SUCCESS"}})


def _num(v: float) -> int | float:
    return int(v) if float(v).is_integer() else v


def _error(code: int, kind: str, message: str) -> dict[str, Any]:
    return {
        "viErrorId": f"req-{secrets.token_hex(8)}",
        "statusCode": code,
        "errorType": kind,
        "message": message,
    }


def _json(doc: Any, status: int = 200) -> Response:
    return Response(json.dumps(doc), status=status, mimetype="application/json")
