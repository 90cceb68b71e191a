"""Wall-clock steps (NTP after boot, a person setting the time): timers keep their real length.

The controller measures each tick's interval on the monotonic clock as well; when the wall
clock moved by a different amount, it re-bases every stored time (minimum runtimes, holds,
cool-downs, the owner's overrides) by the step, so durations stay what really passed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from datetime import timedelta

import pytest

from emsctl.controller import Controller, Devices
from emsctl.model import LoadId, Mode, State, Transition
from emsctl.site import Site
from emsctl.store import Store, StoreListener
from tests.unit.test_controller import T0, FakeCollector, FakeRelay, _config

HOUR = timedelta(hours=1)


class Seen:
    """Every transition the site makes, with the monotonic time it happened at."""

    def __init__(self, mono: Callable[[], float]) -> None:
        self.mono = mono
        self.transitions: list[Transition] = []
        self.timeline: list[tuple[str, str, str, float]] = []

    def on_transition(self, t: Transition) -> None:
        self.transitions.append(t)
        self.timeline.append((t.load.value, t.source.value, t.target.value, self.mono()))


class SteppingRig:
    """A controller whose wall clock can be stepped while its monotonic clock runs on."""

    def __init__(self, store: Store) -> None:
        self.now = T0
        self.mono = 1000.0
        self.config = _config()
        self.collector = FakeCollector()
        self.relays = {load: FakeRelay(load) for load in (LoadId.SG_READY, LoadId.WB_A)}
        self.store = store
        self.seen = Seen(lambda: self.mono)
        site = Site(self.config, self.now, listeners=[StoreListener(store), self.seen])
        self.ctl = Controller(
            self.config,
            site,
            Devices(collector=self.collector, actuators=dict(self.relays)),  # type: ignore[arg-type]
            store=store,
            now=lambda: self.now,
            monotonic=lambda: self.mono,
        )

    def minutes(self, n: int) -> None:
        for _ in range(n):
            self.ctl.tick()
            self.now += timedelta(minutes=1)
            self.mono += 60.0

    def step_wall(self, by: timedelta) -> None:
        self.now += by

    def state(self, load: LoadId) -> State:
        return self.ctl.site.status(load).state

    def reasons(self) -> str:
        report = self.ctl.latest()
        assert report is not None
        return " | ".join(r for v in report.loads.values() for r in v.reasons)


@pytest.fixture
def store() -> Iterator[Store]:
    s = Store.temporary()
    yield s
    s.close()


def _run_day(store: Store, steps: dict[int, timedelta]) -> SteppingRig:
    """Surplus, then import, then surplus again; the wall clock stepped at the given minutes."""
    rig = SteppingRig(store)
    for minute in range(80):
        if minute in steps:
            rig.step_wall(steps[minute])
        rig.collector.values["grid_w"] = 3000.0 if 15 <= minute < 45 else -5000.0
        rig.minutes(1)
    return rig


@pytest.mark.parametrize(
    "steps",
    [
        {14: -HOUR},  # back while SG-Ready runs its minimum runtime
        {20: HOUR},  # forward while it runs
        {30: 2 * HOUR, 31: -2 * HOUR},  # forward and back while it is locked out
        {5: -HOUR, 40: HOUR, 60: timedelta(days=-1)},
    ],
    ids=["back", "forward", "forward-and-back", "several"],
)
def test_steps_change_no_decision_and_no_duration(store: Store, steps: dict) -> None:
    """The same day with and without steps: the same transitions at the same real times."""
    expected = _run_day(Store.temporary(), {})
    stepped = _run_day(store, steps)
    assert len(expected.seen.timeline) >= 6  # the day does switch: start, stop, start again
    assert stepped.seen.timeline == expected.seen.timeline
    assert "off for -" not in stepped.reasons()
    assert "1h" not in stepped.reasons()


def test_the_owners_force_off_survives_a_step_back(store: Store) -> None:
    rig = SteppingRig(store)
    rig.minutes(1)
    rig.ctl.set_override(LoadId.WB_A, Mode.FORCE_OFF, "owner", rig.now + 4 * HOUR)
    rig.minutes(2)
    assert rig.state(LoadId.WB_A) is State.FORCED_OFF
    rig.step_wall(-HOUR)
    rig.minutes(3)
    assert rig.state(LoadId.WB_A) is State.FORCED_OFF
    rig.step_wall(HOUR)
    rig.minutes(3)
    assert rig.state(LoadId.WB_A) is State.FORCED_OFF
    wb_a = [t for t in rig.seen.transitions if t.load is LoadId.WB_A]
    assert [t.target for t in wb_a].count(State.FORCED_OFF) == 1
    assert wb_a[-1].target is State.FORCED_OFF
    assert not any("set to Auto" in r for t in wb_a for r in t.reasons)
    # The hold still ends after the four hours the owner asked for, in real time.
    (active,) = store.override_records(rig.now, load=LoadId.WB_A)
    assert active.expires_at is not None
    left = active.expires_at - rig.now
    assert timedelta(hours=3, minutes=50) < left < 4 * HOUR


def test_a_step_is_logged_once_with_its_size(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    rig = SteppingRig(store)
    rig.minutes(2)
    with caplog.at_level(logging.WARNING, logger="emsctl.controller"):
        rig.step_wall(-HOUR)
        rig.minutes(3)
    steps = [r.getMessage() for r in caplog.records if "wall clock" in r.getMessage()]
    assert len(steps) == 1
    assert "-3600 s" in steps[0]


def test_small_drift_and_a_slow_tick_are_not_steps(store: Store) -> None:
    rig = SteppingRig(store)
    rig.minutes(12)  # export 5 kW, SOC 80 %: SG-Ready starts after its on-delay
    assert rig.state(LoadId.SG_READY) is State.ON
    since = rig.ctl.site.status(LoadId.SG_READY).since
    rig.step_wall(timedelta(seconds=2))  # NTP slewing / jitter
    rig.minutes(2)
    assert rig.ctl.site.status(LoadId.SG_READY).since == since


def test_without_a_monotonic_clock_nothing_is_rebased(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The demo and the replay run on simulated time: there is nothing to compare against."""
    config = _config()
    now = [T0]
    site = Site(config, T0, listeners=[StoreListener(store)])
    ctl = Controller(
        config,
        site,
        Devices(collector=FakeCollector(), actuators={}),  # type: ignore[arg-type]
        store=store,
        now=lambda: now[0],
    )
    rebased: list[timedelta] = []
    monkeypatch.setattr(site, "rebase", rebased.append)
    for _ in range(3):
        ctl.tick()
        now[0] += 5 * HOUR
    assert rebased == []
