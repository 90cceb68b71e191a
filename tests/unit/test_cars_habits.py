"""Habits learned from sessions: the survival estimate of departures, the energy quantile,
and a house without history."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from emsctl.cars.habits import censored_quantile, learn, learned_text
from emsctl.cars.types import ChargingSession, SessionEnd
from emsctl.config import CarCharging
from emsctl.model import LoadId

TZ = ZoneInfo("Europe/Berlin")
CFG = CarCharging(min_sessions=3, departure_quantile=0.2, energy_quantile=0.8, default_kwh=20)
NOW = datetime(2026, 6, 29, 12, 0, tzinfo=UTC)  # a Monday


def _session(
    day: int, start_h: float, seen_h: float, kwh: float, end: SessionEnd
) -> ChargingSession:
    """A session that began `day` days before NOW's midnight at local `start_h`, last drew
    at `seen_h` hours after that day's midnight."""
    midnight = datetime(2026, 6, 29, tzinfo=TZ) - timedelta(days=day)
    start = midnight + timedelta(hours=start_h)
    seen = midnight + timedelta(hours=seen_h)
    return ChargingSession(
        load=LoadId.WB_B,
        started_at=start.astimezone(UTC),
        last_draw_at=seen.astimezone(UTC),
        energy_wh=kwh * 1000,
        ended_at=seen.astimezone(UTC),
        ended_by=end,
    )


def test_censored_quantile_is_the_kaplan_meier_estimate() -> None:
    # Without censoring it is the plain empirical quantile (the first value reaching q).
    assert censored_quantile([(v, True) for v in (1, 2, 3, 4, 5)], 0.4) == 2
    # Censored values leave the risk set without counting as events.
    items = [(1, False), (2, True), (3, False), (4, True)]
    # S(2) = 1 - 1/3; S(4) = S(2) * (1 - 1/1) = 0 -> F reaches 0.5 only at 4.
    assert censored_quantile(items, 0.3) == 2
    assert censored_quantile(items, 0.5) == 4
    # Never reached: None.
    assert censored_quantile([(1, False), (2, False)], 0.1) is None
    assert censored_quantile([], 0.5) is None


def test_short_visits_make_an_early_departure_for_arrivals_at_that_time() -> None:
    # Four arrivals at about 11:00 on different weekdays: two cars found gone after their
    # last draw three hours later (visits), two charged full by 15:00 and never seen again.
    sessions = [
        _session(3, 11, 14, 9, SessionEnd.NOT_FOUND),
        _session(9, 11.5, 14.5, 7, SessionEnd.NOT_FOUND),
        _session(17, 10.5, 15, 12, SessionEnd.STOPPED),
        _session(24, 11, 15, 11, SessionEnd.STOPPED),
    ]
    habits = learn(sessions, CFG, TZ, NOW)
    assert habits.stay_min(11 * 60) == 180
    # Arrivals in the evening have no such history.
    assert habits.stay_min(18 * 60) is None
    arrived = datetime(2026, 7, 3, 9, 30, tzinfo=UTC)  # Friday 11:30 local
    deadline, _energy = habits.target(arrived, arrived, TZ) or (None, 0)
    assert deadline == datetime(2026, 7, 3, 12, 30, tzinfo=UTC)  # 14:30 local
    assert "arriving" in (habits.describe() or "")


def test_only_cars_that_stopped_by_themselves_show_their_need() -> None:
    full = [_session(7 * k, 17, 22, 11 + k, SessionEnd.STOPPED) for k in range(1, 5)]
    gone = [_session(7 * k + 1, 17, 18, 2, SessionEnd.NOT_FOUND) for k in range(1, 5)]
    habits = learn(full + gone, CFG, TZ, NOW)
    # The censored 2 kWh sessions do not pull the high quantile down.
    assert habits.energy_wh is not None and habits.energy_wh >= 14_000


def test_cars_charged_full_early_never_move_the_departure_earlier() -> None:
    # Every Monday the car is full by 22:00 and leaves unseen: no departure is learned,
    # however early the last draws were.
    sessions = [_session(7 * k, 17, 22, 10, SessionEnd.STOPPED) for k in range(1, 6)]
    habits = learn(sessions, CFG, TZ, NOW)
    assert habits.stay_min(17 * 60) is None
    assert habits.target(NOW, NOW, TZ) is None
    assert habits.energy_for(0) == 10_000


def test_too_few_sessions_and_no_history_give_the_defaults() -> None:
    assert learn([], CFG, TZ, NOW).describe() is None
    assert learn([], CFG, TZ, NOW).energy_for(2) is None
    two = [
        _session(7, 17, 22, 10, SessionEnd.STOPPED),
        _session(14, 17, 22, 10, SessionEnd.STOPPED),
    ]
    habits = learn(two, CFG, TZ, NOW)
    assert habits.days[0].energy_wh is None and habits.energy_wh is None


def test_old_open_and_false_sessions_are_left_out() -> None:
    old = _session(200, 17, 22, 30, SessionEnd.STOPPED)
    false = _session(7, 17, 17.1, 0.1, SessionEnd.NO_CAR)
    open_ = _session(0, 8, 9, 1, SessionEnd.STOPPED)
    open_.ended_at = open_.ended_by = None
    usual = [_session(7 * k, 17, 22, 10, SessionEnd.STOPPED) for k in range(1, 4)]
    habits = learn([old, false, open_, *usual], CFG, TZ, NOW)
    assert habits.days[0].sessions == 3
    assert habits.days[0].energy_wh == 10_000


def test_cars_that_took_less_than_they_needed_plan_for_the_default_at_least() -> None:
    # Held cars that left before they were full: their energies are lower bounds only.
    sessions = [_session(7 * k, 17, 18, 4, SessionEnd.NOT_FOUND) for k in range(1, 5)]
    assert learn(sessions, CFG, TZ, NOW).days[0].energy_wh == 20_000


def test_the_learned_text_groups_weekdays() -> None:
    sessions = [
        _session(7 * k + d, 17, 22, 11, SessionEnd.STOPPED) for k in range(3) for d in range(3, 8)
    ]
    text = learned_text(sessions, CFG, TZ, NOW)
    assert text == "learned: Mon-Fri ~11 kWh"


def test_the_wallbox_view_carries_the_learned_energy_per_weekday() -> None:
    # The web UI offers these as the weekly schedule; the text alone cannot be copied.
    from emsctl.cars.keeper import CarKeeper
    from emsctl.cars.memory import MemoryCarStore
    from emsctl.config import parse_config

    store = MemoryCarStore()
    for d in range(3, 8):  # Mon-Fri, three weeks
        for k in range(3):
            store.save_session(_session(7 * k + d, 17, 22, 11, SessionEnd.STOPPED))
    config = parse_config(
        {"loads": {"wb_b": {"device": {"type": "sim"}, "charging": {"min_sessions": 3}}}}
    )
    view = CarKeeper(config, store, NOW).view(LoadId.WB_B, NOW)
    assert view is not None and view.learned == "learned: Mon-Fri ~11 kWh"
    assert [d for d, _ in view.learned_days] == [0, 1, 2, 3, 4]
    assert view.to_json()["learned_days"][0] == {"weekday": 0, "energy_wh": 11_000}
