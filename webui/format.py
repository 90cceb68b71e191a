"""How figures and times read on the page: watts, ages, "since 14:32 (12 min)" in local time.

Pure functions, registered as Jinja filters by the application factory.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from emsctl import units
from emsctl.model import Mode, State

#: Shown for a value that is not there at all.
DASH = units.DASH

#: "forced on" for forced_on: the states as the machine declares them (emsctl.model.State).
STATE_LABELS: dict[str, str] = {state: state.value.replace("_", " ") for state in State}

MODE_LABELS: dict[str, str] = {
    Mode.AUTO: "Auto",
    Mode.FORCE_ON: "Force on",
    Mode.FORCE_OFF: "Force off",
}

LOAD_LABELS: dict[str, str] = {
    "sg_ready": "Heat pump SG-Ready",
    "dhw": "Hot water boost",
    "wb_a": "Wallbox A",
    "wb_b": "Wallbox B",
}


def state_colour(state: str, error: str | None = None) -> str:
    """The CSS class naming a state's colour (see static/ems.css)."""
    if error or state == State.UNAVAILABLE:
        return "red"
    if state in (State.ON,):
        return "green"
    if state in (State.ARMING, State.DISARMING):
        return "amber"
    if state in (State.FORCED_ON, State.FORCED_OFF):
        return "blue"
    if state == State.MANUAL:
        return "purple"
    return "grey"


#: The one way powers, energies and durations read (shared with the engine's reasons).
power = units.power
energy = units.energy
duration = units.duration


def clock_time(at: datetime, now: datetime, tz: ZoneInfo) -> str:
    """Local wall time: "14:32" today, "Mon 14:32" within a week, else "3 Jun 14:32"."""
    local = at.astimezone(tz)
    today = now.astimezone(tz).date()
    if local.date() == today:
        return local.strftime("%H:%M")
    if local.date() == today - timedelta(days=1):
        return local.strftime("yesterday %H:%M")
    if local.date() == today + timedelta(days=1):
        return local.strftime("tomorrow %H:%M")
    if abs((local.date() - today).days) < 7:
        return local.strftime("%a %H:%M")
    return f"{local.day} {local.strftime('%b %H:%M')}"


def since(at: datetime | None, now: datetime, tz: ZoneInfo) -> str:
    """ "since 14:32 (12 min)"."""
    if at is None:
        return ""
    return f"since {clock_time(at, now, tz)} ({duration((now - at).total_seconds())})"


def until(at: datetime | None, now: datetime, tz: ZoneInfo) -> str:
    """ "until 18:32 (in 4 h)" or "until released"."""
    if at is None:
        return "until released"
    local = at.astimezone(tz)
    if (
        local.time() == local.time().min
        and local.date() == (now.astimezone(tz) + timedelta(days=1)).date()
    ):
        label = "midnight"
    else:
        label = clock_time(at, now, tz)
    return f"until {label} (in {duration((at - now).total_seconds())})"


def timestamp(at: datetime, tz: ZoneInfo, *, seconds: bool = True) -> str:
    """A full local timestamp for tables: "2025-06-03 14:32:05"."""
    return at.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")


def by_whom(who: str) -> str:
    """Who made or ended an override, after its verb: "by anna"; a maker phrased so already,
    as a hold detected at the device is ("by hand (button)"), as it is (not "by by hand")."""
    return who if who.startswith("by ") else f"by {who}"
