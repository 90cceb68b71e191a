"""A wallbox's charging by target as its card shows it: the mode, the target in force and
where it comes from, what is still to go, the session so far, the learned habits, and the
values the card's forms start from."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, time

from emsctl.cars.types import MAX_TARGET_KWH, WEEKDAYS, TargetSource
from emsctl.model import ChargeMode, LoadId
from emsctl.status import CarView
from webui import format as fmt
from webui.context import UiContext

log = logging.getLogger(__name__)

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


@dataclass(frozen=True, slots=True)
class WeekRow:
    """One weekday of the schedule as its form shows it."""

    weekday: int
    name: str
    at: str
    kwh: str
    #: "set": in the owner's schedule; "learned": the learned energy, by the default time,
    #: offered to confirm; "": nothing.
    state: str


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
    #: Monday to Sunday, each with what its form starts from.
    weekly: tuple[WeekRow, ...] = ()
    battery_kwh: float | None = None
    #: "as configured (Solar + target)": the mode select's first choice.
    config_mode: str = "as configured"
    #: The learned days the owner has no weekly target for ("Mon-Fri 11.0 kWh"), offered to
    #: copy into the schedule by `default_by` (None: nothing to offer).
    learned_offer: str | None = None
    default_by: str = "07:00"
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


def kwh_text(wh: float) -> str:
    """An energy as a form's kWh value: to 0.1 kWh, the step the inputs take."""
    return f"{round(wh / 1000, 1):g}"


def learned_offer(v: CarView) -> tuple[tuple[int, float], ...]:
    """The learned (weekday, Wh) the owner has no weekly target for, to 0.1 kWh; only energies
    a target may have (MAX_TARGET_KWH)."""
    owned = {w.weekday for w in v.weekly}
    out: list[tuple[int, float]] = []
    for day, wh in v.learned_days:
        rounded = round(wh / 100.0) * 100.0
        if day not in owned and 0 < rounded <= MAX_TARGET_KWH * 1000:
            out.append((day, rounded))
    return tuple(out)


def describe_days(days: tuple[tuple[int, float], ...]) -> str:
    """ "Mon-Fri 11.0 kWh, Sun 8.0 kWh": runs of weekdays with the same energy."""
    parts: list[str] = []
    i = 0
    while i < len(days):
        j = i
        while (
            j + 1 < len(days) and days[j + 1][0] == days[j][0] + 1 and days[j + 1][1] == days[i][1]
        ):
            j += 1
        name = WEEKDAYS[days[i][0]]
        if j > i:
            name += f"-{WEEKDAYS[days[j][0]]}"
        parts.append(f"{name} {fmt.energy(days[i][1])}")
        i = j + 1
    return ", ".join(parts)


def week_rows(v: CarView, default_by: str) -> tuple[WeekRow, ...]:
    """Monday to Sunday: the owner's target, else the learned energy by `default_by`."""
    offered = dict(learned_offer(v))
    rows: list[WeekRow] = []
    for day, name in enumerate(WEEKDAYS):
        own = next((w for w in v.weekly if w.weekday == day), None)
        if own is not None:
            rows.append(
                WeekRow(day, name, own.at.strftime("%H:%M"), kwh_text(own.energy_wh), "set")
            )
        elif day in offered:
            rows.append(WeekRow(day, name, default_by, kwh_text(offered[day]), "learned"))
        else:
            rows.append(WeekRow(day, name, "", "", ""))
    return tuple(rows)


def panel(v: CarView, now: datetime, ctx: UiContext, load: LoadId) -> CarPanel:
    tz = ctx.tz
    charging = ctx.config.loads.get(load).car_charging
    default_by = (charging.default_by if charging is not None else time(7, 0)).strftime("%H:%M")
    config_mode = "as configured"
    if charging is not None:
        config_mode += f" ({MODE_LABELS.get(charging.mode, charging.mode.value)})"
    target = None
    if v.deadline is not None and v.target_wh is not None and v.mode is ChargeMode.SOLAR_TARGET:
        source = SOURCE_LABELS.get(v.target_source or "", "")
        target = f"{fmt.energy(v.target_wh)} by {fmt.clock_time(v.deadline, now, tz)}" + (
            f" · {source}" if source else ""
        )
    plan = None
    if v.gone_at is not None and v.deadline is not None:
        plan = (
            f"{fmt.clock_time(v.deadline, now, tz)} has passed: the car is taken as gone at "
            f"{fmt.clock_time(v.gone_at, now, tz)} unless it draws"
        )
    elif v.mode is ChargeMode.SOLAR_TARGET and v.session_started is not None:
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
        one_kwh = kwh_text(v.one_off.energy_wh)
    offer = learned_offer(v)
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
        weekly=week_rows(v, default_by),
        battery_kwh=v.battery_kwh,
        config_mode=config_mode,
        learned_offer=describe_days(offer) if offer else None,
        default_by=default_by,
        sessions=recent_sessions(ctx, load, now),
    )
