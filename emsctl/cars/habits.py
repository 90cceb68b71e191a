"""Habits learned from a wallbox's past sessions, per weekday of arrival: how much energy a
car takes, and how early it has been seen to leave. Pure functions over the sessions.

What a relay wallbox can see decides the statistics. It sees a car only while it draws, so
a session's end is known only as "stopped drawing" (full, or gone while charging: the two
look the same) or "not found" when the relay came on again for it (gone before that, after
its last draw). A departure is therefore learned only from the "not found" sessions, at
their last draw (the earliest the car can have left): a survival estimate with the other
sessions as censored at their last draw, so that a car charged early and full never makes
the estimate earlier by itself. The departure used is an early quantile of that estimate
(`charging.departure_quantile`): a car that left early once in ten sessions is planned
for. The energy is a high quantile (`charging.energy_quantile`) of the sessions' energy:
charging for a little more than most sessions take costs a few kWh from the grid at worst,
charging for too little leaves the car short.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta, tzinfo

from emsctl.cars.types import WEEKDAYS, ChargingSession, SessionEnd
from emsctl.config import CarCharging

_DAY_MIN = 1440


@dataclass(frozen=True, slots=True)
class Habit:
    """What one weekday of arrival has shown. `leave_min`: minutes from that day's local
    midnight by which a car has been seen to leave (None: no early departure seen);
    `energy_wh`: the energy planned for (None: too few sessions)."""

    weekday: int
    sessions: int
    leave_min: int | None = None
    energy_wh: float | None = None


@dataclass(frozen=True, slots=True)
class Habits:
    """The habits of one wallbox, by weekday of arrival (0 = Monday)."""

    days: dict[int, Habit] = field(default_factory=dict)
    #: The energy planned for when a weekday has too few sessions (all weekdays together).
    energy_wh: float | None = None

    def target(self, arrived: datetime, ref: datetime, tz: tzinfo) -> tuple[datetime, float] | None:
        """(deadline, energy) for a car that arrived at `arrived`, from its weekday's habit;
        None when that weekday has no early departure still ahead of `ref`."""
        local = arrived.astimezone(tz)
        habit = self.days.get(local.weekday())
        if habit is None or habit.leave_min is None:
            return None
        midnight = datetime.combine(local.date(), time(0), tzinfo=tz)
        deadline = (midnight + timedelta(minutes=habit.leave_min)).astimezone(UTC)
        if deadline <= ref:
            return None
        energy = habit.energy_wh if habit.energy_wh is not None else self.energy_wh
        return deadline, energy if energy is not None else 0.0

    def energy_for(self, weekday: int) -> float | None:
        habit = self.days.get(weekday)
        if habit is not None and habit.energy_wh is not None:
            return habit.energy_wh
        return self.energy_wh

    def describe(self) -> str | None:
        """ "learned: Mon-Fri ~11 kWh; Fri leaves by 15:10 (same day)" (None: nothing yet)."""
        parts: list[str] = []
        for days, wh in _runs({d: h.energy_wh for d, h in self.days.items()}, 500.0):
            parts.append(f"{days} ~{wh / 1000:.0f} kWh")
        leaves: dict[int, float | None] = {
            d: float(h.leave_min) for d, h in self.days.items() if h.leave_min is not None
        }
        for days, minutes in _runs(leaves, 10.0):
            parts.append(f"{days} leaves by {_clock(int(minutes))}")
        if not parts and self.energy_wh is not None:
            parts.append(f"~{self.energy_wh / 1000:.0f} kWh")
        return "learned: " + "; ".join(parts) if parts else None


def censored_quantile(items: Iterable[tuple[float, bool]], q: float) -> float | None:
    """The smallest value where the Kaplan-Meier estimate of the distribution reaches `q`.

    Each item is (value, seen): seen False for a censored one, only known to be at least
    that value (a car that left while held took less than it needed; one that was known to
    stay only until its last draw). None when the values seen never reach `q`."""
    ordered = sorted(items)
    at_risk = len(ordered)
    survive = 1.0
    i = 0
    while i < len(ordered):
        t = ordered[i][0]
        seen = censored = 0
        while i < len(ordered) and ordered[i][0] == t:
            if ordered[i][1]:
                seen += 1
            else:
                censored += 1
            i += 1
        if seen:
            survive *= 1.0 - seen / at_risk
            if 1.0 - survive >= q - 1e-9:
                return t
        at_risk -= seen + censored
    return None


def learn(
    sessions: Iterable[ChargingSession], cfg: CarCharging, tz: tzinfo, now: datetime
) -> Habits:
    """The habits from the ended sessions of the last `cfg.learn_days` days."""
    since = now - timedelta(days=cfg.learn_days)
    energy: dict[int, list[tuple[float, bool]]] = {}
    leave: dict[int, list[tuple[float, bool]]] = {}
    every: list[tuple[float, bool]] = []
    for s in sessions:
        if s.open or s.started_at < since or s.ended_by is SessionEnd.NO_CAR:
            continue
        start = s.started_at.astimezone(tz)
        day = start.weekday()
        midnight = datetime.combine(start.date(), time(0), tzinfo=tz)
        seen = int((s.last_draw_at.astimezone(tz) - midnight).total_seconds() // 60)
        # Only a car that stopped drawing by itself shows what it needed; the others took
        # less than they needed (censored).
        full = (s.energy_wh, s.ended_by is SessionEnd.STOPPED)
        energy.setdefault(day, []).append(full)
        leave.setdefault(day, []).append((seen, s.ended_by is SessionEnd.NOT_FOUND))
        every.append(full)
    floor = cfg.default_kwh * 1000.0
    days: dict[int, Habit] = {}
    for day, values in energy.items():
        n = len(values)
        if n < cfg.min_sessions:
            days[day] = Habit(day, n)
            continue
        departure = censored_quantile(leave[day], cfg.departure_quantile)
        days[day] = Habit(
            day,
            n,
            leave_min=None if departure is None else int(departure),
            energy_wh=_energy(values, cfg.energy_quantile, floor),
        )
    overall = _energy(every, cfg.energy_quantile, floor) if len(every) >= cfg.min_sessions else None
    return Habits(days, overall)


def _energy(values: list[tuple[float, bool]], q: float, floor: float) -> float:
    """The energy to plan for: the high quantile of the needs seen; when the cars that were
    charged until full are too few to tell it, the default or the most any car took."""
    found = censored_quantile(values, q)
    if found is not None:
        return found
    return max(floor, *(v for v, _ in values))


def _clock(minutes: int) -> str:
    day, rest = divmod(minutes, _DAY_MIN)
    text = f"{rest // 60:02d}:{rest % 60:02d}"
    return text if day == 0 else f"{text} (+{day} d)"


def _runs(values: dict[int, float | None], within: float) -> list[tuple[str, float]]:
    """Weekdays whose values differ by less than `within` grouped into runs:
    [("Mon-Fri", 11000.0), ...] (energies within half a kWh, times within ten minutes read
    as the same habit)."""
    out: list[tuple[str, float]] = []
    day = 0
    while day < 7:
        v = values.get(day)
        if v is None:
            day += 1
            continue
        end = day
        while end + 1 < 7 and _near(values.get(end + 1), v, within):
            end += 1
        name = WEEKDAYS[day] if end == day else f"{WEEKDAYS[day]}-{WEEKDAYS[end]}"
        out.append((name, float(v)))
        day = end + 1
    return out


def _near(a: float | None, b: float, within: float) -> bool:
    return a is not None and abs(a - b) < within


def learned_text(
    sessions: Iterable[ChargingSession], cfg: CarCharging, tz: tzinfo, now: datetime
) -> str | None:
    """The learned habits of a wallbox as the UI and `emsctl car show` print them."""
    return learn(sessions, cfg, tz, now).describe()
