"""The web UI's edges: redirects after login stay on the site, sessions end with a logout or a
new password, and only known host names are answered (DNS rebinding)."""

from __future__ import annotations

from typing import Any

import pytest
from werkzeug.security import generate_password_hash

from tests.support import webui_kit
from tests.support.webui_kit import PASSWORD, TEST_HASH_METHOD, UiEnv, make_env
from webui import create_app, host_allowed
from webui.auth import revoked, throttle

env = webui_kit.env
locked_env = webui_kit.locked_env
frozen = webui_kit.frozen


@pytest.fixture(autouse=True)
def _fresh() -> None:
    throttle._failures.clear()


def _login_to(e: UiEnv, nxt: str) -> Any:
    token = e.csrf()
    return e.client.post(
        "/login",
        data={"name": "anna", "password": PASSWORD, "csrf_token": token, "next": nxt},
    )


@pytest.mark.parametrize(
    "nxt",
    [
        "/\t/evil.example",  # a browser drops the tab: //evil.example
        "/\n/evil.example",
        "//evil.example",
        "/\\evil.example",
        "https://evil.example/",
        "javascript:alert(1)",
        " /history",
        "/history\r\nSet-Cookie: x=1",
    ],
)
def test_login_redirects_only_to_a_path_of_this_site(locked_env: UiEnv, nxt: str) -> None:
    resp = _login_to(locked_env, nxt)
    assert resp.status_code == 302
    assert resp.headers["Location"] == "/"


def test_a_local_next_path_is_kept(locked_env: UiEnv) -> None:
    resp = _login_to(locked_env, "/history?load=wb_a")
    assert resp.headers["Location"] == "/history?load=wb_a"


def test_a_cookie_copied_before_logout_does_not_work_after_it(locked_env: UiEnv) -> None:
    locked_env.login()
    cookie = locked_env.client.get_cookie("ems_session")
    assert cookie is not None
    stolen = locked_env.app.test_client()
    stolen.set_cookie("ems_session", cookie.value)
    assert stolen.get("/").status_code == 200
    token = locked_env.csrf()
    assert locked_env.client.post("/logout", data={"csrf_token": token}).status_code == 302
    assert stolen.get("/").status_code == 302  # to the login
    assert stolen.get("/api/status").status_code == 401
    # Kept in the database: a restarted daemon (a new app on the same store) refuses it too.
    revoked.forget()
    again = create_app(
        locked_env.config,
        locked_env.store,
        locked_env.controller,
        secret_key=locked_env.app.secret_key,
    )
    c = again.test_client()
    c.set_cookie("ems_session", cookie.value)
    assert c.get("/").status_code == 302


def test_a_new_password_ends_every_session_of_the_old_one(locked_env: UiEnv, tmp_path: Any) -> None:
    locked_env.login()
    cookie = locked_env.client.get_cookie("ems_session")
    assert cookie is not None and locked_env.client.get("/").status_code == 200
    new_hash = generate_password_hash("another one", method=TEST_HASH_METHOD)
    webui = locked_env.config.webui.model_copy(update={"password_hash": new_hash})
    config = locked_env.config.model_copy(update={"webui": webui})
    app = create_app(
        config, locked_env.store, locked_env.controller, secret_key=locked_env.app.secret_key
    )
    c = app.test_client()
    c.set_cookie("ems_session", cookie.value)
    assert c.get("/").status_code == 302
    assert c.get("/api/status").status_code == 401


@pytest.mark.parametrize(
    ("host", "ok"),
    [
        ("localhost:8080", True),
        ("127.0.0.1:8080", True),
        ("192.168.178.20:8080", True),
        ("[::1]:8080", True),
        ("[fe80::1]", True),
        ("evil.example", False),
        ("evil.example:8080", False),
        ("ems.home.arpa", True),  # in webui.allowed_hosts
        ("", False),
        ("[::1", False),
    ],
)
def test_only_ip_addresses_and_known_names_are_answered(
    tmp_path: Any, frozen: Any, host: str, ok: bool
) -> None:
    e = make_env(tmp_path, webui={"allowed_hosts": ["ems.home.arpa"]})
    try:
        resp = e.client.get("/", headers={"Host": host})
        assert (resp.status_code == 200) is ok, resp.status_code
        if not ok:
            assert resp.status_code == 400
            assert "webui.allowed_hosts" in resp.get_data(as_text=True)
    finally:
        e.controller.close()
        e.store.close()


def test_the_host_check_knows_this_machine() -> None:
    import socket

    allowed = frozenset({socket.gethostname().lower(), "localhost"})
    assert host_allowed(f"{socket.gethostname()}:8080", allowed)
    assert not host_allowed("attacker.example", allowed)
