"""Login, logout, sessions, cookies and the secret key; nothing secret reaches a page."""

from __future__ import annotations

import logging
import stat
from pathlib import Path

import pytest

from emsctl import clock
from emsctl.model import LoadId
from tests.support import webui_kit
from tests.support.webui_kit import PASSWORD, UiEnv, make_env
from webui import create_app
from webui.auth import MAX_FAILURES, throttle
from webui.serve import is_loopback, startup_warning

env = webui_kit.env
locked_env = webui_kit.locked_env
frozen = webui_kit.frozen


@pytest.fixture(autouse=True)
def _fresh_throttle() -> None:
    throttle._failures.clear()


def test_without_login_pages_redirect_to_login_and_the_api_answers_401(
    locked_env: UiEnv,
) -> None:
    resp = locked_env.client.get("/history?load=wb_a")
    assert resp.status_code == 302
    assert resp.headers["Location"] == "/login?next=/history?load%3Dwb_a"
    resp = locked_env.client.get("/api/status")
    assert resp.status_code == 401 and "login required" in resp.get_json()["error"]
    resp = locked_env.client.post("/api/loads/wb_a/override", json={"mode": "force_on"})
    assert resp.status_code == 401
    assert locked_env.store.active_overrides(clock.now()) == {}
    assert locked_env.client.get("/static/ems.css").status_code == 200


def test_a_wrong_password_is_refused_and_the_right_one_logs_in(locked_env: UiEnv) -> None:
    resp = locked_env.login(password="wrong")
    assert resp.status_code == 401 and "Wrong password." in resp.get_data(as_text=True)
    assert locked_env.client.get("/").status_code == 302
    resp = locked_env.login(name="anna")
    assert resp.status_code == 302 and resp.headers["Location"] == "/"
    html = locked_env.client.get("/").get_data(as_text=True)
    assert '<span class="who">anna</span>' in html


def test_overrides_record_the_logged_in_name(locked_env: UiEnv) -> None:
    locked_env.login(name="ben")
    resp = locked_env.post_override("wb_a", {"mode": "force_on"}, token=locked_env.csrf())
    assert resp.status_code == 200
    assert locked_env.store.active_overrides(clock.now())[LoadId.WB_A].created_by == "ben"


def test_logout_needs_the_token_and_ends_the_session(locked_env: UiEnv) -> None:
    locked_env.login()
    assert locked_env.client.post("/logout").status_code == 400  # no CSRF token
    assert locked_env.client.get("/").status_code == 200
    resp = locked_env.client.post("/logout", data={"csrf_token": locked_env.csrf()})
    assert resp.status_code == 302 and resp.headers["Location"] == "/login"
    assert locked_env.client.get("/").status_code == 302
    assert locked_env.client.get("/api/status").status_code == 401


def test_login_only_redirects_within_the_site(locked_env: UiEnv) -> None:
    token = locked_env.csrf()
    for evil in ("//evil.example/x", "https://evil.example/", "/\\evil.example"):
        resp = locked_env.client.post(
            "/login", data={"password": PASSWORD, "csrf_token": token, "next": evil}
        )
        assert resp.headers["Location"] == "/", evil
        token = locked_env.csrf()


def test_repeated_failures_are_throttled(locked_env: UiEnv) -> None:
    for _ in range(MAX_FAILURES):
        assert locked_env.login(password="nope").status_code == 401
    resp = locked_env.login()  # even the right password waits now
    assert resp.status_code == 429
    assert "Too many failed attempts" in resp.get_data(as_text=True)


def test_a_login_without_csrf_token_is_refused(locked_env: UiEnv) -> None:
    resp = locked_env.client.post("/login", data={"password": PASSWORD})
    assert resp.status_code == 400
    assert locked_env.client.get("/").status_code == 302


def test_session_cookie_is_httponly_and_lax_and_secure_only_when_configured(
    env: UiEnv, tmp_path: Path
) -> None:
    cookie = env.client.get("/").headers["Set-Cookie"]
    assert "ems_session=" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert "Secure" not in cookie
    e = make_env(tmp_path / "tls", webui={"secure_cookies": True})
    try:
        cookie = e.client.get("/").headers["Set-Cookie"]
        assert "Secure" in cookie
    finally:
        e.store.close()


def test_without_a_password_no_login_is_needed_and_login_redirects_home(env: UiEnv) -> None:
    assert env.client.get("/").status_code == 200
    assert env.client.get("/login").headers["Location"] == "/"


def test_the_secret_key_is_created_0600_and_reused(env: UiEnv) -> None:
    key_file = env.state_dir / "webui-secret"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    again = create_app(env.config, env.store, env.controller)
    assert again.secret_key == env.app.secret_key
    # A session made before the "restart" is still valid after it.
    token = env.csrf()
    client = again.test_client()
    cookie = env.client.get_cookie("ems_session")
    assert cookie is not None
    client.set_cookie("ems_session", cookie.value)
    resp = client.post(
        "/api/loads/wb_a/override", json={"mode": "force_on"}, headers={"X-CSRFToken": token}
    )
    assert resp.status_code == 200


def test_no_secret_or_hash_is_ever_rendered(locked_env: UiEnv) -> None:
    locked_env.login()
    secret = str(locked_env.app.secret_key)
    hash_ = locked_env.config.webui.password_hash
    assert hash_
    for path in ("/", "/history", "/partials/status", "/api/status", "/api/history", "/login"):
        body = locked_env.client.get(path).get_data(as_text=True)
        assert secret not in body, path
        assert hash_ not in body and hash_.split("$")[-1] not in body, path


def test_a_world_readable_key_file_is_reported(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    state = tmp_path / "state"
    state.mkdir()
    key = state / "webui-secret"
    key.write_text("k" * 64)
    key.chmod(0o644)
    with caplog.at_level(logging.WARNING, logger="webui.secret"):
        make_env(tmp_path).store.close()
    assert "readable by others" in caplog.text


def test_start_up_warns_when_listening_beyond_localhost_without_password() -> None:
    assert startup_warning("127.0.0.1", login_required=False) is None
    assert startup_warning("::1", login_required=False) is None
    assert startup_warning("localhost", login_required=False) is None
    assert startup_warning("0.0.0.0", login_required=True) is None
    msg = startup_warning("0.0.0.0", login_required=False)
    assert msg and "without a password" in msg and "hash-password" in msg
    assert startup_warning("192.168.1.10", login_required=False)
    assert not is_loopback("ems.local")
