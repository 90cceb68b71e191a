"""The web UI under test: a real Store on a temporary SQLite file, the fake controller, the app.

Unit tests use Flask's test client; the browser tests serve the same app with waitress.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from freezegun import freeze_time
from werkzeug.security import generate_password_hash

from emsctl.config import Config, parse_config
from emsctl.model import LoadId
from emsctl.store import Store
from tests.support.fake_controller import FakeController
from webui import create_app

PASSWORD = "hallway-phone-42"
#: Cheap hashing in tests; the CLI uses werkzeug's default (scrypt).
TEST_HASH_METHOD = "pbkdf2:sha256:1000"


@dataclass
class UiEnv:
    config: Config
    store: Store
    controller: FakeController
    app: Flask
    client: FlaskClient
    state_dir: Path

    def csrf(self, client: FlaskClient | None = None) -> str:
        """A CSRF token for the client's session (creates the session when needed)."""
        resp = (client or self.client).get("/api/session")
        assert resp.status_code == 200, resp.get_data(as_text=True)
        token: str = resp.get_json()["csrf_token"]
        return token

    def login(self, name: str = "anna", password: str = PASSWORD) -> Any:
        token = self.csrf()
        return self.client.post(
            "/login", data={"name": name, "password": password, "csrf_token": token}
        )

    def post_override(
        self, load: str, body: Any, *, token: str | None = None, client: FlaskClient | None = None
    ) -> Any:
        c = client or self.client
        headers = {} if token is None else {"X-CSRFToken": token}
        return c.post(f"/api/loads/{load}/override", json=body, headers=headers)


def make_env(
    tmp_path: Path,
    *,
    password: str | None = None,
    tick_delay_s: float | None = None,
    blocked: dict[LoadId, str] | None = None,
    publish: bool = True,
    webui: dict[str, Any] | None = None,
    loads: dict[str, Any] | None = None,
    control: dict[str, Any] | None = None,
    planner: dict[str, Any] | None = None,
) -> UiEnv:
    state = tmp_path / "state"
    state.mkdir(parents=True, exist_ok=True)
    db = state / "ems.db"
    wcfg: dict[str, Any] = dict(webui or {})
    if password is not None:
        wcfg["password_hash"] = generate_password_hash(password, method=TEST_HASH_METHOD)
    data = {"store": {"path": str(db)}, "webui": wcfg, "loads": loads or {}}
    if control:
        data["control"] = control
    if planner:
        data["planner"] = planner
    config = parse_config(data, "test")
    store = Store.open(db)
    controller = FakeController(
        config, store, tick_delay_s=tick_delay_s, blocked=blocked, publish=publish
    )
    app = create_app(config, store, controller)
    return UiEnv(config, store, controller, app, app.test_client(), state)


#: 12:00 in Berlin (CEST).
NOON = "2026-06-01 10:00:00"


@pytest.fixture
def frozen() -> Iterator[Any]:
    """Wall time stands still at NOON (emsctl.clock reads the patched datetime)."""
    with freeze_time(NOON) as f:
        yield f


@contextmanager
def opened(tmp_path: Path, **kw: Any) -> Iterator[UiEnv]:
    """`make_env(tmp_path, **kw)`, its controller and store closed at the end."""
    e = make_env(tmp_path, **kw)
    try:
        yield e
    finally:
        e.controller.close()
        e.store.close()


@pytest.fixture
def env(tmp_path: Path, frozen: Any) -> Iterator[UiEnv]:
    with opened(tmp_path) as e:
        yield e


@pytest.fixture
def locked_env(tmp_path: Path, frozen: Any) -> Iterator[UiEnv]:
    """The UI with a password set."""
    with opened(tmp_path, password=PASSWORD) as e:
        yield e
