"""The wallbox cards' charging by target in front of the fake controller (tests.support):
what the card says, the login and CSRF rules of its forms and API calls, the one-off time
read in the controller's clock and time zone, and refusals shown with their message while
nothing is stored."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any

import pytest

from emsctl.cars.types import CarSettings, TargetSource
from emsctl.model import ChargeMode, LoadId
from emsctl.status import CarView
from tests.support import webui_kit
from tests.support.webui_kit import PASSWORD, UiEnv, make_env

env = webui_kit.env
frozen = webui_kit.frozen

A, B = LoadId.WB_A, LoadId.WB_B
#: The wall clock (NOON): Monday 1 June 2026, 12:00 in Berlin (CEST, UTC+2).
NOW = datetime(2026, 6, 1, 10, 0, tzinfo=UTC)


def _text(html: str) -> str:
    """The page's text with tags dropped and white space folded, as a reader sees it."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def _car(html: str, load: LoadId) -> str:
    """The text of a wallbox's live card part."""
    m = re.search(rf'id="live-{load.value}".*?<div class="car".*?</div>', html, re.S)
    assert m is not None, f"no charging part on the card of {load.value}"
    return _text(m.group(0))


def _post(env: UiEnv, path: str, **fields: str) -> Any:
    return env.client.post(path, data={"csrf_token": env.csrf(), **fields})


def _api(env: UiEnv, path: str, body: object, token: str | None = "auto") -> Any:
    headers = {} if token is None else {"X-CSRFToken": env.csrf() if token == "auto" else token}
    return env.client.post(path, json=body, headers=headers)


def _settings(env: UiEnv) -> tuple[object, object]:
    store = env.controller.cars.store
    return store.car_settings(A), store.car_settings(B)


def test_only_wallboxes_that_charge_by_target_get_the_charging_part(
    tmp_path: Path, frozen: Any
) -> None:
    env = make_env(tmp_path, loads={"wb_b": {"charging": {"enabled": False}}})
    html = env.client.get("/").get_data(as_text=True)
    assert html.count('class="car"') == 1 and html.count('class="car-settings"') == 1
    assert 'id="car-wb_a"' in html and 'id="car-wb_b"' not in html
    sg = re.search(r'id="card-sg_ready".*?</article>', html, re.S)
    assert sg is not None and "Charging" not in sg.group(0)
    body = env.client.get("/api/status").get_json()
    assert body["loads"]["wb_b"]["car"] is None and body["loads"]["wb_a"]["car"] is not None


def test_the_card_shows_mode_target_plan_session_and_learned_habit(env: UiEnv) -> None:
    html = env.client.get("/").get_data(as_text=True)
    a = _car(html, A)
    assert "Charging: Solar + target (as configured)" in a
    # WB A's car arrived at 10:00 and has 4.2 kWh of the learned 11 kWh (2 kW: 3.4 h to go).
    assert "Target: 11.0 kWh by tomorrow 07:00 · learned" in a
    assert "6.8 kWh to go · must start by tomorrow 02:15 · expected finish 15:24" in a
    assert "4.2 kWh this session (since 10:00), charging" in a
    assert "learned: Mon-Fri ~11 kWh" in a and "confirm or correct" in a
    b = _car(html, B)
    assert "Target: 20.0 kWh by tomorrow 07:00 · default" in b
    assert "~4.2 kWh (estimated) this session (since 09:00), waiting" in b
    assert "learned" not in b


def test_the_card_says_when_charging_must_start_and_when_it_will_finish(env: UiEnv) -> None:
    tomorrow = NOW + timedelta(days=1)
    env.controller.cars.views[A] = CarView(
        mode=ChargeMode.SOLAR_TARGET,
        mode_from="owner",
        target_source=TargetSource.ONE_OFF,
        deadline=tomorrow.replace(hour=5),  # 07:00 local
        target_wh=15_000.0,
        need_wh=10_800.0,
        latest_start=tomorrow.replace(hour=0, minute=30),  # 02:30 local
        expected_finish=NOW + timedelta(hours=5, minutes=24),
        session_started=NOW - timedelta(minutes=90),
        session_wh=4200.0,
        estimated=True,
        drawing=False,
    )
    env.controller.tick()
    a = _car(env.client.get("/").get_data(as_text=True), A)
    assert "Charging: Solar + target (set by you)" in a
    assert "Target: 15.0 kWh by tomorrow 07:00 · your target" in a
    assert "10.8 kWh to go · must start by tomorrow 02:30 · expected finish 17:24" in a
    assert "~4.2 kWh (estimated) this session (since 10:30), waiting" in a


def test_a_met_target_and_a_wallbox_without_a_car_read_plainly(env: UiEnv) -> None:
    env.controller.cars.views[A] = CarView(
        mode=ChargeMode.SOLAR_TARGET,
        mode_from="config",
        target_source=TargetSource.WEEKLY,
        deadline=NOW + timedelta(hours=6),
        target_wh=4000.0,
        need_wh=0.0,
        session_started=NOW - timedelta(hours=1),
        session_wh=4200.0,
        drawing=True,
    )
    env.controller.cars.views[B] = CarView(mode=ChargeMode.OFF, mode_from="owner")
    env.controller.tick()
    html = env.client.get("/").get_data(as_text=True)
    a = _car(html, A)
    assert "Target: 4.0 kWh by 18:00 · weekly" in a and "Target met: surplus only" in a
    b = _car(html, B)
    assert "Charging: Off (set by you)" in b and "Charging off" in b and "Target" not in b


def test_a_car_held_past_its_target_says_when_it_is_taken_as_gone(env: UiEnv) -> None:
    env.controller.cars.views[A] = CarView(
        mode=ChargeMode.SOLAR_TARGET,
        mode_from="config",
        target_source=TargetSource.WEEKLY,
        deadline=NOW - timedelta(minutes=30),
        target_wh=4000.0,
        session_started=NOW - timedelta(hours=16),
        session_wh=22100.0,
        gone_at=NOW + timedelta(minutes=30),
    )
    env.controller.tick()
    a = _car(env.client.get("/").get_data(as_text=True), A)
    assert "11:30 has passed: the car is taken as gone at 12:30 unless it draws" in a
    assert "Target met" not in a
    doc = env.client.get("/api/status").get_json()
    assert doc["loads"]["wb_a"]["car"]["gone_at"] == "2026-06-01T10:30:00+00:00"


@pytest.mark.parametrize(
    ("setting", "says"),
    [
        ({}, "· learned"),
        ({"weekly": True}, "· weekly"),
        ({"one_off": True}, "· your target"),
    ],
)
def test_the_target_in_force_names_its_source(
    env: UiEnv, setting: dict[str, bool], says: str
) -> None:
    if setting.get("weekly"):
        r = _api(env, "/api/cars/wb_a/weekly", {"weekday": "tue", "at": "06:15", "kwh": 9})
        assert r.status_code == 200
    if setting.get("one_off"):
        assert _api(env, "/api/cars/wb_a/target", {"by": "21:00", "kwh": 5}).status_code == 200
    assert says in _car(env.client.get("/").get_data(as_text=True), A)


def test_the_one_off_time_is_the_next_one_in_the_local_time_zone(env: UiEnv) -> None:
    # 12:00 local now: 13:00 is today, 07:00 and 12:00 (not after now) are tomorrow.
    for by, expected in (
        ("13:00", datetime(2026, 6, 1, 11, 0, tzinfo=UTC)),
        ("07:00", datetime(2026, 6, 2, 5, 0, tzinfo=UTC)),
        ("12:00", datetime(2026, 6, 2, 10, 0, tzinfo=UTC)),
    ):
        r = _api(env, "/api/cars/wb_a/target", {"by": by, "kwh": 15})
        assert r.status_code == 200, r.get_json()
        one = env.controller.cars.store.car_settings(A).one_off
        assert one is not None and one.by == expected and one.energy_wh == 15_000


def test_the_one_off_time_follows_the_controllers_clock_not_the_wall_clock(env: UiEnv) -> None:
    # The demo's controller runs in simulated time: a January evening (CET, UTC+1).
    env.controller.clock = datetime(2026, 1, 9, 19, 30, tzinfo=UTC)
    r = _post(env, "/cars/wb_b/target", by="07:00", kwh="12.5")
    assert r.status_code == 302
    one = env.controller.cars.store.car_settings(B).one_off
    assert one is not None and one.by == datetime(2026, 1, 10, 6, 0, tzinfo=UTC)
    assert one.energy_wh == 12_500


def test_percent_needs_the_battery_size_and_is_offered_only_with_it(
    tmp_path: Path, frozen: Any
) -> None:
    env = make_env(tmp_path, loads={"wb_a": {"charging": {"battery_kwh": 60}}})
    html = env.client.get("/").get_data(as_text=True)
    wb_a = html[html.index('id="car-wb_a"') : html.index('id="card-wb_b"')]
    wb_b = html[html.index('id="car-wb_b"') :]
    assert 'name="percent"' in wb_a and 'name="percent"' not in wb_b
    assert _post(env, "/cars/wb_a/target", by="07:00", percent="25").status_code == 302
    one = env.controller.cars.store.car_settings(A).one_off
    assert one is not None and one.energy_wh == 15_000
    r = _post(env, "/cars/wb_b/target", by="07:00", percent="25")
    assert r.status_code == 400 and "loads.wb_b.charging.battery_kwh" in r.get_data(as_text=True)
    assert env.controller.cars.store.car_settings(B).one_off is None


def test_mode_form_and_api(env: UiEnv) -> None:
    html = env.client.get("/").get_data(as_text=True)
    assert '<option value="config">as configured' in html
    r = _post(env, "/cars/wb_a/mode", mode="now")
    assert r.status_code == 302
    assert env.controller.cars.store.car_settings(A).mode is ChargeMode.NOW
    page = env.client.get("/").get_data(as_text=True)
    assert "wb_a: mode Now" in page  # the flash
    assert "Charging: Now (set by you)" in _car(page, A)
    # A target set now would not count: the forms say so (WB B still charges for one).
    forms_a = page[page.index('id="carforms-wb_a"') : page.index('id="carforms-wb_b"')]
    assert "Targets count in mode Solar + target only." in forms_a
    assert "car-mode-hint" not in page[page.index('id="carforms-wb_b"') :]
    assert _api(env, "/api/cars/wb_a/mode", {"mode": "config"}).status_code == 200
    assert env.controller.cars.store.car_settings(A).mode is None


@pytest.mark.parametrize(
    ("path", "fields", "says"),
    [
        ("/cars/wb_a/target", {"by": "25:00", "kwh": "3"}, "'25:00': expected a local time"),
        ("/cars/wb_a/target", {"by": "07:00", "kwh": "-3"}, "kWh '-3': more than 0"),
        ("/cars/wb_a/target", {"by": "07:00", "kwh": "0"}, "kWh '0': more than 0"),
        ("/cars/wb_a/target", {"by": "07:00", "kwh": "400"}, "at most 300"),
        ("/cars/wb_a/target", {"by": "07:00", "percent": "80"}, "battery_kwh"),
        ("/cars/wb_a/mode", {"mode": "turbo"}, "mode 'turbo': expected off, solar"),
        ("/cars/wb_c/mode", {"mode": "now"}, "unknown wallbox 'wb_c'"),
        ("/cars/dhw/mode", {"mode": "now"}, "dhw does not charge by target"),
        ("/cars/wb_a/weekly", {"weekday": "9", "at": "07:00", "kwh": "3"}, "weekday '9'"),
        ("/cars/wb_a/weekly", {"weekday": "0", "at": "07:00", "kwh": "301"}, "at most 300"),
    ],
)
def test_a_bad_form_value_is_shown_and_nothing_is_stored(
    env: UiEnv, path: str, fields: dict[str, str], says: str
) -> None:
    before = _settings(env)
    r = _post(env, path, **fields)
    assert r.status_code == 400
    assert says in _text(r.get_data(as_text=True)).replace("&#39;", "'")
    assert _settings(env) == before and env.controller.cars.calls == []


def test_a_setting_the_controller_refuses_is_shown_like_a_bad_value(env: UiEnv) -> None:
    refusal = "charging targets need the database, and EMS runs without one"
    env.controller.cars.refuse = refusal
    r = _post(env, "/cars/wb_a/target", by="07:00", kwh="10")
    assert r.status_code == 400 and refusal in r.get_data(as_text=True)
    env.controller.cars.refuse = refusal
    r = _api(env, "/api/cars/wb_b/weekly", {"weekday": "mon", "at": "07:00", "kwh": 10})
    assert r.status_code == 400 and r.get_json() == {"error": refusal}
    assert _settings(env) == (CarSettings(), CarSettings())
    assert env.controller.cars.calls == []


@pytest.fixture
def locked(tmp_path: Path, frozen: Any) -> Iterator[UiEnv]:
    e = make_env(tmp_path, password=PASSWORD)
    yield e
    e.controller.close()
    e.store.close()


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("mode", {"mode": "now"}),
        ("target", {"by": "07:00", "kwh": "10"}),
        ("weekly", {"weekday": "mon", "at": "07:00", "kwh": "10"}),
    ],
)
def test_settings_need_a_login_and_the_csrf_token(
    locked: UiEnv, path: str, body: dict[str, str]
) -> None:
    # Not logged in: the form goes to the login page, the API answers 401.
    r = locked.client.post(f"/cars/wb_a/{path}", data={"csrf_token": locked.csrf(), **body})
    assert r.status_code == 302 and "/login" in r.headers["Location"]
    assert _api(locked, f"/api/cars/wb_a/{path}", body).status_code == 401
    assert locked.controller.cars.calls == []
    # Logged in, without the token (or a wrong one): refused.
    assert locked.login().status_code == 302
    r = locked.client.post(f"/cars/wb_a/{path}", data=body)
    assert r.status_code == 400 and "CSRF" in r.get_data(as_text=True)
    assert _api(locked, f"/api/cars/wb_a/{path}", body, token=None).status_code == 400
    assert _api(locked, f"/api/cars/wb_a/{path}", body, token="forged").status_code == 400
    assert locked.controller.cars.calls == []
    # With both: stored, in the name of who logged in.
    assert _api(locked, f"/api/cars/wb_a/{path}", body).status_code == 200
    assert locked.controller.cars.calls == [(A, path, "anna")]


def test_weekly_times_are_local_times_of_day(env: UiEnv) -> None:
    r = _post(env, "/cars/wb_a/weekly", weekday="2", at="06:45", kwh="8.5")
    assert r.status_code == 302
    weekly = env.controller.cars.store.car_settings(A).weekly
    assert [(w.weekday, w.at, w.energy_wh) for w in weekly] == [(2, time(6, 45), 8500.0)]


def _rows(html: str, load: LoadId) -> dict[str, tuple[str, str, str]]:
    """The weekly schedule's rows of a wallbox: day -> (state, time, kWh)."""
    forms = html[html.index(f'id="carforms-{load.value}"') :]
    out: dict[str, tuple[str, str, str]] = {}
    for m in re.finditer(
        r'<form class="week-row ?(?:week-(\w+))?".*?<span class="day">(\w+)</span>\s*'
        r'<input type="time" name="at" value="([^"]*)".*?name="kwh"[^>]*value="([^"]*)"',
        forms,
        re.S,
    ):
        out.setdefault(m.group(2), (m.group(1) or "", m.group(3), m.group(4)))
    return out


def test_the_weekly_schedule_has_a_row_per_weekday_with_the_learned_energy_offered(
    env: UiEnv,
) -> None:
    r = _api(env, "/api/cars/wb_a/weekly", {"weekday": "wed", "at": "06:15", "kwh": 9.25})
    assert r.status_code == 200
    env.controller.tick()
    html = env.client.get("/").get_data(as_text=True)
    rows = _rows(html, A)
    assert list(rows) == ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
    # Wednesday is the owner's; the other workdays offer the learned 11 kWh by the config's
    # default time (charging.default_by) to confirm; the weekend has nothing.
    assert rows["Wed"] == ("set", "06:15", "9.2")
    assert rows["Mon"] == rows["Fri"] == ("learned", "07:00", "11")
    assert rows["Sat"] == rows["Sun"] == ("", "", "")
    assert "Learned: Mon-Tue 11.0 kWh, Thu-Fri 11.0 kWh" in _text(html)
    # WB B has learned nothing: empty rows, no offer.
    assert set(_rows(html, B).values()) == {("", "", "")}
    forms_b = html[html.index('id="carforms-wb_b"') :]
    assert "car-learned-form" not in forms_b


def test_the_learned_habit_is_copied_into_the_schedule_for_the_days_without_one(
    env: UiEnv,
) -> None:
    assert (
        _api(env, "/api/cars/wb_a/weekly", {"weekday": 2, "at": "06:15", "kwh": 9}).status_code
        == 200
    )
    env.controller.tick()
    r = _post(env, "/cars/wb_a/weekly/learned", at="06:40")
    assert r.status_code == 302
    weekly = env.controller.cars.store.car_settings(A).weekly
    assert [(w.weekday, w.at, w.energy_wh) for w in weekly] == [
        (0, time(6, 40), 11_000.0),
        (1, time(6, 40), 11_000.0),
        (2, time(6, 15), 9000.0),  # the owner's own day stays
        (3, time(6, 40), 11_000.0),
        (4, time(6, 40), 11_000.0),
    ]
    page = env.client.get("/").get_data(as_text=True)
    assert "wb_a: Mon-Tue 11.0 kWh, Thu-Fri 11.0 kWh by 06:40 in the weekly schedule" in page
    assert "car-learned-form" not in page[page.index('id="carforms-wb_a"') :]
    # Nothing left to copy: refused, with the reason.
    r = _api(env, "/api/cars/wb_a/weekly/learned", {})
    assert r.status_code == 400 and "nothing learned to copy" in r.get_json()["error"]


def test_copying_the_learned_habit_through_the_api(env: UiEnv) -> None:
    r = _api(env, "/api/cars/wb_a/weekly/learned", {"at": "25:00"})
    assert r.status_code == 400 and r.get_json()["error"].startswith("at '25:00'")
    assert _api(env, "/api/cars/wb_a/weekly/learned", {"when": "now"}).status_code == 400
    assert _api(env, "/api/cars/wb_b/weekly/learned", {}).status_code == 400  # nothing learned
    assert env.controller.cars.calls == []
    r = _api(env, "/api/cars/wb_a/weekly/learned", {})
    assert r.status_code == 200, r.get_json()
    assert r.get_json()["message"] == "wb_a: Mon-Fri 11.0 kWh by 07:00 in the weekly schedule"
    weekly = env.controller.cars.store.car_settings(A).weekly
    assert {(w.at, w.energy_wh) for w in weekly} == {(time(7, 0), 11_000.0)}
    assert len(weekly) == 5


def test_a_refused_copy_stores_nothing(env: UiEnv) -> None:
    env.controller.cars.refuse = "the database is read-only"
    r = _post(env, "/cars/wb_a/weekly/learned")
    assert r.status_code == 400 and "the database is read-only" in r.get_data(as_text=True)
    assert env.controller.cars.store.car_settings(A).weekly == ()


@pytest.mark.parametrize(
    ("raw", "day"), [("mon", 0), ("Monday", 0), (" SUN ", 6), ("3", 3), (6, 6)]
)
def test_weekdays_by_name_or_number(env: UiEnv, raw: object, day: int) -> None:
    r = _api(env, "/api/cars/wb_b/weekly", {"weekday": raw, "at": "07:00", "kwh": 5})
    assert r.status_code == 200, r.get_json()
    assert [w.weekday for w in env.controller.cars.store.car_settings(B).weekly] == [day]


@pytest.mark.parametrize("raw", ["monkey", "mo", "7", "-1", 7, True, "", None, 1.0])
def test_other_weekdays_are_refused(env: UiEnv, raw: object) -> None:
    r = _api(env, "/api/cars/wb_b/weekly", {"weekday": raw, "at": "07:00", "kwh": 5})
    assert r.status_code == 400 and r.get_json()["error"].startswith("weekday ")
    assert env.controller.cars.store.car_settings(B).weekly == ()


def test_the_refusals_name_the_json_fields(env: UiEnv) -> None:
    r = _api(env, "/api/cars/wb_a/target", {"by": "7pm", "kwh": 3})
    assert r.get_json()["error"] == "by '7pm': expected a local time as HH:MM, e.g. 07:00"
    r = _api(env, "/api/cars/wb_a/weekly", {"weekday": 0, "at": "24:00", "kwh": 3})
    assert r.get_json()["error"] == "at '24:00': expected a local time as HH:MM, e.g. 07:00"


def test_the_mode_choice_as_configured_names_the_configured_mode(
    tmp_path: Path, frozen: Any
) -> None:
    env = make_env(tmp_path, loads={"wb_b": {"charging": {"mode": "solar"}}})
    html = env.client.get("/").get_data(as_text=True)
    a = html[html.index('id="carforms-wb_a"') : html.index('id="carforms-wb_b"')]
    b = html[html.index('id="carforms-wb_b"') :]
    assert '<option value="config">as configured (Solar + target)</option>' in a
    assert '<option value="config">as configured (Solar)</option>' in b
    assert "Charging: Solar (as configured)" in _car(html, B)
