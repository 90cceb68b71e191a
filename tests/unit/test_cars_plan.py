"""Which target a wallbox follows: one-off, weekly, learned, default; local times across a
clock change."""

from __future__ import annotations

from datetime import UTC, datetime, time
from zoneinfo import ZoneInfo

from emsctl.cars.habits import Habit, Habits, Stay
from emsctl.cars.plan import next_at, target_in_force
from emsctl.cars.types import CarSettings, OneOffTarget, TargetSource, WeeklyTarget
from emsctl.config import CarCharging

TZ = ZoneInfo("Europe/Berlin")
CFG = CarCharging(default_by=time(7, 0), default_kwh=20)
MON_18 = datetime(2026, 6, 29, 16, 0, tzinfo=UTC)  # Monday 18:00 local (CEST)


def test_next_at_is_the_next_local_time_and_weekday() -> None:
    assert next_at(MON_18, time(7), TZ) == datetime(2026, 6, 30, 5, 0, tzinfo=UTC)
    assert next_at(MON_18, time(19), TZ) == datetime(2026, 6, 29, 17, 0, tzinfo=UTC)
    # Strictly after: 18:00 itself is tomorrow's.
    assert next_at(MON_18, time(18), TZ) == datetime(2026, 6, 30, 16, 0, tzinfo=UTC)
    assert next_at(MON_18, time(7), TZ, weekday=4) == datetime(2026, 7, 3, 5, 0, tzinfo=UTC)
    assert next_at(MON_18, time(7), TZ, weekday=0) == datetime(2026, 7, 6, 5, 0, tzinfo=UTC)


def test_next_at_across_the_clock_change() -> None:
    # Saturday 28 March 2026 evening; the clocks go forward on Sunday 29 March at 02:00.
    sat = datetime(2026, 3, 28, 19, 0, tzinfo=UTC)
    assert next_at(sat, time(7), TZ) == datetime(2026, 3, 29, 5, 0, tzinfo=UTC)  # CEST
    # 02:30 does not exist that night: the moment after the gap.
    assert next_at(sat, time(2, 30), TZ) == datetime(2026, 3, 29, 1, 30, tzinfo=UTC)


def test_the_owners_one_off_target_comes_first_while_it_is_ahead() -> None:
    one = OneOffTarget(datetime(2026, 6, 30, 4, 0, tzinfo=UTC), 15_000, MON_18)
    weekly = (WeeklyTarget(1, time(7, 30), 10_000),)
    t = target_in_force(CarSettings(one_off=one, weekly=weekly), Habits(), CFG, TZ, MON_18)
    assert (t.deadline, t.energy_wh, t.source) == (one.by, 15_000, TargetSource.ONE_OFF)
    later = datetime(2026, 6, 30, 4, 30, tzinfo=UTC)
    t = target_in_force(CarSettings(one_off=one, weekly=weekly), Habits(), CFG, TZ, later)
    assert t.source is TargetSource.WEEKLY
    assert t.deadline == datetime(2026, 6, 30, 5, 30, tzinfo=UTC)


def test_the_weekly_schedule_gives_the_next_day_that_has_a_target() -> None:
    weekly = (WeeklyTarget(0, time(7), 12_000), WeeklyTarget(4, time(6, 30), 8_000))
    t = target_in_force(CarSettings(weekly=weekly), Habits(), CFG, TZ, MON_18)
    assert t.deadline == datetime(2026, 7, 3, 4, 30, tzinfo=UTC)  # Friday 06:30
    assert (t.energy_wh, t.source) == (8_000, TargetSource.WEEKLY)


def test_a_learned_early_departure_is_earlier_than_the_default_and_never_later() -> None:
    # Cars arriving at 17:00 have left after three hours before.
    stays = tuple(Stay(17 * 60, 180, True) for _ in range(3))
    habits = Habits({0: Habit(0, 5, energy_wh=9_000)}, 12_000, stays)
    arrived = datetime(2026, 6, 29, 15, 0, tzinfo=UTC)  # Monday 17:00
    t = target_in_force(CarSettings(), habits, CFG, TZ, MON_18, arrived=arrived)
    assert t.deadline == datetime(2026, 6, 29, 18, 0, tzinfo=UTC)  # 20:00 local
    assert (t.energy_wh, t.source) == (9_000, TargetSource.LEARNED)
    # A learned departure after the next morning gives way to the default.
    late = Habits(
        {0: Habit(0, 5, energy_wh=9_000)},
        None,
        tuple(Stay(17 * 60, 36 * 60, True) for _ in range(3)),
    )
    t = target_in_force(CarSettings(), late, CFG, TZ, MON_18, arrived=arrived)
    assert t.deadline == datetime(2026, 6, 30, 5, 0, tzinfo=UTC)


def test_without_anything_the_default_charges_by_the_next_morning() -> None:
    t = target_in_force(CarSettings(), Habits(), CFG, TZ, MON_18)
    assert t.deadline == datetime(2026, 6, 30, 5, 0, tzinfo=UTC)
    assert (t.energy_wh, t.source) == (20_000, TargetSource.DEFAULT)
    # With habits' energy but no departure, the learned energy by the default time.
    t = target_in_force(CarSettings(), Habits(energy_wh=11_000), CFG, TZ, MON_18)
    assert (t.energy_wh, t.source) == (11_000, TargetSource.LEARNED)
    assert t.deadline == datetime(2026, 6, 30, 5, 0, tzinfo=UTC)


def test_a_learned_early_departure_without_a_learned_energy_charges_the_default() -> None:
    # Cars arriving at about 17:00 were found gone after 3 h, but no session has yet shown
    # how much a car takes: the target is the default energy by the learned departure, never
    # "0 kWh", which would count as met at once and leave the car to the sun alone.
    stays = tuple(Stay(17 * 60, 180, True) for _ in range(3))
    t = target_in_force(CarSettings(), Habits(stays=stays), CFG, TZ, MON_18)
    assert t.source is TargetSource.LEARNED
    assert t.deadline == datetime(2026, 6, 29, 19, 0, tzinfo=UTC)  # 18:00 local + 3 h
    assert t.energy_wh == 20_000
