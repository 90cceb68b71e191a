"""Habits learned from a wallbox's past sessions: how much energy a car takes (per weekday of
arrival) and how soon after arriving it has been seen to leave (for arrivals at about the
same time of day). Pure functions over the sessions.

What a relay wallbox can see decides the statistics. It sees a car only while it draws, so
a session's end is known only as "stopped drawing" (full, or gone while charging: the two
look the same) or "not found" when the relay came on again for it (gone before that, after
its last draw). A departure is therefore learned only from the "not found" sessions, at
their last draw (the earliest the car can have left): a survival (Kaplan-Meier) estimate of
the stay, with the other sessions as censored at their last draw, so that a car charged
early and full never makes the estimate earlier by itself. The stay used is an early
quantile (`charging.departure_quantile`): a car that left early once in ten arrivals at that
time of day is planned for. Arrivals within `ARRIVAL_WINDOW_MIN` of the time of day count,
from every weekday: a visit by day and a night at home differ more by the hour of arrival
than by the weekday, and pooling the weekdays learns a new habit within days. The energy is
a high quantile (`charging.energy_quantile`) of the needs seen, per weekday: only a car that
stopped drawing by itself shows its need, the others are censored (they took less than they
needed). Charging for a little more than most sessions take costs a few kWh from the grid
at worst; charging for too little leaves the car short.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo

from emsctl.cars.types import WEEKDAYS, ChargingSession, SessionEnd
from emsctl.config import CarCharging

_DAY_MIN = 1440
#: Arrivals this close in time of day (minutes) count for each other's stay.
ARRIVAL_WINDOW_MIN = 150


@dataclass(frozen=True, slots=True)
class Habit:
    """What one weekday of arrival has shown: its sessions and the energy planned for (None:
    too few sessions)."""

    weekday: int
    sessions: int
    energy_wh: float | None = None


@dataclass(frozen=True, slots=True)
class Stay:
    """One past session: its arrival (minute of the local day), how long after it the car
    was last seen (minutes), and whether it was then found gone (else censored)."""

    arrival_min: int
    seen_min: int
    left: bool


@dataclass(frozen=True, slots=True)
class Habits:
    """The habits of one wallbox."""

    days: dict[int, Habit] = field(default_factory=dict)
    #: The energy planned for when a weekday has too few sessions (all weekdays together).
    energy_wh: float | None = None
    stays: tuple[Stay, ...] = ()
    min_sessions: int = 3
    departure_quantile: float = 0.1

    def stay_min(self, arrival_min: int) -> int | None:
        """How soon (minutes) a car arriving at this minute of the day may leave, from the
        arrivals around that time; None when none was seen to leave early enough."""
        near = [
            (float(s.seen_min), s.left)
            for s in self.stays
            if _circular(s.arrival_min, arrival_min) <= ARRIVAL_WINDOW_MIN
        ]
        if len(near) < self.min_sessions:
            return None
        found = censored_quantile(near, self.departure_quantile)
        return None if found is None else int(found)

    def target(
        self, arrived: datetime, ref: datetime, tz: tzinfo
    ) -> tuple[datetime, float | None] | None:
        """(deadline, energy) for a car that arrived at `arrived` and may leave early; None
        when no early departure is known that is still ahead of `ref`. The energy is None
        when none is learned yet (the caller plans the default then)."""
        local = arrived.astimezone(tz)
        stay = self.stay_min(local.hour * 60 + local.minute)
        if stay is None:
            return None
        deadline = (arrived + timedelta(minutes=stay)).astimezone(UTC)
        if deadline <= ref:
            return None
        return deadline, self.energy_for(local.weekday())

    def energy_for(self, weekday: int) -> float | None:
        habit = self.days.get(weekday)
        if habit is not None and habit.energy_wh is not None:
            return habit.energy_wh
        return self.energy_wh

    def describe(self) -> str | None:
        """ "learned: Mon-Fri ~11 kWh; arriving 10:00-13:00: may leave after 4 h" (None:
        nothing learned yet)."""
        parts: list[str] = []
        for days, wh in _runs({d: h.energy_wh for d, h in self.days.items()}, 500.0):
            parts.append(f"{days} ~{wh / 1000:.0f} kWh")
        if not parts and self.energy_wh is not None:
            parts.append(f"~{self.energy_wh / 1000:.0f} kWh")
        hours: list[tuple[int, int]] = []
        for hour in range(24):
            stay = self.stay_min(hour * 60)
            if stay is not None:
                hours.append((hour, stay))
        i = 0
        while i < len(hours):
            j = i
            while j + 1 < len(hours) and hours[j + 1][0] == hours[j][0] + 1:
                if abs(hours[j + 1][1] - hours[i][1]) >= 60:
                    break
                j += 1
            first, last = hours[i][0], hours[j][0]
            span = f"{first:02d}:00" if first == last else f"{first:02d}:00-{last:02d}:00"
            parts.append(f"arriving {span}: may leave after {_hours(hours[i][1])}")
            i = j + 1
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
    every: list[tuple[float, bool]] = []
    stays: list[Stay] = []
    for s in sessions:
        if s.open or s.started_at < since or s.ended_by is SessionEnd.NO_CAR:
            continue
        start = s.started_at.astimezone(tz)
        seen = int((s.last_draw_at - s.started_at).total_seconds() // 60)
        stays.append(Stay(start.hour * 60 + start.minute, seen, s.ended_by is SessionEnd.NOT_FOUND))
        # Only a car that stopped drawing by itself shows what it needed; the others took
        # less than they needed (censored).
        full = (s.energy_wh, s.ended_by is SessionEnd.STOPPED)
        energy.setdefault(start.weekday(), []).append(full)
        every.append(full)
    floor = cfg.default_kwh * 1000.0
    days: dict[int, Habit] = {}
    for day, values in energy.items():
        n = len(values)
        wh = _energy(values, cfg.energy_quantile, floor) if n >= cfg.min_sessions else None
        days[day] = Habit(day, n, wh)
    overall = _energy(every, cfg.energy_quantile, floor) if len(every) >= cfg.min_sessions else None
    return Habits(days, overall, tuple(stays), cfg.min_sessions, cfg.departure_quantile)


def _energy(values: list[tuple[float, bool]], q: float, floor: float) -> float:
    """The energy to plan for: the high quantile of the needs seen; when the cars that were
    charged until full are too few to tell it, the default or the most any car took."""
    found = censored_quantile(values, q)
    if found is not None:
        return found
    return max(floor, *(v for v, _ in values))


def _circular(a: int, b: int) -> int:
    """Minutes between two times of day, across midnight."""
    d = abs(a - b) % _DAY_MIN
    return min(d, _DAY_MIN - d)


def _hours(minutes: int) -> str:
    h, m = divmod(minutes, 60)
    return f"{h} h" if m == 0 else f"{h} h {m:02d} min"


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
