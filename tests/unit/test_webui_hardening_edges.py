"""The web UI's edges, second round (issue 14): the history page whatever the samples, the
redirect without a password, sessions when the database hiccups, host names, bodies and times
that used to be a 500, and a login throttle that one attacker cannot turn against the owner."""

from __future__ import annotations

import hashlib
import itertools
import json
import math
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from emsctl import clock
from emsctl.model import LoadId, LoadReading, LoadStatus, Snapshot, State
from tests.support import webui_kit
from tests.support.loopback_wsgi import LoopbackServer
from tests.support.webui_kit import PASSWORD, UiEnv, make_env
from webui import auth

env = webui_kit.env
locked_env = webui_kit.locked_env
frozen = webui_kit.frozen


@pytest.fixture(autouse=True)
def _fresh() -> None:
    auth.throttle._failures.clear()
    auth.revoked.forget()


def _login(e: UiEnv, client: FlaskClient, password: str = PASSWORD) -> Any:
    token = e.csrf(client)
    return client.post("/login", data={"name": "anna", "password": password, "csrf_token": token})


# ---------------------------------------------------------------- 1. the chart, on the page


@pytest.mark.parametrize(
    "glitch",
    [
        {"grid_w": -4_294_967_295.0},  # a Modbus overflow: /history was 22 MB
        {"grid_w": -1e11},  # 189 MB
        {"grid_w": 1e308},  # OverflowError: a 500 for 24 h
        {"pv_w": 1e308, "grid_w": -1e308},
        {"soc_pct": 6553.5, "pv_w": 9.9e15},
    ],
)
def test_history_page_answers_and_stays_small_after_a_glitched_sample(
    env: UiEnv, glitch: dict[str, float]
) -> None:
    now = clock.now()
    wb_a = LoadId.WB_A
    for m in range(0, 24 * 60, 10):
        at = now - timedelta(minutes=m)
        values: dict[str, Any] = {"grid_w": -1500.0, "pv_w": 3000.0, "soc_pct": 70.0}
        if m == 600:
            values.update(glitch)
        status = LoadStatus(wb_a, State.ON, at, reading=LoadReading(relay_on=True))
        env.store.record_sample(at, Snapshot(at=at, **values), {wb_a: status})
    resp = env.client.get("/history")
    assert resp.status_code == 200
    assert len(resp.get_data()) < 200_000
    assert "kW</text>" in resp.get_data(as_text=True)


@pytest.mark.parametrize("bad", [math.inf, -math.inf, math.nan, 1e308])
def test_status_page_and_api_survive_non_finite_values_and_ages(env: UiEnv, bad: float) -> None:
    """What reaches the UI before (or without) the plausibility limits: the page used to be a
    500 for an infinite or NaN age, and the API wrote NaN/Infinity, which is not JSON."""
    r = env.controller.latest()
    assert r is not None
    snap = replace(
        r.snapshot,
        grid_w=bad,
        soc_pct=bad,
        outdoor_c=bad,
        ages_s={k: bad for k in r.snapshot.ages_s},
    )
    env.controller.publish(replace(r, snapshot=snap, surplus_w=bad, tick_ms=bad))
    page = env.client.get("/")
    assert page.status_code == 200
    assert len(page.get_data()) < 100_000
    resp = env.client.get("/api/status")
    assert resp.status_code == 200

    def refuse(token: str) -> None:
        raise AssertionError(f"{token} is not JSON")

    body = json.loads(resp.get_data(as_text=True), parse_constant=refuse)
    grid = body["measurements"]["grid_w"]
    assert grid["value"] is None or math.isfinite(grid["value"])


# ---------------------------------------------------------------- 2. redirects


@pytest.mark.parametrize(
    "query",
    ["next=/%09/evil.example", "next=/%0A/evil.example", "next=/%0D%0A/x", "next=%2F%2Fe.x"],
)
def test_without_a_password_login_redirects_home_not_away(env: UiEnv, query: str) -> None:
    # Zero-click: a link to /login?next=... used to send the owner's browser elsewhere.
    resp = env.client.get(f"/login?{query}")
    assert resp.status_code == 302
    assert resp.headers["Location"] == "/"


def test_a_redirect_over_the_wire_stays_on_the_site(locked_env: UiEnv) -> None:
    """What a browser sees: the Location header on the socket, not Flask's view of it."""
    import http.client

    server = LoopbackServer(locked_env.app)
    try:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
        conn.request("GET", "/api/session")
        resp = conn.getresponse()
        token = json.loads(resp.read())["csrf_token"]
        cookie = resp.getheader("Set-Cookie", "").split(";", 1)[0]
        body = f"name=anna&password={PASSWORD}&csrf_token={token}&next=/%09/evil.example"
        conn.request(
            "POST",
            "/login",
            body=body,
            headers={"Content-Type": "application/x-www-form-urlencoded", "Cookie": cookie},
        )
        resp = conn.getresponse()
        resp.read()
        assert resp.status == 302
        assert resp.getheader("Location") == "/"
        conn.close()
    finally:
        server.stop()


# ---------------------------------------------------------------- 3. sessions


def test_a_logged_out_cookie_stays_refused_when_the_database_hiccups_once(
    locked_env: UiEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The store answers None on a read error: that must not be taken for "nobody ever logged
    out" for the rest of the run."""
    assert _login(locked_env, locked_env.client).status_code == 302
    cookie = locked_env.client.get_cookie("ems_session")
    assert cookie is not None
    token = locked_env.csrf()
    assert locked_env.client.post("/logout", data={"csrf_token": token}).status_code == 302

    # A restarted daemon whose first read of the list fails.
    auth.revoked.forget()
    real_get = locked_env.store.kv_get
    calls = {"n": 0}

    def flaky(key: str) -> str | None:
        calls["n"] += 1
        return None if calls["n"] == 1 else real_get(key)

    monkeypatch.setattr(locked_env.store, "kv_get", flaky)
    stolen = locked_env.app.test_client()
    stolen.set_cookie("ems_session", cookie.value)
    stolen.get("/")  # the hiccup
    assert stolen.get("/").status_code == 302
    assert stolen.get("/api/status").status_code == 401


def test_the_session_cookie_carries_no_plain_digest_of_the_password_hash(
    locked_env: UiEnv,
) -> None:
    """The cookie is signed, not encrypted: whoever holds it can read it."""
    from flask.sessions import SecureCookieSessionInterface

    assert _login(locked_env, locked_env.client).status_code == 302
    cookie = locked_env.client.get_cookie("ems_session")
    assert cookie is not None
    serializer = SecureCookieSessionInterface().get_signing_serializer(locked_env.app)
    assert serializer is not None
    data = serializer.loads(cookie.value)
    hash_ = locked_env.config.webui.password_hash or ""
    assert hash_ and "pw" in data
    plain = hashlib.sha256(hash_.encode()).hexdigest()
    assert not plain.startswith(str(data["pw"]))


# ---------------------------------------------------------------- 4. host names


def test_a_bind_name_is_an_allowed_host(tmp_path: Path, frozen: Any) -> None:
    e = make_env(tmp_path, password=PASSWORD, webui={"bind": "ems-box.example"})
    try:
        assert e.client.get("/login", headers={"Host": "ems-box.example:8080"}).status_code == 200
        assert e.client.get("/login", headers={"Host": "other.example"}).status_code == 400
    finally:
        e.controller.close()
        e.store.close()


def test_the_api_refuses_an_unknown_host_in_json(env: UiEnv) -> None:
    resp = env.client.get("/api/status", headers={"Host": "rebound.evil.example"})
    assert resp.status_code == 400
    assert "webui.allowed_hosts" in resp.get_json()["error"]


def test_an_unknown_host_is_refused_over_the_wire(env: UiEnv) -> None:
    """A rebinding page's request as it arrives: a real socket on 127.0.0.1, its own Host."""
    import http.client

    server = LoopbackServer(env.app)
    try:
        for host, want in (("rebound.evil.example", 400), (f"127.0.0.1:{server.port}", 200)):
            conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
            conn.putrequest("GET", "/api/session", skip_host=True)
            conn.putheader("Host", host)
            conn.endheaders()
            resp = conn.getresponse()
            resp.read()
            assert resp.status == want, host
            conn.close()
    finally:
        server.stop()


# ---------------------------------------------------------------- 5. 400, not 500


def test_a_deeply_nested_json_body_is_a_400_naming_the_body(env: UiEnv) -> None:
    body = "[" * 20_000 + "]" * 20_000
    resp = env.client.post(
        "/api/loads/wb_a/override",
        data=body,
        headers={"X-CSRFToken": env.csrf(), "Content-Type": "application/json"},
    )
    assert resp.status_code == 400
    assert "body" in resp.get_json()["error"]
    assert env.store.active_overrides(clock.now()) == {}


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("until=9999-12-31", "until"),
        ("since=0001-01-01", "since"),
        ("since=0001-01-01T00:00%2B05:00", "since"),
        ("until=9999-12-31T23:59-05:00", "until"),
        ("since=0001-01-01T00:30", "since"),
        ("since=1969-12-31T23:59:59%2B00:00", "since"),
        ("until=3000-01-01", "until"),
        ("until=3000-01-01T00:00:01%2B00:00", "until"),
        ("since=2026-06-01T12:00%2B25:00", "since"),
        ("until=0001-01-01T00:30", "until"),
    ],
)
def test_out_of_range_times_are_a_400_naming_the_field(env: UiEnv, query: str, field: str) -> None:
    resp = env.client.get(f"/api/history?{query}")
    assert resp.status_code == 400, resp.get_data(as_text=True)
    assert resp.get_json()["error"].startswith(f"{field}=")
    page = env.client.get(f"/history?{query}")
    assert page.status_code == 400
    assert f"{field}=" in page.get_data(as_text=True)


def test_times_far_from_today_but_in_range_still_work(env: UiEnv) -> None:
    resp = env.client.get("/api/history?since=1970-01-01&until=2999-12-31")
    assert resp.status_code == 200
    assert resp.get_json()["items"] == []


# ---------------------------------------------------------------- 6. the login throttle


def _owner_device(e: UiEnv) -> FlaskClient:
    """The owner's phone: it logged in once and logged out again."""
    phone = e.app.test_client()
    assert _login(e, phone).status_code == 302
    assert phone.post("/logout", data={"csrf_token": e.csrf(phone)}).status_code == 302
    return phone


def test_an_attacker_behind_the_same_proxy_does_not_lock_the_owner_out(
    locked_env: UiEnv,
) -> None:
    """Behind the documented reverse proxy every request comes from the proxy's address."""
    phone = _owner_device(locked_env)
    attacker = locked_env.app.test_client()
    for _ in range(20):
        assert _login(locked_env, attacker, "guess").status_code in (401, 429)
    assert _login(locked_env, attacker, "guess").status_code == 429
    # Same address; the browser that logged in before still gets in.
    resp = _login(locked_env, phone)
    assert resp.status_code == 302, resp.get_data(as_text=True)
    assert phone.get("/").status_code == 200


def test_a_forged_device_cookie_does_not_escape_the_throttle(locked_env: UiEnv) -> None:
    # A genuine device cookie, but from another installation (another secret key).
    other = make_env(locked_env.state_dir.parent / "other", password=PASSWORD)
    try:
        c = other.app.test_client()
        assert _login(other, c).status_code == 302
        foreign = c.get_cookie(auth.DEVICE_COOKIE, path="/login")
        assert foreign is not None
    finally:
        other.controller.close()
        other.store.close()
    attacker = locked_env.app.test_client()
    for _ in range(auth.MAX_FAILURES):
        assert _login(locked_env, attacker, "guess").status_code == 401
    assert _login(locked_env, attacker, "guess").status_code == 429
    attacker.set_cookie(auth.DEVICE_COOKIE, "made-up", path="/login")
    assert _login(locked_env, attacker, "guess").status_code == 429
    attacker.set_cookie(auth.DEVICE_COOKIE, foreign.value, path="/login")
    assert _login(locked_env, attacker, "guess").status_code == 429


def test_the_device_cookie_is_httponly_and_only_sent_to_the_login(locked_env: UiEnv) -> None:
    token = locked_env.csrf()
    resp = locked_env.client.post(
        "/login", data={"name": "anna", "password": PASSWORD, "csrf_token": token}
    )
    cookies = [c for c in resp.headers.getlist("Set-Cookie") if c.startswith(auth.DEVICE_COOKIE)]
    assert len(cookies) == 1
    assert "HttpOnly" in cookies[0] and "Path=/login" in cookies[0]
    assert "SameSite=Lax" in cookies[0]


def test_the_wait_grows_with_each_failure_after_the_free_ones(
    locked_env: UiEnv, frozen: Any
) -> None:
    attacker = locked_env.app.test_client()
    for _ in range(auth.MAX_FAILURES):
        assert _login(locked_env, attacker, "guess").status_code == 401
    waits = []
    for _ in range(5):
        resp = _login(locked_env, attacker, "guess")
        assert resp.status_code == 429
        wait = float(resp.headers["Retry-After"])
        waits.append(wait)
        frozen.tick(timedelta(seconds=wait))
        assert _login(locked_env, attacker, "guess").status_code == 401
    assert all(b == min(2 * a, auth.MAX_DELAY_S) for a, b in itertools.pairwise(waits))
    assert waits[0] > 0 and waits[-1] > waits[0]
    # The right password after the wait logs in and clears the count.
    frozen.tick(timedelta(seconds=auth.MAX_DELAY_S + 1))
    assert _login(locked_env, attacker).status_code == 302


def _from(e: UiEnv, addr: str) -> FlaskClient:
    c = e.app.test_client()
    c.environ_base["REMOTE_ADDR"] = addr
    return c


def test_many_addresses_together_are_throttled_but_not_the_owners_browser(
    locked_env: UiEnv,
) -> None:
    """One password, many guessers: the unknown browsers share a count of their own."""
    phone = _owner_device(locked_env)
    for i in range(auth.MAX_FAILURES_UNKNOWN):
        assert _login(locked_env, _from(locked_env, f"198.51.100.{i + 1}"), "x").status_code == 401
    resp = _login(locked_env, _from(locked_env, "203.0.113.7"), PASSWORD)
    assert resp.status_code == 429
    assert int(resp.headers["Retry-After"]) > 0
    assert _login(locked_env, phone).status_code == 302


def test_an_ipv6_host_counts_once_for_its_whole_prefix(locked_env: UiEnv) -> None:
    for i in range(auth.MAX_FAILURES):
        c = _from(locked_env, f"2001:db8:1:2::{i + 1:x}")
        assert _login(locked_env, c, "x").status_code == 401
    assert _login(locked_env, _from(locked_env, "2001:db8:1:2::ff"), "x").status_code == 429
    assert _login(locked_env, _from(locked_env, "2001:db8:1:3::1"), "x").status_code == 401


def test_the_throttle_keeps_a_bounded_number_of_clients(frozen: Any) -> None:
    t = auth.LoginThrottle()
    t.failed(auth.UNKNOWN)
    for i in range(auth.MAX_CLIENTS + 500):
        t.failed(f"addr:10.{i // 65536}.{i // 256 % 256}.{i % 256}")
    assert len(t._failures) <= auth.MAX_CLIENTS
    assert auth.UNKNOWN in t._failures  # the oldest addresses go, not the count of all
    assert "addr:10.0.0.0" not in t._failures
