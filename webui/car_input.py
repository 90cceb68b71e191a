"""The owner's charging settings from a form or a JSON body: checked here, then handed to the
controller. The form posts and `POST /api/cars/<load>/...` share this, so a bad value gets
the same message both ways (HTTP 400, nothing stored)."""

from __future__ import annotations

import math
import re
from datetime import time
from typing import Any

from emsctl.cars.plan import next_at
from emsctl.cars.types import MAX_TARGET_KWH, WEEKDAYS
from emsctl.model import ChargeMode, LoadId
from emsctl.status import CarSettingError
from webui import format as fmt
from webui.car_panel import MODE_LABELS, describe_days, learned_offer
from webui.context import UiContext

_HHMM = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")


#: The weekdays' full names, Monday first (accepted beside WEEKDAYS' "mon".."sun").
DAY_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


class CarRejected(ValueError):
    """Bad input: the message names the field and what is accepted (HTTP 400)."""


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
    """0 (Monday) .. 6 (Sunday), from the number, "mon" or "monday" (any case)."""
    if isinstance(raw, int) and not isinstance(raw, bool) and 0 <= raw <= 6:
        return raw
    if isinstance(raw, str):
        text = raw.strip().lower()
        for day, name in enumerate(WEEKDAYS):
            if text in (name.lower(), DAY_NAMES[day]):
                return day
        if text in {str(d) for d in range(7)}:
            return int(text)
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
    at = clock("by", body.get("by"))
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
    at = clock("at", body.get("at"))
    wh = energy_wh(ctx, load, body.get("kwh"), body.get("percent"))
    _call(lambda: ctx.controller.set_weekly_target(load, day, at, wh, user))
    return f"{load.value}: {WEEKDAYS[day]} {at:%H:%M} {fmt.energy(wh)}"


def copy_learned(ctx: UiContext, load_raw: str, body: dict[str, Any], user: str) -> str:
    """The learned energies into the weekly schedule, by `at` (default: charging.default_by),
    for the weekdays the owner has no target for; the owner's own days stay as they are."""
    load = wallbox(ctx, load_raw)
    charging = ctx.config.loads.get(load).car_charging
    assert charging is not None  # wallbox() refuses a load without
    raw_at = body.get("at")
    at = charging.default_by if raw_at in (None, "") else clock("at", raw_at)
    report = ctx.controller.latest()
    view = None if report is None else report.loads.get(load)
    days = () if view is None or view.car is None else learned_offer(view.car)
    if not days:
        raise CarRejected(
            f"{load.value}: nothing learned to copy: too few sessions yet, or every learned "
            "weekday has a target of yours already"
        )
    try:
        for day, wh in days:
            ctx.controller.set_weekly_target(load, day, at, wh, user)
    except CarSettingError as exc:
        raise CarRejected(str(exc)) from None
    return f"{load.value}: {describe_days(days)} by {at:%H:%M} in the weekly schedule"


def _call(fn: Any) -> None:
    try:
        fn()
    except CarSettingError as exc:
        raise CarRejected(str(exc)) from None
