"""Which target a wallbox follows at a moment: the owner's one-off target, the weekly
schedule, the learned habit, or the default (by the next morning). Pure functions."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta, tzinfo

from emsctl.cars.habits import Habits
from emsctl.cars.types import CarSettings, TargetSource
from emsctl.config import CarCharging


@dataclass(frozen=True, slots=True)
class Target:
    """`energy_wh` more in the car by `deadline` (aware UTC)."""

    deadline: datetime
    energy_wh: float
    source: TargetSource


def next_at(after: datetime, at: time, tz: tzinfo, weekday: int | None = None) -> datetime:
    """The first local time `at` strictly after `after` (on `weekday`, 0 = Monday, when
    given), as aware UTC. A time that a clock change skips counts as the moment after it."""
    local = after.astimezone(tz)
    for days in range(8):
        day = local.date() + timedelta(days=days)
        if weekday is not None and day.weekday() != weekday:
            continue
        candidate = datetime.combine(day, at, tzinfo=tz).astimezone(UTC)
        if candidate > after:
            return candidate
    raise AssertionError("a weekday comes within eight days")


def target_in_force(
    settings: CarSettings,
    habits: Habits,
    cfg: CarCharging,
    tz: tzinfo,
    now: datetime,
    *,
    arrived: datetime | None = None,
) -> Target:
    """The target to charge for now. `arrived`: when the open session began (a learned
    habit is per weekday of arrival), None without one."""
    ref = now
    one = settings.one_off
    if one is not None and one.by > ref:
        return Target(one.by, one.energy_wh, TargetSource.ONE_OFF)
    if settings.weekly:
        return min(
            (
                Target(next_at(ref, w.at, tz, w.weekday), w.energy_wh, TargetSource.WEEKLY)
                for w in settings.weekly
            ),
            key=lambda t: t.deadline,
        )
    # The learned departure is only ever earlier than the default: a relay wallbox never
    # sees a full car leave, so it cannot learn that one stays longer (emsctl.cars.habits).
    default = next_at(ref, cfg.default_by, tz)
    day = arrived if arrived is not None else now
    learned = habits.target(day, ref, tz)
    if learned is not None:
        deadline, energy_wh = learned
        # No energy learned yet: the default, never 0 (met at once, the car left to the sun).
        if energy_wh is None:
            energy_wh = cfg.default_kwh * 1000.0
        return Target(min(deadline, default), energy_wh, TargetSource.LEARNED)
    energy = habits.energy_for(day.astimezone(tz).weekday())
    if energy is not None:
        return Target(default, energy, TargetSource.LEARNED)
    return Target(default, cfg.default_kwh * 1000.0, TargetSource.DEFAULT)
