"""The vocabulary of car charging: targets (one-off, weekly), a wallbox's settings, and the
charging sessions as the EMS saw them. Plain dataclasses; no I/O."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, time
from enum import StrEnum

from emsctl.model import ChargeMode, LoadId

#: The most energy a target may ask for (kWh): more is a typo (the UI, the API, the CLI and
#: the controller all hold to it).
MAX_TARGET_KWH = 300.0

#: Monday first, as datetime.weekday() counts.
WEEKDAYS: tuple[str, ...] = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


class TargetSource(StrEnum):
    """Where the target a plan follows comes from."""

    ONE_OFF = "one-off"  # the owner's target for the current session
    WEEKLY = "weekly"  # the owner's weekly schedule
    LEARNED = "learned"  # learned from this wallbox's past sessions
    DEFAULT = "default"  # nothing known: charge by the next morning


@dataclass(frozen=True, slots=True)
class OneOffTarget:
    """`energy_wh` more in the car by `by` (aware UTC); ends with the session it is for."""

    by: datetime
    energy_wh: float
    set_at: datetime
    set_by: str = "ui"


@dataclass(frozen=True, slots=True)
class WeeklyTarget:
    """Every `weekday` (0 = Monday) at local time `at`: `energy_wh` more in the car (the shape
    of Matter's ChargingTargetSchedule)."""

    weekday: int
    at: time
    energy_wh: float


@dataclass(frozen=True, slots=True)
class CarSettings:
    """What the owner set for one wallbox. `mode` None: the config's `charging.mode`."""

    mode: ChargeMode | None = None
    one_off: OneOffTarget | None = None
    weekly: tuple[WeeklyTarget, ...] = ()

    def weekly_for(self, weekday: int) -> WeeklyTarget | None:
        return next((w for w in self.weekly if w.weekday == weekday), None)


class SessionEnd(StrEnum):
    """How a charging session ended, as far as a relay wallbox can tell."""

    STOPPED = "stopped_drawing"  # the car stopped drawing with the relay on: full, or gone
    NOT_FOUND = "not_found"  # switched on again, the car drew nothing: it had left
    DEADLINE = "deadline_passed"  # the relay stayed off past the target: presumed gone
    MODE_OFF = "mode_off"  # the owner set the mode to off
    NO_CAR = "no_car"  # an estimated draw the step down at switch-off did not confirm


@dataclass(slots=True)
class ChargingSession:
    """One car at one wallbox, from its first draw to its end.

    A relay wallbox only sees a car while it draws, so a session starts at the first draw
    (not at the plug-in) and `last_draw_at` is the last time it was seen. `estimated`: the
    energy is the wallbox's nominal power times the time it was judged to draw (a wallbox
    without a meter), not a metered value. `deadline`/`target_wh`/`target_source` are the
    target the session was charged for.
    """

    load: LoadId
    started_at: datetime
    last_draw_at: datetime
    energy_wh: float = 0.0
    estimated: bool = False
    ended_at: datetime | None = None
    ended_by: SessionEnd | None = None
    deadline: datetime | None = None
    target_wh: float | None = None
    target_source: TargetSource | None = None
    #: Energy from surplus (no import while charging) and from the grid or battery, Wh.
    solar_wh: float = 0.0
    id: int | None = None
    #: Times the relay was switched on for this session.
    switch_ons: int = field(default=0)

    @property
    def open(self) -> bool:
        return self.ended_at is None
