"""The status page and /api/status: what the owner sees of the house and of each load."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest

from emsctl import clock
from emsctl.model import LoadId, Mode, State
from tests.support import webui_kit
from tests.support.webui_kit import UiEnv, make_env

env = webui_kit.env
frozen = webui_kit.frozen

WB_A = LoadId.WB_A


def _card(html: str, load: str) -> str:
    m = re.search(rf'<article class="card" id="card-{load}">(.*?)</article>', html, re.S)
    assert m, f"no card for {load}"
    return m.group(1)


def _fig(html: str, key: str) -> str:
    m = re.search(rf'<div class="fig([^"]*)" data-key="{key}">(.*?)</div>', html, re.S)
    assert m, f"no figure {key}"
    return m.group(1) + m.group(2)


def test_status_page_shows_a_card_per_enabled_load_with_state_since_reasons_and_buttons(
    env: UiEnv,
) -> None:
    html = env.client.get("/").get_data(as_text=True)
    for load in ("sg_ready", "dhw", "wb_a", "wb_b"):
        card = _card(html, load)
        for mode in ("auto", "force_on", "force_off"):
            assert f'value="{mode}"' in card
        for duration in ("1h", "4h", "midnight", "release"):
            assert f'value="{duration}"' in card
        assert 'name="csrf_token"' in card
    wb_a = _card(html, "wb_a")
    assert "Wallbox A" in wb_a
    assert '<span class="pill">arming</span>' in wb_a
    assert re.search(r"since \d\d:\d\d \(2 min\)", wb_a)
    assert "export 1.9 kW &gt;= start 1.8 kW for 2m00s" in wb_a
    assert 'class="live c-amber"' in wb_a
    assert '<span class="power">0 W</span>' in wb_a
    assert 'value="auto" class="mode-auto"\n                  aria-pressed="true"' in wb_a
    sg = _card(html, "sg_ready")
    assert 'class="live c-green"' in sg and "no power meter" in sg
    dhw = _card(html, "dhw")
    assert re.search(r"Cooldown until \d\d:\d\d \(in 40 min\)", dhw)


def test_house_figures_show_values_phases_ages_and_mark_stale_ones(env: UiEnv) -> None:
    html = env.client.get("/").get_data(as_text=True)
    assert "5.2 kW" in _fig(html, "pv_w")
    grid = _fig(html, "grid_w")
    assert "Grid export</span>" in grid and "1.9 kW" in grid
    assert "L1 -900 W · L2 -500 W · L3 -450 W" in grid
    assert "12 s old" in grid
    assert "78 %" in _fig(html, "soc_pct")
    assert "Battery charging</span>" in _fig(html, "battery_w")
    assert "1.4 kW" in _fig(html, "battery_w")
    comp = _fig(html, "compressor_w")
    assert comp.startswith(" stale"), comp
    assert "⚠ 9 min old" in comp
    assert "stale" not in _fig(html, "outdoor_c")
    assert "9.5 °C" in _fig(html, "outdoor_c")
    assert "3.2 kW" in _fig(html, "surplus_w")
    assert "missing" in _fig(html, "forecast")


def test_api_status_carries_the_report_and_the_stored_overrides(env: UiEnv) -> None:
    now = clock.now()
    env.store.add_override(WB_A, Mode.FORCE_ON, "anna", now, now + timedelta(hours=1))
    body = env.client.get("/api/status").get_json()
    assert body["loads"]["wb_a"]["state"] == "arming"  # not ticked yet
    assert body["stored_overrides"]["wb_a"]["mode"] == "force_on"
    assert body["stored_overrides"]["wb_a"]["created_by"] == "anna"
    assert body["measurements"]["compressor_w"] == {"value": None, "age_s": 540.0, "stale": True}
    assert set(body["loads"]) == {"sg_ready", "dhw", "wb_a", "wb_b"}


def test_a_stored_override_not_yet_applied_is_shown_as_pending(env: UiEnv) -> None:
    now = clock.now()
    env.store.add_override(WB_A, Mode.FORCE_ON, "anna", now, None)
    wb_a = _card(env.client.get("/").get_data(as_text=True), "wb_a")
    assert 'data-pending="1"' in wb_a
    assert "Force on stored; waiting for the controller to apply it" in wb_a
    assert "Force on until released · by anna" in wb_a
    env.controller.tick()
    wb_a = _card(env.client.get("/").get_data(as_text=True), "wb_a")
    assert 'data-pending="0"' in wb_a and "waiting for the controller" not in wb_a
    assert '<span class="pill">forced on</span>' in wb_a and "c-blue" in wb_a
    assert '<span class="power">2.0 kW</span>' in wb_a


def test_a_held_back_force_on_says_why(tmp_path: Path) -> None:
    e = make_env(tmp_path, blocked={WB_A: "exclusive with WB B, which is running"})
    try:
        now = clock.now()
        e.store.add_override(WB_A, Mode.FORCE_ON, "ui", now, now + timedelta(hours=4))
        e.controller.tick()
        wb_a = _card(e.client.get("/").get_data(as_text=True), "wb_a")
        assert "Force on held back: exclusive with WB B, which is running" in wb_a
        assert 'data-mode="force_on"' in wb_a
    finally:
        e.store.close()


def test_manual_hold_device_error_and_late_report_are_visible(env: UiEnv) -> None:
    report = env.controller.latest()
    assert report is not None
    old = report.at - timedelta(minutes=10)
    view = replace(
        report.loads[WB_A],
        state=State.MANUAL,
        manual_until=report.at + timedelta(hours=3, minutes=58),
        error="DeviceUnreachable: 192.168.1.31 timed out",
        source="button",
    )
    env.controller.publish(
        replace(report, at=old, loads={**report.loads, WB_A: view}, errors={"prometheus": "down"})
    )
    html = env.client.get("/").get_data(as_text=True)
    wb_a = _card(html, "wb_a")
    assert "c-red" in wb_a  # an error beats the manual colour
    assert "Device: DeviceUnreachable: 192.168.1.31 timed out" in wb_a
    assert re.search(r"EMS leaves it alone until \d\d:\d\d \(in 3 h 5\d min\)", wb_a)
    assert "Switched at the device by: button" in wb_a
    assert "has not reported for a while" in html
    assert "prometheus: down" in html


def test_before_the_first_tick_the_page_waits_and_the_api_says_503(tmp_path: Path) -> None:
    e = make_env(tmp_path, publish=False)
    try:
        html = e.client.get("/").get_data(as_text=True)
        assert "Waiting for the controller's first report" in html
        assert html.count('class="card"') == 4
        resp = e.client.get("/api/status")
        assert resp.status_code == 503
        assert "first tick" in resp.get_json()["error"]
    finally:
        e.store.close()


def test_the_live_fragment_carries_the_same_live_parts_as_the_page(env: UiEnv) -> None:
    frag = env.client.get("/partials/status").get_data(as_text=True)
    ids = re.findall(r'id="([^"]+)"[^>]*data-live\b(?!-)', frag)
    assert ids == ["banner", "house", "live-sg_ready", "live-dhw", "live-wb_a", "live-wb_b"]
    # The wallboxes' charging forms come too (the script swaps them only when untouched);
    # the override buttons do not (their script is bound to them).
    forms = re.findall(r'id="([^"]+)"[^>]*data-live-forms', frag)
    assert forms == ["carforms-wb_a", "carforms-wb_b"]
    page = env.client.get("/").get_data(as_text=True)
    for i in ids + forms:
        assert f'id="{i}"' in page
    assert "<form" not in frag[: frag.index('id="carforms-')]


def test_only_enabled_loads_get_cards(tmp_path: Path) -> None:
    e = make_env(tmp_path, loads={"wb_b": {"enabled": False}})
    try:
        html = e.client.get("/").get_data(as_text=True)
        assert 'id="card-wb_b"' not in html and 'id="card-wb_a"' in html
    finally:
        e.store.close()


def test_pages_send_security_headers_and_no_cdn(env: UiEnv) -> None:
    resp = env.client.get("/")
    csp = resp.headers["Content-Security-Policy"]
    assert "default-src 'self'" in csp and "script-src 'self'" in csp
    assert resp.headers["X-Frame-Options"] == "DENY"
    assert resp.headers["Cache-Control"] == "no-store"
    html = resp.get_data(as_text=True)
    assert not re.search(r'(src|href)="(https?:)?//', html)
    for asset in ("/static/ems.css", "/static/ems.js"):
        assert env.client.get(asset).status_code == 200


def test_a_store_that_cannot_be_read_does_not_take_the_page_down(
    env: UiEnv, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(now: object) -> None:
        raise OSError("disk I/O error")

    monkeypatch.setattr(env.store, "active_overrides", broken)
    resp = env.client.get("/")
    assert resp.status_code == 200
    assert '<span class="pill">arming</span>' in _card(resp.get_data(as_text=True), "wb_a")
    body = env.client.get("/api/status").get_json()
    assert body["stored_overrides"] is None and body["loads"]["wb_a"]["state"] == "arming"
    assert "cannot read the active overrides" in caplog.text
