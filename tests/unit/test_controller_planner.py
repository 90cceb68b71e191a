"""The planner in the daemon's controller (rule 19): plans are made off the tick, the plan's
word reaches the engine, the plan is stored for `emsctl plan`, and a failing planner leaves
the rules acting alone."""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client import generate_latest

from emsctl.config import Config, parse_config
from emsctl.controller import Controller, Devices
from emsctl.metrics import Metrics
from emsctl.model import FORECAST_SLOT_S, Forecast, LoadId, ReasonCode, State
from emsctl.plan_worker import PLAN_KEY, PlanWorker
from emsctl.planner import driver as planner_driver
from emsctl.planner.driver import Planner
from emsctl.site import Site
from emsctl.store import Store, StoreListener

from .test_controller import FakeCollector, FakeRelay

#: 11:00 in Berlin (CEST), a slot boundary.
T0 = datetime(2026, 6, 15, 9, 0, tzinfo=UTC)
DAY0 = datetime(2026, 6, 14, 22, 0, tzinfo=UTC)  # local midnight


def _config() -> Config:
    return parse_config(
        {
            "loads": {
                "dhw": {"enabled": False},
                "wb_a": {"enabled": False},
                "wb_b": {"enabled": False},
                "sg_ready": {
                    "min_on_s": 1800,
                    "max_outdoor_c": 30,
                    "idle_release": {"enabled": False},
                },
            },
            "control": {"priority": ["sg_ready"], "exclusive": []},
            "planner": {"enabled": True, "blocks_per_day": {"sg_ready": 2}},
        }
    )


class SunnyForecast:
    """A clear day's shape for today and tomorrow (7 kWp, the battery fills by noon)."""

    def __init__(self) -> None:
        self.fetched = T0 - timedelta(minutes=30)

    def forecast(self, now: datetime) -> Forecast:
        slots = []
        for k in range(2 * 96):
            k_day = k % 96
            sun = 6800 * math.sin(math.pi * (k_day - 24) / 56) if 24 <= k_day < 80 else 0.0
            slots.append(sun * FORECAST_SLOT_S / 3600)
        return Forecast(
            fetched_at=self.fetched,
            remaining_today_wh=20000.0,
            slots_start=DAY0,
            slot_wh=tuple(slots),
        )

    def close(self) -> None:
        pass


class Rig:
    def __init__(self, store: Store, worker: PlanWorker | None) -> None:
        self.now = T0
        self.config = _config()
        self.collector = FakeCollector()
        # 800 W of surplus: below SG-Ready's start threshold (2 kW), above a planned start.
        self.collector.values.update(
            {"grid_w": -800.0, "soc_pct": 80.0, "pv_w": 1200.0, "battery_w": 0.0}
        )
        self.relay = FakeRelay(LoadId.SG_READY)
        self.metrics = Metrics()
        site = Site(self.config, self.now, listeners=[StoreListener(store)])
        self.ctl = Controller(
            self.config,
            site,
            Devices(  # type: ignore[arg-type]
                collector=self.collector,
                actuators={LoadId.SG_READY: self.relay},
                forecast=SunnyForecast(),
            ),
            store=store,
            now=lambda: self.now,
            metrics=self.metrics,
            planner=worker,
        )

    def minutes(self, n: int) -> None:
        for _ in range(n):
            self.ctl.tick()
            self.now += timedelta(minutes=1)


@pytest.fixture
def store() -> Iterator[Store]:
    s = Store.temporary()
    yield s
    s.close()


def test_a_planned_slot_starts_sg_ready_on_less_surplus_and_says_so(store: Store) -> None:
    worker = PlanWorker(Planner(_config()), sink=store, synchronous=True)
    rig = Rig(store, worker)
    plan = worker.planner.plan
    rig.minutes(1)
    plan = worker.planner.plan
    assert plan is not None and plan.blocks_of(LoadId.SG_READY)
    first = plan.blocks_of(LoadId.SG_READY)[0]
    # Run the morning up to the planned slot and through it.
    until = plan.slot_start(first.last + 1) - timedelta(minutes=2)
    rig.minutes(int((until - rig.now).total_seconds() // 60))
    assert rig.relay.on, worker.planner.failed
    latest = rig.ctl.latest()
    assert latest is not None
    view = latest.loads[LoadId.SG_READY]
    assert view.state is State.ON
    assert any(r.startswith("planned ") for r in view.reasons), view.reasons
    text = generate_latest(rig.metrics.registry).decode()
    assert 'ems_plan_load_on{load="sg_ready"} 1.0' in text
    assert 'ems_plan_runs{load="sg_ready"}' in text
    assert "ems_plans_made " in text and "ems_plan_errors 0.0" in text
    assert latest.plan is not None and LoadId.SG_READY in latest.plan.on_now
    assert latest.to_json()["plan"]["on_now"] == ["sg_ready"]
    stored = json.loads(store.kv_get(PLAN_KEY) or "{}")
    assert stored["runs"] and stored["runs"][0]["load"] == "sg_ready"
    assert len(stored["slots"]) > 48


def test_without_a_planner_the_same_morning_starts_nothing(store: Store) -> None:
    rig = Rig(store, None)
    rig.minutes(180)
    assert not rig.relay.on
    latest = rig.ctl.latest()
    assert latest is not None
    assert "surplus 800 W < start 2.0 kW" in latest.loads[LoadId.SG_READY].reasons


def test_a_tick_never_waits_for_a_plan(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    release = threading.Event()
    entered = threading.Event()
    real = planner_driver.make_plan

    def slow(*args: object, **kw: object) -> object:
        entered.set()
        release.wait(10)
        return real(*args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(planner_driver, "make_plan", slow)
    worker = PlanWorker(Planner(_config()), sink=store)
    worker.start()
    rig = Rig(store, worker)
    try:
        done = threading.Event()

        def ticks() -> None:
            rig.minutes(3)
            done.set()

        t = threading.Thread(target=ticks)
        t.start()
        assert entered.wait(5)  # the planner is busy with its plan...
        assert done.wait(5)  # ...and the ticks went on without it
        assert worker.planner.plan is None
        release.set()
        t.join(5)
        for _ in range(100):
            if worker.planner.plan is not None:
                break
            threading.Event().wait(0.05)
        assert worker.planner.plan is not None
    finally:
        release.set()
        worker.stop()


def test_a_failing_planner_leaves_the_rules_acting_alone(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object, **kw: object) -> object:
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr(planner_driver, "make_plan", broken)
    worker = PlanWorker(Planner(_config()), sink=store, synchronous=True)
    rig = Rig(store, worker)
    rig.collector.values["grid_w"] = -2500.0
    rig.minutes(10)
    assert worker.errors >= 1
    assert worker.planner.failed == "ZeroDivisionError: division by zero"
    assert rig.relay.on  # the ordinary start on 2.5 kW of surplus
    latest = rig.ctl.latest()
    assert latest is not None
    assert latest.plan is not None
    assert latest.plan.failed == "ZeroDivisionError: division by zero"
    # Tried at the start and again when SG-Ready's run began (an input changed), not every tick.
    assert "ems_plan_errors 2.0" in generate_latest(rig.metrics.registry).decode()
    codes_text = " ".join(latest.loads[LoadId.SG_READY].reasons)
    assert "planned" not in codes_text and ReasonCode.PLANNED.value not in codes_text
