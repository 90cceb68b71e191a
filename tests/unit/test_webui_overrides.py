"""Setting overrides through the API and the form: stored, ticked, validated, CSRF-protected."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from freezegun import freeze_time

from emsctl import clock
from emsctl.model import LoadId, Mode
from tests.support import webui_kit
from tests.support.webui_kit import UiEnv, make_env
from webui.context import UiContext
from webui.overrides import OverrideRejected, expiry

env = webui_kit.env
frozen = webui_kit.frozen
WB_A = LoadId.WB_A


def test_force_on_is_stored_with_who_and_expiry_and_triggers_one_tick(env: UiEnv) -> None:
    resp = env.post_override("wb_a", {"mode": "force_on", "duration": "4h"}, token=env.csrf())
    assert resp.status_code == 200, resp.get_data(as_text=True)
    now = clock.now()
    body = resp.get_json()
    assert body["mode"] == "force_on" and body["created_by"] == "ui"
    assert body["expires_at"] == (now + timedelta(hours=4)).isoformat()
    stored = env.store.active_overrides(now)[WB_A]
    assert stored.mode is Mode.FORCE_ON
    assert stored.created_at == now and stored.expires_at == now + timedelta(hours=4)
    assert env.controller.tick_requests == 1
    assert env.controller.latest().loads[WB_A].state == "forced_on"  # type: ignore[union-attr]


def test_auto_clears_the_active_override_and_the_history_says_who(env: UiEnv) -> None:
    token = env.csrf()
    env.post_override("wb_a", {"mode": "force_off", "duration": "release"}, token=token)
    assert env.store.active_overrides(clock.now())[WB_A].expires_at is None
    resp = env.post_override("wb_a", {"mode": "auto"}, token=token)
    assert resp.status_code == 200
    assert WB_A not in env.store.active_overrides(clock.now())
    assert env.controller.tick_requests == 2
    kinds = [(r.kind, r.by) for r in env.store.history(load=WB_A)]
    assert ("override_cleared", "ui") in kinds and ("override", "ui") in kinds


def test_a_duration_defaults_to_one_hour(env: UiEnv) -> None:
    resp = env.post_override("wb_a", {"mode": "force_on"}, token=env.csrf())
    assert resp.get_json()["expires_at"] == (clock.now() + timedelta(hours=1)).isoformat()


@pytest.mark.parametrize(
    ("now", "midnight"),
    [
        # 13:00 CET on the day before the spring change: midnight is 23:00 UTC.
        (datetime(2025, 3, 29, 12, 0, tzinfo=UTC), datetime(2025, 3, 29, 23, 0, tzinfo=UTC)),
        # 14:00 CEST on the day of the change: midnight is 22:00 UTC.
        (datetime(2025, 3, 30, 12, 0, tzinfo=UTC), datetime(2025, 3, 30, 22, 0, tzinfo=UTC)),
        # 00:30 local already after midnight: the next one is almost a day away.
        (datetime(2025, 6, 1, 22, 30, tzinfo=UTC), datetime(2025, 6, 2, 22, 0, tzinfo=UTC)),
    ],
)
def test_until_midnight_means_the_next_local_midnight(
    env: UiEnv, now: datetime, midnight: datetime
) -> None:
    ctx: UiContext = env.app.extensions["ems"]
    assert expiry(ctx, "midnight", now) == midnight
    assert expiry(ctx, "release", now) is None


def test_until_midnight_through_the_api(env: UiEnv) -> None:
    resp = env.post_override("wb_a", {"mode": "force_on", "duration": "midnight"}, token=env.csrf())
    # Frozen at 12:00 CEST on 1 June 2026: midnight is 22:00 UTC.
    assert resp.get_json()["expires_at"] == "2026-06-01T22:00:00+00:00"


@pytest.mark.parametrize(
    ("load", "body", "message"),
    [
        ("wb_c", {"mode": "force_on", "duration": "1h"}, "unknown load 'wb_c': expected one of"),
        ("wb_a", {"mode": "turbo", "duration": "1h"}, "unknown mode 'turbo'"),
        ("wb_a", {"mode": 3}, "mode 3: expected one of auto, force_on, force_off"),
        ("wb_a", {"mode": "force_on", "duration": "2h"}, "unknown duration '2h': expected one"),
        ("wb_a", {"mode": "force_on", "until": "x"}, "unknown field(s) until"),
        ("wb_a", ["force_on"], "expected a JSON object"),
    ],
)
def test_bad_input_gets_400_with_a_message_and_stores_nothing(
    env: UiEnv, load: str, body: object, message: str
) -> None:
    resp = env.post_override(load, body, token=env.csrf())
    assert resp.status_code == 400
    assert message in resp.get_json()["error"]
    assert env.store.active_overrides(clock.now()) == {}
    assert env.controller.tick_requests == 0


def test_a_disabled_load_is_refused(tmp_path: Path) -> None:
    e = make_env(tmp_path, loads={"wb_b": {"enabled": False}})
    try:
        resp = e.post_override("wb_b", {"mode": "force_on"}, token=e.csrf())
        assert resp.status_code == 400
        assert "disabled" in resp.get_json()["error"]
    finally:
        e.store.close()


def test_a_post_without_csrf_token_is_refused(env: UiEnv) -> None:
    env.csrf()  # the session exists; only the token is missing
    resp = env.post_override("wb_a", {"mode": "force_on"})
    assert resp.status_code == 400
    assert "CSRF token is missing" in resp.get_json()["error"]
    resp = env.post_override("wb_a", {"mode": "force_on"}, token="forged")
    assert resp.status_code == 400
    assert "CSRF token is invalid" in resp.get_json()["error"]
    assert env.store.active_overrides(clock.now()) == {}
    assert env.controller.tick_requests == 0


def test_a_post_without_a_session_is_refused_even_with_a_token(env: UiEnv) -> None:
    token = env.csrf()
    stranger = env.app.test_client()  # another browser: no session cookie
    resp = env.post_override("wb_a", {"mode": "force_on"}, token=token, client=stranger)
    assert resp.status_code == 400
    assert "session token is missing" in resp.get_json()["error"]
    assert env.store.active_overrides(clock.now()) == {}


def test_the_form_path_stores_and_redirects_back_with_a_message(env: UiEnv) -> None:
    token = env.csrf()
    resp = env.client.post(
        "/loads/wb_a/override", data={"mode": "force_on", "duration": "1h", "csrf_token": token}
    )
    assert resp.status_code == 302 and resp.headers["Location"] == "/"
    assert env.store.active_overrides(clock.now())[WB_A].mode is Mode.FORCE_ON
    html = env.client.get("/").get_data(as_text=True)
    assert "wb_a: force on sent to the controller." in html


def test_the_form_path_refuses_a_missing_token_and_bad_input(env: UiEnv) -> None:
    resp = env.client.post("/loads/wb_a/override", data={"mode": "force_on"})
    assert resp.status_code == 400
    assert "CSRF" in resp.get_data(as_text=True)
    token = env.csrf()
    resp = env.client.post(
        "/loads/wb_a/override", data={"mode": "force_on", "duration": "9h", "csrf_token": token}
    )
    assert resp.status_code == 400
    assert "unknown duration &#39;9h&#39;" in resp.get_data(as_text=True)
    assert env.store.active_overrides(clock.now()) == {}


def test_an_expired_override_no_longer_counts(env: UiEnv) -> None:
    env.post_override("wb_a", {"mode": "force_on", "duration": "1h"}, token=env.csrf())
    with freeze_time(clock.now() + timedelta(hours=1, seconds=1)):
        env.controller.tick()
        body = env.client.get("/api/status").get_json()
        assert body["stored_overrides"] == {}
        assert body["loads"]["wb_a"]["state"] == "arming"


def test_expiry_rejects_unknown_durations(env: UiEnv) -> None:
    ctx: UiContext = env.app.extensions["ems"]
    with pytest.raises(OverrideRejected, match="expected one of 1h, 4h, midnight, release"):
        expiry(ctx, "forever", clock.now())
