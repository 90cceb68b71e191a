"""Per-day statistics in SQL: runtime, energy, switch-ons, short cycles, why loads stopped.

Times are chosen around local (Europe/Berlin) midnights so that day clipping is visible:
2026-06-02 00:00 CEST = 2026-06-01 22:00 UTC.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from emsctl.config import Config
from emsctl.model import LoadId, LoadReading, LoadStatus, Snapshot, State, Transition
from emsctl.store import DayStats, Store
from emsctl.store.daystats import day_bounds

BERLIN = ZoneInfo("Europe/Berlin")
MIDNIGHT = datetime(2026, 6, 1, 22, 0, tzinfo=UTC)  # start of 2026-06-02, local
DAY1, DAY2 = date(2026, 6, 1), date(2026, 6, 2)
WA, WB, SG = LoadId.WB_A, LoadId.WB_B, LoadId.SG_READY
CFG = Config()  # WB A 2 kW, min_on 900 s; SG-Ready min_on 1800 s; Europe/Berlin


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store.open(tmp_path / "ems.db")
    yield s
    s.close()


def at(minutes: float) -> datetime:
    """Minutes relative to local midnight between 2026-06-01 and 2026-06-02."""
    return MIDNIGHT + timedelta(minutes=minutes)


def chain(load: LoadId, *steps: tuple[float, State, str, str]) -> list[Transition]:
    """Transitions from `off` through the given (minute, target, event, reason) steps."""
    out = []
    source = State.OFF
    for minute, target, event, reason in steps:
        out.append(Transition(at(minute), load, source, target, event, (reason,)))
        source = target
    return out


def one(rows: list[DayStats], day: date, load: LoadId) -> DayStats:
    (row,) = [r for r in rows if r.day == day and r.load == load.value]
    return row


def test_runtime_switch_ons_short_cycles_and_stops_of_one_day(store: Store) -> None:
    store.record_transitions(
        chain(
            WA,
            (-300, State.ARMING, "arm", "export ok"),
            (-296, State.ON, "start", "export ok for 4m"),
            (-290, State.OFF, "brake", "soc 44% < brake 45%"),  # 6 min: short
            (-200, State.ARMING, "arm", "export ok"),
            (-196, State.ON, "start", "export ok for 4m"),
            (-160, State.DISARMING, "weaken", "import 400 W"),
            (-158, State.ON, "recover", "export ok"),  # still the same run
            (-130, State.DISARMING, "weaken", "import 400 W"),
            (-124, State.OFF, "shed", "import 400 W for 6m"),  # 72 min run
            (-100, State.ARMING, "arm", "export ok"),
            (-96, State.ON, "start", "export ok for 4m"),
            (-90, State.COOLDOWN, "release", "car not charging"),  # 6 min: short
        )
    )
    rows = store.stats(2, CFG, now=at(60), load=WA)
    d = one(rows, DAY1, WA)
    assert d.runtime_s == (6 + 72 + 6) * 60
    assert d.switch_ons == 3
    assert d.short_cycles == 2
    assert d.energy_wh == pytest.approx(84 / 60 * 2000)
    assert not d.energy_measured
    assert {(s.event, s.count) for s in d.stops} == {("brake", 1), ("shed", 1), ("release", 1)}
    shed = next(s for s in d.stops if s.event == "shed")
    assert shed.last_reasons == ("import 400 W for 6m",)
    assert one(rows, DAY2, WA).runtime_s == 0


def test_run_across_local_midnight_is_split_and_counted_on_the_day_it_began(
    store: Store,
) -> None:
    store.record_transitions(
        chain(
            SG,
            (-15, State.ARMING, "arm", "surplus"),
            (-10, State.ON, "start", "surplus for 4m"),
            (20, State.OFF, "shed", "import"),  # 30 min run: not short for 1800 s
        )
    )
    rows = store.stats(2, CFG, now=at(120), load=SG)
    d1, d2 = one(rows, DAY1, SG), one(rows, DAY2, SG)
    assert (d1.runtime_s, d2.runtime_s) == (600, 1200)
    assert (d1.switch_ons, d2.switch_ons) == (1, 0)
    assert (d1.short_cycles, d2.short_cycles) == (0, 0)
    assert [s.event for s in d2.stops] == ["shed"]


def test_run_one_second_short_of_min_on_is_a_short_cycle(store: Store) -> None:
    store.record_transitions(
        [
            Transition(at(10), SG, State.ARMING, State.ON, "start", ()),
            Transition(at(10) + timedelta(seconds=1799), SG, State.ON, State.OFF, "brake", ()),
            Transition(at(60), SG, State.ARMING, State.ON, "start", ()),
            Transition(at(90), SG, State.ON, State.OFF, "shed", ()),
        ]
    )
    d = one(store.stats(1, CFG, now=at(120), load=SG), DAY2, SG)
    assert (d.switch_ons, d.short_cycles) == (2, 1)


def test_ongoing_run_counts_until_now_and_is_not_a_short_cycle(store: Store) -> None:
    store.record_transitions(chain(WA, (10, State.ARMING, "arm", ""), (14, State.ON, "start", "")))
    d = one(store.stats(1, CFG, now=at(20), load=WA), DAY2, WA)
    assert d.runtime_s == 6 * 60
    assert (d.switch_ons, d.short_cycles) == (1, 0)


def test_run_begun_before_the_window_is_clipped_and_not_a_switch_on(store: Store) -> None:
    start = MIDNIGHT - timedelta(days=3)
    store.record_transitions(
        [
            Transition(start, WB, State.ARMING, State.ON, "start", ()),
            Transition(at(30), WB, State.ON, State.OFF, "shed", ("import",)),
        ]
    )
    d = one(store.stats(1, CFG, now=at(60), load=WB), DAY2, WB)
    assert d.runtime_s == 30 * 60
    assert d.switch_ons == 0
    assert d.short_cycles == 0
    assert d.energy_wh == pytest.approx(0.5 * 4000)


def test_forced_and_manual_on_count_as_running_manual_off_does_not(store: Store) -> None:
    store.record_transitions(
        [
            Transition(at(0), WB, State.OFF, State.FORCED_ON, "force_on", ("owner",)),
            Transition(at(60), WB, State.FORCED_ON, State.OFF, "auto", ("expired",)),
            Transition(at(100), WB, State.OFF, State.MANUAL, "detect_manual", (),
                       {"relay_on": 1.0}),
            Transition(at(130), WB, State.MANUAL, State.OFF, "manual_end", ()),
            Transition(at(200), WB, State.OFF, State.MANUAL, "detect_manual", (),
                       {"relay_on": 0.0}),
        ]
    )  # fmt: skip
    d = one(store.stats(1, CFG, now=at(300), load=WB), DAY2, WB)
    assert d.runtime_s == 90 * 60
    assert d.switch_ons == 2
    assert {(s.event, s.count) for s in d.stops} == {("auto", 1), ("manual_end", 1)}


def test_energy_uses_mean_power_measured_while_on_when_samples_have_it(store: Store) -> None:
    store.record_transitions(
        chain(WA, (0, State.ARMING, "arm", ""), (4, State.ON, "start", ""),
              (64, State.OFF, "shed", ""))
    )  # fmt: skip
    for m, power, on in ((10, 1500.0, True), (20, 1700.0, True), (70, 0.0, False)):
        status = LoadStatus(WA, State.ON, at(4), reading=LoadReading(relay_on=on, power_w=power))
        store.record_sample(at(m), Snapshot(at=at(m)), {WA: status})
    d = one(store.stats(1, CFG, now=at(100), load=WA), DAY2, WA)
    assert d.energy_measured
    assert d.energy_wh == pytest.approx(1.0 * 1600)  # 1 h at the mean of 1500 and 1700 W


def test_stats_cover_every_configured_load_in_priority_order(store: Store) -> None:
    rows = store.stats(3, CFG, now=at(1))
    assert [r.day for r in rows[::4]] == [date(2026, 5, 31), DAY1, DAY2]
    assert [r.load for r in rows[:4]] == ["sg_ready", "dhw", "wb_a", "wb_b"]
    assert all(r.runtime_s == 0 and r.switch_ons == 0 for r in rows)


def test_day_bounds_follow_daylight_saving_time() -> None:
    # 2026-03-29: clocks go forward in Berlin, the day has 23 hours.
    now = datetime(2026, 3, 29, 12, 0, tzinfo=UTC)
    (b,) = day_bounds(now, 1, BERLIN)
    assert b.day == date(2026, 3, 29)
    assert b.end - b.start == timedelta(hours=23)
    assert b.start.astimezone(UTC) == datetime(2026, 3, 28, 23, 0, tzinfo=UTC)
