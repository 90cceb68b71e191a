"""Charging by target on the page and in the API: each wallbox's mode, its target for this
session and its weekly schedule. The form posts and `POST /api/cars/<load>/...` share the
parsing here, so a bad value gets the same message both ways (HTTP 400, nothing stored).
"""

from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass
from datetime import datetime, time
from typing import Any

from flask import Blueprint, flash, jsonify, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from emsctl.cars.plan import next_at
from emsctl.cars.types import MAX_TARGET_KWH, WEEKDAYS, TargetSource
from emsctl.model import ChargeMode, LoadId
from emsctl.status import CarSettingError, CarView
from emsctl.store.db import StoreError
from webui import format as fmt
from webui.auth import current_user
from webui.context import UiContext, ui

log = logging.getLogger(__name__)

bp = Blueprint("cars", __name__)

MODE_LABELS: dict[str, str] = {
    ChargeMode.OFF: "Off",
    ChargeMode.SOLAR: "Solar",
    ChargeMode.SOLAR_TARGET: "Solar + target",
    ChargeMode.NOW: "Now",
}
SOURCE_LABELS: dict[str, str] = {
    TargetSource.ONE_OFF: "your target",
    TargetSource.WEEKLY: "weekly",
    TargetSource.LEARNED: "learned",
    TargetSource.DEFAULT: "default",
}
_HHMM = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")


class CarRejected(ValueError):
    """Bad input: the message names the field and what is accepted (HTTP 400)."""


@dataclass(frozen=True, slots=True)
class CarPanel:
    """What a wallbox's card says of its charging by target."""

    mode: str
    mode_label: str
    #: "as configured" or "set by you".
    mode_from: str
    target: str | None
    plan: str | None
    session: str
    learned: str | None
    one_off_by: str = ""
    one_off_kwh: str = ""
    weekly: tuple[tuple[int, str, str, str], ...] = ()
    battery_kwh: float | None = None
    #: The last sessions, newest first: (started, how it ended, energy).
    sessions: tuple[tuple[str, str, str], ...] = ()


#: How the card names the end of a session.
ENDS: dict[str, str] = {
    "stopped_drawing": "full (or left while charging)",
    "not_found": "gone when its charge was due",
    "deadline_passed": "target passed",
    "mode_off": "mode off",
}


def recent_sessions(
    ctx: UiContext, load: LoadId, now: datetime
) -> tuple[tuple[str, str, str], ...]:
    """The wallbox's last sessions for its card (the store may be busy: then none)."""
    try:
        sessions = ctx.store.car_sessions(load, limit=8)
    except Exception:  # the page must show even when the database does not answer
        log.exception("cannot read the charging sessions")
        return ()
    out: list[tuple[str, str, str]] = []
    for s in sessions:
        if s.ended_by is not None and s.ended_by.value == "no_car":
            continue
        energy = fmt.energy(s.energy_wh)
        energy = f"~{energy}" if s.estimated else energy
        end = "open" if s.ended_by is None else ENDS.get(s.ended_by.value, s.ended_by.value)
        out.append((fmt.clock_time(s.started_at, now, ctx.tz), end, energy))
    return tuple(out[:5])


def panel(v: CarView, now: datetime, ctx: UiContext, load: LoadId) -> CarPanel:
    tz = ctx.tz
    target = None
    if v.deadline is not None and v.target_wh is not None and v.mode is ChargeMode.SOLAR_TARGET:
        source = SOURCE_LABELS.get(v.target_source or "", "")
        target = f"{fmt.energy(v.target_wh)} by {fmt.clock_time(v.deadline, now, tz)}" + (
            f" · {source}" if source else ""
        )
    plan = None
    if v.mode is ChargeMode.SOLAR_TARGET and v.session_started is not None:
        if v.need_wh <= 0:
            plan = "Target met: surplus only"
        else:
            parts = [f"{fmt.energy(v.need_wh)} to go"]
            if v.latest_start is not None:
                parts.append(f"must start by {fmt.clock_time(v.latest_start, now, tz)}")
            if v.expected_finish is not None:
                parts.append(f"expected finish {fmt.clock_time(v.expected_finish, now, tz)}")
            plan = " · ".join(parts)
    if v.session_started is None:
        session = "No car seen" if v.mode is not ChargeMode.OFF else "Charging off"
    else:
        energy = fmt.energy(v.session_wh or 0.0)
        energy = f"~{energy} (estimated)" if v.estimated else energy
        start = fmt.clock_time(v.session_started, now, tz)
        state = "charging" if v.drawing else "waiting"
        session = f"{energy} this session (since {start}), {state}"
    one_by, one_kwh = "", ""
    if v.one_off is not None:
        one_by = v.one_off.by.astimezone(tz).strftime("%H:%M")
        one_kwh = f"{v.one_off.energy_wh / 1000:g}"
    weekly = tuple(
        (w.weekday, WEEKDAYS[w.weekday], w.at.strftime("%H:%M"), f"{w.energy_wh / 1000:g}")
        for w in v.weekly
    )
    return CarPanel(
        mode=v.mode.value,
        mode_label=MODE_LABELS.get(v.mode, v.mode.value),
        mode_from="set by you" if v.mode_from == "owner" else "as configured",
        target=target,
        plan=plan,
        session=session,
        learned=v.learned,
        one_off_by=one_by,
        one_off_kwh=one_kwh,
        weekly=weekly,
        battery_kwh=v.battery_kwh,
        sessions=recent_sessions(ctx, load, now),
    )


# -- parsing (shared by the forms and the API) ------------------------------------------------


def wallbox(ctx: UiContext, raw: str) -> LoadId:
    try:
        load = LoadId(raw)
    except ValueError:
        raise CarRejected(f"unknown wallbox {raw!r}: expected wb_a or wb_b") from None
    cfg = ctx.config.loads.get(load)
    if load not in ctx.loads or cfg.car_charging is None:
        raise CarRejected(
            f"{raw} does not charge by target (not a wallbox, disabled, or "
            f"loads.{raw}.charging.enabled is false)"
        )
    return load


def mode(raw: object) -> ChargeMode | None:
    """A mode, or None for "as configured" ("config", empty or null)."""
    if raw in (None, "", "config"):
        return None
    if not isinstance(raw, str):
        raise CarRejected(f"mode {raw!r}: expected off, solar, solar+target, now or config")
    try:
        return ChargeMode(raw)
    except ValueError:
        raise CarRejected(
            f"mode {raw!r}: expected off, solar, solar+target, now or config"
        ) from None


def clock(field: str, raw: object) -> time:
    text = raw.strip() if isinstance(raw, str) else ""
    m = _HHMM.match(text)
    if not m:
        raise CarRejected(f"{field} {raw!r}: expected a local time as HH:MM, e.g. 07:00")
    return time(int(m.group(1)), int(m.group(2)))


def energy_wh(ctx: UiContext, load: LoadId, kwh: object, percent: object) -> float:
    """The energy to add from kWh, or from % of the car's battery (charging.battery_kwh)."""
    if percent not in (None, ""):
        battery = ctx.config.loads.get(load).car_charging
        if battery is None or battery.battery_kwh is None:
            raise CarRejected(
                f"percent: the car's battery size is not configured "
                f"(loads.{load.value}.charging.battery_kwh); give kWh"
            )
        p = _number("percent", percent)
        if not 0 < p <= 100:
            raise CarRejected(f"percent {percent!r}: more than 0 and at most 100")
        return battery.battery_kwh * p * 10.0
    value = _number("kWh", kwh)
    if not 0 < value <= MAX_TARGET_KWH:
        raise CarRejected(f"kWh {kwh!r}: more than 0 and at most {MAX_TARGET_KWH:g}")
    return value * 1000.0


def _number(field: str, raw: object) -> float:
    if isinstance(raw, bool):
        raise CarRejected(f"{field} {raw!r}: expected a number")
    try:
        value = float(raw)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise CarRejected(f"{field} {raw!r}: expected a number") from None
    if not math.isfinite(value):
        raise CarRejected(f"{field} {raw!r}: expected a finite number")
    return value


def weekday(raw: object) -> int:
    names = [d.lower() for d in WEEKDAYS]
    if isinstance(raw, int) and not isinstance(raw, bool) and 0 <= raw <= 6:
        return raw
    if isinstance(raw, str) and raw.strip().lower()[:3] in names and raw.strip():
        return names.index(raw.strip().lower()[:3])
    if isinstance(raw, str) and raw.strip().isdigit() and 0 <= int(raw) <= 6:
        return int(raw)
    raise CarRejected(f"weekday {raw!r}: expected mon..sun or 0 (Monday)..6 (Sunday)")


# -- actions ------------------------------------------------------------------------------------


def set_mode(ctx: UiContext, load_raw: str, mode_raw: object, user: str) -> str:
    load = wallbox(ctx, load_raw)
    m = mode(mode_raw)
    _call(lambda: ctx.controller.set_car_mode(load, m, user))
    return f"{load.value}: mode {'as configured' if m is None else MODE_LABELS[m]}"


def set_target(ctx: UiContext, load_raw: str, body: dict[str, Any], user: str) -> str:
    load = wallbox(ctx, load_raw)
    if body.get("clear") in (True, "1", "true", "on"):
        _call(lambda: ctx.controller.set_car_target(load, None, None, user))
        return f"{load.value}: target cleared"
    at = clock("time", body.get("by"))
    wh = energy_wh(ctx, load, body.get("kwh"), body.get("percent"))
    by = next_at(ctx.controller.now(), at, ctx.tz)
    _call(lambda: ctx.controller.set_car_target(load, by, wh, user))
    return f"{load.value}: {fmt.energy(wh)} by {by.astimezone(ctx.tz):%a %H:%M}"


def set_weekly(ctx: UiContext, load_raw: str, body: dict[str, Any], user: str) -> str:
    load = wallbox(ctx, load_raw)
    day = weekday(body.get("weekday"))
    if body.get("clear") in (True, "1", "true", "on"):
        _call(lambda: ctx.controller.set_weekly_target(load, day, None, None, user))
        return f"{load.value}: no target on {WEEKDAYS[day]}"
    at = clock("time", body.get("at"))
    wh = energy_wh(ctx, load, body.get("kwh"), body.get("percent"))
    _call(lambda: ctx.controller.set_weekly_target(load, day, at, wh, user))
    return f"{load.value}: {WEEKDAYS[day]} {at:%H:%M} {fmt.energy(wh)}"


def _call(fn: Any) -> None:
    try:
        fn()
    except CarSettingError as exc:
        raise CarRejected(str(exc)) from None


# -- routes ---------------------------------------------------------------------------------


def _form_result(fn: Any) -> ResponseReturnValue:
    try:
        message = fn()
    except CarRejected as exc:
        return render_template("error.html", title="Not accepted", message=str(exc)), 400
    except StoreError as exc:
        return render_template("error.html", title="Not stored", message=str(exc)), 503
    flash(message + " (the controller applies it at its next tick)")
    return redirect(url_for("status.index"))


@bp.post("/cars/<load>/mode")
def mode_form(load: str) -> ResponseReturnValue:
    return _form_result(lambda: set_mode(ui(), load, request.form.get("mode"), current_user()))


@bp.post("/cars/<load>/target")
def target_form(load: str) -> ResponseReturnValue:
    return _form_result(lambda: set_target(ui(), load, dict(request.form), current_user()))


@bp.post("/cars/<load>/weekly")
def weekly_form(load: str) -> ResponseReturnValue:
    return _form_result(lambda: set_weekly(ui(), load, dict(request.form), current_user()))


def _json_body(allowed: set[str]) -> dict[str, Any]:
    try:
        body = request.get_json(silent=True)
    except RecursionError:
        raise CarRejected("body: JSON nested too deeply: expected a flat JSON object") from None
    if not isinstance(body, dict):
        raise CarRejected("expected a JSON object with Content-Type: application/json")
    unknown = set(body) - allowed
    if unknown:
        raise CarRejected(
            f"unknown field(s) {', '.join(sorted(unknown))}: expected {', '.join(sorted(allowed))}"
        )
    return body


def _api_result(fn: Any) -> ResponseReturnValue:
    try:
        message = fn()
    except CarRejected as exc:
        return jsonify(error=str(exc)), 400
    except StoreError as exc:
        return jsonify(error=f"not stored: {exc}"), 503
    return jsonify(ok=True, message=message)


@bp.post("/api/cars/<load>/mode")
def mode_api(load: str) -> ResponseReturnValue:
    return _api_result(
        lambda: set_mode(ui(), load, _json_body({"mode"}).get("mode"), current_user())
    )


@bp.post("/api/cars/<load>/target")
def target_api(load: str) -> ResponseReturnValue:
    return _api_result(
        lambda: set_target(
            ui(), load, _json_body({"by", "kwh", "percent", "clear"}), current_user()
        )
    )


@bp.post("/api/cars/<load>/weekly")
def weekly_api(load: str) -> ResponseReturnValue:
    return _api_result(
        lambda: set_weekly(
            ui(), load, _json_body({"weekday", "at", "kwh", "percent", "clear"}), current_user()
        )
    )
